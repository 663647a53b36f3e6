"""The first admin: `python app.py create-admin` (prompt or --password-stdin), and on a first start with no users an
'admin' with a one-time password printed once to stdout, never to the log."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request

from auth import users
from db.engine import make_engine
from tests.support.auth import SessionClient
from tests.test_app import ROOT, RunningApp


def create_admin(tmp_path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "app.py", "create-admin", "--data-dir", str(tmp_path / "data"), *args],
                          cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=60, env=dict(os.environ))


def test_create_admin_from_stdin_and_its_errors(tmp_path):
    r = create_admin(tmp_path, "--username", "plant-admin", "--password-stdin", stdin="a good long password\n")
    assert r.returncode == 0, r.stderr
    assert "created the admin 'plant-admin'" in r.stdout and "a good long password" not in r.stdout + r.stderr
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'oee.sqlite3'}")
    try:
        user = users.authenticate(engine, "plant-admin", "a good long password")
        assert user is not None and user.role == "admin" and not user.must_change_password
        r = create_admin(tmp_path, "--username", "plant-admin", "--password-stdin", stdin="another long password\n")
        assert r.returncode == 2 and "--reset" in r.stderr
        r = create_admin(tmp_path, "--username", "plant-admin", "--password-stdin", "--reset",
                         stdin="another long password\n")
        assert r.returncode == 0 and users.authenticate(engine, "plant-admin", "another long password")
        r = create_admin(tmp_path, "--username", "x", "--password-stdin", stdin="short\n")
        assert r.returncode == 2 and r.stderr.strip() == "error: password: use at least 10 characters"
        r = create_admin(tmp_path, "--username", "bad name", "--password-stdin", stdin="long enough pw\n")
        assert r.returncode == 2 and r.stderr.startswith("error: username:")
    finally:
        engine.dispose()


def test_the_first_start_makes_admin_with_a_one_time_password_shown_once(tmp_path):
    app = RunningApp(tmp_path, "--no-demo")
    try:
        app.wait_healthy()
        out = app.output()
        line = next(line for line in out.splitlines() if "one-time password" in line)
        password = line.rsplit(" ", 1)[1]
        assert out.count(password) == 1  # printed once, and not again by a log line
        log_lines = [ln for ln in out.splitlines() if " INFO " in ln or " WARNING " in ln]
        assert not any(password in ln for ln in log_lines)
        s = SessionClient(app.base)
        status, _ = s.login("admin", password)
        assert status == 302
        status, body = s.call("GET", "/api/auth/users/")
        assert status == 403 and body["error"] == "password_change_required"
        status, _ = s.call("POST", "/account/password", raw=urllib.parse.urlencode(
            {"current": password, "new": "the admin's own password", "repeat": "the admin's own password"}).encode(),
            content_type="application/x-www-form-urlencoded")
        assert status == 302
        status, body = s.call("GET", "/api/auth/users/")
        assert status == 200 and [u["username"] for u in body["results"]] == ["admin"]
    finally:
        app.stop()
    again = RunningApp(tmp_path, "--no-demo")  # the next start: users exist, nothing is printed
    try:
        again.wait_healthy()
        assert "one-time password" not in again.output()
        with urllib.request.urlopen(again.base + "/api/auth/me/") as resp:
            assert json.load(resp)["user"] is None
    finally:
        again.stop()
