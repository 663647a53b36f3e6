"""The access matrix: every route of the app (ROUTES_TESTED, which test_routes.py checks against the url_map) for
each kind of visitor: anonymous on loopback (anonymous viewing on), anonymous on an app built for 0.0.0.0
(anonymous viewing off), a signed-in viewer, operator, engineer and admin, API tokens, and an embed link. Each is
either let through (any answer but 401/403 from the gate) or refused (401/403, or a redirect to /login for a page).

Dash keeps its callbacks in one list per process, which the first app to serve takes; so the users, tokens and the
embed link are tried on the loopback app (whose pages work), and test_signed_in_users_view_without_anonymous_viewing
shows that on the 0.0.0.0 app a login, not anonymous viewing, is what lets a viewer in.

Writes that are let through are made harmless (unknown ids, bodies that fail validation), so the matrix runs in
any order without changing the plant."""
from __future__ import annotations

import time

import pytest

from auth import embed as embeds
from db.models import USER_ROLES
from keys.master import load_master_secret
from tests.security.conftest import ORIGIN, callback_body, post_callback, router_body
from tests.support.auth import make_token

PUBLIC, VIEWER, LOGIN, OPERATOR, ENGINEER, ADMIN = "public", "viewer", "login", "operator", "engineer", "admin"
EMBED = "embed"  # the embed link's own page and WebSocket (machine SEC-A): viewer, and open to that link
RANK = {PUBLIC: 0, VIEWER: 1, EMBED: 1, LOGIN: 1, OPERATOR: 2, ENGINEER: 3, ADMIN: 4}

