"""API tokens (shown once, hashed, revocable, expiring), the users API, and embed links (signed, expiring, one
page and its machine or line, read-only) over HTTP, the WebSocket handshake and in Chromium."""
from __future__ import annotations

import time
import urllib.parse
from datetime import datetime, timedelta, timezone

import pytest
import websocket
from sqlalchemy import text, update

from auth import embed as embeds
from auth import tokens, users
from db.models import ApiToken
from keys.master import load_master_secret
from tests.security.conftest import ORIGIN, callback_body, post_callback, router_body
from tests.support.auth import make_token, make_user


def test_a_token_is_shown_once_and_kept_only_as_a_hash(site):
    c = site.client("operator")
    r = c.post("/api/auth/tokens/", json={"name": "line 1 script", "expires_in_days": 30}, headers={"Origin": ORIGIN})
    assert r.status_code == 201
    secret, row = r.get_json()["secret"], r.get_json()["token"]
    assert secret.startswith("oee_") and len(secret) > 40 and row["prefix"] == secret[:12]
    listed = c.get("/api/auth/tokens/").get_json()["results"]
    assert any(t["id"] == row["id"] for t in listed) and secret not in str(listed)
    with site.engine.connect() as conn:
        stored = conn.execute(text("SELECT token_hash FROM api_tokens WHERE id = :i"), {"i": row["id"]}).scalar()
    assert stored == tokens.digest(secret) and secret not in stored
    api = site.client(token=secret)
    assert api.get("/api/auth/me/").get_json()["actor"] == "token:test-operator/line 1 script"
    # a token cannot make tokens (that needs a signed-in session), and bad input names the field
    r = api.post("/api/auth/tokens/", json={"name": "child"})
    assert r.status_code == 403 and r.get_json()["error"] == "session_required"
    r = c.post("/api/auth/tokens/", json={"name": "", "expires_in_days": 0}, headers={"Origin": ORIGIN})
    assert r.status_code == 400 and "name" in r.get_json()["fields"]
    r = c.post("/api/auth/tokens/", json={"name": "x", "expires_in_days": 0}, headers={"Origin": ORIGIN})
    assert r.status_code == 400 and "expires_in_days" in r.get_json()["fields"]


def test_a_revoked_an_expired_and_a_deactivated_users_token_are_refused(site):
    engine = site.engine
    revoked, expired, orphan = (make_token(engine, "engineer", name=n) for n in ("revoked", "expired", "orphan"))
    for secret in (revoked, expired):
        assert site.client(token=secret).get("/api/plc/machines/").status_code == 200
    owner = site.client("engineer")
    mine = {t["name"]: t["id"] for t in owner.get("/api/auth/tokens/").get_json()["results"]}
    r = owner.delete(f"/api/auth/tokens/{mine['revoked']}/", headers={"Origin": ORIGIN})
    assert r.status_code == 200 and r.get_json()["revoked_at"]
    with engine.begin() as conn:  # a day passes
        conn.execute(update(ApiToken).where(ApiToken.token_hash == tokens.digest(expired))
                     .values(expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)))
    for secret in (revoked, expired):
        r = site.client(token=secret).get("/api/plc/machines/")
        assert r.status_code == 401 and "revoked or expired" in r.get_json()["message"]
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    user = make_user(engine, "engineer", "orphan-owner")
    orphan = make_token(engine, "engineer", name="orphan", username="orphan-owner")
    assert site.client(token=orphan).get("/api/plc/machines/").status_code == 200
    users.update(engine, user.id, {"active": False})
    assert site.client(token=orphan).get("/api/plc/machines/").status_code == 401
    for header in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer oee_made-up"):
        c = site.server.test_client()
        assert c.get("/api/oee/?machine=SEC-A", headers={"Authorization": header}).status_code == 401, header


