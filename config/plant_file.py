"""The whole configuration as one document: the YAML (or JSON) file that GET /api/config/export writes and
POST /api/config/import and the settings page read. Validated whole before anything is saved: a file with any error
changes nothing, and every error is named by its path in the file ("machines[2].tags[0].role")."""
from __future__ import annotations

from config.fields import FieldErrors, ValidationError, text_field, unknown_fields
from config.plant_items import validate_calendar, validate_product, validate_reason, validate_site
from config.validation import validate_machine

DOCUMENT_VERSION = 1
DOCUMENT_KEYS = ("version", "sites", "products", "reason_codes", "calendars", "machines")


def _yaml_times(calendar):
    """YAML 1.1 reads an unquoted 14:00 as the sexagesimal number 840: give such times back as 'HH:MM'."""
    def fix(v):
        return f"{v // 60:02d}:{v % 60:02d}" if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1440 else v

    if not isinstance(calendar, dict) or not isinstance(calendar.get("shifts"), list):
        return calendar
    shifts = []
    for shift in calendar["shifts"]:
        if isinstance(shift, dict):
            shift = {**shift, "start": fix(shift.get("start")), "end": fix(shift.get("end"))}
            if isinstance(shift.get("breaks"), list):
                shift["breaks"] = [{**b, "start": fix(b.get("start"))} if isinstance(b, dict) else b
                                   for b in shift["breaks"]]
        shifts.append(shift)
    return {**calendar, "shifts": shifts}


def line_path(site: str, area: str, line: str) -> str:
    return f"{site}/{area}/{line}"


def validate_document(doc, *, known_lines: set[str] = frozenset(), stored_configs: dict[str, dict] | None = None,
                      known_calendars: set[str] = frozenset()) -> dict:
    """The whole configuration as exported: sites (with areas and lines), products, reason_codes, calendars,
    machines (with tags; line as 'Site/Area/Line'). Every error is named by its path in the document.
    known_lines: line paths already in the database; stored_configs: machine_id -> stored protocol_config (for
    passwords exported as '***'); known_calendars: calendar names already in the database. A line's or a
    machine's calendar is named, and must be in the file's calendars or the database's."""
    if not isinstance(doc, dict):
        raise ValidationError({"": "the file must hold a mapping with version, sites, products, reason_codes, "
                                   "calendars and machines"})
    errors = FieldErrors()
    unknown_fields(errors, doc, DOCUMENT_KEYS)
    version = doc.get("version", DOCUMENT_VERSION)
    if version != DOCUMENT_VERSION:
        errors.add("version", f"this app reads version {DOCUMENT_VERSION} files, not {version!r}")
    out: dict = {"version": DOCUMENT_VERSION, "sites": [], "products": [], "reason_codes": [], "calendars": [],
                 "machines": []}
    lines = set(known_lines)

    def items(key: str) -> list:
        value = doc.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            errors.add(key, "must be a list")
            return []
        return value

    def unique(key: str, i: int, value, seen: dict, what: str) -> None:
        if value is None:
            return
        if value in seen:
            errors.add(f"{key}[{i}]", f"{what} {value!r} is already {key}[{seen[value]}]")
        seen.setdefault(value, i)

    listed = doc.get("calendars") if isinstance(doc.get("calendars"), list) else []  # else named by items()
    calendar_names = set(known_calendars) | {c.get("name").strip() for c in listed
                                             if isinstance(c, dict) and isinstance(c.get("name"), str)}

    def calendar_named(path: str, value) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or value.strip() not in calendar_names:
            known = ", ".join(repr(n) for n in sorted(calendar_names)[:10]) or "none"
            errors.add(path, f"{value!r} is not a calendar of this file or the database (there are: {known}); "
                             "name one of them, or null")
            return None
        return value.strip()

    site_names: dict = {}
    for i, site in enumerate(items("sites")):
        try:
            clean = validate_site({k: v for k, v in site.items() if k != "areas"} if isinstance(site, dict) else site)
        except ValidationError as exc:
            errors.absorb(exc, f"sites[{i}].")
            continue
        unique("sites", i, clean["name"], site_names, "site")
        clean["areas"] = []
        areas = site.get("areas") or []
        if not isinstance(areas, list):
            errors.add(f"sites[{i}].areas", "must be a list")
            areas = []
        area_names: dict = {}
        for j, area in enumerate(areas):
            p = f"sites[{i}].areas[{j}]"
            if not isinstance(area, dict):
                errors.add(p, "must be a mapping with name and lines")
                continue
            unknown_fields(errors, area, ("name", "lines"), where=f" in {p}")
            name = text_field(_sub := FieldErrors(p + "."), area, "name", max_len=100, what="the area's name")
            errors.fields.update(_sub.fields)
            unique(f"sites[{i}].areas", j, name, area_names, "area")
            line_list = area.get("lines") or []
            if not isinstance(line_list, list):
                errors.add(p + ".lines", "must be a list")
                line_list = []
            clean_lines, line_names = [], {}
            for k, ln in enumerate(line_list):
                lp = f"{p}.lines[{k}]"
                if isinstance(ln, str):
                    ln = {"name": ln}
                if not isinstance(ln, dict):
                    errors.add(lp, "must be a line name or a mapping with name and calendar")
                    continue
                unknown_fields(errors, ln, ("name", "calendar"), where=f" in {lp}")
                lname = text_field(_sub := FieldErrors(lp + "."), ln, "name", max_len=100, what="the line's name")
                errors.fields.update(_sub.fields)
                unique(f"{p}.lines", k, lname, line_names, "line")
                calendar = calendar_named(f"{lp}.calendar", ln.get("calendar"))
                if lname and name:
                    clean_lines.append({"name": lname, "calendar": calendar})
                    lines.add(line_path(clean["name"], name, lname))
            clean["areas"].append({"name": name, "lines": clean_lines})
        out["sites"].append(clean)

    for key, fn, natural in (("products", validate_product, "code"), ("reason_codes", validate_reason, "code"),
                             ("calendars", validate_calendar, "name")):
        seen: dict = {}
        for i, item in enumerate(items(key)):
            if key == "calendars":
                item = _yaml_times(item)
            try:
                clean = fn(item)
            except ValidationError as exc:
                errors.absorb(exc, f"{key}[{i}].")
                continue
            unique(key, i, clean[natural], seen, natural)
            out[key].append(clean)

    seen_machines: dict = {}
    for i, machine in enumerate(items("machines")):
        p = f"machines[{i}]."
        if not isinstance(machine, dict):
            errors.add(f"machines[{i}]", "must be a mapping with the machine's fields")
            continue
        line = machine.get("line")
        body = {k: v for k, v in machine.items() if k != "line"}
        stored = (stored_configs or {}).get(machine.get("machine_id"))
        if line is not None:
            if not isinstance(line, str):
                errors.add(p + "line", "the line as 'Site/Area/Line', or null")
            elif line not in lines:
                errors.add(p + "line", f"{line!r} is neither in this file's sites nor in the database; write it as "
                                       "'Site/Area/Line'")
        if isinstance(machine.get("machine_id"), str):
            unique("machines", i, machine["machine_id"], seen_machines, "machine_id")
        calendar = calendar_named(p + "calendar", machine.get("calendar"))
        try:
            clean = validate_machine({**body, "calendar": None}, stored_config=stored)
        except ValidationError as exc:
            errors.absorb(exc, p)
            continue
        clean["calendar"] = calendar
        clean["line"] = line
        clean.setdefault("tags", [])
        out["machines"].append(clean)
    errors.raise_if_any("the configuration file has errors")
    return out
