"""The login rate limit: 5 failed logins for one user name, or 20 from one client address, within 5 minutes, and
further logins for it are refused with 429 and Retry-After until the oldest of those failures is 5 minutes old.

Failures are rows in the database (login_failures), so every web process and every host on one database counts
the same failures. The address is the socket's peer (flask.g.client_ip); behind a reverse proxy that is the proxy,
so the address limit then applies to everyone behind it, and the user name limit still holds. A successful login
clears the user name's failures (not the address's).
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Engine

from db.models import LoginFailure

WINDOW_S = 300
LIMITS = {"user": 5, "ip": 20}
table = LoginFailure.__table__


def keys(username: str, address: str | None) -> dict[str, str]:
    out = {"user": "user:" + (username or "").strip().lower()[:150]}
    if address:
        out["ip"] = "ip:" + address[:150]
    return out


def retry_after(engine: Engine, username: str, address: str | None, now: datetime | None = None) -> int:
    """Seconds until a login may be tried again; 0 when it may be now."""
    now = now or datetime.now(timezone.utc)
    since = now - timedelta(seconds=WINDOW_S)
    wait = 0.0
    with engine.connect() as conn:
        for kind, key in keys(username, address).items():
            limit = LIMITS[kind]
            times = conn.scalars(select(table.c.time).where(table.c.key == key, table.c.time > since)
                                 .order_by(table.c.time.desc()).limit(limit)).all()
            if len(times) >= limit:
                wait = max(wait, (times[limit - 1] + timedelta(seconds=WINDOW_S) - now).total_seconds())
    return max(1, math.ceil(wait)) if wait > 0 else 0


def failed(engine: Engine, username: str, address: str | None, now: datetime | None = None) -> None:
    now = now or datetime.now(timezone.utc)
    with engine.begin() as conn:
        conn.execute(delete(table).where(table.c.time <= now - timedelta(seconds=WINDOW_S)))
        conn.execute(insert(table), [{"key": k, "time": now} for k in keys(username, address).values()])


def succeeded(engine: Engine, username: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(table).where(table.c.key == keys(username, None)["user"]))
