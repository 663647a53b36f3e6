"""The evaluator and the notifier in one process, on a real database (SQLite and PostgreSQL), a real webhook
receiver and a real (or dead) SMTP port on 127.0.0.1; the collector's live state is given as the collector gives it
(machine snapshots, connection health, writer stats), the clock is the test's."""
from __future__ import annotations

import socket
import time

import pytest
from sqlalchemy import text

from alerting.evaluator import Evaluator
from alerting.notify import Notifier
from config import alert_rules
from db import alerts as alert_store
from db.backend import db_time
from db.store import open_store
from tests.support.receivers import WebhookReceiver
from tests.support.waiting import wait_for


class World:
    """What the collector would show: machine 1's state, one connection, the writer."""

    def __init__(self):
        self.now = 1_800_000_000.0
        self.machines = {1: {"state": "running", "since": self.now, "fault_code": None}}
        self.connections = [{"id": 5, "name": "PLC-5", "state": "connected", "down_since": None, "machine_ids": [1]}]
        self.writer = {"database_ok": True, "dropped_rows": 0}

    def set_state(self, state: str) -> None:
        if self.machines[1]["state"] != state:
            self.machines[1] = {"state": state, "since": self.now, "fault_code": 42 if state == "faulted" else None}


@pytest.fixture
def setup(any_url):
    store = open_store(any_url)
    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO machines (id, machine_id, name, description, enabled) "
                          "VALUES (1, 'M-1', 'Filler', '', true)"))
    hook = WebhookReceiver()
    world = World()
    notifier = Notifier(store.engine, retry_delays_s=(0.05, 0.05, 0.05), timeout_s=2).start()
    evaluator = Evaluator(store.engine, notifier, machines=lambda: world.machines,
                          connections=lambda: world.connections, writer=lambda: world.writer,
                          webhook_key=lambda rule: b"k", clock=lambda: world.now)
    yield store, hook, world, evaluator
    notifier.stop()
    hook.stop()
    store.close()


def step(world, evaluator, seconds: float, state: str | None = None) -> None:
    if state:
        world.set_state(state)
    world.now += seconds
    evaluator.run_once()
    assert evaluator.last_error is None, evaluator.last_error


def test_a_flapping_machine_gives_one_alert_not_a_flood(setup):
    store, hook, world, evaluator = setup
    alert_rules.create_rule(store.engine, {"name": "Stopped", "kind": "machine_stopped", "machine": "M-1",
                                           "for_s": 10, "reset_s": 30, "webhook_url": hook.url})
    step(world, evaluator, 2, "idle")
    step(world, evaluator, 5)  # 7 s stopped: not yet
    step(world, evaluator, 2, "running")  # back before for_s: nothing
    assert alert_store.list_alerts(store.engine)[0] == 0
    step(world, evaluator, 2, "faulted")
    step(world, evaluator, 11)  # fires
    for _ in range(10):  # flaps: running 5 s, faulted 5 s, for 100 s: within reset_s, so the alert stays
        step(world, evaluator, 5, "running")
        step(world, evaluator, 5, "faulted")
    step(world, evaluator, 2, "running")
    step(world, evaluator, 20)
    assert [a["state"] for a in alert_store.list_alerts(store.engine)[1]] == ["active"]
    step(world, evaluator, 15)  # gone for reset_s: resolved
    wait_for(lambda: len(hook.received) == 2, timeout=10)
    time.sleep(0.3)
    assert [p["state"] for p in hook.payloads()] == ["active", "resolved"]
    assert [a["state"] for a in alert_store.list_alerts(store.engine)[1]] == ["resolved"]


