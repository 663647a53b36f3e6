"""The ControlLogix machines of the plant through an unmodified pycomm3 LogixDriver (the server itself, plant.enip,
has its own tests in test_enip.py)."""

from __future__ import annotations

import pytest

from plant import State, enip_available

from .conftest import endpoint

pytestmark = pytest.mark.skipif(not enip_available(), reason="plant.enip (the ControlLogix server) is not there")

MID = "M-LX"


@pytest.fixture(scope="module")
def plc(plant):
    from pycomm3 import LogixDriver

    ep = endpoint(plant, MID)
    with LogixDriver(ep["protocol_config"]["path"]) as drv:
        yield drv


def test_more_than_100_tags_with_arrays_program_and_station_tags(plant, plc):
    tags = plc.get_tag_list(program="*")
    names = {t["tag_name"] for t in tags}
    assert len(names) > 100
    assert {"ProductionCount", "StationTemps", "FaultHistory", "OrderId", "Stn01_Temp", "Stn08_Count",
            "Program:MainProgram.StepNo"} <= names
    by_name = {t["tag_name"]: t for t in tags}
    assert by_name["StationTemps"]["dim"] == 1 and by_name["StationTemps"]["dimensions"][0] == 8
    assert by_name["FaultHistory"]["dimensions"][0] == 10
    ep_tags = {t["address"] for t in endpoint(plant, MID)["tags"]}
    assert {"StationTemps[2]", "FaultHistory[9]", "Program:MainProgram.StepNo", "ProductionCount"} <= ep_tags
    assert plc.info["product_name"] == "1756-L83E/B"


def test_reads_match_the_model(plant, plc):
    plant.advance(1800)
    snap = plant.snapshot(MID)
    got = {t.tag: t.value for t in plc.read("ProductionCount", "GoodCount", "RejectCount", "State", "Running",
                                            "Faulted", "Stopped", "LastFaultCode", "ProductCode", "OrderId",
                                            "IdealCycleTime", "StationTemps{8}", "FaultHistory{10}")}
    for name in ("ProductionCount", "GoodCount", "RejectCount", "State", "Running", "Faulted", "Stopped",
                 "LastFaultCode", "ProductCode", "OrderId"):
        assert got[name] == snap[name], name
    assert got["IdealCycleTime"] == pytest.approx(snap["IdealCycleTime"])
    assert got["StationTemps"] == pytest.approx(snap["StationTemps"], abs=1e-3)
    assert got["FaultHistory"] == snap["FaultHistory"]
    step = plc.read("Program:MainProgram.StepNo").value
    assert step == {State.RUNNING: 100, State.IDLE: 20, State.BLOCKED: 30, State.FAULTED: 900,
                    State.PLANNED_STOP: 0, State.CHANGEOVER: 500}[State(snap["State"])]
    assert plc.read("StationTemps[2]").value == pytest.approx(snap["StationTemps"][2], abs=1e-3)


def test_writes_are_seen_by_the_model(plant, plc):
    plant.advance(600)
    assert all(r.error is None for r in plc.write(("ProductionCount", 31337), ("OrderId", "WO-LX-9")))
    m = plant.machine(MID)
    assert m.counters["total"] == 31337 and m.order_id == "WO-LX-9"
    assert all(r.error is None for r in plc.write(("CounterReset", True), ("GoodCount", 0)))
    assert m.counters == {"total": 0, "good": 0, "reject": 0}
    assert plc.read("CounterReset").value is False
    refused = plc.write(("State", 99), ("Heartbeat", 5))  # read-only (External Access: Read Only)
    assert all(r.error for r in refused)
