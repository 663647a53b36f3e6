"""The plant's configuration in the database: machines with their connection and tags, the hierarchy, products,
reason codes and shift calendars; export and import of all of it as one document.

Input reaching these functions has been through config.validation (the one validation module); what only the
database can tell (is line 7 there, is LINE-017 taken) is checked here, inside the same transaction as the write,
and raised as the same ValidationError naming the field. Every save is one transaction: a machine is stored with
its connection and all its tags, or not at all.

A machine of the wizard and the API has one connection (named after its machine_id) that carries ip_address,
port, protocol, protocol_config and the poll interval. Secrets in protocol_config are stored encrypted
(keys.credentials: the writes take `credentials`, and refuse a plain secret without them); protocol_config is
returned as stored, secrets as their encrypted envelopes: callers that show it (the API, the pages, the export)
pass it through config.validation.redact(), and only collectors.service and the collectors decrypt.

Every change writes its audit entry (db.audit: who, what, before and after, secrets masked) in its own
transaction, so that a change that fails leaves no entry.
"""
from __future__ import annotations

import time as _time
from contextlib import contextmanager
from datetime import time

from sqlalchemy import delete, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from config.fields import ValidationError, parse_hhmm
from config.plant_file import line_path
from db import audit
from db import machine_lifetime as lifetime
from db.machine_settings import EffectiveSettings, effective_settings
from db.models import (
    Area,
    Connection,
    DowntimeEvent,
    Line,
    Machine,
    MachineFaultCode,
    MachineState,
    PlannedDowntime,
    Product,
    ProductionCount,
    ReasonCode,
    Shift,
    ShiftBreak,
    ShiftCalendar,
    Site,
    Tag,
    samples,
)
from oee import DEFAULT_MICRO_STOP_THRESHOLD_S

PLAIN_ROLLUPS = ("samples_1m", "samples_1h")  # app-maintained tables outside TimescaleDB


class NotFound(LookupError):
    pass


# --- machines ----------------------------------------------------------------------------------------------------


def _line_names(session: Session) -> dict[int, str]:
    rows = session.execute(select(Line.id, Line.name, Area.name, Site.name).join(Area, Line.area_id == Area.id)
                           .join(Site, Area.site_id == Site.id)).all()
    return {lid: line_path(s, a, ln) for lid, ln, a, s in rows}


def _machine_dict(m: Machine, conn: Connection | None, tag_count: int, lines: dict[int, str],
                  calendars: dict[int, str], effective: EffectiveSettings) -> dict:
    return {
        "id": m.id, "machine_id": m.machine_id, "name": m.name, "description": m.description or "",
        "ip_address": conn.host if conn else None, "port": conn.port if conn else None,
        "protocol": conn.protocol if conn else None,
        "protocol_config": dict(conn.protocol_config or {}) if conn else {},
        "poll_interval_ms": conn.poll_interval_ms if conn else None,
        "line": m.line_id, "line_name": lines.get(m.line_id) if m.line_id else None,
        "enabled": bool(m.enabled and (conn.enabled if conn else True)),
        "connection_id": conn.id if conn else None, "tag_count": tag_count,
        **_settings_of(m, calendars),
        "effective_calendar": {"id": effective.calendar_id, "name": effective.calendar_name,
                               "from": effective.calendar_from, "text": effective.calendar_text()},
        "effective_micro_stop_threshold_s": {"value": effective.threshold(DEFAULT_MICRO_STOP_THRESHOLD_S),
                                             "from": effective.micro_stop_from},
    }


def _settings_of(m: Machine, calendars: dict[int, str]) -> dict:
    """The machine's own settings (None: inherited) as the API, the audit log and the file show them."""
    return {"calendar": calendars.get(m.calendar_id), "state_code_map": m.state_code_map or None,
            "ideal_cycle_time_s": m.ideal_cycle_time_s, "micro_stop_threshold_s": m.micro_stop_threshold_s,
            "fault_codes": [{"code": f.code, "text": f.text, "kind": f.kind}
                            for f in sorted(m.fault_codes, key=lambda f: f.code)]}


def _calendar_names(session: Session) -> dict[int, str]:
    return dict(session.execute(select(ShiftCalendar.id, ShiftCalendar.name)).all())


def _calendar_id(session: Session, ref, field: str = "calendar") -> int | None:
    """The id of a calendar given by name or id (None stays None). Raises ValidationError naming the field."""
    if ref is None:
        return None
    if isinstance(ref, int):
        if session.get(ShiftCalendar, ref) is not None:
            return ref
        raise ValidationError({field: f"no shift calendar with id {ref}; see /api/config/calendars/ for those there "
                                      "are, or give its name"})
    pk = session.scalar(select(ShiftCalendar.id).where(ShiftCalendar.name == ref))
    if pk is None:
        names = ", ".join(repr(n) for n in sorted(_calendar_names(session).values())[:10]) or "none yet"
        raise ValidationError({field: f"no shift calendar named {ref!r} (there are: {names}); make it on "
                                      "/settings/calendars/ or give one of those"})
    return pk


