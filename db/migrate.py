"""Schema versions: Alembic migrations applied on start, and a refusal to touch a database newer than the app."""
from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from db import backend as backends

log = logging.getLogger(__name__)
SCRIPT_LOCATION = Path(__file__).parent / "migrations"


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
    """Bring the schema to this app's head. Returns the revision now in force."""
    known = {rev.revision for rev in script_directory().walk_revisions()}
    current = current_revision(engine)
    if current is not None and current not in known:
        raise SchemaTooNewError(
            f"the database has schema version {current}, which this app does not know (it knows up to "
            f"{head_revision()}): it was written by a newer version. Upgrade the app; refusing to start so "
            "as not to damage it."
        )
    head = head_revision()
    if current != head:
        log.info("migrating database schema from %s to %s", current or "empty", head)
        with engine.begin() as conn:
            command.upgrade(_config(conn, backend), "head")
            if current is None:
                backends.remember_backend(conn, backend)
    return head
