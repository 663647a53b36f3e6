"""The one reader of query parameters for the API (/api) and the CSV exports (/export): text, times, ranges and
scopes, each checked once, each error a 400 in the API's shape naming the parameter and what to give instead.

Times are ISO 8601 (an offset or Z; without one UTC) or epoch seconds, between 1970 and 9999. A range goes
through db.range_limits.check (the check the pages use too): not more than a day after now, not ending before
the first recorded data, not wider than its kind allows.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

from api import ApiError, bad_request
from db import range_limits
from db.types import text_problem

MAX_TEXT = 200  # a name, a machine_id, a filter: the longest the database holds is 200
DEFAULT_RANGE_S = 24 * 3600
SCOPES = ("machine", "line", "area", "site")
SCOPE_HINT = "exactly one of machine (its machine_id), line, area or site (name or id)"
MAX_ROW_ID = 2**31 - 1  # the tables' INTEGER ids; SQLite cannot even bind an integer past 64 bits (a 500)


def row_id(raw: str) -> int | None:
    """A row id from a path or a list (whole digits, at most MAX_ROW_ID); None when it cannot be one."""
    if raw.isascii() and raw.isdigit() and len(raw) <= 10 and int(raw) <= MAX_ROW_ID:
        return int(raw)
    return None


def unknown(args, allowed, path: str) -> None:
    extra = sorted(set(args) - set(allowed))
    if extra:
        raise bad_request(f"unknown parameter{'s' if len(extra) > 1 else ''}: {', '.join(extra)}",
                          {u: f"not a parameter of {path}; use {', '.join(sorted(allowed))}" for u in extra})


def text(args, name: str, *, max_len: int = MAX_TEXT) -> str | None:
    """The parameter's text (stripped), None when absent or empty; refused when the database cannot hold it."""
    raw = args.get(name)
    if raw is None:
        return None
    problem = text_problem(raw, max_len)
    if problem:
        raise bad_request(f"{name}: {problem}", {name: problem})
    return raw.strip() or None


def when(args, name: str) -> float | None:
    """Epoch seconds from ISO 8601 or epoch seconds; None when absent or empty."""
    raw = text(args, name, max_len=64)
    if raw is None:
        return None
    expected = "an ISO 8601 time such as 2026-11-28T06:00:00Z or 2026-11-28T06:00-06:00, or epoch seconds"
    try:
        value = float(raw)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=timezone.utc)
            value = parsed.timestamp()
        except (ValueError, OverflowError):
            raise bad_request(f"{name}: {raw!r} is not a time", {name: expected}) from None
    problem = range_limits.time_problem(value)
    if problem:
        raise bad_request(f"{name}: {raw!r} is not {problem}", {name: problem}) from None
    return value


def _times(args) -> tuple[float | None, float | None]:
    """(end, start), each bad one named in one answer."""
    fields, message, out = {}, [], {}
    for name in ("start", "end"):
        try:
            out[name] = when(args, name)
        except ApiError as exc:
            fields.update(exc.fields)
            message.append(exc.message)
    if fields:
        raise bad_request("; ".join(message), fields)
    return out["end"], out["start"]


def time_range(args, kind: str, *, store=None, required: bool = True,
               default_s: float = DEFAULT_RANGE_S) -> tuple[float | None, float | None]:
    """start and end, checked by db.range_limits for this kind (its docstring lists the kinds and their limits).
    required: default end now and start default_s before it; else either may be None (an open filter), and the
    check covers what is given. store: for the first recorded data (kinds that read machine data)."""
    end, start = _times(args)
    now = time.time()
    if required:
        end = now if end is None else end
        start = end - default_s if start is None else start
    if start is None or end is None:  # an open filter: only the future bound applies to what is given
        for name, value in (("start", start), ("end", end)):
            if value is not None and value > now + range_limits.FUTURE_S:
                message = (f"{name}: {range_limits.iso(value)} is more than a day after now "
                           f"({range_limits.iso(now)}); leave it out or give an earlier time")
                raise bad_request(message, {name: message})
        return start, end
    first = range_limits.first_data(store) if store is not None and kind in range_limits.NEEDS_DATA else None
    try:
        range_limits.check(start, end, kind, now=now, first_data=first)
    except range_limits.RangeRefused as exc:
        raise bad_request(exc.message, exc.fields) from None
    return start, end


def scope(args, *, required: bool = True) -> tuple[str, str] | None:
    """(scope, key) from exactly one of machine, line, area, site; None when none is given and not required."""
    given = [s for s in SCOPES if text(args, s)]
    if len(given) > 1 or (required and not given):
        raise bad_request("give exactly one of machine, line, area or site" if required else
                          "give at most one of machine, line, area or site (none: the whole plant)",
                          {s: SCOPE_HINT for s in (given or SCOPES)})
    return (given[0], text(args, given[0])) if given else None