def _connection_of(session: Session, machine: Machine) -> Connection | None:
    conns = sorted(machine.connections, key=lambda c: (c.name != machine.machine_id, c.id))
    return conns[0] if conns else None


def endpoint_of(protocol: str, host, port, protocol_config: dict | None) -> tuple:
    """What a connection polls: host:port, and the unit (Modbus), rack and slot (S7), slot (EtherNet/IP) behind it;
    an OPC-UA endpoint by its URL (else host:port)."""
    from collectors.base import PROTOCOL_DEFAULT_PORTS

    c = protocol_config or {}
    if protocol == "OPCUA" and c.get("endpoint"):
        return (protocol, str(c["endpoint"]).rstrip("/").lower())
    base = (protocol, str(host or "").lower(), int(port or PROTOCOL_DEFAULT_PORTS.get(protocol, 0)))
    unit = {"MODBUS": (c.get("unit_id", 1),), "S7": (c.get("rack", 0), c.get("slot", 1)),
            "ETHERNET_IP": (c.get("slot", 0),)}.get(protocol, ())
    return base + tuple(unit)


def machines_polling(engine: Engine, protocol: str, host, port, protocol_config: dict | None,
                     except_pk: int | None = None) -> list[str]:
    """The ids of the other machines whose connection polls this endpoint (two machines on one PLC are fine when
    meant; the wizard says so before the second is saved)."""
    want = endpoint_of(protocol, host, port, protocol_config)
    with Session(engine) as session:
        rows = session.execute(select(Connection, Machine.machine_id, Machine.id)
                               .join(Machine, Connection.machine_id == Machine.id)
                               .where(Connection.protocol == protocol)).all()
    return sorted({mid for conn, mid, pk in rows if pk != except_pk
                   and endpoint_of(conn.protocol, conn.host, conn.port, conn.protocol_config) == want})


def list_machines(engine: Engine, *, offset: int = 0, limit: int = 50) -> tuple[int, list[dict]]:
    with Session(engine) as session:
        total = session.scalar(select(func.count()).select_from(Machine))
        machines = session.scalars(select(Machine).order_by(Machine.machine_id).offset(offset).limit(limit)).all()
        counts = dict(session.execute(select(Tag.machine_id, func.count()).group_by(Tag.machine_id)).all())
        lines, calendars = _line_names(session), _calendar_names(session)
        effective = effective_settings(session, [m.id for m in machines])
        return total, [_machine_dict(m, _connection_of(session, m), counts.get(m.id, 0), lines, calendars,
                                     effective[m.id]) for m in machines]


def get_machine(engine: Engine, pk: int) -> dict:
    with Session(engine) as session:
        m = session.get(Machine, pk)
        if m is None:
            raise NotFound(f"no machine with id {pk}")
        count = session.scalar(select(func.count()).select_from(Tag).where(Tag.machine_id == pk))
        return _machine_dict(m, _connection_of(session, m), count, _line_names(session), _calendar_names(session),
                             effective_settings(session, [pk])[pk])


def find_machine(engine: Engine, key: str | int) -> int:
    """The database id of a machine given as its id (17) or its machine_id (LINE-017). Raises NotFound."""
    with Session(engine) as session:
        if isinstance(key, int) or (str(key).isascii() and str(key).isdigit()):
            if int(key) <= 2**31 - 1 and session.get(Machine, int(key)) is not None:
                return int(key)
        pk = session.scalar(select(Machine.id).where(Machine.machine_id == str(key)))
        if pk is None:
            raise NotFound(f"no machine {key!r}")
        return pk


def _tag_dict(t: Tag) -> dict:
    return {"id": t.id, "name": t.name, "address": t.address, "data_type": t.data_type, "role": t.role,
            "scale": t.scale, "offset": t.offset, "deadband": t.deadband,
            "sampling_interval_ms": t.sampling_interval_ms, "report_by_exception": bool(t.report_by_exception),
            "enabled": bool(t.enabled), "options": t.options or None}


def machine_tags(engine: Engine, pk: int) -> list[dict]:
    with Session(engine) as session:
        if session.get(Machine, pk) is None:
            raise NotFound(f"no machine with id {pk}")
        tags = session.scalars(select(Tag).where(Tag.machine_id == pk).order_by(Tag.id)).all()
        return [_tag_dict(t) for t in tags]


def _check_machine_refs(session: Session, clean: dict, pk: int | None) -> None:
    fields = {}
    other = session.scalar(select(Machine).where(Machine.machine_id == clean["machine_id"]))
    if other is not None and other.id != pk:
        fields["machine_id"] = f"{clean['machine_id']!r} is already used by machine {other.id} ({other.name})"
    conn = session.scalar(select(Connection).where(Connection.name == clean["machine_id"]))
    if conn is not None and conn.machine_id != pk and "machine_id" not in fields:
        fields["machine_id"] = f"{clean['machine_id']!r} is already the name of connection {conn.id}"
    if clean.get("line") is not None and session.get(Line, clean["line"]) is None:
        fields["line"] = f"no line with id {clean['line']}; see /api/config/lines/ for the lines there are"
    try:
        _calendar_id(session, clean.get("calendar"))
    except ValidationError as exc:
        fields.update(exc.fields)
    if fields:
        raise ValidationError(fields)


