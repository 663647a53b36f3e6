"""The site's OEE report over a range, read once for the callbacks of a page that draw from it at the same time.

The overview's KPIs and its lines' OEE (pages/overview.py) and its plant-wide loss Pareto (components/loss_pareto.py)
both need db.oee_queries.oee_report_with_machines for the site over the same range, and Dash runs their callbacks
side by side: each read the same rows and analysed 100 machines again (at 100 machines about 40 ms of a ~120 ms
callback). Here the first caller reads, a caller asking for the same range meanwhile waits for that answer instead
of reading too, and the answer is kept TTL_S seconds. The key is the exact range: the numbers are the ones a call of
its own gives (the same function, the same arguments). Ranges that end now share an end because context.resolve
counts now in whole seconds. Callers must not change what they get (it is shared).
"""
from __future__ import annotations

import threading
import time

from db.oee_queries import oee_report_with_machines

TTL_S = 5.0  # a reason given or a calendar changed shows in the next read after this at the latest
MAX_KEPT = 16


def bucket_for(start: float, end: float) -> str:
    """The trend's bucket the overview asks for: hours up to two days, days beyond."""
    return "hour" if end - start <= 2 * 86400 else "day"


class _Flight:
    def __init__(self):
        self.done = threading.Event()
        self.value = None
        self.error: BaseException | None = None


_lock = threading.Lock()
_kept: dict[tuple, tuple[float, tuple]] = {}
_flying: dict[tuple, _Flight] = {}


def site_report(store, site_key: str, start: float, end: float) -> tuple[dict, dict]:
    """oee_report_with_machines(store, "site", site_key, start, end, bucket=bucket_for(start, end)), shared."""
    key = (str(store.engine.url), str(site_key), start, end)  # the database, not the object (ids are reused)
    now = time.monotonic()
    with _lock:
        for k in [k for k, (at, _) in _kept.items() if now - at > TTL_S]:
            del _kept[k]
        if key in _kept:
            return _kept[key][1]
        flight = _flying.get(key)
        mine = flight is None
        if mine:
            flight = _flying[key] = _Flight()
    if not mine:
        if not flight.done.wait(60):
            raise TimeoutError("the site's OEE report took over 60 s")
        if flight.error is not None:
            raise flight.error
        return flight.value
    try:
        flight.value = oee_report_with_machines(store, "site", str(site_key), start, end,
                                                bucket=bucket_for(start, end))
        return flight.value
    except BaseException as exc:
        flight.error = exc
        raise
    finally:
        with _lock:
            _flying.pop(key, None)
            if flight.error is None:
                if len(_kept) >= MAX_KEPT:
                    _kept.pop(min(_kept, key=lambda k: _kept[k][0]))
                _kept[key] = (time.monotonic(), flight.value)
        flight.done.set()


def forget() -> None:
    """Drop what is kept (bench.ui_profile, between its page loads)."""
    with _lock:
        _kept.clear()
