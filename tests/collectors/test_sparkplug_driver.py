"""The SPARKPLUG_B driver against a real Mosquitto and an edge node that is not the app's own
(tests/support/sparkplug_edge.py): connection test, discovery, values as they are published, seq gaps, deaths,
credentials, payloads that are not Sparkplug, a metric whose type changes."""
from __future__ import annotations

import threading
import time

import pytest

from collectors.base import AUTH_FAILED, BAD, CANNOT_CONNECT, GOOD, ConfigError, ConnectionSettings, DriverError, \
    TagSpec
from collectors.drivers.sparkplug import SparkplugDriver
from sparkplug.payload import DataType, Metric
from tests.support.mosquitto import Mosquitto
from tests.support.sparkplug_edge import EdgeNode
from tests.support.waiting import wait_for

GROUP, EDGE, DEVICE = "Plant7", "press-gw", "press1"
NODE_METRICS = {"Uptime": (DataType.INT64, 100), "Firmware": (DataType.STRING, "4.2")}
DEVICE_METRICS = {"Counts/Good": (DataType.UINT32, 10), "Counts/Reject": (DataType.UINT32, 1),
                  "Status/Code": (DataType.INT16, 1), "Status/Running": (DataType.BOOLEAN, True),
                  "Speed": (DataType.FLOAT, 12.5)}


def _driver(host, port, **config) -> SparkplugDriver:
    cfg = {"group_id": GROUP, "edge_node_id": EDGE, "device_id": DEVICE, **config}
    return SparkplugDriver(ConnectionSettings("SPARKPLUG_B", host, port, cfg, timeout_s=3.0))


def _edge(host, port, **kw) -> EdgeNode:
    return EdgeNode(host, port, GROUP, EDGE, node=NODE_METRICS, devices={DEVICE: DEVICE_METRICS}, **kw)


TAGS = [TagSpec(1, "Counts/Good", "UINT32", "good"), TagSpec(2, "Status/Code", "INT16", "state"),
        TagSpec(3, "Speed", "REAL", "speed"), TagSpec(4, "Uptime", "LINT", "uptime"),
        TagSpec(5, "Status/Running", "BOOL", "running")]


class Collected:
    """What a collector would see: every read() after each push, in order."""

    def __init__(self, driver):
        self.driver = driver
        self.readings: list[dict] = []
        self.errors: list[DriverError] = []
        self.lock = threading.Lock()
        driver.set_listener(self.pull)

    def pull(self):
        with self.lock:
            try:
                got = self.driver.read(None)
            except DriverError as exc:
                self.errors.append(exc)
                return
            if got:
                self.readings.append(got)

    def latest(self, tag_id):
        with self.lock:
            for batch in reversed(self.readings):
                if tag_id in batch:
                    return batch[tag_id]
        return None


@pytest.fixture
def broker():
    with Mosquitto() as b:
        yield b


def test_connection_test_walks_the_steps_and_sees_the_births(broker):
    with _edge(broker.host, broker.port) as edge:
        result = _driver(broker.host, broker.port).test_connection(probe_address="Counts/Good")
        assert result.ok, result.as_dict()
        assert [s.name for s in result.steps] == ["tcp", "handshake", "subscribe", "birth", "probe_read"]
        assert result.identity["device_metrics"] == len(DEVICE_METRICS)
        assert "Counts/Good = 10 (UINT32)" in result.steps[-1].detail
        assert edge.rebirth_requests >= 1  # the BIRTH is not retained: the driver asked for one


def test_discover_lists_birth_metrics_after_asking_for_a_rebirth(broker):
    with _edge(broker.host, broker.port) as edge:
        found = {t.address: t for t in _driver(broker.host, broker.port).discover()}
        assert edge.rebirth_requests >= 1
    assert set(found) == set(DEVICE_METRICS) | set(NODE_METRICS)  # bdSeq and Node Control/* left out
    assert found["Counts/Good"].data_type == "UINT32" and found["Counts/Good"].value == 10
    assert found["Speed"].data_type == "FLOAT" and found["Speed"].value == 12.5
    assert found["Status/Running"].data_type == "BOOLEAN" and found["Uptime"].data_type == "INT64"
    assert "device press1" in found["Speed"].description and "NBIRTH" in found["Uptime"].description


def test_discover_without_an_edge_node_times_out_naming_it(broker):
    with pytest.raises(DriverError) as err:
        _driver(broker.host, broker.port, edge_node_id="nobody").discover(wait_s=1)
    assert err.value.kind == "timeout" and "Plant7/nobody" in err.value.message


