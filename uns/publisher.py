"""The Unified Namespace publisher: what the live service sees, as retained JSON under an ISA-95 topic tree.

It runs in the process that collects, beside the live service, and takes its updates from the live service's hub
(the one the WebSocket clients read): tag values as they change, machine states, counts once a second when they
moved. Each machine's OEE, A, P and Q for its current shift is computed every minute with the query behind
/metrics and GET /api/oee/ (db/shift_oee.py), so the numbers match. Topics and payloads: docs/uns.md; the
bounded buffer while the broker is away: uns/outbox.py.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime, timezone

from uns.broker import Broker
from uns.outbox import DEFAULT_LIMIT, Outbox
from uns.sparkplug_node import COUNTS, FAULT_CODE, OEE, PRODUCT_CODE, STATE, TAG_FOLDER
from uns.topics import level, machine_topic

log = logging.getLogger(__name__)
TOPICS = {"tags", "machine", "metrics"}
QUALITY = {0: "good", 1: "uncertain", 2: "bad"}
OEE_INTERVAL_S = 60.0
OEE_KEYS = ("oee", "availability", "performance", "quality", "good_count", "total_count", "planned_time_s",
            "run_time_s")
STATE_KEYS = ("state", "fault_code", "product_code", "order_id")


def iso(t: float | None) -> str | None:
    """ISO 8601 in UTC with milliseconds: 2026-12-07T03:10:00.123Z."""
    if t is None:
        return None
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dumps(doc: dict) -> bytes:
    return json.dumps(doc, separators=(",", ":"), allow_nan=False, default=str).encode()


class UnsPublisher:
    def __init__(self, live, store, broker: Broker, *, prefix: str = "oee", buffer_limit: int = DEFAULT_LIMIT,
                 node_name: str = "oee", oee_interval_s: float = OEE_INTERVAL_S, clock=time.time, sparkplug=None):
        self.live = live
        self.store = store
        self.prefix = prefix
        self.node_name = node_name
        self.oee_interval_s = oee_interval_s
        self.clock = clock
        self.status_topic = f"{prefix}/_publisher/{level(node_name)}"
        self.outbox = Outbox(broker, f"oee-uns-{node_name}"[:64], limit=buffer_limit, name="UNS publisher")
        # The broker says we are gone when our connection ends without a goodbye (the MQTT last will).
        self.outbox.client.will_set(self.status_topic, dumps({"online": False}), qos=1, retain=True)
        self.outbox.on_connected = self._say_online
        self._states: dict[int, dict] = {}  # machine db id -> last state published
        self._counts: dict[int, dict] = {}  # machine db id -> last totals published
        # Each retained topic's latest payload, sent again after a reconnection: a broker that restarted without
        # persistence has forgotten its retained values. One lock with the buffer's order (see _emit).
        self._retained: dict[str, bytes] = {}
        self._emit_lock = threading.Lock()
        self._connections = 0
        self.republished = 0
        self._sub = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.sparkplug = sparkplug  # uns.sparkplug_node.SparkplugNode (--sparkplug-group), fed the same changes
        self.oee_failing = False
        self.unknown_skipped = 0  # updates of tags or machines not (yet) in the catalog

    def start(self) -> "UnsPublisher":
        self.outbox.start()
        if self.sparkplug is not None:
            self.sparkplug.start()
        self._sub = self.live.clients.subscribe(TOPICS, maxlen=50_000)
        for target, name in ((self._update_loop, "uns-updates"), (self._oee_loop, "uns-oee")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        log.info("UNS: publishing the plant under %r to %s", self.prefix, self.outbox.broker.shown)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._sub is not None:
            self._sub.close()
            self._sub._event.set()
        for t in self._threads:
            t.join(2.0)
        self.outbox.flush()
        if self.outbox.connected:  # a clean goodbye, after the data: the broker does not send the will then
            info = self.outbox.client.publish(self.status_topic, dumps({"online": False, "time": iso(self.clock())}),
                                              qos=1, retain=True)
            try:
                info.wait_for_publish(0.5)
            except (RuntimeError, ValueError):  # the connection went meanwhile: the will says it
                pass
        self.outbox.stop(flush_s=0)
        if self.sparkplug is not None:
            self.sparkplug.stop()

    def _say_online(self) -> None:
        """On each connection (paho's thread): online, straight to paho (it must not wait behind the messages of
        an outage); after a reconnection, every retained topic's latest value again, behind what the buffer
        holds."""
        self.outbox.client.publish(self.status_topic, dumps({"online": True, "time": iso(self.clock())}), qos=1,
                                   retain=True)
        self._connections += 1
        if self._connections > 1:
            with self._emit_lock:
                items = list(self._retained.items())
                for topic, payload in items:
                    self.outbox.put(topic, payload, retain=True, bounded=False)
            self.republished += len(items)
            log.info("UNS: the current values of %d topics sent again after the reconnection", len(items))

    def _emit(self, topic: str, payload: bytes) -> None:
        """A retained message into the buffer. Remembered and queued under one lock, so that the values sent again
        after a reconnection can never overtake a newer one."""
        with self._emit_lock:
            self._retained[topic] = payload
            self.outbox.put(topic, payload, retain=True)

    # --- updates from the live service -----------------------------------------------------------------------

    def _update_loop(self) -> None:
        while not self._stop.is_set():
            items = self._sub.get_all(timeout=1.0)
            for topic, message in items:
                try:
                    self.handle(topic, message)
                except Exception:
                    log.exception("UNS: an update could not be published")

    def handle(self, topic: str, message) -> None:
        if topic == "tags":
            self._tags(message)
        elif topic == "machine":
            self._state(message)
        elif topic == "metrics":
            self._count(message)

    def _machine(self, mid) -> dict | None:
        m = self.live.catalog.machines.get(mid)
        if m is None:
            self.unknown_skipped += 1
        return m

    def _tags(self, message: dict) -> None:
        # The live service encodes each value once for all its clients: {tag id: '"12":[t, v, q]'}.
        values = json.loads("{" + ",".join(message.values()) + "}")
        catalog = self.live.catalog
        spb: dict[int, tuple[dict, list]] = {}  # machine -> ({metric: value}, [latest sample time])
        for key, (t, v, q) in values.items():
            tid = int(key)
            tag = catalog.tags.get(tid)
            machine = self._machine(tag["machine"]) if tag is not None else None
            if machine is None:
                continue
            doc = {"value": v, "time": iso(t), "quality": QUALITY.get(q, str(q))}
            reason = self.live.tag_reasons.get(tid) if q else None
            if reason:
                doc["reason"] = reason
            self._emit(f"{machine_topic(self.prefix, machine)}/tags/{level(tag['name'])}", dumps(doc))
            values_at = spb.setdefault(tag["machine"], ({}, [0.0]))
            values_at[0][TAG_FOLDER + tag["name"]] = None if q == 2 else v
            values_at[1][0] = max(values_at[1][0], t)
        if self.sparkplug is not None:
            for mid, (metrics, (t,)) in spb.items():
                self.sparkplug.update(mid, metrics, timestamp_ms=int(t * 1000))  # when the values were read

    def _state(self, status: dict) -> None:
        mid = status["machine"]
        machine = self._machine(mid)
        if machine is None:
            return
        previous = self._states.get(mid)
        now = {k: status.get(k) for k in STATE_KEYS}
        if previous is not None and all(previous[k] == now[k] for k in STATE_KEYS):
            return
        self._states[mid] = now
        doc = {**now, "previous_state": previous["state"] if previous else None, "since": iso(status.get("since")),
               "time": iso(self.clock())}
        self._emit(f"{machine_topic(self.prefix, machine)}/state", dumps(doc))
        if self.sparkplug is not None:
            self.sparkplug.update(mid, {STATE: now["state"], FAULT_CODE: now["fault_code"],
                                        PRODUCT_CODE: now["product_code"]})

    def _count(self, metrics: dict) -> None:
        mid = metrics["machine"]
        totals = {k: int(v or 0) for k, v in (metrics.get("counts") or {}).items()}
        previous = self._counts.get(mid)
        if previous == totals:
            return
        machine = self._machine(mid)
        if machine is None:
            return
        self._counts[mid] = totals
        if previous is None or any(totals.get(k, 0) < previous.get(k, 0) for k in totals):
            increment = dict.fromkeys(totals, 0) if previous is None else dict(totals)  # first, or restarted
        else:
            increment = {k: v - previous.get(k, 0) for k, v in totals.items()}
        doc = {**totals, "increment": increment, "time": iso(metrics.get("time") or self.clock())}
        self._emit(f"{machine_topic(self.prefix, machine)}/counts", dumps(doc))
        if self.sparkplug is not None:
            self.sparkplug.update(mid, {COUNTS[k]: v for k, v in totals.items() if k in COUNTS})

    # --- OEE of the current shift, every minute --------------------------------------------------------------

    def _oee_loop(self) -> None:
        while not self._stop.wait(self.oee_interval_s):
            self.publish_oee()

    def publish_oee(self) -> int:
        """Each machine's OEE, A, P, Q of its current shift now; how many were published."""
        from db.shift_oee import current_shift_oee

        now = self.clock()
        try:
            items = current_shift_oee(self.store, now)
        except Exception as exc:  # the database is away: said once, tried again next minute
            if not self.oee_failing:
                log.warning("UNS: current-shift OEE not available: %s", str(exc).splitlines()[0])
            self.oee_failing = True
            return 0
        if self.oee_failing:
            log.info("UNS: current-shift OEE is back")
        self.oee_failing = False
        catalog = self.live.catalog
        n = 0
        for item in items:
            mid = catalog.find_machine(item.machine)
            machine = catalog.machines.get(mid) if mid is not None else None
            if machine is None:
                continue
            doc = {"shift": item.shift, "start": iso(item.start), "end": iso(item.end),
                   **{k: item.report.get(k) for k in OEE_KEYS}, "time": iso(now)}
            self._emit(f"{machine_topic(self.prefix, machine)}/oee", dumps(doc))
            if self.sparkplug is not None:
                self.sparkplug.update(mid, {name: doc[key] for key, name in OEE.items()})
            n += 1
        return n

    # --- health ----------------------------------------------------------------------------------------------

    def stats(self) -> dict:
        problems = [self.outbox.problem()]
        if self.sparkplug is not None:
            spb = self.sparkplug
            if not spb.connected and spb.last_error:
                problems.append(f"Sparkplug B edge node {spb.group_id}/{spb.edge_node_id}: {spb.last_error}")
        out = {**self.outbox.stats(), "prefix": self.prefix, "problem": "; ".join(p for p in problems if p) or None,
               "retained_topics": len(self._retained), "republished_messages": self.republished,
               "unknown_skipped": self.unknown_skipped}
        # Updates the publisher could not take from the hub in time (its queue of 50,000 full) are lost too.
        out["dropped_messages"] += self._sub.dropped if self._sub is not None else 0
        if self.sparkplug is not None:
            out["sparkplug"] = self.sparkplug.stats()
        return out
