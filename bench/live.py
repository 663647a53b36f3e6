"""bench/live: from a value changing in a PLC to a WebSocket client receiving it.

    python -m bench.live                          # one process (role all) on SQLite
    python -m bench.live --database-url postgresql://postgres@127.0.0.1:5432/postgres --split
                                                  # a collector process + gunicorn -w 2 over LISTEN/NOTIFY

A simulated S7 PLC (python-snap7's server, in this process) holds --tags DINTs. Every 1/--write-hz seconds a
writer sets all of them to the next sequence number k and notes the time. The app polls the PLC at 10 Hz and
streams to WebSocket clients (/ws/plc/BENCH-S7/), run in --client-procs processes. From what the clients
receive:

- latency write -> client: from the write of k to the client's receiving k, including the wait for the next poll
  (0 to 100 ms: the writes are spread over the poll's phase, see Writer); "beyond polling" is that minus the whole
  100 ms polling interval, the issue's target (p95 < 150 ms); the wait alone is printed as write -> poll;
- latency sample -> client: from the poll's sample time (in the message) to the client;
- lost: values written (and so polled: writes are slower than polls) that a client never received; a client
  "fell behind" when the server coalesced values for it during the window (its `dropped` count, read with a ping
  at the window's start and end), and "lost by clients that kept up" must be 0.

Each client notes when a message arrived and decodes it after the run: 50 clients share a process (and its GIL),
and decoding one 8 KB message while the next waits would delay the next one's timestamp, a cost of the
measurement, not of the server. Each phase prints the CPU the app (with its workers) and the clients used, and the
load average at its start and end: on a small shared machine the figures move with the load.

Two phases: one client (latency at 10 Hz), then --clients clients at --tags x --write-hz updates a second. The
baseline, measured in the same run with the same clients and message sizes: a bare flask-sock server that sends
pre-encoded messages of the same size at the same rate to the same number of clients (the transport's floor), and
the hub alone in-process (publish to N coalescing subscribers and N threads taking).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.verdict import all_met, verdict  # noqa: E402

POLL_MS = 100


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def fmt_ms(v) -> str:
    return "-" if v is None else f"{v * 1000:7.1f}"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- CPU used by processes (the app's, with its children: gunicorn workers) --------------------------------------


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of a process from /proc (Linux), None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """CPU seconds used so far by these processes and their descendants."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None:
                stats[int(entry)] = st
    wanted, total, frontier = set(pids), 0.0, list(pids)
    while frontier:
        pid = frontier.pop()
        children = [p for p, (ppid, _) in stats.items() if ppid == pid and p not in wanted]
        wanted.update(children)
        frontier.extend(children)
    for pid in wanted:
        if pid in stats:
            total += stats[pid][1]
    return total


# --- the PLC -------------------------------------------------------------------------------------------------------


class Plc:
    def __init__(self, tags: int):
        import logging

        import snap7.server
        from snap7.datatypes import S7Area
        from snap7.type import SrvArea

        logging.getLogger("snap7").setLevel(logging.WARNING)
        self.tags = tags
        self.area = bytearray(4 * tags)
        self.srv = snap7.server.Server(log=False)
        self.srv.register_area(SrvArea.DB, 1, self.area)
        self.srv.start_to("127.0.0.1", 0)
        self.port = self.srv.server_socket.getsockname()[1]
        self.lock = self.srv.area_locks[(S7Area.DB, 1)]
        self.fmt = struct.Struct(f">{tags}i")

    def write(self, k: int) -> None:
        raw = self.fmt.pack(*([k] * self.tags))
        with self.lock:
            self.area[:] = raw

    def stop(self) -> None:
        self.srv.stop()


GOLDEN = (5 ** 0.5 - 1) / 2


