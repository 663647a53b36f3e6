"""Time as epoch seconds (UTC) everywhere inside oee/; aware datetimes only at the edges."""
from __future__ import annotations

import math
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

UTC = timezone.utc


def to_epoch(value) -> float:
    """Epoch seconds from a float/int (returned as float) or a timezone-aware datetime.

    A naive datetime is refused: it does not say which instant it is. (db/ hands out aware UTC datetimes.)
    """
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()}: give a timezone-aware datetime or epoch seconds")
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected epoch seconds or an aware datetime, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"time must be finite, got {value}")
    return value


def from_epoch(t: float, tz: str | ZoneInfo | timezone = UTC) -> datetime:
    """An aware datetime in the given time zone (a name such as 'America/Chicago', or a tzinfo)."""
    return datetime.fromtimestamp(t, zone(tz))


def zone(tz) -> ZoneInfo | timezone:
    if isinstance(tz, str):
        return UTC if tz.upper() == "UTC" else ZoneInfo(tz)
    return tz


def check_range(start, end) -> tuple[float, float]:
    a, b = to_epoch(start), to_epoch(end)
    if b < a:
        raise ValueError(f"range end {b} is before its start {a}")
    return a, b
