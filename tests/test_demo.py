"""`python app.py` with the demo: the simulated plant starts with the app and fills the database through all four
drivers. The issue's promise: every demo machine has samples, states and counts within 10 s of start."""
from __future__ import annotations

import sqlite3
from pathlib import Path
import time

from tests.test_app import RunningApp

MACHINE_FILL = """
SELECT m.machine_id, c.protocol,
  (SELECT count(*) FROM samples s JOIN tags t ON t.id = s.tag_id WHERE t.machine_id = m.id),
  (SELECT count(*) FROM machine_states ms WHERE ms.machine_id = m.id),
  (SELECT count(*) FROM production_counts pc WHERE pc.machine_id = m.id)
FROM machines m JOIN connections c ON c.machine_id = m.id
"""


def test_demo_fills_every_machine_within_ten_seconds(tmp_path):
    started = time.monotonic()
    app = RunningApp(tmp_path)  # the demo is on by default
    db = tmp_path / "data" / "oee.sqlite3"
    rows, full = [], []
    try:
        while time.monotonic() - started < 10.0:
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
        assert {r[1] for r in rows} == {"ETHERNET_IP", "S7", "OPCUA", "MODBUS"}
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


def test_the_simulated_plant_ends_with_the_app_however_it_ends(tmp_path):
    """The plant runs in child processes (its servers do not share the app's interpreter lock). A stopped app
    stops them, and so does a killed one (their standard input closes): no orphan keeps the ports."""
    import os
    import signal

    for how in (signal.SIGTERM, signal.SIGKILL):
        (tmp_path / how.name).mkdir()
        app = RunningApp(tmp_path / how.name)
        try:
            health = app.wait_healthy(90)
            ports = [c["port"] for c in health["connections"]]
            plants = [p for p in _children(app.proc.pid) if "plant" in Path(f"/proc/{p}/cmdline").read_text()]
            assert plants, "the plant runs in processes of its own, children of the app"
            assert len(ports) == 16 and all(_listening(p) for p in ports)
            os.kill(app.proc.pid, how)
            app.proc.wait(20)
            deadline = time.monotonic() + 20
            while any(map(_alive, plants)) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not any(map(_alive, plants)), f"the plant outlived the app ({how.name})"
            assert not any(_listening(p) for p in ports)
        finally:
            app.stop()