class Writer:
    """Sets every tag to k = 1, 2, 3... at write_hz; times[k] is when k was written.

    Write k is shifted by frac(k x 0.618...) of the polling interval: writes at a rate that divides the polls' (5 Hz
    against 10 Hz) would otherwise land at one fixed phase of the poll, and the wait for the next poll, up to a whole
    interval, would be measured at one value (near 0 in an earlier run, so "beyond polling" came out negative). The
    golden-ratio sequence spreads the phases evenly over the interval, deterministically.
    """

    def __init__(self, plc: Plc, write_hz: float):
        self.plc, self.period = plc, 1.0 / write_hz
        self.times: dict[int, float] = {}
        self.k = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "Writer":
        self._thread.start()
        return self

    def _run(self) -> None:
        start = time.monotonic()
        spread = min(POLL_MS / 1000, self.period)  # offsets below one period keep the writes in order
        while not self._stop.is_set():
            self.k += 1
            self.plc.write(self.k)
            self.times[self.k] = time.time()
            nxt = start + self.k * self.period + (self.k * GOLDEN % 1.0) * spread
            self._stop.wait(max(nxt - time.monotonic(), 0))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def configure(url: str, plc: Plc) -> None:
    from config.demo_plant import sync_demo_plant
    from db.store import open_store

    store = open_store(url)
    try:
        tags = [{"name": f"V{i:04d}", "address": f"DB1.DBD{4 * i}", "data_type": "DINT", "role": None}
                for i in range(plc.tags)]
        sync_demo_plant(store.engine, {"name": "Live bench"}, [{
            "machine_id": "BENCH-S7", "name": "Bench PLC", "area": "Bench", "line": "Bench", "protocol": "S7",
            "host": "127.0.0.1", "port": plc.port, "protocol_config": {"rack": 0, "slot": 1},
            "poll_interval_ms": POLL_MS, "tags": tags}], [])
    finally:
        store.close()


# --- clients (in processes of their own) ---------------------------------------------------------------------------


