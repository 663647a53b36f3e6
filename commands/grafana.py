"""`python app.py grafana-role`: create or update the read-only database role that Grafana connects as.
`python app.py oee-summary --days 90`: compute the Grafana OEE table (oee_summary) for past days.

    python app.py grafana-role --password 'long secret' [--name oee_grafana] [--database-url postgresql://...]

The password can come from OEE_GRAFANA_PASSWORD instead (it then stays out of the shell history); the database
from --database-url or OEE_DATABASE_URL, as for the app. The schema is migrated first, so the views exist. The
user in the URL needs CREATEROLE (or is the database owner with it); otherwise the command prints the SQL for an
administrator to run.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

from db.engine import safe_url
from db.grafana import DEFAULT_ROLE, RoleError, create_readonly_role
from db.store import open_store_for_command


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python app.py grafana-role",
                                description="Create or update a read-only PostgreSQL role for Grafana: it can "
                                            "SELECT the grafana_* views and nothing else.")
    p.add_argument("--password", default=os.environ.get("OEE_GRAFANA_PASSWORD", ""),
                   help="the role's password, at least 8 characters [OEE_GRAFANA_PASSWORD]")
    p.add_argument("--name", default=os.environ.get("OEE_GRAFANA_ROLE", DEFAULT_ROLE),
                   help=f"the role's name [OEE_GRAFANA_ROLE] (default {DEFAULT_ROLE})")
    p.add_argument("--database-url", default=os.environ.get("OEE_DATABASE_URL", ""),
                   help="postgresql://user:pass@host:5432/db, a user allowed to create roles [OEE_DATABASE_URL]")
    p.add_argument("--timescaledb", default=os.environ.get("OEE_TIMESCALEDB", "auto"),
                   help="as for the app: auto, off or require [OEE_TIMESCALEDB]")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")  # our lines say it
    if not args.database_url:
        print("error: --database-url [OEE_DATABASE_URL]: give the PostgreSQL database Grafana should read",
              file=sys.stderr)
        return 2
    if not args.password:
        print("error: --password [OEE_GRAFANA_PASSWORD]: give the role's password", file=sys.stderr)
        return 2
    store = open_store_for_command(args.database_url, timescaledb=args.timescaledb)
    if store is None:
        return 2
    try:
        views = create_readonly_role(store.engine, args.name, args.password)
    except RoleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(f"role {args.name} on {safe_url(args.database_url)}: read-only, may SELECT {', '.join(views)}. "
          "Give it to Grafana (grafana/provisioning/datasources/oee.yaml: OEE_GRAFANA_USER, OEE_GRAFANA_PASSWORD).")
    return 0


def summary_main(argv: list[str] | None = None) -> int:
    """python app.py oee-summary --days N: fill oee_summary for the last N days, a week at a time."""
    from datetime import datetime, timezone

    from db.oee_summary import backfill

    p = argparse.ArgumentParser(prog="python app.py oee-summary",
                                description="Compute the OEE by hour and shift that Grafana reads (oee_summary) "
                                            "for past days; the app keeps the last 7 days itself.")
    p.add_argument("--days", type=float, default=30.0, help="how many days back from now (default 30)")
    p.add_argument("--database-url", default=os.environ.get("OEE_DATABASE_URL", ""),
                   help="the app's PostgreSQL database [OEE_DATABASE_URL]")
    p.add_argument("--timescaledb", default=os.environ.get("OEE_TIMESCALEDB", "auto"),
                   help="as for the app: auto, off or require [OEE_TIMESCALEDB]")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.database_url.startswith("postgresql"):
        print("error: --database-url [OEE_DATABASE_URL]: give the app's PostgreSQL database (Grafana cannot read "
              "SQLite, so there is no oee_summary to fill there)", file=sys.stderr)
        return 2
    if not 0 < args.days <= 3660:
        print(f"error: --days: {args.days:g}; give a number of days above 0 and at most 3660", file=sys.stderr)
        return 2
    store = open_store_for_command(args.database_url, timescaledb=args.timescaledb)
    if store is None:
        return 2

    def progress(a: float, b: float, rows: int) -> None:
        day = lambda t: datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M")  # noqa: E731
        print(f"{day(a)} .. {day(b)} UTC: {rows} rows", flush=True)

    try:
        import time

        total = backfill(store, time.time() - args.days * 86400, progress=progress)
    finally:
        store.close()
    print(f"oee_summary: {total} rows for the last {args.days:g} days on {safe_url(args.database_url)}")
    return 0
