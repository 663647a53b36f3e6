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
    """Who is signed in, with a way out; or a way in. In a navbar Nav, so that the links take the dark bar's light
    colours (a bare NavLink is dark text on the dark bar)."""
    from flask import g, has_request_context

    user = g.get("user") if has_request_context() else None
    if user is None:
        return dbc.Nav(dbc.NavItem(dbc.NavLink("Log in", href="/login", external_link=True, id="shell-login")),
                       navbar=True)
    return dbc.Nav([
        dbc.NavItem(dbc.NavLink(f"{user.username} · {user.role}", href=dash.get_relative_path("/account/tokens/"),
                                id="shell-user")),
        html.Form(html.Button("Log out", type="submit", className="btn btn-sm btn-outline-light", id="shell-logout"),
                  action="/logout", method="POST", className="ms-lg-2 my-1"),
    ], navbar=True, className="align-items-lg-center")


def navbar() -> dbc.Navbar:
    """The links fold behind a toggler below the xl breakpoint: on a phone the bar is one line, not a column of
    links above every page."""
    links = [
        dbc.NavItem(dbc.NavLink(page["name"], href=page["relative_path"], active="exact"))
        for page in dash.page_registry.values()
        if page.get("nav", True) and _may_open(page)
    ]
    return dbc.Navbar(
        dbc.Container([
            dbc.NavbarBrand("OEE", href=dash.get_relative_path("/")),
            dbc.NavbarToggler(id="shell-toggler", n_clicks=0),
            dbc.Collapse([dbc.Nav(links, navbar=True, className="me-auto"), _account()],
                         id="shell-collapse", is_open=False, navbar=True),
        ], fluid=True),
        color="dark", dark=True, expand="xl", className="mb-3", id="shell-navbar",
    )


# The menu button opens and closes the folded links; following one of them closes them (the bar is not drawn
# again when a link navigates inside the app).
dash.clientside_callback(
    """function (n, path, open) {
        var t = (window.dash_clientside.callback_context.triggered || [])[0];
        if (t && t.prop_id.indexOf("shell-url") === 0) { return false; }
        return !open;
    }""",
    dash.Output("shell-collapse", "is_open"), dash.Input("shell-toggler", "n_clicks"),
    dash.Input("shell-url", "pathname"), dash.State("shell-collapse", "is_open"), prevent_initial_call=True,
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
