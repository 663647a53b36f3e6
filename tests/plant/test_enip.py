"""The simulated ControlLogix (plant.enip) against an unmodified pycomm3 1.2.16 LogixDriver.

Everything goes over real TCP on 127.0.0.1: the server in its thread, pycomm3 (or a plain
socket for the malformed-packet cases) in the test. No mocks.
"""
from __future__ import annotations

import inspect
import random
import socket
import struct
import threading
import time

import pytest
from pycomm3 import CIPDriver, CommError, LogixDriver, ResponseError

from plant.enip import LogixServer, LogixTag, LogixUDT

STATION = LogixUDT("Station", [
    ("Running", "BOOL"), ("Faulted", "BOOL"), ("Count", "DINT"), ("Rate", "REAL"),
    ("State", "INT"), ("Name", "STRING"), ("Temps", "REAL", 3),
])
N_MOTORS = 100
BIG = 3000  # DINT[3000] = 12000 bytes: needs Read Tag Fragmented over a 4000-byte connection


def make_tags():
    tags = {
        "ProductionCount": LogixTag("DINT", 1234),
        "GoodCount": LogixTag("DINT", 0),
        "RejectCount": LogixTag("DINT", 0),
        "Temperatures": LogixTag("REAL", [20.0 + i for i in range(8)]),
        "FaultHistory": LogixTag("DINT", [100 + i for i in range(10)]),
        "OrderId": LogixTag("STRING", "ORD-1"),
        "Operator": LogixTag("STRING", ""),
        "Running": LogixTag("BOOL", True),
        "Faulted": LogixTag("BOOL", False),
        "Mode": LogixTag("SINT", -5),
        "Shift": LogixTag("INT", 2),
        "EnergyWh": LogixTag("LINT", 2 ** 40 + 7),
        "Speed": LogixTag("REAL", 1.5),
        "Setpoint": LogixTag("REAL", 0.0),
        "StatusWord": LogixTag("DINT", 0),
        "Flags": LogixTag("BOOL", [False] * 64),
        "Big": LogixTag("DINT", list(range(BIG))),
        "Stations": LogixTag(STATION, [{"Count": i, "Name": f"ST{i}", "Rate": i / 2} for i in range(4)]),
        "Firmware": LogixTag("STRING", "33.11", read_only=True),
        "Program:MainProgram.StepNo": LogixTag("INT", 7),
        "Program:MainProgram.Recipe": LogixTag("STRING", "R-42"),
        "Program:MainProgram.Timers": LogixTag("DINT", [0] * 5),
        "Program:Packaging.Speed": LogixTag("REAL", 12.5),
        "Program:Packaging.Count": LogixTag("DINT", 0),
    }
    for i in range(N_MOTORS):
        tags[f"Motor{i:03d}_Speed"] = LogixTag("REAL", float(i))
    return tags


class Writes:
    """Records on_write calls (they come from the server thread)."""

    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()

    def __call__(self, name, value):
        with self.lock:
            self.calls.append((name, value))

    def last(self, name):
        with self.lock:
            for n, v in reversed(self.calls):
                if n == name:
                    return v
        raise AssertionError(f"on_write was not called for {name!r}")


@pytest.fixture(scope="module")
def writes():
    return Writes()


@pytest.fixture(scope="module")
def server(writes):
    srv = LogixServer(make_tags(), host="127.0.0.1", port=0, product_name="1756-L83E/B",
                      revision=(33, 11), serial=0x00C0FFEE, slot=0, on_write=writes)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def restore_values(request):
    """Tests may write: give every test the initial values whatever ran before it."""
    if "server" not in request.fixturenames:
        yield
        return
    server = request.getfixturevalue("server")
    snapshot = {name: server.get_value(name) for name in server.tag_names}
    yield
    server.set_values(snapshot)


@pytest.fixture
def plc(server):
    with LogixDriver(f"127.0.0.1:{server.port}") as driver:  # defaults: init_tags, init_program_tags
        yield driver


def services(srv):
    return srv.stats()["services"]


# -- open, identity, tag list ---------------------------------------------------------------

def test_open_with_defaults_reads_info(plc):
    info = plc.info
    assert plc.connected
    assert info["product_name"] == "1756-L83E/B"
    assert info["revision"] == {"major": 33, "minor": 11}
    assert info["serial"] == "00c0ffee"
    assert info["vendor"] == "Rockwell Automation/Allen-Bradley"
    assert info["product_type"] == "Programmable Logic Controller"
    assert info["keyswitch"] == "REMOTE RUN"
    assert plc.name == "SimLogix"
    assert set(info["programs"]) == {"MainProgram", "Packaging"}
    assert info["programs"]["MainProgram"]["routines"] == ["MainRoutine"]
    assert "MainTask" in info["tasks"]


def test_list_identity(server):
    ident = CIPDriver.list_identity(f"127.0.0.1:{server.port}")
    assert ident["product_name"] == "1756-L83E/B"
    assert ident["serial"] == "00c0ffee"
    assert ident["revision"] == {"major": 33, "minor": 11}


