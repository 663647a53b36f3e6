"""The collector under test for bench.collect: the app's own Runtime in a process of its own.

    python -m bench.collect_app --database-url URL --data-dir DIR [--max-seconds 600] [--stats-interval 1]

Runs processes.runtime.Runtime with role "collector" and no demo plant: it opens the store (the connections and tags are
already in the database, written by bench.collect with config.demo_plant.sync_demo_plant), starts the writer, the
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
from db.writer import Writer  # noqa: E402
from processes.runtime import Runtime  # noqa: E402
from processes.settings import Settings  # noqa: E402

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


def what_if_core_config_load() -> None:
    """db.collector_config.load_collector_config with three Core queries (machines, connections, tags) instead of ORM
    objects and a lazy load of each connection's tags: the same plain data, a fraction of the CPU and of the objects
    the garbage collector must walk. The first call also runs the original and uses it if the two differ. A proposal
    for db/collector_config.py, tried here in the collector process only when asked for."""
    import logging

    from sqlalchemy import select

    from db import collector_config
    from db.models import Connection, Machine, Tag

    original = collector_config.load_collector_config
    checked = []

    def load(engine):
        with engine.connect() as c:
            machines = {r.id: r for r in c.execute(select(Machine.id, Machine.machine_id, Machine.state_code_map,
                                                          Machine.enabled))}
            conns = c.execute(select(Connection.id, Connection.name, Connection.protocol, Connection.host,
                                     Connection.port, Connection.protocol_config, Connection.poll_interval_ms,
                                     Connection.collector_node, Connection.machine_id)
                              .where(Connection.enabled.is_(True)).order_by(Connection.id)).all()
            by_conn: dict[int, list] = {}
            for t in c.execute(select(Tag.connection_id, Tag.id, Tag.name, Tag.address, Tag.data_type, Tag.scale,
                                      Tag.offset, Tag.deadband, Tag.report_by_exception, Tag.role, Tag.machine_id,
                                      Tag.options, Tag.sampling_interval_ms)
                               .where(Tag.enabled.is_(True)).order_by(Tag.connection_id, Tag.id)):
                by_conn.setdefault(t.connection_id, []).append(t)
        out = []
        for conn in conns:
            tags = [{"id": t.id, "name": t.name, "address": t.address, "data_type": t.data_type, "scale": t.scale,
                     "offset": t.offset, "deadband": t.deadband, "report_by_exception": t.report_by_exception,
                     "role": t.role, "machine_id": t.machine_id or conn.machine_id, "options": t.options or {},
                     "sampling_interval_ms": t.sampling_interval_ms} for t in by_conn.get(conn.id, [])]
            machine_ids = {t["machine_id"] for t in tags if t["machine_id"]}
            out.append({
                "id": conn.id, "name": conn.name, "protocol": conn.protocol, "host": conn.host, "port": conn.port,
                "protocol_config": conn.protocol_config or {}, "poll_interval_ms": conn.poll_interval_ms,
                "collector_node": conn.collector_node, "machine_id": conn.machine_id, "tags": tags,
                "machines": {mid: {"machine_id": machines[mid].machine_id,
                                   "state_code_map": machines[mid].state_code_map, "enabled": machines[mid].enabled}
                             for mid in machine_ids if mid in machines},
            })
        if not checked:
            checked.append(True)
            if out != original(engine):
                logging.getLogger("bench").error("what-if core-config-load: differs from the original; not used")
                collector_config.load_collector_config = original
                return original(engine)
        return out

    collector_config.load_collector_config = load


GC_ACTIONS: list = []  # run once every connection has read: see what_if_gc_freeze


def what_if_gc_freeze() -> None:
    """gc.freeze() once every connection has read: what exists then (configuration, plans, drivers, tag lists,
    imported modules) moves to the permanent generation, which no collection walks again."""
    import gc

    GC_ACTIONS.append(gc.freeze)


def what_if_gc_threshold() -> None:
    """gc.set_threshold(50_000, 20, 20) instead of (700, 10, 10): the collector allocates about three containers per
    sample, so the default makes a young collection every ~12 ms at 20,000 samples/s and promotes whatever is in
    flight (queued rows, live messages) toward the full collections."""
    import gc

    gc.set_threshold(50_000, 20, 20)


REFREEZES_SEEN = [0]  # how many of runtime.refreezes were emitted
AFTER_TUNING: list = []  # run after the app's own gc tuning: see what_if_gc_young_200k


def what_if_gc_young_200k() -> None:
    """gc.set_threshold(200_000, 20, 20) after the app's tuning (50,000): a young collection starts when the
    containers made minus those freed pass the threshold, which at 50,000 happens while a commit holds a second of
    rows; each then walks everything still alive in the young generation (up to 100 ms seen at 20,000 tags)."""
    import gc

    AFTER_TUNING.append(lambda: gc.set_threshold(200_000, 20, 20))


def what_if_rollups_back_to_back() -> None:
    """The writer's rollup refresh slices run back to back, as before db.writer.ROLLUP_SPREAD: that change's
    baseline."""
    from db import writer

    writer.ROLLUP_SPREAD = 0.0


def what_if_sqlite_page_4096() -> None:
    """A new SQLite file made with SQLite's own 4 KiB pages, as before db.engine.SQLITE_PAGE_SIZE: that change's
    baseline. The file is made by the bench's own process (bench.collect.configure), which applies it too."""
    from db import engine

    engine.SQLITE_PAGE_SIZE = 4096


