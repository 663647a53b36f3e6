"""What every request must pass before anything reads or answers it: the Host it names, the size of its body, text
the database can hold, and the time its work may take. auth.web installs these first and runs them in order; the
collector process's small HTTP server (processes/collector_http.py) applies the same Host rule.

Host (--allowed-hosts, OEE_ALLOWED_HOSTS). A page on another site can point its own name at 127.0.0.1 (DNS
rebinding) and then read what the app serves there, with the app thinking the request is same-origin. So the
Host header must be one of the allowed names; anything else gets 400. Default: while the app listens on loopback,
the loopback names (localhost, 127.0.0.1, ::1, any port); otherwise any name (set it to the names clients use:
sessions are cookies of the real name, which a rebinding page never gets, but anonymous viewing has no cookie).
'*' allows any name: unsafe for an app on loopback with anonymous viewing.

Body size. A body is refused with 413 before a byte of it is read when its Content-Length is over the limit, and a
chunked body is cut at the limit while it is read (Flask's request.max_content_length): MAX_BODY_BYTES (1 MiB) for
Dash callbacks, the API and forms; a signed-in engineer's Dash callbacks and POST /api/config/import take
MAX_LARGE_BODY_BYTES (8 MiB: the configuration pages carry a YAML file, base64, and the import takes 5 MiB).

Text. Query parameters, the path, form fields and every string of a JSON body (keys too) must be text the
database can store (db.types.text_problem: no NUL, no lone surrogate; query values at most MAX_QUERY_TEXT
characters), and JSON may nest at most MAX_JSON_DEPTH levels: else 400 naming the parameter or the JSON path.

Deadline (--request-timeout, OEE_REQUEST_TIMEOUT_S). Every request but the WebSocket's gets db.deadline: the long
loops of db/ check it and the database stops a statement at it; a request past it answers 503 in words.
"""
from __future__ import annotations

import html
import ipaddress
import logging

from flask import Response, g, jsonify, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import RequestEntityTooLarge

from db import deadline
from db.types import MAX_DEPTH, document_problem, text_problem

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
MAX_LARGE_BODY_BYTES = 8 * 1024 * 1024
LARGE_BODY_ROUTES = (("POST", "/api/config/import"), ("POST", "/_dash-update-component"))
MAX_QUERY_TEXT = 10_000  # a long list of tag ids fits; a browser sends at most a few times that
MAX_JSON_DEPTH = MAX_DEPTH
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
DEFAULT_REQUEST_TIMEOUT_S = 30.0


# --- Host ----------------------------------------------------------------------------------------------------------


def host_name(host: str) -> str:
    """The name of a Host header, without its port or IPv6 brackets, lowercase, without a final dot."""
    host = (host or "").strip().lower()
    if host.startswith("["):
        name = host[1:host.find("]")] if "]" in host else host[1:]
    else:
        name, colon, port = host.rpartition(":")
        if not colon or not port.isdigit() or ":" in name:
            name = host
    return name.rstrip(".")


def normalize_hosts(entries) -> tuple[str, ...]:
    """Allowed names as given (localhost, plant.example.com, .example.com for it and its subdomains, [::1], *)."""
    out = []
    for entry in entries:
        entry = entry.strip().lower()
        if entry.startswith("*."):
            entry = entry[1:]
        name = entry if entry in ("*",) or entry.startswith(".") else host_name(entry)
        if name and name not in out:
            out.append(name)
    return tuple(out)


