"""Done when: a rule fires a webhook and an e-mail to real servers on 127.0.0.1 within 10 s of its condition, once,
then resolves once. `python app.py` (collector process and all) polls the third-party PLC (Modbus TCP on
127.0.0.1); the machine runs, then faults (code 42, "Filler jam"), then runs again. The webhook's HMAC is checked
with the rule's secret; the SMTP server demands a login, whose password never shows in the app's log, /healthz or
the rule. Also: the rule API's bad input (400 naming the field), faults and events through the API and the CSV
export, acknowledgements (audited) and an alert that survives a restart of the app."""
from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.config.conftest import Client
from tests.config.test_wizard import click, fill
from tests.support.auth import browser_login, browser_logout
from tests.support.browser import By, make_browser, wait_text
from tests.live.helpers import LiveClient
from tests.support.receivers import SmtpReceiver, WebhookReceiver
from tests.support.third_party_plc import Schedule, ThirdPartyPlc
from tests.support.waiting import wait_for
from tests.test_app import RunningApp

SECRET = "s3cret-hmac-key-of-the-rule"
SMTP_PASSWORD = "smtp-Pa55word-never-shown"
OWN = {"state_code_map": {"1": "running", "3": "faulted", "7": "changeover"},
       "fault_codes": [{"code": 42, "text": "Filler jam", "kind": "fault"}]}
RUN_S, CYCLE_S = 12.0, 24.0  # runs 12 s, then faulted 12 s, then runs again


@pytest.fixture(scope="module")
def floor(tmp_path_factory):
    hook = WebhookReceiver()
    smtp = SmtpReceiver("alerts", SMTP_PASSWORD)
    plc = ThirdPartyPlc(Schedule(time.time() + 86400)).start()  # in changeover (a planned state) until told
    args = ("--no-demo", "--smtp-url", f"smtp://alerts:{SMTP_PASSWORD}@127.0.0.1:{smtp.port}", "--smtp-from",
            "oee@plant.example")
    app = RunningApp(tmp_path_factory.mktemp("app"), *args)
    state = {"app": app}
    try:
        app.wait_healthy()
        api = Client(app.port, app.token("engineer"))
        status, created = api.post("/api/plc/machines/", plc.machine_body("MODBUS", "FILLER-1", **OWN))
        assert status == 201, created
        wait_for(lambda: api.get("/api/plc/machines/FILLER-1/")[1].get("state") == "changeover", timeout=30)
        state.update(api=api, hook=hook, smtp=smtp, plc=plc, args=args)
        yield state
    finally:
        state["app"].stop()
        plc.stop()
        hook.stop()
        smtp.stop()


def _states(hook) -> list[str]:
    return [p["state"] for p in hook.payloads()]


