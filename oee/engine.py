"""analyze(): one machine's state intervals, count increments and calendar over a range -> Totals (whole range
and per bucket).

The work is done on intervals, never per second: the state intervals become stop events (classified by reason,
fault code or state, and by the micro-stop rule on their whole duration), operator overrides cut them, the result
is overlaid on the calendar's segments, and the atomic pieces are summed into the range and its buckets in one
ordered pass. Count increments are placed by the midpoint of their [start, end) with a binary search.
"""
from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from oee.buckets import Bucket
from oee.events import (
    DEFAULT_MICRO_STOP_THRESHOLD_S,
    REASON_NOT_A_STOP,
    RUNNING,
    ReasonOverride,
    _check_threshold,
    _sorted_overrides,
    scan_events,
    sorted_rows,
)
from oee.formulas import NO_IDEAL_CYCLE_TIME
from oee.shifts import PRODUCTION, Calendar, PlannedDowntime, Schedule, expand
from oee.timeutil import check_range, to_epoch
from oee.totals import Totals, rollup
from oee.vocabulary import PLANNED_CATEGORIES, STOP_CATEGORIES, UNKNOWN

MICRO = "micro"  # label of minor-stop time
RUN = RUNNING  # the label of running time in planned production (events carry category 'running')
OUTSIDE = "outside"  # before a given Schedule's start (only in the look-back): counts nowhere
STARTUP_TRIGGERS = ("changeover", "planned", "failure", "unknown")
_TRIGGER_LABELS = {
    "changeover": ("setup_adjustment",),
    "planned": PLANNED_CATEGORIES,
    "failure": ("equipment_failure",),
    "unknown": (UNKNOWN,),
}


@dataclass(frozen=True)
class Config:
    """How one machine's time is classified.

    micro_stop_threshold_s: stops strictly shorter than this are minor stops (see oee.events); 0 turns it off.
    micro_stops_as: 'performance' (minor stops are inside run time, a performance loss) or 'availability'
        (they count in idling_minor_stops as an availability loss).
    startup_window_s: rejects made within this many seconds after the machine starts running following one of
        startup_after are startup rejects; the others are process defects. 0 turns it off.
    startup_after: any of 'changeover' (a setup_adjustment stop), 'planned' (planned downtime, a break or time
        with no shift: i.e. shift start), 'failure' (an equipment_failure stop), 'unknown'.
    """

    micro_stop_threshold_s: float = DEFAULT_MICRO_STOP_THRESHOLD_S
    micro_stops_as: str = "performance"
    startup_window_s: float = 300.0
    startup_after: frozenset[str] = frozenset({"changeover", "planned"})

    def __post_init__(self):
        _check_threshold(self.micro_stop_threshold_s)
        if self.micro_stops_as not in ("performance", "availability"):
            raise ValueError(f"micro_stops_as must be 'performance' or 'availability', got {self.micro_stops_as!r}")
        if not (isinstance(self.startup_window_s, (int, float)) and self.startup_window_s >= 0):
            raise ValueError(f"startup_window_s must be a number >= 0, got {self.startup_window_s!r}")
        object.__setattr__(self, "startup_after", frozenset(self.startup_after))
        bad = self.startup_after - set(STARTUP_TRIGGERS)
        if bad:
            raise ValueError(f"startup_after: unknown {sorted(bad)}; use any of {STARTUP_TRIGGERS}")


DEFAULT_CONFIG = Config()


class CountIncrement(NamedTuple):
    """Parts made over [start, end) (the collector's increments, not raw counters). rejects = total - good."""

    start: float
    end: float
    total: float
    good: float
    product_code: str | None = None


@dataclass(frozen=True)
class Analysis:
    start: float
    end: float
    totals: Totals
    buckets: tuple[tuple[Bucket, Totals], ...] = ()

    def as_dict(self) -> dict:
        out = self.totals.as_dict()
        out["start"], out["end"] = self.start, self.end
        if self.buckets:
            out["buckets"] = [{"start": b.start, "end": b.end, "label": b.label, **t.as_dict()}
                              for b, t in self.buckets]
        return out


def rollup_analyses(analyses: Iterable[Analysis]) -> Analysis:
    """Machines -> line -> site: the sum of analyses over the same range and the same buckets."""
    items = list(analyses)
    if not items:
        raise ValueError("nothing to roll up")
    first = items[0]
    for other in items[1:]:
        if (other.start, other.end) != (first.start, first.end) or \
                [b for b, _ in other.buckets] != [b for b, _ in first.buckets]:
            raise ValueError("analyses to roll up must share the range and the buckets")
    buckets = tuple((b, rollup(a.buckets[i][1] for a in items)) for i, (b, _) in enumerate(first.buckets))
    return Analysis(first.start, first.end, rollup(a.totals for a in items), buckets)


