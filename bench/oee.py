"""OEE query benchmark: one machine over 30 days, and 50 machines (a site) over one day.

    python -m bench.oee [--repeat 20] [--backends sqlite,postgresql,timescaledb] [--days 30] [--machines 50]

The history is the simulated plant's (plant.model, deterministic, seed 1), stored as the collectors store what
they poll at 1 Hz: state intervals with times rounded to the second, and count increments in one-minute rows.
The measured call is db.oee_queries.oee_report(), the function behind GET /api/oee/ and the pages, with and
without buckets. The baseline, measured in the same run, is the plain SELECT of the same rows (the I/O floor),
so the figures show what the OEE engine adds. Target (issue [oee]): p95 under 200 ms.
"""
from __future__ import annotations

import argparse
import bisect
import dataclasses
import gc
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402
from sqlalchemy import text  # noqa: E402

from bench.machine import machine_description  # noqa: E402
from bench.verdict import all_met, verdict  # noqa: E402
from config.demo_plant import sync_demo_plant  # noqa: E402
from db import backend as backends  # noqa: E402
from db.oee_queries import oee_report  # noqa: E402
from db.spool import Batch  # noqa: E402
from db.store import open_store  # noqa: E402
from plant import default_layout  # noqa: E402
from plant.model import PlantModel  # noqa: E402
from processes.demo import demo_calendars  # noqa: E402

UTC = timezone.utc
DAY = 86400.0


def history(machines: int, days: float, sim_start: datetime):
    """(layout, {machine_id: (state rows, count rows)}) with epoch times, as the collectors would store them."""
    base = default_layout()
    specs = [dataclasses.replace(base.machines[i % len(base.machines)], id=f"M{i + 1:03d}",
                                 name=f"Machine {i + 1}", index=i) for i in range(machines)]
    layout = dataclasses.replace(base, machines=tuple(specs))
    model = PlantModel(layout, seed=1, sim_start=sim_start, truth_retention_s=None)
    model.advance_to(days * DAY)
    epoch0 = sim_start.timestamp()
    out = {}
    for spec in specs:
        truth = model.ground_truth(spec.id)
        states = [(round(epoch0 + s.start_sim), None if s.end_sim is None else round(epoch0 + s.end_sim),
                   s.state_name, s.fault_code or None, str(s.product_code)) for s in truth.states]
        parts, rejects = list(truth._part_times), list(truth._reject_times)
        runs = [(r.start_sim, r.end_sim if r.end_sim is not None else days * DAY, str(r.product_code))
                for r in truth.product_runs]
        counts = []
        for minute in range(int(days * 1440)):
            a, b = minute * 60.0, minute * 60.0 + 60.0
            total = bisect.bisect_right(parts, b) - bisect.bisect_right(parts, a)
            if not total:
                continue
            reject = bisect.bisect_right(rejects, b) - bisect.bisect_right(rejects, a)
            product = next((p for s, e, p in runs if s <= a < e), runs[-1][2] if runs else None)
            counts.append((epoch0 + a, epoch0 + b, product, total, total - reject, reject))
        out[spec.id] = (states, counts)
    return layout, out


def load(url: str, layout, data) -> object:
    store = open_store(url)
    # Nothing is polled here: each endpoint only has to pass validation (a Sparkplug B one names its edge node).
    endpoints = [{"machine_id": m.id, "name": m.name, "protocol": m.protocol, "host": "127.0.0.1", "port": 1,
                  "area": m.area, "line": m.line, "tags": [],
                  "protocol_config": ({"group_id": "Bench", "edge_node_id": m.id} if m.protocol == "SPARKPLUG_B"
                                      else {})} for m in layout.machines]
    products = {p.code: p for m in layout.machines for p in m.products}
    calendars, assignment = demo_calendars(layout)
    ids = sync_demo_plant(store.engine, {"name": "Bench site", "timezone": layout.timezone}, endpoints,
                          [{"code": c, "name": p.name, "ideal_cycle_time": p.ideal_cycle_time}
                           for c, p in products.items()], calendars, assignment)
    with store.engine.begin() as conn:  # the history is older than the machines' adding: in service always
        conn.execute(text("DELETE FROM machine_lifetime"))
    for machine_id, (states, counts) in data.items():
        mid = ids[machine_id]
        store.write_batch(Batch(uuid.uuid4().hex,
                                states=[(mid, s, e, st, f, p) for s, e, st, f, p in states],
                                counts=[(mid, s, e, p, t, g, r) for s, e, p, t, g, r in counts]))
    with store.engine.begin() as conn:  # fresh statistics, as autovacuum would give a long-lived database
        if store.backend_name == "sqlite":
            conn.execute(text("ANALYZE"))
    if store.backend_name != "sqlite":
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE machine_states"))
            conn.execute(text("VACUUM ANALYZE production_counts"))
    return store


