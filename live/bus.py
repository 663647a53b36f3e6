"""Live updates between processes: PostgreSQL LISTEN/NOTIFY, Redis pub/sub when one is configured, or a loopback
socket between `python app.py` and the collector process it starts (LocalBus, any database).

Collector processes publish what their collectors publish; web processes listen and hand it to their WebSocket
clients. Two channels: `<channel>` carries data (collectors to web workers), `<channel>_ctl` carries requests
(a web worker that starts, or lost its listening connection, asks the collectors for their latest values).

Wire format, one JSON document per notification: {"o": origin, "s": seq, "m": [[topic, message], ...]}. `o`
identifies the sending process (a process that both collects and serves ignores its own), `s` makes payloads
distinct (PostgreSQL folds identical payloads sent in one transaction). A PostgreSQL payload must stay under
8000 bytes: messages are packed up to PG_PAYLOAD_LIMIT and a large tag batch ({tag_id: value}) is split.

Neither side ever blocks its caller: publish() appends to a bounded queue that a sender thread drains (oldest
dropped and counted when the transport is away); the listener thread reconnects with backoff, logging one line
when the link fails and one when it is back.
"""
from __future__ import annotations

import itertools
import json
import logging
import random
import socket
import struct
import threading
import uuid
from collections import deque
from multiprocessing.connection import Connection, answer_challenge, deliver_challenge
from typing import Callable

log = logging.getLogger(__name__)

PG_PAYLOAD_LIMIT = 7900  # bytes; PostgreSQL refuses payloads of 8000 bytes and more
MERGE_TOPICS = ("tags",)  # {key: value} messages that may be split across payloads


def dumps(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False, default=str)


def pack(items: list[tuple[str, object]], origin: str, seq: Callable[[], int],
         limit: int | None) -> tuple[list[str], int]:
    """Payloads for these (topic, message) items, each under limit bytes; returns (payloads, messages too large)."""
    encoded: list[str] = []
    too_big = 0

    def add(topic, message):
        nonlocal too_big
        try:
            text = dumps([topic, message])
        except ValueError:  # NaN or infinity: the live service sends None for those, so this is a caller's bug
            too_big += 1
            return
        if limit is None or len(text) <= limit - 64:
            encoded.append(text)
        elif topic in MERGE_TOPICS and isinstance(message, dict) and len(message) > 1:
            keys = list(message)
            half = len(keys) // 2
            add(topic, {k: message[k] for k in keys[:half]})
            add(topic, {k: message[k] for k in keys[half:]})
        else:
            too_big += 1

    for topic, message in items:
        add(topic, message)
    payloads, current, size = [], [], 0
    for text in encoded:
        if current and limit is not None and size + len(text) + 1 > limit - 64:
            payloads.append(f'{{"o":"{origin}","s":{seq()},"m":[{",".join(current)}]}}')
            current, size = [], 0
        current.append(text)
        size += len(text) + 1
    if current:
        payloads.append(f'{{"o":"{origin}","s":{seq()},"m":[{",".join(current)}]}}')
    return payloads, too_big


def unpack(payload: str) -> tuple[str, list[tuple[str, object]]]:
    doc = json.loads(payload)
    return doc.get("o", ""), [(m[0], m[1]) for m in doc.get("m", [])]