def test_tag_upload_pages_and_covers_all_scopes(server):
    before = services(server).get(0x55, 0)
    with LogixDriver(f"127.0.0.1:{server.port}") as plc:
        tags = plc.tags
    pages = services(server)[0x55] - before
    assert len(tags) == len(server.tag_names) > 100
    assert set(tags) == set(server.tag_names)
    assert pages >= 4, "the controller scope should need more than one page, plus one per program"
    step = tags["Program:MainProgram.StepNo"]
    assert step["data_type"] == "INT" and step["dim"] == 0
    assert tags["FaultHistory"]["dim"] == 1 and tags["FaultHistory"]["dimensions"] == [10, 0, 0]
    assert tags["Temperatures"]["data_type"] == "REAL"
    assert tags["OrderId"]["data_type_name"] == "STRING"
    assert tags["Firmware"]["external_access"] == "Read Only"
    assert tags["ProductionCount"]["external_access"] == "Read/Write"
    assert tags["Flags"]["data_type"] == "DWORD"
    station = tags["Stations"]
    assert station["tag_type"] == "struct" and station["dimensions"] == [4, 0, 0]
    assert station["data_type"]["name"] == "Station"
    assert station["data_type"]["attributes"] == ["Running", "Faulted", "Count", "Rate", "State", "Name", "Temps"]


def test_small_connection_pages_more(server):
    """A standard Forward Open (500 bytes) still uploads and fragments correctly."""
    plc = LogixDriver(f"127.0.0.1:{server.port}")
    plc._cfg["extended forward open"] = False
    plc._cfg["connection_size"] = 500
    before = dict(services(server))
    with plc:
        assert len(plc.tags) == len(server.tag_names)
        assert plc.read(f"Big{{{BIG}}}").value == server.get_value("Big")
    after = services(server)
    assert after.get(0x54, 0) - before.get(0x54, 0) == 1
    assert after[0x55] - before[0x55] >= 10
    assert after[0x52] - before.get(0x52, 0) >= 12000 // 500


def test_revision_below_21_uses_symbolic_names():
    srv = LogixServer(make_tags(), port=0, revision=(20, 19)).start()
    try:
        with LogixDriver(f"127.0.0.1:{srv.port}") as plc:
            assert not plc._cfg["use_instance_ids"]
            assert plc.read("ProductionCount").value == 1234
            assert plc.read("Stations[2].Name").value == "ST2"
            assert plc.write("Speed", 9.25).error is None
            assert srv.get_value("Speed") == 9.25
    finally:
        srv.stop()


def test_nested_udt_upload_read_write():
    axis = LogixUDT("Axis", [("Pos", "LREAL"), ("On", "BOOL"), ("Id", "SINT")])
    line = LogixUDT("Line", [("Name", "STRING"), ("Axes", axis, 2), ("Main", axis), ("Codes", "INT", 4),
                             ("Ok", "BOOL"), ("Total", "LINT")])
    srv = LogixServer({"L": LogixTag(line, {"Name": "L1", "Axes": [{"Pos": 1.5, "On": True, "Id": 3}, {}]}),
                       "Ls": LogixTag(line, [{}, {"Name": "two"}])}, port=0).start()
    try:
        with LogixDriver(f"127.0.0.1:{srv.port}") as plc:
            assert plc.tags["L"]["data_type"]["internal_tags"]["Axes"]["array"] == 2
            assert plc.read("L.Axes[0]").value == {"Pos": 1.5, "On": True, "Id": 3}
            assert plc.read("Ls[1].Name").value == "two"
            assert plc.write("Ls[0].Main.Pos", 3.25).error is None
            assert plc.write("L.Axes[1].On", True).error is None
            value = plc.read("L").value
            value["Total"] = 11
            assert plc.write("L", value).error is None
        assert srv.get_value("Ls[0].Main") == {"Pos": 3.25, "On": False, "Id": 0}
        assert srv.get_value("L.Axes[1].On") is True and srv.get_value("L.Total") == 11
    finally:
        srv.stop()


def test_clock_and_module_info(plc):
    assert abs(plc.get_plc_time().value["microseconds"] / 1e6 - time.time()) < 5
    assert plc.get_module_info(0)["product_name"] == "1756-L83E/B"
    with pytest.raises(ResponseError):
        plc.get_module_info(5)


# -- reads ----------------------------------------------------------------------------------

