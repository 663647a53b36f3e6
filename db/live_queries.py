"""What the live WebSocket needs to know about the plant: machines with their line, lines, tags with their machine."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from db.models import Area, Connection, Line, Machine, MachineFaultCode, Site, Tag


def live_catalog(engine: Engine) -> dict:
    """{"machines": [...], "lines": [...], "tags": [...], "fault_texts": [[machine, code, text], ...]} as plain
    data, in plant order."""
    with Session(engine) as session:
        rows = session.execute(
            select(Machine, Line, Area, Site)
            .outerjoin(Line, Machine.line_id == Line.id)
            .outerjoin(Area, Line.area_id == Area.id)
            .outerjoin(Site, Area.site_id == Site.id)
            .order_by(Site.name, Area.name, Line.name, Machine.machine_id)
        ).all()
        machines = [
            {"id": m.id, "machine_id": m.machine_id, "name": m.name, "enabled": m.enabled,
             "line_id": ln.id if ln else None, "line": ln.name if ln else None, "area": a.name if a else None,
             "site": s.name if s else None}
            for m, ln, a, s in rows
        ]
        lines = [
            {"id": ln.id, "name": ln.name, "area": a.name, "site": s.name if s else None}
            for ln, a, s in session.execute(
                select(Line, Area, Site).join(Area, Line.area_id == Area.id).outerjoin(Site, Area.site_id == Site.id)
                .order_by(Site.name, Area.name, Line.name)).all()
        ]
        # Columns, not ORM objects, unpacked by position: every live service loads this every 30 s, and at
        # 50,000 tags the ORM rows took a quarter of a collector process's GIL samples (bench.collect, py-spy)
        tags = [
            {"id": tid, "name": name, "machine": machine or conn_machine, "data_type": data_type, "role": role,
             "enabled": enabled}
            for tid, name, machine, conn_machine, data_type, role, enabled in session.execute(
                select(Tag.id, Tag.name, Tag.machine_id, Connection.machine_id, Tag.data_type, Tag.role, Tag.enabled)
                .join(Connection, Tag.connection_id == Connection.id).order_by(Tag.id)).all()
        ]
        # what each machine's fault codes mean, for the text of its live fault alerts
        fault_texts = [[f.machine_id, f.code, f.text] for f in session.scalars(select(MachineFaultCode))]
        return {"machines": machines, "lines": lines, "tags": tags, "fault_texts": fault_texts}
