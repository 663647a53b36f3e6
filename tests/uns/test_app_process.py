"""`python app.py` (the web process and the collector process it starts) with OEE_MQTT_URL: the collector process
publishes, and the web process's /healthz and /metrics show its publisher, the broker going away included; the
password is in no log line and no answer. A bad option stops the start naming it."""
from __future__ import annotations

import json

from prometheus_client.parser import text_string_to_metric_families

from tests.support.mosquitto import Mosquitto
from tests.support.waiting import wait_for
from tests.test_app import RunningApp, run_app
from tests.uns.support import Reader

PASSWORD = "app-Secret-42"


def test_the_collector_process_publishes_and_the_web_process_reports_it(tmp_path):
    with Mosquitto(users={"oee": PASSWORD, "reader": "r"}) as broker:
        reader = Reader(broker.host, broker.port, "oee/_publisher/#", user="reader", password="r")
        app = RunningApp(tmp_path, "--no-demo",
                         env={"OEE_MQTT_URL": f"mqtt://oee:{PASSWORD}@{broker.host}:{broker.port}"})
        try:
            app.wait_healthy(90)
            reader.wait(lambda r: any(d.get("online") for _, d, _ in r.json()), 30)
            health = wait_for(lambda: (lambda h: h if (h.get("mqtt") or {}).get("connected") else None)(
                json.loads(app.get("/healthz")[1])), timeout=20)
            assert health["mqtt"]["url"] == f"mqtt://oee:***@{broker.host}:{broker.port}"
            metrics = {s.name: s.value for f in text_string_to_metric_families(app.get("/metrics")[1])
                       for s in f.samples}
            assert metrics["oee_mqtt_connected"] == 1

            broker.stop()
            health = wait_for(lambda: (lambda h: h if any(p["component"] == "mqtt publisher"
                                                          for p in h["problems"]) else None)(
                json.loads(app.get("/healthz")[1])), timeout=20)
            assert health["status"] == "degraded" and health["mqtt"]["connected"] is False
            problem = next(p["error"] for p in health["problems"] if p["component"] == "mqtt publisher")
            assert problem.startswith(f"broker mqtt://oee:***@{broker.host}:{broker.port}: "), problem
            assert PASSWORD not in json.dumps(health) and PASSWORD not in app.get("/metrics")[1]
        finally:
            app.stop()
            reader.close()
        output = app.output()
        assert "UNS publisher: connected to mqtt://oee:***@" in output  # the collector process's log, masked
        assert PASSWORD not in output


def test_a_bad_mqtt_option_stops_the_start_naming_it():
    result = run_app("--mqtt-url", "mqtt://oee:hunter2@broker:1883/plant")
    assert result.returncode == 2
    assert "--mqtt-url [OEE_MQTT_URL]: a broker URL has no path or query" in result.stderr
    assert "hunter2" not in result.stderr
