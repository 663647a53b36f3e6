"""The Modbus TCP driver against pymodbus servers on 127.0.0.1 (the real client library, no mocks).

The module's server holds one value of every data type at known registers (HR0..HR59 and HR70..HR99 exist,
HR60..HR69 is a hole that answers exception 2), coils C0..C15 and discrete inputs DI0..DI15. Its trace hook counts
every request the server receives and can cut a reply short (requests at HR90) to pin the wrong-length branch.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time

import pytest
from pymodbus.client import ModbusTcpClient
from pymodbus.pdu.device import ModbusDeviceIdentification
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from collectors.base import (
    BAD,
    CANNOT_CONNECT,
    DEVICE_ERROR,
    GOOD,
    INVALID_ADDRESS,
    PROTOCOL_ERROR,
    TIMEOUT,
    ConfigError,
    ConnectionSettings,
    DriverError,
    TagSpec,
    driver_class,
)
from collectors.drivers.modbus import ModbusDriver, ModbusPlan

DT = ModbusTcpClient.DATATYPE


def regs(value, dtype, word_order="big"):
    return ModbusTcpClient.convert_to_registers(value, DT[dtype], word_order=word_order)


def string_regs(text: str, n_regs: int) -> list[int]:
    raw = text.encode().ljust(2 * n_regs, b"\x00")
    return [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2)]


# Known values, register by register (zero-based protocol addresses).
HR_MAP: dict[int, list[int]] = {
    0: [1234],                                   # UINT16
    1: regs(-2, "INT16"),                        # INT16
    2: regs(-100000, "INT32"),                   # INT32
    4: regs(3_000_000_000, "UINT32"),            # UINT32
    6: regs(3.5, "FLOAT32"),                     # FLOAT32, high word first
    8: regs(-1234567890123, "INT64"),            # INT64
    12: regs(2**63 + 5, "UINT64"),               # UINT64
    16: regs(-2.25e10, "FLOAT64"),               # FLOAT64
    20: string_regs("Cola 12x0.5L", 8),          # STRING[16]
    28: regs(3.5, "FLOAT32", "little"),          # FLOAT32, low word first
    30: [0b1010_0000_0000_1001],                 # bits 0, 3, 13, 15 set
    31: regs(float("nan"), "FLOAT32"),           # NaN
    33: [0x3412],                                # 0x1234 with its bytes swapped
    34: regs(-7, "INT32", "little"),             # INT32, low word first
}


def hr_block() -> list[int]:
    values = list(range(1000, 1060))  # HR0..HR59: filler counts upward
    for start, words in HR_MAP.items():
        values[start:start + len(words)] = words
    return values


COILS = [True, False, True, True] + [False] * 11 + [True]  # C0..C15
DISCRETE = [False, True] * 8  # DI0..DI15
IR_VALUES = [500 + i for i in range(50)]  # IR0..IR49


class ModbusSim:
    """A pymodbus simulator server in its own event-loop thread."""

    def __init__(self, port: int = 0, device_id: int = 1, identity: dict | None = None):
        self.port = port
        self.device_id = device_id
        self.identity = identity
        self.requests: list[tuple[int, int, int]] = []  # (function code, address, count) as received
        self.short_reply_at: int | None = 90
        self._last_addr = None
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server = None

    def _trace_pdu(self, sending: bool, pdu):
        if not sending:
            self._last_addr = getattr(pdu, "address", None)
            self.requests.append((pdu.function_code, getattr(pdu, "address", -1), getattr(pdu, "count", -1)))
        elif (self.short_reply_at is not None and self._last_addr == self.short_reply_at
              and getattr(pdu, "registers", None)):
            pdu.registers = pdu.registers[:-1]  # a device bug: one register short
        return pdu

    def _device(self) -> SimDevice:
        hr = hr_block()
        return SimDevice(id=self.device_id, simdata=(
            [SimData(0, values=COILS, datatype=DataType.BITS)],
            [SimData(0, values=DISCRETE, datatype=DataType.BITS)],
            [SimData(0, values=hr[:60], datatype=DataType.REGISTERS),
             SimData(70, values=list(range(7000, 7030)), datatype=DataType.REGISTERS)],
            [SimData(0, values=IR_VALUES, datatype=DataType.REGISTERS)],
        ))

    async def _start(self):
        ident = ModbusDeviceIdentification(info_name=self.identity) if self.identity else None
        self.server = ModbusTcpServer([self._device()], address=("127.0.0.1", self.port), identity=ident,
                                      trace_pdu=self._trace_pdu)
        await self.server.serve_forever(background=True)
        self.port = self.server.transport.sockets[0].getsockname()[1]

    def start(self) -> "ModbusSim":
        if not self.thread.is_alive():
            self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(5)
        return self

    def stop_server(self) -> None:
        if self.server is not None:
            asyncio.run_coroutine_threadsafe(self.server.shutdown(), self.loop).result(5)
            self.server = None

    def close(self) -> None:
        self.stop_server()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def set_values(self, function_code: int, address: int, values: list) -> None:
        async def _set():
            await self.server.context.async_setValues(self.device_id, function_code, address, values)
        asyncio.run_coroutine_threadsafe(_set(), self.loop).result(5)


@pytest.fixture(scope="module")
def sim():
    server = ModbusSim(identity={"VendorName": "ACME Automation", "ProductCode": "PLC-9",
                                 "MajorMinorRevision": "2.4"}).start()
    yield server
    server.close()


def make(port: int, timeout_s: float = 1.0, **config) -> ModbusDriver:
    cls = driver_class("MODBUS")
    return cls(ConnectionSettings("MODBUS", "127.0.0.1", port, cls.validate_config(config), timeout_s))


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
    assert driver_class("MODBUS") is ModbusDriver
    cfg = ModbusDriver.validate_config({"holding_registers": 36})  # unknown keys (the plant's extras) are kept
    assert cfg["unit_id"] == 1 and cfg["byte_order"] == "big" and cfg["word_order"] == "big"
    assert cfg["zero_based"] is True and cfg["max_registers_per_request"] == 125 and cfg["max_gap"] == 10


@pytest.mark.parametrize("config, field", [
    ({"unit_id": 300}, "unit_id"), ({"unit_id": "x"}, "unit_id"), ({"word_order": "middle"}, "word_order"),
    ({"byte_order": 2}, "byte_order"), ({"zero_based": "maybe"}, "zero_based"),
    ({"max_registers_per_request": 126}, "max_registers_per_request"), ({"max_gap": -1}, "max_gap"),
])
def test_validate_config_names_the_field(config, field):
    with pytest.raises(ConfigError) as err:
        ModbusDriver.validate_config(config)
    assert err.value.field == field


@pytest.mark.parametrize("address, data_type, table, offset, bit, size", [
    ("HR0", "UINT16", "HR", 0, None, 1),
    ("hr7", "int32", "HR", 7, None, 2),
    ("IR3", "FLOAT64", "IR", 3, None, 4),
    ("C12", "BOOL", "C", 12, None, 1),
    ("DI0", "BOOL", "DI", 0, None, 1),
    ("HR5.3", "BOOL", "HR", 5, 3, 1),
    ("HR10", "STRING[16]", "HR", 10, None, 8),
    ("HR10", "STRING[15]", "HR", 10, None, 8),
    ("40001", "UINT16", "HR", 0, None, 1),
    ("40010", "REAL", "HR", 9, None, 2),
    ("30001", "INT16", "IR", 0, None, 1),
    ("00001", "BOOL", "C", 0, None, 1),
    ("10005", "BOOL", "DI", 4, None, 1),
    ("400001", "UINT16", "HR", 0, None, 1),
    ("465536", "UINT16", "HR", 65535, None, 1),
    ("40006.15", "BOOL", "HR", 5, 15, 1),
])
def test_parse_address_good_forms(address, data_type, table, offset, bit, size):
    addr = ModbusDriver.parse_address(address, data_type)
    assert (addr.table, addr.offset(), addr.bit, addr.size) == (table, offset, bit, size)


def test_parse_address_unit_prefix_and_one_based():
    addr = ModbusDriver.parse_address("3:HR10", "UINT16")
    assert addr.unit == 3 and addr.offset() == 10
    one = ModbusDriver.parse_address("HR1", "UINT16", {"zero_based": False})
    assert one.offset(False) == 0
    assert ModbusDriver.parse_address("40001", "UINT16", {"zero_based": False}).offset(False) == 0  # Modicon: 1-based
    with pytest.raises(ConfigError) as err:
        ModbusDriver.parse_address("HR0", "UINT16", {"zero_based": False})
    assert err.value.field == "address" and "HR1" in err.value.message


@pytest.mark.parametrize("address, data_type, field, words", [
    ("", "UINT16", "address", "empty"),
    ("XR5", "UINT16", "address", "not a Modbus address"),
    ("HR", "UINT16", "address", "not a Modbus address"),
    ("HR-1", "UINT16", "address", "not a Modbus address"),
    ("HR70000", "UINT16", "address", "out of range"),
    ("12", "UINT16", "address", "bare number"),
    ("20001", "UINT16", "address", "start with 0, 1, 3 or 4"),
    ("40000", "UINT16", "address", "count from 1"),
    ("C5.1", "BOOL", "address", "single bits"),
    ("HR5.16", "BOOL", "address", "bit 16"),
    ("999:HR1", "UINT16", "address", "unit"),
    ("HR65535", "UINT32", "address", "past the last register"),
    ("HR5.3", "FLOAT32", "data_type", "BOOL"),
    ("C5", "INT16", "data_type", "BOOL"),
    ("HR10", "STRING", "data_type", "STRING[16]"),
    ("HR10", "STRING[300]", "data_type", "250"),
    ("HR10", "QUADWORD", "data_type", "FLOAT32"),
])
def test_parse_address_bad_forms_name_the_expected_form(address, data_type, field, words):
    with pytest.raises(ConfigError) as err:
        ModbusDriver.parse_address(address, data_type)
    assert err.value.field == field
    assert words in err.value.message
    if field == "address":
        assert "HR<n>" in err.value.message and "40001" in err.value.message


# --- plan --------------------------------------------------------------------------------------------------------


def shape(plan: ModbusPlan):
    return [(r.unit, r.table, r.start, r.count, sorted(i.tag_id for i in r.items)) for r in plan.requests]


def test_plan_merges_neighbours_and_gaps():
    d = make(1)
    plan = d.plan(tags(("HR0", "UINT16"), ("HR1", "INT16"), ("HR2", "FLOAT32"), ("HR14", "UINT16"),
                       ("HR26", "UINT16"), ("HR5.3", "BOOL"), ("HR5.4", "BOOL")))
    # HR0..HR3, the bits of HR5 and HR14 (8 registers after HR5): one range; HR26 is 11 after HR14.
    assert shape(plan) == [(1, "HR", 0, 15, [1, 2, 3, 4, 6, 7]), (1, "HR", 26, 1, [5])]
    tight = make(1, max_gap=0).plan(tags(("HR0", "UINT16"), ("HR2", "UINT16"), ("HR3", "UINT16")))
    assert shape(tight) == [(1, "HR", 0, 1, [1]), (1, "HR", 2, 2, [2, 3])]


def test_plan_respects_the_125_register_limit():
    d = make(1)
    plan = d.plan([TagSpec(i, f"HR{i}", "UINT16") for i in range(130)])
    assert [(r.start, r.count, len(r.items)) for r in plan.requests] == [(0, 125, 125), (125, 5, 5)]
    # a 32-bit value never straddles two requests
    plan = d.plan(tags(("HR0", "UINT16"), ("HR124", "FLOAT32")))
    assert [(r.start, r.count) for r in plan.requests] == [(0, 1), (124, 2)]
    small = make(1, max_registers_per_request=10).plan([TagSpec(i, f"HR{i}", "UINT16") for i in range(25)])
    assert [r.count for r in small.requests] == [10, 10, 5]
    assert all(r.count <= 125 for r in d.plan([TagSpec(i, f"HR{3 * i}", "FLOAT64") for i in range(200)]).requests)
    with pytest.raises(ConfigError) as err:
        make(1, max_registers_per_request=4).plan(tags(("HR0", "STRING[10]")))
    assert err.value.field == "tags[0].data_type"


def test_plan_groups_per_unit_and_table_and_bits_up_to_2000():
    d = make(1)
    plan = d.plan(tags(("2:HR0", "UINT16"), ("HR0", "UINT16"), ("IR0", "UINT16"), ("C0", "BOOL"), ("DI0", "BOOL"),
                       ("C100", "BOOL"), ("HR1", "UINT16")))
    assert shape(plan) == [(1, "HR", 0, 2, [2, 7]), (1, "IR", 0, 1, [3]), (1, "C", 0, 101, [4, 6]),
                           (1, "DI", 0, 1, [5]), (2, "HR", 0, 1, [1])]
    coils = d.plan([TagSpec(i, f"C{i}", "BOOL") for i in range(2500)])
    assert [(r.table, r.start, r.count) for r in coils.requests] == [("C", 0, 2000), ("C", 2000, 500)]
    # bits: the gap is max_gap registers' worth of bits (160)
    assert len(d.plan(tags(("C0", "BOOL"), ("C161", "BOOL"))).requests) == 1
    assert len(d.plan(tags(("C0", "BOOL"), ("C162", "BOOL"))).requests) == 2


def test_plan_names_the_bad_tag():
    with pytest.raises(ConfigError) as err:
        make(1).plan(tags(("HR0", "UINT16"), ("HRX", "UINT16")))
    assert err.value.field == "tags[1].address" and "t2" in err.value.message


# --- reading -----------------------------------------------------------------------------------------------------


def test_read_every_data_type(driver):
    spec = tags(("HR0", "UINT16"), ("HR1", "INT16"), ("HR2", "INT32"), ("HR4", "UINT32"), ("HR6", "FLOAT32"),
                ("HR8", "INT64"), ("HR12", "UINT64"), ("HR16", "FLOAT64"), ("HR20", "STRING[16]"),
                ("HR30.0", "BOOL"), ("HR30.1", "BOOL"), ("HR30.3", "BOOL"), ("HR30.15", "BOOL"), ("HR30", "BOOL"),
                ("C0", "BOOL"), ("C1", "BOOL"), ("C15", "BOOL"), ("DI0", "BOOL"), ("DI1", "BOOL"),
                ("IR7", "UINT16"), ("HR20", "STRING[5]"), ("40001", "UINT16"), ("30002", "UINT16"))
    plan = driver.plan(spec)
    assert [(r.table, r.start, r.count) for r in plan.requests] == [
        ("HR", 0, 31), ("IR", 1, 7), ("C", 0, 16), ("DI", 0, 2)]
    got = driver.read(plan)
    values = {t.tag_id: got[t.tag_id].value for t in spec}
    assert all(got[t.tag_id].quality == GOOD for t in spec), {k: v for k, v in got.items() if v.quality != GOOD}
    assert values == {1: 1234, 2: -2, 3: -100000, 4: 3_000_000_000, 5: 3.5, 6: -1234567890123, 7: 2**63 + 5,
                      8: -2.25e10, 9: "Cola 12x0.5L", 10: True, 11: False, 12: True, 13: True, 14: True,
                      15: True, 16: False, 17: True, 18: False, 19: True, 20: 507, 21: "Cola ", 22: 1234, 23: 501}


def test_word_and_byte_order(sim):
    little = make(sim.port, word_order="little")
    swapped = make(sim.port, byte_order="little")
    try:
        little.connect()
        got = little.read(little.plan(tags(("HR28", "FLOAT32"), ("HR34", "INT32"), ("HR6", "FLOAT32"))))
        assert got[1].value == 3.5 and got[2].value == -7
        assert got[3].value != 3.5  # the high-word-first value read the other way round
        swapped.connect()
        got = swapped.read(swapped.plan(tags(("HR33", "UINT16"), ("HR0", "UINT16"))))
        assert got[1].value == 0x1234 and got[2].value == int.from_bytes((1234).to_bytes(2, "big")[::-1], "big")
    finally:
        little.close()
        swapped.close()


def test_one_based_addresses_read_the_same_registers(sim):
    d = make(sim.port, zero_based=False)
    try:
        d.connect()
        got = d.read(d.plan(tags(("HR1", "UINT16"), ("HR7", "FLOAT32"), ("C1", "BOOL"))))
        assert [got[i].value for i in (1, 2, 3)] == [1234, 3.5, True]
    finally:
        d.close()


def test_nan_is_bad_not_a_number(driver):
    got = driver.read(driver.plan(tags(("HR31", "FLOAT32"), ("HR0", "UINT16"))))
    assert got[1].quality == BAD and got[1].value is None and "not a number" in got[1].reason
    assert got[2].quality == GOOD


def test_illegal_address_splits_once_and_only_the_bad_tag_is_bad(sim, driver):
    # HR58, HR59 exist; HR60..HR69 do not; HR70, HR72 exist. The merged range HR58..HR72 is refused (exception 2).
    spec = tags(("HR58", "UINT16"), ("HR59", "UINT16"), ("HR65", "UINT16"), ("HR70", "UINT16"), ("HR72", "UINT16"))
    plan = driver.plan(spec)
    assert [(r.start, r.count) for r in plan.requests] == [(58, 15)]
    sim.requests.clear()
    got = driver.read(plan)
    assert [got[i].quality for i in (1, 2, 4, 5)] == [GOOD] * 4
    assert [got[i].value for i in (1, 2, 4, 5)] == [1058, 1059, 7000, 7002]
    assert got[3].quality == BAD and got[3].value is None
    assert got[3].reason.startswith(INVALID_ADDRESS) and "exception 2" in got[3].reason
    first_cycle = len(sim.requests)
    assert first_cycle > 1
    # the split is remembered: next cycles send only the split requests, no merged attempt and no new bisection
    assert all(r.split for r in plan.requests) and plan.splits == 1
    split_shape = [(r.start, r.count) for r in plan.requests]
    assert (65, 1) in split_shape and (58, 15) not in split_shape
    sim.requests.clear()
    again = driver.read(plan)
    assert len(sim.requests) == len(plan.requests) < first_cycle
    assert (3, 58, 15) not in sim.requests
    assert {k: (v.quality, v.value) for k, v in again.items()} == {k: (v.quality, v.value) for k, v in got.items()}
    assert [(r.start, r.count) for r in plan.requests] == split_shape


def test_exception_reply_keeps_the_link_up(driver):
    got = driver.read(driver.plan(tags(("HR500", "UINT16"), ("C40", "BOOL"), ("HR0", "UINT16"))))
    assert got[1].quality == BAD and got[1].reason.startswith(INVALID_ADDRESS)
    assert got[2].quality == BAD and "exception 2" in got[2].reason
    assert got[3].quality == GOOD and got[3].value == 1234
    assert driver.read(driver.plan(tags(("HR0", "UINT16"))))[1].value == 1234  # the same connection still works


def test_other_unit_behind_the_same_connection_is_a_device_error(driver):
    got = driver.read(driver.plan(tags(("7:HR0", "UINT16"), ("HR0", "UINT16"))))
    assert got[1].quality == BAD and got[1].reason.startswith(DEVICE_ERROR) and "unit 7" in got[1].reason
    assert got[2].quality == GOOD


def test_wrong_length_reply_is_bad_not_a_crash(sim, driver):
    got = driver.read(driver.plan(tags(("HR90", "UINT16"), ("HR91", "UINT32"), ("HR0", "UINT16"))))
    assert got[1].quality == BAD and got[1].reason.startswith(PROTOCOL_ERROR)
    assert "2 registers, 3 were asked" in got[1].reason
    assert got[2].quality == BAD
    assert got[3].quality == GOOD
    assert driver.read(driver.plan(tags(("HR0", "UINT16"))))[1].quality == GOOD


def test_values_follow_the_server(sim, driver):
    plan = driver.plan(tags(("HR40", "UINT16"), ("C4", "BOOL")))
    sim.set_values(3, 40, [4242])
    sim.set_values(1, 4, [True])
    got = driver.read(plan)
    assert (got[1].value, got[2].value) == (4242, True)
    sim.set_values(3, 40, [1040])
    sim.set_values(1, 4, [False])
    got = driver.read(plan)
    assert (got[1].value, got[2].value) == (1040, False)


def test_read_without_connect_raises(sim):
    d = make(sim.port)
    with pytest.raises(DriverError) as err:
        d.read(d.plan(tags(("HR0", "UINT16"))))
    assert err.value.kind == CANNOT_CONNECT


def test_server_stopped_while_connected_then_back():
    port = free_port()
    server = ModbusSim(port=port).start()
    d = make(port, timeout_s=0.5)
    plan = d.plan(tags(("HR0", "UINT16"), ("HR2", "INT32")))
    try:
        d.connect()
        assert d.read(plan)[1].value == 1234
        server.stop_server()
        with pytest.raises(DriverError) as err:
            d.read(plan)
        assert err.value.kind == CANNOT_CONNECT
        d.close()
        with pytest.raises(DriverError) as err:
            d.connect()
        assert err.value.kind == CANNOT_CONNECT and "refused" in err.value.message
        server.start()
        d.connect()
        got = d.read(plan)
        assert (got[1].value, got[2].value) == (1234, -100000)
    finally:
        d.close()
        server.close()


def test_silent_device_is_a_timeout():
    with socket.socket() as listener:  # accepts the TCP connection, never answers a request (a gateway that ignores)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        d = make(listener.getsockname()[1], timeout_s=0.3)
        d.connect()
        started = time.monotonic()
        with pytest.raises(DriverError) as err:
            d.read(d.plan(tags(("HR0", "UINT16"))))
        assert err.value.kind == TIMEOUT and "unit id" in err.value.suggestion
        assert time.monotonic() - started < 2
        d.close()


# --- diagnostics -------------------------------------------------------------------------------------------------


def test_test_connection_success(sim):
    result = make(sim.port).test_connection()
    assert result.ok and result.error is None
    assert [s.name for s in result.steps] == ["tcp", "handshake", "probe_read", "identity"]
    assert all(s.ok and s.duration_ms >= 0 for s in result.steps)
    assert "no handshake" in result.steps[1].detail
    assert "HR0 = 1234" in result.steps[2].detail
    assert result.identity["vendor_name"] == "ACME Automation" and result.identity["product_code"] == "PLC-9"
    assert result.identity["revision"] == "2.4" and result.identity["unit_id"] == 1
    d = result.as_dict()
    assert d["ok"] is True and len(d["steps"]) == 4


def test_test_connection_given_probe_address(sim):
    result = make(sim.port).test_connection("C0")
    assert result.ok and "C0 = True" in result.steps[2].detail
    bad = make(sim.port).test_connection("HR500")
    assert not bad.ok and bad.error == INVALID_ADDRESS
    assert bad.steps[-1].name == "probe_read" and "exception 2" in bad.steps[-1].detail


def test_test_connection_closed_port():
    result = make(free_port()).test_connection()
    assert not result.ok and result.error == CANNOT_CONNECT
    assert [s.name for s in result.steps] == ["tcp"]
    assert "Nothing listens" in result.steps[0].suggestion


def test_test_connection_wrong_unit_id(sim):
    result = make(sim.port, unit_id=9).test_connection()
    assert not result.ok and result.error == DEVICE_ERROR
    assert result.steps[-1].name == "probe_read" and "unit id" in result.steps[-1].suggestion


def test_test_connection_silent_unit_times_out():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        result = make(listener.getsockname()[1], timeout_s=0.3).test_connection()
    assert not result.ok and result.error == TIMEOUT
    assert [s.name for s in result.steps] == ["tcp", "handshake", "probe_read"]
    assert "check the unit id" in result.steps[-1].suggestion.lower()


def test_test_connection_when_hr0_does_not_exist_but_the_device_answers():
    server = ModbusSim()
    server._device = lambda: SimDevice(id=1, simdata=[SimData(100, values=[5, 6], datatype=DataType.REGISTERS)])
    server.start()
    try:
        result = make(server.port).test_connection()
        assert result.ok, result.as_dict()
        assert "does not exist" in result.steps[2].detail
    finally:
        server.close()


# --- discovery ---------------------------------------------------------------------------------------------------


def test_discover_scans_and_bisects(sim, driver):
    found = driver.discover(table="HR", start=0, count=200, block=50)
    numbers = [int(t.name[2:]) for t in found]
    assert numbers == list(range(0, 60)) + list(range(70, 100))
    by_name = {t.name: t for t in found}
    assert by_name["HR0"].value == 1234 and by_name["HR70"].value == 7000 and by_name["HR99"].value == 7029
    assert by_name["HR0"].address == "HR0" and by_name["HR0"].data_type == "UINT16" and by_name["HR0"].writable
    coils = driver.discover(table="C", count=40)
    assert [t.name for t in coils] == [f"C{i}" for i in range(16)]
    assert [t.value for t in coils] == COILS and all(t.data_type == "BOOL" for t in coils)
    inputs = make(sim.port).discover(table="IR", count=60)  # connects and closes by itself
    assert len(inputs) == 50 and inputs[7].value == 507 and inputs[7].writable is False


def test_discover_one_based_numbering(sim):
    found = make(sim.port, zero_based=False).discover(table="HR", start=1, count=3)
    assert [(t.name, t.value) for t in found] == [("HR1", 1234), ("HR2", HR_MAP[1][0]), ("HR3", HR_MAP[2][0])]


# --- throughput (printed, not asserted) --------------------------------------------------------------------------


def test_measure_reads_per_second(sim, driver, capsys):
    results = {}
    for label, spec in (("100 UINT16 tags (HR0-HR59, IR0-IR39)",
                         [TagSpec(i, f"HR{i}", "UINT16") for i in range(60)]
                         + [TagSpec(100 + i, f"IR{i}", "UINT16") for i in range(40)]),
                        ("100 mixed tags (30 FLOAT32 HR, 50 IR, 16 coils, 4 discrete inputs)",
                         [TagSpec(i, f"HR{2 * i}", "FLOAT32") for i in range(30)]
                         + [TagSpec(100 + i, f"IR{i}", "UINT16") for i in range(50)]
                         + [TagSpec(200 + i, f"C{i}", "BOOL") for i in range(16)]
                         + [TagSpec(300 + i, f"DI{i}", "BOOL") for i in range(4)])):
        plan = driver.plan(spec)
        assert len(spec) == 100
        driver.read(plan)
        n, started = 0, time.perf_counter()
        while time.perf_counter() - started < 1.0:
            got = driver.read(plan)
            n += 1
        elapsed = time.perf_counter() - started
        assert len(got) == 100
        results[label] = (n / elapsed, len(plan.requests))
    with capsys.disabled():
        for label, (rate, nreq) in results.items():
            print(f"\n[modbus] {label}: {rate:.0f} plan reads/s ({nreq} requests per read, "
                  f"{rate * 100:.0f} tag values/s)")


def test_nothing_is_logged_per_read(driver, caplog):
    plan = driver.plan(tags(("HR0", "UINT16"), ("HR500", "UINT16")))
    with caplog.at_level(logging.INFO, logger="collectors"):
        for _ in range(3):
            driver.read(plan)
    assert not [r for r in caplog.records if r.name.startswith("collectors")]


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
          - {id: M-MB, name: Modbus machine, protocol: MODBUS}
"""


