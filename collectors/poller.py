"""One connection's read cycle: connect (with backoff), read the plan, turn readings into samples and machine data.

A poller is run by one scheduler job that never overlaps itself. It logs one line when its link fails and one
when it recovers (with the count of failed attempts between), never one per failed cycle.
"""
from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
from dataclasses import dataclass

from collectors.base import (
    BAD,
    GOOD,
    PROTOCOL_ERROR,
    TIMEOUT,
    ConnectionSettings,
    DriverError,
    Reading,
    TagSpec,
    driver_class,
)
from collectors.machine_model import MachineTracker
from collectors.peers import explain

log = logging.getLogger(__name__)
STOP_WAIT_S = 2.0  # stop(): how long to wait for a cycle in progress once its driver is aborted

CONNECTED, CONNECTING, FAILING, STOPPED = "connected", "connecting", "failing", "stopped"
NUMERIC_TEXT_TYPES = {"STRING"}


@dataclass
class TagRuntime:
    tag_id: int
    name: str
    role: str | None
    machine_id: int | None
    scale: float
    offset: float
    deadband: float
    report_by_exception: bool
    is_text: bool
    last_value: object = None
    last_quality: int | None = None
    last_stored: float = 0.0
    scaled: bool = False  # scale or offset other than 1 and 0: set from them
    always_store: bool = True  # neither report by exception nor a deadband: every reading is stored
    plain: bool = False  # stored on every read, unscaled, not text, no machine role: _process's short way

    def __post_init__(self) -> None:
        self.scaled = self.scale != 1.0 or self.offset != 0.0
        self.always_store = not (self.report_by_exception or self.deadband > 0)
        self.plain = self.always_store and not self.scaled and not self.is_text and not (self.role and self.machine_id)


@dataclass
class BackoffPolicy:
    initial_s: float = 2.0
    max_s: float = 60.0
    jitter: float = 0.2

    def delay(self, failures: int) -> float:
        base = min(self.initial_s * (2 ** max(failures - 1, 0)), self.max_s)
        return base * random.uniform(1 - self.jitter, 1 + self.jitter)


