"""Across processes: a collector process and two web workers share live updates; every client sees every update.

PostgreSQL (LISTEN/NOTIFY): `python app.py --role collector` with the demo plant, and `gunicorn -w 2 --threads 64
wsgi:application` serving the WebSockets, on a database of the pg_url fixture. Redis (pub/sub): the same with a
redis-server of the test's own on a free port, and two `python app.py --role web` processes on SQLite.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from tests.live.helpers import LiveClient, tag_updates
from tests.support.pgcluster import free_port

ROOT = Path(__file__).resolve().parents[2]
PLC_PATH = "/ws/plc/LINE-001,LINE-013/"  # EtherNet/IP and S7


class Proc:
    def __init__(self, name: str, argv: list[str], log_dir: Path, env: dict):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **env})

    def output(self) -> str:
        return self.log_path.read_text()

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.output()[-4000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def wait_for(predicate, timeout: float, procs: list[Proc], what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            p.check()
        try:
            if predicate():
                return
        except Exception:
            pass
        time.sleep(0.3)
    logs = "\n".join(f"--- {p.name}\n{p.output()[-2500:]}" for p in procs)
    raise AssertionError(f"{what} did not happen within {timeout} s\n{logs}")


def http_ok(port: int) -> bool:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
        return resp.status == 200


def connect_spread(port: int, path: str, per_worker: int, workers: int, limit: int = 40) -> list[LiveClient]:
    """Clients until each of `workers` server processes holds at least per_worker of them (the kernel picks)."""
    by_pid: dict[int, list[LiveClient]] = {}
    for _ in range(limit):
        c = LiveClient(port, path)
        snap = c.recv()
        c.snapshot = snap
        pid = snap["server"]["pid"]
        if len(by_pid.get(pid, [])) < per_worker:
            by_pid.setdefault(pid, []).append(c)
        else:
            c.close()  # at once: an open socket holds one of the worker's threads
        if len(by_pid) >= workers and all(len(v) >= per_worker for v in by_pid.values()):
            break
    clients = [c for v in by_pid.values() for c in v]
    assert len(by_pid) >= workers, f"all clients landed on {list(by_pid)}"
    return clients


def record(clients: list[LiveClient], seconds: float) -> None:
    """Every client reads concurrently, as browsers would."""
    def run(c):
        c.drain(seconds)

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def assert_everyone_saw_everything(clients: list[LiveClient], t0: float, t1: float) -> int:
    """The (tag, sample time, value) updates inside [t0, t1] are the same for every client, and there are some."""
    views = []
    for c in clients:
        seen = {}
        for m in c.received:
            if m["type"] == "tag_update":
                for tid, v in m["tags"].items():
                    if t0 <= v[0] <= t1:
                        seen[(tid, v[0])] = v[1]
        views.append(seen)
    reference = views[0]
    assert len(reference) > 20, f"too few updates to compare: {len(reference)}"
    for c, view in zip(clients, views, strict=True):
        missing = set(reference) - set(view)
        extra = set(view) - set(reference)
        assert not missing and not extra, (f"client on pid {c.snapshot['server']['pid']}: {len(missing)} missing, "
                                           f"{len(extra)} extra of {len(reference)}")
        assert view == reference
    return len(reference)


def run_scenario(tmp_path: Path, collector_env: dict, web_procs: list[tuple[str, list[str], dict]], port: int,
                 workers: int) -> dict:
    collector = Proc("collector", [sys.executable, "app.py", "--role", "collector", "--time-scale", "60",
                                   "--data-dir", str(tmp_path / "collector")], tmp_path, collector_env)
    procs = [collector]
    clients: list[LiveClient] = []
    try:
        wait_for(lambda: "collectors: 16 connections running" in collector.output(), 60, procs, "collectors start")
        for name, argv, env in web_procs:
            procs.append(Proc(name, argv, tmp_path, env))
        wait_for(lambda: http_ok(port), 60, procs, "web workers answer")

        def snapshots_complete() -> bool:
            # A worker asks the collectors for their latest values when it starts; on a loaded machine the
            # answer can take a moment. Wait for it in every worker before the clients under test connect.
            probes = connect_spread(port, PLC_PATH, per_worker=1, workers=workers)
            try:
                return all(sum(t["value"] is not None for t in p.snapshot["tags"].values())
                           >= 0.9 * len(p.snapshot["tags"]) for p in probes)
            finally:
                for p in probes:
                    p.close()

        wait_for(snapshots_complete, 60, procs, "every worker's snapshot is complete")
        clients = connect_spread(port, PLC_PATH, per_worker=2, workers=workers)
        dashboards = connect_spread(port, "/ws/dashboard/", per_worker=1, workers=workers)
        clients_all = clients + dashboards
        # snapshot first, complete in every worker: values of tags that never change came through the resync
        for c in clients:
            values = [t["value"] for t in c.snapshot["tags"].values()]
            assert sum(v is not None for v in values) >= 0.9 * len(values), c.snapshot["server"]
        for c in dashboards:
            assert all(m["status"] for m in c.snapshot["machines"]), c.snapshot["machines"]
        t0 = time.time() + 0.5
        record(clients_all, 8.0)
        t1 = time.time() - 2.0  # what was sampled before t1 had time to reach everybody
        n = assert_everyone_saw_everything(clients, t0, t1)
        seen_machines = {c.snapshot["tags"][tid]["machine_id"] for c in clients[:1] for tid, _ in
                         tag_updates(c.received)}
        assert seen_machines == {"LINE-001", "LINE-013"}
        metrics = [{(m["machine_id"], m["time"]) for m in c.received
                    if m["type"] == "metrics" and t0 <= m["time"] <= t1} for c in dashboards]
        assert metrics[0] and all(m == metrics[0] for m in metrics), "dashboards disagree on metrics"
        for c in clients_all:
            beats = [m for m in c.received if m["type"] == "heartbeat"]
            assert beats and beats[-1]["dropped"] == 0
        pids = {c.snapshot["server"]["pid"] for c in clients_all}
        return {"updates": n, "clients": len(clients_all), "pids": pids}
    finally:
        for c in clients:
            c.close()
        for p in reversed(procs):
            p.stop()


@pytest.mark.timeout(240)
def test_collector_process_and_two_gunicorn_workers_over_postgresql(tmp_path, pg_url):
    if shutil.which("gunicorn") is None and not (Path(sys.executable).parent / "gunicorn").exists():
        pytest.fail("gunicorn is not installed: pip install -r requirements.txt")
    port = free_port()
    env = {"OEE_DATABASE_URL": pg_url, "OEE_WS_HEARTBEAT_S": "1"}
    gunicorn = [sys.executable, "-m", "gunicorn", "-w", "2", "--threads", "64", "-b", f"127.0.0.1:{port}",
                "wsgi:application"]
    result = run_scenario(tmp_path, env, [("gunicorn", gunicorn, {**env, "OEE_DATA_DIR": str(tmp_path / "web")})],
                          port, workers=2)
    print(f"postgresql: {result['clients']} clients on {len(result['pids'])} gunicorn workers agreed on "
          f"{result['updates']} tag updates")
    with psycopg.connect(pg_url) as conn:  # the bus carried it: NOTIFY is the only link between the processes
        assert conn.execute("SELECT count(*) FROM machines").fetchone()[0] == 16


@pytest.fixture
def redis_url(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed: the Redis bus is tested where it is (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    try:
        import redis

        client = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.timeout(240)
def test_collector_process_and_two_web_processes_over_redis(tmp_path, redis_url):
    """SQLite holds the configuration; Redis carries the live updates (each test has its own redis-server)."""
    db = f"sqlite:///{tmp_path / 'oee.sqlite3'}"
    env = {"OEE_DATABASE_URL": db, "OEE_REDIS_URL": redis_url, "OEE_LIVE_CHANNEL": "oee_test_live",
           "OEE_WS_HEARTBEAT_S": "1"}
    collector = Proc("collector", [sys.executable, "app.py", "--role", "collector", "--time-scale", "60",
                                   "--data-dir", str(tmp_path / "collector")], tmp_path, env)
    procs = [collector]
    clients = []
    try:
        wait_for(lambda: "collectors: 16 connections running" in collector.output(), 60, procs, "collectors start")
        # Two web processes behind one port would need a proxy; two ports show the same thing: each sees everything.
        # Their ports are chosen once the collector's simulated plant holds its own (a port picked before could be
        # taken by one of the plant's servers meanwhile: "Address already in use").
        ports = [free_port(), free_port()]
        webs = [(f"web{i}", [sys.executable, "app.py", "--role", "web", "--port", str(p), "--data-dir",
                             str(tmp_path / f"web{i}")], env) for i, p in enumerate(ports)]
        for name, argv, e in webs:
            procs.append(Proc(name, argv, tmp_path, e))
        wait_for(lambda: all(http_ok(p) for p in ports), 60, procs, "web processes answer")
        for p in ports:
            for _ in range(2):
                c = LiveClient(p, PLC_PATH)
                c.snapshot = c.recv()
                assert c.snapshot["server"]["bus"] == "redis"
                clients.append(c)
        t0 = time.time() + 0.5
        record(clients, 6.0)
        t1 = time.time() - 2.0
        n = assert_everyone_saw_everything(clients, t0, t1)
        print(f"redis: {len(clients)} clients on 2 web processes agreed on {n} tag updates")
    finally:
        for c in clients:
            c.close()
        for p in reversed(procs):
            p.stop()
