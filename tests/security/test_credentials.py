"""PLC credentials never leave the server and are stored encrypted (keys/credentials.py).

Real parts only: SQLite and PostgreSQL read with raw SQL, an asyncua OPC-UA server on 127.0.0.1 that refuses any
user but "operator" with its password (tests/collectors/test_opcua_driver.UaSim, with a user manager that records
every login attempt), the simulated plant's Modbus PLC, `python app.py` started with OEE_SECRET_KEY and restarted
with another key or none, Chromium for the page, websocket-client for /ws/config/.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import time
import urllib.parse

import pytest
from asyncua.crypto.permission_rules import User, UserRole
from sqlalchemy import text

from config import store as cs
from config.plant_file import validate_document
from config.validation import redact, validate_machine
from db.collector_config import load_collector_config, seal_stored_secrets
from db.store import open_store
from keys.credentials import CredentialError, Credentials, has_plain_secrets, is_sealed
from keys.master import derive_key
from tests.collectors.test_opcua_driver import PASSWORD, WRONG_PASSWORD, UaSim, make_certificate
from tests.security.test_audit import Api
from tests.support.waiting import wait_for as wait_until
from tests.test_app import RunningApp

KEY_1 = "first-installation-secret-0123456789abcdef"
KEY_2 = "another-installation-secret-0123456789abcd"
CIPHER = Credentials(derive_key(KEY_1.encode(), "plc-credentials"))


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.25):
    return wait_until(predicate, timeout, interval)


def store_as_an_older_version(engine, machine_id: str, port: int, protocol_config: dict, tags=()) -> None:
    """A machine as a version before encryption left it: the password in plain text, no audit entry. Written as
    rows, since every write path of this version refuses a plain secret."""
    from sqlalchemy.orm import Session

    from db.models import Connection, Machine, Tag

    with Session(engine) as session, session.begin():
        machine = Machine(machine_id=machine_id, name=machine_id, description="", enabled=True)
        session.add(machine)
        session.flush()
        conn = Connection(name=machine_id, machine_id=machine.id, protocol="OPCUA", host="127.0.0.1", port=port,
                          protocol_config=protocol_config, poll_interval_ms=200, enabled=True)
        conn.tags = [Tag(machine_id=machine.id, scale=1.0, offset=0.0, deadband=0.0, report_by_exception=False,
                         enabled=True, **t) for t in tags]
        session.add(conn)


# --- the cipher ------------------------------------------------------------------------------------------------------

def test_envelopes_are_self_describing_bound_to_their_setting_and_need_the_key():
    sealed = CIPHER.seal({"username": "operator", "password": PASSWORD, "private_key_password": "pk-pass",
                          "endpoint": "opc.tcp://h:4840/", "empty_password": ""})
    assert sealed["username"] == "operator" and sealed["endpoint"] == "opc.tcp://h:4840/"
    assert sealed["empty_password"] == ""  # nothing to hide
    assert is_sealed(sealed["password"]) and sealed["password"]["$enc"].startswith("v1:")
    assert PASSWORD not in json.dumps(sealed) and not has_plain_secrets(sealed)
    assert CIPHER.seal(sealed) == sealed  # idempotent
    assert CIPHER.open(sealed)["password"] == PASSWORD and CIPHER.open(sealed)["private_key_password"] == "pk-pass"
    assert CIPHER.seal({"password": PASSWORD})["password"] != sealed["password"]  # a fresh nonce every time
    other = Credentials(derive_key(KEY_2.encode(), "plc-credentials"))
    with pytest.raises(CredentialError) as info:
        other.open(sealed)
    assert info.value.field in ("password", "private_key_password") and "OEE_SECRET_KEY" in str(info.value)
    moved = {"private_key_password": sealed["password"]}  # an envelope copied to another setting does not open
    with pytest.raises(CredentialError):
        CIPHER.open(moved)
    with pytest.raises(CredentialError) as info:
        CIPHER.open({"password": {"$enc": "v9:xyz"}})
    assert "unknown format" in info.value.message
    broken = Credentials.from_data_dir("/nonexistent", environ={"OEE_SECRET_KEY": "tiny-k3y"})
    assert broken.problem and "OEE_SECRET_KEY" in broken.problem and "tiny-k3y" not in repr(broken)
    with pytest.raises(CredentialError) as info:
        broken.seal({"password": "x"})
    assert "OEE_SECRET_KEY" in str(info.value)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'oee.sqlite3'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    s = open_store(url)
    s.raw_url = url  # store.url hides a password
    yield s
    s.close()


def raw_configs(engine) -> dict[str, str]:
    """connections.protocol_config as the database holds it, read with plain SQL."""
    cast = "CAST(protocol_config AS TEXT)" if engine.dialect.name == "postgresql" else "protocol_config"
    with engine.connect() as conn:
        return dict(conn.execute(text(f"SELECT name, {cast} FROM connections")).all())


OPCUA = {"name": "Palletiser", "machine_id": "SEC-1", "protocol": "OPCUA",
         "protocol_config": {"endpoint": "opc.tcp://127.0.0.1:4999/oee/", "username": "operator",
                             "password": PASSWORD}}


def test_the_stored_row_holds_no_plain_secret(store):
    engine = store.engine
    m = cs.create_machine(engine, validate_machine(OPCUA), backend=store.backend_name, credentials=CIPHER)
    row = raw_configs(engine)["SEC-1"]
    assert PASSWORD not in row and '"$enc"' in row and '"operator"' in row
    assert CIPHER.open(json.loads(row))["password"] == PASSWORD
    # sent back as '***' (what the API and the pages show), the stored envelope stays as it is
    stored = cs.get_machine(engine, m["id"])["protocol_config"]
    same = validate_machine({**OPCUA, "protocol_config": redact(stored)}, stored_config=stored)
    cs.update_machine(engine, m["id"], same, backend=store.backend_name, credentials=CIPHER)
    assert raw_configs(engine)["SEC-1"] == row
    # a new password is encrypted too
    new = validate_machine({**OPCUA, "protocol_config": {**OPCUA["protocol_config"], "password": WRONG_PASSWORD}},
                           stored_config=stored)
    cs.update_machine(engine, m["id"], new, backend=store.backend_name, credentials=CIPHER)
    row = raw_configs(engine)["SEC-1"]
    assert WRONG_PASSWORD not in row and CIPHER.open(json.loads(row))["password"] == WRONG_PASSWORD
    # the configuration file: passwords '***' out, encrypted in
    doc = cs.export_document(engine)
    assert doc["machines"][0]["protocol_config"]["password"] == "***" and "$enc" not in json.dumps(doc)
    doc["machines"][0]["machine_id"] = "SEC-2"
    doc["machines"][0]["protocol_config"]["password"] = "imported-" + PASSWORD
    cs.import_document(engine, validate_document(doc, **cs.import_context(engine)), backend=store.backend_name,
                       credentials=CIPHER)
    row = raw_configs(engine)["SEC-2"]
    assert PASSWORD not in row and CIPHER.open(json.loads(row))["password"] == "imported-" + PASSWORD
    # without a key nothing is stored in plain text: the save is refused, naming the field and the fix
    with pytest.raises(Exception) as info:
        cs.create_machine(engine, validate_machine({**OPCUA, "machine_id": "SEC-3"}), backend=store.backend_name)
    assert "OEE_SECRET_KEY" in info.value.fields["protocol_config.password"]
    assert "SEC-3" not in raw_configs(engine)
    # a client cannot hand in an envelope of its own
    with pytest.raises(Exception) as info:
        validate_machine({**OPCUA, "protocol_config": json.loads(row)})
    assert "protocol_config.password" in info.value.fields


def test_plain_secrets_already_stored_are_encrypted_once(store):
    engine = store.engine
    store_as_an_older_version(engine, "OLD-1", 4999, {"endpoint": "opc.tcp://127.0.0.1:4999/",
                                                       "username": "operator", "password": PASSWORD})
    assert PASSWORD in raw_configs(engine)["OLD-1"]  # as an older version left it
    assert seal_stored_secrets(engine, CIPHER) == 1
    row = raw_configs(engine)["OLD-1"]
    assert PASSWORD not in row and CIPHER.open(json.loads(row))["password"] == PASSWORD
    assert seal_stored_secrets(engine, CIPHER) == 0 and raw_configs(engine)["OLD-1"] == row
    from db import audit

    _total, entries = audit.list_entries(engine)
    assert [(e["action"], e["actor"], e["target"]) for e in entries] == [
        ("connection.credentials.encrypt", "system", "connection OLD-1")]
    assert entries[0]["after"]["encrypted"] == ["password"] and PASSWORD not in json.dumps(entries)
    (conn,) = load_collector_config(engine, CIPHER)
    assert conn["protocol_config"]["password"] == PASSWORD and conn["credential_error"] is None
    (conn,) = load_collector_config(engine, Credentials(derive_key(KEY_2.encode(), "plc-credentials")))
    assert "password" not in conn["protocol_config"] and "OEE_SECRET_KEY" in conn["credential_error"]
    (conn,) = load_collector_config(engine, None)
    assert "password" not in conn["protocol_config"] and "OEE_SECRET_KEY" in conn["credential_error"]


# --- an OPC-UA PLC with a user and a password -------------------------------------------------------------------------

class RecordingUsers:
    """Anonymous, or operator with PASSWORD, as the driver tests' server; every attempt is kept."""

    def __init__(self):
        self.attempts: list[tuple[str | None, object]] = []

    def get_user(self, iserver, username=None, password=None, certificate=None):
        self.attempts.append((username, password))
        if username is None:
            return User(role=UserRole.User)
        if username == "operator" and password == PASSWORD:
            return User(role=UserRole.User)
        return None


