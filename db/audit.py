"""The audit log: who changed what and when (before and after), and every value written to a PLC.

record() writes one entry on the connection or session of the change itself, so that the entry and the change
commit together or not at all: a change that fails leaves no entry, and no change goes unrecorded. Secrets
(protocol_config keys that keys.credentials.is_secret_key calls secret, and anything stored encrypted) are
replaced by '***' before they reach the table.

The actor is who made the change: current_actor() takes it from flask.g.actor (set by the authentication's
before_request: a user name, 'token:<user>/<name>', 'embed:...', 'anonymous'), and is 'system' outside a request
(start-up, the demo, command-line tools). The client address comes from the request.

Actions are '<kind>.<verb>': machine.create, machine.update, machine.delete, machine.enable, tags.replace,
tag.write, settings.product.update, settings.import, downtime.update, downtime.split, user.create, ...
"""
from __future__ import annotations

import base64
import math
from collections.abc import Iterator
from datetime import date, datetime, time, timezone
from decimal import Decimal

from sqlalchemy import and_, func, insert, or_, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from db.models import AuditEntry
from keys.credentials import is_secret_key

MASK = "***"
SYSTEM = "system"
ANONYMOUS = "anonymous"
MAX_TEXT = 200  # actor and target columns
audit_table = AuditEntry.__table__


def _is_envelope(value) -> bool:
    """An encrypted value as keys.credentials stores it: {"$enc": "v1:..."}."""
    return isinstance(value, dict) and set(value) == {"$enc"}


