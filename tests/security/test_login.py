"""Signing in: sessions, cookies, CSRF, the rate limit, the forced password change, writes through Dash callbacks,
and the /login page in real Chromium."""
from __future__ import annotations

import re
import time

from sqlalchemy import text

from auth import ratelimit, users
from tests.security.conftest import ORIGIN, callback_body, post_callback
from tests.support.auth import PASSWORD, make_user


def test_the_session_cookie_is_httponly_samesite_and_secure_over_https(site):
    make_user(site.engine, "viewer")
    r = site.server.test_client().post("/login", data={"username": "test-viewer", "password": PASSWORD},
                                       headers={"Origin": ORIGIN})
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("oee_session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http on loopback: a Secure cookie would never come back
    r = site.server.test_client().post("/login", base_url="https://localhost",
                                       data={"username": "test-viewer", "password": PASSWORD},
                                       headers={"Origin": "https://localhost"})
    assert "Secure" in r.headers["Set-Cookie"]  # --cookie-secure auto: over https


def test_a_cross_origin_post_with_a_valid_session_is_refused(site):
    engineer = site.client("engineer")
    body = {"name": "CSRF site", "timezone": "UTC"}
    for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"}, {},
                    {"Referer": "http://evil.example/page"}, {"Origin": "http://localhost.evil.example"}):
        r = engineer.post("/api/config/sites/", json=body, headers=headers)
        assert r.status_code == 403 and r.get_json()["error"] == "cross_site_request", (headers, r.get_json())
    # the same through a Dash callback (the hierarchy page's Save)
    values = {"sh-site-save": 1, "sh-site-name": "CSRF site", "sh-site-timezone": "UTC", "sh-version": 0}
    r = post_callback(engineer, callback_body(site, "sh-site-saved.children", values), origin="http://evil.example")
    assert r.status_code == 403
    names = [s["name"] for s in engineer.get("/api/config/sites/").get_json()["results"]]
    assert "CSRF site" not in names
    # from the app's own page it goes through; a Referer of this server does too
    assert engineer.post("/api/config/sites/", json=body, headers={"Origin": ORIGIN}).status_code == 201
    r = engineer.post("/api/config/sites/", json={**body, "name": "CSRF site 2"},
                      headers={"Referer": ORIGIN + "/settings/hierarchy/"})
    assert r.status_code == 201


