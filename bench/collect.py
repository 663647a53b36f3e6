"""Collect benchmark: tag values per second from real protocol servers into the database, with CPU, RSS and latency.

    python -m bench.collect                      # quick: --tags 2000 --seconds 20 (about 3 minutes)
    python -m bench.collect --full               # the target: --tags 50000 --seconds 60 --repeat 3, on SQLite
                                                 # and on PostgreSQL (--backends), 2 collector processes
    python -m bench.collect --scenarios mixed --tags 50000 --seconds 20 --collector-processes 2 --backends sqlite
    python -m bench.collect --scenarios mixed --tags 20000 --seconds 60 --repeat 3
    python -m bench.collect --database-url postgresql://postgres@127.0.0.1:5432/postgres

Target ([perf]; [collect] asked for 20,000): on a 2-core machine, 50,000 tags polled at 1 Hz, mixed across the
four protocols, sustained with no skipped cycles, p99 latency (a value changing in the PLC -> its row visible in
the database) under one second beyond the polling interval, i.e. p99 < 2.0 s at 1 s polling, and the collector's
CPU at most 1.5x what the raw libraries spend on the same reads.

Scenarios: each protocol alone with its share of the tags (--tags / 4), then "mixed", all four at once (--tags),
so the four single runs add up to the mixed one. A protocol's tags are spread over PLCs of --tags-per-plc tags
(1000; OPC-UA --opcua-tags-per-server, 2500, because an asyncua server costs 1.5 s of CPU to start and serves
many nodes well). Half of a PLC's tags are REAL/FLOAT32/Double and half DINT/UINT32/Int32; --probes of them are
the latency probes. Every value changes every second (see bench/collect_servers.py).

Three kinds of process, so that every figure belongs to one of them:
  servers    bench/collect_servers.py, one process per protocol (one GIL each, as four separate PLCs would
             have): LogixServer (plant.enip), snap7 Server, asyncua Server, pymodbus SimDevice, on 127.0.0.1.
  collector  bench/collect_app.py: the app's own Runtime, role "collector", no demo: Store, Writer (one thread,
             batches), the APScheduler job per connection (never overlapping; skipped cycles counted), the four
             real drivers. The connections and tags are written into its database beforehand with
             config.demo_plant.sync_demo_plant, as the wizard or the demo would. SQLite in a temporary folder by
             default; with --database-url postgresql://... a fresh database made on that server for each run
             and dropped after it. Its CPU and RSS are read from /proc/<pid> by this process, so they are
             the collector's own: no watcher, no baseline, no servers in it.
  bench      this process: starts the others, writes the configuration, measures the baseline, watches the
             probes and reads /proc. (The design guidance put the watcher in the collector process; it moved out
             so that its queries and its GIL cannot be charged to, or slow down, the collector.)

Measured per run, over a window of --seconds that starts --warmup seconds after every connection has read:
  samples/s      rows in `samples` whose time falls in the window, counted in the database afterwards, per
                 second; expected = tags x 1 Hz. Rows with bad quality are counted apart (should be 0).
  cycles         read cycles done by all connections in the window vs window x connections / interval, and
                 skipped cycles (ConnectionPoller.skipped_cycles: the job was still running when it was due).
  CPU %          the collector's user+system time over the window (/proc/<pid>/stat), in % of one core;
                 the servers' and this process's alike, and the whole machine's busy time from /proc/stat, so
                 "other" (= machine - ours) shows the load of whatever else ran (other engineers' tests).
  RSS            VmRSS of the collector at the end of the window and its highest sample in the window; VmHWM
                 (peak since start, tag upload and connects included).
  latency        each PLC holds --probes probe tags; each changes every 2 s at a random moment to "milliseconds
                 since the bench's epoch", so the value carries its own change time and no clock exchange is
                 needed. A watcher here (its own DB connection, a query every 20 ms) notes when each new probe
                 value becomes visible in `samples`. latency = visible - changed: p50/p95/p99. Split in two:
                   poll  = the row's time (when the poller read it) - changed: the wait for the next poll, uniform
                           over 0..1 s at 1 Hz (expected share: mean 0.5 s, p99 0.99 s), plus the read itself;
                   after = visible - the row's time: the writer's queue (commit when the oldest queued row has
                           waited commit_interval_s = 0.5 s), the commit, and the watcher's 20 ms resolution.
                 "beyond the interval" = latency - 1 s, what the target bounds (p99 < 1 s). Probe changes
                 never seen (a cycle skipped, a change overtaken by the next) are counted as missed.
  baseline       in the same run, against the same servers, before the collector starts: the raw client
                 libraries read the same tags with the same request shapes (the app's own driver plans: pycomm3
                 LogixDriver.read(*names) per chunk, snap7 read_area per range, asyncua read_attributes per
                 chunk of 500 nodes gathered, pymodbus read_holding_registers per merged request), with no
                 conversion, no machine model, no queue and no database; CPU time per full cycle of all the
                 scenario's tags, as "% of one core at 1 Hz". app / baseline is what the app costs on top of
                 the protocol libraries; app = the collector processes' CPU plus, on PostgreSQL, the CPU of the
                 server's backends for the run's database (the inserts and rollups run there; on SQLite they are
                 in the collector processes already). Libraries hand back what they decode: pycomm3 and asyncua decode values,
                 snap7 and pymodbus return bytes and registers (decoding those is the app's work).
  processes      --collector-processes N (2 with --full): N collector processes, each with its own Runtime,
                 writer and GIL, polling the connections assigned to its node (the app's collector_node, given
                 in turn so that each protocol is spread over all); their CPU and memory are added up. One process
                 at 50,000 tags held its GIL 70 % of the time (py-spy --gil) and fell behind.
Every run prints its figures as it ends; the summary quotes medians over --repeat runs, and the verdicts, per
backend (--backends; both with --full); a run that failed counts as a missed target.

House rules: traffic to 127.0.0.1 only; every loop bounded in count and time (servers and collector stop by
themselves after --seconds + --warmup + 300 s; the bench kills its own children by pid if they do not stop).

Figures: see the end of this docstring; they are replaced when measured again.
"""
from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import os
import queue
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from pathlib import Path

