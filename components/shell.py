"""The page frame: navigation built from dash.page_registry, and the page container.

With ?embed=1 in the URL a page renders without the navigation (Grafana iframes, kiosks).
"""
from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html


def navbar() -> dbc.Navbar:
    links = [
        dbc.NavItem(dbc.NavLink(page["name"], href=page["relative_path"], active="exact"))
        for page in dash.page_registry.values()
        if page.get("nav", True)
    ]
    return dbc.Navbar(
        dbc.Container([dbc.NavbarBrand("OEE", href=dash.get_relative_path("/")), dbc.Nav(links, navbar=True)],
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
