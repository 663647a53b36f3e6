"""The database as the rest of the app sees it: opened, migrated, and written one whole batch at a time."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.engine import Engine

from db import backend as backends
from db import migrate
from db.engine import make_engine, safe_url
from db.spool import Batch

log = logging.getLogger(__name__)


@dataclass
class Store:
    engine: Engine
    backend: backends.BackendInfo
    schema_version: str
    url: str  # with the password hidden
    policy: backends.TimeSeriesPolicy = field(default_factory=backends.TimeSeriesPolicy)

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
        with self.engine.begin() as conn:
            seen = conn.execute(text("SELECT 1 FROM writer_batches WHERE batch_id = :b"), {"b": batch.batch_id})
            if seen.first() is not None:
                return False
            backends.insert_samples(conn, name, batch.samples)
            backends.upsert_states(conn, name, batch.states)
            backends.add_counts(conn, name, batch.counts)
            backends.upsert_faults(conn, name, batch.faults)
            conn.execute(text("INSERT INTO writer_batches (batch_id, committed_at) VALUES (:b, :t)"),
                         {"b": batch.batch_id, "t": backends.db_time(name, time.time())})
        return True

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