def what_if_sqlite_batch_20k() -> None:
    """A SQLite commit takes at most batch_rows (20,000) however many are queued, as before
    db.writer.SQLITE_MAX_BATCH_ROWS: that change's baseline."""
    from db import writer

    writer.SQLITE_MAX_BATCH_ROWS = 0


def what_if_sqlite_cache_default() -> None:
    """SQLite's write transactions with its default page cache (2 MiB), as before db.store.SQLITE_WRITE_CACHE_KIB:
    that change's baseline."""
    from db import store

    store.SQLITE_WRITE_CACHE_KIB = 0


def what_if_sqlite_wal_unbounded() -> None:
    """No checkpoint that brings SQLite's WAL back to its start, as before db.store.SQLITE_WAL_RESTART_BYTES: that
    change's baseline."""
    from db import store

    store.SQLITE_WAL_RESTART_BYTES = 0


WHAT_IF = {"rollups-back-to-back": what_if_rollups_back_to_back, "sqlite-wal-unbounded": what_if_sqlite_wal_unbounded, "sqlite-cache-default": what_if_sqlite_cache_default, "sqlite-batch-20k": what_if_sqlite_batch_20k, "sqlite-page-4096": what_if_sqlite_page_4096, "multirow-insert": what_if_multirow_insert, "core-config-load": what_if_core_config_load,
           "gc-freeze": what_if_gc_freeze, "gc-threshold": what_if_gc_threshold,
           "gc-young-200k": what_if_gc_young_200k,
           "full-refreeze": lambda: None,  # the freeze after the start collects everything first (before 2026-12-07)
           "gc-default": lambda: None}  # gc-default: Python's own thresholds, no freeze (the app before tuning)

def watch_gc() -> None:
    """Note every cyclic garbage collection (generation, duration): a full collection walks every tracked object of
    the process while holding the GIL."""
    import gc

    started = {}

    def callback(phase, info):
        if phase == "start":
            started["t"], started["p"] = time.time(), time.perf_counter()
        elif "p" in started:
            EVENTS.append((f"gc{info['generation']}", started["t"], time.perf_counter() - started["p"],
                           info.get("collected")))

    gc.callbacks.append(callback)


timed(Writer, "_write", "commit", lambda args: args[0].rows)
timed(Writer, "_rollup_step", "rollup")
timed(CollectorManager, "reload", "reload")
watch_gc()