def _apply_tags(session: Session, conn: Connection, machine: Machine, tags: list[dict]) -> list[int]:
    """Make the connection's tags exactly `tags`: rows whose name stays keep their id (and history). Returns the
    ids of removed tags."""
    existing = {t.name: t for t in conn.tags}
    keep = set()
    for tag in tags:
        row = existing.get(tag["name"])
        if row is None:
            row = Tag(connection=conn, name=tag["name"])
            session.add(row)
        keep.add(tag["name"])
        row.machine_id = machine.id
        for key in ("address", "data_type", "role", "scale", "offset", "deadband", "sampling_interval_ms",
                    "report_by_exception", "enabled", "options"):
            setattr(row, key, tag[key])
    removed = [t for name, t in existing.items() if name not in keep]
    removed_ids = [t.id for t in removed]
    for t in removed:
        conn.tags.remove(t)
        session.delete(t)
    return removed_ids


def _delete_history(session: Session, backend: str, tag_ids: list[int], machine_pk: int | None = None) -> dict:
    out = {"samples": 0, "states": 0, "counts": 0}
    if tag_ids:
        out["samples"] = session.execute(delete(samples).where(samples.c.tag_id.in_(tag_ids))).rowcount or 0
        if backend != "timescaledb":  # continuous aggregates follow their source there
            for name in PLAIN_ROLLUPS:
                session.execute(text(f"DELETE FROM {name} WHERE tag_id IN ({','.join(map(str, tag_ids))})"))
    if machine_pk is not None:
        out["states"] = session.execute(delete(MachineState).where(MachineState.machine_id == machine_pk)).rowcount or 0
        out["counts"] = session.execute(delete(ProductionCount).where(
            ProductionCount.machine_id == machine_pk)).rowcount or 0
    return out


def _seal(config: dict | None, credentials) -> dict:
    """protocol_config as it is stored: secrets encrypted. Raises ValidationError naming the field when a secret
    cannot be encrypted (no key), so that no secret is ever stored in plain text."""
    from keys.credentials import CredentialError, has_plain_secrets, is_sealed, is_secret_key

    config = dict(config or {})
    if credentials is None:
        if has_plain_secrets(config):
            key = next(k for k, v in config.items() if is_secret_key(k) and v not in (None, "") and not is_sealed(v))
            raise ValidationError({f"protocol_config.{key}": "cannot be stored: no key to encrypt it with is loaded "
                                                             "(set OEE_SECRET_KEY)"})
        return config
    try:
        return credentials.seal(config)
    except CredentialError as exc:
        raise ValidationError({f"protocol_config.{exc.field}": exc.message}) from None


def _machine_snapshot(session: Session, machine: Machine | None) -> dict | None:
    """The machine with its connection and tags as the audit log keeps it (secrets masked by db.audit)."""
    if machine is None:
        return None
    session.flush()
    conn = session.scalar(select(Connection).where(Connection.machine_id == machine.id)
                          .order_by(Connection.name != machine.machine_id, Connection.id).limit(1))
    lines = _line_names(session) if machine.line_id else {}
    out = {"machine_id": machine.machine_id, "name": machine.name, "description": machine.description or "",
           "line": lines.get(machine.line_id), "enabled": bool(machine.enabled),
           **_settings_of(machine, _calendar_names(session))}
    if conn is not None:
        out.update(protocol=conn.protocol, ip_address=conn.host, port=conn.port,
                   protocol_config=dict(conn.protocol_config or {}), poll_interval_ms=conn.poll_interval_ms,
                   connection_enabled=bool(conn.enabled))
        tags = session.scalars(select(Tag).where(Tag.connection_id == conn.id).order_by(Tag.name)).all()
        out["tags"] = [{k: v for k, v in _tag_dict(t).items() if k != "id"} for t in tags]
    return out


def _target(machine_id: str) -> str:
    return f"machine {machine_id}"


