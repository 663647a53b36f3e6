"""`python app.py` with the demo: the simulated plant starts with the app and fills the database through all four
drivers: every demo machine gets samples, states and counts. How fast (the target: 10 s on a quiet 2-core machine)
is measured by `python -m bench.startup`, not here: a test on a loaded machine would fail for the load."""
from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from tests.test_app import RunningApp

MACHINE_FILL = """
SELECT m.machine_id, c.protocol,
  (SELECT count(*) FROM samples s JOIN tags t ON t.id = s.tag_id WHERE t.machine_id = m.id),
  (SELECT count(*) FROM machine_states ms WHERE ms.machine_id = m.id),
  (SELECT count(*) FROM production_counts pc WHERE pc.machine_id = m.id)
FROM machines m JOIN connections c ON c.machine_id = m.id
"""


def test_demo_fills_every_machine(tmp_path):
    started = time.monotonic()
    app = RunningApp(tmp_path)  # the demo is on by default
    db = tmp_path / "data" / "oee.sqlite3"
    rows, full = [], []
    try:
        while time.monotonic() - started < 90.0:  # a generous bound: a hang fails, the load does not
            try:
                with sqlite3.connect(db, timeout=1) as conn:
                    rows = conn.execute(MACHINE_FILL).fetchall()
            except sqlite3.Error:
                rows = []  # not created or not migrated yet
            full = [r for r in rows if r[2] and r[3] and r[4]]
            if len(rows) == 16 and len(full) == 16:
                break
            time.sleep(0.25)
        elapsed = time.monotonic() - started
        assert len(rows) == 16, app.output()[-3000:]
        assert len(full) == 16, f"after {elapsed:.1f} s, not yet filled: {[r for r in rows if r not in full]}"
        assert {r[1] for r in rows} == {"ETHERNET_IP", "S7", "OPCUA", "MODBUS", "SPARKPLUG_B"}
        health = app.wait_healthy()
        assert len(health["connections"]) == 16
        assert all(c["state"] == "connected" for c in health["connections"]), health["connections"]
        print(f"demo: 16 machines filled {elapsed:.1f} s after start")
    finally:
        app.stop()


def _children(pid: int) -> list[int]:
    """Child processes of pid (Linux /proc)."""
    from pathlib import Path

    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    from pathlib import Path

    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _all_connections(app, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = json.loads(app.get("/healthz")[1])
        if len(health["connections"]) == 16 and all(c.get("cycles", 0) >= 1 for c in health["connections"]):
            return health
        time.sleep(0.3)
    raise AssertionError(f"not every connection reports: {health['connections']}")


def _collector_children(pid: int) -> list[int]:
    return [p for p in _children(pid) if "--role\0collector" in Path(f"/proc/{p}/cmdline").read_text()]


def test_the_simulated_plant_ends_with_the_app_however_it_ends(tmp_path):
    """The plant and the collectors run in child processes (they do not share the pages' interpreter lock). A
    stopped app stops them, and so does a killed one (their standard input closes): no orphan keeps the ports."""
    import os
    import signal

    for how in (signal.SIGTERM, signal.SIGKILL):
        (tmp_path / how.name).mkdir()
        app = RunningApp(tmp_path / how.name)
        try:
            app.wait_healthy(90)
            health = _all_connections(app)
            ports = [c["port"] for c in health["connections"]]
            plants = [p for p in _children(app.proc.pid) if "plant" in Path(f"/proc/{p}/cmdline").read_text()]
            assert plants, "the plant runs in processes of its own, children of the app"
            collectors = _collector_children(app.proc.pid)
            assert collectors == [health["collector_process"]["pid"]], "one collector process, a child of the app"
            assert len(ports) == 16 and all(_listening(p) for p in ports)
            os.kill(app.proc.pid, how)
            app.proc.wait(20)
            children = plants + collectors
            deadline = time.monotonic() + 20
            while any(map(_alive, children)) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not any(map(_alive, plants)), f"the plant outlived the app ({how.name})"
            assert not any(map(_alive, collectors)), f"the collector process outlived the app ({how.name})"
            assert not any(_listening(p) for p in ports)
        finally:
            app.stop()


def test_a_collector_process_that_dies_is_started_again_and_loses_nothing_it_wrote(tmp_path):
    """SIGKILL the child that polls the PLCs: the web process keeps serving, says so, starts a new child, and the
    connections report again; the samples written before the kill are still there and new ones arrive."""
    import os
    import signal

    from sqlalchemy import create_engine, text

    app = RunningApp(tmp_path)
    try:
        app.wait_healthy(90)
        first = _all_connections(app)["collector_process"]
        engine = create_engine(app.database_url)
        with engine.connect() as c:
            before = c.execute(text("SELECT count(*) FROM samples")).scalar()
        assert before > 0
        os.kill(first["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, body = app.get("/healthz")
            health = json.loads(body)
            child = health["collector_process"]
            if child["restarts"] == 1 and child["reporting"]:
                break
            assert app.get("/")[0] == 200  # the pages stay up meanwhile
            time.sleep(0.3)
        else:
            raise AssertionError(f"the collector process was not started again: {health}")
        assert child["pid"] != first["pid"] and child["last_exit_code"] == -signal.SIGKILL
        assert _collector_children(app.proc.pid) == [child["pid"]]
        _all_connections(app)
        deadline, after = time.monotonic() + 30, before  # the new child's first samples: seconds on a busy box
        while after <= before and time.monotonic() < deadline:
            time.sleep(0.5)
            with engine.connect() as c:
                after = c.execute(text("SELECT count(*) FROM samples")).scalar()
        assert after > before
        assert app.output().count(f"the collector process {first['pid']} ended (exit code -9)") == 1
    finally:
        app.stop()