@pytest.fixture(scope="module")
def opcua(tmp_path_factory):
    folder = tmp_path_factory.mktemp("opcua-users")
    make_certificate(folder, "urn:oee:test:collector", "client")
    server = UaSim(folder).start()
    server.users = RecordingUsers()
    server.server.iserver.set_user_manager(server.users)
    yield server
    server.close()


def opcua_config(sim, password: str = PASSWORD) -> dict:
    return {"endpoint": f"opc.tcp://127.0.0.1:{sim.port}/oee/", "username": "operator", "password": password}


OPC_TAGS = [{"name": "ProductionCount", "address": "ns=2;s=LINE-011.ProductionCount", "data_type": "Int32",
             "role": "counter.total"},
            {"name": "Running", "address": "ns=2;s=LINE-011.Running", "data_type": "Boolean",
             "role": "state.running"}]


def test_no_secret_in_the_logs_at_debug(opcua, store, tmp_path, caplog, monkeypatch):
    """The whole way of a password at DEBUG: stored plain by an old version, encrypted at start, decrypted for the
    collector, which logs in to the PLC and polls it; the wizard's test of the saved machine; a wrong password.
    Neither the password nor its ciphertext appears in any log line."""
    from collectors import service
    from collectors.poller import BackoffPolicy
    from processes.runtime import Runtime
    from processes.settings import Settings

    caplog.set_level(logging.DEBUG)
    engine = store.engine
    store_as_an_older_version(engine, "LOG-1", opcua.port, opcua_config(opcua), OPC_TAGS)
    monkeypatch.setenv("OEE_SECRET_KEY", KEY_1)
    runtime = Runtime(Settings(database_url=store.raw_url, data_dir=tmp_path, demo=False, role="all"),
                      collector_options={"backoff": BackoffPolicy(0.2, 0.5), "reload_interval_s": 3600})
    try:
        runtime.start()
        opcua.users.attempts.clear()
        wait_for(lambda: any(q == 0 for _t, _v, q, _r in runtime.collectors.snapshot.tags(
            list(range(1, 100))).values()))
        assert ("operator", PASSWORD) in opcua.users.attempts  # the PLC got the password itself
        assert all(p in (None, PASSWORD) for _u, p in opcua.users.attempts), opcua.users.attempts
        sealed = json.loads(raw_configs(engine)["LOG-1"])
        assert is_sealed(sealed["password"])
        result = service.test_connection("OPCUA", "127.0.0.1", opcua.port, sealed, credentials=runtime.credentials)
        assert result["ok"], result
        wrong = runtime.credentials.seal(opcua_config(opcua, WRONG_PASSWORD))
        result = service.test_connection("OPCUA", "127.0.0.1", opcua.port, wrong, credentials=runtime.credentials)
        assert not result["ok"] and result["error"] == "auth_failed"
    finally:
        runtime.stop()
    logged = caplog.text + " ".join(repr(r.args) for r in caplog.records)
    assert any(r.levelno == logging.DEBUG for r in caplog.records)  # DEBUG was really on
    for secret in (PASSWORD, WRONG_PASSWORD, sealed["password"]["$enc"][3:20], wrong["password"]["$enc"][3:20]):
        assert secret not in logged