def _write_machine(session: Session, clean: dict, machine: Machine | None, backend: str,
                   credentials=None) -> tuple[Machine, list[int]]:
    now = _time.time()
    added = machine is None
    was_enabled = None if added else bool(machine.enabled)
    if machine is None:
        machine = Machine(machine_id=clean["machine_id"], name=clean["name"])
        session.add(machine)
    machine.machine_id = clean["machine_id"]
    machine.name = clean["name"]
    machine.description = clean.get("description") or ""
    machine.line_id = clean.get("line")
    machine.enabled = clean["enabled"]
    machine.calendar_id = _calendar_id(session, clean.get("calendar"))
    machine.state_code_map = clean.get("state_code_map") or None
    machine.ideal_cycle_time_s = clean.get("ideal_cycle_time_s")
    machine.micro_stop_threshold_s = clean.get("micro_stop_threshold_s")
    _set_fault_codes(session, machine, clean.get("fault_codes") or [])
    session.flush()
    # When it is in service: its OEE does not count the time before it was added, nor while it is disabled.
    if added:
        lifetime.record_added(session, machine.id, bool(clean["enabled"]), now)
    elif was_enabled != bool(clean["enabled"]):
        lifetime.record_enabled(session, machine.id, bool(clean["enabled"]), now)
    conn = _connection_of(session, machine)
    if conn is None:
        conn = Connection(name=clean["machine_id"], machine_id=machine.id)
        session.add(conn)
    conn.name = clean["machine_id"]
    conn.protocol = clean["protocol"]
    conn.host = clean["ip_address"]
    conn.port = clean["port"]
    conn.protocol_config = _seal(clean["protocol_config"], credentials)
    conn.poll_interval_ms = clean["poll_interval_ms"]
    conn.enabled = clean["enabled"]
    conn.updated_at = now
    session.flush()
    removed: list[int] = []
    if clean.get("tags") is not None:
        removed = _apply_tags(session, conn, machine, clean["tags"])
        session.flush()
        _delete_history(session, backend, removed)
    return machine, removed


def _set_fault_codes(session: Session, machine: Machine, codes: list[dict]) -> None:
    """Make the machine's fault table exactly `codes`; an entry whose code stays keeps its row."""
    existing = {f.code: f for f in machine.fault_codes}
    wanted = {c["code"]: c for c in codes}
    for code, row in existing.items():
        if code not in wanted:
            machine.fault_codes.remove(row)
    session.flush()  # removed rows go before a re-added code meets the unique constraint
    for code, c in wanted.items():
        row = existing.get(code)
        if row is None:
            row = MachineFaultCode(code=code)
            machine.fault_codes.append(row)
        row.text, row.kind = c["text"], c.get("kind") or "fault"


def _record_change(session: Session, action: str, target: str, before, after) -> None:
    """An audit entry, unless nothing changed (a save of the same values). A new password masks to the same '***'
    as the old one: the entry names the secrets that changed (changed_credentials), never their values."""
    changed = _secrets_changed(before, after)
    if changed:
        after = {**after, "changed_credentials": changed}
    if changed or audit.mask(before) != audit.mask(after):
        audit.record(session, None, action, target, before, after)


def _secrets_changed(before, after) -> list[str]:
    from keys.credentials import is_secret_key

    b = before.get("protocol_config") if isinstance(before, dict) else None
    a = after.get("protocol_config") if isinstance(after, dict) else None
    if not isinstance(a, dict) or not isinstance(b, dict):
        return []
    return sorted(k for k in set(a) | set(b) if is_secret_key(k) and a.get(k) != b.get(k))


@contextmanager
def _writing(engine: Engine):
    """One transaction: committed when the block ends, rolled back on any error. A constraint the validation did
    not foresee (a race with another writer) comes back as a ValidationError, never half a change."""
    with Session(engine) as session:
        try:
            yield session
            session.commit()
        except IntegrityError as exc:
            session.rollback()
            raise ValidationError({"body": f"the database refused the change: "
                                           f"{str(exc.orig).splitlines()[0]}"}) from None
        except BaseException:
            session.rollback()
            raise


def create_machine(engine: Engine, clean: dict, *, backend: str = "sqlite", credentials=None) -> dict:
    """A new machine with its connection and (optional) tags, in one transaction."""
    with _writing(engine) as session:
        _check_machine_refs(session, clean, None)
        machine, _ = _write_machine(session, clean, None, backend, credentials)
        pk = machine.id
        audit.record(session, None, "machine.create", _target(machine.machine_id), None,
                     _machine_snapshot(session, machine))
    return get_machine(engine, pk)


def update_machine(engine: Engine, pk: int, clean: dict, *, backend: str = "sqlite", credentials=None) -> dict:
    """Replace the machine's settings (and its tags, when clean has 'tags'), in one transaction."""
    with _writing(engine) as session:
        machine = session.get(Machine, pk)
        if machine is None:
            raise NotFound(f"no machine with id {pk}")
        before = _machine_snapshot(session, machine)
        _check_machine_refs(session, clean, pk)
        _write_machine(session, clean, machine, backend, credentials)
        _record_change(session, "machine.update", _target(machine.machine_id), before,
                       _machine_snapshot(session, machine))
    return get_machine(engine, pk)


def replace_tags(engine: Engine, pk: int, tags: list[dict], *, backend: str = "sqlite") -> list[dict]:
    with _writing(engine) as session:
        machine = session.get(Machine, pk)
        if machine is None:
            raise NotFound(f"no machine with id {pk}")
        conn = _connection_of(session, machine)
        if conn is None:
            raise ValidationError({"tags": "the machine has no connection yet; give it ip_address and protocol "
                                           "first"})
        before = {"tags": (_machine_snapshot(session, machine) or {}).get("tags", [])}
        removed = _apply_tags(session, conn, machine, tags)
        conn.updated_at = _time.time()
        session.flush()
        _delete_history(session, backend, removed)
        _record_change(session, "machine.tags.update", _target(machine.machine_id), before,
                       {"tags": (_machine_snapshot(session, machine) or {}).get("tags", [])})
    return machine_tags(engine, pk)


