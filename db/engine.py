"""Turning a database URL into a working engine, or into one clear line saying why not."""
from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from db import deadline


class DatabaseConfigError(Exception):
    """A database URL that is malformed, unsupported or unreachable. The message is meant for the user."""


DEFAULT_SQLITE_PATH = Path("data") / "oee.sqlite3"


def default_database_url(data_dir: str | os.PathLike = "data") -> str:
    return f"sqlite:///{Path(data_dir) / 'oee.sqlite3'}"


def safe_url(url: str | URL) -> str:
    """The URL as it may be shown: password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # a URL too broken to parse cannot hold a password we can find; show only its scheme
        s = str(url)
        return s.split("://", 1)[0] + "://…" if "://" in s else "<unparseable URL>"


def normalize_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseConfigError(
            f"database URL {safe_url(url)!r} is malformed: expected sqlite:///path/to/file.sqlite3 or "
            "postgresql://user:password@host:5432/dbname"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        # psycopg 3 is the driver we ship; 'postgresql://' and 'postgres://' both mean it.
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "postgres":
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise DatabaseConfigError(
                f"database URL {safe_url(url)!r}: an in-memory SQLite database would lose everything at exit; "
                "give a file path, e.g. sqlite:///data/oee.sqlite3"
            )
        return parsed.set(drivername="sqlite")
    raise DatabaseConfigError(
        f"database URL {safe_url(url)!r}: backend {backend!r} is not supported; use sqlite:/// or postgresql://"
    )


# A new SQLite database gets 1 KiB pages, not SQLite's 4 KiB. A commit writes every page it changed to the WAL
# whole, and one poll cycle adds a row to the end of each tag's run in ix_samples_tag_time: one leaf page per tag,
# so 25,000 tags wrote ~100 MB of WAL a commit for ~1 MB of rows. Two processes x 25,000 tags at 1 Hz, one file,
# 30 s (scratch measurement, 2-core EPYC): WAL grown to 2.0-5.1 GiB at 4 KiB, 0.36-0.43 GiB at 1 KiB; commit p50
# 0.69-1.4 s against 0.57-0.59 s (512 B: 0.77 s, a deeper tree); bench.collect on a file with history: README
# [perf]. In a new file's first minutes, while many tags' newest rows still share a page, 4 KiB pages cost less.
# The size is fixed when the file is created: an existing database keeps its own (README: how to convert one).
SQLITE_PAGE_SIZE = 1024
SQLITE_BUSY_TIMEOUT_MS = 10_000


def _sqlite_pragmas(dbapi_connection, _record):
    cur = dbapi_connection.cursor()
    cur.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")  # before WAL: a no-op on a database that has pages
    # WAL lets pages read while the writer commits; NORMAL sync is durable across app crashes (not power loss
    # of the last transaction), the usual trade for a time-series recorder.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str, *, connect_timeout_s: int = 5, check: bool = True) -> Engine:
    """Build the engine and, with check, prove the database answers. Raises DatabaseConfigError."""
    parsed = normalize_url(url)
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseConfigError(f"database URL {shown!r}: cannot create folder {path.parent}: {exc.strerror}")
        engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(
            parsed,
            connect_args={"connect_timeout": connect_timeout_s, "application_name": "oee"},
            pool_pre_ping=True,
            pool_size=5,
            max_overflow=10,
        )
    deadline.install(engine)  # statements of a request stop at its deadline (db/deadline.py)
    if check:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except OperationalError as exc:
            engine.dispose()
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc).splitlines()[0]
            raise DatabaseConfigError(
                f"cannot connect to database {shown!r}: {reason}. Check that the server is running and reachable "
                "from here, and the host, port, user, password and database name in the URL."
            ) from None
        except SQLAlchemyError as exc:
            engine.dispose()
            raise DatabaseConfigError(f"database {shown!r} refused the first query: {exc.__class__.__name__}: "
                                      f"{str(exc).splitlines()[0]}") from None
    return engine
