"""--log-format json: one JSON object a line, from the web process and its collector process, as a log stack reads it.

Item E of "[harden] No request, PLC or database can take the app down". The app runs for real (python app.py, its
collector child, PostgreSQL with a password in the URL) with a machine whose port answers HTTP: its poller's failure
line must carry the connection's name, and no line may carry the password.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from auth import users
from config.demo_plant import sync_demo_plant
from db.store import open_store
from processes import logs
from tests.support.listeners import Listener
from tests.support.pgcluster import free_port
from tests.test_stop import machine_on

ROOT = Path(__file__).resolve().parents[1]
SECRET = "hunter2-log-secret"


def test_every_line_is_json_with_role_connection_and_no_secret(tmp_path, pg_url):
    listener = Listener("http").start()
    url = make_url(pg_url).set(password=SECRET).render_as_string(hide_password=False)  # trust auth ignores it
    store = open_store(url)
    users.create(store.engine, "admin", "a long enough password 1", "admin")  # no first-start message
    sync_demo_plant(store.engine, {"name": "Log site"}, [machine_on(listener.port, "LOG-HTTP")], [])
    store.close()
    port = free_port()
    stderr = open(tmp_path / "stderr.log", "w+")
    proc = subprocess.Popen([sys.executable, "app.py", "--no-demo", "--port", str(port), "--data-dir",
                             str(tmp_path / "data"), "--database-url", url, "--log-format", "json"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True,
                            env={k: v for k, v in os.environ.items() if k != "OEE_LOG_FORMAT"})
    try:
        deadline = time.monotonic() + 60
        while "LOG-HTTP" not in Path(stderr.name).read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, Path(stderr.name).read_text()[-3000:]
            time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
        listener.stop()
    lines = [line for line in Path(stderr.name).read_text().splitlines() if line.strip()]
    assert lines
    docs = []
    for line in lines:
        doc = json.loads(line)  # every line, or this raises naming it
        assert {"time", "level", "logger", "role", "message", "pid"} <= set(doc), line
        assert doc["time"].endswith("Z") and datetime.fromisoformat(doc["time"].replace("Z", "+00:00")), line
        assert doc["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), line
        docs.append(doc)
    assert {d["role"] for d in docs} == {"all", "collector"}  # the child logs in the same format
    failed = [d for d in docs if d["logger"] == "collectors.poller" and "failed" in d["message"]]
    assert failed and failed[0]["connection"] == "LOG-HTTP" and failed[0]["machine"] == "LOG-HTTP", failed
    assert failed[0]["level"] == "ERROR" and "answered HTTP" in failed[0]["message"]
    assert any("database postgresql://" in d["message"] for d in docs)  # the URL is said, its password not
    assert SECRET not in Path(stderr.name).read_text()
    assert out == ""  # standard output carries nothing else (no banner)


def test_an_exception_and_a_secret_in_a_message(capsys):
    logger = logging.getLogger("tests.json_logs")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logs.JsonFormatter("collector"))
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise ConnectionError(f"cannot reach postgresql://oee:{SECRET}@db:5432/oee")
        except ConnectionError:
            logger.exception("write failed; password=%s token: abc123", SECRET,
                             extra={"connection": "LINE-003", "machine": "LINE-003"})
    finally:
        logger.removeHandler(handler)
    doc = json.loads(capsys.readouterr().out)
    assert doc["connection"] == "LINE-003" and doc["role"] == "collector" and doc["level"] == "ERROR"
    assert "ConnectionError" in doc["exception"] and "postgresql://oee:***@db" in doc["exception"]
    assert doc["message"] == "write failed; password=*** token: ***"
    assert SECRET not in json.dumps(doc)
