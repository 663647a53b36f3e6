"""Time ranges of the pages, kept in the URL so that any view can be bookmarked: the query arguments, parsed and
resolved to a start and an end (the picker that edits them is components/range_picker.py).

URL query arguments (every page reads the same ones):
    range    hour | shift | today | yesterday | 7d | custom (default: the page's, usually shift)
    start, end
             custom range: plant-local 'YYYY-MM-DDTHH:MM' (no offset = the plant's time zone), an ISO time with
             an offset or Z, or epoch seconds or milliseconds; either alone implies range=custom
    from, to Grafana's ${__from} / ${__to} (epoch milliseconds, or now / now-6h): the same as start / end
    machine, line
             the scope (machine_id; line id or name)
    bucket   hour | shift | day (trends)
    refresh  seconds between updates (30, 30s, 1m, 5m; 0 or off: none)
    embed    1: no navigation and no controls (Grafana iframes, kiosks)
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from components.format import range_text, zone
from db import range_limits

PRESETS = {"hour": "Last hour", "shift": "This shift", "today": "Today", "yesterday": "Yesterday",
           "7d": "Last 7 days", "custom": "Custom"}
KEYS = ("range", "start", "end", "machine", "line", "bucket", "category", "min", "minor", "q", "quality", "date",
        "shift", "refresh", "embed")
BUCKETS = ("hour", "shift", "day")
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"
MIN_REFRESH_S = 2


@dataclass(frozen=True)
class Range:
    preset: str
    start: float
    end: float
    label: str  # 'This shift (B)', 'Today', ...
    text: str  # 'Sat 28 Nov 06:00 – 10:35 CST'
    note: str = ""  # what the page should say about it: a clamp, a missing calendar
    shift: dict | None = None
    requested_start: float | None = None  # before the clamp to the start of the data


# --- parsing ------------------------------------------------------------------------------------------------------


def _first(value):
    if isinstance(value, (list, tuple)):
        return value[0] if value else None
    return value


def parse_time(raw, tz: str | None, now: float | None = None) -> float | None:
    """Epoch seconds from epoch seconds or milliseconds, 'now', 'now-6h' (Grafana), an ISO time with an offset,
    or a local time without one (the plant's zone). None when empty or not a time."""
    raw = _first(raw)
    if raw is None:
        return None
    text = str(raw).strip()
    if not text:
        return None
    now = time.time() if now is None else now
    m = re.fullmatch(r"now(?:-(\d{1,12})([smhdw]))?(?:/[dw])?", text)
    if m:
        if not m.group(1):
            return now
        unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]
        return now - int(m.group(1)) * unit
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        value = number / 1000.0 if number > 1e11 else number
        return None if range_limits.time_problem(value) else value
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
        if value.tzinfo is None:
            value = value.replace(tzinfo=zone(tz))
        return value.timestamp()
    except (ValueError, OverflowError):  # not a time, or one datetime cannot place (year 1 west of Greenwich)
        return None


def parse_refresh(raw, default: int | None) -> int | None:
    """Seconds between refreshes from '30', '30s', '1m', '5m'; 0 / off / false: None (no refresh)."""
    raw = _first(raw)
    if raw is None or str(raw).strip() == "":
        return default
    text = str(raw).strip().lower()
    if text in ("0", "off", "false", "no", "none"):
        return None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|m|h)?", text)
    if not m:
        return default
    seconds = float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]
    return max(MIN_REFRESH_S, int(seconds))


def is_embed(query: dict) -> bool:
    return str(_first(query.get("embed")) or "").lower() in ("1", "true", "yes", "on")


def normalize(query: dict | None, default_range: str = "shift") -> dict:
    """The known arguments of a query as plain strings; from/to become start/end; start or end without a range
    means a custom range; an unknown range falls back to the default."""
    query = dict(query or {})
    out: dict = {}
    for k in KEYS:
        v = _first(query.get(k))
        if v is not None and str(v) != "":
            out[k] = str(v)
    if "from" in query and "start" not in out and _first(query.get("from")):
        out["start"] = str(_first(query["from"]))
    if "to" in query and "end" not in out and _first(query.get("to")):
        out["end"] = str(_first(query["to"]))
    if out.get("range") not in PRESETS:
        out["range"] = "custom" if ("start" in out or "end" in out) else default_range
    if out["range"] != "custom":
        out.pop("start", None)
        out.pop("end", None)
    if out.get("bucket") not in BUCKETS:
        out.pop("bucket", None)
    return out


def search_of(query: dict, drop: tuple = ()) -> str:
    """The URL query string of a normalized query ('' when empty), keys in a fixed order."""
    items = [(k, query[k]) for k in KEYS if k in query and k not in drop and query[k] not in (None, "")]
    return "?" + urlencode(items) if items else ""


def resolve(query: dict, *, tz: str, now: float, shift: dict | None = None, data_start: float | None = None,
            default_range: str = "shift") -> Range:
    """[start, end) of a normalized query. shift: the scope's current (or last) shift from its calendar;
    data_start: when the scope's data begins (the start is clamped to it, and the page says so)."""
    q = normalize(query, default_range)
    preset = q["range"]
    z = zone(tz)
    local_now = datetime.fromtimestamp(now, z)
    midnight = datetime.combine(local_now.date(), datetime.min.time(), tzinfo=z).timestamp()
    note = ""
    label = PRESETS[preset]
    if preset == "hour":
        start, end = now - 3600, now
    elif preset == "today":
        start, end = midnight, now
    elif preset == "yesterday":
        day = local_now.date() - timedelta(days=1)
        start = datetime.combine(day, datetime.min.time(), tzinfo=z).timestamp()
        end = midnight
    elif preset == "7d":
        start, end = now - 7 * 86400, now
    elif preset == "shift":
        if shift is None:
            start, end = midnight, now
            note = "No shift calendar: showing today."
            label = "Today"
        elif shift.get("current", True):
            start, end = shift["start"], min(shift["end"], now)
            label = f"This shift ({shift['name']})"
        else:
            start, end = shift["start"], shift["end"]
            label = f"Last shift ({shift['name']})"
            note = f"No shift is running now: showing the last one ({shift['name']})."
    else:
        end = parse_time(q.get("end"), tz, now)
        start = parse_time(q.get("start"), tz, now)
        end = now if end is None else end
        start = end - 86400 if start is None else start
        if end <= start:
            start, end = end - 3600, end
            note = "The custom range was empty or inverted: showing the hour before its end."
    # The check every range goes through, the API's too (db/range_limits.py): where the API answers 400, a page
    # shows the nearest range it answers and says why.
    try:
        range_limits.check(start, end, "page", now=now, first_data=data_start)
    except range_limits.RangeRefused as exc:
        start, end = exc.nearest
        note = f"{note} {exc.message}".strip()
    requested = start
    if data_start is not None and start < data_start < end:
        start = data_start
        begins = datetime.fromtimestamp(data_start, z).strftime("%a %H:%M")
        clamp = f"Data begins {begins}: earlier time is not counted."
        note = f"{note} {clamp}".strip()
    return Range(preset, start, end, label, range_text(start, end, tz), note, shift, requested)


def local_input(t: float, tz: str) -> str:
    return datetime.fromtimestamp(t, zone(tz)).strftime(LOCAL_FORMAT)


def scope_of(query: dict) -> tuple[str | None, str | None]:
    """('machine', id) or ('line', id) from a query; (None, None) for the whole plant."""
    if query.get("machine"):
        return "machine", query["machine"]
    if query.get("line"):
        return "line", query["line"]
    return None, None
