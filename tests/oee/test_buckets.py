"""Buckets: by hour and day in the plant's time zone (DST-correct), by shift; limits."""
from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oee import (
    Calendar,
    ShiftDef,
    TooManyBuckets,
    day_buckets,
    expand,
    hour_buckets,
    make_buckets,
    shift_buckets,
)

CHI = ZoneInfo("America/Chicago")
H = 3600.0


def local(y, mo, d, h=0, mi=0, tz=CHI) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=tz).timestamp()


def test_day_buckets_on_dst_days_chicago():
    spring = day_buckets(local(2024, 3, 9), local(2024, 3, 12), "America/Chicago")
    assert [b.label for b in spring] == ["2024-03-09", "2024-03-10", "2024-03-11"]
    assert [b.end - b.start for b in spring] == [24 * H, 23 * H, 24 * H]
    fall = day_buckets(local(2024, 11, 2), local(2024, 11, 5), "America/Chicago")
    assert [b.end - b.start for b in fall] == [24 * H, 25 * H, 24 * H]


def test_hour_buckets_on_dst_days_chicago():
    spring = hour_buckets(local(2024, 3, 10), local(2024, 3, 11), "America/Chicago")
    assert len(spring) == 23
    assert all(b.end - b.start == H for b in spring)
    assert [b.label[11:13] for b in spring[:4]] == ["00", "01", "03", "04"]
    fall = hour_buckets(local(2024, 11, 3), local(2024, 11, 4), "America/Chicago")
    assert len(fall) == 25
    assert fall[1].label == "2024-11-03T01:00:00-05:00" and fall[2].label == "2024-11-03T01:00:00-06:00"


def test_partial_first_and_last_buckets():
    b = hour_buckets(local(2024, 5, 6, 9, 20), local(2024, 5, 6, 11, 5), "America/Chicago")
    assert [(x.start, x.end) for x in b] == [
        (local(2024, 5, 6, 9, 20), local(2024, 5, 6, 10)),
        (local(2024, 5, 6, 10), local(2024, 5, 6, 11)),
        (local(2024, 5, 6, 11), local(2024, 5, 6, 11, 5)),
    ]
    assert b[0].label == "2024-05-06T09:00:00-05:00"


def test_half_hour_zone_hours_start_at_half_past_utc():
    utc = ZoneInfo("UTC")
    b = hour_buckets(datetime(2024, 5, 6, 0, tzinfo=utc), datetime(2024, 5, 6, 2, tzinfo=utc), "Asia/Kolkata")
    assert [datetime.fromtimestamp(x.start, utc).minute for x in b] == [0, 30, 30]
    assert b[1].label == "2024-05-06T06:00:00+05:30"


def test_shift_buckets():
    cal = Calendar("America/Chicago", (ShiftDef("A", time(6), time(14), "01234"),
                                        ShiftDef("B", time(14), time(22), "01234")))
    sched = expand(cal, local(2024, 5, 6), local(2024, 5, 7))
    b = shift_buckets(sched)
    assert [(x.label, x.end - x.start) for x in b] == [("2024-05-06 A", 8 * H), ("2024-05-06 B", 8 * H)]
    gaps = shift_buckets(sched, include_gaps=True)
    assert [x.label for x in gaps] == ["", "2024-05-06 A", "2024-05-06 B", ""]
    assert sum(x.end - x.start for x in gaps) == 24 * H
    assert make_buckets("shift", 0, 0, schedule=sched) == b


def test_overlapping_shift_buckets_do_not_overlap():
    cal = Calendar("UTC", (ShiftDef("Early", time(6), time(14)), ShiftDef("Late", time(12), time(20))))
    utc = ZoneInfo("UTC")
    sched = expand(cal, datetime(2024, 5, 6, tzinfo=utc), datetime(2024, 5, 7, tzinfo=utc))
    b = shift_buckets(sched)
    assert [(x.label[-5:], x.end - x.start) for x in b] == [("Early", 6 * H), (" Late", 8 * H)]


def test_limit():
    with pytest.raises(TooManyBuckets):
        hour_buckets(0, 100 * H, limit=99)
    assert len(hour_buckets(0, 100 * H, limit=100)) == 100
    with pytest.raises(TooManyBuckets):
        day_buckets(0, 40 * 24 * H, limit=31)


def test_make_buckets_rejects_unknown_kind():
    with pytest.raises(ValueError, match="bucket"):
        make_buckets("week", 0, 1)
    with pytest.raises(ValueError, match="schedule"):
        make_buckets("shift", 0, 1)


def test_empty_range():
    assert hour_buckets(5, 5) == [] and day_buckets(5, 5) == []


@given(st.floats(min_value=1.6e9, max_value=1.8e9), st.floats(min_value=0, max_value=10 * 24 * H),
       st.sampled_from(["UTC", "America/Chicago", "Europe/Berlin", "Asia/Kolkata", "Australia/Lord_Howe"]),
       st.sampled_from(["hour", "day"]))
def test_buckets_partition_the_range(start, length, tz, kind):
    end = start + length
    b = make_buckets(kind, start, end, tz=tz)
    if end == start:
        assert b == []
        return
    assert b[0].start == start and b[-1].end == end
    for x, y in zip(b, b[1:]):
        assert x.end == y.start and x.start < x.end


def test_start_a_hair_before_an_edge_is_not_lost():
    """Regression: datetime.fromtimestamp rounds to the microsecond, which once put the first hour's start after
    the range's start (found by hypothesis: start=1799999999.9999998)."""
    start = 1799999999.9999998
    for kind in ("hour", "day"):
        b = make_buckets(kind, start, start + 1.0)
        assert b[0].start == start and b[-1].end == start + 1.0
