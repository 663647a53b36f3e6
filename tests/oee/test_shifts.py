"""Shift calendars: patterns, breaks, holidays, overrides, planned downtime, DST (America/Chicago)."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oee import (
    PRODUCTION,
    BreakDef,
    Calendar,
    CancelShift,
    ExtraShift,
    PlannedDowntime,
    RangeTooLong,
    Schedule,
    ShiftDef,
    StateInterval,
    analyze,
    expand,
)
from oee.shifts import MAX_EXPAND_DAYS

CHI = ZoneInfo("America/Chicago")
H = 3600.0


def local(y, mo, d, h=0, mi=0, tz=CHI) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=tz).timestamp()


THREE_SHIFTS = Calendar(
    "America/Chicago",
    (
        ShiftDef("A", time(6), time(14), "01234",
                 (BreakDef(time(9), 900, "Break 1"), BreakDef(time(11), 1800, "Meal"), BreakDef(time(13), 900))),
        ShiftDef("B", time(14), time(22), "01234", (BreakDef(time(18), 1800, "Meal"),)),
        ShiftDef("C", time(22), time(6), "01234", (BreakDef(time(2), 1800, "Meal"),)),  # break after midnight
    ),
)


def test_vorne_shift_has_420_planned_minutes():
    """The published example's shift: 8 h with two 15-min breaks and a 30-min meal -> 420 min planned."""
    cal = Calendar("UTC", (ShiftDef("Day", time(6), time(14), breaks=(
        BreakDef(time(8), 900), BreakDef(time(10), 1800, "Meal"), BreakDef(time(12), 900))),))
    s = expand(cal, datetime(2024, 5, 6, tzinfo=ZoneInfo("UTC")), datetime(2024, 5, 7, tzinfo=ZoneInfo("UTC")))
    assert s.planned_time_s == 420 * 60
    assert s.time_by_kind() == {"no_production_scheduled": 16 * H, "break": 3600.0, PRODUCTION: 420 * 60.0}
    assert [i.name for i in s.shifts] == ["Day"]


def test_three_shifts_a_working_week():
    start, end = local(2024, 5, 6), local(2024, 5, 13)  # Monday to Monday, no DST change
    s = expand(THREE_SHIFTS, start, end)
    # 15 shifts (Mon-Fri, 3 a day; Friday's night shift ends Saturday 06:00); Sunday's is not in the pattern.
    assert len(s.shifts) == 15
    assert [i.name for i in s.shifts[:4]] == ["A", "B", "C", "A"]
    breaks = 5 * (3600 + 1800 + 1800)
    assert s.planned_time_s == 15 * 8 * H - breaks
    kinds = s.time_by_kind()
    assert kinds["break"] == breaks
    assert kinds["no_production_scheduled"] == 7 * 24 * H - 15 * 8 * H
    assert sum(kinds.values()) == end - start
    # The night shift's break is at 02:00 the next day.
    assert s.kind_at(local(2024, 5, 7, 2, 10)) == "break"
    assert s.kind_at(local(2024, 5, 7, 1, 59)) == PRODUCTION
    assert s.kind_at(local(2024, 5, 11, 6)) == "no_production_scheduled"  # Saturday after the night shift


def test_segments_cover_the_range_in_order():
    start, end = local(2024, 5, 8, 3, 17), local(2024, 5, 10, 19, 5)
    s = expand(THREE_SHIFTS, start, end)
    assert s.segments[0].start == start and s.segments[-1].end == end
    for x, y in zip(s.segments, s.segments[1:]):
        assert x.end == y.start and x.kind != y.kind


