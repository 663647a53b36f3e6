"""/healthz: what anonymous visitors and load balancers see, what viewers see, and a status that tells the truth.

Regressions for "[harden] No request, PLC or database can take the app down" (items C and D): /healthz showed
anonymous visitors on --host 0.0.0.0 every PLC's host, port and error, the database URL, the data path and the
collector's PID; it said "ok" while half the PLCs failed; writer.last_error kept an outage that had ended; and a
TimescaleDB policy failing on every run showed nowhere. Real SQLite and PostgreSQL, real protocol servers behind a
TCP proxy that cuts and restores them; nothing mocked.
"""
from __future__ import annotations

import dataclasses
import time
from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app import create_app
from collectors.poller import BackoffPolicy
from config.demo_plant import sync_demo_plant
from db.backend import judge_jobs
from db.store import open_store
from exports.prometheus import make_registry, render
from plant import Plant, default_layout
from processes.demo import demo_endpoints
from processes.runtime import Runtime, health_problems
from processes.settings import Settings
from tests.support.auth import make_token
from tests.support.proxy import FaultProxy
from tests.support.waiting import wait_for

UTC = timezone.utc


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


# --- who sees what ----------------------------------------------------------------------------------------------


@pytest.fixture
def web_node(tmp_path):
    """A web node listening on all interfaces (anonymous viewing off by default), and its loopback twin."""
    remote = Runtime(Settings(host="0.0.0.0", data_dir=tmp_path, demo=False, role="web")).start()
    loopback = Runtime(Settings(host="127.0.0.1", data_dir=tmp_path, demo=False, role="web")).start()
    yield create_app(remote).server.test_client(), create_app(loopback).server.test_client(), remote
    remote.stop()
    loopback.stop()


def test_anonymous_visitors_get_status_and_version_only(web_node, tmp_path):
    anonymous, _loopback, runtime = web_node
    response = anonymous.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "version": runtime.health()["version"]}
    text = response.get_data(as_text=True)
    assert str(tmp_path) not in text and "sqlite" not in text  # no path, no database URL
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("role", ["viewer", "admin"])
def test_a_viewer_gets_the_whole_document(web_node, tmp_path, role):
    anonymous, _loopback, runtime = web_node
    body = anonymous.get("/healthz", headers=bearer(make_token(runtime.store.engine, role))).get_json()
    assert body["status"] == "ok" and body["problems"] == []
    assert str(tmp_path) in body["database"]["url"] and body["role"] == "web"
    assert {"writer", "connections", "timescaledb_jobs", "collector_process", "uptime_s"} <= set(body)


def test_on_loopback_anonymous_viewing_makes_everyone_a_viewer(web_node):
    _anonymous, loopback, _runtime = web_node
    body = loopback.get("/healthz").get_json()
    assert "database" in body and "problems" in body


def test_a_bad_token_is_refused_not_read_as_anonymous(web_node):
    anonymous, _loopback, _runtime = web_node
    assert anonymous.get("/healthz", headers=bearer("oee_not-a-token")).status_code == 401


# --- degraded, with why, and back --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plant():
    layout = default_layout()
    small = dataclasses.replace(layout, machines=tuple(m for m in layout.machines if m.id in ("LINE-013",
                                                                                              "LINE-015")))
    p = Plant(small, seed=7, time_scale=60).start()
    yield p
    p.stop()


def collecting_runtime(tmp_path, endpoints, database_url: str | None = None) -> Runtime:
    settings = Settings(database_url=database_url or f"sqlite:///{tmp_path / 'oee.sqlite3'}", data_dir=tmp_path,
                        demo=False)
    store = open_store(settings.effective_database_url)
    sync_demo_plant(store.engine, {"name": "Health site"}, endpoints, [])
    store.close()
    runtime = Runtime(settings, collector_options={"backoff": BackoffPolicy(initial_s=0.2, max_s=1.0),
                                                   "reload_interval_s": 3600, "timeout_s": 1.0})
    return runtime.start()


def healthz(client) -> tuple[int, dict]:
    response = client.get("/healthz")
    return response.status_code, response.get_json()


