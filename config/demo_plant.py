"""The demo plant's configuration: its hierarchy, machines, connections, tags, products, shift calendars, state
codes and reason codes, written at every start of the demo (the simulated PLCs' ports can change between runs).

The demo is never privileged: it is configured as a configuration file a user could import (config.plant_file
validates it, config.store.import_document writes it in one transaction with one audit entry), so everything a
demo machine is set to (a calendar, state codes, a product's ideal cycle time) a user can set the same way.
"""
from __future__ import annotations

from sqlalchemy.engine import Engine

from config import store as cs
from config.plant_file import line_path, validate_document
from config.validation import TAG_FIELDS

DEMO_STATE_CODES = "demo"  # the simulated PLCs' State, 1 running ... 6 changeover: the wizard's preset of that name


def _hhmm(t) -> str:
    return t if isinstance(t, str) else t.strftime("%H:%M")


def _calendar_entry(name: str, cal: dict) -> dict:
    return {"name": name, "timezone": cal["timezone"], "shifts": [
        {"name": sh["name"], "start": _hhmm(sh["start"]), "end": _hhmm(sh["end"]),
         "weekdays": sh.get("weekdays", "0123456"),
         "breaks": [{"name": b["name"], "start": _hhmm(b["start"]), "duration_s": int(b["duration_s"])}
                    for b in sh.get("breaks", [])]} for sh in cal["shifts"]]}


def _apply(engine: Engine, doc: dict, *, backend: str, credentials=None) -> None:
    """Validate and import a document as POST /api/config/import does (nothing when it names nothing)."""
    if not any(doc[k] for k in ("sites", "products", "reason_codes", "calendars", "machines")):
        return
    clean = validate_document(doc, **cs.import_context(engine))
    cs.import_document(engine, clean, backend=backend, credentials=credentials)


def _empty_document(engine: Engine) -> tuple[dict, dict]:
    current = cs.export_document(engine)
    return current, {"version": current["version"], "sites": [], "products": [], "reason_codes": [], "calendars": [],
                     "machines": []}


def sync_demo_plant(engine: Engine, site: dict, endpoints: list[dict], products: list[dict],
                    calendars: dict[str, dict] | None = None, machine_calendars: dict[str, str] | None = None,
                    credentials=None, backend: str | None = None) -> dict[str, int]:
    """Create or update the demo plant's hierarchy, machines (with their connection, tags, calendar and state
    codes), products and calendars, as one imported document. Returns machine_id -> id. credentials: seals any
    secret of an endpoint's protocol_config (a secret cannot be stored without it, as through the API).

    Ports of the simulated PLCs can change between runs (free ports), so connections and tags are written every
    start; what a user changed of a demo machine otherwise (its line, threshold, fault table, enabled) is kept, and
    so are calendars, areas and lines that exist. A missing calendar is made and given to its machines
    (machine_calendars: machine_id -> calendar name); without calendars (a time-scaled plant runs a faster clock of
    its own) the machines have none. Products take the given ideal cycle times (they follow the time scale).
    """
    backend = backend or engine.dialect.name
    current, doc = _empty_document(engine)
    site_entry = next((s for s in current["sites"] if s["name"] == site["name"]), None) or {
        "name": site["name"], "timezone": site.get("timezone", "UTC"), "areas": []}
    for ep in endpoints:  # the areas and lines the endpoints stand in, kept as they are where they exist
        area = next((a for a in site_entry["areas"] if a["name"] == ep["area"]), None)
        if area is None:
            area = {"name": ep["area"], "lines": []}
            site_entry["areas"].append(area)
        if not any(ln["name"] == ep["line"] for ln in area["lines"]):
            area["lines"].append({"name": ep["line"], "calendar": None})
    doc["sites"] = [site_entry]
    doc["products"] = [{"code": str(p["code"]), "name": p.get("name", ""),
                        "ideal_cycle_time_s": float(p["ideal_cycle_time"])} for p in products]
    known = {c["name"] for c in current["calendars"]}
    doc["calendars"] = [_calendar_entry(name, cal) for name, cal in (calendars or {}).items() if name not in known]
    stored = {m["machine_id"]: m for m in current["machines"]}
    for ep in endpoints:
        connection = {"protocol": ep["protocol"], "ip_address": ep["host"], "port": ep["port"],
                      "protocol_config": ep.get("protocol_config", {}),
                      "calendar": (machine_calendars or {}).get(ep["machine_id"]) if calendars else None,
                      "tags": [{k: v for k, v in t.items() if k in TAG_FIELDS} for t in ep["tags"]]}
        if ep["machine_id"] in stored:
            doc["machines"].append({**stored[ep["machine_id"]], **connection})
        else:
            doc["machines"].append({
                "machine_id": ep["machine_id"], "name": ep.get("name") or ep["machine_id"], "description": "simulated",
                "line": line_path(site["name"], ep["area"], ep["line"]),
                "poll_interval_ms": ep.get("poll_interval_ms", 1000), "state_code_map": DEMO_STATE_CODES,
                **connection})
    _apply(engine, doc, backend=backend, credentials=credentials)
    return {ep["machine_id"]: cs.find_machine(engine, ep["machine_id"]) for ep in endpoints}


def ensure_reason_codes(engine: Engine, reasons: list[dict], *, backend: str | None = None) -> int:
    """Create the reason codes ({code, name, loss_category, planned}) that do not exist yet, as an imported
    document; a code that exists is left as it is (users may have edited it). Returns how many were created."""
    current, doc = _empty_document(engine)
    known = {r["code"] for r in current["reason_codes"]}
    doc["reason_codes"] = [{"code": str(r["code"]), "name": r["name"], "loss_category": r["loss_category"],
                            "planned": bool(r.get("planned", False))} for r in reasons if str(r["code"]) not in known]
    _apply(engine, doc, backend=backend or engine.dialect.name)
    return len(doc["reason_codes"])
