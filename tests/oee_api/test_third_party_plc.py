"""Your own machine, correct OEE: a third-party PLC that is not the demo plant (tests/support/third_party_plc.py: its
own tag names, its own state codes 1 run / 3 fault / 7 changeover, an ideal-cycle-time tag), over Modbus TCP,
OPC-UA and EtherNet/IP on 127.0.0.1, added through the REST API as a user would, polled by the app's collectors
for two cycles of its schedule (run 20 s at ideal speed, faulted 10 s, every 30 s, 10 % rejects). Known in
advance: A 0.667, P 1.0, Q 0.9, OEE 0.6, equipment failure 10 s of every 30 s.

Measured by hand before this work: availability 1.00, performance null, OEE null.

Two settings this needs come with branch onboard-config: `state_code_map` (3 is a fault on this PLC, a blocked
machine by the default map) and `micro_stop_threshold_s` (5 s: a 10 s fault is not a minor stop; by the default of
120 s it is a performance loss), with `fault_codes`. Until the API takes them, test_with_the_machines_own_settings
is skipped with the reason 'needs onboard-config's machine fields', and the machines are added without them
(their state from the PLC's InProduction / AlarmActive bits): test_what_holds_without_them checks what does not
depend on them: OEE, Q, the fault's share of the time, and P from the PLC's ideal-cycle-time tag with no product.
"""
from __future__ import annotations

import time

import pytest

from tests.config.conftest import Client
from tests.support.third_party_plc import Schedule, ThirdPartyPlc
from tests.test_app import RunningApp

PROTOCOLS = ("MODBUS", "OPCUA", "ETHERNET_IP")
CYCLES = 2
POINT = 0.01  # "within 1 point"
NEEDS = "needs onboard-config's machine fields"
OWN_SETTINGS = {"state_code_map": {"1": "running", "3": "faulted", "7": "changeover"},
                "micro_stop_threshold_s": 5,
                "fault_codes": [{"code": 42, "text": "Filler jam", "kind": "fault"}]}


def _unknown_field(status: int, body) -> bool:
    fields = body.get("fields", {}) if isinstance(body, dict) else {}
    return status == 400 and any(k in fields and "unknown field" in fields[k] for k in OWN_SETTINGS)


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """Start the app and the PLC, add the machines through the API, let two cycles pass, read GET /api/oee/."""
    app = RunningApp(tmp_path_factory.mktemp("app"), "--no-demo")
    plc = None
    try:
        app.wait_healthy()
        api = Client(app.port, app.token("engineer"))
        t0 = (time.time() // 60 + 1) * 60  # the schedule starts at a whole minute: count rows do not straddle it
        if t0 - time.time() < 25:
            t0 += 60
        plc = ThirdPartyPlc(Schedule(t0)).start()
        added, own = {}, None
        for protocol in PROTOCOLS:
            body = plc.machine_body(protocol, f"ACME-{protocol}-OWN", **OWN_SETTINGS)
            status, created = api.post("/api/plc/machines/", body)
            if _unknown_field(status, created):
                own = False
            else:
                assert status == 201, created
                own = True
                added[(protocol, "own")] = created["machine_id"]
            # without the vendor's state codes: its run / alarm bits say the state
            body = plc.machine_body(protocol, f"ACME-{protocol}")
            body["tags"] = [t for t in body["tags"] if t["role"] != "state.code"]
            status, created = api.post("/api/plc/machines/", body)
            assert status == 201, created
            added[(protocol, "bits")] = created["machine_id"]
        end = t0 + CYCLES * plc.schedule.cycle_s
        time.sleep(max(0.0, end - time.time()) + 3.0)  # the writer commits within a second
        out = {}
        for key, machine_id in added.items():
            status, report = api.get(f"/api/oee/?machine={machine_id}&start={t0}&end={end}")
            assert status == 200, report
            out[key] = report
        yield {"reports": out, "schedule": plc.schedule, "own_settings": own}
    finally:
        if plc is not None:
            plc.stop()
        app.stop()


def _line(report: dict) -> str:
    losses = report["losses"]
    return (f"A {report['availability']} P {report['performance']} Q {report['quality']} OEE {report['oee']} "
            f"parts {report['total_count']} failure {losses['availability.equipment_failure']} minor "
            f"{losses['performance.idling_minor_stops']} flags {report['flags']}")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_what_holds_without_them(measured, protocol):
    s, r = measured["schedule"], measured["reports"][(protocol, "bits")]
    print(f"\n{protocol} (bits): {_line(r)}")
    assert "no_ideal_cycle_time" not in r["flags"], _line(r)  # the PLC's NominalCycle tag, no product set up
    assert r["total_count"] == pytest.approx(CYCLES * s.run_s / s.ideal_s, abs=2)
    assert r["oee"] == pytest.approx(s.oee, abs=POINT), _line(r)
    assert r["quality"] == pytest.approx(s.quality, abs=POINT), _line(r)
    assert r["availability"] * r["performance"] == pytest.approx(s.availability, abs=POINT), _line(r)
    fault = r["losses"]["availability.equipment_failure"] + r["losses"]["performance.idling_minor_stops"]
    assert fault / r["planned_time_s"] == pytest.approx(s.failure_share, abs=POINT), _line(r)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_with_the_machines_own_settings(measured, protocol):
    if not measured["own_settings"]:
        pytest.skip(NEEDS)
    s, r = measured["schedule"], measured["reports"][(protocol, "own")]
    print(f"\n{protocol} (own settings): {_line(r)}")
    assert r["availability"] == pytest.approx(s.availability, abs=POINT), _line(r)
    assert r["performance"] == pytest.approx(1.0, abs=POINT), _line(r)
    assert r["quality"] == pytest.approx(s.quality, abs=POINT), _line(r)
    assert r["oee"] == pytest.approx(s.oee, abs=POINT), _line(r)
    failure = r["losses"]["availability.equipment_failure"]
    assert failure / r["planned_time_s"] == pytest.approx(s.failure_share, abs=POINT), _line(r)
