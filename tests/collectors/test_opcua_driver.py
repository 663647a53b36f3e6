"""The OPC-UA driver against an asyncua server on 127.0.0.1 (the real client library, no mocks).

One server for the module (its init takes ~1.7 s): namespace urn:oee:plant with one variable of every built-in
type under Objects/Plant/LINE-011, a node with a bad status, one with an uncertain status, a nested station, and
100 Doubles for the throughput figure. It offers the None and Basic256Sha256/SignAndEncrypt policies (a throwaway
certificate made in a temporary folder), anonymous sessions and one user, "operator", with PASSWORD.
While `hold_notifications` is set, a subscription's data changes stay queued on the server (a PLC whose first
notification is late) until release_notifications(): this makes the "no update yet" state observable on purpose.
"""
from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from datetime import datetime, timezone

import pytest
from asyncua import Server, ua
from asyncua.common.callback import CallbackType
from asyncua.crypto import cert_gen
from asyncua.crypto.permission_rules import User, UserRole
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from collectors.base import (
    AUTH_FAILED,
    BAD,
    CANNOT_CONNECT,
    DEVICE_ERROR,
    GOOD,
    INVALID_ADDRESS,
    UNCERTAIN,
    ConfigError,
    ConnectionSettings,
    DriverError,
    TagSpec,
    driver_class,
    set_settings_file_folder,
    settings_file_folder,
)
from collectors.drivers.opcua import OpcUaDriver, OpcUaPlan
from collectors.drivers.opcua_nodes import NO_UPDATE_YET

NS_URI = "urn:oee:plant"
PASSWORD = "S3cret-Pass-4711"
WRONG_PASSWORD = "Wr0ng-Guess-0815"
LAST_CHANGE = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
SERVER_URI = "urn:oee:test:plc"
CLIENT_URI = "urn:oee:test:collector"

VARIABLES = [  # (browse name, value, variant type, data type the driver reads it as, expected reading)
    ("ProductionCount", 1500, ua.VariantType.Int32, "Int32", 1500),
    ("Running", True, ua.VariantType.Boolean, "Boolean", True),
    ("CycleTime", 1.25, ua.VariantType.Double, "Double", 1.25),
    ("Temperature", 21.5, ua.VariantType.Float, "Float", 21.5),
    ("State", -3, ua.VariantType.Int16, "Int16", -3),
    ("Flags", 65535, ua.VariantType.UInt16, "UInt16", 65535),
    ("Total", 4_000_000_000, ua.VariantType.UInt32, "UInt32", 4_000_000_000),
    ("Energy", -9_000_000_000, ua.VariantType.Int64, "Int64", -9_000_000_000),
    ("Serial", 2**63 + 1, ua.VariantType.UInt64, "UInt64", 2**63 + 1),
    ("Offset", -5, ua.VariantType.SByte, "SByte", -5),
    ("Level", 200, ua.VariantType.Byte, "Byte", 200),
    ("ProductName", "Cola 12x0.5L", ua.VariantType.String, "String", "Cola 12x0.5L"),
    ("LastChange", LAST_CHANGE, ua.VariantType.DateTime, "DateTime", LAST_CHANGE.timestamp()),
    ("StationTemps", [20.0 + i for i in range(8)], ua.VariantType.Double, "Double[8]", [20.0 + i for i in range(8)]),
    ("OrderText", "n/a", ua.VariantType.String, "String", "n/a"),
    ("Ratio", 2.5, ua.VariantType.Double, "Double", 2.5),
]


def node(name: str) -> str:
    return f"ns=2;s=LINE-011.{name}"


class Users:
    """Anonymous, or operator with PASSWORD; anything else is refused (BadUserAccessDenied)."""

    def get_user(self, iserver, username=None, password=None, certificate=None):
        if username is None:
            return User(role=UserRole.User)
        if username == "operator" and password == PASSWORD:
            return User(role=UserRole.User)
        return None


def make_certificate(folder, uri: str, name: str):
    key = cert_gen.generate_private_key()
    cert = cert_gen.generate_self_signed_app_certificate(
        key, name, {}, [x509.UniformResourceIdentifier(uri), x509.DNSName("localhost"),
                        x509.DNSName(socket.gethostname())],
        [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH])
    cert_path, key_path = folder / f"{name}.der", folder / f"{name}-key.pem"
    cert_path.write_bytes(cert.public_bytes(cert_gen.Encoding.DER))
    key_path.write_bytes(cert_gen.dump_private_key_as_pem(key))
    return str(cert_path), str(key_path)


