"""The demo plant's configuration: its hierarchy, machines, connections, tags, products, shift calendars and reason
codes, written at every start of the demo (the simulated PLCs' ports can change between runs)."""
from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from db.machine_lifetime import record_added
from db.models import Area, Connection, Line, Machine, Product, ReasonCode, Shift, ShiftBreak, ShiftCalendar, Site, Tag


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
                record_added(session, machine.id, True, now)
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