def test_a_rule_fires_a_webhook_and_an_email_once_then_resolves_once(floor):
    api, hook, smtp, plc = floor["api"], floor["hook"], floor["smtp"], floor["plc"]
    status, rule = api.post("/api/alerts/rules/", {
        "name": "Filler stopped", "kind": "machine_stopped", "machine": "FILLER-1", "for_s": 2, "reset_s": 1,
        "webhook_url": hook.url, "webhook_secret": SECRET, "email_to": ["lead@plant.example"]})
    assert status == 201, rule
    assert rule["webhook_secret_set"] is True and "webhook_secret" not in rule and SECRET not in json.dumps(rule)

    t0 = time.time() + 2
    plc.schedule = Schedule(t0, run_s=RUN_S, cycle_s=CYCLE_S)
    stopped_at = t0 + RUN_S
    wait_for(lambda: "active" in _states(hook), timeout=RUN_S + 2 + 10)
    fired_after = time.time() - stopped_at
    wait_for(lambda: len(smtp.messages) >= 1, timeout=10)
    mailed_after = time.time() - stopped_at
    print(f"webhook {fired_after:.1f} s, e-mail {mailed_after:.1f} s after the stop")
    assert fired_after <= 10 and mailed_after <= 10

    headers, body = hook.received[0]
    assert headers["x-oee-signature"] == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    payload = json.loads(body)
    assert payload["rule"] == "Filler stopped" and payload["kind"] == "machine_stopped"
    assert payload["machine_id"] == "FILLER-1" and payload["scope"] == "machine FILLER-1"
    assert payload["state"] == "active" and payload["started_at"] and payload["link"].endswith("/machine/FILLER-1")

    restart = t0 + CYCLE_S
    wait_for(lambda: "resolved" in _states(hook), timeout=restart - time.time() + 10)
    time.sleep(max(0.0, restart + 5 - time.time()))  # several evaluations after: nothing more is sent
    assert _states(hook) == ["active", "resolved"], hook.payloads()
    assert len(smtp.messages) == 2, smtp.messages
    (sender, to, first), (_s, _t, second) = smtp.messages
    assert sender == "oee@plant.example" and to == ["lead@plant.example"]
    assert "ALERT: Filler stopped" in first and "Resolved: Filler stopped" in second
    assert smtp.logins == ["alerts", "alerts"]

    status, alerts = api.get(f"/api/alerts/?rule={rule['id']}")
    assert status == 200 and [a["state"] for a in alerts["results"]] == ["resolved"], alerts
    _, stored = api.get(f"/api/alerts/rules/{rule['id']}/")
    assert stored["last_sent"] and stored["last_error"] is None

    # The fault it came from: in the machine's history with the text of its fault table, and in the events.
    status, found = api.get("/api/faults/?machine=FILLER-1")
    assert status == 200 and found["count"] >= 1, found
    fault = found["results"][-1]
    assert fault["code"] == 42 and fault["text"] == "Filler jam" and not fault["active"]
    assert abs(fault["duration_s"] - (CYCLE_S - RUN_S)) < 1.5, fault
    status, events = api.get("/api/events/?machine=FILLER-1&kind=fault,alert&limit=10")
    assert status == 200 and {e["kind"] for e in events["results"]} == {"fault", "alert"}, events
    api.delete(f"/api/alerts/rules/{rule['id']}/")


def test_acknowledging_a_fault_and_an_alert_records_who_and_when(floor):
    app, api, hook = floor["app"], floor["api"], floor["hook"]
    plc = floor["plc"]
    live = LiveClient(app.port, "/ws/events/?machine=FILLER-1")
    assert live.recv()["type"] == "snapshot"
    plc.schedule = Schedule(time.time() - RUN_S - 1, run_s=RUN_S, cycle_s=3600)  # faulted for the next hour
    status, rule = api.post("/api/alerts/rules/", {"name": "Filler down", "kind": "machine_stopped",
                                                   "machine": "FILLER-1", "webhook_url": hook.url})
    assert status == 201, rule
    before = len(hook.received)
    wait_for(lambda: api.get("/api/faults/?machine=FILLER-1&active=1")[1]["count"] == 1, timeout=15)
    wait_for(lambda: api.get(f"/api/alerts/?rule={rule['id']}&state=active")[1]["count"] == 1, timeout=15)
    operator = Client(app.port, app.token("operator"))
    viewer = Client(app.port, app.token("viewer"))

    _, active = api.get("/api/faults/?machine=FILLER-1&active=1")
    fault_id = active["results"][0]["id"]
    assert viewer.post(f"/api/faults/{fault_id}/ack")[0] == 403
    status, acked = operator.post(f"/api/faults/{fault_id}/ack")
    assert status == 200 and acked["acknowledged_by"] == "token:test-operator/tests" and acked["acknowledged_at"], acked
    assert operator.post("/api/faults/999999/ack")[0] == 404

    _, alerts = api.get(f"/api/alerts/?rule={rule['id']}&state=active")
    alert_id = alerts["results"][0]["id"]
    status, acked = operator.post(f"/api/alerts/{alert_id}/ack")
    assert status == 200 and acked["state"] == "acknowledged" and acked["acknowledged_by"] == "token:test-operator/tests"
    wait_for(lambda: "acknowledged" in _states(hook)[before:], timeout=10)  # sent once by the collector process
    # the same changes, live on /ws/events/ (from the collector process, over the live bus)
    fault_alert = live.until(lambda m: m["type"] == "alert" and m.get("kind") == "fault" and m["active"], timeout=5)
    assert fault_alert["text"] == "Filler jam" and fault_alert["message"] == "faulted: Filler jam (fault code 42)"
    rule_alerts = lambda m: m["type"] == "alert" and m.get("kind") == "rule"  # noqa: E731
    fired = live.until(lambda m: rule_alerts(m) and m["state"] == "active")
    assert fired["id"] == f"rule:{alert_id}" and fired["machine_id"] == "FILLER-1" and fired["rule"] == "Filler down"
    assert live.until(lambda m: rule_alerts(m) and m["state"] == "acknowledged")["active"] is True
    live.close()

    admin = Client(app.port, app.token("admin"))
    _, audit = admin.get("/api/audit/?action=fault.acknowledge")
    assert audit["count"] >= 1 and audit["results"][0]["actor"] == "token:test-operator/tests"
    _, audit = admin.get("/api/audit/?action=alert")
    assert {"alert.activate", "alert.acknowledge"} <= {e["action"] for e in audit["results"]}

    # A restart keeps the alert: no second "active" is sent, it is still listed as acknowledged.
    assert _states(hook)[before:].count("active") == 1
    status, text = app.get(f"/export/events.csv?machine=FILLER-1&kind=fault", token=app.token("viewer"))
    rows = list(csv.reader(io.StringIO(text)))
    assert status == 200 and rows[0][:3] == ["time", "kind", "machine"] and rows[1][1] == "fault"
    api.delete(f"/api/alerts/rules/{rule['id']}/")
    assert api.get(f"/api/alerts/?rule={rule['id']}")[1]["count"] == 0  # its alerts go with it


