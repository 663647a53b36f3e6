"""/metrics through prometheus_client's own parser: the names, the types, and numbers that equal their sources."""
from __future__ import annotations

import dataclasses
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session

from app import create_app
from collectors.poller import BackoffPolicy
from config.demo_plant import sync_demo_plant
from db.models import Connection, Machine, Tag
from db.shift_oee import current_shift_oee
from db.store import open_store
from exports.prometheus import make_registry, render
from plant import Plant, default_layout
from processes.demo import demo_endpoints
from processes.runtime import Runtime
from processes.settings import Settings
from tests.export.conftest import T0, H, iso


def parse(text: str) -> dict:
    """{family name: (type, [(sample name, labels, value)])}"""
    return {f.name: (f.type, [(s.name, s.labels, s.value) for s in f.samples])
            for f in text_string_to_metric_families(text)}


def sample(families: dict, family: str, name: str | None = None, **labels) -> float:
    values = [v for n, lab, v in families[family][1] if (name is None or n == name) and labels.items() <= lab.items()]
    assert len(values) == 1, (family, labels, families[family])
    return values[0]


def test_current_shift_oee_equals_the_api(sqlite_plant):
    client, store, _ = sqlite_plant
    now = T0 + 8 * H  # 17:00 in Chicago: the Swing shift (14:00-22:00) began at T0 + 5 h
    families = parse(render(make_registry(client.application.extensions["oee"], clock=lambda: now)).decode())
    for machine in ("M1", "M2"):
        body = client.get("/api/oee/", query_string={"machine": machine, "start": iso(T0 + 5 * H),
                                                      "end": iso(now)}).get_json()
        labels = {"machine": machine, "line": "Line A", "shift": "2026-09-21 Swing"}
        for key in ("oee", "availability", "performance", "quality", "good_count", "total_count"):
            assert families[f"oee_machine_{key}"][0] == "gauge"
            if body[key] is None:
                assert not [s for s in families[f"oee_machine_{key}"][1] if s[1]["machine"] == machine]
            else:
                assert sample(families, f"oee_machine_{key}", **labels) == pytest.approx(body[key], rel=1e-12)
        assert sample(families, "oee_machine_shift_start_seconds", **labels) == T0 + 5 * H
    # between shifts the one just finished counts; without a calendar, the plant's day
    between = {r.machine: r for r in current_shift_oee(store, T0 + 8 * H)}
    assert between["M1"].shift == "2026-09-21 Swing" and between["M1"].end == T0 + 8 * H


def test_current_shift_without_a_calendar_is_the_plant_day(sqlite_url, tmp_path):
    from tests.export.conftest import seed

    runtime = Runtime(Settings(database_url=sqlite_url, data_dir=tmp_path, demo=False, role="web")).start()
    try:
        seed(runtime.store)
        with Session(runtime.store.engine) as s, s.begin():
            for m in s.query(Machine):
                m.calendar_id = None
        rows = {r.machine: r for r in current_shift_oee(runtime.store, T0 + 8 * H)}
        assert rows["M1"].shift == "day"
        assert rows["M1"].start == T0 - 9 * H  # 00:00 CDT on the same day
    finally:
        runtime.stop()


