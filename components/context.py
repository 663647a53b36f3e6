"""What pages need from the running app: the runtime, the store, the plant's time zone, and a query's time range.

Pages read the runtime from Flask (`current_app.extensions["oee"]`); nothing here talks SQL, it calls db/.
"""
from __future__ import annotations

import time

from flask import current_app

from components import timerange
from db import ui_queries


def runtime():
    return current_app.extensions["oee"]


def store():
    return runtime().store


_site_cache: dict = {"t": 0.0, "value": None}


def site() -> dict:
    """The site (name, time zone), read at most every 30 s: it changes only when the configuration does."""
    now = time.monotonic()
    if _site_cache["value"] is None or now - _site_cache["t"] > 30:
        _site_cache["value"] = ui_queries.site_info(store())
        _site_cache["t"] = now
    return _site_cache["value"]


def tz() -> str:
    return site()["timezone"]


def resolve(query: dict, scope: str | None = None, key: str | None = None, *, clamp: bool = True,
            now: float | None = None) -> timerange.Range:
    """The query's range for a scope (None: the whole plant), in epoch seconds, with the shift from the scope's
    calendar and the start clamped to when its data begins."""
    now = time.time() if now is None else now
    s = store()
    preset = timerange.normalize(query).get("range")
    shift = ui_queries.shift_at(s, scope, key, now) if preset == "shift" else None
    first = None
    if clamp:
        try:
            first = ui_queries.data_start(s, scope, key)
        except LookupError:
            first = None
    return timerange.resolve(query, tz=tz(), now=now, shift=shift, data_start=first)


def connections_health() -> dict[int, dict]:
    """The collectors' health per connection id ({} in the web role: the collectors run elsewhere)."""
    rt = runtime()
    if rt.collectors is None:
        return {}
    return {c["connection_id"]: c for c in rt.collectors.health() if c.get("connection_id") is not None}


def machine_states(machine_ids: list[int] | None = None) -> dict[int, dict]:
    """The state of every machine (db id), or of these: the collectors' live snapshot where this process collects,
    else the latest stored state. {state, since, fault_code, product_code, ideal_cycle_time_s, last_cycle_time_s,
    live}."""
    from db import ui_queries as q

    out = {mid: {**st, "live": False} for mid, st in q.machine_status(store(), machine_ids).items()}
    rt = runtime()
    if rt.collectors is not None:
        for mid, snap in rt.collectors.snapshot.machines().items():
            if machine_ids is not None and mid not in machine_ids:
                continue
            if snap.get("since") is None and mid in out:
                continue  # the tracker has not seen a cycle yet: the stored state says more
            out[mid] = {**out.get(mid, {}), **snap, "live": True}
    return out


def not_reporting(machine: dict, status: dict | None, health: dict | None) -> str | None:
    """Why a machine shows no live state, in words, or None when it reports."""
    from components.format import ago, local

    conn = health or {}
    err = (conn.get("last_error") or {}).get("message")
    if machine.get("connection_id") is None:
        return "No connection configured for this machine."
    if not machine.get("enabled", True):
        return "Machine disabled in the configuration."
    if conn.get("state") == "config_error":
        return f"Connection not started: {err or 'configuration error'}."
    if conn.get("state") == "failing":
        since = conn.get("last_success")
        retry = conn.get("retry_in_s")
        when = f"since {local(since, tz())}" if since else "since start"
        return (f"Not reporting {when}: {err or 'the connection fails'}"
                + (f" (next try in {retry:.0f} s)." if retry else "."))
    if status is None:
        return "No data yet: waiting for the first read." if runtime().collectors is not None else \
            "No data recorded for this machine."
    if status.get("state") == "offline":
        return f"Offline since {local(status.get('since'), tz())} ({ago(time.time() - status['since'])})" + (
            f": {err}" if err else ".")
    return None
