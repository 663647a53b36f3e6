"""Queries behind the shop-floor screens (/andon/, /operator/<machine or line>): the stop that asks for a reason,
reasons in the order operators use them, rejects an operator counts by hand, and which tags carry an order's
quantity and progress. Times are epoch seconds (UTC) in and out.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from db import audit
from db import backend as backends
from db.downtime_queries import DowntimeError, downtime_events, reason_codes
from db.models import Connection, DowntimeEvent, Machine, ReasonCode, Tag

UTC = timezone.utc
STOP_LOOKBACK_S = 12 * 3600  # an open stop older than a shift is still the current one; further back is not read
RECENT_STOP_S = 600  # a stop that ended this recently is still asked about
REASON_USE_WINDOW_S = 30 * 86400  # "most used first" counts the reasons given over the last 30 days
REJECT_LOOKBACK_S = 24 * 3600  # rejects found by hand are of parts made within a day
MAX_MANUAL_REJECTS = 100_000  # more in one entry is a typing slip, not a count
# The order's target and progress: the demo plant's and common PLC names (plant/README.md), by the tag's own
# name (the last part after a '.' or ':'), as no role carries them.
ORDER_QUANTITY_NAMES = ("orderquantity", "orderqty", "targetqty", "ordertarget")
ORDER_GOOD_NAMES = ("ordergood", "ordercount", "goodqty")


def reasons_by_use(store, now: float | None = None) -> list[dict]:
    """reason_codes() for a stop, the ones operators gave most over the last 30 days first, then by name; each
    with its `uses`."""
    now = time.time() if now is None else now
    with Session(store.engine) as session:
        since = backends.db_time(store.backend_name, now - REASON_USE_WINDOW_S)
        uses = dict(session.execute(
            select(DowntimeEvent.reason_id, func.count()).where(DowntimeEvent.reason_id.is_not(None),
                                                                 DowntimeEvent.start >= since)
            .group_by(DowntimeEvent.reason_id)).all())
        ids = {r.code: r.id for r in session.scalars(select(ReasonCode))}
    out = [{**r, "uses": int(uses.get(ids.get(r["code"]), 0))} for r in reason_codes(store)]
    out.sort(key=lambda r: (-r["uses"], r["planned"], r["name"]))
    return out


def current_stop(store, machine_id: str, now: float | None = None) -> dict | None:
    """The stop that asks for a reason (downtime_events' dict): the machine's unplanned stop going on now, else its
    last one that ended within RECENT_STOP_S (the machine restarted before anyone came to the terminal; with the
    reason given, if one was, so that it can be changed); None when there is neither."""
    now = time.time() if now is None else now
    events = [e for e in downtime_events(store, now - STOP_LOOKBACK_S, now + 1, scope="machine", key=machine_id,
                                         reconcile=False)
              if not e["planned"] or e["source"] == "operator"]  # a stop an operator called planned stays shown
    going_on = next((e for e in events if e["open"]), None)
    if going_on is not None:
        return going_on
    return next((e for e in events if not e["minor"] and e["end"] is not None and now - e["end"] <= RECENT_STOP_S),
                None)


def last_stops(store, machine_id: str, limit: int = 5, now: float | None = None) -> list[dict]:
    """The machine's latest stops of the last 12 h (ongoing or ended) that were not planned, or that an operator
    gave a reason, newest first."""
    now = time.time() if now is None else now
    events = downtime_events(store, now - STOP_LOOKBACK_S, now + 1, scope="machine", key=machine_id,
                             include_minor=False, reconcile=False)
    return [e for e in events if not e["planned"] or e["source"] == "operator"][:limit]


def add_manual_rejects(store, machine_id: str, count, note: str = "", now: float | None = None) -> dict:
    """Parts an operator found bad after the machine counted them good: taken off the good count of the machine's
    latest count rows (the newest first, within REJECT_LOOKBACK_S before `now`) and added to their rejects, so the
    OEE engine's quality (good / total) drops by them, as every page and the API read it (the writer adds its
    increments onto a row, so the change stays). Audited as quality.manual_reject. Raises DowntimeError naming
    the field."""
    if isinstance(count, str):
        count = count.strip()
        count = int(count) if count.isdigit() else None
    elif isinstance(count, float) and count.is_integer():
        count = int(count)  # a number input sends 3.0 as well as 3
    if isinstance(count, bool) or not isinstance(count, int) or not 0 < count <= MAX_MANUAL_REJECTS:
        raise DowntimeError("count", f"a whole number of rejected parts from 1 to {MAX_MANUAL_REJECTS:,}")
    note = (note or "").strip()
    if len(note) > 500:
        raise DowntimeError("note", "at most 500 characters")
    now = time.time() if now is None else now
    name = store.backend_name
    with Session(store.engine) as session, session.begin():
        m = session.scalar(select(Machine).where(Machine.machine_id == machine_id))
        if m is None:
            raise DowntimeError("machine", f"machine {machine_id!r} does not exist")
        rows = session.execute(text(
            "SELECT start, good FROM production_counts WHERE machine_id = :m AND start <= :t AND start >= :lo "
            "AND good > 0 ORDER BY start DESC LIMIT 1000"),
            {"m": m.id, "t": backends.db_time(name, now),
             "lo": backends.db_time(name, now - REJECT_LOOKBACK_S)}).all()
        available = sum(int(g) for _s, g in rows)
        if available < count:
            raise DowntimeError("count", f"{machine_id} counted {available:,} good parts in the last "
                                         f"{REJECT_LOOKBACK_S // 3600} h; at most that many can be rejects")
        left, changed = count, []
        for start, good in rows:
            take = min(int(good), left)
            session.execute(text("UPDATE production_counts SET good = good - :n, reject = reject + :n "
                                 "WHERE machine_id = :m AND start = :s"), {"n": take, "m": m.id, "s": start})
            changed.append(take)
            left -= take
            if not left:
                break
        audit.record(session, None, "quality.manual_reject",
                     f"machine {machine_id} {datetime.fromtimestamp(now, UTC).isoformat(timespec='seconds')}",
                     None, {"rejects": count, "note": note, "rows": len(changed)})
    return {"machine_id": machine_id, "time": now, "rejects": count, "note": note}


def _base_name(name: str) -> str:
    return name.replace(":", ".").rsplit(".", 1)[-1].replace("_", "").lower()


def order_tags(store, machine_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per machine (db id): the tag ids that carry its order's quantity and good count, {"quantity", "good"}."""
    if not machine_ids:
        return {}
    owner = func.coalesce(Tag.machine_id, Connection.machine_id)
    # Columns through a plain connection, not a Session: every tag of the board's machines (9,000 at 100 machines)
    # went through the ORM's row loading, 13-37 ms against 6 ms, every time the andon board reads its numbers.
    with store.engine.connect() as conn:
        rows = conn.execute(select(owner, Tag.id, Tag.name).join(Connection, Tag.connection_id == Connection.id)
                            .where(owner.in_(machine_ids)).order_by(Tag.id)).all()
    out: dict[int, dict[str, int]] = {}
    for mid, tid, name in rows:
        base = _base_name(name or "")
        kind = "quantity" if base in ORDER_QUANTITY_NAMES else "good" if base in ORDER_GOOD_NAMES else None
        if kind:
            out.setdefault(mid, {}).setdefault(kind, tid)
    return out
