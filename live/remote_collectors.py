"""The collectors of other processes, as a web process sees them through the live bus.

A web process (the parent of `python app.py`, or a gunicorn worker) polls no PLC: the collector processes send it
their latest values, machine states, each connection's health and their writer's numbers (live/service.py). This
object answers the questions pages, the API and /healthz ask of a CollectorManager (snapshot, health,
connection_health, reload) from what arrived, so they work the same whichever process polls.
"""
from __future__ import annotations

import time

from live.service import REPORT_MAX_AGE_S

NOT_WRITER = ("origin", "connection_ids", "uns")  # what a writer report carries beside the writer's own numbers


class RemoteSnapshot:
    """collectors.snapshot.LatestValues' reading side, over the live service's mirror."""

    def __init__(self, live):
        self._live = live

    def tags(self, tag_ids=None) -> dict[int, tuple]:
        live = self._live
        with live._lock:
            ids = live.tags.keys() if tag_ids is None else [t for t in tag_ids if t in live.tags]
            return {t: (*live.tags[t], live.tag_reasons.get(t)) for t in ids}

    def machines(self) -> dict[int, dict]:
        with self._live._lock:
            return dict(self._live.machines)

    def machine(self, machine_id: int) -> dict | None:
        return self._live.machines.get(machine_id)


class RemoteCollectors:
    remote = True

    def __init__(self, live):
        self.live = live
        self.snapshot = RemoteSnapshot(live)

    def stop(self) -> None:
        """Nothing runs here (a child collector process is stopped by its supervisor, processes/collector_process)."""

    @property
    def reporting(self) -> bool:
        """Has a collector process reported in the last few seconds?"""
        return bool(self.live.collector_origins())

    def health(self) -> list[dict]:
        """Each connection's latest health (the newest report per connection id, none older than 10 s)."""
        now = time.monotonic()
        newest: dict = {}
        for (_origin, cid), (at, health) in list(self.live.remote_connections.items()):
            if now - at > REPORT_MAX_AGE_S:
                continue
            if cid not in newest or at > newest[cid][0]:
                newest[cid] = (at, health)
        return [{k: v for k, v in h.items() if k != "origin"} for _, h in newest.values()]

    def connection_health(self, connection_id: int) -> dict | None:
        return next((h for h in self.health() if h.get("connection_id") == connection_id), None)

    def writer_stats(self) -> dict | None:
        """The collector processes' writers, summed (database_ok only if every one is)."""
        now = time.monotonic()
        fresh = [w for at, w in list(self.live.remote_writers.values()) if now - at <= REPORT_MAX_AGE_S]
        if not fresh:
            return None
        out: dict = {}
        for w in fresh:
            for k, v in w.items():
                if k in NOT_WRITER:
                    continue
                if isinstance(v, bool):
                    out[k] = out.get(k, True) and v
                elif isinstance(v, (int, float)) and isinstance(out.get(k, 0), (int, float)):
                    out[k] = out.get(k, 0) + v
                else:
                    out.setdefault(k, v)
        return out

    def uns_stats(self) -> dict | None:
        """The collector processes' MQTT publishers (uns/): numbers summed, connected only if every one is, their
        problems joined; None when none publishes."""
        now = time.monotonic()
        fresh = [w["uns"] for at, w in list(self.live.remote_writers.values())
                 if now - at <= REPORT_MAX_AGE_S and w.get("uns")]
        if not fresh:
            return None
        out = dict(fresh[0])
        for other in fresh[1:]:
            for k, v in other.items():
                if isinstance(v, bool):
                    out[k] = out.get(k) and v
                elif isinstance(v, (int, float)) and isinstance(out.get(k), (int, float)):
                    out[k] += v
        out["problem"] = "; ".join(u["problem"] for u in fresh if u.get("problem")) or None
        return out

    def reload(self) -> dict:
        """Ask the collector processes to reload now and wait for their answers: what changed, as
        CollectorManager.reload says it. Raises when none answers: they still pick the change up on their timer."""
        replies = self.live.request_reload()
        if not replies:
            raise TimeoutError("no collector process answered within 10 s; they pick up the change at their next "
                               "reload (every 10 s)")
        errors = [r["error"] for r in replies if r.get("error")]
        if errors and len(errors) == len(replies):
            raise RuntimeError(errors[0])
        merged: dict[str, list] = {"added": [], "removed": [], "restarted": []}
        for r in replies:
            for kind, ids in (r.get("changes") or {}).items():
                merged.setdefault(kind, []).extend(ids)
        return merged