def test_the_wizard_tests_a_saved_connection_with_the_apps_key(opcua):
    """The wizard's callbacks pass a saved machine's protocol_config as stored (encrypted): collectors.service
    takes the key of the app serving the request; without one it says so and sends nothing."""
    from types import SimpleNamespace

    from flask import Flask

    from collectors import service

    sealed = CIPHER.seal(opcua_config(opcua))
    flask_app = Flask(__name__)
    flask_app.extensions["oee"] = SimpleNamespace(credentials=CIPHER)
    opcua.users.attempts.clear()
    with flask_app.test_request_context("/_dash-update-component"):
        result = service.test_connection("OPCUA", "127.0.0.1", opcua.port, sealed)
        assert result["ok"], result
        tags = [{"name": "Count", "address": "ns=2;s=LINE-011.ProductionCount", "data_type": "Int32"}]
        preview = service.preview_read("OPCUA", "127.0.0.1", opcua.port, sealed, tags)
        assert preview["values"]["Count"] == {"value": 1500, "quality": "good", "reason": None}, preview
    assert set(opcua.users.attempts) == {("operator", PASSWORD)}
    opcua.users.attempts.clear()
    result = service.test_connection("OPCUA", "127.0.0.1", opcua.port, sealed)  # no app, no key
    assert not result["ok"] and result["error"] == "auth_failed" and "OEE_SECRET_KEY" in result["message"]
    assert result["fields"] == {"protocol_config.password": result["fields"]["protocol_config.password"]}
    assert opcua.users.attempts == [] and "$enc" not in json.dumps(result)


