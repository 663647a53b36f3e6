"""Time buckets: by hour, by day (local, DST-correct) and by shift (from a Schedule).

A bucket is [start, end) in epoch seconds with a label. The buckets of a range are in order and do not overlap;
hour and day buckets cover the range exactly (the first and last may be partial), shift buckets cover the shifts.
"""
from __future__ import annotations

import math
from datetime import datetime, time, timedelta
from typing import NamedTuple

from oee.shifts import Schedule
from oee.timeutil import check_range, zone

BUCKET_KINDS = ("hour", "shift", "day")


class Bucket(NamedTuple):
    start: float
    end: float
    label: str  # hour: local ISO 8601 of the full hour's start; day: local date; shift: '<date> <name>'


class TooManyBuckets(ValueError):
    """The range would need more buckets than the caller allows (the REST layer answers 400)."""


def _check_limit(n: int, limit: int | None) -> None:
    if limit is not None and n > limit:
        raise TooManyBuckets(f"more than {limit} buckets")


def _floor_hour(t: float, tz) -> float:
    """The start of the local clock hour holding t, in whole seconds, never after t (datetime rounds to the
    microsecond, so it is not used for the arithmetic)."""
    off = int(datetime.fromtimestamp(t, tz).utcoffset().total_seconds())
    k = math.floor((t + off) / 3600.0)
    while k * 3600 - off > t:
        k -= 1
    return float(k * 3600 - off)


def hour_buckets(start, end, tz="UTC", *, limit: int | None = None) -> list[Bucket]:
    """Local clock hours (in a zone with a half-hour offset they start at :30 UTC). On the day the clocks go
    back the repeated hour is two buckets with different offsets in their labels."""
    a, b = check_range(start, end)
    tzinfo = zone(tz)
    out = []
    edge = _floor_hour(a, tzinfo)
    while edge < b:
        nxt = _floor_hour(edge + 3600.0, tzinfo)
        if nxt <= edge:  # cannot happen with real zones; guard against an endless loop
            nxt = edge + 3600.0
        lo, hi = max(edge, a), min(nxt, b)
        if lo < hi:
            out.append(Bucket(lo, hi, datetime.fromtimestamp(edge, tzinfo).isoformat()))
            _check_limit(len(out), limit)
        edge = nxt
    return out


def day_buckets(start, end, tz="UTC", *, limit: int | None = None) -> list[Bucket]:
    """Local calendar days: 23 h on the day the clocks go forward, 25 h on the day they go back."""
    a, b = check_range(start, end)
    tzinfo = zone(tz)
    out = []
    d = datetime.fromtimestamp(a, tzinfo).date()
    edge = datetime.combine(d, time(0), tzinfo=tzinfo).timestamp()
    while edge > a:  # a within a microsecond before midnight: fromtimestamp rounded it into the next day
        d -= timedelta(days=1)
        edge = datetime.combine(d, time(0), tzinfo=tzinfo).timestamp()
    while edge < b:
        nd = d + timedelta(days=1)
        nxt = datetime.combine(nd, time(0), tzinfo=tzinfo).timestamp()
        lo, hi = max(edge, a), min(nxt, b)
        if lo < hi:
            out.append(Bucket(lo, hi, d.isoformat()))
            _check_limit(len(out), limit)
        d, edge = nd, nxt
    return out


GAP_LABEL = ""


def shift_buckets(schedule: Schedule, *, include_gaps: bool = False, limit: int | None = None) -> list[Bucket]:
    """One bucket per shift instance, clipped to the schedule's range. Where two shifts overlap, the earlier one
    ends where the later one starts, so no time is counted twice. Time outside every shift is in no bucket
    (it holds no planned time), unless include_gaps, which adds buckets labelled GAP_LABEL ('') for it."""
    out: list[Bucket] = []
    a, b = schedule.start, schedule.end
    insts = sorted(schedule.shifts, key=lambda i: (i.start, i.name))
    t = a
    for i, inst in enumerate(insts):
        lo = max(inst.start, a, t)
        hi = min(inst.end, b)
        if i + 1 < len(insts):
            hi = min(hi, max(insts[i + 1].start, lo))
        if lo >= hi:
            continue
        if include_gaps and lo > t:
            out.append(Bucket(t, lo, GAP_LABEL))
        out.append(Bucket(lo, hi, f"{inst.date.isoformat()} {inst.name}"))
        _check_limit(len(out), limit)
        t = hi
    if include_gaps and t < b:
        out.append(Bucket(t, b, GAP_LABEL))
        _check_limit(len(out), limit)
    return out


def make_buckets(kind: str, start, end, *, tz="UTC", schedule: Schedule | None = None,
                 limit: int | None = None) -> list[Bucket]:
    """'hour', 'day' (in tz) or 'shift' (needs the schedule of the range, from shifts.expand)."""
    if kind == "hour":
        return hour_buckets(start, end, tz, limit=limit)
    if kind == "day":
        return day_buckets(start, end, tz, limit=limit)
    if kind == "shift":
        if schedule is None:
            raise ValueError("bucket 'shift' needs the schedule (oee.expand(calendar, start, end))")
        return shift_buckets(schedule, limit=limit)
    raise ValueError(f"bucket must be one of {BUCKET_KINDS}, got {kind!r}")
