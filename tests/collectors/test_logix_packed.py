"""The Logix driver's packed reads (collectors/drivers/logix_packed.py) against the simulated controller through an
unmodified pycomm3: a chunk of plain numbers is sent as the bytes pycomm3 built once and decoded with one struct,
and gives exactly the readings of pycomm3's own read(); a reply with an error in it (a tag deleted by an online
edit) is read by pycomm3's response classes from the same bytes, without a second request."""
from __future__ import annotations

import math

import pytest

from collectors.base import BAD, GOOD, UNCERTAIN, ConnectionSettings, Reading, TagSpec
from collectors.drivers.logix import LogixDriverAdapter
from plant.enip import LogixServer, LogixTag, LogixUDT

MOTOR = LogixUDT("Motor", [("Amps", "REAL"), ("Hours", "DINT")])
CELL = LogixUDT("Cell", [("Count", "DINT"), ("Rate", "REAL"), ("Temps", "REAL", 3), ("Drive", MOTOR)])

# (address, configured type, the controller's value): every atomic type, an array element, structure members
# and a program tag
PLAIN = [
    ("Count", "DINT", 123456),
    ("Running", "BOOL", True),
    ("Stopped", "BOOL", False),
    ("Mode", "SINT", -5),
    ("Recipe", "INT", -1234),
    ("Lifetime", "LINT", 2**40 + 7),
    ("Small", "USINT", 200),
    ("Word", "UINT", 60000),
    ("Batch", "UDINT", 4_000_000_000),
    ("Huge", "ULINT", 2**63 + 5),
    ("Rate", "REAL", 12.5),
    ("Energy", "LREAL", 3.141592653589793),
    ("Temps[2]", "REAL", 22.0),
    ("Cells[1].Count", "DINT", 101),
    ("Cells[2].Temps[1]", "REAL", 23.0),
    ("Cells[1].Drive.Amps", "REAL", 4.25),
    ("Program:Main.Step", "INT", 7),
] + [(f"Aux{i:02d}", "DINT", i) for i in range(40)]


def cell(i: int) -> dict:
    return {"Count": 100 + i, "Rate": 1.5 * i, "Temps": [20.0 + i, 21.0 + i, 22.0 + i],
            "Drive": {"Amps": 3.25 + i, "Hours": 1000 + i}}


def controller() -> dict[str, LogixTag]:
    types = {"Count": "DINT", "Running": "BOOL", "Stopped": "BOOL", "Mode": "SINT", "Recipe": "INT",
             "Lifetime": "LINT", "Small": "USINT", "Word": "UINT", "Batch": "UDINT", "Huge": "ULINT", "Rate": "REAL",
             "Energy": "LREAL"}
    values = {a: v for a, _t, v in PLAIN}
    tags = {name: LogixTag(kind, values[name]) for name, kind in types.items()}
    tags.update({"Temps": LogixTag("REAL", [20.0 + i for i in range(4)]),
                 "Cells": LogixTag(CELL, [cell(i) for i in range(3)]),
                 "Program:Main.Step": LogixTag("INT", 7),
                 "Name": LogixTag("STRING", "ORD-1")})
    tags.update({f"Aux{i:02d}": LogixTag("DINT", i) for i in range(40)})
    return tags


@pytest.fixture
def server():
    srv = LogixServer(controller(), host="127.0.0.1", port=0, slot=0).start()
    yield srv
    srv.stop()


@pytest.fixture
def driver(server):
    drv = LogixDriverAdapter(ConnectionSettings("ETHERNET_IP", "127.0.0.1", server.port, {}, 2.0))
    drv.connect()
    yield drv
    drv.close()


def specs(rows) -> list[TagSpec]:
    return [TagSpec(i, address, kind, address) for i, (address, kind, *_v) in enumerate(rows)]


def pycomm3_readings(driver, plan) -> dict[int, Reading]:
    """What the driver gives through pycomm3's read(): the reference for the packed way."""
    out = {}
    for chunk in plan.chunks:
        _c, _r, bad, names, meta, _packed = driver._prepared[id(chunk)]
        for tag_ids, reason in bad:
            out.update({t: Reading(None, BAD, reason) for t in tag_ids})
        results = driver._require().read(*names)
        for (addr, res, tag_ids), result in zip(meta, results if len(names) > 1 else [results]):
            out.update({t: driver._reading(addr, res, result) for t in tag_ids})
    return out


def same(a: Reading, b: Reading) -> bool:
    return a.quality == b.quality and a.reason == b.reason and type(a.value) is type(b.value) and (
        a.value == b.value or (isinstance(a.value, float) and math.isnan(a.value) and math.isnan(b.value)))


def test_plain_numbers_are_read_packed_as_pycomm3_reads_them(server, driver):
    plan = driver.plan(specs(PLAIN))
    before = server.stats()["services"]
    readings = driver.read(plan)
    after = server.stats()["services"]
    assert all(driver._prepared[id(c)][5] is not None for c in plan.chunks), "every chunk packed"
    assert after.get(0x0A, 0) == before.get(0x0A, 0) + len(plan.chunks)  # one Multiple Service Packet a chunk
    for i, (address, _kind, value) in enumerate(PLAIN):
        assert readings[i] == Reading(value, GOOD) and type(readings[i].value) is type(value), (address, readings[i])
    reference = pycomm3_readings(driver, plan)
    assert reference.keys() == readings.keys()
    assert all(same(readings[k], reference[k]) for k in readings), [
        (k, readings[k], reference[k]) for k in readings if not same(readings[k], reference[k])]