def mask(value):
    """value made fit for the audit log: secrets (by key name, and encrypted envelopes anywhere) are '***', and
    everything is plain JSON (datetimes as ISO 8601 text, times as HH:MM:SS, bytes as base64)."""
    if _is_envelope(value):
        return MASK
    if isinstance(value, dict):
        return {str(k): (MASK if v not in (None, "") and is_secret_key(k) else mask(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [mask(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    return str(value)


def _wrap(value):
    """before/after are JSON objects in the table; a scalar (a written value) goes in as {"value": ...}."""
    if value is None:
        return None
    value = mask(value)
    return value if isinstance(value, dict) else {"value": value}


def current_actor() -> str:
    """flask.g.actor inside a request ('anonymous' when the request carries none), else 'system'."""
    try:
        from flask import g, has_request_context
    except ImportError:  # pragma: no cover - flask is a dependency of the app
        return SYSTEM
    if not has_request_context():
        return SYSTEM
    return str(getattr(g, "actor", None) or ANONYMOUS)


def current_source_ip() -> str | None:
    """The client's address of the current request (flask.g.client_ip when the authentication set one, e.g.
    behind a trusted proxy; else the socket's peer), None outside a request."""
    try:
        from flask import g, has_request_context, request
    except ImportError:  # pragma: no cover
        return None
    if not has_request_context():
        return None
    ip = getattr(g, "client_ip", None) or request.remote_addr
    return str(ip)[:64] if ip else None


def record(conn_or_session: Connection | Session | Engine, actor: str | None, action: str, target: str,
           before=None, after=None, source_ip: str | None = None) -> None:
    """One audit entry, written on conn_or_session so that it commits (or rolls back) with the change it
    describes. actor None: current_actor(); source_ip None: the current request's client address. before/after:
    what the target was and became (a dict, or a scalar such as a written value); secrets are masked here.
    An Engine writes the entry in a transaction of its own (for events that change nothing else)."""
    if not action or not isinstance(action, str):
        raise ValueError("audit action: give a name such as machine.update")
    values = {
        "time": datetime.now(timezone.utc),
        "actor": (actor if actor is not None else current_actor())[:MAX_TEXT],
        "action": action[:64],
        "target": str(target)[:MAX_TEXT],
        "before": _wrap(before),
        "after": _wrap(after),
        "source_ip": source_ip if source_ip is not None else current_source_ip(),
    }
    if isinstance(conn_or_session, Engine):
        with conn_or_session.begin() as conn:
            conn.execute(insert(audit_table).values(**values))
        return
    conn_or_session.execute(insert(audit_table).values(**values))


# --- reading it back -----------------------------------------------------------------------------------------------


def _like(text: str) -> str:
    return "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _filtered(stmt, *, actor: str | None = None, action: str | None = None, target: str | None = None,
              since: datetime | None = None, until: datetime | None = None):
    t = audit_table.c
    conds = []
    if actor:
        conds.append(func.lower(t.actor).like(_like(actor), escape="\\"))
    if action:
        # 'machine' finds machine.create, machine.update, ...; 'machine.update' finds exactly that.
        a = action.strip().rstrip(".*")
        conds.append(or_(t.action == a, t.action.like(a.replace("\\", "\\\\").replace("%", "\\%")
                                                      .replace("_", "\\_") + ".%", escape="\\")))
    if target:
        conds.append(func.lower(t.target).like(_like(target), escape="\\"))
    if since is not None:
        conds.append(t.time >= since)
    if until is not None:
        conds.append(t.time < until)
    return stmt.where(and_(*conds)) if conds else stmt


def _row(r) -> dict:
    when = r.time if r.time.tzinfo else r.time.replace(tzinfo=timezone.utc)
    return {"id": r.id, "time": when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"), "actor": r.actor,
            "action": r.action, "target": r.target, "before": r.before, "after": r.after, "source_ip": r.source_ip}


def list_entries(engine: Engine, *, offset: int = 0, limit: int = 50, **filters) -> tuple[int, list[dict]]:
    """(total matching, one page of entries newest first). Filters: actor (text within), action (exact, or a
    prefix such as 'machine' for machine.*), target (text within), since/until (aware datetimes, until
    exclusive)."""
    with engine.connect() as conn:
        total = conn.scalar(_filtered(select(func.count()).select_from(audit_table), **filters))
        rows = conn.execute(_filtered(select(audit_table), **filters)
                            .order_by(audit_table.c.time.desc(), audit_table.c.id.desc())
                            .offset(offset).limit(limit)).all()
    return total or 0, [_row(r) for r in rows]


def iter_entries(engine: Engine, *, batch: int = 1000, **filters) -> Iterator[dict]:
    """Every matching entry newest first, read in batches (keyset on time, id) for a streamed export."""
    last = None
    t = audit_table.c
    while True:
        stmt = _filtered(select(audit_table), **filters)
        if last is not None:
            stmt = stmt.where(or_(t.time < last[0], and_(t.time == last[0], t.id < last[1])))
        with engine.connect() as conn:
            rows = conn.execute(stmt.order_by(t.time.desc(), t.id.desc()).limit(batch)).all()
        for r in rows:
            yield _row(r)
        if len(rows) < batch:
            return
        last = (rows[-1].time, rows[-1].id)


def changes(before, after, prefix: str = "") -> list[tuple[str, object, object]]:
    """What differs between before and after, as (path, old, new) with dotted paths ('protocol_config.port',
    'tags[2].address'); for showing an entry. Unchanged fields are left out."""
    out: list[tuple[str, object, object]] = []
    if isinstance(before, dict) and isinstance(after, dict):
        for key in list(before) + [k for k in after if k not in before]:
            path = f"{prefix}.{key}" if prefix else str(key)
            out += changes(before.get(key), after.get(key), path)
        return out
    if isinstance(before, list) and isinstance(after, list) and before != after:
        for i in range(max(len(before), len(after))):
            b = before[i] if i < len(before) else None
            a = after[i] if i < len(after) else None
            out += changes(b, a, f"{prefix}[{i}]")
        return out
    if isinstance(before, dict) and after is None:
        for key, value in before.items():
            out += changes(value, None, f"{prefix}.{key}" if prefix else str(key))
        return out
    if before is None and isinstance(after, dict):
        for key, value in after.items():
            out += changes(None, value, f"{prefix}.{key}" if prefix else str(key))
        return out
    if before != after:
        out.append((prefix or "value", before, after))
    return out