# --- the engine ---------------------------------------------------------------------------------------------


def _schedule_segments(calendar, a0: float, a: float, b: float, downtime) -> list[tuple]:
    if calendar is None:
        sched = Schedule.always(a0, b).with_downtime(downtime)
    elif isinstance(calendar, Calendar):
        sched = expand(calendar, a0, b, downtime=downtime)
    elif isinstance(calendar, Schedule):
        if calendar.start > a or calendar.end < b:
            raise ValueError(f"the schedule covers [{calendar.start}, {calendar.end}), not the range [{a}, {b})")
        sched = calendar.with_downtime(downtime)
    else:
        raise TypeError(f"calendar must be a Calendar, a Schedule or None, got {type(calendar).__name__}")
    segs = [(max(s.start, a0), min(s.end, b), s.kind) for s in sched.segments if s.end > a0 and s.start < b]
    if segs and segs[0][0] > a0:
        segs.insert(0, (a0, segs[0][0], OUTSIDE))
    elif not segs and b > a0:
        segs = [(a0, b, OUTSIDE)]
    return segs


def _pieces(events: list[tuple], overrides: list[tuple], notes: list) -> list[tuple]:
    """(start, end, label, counted) from events; stop time under an override takes the override's reason.
    counted: the piece starts a stop (for stop, minor-stop and failure counts)."""
    if not overrides:
        return [(ev[0], ev[1], MICRO if ev[6] else ev[4], ev[4] != RUN) for ev in events]
    out = []
    j = 0
    n_ov = len(overrides)
    for ev in events:
        s, e, state, _fault, category, _planned, minor, _src, _reason, _open = ev
        if state == RUNNING:
            out.append((s, e, RUN, False))
            continue
        base = MICRO if minor else category
        while j < n_ov and overrides[j][1] <= s:
            j += 1
        t = s
        k = j
        while k < n_ov and overrides[k][0] < e:
            os_, oe, reason = overrides[k]
            if os_ > t:
                out.append((t, os_, base, True))
            hi = min(oe, e)
            if reason.applies_to_stops:
                out.append((max(os_, t), hi, reason.loss_category, True))
            else:
                notes.append((max(os_, t), hi, REASON_NOT_A_STOP))
                out.append((max(os_, t), hi, base, True))
            t = hi
            if oe > e:
                break
            k += 1
        if t < e:
            out.append((t, e, base, True))
    return out


def _overlay(pieces: list[tuple], segs: list[tuple]) -> list[tuple]:
    """Atomic (start, end, label, counted) over the calendar segments: the calendar's planned categories win;
    in production time the machine's label stands. counted: on the first atom of a stop piece that is in
    planned production time (where the stop starts to cost planned time)."""
    out = []
    append = out.append
    i = j = 0
    n, m = len(pieces), len(segs)
    pending = pieces[0][3] if n else False
    while i < n and j < m:
        ps, pe, label, _counted = pieces[i]
        cs, ce, kind = segs[j]
        s = ps if ps > cs else cs
        e = pe if pe < ce else ce
        if s < e:
            if kind == PRODUCTION:
                append((s, e, label, pending))
                pending = False
            else:
                append((s, e, kind, False))
                if kind == OUTSIDE:  # before a given Schedule: maybe planned time; taken as counted already
                    pending = False
        if pe <= ce:
            i += 1
            if i < n:
                pending = pieces[i][3]
        else:
            j += 1
    return out


def _look_back(rows: list[tuple], a: float, width: float) -> float:
    """Where the pass starts: early enough to see every startup window that reaches into [a, ...). A window
    starts when the machine runs after a trigger with no running in between, so the pass starts at the last
    running interval that began at or before a - width (or the first interval, or a - width). rows: sorted."""
    if width <= 0:
        return a
    edge = a - width
    i = bisect_right(rows, edge, key=_first) - 1
    # A running row that the next row starts on top of is no interval at all: it does not count.
    while i >= 0 and (rows[i][2] != RUNNING or (i + 1 < len(rows) and rows[i + 1][0] <= rows[i][0])):
        i -= 1
    if i >= 0:
        return min(edge, rows[i][0])
    return min(edge, rows[0][0]) if rows else edge


def _first(row):
    return row[0]


def _startup_windows(atoms: list[tuple], width: float, triggers: frozenset[str]) -> list[tuple[float, float]]:
    labels = set()
    for t in triggers:
        labels.update(_TRIGGER_LABELS[t])
    out = []
    armed = False
    for s, _e, label, _c in atoms:
        if label in labels:
            armed = True
        elif label == RUN and armed:
            out.append((s, s + width))
            armed = False
    return out