class Bus:
    """Common part: the bounded outbound queue, the sender and listener threads, counters, log-once on failure."""

    kind = "none"
    payload_limit: int | None = None

    def __init__(self, channel: str, *, listen_data: bool, listen_control: bool, max_queued: int = 50_000):
        self.channel = channel
        self.control_channel = f"{channel}_ctl"
        self.origin = uuid.uuid4().hex[:12]
        self.listen_data = listen_data
        self.listen_control = listen_control
        self._out: deque = deque(maxlen=max_queued)
        self._out_event = threading.Event()
        self._stop = threading.Event()
        self._seq = itertools.count(1).__next__
        self._threads: list[threading.Thread] = []
        self.on_data: Callable[[list], None] | None = None
        self.on_control: Callable[[dict], None] | None = None
        self.on_listening: Callable[[], None] | None = None  # (re)subscribed: ask for what was missed
        self.sent_payloads = 0
        self.sent_messages = 0
        self.received_payloads = 0
        self.dropped = 0  # messages lost: queue overflow, transport errors, too large
        self.send_ok = True
        self.listen_ok = True

    # --- public ----------------------------------------------------------------------------------------------

    def start(self) -> "Bus":
        self._threads.append(threading.Thread(target=self._send_loop, name=f"livebus-send-{self.kind}", daemon=True))
        if self.listen_data or self.listen_control:
            self._threads.append(threading.Thread(target=self._listen_loop, name=f"livebus-listen-{self.kind}",
                                                  daemon=True))
        for t in self._threads:
            t.start()
        return self

    def publish(self, topic: str, message) -> None:
        """Queue a data message for the other processes; never blocks."""
        if len(self._out) == self._out.maxlen:
            self.dropped += 1
        self._out.append((self.channel, topic, message))
        self._out_event.set()

    def control(self, message: dict) -> None:
        self._out.append((self.control_channel, "control", message))
        self._out_event.set()

    def stop(self) -> None:
        self._stop.set()
        self._out_event.set()
        for t in self._threads:
            t.join(timeout=3)
        self._close()

    def stats(self) -> dict:
        return {"kind": self.kind, "channel": self.channel, "origin": self.origin, "send_ok": self.send_ok,
                "listen_ok": self.listen_ok, "sent_payloads": self.sent_payloads,
                "sent_messages": self.sent_messages, "received_payloads": self.received_payloads,
                "queued": len(self._out), "dropped": self.dropped}

    # --- threads ---------------------------------------------------------------------------------------------

    def _send_loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            self._out_event.wait(1.0)
            self._out_event.clear()
            if not self._out:
                continue
            items = []
            while self._out:
                items.append(self._out.popleft())
            by_channel: dict[str, list] = {}
            for channel, topic, message in items:
                by_channel.setdefault(channel, []).append((topic, message))
            try:
                for channel, msgs in by_channel.items():
                    payloads, too_big = pack(msgs, self.origin, self._seq, self.payload_limit)
                    if too_big:
                        self.dropped += too_big
                        log.warning("live bus: %d messages larger than %d bytes not sent", too_big, self.payload_limit)
                    self._send(channel, payloads)
                    self.sent_payloads += len(payloads)
                    self.sent_messages += len(msgs)
            except Exception as exc:
                self.dropped += len(items)
                failures += 1
                if self.send_ok:
                    log.error("live bus (%s): cannot publish (%s); live updates to other processes are lost until "
                              "it works again", self.kind, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                self.send_ok = False
                self._close_sender()
                self._stop.wait(min(0.5 * 2 ** min(failures, 4), 5.0) * random.uniform(0.8, 1.2))
                continue
            if not self.send_ok:
                log.warning("live bus (%s): publishing works again", self.kind)
            self.send_ok, failures = True, 0

    def _listen_loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._subscribe()
                if not self.listen_ok:
                    log.warning("live bus (%s): listening again after %d failed attempts", self.kind, failures)
                self.listen_ok, failures = True, 0
                if self.on_listening:
                    self.on_listening()
                for channel, payload in self._receive():
                    self._dispatch(channel, payload)
            except Exception as exc:
                failures += 1
                if self.listen_ok:
                    log.error("live bus (%s): listening failed (%s); retrying with backoff", self.kind,
                              str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                self.listen_ok = False
                self._close_listener()
                self._stop.wait(min(0.5 * 2 ** min(failures, 4), 5.0) * random.uniform(0.8, 1.2))

    def _dispatch(self, channel: str, payload: str) -> None:
        self.received_payloads += 1
        try:
            origin, items = unpack(payload)
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            log.warning("live bus: unreadable payload ignored (%s)", exc)
            return
        if origin == self.origin:
            return  # this process delivered it locally already
        try:
            if channel == self.control_channel:
                if self.on_control:
                    for _topic, message in items:
                        self.on_control(message)
            elif self.on_data:
                self.on_data(items)
        except Exception:
            log.exception("live bus: handling a payload failed")

    # --- transport (subclasses) ------------------------------------------------------------------------------

    def _send(self, channel: str, payloads: list[str]) -> None:
        raise NotImplementedError

    def _subscribe(self) -> None:
        raise NotImplementedError

    def _receive(self):
        """Yields (channel, payload) until stopped; raises when the link breaks."""
        raise NotImplementedError

    def _close_sender(self) -> None:
        pass

    def _close_listener(self) -> None:
        pass

    def _close(self) -> None:
        self._close_sender()
        self._close_listener()

    def _channels(self) -> list[str]:
        return ([self.channel] if self.listen_data else []) + ([self.control_channel] if self.listen_control else [])


class PgBus(Bus):
    """PostgreSQL LISTEN/NOTIFY on connections of its own (psycopg 3, autocommit)."""

    kind = "postgresql"
    payload_limit = PG_PAYLOAD_LIMIT

    def __init__(self, dsn: str, channel: str, **kw):
        super().__init__(channel, **kw)
        self.dsn = dsn
        self._sender = None
        self._listener = None

    def _connect(self):
        import psycopg

        return psycopg.connect(self.dsn, autocommit=True, connect_timeout=5, application_name="oee-livebus")

    def _send(self, channel: str, payloads: list[str]) -> None:
        if self._sender is None or self._sender.closed:
            self._sender = self._connect()
        # One round trip, one transaction; notifications of a transaction are delivered in order.
        self._sender.execute("SELECT pg_notify(%s, p) FROM unnest(%s::text[]) AS p", (channel, payloads))

    def _subscribe(self) -> None:
        self._close_listener()
        self._listener = self._connect()
        for ch in self._channels():
            self._listener.execute(f'LISTEN "{ch}"')

    def _receive(self):
        conn = self._listener
        while not self._stop.is_set():
            for n in conn.notifies(timeout=0.5):
                yield n.channel, n.payload
            if conn.closed or conn.broken:
                raise ConnectionError("the listening connection was closed")

    def _close_sender(self) -> None:
        if self._sender is not None:
            try:
                self._sender.close()
            except Exception:
                pass
            self._sender = None

    def _close_listener(self) -> None:
        if self._listener is not None:
            try:
                self._listener.close()
            except Exception:
                pass
            self._listener = None


class RedisBus(Bus):
    """Redis pub/sub (the redis package, imported only when a Redis URL is configured)."""

    kind = "redis"

    def __init__(self, url: str, channel: str, **kw):
        super().__init__(channel, **kw)
        import redis

        self._redis_mod = redis
        self.url = url
        self._sender = None
        self._pubsub = None

    def _send(self, channel: str, payloads: list[str]) -> None:
        if self._sender is None:
            self._sender = self._redis_mod.Redis.from_url(self.url, socket_connect_timeout=5, socket_timeout=5)
        pipe = self._sender.pipeline(transaction=False)
        for p in payloads:
            pipe.publish(channel, p)
        pipe.execute()

    def _subscribe(self) -> None:
        self._close_listener()
        client = self._redis_mod.Redis.from_url(self.url, socket_connect_timeout=5, health_check_interval=10)
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(*self._channels())

    def _receive(self):
        ps = self._pubsub
        while not self._stop.is_set():
            msg = ps.get_message(timeout=0.5)
            if msg and msg.get("type") == "message":
                ch, data = msg["channel"], msg["data"]
                yield (ch.decode() if isinstance(ch, bytes) else ch), (
                    data.decode() if isinstance(data, bytes) else data)

    def _close_sender(self) -> None:
        if self._sender is not None:
            try:
                self._sender.close()
            except Exception:
                pass
            self._sender = None

    def _close_listener(self) -> None:
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except Exception:
                pass
            self._pubsub = None


HANDSHAKE_TIMEOUT_S = 5


def _handshake_socket(sock, timeout_s: int = HANDSHAKE_TIMEOUT_S):
    """Blocking (multiprocessing's Connection reads the descriptor directly), but a peer that stalls the key
    exchange must not hang the listener: a receive timeout at the socket level, where the platform has one."""
    sock.setblocking(True)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", timeout_s, 0))
    except (OSError, struct.error):
        pass
    return sock


def _end_handshake(conn) -> None:
    try:
        sock = socket.socket(fileno=conn.fileno())
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 0))
        finally:
            sock.detach()
    except (OSError, struct.error):
        pass


