"""Schema versions: Alembic migrations applied on start, and a refusal to touch a database newer than the app."""
from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from db import backend as backends

log = logging.getLogger(__name__)
SCRIPT_LOCATION = Path(__file__).parent / "migrations"
MIGRATION_LOCK_KEY = 0x4F45455F4D494752  # "OEE_MIGR": one advisory lock for every process migrating this database


class SchemaTooNewError(RuntimeError):
    """The database was migrated by a newer version of the app; this one must not write to it."""


def _config(connection: Connection | None = None, backend: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION))
    cfg.attributes["connection"] = connection
    cfg.attributes["backend"] = backend
    return cfg


def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head_revision() -> str:
    return script_directory().get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, backend: str) -> str:
    """Bring the schema to this app's head. Returns the revision now in force.

    Processes that start together on one PostgreSQL database (a collector and web workers) take turns: the
    first migrates, the others wait for it on an advisory lock and then find the schema at head. Without the
    lock two of them created alembic_version at once and one died ("Worker failed to boot")."""
    known = {rev.revision for rev in script_directory().walk_revisions()}
    head = head_revision()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        current = MigrationContext.configure(conn).get_current_revision()
        if current is not None and current not in known:
            raise SchemaTooNewError(
                f"the database has schema version {current}, which this app does not know (it knows up to "
                f"{head}): it was written by a newer version. Upgrade the app; refusing to start so as not to "
                "damage it."
            )
        if current != head:
            log.info("migrating database schema from %s to %s", current or "empty", head)
            command.upgrade(_config(conn, backend), "head")
            if current is None:
                backends.remember_backend(conn, backend)
    return head
