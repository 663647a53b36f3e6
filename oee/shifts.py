"""Shift calendars: a weekly pattern of shifts with breaks, holidays, one-off overrides and planned downtime,
expanded for a [start, end) range into a Schedule: labelled segments that cover the range and the shift instances.

Shift and break times are local wall-clock times of the calendar's time zone (zoneinfo), so a shift is DST-correct:
a 22:00-06:00 night shift lasts 7 h on the night the clocks go forward and 9 h on the night they go back. A local
time that does not exist (in the spring-forward gap) is read with the offset before the change, i.e. 02:30 becomes
03:30; an ambiguous one (in the fall-back hour) is its first occurrence.

Nothing is stored: a Schedule is recomputed from the calendar for every question, so an edit to the calendar
applies to the past as well.
"""
from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import NamedTuple

from oee.timeutil import check_range, zone
from oee.vocabulary import PLANNED_CATEGORIES

PRODUCTION = "production"  # the label of time in which the calendar plans production
WEEKDAYS = "0123456"  # Monday = 0, as datetime.weekday() and db.models.Shift.weekdays
# The most local days one expand() walks (about 11 years): the work grows with the days, whatever the data, so a
# range reaching far into the future or the past must be refused here rather than listed day by day.
MAX_EXPAND_DAYS = 4000


class RangeTooLong(ValueError):
    """expand() was asked for more than MAX_EXPAND_DAYS days, or for times outside the years datetime holds."""


@dataclass(frozen=True)
class BreakDef:
    """A break in a shift: starts at a local time inside the shift and lasts duration_s seconds."""

    start: time
    duration_s: float
    name: str = "Break"

    def __post_init__(self):
        if not isinstance(self.start, time):
            raise TypeError(f"break {self.name!r}: start must be a datetime.time, got {self.start!r}")
        if not self.duration_s > 0:
            raise ValueError(f"break {self.name!r}: duration_s must be > 0, got {self.duration_s!r}")


@dataclass(frozen=True)
class ShiftDef:
    """A shift of the pattern. end <= start means the shift ends the next day (end == start: a 24 h shift)."""

    name: str
    start: time
    end: time
    weekdays: str = WEEKDAYS  # the days the shift STARTS on; Monday = 0
    breaks: tuple[BreakDef, ...] = ()

    def __post_init__(self):
        if not isinstance(self.start, time) or not isinstance(self.end, time):
            raise TypeError(f"shift {self.name!r}: start and end must be datetime.time values")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError(f"shift {self.name!r}: start and end are local times of the calendar; no tzinfo")
        bad = set(self.weekdays) - set(WEEKDAYS)
        if bad:
            raise ValueError(f"shift {self.name!r}: weekdays must be digits 0-6 (Monday = 0), got {self.weekdays!r}")
        object.__setattr__(self, "breaks", tuple(self.breaks))


@dataclass(frozen=True)
class CancelShift:
    """A one-off override: the shift of this name that starts on this local date does not happen."""

    date: date
    name: str


@dataclass(frozen=True)
class ExtraShift:
    """A one-off override: an extra shift starting on this local date (its weekdays are ignored)."""

    date: date
    shift: ShiftDef


@dataclass(frozen=True)
class PlannedDowntime:
    """A planned stop for a time range (e.g. preventive maintenance); category is one of PLANNED_CATEGORIES."""

    start: float
    end: float
    category: str = "planned_maintenance"
    reason: str | None = None  # a reason code, for display

    def __post_init__(self):
        a, b = check_range(self.start, self.end)
        object.__setattr__(self, "start", a)
        object.__setattr__(self, "end", b)
        if self.category not in PLANNED_CATEGORIES:
            raise ValueError(f"planned downtime category must be one of {PLANNED_CATEGORIES}, got {self.category!r}")


@dataclass(frozen=True)
class Calendar:
    """A plant's (or a line's) shift calendar.

    holidays: local dates on which no shift STARTS (a night shift that started the evening before still ends).
    overrides: CancelShift and ExtraShift items. planned_downtime: ranges taken out of production time.
    """

    timezone: str = "UTC"
    shifts: tuple[ShiftDef, ...] = ()
    holidays: frozenset[date] = frozenset()
    overrides: tuple[CancelShift | ExtraShift, ...] = ()
    planned_downtime: tuple[PlannedDowntime, ...] = ()

    def __post_init__(self):
        zone(self.timezone)  # raises ZoneInfoNotFoundError for an unknown name
        object.__setattr__(self, "shifts", tuple(self.shifts))
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        object.__setattr__(self, "overrides", tuple(self.overrides))
        object.__setattr__(self, "planned_downtime", tuple(self.planned_downtime))
        for o in self.overrides:
            if not isinstance(o, (CancelShift, ExtraShift)):
                raise TypeError(f"calendar overrides must be CancelShift or ExtraShift, got {o!r}")

    @classmethod
    def always(cls, timezone: str = "UTC") -> Calendar:
        """Production planned around the clock, every day (one 24 h shift named '24h' starting at midnight)."""
        return cls(timezone, (ShiftDef("24h", time(0), time(0)),))