def test_a_failing_webhook_is_retried_and_shown_on_the_rule_and_a_dead_smtp_server_stalls_nothing(setup):
    store, hook, world, evaluator = setup
    hook.status = 500
    with socket.socket() as s:  # a port with no server behind it
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    evaluator.notifier._smtp_url = f"smtp://user:pw-hidden@127.0.0.1:{dead}"
    rule = alert_rules.create_rule(store.engine, {"name": "Stopped", "kind": "machine_stopped", "machine": "M-1",
                                                  "webhook_url": hook.url, "email_to": ["a@plant.example"]})
    world.set_state("faulted")
    began = time.monotonic()
    step(world, evaluator, 1)
    assert time.monotonic() - began < 1.0  # the evaluation only queues the notification
    wait_for(lambda: alert_rules.get_rule(store.engine, rule["id"])["last_error"], timeout=15)
    stored = alert_rules.get_rule(store.engine, rule["id"])
    assert len(hook.received) == 4  # the first attempt and three retries
    assert "webhook: HTTP 500 after 4 attempts" in stored["last_error"], stored
    assert "e-mail: ConnectionRefusedError" in stored["last_error"] and "pw-hidden" not in stored["last_error"]
    assert stored["last_sent"] is None and stored["last_error_at"]
    assert "pw-hidden" not in repr(evaluator.notifier)
    # the alert is not lost: it is stored and listed; a webhook that works again clears the error
    assert [a["state"] for a in alert_store.list_alerts(store.engine)[1]] == ["active"]
    hook.status = 200
    evaluator.notifier._smtp_url = ""
    alert_rules.update_rule(store.engine, rule["id"], {"email_to": []}, partial=True)
    step(world, evaluator, 1, "running")
    wait_for(lambda: alert_rules.get_rule(store.engine, rule["id"])["last_sent"], timeout=10)
    assert alert_rules.get_rule(store.engine, rule["id"])["last_error"] is None


def test_connection_failing_and_writer_spooling(setup):
    store, hook, world, evaluator = setup
    alert_rules.create_rule(store.engine, {"name": "Link", "kind": "connection_failing", "for_s": 30,
                                           "webhook_url": hook.url})
    alert_rules.create_rule(store.engine, {"name": "Database", "kind": "writer_spooling", "for_s": 5,
                                           "webhook_url": hook.url})
    world.connections[0].update(state="failing", down_since=world.now)
    world.writer["database_ok"] = False
    step(world, evaluator, 1)
    step(world, evaluator, 10)
    assert [a["subject"] for a in alert_store.list_alerts(store.engine)[1]] == ["writer:"]
    step(world, evaluator, 25)
    assert {a["subject"] for a in alert_store.list_alerts(store.engine, states=["active"])[1]} == {
        "writer:", "connection:5"}
    world.writer["database_ok"] = True
    world.connections[0].update(state="connected", down_since=None)
    step(world, evaluator, 1)
    assert alert_store.list_alerts(store.engine, states=["active"])[0] == 0
    world.writer["dropped_rows"] = 10  # rows dropped: an alert of its own
    step(world, evaluator, 1)
    step(world, evaluator, 6)
    assert alert_store.list_alerts(store.engine, states=["active"])[1][0]["message"] == "10 rows dropped"
    wait_for(lambda: len(hook.received) == 5, timeout=10)
    assert sorted(p["state"] for p in hook.payloads()) == ["active", "active", "active", "resolved", "resolved"]


def test_an_acknowledgement_made_elsewhere_is_notified_once(setup):
    store, hook, world, evaluator = setup
    alert_rules.create_rule(store.engine, {"name": "Stopped", "kind": "machine_stopped", "machine": "M-1",
                                           "webhook_url": hook.url})
    step(world, evaluator, 1, "faulted")
    alert_id = alert_store.list_alerts(store.engine)[1][0]["id"]
    alert_store.acknowledge_alert(store.engine, alert_id, actor="lead")  # as the web process does
    for _ in range(3):
        step(world, evaluator, 2)
    wait_for(lambda: len(hook.received) == 2, timeout=10)
    time.sleep(0.3)
    assert [p["state"] for p in hook.payloads()] == ["active", "acknowledged"]


