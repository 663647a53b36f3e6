"""A Sparkplug B edge node that is not the app's own gives the right OEE: the third-party PLC's known schedule (run
20 s at ideal speed, faulted 10 s with its code 42, every 30 s, 10 % rejects: A 0.667, P 1.0, Q 0.9, OEE 0.6),
published as a Sparkplug edge gateway does (DDATA of the metrics that changed, at 10 Hz) through a private
Mosquitto that wants credentials, with the vendor's own metric names and state codes. The machine is configured
only as a user would, through the REST API with its own settings; OEE is read from GET /api/oee/.
"""
from __future__ import annotations

import threading
import time

import pytest

from sparkplug.payload import DataType
from tests.config.conftest import Client, wait_for
from tests.support.mosquitto import Mosquitto
from tests.support.sparkplug_edge import EdgeNode
from tests.support.third_party_plc import Schedule
from tests.test_app import RunningApp

GROUP, EDGE, DEVICE = "AcmeWorks", "gw-filler", "Filler7"
USERS = {"oee": "central-pw", "gw": "gw-pw"}
CYCLES = 2
POINT = 0.01
OWN_SETTINGS = {"state_code_map": {"1": "running", "3": "faulted", "7": "changeover"},
                "micro_stop_threshold_s": 5,
                "fault_codes": [{"code": 42, "text": "Filler jam", "kind": "fault"}]}
# The gateway's own metric names: (metric, Sparkplug type, the schedule's key, the tag's type, its role)
METRICS = [("Filler/Status", DataType.INT32, "state", "INT32", "state.code"),
           ("Filler/AlarmNo", DataType.INT32, "fault", "INT32", "fault.code"),
           ("Filler/Counters/Good", DataType.UINT32, "good", "UINT32", "counter.good"),
           ("Filler/Counters/Scrap", DataType.UINT32, "scrap", "UINT32", "counter.reject"),
           ("Filler/NominalCycle", DataType.DOUBLE, None, "DOUBLE", "cycle.ideal_time")]


class Gateway:
    """Publishes the schedule's values as DDATA whenever one changes (looked at every 100 ms)."""

    def __init__(self, edge: EdgeNode, schedule: Schedule):
        self.edge, self.schedule = edge, schedule
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.messages = 0

    def values(self) -> dict:
        v = self.schedule.at(time.time())
        return {name: (v[key] if key else self.schedule.ideal_s) for name, _t, key, _tt, _r in METRICS}

    def start(self) -> "Gateway":
        self._thread.start()
        return self

    def _run(self) -> None:
        last: dict = {}
        while not self._stop.wait(0.1):
            now = self.values()
            changed = {k: v for k, v in now.items() if last.get(k) != v}
            if changed:
                self.edge.data(DEVICE, changed)
                self.messages += 1
                last = now

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    schedule = Schedule(time.time() + 86400)  # in changeover (its code 7) until the schedule starts
    with Mosquitto(users=USERS) as broker:
        first = {name: (dtype, schedule.at(time.time())[key] if key else schedule.ideal_s)
                 for name, dtype, key, _tt, _r in METRICS}
        edge = EdgeNode(broker.host, broker.port, GROUP, EDGE, devices={DEVICE: first}, username="gw",
                        password=USERS["gw"]).start()
        gateway = Gateway(edge, schedule).start()
        app = RunningApp(tmp_path_factory.mktemp("app"), "--no-demo")
        try:
            app.wait_healthy()
            api = Client(app.port, app.token("engineer"))
            body = {"name": "ACME filler (Sparkplug B)", "machine_id": "ACME-SPB", "protocol": "SPARKPLUG_B",
                    "ip_address": broker.host, "port": broker.port, "poll_interval_ms": 1000,
                    "protocol_config": {"group_id": GROUP, "edge_node_id": EDGE, "device_id": DEVICE,
                                        "username": "oee", "password": USERS["oee"]},
                    "tags": [{"name": name.rsplit("/", 1)[1], "address": name, "data_type": tt, "role": role}
                             for name, _t, _k, tt, role in METRICS], **OWN_SETTINGS}
            status, created = api.post("/api/plc/machines/", body)
            assert status == 201, created
            wait_for(lambda: api.get("/api/plc/machines/ACME-SPB/")[1].get("state") == "changeover", timeout=60)
            t0 = (time.time() // 60 + 1) * 60  # a whole minute: count rows do not straddle the schedule's start
            if t0 - time.time() < 5:
                t0 += 60
            gateway.schedule = Schedule(t0)
            end = t0 + CYCLES * gateway.schedule.cycle_s
            time.sleep(max(0.0, end - time.time()) + 3.0)  # the writer commits within a second
            status, report = api.get(f"/api/oee/?machine=ACME-SPB&start={t0}&end={end}")
            assert status == 200, report
            yield {"report": report, "schedule": gateway.schedule, "messages": gateway.messages}
        finally:
            gateway.stop()
            app.stop()
            edge.stop()


def test_a_foreign_sparkplug_edge_node_gives_the_right_oee(measured):
    s, r = measured["schedule"], measured["report"]
    line = (f"A {r['availability']} P {r['performance']} Q {r['quality']} OEE {r['oee']} parts {r['total_count']} "
            f"failure {r['losses']['availability.equipment_failure']} flags {r['flags']} "
            f"({measured['messages']} DDATA messages)")
    print("\nSPARKPLUG_B (own settings, through the API): " + line)
    assert r["total_count"] == pytest.approx(CYCLES * s.run_s / s.ideal_s, abs=2), line
    assert r["availability"] == pytest.approx(s.availability, abs=POINT), line
    assert r["performance"] == pytest.approx(1.0, abs=POINT), line
    assert r["quality"] == pytest.approx(s.quality, abs=POINT), line
    assert r["oee"] == pytest.approx(s.oee, abs=POINT), line
    failure = r["losses"]["availability.equipment_failure"]
    assert failure / r["planned_time_s"] == pytest.approx(s.failure_share, abs=POINT), line