@pytest.mark.parametrize("tag, value, typ", [
    ("Running", True, "BOOL"),
    ("Faulted", False, "BOOL"),
    ("Mode", -5, "SINT"),
    ("Shift", 2, "INT"),
    ("EnergyWh", 2 ** 40 + 7, "LINT"),
    ("Speed", 1.5, "REAL"),
    ("OrderId", "ORD-1", "STRING"),
    ("Firmware", "33.11", "STRING"),
    ("FaultHistory{10}", [100 + i for i in range(10)], "DINT[10]"),
    ("FaultHistory[3]", 103, "DINT"),
    ("FaultHistory[4]{3}", [104, 105, 106], "DINT[3]"),
    ("Temperatures{8}", [20.0 + i for i in range(8)], "REAL[8]"),
    ("Temperatures{5}", [20.0, 21.0, 22.0, 23.0, 24.0], "REAL[5]"),
    ("Program:MainProgram.StepNo", 7, "INT"),
    ("Program:MainProgram.Recipe", "R-42", "STRING"),
    ("Program:MainProgram.Timers[2]", 0, "DINT"),
    ("Program:Packaging.Speed", 12.5, "REAL"),
    ("Motor042_Speed", 42.0, "REAL"),
    ("Stations[1].Count", 1, "DINT"),
    ("Stations[3].Name", "ST3", "STRING"),
    ("Stations[2].Rate", 1.0, "REAL"),
    ("Stations[0].Temps{3}", [0.0, 0.0, 0.0], "REAL[3]"),
    ("Stations[0].Running", False, "BOOL"),
    ("Flags[10]", False, "BOOL"),
    ("Flags{64}", [False] * 64, "BOOL[64]"),
])
def test_read_each_type(plc, tag, value, typ):
    result = plc.read(tag)
    assert result.error is None, result.error
    assert result.value == value
    assert result.type == typ


def test_read_whole_udt(plc):
    result = plc.read("Stations[1]")
    assert result.type == "Station"
    assert result.value == {"Running": False, "Faulted": False, "Count": 1, "Rate": 0.5, "State": 0,
                            "Name": "ST1", "Temps": [0.0, 0.0, 0.0]}
    whole = plc.read("Stations{4}")
    assert [s["Name"] for s in whole.value] == ["ST0", "ST1", "ST2", "ST3"]


def test_multi_read_is_one_packet_per_connection_size(server, plc):
    names = [f"Motor{i:03d}_Speed" for i in range(N_MOTORS)]
    before = services(server).get(0x0A, 0)
    results = plc.read(*names)
    assert services(server)[0x0A] - before == 1
    assert [r.value for r in results] == [float(i) for i in range(N_MOTORS)]
    assert all(r.error is None for r in results)
    mixed = plc.read("OrderId", "FaultHistory{10}", "Program:MainProgram.StepNo", "Stations[1].Name", "Running")
    assert [r.value for r in mixed] == ["ORD-1", [100 + i for i in range(10)], 7, "ST1", True]


def test_big_array_fragmented_read(server, plc):
    before = services(server).get(0x52, 0)
    result = plc.read(f"Big{{{BIG}}}")
    assert result.error is None
    assert result.value == list(range(BIG))
    assert services(server)[0x52] - before >= 3  # 12000 bytes over a 4000-byte connection
    part = plc.read("Big[2500]{500}")
    assert part.value == list(range(2500, 3000))


def test_set_value_is_seen_by_clients(server, plc):
    server.set_value("GoodCount", 77)
    server.set_values({"Temperatures": [1.0] * 8, "Operator": "alice", "Stations[2].State": 3,
                       "Flags[33]": True})
    assert plc.read("GoodCount").value == 77
    assert plc.read("Temperatures{8}").value == [1.0] * 8
    assert plc.read("Operator").value == "alice"
    assert plc.read("Stations[2].State").value == 3
    assert plc.read("Flags[33]").value is True
    assert server.get_value("Flags")[33] is True


# -- writes ---------------------------------------------------------------------------------

def test_write_single_dint(server, plc, writes):
    """pycomm3 1.2.16 sends the single write twice in one packet; the server must accept it."""
    result = plc.write("GoodCount", 555)
    assert result.error is None
    assert plc.read("GoodCount").value == 555
    assert server.get_value("GoodCount") == 555
    assert writes.last("GoodCount") == 555


def test_write_multiple(server, plc, writes):
    results = plc.write(("RejectCount", 3), ("Setpoint", 61.5), ("Mode", 9), ("Shift", 3),
                        ("Program:Packaging.Count", 12), ("EnergyWh", -2))
    assert all(r.error is None for r in results), results
    assert [r.value for r in plc.read("RejectCount", "Setpoint", "Mode", "Shift", "Program:Packaging.Count",
                                      "EnergyWh")] == [3, 61.5, 9, 3, 12, -2]
    assert server.get_value("Setpoint") == 61.5
    assert server.get_value("Program:Packaging.Count") == 12
    assert writes.last("Program:Packaging.Count") == 12
    assert writes.last("Mode") == 9


def test_write_array_element_and_whole_array(server, plc, writes):
    assert plc.write("FaultHistory[3]", -1).error is None
    expected = [100 + i for i in range(10)]
    expected[3] = -1
    assert plc.read("FaultHistory{10}").value == expected
    assert server.get_value("FaultHistory") == expected
    assert writes.last("FaultHistory") == expected
    assert plc.write("Program:MainProgram.Timers{5}", [5, 4, 3, 2, 1]).error is None
    assert server.get_value("Program:MainProgram.Timers") == [5, 4, 3, 2, 1]