class ShiftInstance(NamedTuple):
    """One occurrence of a shift: [start, end) in epoch seconds, the local date it starts on, and its name."""

    name: str
    start: float
    end: float
    date: date


class Segment(NamedTuple):
    """[start, end) labelled PRODUCTION or a planned category (no_production_scheduled, break, ...)."""

    start: float
    end: float
    kind: str


@dataclass(frozen=True)
class Schedule:
    """A calendar expanded for [start, end): segments cover the range exactly, in order, without overlap."""

    start: float
    end: float
    segments: tuple[Segment, ...]
    shifts: tuple[ShiftInstance, ...] = ()
    timezone: str = "UTC"
    _starts: tuple[float, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_starts", tuple(s.start for s in self.segments))

    @classmethod
    def always(cls, start, end, timezone: str = "UTC") -> Schedule:
        """Everything in [start, end) is production time (no calendar)."""
        a, b = check_range(start, end)
        return cls(a, b, (Segment(a, b, PRODUCTION),) if b > a else (), (), timezone)

    def production_windows(self) -> list[tuple[float, float]]:
        return [(s.start, s.end) for s in self.segments if s.kind == PRODUCTION]

    @property
    def planned_time_s(self) -> float:
        return sum(s.end - s.start for s in self.segments if s.kind == PRODUCTION)

    def time_by_kind(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for s in self.segments:
            out[s.kind] = out.get(s.kind, 0.0) + (s.end - s.start)
        return out

    def kind_at(self, t: float) -> str | None:
        """The label at instant t, or None outside [start, end)."""
        if not self.start <= t < self.end:
            return None
        return self.segments[bisect_right(self._starts, t) - 1].kind

    def with_downtime(self, downtime: Iterable[PlannedDowntime]) -> Schedule:
        """This schedule with extra planned downtime (e.g. a machine's own) taken out of its production time."""
        downtime = list(downtime)
        if not downtime:
            return self
        production = [(s.start, s.end) for s in self.segments if s.kind == PRODUCTION]
        labelled = [(s.start, s.end, s.kind) for s in self.segments if s.kind != PRODUCTION]
        production, taken = _take_downtime(production, downtime)
        return Schedule(self.start, self.end, _cover(self.start, self.end, production, labelled + taken),
                        self.shifts, self.timezone)


# --- interval arithmetic on sorted lists of (start, end) ----------------------------------------------------


def union(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Sorted, disjoint, merged (touching intervals are joined); empty intervals dropped."""
    out: list[list[float]] = []
    for a, b in sorted(i for i in intervals if i[1] > i[0]):
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1][1] = b
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def subtract(base: list[tuple[float, float]], cut: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """base minus cut; both sorted and disjoint (as union() returns)."""
    out = []
    j = 0
    for a, b in base:
        while j < len(cut) and cut[j][1] <= a:
            j += 1
        k = j
        while k < len(cut) and cut[k][0] < b:
            ca, cb = cut[k]
            if ca > a:
                out.append((a, ca))
            a = max(a, cb)
            if a >= b:
                break
            k += 1
        if a < b:
            out.append((a, b))
    return out


def intersect(x: list[tuple[float, float]], y: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """x and y; both sorted and disjoint."""
    out = []
    i = j = 0
    while i < len(x) and j < len(y):
        a, b = max(x[i][0], y[j][0]), min(x[i][1], y[j][1])
        if a < b:
            out.append((a, b))
        if x[i][1] <= y[j][1]:
            i += 1
        else:
            j += 1
    return out


# --- expansion ------------------------------------------------------------------------------------------------


def _local(d: date, t: time, tz) -> float:
    # fold=0: an ambiguous time is its first occurrence; a nonexistent one gets the offset from before the change.
    return datetime.combine(d, t, tzinfo=tz).timestamp()


def _instance(shift: ShiftDef, d: date, tz) -> tuple[ShiftInstance, list[tuple[float, float]]]:
    start = _local(d, shift.start, tz)
    end_day = d if shift.end > shift.start else d + timedelta(days=1)
    end = _local(end_day, shift.end, tz)
    breaks = []
    for br in shift.breaks:
        # The break's local start, on the shift's first day if at or after the shift's start, else the next day.
        bd = d if br.start >= shift.start else d + timedelta(days=1)
        bs = _local(bd, br.start, tz)
        a, b = max(bs, start), min(bs + br.duration_s, end)
        if a < b:
            breaks.append((a, b))
    return ShiftInstance(shift.name, start, end, d), breaks


def _take_downtime(production, downtime: Iterable[PlannedDowntime]):
    """Take planned downtime out of production windows; the first item wins where two overlap."""
    taken = []
    for item in sorted(downtime, key=lambda p: p.start):
        hit = intersect(production, [(item.start, item.end)]) if item.end > item.start else []
        if hit:
            production = subtract(production, hit)
            taken.extend((a, b, item.category) for a, b in hit)
    return production, taken


def _cover(start: float, end: float, production, labelled) -> tuple[Segment, ...]:
    """Segments covering [start, end): production windows, labelled pieces, the rest no_production_scheduled."""
    pieces = [(a, b, PRODUCTION) for a, b in production] + [p for p in labelled if p[1] > p[0]]
    pieces.sort()
    out: list[Segment] = []
    t = start
    for a, b, kind in pieces:
        a, b = max(a, start), min(b, end)
        if a >= b:
            continue
        if a > t:
            out.append(Segment(t, a, "no_production_scheduled"))
        if out and out[-1].kind == kind and out[-1].end == a:
            out[-1] = Segment(out[-1].start, b, kind)
        else:
            out.append(Segment(a, b, kind))
        t = b
    if t < end:
        if out and out[-1].kind == "no_production_scheduled":
            out[-1] = Segment(out[-1].start, end, "no_production_scheduled")
        else:
            out.append(Segment(t, end, "no_production_scheduled"))
    return tuple(out)


def expand(calendar: Calendar | None, start, end, *, downtime: Iterable[PlannedDowntime] = ()) -> Schedule:
    """The calendar over [start, end): segments (production / break / no_production_scheduled /
    planned_maintenance ...) covering the range, and the shift instances that overlap it (unclipped).

    Production = the union over shift instances of (instance minus its breaks), minus planned downtime (the
    calendar's and `downtime`). Break = time in some shift that is in none's production. Everything else is
    no_production_scheduled. Planned downtime only takes time out of production: during a break or outside any
    shift that time keeps its label. calendar None: the whole range is production.
    """
    a, b = check_range(start, end)
    downtime = tuple(downtime)
    try:
        return _expand_once(calendar, a, b, downtime)
    except TypeError:  # something in it cannot be a cache key (not one of the frozen types above): no cache
        return _expand(calendar, a, b, downtime)


# The same calendar over the same range is asked for again and again: once per machine when 100 machines on one
# calendar are analysed over the same shift (a page's tiles, the site's report), ~0.1 ms each. Every argument is
# frozen (the dataclasses above, tuples, floats) and so is the Schedule: a kept answer is the one a new call gives.
_EXPANDED: dict[tuple, Schedule] = {}
_EXPANDED_MAX = 256  # ranges that end now make new keys every second: keep few, to keep the heap small


def _expand_once(calendar: Calendar | None, a: float, b: float, downtime: tuple[PlannedDowntime, ...]) -> Schedule:
    key = (calendar, a, b, downtime)
    found = _EXPANDED.get(key)
    if found is None:
        found = _expand(calendar, a, b, downtime)
        if len(_EXPANDED) >= _EXPANDED_MAX:
            _EXPANDED.clear()  # ranges that end now move on: start again rather than keep the old ones
        _EXPANDED[key] = found
    return found


def _expand(calendar: Calendar | None, a: float, b: float, downtime: tuple[PlannedDowntime, ...]) -> Schedule:
    if calendar is None:
        return Schedule.always(a, b).with_downtime(downtime)
    tz = zone(calendar.timezone)
    if b <= a:
        return Schedule(a, b, (), (), calendar.timezone)
    # Shifts that start up to two days before the range can reach into it (a shift lasts at most ~24 h).
    try:
        first = datetime.fromtimestamp(a, tz).date() - timedelta(days=2)
        last = datetime.fromtimestamp(b, tz).date()
    except (OverflowError, ValueError, OSError):
        raise RangeTooLong(f"calendar: the range [{a}, {b}) is outside the years a calendar can be expanded for") \
            from None
    if (last - first).days > MAX_EXPAND_DAYS:
        raise RangeTooLong(f"calendar: the range covers {(last - first).days:,} days; a calendar is expanded for at "
                           f"most {MAX_EXPAND_DAYS:,} days at a time")
    cancelled = {(o.date, o.name) for o in calendar.overrides if isinstance(o, CancelShift)}
    extra: dict[date, list[ShiftDef]] = {}
    for o in calendar.overrides:
        if isinstance(o, ExtraShift):
            extra.setdefault(o.date, []).append(o.shift)
    instances: list[ShiftInstance] = []
    in_shift: list[tuple[float, float]] = []
    working: list[tuple[float, float]] = []
    d = first
    while d <= last:
        todays = []
        if d not in calendar.holidays:
            wd = str(d.weekday())
            todays = [s for s in calendar.shifts if wd in s.weekdays and (d, s.name) not in cancelled]
        todays += extra.get(d, [])
        for shift in todays:
            inst, breaks = _instance(shift, d, tz)
            if inst.end <= inst.start or inst.end <= a or inst.start >= b:
                continue
            instances.append(inst)
            in_shift.append((inst.start, inst.end))
            working.extend(subtract([(inst.start, inst.end)], union(breaks)))
        d += timedelta(days=1)
    in_shift = intersect(union(in_shift), [(a, b)])
    production = intersect(union(working), [(a, b)])
    breaks = [(x, y, "break") for x, y in subtract(in_shift, production)]
    production, taken = _take_downtime(production, list(calendar.planned_downtime) + list(downtime))
    instances.sort(key=lambda i: (i.start, i.name))
    return Schedule(a, b, _cover(a, b, production, breaks + taken), tuple(instances), calendar.timezone)
