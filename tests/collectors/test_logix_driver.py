"""The ControlLogix driver against the simulated controller (plant.enip) through an unmodified pycomm3.

Real servers on 127.0.0.1, real client library, nothing mocked. The controller here has fixed values for every
data type, 110+ tags in controller and program scope, arrays, BOOL arrays and nested UDTs; one test also reads
every tag of a machine of the simulated plant.
"""
from __future__ import annotations

import dataclasses
import socket
import time

import pytest

from collectors.base import (
    BAD,
    CANNOT_CONNECT,
    GOOD,
    INVALID_ADDRESS,
    PROTOCOL_ERROR,
    UNCERTAIN,
    ConfigError,
    ConnectionSettings,
    DriverError,
    TagSpec,
    driver_class,
)
from collectors.drivers.logix import LogixDriverAdapter
from collectors.drivers.logix_plan import CONNECTION_SIZE, LogixPlan
from plant.enip import LogixServer, LogixTag, LogixUDT

MOTOR = LogixUDT("Motor", [("Amps", "REAL"), ("Hours", "DINT")])
STATION = LogixUDT("Station", [("Running", "BOOL"), ("Faulted", "BOOL"), ("Count", "DINT"), ("Rate", "REAL"),
                               ("Temps", "REAL", 3), ("Name", "STRING"), ("Drive", MOTOR)])
FILLERS = 90  # Aux000..Aux089: enough tags for a discovery of more than 100


def station(i: int) -> dict:
    return {"Running": i % 2 == 0, "Faulted": i == 3, "Count": 100 + i, "Rate": 1.5 * i,
            "Temps": [20.0 + i, 21.0 + i, 22.0 + i], "Name": f"ST{i}", "Drive": {"Amps": 3.25 + i, "Hours": 1000 + i}}


def controller_tags() -> dict[str, LogixTag]:
    tags = {
        "ProductionCount": LogixTag("DINT", 123456),
        "Running": LogixTag("BOOL", True),
        "Mode": LogixTag("SINT", -5),
        "Recipe": LogixTag("INT", -1234),
        "LifetimeCount": LogixTag("LINT", 2**40 + 7),
        "Rate": LogixTag("REAL", 12.5),
        "Energy": LogixTag("LREAL", 3.141592653589793),
        "OrderId": LogixTag("STRING", "ORD-4711"),
        "BatchSize": LogixTag("UDINT", 4_000_000_000),
        "StatusWord": LogixTag("DINT", 0b1000),
        "StationTemps": LogixTag("REAL", [20.0 + i for i in range(8)]),
        "FaultHistory": LogixTag("DINT", [900 + i for i in range(10)]),
        "Alarms": LogixTag("BOOL", [i in (3, 40) for i in range(64)]),
        "Station": LogixTag(STATION, [station(i) for i in range(4)]),
        "Secret": LogixTag("DINT", 7, read_only=True),
        "Program:MainProgram.StepNo": LogixTag("INT", 7),
        "Program:MainProgram.Batch": LogixTag("STRING", "B-17"),
        "Program:Packer.Speed": LogixTag("REAL", 42.0),
        "Program:Packer.Counts": LogixTag("DINT", [1, 2, 3]),
    }
    tags.update({f"Aux{i:03d}": LogixTag("DINT", i) for i in range(FILLERS)})
    return tags


@pytest.fixture(scope="module")
def logix_server():
    srv = LogixServer(controller_tags(), host="127.0.0.1", port=0, slot=0, controller_name="LineOne").start()
    yield srv
    srv.stop()


def make_driver(port: int, timeout_s: float = 2.0, **config) -> LogixDriverAdapter:
    return LogixDriverAdapter(ConnectionSettings("ETHERNET_IP", "127.0.0.1", port, config, timeout_s))


@pytest.fixture
def logix_driver(logix_server):
    driver = make_driver(logix_server.port)
    driver.connect()
    yield driver
    driver.close()


