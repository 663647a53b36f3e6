"""The site's OEE report over a range, read once for the callbacks of a page that ask for it at the same time.

The overview's KPIs and its lines' OEE (pages/overview.py) and its plant-wide loss Pareto (components/loss_pareto.py)
both need db.oee_queries.oee_report_with_machines for the site over the same range, and Dash sends their callbacks
together on load: each read the same rows and analysed 100 machines again (at 100 machines about 40 ms of a ~120 ms
callback, both competing for the one interpreter). Here the first caller reads, and a caller asking for the same
range while that read runs waits for it and takes its answer. Nothing is kept after: a later call reads anew, so a
reason given meanwhile shows at once (and a report of 100 machines, many objects, does not stay on the heap). The
key is the exact range: the answer is the one a call of its own gives (the same function, the same arguments).
So ranges that have ended (a custom range, yesterday, the last shift) are shared; a range that ends now is not, as
each callback resolves its own now (counting now in whole seconds made them meet, but cut up to a second off the
newest data, and a fresh plant's first-minute KPIs showed it: tests/pages/test_first_minute.py). Callers must not
change what they get (it is shared).
"""
from __future__ import annotations

import threading

from db.oee_queries import oee_report_with_machines


def bucket_for(start: float, end: float) -> str:
    """The trend's bucket the overview asks for: hours up to two days, days beyond."""
    return "hour" if end - start <= 2 * 86400 else "day"


class _Flight:
    def __init__(self):
        self.done = threading.Event()
        self.value = None
        self.error: BaseException | None = None


_lock = threading.Lock()
_flying: dict[tuple, _Flight] = {}


def site_report(store, site_key: str, start: float, end: float) -> tuple[dict, dict]:
    """oee_report_with_machines(store, "site", site_key, start, end, bucket=bucket_for(start, end)), shared with
    the callers asking for the same while it runs."""
    key = (str(store.engine.url), str(site_key), start, end)  # the database, not the object (ids are reused)
    with _lock:
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
        flight.done.set()