# (method, url_map rule, a request path for it, who may use it)
ROUTES_TESTED: list[tuple[str, str, str, str]] = [
    ("GET", "/login", "/login", PUBLIC),
    ("POST", "/login", "/login", PUBLIC),  # test_login.py
    ("POST", "/logout", "/logout", PUBLIC),  # test_login.py
    ("GET", "/account/password", "/account/password", LOGIN),
    ("POST", "/account/password", "/account/password", LOGIN),  # test_login.py
    ("GET", "/healthz", "/healthz", PUBLIC),
    ("GET", "/static/<path:filename>", "/static/nothing.css", PUBLIC),
    ("GET", "/assets/<path:filename>", "/assets/oee.css", PUBLIC),
    ("GET", "/_dash-component-suites/<string:package_name>/<path:fingerprinted_path>",
     "/_dash-component-suites/dash/deps/polyfill@7.v4_4_1m1.12.1.min.js", PUBLIC),
    ("GET", "/_dash-layout", "/_dash-layout", PUBLIC),
    ("GET", "/_dash-dependencies", "/_dash-dependencies", PUBLIC),
    ("POST", "/_dash-update-component", "/_dash-update-component", VIEWER),  # by callback: test_callbacks below
    ("GET", "/_reload-hash", "/_reload-hash", PUBLIC),
    ("GET", "/_favicon.ico", "/_favicon.ico", PUBLIC),
    ("GET", "/", "/", VIEWER),
    ("GET", "/<path:path>", "/downtime/", VIEWER),
    ("GET", "/<path:path>", "/reports/", VIEWER),
    ("GET", "/<path:path>", "/plc-monitor/", VIEWER),
    ("GET", "/<path:path>", "/dataflow-monitor/", VIEWER),
    ("GET", "/<path:path>", "/machine/SEC-A", EMBED),
    ("GET", "/<path:path>", "/machine/SEC-B", VIEWER),
    ("GET", "/<path:path>", "/no-such-page/", VIEWER),
    ("GET", "/<path:path>", "/account/tokens/", LOGIN),
    ("GET", "/<path:path>", "/machine-config/", ENGINEER),
    ("GET", "/<path:path>", "/settings/", ENGINEER),
    ("GET", "/<path:path>", "/settings/hierarchy/", ENGINEER),
    ("GET", "/<path:path>", "/settings/products/", ENGINEER),
    ("GET", "/<path:path>", "/settings/calendars/", ENGINEER),
    ("GET", "/<path:path>", "/settings/reasons/", ENGINEER),
    ("GET", "/<path:path>", "/settings/embed-links/", ENGINEER),
    ("GET", "/<path:path>", "/settings/users/", ADMIN),
    ("GET", "/<path:path>", "/settings/audit/", ADMIN),
    ("GET", "/metrics", "/metrics", VIEWER),
    ("GET", "/ws/dashboard/", "/ws/dashboard/", VIEWER),
    ("GET", "/ws/dashboard/line/<line_id>/", "/ws/dashboard/line/1/", VIEWER),
    ("GET", "/ws/dashboard/machine/<machine_id>/", "/ws/dashboard/machine/SEC-A/", EMBED),
    ("GET", "/ws/dashboard/machine/<machine_id>/", "/ws/dashboard/machine/SEC-B/", VIEWER),
    ("GET", "/ws/plc/<machine_ids>/", "/ws/plc/SEC-A/", VIEWER),
    ("GET", "/ws/events/", "/ws/events/", VIEWER),
    ("GET", "/ws/config/", "/ws/config/", VIEWER),
    ("GET", "/api/openapi.json", "/api/openapi.json", PUBLIC),
    ("GET", "/api/oee/", "/api/oee/?machine=SEC-A", VIEWER),
    ("GET", "/api/plc/machines/", "/api/plc/machines/", ENGINEER),
    ("POST", "/api/plc/machines/", "/api/plc/machines/", ENGINEER),
    ("GET", "/api/plc/machines/<key>/", "/api/plc/machines/SEC-A/", ENGINEER),
    ("PUT", "/api/plc/machines/<key>/", "/api/plc/machines/NOPE-1/", ENGINEER),
    ("PATCH", "/api/plc/machines/<key>/", "/api/plc/machines/NOPE-1/", ENGINEER),
    ("DELETE", "/api/plc/machines/<key>/", "/api/plc/machines/NOPE-1/", ENGINEER),
    ("GET", "/api/plc/machines/<key>/tags/", "/api/plc/machines/SEC-A/tags/", ENGINEER),
    ("PUT", "/api/plc/machines/<key>/tags/", "/api/plc/machines/NOPE-1/tags/", ENGINEER),
    ("POST", "/api/plc/machines/<key>/test_connection/", "/api/plc/machines/NOPE-1/test_connection/", ENGINEER),
    ("POST", "/api/plc/test-connection/", "/api/plc/test-connection/", ENGINEER),
    ("POST", "/api/plc/machines/<key>/discover_tags/", "/api/plc/machines/NOPE-1/discover_tags/", ENGINEER),
    ("POST", "/api/plc/machines/<key>/reload_connection/", "/api/plc/machines/NOPE-1/reload_connection/", ENGINEER),
    ("GET", "/api/config/export", "/api/config/export", ENGINEER),
    ("POST", "/api/config/import", "/api/config/import?dry_run=true", ENGINEER),
    ("GET", "/api/auth/me/", "/api/auth/me/", PUBLIC),
    ("GET", "/api/auth/tokens/", "/api/auth/tokens/", LOGIN),
    ("POST", "/api/auth/tokens/", "/api/auth/tokens/", LOGIN),
    ("DELETE", "/api/auth/tokens/<token_id>/", "/api/auth/tokens/999999/", LOGIN),
    ("GET", "/api/auth/users/", "/api/auth/users/", ADMIN),
    ("POST", "/api/auth/users/", "/api/auth/users/", ADMIN),
    ("PATCH", "/api/auth/users/<user_id>/", "/api/auth/users/999999/", ADMIN),
    ("POST", "/api/auth/embed-links/", "/api/auth/embed-links/", ENGINEER),
    ("GET", "/api/audit/", "/api/audit/", ADMIN),
    ("GET", "/export/audit.csv", "/export/audit.csv", ADMIN),
    ("GET", "/export/<path:_anything>", "/export/nothing.csv", VIEWER),
    ("GET", "/export/oee.csv", "/export/oee.csv?machine=SEC-A", VIEWER),
    ("GET", "/export/shift-report.csv", "/export/shift-report.csv?line=1", VIEWER),
    ("GET", "/export/tags.csv", "/export/tags.csv?machine=SEC-A", VIEWER),
    ("GET", "/export/downtime.csv", "/export/downtime.csv?machine=SEC-A", VIEWER),
    ("GET", "/export/events.csv", "/export/events.csv?machine=SEC-A", VIEWER),
    ("GET", "/api/faults/", "/api/faults/?machine=SEC-A", VIEWER),
    ("POST", "/api/faults/<pk>/ack", "/api/faults/999999/ack", OPERATOR),
    ("GET", "/api/events/", "/api/events/", VIEWER),
    ("GET", "/api/alerts/", "/api/alerts/", VIEWER),
    ("POST", "/api/alerts/<pk>/ack", "/api/alerts/999999/ack", OPERATOR),
    ("GET", "/api/alerts/rules/", "/api/alerts/rules/", VIEWER),
    ("POST", "/api/alerts/rules/", "/api/alerts/rules/", ENGINEER),
    ("GET", "/api/alerts/rules/<pk>/", "/api/alerts/rules/999999/", VIEWER),
    ("PUT", "/api/alerts/rules/<pk>/", "/api/alerts/rules/999999/", ENGINEER),
    ("PATCH", "/api/alerts/rules/<pk>/", "/api/alerts/rules/999999/", ENGINEER),
    ("DELETE", "/api/alerts/rules/<pk>/", "/api/alerts/rules/999999/", ENGINEER),
    ("GET", "/<path:path>", "/settings/alerts/", ENGINEER),
]
for kind in ("sites", "areas", "lines", "products", "reasons", "calendars"):
    ROUTES_TESTED += [
        ("GET", f"/api/config/{kind}/", f"/api/config/{kind}/", ENGINEER),
        ("POST", f"/api/config/{kind}/", f"/api/config/{kind}/", ENGINEER),
        ("GET", f"/api/config/{kind}/<pk>/", f"/api/config/{kind}/999999/", ENGINEER),
        ("PUT", f"/api/config/{kind}/<pk>/", f"/api/config/{kind}/999999/", ENGINEER),
        ("PATCH", f"/api/config/{kind}/<pk>/", f"/api/config/{kind}/999999/", ENGINEER),
        ("DELETE", f"/api/config/{kind}/<pk>/", f"/api/config/{kind}/999999/", ENGINEER),
    ]