class LocalBus(Bus):
    """One authenticated TCP connection on loopback between `python app.py` (the web side, which listens) and the
    collector process it starts (which connects): the live bus of the default deployment, on any database.

    The address is 127.0.0.1 and a free port; the key (32 random bytes, handed to the child in its environment, never
    on a command line) authenticates both ends with multiprocessing's HMAC challenge, so another local user can
    neither read the plant's values nor inject any. Frames are `channel NUL payload` (no size limit). The web side
    keeps the latest connection only: a collector process that restarts replaces its predecessor.
    """

    kind = "local"
    ACCEPT_WAIT_S = 0.5
    SEND_WAIT_S = 5.0  # a message sent before the other end is connected waits this long for it

    def __init__(self, channel: str, *, key: bytes, address: tuple[str, int] | None = None, **kw):
        super().__init__(channel, **kw)
        self.key = key
        self._conn = None
        self._connected = threading.Condition()
        self._server = None
        if address is None:  # the web side: listen now, so that the port is known before the child starts
            self._server = socket.create_server(("127.0.0.1", 0))
            self._server.settimeout(self.ACCEPT_WAIT_S)
            self.address = self._server.getsockname()[:2]
        else:
            self.address = address
        self.connections = 0  # connections made (or accepted) so far

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def _subscribe(self) -> None:
        self._close_listener()
        if self._server is not None:
            while True:
                if self._stop.is_set():
                    raise ConnectionError("stopped")
                try:
                    sock, _ = self._server.accept()
                    break
                except socket.timeout:
                    continue
            conn = Connection(_handshake_socket(sock).detach())
            try:
                deliver_challenge(conn, self.key)
                answer_challenge(conn, self.key)
            except Exception:
                conn.close()
                raise ConnectionError("a process connected without the key; refused") from None
        else:
            sock = socket.create_connection(self.address, timeout=5.0)
            # Longer than the web side's: it may be turning away a stalled peer before it answers us.
            conn = Connection(_handshake_socket(sock, 3 * HANDSHAKE_TIMEOUT_S).detach())
            try:
                answer_challenge(conn, self.key)
                deliver_challenge(conn, self.key)
            except Exception:
                conn.close()
                raise
        _end_handshake(conn)
        with self._connected:
            self._conn = conn
            self.connections += 1
            self._connected.notify_all()

    def _receive(self):
        conn = self._conn
        while not self._stop.is_set():
            try:
                if not conn.poll(0.5):
                    continue
                frame = conn.recv_bytes()
            except (EOFError, OSError):
                # The other end closed: a collector process that died (the supervisor says so), or, seen from
                # the collector, its parent stopping (this process is about to stop too: not worth a log line).
                if self._stop.wait(2.0):
                    return
                raise ConnectionError("the other process closed the link") from None
            channel, _, payload = frame.partition(b"\0")
            yield channel.decode(), payload.decode()

    def _send(self, channel: str, payloads: list[str]) -> None:
        with self._connected:
            if self._conn is None:
                self._connected.wait(self.SEND_WAIT_S)
            conn = self._conn
        if conn is None:
            raise ConnectionError("the other process is not connected")
        head = channel.encode() + b"\0"
        for p in payloads:
            conn.send_bytes(head + p.encode())

    def _close_listener(self) -> None:
        with self._connected:
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    def _close(self) -> None:
        super()._close()
        if self._server is not None:
            self._server.close()


def make_bus(kind: str, *, database_url: str, redis_url: str, channel: str, listen_data: bool,
             listen_control: bool, local_key: bytes | None = None,
             local_address: tuple[str, int] | None = None) -> Bus | None:
    """kind: off, postgresql, redis or local (auto is resolved by the caller). local: without an address this
    process listens (the web side), with one it connects (the collector process)."""
    if kind == "off":
        return None
    if kind == "local":
        if not local_key:
            raise ValueError("the local live bus needs its key (OEE_LIVE_BUS_KEY)")
        return LocalBus(channel, key=local_key, address=local_address, listen_data=listen_data,
                        listen_control=listen_control)
    if kind == "redis":
        return RedisBus(redis_url, channel, listen_data=listen_data, listen_control=listen_control)
    if kind == "postgresql":
        from sqlalchemy.engine import make_url

        dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        return PgBus(dsn, channel, listen_data=listen_data, listen_control=listen_control)
    raise ValueError(f"live bus {kind!r}: use off, postgresql, redis or local")