def test_night_shift_crossing_midnight():
    cal = Calendar("America/Chicago", (ShiftDef("Night", time(22), time(6)),))
    s = expand(cal, local(2024, 5, 6), local(2024, 5, 8))
    assert [(i.start, i.end, i.date) for i in s.shifts] == [
        (local(2024, 5, 5, 22), local(2024, 5, 6, 6), date(2024, 5, 5)),  # started the day before the range
        (local(2024, 5, 6, 22), local(2024, 5, 7, 6), date(2024, 5, 6)),
        (local(2024, 5, 7, 22), local(2024, 5, 8, 6), date(2024, 5, 7)),
    ]
    assert s.planned_time_s == 6 * H + 8 * H + 2 * H  # clipped to the range


def test_dst_spring_forward_chicago():
    """2024-03-10, America/Chicago: 02:00 CST -> 03:00 CDT. The night shift 22:00-06:00 lasts 7 h."""
    s = expand(Calendar("America/Chicago", (ShiftDef("C", time(22), time(6)), ShiftDef("A", time(6), time(14)))),
               local(2024, 3, 9, 18), local(2024, 3, 10, 23))
    night, day = s.shifts[0], s.shifts[1]
    assert (night.name, night.end - night.start) == ("C", 7 * H)
    assert (day.name, day.end - day.start) == ("A", 8 * H)
    assert night.start == datetime(2024, 3, 10, 4, tzinfo=ZoneInfo("UTC")).timestamp()  # 22:00 CST
    assert night.end == datetime(2024, 3, 10, 11, tzinfo=ZoneInfo("UTC")).timestamp()  # 06:00 CDT


def test_dst_fall_back_chicago():
    """2024-11-03, America/Chicago: 02:00 CDT -> 01:00 CST. The night shift 22:00-06:00 lasts 9 h."""
    cal = Calendar("America/Chicago", (ShiftDef("C", time(22), time(6), breaks=(BreakDef(time(1, 30), 1800),)),))
    s = expand(cal, local(2024, 11, 2, 12), local(2024, 11, 3, 12))
    (night,) = s.shifts
    assert night.end - night.start == 9 * H
    # The break at the ambiguous 01:30 is taken at its first occurrence (CDT), 30 min long.
    assert s.time_by_kind()["break"] == 1800
    assert s.kind_at(datetime(2024, 11, 3, 6, 40, tzinfo=ZoneInfo("UTC")).timestamp()) == "break"  # 01:40 CDT
    assert s.planned_time_s == 9 * H - 1800


def test_shift_starting_in_the_spring_forward_gap():
    """02:30 does not exist on 2024-03-10 in Chicago: it is read with the offset before the change (03:30 CDT)."""
    cal = Calendar("America/Chicago", (ShiftDef("Odd", time(2, 30), time(10, 30)),))
    s = expand(cal, local(2024, 3, 10), local(2024, 3, 11))
    (inst,) = s.shifts
    assert inst.start == datetime(2024, 3, 10, 8, 30, tzinfo=ZoneInfo("UTC")).timestamp()  # 03:30 CDT
    assert inst.end == local(2024, 3, 10, 10, 30)
    assert inst.end - inst.start == 7 * H


def test_holiday_cancels_shifts_starting_that_day():
    cal = Calendar("America/Chicago", THREE_SHIFTS.shifts, holidays={date(2024, 5, 8)})
    s = expand(cal, local(2024, 5, 8), local(2024, 5, 9))
    # Tuesday's night shift runs into the holiday until 06:00; nothing starts on the holiday.
    assert [(i.name, i.date) for i in s.shifts] == [("C", date(2024, 5, 7))]
    assert s.planned_time_s == 6 * H - 1800  # its 02:00 meal falls on the holiday morning


def test_cancel_and_extra_shift_overrides():
    sat = date(2024, 5, 11)
    cal = Calendar("America/Chicago", THREE_SHIFTS.shifts, overrides=(
        CancelShift(date(2024, 5, 10), "B"),
        ExtraShift(sat, ShiftDef("Sat overtime", time(6), time(12), breaks=(BreakDef(time(9), 600),))),
    ))
    s = expand(cal, local(2024, 5, 10), local(2024, 5, 12))
    names = [(i.date, i.name) for i in s.shifts]
    assert (date(2024, 5, 10), "B") not in names
    assert (sat, "Sat overtime") in names
    assert s.kind_at(local(2024, 5, 10, 15)) == "no_production_scheduled"
    assert s.kind_at(local(2024, 5, 11, 7)) == PRODUCTION
    assert s.kind_at(local(2024, 5, 11, 9, 5)) == "break"


