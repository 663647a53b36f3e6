"""Sparkplug B benchmark: metric values per second from edge nodes through Mosquitto into the database, beside the
polled path (Modbus TCP servers) in the same collector, in the same run.

    python -m bench.sparkplug                                   # 10 edge nodes x 200 metrics x 10 Hz, 20 s
    python -m bench.sparkplug --edges 20 --metrics 1000 --rate 1 --seconds 30
    python -m bench.sparkplug --database-url postgresql://postgres@127.0.0.1:5432/postgres

Target ([uns] item 5): 20,000 values/s sustained on a 2-core machine, nothing lost. Verdict "met" when every value
published is in `samples` and the last of them was stored within --slack seconds (1.0) of the last publish (the
collector kept up); otherwise "missed by X values/s" (target minus what was stored per second of the run).

Processes (each figure belongs to one):
  broker     Mosquitto on 127.0.0.1 (plant.sparkplug_edge.LoopbackBroker), a free port
  edges      this module with --edges-process: --edges Sparkplug B edge nodes (one MQTT client each, NBIRTH with
             bdSeq and its will, DBIRTH of one device with --metrics DOUBLE metrics, answering rebirth requests).
             On "go" it publishes DDATA at --rate Hz per edge node for --seconds, every metric changed in every
             message to the message's number (1, 2, ...), so each stored row says which message it came from.
  servers    bench/collect_servers.py: --polled-plcs Modbus TCP servers of --polled-tags tags, every value
             changing each second (the polled path, read at 1 s)
  collector  bench/collect_app.py: the app's Runtime, role collector: the SPARKPLUG_B and MODBUS drivers, the
             pollers, the machine model, the writer; SQLite in a temporary folder unless --database-url
Measured: Sparkplug values stored (rows with value >= 1 of the edge nodes' tags) against values published; when
the last one was stored (the collector's stored count, every second); polled rows/s in the publishing window; the
collector's CPU (user + system, /proc) in % of one core over the window.

Figures: see the README's Benchmarks; they are replaced when measured again.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GROUP = "Bench"
DEVICE = "d"
TARGET = 20_000


def edge_id(i: int) -> str:
    return f"e{i:02d}"


def metric_name(k: int) -> str:
    return f"M{k:04d}"


# --- the edge nodes' process ---------------------------------------------------------------------------------------


def edges_process(args) -> None:
    import paho.mqtt.client as mqtt

    from sparkplug.payload import DataType, Metric, Payload, decode, encode, now_ms
    from sparkplug.topics import BD_SEQ, REBIRTH, MessageType, Topic, next_seq

    names = [metric_name(k) for k in range(args.metrics)]
    state = [{"seq": 0, "value": 0, "lock": threading.Lock()} for _ in range(args.edges)]

    def birth(i: int, client) -> None:
        s = state[i]
        with s["lock"]:
            s["seq"] = 0
            node = [Metric(BD_SEQ, DataType.UINT64, 0), Metric(REBIRTH, DataType.BOOLEAN, False)]
            client.publish(str(Topic(GROUP, MessageType.NBIRTH, edge_id(i))),
                           encode(Payload(metrics=node, timestamp=now_ms(), seq=0)))
            s["seq"] = next_seq(s["seq"])
            metrics = [Metric(n, DataType.DOUBLE, float(s["value"])) for n in names]
            client.publish(str(Topic(GROUP, MessageType.DBIRTH, edge_id(i), DEVICE)),
                           encode(Payload(metrics=metrics, timestamp=now_ms(), seq=s["seq"])))

    clients = []
    for i in range(args.edges):
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-{edge_id(i)}",
                             protocol=mqtt.MQTTv311)
        client.max_queued_messages_set(0)
        client.will_set(str(Topic(GROUP, MessageType.NDEATH, edge_id(i))),
                        encode(Payload(metrics=[Metric(BD_SEQ, DataType.UINT64, 0)])), qos=1)

        def on_message(c, u, msg, i=i):
            try:
                if any(m.name == REBIRTH and m.value for m in decode(msg.payload).metrics):
                    birth(i, c)
            except ValueError:
                pass

        client.on_message = on_message
        client.connect("127.0.0.1", args.port, keepalive=60)
        client.subscribe(str(Topic(GROUP, MessageType.NCMD, edge_id(i))), qos=1)
        client.loop_start()
        clients.append(client)
    time.sleep(0.5)
    for i, c in enumerate(clients):
        birth(i, c)
    print(json.dumps({"event": "ready"}), flush=True)
    line = sys.stdin.readline()
    if line.strip() != "go":
        return
    period = 1.0 / args.rate
    messages = int(round(args.seconds * args.rate))
    t0 = time.time()
    published = 0
    late = 0
    for k in range(1, messages + 1):
        due = t0 + (k - 1) * period
        wait = due - time.time()
        if wait > 0:
            time.sleep(wait)
        elif wait < -period:
            late += 1
        for i, c in enumerate(clients):
            s = state[i]
            with s["lock"]:
                s["value"] = k
                s["seq"] = next_seq(s["seq"])
                payload = encode(Payload(metrics=[Metric(n, DataType.DOUBLE, float(k)) for n in names],
                                         timestamp=now_ms(), seq=s["seq"]))
                c.publish(str(Topic(GROUP, MessageType.DDATA, edge_id(i), DEVICE)), payload, qos=0)
            published += len(names)
    t1 = time.time()
    print(json.dumps({"event": "published", "values": published, "messages": messages * len(clients),
                      "t0": t0, "t1": t1, "late_ticks": late}), flush=True)
    sys.stdin.readline()  # until the bench closes our stdin
    for c in clients:
        c.disconnect()
        c.loop_stop()


# --- the bench -----------------------------------------------------------------------------------------------------


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(args) -> dict:
    from bench.collect import Child, Database
    from config.demo_plant import sync_demo_plant
    from db.store import open_store
    from plant.sparkplug_edge import LoopbackBroker

    folder = Path(tempfile.mkdtemp(prefix="bench-sparkplug-"))
    life_s = args.seconds + 300
    broker = LoopbackBroker("127.0.0.1", 0).start()
    children: list[Child] = []
    db = None
    try:
        edges = Child("edges", ["-m", "bench.sparkplug", "--edges-process", "--port", str(broker.port),
                                "--edges", str(args.edges), "--metrics", str(args.metrics), "--rate", str(args.rate),
                                "--seconds", str(args.seconds)], folder)
        children.append(edges)
        polled = None
        if args.polled_plcs:
            polled = Child("servers-modbus", ["-m", "bench.collect_servers", "--protocol", "MODBUS", "--plcs",
                                              str(args.polled_plcs), "--tags-per-plc", str(args.polled_tags),
                                              "--probes", "1", "--epoch", repr(time.time()), "--max-seconds",
                                              str(life_s)], folder)
            children.append(polled)
        assert edges.next(timeout=60).get("event") == "ready"
        servers = polled.next(timeout=300) if polled else {"plcs": []}
        db = Database(args.database_url, folder)
        endpoints = [{"machine_id": f"SPB-{edge_id(i)}", "name": f"SPB-{edge_id(i)}", "area": "Bench",
                      "line": "sparkplug", "protocol": "SPARKPLUG_B", "host": "127.0.0.1", "port": broker.port,
                      "protocol_config": {"group_id": GROUP, "edge_node_id": edge_id(i), "device_id": DEVICE},
                      "poll_interval_ms": 1000,
                      "tags": [{"name": metric_name(k), "address": metric_name(k), "data_type": "DOUBLE",
                                "role": None} for k in range(args.metrics)]} for i in range(args.edges)]
        endpoints += [{"machine_id": plc["name"], "name": plc["name"], "area": "Bench", "line": "modbus",
                       "protocol": "MODBUS", "host": plc["host"], "port": plc["port"],
                       "protocol_config": plc["protocol_config"], "poll_interval_ms": 1000,
                       "tags": [{**t, "role": None} for t in plc["tags"]]} for plc in servers["plcs"]]
        store = open_store(db.url)
        try:
            sync_demo_plant(store.engine, {"name": "Sparkplug bench"}, endpoints, [])
        finally:
            store.close()
        collector = Child("collector", ["-m", "bench.collect_app", "--database-url", db.url, "--data-dir",
                                        str(folder / "data"), "--max-seconds", str(life_s)], folder)
        children.append(collector)
        collector.next(timeout=120)
        deadline = time.monotonic() + 120
        while True:
            stats = collector.next(timeout=30)
            conns = stats.get("connections", [])
            if len(conns) == len(endpoints) and all(c["state"] == "connected" and c["cycles"] >= 1 for c in conns):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"connections not all up: {[(c['name'], c['state']) for c in conns]}")

        def spb_stored(s):
            return sum(c["stored"] for c in s["connections"] if c["protocol"] == "SPARKPLUG_B")

        base = spb_stored(stats)
        cpu0 = cpu_s(collector.pid)
        edges.proc.stdin.write("go\n")
        edges.proc.stdin.flush()
        expected = args.edges * args.metrics * int(round(args.seconds * args.rate))
        published = None
        reached_at = None
        last_progress = time.monotonic()
        last = base
        give_up = time.monotonic() + args.seconds + 120
        while True:
            if time.monotonic() > give_up:
                raise RuntimeError("the edge nodes did not say they were done publishing; see their log in "
                                   f"{folder}")
            s = collector.next(timeout=30)
            now_stored = spb_stored(s) - base
            if now_stored != last:
                last, last_progress = now_stored, time.monotonic()
            if published is None:
                try:
                    item = edges.lines.get_nowait()
                    if item and item.get("event") == "published":
                        published = item
                        cpu1 = cpu_s(collector.pid)
                except Exception:  # queue.Empty
                    pass
            if now_stored >= expected and reached_at is None:
                reached_at = s["t"]
            if published is not None and (reached_at is not None or time.monotonic() - last_progress > 10):
                break
        time.sleep(3.0)  # the writer commits what is queued
        for _ in range(3):
            collector.next(timeout=30)
        final = collector.stop(60)
        children.remove(collector)
        writer = next((x.get("writer") for x in reversed(final) if x.get("writer")), None) or {}
        conn = db.connect()
        try:
            # distinct (tag, value): a rebirth stores the current values again; each value counts once
            q = ("SELECT count(*) FROM (SELECT DISTINCT s.tag_id, s.value FROM samples s JOIN tags t "
                 "ON t.id = s.tag_id JOIN connections c ON c.id = t.connection_id WHERE c.protocol = {p} "
                 "AND s.value >= 1) d")
            p = "'SPARKPLUG_B'"
            stored_rows = conn.execute(q.format(p=p)).fetchone()[0]
            bad = conn.execute("SELECT count(*) FROM samples WHERE quality <> 0").fetchone()[0]
            t0, t1 = published["t0"], published["t1"]
            if db.backend == "sqlite":
                polled_rows = conn.execute(
                    "SELECT count(*) FROM samples s JOIN tags t ON t.id = s.tag_id JOIN connections c "
                    "ON c.id = t.connection_id WHERE c.protocol = 'MODBUS' AND s.time >= ? AND s.time < ?",
                    (t0, t1)).fetchone()[0]
            else:
                polled_rows = conn.execute(
                    "SELECT count(*) FROM samples s JOIN tags t ON t.id = s.tag_id JOIN connections c "
                    "ON c.id = t.connection_id WHERE c.protocol = 'MODBUS' AND s.time >= to_timestamp(%s) "
                    "AND s.time < to_timestamp(%s)", (t0, t1)).fetchone()[0]
        finally:
            conn.close()
        window = published["t1"] - published["t0"]
        log_text = (folder / "collector.log").read_text(errors="replace")
        gaps = log_text.count("messages were lost; asking for a rebirth")
        done_at = reached_at if reached_at is not None else time.time()
        return {"published": published["values"], "expected": expected, "stored": int(stored_rows),
                "lost": published["values"] - int(stored_rows), "bad_rows": int(bad),
                "window_s": window, "drain_s": max(0.0, done_at - published["t1"]),
                # the stored values over the nominal window (messages x period) plus the time the collector took
                # beyond the last publish to store the last of them
                "spb_rate": int(stored_rows) / (args.seconds + max(0.0, done_at - published["t1"])),
                "polled_rate": polled_rows / window, "polled_tags": args.polled_plcs * args.polled_tags,
                "collector_cpu_pct": 100 * (cpu1 - cpu0) / window, "late_ticks": published["late_ticks"],
                "backend": db.backend, "seq_gaps": gaps, "writer_dropped": writer.get("dropped_rows"),
                "writer_spooled": writer.get("spooled_rows")}
    finally:
        for child in children:
            child.stop(30)
        broker.stop()
        if db is not None:
            db.drop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("Figures:")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edges", type=int, default=10)
    parser.add_argument("--metrics", type=int, default=200, help="metrics per edge node's device")
    parser.add_argument("--rate", type=float, default=10.0, help="DDATA messages per second per edge node")
    parser.add_argument("--seconds", type=float, default=20.0, help="publishing window (at most 30)")
    parser.add_argument("--polled-plcs", type=int, default=2, help="Modbus servers polled at 1 s beside (0: none)")
    parser.add_argument("--polled-tags", type=int, default=1000)
    parser.add_argument("--slack", type=float, default=1.0, help="seconds the last value may be stored after the "
                                                                 "last publish and still count as kept up")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--edges-process", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.seconds = min(args.seconds, 30.0)
    if args.edges_process:
        edges_process(args)
        return
    offered = args.edges * args.metrics * args.rate
    print(f"Sparkplug B: {args.edges} edge nodes x {args.metrics} metrics x {args.rate:g} Hz = {offered:,.0f} "
          f"values/s offered for {args.seconds:g} s; polled beside: {args.polled_plcs} Modbus PLCs x "
          f"{args.polled_tags} tags at 1 s", flush=True)
    r = run(args)
    print(f"  published {r['published']:,} values, stored {r['stored']:,}, lost {r['lost']:,}, bad rows "
          f"{r['bad_rows']}; the last stored at most {r['drain_s']:.2f} s after the last publish (the collector's "
          f"stored count is read once a second) ({r['backend']})")
    print(f"  Sparkplug into the database: {r['spb_rate']:,.0f} values/s; polled beside: {r['polled_rate']:,.0f} "
          f"rows/s of {r['polled_tags']:,} tags; collector CPU {r['collector_cpu_pct']:.0f} % of one core; "
          f"publisher late ticks {r['late_ticks']}; seq gaps seen by the collector {r['seq_gaps']}; writer "
          f"dropped {r['writer_dropped']} rows, spooled {r['writer_spooled']}")
    kept_up = r["lost"] == 0 and r["drain_s"] <= args.slack
    achieved = r["spb_rate"]
    if kept_up and offered >= TARGET:
        print(f"verdict: met (the offered {offered:,.0f} values/s sustained for {args.seconds:g} s: every value "
              f"stored, the last within {args.slack:g} s of its publish; {achieved:,.0f} values/s counting that lag)")
    else:
        short = max(TARGET - achieved, r["lost"] / args.seconds)
        print(f"verdict: missed by {short:,.0f} values/s (stored {achieved:,.0f} values/s of {offered:,.0f} offered, "
              f"lost {r['lost']:,}, last value {r['drain_s']:.1f} s after the last publish"
              f"{'; the run offered less than the target' if offered < TARGET else ''})")


if __name__ == "__main__":
    main()