@pytest.fixture(scope="module")
def plant():
    from datetime import datetime, timezone

    from plant import Plant, parse_layout

    p = Plant(parse_layout(PLANT_YAML, "driver-test.yaml"), seed=5, run_clock=False,
              sim_start=datetime(2025, 3, 3, 5, 0, tzinfo=timezone.utc))
    p.start()
    yield p
    p.stop()


def test_plant_machine_reads_as_documented(plant):
    ep = next(e for e in plant.endpoints() if e["machine_id"] == "M-MB")
    d = make(ep["port"], **ep["protocol_config"])
    spec = [TagSpec(i, t["address"], t["data_type"], t["name"]) for i, t in enumerate(ep["tags"])]
    plan = d.plan(spec)
    assert [(r.table, r.start, r.count) for r in plan.requests] == [("HR", 0, 36), ("C", 0, 8)]
    try:
        d.connect()
        for _ in range(2):
            plant.advance(900)
            snap = plant.snapshot("M-MB")
            got = d.read(plan)
            for tag in spec:
                reading = got[tag.tag_id]
                assert reading.quality == GOOD, (tag.name, reading)
                if tag.data_type == "FLOAT32":
                    assert reading.value == pytest.approx(snap[tag.name], rel=1e-6, abs=1e-4), tag.name
                elif tag.data_type == "BOOL":
                    assert reading.value is bool(snap[tag.name]), tag.name
                else:
                    bits = 32 if tag.data_type == "UINT32" else 16
                    assert reading.value == snap[tag.name] % 2**bits, tag.name
        assert snap["ProductionCount"] > 0
        found = d.discover(table="HR", count=100)
        assert [t.name for t in found] == [f"HR{i}" for i in range(36)]  # HR36.. answer exception 2
    finally:
        d.close()
    result = make(ep["port"], **ep["protocol_config"]).test_connection()
    assert result.ok, result.as_dict()
    wrong_unit = make(ep["port"], **{**ep["protocol_config"], "unit_id": 9}).test_connection()
    assert not wrong_unit.ok and "unit id" in wrong_unit.steps[-1].suggestion