def specs(*pairs) -> list[TagSpec]:
    return [TagSpec(i, address, data_type, address) for i, (address, data_type) in enumerate(pairs)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- configuration and addresses ----------------------------------------------------------------------------------

def test_registered_under_its_protocol():
    assert driver_class("ETHERNET_IP") is LogixDriverAdapter


def test_validate_config_fills_defaults_and_names_the_field():
    assert LogixDriverAdapter.validate_config({}) == {"slot": 0, "route": None, "plc_family": "ControlLogix",
                                                      "init_program_tags": True}
    cfg = LogixDriverAdapter.validate_config({"slot": "2", "plc_family": "compactlogix", "route": "1, 0"})
    assert (cfg["slot"], cfg["plc_family"], cfg["route"]) == (2, "CompactLogix", "1,0")
    for config, field, words in [
        ({"slot": 17}, "slot", "0 to 16"),
        ({"slot": -1}, "slot", "0 to 16"),
        ({"plc_family": "Micro800"}, "plc_family", "ControlLogix, CompactLogix"),
        ({"plc_family": "CompactLogix", "slot": 2}, "slot", "always in slot 0"),
        ({"route": "1"}, "route", "port,link pairs"),
        ({"route": "9x,0"}, "route", "port '9x'"),
        ({"route": "1,zz"}, "route", "link 'zz'"),
        ({"init_program_tags": "yes"}, "init_program_tags", "true or false"),
    ]:
        with pytest.raises(ConfigError) as err:
            LogixDriverAdapter.validate_config(config)
        assert err.value.field == field and words in err.value.message, (config, err.value)


@pytest.mark.parametrize("address, data_type, text, program, parts, bit", [
    ("ProductionCount", "DINT", "ProductionCount", None, (("ProductionCount", ()),), None),
    (" ProductionCount ", "dint", "ProductionCount", None, (("ProductionCount", ()),), None),
    ("Program:MainProgram.StepNo", "INT", "Program:MainProgram.StepNo", "MainProgram", (("StepNo", ()),), None),
    ("program:MainProgram.StepNo", "INT", "Program:MainProgram.StepNo", "MainProgram", (("StepNo", ()),), None),
    ("StationTemps[2]", "REAL", "StationTemps[2]", None, (("StationTemps", (2,)),), None),
    ("Grid[1, 2]", "DINT", "Grid[1,2]", None, (("Grid", (1, 2)),), None),
    ("Station[1].Count", "DINT", "Station[1].Count", None, (("Station", (1,)), ("Count", ())), None),
    ("Station[1].Drive.Amps", "REAL", "Station[1].Drive.Amps", None,
     (("Station", (1,)), ("Drive", ()), ("Amps", ())), None),
    ("StatusWord.3", "BOOL", "StatusWord.3", None, (("StatusWord", ()),), 3),
    ("_Private1", "STRING", "_Private1", None, (("_Private1", ()),), None),
])
def test_parse_address_good_forms(address, data_type, text, program, parts, bit):
    parsed = LogixDriverAdapter.parse_address(address, data_type)
    assert (parsed.text, parsed.program, parsed.parts, parsed.bit) == (text, program, parts, bit)
    assert parsed.data_type == data_type.upper()


@pytest.mark.parametrize("address, data_type, field, words", [
    ("Arr{5}", "DINT", "address", "use Arr[i] for element i"),
    ("StationTemps[0]{8}", "REAL", "address", "is an element count"),
    ("", "DINT", "address", "empty"),
    ("   ", "DINT", "address", "empty"),
    ("Station..Count", "DINT", "address", "empty name between dots"),
    ("Station.", "DINT", "address", "empty name between dots"),
    ("1Tag", "DINT", "address", "not a Logix name"),
    ("Tag-1", "DINT", "address", "not a Logix name"),
    ("Tag[x]", "DINT", "address", "bad array index"),
    ("Tag[-1]", "DINT", "address", "bad array index"),
    ("Tag[1,2,3,4]", "DINT", "address", "bad array index"),
    ("Tag[]", "DINT", "address", "bad array index"),
    ("Tag[1", "DINT", "address", "not a tag or member name"),
    ("Program:MainProgram", "DINT", "address", "Program:<program>.<tag>"),
    ("Program:.StepNo", "DINT", "address", "not a program name"),
    ("Local:1:I.Data", "DINT", "address", "I/O module tags"),
    ("My Tag", "DINT", "address", "contains a space"),
    ("A" * 41, "DINT", "address", "longer than 40"),
    ("StatusWord.3", "DINT", "data_type", "its data type is BOOL"),
    ("StatusWord.64", "BOOL", "address", "bit 64 is out of range"),
    ("ProductionCount", "FLOAT", "data_type", "not a Logix data type"),
    ("ProductionCount", "", "data_type", "not a Logix data type"),
])
def test_parse_address_refuses_bad_forms(address, data_type, field, words):
    with pytest.raises(ConfigError) as err:
        LogixDriverAdapter.parse_address(address, data_type)
    assert err.value.field == field
    assert words in err.value.message, err.value.message
    if field == "address" and "{" not in address:
        assert "expected a Logix tag name" in err.value.message or "Program:" in err.value.message \
            or "index" in err.value.message or "40" in err.value.message or "bit" in err.value.message


# -- plan ---------------------------------------------------------------------------------------------------------

def test_plan_chunks_fit_one_packet_and_share_duplicates():
    driver = make_driver(1)
    tags = [TagSpec(i, f"Aux{i % 250:03d}", "DINT") for i in range(300)]  # 250 distinct, 50 twice
    tags += [TagSpec(1000 + i, f"Program:MainProgram.LongRecipeName{i}", "STRING") for i in range(40)]
    plan = driver.plan(tags)
    assert isinstance(plan, LogixPlan) and plan.tag_count == 340
    assert len(plan.chunks) >= 2
    names = [n for c in plan.chunks for n in c.names]
    assert len(names) == len(set(names)) == 290
    assert all(c.estimated_bytes <= CONNECTION_SIZE for c in plan.chunks)
    assert plan.chunks[0].tag_ids["Aux000"] == [0, 250]
    assert sorted(i for c in plan.chunks for ids in c.tag_ids.values() for i in ids) == sorted(t.tag_id for t in tags)


def test_plan_names_the_bad_tag():
    driver = make_driver(1)
    with pytest.raises(ConfigError) as err:
        driver.plan(specs(("ProductionCount", "DINT"), ("Arr{5}", "DINT")))
    assert err.value.field == "tags[1].address"
    with pytest.raises(ConfigError) as err:
        driver.plan(specs(("ProductionCount", "DINT"), ("ProductionCount", "REAL")))
    assert err.value.field == "tags[1].data_type"


def test_one_chunk_is_one_multiple_service_packet(logix_server, logix_driver):
    plan = logix_driver.plan([TagSpec(i, f"Aux{i:03d}", "DINT") for i in range(FILLERS)])
    assert len(plan.chunks) == 1
    before = logix_server.stats()["services"].get(0x0A, 0)
    readings = logix_driver.read(plan)
    assert logix_server.stats()["services"].get(0x0A, 0) == before + 1
    assert all(readings[i] == type(readings[i])(i, GOOD) for i in range(FILLERS))


# -- read -----------------------------------------------------------------------------------------------------------

EVERY_TYPE = [
    ("ProductionCount", "DINT", 123456),
    ("Running", "BOOL", True),
    ("Mode", "SINT", -5),
    ("Recipe", "INT", -1234),
    ("LifetimeCount", "LINT", 2**40 + 7),
    ("Rate", "REAL", 12.5),
    ("Energy", "LREAL", 3.141592653589793),
    ("OrderId", "STRING", "ORD-4711"),
    ("BatchSize", "UDINT", 4_000_000_000),
    ("StatusWord.3", "BOOL", True),
    ("StatusWord.2", "BOOL", False),
    ("StationTemps[2]", "REAL", 22.0),
    ("FaultHistory[9]", "DINT", 909),
    ("Alarms[3]", "BOOL", True),
    ("Alarms[4]", "BOOL", False),
    ("Alarms[40]", "BOOL", True),
    ("Station[1].Count", "DINT", 101),
    ("Station[2].Running", "BOOL", True),
    ("Station[3].Faulted", "BOOL", True),
    ("Station[1].Rate", "REAL", 1.5),
    ("Station[2].Temps[1]", "REAL", 23.0),
    ("Station[3].Name", "STRING", "ST3"),
    ("Station[1].Drive.Amps", "REAL", 4.25),
    ("Station[0].Drive.Hours", "DINT", 1000),
    ("Program:MainProgram.StepNo", "INT", 7),
    ("Program:MainProgram.Batch", "STRING", "B-17"),
    ("Program:Packer.Speed", "REAL", 42.0),
    ("Program:Packer.Counts[2]", "DINT", 3),
    ("Secret", "DINT", 7),
]


def test_read_every_data_type(logix_driver):
    plan = logix_driver.plan(specs(*[(a, t) for a, t, _ in EVERY_TYPE]))
    readings = logix_driver.read(plan)
    for i, (address, _type, value) in enumerate(EVERY_TYPE):
        assert readings[i].quality == GOOD, (address, readings[i])
        assert readings[i].value == value and type(readings[i].value) is type(value), (address, readings[i])


def test_values_follow_the_controller(logix_server, logix_driver):
    plan = logix_driver.plan(specs(("Aux010", "DINT"), ("Station[0].Name", "STRING")))
    logix_server.set_values({"Aux010": 555, "Station[0].Name": "NEW"})
    try:
        readings = logix_driver.read(plan)
        assert (readings[0].value, readings[1].value) == (555, "NEW")
    finally:
        logix_server.set_values({"Aux010": 10, "Station[0].Name": "ST0"})


def test_missing_tags_are_bad_and_the_others_good(logix_server, logix_driver):
    plan = logix_driver.plan(specs(
        ("ProductionCount", "DINT"),              # 0 good
        ("NoSuchTag", "DINT"),                    # 1
        ("StationTemps[99]", "REAL"),             # 2
        ("Station[0].Cnt", "DINT"),               # 3
        ("Program:Nowhere.StepNo", "INT"),        # 4
        ("Program:MainProgram.NoSuch", "INT"),    # 5
        ("StationTemps", "REAL"),                 # 6 whole array
        ("Station[0]", "DINT"),                   # 7 whole structure
        ("OrderId", "DINT"),                      # 8 a STRING is not a DINT
        ("ProductionCount.40", "BOOL"),           # 9 a DINT has 32 bits
        ("ProductionCount[1]", "DINT"),           # 10 not an array
        ("Rate", "DINT"),                         # 11 numeric, other type: UNCERTAIN
        ("Program:Packer.Speed", "REAL"),         # 12 good
    ))
    before = logix_server.stats()["services"]
    readings = logix_driver.read(plan)
    assert readings[0] == type(readings[0])(123456, GOOD)
    assert readings[12].quality == GOOD and readings[12].value == 42.0
    expected = {
        1: "NoSuchTag does not exist in the controller",
        2: "index 99 is out of range: StationTemps has 8 elements (0..7)",
        3: "Station[0] (Station) has no member 'Cnt'; members: Running, Faulted, Count",
        4: "no program 'Nowhere' in the controller (programs: MainProgram, Packer)",
        5: "Program:MainProgram.NoSuch does not exist in program MainProgram",
        6: "StationTemps is an array of 8 REAL; address one element, e.g. StationTemps[0]",
        7: "Station[0] is a structure (Station); address one member, e.g. Station[0].Running",
        8: "OrderId is STRING in the controller, configured as DINT",
        9: "ProductionCount is DINT with bits 0..31, not 40",
        10: "ProductionCount is DINT, not an array",
    }
    for i, words in expected.items():
        assert readings[i].quality == BAD and readings[i].value is None, (i, readings[i])
        assert readings[i].reason.startswith(INVALID_ADDRESS + ": "), readings[i].reason
        assert words in readings[i].reason, (i, readings[i].reason)
    assert readings[11] == type(readings[11])(12, UNCERTAIN, readings[11].reason)
    assert "Rate is REAL in the controller, configured as DINT" in readings[11].reason
    # the bad tags cost no request: one packet with the three readable tags
    after = logix_server.stats()["services"]
    assert after.get(0x0A, 0) == before.get(0x0A, 0) + 1
    assert after.get(0x4C, 0) == before.get(0x4C, 0) + 3


def test_program_tags_without_init_program_tags(logix_server):
    driver = make_driver(logix_server.port, init_program_tags=False)
    driver.connect()
    try:
        assert not any(name.startswith("Program:") for name in driver._plc.tags)
        readings = driver.read(driver.plan(specs(("Program:Packer.Speed", "REAL"), ("ProductionCount", "DINT"))))
        assert readings[0].value == 42.0 and readings[1].value == 123456
        assert any(name.startswith("Program:Packer.") for name in driver._plc.tags)
        assert not any(name.startswith("Program:MainProgram.") for name in driver._plc.tags)  # only what is used
    finally:
        driver.close()


def test_read_before_connect_is_a_link_error(logix_server):
    driver = make_driver(logix_server.port)
    with pytest.raises(DriverError) as err:
        driver.read(driver.plan(specs(("ProductionCount", "DINT"))))
    assert err.value.kind == CANNOT_CONNECT


# -- diagnostics -----------------------------------------------------------------------------------------------------

def test_test_connection_success(logix_server):
    result = make_driver(logix_server.port).test_connection()
    assert result.ok and result.error is None
    assert [s.name for s in result.steps] == ["tcp", "handshake", "identity", "probe_read"]
    assert all(s.ok and s.duration_ms >= 0 and s.detail for s in result.steps)
    ident = result.identity
    assert ident["product_name"] == "1756-L83E/B" and ident["revision"] == "33.11"
    assert ident["serial"] == "00c0ffee" and ident["program_name"] == "LineOne"
    assert ident["vendor"].startswith("Rockwell") and ident["programs"] == ["MainProgram", "Packer"]
    assert ident["controller_tags"] >= 100
    assert "Large Forward Open" in result.steps[1].detail
    assert result.steps[3].detail.startswith("ProductionCount = 123456")
    probe = make_driver(logix_server.port).test_connection(probe_address="Program:MainProgram.Batch")
    assert probe.ok and "'B-17'" in probe.steps[3].detail
    assert result.as_dict()["steps"][0]["name"] == "tcp"


def test_test_connection_closed_port():
    result = make_driver(free_port()).test_connection()
    assert not result.ok and result.error == CANNOT_CONNECT
    assert [s.name for s in result.steps] == ["tcp"]
    assert "refused" in result.steps[0].detail and "check the port number" in result.steps[0].suggestion


def test_test_connection_wrong_slot(logix_server):
    result = make_driver(logix_server.port, slot=3).test_connection()
    assert not result.ok and result.error == CANNOT_CONNECT
    assert [(s.name, s.ok) for s in result.steps] == [("tcp", True), ("handshake", False)]
    step = result.steps[1]
    assert step.detail.startswith("no controller in slot 3")
    assert step.suggestion.startswith("No controller in slot 3: check the slot of the CPU in the chassis")


def test_test_connection_wrong_route(logix_server):
    result = make_driver(logix_server.port, route="1,5").test_connection()
    assert not result.ok and result.error == CANNOT_CONNECT
    assert "the route 1,5 does not reach a controller" in result.steps[1].detail
    assert "the last pair must name the slot of the CPU" in result.steps[1].suggestion
    assert make_driver(logix_server.port, route="1,0").test_connection().ok


def test_connect_wrong_slot_and_closed_port(logix_server):
    with pytest.raises(DriverError) as err:
        make_driver(logix_server.port, slot=2).connect()
    assert err.value.kind == CANNOT_CONNECT and "No controller in slot 2" in err.value.suggestion
    with pytest.raises(DriverError) as err:
        make_driver(free_port()).connect()
    assert err.value.kind == CANNOT_CONNECT and "refused" in err.value.message


def test_not_a_logix_device():
    """An S7 PLC (python-snap7's server) on the port: TCP works, EtherNet/IP does not."""
    from snap7.server import Server

    srv = Server(log=False)
    srv.start_to("127.0.0.1", 0)
    try:
        port = srv.server_socket.getsockname()[1]
        result = make_driver(port, timeout_s=1.0).test_connection()
        assert [(s.name, s.ok) for s in result.steps] == [("tcp", True), ("handshake", False)]
        assert result.error == PROTOCOL_ERROR
        # snap7 closes on a packet that is not ISO-on-TCP: said as such, with the usual port to check
        assert "closed it without answering: not EtherNet/IP" in result.steps[1].detail
        assert "44818" in result.steps[1].suggestion
        with pytest.raises(DriverError) as err:
            make_driver(port, timeout_s=1.0).connect()
        assert err.value.kind == PROTOCOL_ERROR
    finally:
        srv.stop()


# -- discovery -------------------------------------------------------------------------------------------------------

def test_discover(logix_server):
    found = make_driver(logix_server.port).discover()  # connects and closes by itself
    by_address = {t.address: t for t in found}
    assert len(found) > 100 and len(found) == len(controller_tags())
    assert by_address["ProductionCount"].data_type == "DINT" and by_address["ProductionCount"].writable is True
    assert by_address["Secret"].writable is False
    assert by_address["OrderId"].data_type == "STRING" and not by_address["OrderId"].children
    temps = by_address["StationTemps"]
    assert temps.data_type == "REAL[8]" and [c.address for c in temps.children] == [f"StationTemps[{i}]"
                                                                                    for i in range(8)]
    assert temps.children[0].data_type == "REAL"
    alarms = by_address["Alarms"]
    assert alarms.data_type == "BOOL[64]" and len(alarms.children) == 64 and alarms.children[40].data_type == "BOOL"
    st = by_address["Station"]
    assert st.data_type == "Station[4]" and len(st.children) == 4
    members = {c.name: c for c in st.children[1].children}
    assert list(members) == ["Running", "Faulted", "Count", "Rate", "Temps", "Name", "Drive"]
    assert members["Count"].address == "Station[1].Count" and members["Count"].data_type == "DINT"
    assert members["Running"].data_type == "BOOL" and members["Name"].data_type == "STRING"
    assert members["Temps"].data_type == "REAL[3]" and members["Temps"].children[2].address == "Station[1].Temps[2]"
    assert [(c.address, c.data_type) for c in members["Drive"].children] == [
        ("Station[1].Drive.Amps", "REAL"), ("Station[1].Drive.Hours", "DINT")]
    program = by_address["Program:MainProgram.StepNo"]
    assert program.name == "StepNo" and program.data_type == "INT" and "program MainProgram" in program.description
    assert by_address["Program:Packer.Counts"].data_type == "DINT[3]"
    # every leaf is an address the driver reads
    leaves = []

    def walk(nodes):
        for n in nodes:
            walk(n.children) if n.children else leaves.append(n)
    walk(found)
    driver = make_driver(logix_server.port)
    driver.connect()
    try:
        plan = driver.plan([TagSpec(i, leaf.address, leaf.data_type) for i, leaf in enumerate(leaves)])
        readings = driver.read(plan)
        assert all(r.quality == GOOD for r in readings.values()), [r for r in readings.values() if r.quality]
        controller_only = driver.discover(program=None)
        assert not any(t.address.startswith("Program:") for t in controller_only)
        packer = driver.discover(program="Packer")
        assert [t.address for t in packer] == ["Program:Packer.Speed", "Program:Packer.Counts"]
    finally:
        driver.close()


# -- the link ---------------------------------------------------------------------------------------------------------

def test_server_stopped_while_connected_then_back():
    srv = LogixServer(controller_tags(), port=0).start()
    port = srv.port
    driver = make_driver(port, timeout_s=1.0)
    plan = driver.plan(specs(("ProductionCount", "DINT"), ("OrderId", "STRING")))
    driver.connect()
    assert driver.read(plan)[0].value == 123456
    srv.stop()
    with pytest.raises(DriverError) as err:
        driver.read(plan)
    assert err.value.kind == CANNOT_CONNECT and "lost" in err.value.message
    assert not driver.connected
    with pytest.raises(DriverError):
        driver.connect()  # nobody listens
    srv = LogixServer(controller_tags(), port=port).start()  # back on the same port
    try:
        driver.connect()
        readings = driver.read(plan)
        assert readings[0].value == 123456 and readings[1].value == "ORD-4711"
    finally:
        driver.close()
        srv.stop()


# -- the simulated plant ----------------------------------------------------------------------------------------------

def test_every_tag_of_a_plant_machine_reads_good():
    from plant import Plant, default_layout

    layout = default_layout()
    machine = next(m for m in layout.machines if m.protocol == "ETHERNET_IP")
    plant = Plant(dataclasses.replace(layout, machines=(machine,)), seed=1, time_scale=1.0).start()
    try:
        endpoint = plant.endpoints()[0]
        driver = LogixDriverAdapter(ConnectionSettings("ETHERNET_IP", endpoint["host"], endpoint["port"],
                                                       LogixDriverAdapter.validate_config(endpoint["protocol_config"])))
        plan = driver.plan([TagSpec(i, t["address"], t["data_type"], t["name"])
                            for i, t in enumerate(endpoint["tags"])])
        driver.connect()
        try:
            readings = driver.read(plan)
            bad = {endpoint["tags"][i]["address"]: r for i, r in readings.items() if r.quality != GOOD}
            assert not bad
            assert len(readings) == len(endpoint["tags"]) >= 100
            assert len(driver.discover()) > 100
        finally:
            driver.close()
    finally:
        plant.stop()


# -- bench (printed, not asserted) ------------------------------------------------------------------------------------

def test_bench_100_tag_plan(logix_driver, capsys):
    tags = [TagSpec(i, f"Aux{i:03d}", "DINT") for i in range(FILLERS)]  # 100 distinct tags of mixed types
    tags += [TagSpec(100 + i, a, t) for i, (a, t, _) in enumerate(EVERY_TYPE[: 100 - FILLERS])]
    plan = logix_driver.plan(tags)
    assert len({n for c in plan.chunks for n in c.names}) == 100
    logix_driver.read(plan)
    n, t0 = 100, time.perf_counter()
    for _ in range(n):
        logix_driver.read(plan)
    per_cycle = (time.perf_counter() - t0) / n
    with capsys.disabled():
        print(f"\n[bench] Logix: 100-tag plan ({len(plan.chunks)} chunk(s)): {per_cycle * 1000:.2f} ms per read, "
              f"{1 / per_cycle:.0f} reads/s, {100 / per_cycle:.0f} tag values/s")


def test_prepared_chunks_follow_the_resolutions(logix_server, logix_driver):
    """read keeps each chunk's resolved requests while the driver's resolutions hold; a reconnect resolves anew and
    the readings stay the same."""
    plan = logix_driver.plan(specs(("Running", "BOOL"), ("Rate", "REAL"), ("NoSuchTag", "DINT"), ("Aux010", "DINT")))
    first = logix_driver.read(plan)
    chunk = plan.chunks[0]
    kept = logix_driver._prepared[id(chunk)]
    assert kept[1] is logix_driver._resolved
    assert logix_driver.read(plan).keys() == first.keys()
    assert logix_driver._prepared[id(chunk)] is kept  # not prepared again while the resolutions hold
    logix_driver.close()
    logix_driver.connect()
    again = logix_driver.read(plan)
    renewed = logix_driver._prepared[id(chunk)]
    assert renewed is not kept and renewed[1] is logix_driver._resolved
    assert {k: (r.quality, type(r.value)) for k, r in again.items()} == {
        k: (r.quality, type(r.value)) for k, r in first.items()}
    assert again[2].quality == BAD and again[0].value is True and again[1].value == 12.5 and again[3].value == 10


def test_reading_short_way_equals_the_checks():
    """_reading's short way for a float REAL or an int DINT gives what the full checks give."""
    from types import SimpleNamespace

    from collectors.drivers.logix_plan import Resolved

    driver = make_driver(1)
    cases = [(1.5, "REAL"), (2.0, "LREAL"), (7, "DINT"), (-3, "INT"), (True, "DINT"), (3, "REAL"), (2.5, "DINT"),
             (1, "BOOL"), ("x", "STRING"), (4, "UDINT")]
    for value, want in cases:
        addr = driver.parse_address("Tag1", want)
        result = SimpleNamespace(error=None, value=value, type=want)
        fast = driver._reading(addr, Resolved("Tag1"), result)
        full = driver._reading(addr, Resolved("Tag1", reason="uncertain: forces the checks"), result)
        assert (fast.value, type(fast.value)) == (full.value, type(full.value)), (value, want)
        assert fast.quality == GOOD