def is_loopback(host: str) -> bool:
    """A loopback name or address (localhost, 127.0.0.0/8, ::1)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def default_allowed_hosts(listen_host: str) -> tuple[str, ...]:
    """While listening on loopback: the loopback names and the address itself; else any ('*')."""
    if is_loopback(listen_host):
        return normalize_hosts((*LOOPBACK_NAMES, listen_host))
    return ("*",)


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    if "*" in allowed:
        return True
    name = host_name(host)
    for entry in allowed:
        if name == entry or (entry.startswith(".") and (name == entry[1:] or name.endswith(entry))):
            return True
    return False


def host_refusal(allowed: tuple[str, ...]) -> Response | None:
    """400 for a request whose Host is not allowed (DNS rebinding), else None."""
    if host_allowed(request.host, allowed):
        return None
    shown = host_name(request.host)[:100] or "(none)"
    return _error(400, "host_not_allowed", f"this server does not answer for the host {shown!r}; use one of "
                                           f"{', '.join(allowed)} (the operator sets them with --allowed-hosts, "
                                           "OEE_ALLOWED_HOSTS)")


# --- errors --------------------------------------------------------------------------------------------------------


def _error(status: int, error: str, message: str, fields: dict | None = None) -> Response:
    """The API's error shape; a short HTML page for a browser's form or page (the login form)."""
    if (not request.path.startswith(("/api/", "/export/", "/ws/", "/_dash"))
            and "text/html" in request.headers.get("Accept", "")):
        resp = Response(f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>OEE · {status}</title>'
                        f'</head><body><p id="refused" data-error="{error}">{html.escape(message)}</p>'
                        '<p><a href="/">Overview</a></p></body></html>', status=status, mimetype="text/html")
    else:
        body = {"error": error, "message": message}
        if fields:
            body["fields"] = fields
        resp = jsonify(body)
        resp.status_code = status
    if status == 413:
        resp.headers["Connection"] = "close"  # the rest of the body is not read: the connection cannot go on
    return resp


def _invalid(fields: dict[str, str]) -> Response:
    return _error(400, "invalid_input", "; ".join(f"{k}: {v}" for k, v in fields.items()), fields)


# --- the checks, in order --------------------------------------------------------------------------------------------


def text_refusal() -> Response | None:
    """400 when the path or a query parameter holds text the database cannot store."""
    problem = text_problem(request.path, 2000)
    if problem:
        return _invalid({"path": problem})
    for key, value in request.args.items(multi=True):
        problem = text_problem(key, 100) or text_problem(value, MAX_QUERY_TEXT)
        if problem:
            return _invalid({(key if not text_problem(key, 100) else "query")[:100]: problem})
    return None


def body_limit(is_engineer: bool) -> int:
    if is_engineer and (request.method, request.path) in LARGE_BODY_ROUTES:
        return MAX_LARGE_BODY_BYTES
    return MAX_BODY_BYTES


def body_refusal(limit: int) -> Response | None:
    """413 before the body is read when it says it is too large. A chunked body (no Content-Length) is read here,
    up to the limit and no further: one that reaches it is refused whole, never handed on cut short."""
    request.max_content_length = limit
    length = request.content_length
    if length is not None and length > limit:
        return too_large(limit)
    if length is None and "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        if len(request.get_data(cache=True)) >= limit:  # Werkzeug stops reading at the limit
            return too_large(limit)
    return None


def too_large(limit: int) -> Response:
    return _error(413, "body_too_large", f"the request body is larger than {limit // 1024:,} KiB, the most this "
                                         f"request may send", {"body": f"at most {limit:,} bytes"})


def content_refusal() -> Response | None:
    """400 for a JSON body nested too deeply or with text the database cannot store, or such a form field."""
    try:
        if request.is_json and (request.content_length or request.get_data(cache=True)):
            try:
                doc = request.get_json(silent=False)  # cached: the view gets the same object
            except RecursionError:
                return _invalid({"body": f"JSON nested more than {MAX_JSON_DEPTH} levels deep; send a flatter "
                                         "document"})
            except RequestEntityTooLarge:
                raise
            except Exception:  # not JSON: the view says so in its own words
                return None
            found = document_problem(doc, max_depth=MAX_JSON_DEPTH)
            if found:
                return _invalid({found[0]: found[1]})
        elif request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            for key, value in request.form.items(multi=True):
                problem = text_problem(key, 100) or text_problem(value, MAX_BODY_BYTES)
                if problem:
                    return _invalid({key[:100] if not text_problem(key, 100) else "form": problem})
    except RequestEntityTooLarge:
        return too_large(request.max_content_length or MAX_BODY_BYTES)
    return None


# --- the deadline --------------------------------------------------------------------------------------------------


def start_deadline(seconds: float) -> None:
    if seconds and not request.path.startswith("/ws/"):  # a WebSocket lives as long as its client wants
        g.oee_deadline = deadline.start(seconds)


def end_deadline(_exc=None) -> None:
    token = g.pop("oee_deadline", None)
    if token is not None:
        try:
            deadline.reset(token)
        except ValueError:  # set in another context (a streamed response's generator): it ends with that context
            pass


def past_deadline(exc) -> Response:
    seconds = deadline.seconds() or getattr(exc, "seconds", None) or 0
    log.warning("%s %s stopped at its deadline of %g s", request.method, request.path, seconds)
    return _error(503, "deadline_exceeded", str(deadline.DeadlineExceeded(seconds)))


def install_error_handlers(server) -> None:
    server.register_error_handler(deadline.DeadlineExceeded, past_deadline)
    server.register_error_handler(RequestEntityTooLarge,
                                  lambda _exc: too_large(request.max_content_length or MAX_BODY_BYTES))

    @server.errorhandler(OperationalError)
    def _database_stopped(exc):
        if deadline.expired():  # SQLite "interrupted" or PostgreSQL's statement_timeout: our deadline, not a fault
            return past_deadline(exc)
        raise exc

