"""The store on real SQLite, real PostgreSQL and (where installed) real TimescaleDB."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import inspect, text

from db import backend as backends
from db import migrate
from db.engine import DatabaseConfigError, make_engine
from db.queries import tag_series
from db.spool import Batch
from db.store import open_store
from tests.support.pgcluster import free_port, timescaledb_installed

EXPECTED_TABLES = {
    "sites", "areas", "lines", "cells", "machines", "connections", "tags", "samples", "machine_states",
    "production_counts", "downtime_events", "reason_codes", "products", "shift_calendars", "shifts",
    "shift_breaks", "planned_downtime", "writer_batches", "oee_meta", "machine_lifetime",
}


def _backend_of(url: str) -> str:
    if url.startswith("sqlite"):
        return "sqlite"
    return "timescaledb" if "oee_ts_" in url else "postgresql"


def test_migrations_build_the_schema_and_are_idempotent(any_url):
    store = open_store(any_url)
    try:
        assert store.backend_name == _backend_of(any_url)
        assert store.schema_version == migrate.head_revision() == "0009"
        tables = set(inspect(store.engine).get_table_names())
        assert EXPECTED_TABLES <= tables
    finally:
        store.close()
    again = open_store(any_url)  # a second start migrates nothing and keeps the backend
    assert again.backend_name == _backend_of(any_url)
    again.close()


def test_plain_postgresql_when_timescaledb_cannot_be_created(pg_url):
    store = open_store(pg_url)
    try:
        assert store.backend_name == "postgresql"
        assert "plain PostgreSQL" in store.backend.detail
        if timescaledb_installed():  # installed but not preloaded: the server drops the connection on CREATE
            assert "must be preloaded" in store.backend.detail
        kinds = dict(store.engine.connect().execute(text(
            "SELECT relname, relkind FROM pg_class WHERE relname IN ('samples_1m', 'samples_1h')")).all())
        assert kinds == {"samples_1m": "r", "samples_1h": "r"}  # ordinary tables the app maintains
    finally:
        store.close()


def test_timescaledb_hypertables_policies_and_aggregates(timescale_url):
    store = open_store(timescale_url)
    try:
        assert store.backend_name == "timescaledb"
        with store.engine.connect() as conn:
            hypertables = set(conn.execute(text(
                "SELECT hypertable_name FROM timescaledb_information.hypertables")).scalars())
            aggregates = set(conn.execute(text(
                "SELECT view_name FROM timescaledb_information.continuous_aggregates")).scalars())
            jobs = set(conn.execute(text(
                "SELECT proc_name || ':' || coalesce(hypertable_name, '') FROM timescaledb_information.jobs")).scalars())
        assert {"samples", "machine_states", "production_counts"} <= hypertables
        assert aggregates == {"samples_1m", "samples_1h"}
        assert "policy_retention:samples" in jobs
        assert "policy_compression:samples" in jobs
        assert any(j.startswith("policy_refresh_continuous_aggregate") for j in jobs)
    finally:
        store.close()


def test_policies_follow_the_configuration(timescale_url):
    store = open_store(timescale_url, policy=backends.TimeSeriesPolicy(samples_retention_days=30,
                                                                        compress_after_days=None))
    store.close()
    store = open_store(timescale_url, policy=backends.TimeSeriesPolicy(samples_retention_days=30,
                                                                        compress_after_days=None))
    with store.engine.connect() as conn:
        config = conn.execute(text(
            "SELECT config->>'drop_after' FROM timescaledb_information.jobs "
            "WHERE proc_name = 'policy_retention' AND hypertable_name = 'samples'")).scalar()
        compression = conn.execute(text(
            "SELECT count(*) FROM timescaledb_information.jobs WHERE proc_name = 'policy_compression'")).scalar()
    store.close()
    assert config == "30 days"
    assert compression == 0


@pytest.mark.parametrize("built_for", ["timescaledb", "postgresql"])
def test_a_schema_without_its_backend_row_keeps_the_backend_it_was_built_for(timescale_url, built_for):
    """A schema whose oee_meta lacks the backend row (migrated outside migrate.upgrade) on a server that has
    TimescaleDB: its tables say what it was built for. Before, a plain one was taken for a new TimescaleDB
    database and open_store failed in apply_policies: 'relation "samples" is not a hypertable'."""
    from alembic import command

    engine = make_engine(timescale_url)
    try:
        if built_for == "timescaledb":
            with engine.begin() as conn:
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS timescaledb"))
        with engine.begin() as conn:
            command.upgrade(migrate._config(conn, built_for), "head")
            assert conn.execute(text("SELECT count(*) FROM oee_meta")).scalar() == 0
    finally:
        engine.dispose()
    store = open_store(timescale_url)
    try:
        assert store.backend_name == built_for
        with store.engine.connect() as conn:
            if built_for == "timescaledb":  # the policies were applied to its hypertables
                assert conn.execute(text("SELECT count(*) FROM timescaledb_information.jobs "
                                         "WHERE proc_name = 'policy_retention'")).scalar() == 1
            else:  # left plain: the extension was not created in it
                assert conn.execute(text("SELECT count(*) FROM pg_extension "
                                         "WHERE extname = 'timescaledb'")).scalar() == 0
    finally:
        store.close()


def test_a_batch_is_written_once_even_when_replayed(any_url):
    store = open_store(any_url)
    t0 = time.time() - 3600  # recent: retention must not touch it
    batch = Batch("b-1", samples=[(t0 + i, 7, float(i), None, 0, None) for i in range(100)],
                  states=[(1, t0, t0 + 50, "running", None, "P1")],
                  counts=[(1, t0, t0 + 60, "P1", 10, 9, 1)])
    assert store.write_batch(batch) is True
    assert store.write_batch(batch) is False  # as after a commit whose acknowledgement was lost
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM samples")).scalar() == 100
        assert conn.execute(text("SELECT total, good, reject FROM production_counts")).one() == (10, 9, 1)
        assert conn.execute(text("SELECT state FROM machine_states")).scalar() == "running"
    store.close()


def test_rollups_answer_the_same_on_every_backend(any_url):
    store = open_store(any_url)
    # 40 s into a minute, 14:40 into an hour, two hours ago: buckets cut the data, and it is recent enough that
    # TimescaleDB's retention job (which may run at any moment) leaves it alone.
    t0 = (time.time() // 3600) * 3600 - 7200 + 880.0
    # Tag 5 ramps 0..179 over three minutes, one sample a second.
    store.write_batch(Batch("ramp", samples=[(t0 + i, 5, float(i), None, 0, None) for i in range(180)]))
    store.write_batch(Batch("other", samples=[(t0 + i, 6, 100.0, None, 0, None) for i in range(180)]))
    if store.backend_name == "timescaledb":
        backends.refresh_continuous_aggregates(store.engine, t0, t0 + 180)
    else:
        store.refresh_rollups(t0, t0 + 180)
    minutes = tag_series(store, 5, t0 - 3600, t0 + 3600, "1m")
    assert [m["n"] for m in minutes] == [20, 60, 60, 40]
    first = minutes[0]
    assert (first["min"], first["max"], first["avg"]) == (0.0, 19.0, 9.5)
    assert minutes[1]["bucket"] == t0 + 20
    hours = tag_series(store, 5, t0 - 7200, t0 + 7200, "1h")
    assert len(hours) == 1 and hours[0]["n"] == 180
    assert hours[0]["avg"] == pytest.approx(89.5)
    assert (hours[0]["min"], hours[0]["max"]) == (0.0, 179.0)
    raw = tag_series(store, 5, t0, t0 + 10)
    assert [r["value"] for r in raw] == [float(i) for i in range(10)]
    store.close()


def test_a_slice_refresh_reads_its_tags_only_over_its_time(any_url):
    """The writer refreshes rollups a slice of tag ids at a time (db.writer): each tag's rows over the refreshed
    minutes, not every row those tags ever had. On SQLite the plan says so (a seek on tag_id = ? AND time > ?);
    the numbers are those of a refresh without the slice, tags outside it untouched."""
    store = open_store(any_url)
    if store.backend_name == "timescaledb":
        store.close()
        pytest.skip("TimescaleDB's continuous aggregates refresh themselves (tested above)")
    t0 = (time.time() // 3600) * 3600 - 7200 + 880.0
    store.write_batch(Batch("a", samples=[(t0 + i, tag, float(i + tag), None, 0, None)
                                          for i in range(180) for tag in (3, 5, 2004)]))
    statements = []

    def seen(_conn, _cursor, statement, parameters, _context, _many):
        statements.append((statement, parameters))
    from sqlalchemy import event
    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        store.refresh_rollups(t0, t0 + 180, (0, 2000))
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT tag_id, n, vmin, vmax FROM samples_1h ORDER BY tag_id")).all()
        assert [tuple(r) for r in rows] == [(3, 180, 3.0, 182.0), (5, 180, 5.0, 184.0)]  # 2004: another slice
        if store.backend_name == "sqlite":
            reads = [(st, p) for st, p in statements if " FROM samples" in st and "DELETE" not in st]
            assert reads and all(" IN (0,1,2,3," in st for st, _p in statements if "tag_id" in st)
            for st, params in statements:
                plan = " ".join(r[3] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + st, params).all())
                for table, column in (("samples", "time"), ("samples_1m", "bucket"), ("samples_1h", "bucket")):
                    if f" {table} " in f" {plan} ":
                        assert f"tag_id=? AND {column}>? AND {column}<?" in plan, (st[:80], plan)
    store.refresh_rollups(t0, t0 + 180)  # every tag, no slice: the same numbers for 3 and 5
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT tag_id, n, vmin, vmax FROM samples_1h ORDER BY tag_id")).all()
        assert [tuple(r) for r in rows] == [(3, 180, 3.0, 182.0), (5, 180, 5.0, 184.0), (2004, 180, 2004.0, 2183.0)]
    store.close()


def test_a_database_with_a_newer_schema_is_refused_untouched(any_url):
    store = open_store(any_url)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0999'"))
    store.close()
    with pytest.raises(migrate.SchemaTooNewError, match="0999.*newer"):
        open_store(any_url)
    engine = make_engine(any_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0999"
    engine.dispose()


@pytest.mark.parametrize("url, expected", [
    ("not a url", "malformed"),
    ("mysql://u:p@127.0.0.1/db", "not supported"),
    ("sqlite://", "in-memory"),
])
def test_bad_urls_are_refused_with_one_clear_line(url, expected):
    with pytest.raises(DatabaseConfigError, match=expected):
        make_engine(url)


def test_an_unreachable_database_names_the_url_without_its_password():
    port = free_port()  # nothing listens there
    started = time.monotonic()
    with pytest.raises(DatabaseConfigError) as info:
        make_engine(f"postgresql://plant:s3cret-pw@127.0.0.1:{port}/oee")
    message = str(info.value)
    assert time.monotonic() - started < 10
    assert f"127.0.0.1:{port}" in message and "***" in message
    assert "s3cret-pw" not in message
    assert "Check that the server is running" in message


def test_processes_starting_together_on_a_fresh_postgresql_database_all_start(pg_url):
    """A collector and web workers started at once on a new database: one migrates, the others wait for it (an
    advisory lock) and find the schema at head. Before the lock, two created alembic_version at the same moment
    and one died with UniqueViolation."""
    import subprocess
    import sys
    from pathlib import Path

    script = ("import sys, time; from db.store import open_store\n"
              "while time.time() < float(sys.argv[2]): time.sleep(0.001)\n"  # all start migrating at one moment
              "print(open_store(sys.argv[1]).schema_version)")
    at = time.time() + 3
    procs = [subprocess.Popen([sys.executable, "-c", script, pg_url, repr(at)], cwd=Path(__file__).parents[2],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = [p.communicate(timeout=60) + (p.returncode,) for p in procs]
    head = migrate.head_revision()
    assert [(out.strip(), code) for out, err, code in results] == [(head, 0)] * 4, [r[1][-500:] for r in results]
    assert migrate.current_revision(make_engine(pg_url)) == head


def test_count_rows_with_one_start_add_up_and_keep_the_later_end(any_url):
    """The parts read with a stop come as an instant row at the read where the counters last changed; should a
    minute's row start at that read too, the two add up and the minute keeps its end."""
    store = open_store(any_url)
    try:
        store.write_batch(Batch("a", counts=[(1, 1000.0, 1059.5, "P", 30, 29, 1)]))
        store.write_batch(Batch("b", counts=[(1, 1000.0, 1000.0, "P", 2, 2, 0)]))
        with store.engine.connect() as conn:
            (end, total, good), = conn.execute(text('SELECT "end", total, good FROM production_counts')).all()
        assert (backends.epoch_of(end), total, good) == (1059.5, 32, 31)
    finally:
        store.close()


def test_a_large_batch_lands_row_for_row(any_url):
    """SQLite inserts samples with multi-row statements of SQLITE_ROWS_PER_INSERT rows: a batch of two full
    statements and a part, with text values, reasons and None, must land whole and unchanged on every backend."""
    store = open_store(any_url)
    try:
        t0 = time.time() - 3600
        n = 2 * backends.SQLITE_ROWS_PER_INSERT + 123
        rows = [(t0 + i / 1000, 1 + i % 97, None if i % 11 == 0 else i * 0.5, "on" if i % 13 == 0 else None,
                 2 if i % 11 == 0 else 0, "timeout" if i % 11 == 0 else None) for i in range(n)]
        assert store.write_batch(Batch("big", samples=rows)) is True
        with store.engine.connect() as conn:
            got = conn.execute(text("SELECT tag_id, value, value_text, quality, reason FROM samples "
                                    "ORDER BY time, tag_id")).all()
        assert [tuple(r) for r in got] == [r[1:] for r in rows]
    finally:
        store.close()
