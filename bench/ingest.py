"""Ingest benchmark: samples/s sustained by the writer, beside a raw baseline measured in the same run.

    python -m bench.ingest [--rows 500000] [--repeat 3] [--backends sqlite,postgresql,timescaledb]

For each backend, the same rows go into the app's `samples` table (same indexes) two ways:
  baseline  the plainest fast path from Python: psycopg COPY (binary) or sqlite3 executemany in 10,000-row batches,
            all rows in one transaction, no queue, no ledger;
  writer    the app's path: collectors' cycles of 1,000 rows through Writer.submit_samples, batched by the writer
            thread, committed with the batch ledger; timed from the first submit until flush() sees it all written.
PostgreSQL is a database made for the run on 127.0.0.1:5432 (or --pg-url); TimescaleDB is a private cluster that
preloads the extension, skipped (and said so) when it is not installed. Medians of --repeat runs are reported.
"""
from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402
from sqlalchemy import text  # noqa: E402

from db.spool import Spool  # noqa: E402
from db.store import open_store  # noqa: E402
from db.writer import Writer  # noqa: E402

from bench.machine import machine_description  # noqa: E402  (the benches import it from here too)

UTC = timezone.utc


def make_rows(n: int, tags: int = 1000) -> list[tuple]:
    t0 = time.time() - n / tags  # one value per tag per second, ending now
    return [(t0 + (i // tags), i % tags, float(i % 997) * 0.5, None, 0, None) for i in range(n)]


def truncate(store) -> None:
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM samples"))
        conn.execute(text("DELETE FROM writer_batches"))


def count(store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM samples")).scalar()


def baseline(store, url: str, rows: list[tuple]) -> float:
    truncate(store)
    started = time.perf_counter()
    if store.backend_name == "sqlite":
        path = url.split("sqlite:///", 1)[1]
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        for i in range(0, len(rows), 10_000):
            conn.executemany("INSERT INTO samples (time, tag_id, value, value_text, quality, reason) VALUES (?,?,?,?,?,?)",
                             rows[i:i + 10_000])
        conn.commit()
        conn.close()
    else:
        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
            with conn.cursor() as cur, cur.copy(
                    "COPY samples (time, tag_id, value, value_text, quality, reason) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["timestamptz", "int4", "float8", "text", "int2", "text"])
                for t, tag, v, vt, q, r in rows:
                    copy.write_row((datetime.fromtimestamp(t, UTC), tag, v, vt, q, r))
    elapsed = time.perf_counter() - started
    assert count(store) == len(rows)
    return len(rows) / elapsed


def through_writer(store, rows: list[tuple], cycle: int = 1000) -> float:
    truncate(store)
    with tempfile.TemporaryDirectory() as spool_dir:
        writer = Writer(store, Spool(spool_dir), max_queue_rows=len(rows) + 1, batch_rows=20_000,
                        commit_interval_s=0.5, rollup_interval_s=3600)
        writer.start()
        started = time.perf_counter()
        for i in range(0, len(rows), cycle):
            writer.submit_samples(rows[i:i + cycle])
        if not writer.flush(600):
            raise RuntimeError(f"writer did not finish: {writer.stats()}")
        elapsed = time.perf_counter() - started
        stats = writer.stats()
        writer.stop()
    assert stats["dropped_rows"] == 0 and count(store) == len(rows)
    return len(rows) / elapsed


def run_backend(label: str, url: str, rows: list[tuple], repeat: int) -> dict:
    store = open_store(url)
    try:
        base = [baseline(store, url if label != "sqlite" else url, rows) for _ in range(repeat)]
        app = [through_writer(store, rows) for _ in range(repeat)]
    finally:
        truncate(store)
        store.close()
    return {"backend": store.backend_name, "baseline": base, "writer": app}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgresql,timescaledb")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    wanted = args.backends.split(",")
    rows = make_rows(args.rows)
    print(f"machine: {machine_description()}")
    print(f"rows per run: {args.rows:,} (1,000 tags), runs: {args.repeat}, figures are medians\n")
    results = []
    if "sqlite" in wanted:
        with tempfile.TemporaryDirectory() as d:
            results.append(run_backend("sqlite", f"sqlite:///{d}/bench.sqlite3", rows, args.repeat))
    if "postgresql" in wanted:
        name = f"oee_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.pg_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
            version = admin.execute("SHOW server_version").fetchone()[0]
        print(f"PostgreSQL {version} at {args.pg_url.rsplit('/', 1)[0]}")
        try:
            results.append(run_backend("postgresql", f"{args.pg_url.rsplit('/', 1)[0]}/{name}", rows, args.repeat))
        finally:
            with psycopg.connect(args.pg_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if "timescaledb" in wanted:
        from tests.support.pgcluster import PgCluster, timescaledb_installed

        if not timescaledb_installed():
            print("TimescaleDB: SKIPPED, the extension is not installed on this machine")
        else:
            with PgCluster(preload_timescaledb=True) as cluster:
                url = cluster.create_database("bench")
                print(f"TimescaleDB: private cluster on 127.0.0.1:{cluster.port} (fsync off in both paths)")
                results.append(run_backend("timescaledb", url, rows, args.repeat))
    print(f"\n{'backend':<12} {'baseline rows/s':>16} {'writer rows/s':>14} {'writer/baseline':>16}")
    for r in results:
        b, w = statistics.median(r["baseline"]), statistics.median(r["writer"])
        print(f"{r['backend']:<12} {b:>16,.0f} {w:>14,.0f} {w / b:>15.0%}")


if __name__ == "__main__":
    main()
