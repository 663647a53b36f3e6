"""`python app.py` as a user runs it: options, failures that explain themselves, /healthz on each backend."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from db.migrate import head_revision
from tests.support.pgcluster import free_port

ROOT = Path(__file__).resolve().parents[1]


def run_app(*args: str, timeout: float = 30, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "app.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


class RunningApp:
    def __init__(self, tmp_path: Path, *args: str, env: dict | None = None):
        self.port = free_port()
        self.log = open(tmp_path / "app.log", "w+")
        env = {**os.environ, **(env or {})}
        self.database_url = (args[args.index("--database-url") + 1] if "--database-url" in args
                             else env.get("OEE_DATABASE_URL") or f"sqlite:///{tmp_path / 'data' / 'oee.sqlite3'}")
        self._engine = None
        self._tokens: dict[str, str] = {}
        self.proc = subprocess.Popen(
            [sys.executable, "app.py", "--port", str(self.port), "--data-dir", str(tmp_path / "data"), *args],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, env=env)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def engine(self):
        """The app's database, to make users and tokens in as an admin would (after wait_healthy: migrated)."""
        if self._engine is None:
            from db.engine import make_engine

            self._engine = make_engine(self.database_url)
        return self._engine

    def token(self, role: str = "admin") -> str:
        """An API token of the user test-<role> (one per role and app)."""
        from tests.support.auth import make_token

        if role not in self._tokens:
            self._tokens[role] = make_token(self.engine(), role)
        return self._tokens[role]

    def user(self, role: str) -> str:
        """The user name of a user with this role (password tests.support.auth.PASSWORD)."""
        from tests.support.auth import make_user

        return make_user(self.engine(), role).username

    def get(self, path: str, timeout: float = 5, token: str | None = None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", headers=headers)
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode()

    def wait_healthy(self, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise AssertionError(f"app exited with {self.proc.returncode}:\n{self.log.read()}")
            try:
                status, body = self.get("/healthz", timeout=2)
                health = json.loads(body)
            except OSError:
                time.sleep(0.2)
                continue
            if health["status"] != "starting":  # the collector process has reported
                return health
            time.sleep(0.2)
        raise AssertionError("app did not answer /healthz in time")

    def output(self) -> str:
        return Path(self.log.name).read_text()

    def stop(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def test_help_lists_every_option():
    result = run_app("--help")
    assert result.returncode == 0
    for option in ("--host", "--port", "--database-url", "--no-demo", "--role", "OEE_DATABASE_URL"):
        assert option in result.stdout
    # the commands too, and how many processes the app really is (it said "in one process" where it runs two)
    for command in ("create-admin", "grafana-role", "oee-summary"):
        assert command in result.stdout
    assert "one process" not in result.stdout and "two processes" in result.stdout
    assert "/machine-config/" in result.stdout and "one-time password" in result.stdout


@pytest.mark.parametrize("args, env, expected", [
    (["--port", "eighty"], {}, "--port [OEE_PORT]: 'eighty' is not a whole number"),
    (["--role", "boss"], {}, "--role [OEE_ROLE]: 'boss' is not a role"),
    ([], {"OEE_PORT": "70000"}, "--port [OEE_PORT]: 70000 is out of range"),
    (["--database-url", "mysql://u:hunter2@127.0.0.1/x"], {}, "backend 'mysql' is not supported"),
    (["--allowed-hosts", "oee.plant.local evil/x"], {}, "--allowed-hosts [OEE_ALLOWED_HOSTS]: 'evil/x' is not a host"),
    ([], {"OEE_REQUEST_TIMEOUT_S": "0"}, "--request-timeout [OEE_REQUEST_TIMEOUT_S]: 0 is out of range"),
])
def test_bad_settings_fail_fast_with_one_line(args, env, expected):
    result = run_app(*args, "--no-demo", env=env)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert "hunter2" not in result.stderr


def test_unreachable_database_fails_fast_naming_the_url_without_password():
    port = free_port()
    started = time.monotonic()
    result = run_app("--no-demo", "--database-url", f"postgresql://oee:hunter2@127.0.0.1:{port}/plant")
    assert result.returncode == 2
    assert time.monotonic() - started < 20
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: cannot connect to database") and f"127.0.0.1:{port}/plant" in line
    assert "hunter2" not in result.stderr and "***" in line


def test_starts_on_sqlite_by_default_and_serves_pages_and_health(tmp_path):
    app = RunningApp(tmp_path, "--no-demo")
    try:
        health = app.wait_healthy()
        assert health["database"]["backend"] == "sqlite"
        assert health["database"]["schema_version"] == head_revision()
        assert health["writer"]["queue_rows"] == 0 and health["writer"]["dropped_rows"] == 0
        assert (tmp_path / "data" / "oee.sqlite3").exists()
        status, body = app.get("/")
        assert status == 200 and "OEE" in body
        status, metrics = app.get("/metrics")
        assert status == 200
        assert "oee_up 1" in metrics and "oee_writer_dropped_rows_total 0" in metrics
    finally:
        app.stop()


def test_starts_on_postgresql(tmp_path, pg_url):
    app = RunningApp(tmp_path, "--no-demo", env={"OEE_DATABASE_URL": pg_url})
    try:
        health = app.wait_healthy()
        assert health["database"]["backend"] == "postgresql"
        assert health["database"]["detail"]  # why TimescaleDB is not used, said plainly
    finally:
        app.stop()
    assert app.output().count("running on plain PostgreSQL") == 1


def test_starts_on_timescaledb(tmp_path, timescale_url):
    app = RunningApp(tmp_path, "--no-demo", "--database-url", timescale_url)
    try:
        health = app.wait_healthy()
        assert health["database"]["backend"] == "timescaledb"
    finally:
        app.stop()


def test_refuses_a_database_with_a_newer_schema(tmp_path, sqlite_url):
    import sqlite3

    from db.store import open_store

    open_store(sqlite_url).close()
    path = sqlite_url.split("sqlite:///", 1)[1]
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0042'")
    result = run_app("--no-demo", "--database-url", sqlite_url)
    assert result.returncode == 2
    assert "schema version 0042" in result.stderr and "Upgrade the app" in result.stderr


def test_the_database_goes_away_and_comes_back_while_the_demo_runs(tmp_path):
    """The app keeps running, says so once, spools, reports it in /healthz and /metrics, and recovers by itself."""
    from tests.support.pgcluster import PgCluster

    with PgCluster() as cluster:
        url = cluster.create_database("oee")
        app = RunningApp(tmp_path, "--database-url", url)
        try:
            assert app.wait_healthy()["status"] == "ok"
            time.sleep(3)
            cluster.kill()
            deadline = time.monotonic() + 20
            health = {}
            while time.monotonic() < deadline:
                status, body = app.get("/healthz")  # 200 while degraded: the node still serves
                health = json.loads(body)
                if health["writer"] and health["writer"]["spooled_rows"] > 0:
                    break
                time.sleep(0.3)
            assert health.get("status") == "degraded" and health["writer"]["database_ok"] is False, health
            assert health["writer"]["spooled_rows"] > 0
            assert "writer" in [p["component"] for p in health["problems"]], health["problems"]
            status, _ = app.get("/")  # pages still answer
            assert status == 200
            cluster.start()
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:
                try:
                    status, body = app.get("/healthz")
                    health = json.loads(body)
                    if health["writer"]["spooled_rows"] == 0:
                        break
                except urllib.error.HTTPError:
                    pass
                time.sleep(0.5)
            assert health["status"] == "ok" and health["writer"]["spooled_rows"] == 0, health
            assert health["writer"]["dropped_rows"] == 0
            assert health["problems"] == [] and health["writer"]["last_error"] is None  # the outage has ended
        finally:
            app.stop()
        log = app.output()
        assert log.count("database write failed") == 1, log[-4000:]
        assert log.count("database writes work again") == 1


def test_a_plant_file_is_checked_before_start_and_its_error_names_the_line(tmp_path):
    bad = tmp_path / "plant.yaml"
    bad.write_text((ROOT / "plant" / "default_plant.yaml").read_text().replace("protocol: MODBUS", "protocol: MODBUZ", 1))
    result = run_app("--plant-file", str(bad), "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 2
    assert "--plant-file [OEE_PLANT_FILE]" in result.stderr and "MODBUZ" in result.stderr
    assert "line" in result.stderr
    result = run_app("--plant-file", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2 and "is not a file" in result.stderr


def test_the_demo_runs_the_plant_of_a_plant_file(tmp_path):
    text = (ROOT / "plant" / "default_plant.yaml").read_text()
    small = tmp_path / "plant.yaml"
    # Keep the first area only: four EtherNet/IP lines.
    head, areas = text.split("\nareas:\n", 1)
    first_area = areas.split("\n  - name: ", 1)[0]
    small.write_text(head + "\nareas:\n" + first_area + "\n")
    app = RunningApp(tmp_path, "--plant-file", str(small))
    try:
        app.wait_healthy(60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, body = app.get("/api/plc/machines/", token=app.token("engineer"))
            ids = sorted(m["machine_id"] for m in json.loads(body)["results"]) if status == 200 else []
            if ids:
                break
            time.sleep(0.5)
        assert ids == ["LINE-001", "LINE-002", "LINE-003", "LINE-004"]
    finally:
        app.stop()
