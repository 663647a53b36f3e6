"""A deadline for the work of one request: set by the web side (auth.guards) when a request begins, checked inside
the long loops of db/ and enforced on the database itself, so that a question that runs too long is stopped and
answered (503, in words) instead of running on after its client gave up.

The deadline lives in a context variable: each request's thread sees its own, and work outside a request (the
writer, the collectors, the scheduler) has none and is never cut short.

    token = deadline.start(30.0)   ...   deadline.reset(token)
    deadline.check()               # in a loop: raises DeadlineExceeded once the time is up
    deadline.install(engine)       # SQLite: abort a running statement; PostgreSQL: statement_timeout
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar, Token

from sqlalchemy import event
from sqlalchemy.engine import Engine

_until: ContextVar[tuple[float, float] | None] = ContextVar("oee_deadline", default=None)  # (monotonic end, seconds)
SQLITE_CHECK_EVERY = 20_000  # SQLite virtual machine steps between two looks at the clock (well under a millisecond)


class DeadlineExceeded(TimeoutError):
    """The request's work ran past its deadline and was stopped."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        super().__init__(f"this request ran past its deadline of {seconds:g} s and was stopped; ask for a shorter "
                         "range, a coarser bucket or fewer machines")


def start(seconds: float) -> Token:
    return _until.set((time.monotonic() + seconds, seconds))


def reset(token: Token) -> None:
    _until.reset(token)


@contextmanager
def within(seconds: float):
    token = start(seconds)
    try:
        yield
    finally:
        reset(token)


def remaining() -> float | None:
    """Seconds left (0 or less once past it), or None without a deadline."""
    current = _until.get()
    return None if current is None else current[0] - time.monotonic()


def expired() -> bool:
    left = remaining()
    return left is not None and left <= 0


def check() -> None:
    current = _until.get()
    if current is not None and time.monotonic() >= current[0]:
        raise DeadlineExceeded(current[1])


def seconds() -> float | None:
    """The deadline's length, for messages (None without one)."""
    current = _until.get()
    return None if current is None else current[1]


def _sqlite_progress(dbapi_connection) -> None:
    current = _until.get()
    if current is None:
        dbapi_connection.set_progress_handler(None, 0)
        return
    end = current[0]
    # A non-zero return interrupts the statement (sqlite3.OperationalError: interrupted).
    dbapi_connection.set_progress_handler(lambda: 1 if time.monotonic() >= end else 0, SQLITE_CHECK_EVERY)


def _postgresql_timeout(conn) -> None:
    left = remaining()
    if left is None:
        return  # outside a request: no round trip, and no timeout (SET LOCAL below never outlives a transaction)
    # On the connection, not on the cursor: a server-side cursor (exports) cannot run SET. LOCAL: the setting ends
    # with the transaction, so a pooled connection never carries one request's timeout into other work.
    conn.connection.dbapi_connection.execute(f"SET LOCAL statement_timeout = {max(1, int(left * 1000))}")


def install(engine: Engine) -> None:
    """Make statements of a request with a deadline stop at it: SQLite checks the clock while it works, and
    PostgreSQL gets the time left as the transaction's statement_timeout."""
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "before_cursor_execute")
        def _sqlite(conn, cursor, statement, parameters, context, executemany):
            _sqlite_progress(conn.connection.dbapi_connection)
    elif engine.dialect.name == "postgresql":
        @event.listens_for(engine, "before_cursor_execute")
        def _postgresql(conn, cursor, statement, parameters, context, executemany):
            _postgresql_timeout(conn)