def test_a_plc_that_goes_away_makes_the_node_degraded_and_its_return_clears_it(tmp_path, plant):
    endpoints = demo_endpoints(plant.endpoints(), plant.layout)
    for ep in endpoints:
        ep["poll_interval_ms"] = 200
    modbus = next(e for e in endpoints if e["protocol"] == "MODBUS")
    proxy = FaultProxy(modbus["port"]).start()
    modbus["port"] = proxy.port
    runtime = collecting_runtime(tmp_path, endpoints)
    client = create_app(runtime).server.test_client()  # on loopback: anonymous viewing, the whole document
    try:
        wait_for(lambda: healthz(client)[1]["status"] == "ok" and all(
            c["state"] == "connected" for c in healthz(client)[1]["connections"]), timeout=20)
        proxy.cut()
        status, body = wait_for(lambda: (lambda r: r if r[1]["status"] == "degraded" else None)(healthz(client)),
                                timeout=15)
        assert status == 200  # degraded: a load balancer keeps the node in service
        assert [p["component"] for p in body["problems"]] == ["connection LINE-015"], body["problems"]
        assert body["problems"][0]["error"].startswith("cannot_connect: "), body["problems"]
        proxy.restore()
        status, body = wait_for(lambda: (lambda r: r if r[1]["status"] == "ok" else None)(healthz(client)),
                                timeout=15)
        assert status == 200 and body["problems"] == []
        assert all(c["last_error"] is None for c in body["connections"])
    finally:
        runtime.stop()
        proxy.cut()


def test_the_database_goes_away_and_its_error_leaves_healthz_when_it_is_back(tmp_path, plant, pg_url):
    """PostgreSQL behind a proxy that cuts every connection and refuses new ones, then comes back."""
    from sqlalchemy.engine import make_url

    url = make_url(pg_url)
    proxy = FaultProxy(url.port or 5432, url.host or "127.0.0.1").start()
    proxied = url.set(port=proxy.port).render_as_string(hide_password=False)
    endpoints = demo_endpoints(plant.endpoints(), plant.layout)
    for ep in endpoints:
        ep["poll_interval_ms"] = 200
    runtime = collecting_runtime(tmp_path, endpoints, proxied)
    runtime.writer.retry_max_s = 1.0
    client = create_app(runtime).server.test_client()
    try:
        wait_for(lambda: runtime.writer.written_rows > 0, timeout=20)
        proxy.cut()
        status, body = wait_for(lambda: (lambda r: r if r[1]["status"] == "degraded" else None)(healthz(client)),
                                timeout=20)
        assert status == 200
        writer_problems = [p for p in body["problems"] if p["component"] == "writer"]
        assert writer_problems and "spool" in writer_problems[0]["error"], body["problems"]
        assert body["writer"]["last_error"]
        proxy.restore()
        status, body = wait_for(lambda: (lambda r: r if r[1]["status"] == "ok" else None)(healthz(client)),
                                timeout=40)
        assert body["problems"] == [] and body["writer"]["database_ok"] is True
        assert body["writer"]["last_error"] is None  # the outage is over: it no longer says it
    finally:
        runtime.stop()
        proxy.cut()


# --- TimescaleDB's jobs ------------------------------------------------------------------------------------------

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
# Rows shaped like timescaledb_information.jobs joined with job_stats, as db.backend.JOB_STATS_SQL reads them; the
# failure is what PostgreSQL 15.19+ gives every background job of TimescaleDB 2.22-2.29 (PROTOCOLS.md).
JOB_ROWS = [
    {"job_id": 1000, "proc_name": "policy_refresh_continuous_aggregate", "hypertable": "samples_1m",
     "scheduled": True, "last_run_status": "Success", "last_run_started_at": NOW - timedelta(minutes=1),
     "last_successful_finish": NOW - timedelta(seconds=59), "next_start": NOW, "total_runs": 40,
     "total_failures": 0},
    {"job_id": 1002, "proc_name": "policy_retention", "hypertable": "samples", "scheduled": True,
     "last_run_status": "Failed", "last_run_started_at": NOW - timedelta(hours=1), "last_successful_finish": None,
     "next_start": NOW + timedelta(hours=23), "total_runs": 20, "total_failures": 20},
    {"job_id": 1003, "proc_name": "policy_compression", "hypertable": "samples", "scheduled": True,
     "last_run_status": "Failed", "last_run_started_at": NOW - timedelta(hours=2), "last_successful_finish": None,
     "next_start": NOW + timedelta(hours=10), "total_runs": 3, "total_failures": 3},
    {"job_id": 1004, "proc_name": "policy_refresh_continuous_aggregate", "hypertable": "samples_1h",
     "scheduled": True, "last_run_status": None, "last_run_started_at": None, "last_successful_finish": None,
     "next_start": NOW + timedelta(minutes=10), "total_runs": 0, "total_failures": 0},
]
JOB_ERRORS = {1002: {"job_id": 1002, "sqlerrcode": "24000",
                     "err_message": 'cannot drop portal "" while it is being set up'}}