def test_only_the_owner_or_an_admin_revokes_a_token(site):
    secret = make_token(site.engine, "viewer", name="someone's")
    token_id = next(t["id"] for t in site.client("viewer").get("/api/auth/tokens/").get_json()["results"]
                    if t["name"] == "someone's")
    r = site.client("engineer").delete(f"/api/auth/tokens/{token_id}/", headers={"Origin": ORIGIN})
    assert r.status_code == 404
    assert site.client(token=secret).get("/api/oee/?machine=SEC-A").status_code == 200
    assert site.client("admin").delete(f"/api/auth/tokens/{token_id}/", headers={"Origin": ORIGIN}).status_code == 200
    assert site.client(token=secret).get("/api/oee/?machine=SEC-A").status_code == 401


def test_the_users_api_for_admins(site):
    admin = site.client("admin")
    h = {"Origin": ORIGIN}
    r = admin.post("/api/auth/users/", json={"username": "ops-anna", "role": "operator"}, headers=h)
    assert r.status_code == 201
    one_time = r.get_json()["one_time_password"]
    assert r.get_json()["user"]["must_change_password"] is True and "password_hash" not in str(r.get_json())
    assert users.authenticate(site.engine, "ops-anna", one_time) is not None
    r = admin.post("/api/auth/users/", json={"username": "ops-anna", "role": "operator"}, headers=h)
    assert r.status_code == 409 and "username" in r.get_json()["fields"]
    r = admin.post("/api/auth/users/", json={"username": "x y", "role": "boss"}, headers=h)
    assert r.status_code == 400 and "username" in r.get_json()["fields"]
    r = admin.post("/api/auth/users/", json={"username": "xy", "role": "boss"}, headers=h)
    assert r.status_code == 400 and "role" in r.get_json()["fields"]
    anna = next(u for u in admin.get("/api/auth/users/").get_json()["results"] if u["username"] == "ops-anna")
    r = admin.patch(f"/api/auth/users/{anna['id']}/", json={"role": "engineer", "active": False}, headers=h)
    assert r.status_code == 200 and r.get_json()["user"]["role"] == "engineer" and not r.get_json()["user"]["active"]
    me = admin.get("/api/auth/me/").get_json()["user"]
    r = admin.patch(f"/api/auth/users/{me['id']}/", json={"role": "viewer"}, headers=h)
    assert r.status_code == 409 and "yourself" in r.get_json()["message"]
    with site.engine.connect() as conn:
        actions = [a for (a,) in conn.execute(text("SELECT action FROM audit_log WHERE target = 'user ops-anna'"))]
    assert actions == ["user.create", "user.update"]


def test_ids_past_what_the_tables_hold_are_no_such_user_or_token(site):
    """Found by schemathesis in CI: a user id of 30 digits was a 500 on SQLite (it cannot bind an integer past 64
    bits); such an id is no row: 404, as any unknown id (the CSV export's tag ids: 400 naming the field)."""
    admin, h = site.client("admin"), {"Origin": ORIGIN}
    for raw in ("999999999999999999999999999999", "2147483648", "9" * 40):
        r = admin.patch(f"/api/auth/users/{raw}/", json={"active": False, "role": "admin"}, headers=h)
        assert r.status_code == 404 and "whole numbers" in r.get_json()["message"], (raw[:40], r.status_code)
        r = admin.delete(f"/api/auth/tokens/{raw}/", headers=h)
        assert r.status_code == 404, (raw[:40], r.status_code)
        r = admin.get(f"/export/tags.csv?tag={raw}&start=0&end=100&tz=UTC")  # was a 500 too: named, not a tag id
        assert r.status_code == 400 and "not a tag id" in r.get_data(as_text=True), (raw[:40], r.status_code)


# --- embed links -------------------------------------------------------------------------------------------------


def embed_client(site, token: str):
    c = site.server.test_client()
    c.environ_base["HTTP_X_EMBED_TOKEN"] = token
    return c