# --- the running app: the password reaches the PLC and nothing else -------------------------------------------------

@pytest.fixture(scope="module")
def modbus_plant():
    from plant import Plant, default_layout

    layout = default_layout()
    p = Plant(dataclasses.replace(layout, machines=tuple(m for m in layout.machines if m.id == "LINE-015")),
              seed=5).start()
    yield p
    p.stop()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("credentials-app")


@pytest.fixture(scope="module")
def app(folder):
    running = RunningApp(folder, "--no-demo", env={"OEE_SECRET_KEY": KEY_1})
    running.wait_healthy()
    yield running
    running.stop()


def modbus_body(plant) -> dict:
    ep = next(e for e in plant.endpoints() if e["protocol"] == "MODBUS")
    return {"name": "Wrapper", "machine_id": "SEC-MB", "protocol": "MODBUS", "ip_address": ep["host"],
            "port": ep["port"], "protocol_config": ep["protocol_config"], "poll_interval_ms": 250,
            "tags": [{k: t[k] for k in ("name", "address", "data_type", "role")} for t in ep["tags"]]}


def good_tags(api: Api, machine_id: str):
    status, page = api.get(f"/api/plc/machines/{machine_id}/tags/")
    return page if status == 200 and page["count"] and all(t["quality"] == "good" for t in page["results"]) else None


