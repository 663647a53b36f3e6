"""The simulated plant's calendar in sim time: when shifts change and which windows a machine is planned to work
(its shifts, less the daily breaks). Pure: no I/O, no wall clock."""
from __future__ import annotations

import math
from datetime import date, datetime, timedelta, tzinfo

from .layout import BreakSpec, ShiftSpec

INF = math.inf


class Calendar:
    """Shift boundaries and daily planned stops of a site, as sim times (seconds since t = 0)."""

    def __init__(self, tz: tzinfo, shifts: tuple[ShiftSpec, ...], breaks: tuple[BreakSpec, ...], sim_epoch: float):
        self.tz = tz
        self.shifts = tuple(sorted(shifts, key=lambda s: s.start_minute))
        self.breaks = breaks
        self.sim_epoch = float(sim_epoch)
        self._starts: dict[date, list[tuple[float, int]]] = {}
        self._schedules: dict[tuple[str, ...], PlannedSchedule] = {}

    def local(self, t: float) -> datetime:
        return datetime.fromtimestamp(self.sim_epoch + t, self.tz)

    def day_of(self, t: float) -> date:
        return self.local(t).date()

    def at(self, day: date, minute: int) -> float:
        dt = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=self.tz)
        return dt.timestamp() - self.sim_epoch

    def shift_starts(self, day: date) -> list[tuple[float, int]]:
        """[(t, shift index)] of the shifts starting on a local day."""
        got = self._starts.get(day)
        if got is None:
            got = [(self.at(day, s.start_minute), i) for i, s in enumerate(self.shifts)]
            if len(self._starts) > 64:
                self._starts.clear()
            self._starts[day] = got
        return got

    def _around(self, t: float) -> list[tuple[float, int]]:
        d = self.day_of(t)
        out: list[tuple[float, int]] = []
        for k in (-1, 0, 1, 2):
            out.extend(self.shift_starts(d + timedelta(days=k)))
        return out

    def shift_at(self, t: float) -> tuple[int, float]:
        """(shift index, start time) of the shift running at t."""
        best = None
        for start, i in self._around(t):
            if start <= t and (best is None or start > best[1]):
                best = (i, start)
        assert best is not None
        return best

    def next_shift_change(self, t: float) -> tuple[float, int]:
        """(time, index of the shift that starts) of the first shift change strictly after t."""
        best = None
        for start, i in self._around(t):
            if start > t and (best is None or start < best[0]):
                best = (start, i)
        assert best is not None
        return best

    def schedule(self, worked: tuple[str, ...]) -> "PlannedSchedule":
        key = tuple(worked)
        if key not in self._schedules:
            self._schedules[key] = PlannedSchedule(self, key)
        return self._schedules[key]


class PlannedSchedule:
    """Planned stop windows of one machine: the site's breaks plus every shift it does not work."""

    def __init__(self, cal: Calendar, worked: tuple[str, ...]):
        self.cal = cal
        self.idle_shifts = [i for i, s in enumerate(cal.shifts) if s.name not in worked]
        self.empty = not cal.breaks and not self.idle_shifts
        self._cache: dict[date, list[tuple[float, float]]] = {}

    def _raw(self, day: date) -> list[tuple[float, float]]:
        cal = self.cal
        out = []
        for b in cal.breaks:
            s = cal.at(day, b.start_minute)
            out.append((s, s + b.duration_s))
        n = len(cal.shifts)
        for i in self.idle_shifts:
            s = cal.at(day, cal.shifts[i].start_minute)
            if i + 1 < n:
                e = cal.at(day, cal.shifts[i + 1].start_minute)
            else:
                e = cal.at(day + timedelta(days=1), cal.shifts[0].start_minute)
            out.append((s, e))
        return out

    def windows(self, day: date) -> list[tuple[float, float]]:
        got = self._cache.get(day)
        if got is None:
            raw: list[tuple[float, float]] = []
            for k in range(-2, 3):
                raw.extend(self._raw(day + timedelta(days=k)))
            raw.sort()
            got = []
            for s, e in raw:
                if got and s <= got[-1][1]:
                    if e > got[-1][1]:
                        got[-1] = (got[-1][0], e)
                else:
                    got.append((s, e))
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[day] = got
        return got

    def window_at(self, t: float) -> tuple[float, float] | None:
        if self.empty:
            return None
        for s, e in self.windows(self.cal.day_of(t)):
            if s <= t < e:
                return (s, e)
        return None

    def next_start_after(self, t: float) -> float:
        if self.empty:
            return INF
        d = self.cal.day_of(t)
        for s, _e in self.windows(d):
            if s > t:
                return s
        for s, _e in self.windows(d + timedelta(days=2)):
            if s > t:
                return s
        return INF
