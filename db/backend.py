"""Everything that differs between SQLite, PostgreSQL and PostgreSQL with TimescaleDB, in one place.

The rest of the app asks this module for: which backend a database is, the time-series objects for it (hypertables,
policies and continuous aggregates, or plain tables with app-maintained rollups), bulk writes, and the SQL
expression that buckets time. Queries elsewhere read `samples_1m` and `samples_1h` by name on every backend: a
continuous aggregate on TimescaleDB, a table the app refreshes elsewhere.
"""
from __future__ import annotations

import logging
import math
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import bindparam, literal_column, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

log = logging.getLogger(__name__)
UTC = timezone.utc

SQLITE, POSTGRESQL, TIMESCALEDB = "sqlite", "postgresql", "timescaledb"
ROLLUPS = (("samples_1m", 60), ("samples_1h", 3600))  # (relation, bucket width in seconds)
TIME_SERIES_TABLES = ("samples", "machine_states", "production_counts")


@dataclass(frozen=True)
class BackendInfo:
    name: str  # sqlite | postgresql | timescaledb
    detail: str = ""  # why TimescaleDB is or is not used, for the log and /healthz
    timescaledb_version: str | None = None


@dataclass(frozen=True)
class TimeSeriesPolicy:
    """Retention and compression for the time series; None disables a policy."""

    samples_retention_days: int | None = 365
    states_retention_days: int | None = None  # states and counts are small and are what OEE history is made of
    compress_after_days: int | None = 7


# --- Which backend --------------------------------------------------------------------------------------------


def _stored_backend(engine: Engine) -> str | None:
    """The backend a PostgreSQL database was built for, or None for a new one: as oee_meta remembers it, or, for a
    schema without that row (migrated outside migrate.upgrade, which writes it), as its samples table shows (a
    hypertable only on TimescaleDB). Without this, such a plain schema on a server with TimescaleDB was taken for
    a new TimescaleDB database and apply_policies failed on it ("samples" is not a hypertable)."""
    try:
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT value FROM oee_meta WHERE key = 'backend'")).scalar()
            if stored is not None:
                return stored
            if conn.execute(text("SELECT to_regclass('samples')")).scalar() is None:
                return None
            if _timescaledb_version_on(conn) is None:
                return POSTGRESQL  # hypertables cannot exist without the extension
            hypertable = conn.execute(text(
                "SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = 'samples'")).scalar()
            return TIMESCALEDB if hypertable else POSTGRESQL
    except SQLAlchemyError:
        return None  # a new database


def _timescaledb_version_on(conn: Connection) -> str | None:
    return conn.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")).scalar()