SPECIAL = {("POST", "/login"), ("POST", "/logout"), ("POST", "/account/password"), ("POST", "/_dash-update-component")}
GATE_ERRORS = {"login_required", "forbidden", "unauthorized", "outside_embed_scope", "embed_link_invalid"}


def refused(r) -> bool:
    if r.status_code == 302:
        return "/login" in r.headers.get("Location", "")
    if r.status_code not in (401, 403):
        return False
    body = r.get_json(silent=True)
    if body is None:  # an HTML page: the gate's says which refusal it is
        return any(f'data-error="{e}"' in r.get_data(as_text=True) for e in GATE_ERRORS)
    return body.get("error") in GATE_ERRORS


def call(client, method: str, path: str):
    body = {} if method in ("POST", "PUT", "PATCH") else None
    headers = {"Origin": ORIGIN, "Accept": "text/html" if method == "GET" else "application/json"}
    if path.startswith("/api/config/import"):
        return client.post(path, data=b"sites: [", headers={**headers, "Content-Type": "application/yaml"})
    return client.open(path, method=method, json=body, headers=headers)


def allowed_for(identity: str, access: str) -> bool:
    kind, _, role = identity.partition(":")
    if access == PUBLIC:
        return True
    if kind == "embed":
        return access == EMBED
    if kind == "anonymous-loopback":
        return access in (VIEWER, EMBED)
    if kind == "anonymous-remote":
        return False
    return RANK[role] >= RANK[access]


IDENTITIES = ["anonymous-loopback", "anonymous-remote", *(f"session:{r}" for r in USER_ROLES),
              "token:viewer", "token:engineer", "token:admin", "embed"]


@pytest.fixture(scope="module")
def clients(sites):
    loop, remote = sites["loopback"], sites["remote"]
    master = load_master_secret(remote.runtime.settings.data_dir)
    embed_token = embeds.sign(master, "machine", "SEC-A", time.time() + 3600)
    out = {"anonymous-loopback": loop.client(), "anonymous-remote": remote.client(), "embed": loop.client()}
    out["embed"].environ_base["HTTP_X_EMBED_TOKEN"] = embed_token
    for role in USER_ROLES:
        out[f"session:{role}"] = loop.client(role)
    for role in ("viewer", "engineer", "admin"):
        out[f"token:{role}"] = loop.client(token=make_token(loop.engine, role, name=f"matrix-{role}"))
    return out