def test_an_opcua_machine_with_a_password_polls_and_the_password_goes_nowhere_else(app, folder, opcua,
                                                                                    modbus_plant):
    import sqlite3

    import websocket

    from tests.support.browser import EC, By, WebDriverWait, make_browser

    opcua.users.attempts.clear()
    engineer, admin = Api(app, "engineer"), Api(app, "admin")
    ws_headers = [f"Authorization: Bearer {admin.token}"] if admin.token else []
    config_ws = websocket.create_connection(f"ws://127.0.0.1:{app.port}/ws/config/", timeout=10, header=ws_headers)
    seen: list[str] = []
    body = {"name": "Secure palletiser", "machine_id": "SEC-OPC", "protocol": "OPCUA", "poll_interval_ms": 250,
            "protocol_config": opcua_config(opcua), "tags": OPC_TAGS}
    status, m = engineer.post("/api/plc/machines/", body)
    assert status == 201, m
    seen.append(json.dumps(m))
    assert engineer.post("/api/plc/machines/", modbus_body(modbus_plant))[0] == 201
    page = wait_for(lambda: good_tags(engineer, "SEC-OPC"))
    assert next(t for t in page["results"] if t["name"] == "ProductionCount")["value"] == 1500
    assert ("operator", PASSWORD) in opcua.users.attempts  # the PLC got the password itself, nothing else
    assert all(p in (None, PASSWORD) for _u, p in opcua.users.attempts), opcua.users.attempts
    wait_for(lambda: good_tags(engineer, "SEC-MB"))
    with sqlite3.connect(folder / "data" / "oee.sqlite3") as db:
        stored = dict(db.execute("SELECT name, protocol_config FROM connections").fetchall())
        audit_rows = db.execute("SELECT before, after FROM audit_log").fetchall()
    assert PASSWORD not in stored["SEC-OPC"] and is_sealed(json.loads(stored["SEC-OPC"])["password"])
    envelope = json.loads(stored["SEC-OPC"])["password"]["$enc"]
    # the wizard's and the API's test of the saved machine decrypt it on the server
    status, result = engineer.post("/api/plc/machines/SEC-OPC/test_connection/", {})
    assert status == 200 and result["ok"], result
    seen.append(json.dumps(result))
    status, result = engineer.post("/api/plc/machines/SEC-OPC/discover_tags/", {"depth": 2, "limit": 50})
    assert status == 200, result
    seen.append(json.dumps(result))
    # a change the collectors pick up: /ws/config/ says so
    status, patched = engineer.patch("/api/plc/machines/SEC-OPC/", {"poll_interval_ms": 300})
    assert status == 200 and patched["protocol_config"]["password"] == "***"
    seen.append(json.dumps(patched))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not any('"config_update"' in s for s in seen[-20:]):
        try:
            seen.append(config_ws.recv())
        except websocket.WebSocketTimeoutException:
            break
    config_ws.close()
    assert any('"config_update"' in s for s in seen), "no config_update on /ws/config/"
    for path in ("/api/plc/machines/", "/api/plc/machines/SEC-OPC/", "/api/plc/machines/SEC-OPC/tags/",
                 "/api/config/export", "/api/config/export?format=json", "/healthz", "/metrics"):
        status, answer = admin.get(path)
        assert status == 200, (path, answer)
        seen.append(answer if isinstance(answer, str) else json.dumps(answer))
    for path in ("/api/audit/?page_size=500", "/export/audit.csv"):
        status, answer = admin.get(path)
        assert status == 200, (path, answer)
        seen.append(answer if isinstance(answer, str) else json.dumps(answer))
    assert any("SEC-OPC" in s for s in seen[-2:])  # the audit log has the machine, without its password
    browser = make_browser(1400, 1000)
    try:
        if hasattr(app, "token"):
            from tests.support.auth import browser_login

            browser_login(browser, f"http://127.0.0.1:{app.port}", app.user("engineer"))
        browser.get(f"http://127.0.0.1:{app.port}/machine-config/?machine=SEC-OPC")
        WebDriverWait(browser, 30).until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "#mc-wizard-title"),
                                                                          "Edit SEC-OPC"))
        assert browser.find_element(By.ID, "mc-opc-user").get_attribute("value") == "operator"
        seen.append(browser.page_source)
        seen.append(json.dumps([browser.find_element(By.ID, "mc-opc-password").get_attribute("value")]))
    finally:
        browser.quit()
    seen.append(app.output())
    seen.append(json.dumps(audit_rows))
    for text_seen in seen:
        assert PASSWORD not in text_seen and urllib.parse.quote(PASSWORD) not in text_seen
        assert envelope[3:23] not in text_seen


