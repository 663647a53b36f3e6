"""The S7 machine through python-snap7's real client: documented DB layout, reads, writes the model sees."""

from __future__ import annotations

import struct

import pytest
import snap7
from snap7.error import S7ProtocolError
from snap7.type import Area

from plant import State
from plant.tags import S7_DB_SIZE, S7_FIELDS

from .conftest import endpoint

MID = "M-S7"


@pytest.fixture(scope="module")
def client(plant):
    ep = endpoint(plant, MID)
    cfg = ep["protocol_config"]
    c = snap7.client.Client()
    c.connect(ep["host"], cfg["rack"], cfg["slot"], ep["port"])
    yield c
    c.disconnect()


def read_all(client, plant) -> tuple[bytearray, dict]:
    with plant.lock:
        return client.db_read(1, 0, S7_DB_SIZE), plant.snapshot(MID)


def test_endpoint_describes_the_db(plant):
    ep = endpoint(plant, MID)
    assert ep["protocol"] == "S7" and ep["host"] == "127.0.0.1" and ep["port"] > 0
    assert ep["protocol_config"] == {"rack": 0, "slot": 1, "db": 1, "db_size": S7_DB_SIZE}
    tags = {t["name"]: t for t in ep["tags"]}
    assert tags["ProductionCount"] == {"name": "ProductionCount", "address": "DB1.DBD0", "data_type": "DINT",
                                       "role": "counter.total", "writable": True}
    assert tags["State"]["address"] == "DB1.DBW12" and tags["State"]["role"] == "state.code"
    assert tags["Running"]["address"] == "DB1.DBX20.0" and tags["Running"]["data_type"] == "BOOL"
    assert tags["Heartbeat"]["address"] == "DB1.DBB21" and tags["Heartbeat"]["data_type"] == "BYTE"
    assert tags["OrderId"] == {"name": "OrderId", "address": "DB1.DBB64", "data_type": "STRING", "role": "order.id",
                               "writable": True, "length": 20}
    assert {t["role"] for t in ep["tags"]} >= {"state.running", "state.faulted", "state.stopped", "state.code",
                                               "counter.total", "counter.good", "counter.reject", "fault.code",
                                               "cycle.time", "cycle.ideal_time", "product.code", "order.id"}


def test_db_read_matches_the_model_as_time_passes(plant, client):
    for _ in range(3):
        plant.advance(900)
        data, snap = read_all(client, plant)
        assert struct.unpack_from(">iii", data, 0) == (snap["ProductionCount"], snap["GoodCount"], snap["RejectCount"])
        assert struct.unpack_from(">hhhh", data, 12) == (snap["State"], snap["LastFaultCode"], snap["ProductCode"],
                                                         snap["ShiftNumber"])
        assert bool(data[20] & 1) == snap["Running"] and bool(data[20] & 2) == snap["Faulted"]
        assert bool(data[20] & 4) == snap["Stopped"]
        assert struct.unpack_from(">f", data, 26)[0] == pytest.approx(snap["IdealCycleTime"])
        assert data[65] == len(snap["OrderId"]) and data[66:66 + data[65]].decode() == snap["OrderId"]
    assert snap["ProductionCount"] > 0


def test_read_area_and_read_tag_with_every_documented_address(plant, client):
    plant.advance(60)
    with plant.lock:
        snap = plant.snapshot(MID)
        assert client.read_area(Area.DB, 1, 0, 4) == bytearray(struct.pack(">i", snap["ProductionCount"]))
        for tag in endpoint(plant, MID)["tags"]:
            dt = f"STRING[{tag['length']}]" if tag["data_type"] == "STRING" else tag["data_type"]
            value = client.read_tag(f"{tag['address']}:{dt}")
            expected = snap[tag["name"]]
            if tag["data_type"] == "REAL":
                assert value == pytest.approx(expected, rel=1e-6, abs=1e-4), tag
            elif tag["data_type"] == "BYTE":
                assert value == expected % 256, tag
            else:
                assert value == expected, tag


