"""The S7 driver against python-snap7's own S7 server, through python-snap7's client. Nothing mocked.

The server here is snap7.server.Server with three things added that a real CPU has and the stock server lacks
(S7Cpu below): it refuses a COTP connection to a rack/slot where it is not, a power cut drops the open
connections, and a DB can be made to answer short (a faulty device) to pin that a short reply is a BAD reading,
never a crash. One test also reads every tag of an S7 machine of the simulated plant.
"""
from __future__ import annotations

import dataclasses
import socket
import struct
import threading
import time

import pytest
import snap7.server
from snap7.datatypes import S7Area
from snap7.type import SrvArea

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
from collectors.drivers.s7 import S7Driver
from collectors.drivers.s7_plan import MAX_ITEMS, S7Plan, S7Request, build_requests, import_db_layout


def _called_tsap(sock: socket.socket, timeout: float = 2.0) -> int | None:
    """The called TSAP of the COTP Connection Request waiting on sock, read without consuming it."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while True:
            data = sock.recv(512, socket.MSG_PEEK)
            if not data:
                return None
            if len(data) >= 4 and len(data) >= struct.unpack(">H", data[2:4])[0]:
                break
            if time.monotonic() > deadline:
                return None
            time.sleep(0.001)
    except OSError:
        return None
    finally:
        sock.settimeout(None)
    cotp = data[4:]
    params, i = cotp[7: 1 + cotp[0]], 0
    while i + 2 <= len(params):
        code, size = params[i], params[i + 1]
        if code == 0xC2:
            return int.from_bytes(params[i + 2: i + 2 + size], "big")
        i += 2 + size
    return None


class S7Cpu(snap7.server.Server):
    """snap7's server plus what a real CPU does: no answer at a wrong rack/slot, connections gone at power-off;
    short_dbs answer one byte short (a faulty device)."""

    def __init__(self, rack: int = 0, slot: int = 1, short_dbs=()):
        super().__init__(log=False)
        self.rack, self.slot, self.short_dbs = rack, slot, set(short_dbs)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def start_local(self, port: int = 0) -> int:
        self.start_to("127.0.0.1", port)
        return self.server_socket.getsockname()[1]

    def _handle_client(self, client_socket, address):
        tsap = _called_tsap(client_socket)
        if tsap is not None and tsap & 0xFF != (self.rack << 5 | self.slot):
            client_socket.shutdown(socket.SHUT_RDWR)  # nothing at that rack/slot: the CPU drops the connection
        with self._open_lock:
            self._open.add(client_socket)
        try:
            super()._handle_client(client_socket, address)
        finally:
            with self._open_lock:
                self._open.discard(client_socket)

    def _read_from_memory_area(self, area, db_number, start, count):
        code, data = super()._read_from_memory_area(area, db_number, start, count)
        if code == 0xFF and area == S7Area.DB and db_number in self.short_dbs:
            data = data[:-1]
        return code, data

    def stop(self) -> int:
        with self._open_lock:
            sockets = list(self._open)
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return super().stop()


def plc_memory() -> dict:
    db1 = bytearray(200)
    struct.pack_into(">i", db1, 0, -123456)           # DBD0  DINT
    struct.pack_into(">I", db1, 4, 0xDEADBEEF)        # DBD4  DWORD
    struct.pack_into(">I", db1, 8, 4_000_000_000)     # DBD8  UDINT
    struct.pack_into(">f", db1, 12, 12.5)             # DBD12 REAL
    struct.pack_into(">h", db1, 16, -1234)            # DBW16 INT
    struct.pack_into(">H", db1, 18, 0xBEEF)           # DBW18 WORD
    struct.pack_into(">H", db1, 20, 60000)            # DBW20 UINT
    db1[22], db1[23], db1[24], db1[25] = 200, 0xFB, 250, ord("Z")  # BYTE, SINT -5, USINT, CHAR
    db1[26] = 0b1000_0001                             # DBX26.0, DBX26.7
    db1[30:40] = bytes([20, 8]) + b"ORD-4711"         # DBB30 STRING[20]
    db1[60:65] = bytes([10, 3]) + b"ABC"              # DBB60 STRING[10], length left to the PLC
    db1[80:84] = bytes([4, 9]) + b"AB"                # DBB80 a string claiming 9 of 4 characters
    mk = bytearray(64)
    mk[0] = 0b10
    struct.pack_into(">h", mk, 10, 321)
    struct.pack_into(">f", mk, 20, -0.5)
    inputs, outputs = bytearray(16), bytearray(16)
    inputs[0] = 0x0F
    outputs[0] = 0x80
    struct.pack_into(">H", outputs, 2, 4242)
    return {(SrvArea.DB, 1): db1, (SrvArea.DB, 2): bytearray(64), (SrvArea.DB, 3): bytearray(1000),
            (SrvArea.DB, 77): bytearray(16), (SrvArea.MK, 0): mk, (SrvArea.PE, 0): inputs, (SrvArea.PA, 0): outputs}


def start_cpu(port: int = 0, **kwargs) -> tuple[S7Cpu, int]:
    cpu = S7Cpu(**kwargs)
    for (area, number), data in plc_memory().items():
        cpu.register_area(area, number, data)
    return cpu, cpu.start_local(port)


@pytest.fixture(scope="module")
def s7_cpu():
    cpu, port = start_cpu(short_dbs={77})
    cpu.port_ = port
    yield cpu
    cpu.stop()


def make_driver(port: int, timeout_s: float = 2.0, **config) -> S7Driver:
    return S7Driver(ConnectionSettings("S7", "127.0.0.1", port, config, timeout_s))


@pytest.fixture
def s7_driver(s7_cpu):
    driver = make_driver(s7_cpu.port_)
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
    assert driver_class("S7") is S7Driver


@pytest.mark.parametrize("config, rack, slot, cpu", [
    ({}, 0, 1, "S7-1200"),
    ({"cpu_type": "S7-300"}, 0, 2, "S7-300"),
    ({"cpu_type": "s7 400"}, 0, 3, "S7-400"),
    ({"cpu_type": "1500"}, 0, 1, "S7-1500"),
    ({"cpu_type": "S7-300", "rack": 1, "slot": "4"}, 1, 4, "S7-300"),
])
def test_validate_config_defaults(config, rack, slot, cpu):
    cfg = S7Driver.validate_config(config)
    assert (cfg["rack"], cfg["slot"], cfg["cpu_type"], cfg["pdu_size"], cfg["string_length"]) == \
        (rack, slot, cpu, 480, None)


@pytest.mark.parametrize("config, field, words", [
    ({"cpu_type": "S7-200"}, "cpu_type", "S7-300, S7-400, S7-1200, S7-1500"),
    ({"rack": 8}, "rack", "0 to 7"),
    ({"slot": 32}, "slot", "0 to 31"),
    ({"pdu_size": 100}, "pdu_size", "240 to 960"),
    ({"string_length": 300}, "string_length", "1 to 254"),
])
def test_validate_config_names_the_field(config, field, words):
    with pytest.raises(ConfigError) as err:
        S7Driver.validate_config(config)
    assert err.value.field == field and words in err.value.message


@pytest.mark.parametrize("address, data_type, text, area, db, offset, bit, size", [
    ("DB1.DBD0", "DINT", "DB1.DBD0", "DB", 1, 0, None, 4),
    ("DB1.DBD0", "REAL", "DB1.DBD0", "DB", 1, 0, None, 4),
    ("DB1.DBD0", "DWORD", "DB1.DBD0", "DB", 1, 0, None, 4),
    ("DB1.DBW4", "INT", "DB1.DBW4", "DB", 1, 4, None, 2),
    ("DB1.DBW4", "WORD", "DB1.DBW4", "DB", 1, 4, None, 2),
    ("DB1.DBB6", "BYTE", "DB1.DBB6", "DB", 1, 6, None, 1),
    ("DB1.DBB6", "SINT", "DB1.DBB6", "DB", 1, 6, None, 1),
    ("DB1.DBB6", "CHAR", "DB1.DBB6", "DB", 1, 6, None, 1),
    ("db12.dbx12.7", "bool", "DB12.DBX12.7", "DB", 12, 12, 7, 1),
    (" DB1.DBB20 ", "STRING[32]", "DB1.DBB20", "DB", 1, 20, None, 34),
    ("DB1.DBB20", "STRING", "DB1.DBB20", "DB", 1, 20, None, 2),  # length from the PLC
    ("MW10", "INT", "MW10", "M", 0, 10, None, 2),
    ("M10.1", "BOOL", "M10.1", "M", 0, 10, 1, 1),
    ("MX10.1", "BOOL", "M10.1", "M", 0, 10, 1, 1),
    ("MD20", "REAL", "MD20", "M", 0, 20, None, 4),
    ("I0.1", "BOOL", "I0.1", "I", 0, 0, 1, 1),
    ("E0.1", "BOOL", "I0.1", "I", 0, 0, 1, 1),
    ("IB0", "BYTE", "IB0", "I", 0, 0, None, 1),
    ("QB0", "BYTE", "QB0", "Q", 0, 0, None, 1),
    ("A0.7", "BOOL", "Q0.7", "Q", 0, 0, 7, 1),
    ("QW2", "UINT", "QW2", "Q", 0, 2, None, 2),
])
def test_parse_address_good_forms(address, data_type, text, area, db, offset, bit, size):
    a = S7Driver.parse_address(address, data_type)
    assert (a.text, a.area, a.db, a.offset, a.bit, a.size()) == (text, area, db, offset, bit, size)


@pytest.mark.parametrize("address, data_type, field, words", [
    ("DB1.DBX12", "BOOL", "address", "needs the bit number, e.g. DB1.DBX12.0"),
    ("M12", "BOOL", "address", "needs the bit number, e.g. M12.0"),
    ("DB1.DBX12.8", "BOOL", "address", "bits are 0 to 7"),
    ("DB0.DBW0", "INT", "address", "DB numbers run from 1 to 65535"),
    ("DB1.DBW4.1", "INT", "address", "use DB1.DBW4"),
    ("DB1.DBD70000", "DINT", "address", "byte offset 70000 is out of range"),
    ("DB1.W4", "INT", "address", "the second part repeats DB: DB1.DBW4"),
    ("DB1", "INT", "address", "a DB address has two parts"),
    ("T5", "INT", "address", "timers and counters are not supported"),
    ("DB1,DBW4", "INT", "address", "expected DB<n>.DBX<byte>.<bit>"),
    ("XYZ", "INT", "address", "expected DB<n>.DBX<byte>.<bit>"),
    ("", "INT", "address", "empty"),
    ("DB1.DBW4", "REAL", "data_type", "is a word (2 bytes): its data type is one of INT, WORD, UINT"),
    ("DB1.DBD0", "INT", "data_type", "DINT, DWORD, UDINT, REAL"),
    ("DB1.DBX0.0", "INT", "data_type", "BOOL"),
    ("DB1.DBD0", "STRING", "data_type", "a STRING starts at a byte address, e.g. DB1.DBB20"),
    ("DB1.DBB0", "STRING[300]", "data_type", "1 to 254 characters"),
    ("DB1.DBD0", "FLOAT", "data_type", "not an S7 data type"),
    ("DB1.DBD0", "LREAL", "data_type", "not an S7 data type"),
])
def test_parse_address_refuses_bad_forms(address, data_type, field, words):
    with pytest.raises(ConfigError) as err:
        S7Driver.parse_address(address, data_type)
    assert err.value.field == field
    assert words in err.value.message, err.value.message


def test_plan_names_the_bad_tag():
    with pytest.raises(ConfigError) as err:
        make_driver(1).plan(specs(("DB1.DBD0", "DINT"), ("DB1.DBX3", "BOOL")))
    assert err.value.field == "tags[1].address" and "DB1.DBX3.0" in err.value.message


# -- plan -----------------------------------------------------------------------------------------------------------

def ranges_of(plan: S7Plan) -> list[list[tuple]]:
    return [[(r.area, r.db, r.start, r.size) for r in req.ranges] for req in plan.requests]


def test_plan_merges_neighbours_per_db():
    plan = make_driver(1).plan(specs(
        ("DB1.DBD0", "DINT"), ("DB1.DBD4", "REAL"), ("DB1.DBW8", "INT"),  # back to back
        ("DB1.DBD20", "DINT"),      # gap 10 <= 16: merged, 0..24
        ("DB1.DBD60", "DINT"),      # gap 36: a range of its own
        ("DB2.DBX0.0", "BOOL"), ("DB2.DBX0.1", "BOOL"),  # the same byte
        ("MW10", "INT"), ("M12.0", "BOOL"),  # M area, 10..13
        ("DB1.DBD0", "DINT"),       # again: one item, two tag ids
    ))
    assert ranges_of(plan) == [[("DB", 1, 0, 24), ("DB", 1, 60, 4), ("DB", 2, 0, 1), ("M", 0, 10, 3)]]
    assert plan.requests[0].kind == "read_multi_vars"
    first = plan.requests[0].ranges[0]
    assert [i.address.text for i in first.items] == ["DB1.DBD0", "DB1.DBD4", "DB1.DBW8", "DB1.DBD20"]
    assert first.items[0].tag_ids == [0, 9]
    assert plan.requests[0].request_bytes == 14 + 4 * 12
    assert plan.requests[0].reply_bytes == 14 + (4 + 24) + (4 + 4) + (4 + 2) + (4 + 4)


@pytest.mark.parametrize("pdu, expected", [
    (480, [[("DB", 3, 0, 460)], [("DB", 3, 460, 340)]]),                 # 462-byte payload: 115 + 85 REALs
    (240, [[("DB", 3, 0, 220)], [("DB", 3, 220, 220)], [("DB", 3, 440, 220)], [("DB", 3, 660, 140)]]),
])
def test_plan_splits_at_the_pdu_without_tearing_a_tag(pdu, expected):
    plan = make_driver(1, pdu_size=pdu).plan([TagSpec(i, f"DB3.DBD{4 * i}", "REAL") for i in range(200)])
    assert plan.pdu == pdu and ranges_of(plan) == expected
    for req in plan.requests:
        assert req.kind == "read_area"
        assert req.request_bytes <= pdu and req.reply_bytes <= pdu
        for rng in req.ranges:
            assert rng.size <= pdu - 18
            assert all(rng.start <= it.start and it.end <= rng.end for it in rng.items)


def test_plan_packs_ranges_into_multi_variable_requests():
    scattered = [TagSpec(n, f"DB{n}.DBD0", "DINT") for n in range(1, 31)]  # 30 DBs, one range each
    plan = make_driver(1).plan(scattered)
    assert [len(r.ranges) for r in plan.requests] == [MAX_ITEMS, 10]
    assert all(r.kind == "read_multi_vars" for r in plan.requests)
    small = make_driver(1, pdu_size=240).plan(scattered)  # 14 + 12 * 18 = 230 <= 240
    assert [len(r.ranges) for r in small.requests] == [18, 12]
    assert all(r.request_bytes <= 240 and r.reply_bytes <= 240 for r in small.requests)
    # big and small ranges: first fit by decreasing size fills the requests
    mixed = [TagSpec(i, f"DB1.DBD{4 * i}", "REAL") for i in range(110)]  # 440 bytes
    mixed += [TagSpec(200 + n, f"DB{n}.DBW0", "INT") for n in range(2, 12)]  # ten 2-byte ranges
    plan = make_driver(1).plan(mixed)
    # 14 + (4 + 440) = 458 leaves room for three 6-byte items in the first reply (476 <= 480), not a fourth
    assert ranges_of(plan) == [[("DB", 1, 0, 440), ("DB", 2, 0, 2), ("DB", 3, 0, 2), ("DB", 4, 0, 2)],
                               [("DB", n, 0, 2) for n in range(5, 12)]]
    assert [r.reply_bytes for r in plan.requests] == [476, 56]


def test_build_requests_is_pure_and_respects_every_budget():
    plan = make_driver(1).plan([TagSpec(i, f"DB{1 + i % 7}.DBD{40 * i}", "REAL") for i in range(300)])
    for pdu in (240, 480, 960):
        requests = build_requests(plan.items, pdu)
        assert sum(len(rng.items) for req in requests for rng in req.ranges) == len(plan.items)
        for req in requests:
            assert len(req.ranges) <= MAX_ITEMS and req.request_bytes <= pdu and req.reply_bytes <= pdu


# -- read -----------------------------------------------------------------------------------------------------------

EVERY_TYPE = [
    ("DB1.DBD0", "DINT", -123456),
    ("DB1.DBD4", "DWORD", 0xDEADBEEF),
    ("DB1.DBD8", "UDINT", 4_000_000_000),
    ("DB1.DBD12", "REAL", 12.5),
    ("DB1.DBW16", "INT", -1234),
    ("DB1.DBW18", "WORD", 0xBEEF),
    ("DB1.DBW20", "UINT", 60000),
    ("DB1.DBB22", "BYTE", 200),
    ("DB1.DBB23", "SINT", -5),
    ("DB1.DBB24", "USINT", 250),
    ("DB1.DBB25", "CHAR", "Z"),
    ("DB1.DBX26.0", "BOOL", True),
    ("DB1.DBX26.1", "BOOL", False),
    ("DB1.DBX26.7", "BOOL", True),
    ("DB1.DBB30", "STRING[20]", "ORD-4711"),
    ("DB1.DBB30", "STRING[4]", None),  # 8 characters in a STRING[4]: see test_string_longer_than_declared
    ("DB1.DBB60", "STRING", "ABC"),  # the length comes from the PLC
    ("M0.1", "BOOL", True),
    ("MW10", "INT", 321),
    ("MD20", "REAL", -0.5),
    ("IB0", "BYTE", 0x0F),
    ("I0.3", "BOOL", True),
    ("I0.4", "BOOL", False),
    ("Q0.7", "BOOL", True),
    ("QW2", "UINT", 4242),
]


def test_read_every_data_type(s7_driver):
    pairs = [(a, t) for a, t, v in EVERY_TYPE if v is not None]
    readings = s7_driver.read(s7_driver.plan(specs(*pairs)))
    for i, (address, _data_type, value) in enumerate([e for e in EVERY_TYPE if e[2] is not None]):
        assert readings[i].quality == GOOD, (address, readings[i])
        assert readings[i].value == value and type(readings[i].value) is type(value), (address, readings[i])


def test_values_follow_the_plc(s7_cpu, s7_driver):
    plan = s7_driver.plan(specs(("DB3.DBD100", "REAL"), ("DB3.DBX104.2", "BOOL")))
    area = s7_cpu.memory_areas[(S7Area.DB, 3)]
    struct.pack_into(">f", area, 100, 99.25)
    area[104] = 0b100
    try:
        readings = s7_driver.read(plan)
        assert (readings[0].value, readings[1].value) == (99.25, True)
    finally:
        area[100:105] = bytes(5)


def test_string_length_is_learned_once_and_planned(s7_driver):
    plan = s7_driver.plan(specs(("DB1.DBB60", "STRING"), ("DB1.DBD0", "DINT")))
    assert ranges_of(plan) == [[("DB", 1, 0, 4), ("DB", 1, 60, 2)]]  # before: just the header
    assert s7_driver.read(plan)[0].value == "ABC"
    effective = s7_driver._effective_plan(plan)
    assert ranges_of(effective) == [[("DB", 1, 0, 4), ("DB", 1, 60, 12)]]  # STRING[10]: 2 + 10 bytes
    assert s7_driver.read(plan)[0] == type(s7_driver.read(plan)[0])("ABC", GOOD)
    configured = make_driver(1, string_length=10).plan(specs(("DB1.DBB60", "STRING"),))
    assert ranges_of(configured) == [[("DB", 1, 60, 12)]]


def test_string_longer_than_declared(s7_driver):
    readings = s7_driver.read(s7_driver.plan(specs(("DB1.DBB30", "STRING[4]"), ("DB1.DBB80", "STRING[4]"))))
    for r in readings.values():
        assert r.quality == UNCERTAIN and r.reason.startswith(PROTOCOL_ERROR)
    assert readings[0].value == "ORD-" and "says 8 characters" in readings[0].reason
    assert readings[1].value == "AB\x00\x00" and "says 9 characters (maximum 4)" in readings[1].reason


def test_long_string_on_a_small_pdu(s7_cpu):
    area = s7_cpu.memory_areas[(S7Area.DB, 3)]
    area[500:756] = bytes([254, 254]) + b"x" * 254
    driver = make_driver(s7_cpu.port_, pdu_size=240)
    driver.connect()
    try:
        assert driver.pdu_length == 240
        plan = driver.plan(specs(("DB3.DBB500", "STRING[254]"), ("DB3.DBD0", "DINT")))
        assert ranges_of(plan) == [[("DB", 3, 0, 4)], [("DB", 3, 500, 256)]]  # 256 > 222: alone, split on read
        readings = driver.read(plan)
        assert readings[0] == type(readings[0])("x" * 254, GOOD) and readings[1].quality == GOOD
    finally:
        driver.close()
        area[500:756] = bytes(256)


def test_missing_db_and_past_the_end_are_bad_the_others_good(s7_driver):
    plan = s7_driver.plan(specs(
        ("DB1.DBD0", "DINT"),       # 0 good
        ("DB9.DBD0", "DINT"),       # 1 no DB9
        ("DB9.DBW10", "INT"),       # 2 no DB9
        ("DB2.DBD62", "DINT"),      # 3 DB2 has 64 bytes
        ("DB2.DBD0", "DINT"),       # 4 good, in the same range as 3 (gap 58? no: own range) and same request
        ("DB2.DBW56", "INT"),       # 5 good, merged with 3 into 56..66
        ("MW10", "INT"),            # 6 good
    ))
    assert len(plan.requests) == 1  # one multi-variable request holds every range
    for _cycle in range(2):
        readings = s7_driver.read(plan)
        assert readings[0].value == -123456 and readings[6].value == 321
        assert readings[4] == type(readings[4])(0, GOOD) and readings[5] == type(readings[5])(0, GOOD)
        for i in (1, 2):
            assert readings[i].quality == BAD and readings[i].value is None
            assert readings[i].reason == f"{INVALID_ADDRESS}: DB9 does not exist in the PLC"
        assert readings[3].quality == BAD and readings[3].reason.startswith(INVALID_ADDRESS)
        assert "DB2.DBD62 (4 bytes) is beyond the end of DB2" in readings[3].reason
        assert s7_driver.connected, "a missing DB is not a broken link"
    # the second cycle ran without the missing addresses: one request, nothing failing
    effective = s7_driver._effective_plan(plan)
    assert ranges_of(effective) == [[("DB", 1, 0, 4), ("DB", 2, 0, 4), ("DB", 2, 56, 2), ("M", 0, 10, 2)]]


def test_a_short_reply_is_bad_never_a_crash(s7_driver):
    # DB77 answers one byte short: once alone (read_area), once inside a multi-variable request
    alone = s7_driver.read(s7_driver.plan(specs(("DB77.DBD0", "DINT"), ("DB77.DBW4", "INT"))))
    mixed = s7_driver.read(s7_driver.plan(specs(("DB77.DBD0", "DINT"), ("DB77.DBW4", "INT"), ("DB1.DBD0", "DINT"))))
    for readings in (alone, mixed):
        assert readings[0].quality == BAD and readings[0].reason.startswith(PROTOCOL_ERROR), readings[0]
        assert readings[1].quality == BAD and readings[1].reason.startswith(PROTOCOL_ERROR), readings[1]
    assert "short reply" in mixed[1].reason or "size mismatch" in mixed[1].reason
    assert mixed[2] == type(mixed[2])(-123456, GOOD)
    assert s7_driver.connected


def test_read_before_connect_is_a_link_error():
    with pytest.raises(DriverError) as err:
        make_driver(1).read(make_driver(1).plan(specs(("DB1.DBD0", "DINT"))))
    assert err.value.kind == CANNOT_CONNECT


# -- diagnostics ------------------------------------------------------------------------------------------------------

def test_test_connection_success(s7_cpu):
    result = make_driver(s7_cpu.port_).test_connection()
    assert result.ok and result.error is None
    assert [s.name for s in result.steps] == ["tcp", "handshake", "identity", "probe_read"]
    assert all(s.ok and s.duration_ms >= 0 and s.detail for s in result.steps)
    ident = result.identity
    assert ident["pdu_length"] == 480 and ident["cpu_state"] == "RUN"
    assert ident["module_type"] and ident["serial"] and ident["order_code"].startswith("6ES7")
    assert ident["firmware"].startswith("V") and (ident["rack"], ident["slot"]) == (0, 1)
    assert "PDU 480" in result.steps[1].detail
    assert result.steps[3].detail == "DB1.DBB0 = 255 (BYTE)"  # the first byte of the first DB
    probe = make_driver(s7_cpu.port_).test_connection(probe_address="DB1.DBD12", probe_data_type="REAL")
    assert probe.ok and probe.steps[3].detail == "DB1.DBD12 = 12.5 (REAL)"
    missing = make_driver(s7_cpu.port_).test_connection(probe_address="DB9.DBW0")
    assert not missing.ok and missing.error == INVALID_ADDRESS and "DB9 does not exist" in missing.steps[3].detail


def test_test_connection_closed_port():
    result = make_driver(free_port()).test_connection()
    assert not result.ok and result.error == CANNOT_CONNECT
    assert [s.name for s in result.steps] == ["tcp"]
    assert "check the port number" in result.steps[0].suggestion


@pytest.mark.parametrize("config", [{"slot": 2}, {"rack": 1}, {"cpu_type": "S7-300"}])
def test_test_connection_wrong_rack_or_slot(s7_cpu, config):
    driver = make_driver(s7_cpu.port_, **config)
    result = driver.test_connection()
    assert not result.ok and result.error == CANNOT_CONNECT
    assert [(s.name, s.ok) for s in result.steps] == [("tcp", True), ("handshake", False)]
    step = result.steps[1]
    rack, slot = driver.config["rack"], driver.config["slot"]
    assert step.detail.startswith(f"S7 connection to rack {rack}, slot {slot} refused")
    assert f"refused the S7 connection to rack {rack}, slot {slot}: check rack and slot" in step.suggestion
    assert "S7-300: rack 0, slot 2" in step.suggestion and "PUT/GET" in step.suggestion
    with pytest.raises(DriverError) as err:
        driver.connect()
    assert err.value.kind == CANNOT_CONNECT and "check rack and slot" in err.value.suggestion


def test_connect_closed_port():
    with pytest.raises(DriverError) as err:
        make_driver(free_port()).connect()
    assert err.value.kind == CANNOT_CONNECT and "refused" in err.value.message


# -- discovery ------------------------------------------------------------------------------------------------------

def test_discover_data_blocks_with_sizes(s7_cpu):
    layout = "name,offset,type\nCount,0,DInt\nRate,12.0,Real\nFlag,26.7,Bool\nOrder,30,String[20]\n"
    found = make_driver(s7_cpu.port_).discover(db_layouts={1: layout})
    assert [(t.address, t.data_type) for t in found] == [("DB1", "DB"), ("DB2", "DB"), ("DB3", "DB"),
                                                        ("DB77", "DB")]
    assert [t.description.split(",")[1].strip() for t in found] == ["200 bytes", "64 bytes", "1000 bytes",
                                                                      "16 bytes"]
    children = found[0].children
    assert [(c.name, c.address, c.data_type) for c in children] == [
        ("Count", "DB1.DBD0", "DINT"), ("Rate", "DB1.DBD12", "REAL"), ("Flag", "DB1.DBX26.7", "BOOL"),
        ("Order", "DB1.DBB30", "STRING[20]")]
    driver = make_driver(s7_cpu.port_)
    driver.connect()
    try:  # what the layout names is readable as it is
        readings = driver.read(driver.plan([TagSpec(i, c.address, c.data_type) for i, c in enumerate(children)]))
        assert [r.value for r in readings.values()] == [-123456, 12.5, True, "ORD-4711"]
    finally:
        driver.close()


def test_import_db_layout():
    text = """# DB5 "Line" as exported
