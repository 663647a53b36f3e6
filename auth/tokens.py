"""API tokens: per user, shown once, stored as a SHA-256 hash, revocable, optionally expiring.

Why SHA-256 and not argon2: a token is 256 random bits from secrets.token_urlsafe, not a human's password, so
there is nothing to guess and nothing for a slow hash to protect; a fast hash lets every API request be checked in
microseconds by a unique index lookup, and a stolen table of hashes still gives no usable token.

A token reads 'oee_' + 43 URL-safe characters. Its first 12 characters (the prefix) are kept in clear so that a
user can tell tokens apart in lists; they are not enough to use it.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from auth.users import UserError
from db import audit
from db.models import ApiToken, User

SCHEME = "oee_"
PREFIX_LENGTH = 12
MAX_DAYS = 3650
LAST_USED_EVERY_S = 60  # last_used_at is written at most once a minute per token


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def public(token: ApiToken) -> dict:
    return {"id": token.id, "name": token.name, "prefix": token.prefix, "user_id": token.user_id,
            "created_at": _iso(token.created_at), "expires_at": _iso(token.expires_at),
            "last_used_at": _iso(token.last_used_at), "revoked_at": _iso(token.revoked_at),
            "active": token.revoked_at is None and not _expired(token, datetime.now(timezone.utc))}


def _iso(t):
    return t.isoformat() if t else None


def _expired(token: ApiToken, now: datetime) -> bool:
    return token.expires_at is not None and token.expires_at <= now


def check_name(name) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise UserError("name", "1 to 100 characters, e.g. 'grafana' or 'line 1 script'")
    return name.strip()


def check_days(days) -> int | None:
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise UserError("expires_in_days", f"a whole number of days from 1 to {MAX_DAYS}, or null for no expiry")
    return days


def create(engine: Engine, user: User, name: str, expires_in_days: int | None = None,
           actor: str | None = None) -> tuple[dict, str]:
    """(the token's public fields, the secret). The secret exists only in this return value."""
    name = check_name(name)
    days = check_days(expires_in_days)
    secret = SCHEME + secrets.token_urlsafe(32)
    now = datetime.now(timezone.utc)
    row = ApiToken(user_id=user.id, name=name, prefix=secret[:PREFIX_LENGTH], token_hash=digest(secret),
                   created_at=now, expires_at=now + timedelta(days=days) if days else None)
    with Session(engine, expire_on_commit=False) as s, s.begin():
        s.add(row)
        s.flush()
        audit.record(s, actor, "token.create", f"token {user.username}/{name}", None,
                     {"prefix": row.prefix, "expires_at": _iso(row.expires_at)})
    return public(row), secret


def lookup(engine: Engine, secret: str) -> tuple[User, ApiToken] | None:
    """The token's user and the token, when it is valid (known, not revoked, not expired, its user active)."""
    if not isinstance(secret, str) or not secret.startswith(SCHEME) or len(secret) > 200:
        return None
    now = datetime.now(timezone.utc)
    with Session(engine, expire_on_commit=False) as s:
        found = s.execute(select(ApiToken, User).join(User, User.id == ApiToken.user_id)
                          .where(ApiToken.token_hash == digest(secret))).first()
        if found is None:
            return None
        token, user = found
        if token.revoked_at is not None or _expired(token, now) or not user.active:
            return None
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > LAST_USED_EVERY_S:
            token.last_used_at = now
            s.commit()
    return user, token


def list_for(engine: Engine, user_id: int | None) -> list[dict]:
    """A user's tokens (user_id None: everyone's, for admins), newest first."""
    with Session(engine) as s:
        stmt = select(ApiToken).order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
        if user_id is not None:
            stmt = stmt.where(ApiToken.user_id == user_id)
        return [public(t) for t in s.scalars(stmt)]


def revoke(engine: Engine, token_id: int, *, user_id: int | None, actor: str | None = None) -> dict:
    """Revoke one token; user_id None lets an admin revoke anyone's, else only the user's own."""
    with Session(engine, expire_on_commit=False) as s, s.begin():
        token = s.get(ApiToken, token_id)
        if token is None or (user_id is not None and token.user_id != user_id):
            raise UserError("id", f"no token with id {token_id} of yours; see GET /api/auth/tokens/", 404)
        if token.revoked_at is None:
            token.revoked_at = datetime.now(timezone.utc)
            owner = s.get(User, token.user_id)
            audit.record(s, actor, "token.revoke", f"token {owner.username if owner else token.user_id}/{token.name}",
                         {"prefix": token.prefix}, {"revoked_at": _iso(token.revoked_at)})
        return public(token)
