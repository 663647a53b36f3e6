"""The web side of authentication: one before_request identifies every request and enforces auth.rules.

Identity, in this order:
1. an embed link (?embed_token=... or the X-Embed-Token header that assets/auth.js adds to the page's requests):
   that page and its machine or line, read-only, nothing else;
2. Authorization: Bearer <API token> (also ?access_token=... on a WebSocket handshake, as browsers cannot set
   headers there): the token's user and role. A bad token is refused, never read as anonymous;
3. the session cookie (signed with derive_key(master, "session"), HttpOnly, SameSite=Lax, Secure per
   --cookie-secure): the signed-in user, while active and while the password is the one signed in with;
4. nobody: a viewer when anonymous viewing is on (--anonymous-viewing), else only public routes.

CSRF: a state-changing request (POST, PUT, PATCH, DELETE) that is not authenticated by a Bearer token must come
with an Origin (or, lacking one, a Referer) of this server, whatever else it carries; browsers send Origin on every
cross-origin POST and cannot be made to forge it, and SameSite=Lax keeps the cookie off cross-site POSTs as a
second wall. Dash's own callback requests are same-origin fetches and carry it. Tokens are not ambient (a browser
never adds them by itself), so requests with one need no check. A WebSocket handshake that carries an Origin
(every browser's does) must carry ours too: browsers let any page open a WebSocket to any server.

Before all of this, auth/guards.py checks the Host header (--allowed-hosts), the text of the path and the query,
and starts the request's deadline; after identity, the size of the body (by route and role) and its text.
"""
from __future__ import annotations

import html
import json
import logging
import time
from datetime import timedelta
from urllib.parse import parse_qs, quote, urlsplit

from flask import Flask, Response, current_app, g, jsonify, redirect, request, session
from flask.sessions import SecureCookieSessionInterface

from auth import embed as embeds
from auth import guards, ratelimit, rules, tokens, users
from auth.guards import is_loopback
from keys.master import derive_key, load_master_secret

log = logging.getLogger(__name__)

SESSION_COOKIE = "oee_session"
SESSION_HOURS = 12
EMBED_HEADER = "X-Embed-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_USERNAME = 64  # the users table holds 64
MAX_PASSWORD = 1024  # enough for any passphrase; hashing a megabyte per attempt is not


def anonymous_viewing_enabled(settings) -> bool:
    mode = getattr(settings, "anonymous_viewing", "auto")
    if mode == "on":
        return True
    if mode == "off":
        return False
    return is_loopback(getattr(settings, "host", "127.0.0.1"))


class _SessionInterface(SecureCookieSessionInterface):
    """Secure cookies per --cookie-secure: on, off, or auto (when the request came over https)."""

    def __init__(self, mode: str):
        self.mode = mode

    def get_cookie_secure(self, app) -> bool:
        if self.mode == "auto":
            return bool(request) and request.is_secure
        return self.mode == "on"


class Auth:
    """The per-app state: the keys, the setting, the Dash app (to resolve pages)."""

    def __init__(self, app, runtime):
        self.dash = app
        self.runtime = runtime
        settings = runtime.settings
        self.master = load_master_secret(settings.data_dir)
        self.anonymous_viewing = anonymous_viewing_enabled(settings)
        self.allowed_hosts = allowed_hosts(settings)
        self.request_timeout_s = getattr(settings, "request_timeout_s", guards.DEFAULT_REQUEST_TIMEOUT_S)
        self._csp = None

    @property
    def engine(self):
        return self.runtime.store.engine

    # --- pages, resolved as Dash resolves them --------------------------------------------------------------------

    def resolve_page(self, path: str) -> tuple[str | None, str | None, dict]:
        """(access, the page's registered path or template, its path variables); access None: refused."""
        from dash._pages import _path_to_page

        page, variables = _path_to_page(self.dash.strip_relative_path(path or "/"))
        if not page:
            return rules.NOT_FOUND_PAGE, None, {}
        key = page.get("path_template") or page["path"]
        return rules.PAGES.get(key), key, variables or {}

    def csp(self) -> str:
        from dash import _callback

        # Dash adds inline scripts (clientside callbacks, the pages router's) until its first request is set up.
        stamp = (len(self.dash._inline_scripts), len(_callback.GLOBAL_INLINE_SCRIPTS), self.dash.renderer)
        if self._csp is None or self._csp[0] != stamp:
            hashes = " ".join(self.dash.csp_hashes())
            stamp = (len(self.dash._inline_scripts), len(_callback.GLOBAL_INLINE_SCRIPTS), self.dash.renderer)
            self._csp = stamp, ("default-src 'self'; "
                         f"script-src 'self' {hashes}; "
                         "style-src 'self' 'unsafe-inline'; "  # Plotly and dash components inject <style>
                         "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
                         "object-src 'none'; base-uri 'self'; form-action 'self'")
        return self._csp[1]


