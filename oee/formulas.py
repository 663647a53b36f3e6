"""A, P, Q, OEE, utilization and TEEP, MTBF and MTTR: the formulas, with every zero denominator defined.

Every factor is a fraction (1.0 = 100 %) or None when its denominator is zero. Nothing is capped: a value above
1.0 is returned as it is and flagged. See oee/README.md for the table of cases.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

# Flags: short, stable keys for the API and the pages.
NO_PLANNED_TIME = "no_planned_time"  # planned time 0: A and OEE are None
NO_RUN_TIME = "no_run_time"  # run time 0: P is None
NO_COUNT = "no_count"  # total count 0: Q is None
COUNT_WITHOUT_RUN_TIME = "count_without_run_time"  # parts counted but no run time: P would be infinite
NO_IDEAL_CYCLE_TIME = "no_ideal_cycle_time"  # some parts have no ideal cycle time: P, OEE, TEEP are None
NO_ALL_TIME = "no_all_time"  # all time 0 (empty range): utilization and TEEP are None
GOOD_EXCEEDS_TOTAL = "good_exceeds_total"
AVAILABILITY_ABOVE_100 = "availability_above_100"  # run time > planned time: inconsistent inputs
PERFORMANCE_ABOVE_100 = "performance_above_100"  # ideal cycle time too long, or a counter counts double
QUALITY_ABOVE_100 = "quality_above_100"  # good > total: miscounted counters
OEE_ABOVE_100 = "oee_above_100"
UTILIZATION_ABOVE_100 = "utilization_above_100"  # planned time > all time: inconsistent inputs

FLAG_ORDER = (
    NO_PLANNED_TIME, NO_RUN_TIME, NO_COUNT, COUNT_WITHOUT_RUN_TIME, NO_IDEAL_CYCLE_TIME, NO_ALL_TIME,
    GOOD_EXCEEDS_TOTAL, AVAILABILITY_ABOVE_100, PERFORMANCE_ABOVE_100, QUALITY_ABOVE_100, OEE_ABOVE_100,
    UTILIZATION_ABOVE_100,
)
_RANK = {f: i for i, f in enumerate(FLAG_ORDER)}

# A factor above 100 % is shown as it is, never capped, with its likely cause: these words go with it to the API,
# the CSV and the pages (as a warning mark and its tooltip).
WARNING_FACTOR = {AVAILABILITY_ABOVE_100: "availability", PERFORMANCE_ABOVE_100: "performance",
                  QUALITY_ABOVE_100: "quality", OEE_ABOVE_100: "oee", UTILIZATION_ABOVE_100: "utilization"}
WARNING_TEXT = {
    PERFORMANCE_ABOVE_100: "Performance above 100 %: the machine made more parts than its ideal cycle time allows. "
                           "Likely the ideal cycle time is too slow for what the machine does (check the product's, "
                           "the PLC's cycle.ideal_time tag or the machine's), or a counter counts twice (two "
                           "counts per part, or total and good both mapped to one counter).",
    QUALITY_ABOVE_100: "Quality above 100 %: more good parts than parts in total. Likely the counter tags are "
                       "mapped wrongly (good and total swapped) or the good counter counts twice.",
    OEE_ABOVE_100: "OEE above 100 %: more was made than is possible at the ideal cycle time in the planned time. "
                   "Likely the ideal cycle time is too slow for what the machine does, or a counter counts twice.",
    AVAILABILITY_ABOVE_100: "Availability above 100 %: more run time than planned time; the state data are "
                            "inconsistent (overlapping state intervals).",
    UTILIZATION_ABOVE_100: "Utilization above 100 %: more planned time than calendar time; the calendar or planned "
                           "downtime data are inconsistent.",
}

# Relative slack for the "above 100 %" flags, so that 1.0000000000000002 from float rounding is not flagged.
_EPS = 1e-9
# A factor is flagged above 100 % past this: a polled state and its counts are seen up to one poll apart, so a
# machine at its ideal speed reads up to about half a percent over (100 ms of a 20 s run); a wrong ideal cycle
# time or a counter counting twice is far beyond it.
ABOVE_100_TOLERANCE = 0.005


def sort_flags(flags: Iterable[str]) -> tuple[str, ...]:
    """Flags in a stable order: the formula flags in FLAG_ORDER, then any others alphabetically."""
    return tuple(sorted(set(flags), key=lambda f: (_RANK.get(f, len(_RANK)), f)))


@dataclass(frozen=True)
class OeeResult:
    """The numbers of one machine (or a roll-up) over one range. Fractions: 1.0 = 100 %; None = undefined."""

    availability: float | None
    performance: float | None
    quality: float | None
    oee: float | None
    planned_time_s: float
    run_time_s: float
    total_count: float
    good_count: float
    net_run_time_s: float | None  # sum of ideal cycle time x total count: the time the parts would take at ideal speed
    fully_productive_time_s: float | None  # sum of ideal cycle time x good count
    all_time_s: float | None = None
    utilization: float | None = None  # planned time / all time
    teep: float | None = None  # fully productive time / all time = OEE x utilization
    flags: tuple[str, ...] = field(default=())

    @property
    def reject_count(self) -> float:
        return self.total_count - self.good_count

    @property
    def warnings(self) -> list[dict]:
        """Each factor above 100 %: {flag, factor, value, text}, the text naming the likely cause."""
        return [{"flag": f, "factor": WARNING_FACTOR[f], "value": getattr(self, WARNING_FACTOR[f]),
                 "text": WARNING_TEXT[f]} for f in self.flags if f in WARNING_FACTOR]

    def as_dict(self) -> dict:
        return {
            "availability": self.availability,
            "performance": self.performance,
            "quality": self.quality,
            "oee": self.oee,
            "utilization": self.utilization,
            "teep": self.teep,
            "all_time_s": self.all_time_s,
            "planned_time_s": self.planned_time_s,
            "run_time_s": self.run_time_s,
            "net_run_time_s": self.net_run_time_s,
            "fully_productive_time_s": self.fully_productive_time_s,
            "total_count": self.total_count,
            "good_count": self.good_count,
            "reject_count": self.reject_count,
            "flags": list(self.flags),
            "warnings": self.warnings,
        }


class ProductRun(NamedTuple):
    """The parts of one product: counts and its ideal cycle time in seconds (None when unknown)."""

    total: float
    good: float
    ideal_cycle_time_s: float | None
    product_code: str | None = None


def _non_negative(name: str, value) -> float:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


def _ideal(name: str, value) -> float | None:
    """None and 0 both mean 'not known' (0 s per part is not a speed); negative is an error."""
    if value is None:
        return None
    value = _non_negative(name, value)
    return value if value > 0 else None


def _div(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def calculate_times(planned_time_s: float, run_time_s: float, total_count: float, good_count: float,
                    net_run_time_s: float | None, fully_productive_time_s: float | None, *,
                    all_time_s: float | None = None, extra_flags: Iterable[str] = ()) -> OeeResult:
    """The general form the others reduce to: counts, plus the ideal times of the total and of the good parts.

    net_run_time_s = sum(ideal_i * total_i); fully_productive_time_s = sum(ideal_i * good_i); None for either
    means some parts have no ideal cycle time. Then:
        A = run / planned                      None when planned == 0
        P = net_run / run                      None when run == 0 (or ideal unknown)
        Q = fully_productive / net_run         (= good / total for one product); None when total == 0;
                                               good / total when the ideal cycle time is unknown
        OEE = fully_productive / planned       None when planned == 0 (or ideal unknown); equals A * P * Q
        utilization = planned / all            None when all == 0
        TEEP = fully_productive / all          None when all == 0 (or ideal unknown); equals OEE * utilization
    """
    planned = _non_negative("planned_time_s", planned_time_s)
    run = _non_negative("run_time_s", run_time_s)
    total = _non_negative("total_count", total_count)
    good = _non_negative("good_count", good_count)
    if (net_run_time_s is None) != (fully_productive_time_s is None):
        raise ValueError("net_run_time_s and fully_productive_time_s are both known or both None")
    known = net_run_time_s is not None
    if known:
        net = _non_negative("net_run_time_s", net_run_time_s)
        productive = _non_negative("fully_productive_time_s", fully_productive_time_s)
    all_time = None if all_time_s is None else _non_negative("all_time_s", all_time_s)

    flags = set(extra_flags)
    availability = _div(run, planned)
    if planned <= 0:
        flags.add(NO_PLANNED_TIME)
    if run <= 0:
        flags.add(NO_RUN_TIME)
        if total > 0:
            flags.add(COUNT_WITHOUT_RUN_TIME)
    if total <= 0:
        flags.add(NO_COUNT)
    if good > total:
        flags.add(GOOD_EXCEEDS_TOTAL)
    if not known:
        flags.add(NO_IDEAL_CYCLE_TIME)
        performance = oee = teep = None
        quality = _div(good, total)
    else:
        performance = _div(net, run)
        quality = _div(productive, net) if total > 0 else None
        oee = _div(productive, planned)
        teep = _div(productive, all_time) if all_time is not None else None
    utilization = _div(planned, all_time) if all_time is not None else None
    if all_time is not None and all_time <= 0:
        flags.add(NO_ALL_TIME)
    for flag, value in ((AVAILABILITY_ABOVE_100, availability), (PERFORMANCE_ABOVE_100, performance),
                        (QUALITY_ABOVE_100, quality), (OEE_ABOVE_100, oee), (UTILIZATION_ABOVE_100, utilization)):
        if value is not None and value > 1.0 + ABOVE_100_TOLERANCE:
            flags.add(flag)
    return OeeResult(
        availability=availability, performance=performance, quality=quality, oee=oee,
        planned_time_s=planned, run_time_s=run, total_count=total, good_count=good,
        net_run_time_s=net if known else None, fully_productive_time_s=productive if known else None,
        all_time_s=all_time, utilization=utilization, teep=teep, flags=sort_flags(flags),
    )


def calculate(planned_time_s: float, run_time_s: float, total_count: float, good_count: float,
              ideal_cycle_time_s: float | None, *, all_time_s: float | None = None) -> OeeResult:
    """OEE of one product: A = run/planned, P = ideal*total/run, Q = good/total, OEE = good*ideal/planned."""
    ideal = _ideal("ideal_cycle_time_s", ideal_cycle_time_s)
    total = _non_negative("total_count", total_count)
    good = _non_negative("good_count", good_count)
    if ideal is None:
        return calculate_times(planned_time_s, run_time_s, total, good, None, None, all_time_s=all_time_s)
    return calculate_times(planned_time_s, run_time_s, total, good, ideal * total, ideal * good,
                           all_time_s=all_time_s)


def calculate_runs(planned_time_s: float, run_time_s: float, runs: Iterable[ProductRun | tuple], *,
                   all_time_s: float | None = None) -> OeeResult:
    """OEE over several products, each with its own ideal cycle time.

    P = sum(ideal_i * total_i) / run; Q = sum(ideal_i * good_i) / sum(ideal_i * total_i), the quality that keeps
    OEE = A * P * Q = sum(ideal_i * good_i) / planned exactly (a reject of a slow product costs more time than one
    of a fast product). A run with counts but no ideal cycle time makes P, OEE and TEEP None (flag
    'no_ideal_cycle_time'); Q then falls back to good / total.
    """
    total = good = net = productive = 0.0
    known = True
    for i, run in enumerate(runs):
        run = ProductRun(*run)
        t = _non_negative(f"runs[{i}].total", run.total)
        g = _non_negative(f"runs[{i}].good", run.good)
        ideal = _ideal(f"runs[{i}].ideal_cycle_time_s", run.ideal_cycle_time_s)
        total += t
        good += g
        if ideal is None:
            if t > 0 or g > 0:
                known = False
            continue
        net += ideal * t
        productive += ideal * g
    if not known:
        return calculate_times(planned_time_s, run_time_s, total, good, None, None, all_time_s=all_time_s)
    return calculate_times(planned_time_s, run_time_s, total, good, net, productive, all_time_s=all_time_s)


def utilization(planned_time_s: float, all_time_s: float) -> float | None:
    """Planned production time / all time; None when all time is 0."""
    return _div(_non_negative("planned_time_s", planned_time_s), _non_negative("all_time_s", all_time_s))


def teep(oee: float | None, utilization: float | None) -> float | None:
    """TEEP = OEE x utilization; None when either is None."""
    if oee is None or utilization is None:
        return None
    return oee * utilization


def mtbf(run_time_s: float, failures: int) -> float | None:
    """Mean time between failures: run time / number of failures; None when there was no failure."""
    _non_negative("run_time_s", run_time_s)
    _non_negative("failures", failures)
    return run_time_s / failures if failures > 0 else None


def mttr(failure_downtime_s: float, failures: int) -> float | None:
    """Mean time to repair: failure downtime / number of failures; None when there was no failure."""
    _non_negative("failure_downtime_s", failure_downtime_s)
    _non_negative("failures", failures)
    return failure_downtime_s / failures if failures > 0 else None
