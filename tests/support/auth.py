"""Users and tokens for the tests, made as an admin makes them (auth in the app's own database), and signing
in as users do: the /login form in Chromium, or a cookie session over HTTP. Tests never turn authentication off.
"""
from __future__ import annotations

import http.cookiejar
import json
import urllib.error
import urllib.parse
import urllib.request

from sqlalchemy.engine import Engine

PASSWORD = "correct horse battery"  # every test user's password (10+ characters)


def make_user(engine: Engine, role: str, username: str | None = None, password: str = PASSWORD):
    """The user (created once; later calls return it), active, with no password change pending."""
    from auth import users

    username = username or f"test-{role}"
    found = users.by_name(engine, username)
    return found if found is not None else users.create(engine, username, password, role, actor="system")


def make_token(engine: Engine, role: str, name: str = "tests", username: str | None = None) -> str:
    """A new API token of a user with this role; returns the secret (Authorization: Bearer <secret>)."""
    from auth import tokens

    _row, secret = tokens.create(engine, make_user(engine, role, username), name, actor="system")
    return secret


def browser_login(browser, base: str, username: str, password: str = PASSWORD, next_path: str = "/") -> None:
    """Sign in through the /login form in a real browser, as a person does."""
    from tests.support.browser import EC, By, WebDriverWait

    browser.get(f"{base}/login?next={urllib.parse.quote(next_path)}")
    WebDriverWait(browser, 20).until(EC.visibility_of_element_located((By.ID, "login-username")))
    browser.find_element(By.ID, "login-username").send_keys(username)
    browser.find_element(By.ID, "login-password").send_keys(password)
    browser.find_element(By.ID, "login-submit").click()
    WebDriverWait(browser, 20).until(lambda b: "/login" not in b.current_url)


def browser_logout(browser, base: str) -> None:
    # Leave the page first: its callbacks still in flight would each bring the session cookie back (the session is
    # refreshed on every response) after it was deleted.
    browser.get(base + "/login")
    browser.delete_cookie("oee_session")
    browser.get(base + "/login")


class SessionClient:
    """A cookie session over HTTP, as a browser holds one: logs in at /login, sends Origin like a browser does."""

    def __init__(self, base: str, username: str | None = None, password: str = PASSWORD, origin: str | None = None):
        self.base = base
        self.origin = origin or base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect())
        if username is not None:
            status, _ = self.login(username, password)
            assert status == 302, f"login of {username} failed with {status}"

    def login(self, username: str, password: str = PASSWORD):
        return self.call("POST", "/login", raw=urllib.parse.urlencode(
            {"username": username, "password": password}).encode(), content_type="application/x-www-form-urlencoded")

    def call(self, method: str, path: str, body=None, *, raw: bytes | None = None,
             content_type: str = "application/json", headers: dict | None = None):
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        hdrs = {"Origin": self.origin} if method not in ("GET", "HEAD") else {}
        if data is not None:
            hdrs["Content-Type"] = content_type
        hdrs.update(headers or {})
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=hdrs)
        try:
            with self.opener.open(req, timeout=60) as resp:
                status, text, ctype = resp.status, resp.read().decode(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            status, text, ctype = exc.code, exc.read().decode(), exc.headers.get("Content-Type", "")
        return status, (json.loads(text) if "json" in ctype and text else text)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