class _Acc:
    __slots__ = ("time", "total", "good", "net", "prod", "su_count", "su_time", "missing", "out_total",
                 "out_good", "stops", "minor", "failures", "notes")

    def __init__(self):
        self.time: dict[str, float] = {}
        self.total = self.good = self.net = self.prod = self.su_count = self.su_time = 0.0
        self.missing = self.out_total = self.out_good = 0.0
        self.stops = self.minor = self.failures = 0
        self.notes: set[str] = set()

    def totals(self, micro_as_performance: bool) -> Totals:
        t = self.time
        micro = t.get(MICRO, 0.0)
        return Totals(
            no_production_scheduled_s=t.get("no_production_scheduled", 0.0),
            break_s=t.get("break", 0.0),
            planned_maintenance_s=t.get("planned_maintenance", 0.0),
            equipment_failure_s=t.get("equipment_failure", 0.0),
            setup_adjustment_s=t.get("setup_adjustment", 0.0),
            idling_minor_stops_s=t.get("idling_minor_stops", 0.0) + (0.0 if micro_as_performance else micro),
            unknown_s=t.get(UNKNOWN, 0.0),
            running_s=t.get(RUN, 0.0),
            minor_stops_s=micro if micro_as_performance else 0.0,
            total_count=self.total, good_count=self.good,
            net_run_time_s=self.net, fully_productive_time_s=self.prod,
            startup_reject_count=self.su_count, startup_reject_time_s=self.su_time,
            missing_ideal_count=self.missing, outside_total_count=self.out_total, outside_good_count=self.out_good,
            stop_count=self.stops, minor_stop_count=self.minor, failure_count=self.failures,
            notes=frozenset(self.notes),
        )


_NOT_PLANNED = frozenset(PLANNED_CATEGORIES) | {OUTSIDE}


def _count_stop(acc: _Acc, label: str) -> None:
    """A stop starts (in planned production time): count it as a stop, a minor stop or a failure."""
    if label == MICRO:
        acc.minor += 1
    elif label in STOP_CATEGORIES:
        acc.stops += 1
        if label == "equipment_failure":
            acc.failures += 1


def _check_ideal(name, v):
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a number >= 0, got {v!r}")
    return float(v) if v > 0 else None  # 0: not known


def _ideal_lookup(ideal_cycle_times: Mapping | None, default) -> tuple:
    """(own, lookup): own(product) is the product's ideal cycle time or None; lookup(product, tag_value) applies
    the order product -> the machine's tag at that time -> the machine's own value."""
    own_cache: dict = {}
    default = _check_ideal("default_ideal_cycle_time_s", default)

    def own(product):
        try:
            return own_cache[product]
        except KeyError:
            pass
        v = None
        if ideal_cycle_times is not None and product in ideal_cycle_times:
            v = _check_ideal(f"ideal_cycle_times[{product!r}]", ideal_cycle_times[product])
        own_cache[product] = v
        return v

    def lookup(product, tag_value):
        v = own(product)
        if v is None:
            v = tag_value if tag_value is not None else default
        return v

    return own, lookup


def _series(series) -> tuple[list[float], list[float | None]]:
    """The machine's ideal-cycle-time tag as sorted (times, values): each value holds from its time to the next;
    None (a bad reading) or 0 means not known there."""
    times, values = [], []
    for i, (t, v) in enumerate(sorted(((to_epoch(t), v) for t, v in series or ()), key=_first)):
        times.append(t)
        values.append(_check_ideal(f"ideal_cycle_time_series[{i}]", v))
    return times, values


def _count_row(c) -> tuple:
    """(start, end, total, good, product_code) with times in epoch seconds; end None means an instant."""
    cs = to_epoch(c[0])
    return (cs, cs if c[1] is None else to_epoch(c[1]), c[2], c[3], c[4] if len(c) > 4 else None)


def _place_counts(counts, a, b, atoms, windows, b_starts, b_ends, tag=None) -> list[tuple[int, int, dict]]:
    """Each increment, whole, at the midpoint of its [start, end): [(bucket or -1, where, {(product, tag value):
    [total, good]})], where is 0 outside planned time, 1 in planned time, 2 in a startup window; the tag value
    is the machine's ideal-cycle-time tag there (None without one). tag: (times, values, own) or None."""
    rows = counts if isinstance(counts, (list, tuple)) else list(counts)
    try:
        return _place(rows, a, b, atoms, windows, b_starts, b_ends, tag)
    except (TypeError, ValueError):  # datetimes, None ends, rows of four: convert, then again (errors raise)
        return _place([_count_row(c) for c in rows], a, b, atoms, windows, b_starts, b_ends, tag)