def test_write_string(server, plc, writes):
    assert plc.write("Operator", "Bob Smith").error is None
    assert plc.read("Operator").value == "Bob Smith"
    assert server.get_value("Operator") == "Bob Smith"
    assert writes.last("Operator") == "Bob Smith"
    assert plc.write("Program:MainProgram.Recipe", "X" * 82).error is None
    assert server.get_value("Program:MainProgram.Recipe") == "X" * 82


def test_write_bool_tag(server, plc, writes):
    assert plc.write("Faulted", True).error is None
    assert plc.read("Faulted").value is True
    assert server.get_value("Faulted") is True
    assert writes.last("Faulted") is True
    assert plc.write("Faulted", False).error is None
    assert server.get_value("Faulted") is False


def test_write_bit_of_dint_uses_read_modify_write(server, plc, writes):
    server.set_value("StatusWord", 0b1000)
    before = services(server).get(0x4E, 0)
    assert plc.write("StatusWord.0", True).error is None
    assert plc.write("StatusWord.3", False).error is None
    assert services(server)[0x4E] - before == 2
    assert server.get_value("StatusWord") == 0b0001
    assert plc.read("StatusWord.0").value is True
    assert writes.last("StatusWord") == 1
    results = plc.write(("StatusWord.4", True), ("StatusWord.31", True))  # one RMW for both bits
    assert all(r.error is None for r in results)
    assert server.get_value("StatusWord") == 0b10001 - 2 ** 31


def test_write_bool_array_bit(server, plc, writes):
    assert plc.write("Flags[40]", True).error is None
    assert plc.read("Flags[40]").value is True
    assert server.get_value("Flags[40]") is True
    assert writes.last("Flags")[40] is True
    assert plc.write("Flags[40]", False).error is None
    assert server.get_value("Flags")[40] is False


def test_write_udt_members_and_whole_udt(server, plc, writes):
    assert plc.write("Stations[1].Running", True).error is None
    assert plc.write("Stations[1].Name", "Filler").error is None
    assert plc.write("Stations[1].Temps[2]", 80.5).error is None
    assert server.get_value("Stations[1].Running") is True
    station = server.get_value("Stations")[1]
    assert station["Name"] == "Filler" and station["Temps"] == [0.0, 0.0, 80.5] and station["Faulted"] is False
    assert writes.last("Stations")[1]["Name"] == "Filler"
    new = {"Running": False, "Faulted": True, "Count": 99, "Rate": 2.5, "State": 4, "Name": "Capper",
           "Temps": [1.0, 2.0, 3.0]}
    assert plc.write("Stations[3]", new).error is None
    assert server.get_value("Stations[3]") == new
    assert plc.read("Stations[3]").value == new


def test_big_array_fragmented_write(server, plc, writes):
    values = [BIG - i for i in range(BIG)]
    before = services(server).get(0x53, 0)
    assert plc.write(f"Big{{{BIG}}}", values).error is None
    assert services(server)[0x53] - before >= 3
    assert server.get_value("Big") == values
    assert writes.last("Big") == values


# -- errors ---------------------------------------------------------------------------------

def _ghost(plc, name, like, **changes):
    """Make pycomm3 believe a tag exists that the controller does not have (deleted after upload)."""
    info = dict(plc.tags[like], tag_name=name, **changes)
    plc._tags[name] = info


def test_unknown_tag_by_instance_id_is_an_error_tag(server, plc):
    _ghost(plc, "Ghost", "ProductionCount", instance_id=60000)
    result = plc.read("Ghost")
    assert result.value is None
    assert "Destination unknown" in result.error
    assert plc.read("ProductionCount").value == 1234  # the connection is still usable
    assert plc.write("Ghost", 1).error


def test_unknown_tag_by_name_is_an_error_tag(server, plc):
    _ghost(plc, "Program:MainProgram.Ghost", "Program:MainProgram.StepNo")
    result = plc.read("Program:MainProgram.Ghost")
    assert "IOI syntax error" in result.error
    assert plc.read("Program:MainProgram.StepNo").value == 7


def test_unknown_tag_in_multi_read_spoils_only_itself(plc):
    _ghost(plc, "Ghost", "ProductionCount", instance_id=60000)
    results = plc.read("Speed", "Ghost", "OrderId")
    assert results[0].value == 1.5 and results[2].value == "ORD-1"
    assert results[1].value is None and results[1].error


def test_index_out_of_range_and_too_many_elements(plc):
    assert "Destination unknown" in plc.read("FaultHistory[10]").error
    assert "Access beyond end of the object" in plc.read("FaultHistory[8]{3}").error
    assert plc.read("FaultHistory[9]").value == 109


