"""Validation of the rest of the plant: sites, areas, lines, products, reason codes and shift calendars, for the
settings pages, /api/config/ and the YAML import."""
from __future__ import annotations

import math
from datetime import time

from config.fields import (
    FieldErrors,
    boolean_field,
    calendar_ref,
    integer_field,
    number_field,
    object_of,
    parse_hhmm,
    text_field,
    timezone_ok,
    unknown_fields,
)
from db.models import LOSS_CATEGORIES, PLANNED_CATEGORIES


def validate_site(data) -> dict:
    errors = FieldErrors()
    data = object_of(errors, data, "body") or {}
    unknown_fields(errors, data, ("name", "timezone", "micro_stop_threshold_s"), {"id", "areas"})
    out = {"name": text_field(errors, data, "name", max_len=100, what="the site's name")}
    tz = data.get("timezone", "UTC")
    if not timezone_ok(tz):
        errors.add("timezone", f"{tz!r} is not a time zone; use an IANA name such as Europe/Berlin, "
                               "America/Chicago or UTC")
    out["timezone"] = tz
    out["micro_stop_threshold_s"] = number_field(
        errors, data, "micro_stop_threshold_s", default=None, lo=0.0, hi=86400.0,
        what=" seconds: its machines' default (stops shorter are minor stops; 0: none), or null for 120 s")
    errors.raise_if_any()
    return out


def validate_area(data) -> dict:
    errors = FieldErrors()
    data = object_of(errors, data, "body") or {}
    unknown_fields(errors, data, ("name", "site"), {"id", "site_name", "lines"})
    out = {"name": text_field(errors, data, "name", max_len=100, what="the area's name"),
           "site": integer_field(errors, data, "site", 1, 2**31 - 1, what=" (the id of a site)")}
    if data.get("site") is None:
        errors.add("site", "required: the id of the site this area belongs to")
    errors.raise_if_any()
    return out


def validate_line(data) -> dict:
    errors = FieldErrors()
    data = object_of(errors, data, "body") or {}
    unknown_fields(errors, data, ("name", "area", "calendar"), {"id", "area_name", "site_name", "path"})
    out = {"name": text_field(errors, data, "name", max_len=100, what="the line's name"),
           "area": integer_field(errors, data, "area", 1, 2**31 - 1, what=" (the id of an area)"),
           "calendar": calendar_ref(errors, data, "its machines' shift calendar")}
    if data.get("area") is None:
        errors.add("area", "required: the id of the area this line belongs to")
    errors.raise_if_any()
    return out


def validate_product(data) -> dict:
    errors = FieldErrors()
    data = object_of(errors, data, "body") or {}
    unknown_fields(errors, data, ("code", "name", "ideal_cycle_time_s"), {"id"})
    out = {"code": text_field(errors, data, "code", max_len=64, what="the product code"),
           "name": text_field(errors, data, "name", max_len=200, min_len=0, required=False, default="", what="a name")}
    ict = data.get("ideal_cycle_time_s")
    expected = "seconds per unit at full speed, above 0 and at most 86400"
    if ict is None:
        errors.add("ideal_cycle_time_s", f"required: {expected}")
    elif isinstance(ict, bool) or not isinstance(ict, (int, float)) or not math.isfinite(ict) or not 0 < ict <= 86400:
        errors.add("ideal_cycle_time_s", f"{ict!r}: {expected}")
    out["ideal_cycle_time_s"] = float(ict) if "ideal_cycle_time_s" not in errors.fields else None
    errors.raise_if_any()
    return out


def validate_reason(data) -> dict:
    errors = FieldErrors()
    data = object_of(errors, data, "body") or {}
    unknown_fields(errors, data, ("code", "name", "planned", "loss_category"), {"id"})
    out = {"code": text_field(errors, data, "code", max_len=64, what="the reason code"),
           "name": text_field(errors, data, "name", max_len=200, what="the reason's name"),
           "planned": boolean_field(errors, data, "planned", False)}
    category = data.get("loss_category")
    allowed = PLANNED_CATEGORIES if out["planned"] else LOSS_CATEGORIES
    if category is None:
        errors.add("loss_category", f"required: one of {', '.join(allowed)}")
    elif category not in allowed:
        other = LOSS_CATEGORIES if out["planned"] else PLANNED_CATEGORIES
        if category in other:
            errors.add("loss_category", f"{category} is a {'loss' if out['planned'] else 'planned'} category but "
                                        f"planned is {str(out['planned']).lower()}; use one of {', '.join(allowed)}")
        else:
            errors.add("loss_category", f"{category!r} is not a category; use one of {', '.join(allowed)}")
    out["loss_category"] = category
    errors.raise_if_any()
    return out


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


