"""Configuration reads and writes the collectors and the demo need (the API and wizard build on the same models)."""
from __future__ import annotations

import hashlib
import json
import time

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from db.models import (Area, Connection, Line, Machine, MachineState, Product, ReasonCode, Shift, ShiftBreak,
                       ShiftCalendar, Site, Tag, samples)


def _open_config(conn: Connection, credentials) -> tuple[dict, str | None]:
    """The connection's protocol_config with its secrets decrypted for the driver, or (without the secrets, the
    error) when they cannot be: the connection then reports the error instead of sending ciphertext to a PLC."""
    from core.credentials import CredentialError, has_sealed, is_sealed

    config = dict(conn.protocol_config or {})
    if not has_sealed(config):
        return config, None
    try:
        if credentials is None:
            raise CredentialError(next(k for k, v in config.items() if is_sealed(v)),
                                  "is stored encrypted and this process has no key; set OEE_SECRET_KEY")
        return credentials.open(config), None
    except CredentialError as exc:
        return {k: v for k, v in config.items() if not is_sealed(v)}, str(exc)


def load_collector_config(engine: Engine, credentials=None) -> list[dict]:
    """Every enabled connection with its enabled tags and the machines they feed, as plain data. credentials
    (core.credentials.Credentials) decrypts the stored secrets; a connection whose secrets cannot be decrypted
    carries "credential_error" (naming OEE_SECRET_KEY) and no secrets."""
    with Session(engine) as session:
        machines = {m.id: m for m in session.scalars(select(Machine))}
        out = []
        for conn in session.scalars(select(Connection).where(Connection.enabled.is_(True)).order_by(Connection.id)):
            tags = [
                {"id": t.id, "name": t.name, "address": t.address, "data_type": t.data_type, "scale": t.scale,
                 "offset": t.offset, "deadband": t.deadband, "report_by_exception": t.report_by_exception,
                 "role": t.role, "machine_id": t.machine_id or conn.machine_id, "options": t.options or {},
                 "sampling_interval_ms": t.sampling_interval_ms}
                for t in sorted(conn.tags, key=lambda t: t.id) if t.enabled
            ]
            machine_ids = {t["machine_id"] for t in tags if t["machine_id"]}
            config, credential_error = _open_config(conn, credentials)
            out.append({
                "id": conn.id, "name": conn.name, "protocol": conn.protocol, "host": conn.host, "port": conn.port,
                "protocol_config": config, "credential_error": credential_error,
                "poll_interval_ms": conn.poll_interval_ms,
                "collector_node": conn.collector_node, "machine_id": conn.machine_id, "tags": tags,
                "machines": {
                    mid: {"machine_id": machines[mid].machine_id, "state_code_map": machines[mid].state_code_map,
                          "enabled": machines[mid].enabled}
                    for mid in machine_ids if mid in machines
                },
            })
        return out


def seal_stored_secrets(engine: Engine, credentials) -> int:
    """Encrypt the plain-text secrets still stored in connections.protocol_config (a database of an older
    version, or one written without a key). Idempotent: sealed values are left alone. Returns how many
    connections changed."""
    from core.credentials import has_plain_secrets, is_sealed
    from db import audit

    changed = 0
    with Session(engine) as session, session.begin():
        for conn in session.scalars(select(Connection).order_by(Connection.id)):
            if has_plain_secrets(conn.protocol_config):
                before = dict(conn.protocol_config)
                conn.protocol_config = credentials.seal(conn.protocol_config)
                keys = sorted(k for k, v in conn.protocol_config.items() if is_sealed(v) and not is_sealed(before[k]))
                audit.record(session, audit.SYSTEM, "connection.credentials.encrypt", f"connection {conn.name}",
                             {"protocol_config": before}, {"protocol_config": conn.protocol_config,
                                                           "encrypted": keys})
                changed += 1
    return changed


def fingerprint(connection: dict) -> str:
    """Changes when anything a poller depends on changes, so that a reload restarts only what changed."""
    return hashlib.sha1(json.dumps(connection, sort_keys=True, default=str).encode()).hexdigest()


def close_open_states(engine: Engine, backend: str, machine_ids: list[int]) -> int:
    """At start: intervals left open by a previous run end at the last sample seen of that machine's tags.

    One UPDATE per machine on the open rows: the rows are not loaded and written back through the ORM, whose
    UPDATE would look them up by a start time that does not survive the round trip through a datetime exactly
    (SQLite keeps epoch floats), match nothing and fail the start of the app (StaleDataError).
    """
    table = MachineState.__table__
    closed = 0
    with engine.begin() as conn:
        for mid in machine_ids:
            is_open = (table.c.machine_id == mid) & table.c["end"].is_(None)
            tag_ids = list(conn.execute(select(Tag.id).where(Tag.machine_id == mid)).scalars())
            last = None
            if tag_ids:
                last = conn.execute(select(func.max(samples.c.time)).where(samples.c.tag_id.in_(tag_ids))).scalar()
            if last is not None:
                closed += conn.execute(update(table).where(is_open & (table.c.start <= last))
                                       .values({"end": last})).rowcount
            closed += conn.execute(update(table).where(is_open).values({"end": table.c.start})).rowcount
    return closed