def test_a_token_needs_no_origin_and_login_csrf_is_refused(site):
    from tests.support.auth import make_token

    c = site.client(token=make_token(site.engine, "engineer", name="csrf"))
    assert c.post("/api/config/sites/", json={"name": "Token site", "timezone": "UTC"}).status_code == 201
    r = site.server.test_client().post("/login", data={"username": "test-viewer", "password": PASSWORD},
                                       headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and "Set-Cookie" not in r.headers


def test_a_viewer_cannot_write_through_a_callback_and_an_engineer_can(site):
    values = {"sh-site-save": 1, "sh-site-name": "Callback site", "sh-site-timezone": "UTC", "sh-version": 0}
    body = callback_body(site, "sh-site-saved.children", values)
    for who in (site.client(), site.client("viewer"), site.client("operator")):
        r = post_callback(who, body)
        assert r.status_code in (401, 403), r.get_data(as_text=True)
    engineer = site.client("engineer")
    assert "Callback site" not in [s["name"] for s in engineer.get("/api/config/sites/").get_json()["results"]]
    r = post_callback(engineer, body)
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    assert "Callback site" in [s["name"] for s in engineer.get("/api/config/sites/").get_json()["results"]]


def test_brute_force_from_one_address_is_stopped(site):
    make_user(site.engine, "viewer", "rl-user")
    c = site.server.test_client()
    c.environ_base["REMOTE_ADDR"] = "192.0.2.10"

    def attempt(password, username="rl-user"):
        return c.post("/login", data={"username": username, "password": password}, headers={"Origin": ORIGIN})

    for _ in range(ratelimit.LIMITS["pair"]):
        assert attempt("wrong password!").status_code == 401
    r = attempt(PASSWORD)  # from this address even the right password waits now
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= ratelimit.WINDOW_S
    assert "Too many failed logins" in r.get_data(as_text=True)
    with site.engine.connect() as conn:  # the count is in the database: every worker sees it
        assert conn.execute(text("SELECT count(*) FROM login_failures WHERE key = 'pair:192.0.2.10|rl-user'")
                            ).scalar() == 5
    # the window passes: once the failures are older than 5 minutes, the right password works and clears them
    with site.engine.begin() as conn:
        conn.execute(text("DELETE FROM login_failures WHERE key LIKE 'pair:192.0.2.10|%'"))
    assert attempt(PASSWORD).status_code == 302
    # per address: 20 failures for many names from one address, and it waits for every name
    for i in range(ratelimit.LIMITS["ip"] - 5):
        attempt("wrong password!", username=f"nobody-{i}")
    r = attempt("wrong password!", username="someone-else")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0


def test_a_stranger_cannot_lock_a_user_out(site):
    """Regression: five wrong passwords for a name, sent by anyone, locked that user (admin too) out for five
    minutes. Now strangers hold back their own addresses; the user, from theirs, gets in (slowed, not shut)."""
    make_user(site.engine, "admin", "rl-admin")
    for address in ("198.51.100.1", "198.51.100.2", "198.51.100.3"):  # a guesser on three addresses
        stranger = site.server.test_client()
        stranger.environ_base["REMOTE_ADDR"] = address
        for _ in range(ratelimit.LIMITS["pair"] + 2):
            stranger.post("/login", data={"username": "rl-admin", "password": "guess guess guess"},
                          headers={"Origin": ORIGIN})
        assert stranger.post("/login", data={"username": "rl-admin", "password": PASSWORD},
                             headers={"Origin": ORIGIN}).status_code == 429  # that address is held back
    owner = site.server.test_client()
    owner.environ_base["REMOTE_ADDR"] = "192.0.2.77"
    started = time.monotonic()
    r = owner.post("/login", data={"username": "rl-admin", "password": PASSWORD}, headers={"Origin": ORIGIN})
    waited = time.monotonic() - started
    assert r.status_code == 302, r.get_data(as_text=True)[:300]
    assert ratelimit.delay_s(site.engine, "rl-admin") >= 1.0 and waited >= 1.0  # 15 failures: slowed
    assert waited < ratelimit.USER_MAX_DELAY_S + 3


def test_a_user_who_must_change_the_password_does_that_first(site):
    engine = site.engine
    users.create(engine, "newcomer", "one-time-pass-1", "operator", must_change_password=True)
    c = site.server.test_client()
    r = c.post("/login", data={"username": "newcomer", "password": "one-time-pass-1", "next": "/downtime/"},
               headers={"Origin": ORIGIN})
    assert r.status_code == 302 and r.headers["Location"].startswith("/account/password?next=%2Fdowntime%2F")
    r = c.get("/downtime/", headers={"Accept": "text/html"})
    assert r.status_code == 302 and r.headers["Location"].startswith("/account/password")
    assert c.get("/api/oee/?machine=SEC-A").get_json()["error"] == "password_change_required"
    form = {"current": "one-time-pass-1", "new": "short", "repeat": "short", "next": "/downtime/"}
    r = c.post("/account/password", data=form, headers={"Origin": ORIGIN})
    assert r.status_code == 400 and "at least 10 characters" in r.get_data(as_text=True)
    form.update(new="my own password 1", repeat="my own password 1")
    r = c.post("/account/password", data=form, headers={"Origin": ORIGIN})
    assert r.status_code == 302 and r.headers["Location"] == "/downtime/"
    assert c.get("/api/auth/me/").get_json()["user"]["must_change_password"] is False
    assert c.get("/downtime/", headers={"Accept": "text/html"}).status_code == 200


def test_a_password_reset_or_deactivation_ends_sessions(site):
    engine = site.engine
    user = users.create(engine, "leaver", "leaver-password-1", "engineer")
    c = site.server.test_client()
    c.post("/login", data={"username": "leaver", "password": "leaver-password-1"}, headers={"Origin": ORIGIN})
    assert c.get("/api/plc/machines/").status_code == 200
    users.update(engine, user.id, {"reset_password": True})
    assert c.get("/api/plc/machines/").status_code == 401
    c.post("/login", data={"username": "leaver", "password": "leaver-password-1"}, headers={"Origin": ORIGIN})
    assert c.get("/api/plc/machines/").status_code == 401  # the old password is gone
    users.set_password(engine, user.id, "leaver-password-2")
    c.post("/login", data={"username": "leaver", "password": "leaver-password-2"}, headers={"Origin": ORIGIN})
    assert c.get("/api/plc/machines/").status_code == 200
    users.update(engine, user.id, {"active": False})
    assert c.get("/api/plc/machines/").status_code == 401
    r = c.post("/login", data={"username": "leaver", "password": "leaver-password-2"}, headers={"Origin": ORIGIN})
    assert r.status_code == 401


def test_logout_and_no_open_redirect(site):
    c = site.client("viewer")
    assert c.get("/api/auth/me/").get_json()["user"]["username"] == "test-viewer"
    assert c.post("/logout", headers={"Origin": ORIGIN}).status_code == 302
    assert c.get("/api/auth/me/").get_json()["user"] is None
    for evil in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        r = c.post("/login", data={"username": "test-viewer", "password": PASSWORD, "next": evil},
                   headers={"Origin": ORIGIN})
        assert r.status_code == 302 and r.headers["Location"] == "/", evil


def test_security_headers_on_every_kind_of_answer(site):
    c = site.client()
    for path in ("/", "/login", "/api/oee/?machine=SEC-A", "/healthz", "/assets/oee.css", "/api/plc/machines/"):
        h = c.get(path).headers
        assert h["X-Content-Type-Options"] == "nosniff", path
        assert h["Referrer-Policy"] == "same-origin", path
        csp = h["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "object-src 'none'" in csp, path
        assert csp.rstrip().endswith("frame-ancestors 'self'"), path  # api/health.py's, kept
        assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0], path
        assert re.search(r"script-src 'self'( 'sha256-[A-Za-z0-9+/=]+')+;", csp), path


def test_the_login_page_in_chromium(tmp_path):
    """A person signs in on the page, is sent on to where they were going, sees who they are, and signs out; a
    wrong password says so without saying which part was wrong; the page runs under the CSP without errors."""
    from tests.support.browser import By, WebDriverWait, make_browser
    from tests.test_app import RunningApp

    app = RunningApp(tmp_path, "--no-demo", "--anonymous-viewing", "off")
    browser = make_browser()
    try:
        app.wait_healthy()
        name = app.user("engineer")
        browser.get(app.base + "/settings/")
        WebDriverWait(browser, 20).until(lambda b: "/login" in b.current_url)
        assert "next=%2Fsettings%2F" in browser.current_url
        browser.find_element(By.ID, "login-username").send_keys(name)
        browser.find_element(By.ID, "login-password").send_keys("not the password")
        browser.find_element(By.ID, "login-submit").click()
        WebDriverWait(browser, 20).until(lambda b: b.find_elements(By.ID, "login-error"))
        assert browser.find_element(By.ID, "login-error").text == "Wrong user name or password."
        browser.find_element(By.ID, "login-password").send_keys(PASSWORD)
        browser.find_element(By.ID, "login-submit").click()
        WebDriverWait(browser, 20).until(lambda b: b.current_url.endswith("/settings/"))
        WebDriverWait(browser, 20).until(lambda b: b.find_elements(By.ID, "st-counts"))
        assert browser.find_element(By.ID, "shell-user").text == f"{name} · engineer"
        assert not browser.execute_script("return document.cookie")  # HttpOnly: no script can read the session
        errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"
                  and "/login" not in e["message"]]  # the wrong password's 401 is logged by the browser
        assert not errors, errors
        browser.find_element(By.ID, "shell-logout").click()
        WebDriverWait(browser, 20).until(lambda b: "/login" in b.current_url)
        browser.get(app.base + "/machine-config/")
        WebDriverWait(browser, 20).until(lambda b: "/login" in b.current_url)
        time.sleep(0.2)
    finally:
        browser.quit()
        app.stop()
    assert PASSWORD not in app.output()