def test_packed_values_follow_the_controller(server, driver):
    plan = driver.plan(specs(PLAIN))
    driver.read(plan)
    changes = {"Count": -7, "Running": False, "Rate": float("inf"), "Energy": -0.0, "Cells[2].Temps[1]": -1.5,
               "Huge": 0, "Aux39": 2**31 - 1}
    server.set_values(changes)
    readings = driver.read(plan)
    index = {a: i for i, (a, _k, _v) in enumerate(PLAIN)}
    for address, value in changes.items():
        got = readings[index[address]]
        assert got.quality == GOOD and got.value == value and type(got.value) is type(value), (address, got)
    assert math.copysign(1, readings[index["Energy"]].value) == -1.0
    server.set_values({"Rate": float("nan")})
    assert math.isnan(driver.read(plan)[index["Rate"]].value)


def test_a_tag_deleted_online_reads_as_pycomm3_says_without_a_second_request(server, driver):
    plan = driver.plan(specs(PLAIN))
    assert len(plan.chunks) == 1
    driver.read(plan)
    server.edit_tag("Aux03", None)  # an online edit in the controller deletes a tag: the connection stays up
    index = {a: i for i, (a, _k, _v) in enumerate(PLAIN)}
    before = server.stats()["services"].get(0x0A, 0)
    readings = driver.read(plan)
    assert server.stats()["services"].get(0x0A, 0) == before + 1
    gone = readings[index["Aux03"]]
    assert gone.quality == BAD and gone.value is None and "Aux03" in gone.reason, gone
    for i, (address, _kind, value) in enumerate(PLAIN):
        if address != "Aux03":
            assert readings[i] == Reading(value, GOOD), (address, readings[i])
    reference = pycomm3_readings(driver, plan)
    assert all(same(readings[k], reference[k]) for k in readings), [
        (k, readings[k], reference[k]) for k in readings if not same(readings[k], reference[k])]
    driver.close()  # a reconnect resolves anew: the deleted tag costs no request, the rest is packed again
    driver.connect()
    again = driver.read(plan)
    assert again[index["Aux03"]].quality == BAD and driver._prepared[id(plan.chunks[0])][5] is not None
    assert all(again[i] == Reading(v, GOOD) for i, (a, _k, v) in enumerate(PLAIN) if a != "Aux03")


@pytest.mark.parametrize("odd", [("Name", "STRING"), ("Rate", "DINT"), ("Count", "REAL"), ("Count.3", "BOOL"),
                                 ("Count", "BOOL")])
def test_a_chunk_with_anything_but_plain_numbers_reads_as_before(server, driver, odd):
    """A string, a configured type other than the controller's (UNCERTAIN, or converted), a bit of a DINT:
    the chunk goes through pycomm3's read() and _reading's checks, as before packing."""
    rows = [("Aux01", "DINT"), ("Temps[0]", "REAL"), odd]
    plan = driver.plan(specs(rows))
    readings = driver.read(plan)
    assert driver._prepared[id(plan.chunks[0])][5] is None
    assert readings[0] == Reading(1, GOOD) and readings[1] == Reading(20.0, GOOD)
    assert all(same(readings[k], v) for k, v in pycomm3_readings(driver, plan).items())
    if odd == ("Rate", "DINT"):
        assert readings[2].quality == UNCERTAIN and readings[2].value == 12
    if odd == ("Count", "REAL"):
        assert readings[2].quality == UNCERTAIN and readings[2].value == 123456.0 and type(readings[2].value) is float
    if odd == ("Count", "BOOL"):
        assert readings[2].quality == UNCERTAIN and readings[2].value is True
    if odd == ("Count.3", "BOOL"):
        assert readings[2] == Reading(False, GOOD)  # 123456 = 0b1_1110_0010_0100_0000


def test_a_type_changed_online_reads_as_pycomm3_reads_it(server, driver):
    """A tag redefined online with another type of another size (pycomm3 keeps the type it listed at connect): the
    reply's shape differs, so pycomm3's response classes read it, as its read() would."""
    plan = driver.plan(specs(PLAIN))
    driver.read(plan)
    server.edit_tag("Aux05", LogixTag("LINT", 5))
    server.edit_tag("Mode", LogixTag("REAL", 2.5))
    readings = driver.read(plan)
    reference = pycomm3_readings(driver, plan)
    assert all(same(readings[k], reference[k]) for k in readings), [
        (k, readings[k], reference[k]) for k in readings if not same(readings[k], reference[k])]
    index = {a: i for i, (a, _k, _v) in enumerate(PLAIN)}
    assert readings[index["Count"]] == Reading(123456, GOOD) and readings[index["Aux39"]] == Reading(39, GOOD)