def sync_demo_plant(engine: Engine, site: dict, endpoints: list[dict], products: list[dict],
                    calendars: dict[str, dict] | None = None, machine_calendars: dict[str, str] | None = None,
                    credentials=None) -> dict[str, int]:
    """Create or update the demo plant's hierarchy, machines, connections and tags. Returns machine_id -> id.
    credentials: seals any secret of an endpoint's protocol_config (left as given without it).

    Ports of the simulated PLCs can change between runs (free ports), so connections are updated every start.
    """
    now = time.time()
    with Session(engine) as session, session.begin():
        site_row = session.scalar(select(Site).where(Site.name == site["name"]))
        if site_row is None:
            site_row = Site(name=site["name"], timezone=site.get("timezone", "UTC"))
            session.add(site_row)
        for p in products:
            prod = session.scalar(select(Product).where(Product.code == str(p["code"])))
            if prod is None:
                prod = Product(code=str(p["code"]), name=p.get("name", ""))
                session.add(prod)
            prod.ideal_cycle_time_s = float(p["ideal_cycle_time"])  # follows the demo's time scale
        calendar_ids = {}
        for cal_name, cal in (calendars or {}).items():
            row = session.scalar(select(ShiftCalendar).where(ShiftCalendar.name == cal_name))
            if row is None:
                row = ShiftCalendar(name=cal_name, timezone=cal["timezone"])
                for sh in cal["shifts"]:
                    shift = Shift(name=sh["name"], start_time=sh["start"], end_time=sh["end"],
                                  weekdays=sh.get("weekdays", "0123456"))
                    shift.breaks = [ShiftBreak(name=b["name"], start_time=b["start"], duration_s=int(b["duration_s"]))
                                    for b in sh.get("breaks", [])]
                    row.shifts.append(shift)
                session.add(row)
                session.flush()
            calendar_ids[cal_name] = row.id
        ids = {}
        for ep in endpoints:
            area = session.scalar(select(Area).where(Area.site == site_row, Area.name == ep["area"]))
            if area is None:
                area = Area(site=site_row, name=ep["area"])
                session.add(area)
                session.flush()
            line = session.scalar(select(Line).where(Line.area_id == area.id, Line.name == ep["line"]))
            if line is None:
                line = Line(area=area, name=ep["line"])
                session.add(line)
                session.flush()
            machine = session.scalar(select(Machine).where(Machine.machine_id == ep["machine_id"]))
            if machine is None:
                machine = Machine(machine_id=ep["machine_id"], name=ep.get("name") or ep["machine_id"],
                                  description="simulated", line_id=line.id)
                session.add(machine)
                session.flush()
            conn = session.scalar(select(Connection).where(Connection.name == ep["machine_id"]))
            config = ep.get("protocol_config", {})
            if credentials is not None:
                config = credentials.seal(config)
            if conn is None:
                conn = Connection(name=ep["machine_id"], machine_id=machine.id, protocol=ep["protocol"],
                                  host=ep["host"], port=ep["port"], protocol_config=config,
                                  poll_interval_ms=ep.get("poll_interval_ms", 1000), enabled=True)
                session.add(conn)
                session.flush()
            else:
                conn.host, conn.port, conn.protocol = ep["host"], ep["port"], ep["protocol"]
                conn.protocol_config = config
            conn.updated_at = now
            existing = {t.name: t for t in conn.tags}
            for tag in ep["tags"]:
                row = existing.pop(tag["name"], None)
                if row is None:
                    row = Tag(connection=conn, name=tag["name"], scale=1.0, offset=0.0, deadband=0.0,
                              report_by_exception=False, enabled=True)
                    session.add(row)
                row.machine_id = machine.id
                row.address, row.data_type, row.role = tag["address"], tag["data_type"], tag.get("role")
                row.options = tag.get("options")
            for stale in existing.values():
                session.delete(stale)
            if machine_calendars and ep["machine_id"] in machine_calendars:
                machine.calendar_id = calendar_ids.get(machine_calendars[ep["machine_id"]])
            ids[ep["machine_id"]] = machine.id
        return ids


def ensure_reason_codes(engine: Engine, reasons: list[dict]) -> int:
    """Create the reason codes ({code, name, loss_category, planned}) that do not exist yet; a code that exists is
    left as it is (users may have edited it). Returns how many were created."""
    created = 0
    with Session(engine) as session, session.begin():
        existing = set(session.scalars(select(ReasonCode.code)))
        for r in reasons:
            code = str(r["code"])
            if code in existing:
                continue
            session.add(ReasonCode(code=code, name=r["name"], loss_category=r["loss_category"],
                                   planned=bool(r.get("planned", False))))
            existing.add(code)
            created += 1
    return created
