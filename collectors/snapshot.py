"""The latest values: owned by the collectors, read by pages, the WebSocket and the API. Nothing else polls a PLC."""
from __future__ import annotations

import threading


class LatestValues:
    def __init__(self):
        self._tags: dict[int, tuple] = {}  # tag_id -> (time, value, quality, reason)
        self._machines: dict[int, dict] = {}  # machine db id -> MachineTracker.snapshot()
        self._lock = threading.Lock()

    def put_tags(self, items: dict[int, tuple]) -> None:
        with self._lock:
            self._tags.update(items)

    def put_machine(self, machine_id: int, snapshot: dict) -> None:
        with self._lock:
            self._machines[machine_id] = snapshot

    def tag(self, tag_id: int) -> tuple | None:
        return self._tags.get(tag_id)

    def tags(self, tag_ids=None) -> dict[int, tuple]:
        with self._lock:
            if tag_ids is None:
                return dict(self._tags)
            return {t: self._tags[t] for t in tag_ids if t in self._tags}

    def machine(self, machine_id: int) -> dict | None:
        return self._machines.get(machine_id)

    def machines(self) -> dict[int, dict]:
        with self._lock:
            return dict(self._machines)

    def forget_tags(self, tag_ids) -> None:
        with self._lock:
            for t in tag_ids:
                self._tags.pop(t, None)
