"""`python app.py create-admin --username NAME [--password-stdin] [--reset] [--database-url ... --data-dir ...]`

Makes an admin (or, with --reset, gives an existing user a new password and the admin role again: the way back in
when the last admin's password is lost). The password is asked twice at a prompt, or read as one line from stdin
with --password-stdin (for scripts: `printf '%s\\n' "$PW" | python app.py create-admin --username ops
--password-stdin`). It never appears on the command line, in the output or in the log.
"""
from __future__ import annotations

import argparse
import getpass
import sys

from auth import users
from processes.settings import SettingsError, from_args


def create_admin(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python app.py create-admin",
                                     description="Create an admin user (or --reset one's password).")
    parser.add_argument("--username", required=True, help="the admin's user name")
    parser.add_argument("--password-stdin", action="store_true", help="read the password from stdin, one line")
    parser.add_argument("--reset", action="store_true",
                        help="the user exists: set this password, make them an active admin again")
    args, rest = parser.parse_known_args(argv)
    try:
        settings = from_args(rest)  # --database-url, --data-dir and their OEE_* variables, as the app reads them
        users.check_username(args.username)
    except (SettingsError, users.UserError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"Password for {args.username}: ")
        if getpass.getpass("Again: ") != password:
            print("error: password: the two entries differ", file=sys.stderr)
            return 2
    try:
        users.check_password(password)
    except users.UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from db.store import open_store_for_command

    store = open_store_for_command(settings.effective_database_url, timescaledb=settings.timescaledb)
    if store is None:
        return 2
    try:
        existing = users.by_name(store.engine, args.username)
        if existing is not None and not args.reset:
            print(f"error: username: {args.username!r} exists; add --reset to give it this password and the "
                  "admin role", file=sys.stderr)
            return 2
        if existing is None:
            users.create(store.engine, args.username, password, "admin", actor="system")
            print(f"created the admin {args.username!r}")
        else:
            users.set_password(store.engine, existing.id, password, actor="system")
            users.update(store.engine, existing.id, {"role": "admin", "active": True}, actor="system")
            print(f"reset the password of {args.username!r}; it is an active admin")
    finally:
        store.close()
    return 0
