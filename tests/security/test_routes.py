"""Every route, page and Dash callback of the app has a rule (auth/rules.py), and every route has a tested
expectation in test_access.py's table: a new route without both fails here."""
from __future__ import annotations

import re

from auth import rules
from tests.security.test_access import ROUTES_TESTED

IGNORED_METHODS = {"HEAD", "OPTIONS"}  # HEAD is decided as GET; Flask answers OPTIONS with the Allow header only


def url_map_routes(server) -> set[tuple[str, str]]:
    return {(method, r.rule) for r in server.url_map.iter_rules() for method in r.methods - IGNORED_METHODS}


def test_every_route_of_the_app_has_a_rule_and_a_tested_expectation(site):
    routes = url_map_routes(site.server)
    assert len(routes) > 60  # the whole app: Dash, pages, API, exports, WebSocket, login
    tested = {(m, rule) for m, rule, _path, _access in ROUTES_TESTED}
    missing_test = sorted(routes - tested)
    assert not missing_test, f"routes without a tested expectation in test_access.ROUTES_TESTED: {missing_test}"
    for method, rule, path, access in ROUTES_TESTED:
        if (method, rule) not in routes:
            continue
        found = rules.route_rule(method, path.split("?")[0])
        assert found is not None, f"{method} {path} has no access rule"
        table_access = rules.VIEWER if access == "embed" else access
        assert found.access in (table_access, rules.PAGE, rules.CALLBACK), (method, path, found, access)


def test_a_route_without_a_rule_is_refused(site):
    assert rules.route_rule("POST", "/healthz") is None
    assert rules.route_rule("PUT", "/") is None
    r = site.client("admin").put("/", headers={"Origin": "http://localhost"})
    assert r.status_code == 403 and "no access rule" in r.get_json()["message"]


def test_every_page_has_a_rule(site):
    import dash

    for page in dash.page_registry.values():
        key = page.get("path_template") or page["path"]
        assert key in rules.PAGES, f"page {key} ({page['module']}) has no rule in auth/rules.PAGES"


def test_every_dash_callback_has_a_rule(site):
    deps = site.server.test_client().get("/_dash-dependencies").get_json()
    assert len(deps) > 50
    for dep in deps:
        ids = re.findall(r'(\{[^{}]*\}|[A-Za-z_][\w-]*)\.[A-Za-z_]+(?:@[0-9a-f]+)?', dep["output"])
        assert ids, dep["output"]
        for ident in ids:
            key = ident if not ident.startswith("{") else __import__("json").loads(ident)
            assert rules.callback_rule(key) is not None, f"callback output {ident} has no rule in rules.CALLBACK_*"


def test_patterns_match_whole_segments():
    rule = rules.route_rule
    assert rule("GET", "/api/plc/machines/").access == rules.ENGINEER
    assert rule("GET", "/api/plcx").access == rules.PAGE  # not /api/plc/**: the Dash catch-all decides
    assert rule("GET", "/ws/dashboard/machine/A/").access == rules.VIEWER
    assert rule("GET", "/ws/dashboard/machine/A/B/").access == rules.PAGE
    assert rule("DELETE", "/api/auth/tokens/3/").access == rules.LOGIN
    assert rule("DELETE", "/api/auth/tokens/") is None
