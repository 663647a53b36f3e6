"""A read-only database role for Grafana: it may read the grafana_* views (migration 0002) and nothing else.

Views run with their owner's rights, so the role needs SELECT on the views only: no table is granted, and every
transaction it starts is read-only (default_transaction_read_only), with a statement timeout so that a heavy
dashboard cannot hold the database. Running it again changes the password and grants the views again (after an
upgrade that added views).
"""
from __future__ import annotations

import re

from psycopg import errors, sql
from sqlalchemy.engine import Engine

VIEWS = ("grafana_machines", "grafana_oee_hourly", "grafana_oee_shift", "grafana_machine_states",
         "grafana_downtime_events")
DEFAULT_ROLE = "oee_grafana"
ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}\Z")


class RoleError(Exception):
    """Why the role could not be made, in one line meant for the person running the command."""


def create_readonly_role(engine: Engine, name: str = DEFAULT_ROLE, password: str = "",
                         statement_timeout: str = "30s") -> list[str]:
    """Create (or update) the role; returns the views it may read. Raises RoleError."""
    if engine.dialect.name != "postgresql":
        raise RoleError("Grafana reads PostgreSQL or TimescaleDB; this database is SQLite. Point --database-url "
                        "at the PostgreSQL database the app writes to.")
    if not ROLE_NAME.match(name):
        raise RoleError(f"role name {name!r}: use lower-case letters, digits and _ (at most 63), e.g. oee_grafana")
    if len(password) < 8:
        raise RoleError("the password must have at least 8 characters")
    role = sql.Identifier(name)
    database = "<database>"
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        try:
            with raw.cursor() as cur:
                cur.execute("SELECT current_database(), current_user")
                database, owner = cur.fetchone()
                cur.execute("SELECT table_name FROM information_schema.views WHERE table_schema = 'public' "
                            "AND table_name = ANY(%s) ORDER BY table_name", (list(VIEWS),))
                views = [r[0] for r in cur.fetchall()]
                if len(views) != len(VIEWS):
                    missing = sorted(set(VIEWS) - set(views))
                    raise RoleError(f"the views {', '.join(missing)} are missing: start the app once on this "
                                    "database (it migrates the schema), then run this again")
                if name == owner:
                    raise RoleError(f"{name!r} is the role the app itself connects as; give Grafana a role of its own")
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,))
                verb = "ALTER" if cur.fetchone() else "CREATE"
                cur.execute(sql.SQL(verb + " ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT "
                                    "PASSWORD {}").format(role, sql.Literal(password)))
                cur.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(role))
                cur.execute(sql.SQL("ALTER ROLE {} SET statement_timeout = {}").format(
                    role, sql.Literal(statement_timeout)))
                cur.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), role))
                cur.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role))
                cur.execute(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}").format(role))
                cur.execute(sql.SQL("REVOKE CREATE ON SCHEMA public FROM {}").format(role))
                for view in views:
                    cur.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(view), role))
            raw.commit()  # the driver's own transaction: SQLAlchemy did not begin one here
        except errors.InsufficientPrivilege as exc:
            raw.rollback()
            raise RoleError(
                f"the app's database user may not create roles ({str(exc).strip().splitlines()[0]}). Run this as a "
                "user with CREATEROLE (e.g. --database-url with the postgres user), or have an administrator run: "
                f"CREATE ROLE {name} LOGIN PASSWORD '...'; GRANT CONNECT ON DATABASE {database} TO {name}; "
                f"GRANT USAGE ON SCHEMA public TO {name}; GRANT SELECT ON {', '.join(VIEWS)} TO {name}; "
                f"ALTER ROLE {name} SET default_transaction_read_only = on") from None
    return views