@pytest.mark.parametrize("aliases", [False, True])
def test_values_arrive_as_published_without_polling(broker, aliases):
    with _edge(broker.host, broker.port, aliases=aliases) as edge:
        driver = _driver(broker.host, broker.port)
        driver.plan(TAGS)
        seen = Collected(driver)
        driver.connect()
        try:
            wait_for(lambda: seen.latest(1), timeout=5)
            assert seen.latest(1).value == 10 and seen.latest(3).value == 12.5 and seen.latest(4).value == 100
            assert seen.latest(5).value is True
            started = time.monotonic()
            edge.data(DEVICE, {"Counts/Good": 11, "Status/Code": 4})
            wait_for(lambda: seen.latest(1).value == 11, timeout=5, interval=0.005)
            assert time.monotonic() - started < 1.0  # pushed to the listener, not waiting for a poll
            assert seen.latest(2).value == 4
            edge.data(None, {"Uptime": 101})
            wait_for(lambda: seen.latest(4).value == 101, timeout=5)
            for i in range(12, 50):
                edge.data(DEVICE, {"Counts/Good": i})
            wait_for(lambda: seen.latest(1).value == 49, timeout=5)
            goods = [b[1].value for b in seen.readings if 1 in b]
            assert goods[-38:] == list(range(12, 50))  # every value, in order: nothing coalesced
            assert driver.seq_gaps == 0 and not seen.errors
        finally:
            driver.close()


def test_a_seq_gap_asks_for_a_rebirth(broker):
    with _edge(broker.host, broker.port) as edge:
        driver = _driver(broker.host, broker.port)
        driver.plan(TAGS)
        seen = Collected(driver)
        driver.connect()
        try:
            wait_for(lambda: seen.latest(1), timeout=5)
            wait_for(lambda: edge.rebirth_requests >= 1)
            before = edge.rebirth_requests
            driver._last_rebirth = 0.0  # the rate limit is not what this test is about
            edge.skip_seq(3)
            edge.data(DEVICE, {"Counts/Good": 20})
            wait_for(lambda: edge.rebirth_requests > before, timeout=5)
            assert driver.seq_gaps == 1
            wait_for(lambda: seen.latest(1).value == 20, timeout=5)  # the value itself is still taken
            # the seq wraps at 255 without a gap
            for i in range(300):
                edge.data(DEVICE, {"Speed": float(i)})
            wait_for(lambda: seen.latest(3) and seen.latest(3).value == 299.0, timeout=10)
            assert driver.seq_gaps == 1
        finally:
            driver.close()


def test_ndeath_makes_the_tags_bad_and_a_birth_brings_them_back(broker):
    with _edge(broker.host, broker.port) as edge:
        driver = _driver(broker.host, broker.port)
        driver.plan(TAGS)
        seen = Collected(driver)
        driver.connect()
        try:
            wait_for(lambda: seen.latest(1), timeout=5)
            edge.node_death(bd_seq=edge.bd_seq + 5)  # a stale will (another session's bdSeq) changes nothing
            time.sleep(0.3)
            assert driver.read(None) == {}
            edge.node_death()
            wait_for(lambda: seen.errors, timeout=5)
            err = seen.errors[-1]
            assert err.kind == CANNOT_CONNECT and err.link_up and "NDEATH" in err.message and EDGE in err.message
            with pytest.raises(DriverError, match="NDEATH"):
                driver.read(None)
            edge.birth()
            wait_for(lambda: len(seen.readings) >= 2 and 1 in seen.readings[-1], timeout=5)
            assert driver.read(None) == {}
            edge.device_death(DEVICE)
            wait_for(lambda: "DDEATH" in seen.errors[-1].message, timeout=5)
        finally:
            driver.close()


def test_a_metric_not_in_the_birth_and_one_whose_type_changes_are_bad(broker):
    with _edge(broker.host, broker.port) as edge:
        driver = _driver(broker.host, broker.port)
        driver.plan(TAGS + [TagSpec(6, "No/Such", "INT32", "ghost"), TagSpec(7, "Firmware", "INT32", "fw")])
        seen = Collected(driver)
        driver.connect()
        try:
            wait_for(lambda: seen.latest(6), timeout=5)
            assert seen.latest(6).quality == BAD and "invalid_address" in seen.latest(6).reason
            assert "No/Such" in seen.latest(6).reason
            assert seen.latest(7).quality == BAD and "STRING" in seen.latest(7).reason  # birth type vs the tag's
            edge.data(DEVICE, {"Counts/Good": Metric("Counts/Good", DataType.STRING, "eleven")})
            wait_for(lambda: seen.latest(1).quality == BAD, timeout=5)
            assert "changed type from UINT32 to STRING" in seen.latest(1).reason
            edge.data(DEVICE, {"Counts/Good": 12})
            wait_for(lambda: seen.latest(1).quality == GOOD and seen.latest(1).value == 12, timeout=5)
        finally:
            driver.close()


