"""Downtime events from state intervals: merging, fault-code reasons, gaps, open events, splits and reasons."""
from __future__ import annotations

import pytest

from oee import (
    DowntimeEvent,
    Reason,
    ReasonOverride,
    StateInterval,
    assign_reason,
    events_from_states,
    overrides_from_events,
    split_event,
)
from tests.oee.helpers import M, at, timeline

T0 = at(2024, 5, 6, 6)
REASONS = {
    101: Reason("MOTOR", "equipment_failure", "Main motor overload"),
    102: Reason("STARVED", "idling_minor_stops", "No material"),
    103: Reason("CIP", "planned_maintenance", "Clean in place"),
}


def test_non_running_stretches_become_events_merged_by_cause():
    states = timeline(T0, (10 * M, "running"), (5 * M, "faulted", 101), (5 * M, "faulted", 101),
                      (3 * M, "faulted", 102), (10 * M, "running"), (20 * M, "changeover"),
                      (1 * M, "idle"), (1 * M, "blocked"), (10 * M, "running"))
    events = events_from_states("LINE-001", states, fault_reasons=REASONS)
    assert [(e.start - T0, e.end - T0, e.state, e.fault_code, e.loss_category, e.minor) for e in events] == [
        (10 * M, 20 * M, "faulted", 101, "equipment_failure", False),  # two contiguous intervals, one cause
        (20 * M, 23 * M, "faulted", 102, "idling_minor_stops", False),
        (33 * M, 53 * M, "changeover", None, "setup_adjustment", False),
        (53 * M, 54 * M, "idle", None, "idling_minor_stops", True),  # 60 s < 120 s: a minor stop
        (54 * M, 55 * M, "blocked", None, "idling_minor_stops", True),
    ]
    assert all(e.machine == "LINE-001" and not e.planned for e in events)
    assert events[0].reason.code == "MOTOR" and events[0].source == "fault_code"
    assert events[2].reason is None and events[2].source == "state"
    assert events[0].duration_s == 10 * M


def test_running_with_different_products_is_not_an_event():
    states = [StateInterval(T0, T0 + 60, "running", None, "A"), StateInterval(T0 + 60, T0 + 120, "running", None, "B")]
    assert events_from_states(1, states) == []


def test_planned_reason_from_a_fault_code():
    (e,) = events_from_states(1, timeline(T0, (30 * M, "faulted", 103)), fault_reasons=REASONS)
    assert (e.loss_category, e.planned) == ("planned_maintenance", True)


def test_planned_stop_and_offline():
    events = events_from_states(1, timeline(T0, (30 * M, "planned_stop"), (5 * M, "offline"), (5 * M, "unknown")))
    assert [(e.state, e.loss_category, e.planned) for e in events] == [
        ("planned_stop", "planned_maintenance", True), ("offline", "unknown", False), ("unknown", "unknown", False)]


def test_a_gap_between_intervals_is_an_unknown_event():
    states = [StateInterval(T0, T0 + 60, "running"), StateInterval(T0 + 120, T0 + 180, "running")]
    (gap,) = events_from_states(1, states)
    assert (gap.start, gap.end, gap.state, gap.loss_category) == (T0 + 60, T0 + 120, "unknown", "unknown")


def test_an_open_event_has_no_end_and_is_not_minor():
    states = [StateInterval(T0, T0 + 60, "running"), StateInterval(T0 + 60, None, "idle")]
    (e,) = events_from_states(1, states)
    assert e.end is None and e.open and e.duration_s is None and e.minor is False


def test_split_and_assign_reason():
    (e,) = events_from_states(1, timeline(T0, (10 * M, "running"), (40 * M, "faulted", 101)),
                              fault_reasons=REASONS)
    first, second = split_event(e, T0 + 30 * M)
    assert first.end == second.start == T0 + 30 * M
    assert (first.start, second.end) == (e.start, e.end)
    third, fourth = split_event(second, T0 + 40 * M)
    assert third.split_from == fourth.split_from == e.start  # both trace back to the original event
    fourth = assign_reason(fourth, Reason("WAIT", "idling_minor_stops", "Waiting for maintenance"), note="night")
    assert (fourth.loss_category, fourth.source, fourth.note, fourth.minor) == (
        "idling_minor_stops", "operator", "night", False)
    assert overrides_from_events([first, third, fourth]) == [
        ReasonOverride(fourth.start, fourth.end, fourth.reason)]


def test_split_an_open_event():
    states = [StateInterval(T0, None, "faulted")]
    (e,) = events_from_states(1, states)
    first, second = split_event(e, T0 + 60)
    assert first.end == T0 + 60 and second.end is None


def test_assigning_a_reason_clears_the_minor_flag():
    (e,) = events_from_states(1, timeline(T0, (60, "idle")))
    assert e.minor
    assert not assign_reason(e, Reason("JAM", "idling_minor_stops")).minor


def test_events_are_immutable():
    (e,) = events_from_states(1, timeline(T0, (60, "idle")))
    assert isinstance(e, DowntimeEvent)
    with pytest.raises(AttributeError):
        e.loss_category = "break"


def test_open_ended_override():
    states = timeline(T0, (10 * M, "faulted"), (10 * M, "running"), (10 * M, "idle"))
    override = ReasonOverride(T0 + 5 * M, None, Reason("CO", "setup_adjustment"))
    events = events_from_states(1, states, overrides=[override])
    assert [(e.start - T0, e.end - T0, e.loss_category) for e in events] == [
        (0, 5 * M, "equipment_failure"), (5 * M, 10 * M, "setup_adjustment"), (20 * M, 30 * M, "setup_adjustment")]


def test_threshold_validation():
    with pytest.raises(ValueError, match="micro_stop_threshold_s"):
        events_from_states(1, [], micro_stop_threshold_s=-5)