def deletion_impact(engine: Engine, pk: int) -> dict:
    """What deleting the machine removes: its tags, and their history (samples, state intervals, counts,
    downtime events)."""
    with Session(engine) as session:
        machine = session.get(Machine, pk)
        if machine is None:
            raise NotFound(f"no machine with id {pk}")
        tag_ids = session.scalars(select(Tag.id).where(Tag.machine_id == pk)).all()
        n_samples = session.scalar(select(func.count()).select_from(samples).where(
            samples.c.tag_id.in_(tag_ids))) if tag_ids else 0
        return {
            "machine_id": machine.machine_id, "name": machine.name, "tags": len(tag_ids), "samples": n_samples,
            "states": session.scalar(select(func.count()).select_from(MachineState)
                                     .where(MachineState.machine_id == pk)),
            "counts": session.scalar(select(func.count()).select_from(ProductionCount)
                                     .where(ProductionCount.machine_id == pk)),
            "downtime_events": session.scalar(select(func.count()).select_from(DowntimeEvent)
                                              .where(DowntimeEvent.machine_id == pk)),
        }


def delete_machine(engine: Engine, pk: int, *, backend: str = "sqlite") -> dict:
    """Remove the machine, its connection, its tags and all their history, in one transaction. Returns what was
    removed (as deletion_impact)."""
    impact = deletion_impact(engine, pk)
    with _writing(engine) as session:
        machine = session.get(Machine, pk)
        if machine is None:
            raise NotFound(f"no machine with id {pk}")
        audit.record(session, None, "machine.delete", _target(machine.machine_id), _machine_snapshot(session, machine),
                     None)
        tag_ids = list(session.scalars(select(Tag.id).where(Tag.machine_id == pk)))
        conn_ids = [c.id for c in machine.connections]
        _delete_history(session, backend, tag_ids, pk)
        session.execute(delete(DowntimeEvent).where(DowntimeEvent.machine_id == pk))
        session.execute(delete(PlannedDowntime).where(PlannedDowntime.machine_id == pk))
        session.execute(delete(Tag).where(Tag.machine_id == pk))
        if conn_ids:
            session.execute(delete(Tag).where(Tag.connection_id.in_(conn_ids)))
            session.execute(delete(Connection).where(Connection.id.in_(conn_ids)))
        session.execute(delete(Machine).where(Machine.id == pk))
    return impact


def set_machine_enabled(engine: Engine, pk: int, enabled: bool, *, audited: bool = True) -> dict:
    """audited False: a step of a larger change that is audited as a whole (a delete stops polling first)."""
    with _writing(engine) as session:
        machine = session.get(Machine, pk)
        if machine is None:
            raise NotFound(f"no machine with id {pk}")
        before = {"enabled": bool(machine.enabled),
                  "connections_enabled": [bool(c.enabled) for c in machine.connections]}
        if bool(machine.enabled) != bool(enabled):
            lifetime.record_enabled(session, machine.id, bool(enabled))
        machine.enabled = enabled
        for conn in machine.connections:
            conn.enabled = enabled
            conn.updated_at = _time.time()
        if audited:
            _record_change(session, "machine.update", _target(machine.machine_id), before,
                           {"enabled": bool(enabled), "connections_enabled": [bool(enabled) for _ in
                                                                              machine.connections]})
    return get_machine(engine, pk)


def line_options(engine: Engine) -> list[dict]:
    """Every line as {"id", "path"} ('Site/Area/Line'), for pickers."""
    with Session(engine) as session:
        return [{"id": k, "path": v} for k, v in sorted(_line_names(session).items(), key=lambda kv: kv[1])]


# --- hierarchy, products, reasons, calendars ----------------------------------------------------------------------


def _page(session: Session, stmt, offset: int, limit: int):
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    return total, session.scalars(stmt.offset(offset).limit(limit)).all()


def _site(s: Site) -> dict:
    return {"id": s.id, "name": s.name, "timezone": s.timezone, "micro_stop_threshold_s": s.micro_stop_threshold_s}


def _area(a: Area) -> dict:
    return {"id": a.id, "name": a.name, "site": a.site_id, "site_name": a.site.name}


def _line(ln: Line) -> dict:
    return {"id": ln.id, "name": ln.name, "area": ln.area_id, "area_name": ln.area.name,
            "site_name": ln.area.site.name, "path": line_path(ln.area.site.name, ln.area.name, ln.name),
            "calendar": ln.calendar.name if ln.calendar else None}


def _product(p: Product) -> dict:
    return {"id": p.id, "code": p.code, "name": p.name or "", "ideal_cycle_time_s": p.ideal_cycle_time_s}


def _reason(r: ReasonCode) -> dict:
    return {"id": r.id, "code": r.code, "name": r.name, "planned": bool(r.planned), "loss_category": r.loss_category}


def _hhmm(t: time) -> str:
    return t.strftime("%H:%M")