@pytest.mark.parametrize("body, field", [
    ({"kind": "machine_stopped", "machine": "NO-SUCH-MACHINE"}, "machine"),
    ({"kind": "oee_below", "machine": "FILLER-1", "threshold": 65}, "threshold"),
    ({"kind": "oee_below", "machine": "FILLER-1"}, "threshold"),
    ({"kind": "oee_below", "machine": "FILLER-1", "threshold": 0.6, "metric": "speed"}, "metric"),
    ({"kind": "machine_stopped", "machine": "FILLER-1", "webhook_url": "ftp://hooks.example/x"}, "webhook_url"),
    ({"kind": "machine_stopped", "machine": "FILLER-1", "email_to": ["not-an-address"]}, "email_to[0]"),
    ({"kind": "machine_stopped", "machine": "FILLER-1", "for_s": -1}, "for_s"),
    ({"kind": "machine_stopped"}, "machine"),
    ({"kind": "machine_stopped", "machine": "FILLER-1", "line": "x"}, "line"),
    ({"kind": "fire", "machine": "FILLER-1"}, "kind"),
    ({"kind": "machine_stopped", "line": "²"}, "line"),
    ({"kind": "machine_stopped", "site": "99999999999"}, "site"),
    ({"kind": "machine_stopped", "machine": "FILLER-1", "webhook_secret": "short"}, "webhook_secret"),
    ({"kind": "machine_stopped", "machine": "FILLER-1", "colour": "red"}, "colour"),
])
def test_a_bad_rule_is_refused_naming_the_field(floor, body, field):
    status, answer = floor["api"].post("/api/alerts/rules/", {"name": "bad", **body})
    assert status == 400 and field in answer["fields"], answer