def validate_calendar(data) -> dict:
    """A shift calendar: name, timezone, shifts [{name, start 'HH:MM', end 'HH:MM', weekdays '01234',
    breaks [{name, start 'HH:MM', duration_s}]}]."""
    errors = FieldErrors()
    data = object_of(errors, data, "body") or {}
    unknown_fields(errors, data, ("name", "timezone", "shifts"), {"id"})
    out = {"name": text_field(errors, data, "name", max_len=100, what="the calendar's name")}
    tz = data.get("timezone", "UTC")
    if not timezone_ok(tz):
        errors.add("timezone", f"{tz!r} is not a time zone; use an IANA name such as Europe/Berlin or UTC")
    out["timezone"] = tz
    shifts = data.get("shifts", [])
    if not isinstance(shifts, list):
        errors.add("shifts", "must be a list of shifts")
        shifts = []
    out["shifts"], seen = [], {}
    for i, shift in enumerate(shifts):
        p = f"shifts[{i}]."
        if not isinstance(shift, dict):
            errors.add(f"shifts[{i}]", "must be an object with name, start, end")
            continue
        sub = FieldErrors(p)
        unknown_fields(sub, shift, ("name", "start", "end", "weekdays", "breaks"), {"id"})
        name = text_field(sub, shift, "name", max_len=64, what="the shift's name")
        if name and name in seen:
            sub.add("name", f"{name!r} is already shifts[{seen[name]}]; shift names are unique in a calendar")
        if name:
            seen.setdefault(name, i)
        start, end = parse_hhmm(shift.get("start")), parse_hhmm(shift.get("end"))
        if start is None:
            sub.add("start", f"expected a time of day 'HH:MM' (24 h), not {shift.get('start')!r}")
        if end is None:
            sub.add("end", f"expected a time of day 'HH:MM' (24 h), not {shift.get('end')!r}")
        if start is not None and end is not None and start == end:
            sub.add("end", "the shift must not end when it starts (a shift ending earlier than it starts crosses "
                           "midnight)")
        weekdays = shift.get("weekdays", "0123456")
        if (not isinstance(weekdays, str) or not weekdays or not set(weekdays) <= set("0123456")
                or len(set(weekdays)) != len(weekdays)):
            sub.add("weekdays", f"{weekdays!r}: the days it runs as digits, Monday = 0 ... Sunday = 6, each once, "
                                "e.g. '01234' for Monday to Friday")
        else:
            weekdays = "".join(sorted(weekdays))
        breaks_in = shift.get("breaks", [])
        breaks = []
        if not isinstance(breaks_in, list):
            sub.add("breaks", "must be a list of breaks")
            breaks_in = []
        for j, brk in enumerate(breaks_in):
            bp = FieldErrors(f"{p}breaks[{j}].")
            if not isinstance(brk, dict):
                sub.add(f"breaks[{j}]", "must be an object with name, start, duration_s")
                continue
            unknown_fields(bp, brk, ("name", "start", "duration_s"), {"id"})
            bname = text_field(bp, brk, "name", max_len=64, required=False, default="Break", what="the break's name")
            bstart = parse_hhmm(brk.get("start"))
            if bstart is None:
                bp.add("start", f"expected a time of day 'HH:MM' (24 h), not {brk.get('start')!r}")
            if brk.get("duration_s") is None:
                bp.add("duration_s", "required: the break's length in seconds, 60 to 28800")
            duration = integer_field(bp, brk, "duration_s", 60, 28800, what=" seconds")
            if bstart is not None and duration and start is not None and end is not None:
                length = (_minutes(end) - _minutes(start)) % 1440
                into = (_minutes(bstart) - _minutes(start)) % 1440
                if into * 60 + duration > length * 60:
                    bp.add("start", f"the break {bstart:%H:%M} + {duration // 60} min does not fit in the shift "
                                    f"{start:%H:%M}-{end:%H:%M}")
            errors.fields.update({k: v for k, v in bp.fields.items() if k not in errors.fields})
            breaks.append({"name": bname, "start": bstart.strftime("%H:%M") if bstart else None,
                           "duration_s": duration})
        errors.fields.update({k: v for k, v in sub.fields.items() if k not in errors.fields})
        out["shifts"].append({"name": name, "start": start.strftime("%H:%M") if start else None,
                              "end": end.strftime("%H:%M") if end else None, "weekdays": weekdays,
                              "breaks": breaks})
    errors.raise_if_any()
    return out