def client_proc(port: int, path: str, n: int, seconds: float, start_at: float, out, ready) -> None:
    """n clients in threads; each records (k, receive time, sample time) per k received, per tag the ks seen."""
    import websocket

    results = []
    lock = threading.Lock()
    conns = []
    for _ in range(n):
        for attempt in range(20):
            try:
                conns.append(websocket.create_connection(f"ws://127.0.0.1:{port}{path}", timeout=30,
                                                             skip_utf8_validation=True))
                break
            except Exception:
                if attempt == 19:
                    raise
                time.sleep(0.5)
    ready.put(len(conns))

    def run(ws):
        records, seen, names = [], {}, {}
        end = start_at + seconds
        ws.settimeout(5)
        arrived = []  # (time, raw): decoded after the run, so that this client's own work delays no timestamp
        final_dropped = None
        bare = path.startswith("/ws/bare/")
        pinged = bare
        while time.time() < end:
            try:
                raw = ws.recv()
            except Exception:
                break
            arrived.append((time.time(), raw))
            if not pinged and arrived[-1][0] >= start_at:  # what was coalesced before the window is not counted
                ws.send('{"type":"ping","id":"start"}')
                pinged = True
        # What the server coalesced away for this client up to now (the last heartbeat may be 2 s old).
        if not bare:
            try:
                ws.send('{"type":"ping","id":"end"}')
                deadline = time.time() + 10
                while time.time() < deadline:
                    msg = json.loads(ws.recv())
                    if msg.get("type") == "pong":
                        final_dropped = msg.get("dropped", 0)
                        break
            except Exception:
                pass
        for now, raw in arrived:
            msg = json.loads(raw)
            kind = msg.get("type")
            if kind == "snapshot":
                names = {tid: t["name"] for tid, t in msg.get("tags", {}).items()}
            elif kind == "tag_update" and now >= start_at:
                ks = {}
                for tid, value in msg["tags"].items():
                    t, v = value[0], value[1]
                    if v is not None:
                        k = int(v)
                        seen.setdefault(tid, set()).add(k)
                        ks.setdefault(k, t)
                for k, t in ks.items():
                    records.append((k, now, t))
            elif kind == "heartbeat":
                records.append(("hb", now, msg.get("dropped", 0)))
            elif kind == "pong" and msg.get("id") == "start":
                records.append(("hb0", now, msg.get("dropped", 0)))
            elif kind == "bench":
                records.append(("raw", now, msg["sent"]))
        if final_dropped is not None:
            records.append(("hb", time.time(), final_dropped))
        with lock:
            results.append({"records": records, "seen": {tid: sorted(v) for tid, v in seen.items()},
                            "tags": len(names), "end": end})
        try:
            ws.close(timeout=1)
        except Exception:
            pass

    cpu0 = time.process_time()
    threads = [threading.Thread(target=run, args=(ws,)) for ws in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if results:
        results[0]["cpu_s"] = time.process_time() - cpu0
    out.put(results)


def run_clients(port: int, path: str, clients: int, procs: int, seconds: float) -> list[dict]:
    ctx = mp.get_context("spawn")
    out, ready = ctx.Queue(), ctx.Queue()
    per = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    workers = []
    start_at = time.time() + 2.0 + 0.05 * clients
    for n in per:
        if n:
            p = ctx.Process(target=client_proc, args=(port, path, n, seconds, start_at, out, ready), daemon=True)
            p.start()
            workers.append(p)
    connected = sum(ready.get(timeout=120) for _ in workers)
    if time.time() > start_at:
        print(f"  (connecting {connected} clients took longer than planned)")
    results = []
    for _ in workers:
        results.extend(out.get(timeout=seconds + 180))
    for p in workers:
        p.join(10)
    return results


def analyse(results: list[dict], writes: dict[int, float], t_from: float, t_to: float) -> dict:
    """Latencies of values written inside the window; lost: what some client got and another did not (the live
    path's loss), and not polled: written but seen by no client (the poller missed it, not the live path)."""
    e2e, sample, poll_wait, dropped = [], [], [], 0
    t_to = min([t_to] + [r["end"] for r in results if "end" in r])  # when the clients stopped listening
    window = {k for k, t in writes.items() if t_from + 0.5 <= t <= t_to - 1.0}
    union: dict[str, set] = {}
    for r in results:
        for tid, ks in r["seen"].items():
            union.setdefault(tid, set()).update(k for k in ks if k in window)
    lost = expected = lost_keeping_up = behind = 0
    for r in results:
        client_dropped, dropped_before = 0, 0
        for rec in r["records"]:
            if rec[0] == "hb0":
                dropped_before = rec[2]
            elif rec[0] == "hb":
                client_dropped = max(client_dropped, rec[2])
            elif rec[0] in window:
                e2e.append(rec[1] - writes[rec[0]])
                sample.append(rec[1] - rec[2])
                poll_wait.append(rec[2] - writes[rec[0]])
        client_dropped = max(client_dropped - dropped_before, 0)  # coalesced from the window's start on
        dropped += client_dropped
        behind += client_dropped > 0
        client_lost = 0
        for tid, ks in union.items():
            got = set(r["seen"].get(tid, ()))
            client_lost += len(ks - got)
            expected += len(ks)
        lost += client_lost
        if client_dropped == 0:
            lost_keeping_up += client_lost
    not_polled = sum(len(window - ks) for ks in union.values())
    return {"clients": len(results), "e2e": e2e, "sample": sample, "poll_wait": poll_wait, "lost": lost, "expected": expected,
            "dropped": dropped, "behind": behind, "lost_keeping_up": lost_keeping_up, "not_polled": not_polled,
            "written": len(window) * len(union)}


# --- baselines -----------------------------------------------------------------------------------------------------


def bare_server(port: int, tags: int, rate_hz: float) -> None:
    """A bare flask-sock server: every client gets a pre-encoded message of the app's size at the same rate."""
    from flask import Flask
    from flask_sock import Sock

    app = Flask("bare")
    sock = Sock(app)
    body = json.dumps({str(i): [time.time(), 123456, 0] for i in range(tags)}, separators=(",", ":"))
    tick = threading.Condition()
    state = {"n": 0}

    def ticker():
        nxt = time.monotonic()
        while True:
            nxt += 1 / rate_hz
            time.sleep(max(nxt - time.monotonic(), 0))
            with tick:
                state["n"] += 1
                state["sent"] = time.time()
                tick.notify_all()

    threading.Thread(target=ticker, daemon=True).start()

    @sock.route("/ws/bare/")
    def bare(ws):
        seen = state["n"]
        while True:
            with tick:
                tick.wait_for(lambda last=seen: state["n"] != last, timeout=5)
                seen, sent = state["n"], state.get("sent", 0)
            ws.send('{"type":"bench","sent":%r,"tags":%s}' % (sent, body))

    app.run(host="127.0.0.1", port=port, threaded=True)


def baseline_ws(clients: int, procs: int, tags: int, rate_hz: float, seconds: float) -> list[float]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.live", "--bare-server", str(port), "--tags", str(tags),
                             "--write-hz", str(rate_hz)], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        results = run_clients(port, "/ws/bare/", clients, procs, seconds)
    finally:
        proc.terminate()
        proc.wait(10)
    return [rec[1] - rec[2] for r in results for rec in r["records"] if rec[0] == "raw"]