def test_job_stats_rows_are_judged_one_by_one():
    jobs = {j["job_id"]: j for j in judge_jobs(JOB_ROWS, JOB_ERRORS)}
    assert jobs[1000]["last_run_ok"] is True and jobs[1000]["error"] is None and jobs[1000]["job"] == "refresh"
    assert jobs[1000]["last_successful_finish"] == (NOW - timedelta(seconds=59)).timestamp()
    assert jobs[1002]["last_run_ok"] is False and jobs[1002]["job"] == "retention"
    assert jobs[1002]["error"] == 'cannot drop portal "" while it is being set up (SQLSTATE 24000)'
    assert jobs[1002]["total_failures"] == 20 and jobs[1002]["last_successful_finish"] is None
    assert jobs[1003]["last_run_ok"] is False and "job_errors has no entry" in jobs[1003]["error"]
    assert jobs[1004]["last_run_ok"] is None and jobs[1004]["error"] is None  # not run yet: no problem


def test_a_failed_job_makes_the_node_degraded_and_shows_in_metrics(tmp_path):
    runtime = Runtime(Settings(database_url=f"sqlite:///{tmp_path / 'oee.sqlite3'}", data_dir=tmp_path,
                               demo=False)).start()
    try:
        # As the writer keeps it once read (check_timescaledb_jobs), here from the rows above
        runtime.writer.timescaledb_jobs = {"detail": "4 TimescaleDB jobs watched", "jobs": judge_jobs(JOB_ROWS,
                                                                                                     JOB_ERRORS)}
        body = runtime.health()
        assert body["status"] == "degraded"
        assert body["problems"] == [
            {"component": "timescaledb job 1002 (retention on samples)",
             "error": 'cannot drop portal "" while it is being set up (SQLSTATE 24000)'},
            {"component": "timescaledb job 1003 (compression on samples)",
             "error": "its last run failed (timescaledb_information.job_errors has no entry readable here)"}]
        families = {f.name: f for f in text_string_to_metric_families(render(make_registry(runtime)).decode())}
        ok = {(s.labels["job"], s.labels["hypertable"]): s.value
              for s in families["oee_timescaledb_job_last_run_ok"].samples}
        assert ok == {("refresh", "samples_1m"): 1, ("retention", "samples"): 0, ("compression", "samples"): 0}
        failures = {(s.labels["job"], s.labels["hypertable"]): s.value
                    for s in families["oee_timescaledb_job_failures"].samples if s.name.endswith("_total")}
        assert failures[("retention", "samples")] == 20 and failures[("refresh", "samples_1h")] == 0
        assert [s.value for s in families["oee_problems"].samples] == [2]
        assert [s.value for s in families["oee_up"].samples] == [1]  # the database itself is fine
        runtime.writer.check_timescaledb_jobs()  # what SQLite really has: no jobs, no problem
        assert runtime.health()["status"] == "ok"
    finally:
        runtime.stop()


def test_plain_postgresql_says_it_has_no_timescaledb_jobs(tmp_path, pg_url):
    runtime = Runtime(Settings(database_url=pg_url, data_dir=tmp_path, demo=False, timescaledb="off")).start()
    try:
        jobs = wait_for(lambda: runtime.health()["timescaledb_jobs"], timeout=10)  # the writer's first look
        assert jobs["jobs"] == [] and jobs["detail"].startswith("no TimescaleDB jobs (plain PostgreSQL")
        assert runtime.health()["status"] == "ok"
    finally:
        runtime.stop()


