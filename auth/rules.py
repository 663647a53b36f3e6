"""THE access table: who may use which route. One before_request (auth.web) enforces it; nothing else does.

Three tables, all deny by default:

ROUTES: (methods, path pattern) -> access, first match wins. A request that matches no row is refused (403).
    Patterns: '*' is one path segment, '**' any rest (also none); a trailing slash is optional, as the routes with
    strict_slashes=False take it. tests/security/test_routes.py fails for any route of the app without a row.
PAGES: Dash page (its registered path or path_template) -> access. Dash serves every page from one catch-all
    route and, when the user follows a link, draws the page through the routing callback; both are decided here,
    by the page Dash itself resolves the path to (dash._pages._path_to_page), so that /SETTINGS or //settings can
    never slip past a string rule. A page missing from the table is refused.
CALLBACKS: Dash callbacks all POST to /_dash-update-component. A callback is decided by the component ids it
    writes (its outputs): each output id, or for a dictionary id its 'component' (All-in-One) or 'type' (pattern
    matching) value, is looked up by exact name, then by prefix (ids carry their page's prefix); the callback needs
    the highest access of its outputs. An output that matches nothing refuses the callback. So a page's callbacks
    need what its page needs, and the few callbacks that write on a reading page (the downtime dialog's save and
    split, which write downtime-saved) are named with the role they need. A new writing callback on a viewer page
    must be added here with its role (test_routes.py lists every callback and fails on one without a row).

Access levels: PUBLIC (anyone), VIEWER (a viewer or above, or anyone when anonymous viewing is on), LOGIN (any
signed-in user, whatever the role), OPERATOR, ENGINEER, ADMIN. EMBED on a row: an embed link may use it too, and
then only for its own page and machine or line (auth.embed).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

PUBLIC = "public"
VIEWER = "viewer"
LOGIN = "login"
OPERATOR = "operator"
ENGINEER = "engineer"
ADMIN = "admin"
PAGE = "page"  # the Dash catch-all: decided by PAGES
CALLBACK = "callback"  # /_dash-update-component: decided by CALLBACKS

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
READS = frozenset({"GET"})
ALL = READS | WRITES


@dataclass(frozen=True)
class Rule:
    methods: frozenset
    pattern: str
    access: str
    embed: bool = False
    regex: re.Pattern = field(init=False, compare=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "regex", _compile(self.pattern))

    def matches(self, method: str, path: str) -> bool:
        return method in self.methods and self.regex.match(path) is not None


def _compile(pattern: str) -> re.Pattern:
    body = pattern.rstrip("/")
    out = ""
    for part in re.split(r"(\*\*|\*)", body):
        out += "(?:/.*)?" if part == "**" else "[^/]+" if part == "*" else re.escape(part)
    out = out.replace(re.escape("/") + "(?:/.*)?", "(?:/.*)?")  # '/settings/**' also matches '/settings'
    return re.compile(f"^{out}/?$" if body else "^/$")


def R(methods, pattern: str, access: str, embed: bool = False) -> Rule:
    return Rule(frozenset(methods), pattern, access, embed)


ROUTES: tuple[Rule, ...] = (
    # Public: signing in, health for load balancers, and the static parts of the app (no data in them).
    R(READS | {"POST"}, "/login", PUBLIC),
    R({"POST"}, "/logout", PUBLIC),
    R(READS, "/healthz", PUBLIC),
    R(READS, "/static/**", PUBLIC),
    R(READS, "/assets/**", PUBLIC, embed=True),
    R(READS, "/_dash-component-suites/**", PUBLIC, embed=True),
    R(READS, "/_dash-layout", PUBLIC, embed=True),
    R(READS, "/_dash-dependencies", PUBLIC, embed=True),
    R(READS, "/_favicon.ico", PUBLIC, embed=True),
    R(READS, "/_reload-hash", PUBLIC),
    R(READS, "/api/openapi.json", PUBLIC),
    R(READS, "/api/auth/me/", PUBLIC),  # who the caller is: only their own identity
    # The signed-in user's own account.
    R(READS | {"POST"}, "/account/password", LOGIN),
    R(READS | {"POST"}, "/api/auth/tokens/", LOGIN),
    R({"DELETE"}, "/api/auth/tokens/*/", LOGIN),
    # Admins: users, and the audit log (pages/settings_audit.py, /api/audit/, /export/audit.csv).
    R(READS | {"POST"}, "/api/auth/users/", ADMIN),
    R({"PATCH"}, "/api/auth/users/*/", ADMIN),
    R(READS, "/api/audit/**", ADMIN),
    R(READS, "/export/audit.csv", ADMIN),
    # Engineers: embed links, and the configuration (the PLC connections, the plant, its file).
    R({"POST"}, "/api/auth/embed-links/", ENGINEER),
    R(ALL, "/api/plc/**", ENGINEER),
    R(ALL, "/api/config/**", ENGINEER),
    # Faults and alerts: operators acknowledge, engineers write the rules, viewers read (api/alerts.py).
    R({"POST"}, "/api/faults/*/ack", OPERATOR),
    R({"POST"}, "/api/alerts/*/ack", OPERATOR),
    R({"POST", "PUT", "PATCH", "DELETE"}, "/api/alerts/rules/**", ENGINEER),
    R(READS, "/api/alerts/**", VIEWER),
    R(READS, "/api/faults/", VIEWER),
    R(READS, "/api/events/", VIEWER),
    # Viewers: numbers, exports, live values.
    R(READS, "/api/oee/", VIEWER),
    R(READS, "/export/**", VIEWER),
    R(READS, "/metrics", VIEWER),
    R(READS, "/ws/dashboard/machine/*/", VIEWER, embed=True),
    R(READS, "/ws/dashboard/line/*/", VIEWER, embed=True),
    R(READS, "/ws/dashboard/", VIEWER),
    R(READS, "/ws/plc/*/", VIEWER),
    R(READS, "/ws/events/", VIEWER),
    R(READS, "/ws/config/", VIEWER),  # machine and line names as the dashboards show them; no addresses
    # Dash: callbacks by CALLBACKS, pages by PAGES.
    R({"POST"}, "/_dash-update-component", CALLBACK, embed=True),
    R(READS, "/**", PAGE, embed=True),
)

# Dash pages by their registered path or path_template.
PAGES: dict[str, str] = {
    "/": VIEWER,
    "/machine/<machine_id>": VIEWER,  # embed: its own machine
    "/line/<line_id>": VIEWER,  # embed: its own line
    "/andon/": VIEWER,  # embed: its own line's board (?line=<id>)
    "/operator/<target>": OPERATOR,  # the terminal at the line: reasons, notes, rejects
    "/downtime/": VIEWER,  # reading; giving reasons and splitting need operator (CALLBACKS)
    "/reports/": VIEWER,
    "/plc-monitor/": VIEWER,
    "/dataflow-monitor/": VIEWER,
    "/account/tokens/": LOGIN,
    "/machine-config/": ENGINEER,
    "/settings/": ENGINEER,
    "/settings/hierarchy/": ENGINEER,
    "/settings/products/": ENGINEER,
    "/settings/calendars/": ENGINEER,
    "/settings/reasons/": ENGINEER,
    "/settings/embed-links/": ENGINEER,
    "/settings/alerts/": ENGINEER,
    "/settings/users/": ADMIN,
    "/settings/audit/": ADMIN,
}
EMBED_PAGES = {"machine": "/machine/<machine_id>", "line": "/line/<line_id>", "andon": "/andon/"}
NOT_FOUND_PAGE = VIEWER  # a path that is no page: Dash draws its 404

# Dash callbacks by output id: (exact ids, prefixes). embed: an embed link may run it (for its own scope).
CALLBACK_EXACT: dict[str, tuple[str, bool]] = {
    "_pages_content": (PAGE, True),  # the routing callback: decided by the page it draws
    "_pages_store": (PAGE, True),
    "_pages_dummy": (VIEWER, True),
    "downtime-saved": (OPERATOR, False),  # the downtime dialog's save and split write reasons, notes, splits
    "machine-faults-acked": (OPERATOR, False),  # the machine page's Acknowledge of a fault
}
CALLBACK_PREFIXES: tuple[tuple[str, str, bool], ...] = (
    ("shell-", VIEWER, True),
    ("ScopeDashboardAIO", VIEWER, True),
    ("TimeRangeAIO", VIEWER, True),
    ("DownloadLinkAIO", VIEWER, True),
    ("LossParetoAIO", VIEWER, False),  # the overview's and /downtime/'s Pareto
    ("machine-faults-", VIEWER, False),  # the machine page's fault list
    ("overview-", VIEWER, False),
    ("andon-", VIEWER, True),  # /andon/: an embed link of a line's board runs them for its line (auth.web)
    ("op-", OPERATOR, False),  # /operator/<target>: reasons, notes, rejects; nothing else
    ("report-", VIEWER, False),
    ("plc-", VIEWER, False),
    ("dataflow-", VIEWER, False),
    ("downtime-", VIEWER, False),
    ("tokens-", LOGIN, False),
    ("mc-", ENGINEER, False),  # /machine-config/
    ("st-", ENGINEER, False),  # /settings/ (the configuration file)
    ("sh-", ENGINEER, False),  # /settings/hierarchy/
    ("sp-", ENGINEER, False),  # /settings/products/
    ("sc-", ENGINEER, False),  # /settings/calendars/
    ("sr-", ENGINEER, False),  # /settings/reasons/
    ("embed-", ENGINEER, False),  # /settings/embed-links/
    ("sa-", ENGINEER, False),  # /settings/alerts/
    ("users-", ADMIN, False),  # /settings/users/
    ("audit-", ADMIN, False),  # /settings/audit/
)

LEVEL = {PUBLIC: 0, VIEWER: 1, LOGIN: 1, OPERATOR: 2, ENGINEER: 3, ADMIN: 4, PAGE: 1}


def route_rule(method: str, path: str) -> Rule | None:
    method = "GET" if method == "HEAD" else method
    return next((r for r in ROUTES if r.matches(method, path)), None)


def callback_output_key(component_id) -> str:
    if isinstance(component_id, dict):
        return str(component_id.get("component") or component_id.get("type") or "")
    return str(component_id)


def callback_rule(component_id) -> tuple[str, bool] | None:
    key = callback_output_key(component_id)
    if key in CALLBACK_EXACT:
        return CALLBACK_EXACT[key]
    for prefix, access, embed in CALLBACK_PREFIXES:
        if key.startswith(prefix):
            return access, embed
    return None


def strongest(accesses) -> str:
    """The access that covers all: ADMIN over ENGINEER ..., LOGIN over VIEWER (a login is needed then)."""
    accesses = list(accesses)
    best = max(accesses, key=lambda a: (LEVEL[a], a == LOGIN))
    if LEVEL[best] == 1 and LOGIN in accesses:
        return LOGIN
    return best