def _calendar(c: ShiftCalendar) -> dict:
    return {"id": c.id, "name": c.name, "timezone": c.timezone, "shifts": [
        {"name": s.name, "start": _hhmm(s.start_time), "end": _hhmm(s.end_time), "weekdays": s.weekdays,
         "breaks": [{"name": b.name, "start": _hhmm(b.start_time), "duration_s": b.duration_s}
                    for b in sorted(s.breaks, key=lambda b: b.start_time)]}
        for s in sorted(c.shifts, key=lambda s: (s.start_time, s.id))]}


class _Kind:
    def __init__(self, model, show, natural: str, order, label: str):
        self.model, self.show, self.natural, self.order, self.label = model, show, natural, order, label


KINDS = {
    "sites": _Kind(Site, _site, "name", Site.name, "site"),
    "areas": _Kind(Area, _area, "name", Area.name, "area"),
    "lines": _Kind(Line, _line, "name", Line.name, "line"),
    "products": _Kind(Product, _product, "code", Product.code, "product"),
    "reasons": _Kind(ReasonCode, _reason, "code", ReasonCode.code, "reason code"),
    "calendars": _Kind(ShiftCalendar, _calendar, "name", ShiftCalendar.name, "calendar"),
}


def list_items(engine: Engine, kind: str, *, offset: int = 0, limit: int = 50) -> tuple[int, list[dict]]:
    k = KINDS[kind]
    with Session(engine) as session:
        total, rows = _page(session, select(k.model).order_by(k.order, k.model.id), offset, limit)
        return total, [k.show(r) for r in rows]


def get_item(engine: Engine, kind: str, pk: int) -> dict:
    k = KINDS[kind]
    with Session(engine) as session:
        row = session.get(k.model, pk)
        if row is None:
            raise NotFound(f"no {k.label} with id {pk}")
        return k.show(row)


def _unique(session: Session, kind: str, clean: dict, pk: int | None, scope=None) -> None:
    k = KINDS[kind]
    stmt = select(k.model).where(getattr(k.model, k.natural) == clean[k.natural])
    if scope is not None:
        stmt = stmt.where(scope)
    other = session.scalar(stmt)
    if other is not None and other.id != pk:
        where = " here" if scope is not None else ""
        raise ValidationError({k.natural: f"{clean[k.natural]!r} is already {k.label} {other.id}{where}; "
                                          f"the {k.natural} must be unique"})


def _set_calendar(session: Session, cal: ShiftCalendar, clean: dict) -> None:
    cal.name, cal.timezone = clean["name"], clean["timezone"]
    for shift in list(cal.shifts):
        session.delete(shift)
    cal.shifts.clear()
    session.flush()
    for s in clean["shifts"]:
        shift = Shift(name=s["name"], start_time=parse_hhmm(s["start"]), end_time=parse_hhmm(s["end"]),
                      weekdays=s["weekdays"])
        shift.breaks = [ShiftBreak(name=b["name"], start_time=parse_hhmm(b["start"]), duration_s=b["duration_s"])
                        for b in s["breaks"]]
        cal.shifts.append(shift)


def _assign(session: Session, kind: str, row, clean: dict, pk: int | None) -> None:
    if kind == "sites":
        _unique(session, kind, clean, pk)
        row.name, row.timezone = clean["name"], clean["timezone"]
        row.micro_stop_threshold_s = clean.get("micro_stop_threshold_s")
    elif kind == "areas":
        if session.get(Site, clean["site"]) is None:
            raise ValidationError({"site": f"no site with id {clean['site']}; see /api/config/sites/"})
        _unique(session, kind, clean, pk, Area.site_id == clean["site"])
        row.name, row.site_id = clean["name"], clean["site"]
    elif kind == "lines":
        if session.get(Area, clean["area"]) is None:
            raise ValidationError({"area": f"no area with id {clean['area']}; see /api/config/areas/"})
        _unique(session, kind, clean, pk, Line.area_id == clean["area"])
        row.name, row.area_id = clean["name"], clean["area"]
        cal = _calendar_id(session, clean.get("calendar"))
        row.calendar = session.get(ShiftCalendar, cal) if cal is not None else None
    elif kind == "products":
        _unique(session, kind, clean, pk)
        row.code, row.name, row.ideal_cycle_time_s = clean["code"], clean["name"], clean["ideal_cycle_time_s"]
    elif kind == "reasons":
        _unique(session, kind, clean, pk)
        row.code, row.name, row.planned, row.loss_category = (clean["code"], clean["name"], clean["planned"],
                                                              clean["loss_category"])
    elif kind == "calendars":
        _unique(session, kind, clean, pk)
        _set_calendar(session, row, clean)


def _item_target(kind: str, shown: dict) -> str:
    k = KINDS[kind]
    return f"{k.label} {shown.get('path') or shown.get(k.natural)}"


def _item_action(kind: str, verb: str) -> str:
    return f"settings.{KINDS[kind].label.replace(' ', '_')}.{verb}"


