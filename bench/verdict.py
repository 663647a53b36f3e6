"""One way for every benchmark to say whether it met its target: "met" or "MISSED by X", never a count of runs that
reads like a pass ("NOT met in 0 of 1" did)."""
from __future__ import annotations

BOUNDS = ("under", "at most", "at least")


def verdict(measured: float | None, target: float, unit: str = "", *, bound: str = "under", what: str = "") -> str:
    """`measured` against `target`: "met: 143 ms (target under 200 ms)" or "MISSED by 57 ms: 257 ms (target under
    200 ms)". `bound`: "under" (strictly less), "at most" or "at least". No figure is a miss, said as such."""
    if bound not in BOUNDS:
        raise ValueError(f"bound must be one of {BOUNDS}")
    space = " " if unit and not unit.startswith("%") else ""
    aim = f"target {bound} {_num(target)}{space}{unit}"
    label = f"{what}: " if what else ""
    if measured is None:
        return f"{label}MISSED: no figure ({aim})"
    ok = {"under": measured < target, "at most": measured <= target, "at least": measured >= target}[bound]
    if ok:
        return f"{label}met: {_num(measured)}{space}{unit} ({aim})"
    gap = abs(measured - target)
    by = f"by {_num(gap)}{space}{unit}" if gap else "(equal to it)"
    return f"{label}MISSED {by}: {_num(measured)}{space}{unit} ({aim})"


def all_met(verdicts: list[str]) -> str:
    """The one line a reader looks for: every target met, or how many missed."""
    missed = [v for v in verdicts if "MISSED" in v]
    return "VERDICT: every target met" if not missed else f"VERDICT: {len(missed)} of {len(verdicts)} targets MISSED"


def _num(x: float) -> str:
    if x == int(x):
        return f"{int(x):,}"
    return f"{x:,.3g}" if abs(x) < 10 else f"{x:,.1f}"
