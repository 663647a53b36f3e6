"""`python app.py` polls its PLCs in a child process: `app.py --role collector`, supervised here.

Why: one interpreter lock per process. With 50 PLCs the collectors (pycomm3, asyncua, pymodbus and python-snap7
build and parse every request in Python) held the lock ~60 % of the time, and the pages' callbacks queued behind
them (bench/ui: callbacks p95 320-960 ms in one process, 210-270 ms split). The child reads the same options and
environment as its parent; it runs the collectors, the writer and the OEE summary job, and talks to the parent
over the live bus (live/bus.LocalBus on loopback, or PostgreSQL / Redis when those carry it).

The child ends with its parent however the parent ends (its standard input closes: OEE_STOP_ON_STDIN_EOF), and a
child that dies is started again with backoff, said once in the log. What it acknowledged is in its writer's spool
or the database (db/writer.py), which the next child replays.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

APP = Path(__file__).resolve().parents[1] / "app.py"
STOP_TIMEOUT_S = 7.0  # the child exits within 6 s of its stop whatever its PLCs do (app.py CHILD_STOP_DEADLINE_S)
RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
STABLE_AFTER_S = 60.0  # a child that lived this long starts the backoff over when it dies


class CollectorProcess:
    def __init__(self, argv: list[str], bus_kind: str, bus_address: tuple[str, int] | None, bus_key: bytes | None):
        self.args = [sys.executable, str(APP), *argv, "--role", "collector", "--no-demo", "--metrics-port", "0"]
        self.env = {**os.environ, "OEE_STOP_ON_STDIN_EOF": "1"}
        if bus_kind == "local":
            self.args += ["--live-bus", "local"]
            self.env["OEE_LIVE_BUS_ADDRESS"] = f"{bus_address[0]}:{bus_address[1]}"
            self.env["OEE_LIVE_BUS_KEY"] = bus_key.hex()
        self.proc: subprocess.Popen | None = None
        self.started_at: float | None = None
        self.restarts = 0
        self.last_exit_code: int | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    def start(self) -> "CollectorProcess":
        self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="collector-process", daemon=True)
        self._watcher.start()
        return self

    def _spawn(self) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            # stdout and stderr are the parent's: one terminal, one log.
            self.proc = subprocess.Popen(self.args, stdin=subprocess.PIPE, env=self.env)
            self.started_at = time.time()
        log.info("collectors run in process %d (python app.py --role collector)", self.proc.pid)

    def _watch(self) -> None:
        failures = 0
        while not self._stop.is_set():
            proc = self.proc
            code = proc.wait()
            if self._stop.is_set():
                return
            self.last_exit_code = code
            lived = time.time() - (self.started_at or time.time())
            failures = 1 if lived >= STABLE_AFTER_S else failures + 1
            delay = RESTART_BACKOFF_S[min(failures, len(RESTART_BACKOFF_S)) - 1]
            log.error("the collector process %d ended (exit code %s) after %.0f s; starting it again in %.0f s "
                      "(nothing it acknowledged is lost: its writer's spool is replayed)", proc.pid, code, lived, delay)
            if self._stop.wait(delay):
                return
            self.restarts += 1
            self._spawn()

    def stop(self) -> None:
        """Close its standard input (it stops as on SIGTERM: flushes its writer), then wait; kill if it hangs."""
        with self._lock:
            self._stop.set()
            proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log.error("the collector process %d did not stop in %.0f s; killed", proc.pid, STOP_TIMEOUT_S)
            proc.kill()
            proc.wait()

    def stats(self) -> dict:
        proc = self.proc
        return {"pid": proc.pid if proc else None, "running": proc is not None and proc.poll() is None,
                "started_at": self.started_at, "restarts": self.restarts, "last_exit_code": self.last_exit_code}
