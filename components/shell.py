"""The page frame: navigation built from dash.page_registry, and the page container.

With ?embed=1 in the URL a page renders without the navigation (Grafana iframes, kiosks).
"""
from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html


def _may_open(page) -> bool:
    """Only the pages this visitor may open are linked (auth/rules.py decides; this only tidies the bar)."""
    from flask import has_request_context

    from auth import rules
    from auth.web import may

    if not has_request_context():
        return True
    access = rules.PAGES.get(page.get("path_template") or page["path"])
    return access is not None and may(access)


def _account():
    """Who is signed in, with a way out; or a way in."""
    from flask import g, has_request_context

    user = g.get("user") if has_request_context() else None
    if user is None:
        return dbc.NavLink("Log in", href="/login", external_link=True, id="shell-login")
    return html.Div([
        dbc.NavLink(f"{user.username} · {user.role}", href=dash.get_relative_path("/account/tokens/"),
                    id="shell-user", className="text-light"),
        html.Form(html.Button("Log out", type="submit", className="btn btn-sm btn-outline-light", id="shell-logout"),
                  action="/logout", method="POST", className="ms-2"),
    ], className="d-flex align-items-center")


def navbar() -> dbc.Navbar:
    links = [
        dbc.NavItem(dbc.NavLink(page["name"], href=page["relative_path"], active="exact"))
        for page in dash.page_registry.values()
        if page.get("nav", True) and _may_open(page)
    ]
    return dbc.Navbar(
        dbc.Container([dbc.NavbarBrand("OEE", href=dash.get_relative_path("/")), dbc.Nav(links, navbar=True),
                       html.Div(_account(), className="ms-auto")],
                      fluid=True),
        color="dark", dark=True, className="mb-3", id="shell-navbar",
    )


def shell_layout():
    return html.Div([
        dcc.Location(id="shell-url"),
        html.Div(navbar(), id="shell-nav"),
        dbc.Container(dash.page_container, fluid=True),
    ])


@dash.callback(dash.Output("shell-nav", "style"), dash.Input("shell-url", "search"))
def hide_nav_when_embedded(search):
    from urllib.parse import parse_qs

    embed = parse_qs((search or "").lstrip("?")).get("embed", ["0"])[0]
    return {"display": "none"} if embed in ("1", "true", "yes") else {}
