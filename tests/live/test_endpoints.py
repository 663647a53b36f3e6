"""The live WebSocket endpoints against `python app.py` with the demo plant (one process, SQLite), real clients."""
from __future__ import annotations

import json
import sqlite3
import time
import urllib.parse

import pytest

from tests.live.helpers import Closed, LiveClient, tag_updates
from tests.support.plants import demo_plant_without_breaks
from tests.test_app import RunningApp

TYPES = {"snapshot", "metrics", "machine_status", "tag_update", "event", "alert", "config_update", "heartbeat",
         "error", "pong"}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("live")
    running = RunningApp(tmp, "--time-scale", "60", "--ws-heartbeat", "1", "--ws-stall-timeout", "4",
                         "--plant-file", str(demo_plant_without_breaks(tmp)))  # metrics move at any hour
    try:
        running.wait_healthy()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # every machine has reported its state once
            if (running.wait_healthy().get("live") or {}).get("machines") == 16:
                break
            time.sleep(0.3)
        else:
            raise AssertionError(running.output()[-3000:])
        running.db = tmp / "data" / "oee.sqlite3"
        yield running
    finally:
        running.stop()


def client(app, path: str, **kw) -> LiveClient:
    return LiveClient(app.port, path, **kw)


def test_dashboard_snapshot_first_then_changes_and_heartbeats(app):
    c = client(app, "/ws/dashboard/")
    try:
        snap = c.recv()
        assert snap["type"] == "snapshot" and snap["endpoint"] == "dashboard"
        assert len(snap["machines"]) == 16
        assert all(m["status"] and m["status"]["state"] for m in snap["machines"]), snap["machines"]
        ids = {m["machine_id"] for m in snap["machines"]}
        assert {"LINE-001", "LINE-010"} <= ids
        messages = c.drain(4)
        kinds = {m["type"] for m in messages}
        assert kinds <= TYPES
        assert "metrics" in kinds and "heartbeat" in kinds, kinds
        assert "tag_update" not in kinds  # the plant dashboard gets machine figures, not every tag
        metrics = [m for m in messages if m["type"] == "metrics"]
        assert {m["machine_id"] for m in metrics} <= ids
        assert all(set(m["counts"]) == {"total", "good", "reject"} for m in metrics)
        beats = [m for m in messages if m["type"] == "heartbeat"]
        assert len(beats) >= 2 and beats[0]["dropped"] == 0
    finally:
        c.close()


def test_machine_endpoint_sends_only_that_machine_with_its_tags(app):
    c = client(app, "/ws/dashboard/machine/LINE-003/")
    try:
        snap = c.recv()
        assert [m["machine_id"] for m in snap["machines"]] == ["LINE-003"]
        tags = snap["tags"]
        assert len(tags) > 50 and {t["machine_id"] for t in tags.values()} == {"LINE-003"}
        assert sum(1 for t in tags.values() if t["value"] is not None) > 50  # snapshot first: values included
        messages = c.drain(4)
        updates = [m for m in messages if m["type"] == "tag_update"]
        assert updates, [m["type"] for m in messages]
        assert {tid for tid, _t in tag_updates(updates)} <= set(tags)
        for m in messages:
            if m["type"] in ("metrics", "machine_status", "event", "alert"):
                assert m["machine_id"] == "LINE-003", m
        # changes come after the snapshot: never an older sample of a tag
        for tid, t in tag_updates(updates):
            if tags[tid]["value"] is not None:
                assert t > tags[tid]["value"][0]
    finally:
        c.close()


def test_line_endpoint_by_id_and_by_name(app):
    cfg = client(app, "/ws/config/")
    try:
        snap = cfg.recv()
    finally:
        cfg.close()
    line = next(ln for ln in snap["lines"] if ln["name"] == "Bottling 1")
    members = {m["machine_id"] for m in snap["machines"] if m["line_id"] == line["id"]}
    assert members
    for path in (f"/ws/dashboard/line/{line['id']}/", f"/ws/dashboard/line/{urllib.parse.quote(line['name'])}/"):
        c = client(app, path)
        try:
            first = c.recv()
            assert first["line"]["id"] == line["id"]
            assert {m["machine_id"] for m in first["machines"]} == members
            messages = c.drain(3)
            assert any(m["type"] == "metrics" for m in messages)
            for m in messages:
                if "machine_id" in m:
                    assert m["machine_id"] in members, m
        finally:
            c.close()


def test_plc_endpoint_takes_several_machines(app):
    c = client(app, "/ws/plc/LINE-001,LINE-011/")  # EtherNet/IP and OPC-UA
    try:
        snap = c.recv()
        assert {m["machine_id"] for m in snap["machines"]} == {"LINE-001", "LINE-011"}
        assert {t["machine_id"] for t in snap["tags"].values()} == {"LINE-001", "LINE-011"}
        updates = [m for m in c.drain(4) if m["type"] == "tag_update"]
        seen = {snap["tags"][tid]["machine_id"] for tid, _t in tag_updates(updates)}
        assert seen == {"LINE-001", "LINE-011"}
    finally:
        c.close()