def test_an_embed_link_sees_its_page_and_nothing_else(site):
    engineer = site.client("engineer")
    r = engineer.post("/api/auth/embed-links/", json={"page": "machine", "key": "SEC-A", "expires_in_days": 1},
                      headers={"Origin": ORIGIN})
    assert r.status_code == 201
    url = r.get_json()["url"]
    assert url.startswith("/machine/SEC-A?embed=1&embed_token=")
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["embed_token"][0]
    c = site.server.test_client()
    assert c.get(url, headers={"Accept": "text/html"}).status_code == 200
    e = embed_client(site, token)
    assert e.get("/api/auth/me/").get_json()["actor"] == "embed:machine/SEC-A"
    assert post_callback(e, router_body("/machine/SEC-A?embed=1")).status_code == 200
    config = '{"aio_id":"machine","component":"ScopeDashboardAIO","subcomponent":"config"}'
    body = callback_body(site, '"subcomponent":"status"}.children')
    body["outputs"]["id"]["aio_id"] = "machine"
    body["inputs"][0]["id"]["aio_id"] = body["state"][0]["id"]["aio_id"] = "machine"
    body["state"][0]["value"] = {"scope": "machine", "key": "SEC-A"}
    assert post_callback(e, body).status_code == 200, config
    body["state"][0]["value"] = {"scope": "machine", "key": "SEC-B"}  # the same callback, asked about another
    assert post_callback(e, body).status_code == 403
    for refused in (e.get("/machine/SEC-B?embed=1", headers={"Accept": "text/html"}),
                    e.get("/line/1", headers={"Accept": "text/html"}),
                    e.get("/api/oee/?machine=SEC-A"), e.get("/export/oee.csv?machine=SEC-A"),
                    e.get("/ws/dashboard/machine/SEC-B/"), e.get("/ws/plc/SEC-A/"),
                    post_callback(e, router_body("/machine/SEC-B")), post_callback(e, router_body("/downtime/")),
                    post_callback(e, callback_body(site, "downtime-modal-message.children...downtime-saved")),
                    e.post("/api/config/sites/", json={"name": "Embed site"}, headers={"Origin": ORIGIN})):
        assert refused.status_code == 403, refused.get_data(as_text=True)[:200]
    # with a valid session beside it, the link still narrows the request to its own scope
    assert embed_client(site, token).get("/api/plc/machines/").status_code == 403


def test_an_expired_or_tampered_embed_link_is_refused(site):
    master = load_master_secret(site.runtime.settings.data_dir)
    expired = embeds.sign(master, "machine", "SEC-A", time.time() - 1)
    r = embed_client(site, expired).get("/api/auth/me/")
    assert r.status_code == 401 and "expired" in r.get_json()["message"]
    good = embeds.sign(master, "machine", "SEC-A", time.time() + 60)
    payload, signature = good.rsplit(".", 1)
    other = embeds.sign(master, "machine", "SEC-B", time.time() + 60)
    for tampered in (payload + "." + signature[::-1], other.rsplit(".", 1)[0] + "." + signature,
                     embeds.sign(b"another installation's secret" * 2, "machine", "SEC-A", time.time() + 60)):
        r = site.server.test_client().get(f"/machine/SEC-A?embed=1&embed_token={tampered}",
                                          headers={"Accept": "text/html"})
        assert r.status_code == 401 and "not valid" in r.get_data(as_text=True)


def test_embed_link_requests_name_bad_fields(site):
    engineer = site.client("engineer")
    for body, field in (({"page": "overview", "key": "SEC-A"}, "page"), ({"page": "machine", "key": "NOPE-9"}, "key"),
                        ({"page": "line", "key": "SEC-A"}, "key"),
                        ({"page": "machine", "key": "SEC-A", "expires_in_days": 9999}, "expires_in_days")):
        r = engineer.post("/api/auth/embed-links/", json=body, headers={"Origin": ORIGIN})
        assert r.status_code == 400 and field in r.get_json()["fields"], (body, r.get_json())
    r = engineer.post("/api/auth/embed-links/", json={"page": "line", "key": str(site.line_id)},
                      headers={"Origin": ORIGIN})
    assert r.status_code == 201 and r.get_json()["url"].startswith(f"/line/{site.line_id}?embed=1")
    assert site.client("operator").post("/api/auth/embed-links/", json={"page": "machine", "key": "SEC-A"},
                                        headers={"Origin": ORIGIN}).status_code == 403