def raw_select(store, start: float, end: float) -> int:
    lo, hi = backends.db_time(store.backend_name, start), backends.db_time(store.backend_name, end)
    with store.engine.connect() as conn:
        a = conn.execute(text('SELECT machine_id, start, "end", state, fault_code, product_code FROM machine_states '
                              'WHERE start < :hi AND ("end" IS NULL OR "end" > :lo)'), {"lo": lo, "hi": hi}).all()
        b = conn.execute(text('SELECT machine_id, start, "end", product_code, total, good FROM production_counts '
                              'WHERE start < :hi AND "end" >= :lo'), {"lo": lo, "hi": hi}).all()
    return len(a) + len(b)


VERDICTS: list[str] = []


def timed(fn, repeat: int) -> list[float]:
    fn()  # warm: connection pool, caches
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(round(0.95 * len(values))) - 1)]


def run_case(label: str, url: str, layout, data, scope: str, key: str, start: float, end: float, repeat: int):
    store = load(url, layout, data)
    rows = raw_select(store, start, end)
    cases = {
        "baseline SELECT": lambda: raw_select(store, start, end),
        "oee_report": lambda: oee_report(store, scope, key, start, end),
        "oee_report by day" if end - start > 2 * DAY else "oee_report by hour":
            lambda: oee_report(store, scope, key, start, end, bucket="day" if end - start > 2 * DAY else "hour"),
    }
    results = {name: timed(fn, repeat) for name, fn in cases.items()}
    check = oee_report(store, scope, key, start, end)
    store.close()
    VERDICTS.append(verdict(p95(results["oee_report"]), 200, "ms", what=f"{label} {store.backend_name} oee_report p95"))
    print(f"  {label:<12} {store.backend_name:<12} rows {rows:>7,}  OEE {check['oee']:.3f}  " + "  ".join(
        f"{name}: median {statistics.median(v):6.1f} ms p95 {p95(v):6.1f} ms" for name, v in results.items()))
    return results


# --- plant scale: hourly summaries (db/oee_hours.py) against today's raw path --------------------------------


def load_plant(url: str, layout, data, machines: int) -> object:
    """The plant of `machines` machines, each a copy of one of the simulated ones (data), written with COPY on
    PostgreSQL (executemany on SQLite): 500 machines x 30 days is some 20 million count rows."""
    distinct = list(data)
    specs = [dataclasses.replace(layout.machines[i % len(distinct)], id=f"P{i + 1:03d}", name=f"Machine {i + 1}",
                                 index=i) for i in range(machines)]
    big = dataclasses.replace(layout, machines=tuple(specs))
    store = load(url, big, {})
    with store.engine.connect() as conn:
        ids = dict(conn.execute(text("SELECT machine_id, id FROM machines")).all())
    t = time.perf_counter()
    if store.backend_name == "sqlite":
        with store.engine.begin() as conn:
            for i, spec in enumerate(specs):
                states, counts = data[distinct[i % len(distinct)]]
                mid = ids[spec.id]
                conn.exec_driver_sql('INSERT INTO machine_states (machine_id, start, "end", state, fault_code, '
                                     "product_code) VALUES (?, ?, ?, ?, ?, ?)", [(mid, *r) for r in states])
                conn.exec_driver_sql('INSERT INTO production_counts (machine_id, start, "end", product_code, total, '
                                     "good, reject) VALUES (?, ?, ?, ?, ?, ?, ?)", [(mid, *r) for r in counts])
    else:
        def ts(x):
            return None if x is None else datetime.fromtimestamp(x, UTC)

        raw = store.engine.raw_connection()
        try:
            cur = raw.driver_connection.cursor()
            with cur.copy('COPY machine_states (machine_id, start, "end", state, fault_code, product_code) '
                          "FROM STDIN") as copy:
                for i, spec in enumerate(specs):
                    mid = ids[spec.id]
                    for s, e, st, f, p in data[distinct[i % len(distinct)]][0]:
                        copy.write_row((mid, ts(s), ts(e), st, f, p))
            with cur.copy('COPY production_counts (machine_id, start, "end", product_code, total, good, reject) '
                          "FROM STDIN") as copy:
                for i, spec in enumerate(specs):
                    mid = ids[spec.id]
                    for s, e, p, tot, g, r in data[distinct[i % len(distinct)]][1]:
                        copy.write_row((mid, ts(s), ts(e), p, tot, g, r))
            raw.driver_connection.commit()
        finally:
            raw.close()
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE machine_states"))
            conn.execute(text("VACUUM ANALYZE production_counts"))
    print(f"  stored {machines} machines in {time.perf_counter() - t:.1f} s")
    return store


