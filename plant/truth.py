"""What really happened on a simulated machine: its state intervals, product runs, shifts and every counted part,
kept by the model as it runs, so that tests and benchmarks can compare what the app computed with the truth. Pure:
no I/O, no wall clock."""
from __future__ import annotations

import bisect
import math
from array import array
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any

INF = math.inf


class State(IntEnum):
    RUNNING = 1
    IDLE = 2  # idle / starved: no material in
    BLOCKED = 3  # downstream full
    FAULTED = 4
    PLANNED_STOP = 5
    CHANGEOVER = 6


STATE_NAMES = {
    State.RUNNING: "running",
    State.IDLE: "idle",
    State.BLOCKED: "blocked",
    State.FAULTED: "faulted",
    State.PLANNED_STOP: "planned_stop",
    State.CHANGEOVER: "changeover",
}



@dataclass
class StateInterval:
    state: int  # State code (1..6)
    state_name: str
    fault_code: int  # the fault code while faulted, else 0
    fault_name: str
    start_sim: float
    end_sim: float | None  # None: still open
    product_code: int
    micro_stops: int = 0  # running intervals: pauses inside cycles (performance loss, State stays 1)
    micro_stop_s: float = 0.0
    start_wall: datetime | None = None
    end_wall: datetime | None = None

    @property
    def duration_s(self) -> float:
        return (self.end_sim if self.end_sim is not None else self.start_sim) - self.start_sim


@dataclass
class ProductRun:
    product_code: int
    product_name: str
    order_id: str
    ideal_cycle_time: float
    start_sim: float  # the changeover into this product starts the run
    end_sim: float | None
    total: int = 0
    good: int = 0
    reject: int = 0
    start_wall: datetime | None = None
    end_wall: datetime | None = None


@dataclass
class ShiftRecord:
    shift: str
    start_sim: float  # the first record may start mid-shift (at t = 0)
    end_sim: float | None
    total: int = 0
    good: int = 0
    reject: int = 0
    start_wall: datetime | None = None
    end_wall: datetime | None = None


@dataclass
class CounterEvent:
    t_sim: float
    kind: str  # shift_reset | reset | preset | rollover
    counter: str  # total | good | reject | all
    before: int
    after: int
    t_wall: datetime | None = None