def auth_of(server=None) -> Auth:
    return (server or current_app).extensions["oee_auth"]


def install(app, runtime) -> Auth:
    """Wire authentication into the Dash app's Flask server: session, the before_request, the login routes."""
    server = app.server
    auth = Auth(app, runtime)
    server.extensions["oee_auth"] = auth
    server.secret_key = derive_key(auth.master, "session")
    server.config.update(SESSION_COOKIE_NAME=SESSION_COOKIE, SESSION_COOKIE_HTTPONLY=True,
                         SESSION_COOKIE_SAMESITE="Lax", PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
                         # Set only at login (12 h from then): a cookie refreshed on every answer came back after a
                         # log-out with the answer of a callback still in flight from the page left behind.
                         SESSION_REFRESH_EACH_REQUEST=False)
    server.session_interface = _SessionInterface(getattr(runtime.settings, "cookie_secure", "auto"))
    server.before_request_funcs.setdefault(None, []).insert(0, _before_request)  # before Dash's own hooks
    server.before_request_funcs[None].insert(0, _guard)  # before anything else (auth/guards.py)
    server.teardown_request(guards.end_deadline)
    guards.install_error_handlers(server)
    server.after_request(_security_headers)
    install_frame_policy(server, getattr(runtime.settings, "frame_ancestors", ("'self'",)))
    _register_pages(server)
    return auth


# --- identity ---------------------------------------------------------------------------------------------------


def _anonymous() -> None:
    g.user = None
    g.role = None
    g.actor = "anonymous"
    g.via = None
    g.embed = None
    g.token = None


def _identify(auth: Auth) -> Response | None:
    _anonymous()
    g.client_ip = request.remote_addr
    embed_token = request.args.get("embed_token") or request.headers.get(EMBED_HEADER)
    if embed_token:
        try:
            g.embed = embeds.verify(auth.master, embed_token)
        except embeds.EmbedError as exc:
            return _refuse(401, "embed_link_invalid", str(exc))
        g.via = "embed"
        g.actor = g.embed.actor
        return None
    header = request.headers.get("Authorization", "")
    secret = None
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return _refuse(401, "unauthorized", "use the header Authorization: Bearer <API token>")
        secret = value.strip()
    elif request.path.startswith("/ws/") and request.args.get("access_token"):
        secret = request.args["access_token"]
    if secret is not None:
        found = tokens.lookup(auth.engine, secret)
        if found is None:
            return _refuse(401, "unauthorized", "this API token is not valid: unknown, revoked or expired, or its "
                                                "user is deactivated")
        user, token = found
        g.user, g.role, g.token, g.via = user, user.role, token, "token"
        g.actor = f"token:{user.username}/{token.name}"
        return None
    uid = session.get("uid")
    if uid is not None:
        user = users.get(auth.engine, uid)
        if user is None or not user.active or session.get("stamp") != users.session_stamp(user):
            session.clear()
            return None
        g.user, g.role, g.via, g.actor = user, user.role, "session", user.username
    return None


def may(access: str) -> bool:
    """Whether the current identity has this access (embed links aside: see _embed_allows)."""
    if access == rules.PUBLIC:
        return True
    if g.get("embed") is not None:
        return False
    if access == rules.VIEWER:
        return g.user is not None or auth_of().anonymous_viewing
    if access == rules.LOGIN:
        return g.user is not None
    return g.user is not None and users.rank(g.role) >= rules.LEVEL[access]


def require(role: str) -> None:
    """For a callback or view that writes: refuse (PermissionError) unless the current identity has the role.
    The before_request has decided already; this is a second lock on the door of a writing callback."""
    if not may(role):
        raise PermissionError(f"needs the role {role}")