def test_a_payload_that_is_not_sparkplug_asks_for_a_rebirth_and_the_node_keeps_going(broker):
    with _edge(broker.host, broker.port) as edge:
        driver = _driver(broker.host, broker.port)
        driver.plan(TAGS)
        seen = Collected(driver)
        driver.connect()
        try:
            wait_for(lambda: seen.latest(1), timeout=5)
            before = edge.rebirth_requests
            driver._last_rebirth = 0.0  # the rate limit is not what this test is about
            edge.publish_raw(f"spBv1.0/{GROUP}/DDATA/{EDGE}/{DEVICE}", b"\xff\xff\xff")
            wait_for(lambda: driver.bad_payloads == 1 and edge.rebirth_requests > before, timeout=5)
            edge.data(DEVICE, {"Counts/Good": 33})
            wait_for(lambda: seen.latest(1).value == 33, timeout=5)
            assert seen.latest(1).quality == GOOD and not seen.errors
        finally:
            driver.close()


def test_discover_names_the_topic_of_a_payload_that_is_not_sparkplug(broker):
    driver = _driver(broker.host, broker.port, edge_node_id="junk", device_id=None)
    liar = EdgeNode(broker.host, broker.port, GROUP, "junk", answer_rebirth=False)
    liar_births = []
    with liar:
        def answer_with_garbage():
            liar_births.append(1)
            liar.publish_raw(f"spBv1.0/{GROUP}/NBIRTH/junk", b'{"json": "not sparkplug"}')
        liar.birth = answer_with_garbage
        liar.answer_rebirth = True
        with pytest.raises(DriverError) as err:
            driver.discover(wait_s=2)
    assert err.value.kind == "protocol_error"
    assert f"spBv1.0/{GROUP}/NBIRTH/junk" in err.value.message and "not Sparkplug B" in err.value.message


def test_wrong_credentials_and_no_broker():
    with Mosquitto(users={"edge": "s3cret"}) as broker:
        with _edge(broker.host, broker.port, username="edge", password="s3cret"):
            result = _driver(broker.host, broker.port, username="edge", password="wrong").test_connection()
            assert not result.ok and result.error == AUTH_FAILED
            assert "refused the credentials" in result.steps[-1].detail
            assert "wrong" not in str(result.as_dict())
            ok = _driver(broker.host, broker.port, username="edge", password="s3cret").test_connection()
            assert ok.ok, ok.as_dict()
        port = broker.port
    result = _driver("127.0.0.1", port).test_connection()
    assert not result.ok and result.error == CANNOT_CONNECT and result.steps[0].name == "tcp"
    with pytest.raises(DriverError) as err:
        _driver("127.0.0.1", port).connect()
    assert err.value.kind == CANNOT_CONNECT and "refused" in err.value.message


@pytest.mark.parametrize("config, field", [
    ({"group_id": None}, "group_id"), ({"edge_node_id": "a/b"}, "edge_node_id"), ({"device_id": "d+"}, "device_id"),
    ({"tls": "maybe"}, "tls"), ({"password": "x"}, "username"), ({"tls_ca_file": "../../etc/passwd"}, "tls_ca_file"),
    ({"keepalive_s": 1}, "keepalive_s"),
])
def test_bad_settings_name_the_field(config, field):
    with pytest.raises(ConfigError) as err:
        SparkplugDriver.validate_config({"group_id": GROUP, "edge_node_id": EDGE, **config})
    assert err.value.field == field


@pytest.mark.parametrize("address, data_type, field", [
    ("Counts/+", "INT32", "address"), ("Counts/#", "INT32", "address"), ("", "INT32", "address"),
    ("Counts/Good", "COMPLEX", "data_type"),
])
def test_bad_addresses_name_the_field(address, data_type, field):
    with pytest.raises(ConfigError) as err:
        SparkplugDriver.parse_address(address, data_type)
    assert err.value.field == field
