"""The Modbus machine through pymodbus' real client: documented register map, word order, exceptions, writes."""

from __future__ import annotations

import pytest
from pymodbus.client import ModbusTcpClient

from plant import State
from plant.tags import MODBUS_COIL_COUNT, MODBUS_HR, MODBUS_HR_COUNT

from .conftest import endpoint

MID = "M-MB"
DT = ModbusTcpClient.DATATYPE


@pytest.fixture(scope="module")
def client(plant):
    ep = endpoint(plant, MID)
    c = ModbusTcpClient(ep["host"], port=ep["port"], timeout=3)
    assert c.connect()
    yield c
    c.close()


def decode(client, regs, address, data_type):
    return client.convert_from_registers(regs[address:address + (2 if data_type.endswith("32") else 1)],
                                         getattr(DT, data_type), word_order="big")


def test_endpoint_describes_the_map(plant):
    ep = endpoint(plant, MID)
    assert ep["protocol_config"]["unit_id"] == 1
    assert ep["protocol_config"]["word_order"] == "big" and ep["protocol_config"]["zero_based"] is True
    tags = {t["name"]: t for t in ep["tags"]}
    assert tags["ProductionCount"]["address"] == "HR0" and tags["ProductionCount"]["data_type"] == "UINT32"
    assert tags["GoodCount"]["address"] == "HR2" and tags["RejectCount"]["address"] == "HR4"
    assert tags["State"]["address"] == "HR6" and tags["State"]["data_type"] == "UINT16"
    assert tags["CycleTime"]["data_type"] == "FLOAT32"
    assert tags["Running"]["address"] == "C0" and tags["Faulted"]["address"] == "C1"
    assert tags["Stopped"]["address"] == "C2" and tags["CounterReset"]["address"] == "C7"
    assert tags["OrderNumber"]["role"] == "order.id"


def test_holding_registers_decode_to_the_model(plant, client):
    for _ in range(3):
        plant.advance(1000)
        snap = plant.snapshot(MID)
        rr = client.read_holding_registers(0, count=MODBUS_HR_COUNT, device_id=1)
        assert not rr.isError(), rr
        regs = rr.registers
        for f in MODBUS_HR:
            value = decode(client, regs, f.address, f.data_type)
            if f.data_type == "FLOAT32":
                assert value == pytest.approx(snap[f.name], rel=1e-6, abs=1e-4), f.name
            else:
                assert value == snap[f.name] % 2 ** (16 * f.count), f.name
    assert snap["TotalParts"] > 0


def test_word_order_is_high_word_first(plant, client):
    plant.advance(10)
    client.write_registers(0, client.convert_to_registers(0x00012345, DT.UINT32, word_order="big"), device_id=1)
    regs = client.read_holding_registers(0, count=2, device_id=1).registers
    assert regs == [0x0001, 0x2345]
    assert client.convert_from_registers(regs, DT.UINT32, word_order="big") == 0x12345
    assert client.convert_from_registers(regs, DT.UINT32, word_order="little") != 0x12345
    assert plant.machine(MID).counters["total"] == 0x12345


def test_coils_and_mirrors(plant, client):
    plant.advance(300)
    snap = plant.snapshot(MID)
    bits = client.read_coils(0, count=8, device_id=1).bits[:8]
    assert bits == [snap["Running"], snap["Faulted"], snap["Stopped"], snap["Starved"], snap["Blocked"],
                    snap["PlannedStop"], snap["Changeover"], False]
    assert sum(bits[:3]) == 1  # running, faulted or stopped
    assert sum(bits[3:7]) == bits[2]  # a stopped machine says why
    assert client.read_discrete_inputs(0, count=8, device_id=1).bits[:8] == bits
    assert client.read_input_registers(0, count=10, device_id=1).registers == \
        client.read_holding_registers(0, count=10, device_id=1).registers


@pytest.mark.parametrize("call,address,count", [
    ("read_holding_registers", MODBUS_HR_COUNT, 1),
    ("read_holding_registers", MODBUS_HR_COUNT - 2, 4),
    ("read_holding_registers", 1000, 10),
    ("read_coils", MODBUS_COIL_COUNT, 1),
    ("read_input_registers", 500, 2),
])
def test_out_of_range_read_is_an_exception_response(client, call, address, count):
    rr = getattr(client, call)(address, count=count, device_id=1)
    assert rr.isError() and rr.exception_code == 2  # illegal data address: a valid reply, the link stays up
    assert not client.read_holding_registers(0, count=1, device_id=1).isError()


def test_write_to_read_only_register_or_coil_is_refused(plant, client):
    state = plant.machine(MID).state
    rr = client.write_register(6, 4, device_id=1)  # State
    assert rr.isError() and rr.exception_code == 2
    rr = client.write_coil(0, True, device_id=1)  # Running
    assert rr.isError() and rr.exception_code == 2
    assert plant.machine(MID).state == state


def test_counter_reset_coil(plant, client):
    plant.advance(900)
    rr = client.write_coil(7, True, device_id=1)
    assert not rr.isError(), rr
    assert plant.machine(MID).counters == {"total": 0, "good": 0, "reject": 0}
    assert client.read_holding_registers(0, count=6, device_id=1).registers == [0] * 6
    assert client.read_coils(7, count=1, device_id=1).bits[0] is False


def test_product_code_write(plant, client):
    plant.advance(60)
    rr = client.write_register(8, 9999, device_id=1)  # not one of the machine's products
    assert rr.isError() and rr.exception_code == 3  # illegal data value
    m = plant.machine(MID)
    other = 12 if m.product.code == 11 else 11
    busy = m.state in (State.FAULTED, State.CHANGEOVER)
    assert not client.write_register(8, other, device_id=1).isError()
    if not busy:
        assert m.state == State.CHANGEOVER and m.product.code == other
        assert client.read_holding_registers(6, count=3, device_id=1).registers == [6, m.last_fault_code, other]


def test_order_number_write(plant, client):
    regs = client.convert_to_registers(123456789, DT.UINT32, word_order="big")
    assert not client.write_registers(28, regs, device_id=1).isError()
    assert plant.machine(MID).order_id == "ORD-123456789"
    got = client.read_holding_registers(28, count=2, device_id=1).registers
    assert client.convert_from_registers(got, DT.UINT32, word_order="big") == 123456789


def test_other_unit_id_gets_gateway_exception(client):
    rr = client.read_holding_registers(0, count=2, device_id=5)
    assert rr.isError() and rr.exception_code == 0x0B  # gateway target device failed to respond
    assert not client.read_holding_registers(0, count=2, device_id=1).isError()