def create_item(engine: Engine, kind: str, clean: dict) -> dict:
    k = KINDS[kind]
    with _writing(engine) as session:
        row = k.model()
        if kind == "calendars":
            row.shifts = []
        _assign(session, kind, row, clean, None)
        session.add(row)
        session.flush()
        pk = row.id
        after = k.show(row)
        audit.record(session, None, _item_action(kind, "create"), _item_target(kind, after), None, after)
    return get_item(engine, kind, pk)


def update_item(engine: Engine, kind: str, pk: int, clean: dict) -> dict:
    k = KINDS[kind]
    with _writing(engine) as session:
        row = session.get(k.model, pk)
        if row is None:
            raise NotFound(f"no {k.label} with id {pk}")
        before = k.show(row)
        _assign(session, kind, row, clean, pk)
        session.flush()
        session.refresh(row)
        after = k.show(row)
        _record_change(session, _item_action(kind, "update"), _item_target(kind, after), before, after)
    return get_item(engine, kind, pk)


def item_impact(engine: Engine, kind: str, pk: int) -> dict:
    """What deleting it takes along (areas and lines of a site, machines that lose their line, ...)."""
    with Session(engine) as session:
        k = KINDS[kind]
        row = session.get(k.model, pk)
        if row is None:
            raise NotFound(f"no {k.label} with id {pk}")
        out: dict = {}
        if kind == "sites":
            line_ids = [ln.id for a in row.areas for ln in a.lines]
            out = {"areas": len(row.areas), "lines": len(line_ids)}
        elif kind == "areas":
            line_ids = [ln.id for ln in row.lines]
            out = {"lines": len(line_ids)}
        elif kind == "lines":
            line_ids = [row.id]
        else:
            line_ids = []
        if line_ids:
            out["machines_unassigned"] = session.scalar(select(func.count()).select_from(Machine)
                                                        .where(Machine.line_id.in_(line_ids)))
        if kind == "reasons":
            out["events_unreasoned"] = session.scalar(select(func.count()).select_from(DowntimeEvent)
                                                      .where(DowntimeEvent.reason_id == pk))
        if kind == "calendars":
            out["shifts"] = len(row.shifts)
            out["machines_uncalendared"] = session.scalar(select(func.count()).select_from(Machine)
                                                          .where(Machine.calendar_id == pk))
            out["lines_uncalendared"] = session.scalar(select(func.count()).select_from(Line)
                                                       .where(Line.calendar_id == pk))
        return out


def delete_item(engine: Engine, kind: str, pk: int) -> dict:
    impact = item_impact(engine, kind, pk)
    with _writing(engine) as session:
        k = KINDS[kind]
        row = session.get(k.model, pk)
        if row is None:
            raise NotFound(f"no {k.label} with id {pk}")
        before = k.show(row)
        audit.record(session, None, _item_action(kind, "delete"), _item_target(kind, before), before,
                     {"impact": impact})
        if kind in ("sites", "areas", "lines"):
            if kind == "sites":
                line_ids = [ln.id for a in row.areas for ln in a.lines]
            elif kind == "areas":
                line_ids = [ln.id for ln in row.lines]
            else:
                line_ids = [row.id]
            if line_ids:  # machines stay, without a line (as ON DELETE SET NULL would, on every backend)
                session.execute(Machine.__table__.update().where(Machine.line_id.in_(line_ids)).values(line_id=None))
        session.delete(row)
    return impact


# --- the whole configuration as one document -------------------------------------------------------------------------


def export_document(engine: Engine) -> dict:
    """Everything configurable, with names instead of ids (a line is 'Site/Area/Line'). Secrets are '***'."""
    with Session(engine) as session:
        return _document(session)


def _document(session: Session) -> dict:
    from config.plant_file import DOCUMENT_VERSION
    from config.validation import redact

    lines = _line_names(session)
    doc: dict = {"version": DOCUMENT_VERSION, "sites": [], "products": [], "reason_codes": [], "calendars": [],
                 "machines": []}
    calendars = _calendar_names(session)
    for s in session.scalars(select(Site).order_by(Site.name).options(selectinload(Site.areas).selectinload(
            Area.lines))):
        doc["sites"].append({"name": s.name, "timezone": s.timezone, "micro_stop_threshold_s": s.micro_stop_threshold_s,
                             "areas": [{"name": a.name, "lines": [{"name": ln.name,
                                                                   "calendar": calendars.get(ln.calendar_id)}
                                                                  for ln in sorted(a.lines, key=lambda x: x.name)]}
                                       for a in sorted(s.areas, key=lambda x: x.name)]})
    doc["products"] = [{k: v for k, v in _product(p).items() if k != "id"}
                       for p in session.scalars(select(Product).order_by(Product.code))]
    doc["reason_codes"] = [{k: v for k, v in _reason(r).items() if k != "id"}
                           for r in session.scalars(select(ReasonCode).order_by(ReasonCode.code))]
    doc["calendars"] = [{k: v for k, v in _calendar(c).items() if k != "id"}
                        for c in session.scalars(select(ShiftCalendar).order_by(ShiftCalendar.name).options(
                            selectinload(ShiftCalendar.shifts).selectinload(Shift.breaks)))]
    # everything a machine's entry shows, in a few queries rather than a few per machine
    for m in session.scalars(select(Machine).order_by(Machine.machine_id).options(
            selectinload(Machine.connections).selectinload(Connection.tags), selectinload(Machine.fault_codes))):
        conn = _connection_of(session, m)
        if conn is None:
            continue  # a machine without a connection has nothing the wizard or the API could set up
        tags = sorted(conn.tags, key=lambda t: t.id)
        entry = {"machine_id": m.machine_id, "name": m.name, "description": m.description or "",
                 "line": lines.get(m.line_id) if m.line_id else None, "protocol": conn.protocol,
                 "ip_address": conn.host, "port": conn.port, "protocol_config": redact(conn.protocol_config),
                 "poll_interval_ms": conn.poll_interval_ms, "enabled": bool(m.enabled and conn.enabled),
                 **_settings_of(m, calendars), "tags": []}
        for t in tags:
            d = {k: v for k, v in _tag_dict(t).items() if k != "id"}
            if d["options"] is None:
                d.pop("options")
            entry["tags"].append(d)
        doc["machines"].append(entry)
    return doc