def test_rules_crud_access_and_query_errors(floor):
    app, api = floor["app"], floor["api"]
    viewer = Client(app.port, app.token("viewer"))
    body = {"name": "Line OEE", "kind": "oee_below", "machine": "FILLER-1", "threshold": 0.6, "window": "shift"}
    assert viewer.post("/api/alerts/rules/", body)[0] == 403
    status, rule = api.post("/api/alerts/rules/", body)
    assert status == 201 and rule["metric"] == "oee" and rule["window"] == "shift"
    assert api.post("/api/alerts/rules/", body)[1]["fields"] == {"name": "a rule named 'Line OEE' exists already"}
    assert viewer.get(f"/api/alerts/rules/{rule['id']}/")[1]["name"] == "Line OEE"
    status, patched = api.patch(f"/api/alerts/rules/{rule['id']}/", {"threshold": 0.5, "enabled": False})
    assert status == 200 and patched["threshold"] == 0.5 and patched["enabled"] is False
    assert api.patch(f"/api/alerts/rules/{rule['id']}/", {"threshold": 2})[1]["fields"].keys() == {"threshold"}
    assert api.put(f"/api/alerts/rules/{rule['id']}/", {"name": "x", "kind": "writer_spooling"})[0] == 200
    assert api.get("/api/alerts/rules/424242/")[0] == 404
    assert api.delete(f"/api/alerts/rules/{rule['id']}/")[0] == 200
    assert api.delete(f"/api/alerts/rules/{rule['id']}/")[0] == 404
    for path, field in (("/api/events/?limit=0", "limit"), ("/api/events/?kind=party", "kind"),
                        ("/api/events/?offset=99999", "offset"), ("/api/faults/?active=maybe", "active"),
                        ("/api/events/?start=yesterday", "start"), ("/api/alerts/?state=angry", "state"),
                        ("/api/faults/?colour=1", "colour")):
        status, answer = viewer.get(path)
        assert status == 400 and field in answer["fields"], (path, answer)
    assert viewer.get("/api/faults/?machine=NOPE")[0] == 404
    _, doc = viewer.get("/api/openapi.json")
    assert {"/api/alerts/rules/", "/api/alerts/rules/{id}/", "/api/faults/", "/api/events/"} <= set(doc["paths"])


def test_rules_on_the_settings_page_and_a_fault_acknowledged_on_the_machine_page(floor):
    """In Chromium: an engineer makes a rule on /settings/alerts/ (a bad webhook URL is named first); an operator
    acknowledges the machine's active fault with its button on /machine/FILLER-1; a viewer sees no button."""
    app, api, plc = floor["app"], floor["api"], floor["plc"]
    plc.schedule = Schedule(time.time() - RUN_S - 1, run_s=RUN_S, cycle_s=3600)  # faulted
    browser = make_browser(1400, 1400)
    try:
        browser_login(browser, app.base, app.user("engineer"))
        browser.get(f"{app.base}/settings/alerts/")
        wait_text(browser, "h2", "Alert rules")
        fill(browser, "sa-rule-name", "Page rule")
        fill(browser, "sa-rule-scope_key", "FILLER-1")
        fill(browser, "sa-rule-for_s", "1")
        fill(browser, "sa-rule-webhook_url", "ftp://nowhere.example/")
        fill(browser, "sa-rule-email_to", "lead@plant.example, shift@plant.example")
        click(browser, "#sa-rule-save")
        wait_text(browser, "#sa-rule-webhook_url-fb", "http:// or https://")
        fill(browser, "sa-rule-webhook_url", floor["hook"].url)
        click(browser, "#sa-rule-save")
        wait_text(browser, "#sa-rule-list", "Page rule")
        rule = next(r for r in api.get("/api/alerts/rules/")[1]["results"] if r["name"] == "Page rule")
        assert rule["machine"] == "FILLER-1" and rule["for_s"] == 1
        assert rule["email_to"] == ["lead@plant.example", "shift@plant.example"]
        wait_text(browser, "#sa-alerts-table", "Page rule")  # it fires: listed below within seconds
        browser_logout(browser, app.base)

        changed_at = time.time()
        plc.schedule = Schedule(changed_at, run_s=2, cycle_s=3600)  # runs 2 s, then a new fault for an hour

        def new_fault():
            found = api.get("/api/faults/?machine=FILLER-1&active=1")[1]["results"]
            started = found and datetime.fromisoformat(found[0]["start"].replace("Z", "+00:00")).timestamp()
            return found[0] if found and started > changed_at and not found[0]["acknowledged_at"] else None

        fault = wait_for(new_fault, timeout=20)
        viewer = app.user("viewer")
        browser_login(browser, app.base, viewer)
        browser.get(f"{app.base}/machine/FILLER-1")
        wait_text(browser, "#machine-faults-list", "Filler jam")
        assert not browser.find_elements(By.CSS_SELECTOR, ".machine-fault-ack")
        browser_logout(browser, app.base)

        operator = app.user("operator")
        browser_login(browser, app.base, operator)
        browser.get(f"{app.base}/machine/FILLER-1")
        wait_text(browser, "#machine-faults-list", "Filler jam")
        click(browser, f"tr[data-fault='{fault['id']}'] .machine-fault-ack")
        wait_text(browser, f"tr[data-fault='{fault['id']}']", operator)
        stored = api.get("/api/faults/?machine=FILLER-1&active=1")[1]["results"][0]
        assert stored["id"] == fault["id"] and stored["acknowledged_by"] == operator
    finally:
        browser.quit()
    api.delete(f"/api/alerts/rules/{rule['id']}/")