def snapshot(runtime: Runtime) -> dict:
    conns = []
    collectors = runtime.collectors
    for p in list(collectors.pollers.values()) if collectors is not None else []:
        conns.append({"name": p.name, "protocol": p.protocol, "state": p.state, "tags": len(p.tags),
                      "cycles": p.cycles, "skipped": p.skipped_cycles, "stored": p.samples_stored,
                      "bad_tags": p.bad_tags, "latency_ms": p.last_latency_ms,
                      "error": p.last_error.message if p.last_error and p.state == "failing" else None})
    events = []
    refreezes = getattr(runtime, "refreezes", [])
    while len(refreezes) > REFREEZES_SEEN[0]:  # the gc refreezes (Runtime.tune_garbage_collector): full or young
        at, seconds, full = refreezes[REFREEZES_SEEN[0]]
        REFREEZES_SEEN[0] += 1
        events.append(("refreeze-full" if full else "refreeze-young", at, seconds, None))
    skips = collectors.skips if collectors is not None else ()
    while skips:  # why each skipped cycle was skipped (CollectorManager.skip_cause)
        why = skips.popleft()
        events.append(("skip", why["at"], 0.0, why))
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
    parser.add_argument("--node", default=None, help="this collector's node name: it polls the connections assigned "
                                                     "to it (collector_node); default: the host's name")
    parser.add_argument("--reload-interval", type=float, default=None,
                        help="diagnostics only: CollectorManager reload_interval_s (default: the app's)")
    parser.add_argument("--rollup-interval", type=float, default=None,
                        help="diagnostics only: Writer rollup_interval_s (default: the app's)")
    parser.add_argument("--what-if", default="", help="diagnostics only: comma-separated changes to try, "
                                                      "multirow-insert, core-config-load, gc-freeze, gc-threshold, "
                                                      "gc-young-200k "
                                                      "(see the what_if_* functions)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s collector %(levelname)s %(name)s: %(message)s")
    settings = Settings(database_url=args.database_url, data_dir=Path(args.data_dir), demo=False, role="collector",
                        log_level=args.log_level, **({"node_name": args.node} if args.node else {}))
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
    if "gc-default" not in args.what_if:
        runtime.tune_garbage_collector()  # as app.py's main does for a collecting process
        for change in AFTER_TUNING:
            change()
        if "full-refreeze" in args.what_if and runtime.collectors is not None:
            runtime.collectors.on_change()  # as a change that removed a connection: the first refreeze is full
    if args.rollup_interval is not None and runtime.writer is not None:
        runtime.writer.rollup_interval_s = args.rollup_interval
    emit({"event": "started", "t": time.time()})
    try:
        next_at = time.monotonic()
        while not stop.is_set() and time.monotonic() < deadline:
            stats = snapshot(runtime)
            if GC_ACTIONS and stats["connections"] and all(c["state"] == "connected" and c["cycles"] >= 1
                                                           for c in stats["connections"]):
                while GC_ACTIONS:
                    GC_ACTIONS.pop()()
            emit(stats)
            next_at += args.stats_interval
            stop.wait(max(0.0, next_at - time.monotonic()))
    except BaseException as exc:
        # Said first and on stdout too: what follows (runtime.stop(), jobs that then cannot be scheduled:
        # APScheduler's "cannot schedule new futures after shutdown") used to bury the cause in the log.
        logging.getLogger("bench").exception("collector stopping on %r", exc)
        try:
            emit({"event": "failed", "error": f"{exc.__class__.__name__}: {exc}"})
        except OSError:  # the bench is gone (its pipe closed)
            pass
        raise
    finally:
        final = snapshot(runtime)
        runtime.stop()
        final["writer_after_stop"] = runtime.writer.stats() if runtime.writer else None
        try:
            emit({"event": "stopped", **final})
        except OSError:
            pass


if __name__ == "__main__":
    main()