# --- over a real server: the WebSocket handshake and Chromium ------------------------------------------------------


@pytest.fixture(scope="module")
def locked_app(tmp_path_factory):
    """`python app.py --no-demo --anonymous-viewing off` with one machine."""
    from tests.test_app import RunningApp

    app = RunningApp(tmp_path_factory.mktemp("locked"), "--no-demo", "--anonymous-viewing", "off")
    app.wait_healthy()
    from tests.config.conftest import Client

    api = Client(app.port, app.token("engineer"))
    # enabled, so that the live service knows it and its WebSocket stays open (a disabled machine's is closed
    # with 4404 by the server); nothing listens on port 1, so the collector only retries
    status, _ = api.post("/api/plc/machines/", {"name": "Embed A", "machine_id": "EMB-A", "protocol": "MODBUS",
                                                "ip_address": "127.0.0.1", "port": 1, "enabled": True})
    assert status == 201
    api.post("/api/plc/machines/", {"name": "Embed B", "machine_id": "EMB-B", "protocol": "MODBUS",
                                    "ip_address": "127.0.0.1", "port": 1, "enabled": False})
    status, link = api.post("/api/auth/embed-links/", {"page": "machine", "key": "EMB-A", "expires_in_days": 1})
    assert status == 201
    app.embed_url = link["url"]
    app.embed_token = link["embed_token"]
    yield app
    app.stop()


def handshake(app, path: str, headers: list | None = None) -> int:
    """The HTTP status of the WebSocket handshake: 101 when it was let through."""
    try:
        ws = websocket.create_connection(f"ws://127.0.0.1:{app.port}{path}", timeout=10, header=headers or [])
    except websocket.WebSocketBadStatusException as exc:
        return exc.status_code
    ws.close()
    return 101


def test_the_websocket_handshake_checks_tokens_and_embed_links(locked_app):
    app = locked_app
    token = app.token("viewer")
    assert handshake(app, "/ws/dashboard/") == 401
    assert handshake(app, "/ws/dashboard/", [f"Authorization: Bearer {token}"]) == 101
    assert handshake(app, f"/ws/plc/EMB-A/?access_token={token}") == 101
    assert handshake(app, "/ws/plc/EMB-A/?access_token=oee_not-a-token") == 401
    assert handshake(app, f"/ws/dashboard/machine/EMB-A/?embed_token={app.embed_token}") == 101
    assert handshake(app, f"/ws/dashboard/machine/EMB-B/?embed_token={app.embed_token}") == 403
    assert handshake(app, f"/ws/events/?embed_token={app.embed_token}") == 403
    assert handshake(app, "/ws/dashboard/machine/EMB-A/", [f"X-Embed-Token: {app.embed_token}x"]) == 401
    assert token not in app.output() and app.embed_token not in app.output()


def test_an_embed_link_in_chromium_shows_its_machine_and_nothing_else(locked_app):
    from tests.support.browser import By, WebDriverWait, make_browser

    app = locked_app
    browser = make_browser()
    try:
        browser.get(app.base + app.embed_url)
        WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.ID, "machine-title-id"))
        assert browser.find_element(By.ID, "machine-title-id").text == "EMB-A"
        WebDriverWait(browser, 30).until(
            lambda b: b.find_elements(By.CSS_SELECTOR, ".scope-status") and b.execute_script(
                "return !document.querySelector('._dash-loading') && document.title.indexOf('Updating') < 0"))
        time.sleep(2)  # the dashboard's callbacks and its WebSocket have run
        errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors  # every callback and the WebSocket went through with the link
        assert not browser.find_element(By.ID, "shell-nav").is_displayed()
        # the same link on another machine's page: the page shell loads, its content is refused
        browser.get(app.base + app.embed_url.replace("/machine/EMB-A", "/machine/EMB-B"))
        WebDriverWait(browser, 20).until(lambda b: b.find_elements(By.ID, "refused"))
        assert "shows only /machine/EMB-A" in browser.find_element(By.ID, "refused").text
    finally:
        browser.quit()
