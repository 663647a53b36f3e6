"""`python app.py` with the demo: the simulated plant starts with the app and fills the database through all four
drivers. The issue's promise: every demo machine has samples, states and counts within 10 s of start."""
from __future__ import annotations

import sqlite3
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
