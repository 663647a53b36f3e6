"""How numbers, durations and times read on every page: one place, so that the same value always looks the same."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# State colours: the same on tiles, timelines and legends; colour-blind safe enough to tell running from stopped,
# and every place that uses a colour also writes the state's name.
STATE_COLORS = {
    "running": "#2e9d4f",
    "idle": "#f0b429",
    "blocked": "#e07b24",
    "faulted": "#d64545",
    "planned_stop": "#4a7fc1",
    "changeover": "#8e6cc9",
    "offline": "#5c6670",
    "unknown": "#aab2ba",
}
# The text on a state's colour (pills): dark where white would read under 4.5:1 (WCAG AA).
STATE_TEXT_COLORS = {state: "#fff" if state == "offline" else "#000" for state in STATE_COLORS}
STATE_LABELS = {
    "running": "Running",
    "idle": "Idle (starved)",
    "blocked": "Blocked",
    "faulted": "Faulted",
    "planned_stop": "Planned stop",
    "changeover": "Changeover",
    "offline": "Offline",
    "unknown": "Unknown",
}
STATE_ORDER = tuple(STATE_COLORS)
FACTOR_COLORS = {"oee": "#1f4e79", "availability": "#2e9d4f", "performance": "#e07b24", "quality": "#4a7fc1",
                 "planned": "#9aa5b1", "level": "#1f4e79"}


def zone(tz: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(tz or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def pct(value, digits: int = 1, none: str = "—") -> str:
    """A fraction as a percentage: 0.8734 -> '87.3 %'. None (a zero denominator) -> '—'."""
    if value is None:
        return none
    return f"{value * 100:.{digits}f} %"


def pct_number(value, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}"


def count(value) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}"


def duration(seconds, none: str = "—") -> str:
    """Seconds in the units that fit their size: '3 s', '2 min 5 s', '1 h 20 min', '2 d 4 h' (the smaller unit left
    out when it is zero: '5 min', '2 h')."""
    if seconds is None:
        return none
    s = max(float(seconds), 0.0)
    if round(s) < 60:
        return f"{s:.0f} s"
    if round(s) < 3600:
        m, rest = divmod(int(round(s)), 60)
        return f"{m} min {rest} s" if rest else f"{m} min"
    if round(s / 60) < 1440:
        h, m = divmod(int(round(s / 60)), 60)
        return f"{h} h {m} min" if m else f"{h} h"
    d, h = divmod(int(round(s / 3600)), 24)
    return f"{d} d {h} h" if h else f"{d} d"


def plural(n, one: str, many: str | None = None) -> str:
    """'1 stop', '3 stops', '1,204 entries' (many defaults to one + 's')."""
    word = one if n == 1 else (many or one + "s")
    return f"{count(n)} {word}"


def product(code, names: dict | None = None) -> str:
    """'Cola 0.5 L (104)': a product by its name, the code after; 'product 104' when it has no name."""
    if code is None or code == "":
        return "—"
    name = (names or {}).get(str(code))
    return f"{name} ({code})" if name else f"product {code}"


def local(t: float | None, tz: str | None, fmt: str = "%H:%M") -> str:
    if t is None:
        return "—"
    return datetime.fromtimestamp(t, zone(tz)).strftime(fmt)


def local_iso(t: float, tz: str | None) -> str:
    """A naive local ISO time for Plotly's date axes: the axis then reads in the plant's time, whatever the
    browser's zone."""
    return datetime.fromtimestamp(t, zone(tz)).replace(tzinfo=None).isoformat(timespec="milliseconds")


def range_text(start: float, end: float, tz: str | None) -> str:
    """'Sat 28 Nov 06:00 – 14:00 CST' or, across days, 'Fri 27 Nov 06:00 – Sat 28 Nov 06:00 CST'."""
    z = zone(tz)
    a, b = datetime.fromtimestamp(start, z), datetime.fromtimestamp(end, z)
    left = a.strftime("%a %d %b %H:%M")
    same_day = a.date() == b.date() or (b - a).total_seconds() < 60
    right = b.strftime("%H:%M") if same_day else b.strftime("%a %d %b %H:%M")
    return f"{left} – {right} {b.tzname()}"


def ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 1:
        return "now"
    return f"{duration(seconds)} ago"
