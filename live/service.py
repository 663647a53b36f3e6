"""The live service: latest values for "snapshot first", fan-out to WebSocket clients, and the bridge between processes.

    collectors ── runtime.hub ──► dispatcher thread ──► apply() ──► mirror (latest values, states, metrics, alerts)
                                                          │    └──► clients hub ──► one LatestSubscription per socket
                                                          └──► bus.publish ──► other processes (PostgreSQL / Redis)
    bus listener thread (web processes) ─────────────────► apply()

- In a process that collects, the collectors' "tags" and "machine" messages arrive through `runtime.hub`; this
  service derives events (state changes) and alerts (fault, connection lost) from the machine messages, computes
  per-machine metrics once a second, and forwards all of it to the bus when there is one.
- In a process that serves, the bus listener applies what the collector processes send. A web worker that starts
  (or whose listening connection came back) asks the collectors for their latest values, so its snapshots are
  complete; values it already has are not sent to its clients twice.
- apply() holds one lock while it updates the mirror and offers to the client subscriptions, and attach() takes a
  snapshot and subscribes under the same lock: a client gets every change after its snapshot, none twice.

Internal messages use the machines' database ids ("machine": 7); the WebSocket layer (live/websocket.py) turns them into
the documented JSON with machine_id strings ("LINE-001").
"""
from __future__ import annotations

import gc
import logging
import math
import threading
import time
import uuid
from collections import deque

from live.bus import dumps, make_bus
from live.hub import Hub

log = logging.getLogger(__name__)

CLIENT_TOPICS = ("tags", "machine", "metrics", "event", "alert", "config")
RECENT_EVENTS = 200
CATALOG_REFRESH_MIN_S = 5.0
# The timed catalog reload skips while the configuration's stamp stays; a full read at least this often anyway.
CATALOG_FULL_READ_S = 300.0
FREEZE_AFTER_S = 5.0  # after start: the pages are registered and the catalog is loaded
REPORT_MAX_AGE_S = 10.0  # a collector process's health this old is gone (it reports every second)


def clean_value(v):
    """JSON-safe: NaN and infinities become None; numpy scalars become Python numbers."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, list):
        return [clean_value(x) for x in v]
    if hasattr(v, "item"):
        return clean_value(v.item())
    return v


class Catalog:
    """Machines, lines and tags as the WebSocket layer needs them; replaced whole on every refresh."""

    def __init__(self, data: dict | None = None, version: int = 0):
        data = data or {"machines": [], "lines": [], "tags": []}
        self.version = version
        self.loaded_at = time.monotonic()
        self.machines = {m["id"]: m for m in data["machines"]}
        self.by_key = {m["machine_id"].lower(): m["id"] for m in data["machines"]}
        self.lines = {ln["id"]: {**ln, "machines": []} for ln in data["lines"]}
        for m in data["machines"]:
            if m["line_id"] in self.lines:
                self.lines[m["line_id"]]["machines"].append(m["id"])
        self.tags = {t["id"]: t for t in data["tags"]}
        self.fault_texts = {(m, c): t for m, c, t in data.get("fault_texts") or ()}
        self.tags_by_machine: dict[int, list[int]] = {}
        for t in data["tags"]:
            if t["machine"] is not None:
                self.tags_by_machine.setdefault(t["machine"], []).append(t["id"])

    def machine_key(self, db_id) -> str:
        m = self.machines.get(db_id)
        return m["machine_id"] if m else str(db_id)

    def find_machine(self, key: str) -> int | None:
        return self.by_key.get(str(key).strip().lower())

    def find_line(self, key: str) -> tuple[int | None, str | None]:
        """(line id, None) or (None, why): a line is named by its id or, when unique, its name."""
        key = str(key).strip()
        if key.isdigit() and int(key) in self.lines:
            return int(key), None
        named = [lid for lid, ln in self.lines.items() if ln["name"].lower() == key.lower()]
        if len(named) == 1:
            return named[0], None
        if len(named) > 1:
            return None, f"line name {key!r} is ambiguous ({len(named)} areas have one); use its id"
        return None, f"unknown line {key!r}"


class Scope:
    """What one WebSocket client receives: topics, machines (None: all) and whether it gets tag values."""

    def __init__(self, endpoint: str, topics: set[str], machines: set[int] | None, with_tags: bool,
                 live: "LiveService", **info):
        self.endpoint = endpoint
        self.topics = topics
        self.machines = machines
        self.with_tags = with_tags
        self.info = info
        self._live = live
        self._tagset: set[int] | None = None
        self._tag_version = -1

    def tag_ids(self) -> set[int] | None:
        """None: every tag; else the tags of the scope's machines (recomputed when the catalog changes)."""
        if self.machines is None:
            return None
        catalog = self._live.catalog
        if self._tag_version != catalog.version:
            self._tagset = {t for m in self.machines for t in catalog.tags_by_machine.get(m, ())}
            self._tag_version = catalog.version
        return self._tagset

    def select(self, topic: str, message):
        if topic not in self.topics:
            return None
        if topic == "tags":
            allowed = self.tag_ids()
            if allowed is None or allowed.issuperset(message):
                return message
            picked = {k: v for k, v in message.items() if k in allowed}
            return picked or None
        if topic == "config" or self.machines is None:
            return message
        return message if message.get("machine") in self.machines else None