def test_oee_below_reads_the_metric_of_the_current_hour(setup):
    """The machine has been faulted all hour (a state interval from two hours ago, still open): its availability
    this hour is 0, below the rule's 0.5; a rule on quality (no parts: no number) does not fire."""
    store, hook, world, evaluator = setup
    evaluator.oee_store = store
    evaluator.clock = time.time
    now = time.time()
    with store.engine.begin() as conn:
        conn.execute(text('INSERT INTO machine_states (machine_id, start, "end", state) VALUES (1, :s, NULL, '
                          "'faulted')"), {"s": db_time(store.backend_name, now - 7200)})
    alert_rules.create_rule(store.engine, {"name": "Availability", "kind": "oee_below", "machine": "M-1",
                                           "threshold": 0.5, "metric": "availability", "webhook_url": hook.url})
    alert_rules.create_rule(store.engine, {"name": "Quality", "kind": "oee_below", "machine": "M-1",
                                           "threshold": 0.5, "metric": "quality", "window": "shift"})
    evaluator.run_once()
    assert evaluator.last_error is None, evaluator.last_error
    _, alerts = alert_store.list_alerts(store.engine)
    assert [(a["rule"], a["state"]) for a in alerts] == [("Availability", "active")], alerts
    assert "availability 0.0% below 50.0% this hour" in alerts[0]["message"]
    wait_for(lambda: hook.payloads() and hook.payloads()[0]["kind"] == "oee_below", timeout=10)


def test_another_collector_processes_alerts_are_left_to_it(setup):
    """Two collector processes share the rules: one that has no such connection, writer or machine (yet) neither
    fires nor resolves the other's alerts."""
    store, hook, world, evaluator = setup
    alert_rules.create_rule(store.engine, {"name": "Link", "kind": "connection_failing"})
    alert_rules.create_rule(store.engine, {"name": "Database", "kind": "writer_spooling"})
    alert_rules.create_rule(store.engine, {"name": "Stopped", "kind": "machine_stopped", "machine": "M-1"})
    rules = {r.name: r for r in alert_store.load_rules(store.engine)}
    for name, subject in (("Link", "connection:9"), ("Database", "writer:other-host"), ("Stopped", "machine:1")):
        alert_store.open_alert(store.engine, rules[name], subject, None, "elsewhere", world.now)
    world.machines = {}  # this process has not read machine 1 since it started
    for _ in range(3):
        step(world, evaluator, 5)
    assert alert_store.list_alerts(store.engine, states=["active"])[0] == 3


def test_a_webhook_url_is_shown_masked_and_kept_when_the_masked_form_comes_back(setup):
    """A Slack- or Teams-style hook URL is its own token: the API, the settings page (to_form) and the audit log
    show scheme and host only; a rule saved again with that masked form (a page's form, a PATCH of the answer)
    still posts to the real URL."""
    store, hook, world, evaluator = setup
    token = "T0001/B0002/tokenXYZ123secret"
    real = f"{hook.url}/{token}?sig=abc"
    rule = alert_rules.create_rule(store.engine, {"name": "Stopped", "kind": "machine_stopped", "machine": "M-1",
                                                  "for_s": 1, "webhook_url": real})
    assert rule["webhook_url"] == f"http://127.0.0.1:{hook.server.server_address[1]}/***"
    again = alert_rules.update_rule(store.engine, rule["id"], {**rule, "for_s": 2})  # the answer, sent back
    assert again["for_s"] == 2 and again["webhook_url"] == rule["webhook_url"]
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT webhook_url FROM alert_rules")).scalar() == real
        audit = " ".join(str(r) for r in conn.execute(text("SELECT * FROM audit_log")).all())
    assert "tokenXYZ123secret" not in audit and "sig=abc" not in audit and "/***" in audit
    step(world, evaluator, 1, "faulted")
    step(world, evaluator, 3)
    wait_for(lambda: len(hook.received) == 1, timeout=10)  # the alert, posted to the real URL
    assert hook.paths == [f"/hook/{token}?sig=abc"]
    moved = alert_rules.update_rule(store.engine, rule["id"], {**again, "webhook_url": "https://hooks.example/"})
    assert moved["webhook_url"] == "https://hooks.example/"  # nothing after the host: nothing to hide