@pytest.mark.parametrize("path, code, reason", [
    ("/ws/dashboard/machine/LINE-999/", 4404, "unknown machine 'LINE-999'"),
    ("/ws/plc/LINE-001,NOPE-7/", 4404, "unknown machine 'NOPE-7'"),
    ("/ws/dashboard/line/424242/", 4404, "unknown line '424242'"),
    ("/ws/dashboard/line/No%20Such%20Line/", 4404, "unknown line 'No Such Line'"),
    ("/ws/plc/,/", 4400, "give one or more machine ids"),
])
def test_unknown_machine_or_line_closes_with_a_clear_reason(app, path, code, reason):
    c = client(app, path)
    try:
        error = c.recv()
        assert error["type"] == "error" and reason in error["message"]
        with pytest.raises(Closed) as closed:
            c.recv()
        assert closed.value.code == code and reason in closed.value.reason
    finally:
        c.close()


def test_malformed_client_messages_get_an_error_and_the_connection_stays(app):
    c = client(app, "/ws/dashboard/machine/LINE-002/")
    other = client(app, "/ws/dashboard/machine/LINE-002/")
    try:
        c.recv(), other.recv()
        for bad, error in (("this is not json", "bad_json"), ("[1, 2]", "bad_message"),
                           (json.dumps({"type": "launch_missiles"}), "unknown_type"), ("{}", "bad_message"),
                           ("x" * 20000, "too_large")):
            c.send(bad)
            reply = c.until(lambda m: m["type"] == "error")
            assert reply["error"] == error, reply
        c.ws.send_binary(b"\x00\x01")
        assert c.until(lambda m: m["type"] == "error")["error"] == "bad_message"
        c.send({"type": "ping", "id": 7})
        pong = c.until(lambda m: m["type"] == "pong")
        assert pong["id"] == 7 and isinstance(pong["dropped"], int)  # what this client lost so far, as heartbeats
        c.send({"type": "snapshot"})
        assert c.until(lambda m: m["type"] == "snapshot")["machines"][0]["machine_id"] == "LINE-002"
        assert c.until(lambda m: m["type"] == "tag_update")  # still streaming
        assert other.until(lambda m: m["type"] == "tag_update")  # and nobody else noticed
        assert not [m for m in other.received if m["type"] == "error"]
    finally:
        c.close()
        other.close()


def test_events_endpoint_sends_state_changes_and_alerts(app):
    c = client(app, "/ws/events/")
    try:
        snap = c.recv()
        assert snap["type"] == "snapshot" and "events" in snap and "alerts" in snap
        assert len(snap["machines"]) == 16
        event = c.until(lambda m: m["type"] == "event", timeout=40)  # the plant runs 60x: stops come quickly
        assert event["kind"] in ("state_change", "product_change")
        assert event["machine_id"] in {m["machine_id"] for m in snap["machines"]}
        if event["kind"] == "state_change":
            assert event["state"] != event["previous_state"]
        assert all(m["type"] in TYPES for m in c.received)
    finally:
        c.close()


def test_events_endpoint_filters_by_machine(app):
    c = client(app, "/ws/events/?machine=LINE-004")
    try:
        snap = c.recv()
        assert [m["machine_id"] for m in snap["machines"]] == ["LINE-004"]
        for m in c.drain(3):
            assert m.get("machine_id", "LINE-004") == "LINE-004"
    finally:
        c.close()


def test_config_endpoint_announces_changes(app):
    c = client(app, "/ws/config/")
    try:
        snap = c.recv()
        assert len(snap["machines"]) == 16 and snap["lines"]
        with sqlite3.connect(app.db, timeout=10) as conn:
            conn.execute("UPDATE connections SET poll_interval_ms = 900 WHERE name = 'LINE-016'")
        update = c.until(lambda m: m["type"] == "config_update", timeout=25)  # collectors reload every 10 s
        assert update["changes"] and update["changes"][0]["restarted"]
        assert len(update["machines"]) == 16
    finally:
        c.close()


def test_healthz_reports_clients_and_drops(app):
    c = client(app, "/ws/dashboard/")
    try:
        c.recv()
        live = app.wait_healthy()["live"]
        assert live["clients"] >= 1 and live["clients_by_endpoint"].get("dashboard", 0) >= 1
        assert live["bus"]["kind"] == "local"  # to the collector process `python app.py` started
        assert {"client_dropped", "clients_evicted", "messages_sent"} <= set(live)
    finally:
        c.close()