def _place(rows, a, b, atoms, windows, b_starts, b_ends, tag=None) -> list[tuple[int, int, dict]]:
    # A region is a stretch in which the piece, the startup window and the bucket do not change; it is found by
    # binary search and reused while the counts (usually in time order) stay in it.
    atom_ends = [x[1] for x in atoms]
    win_ends = [x[1] for x in windows]  # windows start in order and have one width: their ends are in order
    n_atoms, n_win, n_b = len(atoms), len(windows), len(b_starts)
    inf = math.inf
    regions: list[tuple[int, int, dict]] = []
    by_key: dict[tuple[int, int], dict] = {}
    rlo = rhi = -inf
    parts: dict = {}
    s_times, s_values, own = tag if tag else ((), (), None)
    n_s = len(s_times)
    tag_value = None
    for cs, ce, total, good, product in rows:
        t = (cs + ce) * 0.5
        if t < a or t >= b:
            continue
        if total < 0 or good < 0:
            raise ValueError(f"count increment at {cs}: total and good must be >= 0, got {total}, {good}")
        if t < rlo or t >= rhi:
            i = bisect_right(atom_ends, t)
            if i < n_atoms:
                rlo, rhi = atoms[i][0], atoms[i][1]
                planned = atoms[i][2] not in _NOT_PLANNED
            else:
                rlo, rhi, planned = atom_ends[-1] if n_atoms else -inf, inf, False
            where = 0
            if planned:
                w = bisect_right(win_ends, t)
                if w < n_win and windows[w][0] <= t:
                    where, lo, hi = 2, windows[w][0], win_ends[w]
                else:
                    where, lo, hi = 1, (win_ends[w - 1] if w else -inf), (windows[w][0] if w < n_win else inf)
                rlo, rhi = max(rlo, lo), min(rhi, hi)
            kb = bisect_right(b_ends, t)
            if kb < n_b and b_starts[kb] <= t:
                lo, hi = b_starts[kb], b_ends[kb]
            else:
                lo, hi, kb = (b_ends[kb - 1] if kb else -inf), (b_starts[kb] if kb < n_b else inf), -1
            rlo, rhi = max(rlo, lo), min(rhi, hi)
            if n_s:  # the tag's value holds from one sample to the next: a region has one value
                k = bisect_right(s_times, t) - 1
                tag_value = s_values[k] if k >= 0 else None
                rlo = max(rlo, s_times[k] if k >= 0 else -inf)
                rhi = min(rhi, s_times[k + 1] if k + 1 < n_s else inf)
            parts = by_key.get((kb, where))
            if parts is None:
                parts = by_key[(kb, where)] = {}
                regions.append((kb, where, parts))
        key = (product, tag_value if n_s and own(product) is None else None)
        x = parts.get(key)
        if x is None:
            parts[key] = [total, good]
        else:
            x[0] += total
            x[1] += good
    return regions


