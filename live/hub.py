"""Fan-out of live updates: a publisher never waits for a subscriber, and a subscriber's memory is bounded.

Two kinds of subscription:

- `Subscription` (hub.subscribe): a bounded queue of (topic, message); when full, the oldest goes and is counted.
  The live service drains the collectors' hub through one of these.
- `LatestSubscription` (hub.subscribe_latest): what a WebSocket client gets. Values coalesce while the client is
  busy: for a merged topic ("tags": {tag_id: value}) the latest value per key wins; for a keyed topic ("machine",
  "metrics": one dict per machine) the latest message per key wins; everything else (events, alerts) waits in a
  bounded queue. Every value overwritten or pushed out before it was sent is counted in `dropped`, so a slow
  browser tab costs a bounded amount of memory and never slows the collectors or the other clients.

Counters for /metrics: `Hub.published`, `Hub.dropped` (over all subscriptions, closed ones included) and
`Hub.subscriber_count`.
"""
from __future__ import annotations

import threading
from collections import deque
from typing import Callable


class Subscription:
    def __init__(self, hub: "Hub", topics: set[str] | None, maxlen: int):
        self._hub = hub
        self.topics = topics  # None: everything
        self._items: deque = deque(maxlen=maxlen)
        self._event = threading.Event()
        self.dropped = 0
        self.delivered = 0

    def _offer(self, topic: str, message) -> None:
        if self.topics is not None and topic not in self.topics:
            return
        if len(self._items) == self._items.maxlen:
            self.dropped += 1
            self._hub._count_dropped(1)
        self._items.append((topic, message))
        self._event.set()

    def get_all(self, timeout: float) -> list:
        """Everything waiting, or [] after timeout."""
        if not self._event.wait(timeout):
            return []
        self._event.clear()
        items = []
        while self._items:
            items.append(self._items.popleft())
        self.delivered += len(items)
        return items

    def close(self) -> None:
        self._hub._remove(self)


class Batch:
    """What a LatestSubscription had waiting: merged values, latest keyed messages, queued messages (in order)."""

    __slots__ = ("merged", "keyed", "queued")

    def __init__(self, merged: dict, keyed: dict, queued: list):
        self.merged = merged  # topic -> {key: value}
        self.keyed = keyed  # topic -> {key: message}
        self.queued = queued  # [(topic, message)]

    def __bool__(self) -> bool:
        return bool(self.merged or self.keyed or self.queued)

    def count(self) -> int:
        return (sum(len(v) for v in self.merged.values()) + sum(len(v) for v in self.keyed.values())
                + len(self.queued))


class LatestSubscription:
    """A coalescing subscription (see the module's docstring).

    select(topic, message) -> message or None: what this subscriber wants of a message (filtering by machine or tag
    happens here, in the publisher's thread, so nothing unwanted is ever queued). event: the threading.Event to set
    when something arrives; a WebSocket handler passes the one its socket also sets on incoming data, so it waits
    for both at once.
    """

    def __init__(self, hub: "Hub", *, merge: tuple[str, ...] = ("tags",),
                 keyed: dict[str, str] | None = None, select: Callable | None = None, max_queued: int = 1000,
                 event: threading.Event | None = None):
        self._hub = hub
        self._merge = set(merge)
        self._keyed = dict(keyed or {})
        self._select = select
        self._merged: dict[str, dict] = {}
        self._latest: dict[str, dict] = {}
        self._queued: deque = deque(maxlen=max_queued)
        self._lock = threading.Lock()
        self.event = event or threading.Event()
        self.dropped = 0
        self.delivered = 0

    def _offer(self, topic: str, message) -> None:
        if self._select is not None:
            message = self._select(topic, message)
            if message is None:
                return
        lost = 0
        with self._lock:
            if topic in self._merge:
                pending = self._merged.get(topic)
                if pending is None:
                    self._merged[topic] = dict(message)
                else:
                    before = len(pending)
                    pending.update(message)
                    lost = before + len(message) - len(pending)
            elif topic in self._keyed:
                pending = self._latest.setdefault(topic, {})
                key = message.get(self._keyed[topic])
                if key in pending:
                    lost = 1
                pending[key] = message
            else:
                if len(self._queued) == self._queued.maxlen:
                    lost = 1
                self._queued.append((topic, message))
            self.dropped += lost
        if lost:
            self._hub._count_dropped(lost)
        self.event.set()

    def take(self) -> Batch:
        """Everything waiting now (possibly nothing); never blocks."""
        with self._lock:
            batch = Batch(self._merged, self._latest, list(self._queued))
            self._merged, self._latest = {}, {}
            self._queued.clear()
        self.delivered += batch.count()
        return batch

    def close(self) -> None:
        self._hub._remove(self)


class Hub:
    def __init__(self):
        self._subs: list = []
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()
        self.published = 0  # messages published
        self.dropped = 0  # values or messages lost for some subscriber (coalesced or pushed out), all time

    def subscribe(self, topics: set[str] | None = None, maxlen: int = 1000) -> Subscription:
        sub = Subscription(self, topics, maxlen)
        self._add(sub)
        return sub

    def subscribe_latest(self, **options) -> LatestSubscription:
        sub = LatestSubscription(self, **options)
        self._add(sub)
        return sub

    def _add(self, sub) -> None:
        with self._lock:
            self._subs = self._subs + [sub]  # copy on write: publish iterates without the lock

    def _remove(self, sub) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs = [s for s in self._subs if s is not sub]

    def _count_dropped(self, n: int) -> None:
        with self._count_lock:
            self.dropped += n

    def publish(self, topic: str, message) -> None:
        self.published += 1
        for sub in self._subs:
            sub._offer(topic, message)

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)