def allowed_hosts(settings) -> tuple[str, ...]:
    """--allowed-hosts, or its default (auth.guards.default_allowed_hosts)."""
    given = guards.normalize_hosts(getattr(settings, "allowed_hosts", ()) or ())
    return given or guards.default_allowed_hosts(getattr(settings, "host", "127.0.0.1"))


# --- the before_request ------------------------------------------------------------------------------------------


def _guard():
    """First of all: the Host, text the database can hold in the path and the query, the request's deadline."""
    auth = auth_of()
    refused = guards.host_refusal(auth.allowed_hosts) or guards.text_refusal()
    if refused is not None:
        return refused
    guards.start_deadline(auth.request_timeout_s)
    return None


def _before_request():
    auth = auth_of()
    refused = _identify(auth)
    if refused is not None:
        return refused
    method = request.method
    if method == "OPTIONS":  # Flask answers it with the Allow header only; no data, no change
        return None
    # The body's size before anything reads it (a signed-in engineer's configuration pages carry files).
    engineer = g.embed is None and g.user is not None and users.rank(g.role) >= rules.LEVEL[rules.ENGINEER]
    refused = guards.body_refusal(guards.body_limit(engineer)) or guards.content_refusal()
    if refused is not None:
        return refused
    if method not in SAFE_METHODS and g.via != "token":
        bad = _csrf_problem()
        if bad:
            return _refuse(403, "cross_site_request", bad)
    if request.path.startswith("/ws/") and g.via != "token":
        bad = _websocket_origin_problem()
        if bad:
            return _refuse(403, "cross_site_request", bad)
    rule = rules.route_rule(method, request.path)
    if rule is None:
        return _refuse(403, "forbidden", f"{method} {request.path} is not open to anyone (no access rule)")
    access, embed_ok, page_path = rule.access, rule.embed, None
    if access == rules.PAGE:
        access, page_path, variables = auth.resolve_page(request.path)
        if access is None:
            return _refuse(403, "forbidden", "this page has no access rule")
        embed_ok = g.embed is not None and _embed_page_ok(page_path, variables, request.args.to_dict(flat=False))
    elif access == rules.CALLBACK:
        access, embed_ok, problem = _callback_access(auth)
        if problem:
            return _refuse(403, "forbidden", problem)
    elif embed_ok and g.embed is not None:
        embed_ok = _embed_route_ok(request.path)
    if g.embed is not None:
        if access == rules.PUBLIC or embed_ok:
            return None
        return _refuse(403, "outside_embed_scope",
                       f"this embed link shows only {g.embed.path} (read-only); {request.path} is outside it")
    if (g.via == "session" and g.user.must_change_password and access != rules.PUBLIC
            and request.path.rstrip("/") != "/account/password"):
        if page_path is not None or rule.access == rules.PAGE:
            return redirect(f"/account/password?next={quote(_here(), safe='')}")
        return _refuse(403, "password_change_required", "choose a new password first at /account/password")
    if may(access):
        return None
    if g.user is None:
        if rule.access == rules.PAGE and method == "GET":
            return redirect(f"/login?next={quote(_here(), safe='')}")
        return _refuse(401, "login_required",
                       f"log in (at /login) or send Authorization: Bearer <API token>; this needs {access}")
    return _refuse(403, "forbidden", f"this needs the role {access}; you are {g.role}")


def _here() -> str:
    qs = request.query_string.decode()
    return request.path + (f"?{qs}" if qs else "")


def _csrf_problem() -> str | None:
    source = request.headers.get("Origin")
    if not source or source == "null":
        referer = request.headers.get("Referer")
        if not referer:
            return ("a state-changing request from a browser session must come from this server's pages (no "
                    "Origin or Referer); scripts should use an API token")
        source = referer
    return _foreign_origin(source)


def _foreign_origin(source: str) -> str | None:
    parts = urlsplit(source)
    if parts.netloc.lower() != request.host.lower():
        return f"cross-site request refused: it comes from {parts.scheme}://{parts.netloc}, not from this server"
    return None