def plant_case(url: str, layout, data, machines: int, days: float, t0: float, repeat: int, raw_repeat: int,
               raw_machines: int) -> None:
    """oee_report of the site over `days` and over the last day (and by day), from the summaries, beside today's
    raw path measured in the same run (before the summaries exist; with the row cap lifted, since a plant this
    size is over it, on raw_machines machines when fewer than all: see the printed label)."""
    import db.oee_queries as queries
    from db.oee_hours_refresh import refresh
    from processes.runtime import GC_THRESHOLDS

    default_thresholds = gc.get_threshold()

    store = load_plant(url, layout, data, machines)
    end = time.time()
    ranges = {f"{days:g} d": (max(t0, end - days * DAY), end), "1 d": (end - DAY, end)}
    print(f"  machine: {machine_description()}")
    results = {}
    cap = queries.MAX_ROWS
    queries.MAX_ROWS = 10**9  # today's path refuses more than a report's rows: lifted to measure it
    try:
        for label, (a, b) in ranges.items():
            scope, key = ("site", "Bench site")
            if raw_machines < machines:
                with store.engine.connect() as conn:
                    scope, key = "line", conn.execute(text("SELECT name FROM lines ORDER BY id")).scalar()
            n = len(oee_report(store, scope, key, a, b)["machines"])
            results[("raw", label)] = (timed(lambda: oee_report(store, scope, key, a, b), raw_repeat), n)
    finally:
        queries.MAX_ROWS = cap
    t = time.perf_counter()
    stats = refresh(store)
    backfill = time.perf_counter() - t
    print(f"  summaries backfilled in {backfill:.1f} s: {stats['hours']:,} machine-hours in {stats['steps']} steps "
          f"(load {_load()})")
    # The garbage collector as the app's processes run it (processes/runtime.tune_garbage_collector: its thresholds,
    # and what the process holds once started frozen out of its sight): here that is the bench's own history
    # (millions of tuples), which every full collection during a report would otherwise walk.
    gc.set_threshold(*GC_THRESHOLDS)
    gc.collect()
    gc.freeze()
    # The summaries' reports end now, as a report right after a refresh does (the raw runs above took minutes: a
    # range ending before them would read no raw tail). The tail (now - each machine's horizon) is read raw: the
    # settle margin (oee_hours.MARGIN_S) plus up to a minute; a live report adds up to the refresh period (60 s).
    end = time.time()
    ranges = {label: (end - (b - a), end) for label, (a, b) in ranges.items()}
    with store.engine.connect() as conn:
        tails = sorted(end - u for (u,) in conn.execute(text("SELECT until_s FROM oee_hour_horizons")))
    print(f"  raw tail per machine (now - its horizon): median {statistics.median(tails):.0f} s, max {tails[-1]:.0f} s")
    for label, (a, b) in ranges.items():
        results[("summaries", label)] = (timed(lambda: oee_report(store, "site", "Bench site", a, b), repeat), machines)
        results[("summaries by day", label)] = (
            timed(lambda: oee_report(store, "site", "Bench site", a, b, bucket="day"), repeat), machines)
    store.close()
    gc.unfreeze()  # the next backend's case starts from the same heap
    gc.set_threshold(*default_thresholds)
    for (kind, label), (values, n) in results.items():
        print(f"  {kind:<17} {label:>5} {n:>4} machines: median {statistics.median(values):8.1f} ms  "
              f"p95 {p95(values):8.1f} ms  ({len(values)} runs, load {_load()})")
        if kind.startswith("summaries"):
            VERDICTS.append(verdict(p95(values), 200, "ms", what=f"{machines} x {label} {store.backend_name} "
                                                                  f"oee_report {kind} p95"))
    for label in ranges:
        raw_v, n = results[("raw", label)]
        sum_v, _ = results[("summaries", label)]
        scale = machines / n
        print(f"  {label}: raw path {statistics.median(raw_v) * scale:,.0f} ms for {machines} machines"
              f"{f' (measured on {n}, x{scale:g})' if scale != 1 else ''} vs summaries "
              f"{statistics.median(sum_v):,.1f} ms: {statistics.median(raw_v) * scale / statistics.median(sum_v):,.0f}x")