def test_the_smtp_password_is_shown_nowhere(floor):
    app = floor["app"]
    admin = Client(app.port, app.token("admin"))
    _, health = admin.get("/healthz")
    _, audit = admin.get("/api/audit/?page_size=500")
    _, rules = admin.get("/api/alerts/rules/")
    for text in (app.output(), json.dumps(health), json.dumps(audit), json.dumps(rules)):
        assert SMTP_PASSWORD not in text and SECRET not in text


def test_an_alert_survives_a_restart_of_the_app_and_is_not_sent_again(floor):
    app, api, hook, plc = floor["app"], floor["api"], floor["hook"], floor["plc"]
    plc.schedule = Schedule(time.time() - RUN_S - 1, run_s=RUN_S, cycle_s=3600)  # faulted
    status, rule = api.post("/api/alerts/rules/", {"name": "Across a restart", "kind": "machine_stopped",
                                                   "machine": "FILLER-1", "webhook_url": hook.url})
    assert status == 201, rule

    def sent() -> list[str]:
        return [p["state"] for p in hook.payloads() if p["rule"] == "Across a restart"]

    wait_for(lambda: sent() == ["active"], timeout=15)
    _, before = api.get(f"/api/alerts/?rule={rule['id']}")
    folder = Path(app.log.name).parent
    app.stop()
    again = RunningApp(folder, *floor["args"])
    floor["app"] = again
    again.wait_healthy()
    api = Client(again.port, again.token("engineer"))
    floor["api"] = api
    wait_for(lambda: api.get("/api/plc/machines/FILLER-1/")[1].get("state") == "faulted", timeout=30)
    time.sleep(6)  # three evaluations with the machine faulted again
    _, after = api.get(f"/api/alerts/?rule={rule['id']}")
    assert [(a["id"], a["state"]) for a in after["results"]] == [(a["id"], "active") for a in before["results"]]
    assert sent() == ["active"]
    plc.schedule = Schedule(time.time() + 86400)  # changeover: no longer an unplanned stop
    wait_for(lambda: sent() == ["active", "resolved"], timeout=15)


def test_the_events_export_neutralises_a_fault_text_that_reads_as_a_formula(floor):
    app, api = floor["app"], floor["api"]
    status, changed = api.patch("/api/plc/machines/FILLER-1/", {
        "fault_codes": [{"code": 42, "text": "=HYPERLINK(\"http://x\",\"jam\")", "kind": "fault"}]})
    assert status == 200, changed
    floor["plc"].schedule = Schedule(time.time() - RUN_S - 1, run_s=RUN_S, cycle_s=3600)  # faulted
    wait_for(lambda: api.get("/api/faults/?machine=FILLER-1")[1]["count"] >= 1, timeout=20)
    status, text = app.get("/export/events.csv?machine=FILLER-1&kind=fault&delimiter=;", token=app.token("viewer"))
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert status == 200 and len(rows) > 1
    assert {r[6] for r in rows[1:]} == {"'=HYPERLINK(\"http://x\",\"jam\")"}, rows[:3]
