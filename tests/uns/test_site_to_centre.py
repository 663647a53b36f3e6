"""Scale-out, end to end (docs/scale-out.md): a site app polls a third-party PLC over Modbus and publishes it as a
Sparkplug B edge node; a central app, with its own database, reads that node's device as a SPARKPLUG_B machine (the
site's `Tags/<tag>` metrics with the same roles and settings) through a real Mosquitto. Both apps' OEE for the
PLC's known schedule (run 20 s at ideal speed, faulted 10 s, every 30 s, 10 % rejects: A 0.667, P 1.0, Q 0.9,
OEE 0.6) must agree with it, the centre's from values that crossed the broker only.
"""
from __future__ import annotations

import time

import pytest

from tests.config.conftest import Client, wait_for
from tests.support.mosquitto import Mosquitto
from tests.support.third_party_plc import MODBUS_TAGS, Schedule, ThirdPartyPlc
from tests.test_app import RunningApp

GROUP, NODE, MACHINE = "PLANT", "SITE-A", "ACME-SITE"
CYCLES = 2
POINT = 0.01
OWN_SETTINGS = {"state_code_map": {"1": "running", "3": "faulted", "7": "changeover"},
                "micro_stop_threshold_s": 5,
                "fault_codes": [{"code": 42, "text": "Filler jam", "kind": "fault"}]}


def central_type(tag: dict) -> str:
    """The metric type the site publishes a tag's value as (docs/uns.md)."""
    if tag["data_type"] == "BOOL":
        return "BOOLEAN"
    role = tag["role"] or ""
    return "INT64" if role.startswith(("counter.", "state.code", "fault.code")) else "DOUBLE"


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    with Mosquitto() as broker, ThirdPartyPlc(Schedule(time.time() + 86400)) as plc:
        site = RunningApp(tmp_path_factory.mktemp("site"), "--no-demo", "--mqtt-url",
                          f"mqtt://{broker.host}:{broker.port}", "--sparkplug-group", GROUP, "--sparkplug-node", NODE)
        centre = RunningApp(tmp_path_factory.mktemp("centre"), "--no-demo")
        try:
            site.wait_healthy()
            centre.wait_healthy()
            site_api = Client(site.port, site.token("engineer"))
            centre_api = Client(centre.port, centre.token("engineer"))
            status, created = site_api.post("/api/plc/machines/", plc.machine_body("MODBUS", MACHINE, **OWN_SETTINGS))
            assert status == 201, created
            body = {"name": "ACME filler at site A", "machine_id": f"CENTRAL-{MACHINE}", "protocol": "SPARKPLUG_B",
                    "ip_address": broker.host, "port": broker.port, "poll_interval_ms": 1000,
                    "protocol_config": {"group_id": GROUP, "edge_node_id": NODE, "device_id": MACHINE},
                    "tags": [{"name": t["name"], "address": f"Tags/{t['name']}", "data_type": central_type(t),
                              "role": t["role"]} for t in MODBUS_TAGS], **OWN_SETTINGS}
            status, created = centre_api.post("/api/plc/machines/", body)
            assert status == 201, created
            states = {}

            def both_in_changeover():
                states["site"] = site_api.get(f"/api/plc/machines/{MACHINE}/")[1].get("state")
                states["centre"] = centre_api.get(f"/api/plc/machines/CENTRAL-{MACHINE}/")[1].get("state")
                return states == {"site": "changeover", "centre": "changeover"}

            try:
                wait_for(both_in_changeover, timeout=90)
            except AssertionError:
                raise AssertionError(f"states before the schedule: {states}") from None
            t0 = (time.time() // 60 + 1) * 60  # a whole minute: count rows do not straddle the schedule's start
            if t0 - time.time() < 5:
                t0 += 60
            plc.schedule = Schedule(t0)
            end = t0 + CYCLES * plc.schedule.cycle_s
            time.sleep(max(0.0, end - time.time()) + 4.0)  # both writers commit within a second
            out = {}
            for who, api, machine in (("site", site_api, MACHINE), ("centre", centre_api, f"CENTRAL-{MACHINE}")):
                status, report = api.get(f"/api/oee/?machine={machine}&start={t0}&end={end}")
                assert status == 200, report
                out[who] = report
            yield {"reports": out, "schedule": plc.schedule}
        finally:
            centre.stop()
            site.stop()


@pytest.mark.parametrize("who", ["site", "centre"])
def test_the_centre_reads_the_site_through_the_broker_with_the_same_oee(measured, who):
    s, r = measured["schedule"], measured["reports"][who]
    line = (f"A {r['availability']} P {r['performance']} Q {r['quality']} OEE {r['oee']} parts {r['total_count']} "
            f"failure {r['losses']['availability.equipment_failure']} flags {r['flags']}")
    print(f"\n{who}: {line}")
    assert r["total_count"] == pytest.approx(CYCLES * s.run_s / s.ideal_s, abs=2), line
    assert r["availability"] == pytest.approx(s.availability, abs=POINT), line
    assert r["performance"] == pytest.approx(1.0, abs=POINT), line
    assert r["quality"] == pytest.approx(s.quality, abs=POINT), line
    assert r["oee"] == pytest.approx(s.oee, abs=POINT), line
    failure = r["losses"]["availability.equipment_failure"]
    assert failure / r["planned_time_s"] == pytest.approx(s.failure_share, abs=POINT), line
