"""Authentication and authorisation: users (argon2 passwords), API tokens, embed links, and ONE access table.

- auth.rules: who may use which route, page and Dash callback (deny by default).
- auth.web: install(app, runtime): the before_request that identifies every request (session cookie, Bearer
  token, embed link, or anonymous viewing) and enforces the rules; CSRF and security headers; /login, /logout and
  /account/password.
- auth.users, auth.tokens, auth.embed, auth.ratelimit, auth.passwords: the parts.

Every request gets flask.g.user (User or None), flask.g.role (str or None) and flask.g.actor (the user name,
'token:<user>/<token name>', 'embed:<page>/<key>' or 'anonymous'), which the audit log records.
"""
from __future__ import annotations

from db.models import USER_ROLES

__all__ = ["USER_ROLES"]
