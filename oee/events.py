"""Machine state intervals, reasons and downtime events.

A downtime event is a stretch of time in which the machine did not run, with one cause: contiguous non-running
state intervals with the same state and fault code are one event. Its loss category comes, in this order, from
an operator's reason, from the reason the fault code maps to, or from the state (see vocabulary.STATE_CATEGORY).

The micro-stop rule: an unplanned stop in equipment_failure or idling_minor_stops, categorised automatically (by
state or fault code, not by an operator), that ended and lasted strictly less than the threshold (default 120 s)
is a minor stop. A stop of exactly the threshold is not. The duration is the whole event's, never the part of it
inside a range, bucket or shift. An ongoing stop (end None) is not a minor stop until it has ended.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import NamedTuple

from oee.timeutil import to_epoch
from oee.vocabulary import (
    LOSS_CATEGORIES,
    PLANNED_CATEGORIES,
    STATE_CATEGORY,
    STOP_CATEGORIES,
    UNKNOWN,
)

DEFAULT_MICRO_STOP_THRESHOLD_S = 120.0
MICRO_ELIGIBLE = ("equipment_failure", "idling_minor_stops")
RUNNING = "running"

# Where an event's category came from.
SOURCE_STATE = "state"
SOURCE_FAULT_CODE = "fault_code"
SOURCE_OPERATOR = "operator"

# Note raised when a reason's category cannot apply to a stop (reduced_speed, process_defects, startup_rejects).
REASON_NOT_A_STOP = "reason_category_not_a_stop"


class StateInterval(NamedTuple):
    """The machine was in `state` over [start, end). end None: still in it. Times: epoch seconds or aware
    datetimes (converted when used)."""

    start: float
    end: float | None
    state: str
    fault_code: int | None = None
    product_code: str | None = None


@dataclass(frozen=True)
class Reason:
    """A downtime reason: planned or not is decided by its category (PLANNED_CATEGORIES are planned)."""

    code: str
    loss_category: str
    name: str = ""
    planned: bool | None = None  # optional; must agree with the category when given

    def __post_init__(self):
        if self.loss_category not in LOSS_CATEGORIES + PLANNED_CATEGORIES:
            raise ValueError(f"reason {self.code!r}: loss_category must be one of "
                             f"{LOSS_CATEGORIES + PLANNED_CATEGORIES}, got {self.loss_category!r}")
        is_planned = self.loss_category in PLANNED_CATEGORIES
        if self.planned is not None and bool(self.planned) != is_planned:
            raise ValueError(f"reason {self.code!r}: planned={self.planned} contradicts loss_category "
                             f"{self.loss_category!r} ({'planned' if is_planned else 'unplanned'})")
        object.__setattr__(self, "planned", is_planned)

    @property
    def applies_to_stops(self) -> bool:
        return self.loss_category in STOP_CATEGORIES or self.loss_category in PLANNED_CATEGORIES


class ReasonOverride(NamedTuple):
    """An operator's reason for the stop time within [start, end) (end None: open-ended). Running time inside
    it is not affected. Overlapping overrides: the one that starts later wins where they overlap."""

    start: float
    end: float | None
    reason: Reason


@dataclass(frozen=True, slots=True)
class DowntimeEvent:
    machine: object
    start: float
    end: float | None  # None: the machine is still down
    state: str
    fault_code: int | None
    loss_category: str  # a STOP_CATEGORIES or PLANNED_CATEGORIES value, or 'unknown'
    planned: bool
    reason: Reason | None = None
    source: str = SOURCE_STATE  # state | fault_code | operator
    minor: bool = False  # a minor stop under the micro-stop rule (a performance loss by default)
    note: str = ""
    split_from: float | None = None  # the start of the event this one was split from

    @property
    def duration_s(self) -> float | None:
        return None if self.end is None else self.end - self.start

    @property
    def open(self) -> bool:
        return self.end is None


# --- shared with the engine: normalisation and event derivation (tuples, for speed) -----------------------------


def _first(row):
    return row[0]


def sorted_rows(states: Iterable) -> list[tuple]:
    """State rows (start, end|None, state, fault_code, ...) as a list sorted by start, times in epoch seconds."""
    rows = list(states)
    if not all(type(r[0]) is float and (r[1] is None or type(r[1]) is float) and len(r) > 3 for r in rows):
        rows = [(to_epoch(r[0]), None if r[1] is None else to_epoch(r[1]), r[2], r[3] if len(r) > 3 else None)
                for r in rows]
    rows.sort(key=_first)
    return rows


def classify_stop(state: str, fault, fault_reasons: Mapping | None):
    """(category, planned, source, reason, note) of a stop from its state and fault code. note is
    REASON_NOT_A_STOP when the fault code maps to a reason whose category is not a stop's (then the state
    decides), else None."""
    reason = fault_reasons.get(fault) if fault_reasons and fault is not None else None
    note = None
    if reason is not None:
        if reason.applies_to_stops:
            return reason.loss_category, reason.planned, SOURCE_FAULT_CODE, reason, None
        note = REASON_NOT_A_STOP
    category = STATE_CATEGORY.get(state, UNKNOWN)
    return category, category in PLANNED_CATEGORIES, SOURCE_STATE, None, note


def scan_events(rows: list[tuple], hi: float | None, fault_reasons: Mapping | None, threshold_s: float,
                notes: list | None = None, *, fill: bool = True) -> list[tuple]:
    """Events from rows sorted by start (see sorted_rows), in one pass.

    Normalisation: an interval that overlaps the next one ends where the next begins; an open interval (end
    None) lasts until the next interval (and is then closed) or until hi (with hi None it stays open). A gap
    between two intervals is 'unknown' time. With fill, the time before the first interval is 'unknown' from
    -inf (a start that no range counts as a stop's start) and the time after the last is 'unknown' up to hi.
    Merging: contiguous intervals with the same state and fault code are one event, (start, end, state, fault,
    category, planned, minor, source, reason, is_open); running stretches come out with category 'running'.
    notes: a list that gets (start, end, note) for events with something to report.
    """
    out: list[tuple] = []
    append = out.append
    n = len(rows)
    t = -math.inf if fill else None  # covered up to here
    cs = ce = cstate = cfault = None  # the event being built
    copen = False
    for i in range(n):
        r = rows[i]
        s = r[0]
        e = r[1]
        state = r[2]
        fault = None if state == RUNNING else r[3]
        is_open = e is None
        if i + 1 < n:
            nxt = rows[i + 1][0]
            if is_open or e > nxt:
                e = nxt
                is_open = False
        elif is_open:
            e = hi if hi is not None else math.inf  # no hi (events_from_states): the event stays open
        if e <= s:
            continue
        if t is not None and s > t:  # a gap in the data: unknown
            if ce == t and cstate == UNKNOWN and cfault is None:
                ce, copen = s, False
            else:
                if cstate is not None:
                    append(_event(cs, ce, cstate, cfault, copen, fault_reasons, threshold_s, notes))
                cs, ce, cstate, cfault, copen = t, s, UNKNOWN, None, False
        if ce == s and state == cstate and fault == cfault:
            ce, copen = e, is_open
        else:
            if cstate is not None:
                append(_event(cs, ce, cstate, cfault, copen, fault_reasons, threshold_s, notes))
            cs, ce, cstate, cfault, copen = s, e, state, fault, is_open
        if t is None or e > t:
            t = e
    if fill and hi is not None and t < hi:
        if ce == t and cstate == UNKNOWN and cfault is None:
            ce, copen = hi, False
        else:
            if cstate is not None:
                append(_event(cs, ce, cstate, cfault, copen, fault_reasons, threshold_s, notes))
            cs, ce, cstate, cfault, copen = t, hi, UNKNOWN, None, False
    if cstate is not None:
        append(_event(cs, ce, cstate, cfault, copen, fault_reasons, threshold_s, notes))
    return out


def _event(s, e, state, fault, is_open, fault_reasons, threshold_s, notes):
    if state == RUNNING:
        return (s, e, RUNNING, None, RUNNING, False, False, SOURCE_STATE, None, is_open)
    return _stop(s, e, state, fault, is_open, fault_reasons, threshold_s, notes)


def _stop(s, e, state, fault, is_open, fault_reasons, threshold_s, notes):
    category, planned, source, reason, note = classify_stop(state, fault, fault_reasons)
    if note is not None and notes is not None:
        notes.append((s, e, note))
    minor = (not planned and not is_open and category in MICRO_ELIGIBLE and (e - s) < threshold_s)
    return (s, e, state, fault, category, planned, minor, source, reason, is_open)


# --- public event functions -------------------------------------------------------------------------------------


def events_from_states(machine, states: Iterable, *, fault_reasons: Mapping[int, Reason] | None = None,
                       overrides: Iterable[ReasonOverride] = (),
                       micro_stop_threshold_s: float = DEFAULT_MICRO_STOP_THRESHOLD_S) -> list[DowntimeEvent]:
    """Downtime events from state intervals: every non-running stretch, merged when contiguous with the same
    state and fault code; a gap between two intervals is an 'unknown' event. Overrides (operator reasons) are
    applied: an event that an override covers in part is split at the override's edges."""
    _check_threshold(micro_stop_threshold_s)
    events = []
    for s, e, state, fault, category, planned, minor, source, reason, is_open in scan_events(
            sorted_rows(states), None, fault_reasons, micro_stop_threshold_s, fill=False):
        if state == RUNNING:
            continue
        events.append(DowntimeEvent(machine, s, None if is_open else e, state, fault, category, planned,
                                    reason, source, minor))
    ovs = _sorted_overrides(overrides)
    if not ovs:
        return events
    out = []
    for ev in events:
        out.extend(_apply_overrides(ev, ovs))
    return out


def _apply_overrides(ev: DowntimeEvent, ovs: list[tuple]) -> list[DowntimeEvent]:
    end = math.inf if ev.end is None else ev.end
    pieces = []
    t = ev.start
    for os_, oe, reason in ovs:
        if oe <= t or os_ >= end:
            continue
        if os_ > t:
            pieces.append(replace(ev, start=t, end=os_))
        hi = min(oe, end)
        piece = assign_reason(replace(ev, start=max(os_, t), end=None if hi == math.inf else hi), reason)
        pieces.append(piece)
        t = hi
        if t >= end:
            break
    if t < end:
        pieces.append(replace(ev, start=t))
    return pieces


def _sorted_overrides(overrides: Iterable[ReasonOverride]) -> list[tuple]:
    """(start, end, reason) sorted and made disjoint: where two overlap, the later start wins."""
    rows = []
    for o in overrides:
        s = to_epoch(o[0])
        e = math.inf if o[1] is None else to_epoch(o[1])
        if e > s:
            rows.append((s, e, o[2]))
    rows.sort(key=lambda r: r[0])
    out = []
    for i, (s, e, r) in enumerate(rows):
        if i + 1 < len(rows) and rows[i + 1][0] < e:
            e = rows[i + 1][0]
        if e > s:
            out.append((s, e, r))
    return out


def split_event(event: DowntimeEvent, at) -> tuple[DowntimeEvent, DowntimeEvent]:
    """An operator's split of an event at time `at` (start < at < end) into two events with the same cause;
    the second records split_from = the original start. Assign a reason to either half with assign_reason()."""
    t = to_epoch(at)
    end = math.inf if event.end is None else event.end
    if not event.start < t < end:
        raise ValueError(f"split time {t} is not inside the event [{event.start}, {event.end})")
    first = replace(event, end=t)
    second = replace(event, start=t, split_from=event.split_from if event.split_from is not None else event.start)
    return first, second


def assign_reason(event: DowntimeEvent, reason: Reason, note: str | None = None) -> DowntimeEvent:
    """The event with an operator's reason: its category and planned flag come from the reason, and it is no
    longer a minor stop (an operator's decision is not second-guessed by the micro-stop rule)."""
    if not reason.applies_to_stops:
        raise ValueError(f"reason {reason.code!r}: category {reason.loss_category!r} cannot apply to a stop; "
                         f"use one of {STOP_CATEGORIES + PLANNED_CATEGORIES}")
    return replace(event, reason=reason, loss_category=reason.loss_category, planned=reason.planned,
                   source=SOURCE_OPERATOR, minor=False, note=event.note if note is None else note)


def overrides_from_events(events: Iterable[DowntimeEvent]) -> list[ReasonOverride]:
    """The operator's decisions in a list of events (those with source 'operator'), as overrides for analyze()."""
    return [ReasonOverride(e.start, e.end, e.reason) for e in events
            if e.source == SOURCE_OPERATOR and e.reason is not None]


def _check_threshold(threshold_s: float) -> None:
    if isinstance(threshold_s, bool) or not isinstance(threshold_s, (int, float)) or not threshold_s >= 0:
        raise ValueError(f"micro_stop_threshold_s must be a number >= 0, got {threshold_s!r}")