# --- 32-bit values offered by the scan (the wizard picks them, nobody types them) --------------------------------


def test_a_word_order_suffix_overrides_the_connections(driver):
    got = driver.read(driver.plan(tags(("HR6", "FLOAT32_ABCD"), ("HR28", "FLOAT32_CDAB"), ("HR34", "INT32_CDAB"),
                                       ("HR4", "UINT32_ABCD"))))
    assert [got[i].value for i in (1, 2, 3, 4)] == [3.5, 3.5, -7, 3_000_000_000]
    with pytest.raises(ConfigError) as info:
        ModbusDriver.parse_address("HR0", "UINT16_CDAB")
    assert info.value.field == "data_type" and "32- and 64-bit" in info.value.message


def test_discover_offers_each_pair_as_uint32_int32_and_float32_in_both_word_orders(sim, driver):
    found = driver.discover(table="HR", start=0, count=40, pairs=True)
    registers = [t for t in found if t.data_type == "UINT16"]
    assert len(registers) == 40
    pairs = {(t.address, t.data_type): t.value for t in found if t.data_type != "UINT16"}
    # the float at HR6 (high word first) and HR28 (low word first): found under its own word order
    assert pairs[("HR6", "FLOAT32_ABCD")] == 3.5 and pairs[("HR28", "FLOAT32_CDAB")] == 3.5
    assert pairs[("HR6", "FLOAT32_CDAB")] != 3.5
    # the 32-bit counter at HR4 and the negative INT32 at HR2 and HR34
    assert pairs[("HR4", "UINT32_ABCD")] == 3_000_000_000
    assert pairs[("HR2", "INT32_ABCD")] == -100000 and pairs[("HR34", "INT32_CDAB")] == -7
    assert pairs[("HR2", "UINT32_ABCD")] == 2**32 - 100000
    # every neighbouring pair, six readings each, but no float that is not a number (the NaN at HR31)
    assert ("HR31", "FLOAT32_ABCD") not in pairs
    assert len([k for k in pairs if k[0] == "HR10"]) == 6
    # every reading the scan offers reads back the same through the collector's own path
    picked = [(a, dt) for (a, dt) in pairs if a in ("HR4", "HR6", "HR28")]
    got = driver.read(driver.plan(tags(*picked)))
    assert [got[i + 1].value for i in range(len(picked))] == [pairs[p] for p in picked]
    # coils have no pairs; without pairs=True the scan is registers only
    assert all(t.data_type == "BOOL" for t in driver.discover(table="C", count=16, pairs=True))
    assert all(t.data_type == "UINT16" for t in driver.discover(table="HR", count=10))


