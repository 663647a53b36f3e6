"""Read queries shared by the pages and the REST API, so that a number on a page always equals the API's."""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from db.models import Area, Connection, Line, Machine, Site, Tag


def machine_tree(engine: Engine) -> list[dict]:
    """Every machine with its site, area and line, in plant order."""
    with Session(engine) as session:
        rows = session.execute(
            select(Machine, Line, Area, Site)
            .outerjoin(Line, Machine.line_id == Line.id)
            .outerjoin(Area, Line.area_id == Area.id)
            .outerjoin(Site, Area.site_id == Site.id)
            .order_by(Site.name, Area.name, Line.name, Machine.machine_id)
        ).all()
        protocols = dict(session.execute(select(Connection.machine_id, Connection.protocol)).all())
        tag_counts = dict(session.execute(select(Tag.machine_id, func.count()).group_by(Tag.machine_id)).all())
        return [
            {
                "id": m.id,
                "machine_id": m.machine_id,
                "name": m.name,
                "site": s.name if s else None,
                "area": a.name if a else None,
                "line": ln.name if ln else None,
                "protocol": protocols.get(m.id),
                "tags": tag_counts.get(m.id, 0),
                "enabled": m.enabled,
            }
            for m, ln, a, s in rows
        ]


RESOLUTIONS = {"raw": None, "1m": "samples_1m", "1h": "samples_1h"}


def tag_series(store, tag_id: int, start, end, resolution: str = "raw") -> list[dict]:
    """One tag's values over [start, end): raw samples, or 1-minute / 1-hour rollups (n, avg, min, max).

    The rollups are continuous aggregates on TimescaleDB and app-maintained tables elsewhere; the SQL is the same.
    """
    from sqlalchemy import text

    from db.backend import db_time

    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution {resolution!r}: use one of {', '.join(RESOLUTIONS)}")
    name = store.backend_name
    params = {"tag": tag_id, "lo": db_time(name, _epoch(start)), "hi": db_time(name, _epoch(end))}
    with store.engine.connect() as conn:
        if resolution == "raw":
            rows = conn.execute(text(
                "SELECT time, value, value_text, quality, reason FROM samples WHERE tag_id = :tag AND time >= :lo "
                "AND time < :hi ORDER BY time"), params).all()
            return [{"time": _epoch(t), "value": v, "value_text": vt, "quality": q, "reason": r}
                    for t, v, vt, q, r in rows]
        rows = conn.execute(text(
            f"SELECT bucket, n, vavg, vmin, vmax FROM {RESOLUTIONS[resolution]} WHERE tag_id = :tag "
            "AND bucket >= :lo AND bucket < :hi ORDER BY bucket"), params).all()
        return [{"bucket": _epoch(b), "n": int(n), "avg": a, "min": lo, "max": hi} for b, n, a, lo, hi in rows]


def _epoch(value) -> float:
    from db.backend import epoch_of

    return epoch_of(value)