def analyze(start, end, *, states: Iterable, counts: Iterable = (), calendar: Calendar | Schedule | None = None,
            ideal_cycle_times: Mapping[str | None, float] | None = None,
            default_ideal_cycle_time_s: float | None = None,
            ideal_cycle_time_series: Iterable[tuple] | None = None,
            fault_reasons: Mapping[int, object] | None = None, overrides: Iterable[ReasonOverride] = (),
            downtime: Iterable[PlannedDowntime] = (), config: Config = DEFAULT_CONFIG,
            buckets: Iterable[Bucket] | None = None) -> Analysis:
    """One machine over [start, end): Totals for the whole range and for each bucket.

    states: StateInterval-like rows (start, end|None, state, fault_code, ...), epoch seconds or aware datetimes;
        pass every interval that overlaps [start - config.startup_window_s, end), and the last running interval
        before that (more is harmless). An interval reaching past the range counts only inside it, but its
        whole duration decides the micro-stop rule. The caller clamps `end` to "now": an open interval (end
        None) is taken to last until `end`.
    counts: CountIncrement-like rows (start, end, total, good, product_code); each is attributed, whole, to the
        instant (start + end) / 2.
    calendar: a Calendar (expanded here; preferred), a Schedule covering the range (used as it is; see the
        README), or None (all time is production).
    ideal_cycle_times: product_code -> ideal seconds per part (the product's). Parts of a product without one
        take the machine's cycle.ideal_time tag at the instant they are placed: ideal_cycle_time_series, sorted
        or not, of (time, seconds per part | None) pairs, each value holding until the next; where the tag has
        no value (before its first sample, a bad reading, 0), default_ideal_cycle_time_s (the machine's own).
    fault_reasons: fault_code -> Reason; overrides: the operators' ReasonOverrides; downtime: this machine's
        PlannedDowntime (the calendar's own is applied too).
    buckets: sorted, non-overlapping Buckets (e.g. hour_buckets(...)); they need not cover the range.
    """
    a, b = check_range(start, end)
    triggers = config.startup_after if config.startup_window_s > 0 else frozenset()
    width = config.startup_window_s if triggers else 0.0
    notes: list[tuple] = []  # (start, end, note): reported where that time falls

    rows = sorted_rows(states)
    events = scan_events(rows, b, fault_reasons, config.micro_stop_threshold_s, notes)
    pieces = _pieces(events, _sorted_overrides(overrides), notes)
    # The pass starts early enough to see the startup windows reaching into the range, and the whole of the
    # stop that holds `a` (whether it already cost planned time before `a` decides whether it counts here).
    a0 = _look_back(rows, a, width)
    k = bisect_right(pieces, a, key=_first) - 1
    if k >= 0 and pieces[k][1] > a and pieces[k][0] > -math.inf:
        a0 = min(a0, pieces[k][0])
    segs = _schedule_segments(calendar, a0, a, b, list(downtime))
    atoms = _overlay(pieces, segs)
    windows = _startup_windows(atoms, width, triggers) if triggers else []

    blist = sorted(buckets or (), key=lambda x: x.start)
    for x, y in zip(blist, blist[1:]):
        if y.start < x.end:
            raise ValueError(f"buckets overlap: {x.label!r} and {y.label!r}")
    whole = _Acc()
    accs = [_Acc() for _ in blist]
    n_b = len(blist)

    # Time: one ordered pass over the atomic pieces, split over the buckets.
    b_starts = [x.start for x in blist]
    b_ends = [x.end for x in blist]
    whole_time = whole.time
    k = 0
    for s, e, label, counted in atoms:
        if e <= a:
            continue
        if s >= b:
            break
        if s < a:
            s, counted = a, False
        if e > b:
            e = b
        whole_time[label] = whole_time.get(label, 0.0) + (e - s)
        if counted:
            _count_stop(whole, label)
        while k < n_b and b_ends[k] <= s:
            k += 1
        if k == n_b or b_starts[k] >= e:
            continue
        if b_starts[k] <= s and e <= b_ends[k]:  # the usual case: inside one bucket
            tm = accs[k].time
            tm[label] = tm.get(label, 0.0) + (e - s)
            if counted:
                _count_stop(accs[k], label)
            continue
        kk = k
        while kk < n_b and b_starts[kk] < e:
            lo = s if s > b_starts[kk] else b_starts[kk]
            hi = e if e < b_ends[kk] else b_ends[kk]
            if lo < hi:
                tm = accs[kk].time
                tm[label] = tm.get(label, 0.0) + (hi - lo)
                if counted and lo == s:
                    _count_stop(accs[kk], label)
            kk += 1

    own_ideal, ideal_of = _ideal_lookup(ideal_cycle_times, default_ideal_cycle_time_s)
    s_times, s_values = _series(ideal_cycle_time_series)
    regions = _place_counts(counts, a, b, atoms, windows, b_starts, b_ends,
                            (s_times, s_values, own_ideal) if s_times else None)
    for bucket, where, per_product in regions:  # where: 0 outside planned time, 1 planned, 2 startup window
        for (product, tag_value), (total, good) in per_product.items():
            for acc in (whole, accs[bucket]) if bucket >= 0 else (whole,):
                if where == 0:
                    acc.out_total += total
                    acc.out_good += good
                    continue
                acc.total += total
                acc.good += good
                startup = where == 2
                if startup:
                    acc.su_count += total - good
                ideal = ideal_of(product, tag_value)
                if ideal is None:
                    if total or good:
                        acc.missing += total
                        acc.notes.add(NO_IDEAL_CYCLE_TIME)
                    continue
                acc.net += ideal * total
                acc.prod += ideal * good
                if startup:
                    acc.su_time += ideal * (total - good)

    for s, e, note in notes:  # reported where their time falls (so that buckets and splits add up)
        if max(s, a) < min(e, b):
            whole.notes.add(note)
            for bk, acc in zip(blist, accs):
                if max(s, bk.start) < min(e, bk.end):
                    acc.notes.add(note)
    perf = config.micro_stops_as == "performance"
    return Analysis(a, b, whole.totals(perf),
                    tuple((bk, acc.totals(perf)) for bk, acc in zip(blist, accs)))