@pytest.mark.parametrize("byte_order", ["big", "little"])
@pytest.mark.parametrize("word_order", ["big", "little"])
def test_bulk_decode_equals_pymodbus_conversion(sim, byte_order, word_order):
    """_decode unpacks a whole reply at once (ModbusDriver._decoders); every value, and every bad one, must be what
    pymodbus' convert_from_registers gives through _value, for every numeric type, byte and word order, a tag's
    own word order, and register contents that are NaN or infinite as floats."""
    import random
    from types import SimpleNamespace

    d = make(sim.port, byte_order=byte_order, word_order=word_order)
    types = ["INT16", "UINT16", "INT32", "UINT32", "FLOAT32", "INT64", "UINT64", "FLOAT64", "FLOAT32_CDAB",
             "INT32_ABCD", "FLOAT64_CDAB", "UINT64_ABCD", "STRING[3]", "BOOL"]
    spec, at = [], 0
    for k in range(60):
        dtype = types[k % len(types)]
        spec.append((f"HR{at}", dtype))
        at += {"INT16": 1, "UINT16": 1, "STRING[3]": 2, "BOOL": 1}.get(dtype, 2 if "32" in dtype else 4) + k % 2
    plan = d.plan(tags(*spec))
    rng = random.Random(7)
    special = [0x7FC0, 0x7F80, 0xFF80, 0x7FF8, 0x7FF0, 0x0000, 0xFFFF]  # NaN / inf high words, both widths
    for _ in range(50):
        for req in plan.requests:
            regs = [rng.choice(special) if rng.random() < 0.3 else rng.randrange(0x10000) for _ in range(req.count)]
            fast: dict = {}
            d._decode(req, SimpleNamespace(registers=regs), fast)
            for item in req.items:
                lo = item.offset - req.start
                slow = d._value(item.address, regs[lo:lo + item.size])
                got = fast[item.tag_id]
                assert (got.quality, got.reason) == (slow.quality, slow.reason)
                assert got.value == slow.value and type(got.value) is type(slow.value), (item.address, regs[lo:])
    assert sum(len(r.items) for r in plan.requests) == 60
