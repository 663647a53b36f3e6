"""Fan-out of live updates to WebSocket clients: each subscriber has a bounded queue; a slow one loses its oldest.

A browser tab that cannot keep up must never slow the collectors or grow memory without bound.
"""
from __future__ import annotations

import threading
from collections import deque


class Subscription:
    def __init__(self, hub: "Hub", topics: set[str] | None, maxlen: int):
        self._hub = hub
        self.topics = topics  # None: everything
        self._items: deque = deque(maxlen=maxlen)
        self._event = threading.Event()
        self.dropped = 0

    def _offer(self, topic: str, message) -> None:
        if self.topics is not None and topic not in self.topics:
            return
        if len(self._items) == self._items.maxlen:
            self.dropped += 1
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
        return items

    def close(self) -> None:
        self._hub._remove(self)


class Hub:
    def __init__(self):
        self._subs: list[Subscription] = []
        self._lock = threading.Lock()

    def subscribe(self, topics: set[str] | None = None, maxlen: int = 1000) -> Subscription:
        sub = Subscription(self, topics, maxlen)
        with self._lock:
            self._subs.append(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def publish(self, topic: str, message) -> None:
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            sub._offer(topic, message)

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)