def test_write_with_wrong_type_is_refused(server, plc):
    _ghost(plc, "AsInt", "Shift", instance_id=plc.tags["GoodCount"]["instance_id"])  # INT write to a DINT
    server.set_value("GoodCount", 5)
    result = plc.write("AsInt", 1)
    assert "does not match the target tag's data type" in result.error
    assert server.get_value("GoodCount") == 5
    assert plc.read("GoodCount").value == 5


def test_write_to_read_only_tag_is_refused(server, plc):
    result = plc.write("Firmware", "hacked")
    assert "Permission denied" in result.error
    assert server.get_value("Firmware") == "33.11"


def test_slot_in_the_path():
    srv = LogixServer({"A": LogixTag("DINT", 3)}, port=0, slot=2).start()
    try:
        with LogixDriver(f"127.0.0.1:{srv.port}/2") as plc:
            assert plc.read("A").value == 3
        _open_fails(f"127.0.0.1:{srv.port}")  # slot 0 by default: nothing there
    finally:
        srv.stop()


def _open_fails(path):
    driver = LogixDriver(path)
    try:
        with pytest.raises((CommError, ResponseError)):
            driver.open()
    finally:
        driver._sock.close()


def test_route_to_another_slot_fails_to_open(server):
    _open_fails(f"127.0.0.1:{server.port}/3")


# -- robustness -----------------------------------------------------------------------------

def _encap(command, data=b"", session=0, context=b"_pycomm_"):
    return struct.pack("<HHII8sI", command, len(data), session, 0, context, 0) + data


def _recv_packet(sock):
    head = b""
    while len(head) < 24:
        chunk = sock.recv(24 - len(head))
        if not chunk:
            return None
        head += chunk
    length = struct.unpack_from("<H", head, 2)[0]
    body = b""
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        if not chunk:
            return None
        body += chunk
    return head + body


def _register(sock):
    sock.sendall(_encap(0x65, b"\x01\x00\x00\x00"))
    reply = _recv_packet(sock)
    return struct.unpack_from("<I", reply, 4)[0]


def _rr(session, cip):
    cpf = struct.pack("<IHH", 0, 0, 2) + struct.pack("<HH", 0, 0) + struct.pack("<HH", 0xB2, len(cip)) + cip
    return _encap(0x6F, cpf, session)


def _status(reply):
    return struct.unpack_from("<I", reply, 8)[0]


def _raw(server):
    return socket.create_connection(("127.0.0.1", server.port), timeout=5)


# (name, packets after RegisterSession or None for no session, expected encapsulation status, CIP status)
SYMBOL_PATH = b"\x09\x91\x0fProductionCount\x00"  # 9 words: ANSI extended symbol, padded
READ_PATH = b"\x4c" + SYMBOL_PATH  # Read Tag without its element count


@pytest.mark.parametrize("name, build, encap_status, cip_status", [
    ("unknown command", lambda s: _encap(0x00FF, b"xx", s), 0x0001, None),
    ("no session", lambda s: _rr(0, b"\x01\x02\x20\x01\x24\x01"), 0x0064, None),
    ("wrong session", lambda s: _rr(s + 1, b"\x01\x02\x20\x01\x24\x01"), 0x0064, None),
    ("item count past the end", lambda s: _encap(0x6F, struct.pack("<IHH", 0, 0, 9), s), 0x0003, None),
    ("item length past the end", lambda s: _encap(0x6F, struct.pack("<IHHHHHH", 0, 0, 2, 0, 0, 0xB2, 500), s),
     0x0003, None),
    ("connected data on unknown connection",
     lambda s: _encap(0x70, struct.pack("<IHHHHIHH", 0, 0, 2, 0xA1, 4, 0xDEAD, 0xB1, 4) + b"\x01\x00\x0e\x00", s),
     0x0003, None),
    ("empty CIP request", lambda s: _rr(s, b""), 0, 0x04),
    ("path size past the end", lambda s: _rr(s, b"\x4c\x10\x20\x6b"), 0, 0x04),
    ("truncated logical segment", lambda s: _rr(s, b"\x4c\x01\x25\x00"), 0, 0x04),
    ("unknown segment type", lambda s: _rr(s, b"\x4c\x01\xe0\x00\x01\x00"), 0, 0x04),
    ("read without element count", lambda s: _rr(s, READ_PATH), 0, 0x13),
    ("unknown class", lambda s: _rr(s, b"\x01\x02\x20\x77\x24\x01"), 0, 0x05),
    ("unsupported service", lambda s: _rr(s, b"\x33\x02\x20\x01\x24\x01"), 0, 0x08),
    ("multi with offsets past the end",
     lambda s: _rr(s, b"\x0a\x02\x20\x02\x24\x01" + struct.pack("<HHH", 2, 6, 900)), 0, 0x13),
    ("multi count past the end", lambda s: _rr(s, b"\x0a\x02\x20\x02\x24\x01" + struct.pack("<H", 50)), 0, 0x13),
    ("truncated forward open", lambda s: _rr(s, b"\x5b\x02\x20\x06\x24\x01\x0a\x05"), 0, 0x13),
    ("unconnected send with garbage inside",
     lambda s: _rr(s, b"\x52\x02\x20\x06\x24\x01\x0a\x05\x03\x00\xff\xff\xff\x00\x01\x00\x01\x00"), 0, 0x08),
    ("unconnected send with short message", lambda s: _rr(s, b"\x52\x02\x20\x06\x24\x01\x0a\x05\xff\x00"), 0, 0x13),
    ("symbol list without attribute count", lambda s: _rr(s, b"\x55\x02\x20\x6b\x24\x00"), 0, 0x13),
    ("template of unknown instance", lambda s: _rr(s, b"\x03\x03\x20\x6c\x25\x00\x99\x09\x00\x00"), 0, 0x05),
])
def test_malformed_packet_gets_an_error_reply(server, name, build, encap_status, cip_status):
    with _raw(server) as sock:
        session = _register(sock)
        sock.sendall(build(session))
        reply = _recv_packet(sock)
        assert reply is not None, f"{name}: connection closed instead of an error reply"
        assert _status(reply) == encap_status, name
        if cip_status is not None:
            assert reply[40] & 0x80 and reply[42] == cip_status, (name, reply[40:].hex())
        # the same connection still serves a good request
        sock.sendall(_rr(session, b"\x01\x02\x20\x01\x24\x01"))
        good = _recv_packet(sock)
        assert _status(good) == 0 and good[42] == 0 and b"1756-L83E/B" in good