def _load() -> str:
    import os

    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--machines", type=int, default=50)
    parser.add_argument("--backends", default="sqlite,postgresql,timescaledb")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--plant", type=int, default=0, metavar="MACHINES",
                        help="instead: the plant-scale case, MACHINES machines over --days from hourly summaries "
                             "(target: --plant 500 --days 30; quick: --plant 500 --days 2)")
    parser.add_argument("--distinct", type=int, default=10, help="plant case: simulated machines, copied to MACHINES")
    parser.add_argument("--raw-machines", type=int, default=0,
                        help="plant case: measure today's raw path on one line of this many machines (0: all)")
    parser.add_argument("--raw-repeat", type=int, default=3)
    args = parser.parse_args()
    wanted = args.backends.split(",")
    if args.plant:
        return plant_main(args, wanted)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start_30 = now - timedelta(days=args.days + 1)  # recent: TimescaleDB's retention keeps it
    print(f"machine: {machine_description()}")
    t = time.perf_counter()
    layout1, data1 = history(1, args.days, start_30)
    layout50, data50 = history(args.machines, 1, now - timedelta(days=2))
    print(f"history generated in {time.perf_counter() - t:.1f} s: 1 machine x {args.days:g} days, "
          f"{args.machines} machines x 1 day; {args.repeat} timed runs per figure\n")
    a1 = start_30.timestamp()
    b1 = a1 + args.days * DAY
    a50 = (now - timedelta(days=2)).timestamp()
    b50 = a50 + DAY

    def each_backend(run):
        if "sqlite" in wanted:
            with tempfile.TemporaryDirectory() as d:
                run(f"sqlite:///{d}/bench.sqlite3")
        if "postgresql" in wanted:
            name = f"oee_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(args.pg_url, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            try:
                run(f"{args.pg_url.rsplit('/', 1)[0]}/{name}")
            finally:
                with psycopg.connect(args.pg_url, autocommit=True) as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if "timescaledb" in wanted:
            from tests.support.pgcluster import PgCluster, timescaledb_installed

            if not timescaledb_installed():
                print("  TimescaleDB: SKIPPED, the extension is not installed on this machine")
                return
            with PgCluster(preload_timescaledb=True) as cluster:
                run(cluster.create_database(f"bench_{uuid.uuid4().hex[:6]}"))

    print(f"One machine over {args.days:g} days:")
    each_backend(lambda url: run_case("1 x 30 d", url, layout1, data1, "machine", "M001", a1, b1, args.repeat))
    print(f"\n{args.machines} machines (the whole site) over one day:")
    each_backend(lambda url: run_case(f"{args.machines} x 1 d", url, layout50, data50, "site", "Bench site", a50, b50,
                                      args.repeat))
    print("\nTarget: p95 under 200 ms for oee_report.")
    print("\n".join(VERDICTS + [all_met(VERDICTS)]))


def plant_main(args, wanted) -> None:
    now = datetime.now(UTC)
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(days=args.days)
    print(f"machine: {machine_description()}  load {_load()}")
    t = time.perf_counter()
    layout, data = history(args.distinct, args.days + 1, start)
    cut = time.time()
    for m, (states, counts) in data.items():  # up to now, the last interval open, as the collector leaves it
        states[:] = list({r[0]: r for r in states if r[0] < cut}.values())  # one row a start: the later, as upserted
        states[-1] = (states[-1][0], None, *states[-1][2:])
        counts[:] = [r for r in counts if r[1] <= cut]
    print(f"history generated in {time.perf_counter() - t:.1f} s: {args.distinct} simulated machines x "
          f"{args.days:g} days, copied to {args.plant}; {args.repeat} timed runs per summary figure, "
          f"{args.raw_repeat} per raw one\n")
    for backend in wanted:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as d:
                print("sqlite:")
                plant_case(f"sqlite:///{d}/bench.sqlite3", layout, data, args.plant, args.days, start.timestamp(),
                           args.repeat, args.raw_repeat, args.raw_machines or args.plant)
        elif backend == "postgresql":
            name = f"oee_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(args.pg_url, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            try:
                print("postgresql:")
                plant_case(f"{args.pg_url.rsplit('/', 1)[0]}/{name}", layout, data, args.plant, args.days,
                           start.timestamp(), args.repeat, args.raw_repeat, args.raw_machines or args.plant)
            finally:
                with psycopg.connect(args.pg_url, autocommit=True) as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        elif backend == "timescaledb":
            from tests.support.pgcluster import PgCluster, timescaledb_installed

            if not timescaledb_installed():
                print("timescaledb: SKIPPED, the extension is not installed on this machine")
                continue
            with PgCluster(preload_timescaledb=True) as cluster:
                print("timescaledb:")
                plant_case(cluster.create_database(f"bench_{uuid.uuid4().hex[:6]}"), layout, data, args.plant,
                           args.days, start.timestamp(), args.repeat, args.raw_repeat, args.raw_machines or args.plant)
    print("\nTarget: p95 under 200 ms for oee_report from the summaries.")
    print("\n".join(VERDICTS + [all_met(VERDICTS)]))


if __name__ == "__main__":
    main()