class ConnectionPoller:
    def __init__(self, config: dict, *, writer, snapshot, hub, trackers: dict[int, MachineTracker],
                 tracker_locks: dict[int, threading.Lock], backoff: BackoffPolicy, heartbeat_s: float = 60.0,
                 timeout_s: float = 3.0, watchdog_s: float | None = None):
        self.config = config
        self.id = config["id"]
        self.name = config["name"]
        self.protocol = config["protocol"]
        self.interval_s = config["poll_interval_ms"] / 1000.0
        self.writer = writer
        self.snapshot = snapshot
        self.hub = hub
        self.trackers = trackers
        self.tracker_locks = tracker_locks
        self.backoff = backoff
        self.heartbeat_s = heartbeat_s
        self.timeout_s = timeout_s
        # A connect or read that has not ended by then is aborted and reported (check_watchdog): each request has
        # its timeout, but a library can loop, or a connect be many requests. Generous: a Logix tag upload or an
        # OPC-UA session is many round trips.
        self.watchdog_s = watchdog_s or max(30.0, timeout_s * 10)
        # Lines about this connection carry its name and machines as fields (--log-format json)
        self.log = logging.LoggerAdapter(log, {"connection": self.name, "machine": None})
        cls = driver_class(self.protocol)
        settings = ConnectionSettings(self.protocol, config["host"], config["port"],
                                      cls.validate_config(config["protocol_config"]), timeout_s)
        self.driver = cls(settings)
        specs = [TagSpec(t["id"], t["address"], t["data_type"], t["name"]) for t in config["tags"]]
        self.plan = self.driver.plan(specs)
        self.tags = [
            TagRuntime(t["id"], t["name"], t["role"], t["machine_id"], float(t["scale"] or 1.0),
                       float(t["offset"] or 0.0), float(t["deadband"] or 0.0), bool(t["report_by_exception"]),
                       t["data_type"].upper().startswith("STRING"))
            for t in config["tags"]
        ]
        self.machine_ids = sorted({t.machine_id for t in self.tags if t.machine_id})
        # A push driver (MQTT, Sparkplug B) reads only the tags whose values came; each machine's roles are the
        # latest good value of each, so that the machine model sees what a poll of every tag would show.
        self.pushed = cls.pushes
        self._tag_by_id = {t.tag_id: t for t in self.tags}
        self._roles_now: dict[int, dict] = {}
        if self.pushed:
            self.driver.set_listener(self._on_push)
        codes = sorted({m["machine_id"] for m in (config.get("machines") or {}).values() if m.get("machine_id")})
        self.log.extra["machine"] = ",".join(codes) or None  # LINE-001 (a gateway may feed several)
        self.state = CONNECTING
        self.connected = False
        self.failures = 0  # consecutive failed attempts
        self.down_since: float | None = None
        self.next_attempt = 0.0  # monotonic
        self.last_error: DriverError | None = None
        self.last_success: float | None = None
        self.cycles = 0
        self.skipped_cycles = 0
        # Timing of the cycles, for the log line of a skipped one (wall-clock times, seconds):
        self.cycle_started_at: float | None = None  # the cycle in progress began (None: idle)
        self.last_cycle: tuple[float, float, float] | None = None  # (began, read s, process s) of the last one
        self.samples_stored = 0
        self.last_latency_ms: float | None = None
        self.latency_total_s = 0.0  # of successful cycles: with `cycles`, a Prometheus summary
        self.errors: dict[str, int] = {}  # failed cycles by error kind, for /metrics
        self._latency_ewma: float | None = None
        self.bad_tags = 0
        self._last_flush = 0.0  # the first cycle flushes: counts show up as soon as the counters are seen
        self._lock = threading.Lock()  # run_cycle and stop never interleave
        self._call_lock = threading.Lock()  # the watchdog and the cycle's thread hand a stuck call over under it
        self._call_started: float | None = None  # monotonic start of the driver call in progress
        self._overrun = False  # the watchdog gave up on the call in progress

    # --- the job ---------------------------------------------------------------------------------------------

    def run_cycle(self) -> None:
        with self._lock:
            self._cycle()

    def _on_push(self) -> None:
        """A push driver has news (called on its network thread): read it now, not at the next interval. For a
        push driver the scheduled job only watches the link, reconnects and flushes counts."""
        while not self._lock.acquire(timeout=0.1):
            if self.state == STOPPED:  # stop() holds the lock and waits for this thread to end
                return
        try:
            if self.state == STOPPED or not self.connected:
                return
            if self.state == FAILING:
                self.next_attempt = 0.0  # the device behind the broker spoke again (a BIRTH): no backoff wait
            self._cycle()
        finally:
            self._lock.release()

    def _cycle(self) -> None:
        """One cycle, under self._lock."""
        if self.state == STOPPED:
            return
        if self.state == FAILING and time.monotonic() < self.next_attempt:
            return  # backing off: not a skipped cycle, a deliberate wait
        started = time.perf_counter()
        self.cycle_started_at = began = time.time()
        with self._call_lock:
            self._call_started = time.monotonic()
        error = None
        try:
            if not self.connected:
                self.driver.connect()
                self.connected = True
            readings = self.driver.read(self.plan)
        except DriverError as exc:
            error = exc
        except Exception as exc:  # a driver bug must not kill the job: treat it as a broken link, loudly
            self.log.exception("connection %s: unexpected error in the %s driver", self.name, self.protocol)
            error = DriverError(PROTOCOL_ERROR, f"{exc.__class__.__name__}: {exc}")
        with self._call_lock:
            self._call_started = None
            overrun, self._overrun = self._overrun, False
        read_s = time.perf_counter() - started
        try:
            if overrun or self.state == STOPPED:  # aborted (watchdog, stop): whatever came back is stale
                self.driver.close()
                self.connected = False
                return
            if error is not None:
                self._failed(error)
                return
            self._succeeded(started, readings)
        finally:
            self.cycle_started_at = None
            self.last_cycle = (began, read_s, time.perf_counter() - started - read_s)

    def _succeeded(self, started: float, readings: dict) -> None:
        now = time.time()
        self.last_latency_ms = (time.perf_counter() - started) * 1000
        self.latency_total_s += self.last_latency_ms / 1000
        self._latency_ewma = self.last_latency_ms if self._latency_ewma is None else (
            0.8 * self._latency_ewma + 0.2 * self.last_latency_ms)
        self._recovered()
        self.cycles += 1
        self.last_success = now
        self._process(now, readings, partial=self.pushed)

    # --- link state ------------------------------------------------------------------------------------------

    def check_watchdog(self, now: float | None = None) -> bool:
        """Called by the manager's watchdog job: a driver call running longer than watchdog_s is reported as a
        timeout (the connection shows failing with why) and its driver aborted, so that the call ends and the
        job runs again. Returns whether it fired."""
        now = time.monotonic() if now is None else now
        with self._call_lock:
            began = self._call_started
            if began is None or self._overrun or now - began < self.watchdog_s:
                return False
            self._overrun = True
        stage = "read" if self.connected else "connect"
        self._failed(DriverError(TIMEOUT, f"{stage} did not end within {self.watchdog_s:g} s; aborted",
                                 "The device or the network is too slow, or the port belongs to something that "
                                 "is not a PLC; the collector reconnects."), close=False)
        self.driver.abort()
        return True

    def _failed(self, exc: DriverError, close: bool = True) -> None:
        now = time.time()
        host, port = self.config["host"], self.config["port"]
        exc = explain(exc, self.protocol, host, port, self.timeout_s)  # a port that belongs to something else
        self.failures += 1
        self.last_error = exc
        self.errors[exc.kind] = self.errors.get(exc.kind, 0) + 1
        # A broker whose edge node died is still a working link: kept, to hear the node's BIRTH when it returns
        keep = exc.link_up and self.connected
        if close and not keep:
            self.driver.close()
        if not keep:
            self.connected = False
        if self.state != FAILING:
            self.down_since = now
            self.log.error("connection %s (%s %s:%s) failed: %s: %s%s; retrying with backoff", self.name,
                           self.protocol, host, port, exc.kind, exc.message,
                           f" ({exc.suggestion})" if exc.suggestion else "")
            self._went_offline(now)
        changed = self.state != FAILING
        self.state = FAILING
        self.next_attempt = time.monotonic() + self.backoff.delay(self.failures)
        if changed:
            self._state_changed()

    def _recovered(self) -> None:
        if self.state == FAILING:
            self.log.warning("connection %s recovered after %d failed attempts (down %.1f s)", self.name,
                             self.failures, time.time() - (self.down_since or time.time()))
        changed = self.state != CONNECTED
        self.state = CONNECTED
        self.failures = 0
        self.down_since = None
        if changed:
            self._state_changed()

    def _state_changed(self) -> None:
        """Web processes hear of a connection's new state at once, before the values that follow it (they get
        every connection's health each second too)."""
        if self.hub.subscriber_count:
            self.hub.publish("connection", self.health())

    def _went_offline(self, now: float) -> None:
        """The PLC is out of sight: its tags get one bad sample each, its machines go offline."""
        rows, items = [], {}
        err = self.last_error
        reason = err.kind if err else "cannot_connect"
        if err is not None and err.link_up:  # the broker told why (NDEATH, DDEATH): keep its words
            reason = f"{err.kind}: {err.message}"
        for tag in self.tags:
            if tag.last_quality != BAD:
                rows.append((now, tag.tag_id, None, None, BAD, reason))
                tag.last_quality, tag.last_value, tag.last_stored = BAD, None, now
            items[tag.tag_id] = (now, None, BAD, reason)
        self.snapshot.put_tags(items)
        self.writer.submit_samples(rows)
        if self.pushed:
            self._roles_now.clear()  # what comes after is a new start (a BIRTH gives every value again)
            self.bad_tags = len(self.tags)
        if self.hub.subscriber_count:
            self.hub.publish("tags", {tid: [t, v, q] + ([r] if r else []) for tid, (t, v, q, r) in items.items()})
        for mid in self.machine_ids:
            with self.tracker_locks[mid]:
                tracker = self.trackers[mid]
                out = tracker.offline(now)
                snap = tracker.snapshot()
                self.snapshot.put_machine(mid, snap)
            self.writer.submit_states(out.states)
            self.writer.submit_counts(out.counts)
            self.writer.submit_faults(out.faults)
            if out.states and self.hub.subscriber_count:
                self.hub.publish("machine", {"machine_id": mid, **snap})

    # --- readings to data ------------------------------------------------------------------------------------

    def _process(self, now: float, readings: dict[int, Reading], partial: bool = False) -> None:
        """partial: readings holds only the tags whose values came (a push driver); the others keep theirs.

        Runs once per tag per cycle (50,000 times a second at the [perf] target), so everything that does not
        change per tag is looked up once per cycle, and the live fan-out's dict is built only when somebody
        listens."""
        rows = []
        items = {}
        changed = {}
        roles: dict[int, dict] = {}
        bad = 0
        heartbeat = self.heartbeat_s
        publish = bool(self.hub.subscriber_count)
        isfinite = math.isfinite
        get = readings.get
        append = rows.append
        tags = self.tags
        if partial:
            tags = [self._tag_by_id[tid] for tid in readings if tid in self._tag_by_id]
            bad = self.bad_tags
        for tag in tags:
            tag_id = tag.tag_id
            reading = get(tag_id)
            if tag.plain and not partial and reading is not None and reading.quality == GOOD and reading.reason is None:
                # The bulk of a plant: a good number for a tag stored on every read (no deadband, no report by
                # exception, no scale, no role, not text). The same outcome as the general way below, with
                # a tenth of its tests.
                value = reading.value
                kind = value.__class__
                if kind is float or kind is int:
                    value = float(value)
                    items[tag_id] = (now, value, GOOD, None)
                    if publish and (value != tag.last_value or tag.last_quality != GOOD):
                        changed[tag_id] = [now, value, GOOD]
                    append((now, tag_id, value if isfinite(value) else None, None, GOOD, None))
                    tag.last_value, tag.last_quality, tag.last_stored = value, GOOD, now
                    continue
            if reading is None:
                value, quality, reason = None, BAD, "no reading"
            else:
                value, quality, reason = reading.value, reading.quality, reading.reason
            if isinstance(value, (list, tuple)):
                # An array tag (StationTemps, FaultHistory): kept whole, stored as JSON text.
                value = [v.item() if hasattr(v, "item") else v for v in value]
            elif quality != BAD and value is not None and not tag.is_text:
                try:
                    value = float(value)
                    if tag.scaled:
                        value = value * tag.scale + tag.offset
                except (TypeError, ValueError):
                    value, quality, reason = None, BAD, f"wrong type: {type(reading.value).__name__}"
            last_quality = tag.last_quality
            if quality == BAD:
                value = None
                bad += 1
            if partial and last_quality == BAD:  # the count of bad tags moves by this tag's change
                bad -= 1
            items[tag_id] = (now, value, quality, reason)
            if tag.role and tag.machine_id:
                if partial:
                    held = self._roles_now.setdefault(tag.machine_id, {})
                    if quality == GOOD:
                        held[tag.role] = value
                    else:
                        held.pop(tag.role, None)
                    roles[tag.machine_id] = held
                elif quality == GOOD:
                    roles.setdefault(tag.machine_id, {})[tag.role] = value
            last = tag.last_value
            store = tag.always_store or quality != last_quality or now - tag.last_stored >= heartbeat
            if not store:
                if tag.deadband > 0 and isinstance(value, float) and isinstance(last, float):
                    store = abs(value - last) > tag.deadband
                else:
                    store = value != last
            if publish and (value != last or quality != last_quality):
                changed[tag_id] = [now, value, quality, reason] if reason else [now, value, quality]
            if store:
                if value.__class__ is float and not tag.is_text:
                    append((now, tag_id, value if isfinite(value) else None, None, quality, reason))
                elif isinstance(value, list):
                    append((now, tag_id, None, json.dumps(value), quality, reason))
                elif tag.is_text:
                    append((now, tag_id, None, None if value is None else str(value), quality, reason))
                else:
                    append((now, tag_id, value if value is None or isfinite(value) else None, None, quality,
                            reason))
                tag.last_value, tag.last_quality, tag.last_stored = value, quality, now
        self.bad_tags = bad
        self.snapshot.put_tags(items)
        if rows:
            self.writer.submit_samples(rows)
            self.samples_stored += len(rows)
        flush_due = time.monotonic() - self._last_flush >= 5.0
        for mid in self.machine_ids:
            states, counts, faults = [], [], []
            with self.tracker_locks[mid]:
                tracker = self.trackers[mid]
                if mid in roles:
                    out = tracker.update(now, dict(roles[mid]))
                    states, counts, faults = out.states, out.counts, out.faults
                if flush_due:
                    counts = counts + tracker.flush(now).counts
                snap = tracker.snapshot()
                self.snapshot.put_machine(mid, snap)
            self.writer.submit_states(states)
            self.writer.submit_counts(counts)
            self.writer.submit_faults(faults)
            if states and self.hub.subscriber_count:
                self.hub.publish("machine", {"machine_id": mid, **snap})
        if flush_due:
            self._last_flush = time.monotonic()
        if changed and self.hub.subscriber_count:
            self.hub.publish("tags", changed)

    # --- lifecycle and health --------------------------------------------------------------------------------

    def abort_if_busy(self) -> None:
        """The first half of a stop: no new cycle, and a call in progress is aborted (stop() waits for it)."""
        self.state = STOPPED
        with self._call_lock:
            busy = self._call_started is not None
        if busy:
            self.driver.abort()

    def stop(self) -> None:
        """Stop polling; a cycle in progress has its driver aborted and is waited for STOP_WAIT_S at most, so
        that a stop (SIGTERM, a configuration change) never hangs on a PLC."""
        self.state = STOPPED  # a cycle that starts from now returns at once
        if not self._lock.acquire(timeout=0.2):
            self.driver.abort()
            if not self._lock.acquire(timeout=STOP_WAIT_S):
                self.log.warning("connection %s: its %s driver did not return when aborted; left behind",
                                 self.name, self.protocol)
                return
        try:
            self.state = STOPPED
            self.driver.close()
            self.connected = False
        finally:
            self._lock.release()

    def health(self) -> dict:
        err = self.last_error
        return {
            "connection_id": self.id,
            "name": self.name,
            "protocol": self.protocol,
            "host": self.config["host"],
            "port": self.config["port"],
            "state": self.state,
            "poll_interval_ms": self.config["poll_interval_ms"],
            "tags": len(self.tags),
            "bad_tags": self.bad_tags,
            "cycles": self.cycles,
            "skipped_cycles": self.skipped_cycles,
            "samples_stored": self.samples_stored,
            "latency_ms": round(self._latency_ewma, 2) if self._latency_ewma is not None else None,
            "last_latency_ms": round(self.last_latency_ms, 2) if self.last_latency_ms is not None else None,
            "latency_total_s": round(self.latency_total_s, 6),
            "errors": dict(self.errors),
            "last_success": self.last_success,
            "consecutive_failures": self.failures,
            "retry_in_s": round(max(self.next_attempt - time.monotonic(), 0.0), 1) if self.state == FAILING else None,
            "last_error": err.as_dict() if err and self.state == FAILING else None,
        }
