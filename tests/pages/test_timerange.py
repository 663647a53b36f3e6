"""The time range picker's arithmetic: what a URL's range means, in the plant's time zone (no browser here)."""
from __future__ import annotations

from datetime import datetime
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import pytest

from components import timerange as tr

TZ = "America/Chicago"
Z = ZoneInfo(TZ)


def at(*args) -> float:
    return datetime(*args, tzinfo=Z).timestamp()


@pytest.mark.parametrize("raw, expected", [
    ("1795840509", 1795840509.0),
    ("1795840509123", 1795840509.123),  # Grafana's milliseconds
    ("2026-11-28T06:00:00Z", datetime(2026, 11, 28, 6, tzinfo=ZoneInfo("UTC")).timestamp()),
    ("2026-11-28T06:00-06:00", datetime(2026, 11, 28, 12, tzinfo=ZoneInfo("UTC")).timestamp()),
    ("2026-11-28T06:00", at(2026, 11, 28, 6)),  # no offset: plant time
    ("2026-11-28 06:00", at(2026, 11, 28, 6)),
    ("now", 1000000.0),
    ("now-6h", 1000000.0 - 6 * 3600),
    ("now-7d", 1000000.0 - 7 * 86400),
    ("", None), ("yesterday at noon", None), ("nan", None), (None, None),
])
def test_parse_time(raw, expected):
    assert tr.parse_time(raw, TZ, now=1000000.0) == expected


@pytest.mark.parametrize("raw, expected", [
    (None, 30), ("", 30), ("15", 15), ("15s", 15), ("1m", 60), ("5m", 300), ("1", tr.MIN_REFRESH_S),
    ("0", None), ("off", None), ("soon", 30),
])
def test_parse_refresh(raw, expected):
    assert tr.parse_refresh(raw, 30) == expected


def test_normalize_takes_grafana_from_to_and_drops_times_of_a_preset():
    assert tr.normalize({"from": "1795840509000", "to": "now", "machine": "LINE-001"}) == {
        "range": "custom", "start": "1795840509000", "end": "now", "machine": "LINE-001"}
    assert tr.normalize({"range": "today", "start": "x", "bucket": "minute"}) == {"range": "today"}
    assert tr.normalize({"range": "fortnight"}, default_range="hour") == {"range": "hour"}
    assert tr.normalize({"embed": ["1"], "refresh": "30s"})["embed"] == "1"


def test_search_of_round_trips_in_a_fixed_order():
    q = {"embed": "1", "machine": "LINE-001", "range": "custom", "start": "2026-11-28T06:00", "end": "now"}
    search = tr.search_of(q)
    assert search.startswith("?range=custom&start=")
    assert {k: v[0] for k, v in parse_qs(search[1:]).items()} == q
    assert tr.search_of({}) == ""


def test_presets_in_plant_time():
    now = at(2026, 11, 28, 10, 30)
    r = tr.resolve({"range": "hour"}, tz=TZ, now=now)
    assert (r.start, r.end) == (now - 3600, now)
    r = tr.resolve({"range": "today"}, tz=TZ, now=now)
    assert (r.start, r.end) == (at(2026, 11, 28), now)
    r = tr.resolve({"range": "yesterday"}, tz=TZ, now=now)
    assert (r.start, r.end) == (at(2026, 11, 27), at(2026, 11, 28))
    r = tr.resolve({"range": "7d"}, tz=TZ, now=now)
    assert r.end - r.start == 7 * 86400
    assert r.text == "Sat 21 Nov 10:30 – Sat 28 Nov 10:30 CST"


def test_yesterday_is_25_hours_on_the_day_the_clocks_go_back():
    r = tr.resolve({"range": "yesterday"}, tz=TZ, now=at(2026, 11, 2, 9))  # DST ended on Sunday 1 November
    assert r.end - r.start == 25 * 3600


def test_this_shift_the_last_one_and_no_calendar():
    now = at(2026, 11, 28, 10, 30)
    shift = {"name": "A", "start": at(2026, 11, 28, 6), "end": at(2026, 11, 28, 14), "current": True}
    r = tr.resolve({}, tz=TZ, now=now, shift=shift)
    assert (r.preset, r.start, r.end, r.label) == ("shift", shift["start"], now, "This shift (A)")
    last = dict(shift, current=False, end=at(2026, 11, 28, 10))
    r = tr.resolve({"range": "shift"}, tz=TZ, now=now, shift=last)
    assert r.end == last["end"] and "No shift is running now" in r.note
    r = tr.resolve({"range": "shift"}, tz=TZ, now=now, shift=None)
    assert (r.start, r.label) == (at(2026, 11, 28), "Today") and "No shift calendar" in r.note


def test_custom_ranges_and_the_clamp_to_the_start_of_the_data():
    now = at(2026, 11, 28, 10, 30)
    q = {"range": "custom", "start": "2026-11-28T06:00", "end": "2026-11-28T08:00"}
    r = tr.resolve(q, tz=TZ, now=now)
    assert (r.start, r.end) == (at(2026, 11, 28, 6), at(2026, 11, 28, 8))
    r = tr.resolve(q, tz=TZ, now=now, data_start=at(2026, 11, 28, 7, 15))
    assert r.start == at(2026, 11, 28, 7, 15) and r.requested_start == at(2026, 11, 28, 6)
    assert "Data begins Sat 07:15" in r.note
    r = tr.resolve(q, tz=TZ, now=now, data_start=at(2026, 11, 28, 9))  # after the range: nothing to clamp to
    assert r.start == at(2026, 11, 28, 6)
    r = tr.resolve({"range": "custom", "start": "2026-11-28T08:00", "end": "2026-11-28T06:00"}, tz=TZ, now=now)
    assert r.end - r.start == 3600 and "inverted" in r.note
    r = tr.resolve({"start": "now-2h"}, tz=TZ, now=now)  # start alone: custom, up to now
    assert (r.preset, r.start, r.end) == ("custom", now - 7200, now)


@pytest.mark.parametrize("query, why", [
    ({"start": "9999-12-30T00:00", "end": "9999-12-31T23:00"}, "not a time between 1970"),  # past year 9999 UTC
    ({"start": "9999-12-01T00:00", "end": "9999-12-02T00:00"}, "more than a day after now"),
    ({"start": "3000-01-01T00:00", "end": "3000-01-01T01:00"}, "more than a day after now"),
    ({"start": "0001-01-01T00:00", "end": "0001-01-02T00:00"}, "not a time between 1970"),
    ({"start": "1e308", "end": "2026-11-28T08:00"}, None),  # not a time: as if not given (a day before end)
    ({"start": "2020-01-01T00:00", "end": "2026-11-28T08:00"}, "more than a page may cover (92 days)"),
    ({"start": "now-99999999999w"}, "not a time between 1970"),
])
def test_a_range_the_app_does_not_answer_shows_the_nearest_one_and_says_why(query, why):
    """The pages' ranges go through the API's check (db/range_limits.py); where the API answers 400, the page shows
    a range it answers, with the reason, instead of working for minutes (year 9999) or failing (year 1)."""
    now = at(2026, 11, 28, 10, 30)
    r = tr.resolve({"range": "custom", **query}, tz=TZ, now=now)
    assert why in r.note if why else r.note == ""
    assert 0 < r.end - r.start <= 92 * 86400 and r.end <= now + 86400
    assert r.text  # the range can be written (no OverflowError)
