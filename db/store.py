"""The database as the rest of the app sees it: opened, migrated, and written one whole batch at a time."""
from __future__ import annotations

import logging
import os
import sqlite3
import time
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.engine import Engine

from db import backend as backends
from db import migrate
from db.engine import SQLITE_BUSY_TIMEOUT_MS, make_engine, safe_url
from db.spool import Batch

# KiB of page cache a SQLite write transaction may use: 50,000 tags' index leaves at 1 KiB pages and their parents
SQLITE_WRITE_CACHE_KIB = 65_536
# WAL size past which a commit is followed by a checkpoint that brings the WAL back to its start (_keep_wal_short)
SQLITE_WAL_RESTART_BYTES = 64 * 2**20
SQLITE_WAL_RESTART_WAIT_MS = 2_000
SQLITE_WAL_RESTART_BACKOFF_S = 30.0

log = logging.getLogger(__name__)


@dataclass
class Store:
    engine: Engine
    backend: backends.BackendInfo
    schema_version: str
    url: str  # with the password hidden
    policy: backends.TimeSeriesPolicy = field(default_factory=backends.TimeSeriesPolicy)
    _wal_restart_after: float = field(default=0.0, repr=False)  # monotonic: see _keep_wal_short

    @property
    def backend_name(self) -> str:
        return self.backend.name

    @property
    def keeps_rollups(self) -> bool:
        """Whether the app keeps samples_1m/samples_1h as tables, refreshed a slice of tags at a time; on
        TimescaleDB they are continuous aggregates, refreshed whole."""
        return self.backend.name != backends.TIMESCALEDB

    def rollups_follow(self, first_epoch: float) -> bool:
        """Whether rows from first_epoch on need a rollup refresh by the writer: always for the app's tables; on
        TimescaleDB only rows older than its refresh policies reach (backend.LATE_FOR_POLICIES_S)."""
        return self.keeps_rollups or first_epoch < time.time() - backends.LATE_FOR_POLICIES_S

    def write_batch(self, batch: Batch) -> bool:
        """Commit a batch in one transaction. False when the ledger says it was already committed.

        The ledger row is written in the same transaction as the data, so a batch whose commit was in doubt
        (the connection died during COMMIT) is recognised on replay and skipped: exactly once.
        """
        name = self.backend.name
        with self.engine.connect() as conn:
            # SQLite: a page cache that holds every page the commit touches (its default is 2 MiB), for this commit
            # only: a commit of several cycles touches each tag's index page once per cycle, and an evicted page is
            # read again (25,000 tags x 5 cycles in one commit, scratch: 1.07-1.18 s -> 0.98-1.02 s).
            raw = conn.connection.driver_connection if name == backends.SQLITE else None
            if raw is not None:
                if SQLITE_WRITE_CACHE_KIB:
                    raw.execute(f"PRAGMA cache_size=-{SQLITE_WRITE_CACHE_KIB}")
                if SQLITE_WAL_RESTART_BYTES:  # _keep_wal_short checkpoints after the commit instead
                    raw.execute("PRAGMA wal_autocheckpoint=0")
            try:
                with conn.begin():
                    seen = conn.execute(text("SELECT 1 FROM writer_batches WHERE batch_id = :b"),
                                        {"b": batch.batch_id})
                    if seen.first() is not None:
                        return False
                    backends.insert_samples(conn, name, batch.samples)
                    backends.upsert_states(conn, name, batch.states)
                    backends.add_counts(conn, name, batch.counts)
                    backends.upsert_faults(conn, name, batch.faults)
                    conn.execute(text("INSERT INTO writer_batches (batch_id, committed_at) VALUES (:b, :t)"),
                                 {"b": batch.batch_id, "t": backends.db_time(name, time.time())})
            finally:
                if raw is not None:
                    raw.execute("PRAGMA cache_size=-2000")  # SQLite's defaults again: the connection is pooled
                    raw.execute("PRAGMA wal_autocheckpoint=1000")
            if raw is not None:
                self._keep_wal_short(conn)
        return True

    def _keep_wal_short(self, conn) -> None:
        """SQLite: past SQLITE_WAL_RESTART_BYTES, a checkpoint that waits for readers and the other writers and
        lets the next commit write the WAL from its start again. SQLite's own checkpoints after each commit never
        wait: with two collector processes committing in turn and pages being read, the WAL never came back to its
        start and grew without bound (bench.collect at 50,000 tags: 3-7 GiB in a minute), and every page read
        searches the WAL's index, so reads and commits slowed as it grew. The writers' commits make no checkpoint
        of their own (wal_autocheckpoint=0 in write_batch): one writer's running checkpoint made the other's
        return at once without one (tests/storage/test_sqlite_pages.py)."""
        path = self.engine.url.database
        if not SQLITE_WAL_RESTART_BYTES or not path or path == ":memory:":
            return
        try:
            size = os.path.getsize(f"{path}-wal")
        except OSError:
            return
        if size < SQLITE_WAL_RESTART_BYTES or time.monotonic() < self._wal_restart_after:
            return
        raw = conn.connection.driver_connection
        # While it waits, other writers wait too: at most 2 s of it (a long report may keep the WAL in use)
        started = time.monotonic()
        try:
            raw.execute(f"PRAGMA busy_timeout={SQLITE_WAL_RESTART_WAIT_MS}")
            try:
                busy, _frames, _done = raw.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
            finally:
                raw.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        except sqlite3.Error as exc:  # the batch is committed: a failed checkpoint must not make it look unwritten
            log.warning("SQLite WAL checkpoint failed: %s; the next try in %.0f s", exc, SQLITE_WAL_RESTART_BACKOFF_S)
            self._wal_restart_after = time.monotonic() + SQLITE_WAL_RESTART_BACKOFF_S
            return
        # Busy at once: another connection's checkpoint is running, which does the work. Busy after the whole wait:
        # a reader held on (a long report): not again for a while, not at every commit.
        if busy and time.monotonic() - started >= 0.9 * SQLITE_WAL_RESTART_WAIT_MS / 1000:
            self._wal_restart_after = time.monotonic() + SQLITE_WAL_RESTART_BACKOFF_S
            log.info("SQLite WAL at %d MiB: readers held it past %d ms; the next try in %.0f s", size >> 20,
                     SQLITE_WAL_RESTART_WAIT_MS, SQLITE_WAL_RESTART_BACKOFF_S)

    def prune_ledger(self, older_than_s: float = 7 * 86400) -> None:
        with self.engine.begin() as conn:
            conn.execute(text("DELETE FROM writer_batches WHERE committed_at < :t"),
                         {"t": backends.db_time(self.backend.name, time.time() - older_than_s)})

    def refresh_rollups(self, since: float, until: float, tag_ids: tuple[int, int] | None = None) -> None:
        if self.backend.name == backends.TIMESCALEDB:  # every tag: a continuous aggregate refreshes whole
            backends.refresh_late_continuous_aggregates(self.engine, since, until, time.time())
            return
        with self.engine.begin() as conn:
            backends.refresh_rollups(conn, self.backend.name, since, until, tag_ids)

    def timescaledb_jobs(self) -> dict:
        """Our TimescaleDB policies and their last runs (db.backend.read_jobs); no jobs on other backends."""
        return backends.read_jobs(self.engine, self.backend.name)

    def close(self) -> None:
        self.engine.dispose()


def open_store(url: str, *, timescaledb: str = "auto",
               policy: backends.TimeSeriesPolicy | None = None) -> Store:
    """Connect, pick the backend, migrate, apply policies. Raises DatabaseConfigError or SchemaTooNewError."""
    engine = make_engine(url)
    try:
        info = backends.detect(engine, timescaledb)
        if info.name == backends.POSTGRESQL and info.detail:
            log.warning("%s", info.detail)  # said once, at start
        version = migrate.upgrade(engine, info.name)
        policy = policy or backends.TimeSeriesPolicy()
        backends.apply_policies(engine, info.name, policy)
    except Exception:
        engine.dispose()
        raise
    log.info("database %s: %s, schema %s", safe_url(url), info.name, version)
    return Store(engine, info, version, safe_url(url), policy)


def open_store_for_command(url: str, *, timescaledb: str = "auto") -> Store | None:
    """open_store() for a command-line tool (create-admin, grafana-role, oee-summary): None once the reason it
    cannot be used is printed as one `error:` line, for the tool to exit with 2."""
    import sys

    from db.engine import DatabaseConfigError

    try:
        return open_store(url, timescaledb=timescaledb)
    except (DatabaseConfigError, migrate.SchemaTooNewError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
