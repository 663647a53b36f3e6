"""Read queries for the CSV exports (/export/...): rows streamed from the database in constant memory.

Tag history can be millions of rows. It is read through a server-side cursor (SQLAlchemy `stream_results`, read
in partitions: a named psycopg cursor on PostgreSQL and TimescaleDB, SQLite's own lazy cursor) and handed on in
batches, so the process holds one batch at a time whatever the range. One query per tag, in time order, reads the
(tag_id, time) index straight through: the rows come out tag by tag.

OEE and shift numbers come from `oee_report()` (the same call as GET /api/oee/); downtime events from the downtime
page's own query (db/downtime_queries.downtime_events).
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from db import backend as backends
from db.models import Connection, Machine, Site, Tag
from db.oee_queries import ScopeError, _resolve

STREAM_BATCH_ROWS = 5000
ROLLUP_RELATIONS = {"1m": ("samples_1m", 60), "1h": ("samples_1h", 3600)}


@dataclass(frozen=True)
class TagInfo:
    id: int
    name: str
    machine: str | None  # the machine's machine_id (LINE-001), None for a tag of no machine
    interval_s: float  # the tag's sampling interval, else its connection's poll interval


class TagLookupError(LookupError):
    """Tags asked for that do not exist; .missing lists them."""

    def __init__(self, message: str, missing: list):
        super().__init__(message)
        self.missing = missing


def resolve_tags(store, *, tag_ids: list[int] | None = None, machine: str | None = None) -> list[TagInfo]:
    """The tags of an export: given by id (in the order given), or all the tags of a machine (by name)."""
    with Session(store.engine) as session:
        q = (select(Tag.id, Tag.name, Machine.machine_id, Tag.sampling_interval_ms, Connection.poll_interval_ms)
             .join(Connection, Tag.connection_id == Connection.id)
             .outerjoin(Machine, Tag.machine_id == Machine.id))
        if machine is not None:
            pk = session.scalar(select(Machine.id).where(Machine.machine_id == machine))
            if pk is None:
                raise ScopeError("machine", f"machine {machine!r} does not exist")
            rows = session.execute(q.where(Tag.machine_id == pk).order_by(Tag.name, Tag.id)).all()
        else:
            found = {r[0]: r for r in session.execute(q.where(Tag.id.in_(tag_ids or [])))}
            missing = [t for t in tag_ids or [] if t not in found]
            if missing:
                raise TagLookupError(f"no tag with id {', '.join(map(str, missing))}", missing)
            rows = [found[t] for t in dict.fromkeys(tag_ids or [])]
    return [TagInfo(i, name, m, (sampling or poll or 1000) / 1000.0) for i, name, m, sampling, poll in rows]


def _stream(store, sql: str, params: dict) -> Iterator[list]:
    """Rows of one query in batches of STREAM_BATCH_ROWS, through a server-side cursor."""
    with store.engine.connect() as conn:
        # stream_results: a named (server-side) cursor on psycopg. The size goes to partitions() itself: the
        # yield_per execution option alone, on a Core text() statement, still hands over every row at once.
        result = conn.execution_options(stream_results=True, max_row_buffer=STREAM_BATCH_ROWS).execute(
            text(sql), params)
        try:
            for partition in result.partitions(STREAM_BATCH_ROWS):
                yield partition
        finally:
            result.close()


def tag_history(store, tags: list[TagInfo], start: float, end: float, resolution: str = "raw") -> Iterator[list]:
    """Batches of rows over [start, end), tag after tag, in time order; times as the backend gives them
    (epoch seconds on SQLite, aware datetimes on PostgreSQL: see backend.epoch_of).

    raw: (time, tag_id, value, value_text, quality, reason); 1m / 1h: (bucket, tag_id, n, avg, min, max).
    """
    name = store.backend_name
    lo, hi = backends.db_time(name, start), backends.db_time(name, end)
    if resolution == "raw":
        sql = ("SELECT time, tag_id, value, value_text, quality, reason FROM samples "
               "WHERE tag_id = :tag AND time >= :lo AND time < :hi ORDER BY time")
    else:
        relation = ROLLUP_RELATIONS[resolution][0]
        sql = (f"SELECT bucket, tag_id, n, vavg, vmin, vmax FROM {relation} "
               "WHERE tag_id = :tag AND bucket >= :lo AND bucket < :hi ORDER BY bucket")
    for tag in tags:
        yield from _stream(store, sql, {"tag": tag.id, "lo": lo, "hi": hi})


def estimated_rows(tags: list[TagInfo], start: float, end: float, resolution: str) -> int:
    """An upper bound of the rows an export of these tags can have: at most one sample per tag and poll (or
    sampling interval), one row per tag and bucket in a rollup."""
    span = max(end - start, 0.0)
    if resolution == "raw":
        return sum(math.ceil(span / max(t.interval_s, 0.001)) for t in tags)
    width = ROLLUP_RELATIONS[resolution][1]
    return len(tags) * math.ceil(span / width)


def scope_machines(store, scope: str, key: str) -> list[tuple[int, str, str]]:
    """(pk, machine_id, name) of the machines in a machine, line, area or site. Raises ScopeError."""
    with Session(store.engine) as session:
        return [(m.id, m.machine_id, m.name) for m in _resolve(session, scope, key)]


def all_machines(store) -> list[tuple[int, str, str]]:
    with Session(store.engine) as session:
        return [tuple(r) for r in session.execute(
            select(Machine.id, Machine.machine_id, Machine.name).order_by(Machine.machine_id))]


def plant_timezone(store) -> str:
    """The plant's time zone (the first site's), as oee_report() uses it; UTC without a site."""
    with Session(store.engine) as session:
        site = session.scalar(select(Site).order_by(Site.id))
        return site.timezone if site else "UTC"