def _timescaledb_version(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return _timescaledb_version_on(conn)


def detect(engine: Engine, timescaledb: str = "auto") -> BackendInfo:
    """Decide the backend. timescaledb: 'auto' (use it when it can be created), 'off', or 'require'.

    A database keeps the backend it was built for: one created on plain PostgreSQL stays plain even if the
    extension appears later (its rollups are tables, not continuous aggregates).
    """
    if engine.dialect.name == "sqlite":
        return BackendInfo(SQLITE)
    stored = _stored_backend(engine)
    if stored == POSTGRESQL:
        if timescaledb == "require":
            raise RuntimeError("this database was set up for plain PostgreSQL; TimescaleDB cannot be required of it")
        return BackendInfo(POSTGRESQL, "database was created without TimescaleDB")
    if timescaledb == "off":
        if stored == TIMESCALEDB:
            raise RuntimeError("this database was set up with TimescaleDB; it cannot be used with TimescaleDB off")
        return BackendInfo(POSTGRESQL, "TimescaleDB turned off in configuration")
    version = _timescaledb_version(engine)
    if version is None:
        # CREATE EXTENSION needs the library preloaded; without it the server answers FATAL and drops the
        # connection, so this runs on a connection of its own and the pool is refreshed afterwards.
        try:
            with engine.connect() as conn:
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS timescaledb"))
                conn.commit()
            version = _timescaledb_version(engine)
        except (DBAPIError, SQLAlchemyError) as exc:
            engine.dispose()
            reason = str(getattr(exc, "orig", exc) or exc).strip().splitlines()[0]
            if stored == TIMESCALEDB or timescaledb == "require":
                raise RuntimeError(f"TimescaleDB is required but cannot be loaded: {reason}") from None
            return BackendInfo(POSTGRESQL, f"TimescaleDB not available ({reason}); running on plain PostgreSQL")
    return BackendInfo(TIMESCALEDB, f"TimescaleDB {version}", version)


def remember_backend(conn: Connection, backend: str) -> None:
    conn.execute(text("DELETE FROM oee_meta WHERE key = 'backend'"))
    conn.execute(text("INSERT INTO oee_meta (key, value) VALUES ('backend', :b)"), {"b": backend})


# --- Time-series objects (called from the migrations) ---------------------------------------------------------


def create_time_series_objects(conn: Connection, backend: str) -> None:
    if backend == TIMESCALEDB:
        for table, column in (("samples", "time"), ("machine_states", "start"), ("production_counts", "start")):
            conn.execute(text(
                f"SELECT create_hypertable('{table}', by_range('{column}', INTERVAL '1 day'), "
                "migrate_data => true, if_not_exists => true)"
            ))
        conn.execute(text(
            "ALTER TABLE samples SET (timescaledb.compress, timescaledb.compress_segmentby = 'tag_id', "
            "timescaledb.compress_orderby = 'time DESC')"
        ))
        conn.execute(text(
            "CREATE MATERIALIZED VIEW samples_1m WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS "
            "SELECT time_bucket(INTERVAL '1 minute', time) AS bucket, tag_id, count(value) AS n, "
            "avg(value) AS vavg, min(value) AS vmin, max(value) AS vmax "
            "FROM samples GROUP BY 1, 2 WITH NO DATA"
        ))
        conn.execute(text(
            "CREATE MATERIALIZED VIEW samples_1h WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS "
            "SELECT time_bucket(INTERVAL '1 hour', bucket) AS bucket, tag_id, sum(n) AS n, "
            "sum(vavg * n) / nullif(sum(n), 0) AS vavg, min(vmin) AS vmin, max(vmax) AS vmax "
            "FROM samples_1m GROUP BY 1, 2 WITH NO DATA"
        ))
        conn.execute(text(
            "SELECT add_continuous_aggregate_policy('samples_1m', start_offset => INTERVAL '3 days', "
            "end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute')"
        ))
        conn.execute(text(
            "SELECT add_continuous_aggregate_policy('samples_1h', start_offset => INTERVAL '7 days', "
            "end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '10 minutes')"
        ))
    else:
        time_type = "REAL" if backend == SQLITE else "TIMESTAMPTZ"
        for name, _width in ROLLUPS:
            conn.execute(text(
                f"CREATE TABLE {name} (bucket {time_type} NOT NULL, tag_id INTEGER NOT NULL, n BIGINT NOT NULL, "
                f"vavg DOUBLE PRECISION, vmin DOUBLE PRECISION, vmax DOUBLE PRECISION, "
                f"PRIMARY KEY (tag_id, bucket))"
            ))


def apply_policies(engine: Engine, backend: str, policy: TimeSeriesPolicy) -> None:
    """Retention and compression as configured now: set on every start, so a changed setting takes effect."""
    if backend != TIMESCALEDB:
        return
    with engine.begin() as conn:
        for table in TIME_SERIES_TABLES:
            conn.execute(text(f"SELECT remove_retention_policy('{table}', if_exists => true)"))
        conn.execute(text("SELECT remove_compression_policy('samples', if_exists => true)"))
        retention = {"samples": policy.samples_retention_days, "machine_states": policy.states_retention_days,
                     "production_counts": policy.states_retention_days}
        for table, days in retention.items():
            if days:
                conn.execute(text(f"SELECT add_retention_policy('{table}', INTERVAL '{int(days)} days')"))
        if policy.compress_after_days:
            conn.execute(text(
                f"SELECT add_compression_policy('samples', INTERVAL '{int(policy.compress_after_days)} days')"))


def apply_retention_without_timescaledb(conn: Connection, backend: str, policy: TimeSeriesPolicy, now: float) -> int:
    """Plain PostgreSQL and SQLite: delete what retention would have dropped. Returns rows deleted."""
    if backend == TIMESCALEDB or not policy.samples_retention_days:
        return 0
    cutoff = db_time(backend, now - policy.samples_retention_days * 86400)
    deleted = conn.execute(text("DELETE FROM samples WHERE time < :c"), {"c": cutoff}).rowcount or 0
    for name, _ in ROLLUPS:
        conn.execute(text(f"DELETE FROM {name} WHERE bucket < :c"), {"c": cutoff})
    return deleted


# --- Time values ----------------------------------------------------------------------------------------------


def db_time(backend: str, epoch: float | None):
    """An epoch-seconds float as the backend stores it."""
    if epoch is None:
        return None
    if backend == SQLITE:
        return float(epoch)
    return datetime.fromtimestamp(epoch, UTC)


def epoch_of(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def ids_in(column, ids):
    """column IN (these integer ids), the numbers written into the statement: a bound parameter per machine
    (psycopg's scan for placeholders, SQLAlchemy's expansion, even its literal rendering) cost ~2-3 ms of CPU per
    query at 500 machines, and a report runs several. An empty list matches nothing."""
    listed = ",".join(str(int(x)) for x in ids) or "NULL"
    return column.op("IN")(literal_column(f"({listed})"))


def bucket_sql(backend: str, column: str, width_s: int) -> str:
    """SQL for the start of the width_s-second bucket holding `column`."""
    if backend == SQLITE:
        return f"(CAST({column} / {width_s} AS INTEGER) * {width_s})"
    if backend == TIMESCALEDB:
        return f"time_bucket(INTERVAL '{width_s} seconds', {column})"
    return f"date_bin(INTERVAL '{width_s} seconds', {column}, TIMESTAMPTZ '2000-01-01 00:00:00+00')"


# --- Bulk writes ----------------------------------------------------------------------------------------------

SAMPLE_COLUMNS = "time, tag_id, value, value_text, quality, reason"
SQLITE_ROWS_PER_INSERT = 5000


def insert_samples(conn: Connection, backend: str, rows: list[tuple]) -> None:
    """rows: (epoch_s, tag_id, value, value_text, quality, reason). COPY on PostgreSQL, multi-row INSERTs on
    SQLite."""
    if not rows:
        return
    if backend == SQLITE:
        _insert_samples_sqlite(conn.connection.driver_connection, rows)
        return
    raw = conn.connection.driver_connection  # psycopg 3 connection inside SQLAlchemy's transaction
    fromts = datetime.fromtimestamp
    with raw.cursor() as cur:
        with cur.copy(f"COPY samples ({SAMPLE_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["timestamptz", "int4", "float8", "text", "int2", "text"])
            write = copy.write_row
            # The rows of one poll cycle share their time: one datetime per run of equal times, not one per row
            # (client CPU of a 50,000-row COPY, 25 cycles of 2,000 rows: 30 -> 15 ms).
            last_t = when = None
            for t, tag_id, value, value_text, quality, reason in rows:
                if t != last_t:
                    last_t, when = t, fromts(t, UTC)
                write((when, tag_id, value, value_text, quality, reason))


def _insert_samples_sqlite(raw, rows: list[tuple]) -> None:
    """Multi-row INSERT statements of up to SQLITE_ROWS_PER_INSERT rows rather than executemany: executemany runs
    one sqlite3_step per row and Python's sqlite3 lets go of the GIL and takes it back around each step, so with a
    dozen busy poller threads a 20,000-row batch waited seconds for the GIL for 50 ms of work (bench.collect:
    commits up to 3.5 s). One statement binds its values with the GIL held and inserts its rows in one step."""
    width = len(rows[0])
    try:
        limit = raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    except (AttributeError, sqlite3.Error):  # Python before 3.11: SQLite's old default
        limit = 999
    chunk = max(1, min(SQLITE_ROWS_PER_INSERT, limit // width))
    head = f"INSERT INTO samples ({SAMPLE_COLUMNS}) VALUES "
    one = "(" + ",".join("?" * width) + ")"
    full = head + ",".join([one] * chunk)
    for k in range(0, len(rows), chunk):
        part = rows[k:k + chunk]
        sql = full if len(part) == chunk else head + ",".join([one] * len(part))
        raw.execute(sql, [x for row in part for x in row])


def upsert_states(conn: Connection, backend: str, rows: list[tuple]) -> None:
    """rows: (machine_id, start, end|None, state, fault_code, product_code); an open interval is closed later."""
    if not rows:
        return
    conn.execute(text(
        'INSERT INTO machine_states (machine_id, start, "end", state, fault_code, product_code) '
        "VALUES (:m, :s, :e, :st, :f, :p) ON CONFLICT (machine_id, start) DO UPDATE SET "
        '"end" = excluded."end", state = excluded.state, fault_code = excluded.fault_code, '
        "product_code = excluded.product_code"
    ), [dict(m=m, s=db_time(backend, s), e=db_time(backend, e), st=st, f=f, p=p) for m, s, e, st, f, p in rows])


def upsert_faults(conn: Connection, backend: str, rows: list[tuple]) -> None:
    """rows: (machine_id, code|None, start, end|None); a later row with the same start closes the fault. Who
    acknowledged it is never overwritten here."""
    if not rows:
        return
    conn.execute(text(
        'INSERT INTO faults (machine_id, code, start, "end") VALUES (:m, :c, :s, :e) '
        'ON CONFLICT (machine_id, start) DO UPDATE SET "end" = excluded."end", code = excluded.code'
    ), [dict(m=m, c=c, s=db_time(backend, s), e=db_time(backend, e)) for m, c, s, e in rows])


def add_counts(conn: Connection, backend: str, rows: list[tuple]) -> None:
    """rows: (machine_id, start, end, product_code, total, good, reject) increments; same start adds up, and the
    row ends at the later of the two ends (an instant row of parts read with a stop never shortens a minute's)."""
    if not rows:
        return
    conn.execute(text(
        'INSERT INTO production_counts (machine_id, start, "end", product_code, total, good, reject) '
        "VALUES (:m, :s, :e, :p, :t, :g, :r) ON CONFLICT (machine_id, start) DO UPDATE SET "
        '"end" = CASE WHEN excluded."end" > production_counts."end" THEN excluded."end" '
        'ELSE production_counts."end" END, total = production_counts.total + excluded.total, '
        "good = production_counts.good + excluded.good, reject = production_counts.reject + excluded.reject"
    ), [dict(m=m, s=db_time(backend, s), e=db_time(backend, e), p=p, t=t, g=g, r=r)
        for m, s, e, p, t, g, r in rows])


# --- App-maintained rollups -----------------------------------------------------------------------------------


def refresh_rollups(conn: Connection, backend: str, since_epoch: float, until_epoch: float,
                    tag_ids: tuple[int, int] | None = None) -> None:
    """Recompute the 1-minute and 1-hour rollups for buckets overlapping [since, until), in SQL; with tag_ids
    (lo, hi) only the tags lo <= tag_id < hi (the writer refreshes a plant in slices, committing rows between).

    TimescaleDB keeps its continuous aggregates itself (and answers real-time for the newest buckets).

    The slice's tags are listed one by one (tag_id IN (lo, lo + 1, ...)): with the index on (tag_id, time), a range
    of tag ids and a range of times let SQLite and PostgreSQL seek only by tag id and read every row those tags
    ever had (a day at 1 Hz: 86,400 index entries a tag for a minute's refresh), while one tag id at a time they
    seek to the time range of each.
    """
    if backend == TIMESCALEDB:
        return
    tags = ""
    if tag_ids:
        tags = f" AND tag_id IN ({','.join(map(str, range(int(tag_ids[0]), int(tag_ids[1])))) or 'NULL'})"
    for name, width in ROLLUPS:
        start = math.floor(since_epoch / width) * width
        args = {"lo": db_time(backend, start), "hi": db_time(backend, until_epoch)}
        conn.execute(text(f"DELETE FROM {name} WHERE bucket >= :lo AND bucket < :hi{tags}"), args)
        if name == "samples_1m":
            conn.execute(text(
                f"INSERT INTO {name} (bucket, tag_id, n, vavg, vmin, vmax) "
                f"SELECT {bucket_sql(backend, 'time', width)} AS b, tag_id, count(value), avg(value), "
                f"min(value), max(value) FROM samples WHERE time >= :lo AND time < :hi{tags} GROUP BY 1, 2"
            ), args)
        else:
            conn.execute(text(
                f"INSERT INTO {name} (bucket, tag_id, n, vavg, vmin, vmax) "
                f"SELECT {bucket_sql(backend, 'bucket', width)} AS b, tag_id, sum(n), "
                "sum(vavg * n) / nullif(sum(n), 0), min(vmin), max(vmax) FROM samples_1m "
                f"WHERE bucket >= :lo AND bucket < :hi{tags} GROUP BY 1, 2"
            ), args)


# TimescaleDB's refresh policies (create_time_series_objects) keep the newest buckets: samples_1m from 3 days to 1
# minute back, samples_1h from 7 days to 1 hour back, and real-time aggregation answers past their watermarks.
# Rows written later than this behind the clock (a spool replayed after an outage) land below a watermark, where
# only materialized buckets are read: the writer refreshes the aggregates over them itself, up to this far back.
LATE_FOR_POLICIES_S = 3600


def refresh_late_continuous_aggregates(engine: Engine, since_epoch: float, until_epoch: float,
                                       now: float) -> None:
    """Refresh both continuous aggregates over the late part of [since, until): what is older than
    LATE_FOR_POLICIES_S, to a whole hour. Never nearer the present than the policies go, so no watermark moves
    past theirs (refresh_continuous_aggregates widens to whole hours)."""
    end = min(until_epoch, math.floor((now - LATE_FOR_POLICIES_S) / 3600) * 3600)
    if end > since_epoch:
        refresh_continuous_aggregates(engine, since_epoch, end)


REFRESH_ATTEMPTS = 8


def refresh_continuous_aggregates(engine: Engine, since_epoch: float, until_epoch: float) -> None:
    """Foreground refresh (tests, and after a replay of old data). PostgreSQL 15.19+ fails background jobs."""
    start = datetime.fromtimestamp(math.floor(since_epoch / 3600) * 3600, UTC)
    end = datetime.fromtimestamp(math.ceil(until_epoch / 3600) * 3600, UTC)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for name in ("samples_1m", "samples_1h"):
            # A policy job refreshing the same window at that moment makes TimescaleDB refuse ("due to a
            # concurrent refresh", SQLSTATE 55P03): wait for it a little and try again rather than fail.
            for attempt in range(REFRESH_ATTEMPTS):
                try:
                    conn.execute(text(f"CALL refresh_continuous_aggregate('{name}', :s, :e)"), {"s": start, "e": end})
                    break
                except OperationalError as exc:
                    if getattr(exc.orig, "sqlstate", None) != "55P03" or attempt == REFRESH_ATTEMPTS - 1:
                        raise
                    time.sleep(0.2 * (attempt + 1))


# --- TimescaleDB's background jobs ----------------------------------------------------------------------------

# Our policies (retention, compression, continuous aggregate refresh) as timescaledb_information.jobs lists them.
POLICY_PROCS = ("policy_retention", "policy_compression", "policy_refresh_continuous_aggregate")
# job_stats says '-infinity' for a time that has not happened (last_successful_finish of a job that never
# succeeded: every job on PostgreSQL 15.19+), which psycopg cannot turn into a datetime: read as NULL.
JOB_STATS_SQL = text(
    "SELECT j.job_id, j.proc_name, coalesce(c.view_name, j.hypertable_name) AS hypertable, j.scheduled, "
    "s.last_run_status, "
    + ", ".join(f"CASE WHEN isfinite(s.{c}) THEN s.{c} END AS {c}"
                for c in ("last_run_started_at", "last_successful_finish", "next_start"))
    + ", s.total_runs, s.total_failures "
    "FROM timescaledb_information.jobs j "
    "LEFT JOIN timescaledb_information.job_stats s ON s.job_id = j.job_id "
    "LEFT JOIN timescaledb_information.continuous_aggregates c "
    "  ON c.materialization_hypertable_schema = j.hypertable_schema "
    " AND c.materialization_hypertable_name = j.hypertable_name "
    "WHERE j.proc_name IN :procs ORDER BY j.job_id"
).bindparams(bindparam("procs", expanding=True))
JOB_ERRORS_SQL = text(
    "SELECT DISTINCT ON (job_id) job_id, sqlerrcode, err_message FROM timescaledb_information.job_errors "
    "WHERE job_id IN :ids ORDER BY job_id, finish_time DESC"
).bindparams(bindparam("ids", expanding=True))
NO_JOBS = {"sqlite": "no TimescaleDB jobs (SQLite)", "postgresql": "no TimescaleDB jobs (plain PostgreSQL: the "
                                                                   "writer keeps the rollups and the retention)"}


def _job_name(proc: str) -> str:
    return {"policy_retention": "retention", "policy_compression": "compression",
            "policy_refresh_continuous_aggregate": "refresh"}.get(proc, proc)


def judge_jobs(stats: list[dict], errors: dict[int, dict]) -> list[dict]:
    """Rows shaped like timescaledb_information.jobs joined with job_stats (job_id, proc_name, hypertable,
    scheduled, last_run_status, last_run_started_at, last_successful_finish, next_start, total_runs,
    total_failures) and the newest job_errors row per job (sqlerrcode, err_message) -> one record per job:
    last_run_ok is True, False (its last run failed: a problem, with the error when job_errors has it) or None
    (it has not run yet)."""
    out = []
    for row in stats:
        status = row.get("last_run_status")
        ok = None if status in (None, "") else status == "Success"
        error = None
        if ok is False:
            found = errors.get(row["job_id"]) or {}
            error = (f"{found.get('err_message')} (SQLSTATE {found.get('sqlerrcode')})" if found.get("err_message")
                     else "its last run failed (timescaledb_information.job_errors has no entry readable here)")
        out.append({
            "job_id": row["job_id"], "job": _job_name(row.get("proc_name") or ""),
            "hypertable": row.get("hypertable"), "scheduled": bool(row.get("scheduled", True)),
            "last_run_ok": ok, "last_run_status": status, "error": error,
            "total_runs": int(row.get("total_runs") or 0), "total_failures": int(row.get("total_failures") or 0),
            "last_run_started_at": epoch_of(row.get("last_run_started_at")),
            "last_successful_finish": epoch_of(row.get("last_successful_finish")),
            "next_start": epoch_of(row.get("next_start")),
        })
    return out


def read_jobs(engine: Engine, backend: str) -> dict:
    """Our TimescaleDB policies and how their last runs went: {"detail", "jobs": [judge_jobs records]}.
    Raises what the database raises (the caller says so once and tries again later)."""
    if backend != TIMESCALEDB:
        return {"detail": NO_JOBS.get(backend, "no TimescaleDB jobs"), "jobs": []}
    with engine.connect() as conn:
        stats = [dict(r._mapping) for r in conn.execute(JOB_STATS_SQL, {"procs": list(POLICY_PROCS)})]
        failed = [r["job_id"] for r in stats if r.get("last_run_status") == "Failed"]
        errors: dict[int, dict] = {}
        detail = f"{len(stats)} TimescaleDB jobs watched"
        if failed:
            try:
                with conn.begin_nested():  # a refusal must not end the transaction of the read above
                    errors = {r.job_id: dict(r._mapping) for r in conn.execute(JOB_ERRORS_SQL, {"ids": failed})}
            except SQLAlchemyError as exc:
                reason = str(getattr(exc, "orig", exc) or exc).strip().splitlines()[0]
                detail += f"; job_errors not readable ({reason})"
    return {"detail": detail, "jobs": judge_jobs(stats, errors)}