class UaSim:
    def __init__(self, folder):
        self.folder = folder
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: Server | None = None
        self.nodes: dict[str, object] = {}
        self.port = 0
        self.hold_notifications = False

    async def _on_items_created(self, _event, _dispatcher):
        if self.hold_notifications:  # runs inside CreateMonitoredItems, before the client gets the answer
            for sub in self.server.iserver.subscription_service.subscriptions.values():
                await sub.set_publishing_mode(False)

    def release_notifications(self) -> None:
        async def release():
            self.hold_notifications = False
            for sub in self.server.iserver.subscription_service.subscriptions.values():
                await sub.set_publishing_mode(True)
        self.call(release())

    def call(self, coro, timeout: float = 15):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self):
        srv = Server(user_manager=Users())
        self.server = srv
        await srv.init()
        srv.subscribe_server_callback(CallbackType.ItemSubscriptionCreated, self._on_items_created)
        srv.set_endpoint("opc.tcp://127.0.0.1:0/oee/")
        srv.set_server_name("OEE test PLC")
        await srv.set_application_uri(SERVER_URI)
        await srv.set_build_info("urn:acme:opc-test", "ACME Automation", "ACME OPC Test Server", "4.2.1", "77",
                                 datetime(2026, 1, 1))
        cert, key = make_certificate(self.folder, SERVER_URI, "server")
        await srv.load_certificate(cert)
        await srv.load_private_key(key)
        srv.set_security_policy([ua.SecurityPolicyType.NoSecurity,
                                 ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
        srv.set_identity_tokens([ua.AnonymousIdentityToken, ua.UserNameIdentityToken])
        idx = await srv.register_namespace(NS_URI)
        assert idx == 2
        plant = await srv.nodes.objects.add_folder(ua.NodeId("Plant", idx), f"{idx}:Plant")
        line = await plant.add_object(ua.NodeId("LINE-011", idx), f"{idx}:LINE-011")
        for name, value, vtype, _dt, _exp in VARIABLES:
            self.nodes[name] = await line.add_variable(ua.NodeId(f"LINE-011.{name}", idx), f"{idx}:{name}", value,
                                                       vtype)
        await self.nodes["ProductionCount"].set_writable()
        self.nodes["Numeric"] = await line.add_variable(ua.NodeId(1001, idx), f"{idx}:Numeric", 77,
                                                        ua.VariantType.Int32)
        sensor = await line.add_variable(ua.NodeId("LINE-011.Sensor", idx), f"{idx}:Sensor", 0.0,
                                         ua.VariantType.Double)
        await sensor.write_value(ua.DataValue(ua.Variant(0.0, ua.VariantType.Double),
                                              StatusCode=ua.StatusCode(ua.StatusCodes.BadSensorFailure)))
        stale = await line.add_variable(ua.NodeId("LINE-011.Stale", idx), f"{idx}:Stale", 9.5,
                                        ua.VariantType.Double)
        await stale.write_value(ua.DataValue(ua.Variant(9.5, ua.VariantType.Double),
                                             StatusCode=ua.StatusCode(ua.StatusCodes.UncertainLastUsableValue)))
        station = await line.add_object(ua.NodeId("LINE-011.Station1", idx), f"{idx}:Station1")
        await station.add_variable(ua.NodeId("LINE-011.Station1.Speed", idx), f"{idx}:Speed", 42.0,
                                   ua.VariantType.Double)
        bench = await srv.nodes.objects.add_folder(ua.NodeId("Bench", idx), f"{idx}:Bench")
        for i in range(100):
            await bench.add_variable(ua.NodeId(f"Bench.V{i:03d}", idx), f"{idx}:V{i:03d}", float(i),
                                     ua.VariantType.Double)
        await srv.start()
        self.port = srv.bserver.port

    def start(self) -> "UaSim":
        self.call(self._start(), 30)
        return self

    def write(self, name: str, value, vtype) -> None:
        self.call(self.nodes[name].write_value(ua.Variant(value, vtype)))

    def stop_listening(self) -> None:
        self.call(self.server.bserver.stop())

    def start_listening(self) -> None:
        self.call(self.server.bserver.start())

    def close(self) -> None:
        async def stop():
            await self.server.stop()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        try:
            self.call(stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("opcua-pki")
    before = settings_file_folder()
    set_settings_file_folder(folder)  # the app's <data dir>/certs: the only folder settings may name files in
    yield folder, make_certificate(folder, CLIENT_URI, "client")
    set_settings_file_folder(before)


@pytest.fixture(scope="module")
def sim(certs):
    server = UaSim(certs[0]).start()
    yield server
    server.close()


def make(port: int, timeout_s: float = 2.0, host: str = "127.0.0.1", **config) -> OpcUaDriver:
    cls = driver_class("OPCUA")
    config.setdefault("endpoint", f"opc.tcp://127.0.0.1:{port}/oee/")
    return cls(ConnectionSettings("OPCUA", host, port, cls.validate_config(config), timeout_s))


@pytest.fixture
def driver(sim):
    d = make(sim.port)
    d.connect()
    yield d
    d.close()


def tags(*specs) -> list[TagSpec]:
    return [TagSpec(i + 1, addr, dtype, f"t{i + 1}") for i, (addr, dtype) in enumerate(specs)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- configuration and addresses ---------------------------------------------------------------------------------


def test_registered_and_defaults():
    assert driver_class("OPCUA") is OpcUaDriver
    cfg = OpcUaDriver.validate_config({"endpoint": "opc.tcp://h:4840/", "namespace": NS_URI, "object": "ns=2;s=X"})
    assert cfg["security_policy"] == "None" and cfg["security_mode"] == "None" and cfg["use_subscription"] is False
    assert cfg["max_nodes_per_read"] == 500 and cfg["publishing_interval_ms"] == 1000.0 and cfg["namespace"] == NS_URI
    secure = OpcUaDriver.validate_config({"security_policy": "basic256sha256", "certificate": "c", "private_key": "k"})
    assert secure["security_policy"] == "Basic256Sha256" and secure["security_mode"] == "SignAndEncrypt"
    uri = OpcUaDriver.validate_config({
        "security_policy": "http://opcfoundation.org/UA/SecurityPolicy#Aes128_Sha256_RsaOaep",
        "security_mode": "Sign", "certificate": "c", "private_key": "k"})
    assert uri["security_policy"] == "Aes128_Sha256_RsaOaep" and uri["security_mode"] == "Sign"


@pytest.mark.parametrize("config, field", [
    ({"endpoint": "http://h:4840/"}, "endpoint"),
    ({"endpoint": "opc.tcp://user:pw@h:4840/"}, "endpoint"),
    ({"endpoint": "opc.tcp://h:port/"}, "endpoint"),
    ({"security_policy": "Basic512"}, "security_policy"),
    ({"security_mode": "Encrypt"}, "security_mode"),
    ({"security_policy": "None", "security_mode": "Sign"}, "security_mode"),
    ({"security_policy": "Basic256Sha256", "security_mode": "None", "certificate": "c", "private_key": "k"},
     "security_mode"),
    ({"security_policy": "Basic256Sha256", "private_key": "k"}, "certificate"),
    ({"password": "x"}, "username"),
    ({"use_subscription": "often"}, "use_subscription"),
    ({"publishing_interval_ms": 0}, "publishing_interval_ms"),
    ({"max_nodes_per_read": 0}, "max_nodes_per_read"),
])
def test_validate_config_names_the_field(config, field):
    with pytest.raises(ConfigError) as err:
        OpcUaDriver.validate_config(config)
    assert err.value.field == field
    assert "pw" not in str(err.value) or field != "endpoint"


@pytest.mark.parametrize("address, data_type, key, dtype, length", [
    ("ns=2;s=LINE-011.ProductionCount", "Int32", "ns=2;s=LINE-011.ProductionCount", "Int32", None),
    ("ns=2;i=1001", "DINT", "ns=2;i=1001", "Int32", None),
    ("nsu=urn:oee:plant;s=LINE-011.Running", "BOOL", "nsu=urn:oee:plant;s=LINE-011.Running", "Boolean", None),
    ("i=2258", "DateTime", "i=2258", "DateTime", None),
    ("ns=0;i=2258", "datetime", "i=2258", "DateTime", None),
    (" ns=3;s=\"DB1\".\"a;b\" ", "REAL", "ns=3;s=\"DB1\".\"a;b\"", "Float", None),
    ("ns=2;g=72962b91-fa75-4ae6-8d28-b404dc7daf63", "Variant", "ns=2;g=72962b91-fa75-4ae6-8d28-b404dc7daf63",
     "Variant", None),
    ("ns=2;b=AQID", "LREAL", "ns=2;b=AQID", "Double", None),
    ("ns=2;s=X.StationTemps", "Double[8]", "ns=2;s=X.StationTemps", "Double", 8),
    ("ns=2;s=X.Any", "FLOAT64[]", "ns=2;s=X.Any", "Double", 0),
])
def test_parse_address_good_forms(address, data_type, key, dtype, length):
    addr = OpcUaDriver.parse_address(address, data_type)
    assert (addr.key, addr.data_type, addr.array_length) == (key, dtype, length)


@pytest.mark.parametrize("address, data_type, field, words", [
    ("", "Int32", "address", "empty"),
    ("LINE-011.ProductionCount", "Int32", "address", "browse name"),
    ("ns=2", "Int32", "address", "identifier"),
    ("ns=abc;s=X", "Int32", "address", "namespace index"),
    ("ns=70000;s=X", "Int32", "address", "namespace index"),
    ("ns=2;x=5", "Int32", "address", "unknown identifier type"),
    ("ns=2;i=abc", "Int32", "address", "numeric identifier"),
    ("ns=2;s=", "Int32", "address", "empty"),
    ("ns=2;g=not-a-guid", "Int32", "address", "GUID"),
    ("ns=2;b=***", "Int32", "address", "base64"),
    ("nsu=;s=X", "Int32", "address", "namespace URI"),
    ("ns=2;nsu=urn:x;s=X", "Int32", "address", "once"),
    ("srv=1;ns=2;s=X", "Int32", "address", "srv="),
    ("ns=2;s=X", "Int33", "data_type", "Int32"),
    ("ns=2;s=X", "Variant[3]", "data_type", "element type"),
])
def test_parse_address_bad_forms_name_the_expected_form(address, data_type, field, words):
    with pytest.raises(ConfigError) as err:
        OpcUaDriver.parse_address(address, data_type)
    assert err.value.field == field
    assert words in err.value.message
    if field == "address":
        assert "ns=2;s=LINE-011.ProductionCount" in err.value.message and "nsu=" in err.value.message


# --- plan --------------------------------------------------------------------------------------------------------


def test_plan_dedupes_nodes_and_chunks():
    d = make(1, max_nodes_per_read=500)
    plan = d.plan(tags(("ns=2;s=A", "Int32"), ("ns=2;s=A", "Double"), ("ns=2;i=5", "Int32"),
                       ("nsu=urn:oee:plant;s=A", "Int32")))
    assert isinstance(plan, OpcUaPlan) and not plan.use_subscription
    assert [n.key for n in plan.nodes] == ["ns=2;s=A", "ns=2;i=5", "nsu=urn:oee:plant;s=A"]
    assert plan.nodes[0].tags == [(1, "Int32", None), (2, "Double", None)]
    assert plan.chunks == [[0, 1, 2]]
    big = d.plan([TagSpec(i, f"ns=2;i={i}", "Int32") for i in range(1200)])
    assert [len(c) for c in big.chunks] == [500, 500, 200]
    assert sorted(i for c in big.chunks for i in c) == list(range(1200))
    sub = make(1, use_subscription=True, publishing_interval_ms=250).plan(tags(("ns=2;s=A", "Int32")))
    assert sub.use_subscription and sub.publishing_interval_ms == 250
    with pytest.raises(ConfigError) as err:
        d.plan(tags(("ns=2;s=A", "Int32"), ("A", "Int32")))
    assert err.value.field == "tags[1].address" and "t2" in err.value.message


# --- reading -----------------------------------------------------------------------------------------------------


def test_read_every_data_type(driver):
    spec = [(node(name), dt) for name, _v, _vt, dt, _e in VARIABLES]
    spec += [("ns=2;i=1001", "Int32"), ("nsu=urn:oee:plant;s=LINE-011.ProductionCount", "DINT"),
             (node("ProductionCount"), "Double"), (node("Running"), "Variant"), ("i=2258", "DateTime"),
             (node("ProductionCount"), "String")]
    plan = driver.plan(tags(*spec))
    got = driver.read(plan)
    assert all(r.quality == GOOD for r in got.values()), {k: r for k, r in got.items() if r.quality != GOOD}
    for i, (name, _v, _vt, _dt, expected) in enumerate(VARIABLES, start=1):
        assert got[i].value == expected, name
    n = len(VARIABLES)
    assert got[n + 1].value == 77 and got[n + 2].value == 1500
    assert got[n + 3].value == 1500.0 and isinstance(got[n + 3].value, float)
    assert got[n + 4].value is True
    assert abs(got[n + 5].value - time.time()) < 60
    assert got[n + 6].value == "1500"


def test_missing_node_bad_status_and_wrong_type_are_bad_tags(driver):
    plan = driver.plan(tags(
        (node("ProductionCount"), "Int32"),       # 1 good
        ("ns=2;s=LINE-011.DoesNotExist", "Int32"),  # 2 no such node
        (node("Sensor"), "Double"),               # 3 bad status from the server
        (node("Stale"), "Double"),                # 4 uncertain status
        (node("OrderText"), "Int32"),             # 5 a string where a number is expected
        (node("Total"), "Int16"),                 # 6 4e9 does not fit Int16
        (node("Ratio"), "Int32"),                 # 7 2.5 is not a whole number
        (node("StationTemps"), "Double"),         # 8 an array for a scalar
        (node("StationTemps"), "Double[4]"),      # 9 the wrong array length
        ("nsu=urn:not:there;s=X", "Int32"),       # 10 a namespace the server does not have
        (node("CycleTime"), "Double"),            # 11 good
    ))
    got = driver.read(plan)
    assert (got[1].quality, got[1].value) == (GOOD, 1500) and (got[11].quality, got[11].value) == (GOOD, 1.25)
    assert got[2].quality == BAD and got[2].value is None and got[2].reason == f"{INVALID_ADDRESS}: BadNodeIdUnknown"
    assert got[3].quality == BAD and got[3].reason == f"{DEVICE_ERROR}: BadSensorFailure"
    assert (got[4].quality, got[4].value, got[4].reason) == (UNCERTAIN, 9.5, "UncertainLastUsableValue")
    for i in (5, 6, 7, 8, 9):
        assert got[i].quality == BAD and got[i].value is None and got[i].reason.startswith(INVALID_ADDRESS), got[i]
    assert "String" in got[5].reason and "Int32" in got[5].reason
    assert "does not fit Int16" in got[6].reason and "whole number" in got[7].reason
    assert "8 elements" in got[9].reason
    assert got[10].quality == BAD and "urn:not:there" in got[10].reason


def test_small_chunks_read_the_same(sim):
    d = make(sim.port, max_nodes_per_read=3)
    try:
        d.connect()
        plan = d.plan([TagSpec(i, f"ns=2;s=Bench.V{i:03d}", "Double") for i in range(10)]
                      + [TagSpec(100, "ns=2;s=nope", "Double")])
        assert [len(c) for c in plan.chunks] == [3, 3, 3, 2]
        got = d.read(plan)
        assert [got[i].value for i in range(10)] == [float(i) for i in range(10)]
        assert all(got[i].quality == GOOD for i in range(10))
        assert got[100].quality == BAD and got[100].reason == f"{INVALID_ADDRESS}: BadNodeIdUnknown"
    finally:
        d.close()


def test_values_follow_the_server(sim, driver):
    plan = driver.plan(tags((node("Ratio"), "Double")))
    sim.write("Ratio", 7.75, ua.VariantType.Double)
    assert driver.read(plan)[1].value == 7.75
    sim.write("Ratio", 2.5, ua.VariantType.Double)
    assert driver.read(plan)[1].value == 2.5


def test_endpoint_wins_over_host_and_port(sim):
    d = make(sim.port, host="10.255.255.1", endpoint=f"opc.tcp://127.0.0.1:{sim.port}/oee/")
    d.settings = ConnectionSettings("OPCUA", "10.255.255.1", 1, d.settings.config, 2.0)
    try:
        d.connect()
        assert d.read(d.plan(tags((node("ProductionCount"), "Int32"))))[1].value == 1500
    finally:
        d.close()
    no_endpoint = driver_class("OPCUA")(ConnectionSettings("OPCUA", "127.0.0.1", sim.port, {}, 2.0))
    assert no_endpoint.url == f"opc.tcp://127.0.0.1:{sim.port}/"


def test_read_without_connect_raises(sim):
    d = make(sim.port)
    with pytest.raises(DriverError) as err:
        d.read(d.plan(tags((node("Running"), "Boolean"))))
    assert err.value.kind == CANNOT_CONNECT


# --- subscription mode -------------------------------------------------------------------------------------------


def wait_for(fn, timeout: float = 5.0, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


def test_subscription_keeps_the_latest_values(sim):
    d = make(sim.port, use_subscription=True, publishing_interval_ms=500)
    plan = d.plan(tags((node("Ratio"), "Double"), (node("ProductName"), "String"), ("ns=2;s=nope", "Double"),
                       (node("OrderText"), "Int32"), (node("Sensor"), "Double")))
    try:
        d.connect()
        sim.hold_notifications = True
        first = d.read(plan)
        assert (first[1].quality, first[1].value, first[1].reason) == (UNCERTAIN, None, NO_UPDATE_YET)
        assert (first[2].quality, first[2].reason) == (UNCERTAIN, NO_UPDATE_YET)
        assert first[3].quality == BAD and first[3].reason == f"{INVALID_ADDRESS}: BadNodeIdUnknown"
        time.sleep(0.6)
        assert d.read(plan)[1].reason == NO_UPDATE_YET  # still nothing delivered: still uncertain
        sim.release_notifications()
        got = wait_for(lambda: (r := d.read(plan))[1].quality == GOOD and r)
        assert got and got[1].value == 2.5 and got[2].value == "Cola 12x0.5L"
        assert got[4].quality == BAD and got[4].reason.startswith(INVALID_ADDRESS)
        assert got[5].quality == BAD and got[5].reason == f"{DEVICE_ERROR}: BadSensorFailure"
        started = time.perf_counter()
        for _ in range(100):
            d.read(plan)
        assert (time.perf_counter() - started) / 100 < 0.005  # answered from memory, no round trip
        sim.write("Ratio", 9.25, ua.VariantType.Double)
        assert wait_for(lambda: d.read(plan)[1].value == 9.25)
    finally:
        sim.hold_notifications = False
        sim.write("Ratio", 2.5, ua.VariantType.Double)
        d.close()


# --- diagnostics -------------------------------------------------------------------------------------------------


def test_test_connection_success(sim):
    result = make(sim.port).test_connection()
    assert result.ok and result.error is None, result.as_dict()
    assert [s.name for s in result.steps] == ["tcp", "handshake", "identity", "probe_read"]
    assert all(s.ok and s.duration_ms > 0 for s in result.steps)
    ident = result.identity
    assert ident["product_name"] == "ACME OPC Test Server" and ident["software_version"] == "4.2.1"
    assert ident["manufacturer"] == "ACME Automation" and ident["server_state"] == "Running"
    assert ident["namespaces"][0] == "http://opcfoundation.org/UA/" and NS_URI in ident["namespaces"]
    assert "anonymous" in result.steps[1].detail and "CurrentTime" in result.steps[3].detail
    json.dumps(result.as_dict())  # what the wizard and the API send
    probe = make(sim.port).test_connection(probe_address="nsu=urn:oee:plant;s=LINE-011.ProductName")
    assert probe.ok and "Cola 12x0.5L" in probe.steps[-1].detail
    missing = make(sim.port).test_connection(probe_address="ns=2;s=nope")
    assert not missing.ok and missing.error == INVALID_ADDRESS and "BadNodeIdUnknown" in missing.steps[-1].detail


def test_test_connection_closed_port():
    port = free_port()
    result = make(port).test_connection()
    assert not result.ok and result.error == CANNOT_CONNECT
    assert [s.name for s in result.steps] == ["tcp"] and "Nothing listens" in result.steps[0].suggestion
    with pytest.raises(DriverError) as err:
        make(port).connect()
    assert err.value.kind == CANNOT_CONNECT


def test_wrong_security_policy(sim, certs):
    _folder, (cert, key) = certs
    d = make(sim.port, security_policy="Aes128_Sha256_RsaOaep", certificate=cert, private_key=key)
    result = d.test_connection()
    assert not result.ok and result.error == AUTH_FAILED
    step = result.steps[-1]
    assert step.name == "handshake"
    assert "the server does not offer policy Aes128_Sha256_RsaOaep with mode SignAndEncrypt; it offers: None, " \
           "Basic256Sha256 (SignAndEncrypt)" == step.detail
    assert "it offers: None, Basic256Sha256 (SignAndEncrypt)" in step.suggestion
    with pytest.raises(DriverError) as err:
        d.connect()
    assert err.value.kind == AUTH_FAILED and "does not offer policy" in err.value.message
    sign_only = make(sim.port, security_policy="Basic256Sha256", security_mode="Sign", certificate=cert,
                     private_key=key).test_connection()
    assert sign_only.error == AUTH_FAILED and "Basic256Sha256 with mode Sign;" in sign_only.steps[-1].detail


def test_bad_password_is_refused_and_never_shown(sim, caplog):
    d = make(sim.port, username="operator", password=WRONG_PASSWORD)
    with caplog.at_level(logging.DEBUG):
        result = d.test_connection()
        with pytest.raises(DriverError) as err:
            d.connect()
    assert not result.ok and result.error == AUTH_FAILED
    step = result.steps[-1]
    assert step.name == "handshake" and "the server refused the user name or password" in step.detail
    assert err.value.kind == AUTH_FAILED and "refused the user name or password" in err.value.message
    assert "operator" in step.suggestion
    assert "'password': '***'" in repr(d.settings)
    shown = [json.dumps(result.as_dict()), str(err.value), repr(err.value.as_dict()), repr(d), str(d), repr(d.settings),
             caplog.text, *[r.getMessage() for r in caplog.records]]
    assert "ActivateSessionRequest(<redacted>)" in caplog.text  # asyncua's DEBUG dump, redacted
    for text in shown:
        assert WRONG_PASSWORD not in text


def test_password_and_encrypted_channel(sim, certs, caplog):
    _folder, (cert, key) = certs
    d = make(sim.port, username="operator", password=PASSWORD, security_policy="Basic256Sha256",
             certificate=cert, private_key=key)
    with caplog.at_level(logging.DEBUG):
        result = d.test_connection()
        assert result.ok, result.as_dict()
        assert "Basic256Sha256, SignAndEncrypt" in result.steps[1].detail and "'operator'" in result.steps[1].detail
        try:
            d.connect()
            assert d.read(d.plan(tags((node("ProductionCount"), "Int32"))))[1].value == 1500
        finally:
            d.close()
        plain = make(sim.port, username="operator", password=PASSWORD)  # policy None: the password token is
        plain.connect()                                                 # encrypted with the server's certificate
        plain.close()
    for text in (caplog.text, json.dumps(result.as_dict()), repr(d)):
        assert PASSWORD not in text


def test_missing_client_certificate_file(sim, certs):
    d = make(sim.port, security_policy="Basic256Sha256", certificate="nope.der", private_key="nope.pem")
    result = d.test_connection()
    assert not result.ok and result.error == AUTH_FAILED and "nope.der" in result.steps[-1].detail


@pytest.mark.parametrize("name", ["/etc/passwd", "../../../../../etc/passwd", "/nonexistent.pem", "..", ".",
                                  "sub/../../x.pem", "link-out", "a\x00b"])
def test_certificate_names_outside_the_folder_are_refused_alike(certs, name):
    """[harden] 8: 'not found' for one path and acceptance for another told which files exist on the server.
    Only names in the certificate folder are taken, and every refusal reads the same."""
    folder, _ = certs
    link = folder / "link-out"
    if not link.exists():
        link.symlink_to("/etc/hostname")
    with pytest.raises(ConfigError) as err:
        OpcUaDriver.validate_config({"security_policy": "Basic256Sha256", "certificate": name,
                                     "private_key": "client-key.pem"})
    assert err.value.field == "certificate"
    assert str(err.value) == (f"certificate: give the name of a file in the certificate folder {folder} (PEM or DER; "
                              "put the file there first)")


def test_a_certificate_that_cannot_be_loaded_reads_the_same_missing_or_not(sim, certs):
    folder, _ = certs
    (folder / "garbage.der").write_bytes(b"not a certificate")
    details = []
    for name in ("missing.der", "garbage.der"):
        result = make(sim.port, security_policy="Basic256Sha256", certificate=name,
                      private_key="client-key.pem").test_connection()
        assert not result.ok and result.error == AUTH_FAILED
        details.append((result.steps[-1].detail.replace(name, "<name>"),
                        result.steps[-1].suggestion.replace(name, "<name>")))
    assert details[0] == details[1] and f"from the certificate folder {folder}" in details[0][0]


# --- discovery ---------------------------------------------------------------------------------------------------


def flatten(tree, path=()):
    for t in tree:
        yield path + (t.name,), t
        yield from flatten(t.children, path + (t.name,))


def test_discover_browses_the_tree(driver):
    tree = driver.discover()
    names = [t.name for t in tree]
    assert "Plant" in names and "Bench" in names and "Server" not in names
    found = dict(flatten(tree))
    line = found[("Plant", "LINE-011")]
    assert line.address == "ns=2;s=LINE-011" and line.data_type == ""
    count = found[("Plant", "LINE-011", "ProductionCount")]
    assert (count.address, count.data_type, count.writable, count.value) == (node("ProductionCount"), "Int32",
                                                                              True, 1500)
    assert found[("Plant", "LINE-011", "CycleTime")].writable is False
    temps = found[("Plant", "LINE-011", "StationTemps")]
    assert temps.data_type == "Double[8]" and temps.value == [20.0 + i for i in range(8)]
    assert found[("Plant", "LINE-011", "Numeric")].address == "ns=2;i=1001"
    assert found[("Plant", "LINE-011", "Station1", "Speed")].value == 42.0
    for name, _v, _vt, dt, _e in VARIABLES:
        assert found[("Plant", "LINE-011", name)].data_type == dt, name
    # every discovered address reads back with its discovered type
    leaves = [t for _p, t in flatten(tree) if t.data_type and t.address.startswith("ns=2;s=LINE-011")]
    got = driver.read(driver.plan([TagSpec(i, t.address, t.data_type) for i, t in enumerate(leaves)]))
    assert sum(r.quality == GOOD for r in got.values()) >= len(leaves) - 2  # Sensor (bad) and Stale (uncertain)


def test_discover_depth_limit_root_and_uris(sim, driver):
    shallow = dict(flatten(driver.discover(depth=2)))
    assert ("Plant", "LINE-011") in shallow and not shallow[("Plant", "LINE-011")].children
    limited = list(flatten(driver.discover(limit=5)))
    assert len(limited) == 5
    under = driver.discover(root="nsu=urn:oee:plant;s=LINE-011", depth=1, namespace_uris=True)
    by_name = {t.name: t for t in under}
    assert by_name["Running"].address == "nsu=urn:oee:plant;s=LINE-011.Running"
    assert by_name["Station1"].children == []
    own = make(sim.port).discover(root="ns=2;s=Bench", read_values=False)  # connects and closes by itself
    assert len(own) == 100 and own[0].value is None and own[0].data_type == "Double"


# --- link loss ---------------------------------------------------------------------------------------------------


def test_server_stopped_while_connected_then_back(sim):
    poll = make(sim.port, timeout_s=1.0)
    sub = make(sim.port, timeout_s=1.0, use_subscription=True, publishing_interval_ms=100)
    poll_plan = poll.plan(tags((node("ProductionCount"), "Int32")))
    sub_plan = sub.plan(tags((node("ProductionCount"), "Int32")))
    try:
        poll.connect()
        sub.connect()
        assert poll.read(poll_plan)[1].value == 1500
        assert wait_for(lambda: sub.read(sub_plan)[1].value == 1500)
        sim.stop_listening()
        with pytest.raises(DriverError) as err:
            poll.read(poll_plan)
        assert err.value.kind == CANNOT_CONNECT

        def sub_fails():
            try:
                sub.read(sub_plan)
            except DriverError as exc:
                return exc
            return None
        exc = wait_for(sub_fails, timeout=5)
        assert isinstance(exc, DriverError) and exc.kind == CANNOT_CONNECT
        poll.close()
        sub.close()
        with pytest.raises(DriverError):
            poll.connect()
        sim.start_listening()
        poll.connect()
        sub.connect()
        assert poll.read(poll_plan)[1].value == 1500
        sim.hold_notifications = True
        assert sub.read(sub_plan)[1].reason == NO_UPDATE_YET  # a new subscription on the new session
        sim.release_notifications()
        assert wait_for(lambda: sub.read(sub_plan)[1].value == 1500)
    finally:
        sim.hold_notifications = False
        poll.close()
        sub.close()
        if sim.server.bserver._server is None or not sim.server.bserver._server.is_serving():
            sim.start_listening()


def test_close_stops_the_loop_thread(sim):
    before = {t.name for t in threading.enumerate()}
    d = make(sim.port)
    d.connect()
    assert any(t.name.startswith("opcua ") for t in threading.enumerate())
    d.close()
    d.close()  # twice is fine
    time.sleep(0.05)
    assert {t.name for t in threading.enumerate() if t.name.startswith("opcua ")} <= before


# --- throughput (printed, not asserted) --------------------------------------------------------------------------


def test_measure_reads_per_second(sim, capsys):
    spec = [TagSpec(i, f"ns=2;s=Bench.V{i:03d}", "Double") for i in range(100)]
    rates = {}
    for label, config in (("poll (1 Read of 100 nodes)", {}),
                          ("subscription (latest values from memory)", {"use_subscription": True,
                                                                        "publishing_interval_ms": 100})):
        d = make(sim.port, **config)
        try:
            d.connect()
            plan = d.plan(spec)
            wait_for(lambda d=d, plan=plan: all(r.quality == GOOD for r in d.read(plan).values()))
            n, started = 0, time.perf_counter()
            while time.perf_counter() - started < 1.0:
                got = d.read(plan)
                n += 1
            rates[label] = n / (time.perf_counter() - started)
            assert len(got) == 100 and got[99].value == 99.0
        finally:
            d.close()
    with capsys.disabled():
        for label, rate in rates.items():
            print(f"\n[opcua] 100 tags, {label}: {rate:.0f} plan reads/s ({rate * 100:.0f} tag values/s)")


# --- the simulated plant (plant/) --------------------------------------------------------------------------------

PLANT_YAML = """\
site: {id: T, name: Driver test site, timezone: UTC}
shifts:
  - {name: A, start: "00:00"}
products:
  - {code: 11, name: Box, ideal_cycle_time: 2.0}
faults:
  - {code: 101, name: Jam, mtbf_min: 30, repair: {dist: exponential, mean_s: 60}}
areas:
  - name: A1
    lines:
      - name: L1
        machines:
          - {id: M-UA, name: OPC-UA machine, protocol: OPCUA}
"""


@pytest.fixture(scope="module")
def plant():
    from plant import Plant, parse_layout

    p = Plant(parse_layout(PLANT_YAML, "driver-test.yaml"), seed=5, run_clock=False,
              sim_start=datetime(2025, 3, 3, 5, 0, tzinfo=timezone.utc))
    p.start()
    yield p
    p.stop()


def test_plant_machine_reads_and_browses_as_documented(plant):
    ep = next(e for e in plant.endpoints() if e["machine_id"] == "M-UA")
    cls = driver_class("OPCUA")
    d = cls(ConnectionSettings("OPCUA", ep["host"], ep["port"], cls.validate_config(ep["protocol_config"]), 2.0))
    spec = [TagSpec(i, t["address"], t["data_type"], t["name"]) for i, t in enumerate(ep["tags"])]
    spec.append(TagSpec(len(spec), f"nsu={NS_URI};s=M-UA.ProductionCount", "Int32", "by namespace URI"))
    plan = d.plan(spec)
    try:
        d.connect()
        plant.advance(900)
        snap = plant.snapshot("M-UA")
        got = d.read(plan)
        for tag in spec:
            reading = got[tag.tag_id]
            assert reading.quality == GOOD, (tag.name, reading)
            name = tag.address.rsplit(".", 1)[-1]
            if tag.data_type.startswith("Double"):
                assert reading.value == pytest.approx(snap[name], rel=1e-6, abs=1e-4), name
            else:
                assert reading.value == snap[name], name
        tree = d.discover(root=ep["protocol_config"]["object"], depth=1)
        by_name = {t.name: t for t in tree}
        assert {t["name"] for t in ep["tags"]} <= set(by_name)
        assert all(by_name[t["name"]].data_type == t["data_type"] for t in ep["tags"])
        assert by_name["ProductionCount"].address == "ns=2;s=M-UA.ProductionCount"
    finally:
        d.close()
    result = d.test_connection()
    assert result.ok and NS_URI in result.identity["namespaces"], result.as_dict()


def test_fill_fast_path_equals_convert_value():
    """_fill takes a short way for a good float or in-range int (the bulk of a plant's values); every reading must be
    what convert_value and the status code's methods give, for every scalar type, arrays, statuses and odd values."""
    from asyncua import ua

    from collectors.drivers.opcua import OpcUaDriver, PlanNode
    from collectors.drivers.opcua_nodes import TYPES, ValueMismatch, convert_value, status_reason

    def reference(dv, tags):
        sc = dv.StatusCode or ua.StatusCode()
        if sc.is_bad():
            return {t: (None, BAD, status_reason(sc)) for t, _d, _n in tags}
        quality, reason = (UNCERTAIN, sc.name) if sc.is_uncertain() else (GOOD, None)
        raw = dv.Value.Value if dv.Value is not None else None
        out = {}
        for tag_id, dtype, n in tags:
            try:
                out[tag_id] = (convert_value(raw, dtype, n), quality, reason)
            except ValueMismatch as exc:
                out[tag_id] = (None, BAD, f"invalid_address: k: {exc}")
        return out

    raws = [0, 1, -1, 127, 128, 255, 256, -129, 2**31 - 1, 2**31, -2**31 - 1, 2**63, 1.5, -0.0, 3.0, float("nan"),
            float("inf"), -float("inf"), 1e300, True, False, "7", None, [1, 2], [1.5, 2.5]]
    dtypes = sorted(TYPES)
    codes = [None, 0, 0x40000000 | 0x00920000, 0x80340000, 0x80000000, 0xC0000000]
    driver = OpcUaDriver.__new__(OpcUaDriver)
    checked = 0
    for raw in raws:
        for code in codes:
            dv = ua.DataValue(Value=ua.Variant(raw) if raw is not None else None)
            dv.StatusCode = None if code is None else ua.StatusCode(code)
            tags = [(k + 1, dtype, n) for k, (dtype, n) in enumerate((d, n) for d in dtypes for n in (None, 2))]
            addr = type("A", (), {"key": "k"})()
            out: dict = {}
            driver._fill(out, PlanNode(addr, tags), dv)
            want = reference(dv, tags)
            plain: dict = {}
            if raw.__class__ in (int, float, bool):  # what opcua_read gives for a plain number: (code, value)
                driver._fill(plain, PlanNode(addr, tags), (code, raw))
            for tag_id, (value, quality, reason) in want.items():
                for got in (out[tag_id], plain.get(tag_id, out[tag_id])):
                    assert (got.quality, got.reason) == (quality, reason), (raw, code, tags[tag_id - 1])
                    assert got.value == value or (got.value != got.value and value != value), (raw, code,
                                                                                               tags[tag_id - 1])
                    assert type(got.value) is type(value)
                    checked += 1
    assert checked > 2000


def test_plain_numbers_decoded_by_struct_read_as_asyncua_decodes_them(sim, driver):
    """opcua_read reads a scalar number's DataValue with struct and leaves every other DataValue (strings, date
    times, arrays, bad statuses, picoseconds) to asyncua: each reading equals the one built from asyncua's own
    read_attributes(), and the short way is taken for the numbers."""
    from collectors.drivers.opcua_read import KeptRead

    async def precise():  # a value with source picoseconds: asyncua's own decoder reads it
        var = await sim.server.nodes.objects.add_variable(ua.NodeId("LINE-011.Precise", 2), "2:Precise", 0.5,
                                                           ua.VariantType.Double)
        await var.write_value(ua.DataValue(ua.Variant(0.5, ua.VariantType.Double), SourcePicoseconds=7,
                                           SourceTimestamp=LAST_CHANGE))
    if "Precise" not in sim.nodes:
        sim.call(precise())
        sim.nodes["Precise"] = True
    spec = [(node(name), dt) for name, _v, _vt, dt, _e in VARIABLES]
    spec += [(node("Sensor"), "Double"), (node("Stale"), "Double"), (node("Precise"), "Double"),
             (node("DoesNotExist"), "Int32"), (node("Total"), "Int16"), (node("Ratio"), "Int32")]
    plan = driver.plan(tags(*spec))
    got = driver.read(plan)
    res = driver._resolve(plan)
    ids = [res.node_ids[i] for i in range(len(plan.nodes))]

    async def both():
        reference = await driver._client.uaclient.read_attributes(ids, ua.AttributeIds.Value)
        return reference, await KeptRead(ids).send(driver._client.uaclient)
    reference, kept = driver._loop.run(both(), 10)
    want: dict = {}
    for i, plan_node in enumerate(plan.nodes):
        driver._fill(want, plan_node, reference[i])
    assert got.keys() == want.keys()
    for k in got:
        assert (got[k].quality, got[k].reason, type(got[k].value)) == (want[k].quality, want[k].reason,
                                                                         type(want[k].value)), k
        assert got[k].value == want[k].value or (got[k].value != got[k].value and want[k].value != want[k].value)
    short = {plan.nodes[i].address.key for i, r in enumerate(kept) if r.__class__ is tuple}
    numbers = {node(name) for name, value, *_r in VARIABLES if value.__class__ in (int, float, bool)}
    assert short == numbers | {node("Stale")}  # Stale: an uncertain status with its value; Sensor's bad has none