def test_planned_downtime_comes_out_of_production_only():
    pm = PlannedDowntime(local(2024, 5, 6, 12), local(2024, 5, 6, 16), "planned_maintenance", "PM-1")
    cal = Calendar("America/Chicago", THREE_SHIFTS.shifts, planned_downtime=(pm,))
    s = expand(cal, local(2024, 5, 6), local(2024, 5, 7))
    kinds = s.time_by_kind()
    # 12:00-16:00 holds the 13:00 break of shift A (15 min): that stays a break.
    assert kinds["planned_maintenance"] == 4 * H - 900
    base = expand(THREE_SHIFTS, local(2024, 5, 6), local(2024, 5, 7))
    assert s.planned_time_s == base.planned_time_s - (4 * H - 900)
    assert sum(kinds.values()) == 24 * H


def test_machine_downtime_and_with_downtime_agree():
    base = expand(THREE_SHIFTS, local(2024, 5, 6), local(2024, 5, 7))
    pm = [PlannedDowntime(local(2024, 5, 6, 7), local(2024, 5, 6, 8))]
    assert base.with_downtime(pm) == expand(THREE_SHIFTS, local(2024, 5, 6), local(2024, 5, 7), downtime=pm)
    assert base.with_downtime(pm).planned_time_s == base.planned_time_s - H


def test_an_edit_applies_to_the_past():
    """Nothing is frozen: the same past range under an edited calendar gives the edited numbers."""
    past = (local(2023, 1, 2), local(2023, 1, 3))
    before = expand(THREE_SHIFTS, *past)
    edited = Calendar("America/Chicago", THREE_SHIFTS.shifts[:2])  # the night shift removed
    after = expand(edited, *past)
    # Monday Jan 2's night shift starts at 22:00: 2 h of it fall in the range (its meal is after midnight).
    assert before.planned_time_s - after.planned_time_s == 2 * H


def test_overlapping_shifts_are_not_counted_twice():
    cal = Calendar("UTC", (ShiftDef("Early", time(6), time(14), breaks=(BreakDef(time(13), 1800),)),
                           ShiftDef("Late", time(12), time(20))))
    s = expand(cal, datetime(2024, 5, 6, tzinfo=ZoneInfo("UTC")), datetime(2024, 5, 7, tzinfo=ZoneInfo("UTC")))
    assert s.planned_time_s == 14 * H  # 06:00-20:00; Early's break is covered by Late
    assert "break" not in s.time_by_kind()


def test_24h_calendar_follows_local_days():
    s = expand(Calendar.always("America/Chicago"), local(2024, 3, 9), local(2024, 3, 12))
    assert s.planned_time_s == 3 * 24 * H - H
    assert [i.end - i.start for i in s.shifts] == [24 * H, 23 * H, 24 * H]


def test_no_calendar_is_all_production():
    s = expand(None, 0, 100)
    assert s.segments == Schedule.always(0, 100).segments and s.planned_time_s == 100


def test_validation_names_the_field():
    with pytest.raises(ValueError, match="weekdays"):
        ShiftDef("X", time(6), time(14), "0127")
    with pytest.raises(ValueError, match="duration_s"):
        BreakDef(time(6), 0)
    with pytest.raises(ValueError, match="category"):
        PlannedDowntime(0, 1, "equipment_failure")
    with pytest.raises(ValueError, match="before its start"):
        expand(THREE_SHIFTS, 10, 5)
    with pytest.raises(Exception):
        Calendar("Not/AZone")