def test_timescaledb_policies_are_read_from_its_views(tmp_path, timescale_url):
    """Runs where TimescaleDB is installed (tests/conftest.py timescale_cluster); skipped here with the reason.

    The jobs run once as they are created; on PostgreSQL 15.19+ every run fails (PROTOCOLS.md), and job_stats then
    says last_successful_finish '-infinity', which the read failed on ("timestamp too small"): the watcher saw
    nothing on the very servers it was written for. What it reports must match the views, whatever they say."""
    from sqlalchemy import text

    store = open_store(timescale_url)
    try:
        with store.engine.connect() as conn:
            ids = list(conn.execute(text(
                "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name IN ('policy_retention', "
                "'policy_compression', 'policy_refresh_continuous_aggregate')")).scalars())

        def raw_stats():
            with store.engine.connect() as conn:
                return {r.job_id: r for r in conn.execute(text(
                    "SELECT job_id, last_run_status, last_successful_finish::text AS finish "
                    "FROM timescaledb_information.job_stats WHERE job_id = ANY(:ids)"), {"ids": ids})}

        raw = wait_for(lambda: (lambda r: r if len(r) == len(ids) and all(x.last_run_status for x in r.values())
                                else None)(raw_stats()), timeout=60)  # each has run once
        with store.engine.connect() as conn:
            errors = {r.job_id: r.err_message for r in conn.execute(text(
                "SELECT DISTINCT ON (job_id) job_id, err_message FROM timescaledb_information.job_errors "
                "WHERE job_id = ANY(:ids) ORDER BY job_id, finish_time DESC"), {"ids": ids})}
        found = store.timescaledb_jobs()
        kinds = {(j["job"], j["hypertable"]) for j in found["jobs"]}
        assert {("retention", "samples"), ("compression", "samples"), ("refresh", "samples_1m"),
                ("refresh", "samples_1h")} <= kinds, found
        assert {j["job_id"] for j in found["jobs"]} == set(ids)
        for job in found["jobs"]:
            row = raw[job["job_id"]]
            assert job["last_run_status"] == row.last_run_status
            assert job["last_run_ok"] is (row.last_run_status == "Success")
            if row.finish == "-infinity":  # never succeeded
                assert job["last_successful_finish"] is None
            if job["last_run_ok"] is False and job["job_id"] in errors:
                assert job["error"].startswith(errors[job["job_id"]]), job
        failed = [j for j in found["jobs"] if j["last_run_ok"] is False]
        problems = health_problems([], {"database_ok": True, "timescaledb_jobs": found})
        assert [p["component"] for p in problems] == [
            f"timescaledb job {j['job_id']} ({j['job']} on {j['hypertable']})" for j in failed]
        retention = next(j for j in found["jobs"] if j["job"] == "retention")
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f"CALL run_job({retention['job_id']})"))  # in the foreground it succeeds
        assert any(j["job_id"] == retention["job_id"] for j in store.timescaledb_jobs()["jobs"])
    finally:
        store.close()


def test_the_writer_says_when_timescaledb_jobs_fail(tmp_path, timescale_url, caplog):
    """The app on a real TimescaleDB: the writer reads the jobs on its timer and /healthz and the log say which
    failed (on PostgreSQL 15.19+ all of them, PROTOCOLS.md) while the node keeps serving."""
    runtime = Runtime(Settings(database_url=timescale_url, data_dir=tmp_path, demo=False)).start()
    try:
        runtime.writer.jobs_interval_s = 1.0
        jobs = wait_for(lambda: (lambda j: j if j and j["jobs"] and all(x["last_run_ok"] is not None
                                                                         for x in j["jobs"]) else None)(
            runtime.writer.timescaledb_jobs), timeout=60)
        failed = [j for j in jobs["jobs"] if j["last_run_ok"] is False]
        body = runtime.health()
        assert [p["component"] for p in body["problems"] if p["component"].startswith("timescaledb job")] == [
            f"timescaledb job {j['job_id']} ({j['job']} on {j['hypertable']})" for j in failed]
        assert body["status"] == ("degraded" if failed else "ok")
        assert not any("cannot read TimescaleDB's job statistics" in r.message for r in caplog.records)
        logged = [r.message for r in caplog.records if "last run failed" in r.message]
        assert len(logged) == len(failed)  # said once per failing job
    finally:
        runtime.stop()


def test_jobs_are_read_on_the_writers_timer(tmp_path):
    runtime = Runtime(Settings(database_url=f"sqlite:///{tmp_path / 'oee.sqlite3'}", data_dir=tmp_path,
                               demo=False)).start()
    try:
        first = wait_for(lambda: runtime.writer.timescaledb_jobs, timeout=10)
        assert first["detail"] == "no TimescaleDB jobs (SQLite)" and first["checked_at"] <= time.time()
    finally:
        runtime.stop()
