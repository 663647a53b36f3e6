"""The collector under test for bench.collect: the app's own Runtime in a process of its own.

    python -m bench.collect_app --database-url URL --data-dir DIR [--max-seconds 600] [--stats-interval 1]

Runs core.runtime.Runtime with role "collector" and no demo plant: it opens the store (the connections and tags are
already in the database, written by bench.collect with db.configuration.sync_demo_plant), starts the writer, the
scheduler and the CollectorManager (one job per connection), exactly as `python app.py --role collector` would.
Nothing else runs in this process, so its CPU time and resident memory are the collector's own.

Every --stats-interval seconds it prints one JSON line on stdout:
    {"t": epoch_s, "connections": [{"name", "protocol", "state", "tags", "cycles", "skipped", "stored",
     "bad_tags", "latency_ms"}], "writer": Writer.stats(), "events": [[kind, started, seconds, rows]]}
events: the writer's commits (Writer._write), rollup refreshes and configuration reloads since the last line, each
timed by a thin wrapper installed before the Runtime starts (two clock reads per call, a few calls a second).
It stops (runtime.stop(): pollers closed, the writer writes what is queued) when stdin closes or after
--max-seconds, then prints {"event": "stopped", ...the same fields...} and exits.
"""
from __future__ import annotations

import argparse
import collections
import functools
import json
import logging
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.manager import CollectorManager  # noqa: E402
from core.runtime import Runtime  # noqa: E402
from core.settings import Settings  # noqa: E402
from db.writer import Writer  # noqa: E402

EVENTS: collections.deque = collections.deque(maxlen=100_000)  # (kind, started epoch s, seconds, rows)


def timed(cls, name: str, kind: str, rows=None) -> None:
    """Note how long each call of cls.name takes (the writer's commits, rollup refreshes, configuration reloads):
    where the time goes, at the cost of two clock reads per call, a few calls a second."""
    original = getattr(cls, name)

    @functools.wraps(original)
    def wrapper(self, *args, **kwargs):
        started, t = time.time(), time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            EVENTS.append((kind, started, time.perf_counter() - t, rows(args) if rows else None))

    setattr(cls, name, wrapper)


def what_if_multirow_insert() -> None:
    """SQLite: insert a batch with multi-row INSERT statements of up to 5,000 rows instead of executemany.

    executemany runs one sqlite3_step per row and CPython's sqlite3 releases and takes back the GIL around each
    step; with a dozen busy poller threads every take-back may wait for another thread's switch interval (5 ms),
    so a 20,000-row batch can take seconds of wall time for 50 ms of CPU. A multi-row INSERT binds 30,000 values
    with the GIL held and then inserts 5,000 rows in one step without it. A proposal for db/backend.py
    (insert_samples), tried here in the collector process only when asked for."""
    from db import backend

    original = backend.insert_samples
    chunk = 5000

    def insert_samples(conn, name, rows):
        if name != backend.SQLITE or not rows:
            return original(conn, name, rows)
        width = len(rows[0])
        raw = conn.connection.driver_connection
        head = f"INSERT INTO samples ({backend.SAMPLE_COLUMNS}) VALUES "
        one = "(" + ",".join("?" * width) + ")"
        for k in range(0, len(rows), chunk):
            part = rows[k:k + chunk]
            raw.execute(head + ",".join([one] * len(part)), [x for row in part for x in row])

    backend.insert_samples = insert_samples


WHAT_IF = {"multirow-insert": what_if_multirow_insert}

timed(Writer, "_write", "commit", lambda args: args[0].rows)
timed(Writer, "refresh_rollups", "rollup")
timed(CollectorManager, "reload", "reload")


def snapshot(runtime: Runtime) -> dict:
    conns = []
    collectors = runtime.collectors
    for p in list(collectors.pollers.values()) if collectors is not None else []:
        conns.append({"name": p.name, "protocol": p.protocol, "state": p.state, "tags": len(p.tags),
                      "cycles": p.cycles, "skipped": p.skipped_cycles, "stored": p.samples_stored,
                      "bad_tags": p.bad_tags, "latency_ms": p.last_latency_ms,
                      "error": p.last_error.message if p.last_error and p.state == "failing" else None})
    events = []
    while EVENTS:
        events.append(EVENTS.popleft())
    return {"t": time.time(), "connections": conns, "writer": runtime.writer.stats() if runtime.writer else None,
            "events": events}


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":"), default=str) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--max-seconds", type=float, default=600, help="stop by itself after this long")
    parser.add_argument("--stats-interval", type=float, default=1.0)
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--reload-interval", type=float, default=None,
                        help="diagnostics only: CollectorManager reload_interval_s (default: the app's)")
    parser.add_argument("--rollup-interval", type=float, default=None,
                        help="diagnostics only: Writer rollup_interval_s (default: the app's)")
    parser.add_argument("--what-if", default="", help="diagnostics only: comma-separated changes to try, "
                                                      "multirow-insert (see what_if_multirow_insert)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s collector %(levelname)s %(name)s: %(message)s")
    settings = Settings(database_url=args.database_url, data_dir=Path(args.data_dir), demo=False, role="collector",
                        log_level=args.log_level)
    stop = threading.Event()

    def watch_stdin() -> None:
        try:
            for _line in sys.stdin:
                pass
        finally:
            stop.set()

    threading.Thread(target=watch_stdin, name="stdin", daemon=True).start()
    deadline = time.monotonic() + args.max_seconds
    for change in filter(None, args.what_if.split(",")):
        WHAT_IF[change]()
    options = {} if args.reload_interval is None else {"reload_interval_s": args.reload_interval}
    runtime = Runtime(settings, collector_options=options).start()
    if args.rollup_interval is not None and runtime.writer is not None:
        runtime.writer.rollup_interval_s = args.rollup_interval
    emit({"event": "started", "t": time.time()})
    try:
        next_at = time.monotonic()
        while not stop.is_set() and time.monotonic() < deadline:
            emit(snapshot(runtime))
            next_at += args.stats_interval
            stop.wait(max(0.0, next_at - time.monotonic()))
    finally:
        final = snapshot(runtime)
        runtime.stop()
        final["writer_after_stop"] = runtime.writer.stats() if runtime.writer else None
        emit({"event": "stopped", **final})


if __name__ == "__main__":
    main()
