"""How much time one question may cover: the one check that every route and page taking a range goes through
(GET /api/oee/, every /export/*.csv, /api/audit/, and the pages through components/context.py).

A range is refused, with the parameter named and the limit said, when
- a time is not one the app can hold (before 1970, after 9999, not finite): `start` or `end`;
- it ends more than a day after now (FUTURE_S): nothing is recorded there, and the engine would work from now to
  then: `end`;
- it ends before the first recorded data (first_data()): nothing was ever recorded there: `end`;
- it is wider than the limit of its kind (LIMITS_S): each kind reads at most so much: `start`.
Pages do not answer 400: they show the nearest allowed range and say why (RangeRefused.nearest).
Calendars have no start date of their own: the first recorded data is the floor.

Wide ranges are bounded further where the rows are read (db.oee_queries: MAX_STATE_ROWS) and by the request's
deadline (db.deadline).
"""
from __future__ import annotations

import math
import time
from datetime import datetime, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import Machine, MachineState

DAY = 86400.0
FUTURE_S = DAY  # a range may end at most this long after now (clocks of PLCs and browsers drift; time zones)
EARLIEST = 0.0  # 1970-01-01: no stored time is older
LATEST = 253402214400.0  # 9999-12-31T00:00:00Z: the last day datetime can hold a day of look-back around

# The widest range of each kind of question, in seconds. hour, shift, day and total are GET /api/oee/'s (and
# /export/oee.csv's) buckets: 1,000 hours, about 1,000 shifts (three a day), 1,000 days; total is a range without
# buckets. raw, 1m, 1h: /export/tags.csv's resolutions (its row estimate applies as well). downtime: the events of
# /export/downtime.csv. page: the dashboards (a quarter). audit: the audit log's filter (its answers are paged).
LIMITS_S: dict[str, float | None] = {
    "hour": 1000 * 3600.0,
    "shift": 333 * DAY,
    "day": 1000 * DAY,
    "total": 1000 * DAY,
    "raw": 366 * DAY,
    "1m": 366 * DAY,
    "1h": 1000 * DAY,
    "downtime": 366 * DAY,
    "page": 92 * DAY,
    "audit": None,
}
# Kinds refused when the range ends before the first recorded data (nothing to show). Not the audit log, and not
# pages: they clamp to their scope's first data themselves and say so (components/timerange.py).
NEEDS_DATA = frozenset(LIMITS_S) - {"audit", "page"}


class RangeRefused(ValueError):
    """A range the app does not answer. field: the parameter to change; message: what is wrong and the limit;
    nearest: the closest range that would be answered (for pages, which show it and say why)."""

    def __init__(self, field: str, message: str, nearest: tuple[float, float], also: dict[str, str] | None = None):
        super().__init__(message)
        self.field = field
        self.message = message
        self.nearest = nearest
        self.fields = {field: message, **(also or {})}  # every parameter that could fix it, with what to give


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def duration(seconds: float) -> str:
    if seconds >= 2 * DAY:
        return f"{seconds / DAY:,.0f} days"
    return f"{seconds / 3600:,.0f} hours"


def _shown(value: float) -> str:
    try:
        return datetime.fromtimestamp(value, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, ValueError, OSError):
        return f"{value!r} (epoch seconds)"


def time_problem(value: float) -> str | None:
    """Why an epoch-seconds value is not a time the app can hold, or None."""
    if not math.isfinite(value):
        return "a finite time"
    if not EARLIEST <= value <= LATEST:
        return "a time between 1970-01-01 and 9999-12-30 (ISO 8601 or epoch seconds)"
    return None


def check(start: float, end: float, kind: str, *, now: float | None = None, first_data: float | None = None) -> None:
    """Raise RangeRefused when [start, end) is not a range of this kind the app answers (module docstring)."""
    if kind not in LIMITS_S:
        raise ValueError(f"unknown kind of range {kind!r}; one of {', '.join(LIMITS_S)}")
    now = time.time() if now is None else now
    for name, value in (("start", start), ("end", end)):
        problem = time_problem(value)
        if problem:
            raise RangeRefused(name, f"{name}: {_shown(value)} is not {problem}", (now - DAY, now))
    if end <= start:
        raise RangeRefused("end", "the range is empty or inverted: end must be after start", (end - DAY, end),
                           {"start": "a time before end"})
    latest = now + FUTURE_S
    if end > latest:
        nearest_end = max(min(now, end), start + 1) if start < now else now
        raise RangeRefused("end", f"end: {iso(end)} is more than a day after now ({iso(now)}); nothing is recorded "
                                  f"there: give an end before {iso(latest)}",
                           (min(start, nearest_end - 3600), nearest_end))
    limit = LIMITS_S[kind]
    if limit is not None and end - start > limit:
        what = {"total": "a range without buckets", "page": "a page", "downtime": "a downtime export",
                "raw": "raw samples", "1m": "1-minute rollups", "1h": "1-hour rollups"}.get(kind, f"{kind} buckets")
        coarser = {"hour": "day", "shift": "day", "raw": "1m", "1m": "1h"}.get(kind)
        also = {"bucket": f"a coarser bucket ({coarser}) or a shorter range"} if kind in ("hour", "shift") else (
            {"resolution": f"a coarser resolution ({coarser}) or a shorter range"} if coarser else {})
        raise RangeRefused("start", f"start: {duration(end - start)} from start to end is more than {what} may cover "
                                    f"({duration(limit)}); give a later start or an earlier end"
                                    + (f", or a coarser {next(iter(also))} ({coarser})" if also else ""),
                           (end - limit, end), also)
    if kind in NEEDS_DATA and first_data is not None and end <= first_data:
        raise RangeRefused("end", f"end: {iso(end)} is before the first recorded data ({iso(first_data)}); nothing "
                                  "was recorded then: give a range that ends after it",
                           (first_data, max(first_data + 3600, min(now, first_data + DAY))))


def first_data(store) -> float | None:
    """When the first state of any machine was recorded (None: nothing yet). One index look-up per machine (the
    primary key is (machine_id, start)), not a scan of the history."""
    earliest = (select(func.min(MachineState.start)).where(MachineState.machine_id == Machine.id)
                .correlate(Machine).scalar_subquery())
    with Session(store.engine) as session:
        value = session.scalar(select(func.min(earliest)))
    return value.timestamp() if value is not None else None