def _websocket_origin_problem() -> str | None:
    """A browser's WebSocket handshake carries the page's Origin and browsers let any site open one: only our own
    pages may (as for state-changing requests). A client that sends no Origin is no browser (scripts, tests)."""
    source = request.headers.get("Origin")
    if source is None:
        return None
    if source == "null":
        return "cross-site WebSocket refused: it comes from an opaque origin (null), not from this server's pages"
    return _foreign_origin(source)


def _refuse(status: int, error: str, message: str) -> Response:
    wants_html = (request.method == "GET" and not request.path.startswith(("/api/", "/export/", "/ws/", "/_dash"))
                  and "text/html" in request.headers.get("Accept", ""))
    if wants_html:
        resp = Response(_page("Not allowed", f'<div class="alert alert-warning" id="refused" '
                                             f'data-error="{error}">{html.escape(message)}</div>'
                                             '<p><a href="/login">Log in</a> · <a href="/">Overview</a></p>'),
                        status=status, mimetype="text/html")
    else:
        resp = jsonify({"error": error, "message": message})
        resp.status_code = status
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="oee"'
    return resp


# --- Dash callbacks ----------------------------------------------------------------------------------------------


def _ids(node, out: list) -> list:
    if isinstance(node, list):
        for item in node:
            _ids(item, out)
    elif isinstance(node, dict) and "id" in node:
        out.append(node)
    return out


def _callback_access(auth: Auth) -> tuple[str, bool, str | None]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return rules.PUBLIC, False, "not a Dash callback request"
    outputs = _ids(body.get("outputs"), [])
    if not outputs:
        return rules.PUBLIC, False, "a Dash callback request without outputs"
    accesses, embed_ok = [], True
    for out in outputs:
        found = rules.callback_rule(out["id"])
        if found is None:
            key = rules.callback_output_key(out["id"])
            return rules.PUBLIC, False, f"the callback writing {key!r} has no access rule"
        access, embed_flag = found
        embed_ok = embed_ok and embed_flag
        if access == rules.PAGE:  # the routing callback: the page it is asked to draw decides
            pathname = next((i.get("value") for i in _ids(body.get("inputs"), [])
                             if i["id"] == "_pages_location" and i.get("property") == "pathname"), None)
            access, page_path, variables = auth.resolve_page(pathname if isinstance(pathname, str) else "/")
            if access is None:
                return rules.PUBLIC, False, "this page has no access rule"
            if g.embed is not None:
                search = next((i.get("value") for i in _ids(body.get("inputs"), [])
                               if i["id"] == "_pages_location" and i.get("property") == "search"), None)
                embed_ok = embed_ok and _embed_page_ok(page_path, variables, parse_qs(
                    search.lstrip("?") if isinstance(search, str) else ""))
        accesses.append(access)
    if g.embed is not None and embed_ok:
        embed_ok = _embed_callback_scope_ok(body, outputs)
    return rules.strongest(accesses), embed_ok, None


def _embed_page_ok(page_path: str | None, variables: dict, query: dict | None = None) -> bool:
    scope = g.embed
    if scope is None or page_path != rules.EMBED_PAGES.get(scope.page):
        return False
    if scope.page == "andon":  # a line's board: /andon/?line=<its id>, and no other scope beside it
        query = query or {}
        return query.get("line") == [scope.key] and not query.get("area") and not query.get("site")
    return [str(v) for v in variables.values()] == [scope.key]


def _embed_route_ok(path: str) -> bool:
    if path.startswith("/ws/"):
        return path.rstrip("/") + "/" == g.embed.ws_path
    return True  # static parts of the app, marked embed in the table


def _embed_callback_scope_ok(body: dict, outputs: list) -> bool:
    """A dashboard callback of an embed link must be about its own machine or line: the dashboard's config store
    (ScopeDashboardAIO config: {"scope", "key"}) in the request must be the link's; an andon board's callback
    must carry the board's config (andon-config) of the link's line."""
    if any(str(rules.callback_output_key(o["id"])).startswith("andon-") for o in outputs):
        if g.embed.page != "andon":
            return False
        configs = [i.get("value") for i in _ids([body.get("inputs"), body.get("state")], [])
                   if i["id"] == "andon-config"]
        want = {"scope": "line", "key": g.embed.key}
        return bool(configs) and all(isinstance(c, dict) and {k: str(c.get(k)) for k in want} == want
                                     for c in configs)
    if not any(rules.callback_output_key(o["id"]) == "ScopeDashboardAIO" for o in outputs):
        return True
    configs = [i.get("value") for i in _ids([body.get("inputs"), body.get("state")], [])
               if isinstance(i["id"], dict) and i["id"].get("component") == "ScopeDashboardAIO"
               and i["id"].get("subcomponent") == "config"]
    want = {"scope": g.embed.page, "key": g.embed.key}
    return bool(configs) and all(isinstance(c, dict) and {k: str(c.get(k)) for k in want} == want for c in configs)


