"""Users: create, authenticate, change, list. Passwords only ever as argon2 hashes (auth.passwords).

Every change is written to the audit log in its own transaction (db.audit.record): user.create, user.update,
user.password (never the password itself).
"""
from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timezone

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from auth import passwords
from db import audit
from db.models import USER_ROLES, User

ROLE_RANK = {role: i + 1 for i, role in enumerate(USER_ROLES)}  # viewer 1 < operator 2 < engineer 3 < admin 4
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
FIRST_ADMIN = "admin"


class UserError(ValueError):
    """Bad input or a refused change; field names what to fix."""

    def __init__(self, field: str, message: str, status: int = 400):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status = status


def rank(role: str | None) -> int:
    return ROLE_RANK.get(role or "", 0)


def now() -> datetime:
    return datetime.now(timezone.utc)


def check_username(name) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise UserError("username", "1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit")
    return name


def check_role(role) -> str:
    if role not in USER_ROLES:
        raise UserError("role", f"{role!r} is not a role; use one of {', '.join(USER_ROLES)}")
    return role


def check_password(password, field: str = "password") -> str:
    try:
        passwords.check_rules(password, field)
    except passwords.PasswordError as exc:
        raise UserError(field, str(exc).split(": ", 1)[1]) from None
    return password


def public(user: User) -> dict:
    """What the API and pages may show of a user: never the hash."""
    return {"id": user.id, "username": user.username, "role": user.role, "active": bool(user.active),
            "must_change_password": bool(user.must_change_password),
            "created_at": user.created_at.isoformat() if user.created_at else None,
            "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None}


def session_stamp(user: User) -> str:
    """Changes when the password does: a session carries it, so a password change or reset ends other sessions."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def _session(engine: Engine) -> Session:
    return Session(engine, expire_on_commit=False)


def get(engine: Engine, user_id: int) -> User | None:
    with _session(engine) as s:
        return s.get(User, user_id)


def by_name(engine: Engine, username: str) -> User | None:
    with _session(engine) as s:
        return s.scalars(select(User).where(User.username == username)).first()


def count(engine: Engine) -> int:
    with _session(engine) as s:
        return s.scalar(select(func.count()).select_from(User)) or 0


def list_all(engine: Engine) -> list[dict]:
    with _session(engine) as s:
        return [public(u) for u in s.scalars(select(User).order_by(User.username))]


def create(engine: Engine, username: str, password: str, role: str, *, must_change_password: bool = False,
           actor: str | None = None) -> User:
    check_username(username)
    check_role(role)
    check_password(password)
    user = User(username=username, password_hash=passwords.hash_password(password), role=role, active=True,
                must_change_password=must_change_password, created_at=now())
    try:
        with _session(engine) as s, s.begin():
            s.add(user)
            s.flush()
            audit.record(s, actor, "user.create", f"user {username}", None,
                         {"role": role, "active": True, "must_change_password": must_change_password})
    except IntegrityError:
        raise UserError("username", f"{username!r} is taken; choose another", 409) from None
    return user


def authenticate(engine: Engine, username: str, password: str) -> User | None:
    """The active user with this name and password, else None (same cost whether or not the name exists)."""
    user = by_name(engine, username) if isinstance(username, str) else None
    ok = passwords.verify(user.password_hash if user else None, password)
    if not ok or user is None or not user.active:
        return None
    with _session(engine) as s, s.begin():
        row = s.get(User, user.id)
        row.last_login_at = now()
        if passwords.needs_rehash(row.password_hash):
            row.password_hash = passwords.hash_password(password)
        user = row
    return user


def set_password(engine: Engine, user_id: int, password: str, *, must_change: bool = False,
                 actor: str | None = None, field: str = "password") -> User:
    check_password(password, field)
    with _session(engine) as s, s.begin():
        user = s.get(User, user_id)
        if user is None:
            raise UserError("id", f"no user with id {user_id}", 404)
        user.password_hash = passwords.hash_password(password)
        user.must_change_password = must_change
        audit.record(s, actor, "user.password", f"user {user.username}", None,
                     {"must_change_password": must_change})
    return user


def update(engine: Engine, user_id: int, changes: dict, *, by_user_id: int | None = None,
           actor: str | None = None) -> tuple[User, str | None]:
    """Change role and/or active, or reset the password (reset_password: true gives a one-time password, returned
    once). An admin cannot demote or deactivate themselves: another admin must (no lock-out by mistake)."""
    unknown = set(changes) - {"role", "active", "reset_password"}
    if unknown:
        raise UserError(sorted(unknown)[0], "not a field you can change; use role, active or reset_password")
    if "role" in changes:
        check_role(changes["role"])
    if "active" in changes and not isinstance(changes["active"], bool):
        raise UserError("active", "true or false")
    if "reset_password" in changes and not isinstance(changes["reset_password"], bool):
        raise UserError("reset_password", "true or false")
    one_time = None
    with _session(engine) as s, s.begin():
        user = s.get(User, user_id)
        if user is None:
            raise UserError("id", f"no user with id {user_id}", 404)
        if user_id == by_user_id and (changes.get("role", user.role) != user.role or changes.get("active") is False):
            raise UserError("role" if "role" in changes else "active",
                            "you cannot demote or deactivate yourself; another admin can", 409)
        before = {"role": user.role, "active": bool(user.active)}
        if "role" in changes:
            user.role = changes["role"]
        if "active" in changes:
            user.active = changes["active"]
        if changes.get("reset_password"):
            one_time = new_one_time_password()
            user.password_hash = passwords.hash_password(one_time)
            user.must_change_password = True
        after = {"role": user.role, "active": bool(user.active)}
        if changes.get("reset_password"):
            after["password"] = "reset (one-time password given once)"
        audit.record(s, actor, "user.update", f"user {user.username}", before, after)
    return user, one_time


def new_one_time_password() -> str:
    return secrets.token_urlsafe(12)  # 16 characters, 96 bits


def ensure_first_admin(engine: Engine) -> str | None:
    """On a first start (no users at all): an 'admin' user with a one-time password, returned to be shown once.
    None when there are users already, or when another process made the first admin at the same moment."""
    if count(engine):
        return None
    password = new_one_time_password()
    try:
        create(engine, FIRST_ADMIN, password, "admin", must_change_password=True, actor=audit.SYSTEM)
    except UserError:
        return None
    return password