class LiveService:
    def __init__(self, runtime):
        self.runtime = runtime
        s = runtime.settings
        self.serves = s.role in ("all", "web")
        self.collects = runtime.collects  # False in `python app.py`'s web process: its collectors run in a child
        self.heartbeat_s = s.ws_heartbeat_s
        self.stall_timeout_s = s.ws_stall_timeout_s
        self.clients = Hub()  # one LatestSubscription per WebSocket
        self.catalog = Catalog()
        self.tags: dict[int, list] = {}  # tag id -> [time, value, quality]
        self.tag_reasons: dict[int, str] = {}  # tag id -> why its quality is bad (the PLC monitor shows it)
        # From the collector processes (web side; live/remote_collectors.py reads them):
        self.remote_connections: dict[tuple[str, int], tuple[float, dict]] = {}  # (origin, id) -> (received, health)
        self.remote_writers: dict[str, tuple[float, dict]] = {}  # origin -> (received, writer stats)
        self.reload_replies: dict[str, list[dict]] = {}  # reload request id -> replies
        self._reload_replied = threading.Condition(threading.Lock())
        self.machines: dict[int, dict] = {}  # machine db id -> status
        self.metrics: dict[int, dict] = {}
        self.alerts: dict[str, dict] = {}  # active alerts by id
        self.events: deque = deque(maxlen=RECENT_EVENTS)
        self.bus = None
        self.bus_kind = "off"
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sources = None
        self._catalog_wanted = threading.Event()
        self._catalog_pending_changes: list[dict] = []
        self._last_catalog_attempt = 0.0
        self._catalog_stamp = None
        self._catalog_read_at = -math.inf
        self._rates: dict[int, deque] = {}
        self.sockets: dict[int, dict] = {}  # id(handler) -> {"endpoint", "sub", "sending_since", "close"}
        self.sockets_opened = 0
        self.sockets_evicted = 0
        self.messages_sent = 0
        self.applied = 0

    # --- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> "LiveService":
        s = self.runtime.settings
        self.bus_kind = resolve_bus_kind(s)
        self._load_catalog()
        self._sources = self.runtime.hub.subscribe(maxlen=20_000)
        self._thread(self._dispatch_loop, "live-dispatch")
        if self.serves:
            self._thread(self._freeze_startup_heap, "live-gc-freeze")
        self._thread(self._catalog_loop, "live-catalog")
        self._thread(self._watchdog_loop, "live-watchdog")
        if self.collects:
            self._thread(self._metrics_loop, "live-metrics")
        if self.bus_kind != "off":
            self.bus = make_bus(self.bus_kind, database_url=s.effective_database_url, redis_url=s.redis_url,
                                channel=s.live_channel, listen_data=self.serves, listen_control=self.collects,
                                local_key=self.runtime.live_bus_key, local_address=s.live_bus_address)
            self.bus.on_data = self._on_bus_data
            self.bus.on_control = self._on_bus_control
            self.bus.on_listening = self._on_listening
            self.bus.start()
            log.info("live updates between processes: %s, channel %r", self.bus_kind, s.live_channel)
        elif self.serves and not self.collects:
            log.warning("web role without a live bus (the database is not PostgreSQL and no --redis-url): "
                        "WebSocket clients get no live data")
        return self

    def _freeze_startup_heap(self) -> None:
        """Once the process has started, move what it built (Dash, plotly, SQLAlchemy: ~200,000 objects) out of the
        garbage collector's sight (gc.freeze). A full collection then walks only what came later: bench/live
        measured 170-350 ms pauses of every thread before, ~1 ms after, and such a pause is a live update late for
        every client at once."""
        if self._stop.wait(FREEZE_AFTER_S):
            return
        gc.collect()
        gc.freeze()
        log.debug("live: %d objects of the started process frozen out of the garbage collector", gc.get_freeze_count())

    def _thread(self, target, name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._catalog_wanted.set()
        for sock in list(self.sockets.values()):
            sock["sub"].event.set()  # handlers see the stop and close with 1001
        if self._sources is not None:
            self._sources.close()
            self._sources._event.set()
        if self.bus is not None:
            self.bus.stop()

    def close_clients(self) -> None:
        """Ask every WebSocket handler to close (1001) and refuse new ones; safe in a signal handler."""
        self._closing.set()
        for sock in list(self.sockets.values()):
            sock["sub"].event.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set() or self._closing.is_set()

    # --- the catalog -----------------------------------------------------------------------------------------

    def _load_catalog(self) -> bool:
        from db.live_queries import live_catalog

        self._last_catalog_attempt = time.monotonic()
        stamp = self._stamp()  # before the read: a change during it moves the next stamp
        try:
            data = live_catalog(self.runtime.store.engine)
        except Exception as exc:
            log.warning("live: cannot read the plant's machines and tags (%s); retrying", str(exc).splitlines()[0])
            return False
        self.catalog = Catalog(data, self.catalog.version + 1)
        self._catalog_stamp, self._catalog_read_at = stamp, time.monotonic()
        return True

    def want_catalog(self, changes: dict | None = None) -> None:
        if changes is not None:
            with self._lock:
                self._catalog_pending_changes.append(changes)
        self._catalog_wanted.set()

    def refresh_catalog_now(self) -> None:
        """Before refusing an unknown machine or line: the configuration may just have changed (rate-limited)."""
        if time.monotonic() - self._last_catalog_attempt >= CATALOG_REFRESH_MIN_S:
            self._load_catalog()

    def _stamp(self):
        from db.collector_config import config_stamp

        try:
            return config_stamp(self.runtime.store.engine)
        except Exception:
            return None  # the read says what is wrong

    def _catalog_unchanged(self) -> bool:
        """True when the timed reload can be skipped: the configuration's stamp has not moved since the last read
        and that read is younger than CATALOG_FULL_READ_S (a hand edit that keeps the stamp is caught then)."""
        return (self._catalog_stamp is not None and self._stamp() == self._catalog_stamp
                and time.monotonic() - self._catalog_read_at < CATALOG_FULL_READ_S)

    def _catalog_loop(self) -> None:
        while not self._stop.is_set():
            wanted = self._catalog_wanted.wait(30.0)
            if self._stop.is_set():
                return
            self._catalog_wanted.clear()
            # The timed reload reads the whole catalog (0.26 s of CPU at 50,000 tags) only when something moved.
            if not wanted and self._catalog_unchanged():
                continue
            ok = self._load_catalog()
            with self._lock:
                changes, self._catalog_pending_changes = self._catalog_pending_changes, []
            if changes and ok:
                merged = {"time": time.time(), "changes": changes}
                with self._lock:
                    self.clients.publish("config", merged)
            elif changes:
                with self._lock:
                    self._catalog_pending_changes = changes + self._catalog_pending_changes
                self._stop.wait(2.0)
                self._catalog_wanted.set()

    # --- applying updates ------------------------------------------------------------------------------------

    def _dispatch_loop(self) -> None:
        while not self._stop.is_set():
            items = self._sources.get_all(timeout=1.0)
            if items:
                try:
                    self.apply(items, local=True)
                except Exception:
                    log.exception("live: applying an update failed")

    def _on_bus_data(self, items: list) -> None:
        self.apply(items, local=False)

    def apply(self, items: list, *, local: bool) -> None:
        """Update the mirror and offer what is new to the clients; local items also go to the bus."""
        unknown_tags = False
        with self._lock:
            for topic, message in items:
                self.applied += 1
                if topic == "tags":
                    fresh, wire = {}, {}  # wire: what other processes get beside fresh (the reasons too)
                    for key, value in message.items():
                        tid = int(key)
                        t, v, q = value[0], clean_value(value[1]), value[2]
                        current = self.tags.get(tid)
                        if current is not None and current[0] == t and current[2] == q and current[1] == v:
                            continue  # already known: a resync, or our own message coming back
                        self.tags[tid] = fresh[tid] = [t, v, q]
                        reason = value[3] if len(value) > 3 else None  # the collectors send one with bad quality
                        if reason:
                            self.tag_reasons[tid] = reason
                            wire[tid] = [t, v, q, reason]
                        else:
                            self.tag_reasons.pop(tid, None)
                        if tid not in self.catalog.tags:
                            unknown_tags = True
                    if fresh and self.clients.subscriber_count:
                        # Encoded once here rather than once per client: {tag id: '"12":[t,v,q]'}. Not at all
                        # when no WebSocket is attached (a collector process never has one): bench.collect found
                        # this encoding at 10-16 % of the collector's CPU. attach() snapshots self.tags and
                        # subscribes under self._lock, so a client that comes later misses nothing.
                        self.clients.publish("tags", {tid: f'"{tid}":{dumps(v)}' for tid, v in fresh.items()})
                    if fresh:
                        if local and self.bus:
                            self.bus.publish("tags", {**fresh, **wire} if wire else fresh)
                elif topic == "machine":
                    status = normalise_status(message)
                    mid = status["machine"]
                    previous = self.machines.get(mid)
                    if previous == status:
                        continue
                    self.machines[mid] = status
                    self.clients.publish("machine", status)
                    if local and self.bus:
                        self.bus.publish("machine", status)
                    if local:
                        for kind, derived in derive_events(previous, status):
                            if kind == "alert" and derived["kind"] == "fault" and derived.get("fault_code"):
                                text = self.catalog.fault_texts.get((mid, derived["fault_code"]))
                                if text:  # the machine's fault table says what the code means
                                    derived["text"] = text
                                    if derived["active"]:
                                        derived["message"] = f"faulted: {text} (fault code {derived['fault_code']})"
                            self._apply_one(kind, derived, local=True)
                elif topic in ("metrics", "event", "alert"):
                    self._apply_one(topic, message, local=local)
                elif topic == "config":
                    if local and self.bus:
                        self.bus.publish("config", message)
                    self.want_catalog(message)
                elif topic == "forget":
                    for tid in message.get("tags") or ():
                        self.tags.pop(int(tid), None)
                        self.tag_reasons.pop(int(tid), None)
                    if local and self.bus:
                        self.bus.publish("forget", message)
                elif topic == "connection" and local:
                    if self.bus:
                        self.bus.publish("connection", {**message, "origin": self.bus.origin})
                elif topic in ("connection", "writer", "reloaded") and not local:
                    self._apply_collector_report(topic, message)
        if unknown_tags and time.monotonic() - self._last_catalog_attempt >= CATALOG_REFRESH_MIN_S:
            self._catalog_wanted.set()

    def _apply_one(self, topic: str, message: dict, *, local: bool) -> None:
        if topic == "metrics":
            mid = message["machine"]
            if self.metrics.get(mid) == message:
                return
            self.metrics[mid] = message
        elif topic == "alert":
            current = self.alerts.get(message["id"])
            if message.get("active"):
                if current == message:
                    return
                self.alerts[message["id"]] = message
            else:
                if current is None and not local:
                    return
                self.alerts.pop(message["id"], None)
        elif topic == "event":
            self.events.append(message)
        self.clients.publish(topic, message)
        if local and self.bus:
            self.bus.publish(topic, message)

    def _apply_collector_report(self, topic: str, message: dict) -> None:
        """What a collector process says of itself: a connection's health, its writer, a reload done."""
        origin = message.get("origin", "")
        if topic == "connection":
            self.remote_connections[(origin, message.get("connection_id"))] = (time.monotonic(), message)
        elif topic == "writer":
            self.remote_writers[origin] = (time.monotonic(), message)
            running = set(message.get("connection_ids") or ())
            for key in [k for k in list(self.remote_connections) if k[0] == origin and k[1] not in running]:
                self.remote_connections.pop(key, None)  # removed or disabled there
        else:
            with self._reload_replied:
                if message.get("id") in self.reload_replies:
                    self.reload_replies[message["id"]].append(message)
                    self._reload_replied.notify_all()

    def request_reload(self, timeout_s: float = 10.0) -> list[dict]:
        """Web side: ask the collector processes to reload their configuration now; their replies (one per
        process that answered within timeout_s, each {"changes": ..., "error": ...})."""
        if self.bus is None:
            return []
        rid = uuid.uuid4().hex
        expected = max(1, len(self.collector_origins()))
        with self._reload_replied:
            self.reload_replies[rid] = []
        self.bus.control({"reload": rid})
        deadline = time.monotonic() + timeout_s
        with self._reload_replied:
            while len(self.reload_replies[rid]) < expected and time.monotonic() < deadline:
                self._reload_replied.wait(deadline - time.monotonic())
            return self.reload_replies.pop(rid)

    def collector_origins(self, max_age_s: float = REPORT_MAX_AGE_S) -> set[str]:
        now = time.monotonic()
        return {o for o, (at, _) in list(self.remote_writers.items()) if now - at <= max_age_s}

    # --- collector side: metrics, health and resync ----------------------------------------------------------

    def _publish_health(self) -> None:
        """Each connection's health and the writer's numbers, for the web processes' pages and /healthz."""
        collectors, writer = self.runtime.collectors, self.runtime.writer
        if self.bus is None or collectors is None:
            return
        origin = self.bus.origin
        connections = collectors.health()
        for health in connections:
            self.bus.publish("connection", {**health, "origin": origin})
        if writer is not None:  # last: it names the connections that run, so that the others are dropped
            uns = getattr(self.runtime, "uns", None)  # the MQTT publisher's numbers ride along (uns/)
            self.bus.publish("writer", {**writer.stats(), "origin": origin,
                                        "connection_ids": [c["connection_id"] for c in connections],
                                        **({"uns": uns.stats()} if uns is not None else {})})

    def _reload_for(self, rid: str) -> None:
        collectors = self.runtime.collectors
        reply = {"id": rid, "origin": self.bus.origin if self.bus else "", "changes": None, "error": None}
        try:
            # Not started yet: they read the configuration as they start, so there is nothing to do.
            reply["changes"] = collectors.reload() if collectors is not None else {}
        except Exception as exc:  # the collectors also reload on their own timer
            log.exception("live: reload asked by a web process failed")
            reply["error"] = f"{exc.__class__.__name__}: {exc}"
        self._publish_health()  # the pages see the new connections at once
        if self.bus is not None:
            self.bus.publish("reloaded", reply)

    def _collector_snapshot(self):
        collectors = self.runtime.collectors
        return collectors.snapshot if collectors is not None else None

    def _metrics_loop(self) -> None:
        while not self._stop.wait(1.0):
            snap = self._collector_snapshot()
            if snap is None:
                continue
            try:
                self._publish_health()
            except Exception:
                log.exception("live: publishing the collectors' health failed")
            try:
                now = time.time()
                out = [("metrics", self._metrics_for(mid, m, now)) for mid, m in snap.machines().items()]
                out = [(t, m) for t, m in out if m is not None]
                if out:
                    self.apply(out, local=True)
            except Exception:
                log.exception("live: computing metrics failed")

    def _metrics_for(self, mid: int, m: dict, now: float) -> dict | None:
        counts = dict(m.get("counts") or {})
        total, good = counts.get("total", 0), counts.get("good", 0)
        history = self._rates.setdefault(mid, deque())
        history.append((now, total))
        while history and now - history[0][0] > 60.0:
            history.popleft()
        t0, c0 = history[0]
        rate = (total - c0) / (now - t0) * 60.0 if now - t0 >= 5.0 else None
        ideal, last = m.get("ideal_cycle_time_s"), m.get("last_cycle_time_s")
        previous = self.metrics.get(mid)
        metrics = {
            "machine": mid,
            "state": m.get("state"),
            "counts": counts,
            "rate_per_min": round(rate, 2) if rate is not None else None,
            "quality": round(good / total, 4) if total else None,
            "speed_ratio": round(ideal / last, 4) if ideal and last else None,
            "ideal_cycle_time_s": ideal,
            "last_cycle_time_s": last,
        }
        if previous is not None and {k: v for k, v in previous.items() if k != "time"} == metrics:
            return None
        metrics["time"] = now
        return metrics

    def _on_bus_control(self, message: dict) -> None:
        if isinstance(message, dict) and "sync" in message:
            self.publish_all_to_bus()
            self._publish_health()
        if isinstance(message, dict) and message.get("reload"):
            threading.Thread(target=self._reload_for, args=(str(message["reload"]),), name="live-reload",
                             daemon=True).start()

    def _on_listening(self) -> None:
        if self.serves and self.bus is not None:
            self.bus.control({"sync": self.bus.origin})

    def publish_all_to_bus(self) -> None:
        """Everything this process collects, for a web worker that just started or lost its listener."""
        snap = self._collector_snapshot()
        if self.bus is None or snap is None:
            return
        tags = {tid: [v[0], clean_value(v[1]), v[2]] + ([v[3]] if len(v) > 3 and v[3] else [])
                for tid, v in snap.tags().items()}
        with self._lock:
            machines = [self.machines[mid] for mid in snap.machines() if mid in self.machines]
            metrics = [self.metrics[mid] for mid in snap.machines() if mid in self.metrics]
            alerts = [a for a in self.alerts.values() if a["machine"] in self.machines]
            for status in machines:
                self.bus.publish("machine", status)
            if tags:
                self.bus.publish("tags", tags)
            for m in metrics:
                self.bus.publish("metrics", m)
            for a in alerts:
                self.bus.publish("alert", a)

    # --- web side: clients -----------------------------------------------------------------------------------

    def attach(self, scope: Scope, event: threading.Event | None = None):
        """(state, subscription): the scope's latest values, and every change after them."""
        with self._lock:
            state = {
                "tags": ({tid: v for tid, v in self.tags.items() if tid in scope.tag_ids()}
                         if scope.with_tags and scope.tag_ids() is not None
                         else dict(self.tags) if scope.with_tags else {}),
                "machines": {mid: s for mid, s in self.machines.items()
                             if scope.machines is None or mid in scope.machines},
                "metrics": {mid: s for mid, s in self.metrics.items()
                            if scope.machines is None or mid in scope.machines},
                "alerts": [a for a in self.alerts.values() if scope.machines is None or a["machine"] in scope.machines],
                "events": [e for e in self.events if scope.machines is None or e["machine"] in scope.machines],
            }
            sub = self.clients.subscribe_latest(merge=("tags",), keyed={"machine": "machine", "metrics": "machine"},
                                                select=scope.select, event=event, max_queued=1000)
        return state, sub

    def register_socket(self, key: int, info: dict) -> None:
        with self._lock:
            self.sockets[key] = info
            self.sockets_opened += 1

    def unregister_socket(self, key: int) -> None:
        with self._lock:
            self.sockets.pop(key, None)

    def _watchdog_loop(self) -> None:
        """A client whose socket has not taken a message for stall_timeout_s is cut off: its thread is freed."""
        while not self._stop.wait(1.0):
            now = time.monotonic()
            for info in list(self.sockets.values()):
                since = info.get("sending_since")
                if since is not None and now - since > self.stall_timeout_s and not info.get("evicted"):
                    info["evicted"] = True
                    self.sockets_evicted += 1
                    log.warning("live: a %s client took no data for %.0f s; disconnected", info["endpoint"],
                                now - since)
                    try:
                        info["kill"]()
                    except Exception:
                        pass

    # --- numbers for /healthz and /metrics -------------------------------------------------------------------

    @property
    def client_count(self) -> int:
        return len(self.sockets)

    @property
    def dropped(self) -> int:
        """Values coalesced or pushed out for slow clients (all time), plus updates the bus lost."""
        return self.clients.dropped + self.runtime.hub.dropped + (self.bus.dropped if self.bus else 0)

    def stats(self) -> dict:
        by_endpoint: dict[str, int] = {}
        for info in list(self.sockets.values()):
            by_endpoint[info["endpoint"]] = by_endpoint.get(info["endpoint"], 0) + 1
        return {
            "clients": self.client_count,
            "clients_by_endpoint": by_endpoint,
            "clients_opened": self.sockets_opened,
            "clients_evicted": self.sockets_evicted,
            "messages_sent": self.messages_sent,
            "updates_applied": self.applied,
            "client_dropped": self.clients.dropped,
            "source_dropped": self.runtime.hub.dropped,
            "tags": len(self.tags),
            "machines": len(self.machines),
            "active_alerts": len(self.alerts),
            "bus": self.bus.stats() if self.bus else {"kind": "off"},
        }


def resolve_bus_kind(settings) -> str:
    kind = settings.live_bus
    if kind == "auto":
        if settings.redis_url:
            return "redis"
        if settings.collector_process:
            return "local"  # our own child: not through a database that may go away
        return "postgresql" if settings.effective_database_url.startswith("postgresql") else "off"
    return kind


def normalise_status(message: dict) -> dict:
    return {
        "machine": message.get("machine", message.get("machine_id")),
        "state": message.get("state"),
        "since": message.get("since"),
        "fault_code": message.get("fault_code"),
        "product_code": message.get("product_code"),
        "order_id": message.get("order_id"),
        "ideal_cycle_time_s": clean_value(message.get("ideal_cycle_time_s")),
        "last_cycle_time_s": clean_value(message.get("last_cycle_time_s")),
        "counts": message.get("counts"),
    }


def derive_events(previous: dict | None, status: dict) -> list[tuple[str, dict]]:
    """State changes as events; a fault or a lost connection as an alert, cleared when it ends."""
    out = []
    mid, state = status["machine"], status["state"]
    prev_state = previous["state"] if previous else None
    when = status["since"] or time.time()
    if prev_state != state or (previous and previous["fault_code"] != status["fault_code"]):
        out.append(("event", {"kind": "state_change", "machine": mid, "time": when, "state": state,
                              "previous_state": prev_state, "fault_code": status["fault_code"],
                              "product_code": status["product_code"]}))
    elif previous and previous["product_code"] != status["product_code"]:
        out.append(("event", {"kind": "product_change", "machine": mid, "time": when, "state": state,
                              "previous_product_code": previous["product_code"],
                              "product_code": status["product_code"]}))
    was_faulted = prev_state == "faulted"
    if state == "faulted" and (not was_faulted or previous["fault_code"] != status["fault_code"]):
        code = status["fault_code"]
        out.append(("alert", {"id": f"fault:{mid}", "machine": mid, "active": True, "severity": "critical",
                              "kind": "fault", "fault_code": code, "since": when,
                              "message": f"faulted (fault code {code})" if code else "faulted"}))
    elif was_faulted and state != "faulted":
        out.append(("alert", {"id": f"fault:{mid}", "machine": mid, "active": False, "severity": "critical",
                              "kind": "fault", "fault_code": previous["fault_code"], "since": previous["since"],
                              "ended": when, "message": "fault cleared"}))
    if state == "offline" and prev_state != "offline":
        out.append(("alert", {"id": f"offline:{mid}", "machine": mid, "active": True, "severity": "warning",
                              "kind": "offline", "since": when,
                              "message": "no data from the PLC: the connection is down"}))
    elif prev_state == "offline" and state != "offline":
        out.append(("alert", {"id": f"offline:{mid}", "machine": mid, "active": False, "severity": "warning",
                              "kind": "offline", "since": previous["since"], "ended": when,
                              "message": "connection restored"}))
    return out