@given(st.integers(min_value=0, max_value=400 * 24), st.integers(min_value=0, max_value=24 * 9))
def test_expansion_covers_any_range_and_splits_additively(offset_h, length_h):
    """Segments cover the range exactly; a range cut anywhere gives parts that sum to the whole."""
    start = local(2024, 1, 1) + offset_h * 1800.0
    end = start + length_h * 1700.0
    s = expand(THREE_SHIFTS, start, end)
    assert sum(seg.end - seg.start for seg in s.segments) == pytest.approx(end - start)
    if s.segments:
        assert s.segments[0].start == start and s.segments[-1].end == end
    mid = start + (end - start) * 0.37
    left, right = expand(THREE_SHIFTS, start, mid), expand(THREE_SHIFTS, mid, end)
    assert left.planned_time_s + right.planned_time_s == pytest.approx(s.planned_time_s, abs=1e-6)


def test_dst_week_totals():
    """A week over the spring change: five days of three shifts; only Sunday night's C shift would change, and it
    is not in the pattern, so Mon-Fri are unchanged; the 24 h calendar loses an hour."""
    start, end = local(2024, 3, 4), local(2024, 3, 11)
    assert expand(THREE_SHIFTS, start, end).planned_time_s == 15 * 8 * H - 5 * 7200
    assert expand(Calendar.always("America/Chicago"), start, end).planned_time_s == 7 * 24 * H - H
    assert end - start == 7 * 24 * H - H
    assert timedelta(seconds=end - start) == timedelta(days=7) - timedelta(hours=1)


def test_expansion_is_bounded_whatever_the_range():
    """Regression: a range in the year 3000 made expand() list every day and shift from now to then (18.7 s and
    750 MB in the web process); year 9999 ran for minutes. Now it refuses, at once, naming the limit."""
    start = local(2026, 1, 1)
    assert expand(THREE_SHIFTS, start, start + MAX_EXPAND_DAYS * 86400 - 3 * 86400).shifts  # the widest allowed
    with pytest.raises(RangeTooLong, match="at most 4,000 days"):
        expand(THREE_SHIFTS, start, local(3000, 1, 1))
    with pytest.raises(RangeTooLong, match="outside the years"):
        expand(THREE_SHIFTS, datetime(1, 1, 1, tzinfo=CHI).timestamp() + 3600, start)
    assert issubclass(RangeTooLong, ValueError)


def test_engine_look_back_from_a_range_in_the_far_future_is_refused():
    """The engine looks back to the start of the stop that holds the range's start: an open stop that began now,
    and an (empty) range in the year 3000, made it expand the calendar over ten centuries."""
    now = local(2026, 11, 28, 12)
    far = local(3000, 1, 1)
    stop = [StateInterval(now - 600, None, "faulted", 7)]
    with pytest.raises(RangeTooLong):
        analyze(far, far, states=stop, calendar=THREE_SHIFTS)
    assert analyze(now, now + 3600, states=stop, calendar=THREE_SHIFTS).totals.all_time_s == 3600


def test_expand_keeps_its_answer_for_the_same_calendar_and_range():
    """Pages analyse 100 machines of one calendar over one shift: the calendar is expanded once, and what is kept is
    what a fresh expansion gives (a changed calendar is another key)."""
    from oee import shifts

    a, b = local(2024, 3, 4, 6), local(2024, 3, 5, 6)
    first = expand(THREE_SHIFTS, a, b)
    assert expand(THREE_SHIFTS, a, b) is first
    assert first == shifts._expand(THREE_SHIFTS, a, b, ())
    other = Calendar("America/Chicago", THREE_SHIFTS.shifts, frozenset({date(2024, 3, 4)}))  # a holiday added
    assert expand(other, a, b) != first
    assert expand(other, a, b) == shifts._expand(other, a, b, ())
    down = (PlannedDowntime(local(2024, 3, 4, 8), local(2024, 3, 4, 9)),)
    assert expand(THREE_SHIFTS, a, b, downtime=down) == shifts._expand(THREE_SHIFTS, a, b, down) != first
