"""Totals: the additive record behind every number. Roll-ups add Totals and divide at the end; percentages are
never averaged. From a Totals come the OEE result, the Six Big Losses waterfall, MTBF and MTTR.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import NamedTuple

from oee.formulas import NO_IDEAL_CYCLE_TIME, OeeResult, calculate_times, mtbf, mttr
from oee.vocabulary import LABELS, UNKNOWN

DATA_GAP = "data_gap"  # some planned production time has no trustworthy machine state (offline, unknown, no data)
PRODUCTION_OUTSIDE_PLANNED_TIME = "production_outside_planned_time"  # parts counted while nothing was planned


@dataclass(frozen=True)
class Totals:
    """Times in seconds, counts in parts, over one range (or the sum of several). All fields add up.

    Planned downtime (off all time): no_production_scheduled_s, break_s, planned_maintenance_s.
    Availability losses (off planned time): equipment_failure_s, setup_adjustment_s, idling_minor_stops_s
    (stops of idle/blocked at or above the micro-stop threshold, plus minor stops when they are configured as an
    availability loss), unknown_s (offline, unknown, or no data: flagged 'data_gap').
    Run time = running_s + minor_stops_s (minor stops counted as a performance loss sit inside run time).
    Counts are of parts made in planned production time; parts made outside it are in outside_*_count.
    net_run_time_s = sum(ideal x total), fully_productive_time_s = sum(ideal x good), over parts with a known
    ideal cycle time; startup_reject_time_s = ideal time of the rejects made in startup windows.
    """

    no_production_scheduled_s: float = 0.0
    break_s: float = 0.0
    planned_maintenance_s: float = 0.0
    equipment_failure_s: float = 0.0
    setup_adjustment_s: float = 0.0
    idling_minor_stops_s: float = 0.0
    unknown_s: float = 0.0
    running_s: float = 0.0
    minor_stops_s: float = 0.0
    total_count: float = 0
    good_count: float = 0
    net_run_time_s: float = 0.0
    fully_productive_time_s: float = 0.0
    startup_reject_count: float = 0
    startup_reject_time_s: float = 0.0
    missing_ideal_count: float = 0  # parts (total) made in planned time without a known ideal cycle time
    outside_total_count: float = 0
    outside_good_count: float = 0
    stop_count: int = 0  # unplanned stops (availability losses other than unknown) that started in planned time
    minor_stop_count: int = 0
    failure_count: int = 0  # equipment_failure stops (not minor) that started in planned time
    notes: frozenset[str] = field(default=frozenset())

    def __add__(self, other: Totals) -> Totals:
        if not isinstance(other, Totals):
            return NotImplemented
        return Totals(*[x + y for x, y in zip(_values(self), _values(other))], notes=self.notes | other.notes)

    def __radd__(self, other):
        if other == 0:  # sum() starts with 0
            return self
        return NotImplemented

    # --- levels of the waterfall ---------------------------------------------------------------------------

    @property
    def planned_downtime_s(self) -> float:
        return self.no_production_scheduled_s + self.break_s + self.planned_maintenance_s

    @property
    def availability_loss_s(self) -> float:
        return self.equipment_failure_s + self.setup_adjustment_s + self.idling_minor_stops_s + self.unknown_s

    @property
    def run_time_s(self) -> float:
        return self.running_s + self.minor_stops_s

    @property
    def planned_time_s(self) -> float:
        return self.run_time_s + self.availability_loss_s

    @property
    def all_time_s(self) -> float:
        return self.planned_time_s + self.planned_downtime_s

    @property
    def reject_count(self) -> float:
        return self.total_count - self.good_count

    @property
    def ideal_known(self) -> bool:
        return NO_IDEAL_CYCLE_TIME not in self.notes

    @property
    def reduced_speed_s(self) -> float | None:
        """Run time minus minor stops minus net run time; negative when performance is above 100 %."""
        if not self.ideal_known:
            return None
        return self.run_time_s - self.minor_stops_s - self.net_run_time_s

    @property
    def startup_rejects_s(self) -> float | None:
        return self.startup_reject_time_s if self.ideal_known else None

    @property
    def process_defects_s(self) -> float | None:
        if not self.ideal_known:
            return None
        return self.net_run_time_s - self.fully_productive_time_s - self.startup_reject_time_s

    @property
    def mtbf_s(self) -> float | None:
        return mtbf(self.run_time_s, self.failure_count)

    @property
    def mttr_s(self) -> float | None:
        return mttr(self.equipment_failure_s, self.failure_count)

    @property
    def flags(self) -> tuple[str, ...]:
        return self.result().flags

    # --- results -------------------------------------------------------------------------------------------

    def result(self) -> OeeResult:
        extra = set(self.notes)
        if self.unknown_s > 0:
            extra.add(DATA_GAP)
        if self.outside_total_count > 0 or self.outside_good_count > 0:
            extra.add(PRODUCTION_OUTSIDE_PLANNED_TIME)
        known = self.ideal_known
        return calculate_times(
            self.planned_time_s, self.run_time_s, self.total_count, self.good_count,
            self.net_run_time_s if known else None, self.fully_productive_time_s if known else None,
            all_time_s=self.all_time_s, extra_flags=extra)

    def waterfall(self) -> list[WaterfallStep]:
        """From all time down to fully productive time: levels and the losses between them, in order.

        Each loss step's seconds are what it takes off the level above; the next level equals the level minus
        its losses. After run time the steps are None when some parts have no ideal cycle time.
        """
        ideal = self.ideal_known
        steps = [
            _level("all_time", self.all_time_s),
            _loss("planned", "no_production_scheduled", self.no_production_scheduled_s),
            _loss("planned", "break", self.break_s),
            _loss("planned", "planned_maintenance", self.planned_maintenance_s),
            _level("planned_production_time", self.planned_time_s),
            _loss("availability", "equipment_failure", self.equipment_failure_s),
            _loss("availability", "setup_adjustment", self.setup_adjustment_s),
            _loss("availability", "idling_minor_stops", self.idling_minor_stops_s,
                  "Idling and stops (starved, blocked)"),
            _loss("availability", UNKNOWN, self.unknown_s),
            _level("run_time", self.run_time_s),
            _loss("performance", "idling_minor_stops", self.minor_stops_s, "Minor stops"),
            _loss("performance", "reduced_speed", self.reduced_speed_s),
            _level("net_run_time", self.net_run_time_s if ideal else None),
            _loss("quality", "process_defects", self.process_defects_s),
            _loss("quality", "startup_rejects", self.startup_rejects_s),
            _level("fully_productive_time", self.fully_productive_time_s if ideal else None),
        ]
        return steps

    def losses(self) -> dict[str, float | None]:
        """The loss steps of the waterfall as {key: seconds}, keys such as 'availability.equipment_failure'."""
        return {s.key: s.seconds for s in self.waterfall() if s.kind == "loss"}

    def as_dict(self) -> dict:
        """Everything the REST layer returns for one range (JSON-ready)."""
        out = self.result().as_dict()
        out.update({
            "losses": self.losses(),
            "waterfall": [s._asdict() for s in self.waterfall()],
            "mtbf_s": self.mtbf_s,
            "mttr_s": self.mttr_s,
            "failure_count": self.failure_count,
            "stop_count": self.stop_count,
            "minor_stop_count": self.minor_stop_count,
            "startup_reject_count": self.startup_reject_count,
            "missing_ideal_count": self.missing_ideal_count,
            "outside_planned_total_count": self.outside_total_count,
            "outside_planned_good_count": self.outside_good_count,
        })
        return out


_NUMERIC = tuple(f.name for f in fields(Totals) if f.name != "notes")
assert _NUMERIC == tuple(f.name for f in fields(Totals))[:-1]  # notes last: positional construction relies on it
_values = attrgetter(*_NUMERIC)


class WaterfallStep(NamedTuple):
    key: str  # unique: 'all_time', ..., or '<factor>.<category>' for a loss
    label: str  # for people
    seconds: float | None
    kind: str  # 'level' or 'loss'
    factor: str | None  # planned | availability | performance | quality for a loss; None for a level
    category: str | None  # the loss or planned category (or 'unknown'); None for a level


def _level(key: str, seconds) -> WaterfallStep:
    return WaterfallStep(key, LABELS[key], seconds, "level", None, None)


def _loss(factor: str, category: str, seconds, label: str | None = None) -> WaterfallStep:
    return WaterfallStep(f"{factor}.{category}", label or LABELS[category], seconds, "loss", factor, category)


def rollup(items: Iterable[Totals]) -> Totals:
    """The sum of Totals (buckets, machines, lines, sites): sums of times and counts, divided afterwards."""
    items = list(items)
    if not items:
        return Totals()
    notes = frozenset().union(*(t.notes for t in items))
    return Totals(*[sum(column) for column in zip(*map(_values, items))], notes=notes)