# --- headers -----------------------------------------------------------------------------------------------------


def _security_headers(response: Response) -> Response:
    h = response.headers
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", "same-origin")  # embed tokens in URLs must not leave in a Referer
    current = h.get("Content-Security-Policy", "")
    if "default-src" not in current:  # keep what is there (install_frame_policy's frame-ancestors), add the rest before it
        h["Content-Security-Policy"] = auth_of().csp() + (f"; {current}" if current else "")
    if request.path.startswith(("/api/auth/", "/login", "/account/")):
        h["Cache-Control"] = "no-store"
    return response


def install_frame_policy(server: Flask, ancestors: tuple[str, ...]) -> None:
    """Who may show our pages in a frame (Grafana, a kiosk portal): Content-Security-Policy frame-ancestors on
    every response, from the --frame-ancestors setting; browsers refuse to frame them anywhere else. An older
    browser without CSP gets X-Frame-Options where it can say the same ('self' alone, or 'none')."""
    directive = "frame-ancestors " + " ".join(ancestors)
    legacy = {("'self'",): "SAMEORIGIN", ("'none'",): "DENY"}.get(tuple(ancestors))

    @server.after_request
    def _frame_policy(response):
        current = response.headers.get("Content-Security-Policy")
        if not current:
            response.headers["Content-Security-Policy"] = directive
        elif "frame-ancestors" not in current:
            response.headers["Content-Security-Policy"] = f"{current.rstrip('; ')}; {directive}"
        if legacy and "X-Frame-Options" not in response.headers:
            response.headers["X-Frame-Options"] = legacy
        return response


# --- /login, /logout, /account/password ---------------------------------------------------------------------------