def import_context(engine: Engine) -> dict:
    """What validating a document needs from the database: the line paths there are, and each machine's stored
    protocol_config (whose secrets an exported '***' stands for)."""
    with Session(engine) as session:
        configs = {}
        for m in session.scalars(select(Machine)):
            conn = _connection_of(session, m)
            if conn is not None:
                configs[m.machine_id] = dict(conn.protocol_config or {})
        return {"known_lines": set(_line_names(session).values()), "stored_configs": configs,
                "known_calendars": set(_calendar_names(session).values())}


def import_document(engine: Engine, doc: dict, *, backend: str = "sqlite", credentials=None) -> dict:
    """Apply a validated document (config.validation.validate_document) in one transaction: everything named in
    it is created or updated, matched by its natural key (site name, area within site, line within area, product
    code, reason code, calendar name, machine_id, tag name within machine); what it does not name is left alone.
    Returns counts of created and updated rows per kind."""
    summary = {k: {"created": 0, "updated": 0} for k in ("sites", "areas", "lines", "products", "reason_codes",
                                                          "calendars", "machines")}

    def count(kind, created):
        summary[kind]["created" if created else "updated"] += 1

    with _writing(engine) as session:
        before = _document(session)
        for c in doc["calendars"]:  # first: lines and machines name them
            row = session.scalar(select(ShiftCalendar).where(ShiftCalendar.name == c["name"]))
            count("calendars", row is None)
            if row is None:
                row = ShiftCalendar(name=c["name"], shifts=[])
                session.add(row)
            _set_calendar(session, row, c)
        session.flush()
        for s in doc["sites"]:
            site = session.scalar(select(Site).where(Site.name == s["name"]))
            count("sites", site is None)
            if site is None:
                site = Site(name=s["name"])
                session.add(site)
            site.timezone = s["timezone"]
            site.micro_stop_threshold_s = s.get("micro_stop_threshold_s")
            session.flush()
            for a in s["areas"]:
                area = session.scalar(select(Area).where(Area.site_id == site.id, Area.name == a["name"]))
                count("areas", area is None)
                if area is None:
                    area = Area(site_id=site.id, name=a["name"])
                    session.add(area)
                    session.flush()
                for ln in a["lines"]:
                    line = session.scalar(select(Line).where(Line.area_id == area.id, Line.name == ln["name"]))
                    count("lines", line is None)
                    if line is None:
                        line = Line(area_id=area.id, name=ln["name"])
                        session.add(line)
                    line.calendar_id = _calendar_id(session, ln.get("calendar"))
                    session.flush()
        for p in doc["products"]:
            row = session.scalar(select(Product).where(Product.code == p["code"]))
            count("products", row is None)
            if row is None:
                row = Product(code=p["code"])
                session.add(row)
            row.name, row.ideal_cycle_time_s = p["name"], p["ideal_cycle_time_s"]
        for r in doc["reason_codes"]:
            row = session.scalar(select(ReasonCode).where(ReasonCode.code == r["code"]))
            count("reason_codes", row is None)
            if row is None:
                row = ReasonCode(code=r["code"])
                session.add(row)
            row.name, row.planned, row.loss_category = r["name"], r["planned"], r["loss_category"]
        session.flush()
        by_path = {v: k for k, v in _line_names(session).items()}
        for m in doc["machines"]:
            machine = session.scalar(select(Machine).where(Machine.machine_id == m["machine_id"]))
            count("machines", machine is None)
            clean = {**m, "line": by_path[m["line"]] if m.get("line") else None}
            _check_machine_refs(session, clean, machine.id if machine else None)
            _write_machine(session, clean, machine, backend, credentials)
        session.flush()
        session.expire_all()
        after = _document(session)
        audit.record(session, None, "settings.import", "configuration", before,
                     {**after, "summary": summary})
    return summary