@pytest.mark.parametrize("identity", IDENTITIES)
def test_access_matrix_over_every_route(clients, identity):
    client = clients[identity]
    wrong = []
    for method, rule, path, access in ROUTES_TESTED:
        if (method, rule) in SPECIAL:
            continue
        r = call(client, method, path)
        want = allowed_for(identity, access)
        if want == refused(r) or r.status_code >= 500:
            wrong.append(f"{method} {path} ({access}): {r.status_code} {r.get_data(as_text=True)[:120]!r}")
    assert not wrong, f"{identity}: " + "\n".join(wrong)


CALLBACKS = [  # (what, body maker, who may)
    ("router /", lambda s: router_body("/"), VIEWER),
    ("router /machine/SEC-A", lambda s: router_body("/machine/SEC-A?embed=1"), EMBED),
    ("router /machine/SEC-B", lambda s: router_body("/machine/SEC-B"), VIEWER),
    ("router /SETTINGS/ (no page: the 404)", lambda s: router_body("/SETTINGS/"), VIEWER),
    ("router /account/tokens/", lambda s: router_body("/account/tokens/"), LOGIN),
    ("router /settings/", lambda s: router_body("/settings/"), ENGINEER),
    ("router //settings/hierarchy/", lambda s: router_body("//settings/hierarchy/"), ENGINEER),
    ("router /machine-config/", lambda s: router_body("/machine-config/?machine=SEC-A"), ENGINEER),
    ("router /settings/users/", lambda s: router_body("/settings/users/"), ADMIN),
    ("overview", lambda s: callback_body(s, "overview-kpis.children"), VIEWER),
    ("dashboard status SEC-A", lambda s: callback_body(s, '"subcomponent":"status"}.children', {
        '{"aio_id":["MATCH"],"component":"ScopeDashboardAIO","subcomponent":"config"}': None}), VIEWER),
    ("downtime save (reason)", lambda s: callback_body(s, "downtime-modal-message.children...downtime-saved"),
     OPERATOR),
    ("hierarchy list", lambda s: callback_body(s, "sh-area-table.children"), ENGINEER),
    ("wizard list", lambda s: callback_body(s, "mc-list.children"), ENGINEER),
    ("tokens list", lambda s: callback_body(s, "tokens-table.children"), LOGIN),
    ("users list", lambda s: callback_body(s, "users-table.children"), ADMIN),
]


@pytest.mark.parametrize("identity", IDENTITIES)
def test_access_matrix_over_dash_callbacks(sites, clients, identity):
    client = clients[identity]
    wrong = []
    for what, make, access in CALLBACKS:
        r = post_callback(client, make(sites["loopback"]))
        want = allowed_for(identity, access if access != EMBED else VIEWER)
        if identity == "embed":
            want = access == EMBED
        if want == refused(r):
            wrong.append(f"{what} ({access}): {r.status_code} {r.get_data(as_text=True)[:160]!r}")
    assert not wrong, f"{identity}: " + "\n".join(wrong)


def test_signed_in_users_view_without_anonymous_viewing(sites):
    remote = sites["remote"]
    anonymous, viewer = remote.client(), remote.client("viewer")
    token = remote.client(token=make_token(remote.engine, "viewer", name="remote-viewer"))
    for path in ("/api/oee/?machine=SEC-A", "/export/oee.csv?machine=SEC-A", "/metrics", "/api/auth/tokens/"):
        assert anonymous.get(path).status_code == 401, path
        assert viewer.get(path).status_code == 200, path
        assert token.get(path).status_code == 200, path
    r = anonymous.get("/machine/SEC-A", headers={"Accept": "text/html"})
    assert r.status_code == 302 and r.headers["Location"] == "/login?next=%2Fmachine%2FSEC-A"
    assert viewer.get("/machine/SEC-A", headers={"Accept": "text/html"}).status_code == 200
    assert anonymous.get("/api/auth/me/").get_json()["anonymous_viewing"] is False
    assert sites["loopback"].client().get("/api/auth/me/").get_json()["anonymous_viewing"] is True