def _page(title: str, body: str) -> str:
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>OEE · {html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/assets/00-bootstrap-5.3.6.min.css"></head>
<body class="bg-light"><main class="container" style="max-width: 28rem; margin-top: 4rem">
<h1 class="h3 mb-4">OEE · {html.escape(title)}</h1>{body}</main></body></html>"""


def _safe_next(raw: str | None) -> str:
    """Only a path on this server: never //other.host or https://other.host (no open redirect)."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return "/"
    return raw


def _login_form(message: str = "", username: str = "", next_url: str = "/") -> str:
    alert = f'<div class="alert alert-danger" id="login-error">{html.escape(message)}</div>' if message else ""
    return _page("Log in", f"""{alert}
<form method="post" action="/login" id="login-form">
<input type="hidden" name="next" value="{html.escape(next_url)}">
<div class="mb-3"><label class="form-label" for="login-username">User name</label>
<input class="form-control" id="login-username" name="username" autocomplete="username" required
 value="{html.escape(username)}" autofocus></div>
<div class="mb-3"><label class="form-label" for="login-password">Password</label>
<input class="form-control" id="login-password" name="password" type="password" autocomplete="current-password"
 required></div>
<button class="btn btn-primary" id="login-submit" type="submit">Log in</button></form>""")


def _password_form(message: str = "", next_url: str = "/", forced: bool = False) -> str:
    alert = f'<div class="alert alert-danger" id="password-error">{html.escape(message)}</div>' if message else ""
    note = ('<div class="alert alert-info" id="password-forced">Choose your own password before you go on.</div>'
            if forced else "")
    return _page("Change password", f"""{note}{alert}
<form method="post" action="/account/password" id="password-form">
<input type="hidden" name="next" value="{html.escape(next_url)}">
<div class="mb-3"><label class="form-label" for="password-current">Current password</label>
<input class="form-control" id="password-current" name="current" type="password" autocomplete="current-password"
 required></div>
<div class="mb-3"><label class="form-label" for="password-new">New password (at least 10 characters)</label>
<input class="form-control" id="password-new" name="new" type="password" autocomplete="new-password" required></div>
<div class="mb-3"><label class="form-label" for="password-repeat">New password again</label>
<input class="form-control" id="password-repeat" name="repeat" type="password" autocomplete="new-password"
 required></div>
<button class="btn btn-primary" id="password-submit" type="submit">Save</button></form>""")


def _html(body: str, status: int = 200, headers: dict | None = None) -> Response:
    return Response(body, status=status, mimetype="text/html", headers=headers or {})


def _register_pages(server) -> None:
    @server.route("/login", methods=["GET", "POST"])
    def login():
        auth = auth_of()
        next_url = _safe_next(request.values.get("next"))
        if request.method == "GET":
            return _html(_login_form(next_url=next_url))
        username = (request.form.get("username") or "").strip()
        password = request.form.get("password") or ""
        if len(username) > MAX_USERNAME or len(password) > MAX_PASSWORD:  # NUL and the like: auth.guards
            field = "User name" if len(username) > MAX_USERNAME else "Password"
            limit = MAX_USERNAME if len(username) > MAX_USERNAME else MAX_PASSWORD
            return _html(_login_form(f"{field}: at most {limit} characters.", username[:MAX_USERNAME], next_url),
                         400)
        wait = ratelimit.retry_after(auth.engine, username, g.client_ip)
        if wait:
            return _html(_login_form(f"Too many failed logins; try again in {wait} s.", username, next_url), 429,
                         {"Retry-After": str(wait)})
        slow = ratelimit.delay_s(auth.engine, username)
        if slow:  # this name is being guessed from many places: slower, never shut (auth/ratelimit.py)
            time.sleep(slow)
        user = users.authenticate(auth.engine, username, password)
        if user is None:
            ratelimit.failed(auth.engine, username, g.client_ip)
            _audit_failure(auth, username)
            return _html(_login_form("Wrong user name or password.", username, next_url), 401)
        ratelimit.succeeded(auth.engine, username, g.client_ip)
        session.clear()
        session.permanent = True
        session["uid"] = user.id
        session["stamp"] = users.session_stamp(user)
        log.info("user %s logged in", user.username)
        if user.must_change_password:
            return redirect(f"/account/password?next={quote(next_url, safe='')}")
        return redirect(next_url)

    @server.post("/logout")
    def logout():
        session.clear()
        return redirect("/login")

    @server.route("/account/password", methods=["GET", "POST"])
    def change_password():
        auth = auth_of()
        next_url = _safe_next(request.values.get("next"))
        forced = bool(g.user.must_change_password)
        if g.via != "session":
            return _refuse(403, "session_required", "change your password from a signed-in browser session")
        if request.method == "GET":
            return _html(_password_form(next_url=next_url, forced=forced))
        current, new, repeat = (request.form.get(k) or "" for k in ("current", "new", "repeat"))
        if users.authenticate(auth.engine, g.user.username, current) is None:
            return _html(_password_form("Current password: not right.", next_url, forced), 400)
        if new != repeat:
            return _html(_password_form("New password again: the two differ.", next_url, forced), 400)
        if new == current:
            return _html(_password_form("New password: choose one that differs from the current one.", next_url,
                                        forced), 400)
        try:
            user = users.set_password(auth.engine, g.user.id, new, field="New password")
        except users.UserError as exc:
            return _html(_password_form(str(exc), next_url, forced), 400)
        session["stamp"] = users.session_stamp(user)  # this session goes on; every other one ends
        return redirect(next_url)


def _audit_failure(auth: Auth, username: str) -> None:
    from db import audit

    try:
        audit.record(auth.engine, "anonymous", "user.login_failed", f"user {username[:64]}")
    except Exception:  # noqa: BLE001 - a failed audit write must not turn a wrong password into a 500
        log.exception("could not record a failed login in the audit log")


def describe_identity() -> dict:
    """For GET /api/auth/me/ and the navigation bar."""
    if g.get("embed") is not None:
        return {"user": None, "role": None, "via": "embed", "actor": g.actor, "embed": g.embed.path}
    return {"user": users.public(g.user) if g.user is not None else None, "role": g.role, "via": g.via,
            "actor": g.actor, "anonymous_viewing": auth_of().anonymous_viewing}


__all__ = ["install", "may", "require", "describe_identity", "json"]
