"""One MQTT connection with a bounded buffer in front of it: what is published while the broker is away waits, in
order, and goes out when it returns.

    put() ──► buffer (deque, at most `limit` messages; full: the oldest goes, counted) ──► sender thread ──► paho
                                                                                            (QoS 1, `window` unacked)

The sender hands paho a message only while connected, and at most `window` messages wait for their PUBACK. Those
paho keeps and sends again, first and in order, when the connection comes back (MQTT 3.1.1 4.4), so nothing handed
over is lost either: during an outage at most limit + window messages wait, and the oldest beyond that are
dropped. A drop is counted, said once in the log per outage, and shown in /healthz (a problem until the broker is
back and the buffer has drained) and /metrics. Telegraf's output buffer (models/buffer_mem.go) works the same way.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque

import paho.mqtt.client as mqtt

from uns.broker import Broker, diagnose, make_client

log = logging.getLogger(__name__)
DEFAULT_LIMIT = 10_000
DEFAULT_WINDOW = 100
STOP_FLUSH_S = 1.0  # of the 6 s a collector process has to stop (app.py CHILD_STOP_DEADLINE_S)


class Outbox:
    def __init__(self, broker: Broker, client_id: str, *, limit: int = DEFAULT_LIMIT, window: int = DEFAULT_WINDOW,
                 name: str = "MQTT"):
        self.broker = broker
        self.limit = limit
        self.window = window
        self.name = name  # in log lines and /healthz problems
        self._buffer: deque = deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self.client = make_client(broker, client_id)
        self.client.max_inflight_messages_set(window)
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.connected = False
        self.ever_connected = False
        self.in_flight = 0
        self.published = 0  # acknowledged by the broker
        self.dropped = 0  # all time
        self.dropped_in_outage = 0  # since the connection was last lost; 0 once it is back and drained
        self.last_error: str | None = None
        self.down_since: float | None = time.time()
        self._said_drop = False
        self._sender: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> "Outbox":
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=15)
        self.client.loop_start()
        self._sender = threading.Thread(target=self._send_loop, name=f"{self.name}-sender", daemon=True)
        self._sender.start()
        return self

    def flush(self, timeout_s: float = STOP_FLUSH_S) -> None:
        """Wait up to timeout_s, while connected, for what waits to be sent and acknowledged."""
        deadline = time.monotonic() + timeout_s
        while self.connected and (self._buffer or self.in_flight) and time.monotonic() < deadline:
            time.sleep(0.02)

    def stop(self, flush_s: float = STOP_FLUSH_S) -> None:
        """Send what waits for up to flush_s while connected, then disconnect."""
        self.flush(flush_s)
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()
        if self._sender is not None:
            self._sender.join(2.0)

    # --- publishing ------------------------------------------------------------------------------------------

    def put(self, topic: str, payload: bytes, retain: bool = False, *, bounded: bool = True) -> None:
        """Queue a message; past the bound the oldest goes (counted). bounded=False: kept whatever the bound (the
        current values sent again after a reconnection: as many as the plant has topics)."""
        with self._cond:
            if bounded and len(self._buffer) >= self.limit:
                self._buffer.popleft()
                self.dropped += 1
                self.dropped_in_outage += 1
                if not self._said_drop:
                    self._said_drop = True
                    log.warning("%s: the buffer of %d messages is full (broker %s away: %s); dropping the oldest "
                                "until it is back", self.name, self.limit, self.broker.shown,
                                self.last_error or "not connected")
            self._buffer.append((topic, payload, retain))
            self._cond.notify()

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                while not self._stop.is_set() and not (self.connected and self._buffer and
                                                       self.in_flight < self.window):
                    self._cond.wait(1.0)
                if self._stop.is_set():
                    return
                topic, payload, retain = self._buffer.popleft()
                self.in_flight += 1
            # Outside the lock: paho calls on_publish (which takes it) from its own thread.
            info = self.client.publish(topic, payload, qos=1, retain=retain)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):  # NO_CONN: queued, sent on reconnect
                with self._cond:
                    self.in_flight -= 1
                log.error("%s: publishing to %r failed: %s", self.name, topic, mqtt.error_string(info.rc))

    # --- paho's callbacks (its network thread) ---------------------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._set_error(f"the broker refused the connection: {reason_code}")
            return
        with self._cond:
            again = self.ever_connected
            self.connected = True
            self.ever_connected = True
            self.last_error = None
            self._cond.notify_all()
        if again:
            log.info("%s: connected to %s again after %.0f s; %d buffered messages follow%s", self.name,
                     self.broker.shown, time.time() - (self.down_since or time.time()), len(self._buffer),
                     f" ({self.dropped_in_outage} dropped: buffer full)" if self.dropped_in_outage else "")
        else:
            log.info("%s: connected to %s", self.name, self.broker.shown)
        self.down_since = None
        self.on_connected()

    def on_connected(self) -> None:
        """Called on every (re)connection, in paho's thread; subclasses and owners may replace it."""

    def _on_connect_fail(self, client, userdata) -> None:
        if self.last_error is None or self.last_error.startswith("connection lost"):
            # Once per outage (paho retries every 1 to 30 s): what failed, found by trying the steps ourselves.
            self._set_error(diagnose(self.broker))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        with self._cond:
            was = self.connected
            self.connected = False
        if self._stop.is_set():
            return
        if was:
            self._set_error(f"connection lost ({reason_code})")
        elif self.last_error is None:  # else keep why it never got connected (a refused CONNACK says it better)
            self._set_error(f"disconnected ({reason_code})")

    def _set_error(self, error: str) -> None:
        first = self.down_since is None or self.last_error is None
        self.last_error = error
        if self.down_since is None:
            self.down_since = time.time()
        if first:
            log.warning("%s: broker %s: %s; buffering up to %d messages and retrying", self.name, self.broker.shown,
                        error, self.limit)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._cond:
            self.in_flight = max(0, self.in_flight - 1)
            self.published += 1
            if self.connected and not self._buffer and self.dropped_in_outage:
                self.dropped_in_outage = 0  # back and drained: the problem ends
                self._said_drop = False
            self._cond.notify()

    # --- health ----------------------------------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def stats(self) -> dict:
        return {"url": self.broker.shown, "connected": self.connected, "buffered_messages": len(self._buffer),
                "buffer_limit_messages": self.limit, "in_flight_messages": self.in_flight,
                "published_messages": self.published, "dropped_messages": self.dropped,
                "dropped_in_outage": self.dropped_in_outage, "last_error": self.last_error,
                "down_since": self.down_since}

    def problem(self) -> str | None:
        """Why /healthz says degraded, or None."""
        if not self.connected and self.last_error is None:
            return None  # connecting for the first time; nothing failed yet
        if not self.connected:
            return (f"broker {self.broker.shown}: {self.last_error}; {len(self._buffer)} "
                    f"messages buffered" + (f", {self.dropped_in_outage} dropped (buffer of {self.limit} full)"
                                            if self.dropped_in_outage else ""))
        if self.dropped_in_outage:
            # Back after an outage, or more to send than the broker takes: until the buffer has drained.
            return (f"broker {self.broker.shown}: {self.dropped_in_outage} messages dropped since the buffer of "
                    f"{self.limit} filled; {len(self._buffer)} still to send")
        return None