def test_layout_table_has_no_overlaps():
    used = {}
    for f in S7_FIELDS:
        for b in range(f.offset, f.offset + f.size):
            key = (b, f.bit) if f.data_type == "BOOL" else b
            assert key not in used, (f.name, used.get(key))
            used[key] = f.name
        assert f.offset + f.size <= S7_DB_SIZE
        if f.data_type in ("INT", "DINT", "REAL"):
            assert f.offset % 2 == 0  # S7 words start at even bytes


def test_counter_preset_by_db_write_is_seen_by_the_model(plant, client):
    plant.advance(30)
    client.db_write(1, 0, bytearray(struct.pack(">i", 4242)))
    assert plant.machine(MID).counters["total"] == 4242
    assert struct.unpack(">i", client.db_read(1, 0, 4))[0] == 4242
    plant.advance(600)
    data, snap = read_all(client, plant)
    assert struct.unpack_from(">i", data, 0)[0] == snap["ProductionCount"] >= 4242
    events = plant.ground_truth(MID).counter_events
    assert any(e.kind == "preset" and e.after == 4242 for e in events)


def test_counter_reset_bit(plant, client):
    plant.advance(600)
    byte = client.db_read(1, 20, 1)
    client.db_write(1, 20, bytearray([byte[0] | 0x80]))  # DBX20.7
    m = plant.machine(MID)
    assert m.counters == {"total": 0, "good": 0, "reject": 0}
    data = client.db_read(1, 0, 21)
    assert struct.unpack_from(">iii", data, 0) == (0, 0, 0)
    assert not data[20] & 0x80  # the command bit reads back 0


def test_product_code_write_starts_a_changeover(plant, client):
    plant.advance(60)
    m = plant.machine(MID)
    other = 12 if m.product.code == 11 else 11
    busy = m.state in (State.FAULTED, State.CHANGEOVER)
    client.db_write(1, 16, bytearray(struct.pack(">h", other)))
    if not busy:
        assert m.state == State.CHANGEOVER and m.product.code == other
        data = client.db_read(1, 12, 6)
        assert struct.unpack(">hhh", data) == (6, m.last_fault_code, other)
    plant.advance(4000)
    assert any(r.product_code == other for r in plant.ground_truth(MID).product_runs[-3:])


def test_order_id_string_write(plant, client):
    client.write_tag("DB1:64:STRING[20]", "WO-2025-0042")
    assert plant.machine(MID).order_id == "WO-2025-0042"
    assert client.read_tag("DB1:64:STRING[20]") == "WO-2025-0042"
    raw = b"WO-7"
    client.db_write(1, 64, bytearray([20, len(raw)]) + raw)  # the raw S7 STRING format
    assert plant.machine(MID).order_id == "WO-7"
    assert plant.ground_truth(MID).product_runs[-1].order_id == "WO-7"


def test_write_tag_counter_preset(plant, client):
    client.write_tag("DB1.DBD4:DINT", 17)
    assert plant.machine(MID).counters["good"] == 17
    assert client.read_tag("DB1.DBD4:DINT") == 17


def test_write_to_a_status_value_is_overwritten_by_the_plc(plant, client):
    state = plant.machine(MID).state
    client.db_write(1, 12, bytearray(struct.pack(">h", 99)))
    plant.advance(1)
    assert struct.unpack(">h", client.db_read(1, 12, 2))[0] == int(plant.machine(MID).state)
    assert plant.machine(MID).state in (state, *State)


def test_missing_db_is_an_s7_error(client):
    with pytest.raises(S7ProtocolError, match="Object does not exist"):
        client.db_read(2, 0, 4)
    with pytest.raises(S7ProtocolError, match="Invalid address"):
        client.db_read(1, S7_DB_SIZE - 2, 4)  # past the end of DB1
    assert client.db_read(1, 0, 4)  # the connection is still good