name,offset,type,comment
ProductionCount,0,DINT,parts made
Running,12.0,Bool
Reject,4.0,DInt
State,14,Int

OrderId,64,String[20]
Speed,16,Real
Code,20,char
"""
    tags = import_db_layout(text, db_number=5)
    assert [(t.name, t.address, t.data_type) for t in tags] == [
        ("ProductionCount", "DB5.DBD0", "DINT"), ("Running", "DB5.DBX12.0", "BOOL"), ("Reject", "DB5.DBD4", "DINT"),
        ("State", "DB5.DBW14", "INT"), ("OrderId", "DB5.DBB64", "STRING[20]"), ("Speed", "DB5.DBD16", "REAL"),
        ("Code", "DB5.DBB20", "CHAR")]
    assert tags[0].description == "DB5 offset 0.0; parts made"
    for t in tags:  # each one is an address the driver accepts
        S7Driver.parse_address(t.address, t.data_type)


@pytest.mark.parametrize("bad_line, field, words", [
    ("Speed,16", "line 3", "name,offset,type"),
    (",16,Real", "line 3, column 1 (name)", "empty"),
    ("Count,17,Real", "line 3, column 1 (name)", "already on line 2"),
    ("Speed,x16,Real", "line 3, column 2 (offset)", "not an offset"),
    ("Speed,16,Float", "line 3, column 3 (type)", "'Float' is not an S7 type"),
    ("Flag,12,Bool", "line 3, column 2 (offset)", "a Bool needs byte.bit, e.g. 12.0"),
    ("Flag,12.9,Bool", "line 3, column 2 (offset)", "bits are 0 to 7"),
    ("Speed,16.3,Real", "line 3, column 2 (offset)", "starts at a whole byte"),
    ("Name,30,String[300]", "line 3, column 3 (type)", "not an S7 type"),
])
def test_import_db_layout_names_the_line_and_column(bad_line, field, words):
    with pytest.raises(ConfigError) as err:
        import_db_layout(f"name,offset,type\nCount,0,DINT\n{bad_line}\n")
    assert err.value.field == field and words in err.value.message, err.value


# -- the link -------------------------------------------------------------------------------------------------------

def test_server_stopped_while_connected_then_back():
    cpu, port = start_cpu()
    driver = make_driver(port, timeout_s=1.0)
    plan = driver.plan(specs(("DB1.DBD0", "DINT"), ("MW10", "INT")))
    driver.connect()
    assert driver.read(plan)[0].value == -123456
    cpu.stop()
    with pytest.raises(DriverError) as err:
        driver.read(plan)
    assert err.value.kind == CANNOT_CONNECT and "lost" in err.value.message
    assert not driver.connected
    with pytest.raises(DriverError):
        driver.connect()
    cpu, port = start_cpu(port)  # back on the same port
    try:
        driver.connect()
        readings = driver.read(plan)
        assert readings[0].value == -123456 and readings[1].value == 321
    finally:
        driver.close()
        cpu.stop()


# -- the simulated plant --------------------------------------------------------------------------------------------

def test_every_tag_of_a_plant_machine_reads_good():
    from plant import Plant, default_layout

    layout = default_layout()
    machine = next(m for m in layout.machines if m.protocol == "S7")
    plant = Plant(dataclasses.replace(layout, machines=(machine,)), seed=1, time_scale=1.0).start()
    try:
        endpoint = plant.endpoints()[0]
        driver = S7Driver(ConnectionSettings("S7", endpoint["host"], endpoint["port"],
                                             S7Driver.validate_config(endpoint["protocol_config"])))
        plan = driver.plan([TagSpec(i, t["address"], t["data_type"], t["name"])
                            for i, t in enumerate(endpoint["tags"])])  # STRING without a length among them
        driver.connect()
        try:
            readings = driver.read(plan)
            bad = {endpoint["tags"][i]["address"]: r for i, r in readings.items() if r.quality != GOOD}
            assert not bad and len(readings) == len(endpoint["tags"])
            assert [t.address for t in driver.discover()] == [f"DB{endpoint['protocol_config']['db']}"]
        finally:
            driver.close()
    finally:
        plant.stop()


# -- bench (printed, not asserted) ----------------------------------------------------------------------------------

def _per_read(driver, plan, n) -> float:
    driver.read(plan)
    t0 = time.perf_counter()
    for _ in range(n):
        driver.read(plan)
    return (time.perf_counter() - t0) / n


def test_bench_100_tag_plans(s7_driver, capsys):
    contiguous = s7_driver.plan([TagSpec(i, f"DB3.DBD{4 * i}", "REAL") for i in range(100)])
    clusters = [(1, 0), (1, 100), (2, 0)] + [(3, 100 * k) for k in range(7)]  # 10 ranges of 10 REALs, 3 DBs
    scattered_tags = [TagSpec(10 * c + k, f"DB{db}.DBD{offset + 4 * k}", "REAL")
                      for c, (db, offset) in enumerate(clusters) for k in range(10)]
    scattered = s7_driver.plan(scattered_tags)
    one_by_one = S7Plan(scattered.pdu, [S7Request([r]) for req in scattered.requests for r in req.ranges],
                        scattered.items)
    lines = []
    for label, plan, n in (("100 REALs back to back", contiguous, 300), ("100 tags, scattered", scattered, 300),
                           ("same ranges, one read_area each", one_by_one, 100)):
        per = _per_read(s7_driver, plan, n)
        kinds = [r.kind for r in plan.requests]
        shape = ", ".join(f"{kinds.count(k)} {k}" for k in dict.fromkeys(kinds))
        shape += f", {sum(len(r.ranges) for r in plan.requests)} ranges"
        lines.append(f"[bench] S7: {label} ({shape}): {per * 1000:.2f} ms per read, {1 / per:.0f} reads/s")
    # the same two plans through a PLC that takes 2 ms to answer each request (a busy CPU, a real network)
    from tests.support.proxy import FaultProxy

    proxy = FaultProxy(s7_driver.settings.port).start()
    proxy.delay_s = 0.002
    slow = make_driver(proxy.port)
    slow.connect()
    try:
        for label, plan in (("100 tags, scattered", scattered), ("same ranges, one read_area each", one_by_one)):
            per = _per_read(slow, plan, 20)
            lines.append(f"[bench] S7 with 2 ms per reply: {label}: {per * 1000:.2f} ms per read, "
                         f"{1 / per:.0f} reads/s")
    finally:
        slow.close()
        proxy.cut()
    with capsys.disabled():
        print("\n" + "\n".join(lines))


def test_range_decode_equals_item_decode():
    """read() decodes a whole range's reply with precompiled unpackers (S7Driver._decode_range); it must give the
    readings _decode gives each item's own bytes, for every data type, shared addresses, bits and strings."""
    import random

    from collectors.base import TagSpec

    driver = make_driver(1)
    specs = []
    kinds = [("DBD{o}", "REAL", 4), ("DBD{o}", "DINT", 4), ("DBD{o}", "DWORD", 4), ("DBD{o}", "UDINT", 4),
             ("DBW{o}", "INT", 2), ("DBW{o}", "WORD", 2), ("DBW{o}", "UINT", 2), ("DBB{o}", "BYTE", 1),
             ("DBB{o}", "SINT", 1), ("DBB{o}", "USINT", 1), ("DBB{o}", "CHAR", 1), ("DBX{o}.3", "BOOL", 1),
             ("DBB{o}", "STRING[6]", 8)]
    offset = 0
    for k in range(80):
        form, dtype, size = kinds[k % len(kinds)]
        specs.append(TagSpec(k + 1, f"DB3." + form.format(o=offset), dtype, f"t{k}"))
        offset += size + (k % 3 == 0)
    specs.append(TagSpec(200, "DB3.DBD0", "REAL", "same address as t0"))
    plan = driver.plan(specs)
    rng = random.Random(3)
    ranges = [r for req in plan.requests for r in req.ranges]
    assert ranges and sum(len(r.items) for r in ranges) == len(plan.items)
    for _ in range(40):
        for r in ranges:
            data = bytes(rng.randrange(256) for _ in range(r.size))
            fast: dict = {}
            driver._decode_range(r, data, fast)
            for item in r.items:
                slow = S7Driver._decode(item, S7Driver._item_bytes(r, item, data))
                for tag_id in item.tag_ids:
                    got = fast[tag_id]
                    same_nan = isinstance(slow.value, float) and slow.value != slow.value and got.value != got.value
                    assert same_nan or (got.value == slow.value and type(got.value) is type(slow.value)), item
                    assert (got.quality, got.reason) == (slow.quality, slow.reason)
    assert len(fast) == len(specs)
