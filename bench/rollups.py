"""Rollup refresh benchmark: one writer slice (2,000 tags) refreshed over its last 70 s, with history stored.

    python -m bench.rollups [--minutes 30] [--repeat 5] [--backends sqlite,postgresql]

The writer refreshes the app-maintained rollups (samples_1m, samples_1h on SQLite and plain PostgreSQL) once a
minute, a slice of db.writer.ROLLUP_SLICE_TAGS tag ids at a time (db.backend.refresh_rollups). This stores --minutes
of 1 Hz history for one slice and times the refresh of the last 70 s two ways, in the same database:
  baseline  the same statements with the slice as a tag id range (tag_id >= lo AND tag_id < hi), the form used until
            78297cc: on the (tag_id, time) index it seeks by tag id only and reads every row the slice ever had;
  app       db.backend.refresh_rollups, the slice's ids listed: a seek to the time range of each tag.
The app's time should not grow with --minutes; the baseline's does. Medians of --repeat; target: the app's refresh
under 1 s a slice (a 50,000-tag plant has 25 slices a minute on one writer thread).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402
from sqlalchemy import text  # noqa: E402

from bench.machine import machine_description  # noqa: E402
from bench.verdict import all_met, verdict  # noqa: E402
from db import backend as backends  # noqa: E402
from db.store import open_store  # noqa: E402
from db.writer import ROLLUP_SLICE_TAGS  # noqa: E402

WINDOW_S = 70  # what a refresh a minute after the last covers: the minute and the rows written meanwhile


def fill(store, minutes: int, now: float) -> int:
    rows, written = [], 0
    with store.engine.begin() as conn:
        for s in range(minutes * 60):
            t = now - minutes * 60 + s
            rows.extend((t, tag, float((s + tag) % 1000) / 4, None, 0, None) for tag in range(ROLLUP_SLICE_TAGS))
            if len(rows) >= 200_000:
                backends.insert_samples(conn, store.backend_name, rows)
                written, rows = written + len(rows), []
        backends.insert_samples(conn, store.backend_name, rows)
    if store.backend_name == "sqlite":
        with store.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    else:
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE samples"))
    return written + len(rows)


def by_tag_range(conn, backend: str, since: float, until: float, lo: int, hi: int) -> None:
    """The statements of refresh_rollups with the slice as a range of tag ids (the baseline)."""
    for name, width in backends.ROLLUPS:
        start = (since // width) * width
        args = {"lo": backends.db_time(backend, start), "hi": backends.db_time(backend, until), "tlo": lo, "thi": hi}
        tags = " AND tag_id >= :tlo AND tag_id < :thi"
        conn.execute(text(f"DELETE FROM {name} WHERE bucket >= :lo AND bucket < :hi{tags}"), args)
        if name == "samples_1m":
            source, column, sums = "samples", "time", "count(value), avg(value), min(value), max(value)"
        else:
            source, column = "samples_1m", "bucket"
            sums = "sum(n), sum(vavg * n) / nullif(sum(n), 0), min(vmin), max(vmax)"
        bucket = backends.bucket_sql(backend, column, width)
        conn.execute(text(
            f"INSERT INTO {name} (bucket, tag_id, n, vavg, vmin, vmax) SELECT {bucket} AS b, tag_id, {sums} "
            f"FROM {source} WHERE {column} >= :lo AND {column} < :hi{tags} GROUP BY 1, 2"), args)


def rollup_rows(store) -> list[tuple]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT bucket, tag_id, n, vmin, vmax FROM samples_1m ORDER BY tag_id, bucket")).all()]


def run_backend(label: str, url: str, minutes: int, repeat: int) -> dict:
    store = open_store(url)
    try:
        now = float(int(time.time()))
        started = time.perf_counter()
        n = fill(store, minutes, now)
        print(f"{label}: {n:,} rows of history stored in {time.perf_counter() - started:.0f} s")
        times: dict[str, list[float]] = {"baseline": [], "app": []}
        answers = {}
        for _ in range(repeat):
            for way, refresh in (
                    ("baseline", lambda c: by_tag_range(c, store.backend_name, now - WINDOW_S, now + 1, 0,
                                                        ROLLUP_SLICE_TAGS)),
                    ("app", lambda c: backends.refresh_rollups(c, store.backend_name, now - WINDOW_S, now + 1,
                                                                (0, ROLLUP_SLICE_TAGS)))):
                t = time.perf_counter()
                with store.engine.begin() as conn:
                    refresh(conn)
                times[way].append((time.perf_counter() - t) * 1000)
                answers[way] = rollup_rows(store)
        if answers["baseline"] != answers["app"]:
            raise SystemExit(f"{label}: the two ways wrote different rollups")
        return {"backend": label, **{k: statistics.median(v) for k, v in times.items()}}
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=int, default=30, help="history stored before the refresh, at 1 Hz")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    wanted = args.backends.split(",")
    print(f"machine: {machine_description()}")
    print(f"one slice of {ROLLUP_SLICE_TAGS:,} tags, {args.minutes} min of 1 Hz history, refresh of the last "
          f"{WINDOW_S} s, median of {args.repeat}\n")
    results = []
    if "sqlite" in wanted:
        with tempfile.TemporaryDirectory() as d:
            results.append(run_backend("sqlite", f"sqlite:///{d}/bench.sqlite3", args.minutes, args.repeat))
    if "postgresql" in wanted:
        name = f"oee_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.pg_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            results.append(run_backend("postgresql", f"{args.pg_url.rsplit('/', 1)[0]}/{name}", args.minutes,
                                       args.repeat))
        finally:
            with psycopg.connect(args.pg_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"\n{'backend':<12} {'baseline ms':>12} {'app ms':>8} {'app/baseline':>13}")
    verdicts = []
    for r in results:
        print(f"{r['backend']:<12} {r['baseline']:>12,.0f} {r['app']:>8,.0f} {r['app'] / r['baseline']:>12.0%}")
        verdicts.append(verdict(round(r["app"]), 1000, "ms", what=f"{r['backend']} slice refresh"))
    print()
    for v in verdicts:
        print(v)
    print(all_met(verdicts))


if __name__ == "__main__":
    main()