def test_metrics_of_a_running_app(tmp_path):
    """A real collector polls a simulated Modbus machine; a second connection points at a closed port."""
    layout = default_layout()
    layout = dataclasses.replace(layout, machines=tuple(m for m in layout.machines if m.id == "LINE-015"))
    plant = Plant(layout, seed=3, time_scale=60).start()
    runtime = None
    try:
        url = f"sqlite:///{tmp_path / 'oee.sqlite3'}"
        store = open_store(url)
        endpoints = demo_endpoints(plant.endpoints(), layout)
        for ep in endpoints:
            ep["poll_interval_ms"] = 100
        sync_demo_plant(store.engine, {"name": "Site"}, endpoints, [])
        with Session(store.engine) as s, s.begin():
            dead = Connection(name="dead plc", protocol="MODBUS", host="127.0.0.1", port=1, poll_interval_ms=100)
            s.add(dead)
            s.flush()
            s.add(Tag(connection_id=dead.id, name="x", address="40001", data_type="INT16"))
        store.close()
        runtime = Runtime(Settings(database_url=url, data_dir=tmp_path, demo=False), collector_options={
            "backoff": BackoffPolicy(0.1, 0.2), "reload_interval_s": 3600}).start()
        client = create_app(runtime).server.test_client()
        deadline = time.monotonic() + 20
        while True:
            families = parse(client.get("/metrics").get_data(as_text=True))
            cycles = {lab["connection"]: v for _, lab, v in families["oee_connection_cycles"][1]}
            errors = {lab["connection"]: v for _, lab, v in families["oee_connection_errors"][1]}
            written = sample(families, "oee_writer_written_rows") if "oee_writer_written_rows" in families else 0
            if max(cycles.values(), default=0) >= 5 and errors.get("dead plc", 0) >= 2 and written > 0:
                break
            assert time.monotonic() < deadline, (cycles, errors, written)
            time.sleep(0.2)
        resp = client.get("/metrics")
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        families = parse(resp.get_data(as_text=True))
    finally:
        if runtime is not None:
            runtime.stop()
        plant.stop()
    live = next(c for c in cycles if c != "dead plc")
    assert families["oee_up"] == ("gauge", [("oee_up", {}, 1.0)])
    assert families["oee_connection_cycles"][0] == "counter"
    assert sample(families, "oee_connection_up", connection=live, protocol="MODBUS") == 1
    assert sample(families, "oee_connection_up", connection="dead plc") == 0
    assert sample(families, "oee_connection_errors", connection="dead plc", kind="cannot_connect") >= 2
    assert families["oee_connection_cycle_seconds"][0] == "summary"
    count = sample(families, "oee_connection_cycle_seconds", "oee_connection_cycle_seconds_count", connection=live)
    total = sample(families, "oee_connection_cycle_seconds", "oee_connection_cycle_seconds_sum", connection=live)
    assert count >= 5 and 0 < total / count < 1
    assert sample(families, "oee_connection_latency_ms", connection=live) > 0
    assert sample(families, "oee_connection_samples", connection=live) > 0
    for name in ("oee_writer_queue_rows", "oee_writer_spooled_rows", "oee_writer_spooled_bytes"):
        assert families[name][0] == "gauge" and sample(families, name) >= 0
    assert families["oee_writer_dropped_rows"] == ("counter", [("oee_writer_dropped_rows_total", {}, 0.0)])
    assert sample(families, "oee_writer_written_rows") > 0
    assert sample(families, "oee_websocket_clients") == 0
    assert sample(families, "oee_info", backend="sqlite", role="all") == 1
    # the simulated machine has no shift calendar here: its day so far
    assert sample(families, "oee_machine_availability", machine="LINE-015", shift="day") >= 0


def test_websocket_clients_are_counted(sqlite_plant):
    import threading
    import urllib.request

    import websocket
    from werkzeug.serving import make_server

    from tests.support.pgcluster import free_port

    client, _, _ = sqlite_plant
    port = free_port()
    server = make_server("127.0.0.1", port, client.application, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def clients() -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            return sample(parse(resp.read().decode()), "oee_websocket_clients")

    def wait_for(n: int) -> None:
        deadline = time.monotonic() + 10
        while clients() != n:
            assert time.monotonic() < deadline, f"oee_websocket_clients never became {n}"
            time.sleep(0.1)

    try:
        wait_for(0)
        sockets = [websocket.create_connection(f"ws://127.0.0.1:{port}/ws/events/", timeout=5) for _ in range(2)]
        wait_for(2)
        for ws in sockets:
            ws.close()
        wait_for(0)
    finally:
        server.shutdown()
        thread.join(5)