def baseline_hub(clients: int, tags: int, rate_hz: float, seconds: float) -> list[float]:
    from live.hub import Hub

    hub = Hub()
    subs = [hub.subscribe_latest(merge=("tags",)) for _ in range(clients)]
    lat, lock, stop = [], threading.Lock(), threading.Event()

    def take(sub):
        while not stop.is_set():
            if sub.event.wait(0.2):
                sub.event.clear()
                b = sub.take()
                now = time.time()
                if b:
                    sent = next(iter(b.merged["tags"].values()))[0]
                    with lock:
                        lat.append(now - sent)

    threads = [threading.Thread(target=take, args=(s,), daemon=True) for s in subs]
    for t in threads:
        t.start()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        now = time.time()
        hub.publish("tags", {i: [now, 1, 0] for i in range(tags)})
        time.sleep(1 / rate_hz)
    stop.set()
    for t in threads:
        t.join()
    return lat


# --- the app -------------------------------------------------------------------------------------------------------


def wait_port(port: int, timeout: float = 60, path: str = "/healthz", proc=None) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"the app exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2):
                return
        except Exception as exc:
            if getattr(exc, "code", None):  # an HTTP error: the server answers
                return
            time.sleep(0.2)
    raise SystemExit(f"nothing answers on port {port}")


def start_app(args, workdir: Path, url: str) -> tuple[list[subprocess.Popen], int]:
    port = free_port()
    env = {**os.environ, "OEE_WS_HEARTBEAT_S": "2", "OEE_LOG_LEVEL": "WARNING"}
    logs = open(workdir / "app.log", "w")
    if not args.split:
        procs = [subprocess.Popen([sys.executable, "app.py", "--no-demo", "--database-url", url, "--port", str(port),
                                   "--data-dir", str(workdir / "data")], cwd=ROOT, env=env, stdout=logs,
                                  stderr=subprocess.STDOUT)]
    else:
        env["OEE_DATABASE_URL"] = url
        collector = subprocess.Popen([sys.executable, "app.py", "--no-demo", "--role", "collector", "--data-dir",
                                      str(workdir / "collector")], cwd=ROOT, env=env, stdout=logs,
                                     stderr=subprocess.STDOUT)
        web = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", str(args.workers), "--threads",
                                str(args.clients + 16), "-b", f"127.0.0.1:{port}", "wsgi:application"], cwd=ROOT,
                               env={**env, "OEE_DATA_DIR": str(workdir / "web")}, stdout=logs,
                               stderr=subprocess.STDOUT)
        procs = [collector, web]
    wait_port(port, proc=procs[-1])
    return procs, port


def make_database(url: str | None, workdir: Path) -> tuple[str, callable]:
    if not url:
        return f"sqlite:///{workdir / 'live.sqlite3'}", lambda: None
    import uuid

    import psycopg

    name = f"oee_bench_live_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db_url = url.rsplit("/", 1)[0] + f"/{name}"

    def drop():
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return db_url, drop