from bench.collect_baseline import baseline
from bench.verdict import all_met, verdict
from bench.machine import (
    code_version,
    loadavg,
    machine_busy_s,
    machine_description,
    med,
    pct,
    proc_cpu_s,
    proc_status_kb,
    self_cpu_s,
    versions,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROTOCOLS = ("ETHERNET_IP", "S7", "OPCUA", "MODBUS")
SHORT = {"ETHERNET_IP": "logix", "S7": "s7", "OPCUA": "opcua", "MODBUS": "modbus"}
BY_SHORT = {v: k for k, v in SHORT.items()}
INTERVAL_S = 1.0
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
WATCH_EVERY_S = 0.02


# --- child processes ---------------------------------------------------------------------------------------------


class Child:
    """A process of ours that speaks JSON lines on stdout and stops when its stdin closes."""

    def __init__(self, name: str, argv: list[str], log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([sys.executable, *argv], cwd=ROOT, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._log, text=True, bufsize=1)
        self.pid = self.proc.pid
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, name=f"read-{name}", daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                self.lines.put(json.loads(line))
            except ValueError:
                pass
        self.lines.put(None)

    def log_tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def next(self, timeout: float) -> dict:
        try:
            item = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"{self.name}: nothing said within {timeout:.0f} s; its log ends:\n"
                               f"{self.log_tail()}") from None
        if item is None:
            self.lines.put(None)
            raise RuntimeError(f"{self.name} ended (exit code {self.proc.poll()}); its log ends:\n{self.log_tail()}")
        if item.get("event") == "failed":
            raise RuntimeError(f"{self.name} failed: {item.get('error')}; its log ends:\n{self.log_tail()}")
        return item

    def stop(self, timeout: float = 30.0) -> list[dict]:
        """Close stdin, wait for the process to end, return what it said after that."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            print(f"  {self.name} (pid {self.pid}) did not stop within {timeout:.0f} s; killed", flush=True)
            self.proc.kill()
            self.proc.wait(10)
        out = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                item = self.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if item is None:
                break
            out.append(item)
        self._log.close()
        return out


class CollectorGroup:
    """--collector-processes N collector processes, each polling the connections assigned to its node (the app's
    collector_node), seen as one: their stats lines merged, their CPU and memory added up."""

    def __init__(self, db_url: str, folder: Path, life_s: float, nodes: list[str], extra: list[str]):
        self.children = []
        try:
            for node in nodes:
                argv = ["-m", "bench.collect_app", "--database-url", db_url, "--data-dir", str(folder / f"data-{node}"),
                        "--max-seconds", str(life_s), *extra] + (["--node", node] if len(nodes) > 1 else [])
                self.children.append(Child("collector" if len(nodes) == 1 else f"collector-{node}", argv, folder))
        except BaseException:
            self.stop(10)
            raise
        self.pids = [c.pid for c in self.children]

    def next(self, timeout: float) -> dict:
        said = [c.next(timeout) for c in self.children]
        if len(said) == 1:
            return said[0]
        merged = {"t": max(x.get("t", 0) for x in said), "event": said[0].get("event"),
                  "connections": [c for x in said for c in x.get("connections", [])],
                  "events": [e for x in said for e in x.get("events", [])]}
        for key in ("writer", "writer_after_stop"):
            parts = [x.get(key) for x in said if x.get(key)]
            if parts:
                merged[key] = {k: sum(p.get(k) or 0 for p in parts) for k in parts[0]
                               if isinstance(parts[0][k], (int, float)) and not isinstance(parts[0][k], bool)}
        return merged

    def stop(self, timeout: float = 30.0) -> list[dict]:
        said = [c.stop(timeout) for c in self.children]
        if len(said) == 1:
            return said[0]
        stopped = [next((x for x in s if x.get("event") == "stopped"), None) for s in said]
        parts = [x.get("writer_after_stop") for x in stopped if x and x.get("writer_after_stop")]
        return [{"event": "stopped", "writer_after_stop": {k: sum(p.get(k) or 0 for p in parts) for k in parts[0]
                                                            if isinstance(parts[0][k], (int, float))}}] if parts else []

    def log_tail(self) -> str:
        return "\n".join(c.log_tail() for c in self.children)


# --- scenarios ---------------------------------------------------------------------------------------------------


def plan_scenario(name: str, total: int, per_plc: int, per_opcua: int) -> dict[str, tuple[int, int]]:
    """protocol -> (PLCs, tags per PLC)."""
    protocols = PROTOCOLS if name == "mixed" else (BY_SHORT[name],)
    share = total // 4
    out = {}
    for proto in protocols:
        size = per_opcua if proto == "OPCUA" else per_plc
        plcs = max(1, math.ceil(share / size))
        out[proto] = (plcs, round(share / plcs))
    return out


def start_servers(plan: dict, epoch: float, probes: int, life_s: float, log_dir: Path, run: int) -> dict:
    children = {}
    try:
        for i, (proto, (plcs, n)) in enumerate(plan.items()):
            children[proto] = Child(f"servers-{SHORT[proto]}", [
                "-m", "bench.collect_servers", "--protocol", proto, "--plcs", str(plcs), "--tags-per-plc", str(n),
                "--probes", str(probes), "--epoch", repr(epoch), "--max-seconds", str(life_s),
                "--seed", str(1000 * run + i + 1)], log_dir)
        ready = {}
        for proto, child in children.items():
            info = child.next(timeout=300)
            if info.get("event") != "ready":
                raise RuntimeError(f"{child.name}: unexpected {info}")
            ready[proto] = info
        return {proto: (children[proto], ready[proto]) for proto in children}
    except BaseException:
        for child in children.values():
            child.stop(10)
        raise


# --- the database ------------------------------------------------------------------------------------------------


class Database:
    """A fresh database for one run: a SQLite file in the run's folder, or a database made on a PostgreSQL server."""

    def __init__(self, server_url: str | None, folder: Path):
        self.server_url = server_url
        self.pg_name = None
        if server_url:
            import psycopg

            base = server_url.replace("postgresql+psycopg://", "postgresql://")
            self.pg_name = f"oee_collect_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(base, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{self.pg_name}"')
            self.url = f"{base.rsplit('/', 1)[0]}/{self.pg_name}"
            self.backend = "postgresql"
        else:
            self.url = f"sqlite:///{folder / 'collect.sqlite3'}"
            self.backend = "sqlite"

    def sqlite_bytes(self) -> tuple[int, int]:
        """(the SQLite file's size, its WAL's); (0, 0) on PostgreSQL."""
        if self.backend != "sqlite":
            return 0, 0
        path = self.url.split("sqlite:///", 1)[1]
        return tuple(os.path.getsize(p) if os.path.exists(p) else 0 for p in (path, path + "-wal"))

    def connect(self):
        if self.backend == "sqlite":
            conn = sqlite3.connect(self.url.split("sqlite:///", 1)[1], timeout=10, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=10000")
            return conn
        import psycopg

        return psycopg.connect(self.url, autocommit=True)

    def probe_rows(self, conn, tag_ids: list[int], since: float) -> list[tuple]:
        if self.backend == "sqlite":
            marks = ",".join("?" * len(tag_ids))
            return conn.execute(f"SELECT tag_id, time, value FROM samples WHERE tag_id IN ({marks}) AND time > ?",
                                (*tag_ids, since)).fetchall()
        return conn.execute("SELECT tag_id, extract(epoch from time)::float8, value FROM samples "
                            "WHERE tag_id = ANY(%s) AND time > to_timestamp(%s)", (tag_ids, since)).fetchall()

    def count(self, t0: float, t1: float) -> tuple[int, int, int]:
        """Rows stored in [t0, t1), rows of bad quality, distinct (tag, value) pairs among them."""
        conn = self.connect()
        try:
            if self.backend == "sqlite":
                row = conn.execute("SELECT count(*), coalesce(sum(quality <> 0), 0), "
                                   "(SELECT count(*) FROM (SELECT DISTINCT tag_id, value FROM samples "
                                   " WHERE time >= ? AND time < ?)) FROM samples WHERE time >= ? AND time < ?",
                                   (t0, t1, t0, t1)).fetchone()
            else:
                # No hash aggregate for the DISTINCT: the planner estimates the (tag, value) pairs from the value
                # column's few distinct values (the bench's ramps repeat across tags): 377,000 groups for 3,500,000
                # real ones at 50,000 tags, and its hash aggregate (parallel, spilling) ran over 8 minutes (killed;
                # with fresh statistics too). Sorted: 3.1 s for 3,770,000 rows (EXPLAIN, PostgreSQL 15, 4 MB work_mem).
                conn.execute("BEGIN")
                conn.execute("SET LOCAL enable_hashagg = off")
                row = conn.execute("SELECT count(*), count(*) FILTER (WHERE quality <> 0), "
                                   "(SELECT count(*) FROM (SELECT DISTINCT tag_id, value FROM samples "
                                   " WHERE time >= to_timestamp(%s) AND time < to_timestamp(%s)) d) FROM samples "
                                   "WHERE time >= to_timestamp(%s) AND time < to_timestamp(%s)",
                                   (t0, t1, t0, t1)).fetchone()
                conn.execute("COMMIT")
            return int(row[0]), int(row[1]), int(row[2])
        finally:
            conn.close()

    def add_history(self, minutes: float, until: float) -> tuple[int, float]:
        """`minutes` of 1 Hz rows for every tag before `until`, written second by second as the collectors write
        them (each tag's newest rows end up on a page of their own, as in a plant's file after a few minutes, rather
        than packed together as in a new one). Returns (rows, seconds taken)."""
        seconds = int(minutes * 60)
        started = time.perf_counter()
        conn = self.connect()
        try:
            tags = conn.execute("SELECT count(*) FROM tags").fetchone()[0]
            if self.backend == "sqlite":
                conn.execute("PRAGMA cache_size=-1048576")  # this connection only: the whole index in memory
                for k in range(0, seconds, 60):  # a transaction per minute of history
                    conn.execute("BEGIN")
                    conn.execute("WITH RECURSIVE s(k) AS (SELECT ? UNION ALL SELECT k + 1 FROM s WHERE k < ?) "
                                 "INSERT INTO samples (time, tag_id, value, quality) "
                                 "SELECT ? + s.k, tags.id, 0.0, 0 FROM s CROSS JOIN tags",
                                 (k, min(k + 60, seconds) - 1, until - seconds))
                    conn.execute("COMMIT")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            else:
                for k in range(0, seconds, 60):
                    conn.execute("INSERT INTO samples (time, tag_id, value, quality) "
                                 "SELECT to_timestamp(%s + s), t.id, 0.0, 0 "
                                 "FROM generate_series(%s, %s) s CROSS JOIN tags t ORDER BY s, t.id",
                                 (until - seconds, k, min(k + 60, seconds) - 1))
                conn.execute("VACUUM ANALYZE samples")
        finally:
            conn.close()
        return tags * seconds, time.perf_counter() - started

    def drop(self) -> None:
        if self.pg_name:
            import psycopg

            with psycopg.connect(self.server_url.replace("postgresql+psycopg://", "postgresql://"),
                                 autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')


def configure(db: Database, servers: dict, nodes: list[str]) -> dict[tuple[str, int, int], int]:
    """Write connections and tags as the wizard would; returns (protocol, plc, probe) -> tag id. With more than one
    node, connections are assigned to them in turn (collector_node, as the wizard would), each protocol's spread
    over all of them."""
    from sqlalchemy import text

    from config.demo_plant import sync_demo_plant
    from db.store import open_store

    endpoints = []
    for proto, (_child, info) in servers.items():
        for plc in info["plcs"]:
            endpoints.append({"machine_id": plc["name"], "name": plc["name"], "area": "Bench", "line": SHORT[proto],
                              "protocol": proto, "host": plc["host"], "port": plc["port"],
                              "protocol_config": plc["protocol_config"], "poll_interval_ms": int(INTERVAL_S * 1000),
                              "tags": [{**t, "role": None} for t in plc["tags"]]})
    store = open_store(db.url)
    try:
        sync_demo_plant(store.engine, {"name": "Collect bench"}, endpoints, [])
        if len(nodes) > 1:
            with store.engine.begin() as conn:
                ids = [r[0] for r in conn.execute(text("SELECT id FROM connections ORDER BY protocol, id"))]
                for k, cid in enumerate(ids):
                    conn.execute(text("UPDATE connections SET collector_node = :n WHERE id = :i"),
                                 {"n": nodes[k % len(nodes)], "i": cid})
        with store.engine.connect() as conn:
            rows = conn.execute(text("SELECT c.name, t.name, t.id FROM tags t JOIN connections c "
                                     "ON c.id = t.connection_id WHERE t.name LIKE 'Probe%'")).all()
    finally:
        store.close()
    ids = {(c, t): i for c, t, i in rows}
    out = {}
    for proto, (_child, info) in servers.items():
        for p, plc in enumerate(info["plcs"]):
            for k, probe in enumerate(plc["probes"]):
                out[(proto, p, k)] = ids[(plc["name"], probe)]
    return out


# --- the probe watcher ---------------------------------------------------------------------------------------------


class Watcher(threading.Thread):
    """Polls `samples` for the probe tags every WATCH_EVERY_S; notes when each (tag, value) first becomes visible."""

    def __init__(self, db: Database, tag_ids: list[int], since: float):
        super().__init__(name="probe-watcher", daemon=True)
        self.db = db
        self.tag_ids = tag_ids
        self.last_seen = {t: since for t in tag_ids}  # rows of one tag arrive in time order
        self.seen: dict[tuple[int, int], tuple[float, float]] = {}  # (tag, value ms) -> (row time, visible)
        self.queries = 0
        self.errors = 0
        self._halt = threading.Event()

    def run(self) -> None:
        conn = self.db.connect()
        try:
            while not self._halt.is_set():
                started = time.time()
                try:
                    rows = self.db.probe_rows(conn, self.tag_ids, min(self.last_seen.values()))
                except Exception:
                    self.errors += 1
                    rows = []
                self.queries += 1
                for tag_id, t, value in rows:
                    if value is None:
                        continue
                    key = (tag_id, int(round(value)))
                    if key not in self.seen:
                        self.seen[key] = (t, started)
                    if t > self.last_seen[tag_id]:
                        self.last_seen[tag_id] = t
                self._halt.wait(max(0.0, WATCH_EVERY_S - (time.time() - started)))
        finally:
            conn.close()

    def stop(self) -> None:
        self._halt.set()
        self.join(10)


# --- one run -----------------------------------------------------------------------------------------------------


class Sampler:
    """CPU seconds of the collector, the servers, this process, the database server's backends for the run's
    database (PostgreSQL) and the machine, at one moment."""

    def __init__(self, collector_pids: list[int], server_pids: dict[str, int], db: Database):
        self.collector_pids = collector_pids
        self.server_pids = server_pids
        self.db = db
        self._conn = db.connect() if db.backend == "postgresql" else None

    def database(self) -> dict[int, float]:
        if self._conn is None:
            return {}
        pids = [r[0] for r in self._conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s",
                                                 (self.db.pg_name,)).fetchall()]
        return {pid: cpu for pid in pids if (cpu := proc_cpu_s(pid)) is not None}

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    def take(self) -> dict:
        busy, total = machine_busy_s()
        return {"mono": time.monotonic(), "collector": sum(proc_cpu_s(pid) or 0.0 for pid in self.collector_pids), "database": self.database(),
                "servers": {p: proc_cpu_s(pid) for p, pid in self.server_pids.items()},
                "bench": self_cpu_s(), "busy": busy, "total": total}


def totals(stats: dict) -> dict:
    conns = stats["connections"]
    by_proto: dict[str, dict] = {}
    for c in conns:
        d = by_proto.setdefault(c["protocol"], {"cycles": 0, "skipped": 0, "stored": 0, "connections": 0})
        d["cycles"] += c["cycles"]
        d["skipped"] += c["skipped"]
        d["stored"] += c["stored"]
        d["connections"] += 1
    return by_proto


def diagnostic_args(args) -> list[str]:
    out = []
    if args.reload_interval is not None:
        out += ["--reload-interval", str(args.reload_interval)]
    if args.rollup_interval is not None:
        out += ["--rollup-interval", str(args.rollup_interval)]
    if args.what_if:
        out += ["--what-if", args.what_if]
    return out


def run_scenario(name: str, args, run: int, epoch: float, workdir: Path) -> dict:
    plan = plan_scenario(name, args.tags, args.tags_per_plc, args.opcua_tags_per_server)
    life_s = args.warmup + args.seconds + 300
    folder = Path(tempfile.mkdtemp(prefix=f"collect-{name}-", dir=workdir))
    load_before = loadavg()
    servers = start_servers(plan, epoch, args.probes, life_s, folder, run)
    collector = None
    db = None
    try:
        db = Database(args.database_url, folder)
        nodes = [f"bench-{k + 1}" for k in range(args.collector_processes)]
        probe_ids = configure(db, servers, nodes)
        history = db.add_history(args.history_minutes, time.time() - 60) if args.history_minutes else (0, 0.0)
        tags = sum(len(p["tags"]) for _c, info in servers.values() for p in info["plcs"])
        plcs = sum(len(info["plcs"]) for _c, info in servers.values())
        base = baseline(servers) if not args.no_baseline else {}
        collector = CollectorGroup(db.url, folder, life_s, nodes, diagnostic_args(args))
        collector.next(timeout=120)  # started
        deadline = time.monotonic() + 180
        while True:  # every connection connected and has read
            stats = collector.next(timeout=30)
            conns = stats.get("connections", [])
            if len(conns) == plcs and all(c["state"] == "connected" and c["cycles"] >= 1 for c in conns):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"connections not all up after 180 s: "
                                   f"{[(c['name'], c['state'], c['error']) for c in conns]}")
        ready_at = time.monotonic()
        while time.monotonic() - ready_at < args.warmup:
            collector.next(timeout=30)
        sampler = Sampler(collector.pids, {p: c.pid for p, (c, _i) in servers.items()}, db)
        s0 = collector.next(timeout=30)
        c0 = sampler.take()
        watcher = Watcher(db, sorted(probe_ids.values()), s0["t"] - 2.0)
        watcher.start()
        rss, queue_rows, events, wal = [], [], [], []
        latency_ms = {p: [] for p in plan}
        while True:
            s1 = collector.next(timeout=30)
            rss.append(sum(proc_status_kb(pid, "VmRSS") or 0 for pid in collector.pids))
            wal.append(db.sqlite_bytes()[1])
            queue_rows.append(((s1["writer"] or {}).get("queue_rows") or 0, s1["t"] - s0["t"]))
            events += [e for e in s1.get("events", []) if e[1] >= s0["t"]]
            for c in s1["connections"]:
                if c["latency_ms"] is not None:
                    latency_ms[c["protocol"]].append(c["latency_ms"])
            if s1["t"] >= s0["t"] + args.seconds - 0.01:
                break
        c1 = sampler.take()
        sampler.close()
        hwm = sum(proc_status_kb(pid, "VmHWM") or 0 for pid in collector.pids)
        file_end = db.sqlite_bytes()[0]
        t0, t1 = s0["t"], s1["t"]
        grace_until = time.monotonic() + 4.0  # let changes made near t1 reach the database
        while time.monotonic() < grace_until:
            collector.next(timeout=30)
        watcher.stop()
        final = collector.stop(60)
        collector = None
        count_started = time.perf_counter()
        rows, bad_rows, distinct = db.count(t0, t1)
        count_s = time.perf_counter() - count_started
        changes = {}
        for proto, (child, _info) in servers.items():
            said = child.stop(30)
            stopped = next((x for x in said if x.get("event") == "stopped"), {})
            changes[proto] = stopped
    finally:
        if collector is not None:
            collector.stop(30)
        for child, _info in servers.values():
            if child.proc.poll() is None:
                child.stop(30)
        if db is not None:
            db.drop()

    window = t1 - t0
    wall = c1["mono"] - c0["mono"]
    a0, a1 = totals(s0), totals(s1)
    per_proto = {}
    for proto in plan:
        d0, d1 = a0.get(proto, {}), a1.get(proto, {})
        per_proto[proto] = {k: d1.get(k, 0) - d0.get(k, 0) for k in ("cycles", "skipped", "stored")}
        per_proto[proto]["connections"] = d1.get("connections", 0)
        per_proto[proto]["read_ms_p50"] = med(latency_ms[proto])
        per_proto[proto]["read_ms_max"] = max(latency_ms[proto]) if latency_ms[proto] else None
        per_proto[proto]["server_cpu_pct"] = 100 * (c1["servers"][proto] - c0["servers"][proto]) / wall
        ch = changes.get(proto, {})
        per_proto[proto]["server_late_ticks"] = ch.get("late_ticks")
        per_proto[proto]["server_tick_ms_p50"] = ch.get("tick_ms_p50")
    # latency: every probe change made inside the window
    lat, poll_part, after_part, missed, made, worst = [], [], [], 0, 0, []
    lat_by_proto = {p: [] for p in plan}
    for proto, stopped in changes.items():
        for p, k, value in stopped.get("probe_changes", []):
            changed = epoch + value / 1000
            if not t0 <= changed < t1:
                continue
            made += 1
            hit = watcher.seen.get((probe_ids[(proto, p, k)], value))
            if hit is None:
                missed += 1
                continue
            row_t, visible = hit
            lat.append(visible - changed)
            lat_by_proto[proto].append(visible - changed)
            poll_part.append(row_t - changed)
            after_part.append(visible - row_t)
            worst.append((visible - changed, changed - t0, SHORT[proto]))
    cycles = sum(v["cycles"] for v in per_proto.values())
    skipped = sum(v["skipped"] for v in per_proto.values())
    expected_cycles = plcs * window / INTERVAL_S
    busy = c1["busy"] - c0["busy"]
    database_cpu = sum(cpu - c0["database"].get(pid, 0.0) for pid, cpu in c1["database"].items())
    ours = database_cpu + ((c1["collector"] - c0["collector"]) + sum(c1["servers"][p] - c0["servers"][p] for p in plan)
            + (c1["bench"] - c0["bench"]))
    result = {
        "scenario": name, "run": run, "tags": tags, "plcs": plcs, "window_s": window,
        "rows": rows, "bad_rows": bad_rows, "distinct_rows": distinct, "samples_per_s": rows / window,
        "count_s": count_s,
        "expected_per_s": tags / INTERVAL_S,
        "cycles": cycles, "expected_cycles": expected_cycles, "skipped": skipped,
        "collector_cpu_pct": 100 * (c1["collector"] - c0["collector"]) / wall,
        "servers_cpu_pct": 100 * sum(c1["servers"][p] - c0["servers"][p] for p in plan) / wall,
        "bench_cpu_pct": 100 * (c1["bench"] - c0["bench"]) / wall,
        "database_cpu_pct": 100 * database_cpu / wall if db.backend == "postgresql" else None,
        "machine_busy_pct": 100 * busy / wall, "other_cpu_pct": 100 * (busy - ours) / wall,
        "rss_end_mib": (rss[-1] or 0) / 1024, "rss_peak_mib": max(r or 0 for r in rss) / 1024,
        "hwm_mib": (hwm or 0) / 1024,
        "wal_peak_mib": max(wal, default=0) / 2**20, "file_end_mib": file_end / 2**20,
        "lat": lat, "lat_by_proto": lat_by_proto, "poll_part": poll_part, "after_part": after_part,
        "probe_changes": made, "probe_missed": missed, "watcher_queries": watcher.queries,
        "watcher_errors": watcher.errors,
        "writer_dropped": (s1["writer"] or {}).get("dropped_rows"),
        "writer_queue_end": (s1["writer"] or {}).get("queue_rows"),
        "writer_queue_max": max(queue_rows) if queue_rows else (0, 0),
        "worst": sorted(worst, reverse=True)[:5],
        "events": {kind: [(e[2], e[1] - t0, e[3]) for e in events if e[0] == kind and e[1] < t1]
                   for kind in ("commit", "rollup", "reload", "gc0", "gc1", "gc2", "skip", "refreeze-full",
                                 "refreeze-young")},
        "final_writer": (final[-1].get("writer_after_stop") if final else None),
        "per_proto": per_proto, "baseline": base, "load_before": load_before, "load_after": loadavg(),
        "backend": db.backend, "history": history,
    }
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        result["folder"] = str(folder)
    return result


# --- reporting ---------------------------------------------------------------------------------------------------


def baseline_cpu_pct(result: dict, key: str = "cpu_s") -> float | None:
    if not result["baseline"]:
        return None
    return 100 * sum(b[key] for b in result["baseline"].values()) / INTERVAL_S


def app_cpu_pct(result: dict) -> float:
    """What the app spends to collect and store: its collector processes, plus on PostgreSQL the server's backends
    for the run's database (the inserts happen there; on SQLite they are in the collector processes already)."""
    return result["collector_cpu_pct"] + (result["database_cpu_pct"] or 0.0)


SIDES = ("CPU compared: app = user+system time of every collector process (all threads: pollers and drivers, the "
         "writer, the live service, the scheduler, the garbage collector) + on PostgreSQL the server's backends for "
         "the run's database; base = the raw libraries doing the same requests in one thread of the bench process "
         "(median cycle; values as the libraries return them: no conversion, machine model, queue or storage)")


def fmt(v, spec: str = ".2f", none: str = "-") -> str:
    return none if v is None else format(v, spec)


def print_run(r: dict) -> None:
    lat = r["lat"]
    base = baseline_cpu_pct(r)
    print(f"  {r['scenario']} run {r['run']}: {r['tags']:,} tags on {r['plcs']} PLCs, window {r['window_s']:.1f} s; "
          f"load {r['load_before']} -> {r['load_after']}")
    print(f"    samples/s {r['samples_per_s']:,.0f} of {r['expected_per_s']:,.0f} (bad rows {r['bad_rows']}, "
          f"new values {100 * r['distinct_rows'] / max(r['rows'], 1):.0f} %); cycles "
          f"{r['cycles']} of {r['expected_cycles']:.0f}, skipped {r['skipped']}; writer dropped "
          f"{r['writer_dropped']}, queue at end {r['writer_queue_end']}, max {r['writer_queue_max'][0]} "
          f"(at +{r['writer_queue_max'][1]:.0f} s); rows counted in {r.get('count_s', 0):.1f} s")
    print(f"    CPU % of one core: collector {r['collector_cpu_pct']:.1f}, servers {r['servers_cpu_pct']:.1f}, bench "
          f"{r['bench_cpu_pct']:.1f}, "
          + (f"PostgreSQL {r['database_cpu_pct']:.1f}, " if r["database_cpu_pct"] is not None else "")
          + f"other {r['other_cpu_pct']:.1f} (machine busy {r['machine_busy_pct']:.1f} of "
          f"{100 * (os.cpu_count() or 1)}); baseline {fmt(base, '.1f')}, app's drivers alone "
          f"{fmt(baseline_cpu_pct(r, 'driver_cpu_s'), '.1f')}; app (collector + database) {app_cpu_pct(r):.1f} = "
          f"{fmt(app_cpu_pct(r) / base if base else None, '.2f')}x the baseline")
    if r["history"][0]:
        print(f"    history stored before the collectors started: {r['history'][0]:,} rows in {r['history'][1]:.0f} s")
    print(f"    RSS MiB: end {r['rss_end_mib']:.0f}, peak in window {r['rss_peak_mib']:.0f}, VmHWM {r['hwm_mib']:.0f}"
          + (f"; SQLite file {r['file_end_mib']:,.0f} MiB at the window's end, its WAL up to {r['wal_peak_mib']:,.0f}"
             f" MiB (looked at once a second)" if r["backend"] == "sqlite" else ""))
    print(f"    latency s: p50 {fmt(pct(lat, 50))} p95 {fmt(pct(lat, 95))} p99 {fmt(pct(lat, 99))} max "
          f"{fmt(max(lat) if lat else None)} (n={len(lat)}, missed {r['probe_missed']} of {r['probe_changes']}); "
          f"poll part p50 {fmt(pct(r['poll_part'], 50))} p99 {fmt(pct(r['poll_part'], 99))}; after read p50 "
          f"{fmt(pct(r['after_part'], 50))} p99 {fmt(pct(r['after_part'], 99))}")
    ev = r["events"]
    commits = [d for d, _at, _n in ev["commit"]]
    rows = [n for _d, _at, n in ev["commit"] if n]
    print(f"    writer: {len(commits)} commits, rows per commit p50 {fmt(med(rows), '.0f')}, commit s p50 "
          f"{fmt(med(commits))} max {fmt(max(commits) if commits else None)}; rollup refresh: "
          + (", ".join(f"{d:.2f} s at +{at:.0f}" for d, at, _n in ev["rollup"]) or "none")
          + "; configuration reload: " + (f"{len(ev['reload'])} x, max {max(d for d, _a, _n in ev['reload']):.2f} s"
                                          if ev["reload"] else "none"))
    gcs = {g: [d for d, _at, _n in ev[f"gc{g}"]] for g in (0, 1, 2)}
    print("    garbage collector: " + "; ".join(
        f"generation {g}: {len(d)} x, {sum(d):.2f} s in all, max {1000 * max(d) if d else 0:.0f} ms"
        for g, d in gcs.items()) + "; refreezes: " + (", ".join(
            f"{kind[9:]} {d:.2f} s at +{at:.1f}" for kind in ("refreeze-full", "refreeze-young")
            for d, at, _n in ev[kind]) or "none"))
    for _d, at, why in ev["skip"]:
        # What else ran in the 2 s before a skipped cycle: the writer's commits, reloads, rollups, collections.
        near = [f"{kind} {d:.2f} s at +{a:.1f}" for kind in ("commit", "rollup", "reload", "gc0", "gc1", "gc2",
                                                             "refreeze-full", "refreeze-young")
                for d, a, _n in ev[kind] if at - 2.0 <= a <= at and (d >= 0.05 or kind not in ("commit", "rollup", "reload"))]
        detail = ", ".join(f"{k} {v}" for k, v in why.items() if k not in ("at", "connection"))
        print(f"    skipped at +{at:.1f} {why.get('connection')}: {detail}; before it: {'; '.join(near) or 'nothing'}")
    print("    slowest probes (latency s, changed at +s in the window, protocol): "
          + ", ".join(f"{lt:.2f} at +{at:.0f} {p}" for lt, at, p in r["worst"]))
    for proto, d in r["per_proto"].items():
        b = r["baseline"].get(proto)
        lp = r["lat_by_proto"][proto]
        print(f"    {SHORT[proto]:<7} {d['connections']} conn: cycles {d['cycles']}, skipped {d['skipped']}, read ms "
              f"p50 {fmt(d['read_ms_p50'], '.0f')} max {fmt(d['read_ms_max'], '.0f')}, server CPU "
              f"{d['server_cpu_pct']:.0f} % (update p50 {fmt(d['server_tick_ms_p50'], '.0f')} ms, late "
              f"{d['server_late_ticks']}), latency p99 {fmt(pct(lp, 99))}"
              + (f"; baseline {100 * b['cpu_s']:.1f} % CPU, {1000 * b['wall_s']:.0f} ms per cycle, drivers alone "
                 f"{100 * b['driver_cpu_s']:.1f} %, {1000 * b['driver_wall_s']:.0f} ms" if b else ""))
    sys.stdout.flush()


def summarise(results: list[dict], args) -> None:
    if not results:
        print("no run finished: targets MISSED (see the failures above)")
        return
    print(f"\nSummary: medians of {args.repeat} run(s) per scenario; CPU in % of one core (collector; base = the raw "
          f"libraries, drv = the app's drivers alone, same reads; app/base = (collector + database server) / base, "
          f"median of the runs'); latency in seconds from the change in the PLC to "
          f"the row visible in the database, polling at {INTERVAL_S:g} s; other = CPU used by other processes")
    head = (f"{'scenario':<8} {'tags':>6} {'PLCs':>4} {'samples/s':>9} {'cycles':>11} {'skip':>4} {'CPU%':>5} "
            f"{'base%':>5} {'drv%':>5} {'app/base':>8} {'RSS MiB':>8} {'p50':>5} {'p95':>5} {'p99':>5} {'p99-1s':>6} "
            f"{'other%':>6}")
    print(head)
    for name in dict.fromkeys(r["scenario"] for r in results):
        rs = [r for r in results if r["scenario"] == name]
        cpu = med([r["collector_cpu_pct"] for r in rs])
        base = med([baseline_cpu_pct(r) for r in rs])
        drv = med([baseline_cpu_pct(r, "driver_cpu_s") for r in rs])
        p99 = med([pct(r["lat"], 99) for r in rs])
        ratios = [app_cpu_pct(r) / baseline_cpu_pct(r) for r in rs if baseline_cpu_pct(r)]
        cycles = f"{med([r['cycles'] for r in rs]):.0f}/{med([r['expected_cycles'] for r in rs]):.0f}"
        print(f"{name:<8} {rs[0]['tags']:>6} {rs[0]['plcs']:>4} {med([r['samples_per_s'] for r in rs]):>9,.0f} "
              f"{cycles:>11} {med([r['skipped'] for r in rs]):>4.0f} {cpu:>5.1f} {fmt(base, '5.1f'):>5} "
              f"{fmt(drv, '5.1f'):>5} "
              f"{fmt(med(ratios) if ratios else None, '7.2f') + 'x':>8} "
              f"{med([r['rss_end_mib'] for r in rs]):>4.0f}/{med([r['rss_peak_mib'] for r in rs]):<3.0f} "
              f"{fmt(med([pct(r['lat'], 50) for r in rs])):>5} {fmt(med([pct(r['lat'], 95) for r in rs])):>5} "
              f"{fmt(p99):>5} {fmt(p99 - INTERVAL_S if p99 is not None else None, '+.2f'):>6} "
              f"{med([r['other_cpu_pct'] for r in rs]):>6.0f}")
    mixed = [r for r in results if r["scenario"] == "mixed"]
    if mixed:
        target_tags = 50000
        lines = []
        for i, r in enumerate(mixed, 1):
            p99 = pct(r["lat"], 99)
            lines += [verdict(r["skipped"], 0, "skipped cycles", bound="at most", what=f"run {i}"),
                      verdict(r["bad_rows"], 0, "bad rows", bound="at most", what=f"run {i}"),
                      verdict(r["rows"], math.ceil(0.99 * r["tags"] * math.floor(r["window_s"])), "rows",
                              bound="at least",
                              what=f"run {i} rows written (99 % of tags x whole seconds)"),
                      verdict(None if p99 is None else p99 - INTERVAL_S, 1.0, "s",
                              what=f"run {i} p99 latency beyond the {INTERVAL_S:g} s interval")]
        ratios = [app_cpu_pct(r) / baseline_cpu_pct(r) for r in mixed if baseline_cpu_pct(r)]
        lines.append(verdict(med(ratios) if ratios else None, 1.5, "x", bound="at most",
                             what="app CPU (collector processes + database backends) against the raw libraries' "
                                  "(same reads, same run), median"))
        lines.append(verdict(mixed[0]["tags"], target_tags, "tags", bound="at least", what="tags polled"))
        lines.append(verdict(len(mixed), args.repeat, "runs", bound="at least",
                             what="mixed runs that finished (a failed run counts as missed)"))
        print(f"\nTargets (>= {target_tags:,} tags mixed at 1 Hz, no skipped cycles, p99 < 1 s beyond the interval, "
              f"CPU at most 1.5x the raw libraries'):")
        print("  " + SIDES)
        for line in lines:
            print("  " + line)
        print(all_met(lines) + ("" if mixed[0]["tags"] >= target_tags else " (fewer tags than the target: run with "
                                                                          "--full)"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("Figures:")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tags", type=int, default=None, help="tags of the mixed run (each protocol alone: a "
                                                                  "quarter); default 2000, 50000 with --full")
    parser.add_argument("--seconds", type=float, default=None, help="measuring window; default 20, 60 with --full")
    parser.add_argument("--warmup", type=float, default=None, help="seconds after every connection has read; "
                                                                     "default 5, 10 with --full")
    parser.add_argument("--repeat", type=int, default=None, help="runs per scenario, medians quoted; default 1, "
                                                                   "2 with --full")
    parser.add_argument("--full", action="store_true", help="the target: 50,000 tags, 60 s windows, 3 runs")
    parser.add_argument("--scenarios", default="logix,s7,opcua,modbus,mixed",
                        help="comma-separated: logix, s7, opcua, modbus, mixed")
    parser.add_argument("--tags-per-plc", type=int, default=1000)
    parser.add_argument("--opcua-tags-per-server", type=int, default=2500)
    parser.add_argument("--probes", type=int, default=4, help="latency probe tags per PLC")
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL server URL (a database is made on it per run and dropped); "
                             "default: SQLite in a temporary folder")
    parser.add_argument("--backends", default=None,
                        help="comma-separated: sqlite, postgresql (at --database-url, default " + DEFAULT_PG
                             + "); each gets its runs and its verdicts; default: sqlite,postgresql with --full, "
                               "else the one --database-url names")
    parser.add_argument("--collector-processes", type=int, default=None,
                        help="collector processes sharing the connections (each polls those assigned to its "
                             "node, collector_node); CPU and memory are their sum; default 1, 2 with --full")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--reload-interval", type=float, default=None,
                        help="diagnostics: the collectors' configuration reload interval (default: the app's, 10 s)")
    parser.add_argument("--rollup-interval", type=float, default=None,
                        help="diagnostics: the writer's rollup refresh interval (default: the app's, 60 s)")
    parser.add_argument("--what-if", default="", help="diagnostics: changes to the app tried in the collector "
                                                      "process only, comma-separated: rollups-back-to-back, "
                                                      "sqlite-page-4096 (also where the bench makes the file), multirow-insert, "
                                                      "core-config-load, gc-freeze, gc-threshold, gc-young-200k, gc-default "
                                                      "(Python's own gc settings) "
                                                      "(see bench/collect_app.py)")
    parser.add_argument("--history-minutes", type=float, default=0,
                        help="rows of 1 Hz history per tag stored before the collectors start, written second by "
                             "second: a plant's file rather than a new one (on SQLite a new file keeps many tags' "
                             "newest rows on one page; after a few minutes each tag's are on pages of their own, "
                             "and each cycle rewrites one page per tag); default 0")
    parser.add_argument("--keep", action="store_true", help="keep each run's folder (logs, SQLite file)")
    args = parser.parse_args(argv)
    args.tags = args.tags or (50000 if args.full else 2000)
    args.seconds = args.seconds or (60 if args.full else 20)
    args.warmup = args.warmup if args.warmup is not None else (10 if args.full else 5)
    args.repeat = args.repeat or (3 if args.full else 1)
    args.collector_processes = args.collector_processes or (2 if args.full else 1)
    backends = [b.strip() for b in (args.backends or ("sqlite,postgresql" if args.full else
                                                      "postgresql" if args.database_url else "sqlite")).split(",")
                if b.strip()]
    if not backends or any(b not in ("sqlite", "postgresql") for b in backends):
        parser.error("--backends: sqlite, postgresql or both")
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    for s in scenarios:
        if s != "mixed" and s not in BY_SHORT:
            parser.error(f"--scenarios: {s!r}; use logix, s7, opcua, modbus or mixed")
    if not 1 <= args.collector_processes <= 8:
        parser.error("--collector-processes 1..8")
    if not 4 <= args.tags <= 200_000 or not 5 <= args.seconds <= 3600 or not 1 <= args.repeat <= 20:
        parser.error("--tags 4..200000, --seconds 5..3600, --repeat 1..20")
    if args.database_url and not args.database_url.startswith(("postgresql://", "postgresql+psycopg://")):
        parser.error("--database-url: a postgresql:// server URL (SQLite is the default)")

    # SIGTERM (timeout, a CI job cancelled) unwinds like Ctrl-C: children stopped, the PostgreSQL database dropped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if "sqlite-page-4096" in args.what_if.split(","):  # this process makes the SQLite file (configure)
        from bench.collect_app import what_if_sqlite_page_4096

        what_if_sqlite_page_4096()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("asyncua").setLevel(logging.ERROR)  # the baseline's client: session timeout notices
    epoch = float(int(time.time()))
    print(f"machine: {machine_description()}")
    print(f"libraries: {versions()}")
    print(f"code: {code_version()}")
    print(f"load average at start: {loadavg()}")
    pg_server = args.database_url or DEFAULT_PG
    print(f"databases: {', '.join('PostgreSQL at ' + pg_server.rsplit('/', 1)[0] if b == 'postgresql' else 'SQLite' for b in backends)}; "
          f"polling every {INTERVAL_S:g} s; mixed run {args.tags:,} tags, each protocol alone {args.tags // 4:,}; "
          f"window {args.seconds:g} s after {args.warmup:g} s warm-up; {args.repeat} run(s) per scenario; "
          f"{args.collector_processes} collector process(es)"
          + (f"; DIAGNOSTIC settings: {' '.join(diagnostic_args(args))}" if diagnostic_args(args) else "") + "\n")
    results = []
    with tempfile.TemporaryDirectory(prefix="oee-collect-") as workdir:
        if args.keep:
            workdir = tempfile.mkdtemp(prefix="oee-collect-kept-")
            print(f"run folders kept under {workdir}")
        for backend in backends:
            run_args = copy.copy(args)
            run_args.database_url = pg_server if backend == "postgresql" else None
            print(f"\n== {backend} ==", flush=True)
            for run in range(1, args.repeat + 1):
                for name in scenarios:
                    try:
                        r = run_scenario(name, run_args, run, epoch, Path(workdir))
                    except Exception as exc:
                        print(f"  {name} run {run}: FAILED: {exc!r}", flush=True)
                        traceback.print_exc()
                        continue
                    results.append(r)
                    print_run(r)
    for backend in backends:
        print(f"\n== {backend}: {args.collector_processes} collector process(es) ==")
        summarise([r for r in results if r["backend"] == backend], args)


if __name__ == "__main__":
    main()