@dataclass
class GroundTruth:
    """What really happened on one machine. Sim times are seconds since t = 0; wall times are UTC datetimes with
    ``wall = wall_start + t / time_scale``; the plant calendar is ``sim_epoch + t`` (see :meth:`clock`)."""

    machine_id: str
    seed: int
    sim_now: float
    time_scale: float
    sim_epoch: datetime  # plant calendar (UTC) at t = 0
    wall_start: datetime  # wall clock (UTC) at t = 0
    states: list[StateInterval]
    product_runs: list[ProductRun]
    shifts: list[ShiftRecord]
    counter_events: list[CounterEvent]
    totals: dict[str, int]  # lifetime parts made: total, good, reject
    counters: dict[str, int]  # register values now: total, good, reject
    history_start_sim: float  # parts and intervals before this were dropped (retention)
    _part_times: array = field(repr=False, default_factory=lambda: array("d"))
    _reject_times: array = field(repr=False, default_factory=lambda: array("d"))

    # -- time mapping ------------------------------------------------------------------------------------------
    def wall(self, t_sim: float) -> datetime:
        return self.wall_start + timedelta(seconds=t_sim / self.time_scale)

    def sim(self, wall: datetime) -> float:
        return (wall - self.wall_start).total_seconds() * self.time_scale

    def clock(self, t_sim: float) -> datetime:
        """The plant calendar at sim time t (UTC)."""
        return self.sim_epoch + timedelta(seconds=t_sim)

    def _t(self, x: float | datetime | None, default: float) -> float:
        if x is None:
            return default
        if isinstance(x, datetime):
            return self.sim(x)
        return float(x)

    # -- queries -----------------------------------------------------------------------------------------------
    @property
    def faults(self) -> list[StateInterval]:
        return [s for s in self.states if s.state == State.FAULTED]

    def part_times(self) -> list[float]:
        """Sim times at which parts were completed (within retention)."""
        return list(self._part_times)

    def reject_times(self) -> list[float]:
        return list(self._reject_times)

    def counts(self, start: float | datetime | None = None, end: float | datetime | None = None) -> dict[str, int]:
        """Parts completed in (start, end]; sim seconds or wall datetimes."""
        a = self._t(start, -INF)
        b = self._t(end, INF)
        total = bisect.bisect_right(self._part_times, b) - bisect.bisect_right(self._part_times, a)
        reject = bisect.bisect_right(self._reject_times, b) - bisect.bisect_right(self._reject_times, a)
        return {"total": total, "good": total - reject, "reject": reject}

    def state_seconds(self, start: float | datetime | None = None,
                      end: float | datetime | None = None) -> dict[str, float]:
        """Seconds spent in each state within [start, end)."""
        a = self._t(start, -INF)
        b = min(self._t(end, INF), self.sim_now)
        out = {name: 0.0 for name in STATE_NAMES.values()}
        for s in self.states:
            e = s.end_sim if s.end_sim is not None else self.sim_now
            lo, hi = max(a, s.start_sim), min(b, e)
            if hi > lo:
                out[s.state_name] += hi - lo
        return out

    def oee(self, start: float | datetime | None = None, end: float | datetime | None = None, *,
            calendar_stops: tuple = ()) -> dict[str, float]:
        """OEE by the book over [start, end): planned time = window minus planned stops; availability = running /
        planned; performance = sum(ideal cycle time of each part) / running; quality = good / total.

        calendar_stops: (start, end) windows (sim seconds or wall datetimes) the site's shift calendar plans as
        downtime, such as breaks: not planned time whatever the machine did then (a fault that delays the
        machine's break is no loss inside the window), as an OEE engine that puts the calendar first counts it.
        Parts made in them are left out too."""
        a = max(self._t(start, 0.0), self.history_start_sim)
        b = min(self._t(end, self.sim_now), self.sim_now)
        cuts = sorted((max(a, self._t(x, a)), min(b, self._t(y, b))) for x, y in calendar_stops)
        cuts = [(x, y) for x, y in cuts if y > x]
        spans, t = [], a  # [a, b) minus the calendar's stops
        for x, y in cuts:
            if x > t:
                spans.append((t, x))
            t = max(t, y)
        if t < b:
            spans.append((t, b))
        planned = run = ideal = 0.0
        c = {"total": 0, "good": 0, "reject": 0}
        for lo_, hi_ in spans:
            secs = self.state_seconds(lo_, hi_)
            planned += max(0.0, (hi_ - lo_) - secs["planned_stop"])
            run += secs["running"]
            for r in self.product_runs:
                re_ = r.end_sim if r.end_sim is not None else INF
                lo, hi = max(lo_, r.start_sim), min(hi_, re_)
                if hi > lo:
                    n = bisect.bisect_right(self._part_times, hi) - bisect.bisect_right(self._part_times, lo)
                    ideal += n * r.ideal_cycle_time
            for k, v in self.counts(lo_, hi_).items():
                c[k] += v
        availability = run / planned if planned > 0 else 0.0
        performance = ideal / run if run > 0 else 0.0
        quality = c["good"] / c["total"] if c["total"] else 0.0
        return {
            "planned_s": planned, "running_s": run, "ideal_s": ideal, **c,
            "availability": availability, "performance": performance, "quality": quality,
            "oee": availability * performance * quality,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: datetimes as ISO 8601 strings; part times omitted (use counts())."""

        def conv(v: Any) -> Any:
            if isinstance(v, datetime):
                return v.isoformat()
            if isinstance(v, dict):
                return {k: conv(x) for k, x in v.items()}
            if isinstance(v, list):
                return [conv(x) for x in v]
            return v

        return conv({
            "machine_id": self.machine_id, "seed": self.seed, "sim_now": self.sim_now, "time_scale": self.time_scale,
            "sim_epoch": self.sim_epoch, "wall_start": self.wall_start, "history_start_sim": self.history_start_sim,
            "totals": self.totals, "counters": self.counters,
            "states": [asdict(s) for s in self.states],
            "product_runs": [asdict(r) for r in self.product_runs],
            "shifts": [asdict(s) for s in self.shifts],
            "counter_events": [asdict(e) for e in self.counter_events],
        })
