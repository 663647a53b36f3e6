"""The work of one request is bounded however much data its range holds: a report reads at most MAX_ROWS rows
(400 past it, in words), stays well under 100 MB, and stops at the request's deadline (503, in words); the
database stops a running statement at it too (SQLite and PostgreSQL)."""
from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy
from sqlalchemy.orm import Session

from app import create_app
from db import deadline
from db.engine import make_engine
from db.models import Machine
from db.oee_queries import MAX_ROWS
from db.spool import Batch
from processes.runtime import Runtime
from processes.settings import Settings

MB = 1024 * 1024
STEP = 60.0  # one state change a minute: a busy machine


def rss() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))


def busy_machine(runtime, machine_id: str, changes: int) -> tuple[float, float]:
    """A machine with `changes` state intervals, alternating running and idle, ending an hour ago."""
    with Session(runtime.store.engine) as s, s.begin():
        m = Machine(machine_id=machine_id, name=machine_id)
        s.add(m)
        s.flush()
        pk = m.id
    end = time.time() - 3600
    start = end - changes * STEP
    rows = [(pk, start + i * STEP, start + (i + 1) * STEP, "running" if i % 2 else "idle", None, None)
            for i in range(changes)]
    for i in range(0, changes, 50_000):
        runtime.store.write_batch(Batch(f"{machine_id}-{i}", states=rows[i:i + 50_000]))
    return start, end


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bounded")
    runtime = Runtime(Settings(database_url=f"sqlite:///{folder / 'oee.sqlite3'}", data_dir=folder, demo=False,
                               role="web")).start()
    spans = {"BUSY": busy_machine(runtime, "BUSY", MAX_ROWS - 1_000),
             "TOO-BUSY": busy_machine(runtime, "TOO-BUSY", MAX_ROWS + 1_000)}
    yield runtime, spans
    runtime.stop()


def query(start: float, end: float, machine: str) -> dict:
    return {"machine": machine, "start": repr(start), "end": repr(end)}


def test_a_report_of_many_rows_stays_under_100_mb(site):
    runtime, spans = site
    client = create_app(runtime).server.test_client()
    start, end = spans["BUSY"]
    peak, stop = [rss()], threading.Event()

    def watch():
        while not stop.wait(0.02):
            peak.append(rss())

    watcher = threading.Thread(target=watch)
    before = rss()
    watcher.start()
    try:
        resp = client.get("/api/oee/", query_string=query(start, end, "BUSY"))
    finally:
        stop.set()
        watcher.join()
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["all_time_s"] == pytest.approx((MAX_ROWS - 1_000) * STEP)  # every row was read
    assert max(peak) - before < 100 * MB, f"grew by {(max(peak) - before) / MB:.0f} MB"


def test_more_rows_than_a_report_reads_is_refused_in_words(site):
    runtime, spans = site
    client = create_app(runtime).server.test_client()
    start, end = spans["TOO-BUSY"]
    resp = client.get("/api/oee/", query_string=query(start, end, "TOO-BUSY"))
    body = resp.get_json()
    assert resp.status_code == 400, body
    assert f"more than {MAX_ROWS:,} state changes" in body["message"] and "shorter range" in body["message"]
    assert "start" in body["fields"]


def test_a_request_past_its_deadline_is_stopped_with_503(site, tmp_path):
    """Regression: nothing bounded a request's time; a long report ran on after its client gave up."""
    runtime, spans = site
    hurried = Runtime(Settings(database_url=str(runtime.store.engine.url), data_dir=tmp_path, demo=False,
                               role="web", request_timeout_s=0.2)).start()
    try:
        client = create_app(hurried).server.test_client()
        start, end = spans["BUSY"]
        started = time.monotonic()
        resp = client.get("/api/oee/", query_string=query(start, end, "BUSY"))
        took = time.monotonic() - started
        body = resp.get_json()
        assert resp.status_code == 503, body
        assert body["error"] == "deadline_exceeded" and "deadline of 0.2 s" in body["message"]
        assert took < 5  # stopped, not run to the end (the same report answers 200 within the default 30 s above)
    finally:
        hurried.stop()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_database_stops_a_statement_at_the_deadline(backend, sqlite_url, request):
    url = sqlite_url if backend == "sqlite" else request.getfixturevalue("pg_url")
    engine = make_engine(url)
    slow = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500000000) "
            "SELECT count(*) FROM c" if backend == "sqlite" else "SELECT pg_sleep(20)")
    try:
        started = time.monotonic()
        with pytest.raises(sqlalchemy.exc.OperationalError), deadline.within(0.3), engine.connect() as conn:
            conn.exec_driver_sql(slow).all()
        assert time.monotonic() - started < 5
        with engine.connect() as conn:  # outside a request nothing is cut short, nothing is left set
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
            if backend == "postgresql":
                assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "0"
    finally:
        engine.dispose()


def test_the_pages_queries_refuse_more_rows_than_a_report_reads(site):
    """The dashboards' state timeline, downtime list and count progress read no more than a report does; they
    show the reason instead (components/scope_dashboard.py, pages/downtime.py). The CSV export of downtime reads
    one machine at a time and streams, so it takes the whole range."""
    from db import downtime_queries, ui_queries
    from db.oee_queries import TooMuchData

    runtime, spans = site
    start, end = spans["TOO-BUSY"]
    with pytest.raises(TooMuchData, match="state changes"):
        ui_queries.state_timeline(runtime.store, "machine", "TOO-BUSY", start, end)
    with pytest.raises(TooMuchData):
        downtime_queries.downtime_events(runtime.store, start, end, scope="machine", key="TOO-BUSY")
    with pytest.raises(TooMuchData):
        ui_queries.count_progress(runtime.store, "machine", "TOO-BUSY", start, end)
    events = downtime_queries.downtime_events(runtime.store, start, end, scope="machine", key="TOO-BUSY", max_rows=None,
                                        reconcile=False)
    assert len(events) == (MAX_ROWS + 1_000) // 2
