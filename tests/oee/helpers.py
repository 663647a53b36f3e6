"""Small builders for tests/oee."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from oee import StateInterval

UTC = ZoneInfo("UTC")
CHI = ZoneInfo("America/Chicago")
H = 3600.0
M = 60.0


def at(y, mo, d, h=0, mi=0, s=0, tz=UTC) -> float:
    return datetime(y, mo, d, h, mi, s, tzinfo=tz).timestamp()


def timeline(t0: float, *steps) -> list[StateInterval]:
    """Contiguous intervals from t0: steps are (seconds, state) or (seconds, state, fault_code)."""
    out = []
    t = t0
    for step in steps:
        seconds, state = step[0], step[1]
        fault = step[2] if len(step) > 2 else None
        out.append(StateInterval(t, t + seconds, state, fault))
        t += seconds
    return out
