"""Embed links: signed, expiring, read-only tokens for one page and its machine or line (Grafana panels, kiosks).

A token is the scope and its expiry signed with HMAC-SHA256 (itsdangerous) under derive_key(master, "embed"), so
the server keeps nothing: it is checked by its signature and its expiry alone. With one, a request may read that
page (its Dash callbacks, for that machine or line) and its WebSocket, and nothing else (auth.rules marks what
an embed link may use; auth.web checks the scope). A link cannot be revoked one by one: give short lives to
links that leave the plant network, and change OEE_SECRET_KEY to void every link at once (sessions too).

The token travels as ?embed_token=... on the page's URL; the page's own requests (Dash's fetch, the WebSocket)
carry it on (assets/auth.js: the X-Embed-Token header, ?embed_token= on the WebSocket).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlencode

from itsdangerous import BadSignature, URLSafeSerializer

from auth.users import UserError
from keys.master import derive_key

PAGES = ("machine", "line", "andon")  # andon: a line's board, key the line's id
MAX_DAYS = 366
DEFAULT_DAYS = 30
SALT = "oee-embed-v1"


class EmbedError(ValueError):
    """A token that is not valid: tampered, expired or malformed; the message says which."""


@dataclass(frozen=True)
class Scope:
    page: str  # machine or line
    key: str  # the machine id (LINE-001) or the line's id
    expires: int  # Unix time

    @property
    def path(self) -> str:
        if self.page == "andon":
            return f"/andon/?{urlencode({'line': self.key})}"
        return f"/{self.page}/{self.key}"

    @property
    def ws_path(self) -> str:
        return f"/ws/dashboard/{'line' if self.page == 'andon' else self.page}/{self.key}/"

    @property
    def actor(self) -> str:
        return f"embed:{self.page}/{self.key}"


def _serializer(master: bytes) -> URLSafeSerializer:
    return URLSafeSerializer(derive_key(master, "embed").hex(), salt=SALT)


def check_request(body) -> tuple[str, str, int]:
    """(page, key, days) from an embed-link request, each bad field named."""
    if not isinstance(body, dict):
        raise UserError("body", 'a JSON object such as {"page": "machine", "key": "LINE-001", "expires_in_days": 30}')
    page, key, days = body.get("page"), body.get("key"), body.get("expires_in_days", DEFAULT_DAYS)
    if page not in PAGES:
        raise UserError("page", f"{page!r}: use one of {', '.join(PAGES)}")
    if not isinstance(key, (str, int)) or isinstance(key, bool) or not str(key).strip() or len(str(key)) > 64:
        raise UserError("key", "the machine id (e.g. LINE-001) or the line's id")
    if isinstance(days, bool) or not isinstance(days, (int, float)) or not 0 < days <= MAX_DAYS:
        raise UserError("expires_in_days", f"a number of days above 0 and at most {MAX_DAYS}")
    unknown = set(body) - {"page", "key", "expires_in_days"}
    if unknown:
        raise UserError(sorted(unknown)[0], "not a field; use page, key and expires_in_days")
    return page, str(key).strip(), days


def sign(master: bytes, page: str, key: str, expires: float) -> str:
    if page not in PAGES:
        raise EmbedError(f"page {page!r}: use one of {', '.join(PAGES)}")
    return _serializer(master).dumps({"p": page, "k": str(key), "e": int(expires)})


def verify(master: bytes, token: str, now: float | None = None) -> Scope:
    try:
        data = _serializer(master).loads(token)
    except BadSignature:
        raise EmbedError("this embed link is not valid (its signature does not match); ask for a new one") from None
    if not isinstance(data, dict) or data.get("p") not in PAGES or not isinstance(data.get("e"), int):
        raise EmbedError("this embed link is not valid; ask for a new one")
    scope = Scope(data["p"], str(data["k"]), data["e"])
    if scope.expires <= (time.time() if now is None else now):
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(scope.expires))
        raise EmbedError(f"this embed link expired at {stamp}; ask for a new one")
    return scope


def link(scope_path: str, token: str) -> str:
    joiner = "&" if "?" in scope_path else "?"
    return f"{scope_path}{joiner}{urlencode({'embed': 1, 'embed_token': token})}"