def _symbol(name):
    raw = name.encode()
    return b"\x91" + bytes((len(raw),)) + raw + b"\x00" * (len(raw) % 2)


def test_program_tag_by_instance_id_and_unconnected_paging(server, plc):
    """Program scope + symbol instance (pycomm3 reads program tags by name; other clients do not)."""
    inst = plc.tags["Program:MainProgram.StepNo"]["instance_id"]
    path = _symbol("Program:MainProgram") + b"\x20\x6b\x25\x00" + struct.pack("<H", inst)
    with _raw(server) as sock:
        session = _register(sock)
        sock.sendall(_rr(session, b"\x4c" + bytes((len(path) // 2,)) + path + b"\x01\x00"))
        reply = _recv_packet(sock)
        assert reply[42] == 0 and reply[44:] == b"\xc3\x00\x07\x00"
        # symbol list over UCMM (504-byte replies): page until status 0, ids strictly increasing
        ids, start, pages = [], 0, 0
        while True:
            req = b"\x55\x03\x20\x6b\x25\x00" + struct.pack("<HHH", start, 1, 1)
            sock.sendall(_rr(session, req))
            reply = _recv_packet(sock)
            pages += 1
            data = reply[44:]
            pos = 0
            while pos < len(data):
                iid, n = struct.unpack_from("<IH", data, pos)
                ids.append(iid)
                pos += 6 + n
            if reply[42] == 0:
                break
            assert reply[42] == 0x06
            start = ids[-1] + 1
    assert pages > 3 and ids == sorted(set(ids))
    assert len(ids) == len([n for n in server.tag_names if not n.startswith("Program:")]) + 2 + 1


@pytest.mark.parametrize("name, payload", [
    ("truncated header", b"\x65\x00\x04"),
    ("header announcing more than is sent", _encap(0x6F, b"") [:2] + b"\xe8\x03" + bytes(20) + b"short"),
    ("register session with wrong length", _encap(0x65, b"\x01\x00")),
    ("unregister session", _encap(0x66)),
    ("binary noise", bytes(range(256)) * 4),
])
def test_broken_stream_closes_only_that_client(server, plc, name, payload):
    with _raw(server) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(5)
        try:
            while sock.recv(4096):
                pass
        except OSError:
            pass
    assert server.running
    assert plc.read("ProductionCount").value == 1234
    with LogixDriver(f"127.0.0.1:{server.port}") as fresh:
        assert fresh.read("OrderId").value == "ORD-1"


def _forward_open(serial):
    path = b"\x01\x00\x20\x02\x24\x01"  # backplane slot 0, message router
    params = 0x4200_0000 | 4000
    body = struct.pack("<BBIIHHIB3xIIIIB", 0x0A, 0x05, 0, 0x11223344, serial, 0x1009, 0x19710001, 7,
                       200_000, params, 200_000, params, 0xA3)
    return b"\x5b\x02\x20\x06\x24\x01" + body + bytes((len(path) // 2,)) + path


def _unit(session, cid, seq, cip):
    cpf = struct.pack("<IHHHHIHHH", 0, 0, 2, 0xA1, 4, cid, 0xB1, 2 + len(cip), seq) + cip
    return _encap(0x70, cpf, session)


def _mutate(rng, good):
    cip = bytearray(rng.choice(good))
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        if op < 0.5 and cip:
            cip[rng.randrange(len(cip))] = rng.randrange(256)
        elif op < 0.75 and cip:
            del cip[rng.randrange(len(cip)):]
        else:
            cip += bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    return bytes(cip)


FUZZ_CORPUS = [
    READ_PATH + b"\x01\x00",
    b"\x0a\x02\x20\x02\x24\x01" + struct.pack("<HHH", 2, 6, 6 + len(READ_PATH) + 2) + READ_PATH
    + b"\x01\x00" + b"\x4d" + SYMBOL_PATH + b"\xc4\x00\x01\x00\x05\x00\x00\x00",
    b"\x52" + SYMBOL_PATH + b"\x01\x00\x00\x00\x00\x00",  # Read Tag Fragmented
    b"\x53" + SYMBOL_PATH + b"\xc4\x00\x01\x00\x00\x00\x00\x00\x05\x00\x00\x00",  # Write Fragmented
    b"\x4e" + SYMBOL_PATH + b"\x04\x00\x01\x00\x00\x00\xff\xff\xff\xff",  # Read-Modify-Write
    b"\x4c\x07\x91\x08Stations\x28\x01\x91\x04Name\x01\x00",  # member of an element
    b"\x4d\x06\x91\x08Stations\x28\x01\xa0\x02\x00\x00\x01\x00" + bytes(4),  # struct write
    b"\x55\x02\x20\x6b\x24\x00\x02\x00\x01\x00\x02\x00",
    b"\x55\x0d" + _symbol("Program:MainProgram") + b"\x20\x6b\x24\x00\x01\x00\x08\x00",
    b"\x03\x03\x20\x6c\x25\x00\xce\x0f\x04\x00\x04\x00\x05\x00\x02\x00\x01\x00",
    b"\x4c\x03\x20\x6c\x25\x00\x00\x01" + struct.pack("<IH", 0, 200),
    b"\x03\x02\x20\x8b\x24\x01\x01\x00\x06\x00",
    b"\x0e\x03\x20\x01\x24\x01\x30\x07",
]


def test_random_mutations_never_kill_the_server(server, plc, caplog):
    """Mutated CIP requests, unconnected and connected: each gets a reply, no internal error."""
    rng = random.Random(20240601)
    unconnected_only = [
        b"\x52\x02\x20\x06\x24\x01\x0a\x05\x06\x00\x01\x02\x20\x01\x24\x01\x01\x00\x01\x00",
        _forward_open(0x0100),
    ]
    with _raw(server) as sock:
        session = _register(sock)
        for n in range(400):
            sock.sendall(_rr(session, _mutate(rng, FUZZ_CORPUS + unconnected_only)))
            reply = _recv_packet(sock)
            assert reply is not None and _status(reply) == 0, n
    with _raw(server) as sock:
        session = _register(sock)
        sock.sendall(_rr(session, _forward_open(0x4242)))
        reply = _recv_packet(sock)
        assert reply[42] == 0, reply[40:].hex()
        cid = struct.unpack_from("<I", reply, 44)[0]
        for n in range(400):
            sock.sendall(_unit(session, cid, n, _mutate(rng, FUZZ_CORPUS)))
            reply = _recv_packet(sock)
            assert reply is not None and _status(reply) == 0, n
            assert reply[44:46] == struct.pack("<H", n)  # the sequence count comes back
    errors = [r for r in caplog.records if r.name.startswith("plant.enip") and r.levelname == "ERROR"]
    assert not errors, errors[0].getMessage()
    server.set_value("ProductionCount", 4321)
    assert plc.read("ProductionCount").value == 4321


# -- concurrency, lifecycle -----------------------------------------------------------------

def test_two_clients_at_once(server):
    errors = []

    def worker(index):
        try:
            with LogixDriver(f"127.0.0.1:{server.port}") as mine:
                tag = f"Motor{90 + index:03d}_Speed"
                for n in range(150):
                    assert mine.write(tag, float(n)).error is None
                    assert mine.read(tag).value == float(n)
                    assert mine.read("OrderId", "Shift")[0].error is None
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert server.get_value("Motor090_Speed") == server.get_value("Motor091_Speed") == 149.0


def test_many_clients_at_once(server):
    errors = []
    barrier = threading.Barrier(8)

    def worker():
        try:
            with LogixDriver(f"127.0.0.1:{server.port}", init_program_tags=False) as mine:
                barrier.wait(10)
                for _ in range(50):
                    results = mine.read(*[f"Motor{i:03d}_Speed" for i in range(0, 80, 4)])
                    assert [r.value for r in results] == [float(i) for i in range(0, 80, 4)]
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


def test_set_values_is_atomic_for_client_reads(server, plc):
    stop = threading.Event()

    def churn():
        n = 0
        while not stop.is_set():
            n += 1
            server.set_values({"GoodCount": n, "RejectCount": n, "Program:Packaging.Count": n})

    t = threading.Thread(target=churn)
    t.start()
    try:
        for _ in range(200):
            a, b, c = (r.value for r in plc.read("GoodCount", "RejectCount", "Program:Packaging.Count"))
            assert a == b == c
    finally:
        stop.set()
        t.join()


def test_port_in_use_raises_oserror_naming_the_port(server):
    with pytest.raises(OSError, match=str(server.port)):
        LogixServer({"A": LogixTag("DINT", 0)}, port=server.port).start()
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        with pytest.raises(OSError, match=f"port {port}"):
            LogixServer({"A": LogixTag("DINT", 0)}, port=port).start()
    finally:
        holder.close()


def test_defaults_and_stop(tmp_path):
    assert inspect.signature(LogixServer).parameters["host"].default == "127.0.0.1"
    srv = LogixServer({"A": LogixTag("DINT", 1)}, port=0).start()
    assert srv.host == "127.0.0.1"
    plc = LogixDriver(f"127.0.0.1:{srv.port}")
    plc.open()
    assert plc.read("A").value == 1
    srv.stop()
    srv.stop()  # idempotent
    assert not srv.running
    with pytest.raises(CommError):
        plc.read("A")
    plc._sock.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=1)
    srv.start()  # a stopped server can start again
    try:
        with LogixDriver(f"127.0.0.1:{srv.port}") as again:
            assert again.read("A").value == 1
    finally:
        srv.stop()


def test_on_write_exception_does_not_break_the_write():
    def boom(name, value):
        raise RuntimeError("machine model bug")

    srv = LogixServer({"A": LogixTag("DINT", 1)}, port=0, on_write=boom).start()
    try:
        with LogixDriver(f"127.0.0.1:{srv.port}") as plc:
            assert plc.write("A", 2).error is None
            assert plc.read("A").value == 2
    finally:
        srv.stop()


@pytest.mark.parametrize("tags, message", [
    ({"1bad": LogixTag("DINT")}, "not a valid Logix name"),
    ({"A": LogixTag("FLOAT")}, "unknown data type 'FLOAT'"),
    ({"A": LogixTag("DINT", [])}, "at least one element"),
    ({"A": LogixTag("BOOL", [False] * 10)}, "multiple of 32"),
    ({"A": LogixTag("SINT", 300)}, "out of range for SINT"),
    ({"A": LogixTag("STRING", "x" * 83)}, "at most 82"),
    ({"A": LogixTag("DINT"), "a": LogixTag("DINT")}, "case-insensitive"),
    ({"Program:P": LogixTag("DINT")}, "Program:<program>.<tag>"),
    ({"A": LogixTag(STATION, {"Nope": 1})}, "no member 'Nope'"),
    ({"A": 5}, "must be a LogixTag"),
])
def test_bad_tag_definitions_name_the_tag(tags, message):
    with pytest.raises((ValueError, TypeError), match=message):
        LogixServer(tags, port=0)


def test_set_value_accepts_numpy_scalars(server):
    np = pytest.importorskip("numpy")
    server.set_values({"GoodCount": np.int64(8), "Speed": np.float32(2.5), "Running": np.bool_(False),
                       "Temperatures": list(np.arange(8, dtype=np.float64))})
    assert server.get_value("GoodCount") == 8 and server.get_value("Speed") == 2.5
    assert server.get_value("Running") is False and server.get_value("Temperatures")[7] == 7.0


def test_bad_set_value_names_the_tag(server):
    with pytest.raises(KeyError):
        server.set_value("NoSuchTag", 1)
    with pytest.raises(ValueError, match="Temperatures"):
        server.set_value("Temperatures", [1.0] * 3)
    with pytest.raises(TypeError, match="OrderId"):
        server.set_value("OrderId", 5)
    with pytest.raises(KeyError):
        server.get_value("FaultHistory[10]")
    before = server.get_value("GoodCount")
    with pytest.raises(ValueError):
        server.set_values({"GoodCount": before + 1, "Mode": 1000})  # nothing applied
    assert server.get_value("GoodCount") == before


# -- figures --------------------------------------------------------------------------------

def test_measure_throughput(server, plc, capsys):
    """Printed, not asserted: machines differ."""
    n = 2000
    t0 = time.perf_counter()
    for _ in range(n):
        plc.read("ProductionCount")
    single = n / (time.perf_counter() - t0)
    names = [f"Motor{i:03d}_Speed" for i in range(N_MOTORS)]
    plc.read(*names)
    rounds = 200
    t0 = time.perf_counter()
    for _ in range(rounds):
        plc.read(*names)
    multi_ms = (time.perf_counter() - t0) / rounds * 1000
    t0 = time.perf_counter()
    for _ in range(20):
        plc.read(f"Big{{{BIG}}}")
    big_ms = (time.perf_counter() - t0) / 20 * 1000
    t0 = time.perf_counter()
    for _ in range(10):
        with LogixDriver(f"127.0.0.1:{server.port}"):
            pass
    open_ms = (time.perf_counter() - t0) / 10 * 1000
    with capsys.disabled():
        print(f"\n[enip] single reads: {single:,.0f}/s; 100-tag multi-read: {multi_ms:.2f} ms; "
              f"DINT[{BIG}] fragmented read: {big_ms:.2f} ms; open with tag upload "
              f"({len(server.tag_names)} tags): {open_ms:.1f} ms")