def report(label: str, a: dict) -> None:
    e2e, sample = a["e2e"], a["sample"]
    poll = POLL_MS / 1000
    beyond = [v - poll for v in e2e]
    lost_pct = 100.0 * a["lost"] / a["expected"] if a["expected"] else 0.0
    print(f"{label:<34} {a['clients']:>4} clients  write->client p50/p95/p99 {fmt_ms(pct(e2e, 50))} "
          f"{fmt_ms(pct(e2e, 95))} {fmt_ms(pct(e2e, 99))} ms | beyond polling p95 {fmt_ms(pct(beyond, 95))} ms | "
          f"sample->client p50/p95/p99 {fmt_ms(pct(sample, 50))} {fmt_ms(pct(sample, 95))} "
          f"{fmt_ms(pct(sample, 99))} ms | write->poll (the wait, included above) p50/p95 "
          f"{fmt_ms(pct(a['poll_wait'], 50))} {fmt_ms(pct(a['poll_wait'], 95))} ms | lost {a['lost']} of {a['expected']} ({lost_pct:.3f} %): "
          f"{a['behind']} clients fell behind and were sent latest values ({a['dropped']} coalesced, counted), "
          f"lost by clients that kept up {a['lost_keeping_up']} | not polled {a['not_polled']} of {a['written']} | "
          f"CPU: app {a['app_cpu']:.2f}, clients {a['client_cpu']:.2f} cores | load {a['load'][0]:.1f} -> "
          f"{a['load'][1]:.1f}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.live", description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", default="", help="PostgreSQL server URL (a database is made and dropped); "
                                                      "default SQLite in a temporary folder")
    p.add_argument("--split", action="store_true", help="collector process + gunicorn workers (needs PostgreSQL)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--client-procs", type=int, default=4)
    p.add_argument("--tags", type=int, default=200)
    p.add_argument("--write-hz", type=float, default=5.0, help="tag updates/s = tags x write-hz (default 1,000)")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--bare-server", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.bare_server:
        bare_server(args.bare_server, args.tags, args.write_hz)
        return
    if args.split and not args.database_url.startswith("postgresql"):
        raise SystemExit("--split needs --database-url postgresql://...")
    from bench.machine import machine_description

    print(machine_description())
    print("load average before: %.2f %.2f %.2f (other work on this machine skews every figure)" % os.getloadavg())
    how = (f"collector + gunicorn -w {args.workers} over PostgreSQL LISTEN/NOTIFY" if args.split
           else "one process (role all)")
    print(f"{args.tags} DINT tags on one simulated S7 PLC, written at {args.write_hz:g} Hz "
          f"({args.tags * args.write_hz:,.0f} tag updates/s), polled every {POLL_MS} ms; {how}; "
          f"clients in {args.client_procs} processes\n")
    workdir = Path(tempfile.mkdtemp(prefix="bench-live-"))
    url, drop = make_database(args.database_url, workdir)
    plc = Plc(args.tags)
    procs = []
    try:
        configure(url, plc)
        procs, port = start_app(args, workdir, url)
        writer = Writer(plc, args.write_hz).start()
        time.sleep(2.0)
        path = "/ws/plc/BENCH-S7/"
        rows = []
        for label, n, procs_n in (("app, 1 client", 1, 1), (f"app, {args.clients} clients", args.clients,
                                                            args.client_procs)):
            t_from, cpu_from, load_from = time.time(), cpu_seconds([p.pid for p in procs]), os.getloadavg()[0]
            results = run_clients(port, path, n, procs_n, args.seconds)
            t_to, cpu_to = time.time(), cpu_seconds([p.pid for p in procs])
            a = analyse(results, writer.times, t_from + 2.0 + 0.05 * n, t_to)
            a["app_cpu"] = (cpu_to - cpu_from) / (t_to - t_from)
            a["client_cpu"] = sum(r.get("cpu_s", 0.0) for r in results) / (t_to - t_from)
            a["load"] = (load_from, os.getloadavg()[0])
            rows.append((label, a))
        writer.stop()
        bare = baseline_ws(args.clients, args.client_procs, args.tags, args.write_hz, min(args.seconds, 10))
        hub = baseline_hub(args.clients, args.tags, args.write_hz, 5.0)
        print()
        for label, a in rows:
            report(label, a)
        print(f"{'baseline: bare flask-sock fan-out':<34} {args.clients:>4} clients  send->client p50/p95/p99 "
              f"{fmt_ms(pct(bare, 50))} {fmt_ms(pct(bare, 95))} {fmt_ms(pct(bare, 99))} ms "
              f"(same message size and rate, no hub, no JSON per client)")
        print(f"{'baseline: hub alone, in-process':<34} {args.clients:>4} subscribers publish->take p50/p95/p99 "
              f"{fmt_ms(pct(hub, 50))} {fmt_ms(pct(hub, 95))} {fmt_ms(pct(hub, 99))} ms")
        fan = rows[-1][1]
        beyond95 = pct([v - POLL_MS / 1000 for v in fan["e2e"]], 95)
        lines = [verdict(None if beyond95 is None else beyond95 * 1000, 150, "ms",
                         what=f"write->client p95 beyond the {POLL_MS} ms polling interval, {args.clients} clients"),
                 verdict(fan["lost_keeping_up"], 0, "values", bound="at most", what="lost by clients that kept up")]
        print("load average after: %.2f %.2f %.2f" % os.getloadavg())
        behind = f"; {fan['behind']} of {fan['clients']} clients fell behind (coalesced)" if fan["behind"] else ""
        print("\n" + "\n".join(lines + [all_met(lines) + behind]))
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        plc.stop()
        drop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
