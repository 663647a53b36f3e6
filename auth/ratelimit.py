"""The login rate limit: brute force from one address is stopped, and nobody can lock a known user out.

Within a window of 5 minutes (WINDOW_S):
- 5 failed logins for one user name from one client address (the pair) and that address must wait before it tries
  that name again: 429 with Retry-After, until the oldest of those failures is 5 minutes old;
- 20 failed logins from one address, whatever the names, and that address must wait (429) for every name;
- failed logins for one user name from everywhere only slow that name down: from the 10th on (USER_SLOW_AFTER),
  every login attempt for it waits a second before its password is checked, one more per further 10 failures,
  at most USER_MAX_DELAY_S. The right password from an address that is not itself held back always gets in.

So a stranger who knows the name admin can hold back only their own address, never admin's own (the earlier rule,
5 failures for a name from anywhere lock that name, let anyone lock admin out for 5 minutes at a time), and a
spread-out guesser is slowed for that name.

Failures are rows in the database (login_failures), so every web process and every host on one database counts
the same failures. The address is the socket's peer (flask.g.client_ip); behind a reverse proxy that is the proxy,
so the address limits then apply to everyone behind it together (and the user name slows down as above). A
successful login clears its pair's failures; the name's count goes on slowing attempts until its window passes.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Engine

from db.models import LoginFailure

WINDOW_S = 300
LIMITS = {"pair": 5, "ip": 20}  # failures within the window before the pair, or the address, must wait
USER_SLOW_AFTER = 10  # failures for a name (from anywhere) within the window before its logins slow down
USER_DELAY_STEP = 10  # one second more per this many further failures
USER_MAX_DELAY_S = 5.0
table = LoginFailure.__table__


def keys(username: str, address: str | None) -> dict[str, str]:
    """The keys one failure counts against: the name, the address, and the pair (each at most 200 characters)."""
    name = (username or "").strip().lower()[:140]
    where = (address or "unknown")[:45]
    return {"user": "user:" + name, "ip": "ip:" + where, "pair": f"pair:{where}|{name}"}


def retry_after(engine: Engine, username: str, address: str | None, now: datetime | None = None) -> int:
    """Seconds until this address may try this name again (the pair and address limits); 0 when it may now."""
    now = now or datetime.now(timezone.utc)
    since = now - timedelta(seconds=WINDOW_S)
    wait = 0.0
    held = keys(username, address)
    with engine.connect() as conn:
        for kind, limit in LIMITS.items():
            times = conn.scalars(select(table.c.time).where(table.c.key == held[kind], table.c.time > since)
                                 .order_by(table.c.time.desc()).limit(limit)).all()
            if len(times) >= limit:
                wait = max(wait, (times[limit - 1] + timedelta(seconds=WINDOW_S) - now).total_seconds())
    return max(1, math.ceil(wait)) if wait > 0 else 0


def delay_s(engine: Engine, username: str, now: datetime | None = None) -> float:
    """How long a login attempt for this name waits before its password is checked (0: none). It slows guessing
    spread over many addresses; it never refuses."""
    now = now or datetime.now(timezone.utc)
    with engine.connect() as conn:
        failures = conn.scalar(select(func.count()).select_from(table).where(
            table.c.key == keys(username, None)["user"], table.c.time > now - timedelta(seconds=WINDOW_S)))
    if failures < USER_SLOW_AFTER:
        return 0.0
    return min(USER_MAX_DELAY_S, 1.0 + (failures - USER_SLOW_AFTER) // USER_DELAY_STEP)


def failed(engine: Engine, username: str, address: str | None, now: datetime | None = None) -> None:
    now = now or datetime.now(timezone.utc)
    with engine.begin() as conn:
        conn.execute(delete(table).where(table.c.time <= now - timedelta(seconds=WINDOW_S)))
        conn.execute(insert(table), [{"key": k, "time": now} for k in keys(username, address).values()])


def succeeded(engine: Engine, username: str, address: str | None = None) -> None:
    """A right password: this address's failures for this name are forgiven."""
    with engine.begin() as conn:
        conn.execute(delete(table).where(table.c.key == keys(username, address)["pair"]))