def _machine(api: Api, machine_id: str) -> dict:
    return api.get(f"/api/plc/machines/{machine_id}/")[1]


def _tag_time(api: Api, machine_id: str) -> float:
    _status, page = api.get(f"/api/plc/machines/{machine_id}/tags/")
    return max((t["time"] or 0) for t in page["results"])


@pytest.mark.parametrize("key", [KEY_2, None], ids=["wrong key", "no key"])
def test_a_wrong_or_missing_key_is_that_connections_error_and_the_others_keep_polling(app, folder, opcua,
                                                                                      modbus_plant, key,
                                                                                      monkeypatch):
    """Restarted with another OEE_SECRET_KEY, or none (a new data/secret.key is made): the OPC-UA machine says
    which key its password needs, the PLC never sees a login, the Modbus machine polls on, the app answers."""
    app.stop()  # the app of the test before, with its two machines
    monkeypatch.delenv("OEE_SECRET_KEY", raising=False)
    (folder / "data" / "secret.key").unlink(missing_ok=True)
    opcua.users.attempts.clear()
    restarted = RunningApp(folder, "--no-demo", env={"OEE_SECRET_KEY": key} if key else {})
    try:
        health = restarted.wait_healthy()
        assert health["status"] in ("ok", "degraded")
        api = Api(restarted, "engineer")
        m = wait_for(lambda: (lambda m: m if m.get("state") == "config_error" else None)(_machine(api, "SEC-OPC")))
        message = m["last_error"]["message"]
        assert "protocol_config.password" in message and "OEE_SECRET_KEY" in message, m
        first = wait_for(lambda: _tag_time(api, "SEC-MB"))
        wait_for(lambda: _tag_time(api, "SEC-MB") > first)  # the other machine polls on
        assert _machine(api, "SEC-MB")["connection_state"] == "connected"
        status, result = api.post("/api/plc/machines/SEC-OPC/test_connection/", {})
        assert status == 200 and result["ok"] is False and result["error"] == "auth_failed", result
        assert "OEE_SECRET_KEY" in result["message"]
        _status, healthz = Api(restarted, "admin").get("/healthz")
        states = {c.get("connection_id"): c["state"] for c in healthz["connections"]}
        assert "config_error" in states.values()
        assert opcua.users.attempts == []  # nothing was sent to the PLC, least of all the ciphertext
        assert PASSWORD not in restarted.output()
        # giving the password again fixes it under the new key
        status, body = api.patch("/api/plc/machines/SEC-OPC/", {"protocol_config": opcua_config(opcua)})
        assert status == 200, body
        wait_for(lambda: good_tags(api, "SEC-OPC"))
    finally:
        restarted.stop()
        app.proc = restarted.proc  # the module fixture's stop() finds it stopped
        app.log = open(restarted.log.name)
