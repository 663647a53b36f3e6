"""One list-and-form section of a settings page (sites, areas, lines, products, reason codes, calendars).

`CrudSection(prefix, kind, ...)` registers its callbacks when the page module is imported (Dash pages style:
@callback, ids carry the page's prefix, repeated buttons use pattern-matching ids) and gives the layout with
`.layout()`. Reads and writes go through config.store, validation through config.validation (the API's);
a delete first says what goes with it and waits for a confirmation.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update
from flask import current_app

from config import store as cs
from config.fields import ValidationError

IMPACT_TEXT = {"areas": "areas", "lines": "lines", "machines_unassigned": "machines lose their line",
               "events_unreasoned": "downtime events lose this reason", "shifts": "shifts",
               "machines_uncalendared": "machines lose this calendar", "lines_uncalendared": "lines lose this calendar"}


def engine():
    return current_app.extensions["oee"].store.engine


@dataclass
class Field:
    key: str
    label: str
    kind: str = "text"  # text, number, select, switch, textarea
    help: str = ""
    options: Callable[[], list[dict]] | list[dict] | None = None
    default: object = None
    width: int = 4


@dataclass
class CrudSection:
    prefix: str
    kind: str  # a config_store kind: sites, areas, lines, products, reasons, calendars
    title: str
    fields: list[Field]
    columns: list[tuple[str, Callable[[dict], object]]]
    validate: Callable[[dict], dict]
    version_id: str  # the page's store: any change on the page bumps it, every section re-reads
    to_form: Callable[[dict], dict] = field(default=lambda item: item)  # stored item -> field values
    to_body: Callable[[dict], dict] = field(default=lambda values: values)  # field values -> validator input
    # where the items live: config.store, or a module with the same functions for its kind (list_items, get_item,
    # create_item, update_item, delete_item, item_impact, NotFound), e.g. config.alert_rules' for alert rules
    store: object = cs

    def __post_init__(self):
        self._register()

    def fid(self, key: str) -> str:
        return f"{self.prefix}-{key}"

    # --- layout ---

    def _control(self, f: Field):
        fid = self.fid(f.key)
        if f.kind == "select":
            opts = f.options() if callable(f.options) else (f.options or [])
            return dbc.Select(id=fid, options=opts, value=f.default)
        if f.kind == "switch":
            return dbc.Switch(id=fid, value=bool(f.default), label=f.label)
        if f.kind == "textarea":
            return dbc.Textarea(id=fid, value=f.default or "", rows=5, className="font-monospace")
        return dbc.Input(id=fid, type=f.kind, value=f.default)

    def layout(self) -> html.Div:
        form = dbc.Row([
            dbc.Col(html.Div([dbc.Label(f.label, html_for=self.fid(f.key)) if f.kind != "switch" else None,
                              self._control(f),
                              dbc.FormFeedback(id=f"{self.fid(f.key)}-fb", type="invalid"),
                              dbc.FormText(f.help) if f.help else None], className="mb-2"), md=f.width)
            for f in self.fields
        ])
        return dbc.Card([
            dbc.CardHeader(html.Span(self.title, className="fw-bold")),
            dbc.CardBody([
                dcc.Store(id=self.fid("editing"), data=None),
                dcc.Store(id=self.fid("delete-target"), data=None),
                html.Div(id=self.fid("table")),
                html.Div(id=self.fid("confirm")),
                html.H6("Add", id=self.fid("form-title"), className="mt-3"),
                form,
                html.Div(id=self.fid("errors")),
                dbc.Button("Add", id=self.fid("save"), color="primary", size="sm", className="me-2"),
                dbc.Button("Cancel", id=self.fid("cancel"), color="secondary", outline=True, size="sm"),
                html.Div(id=self.fid("saved"), className="mt-2"),
            ]),
        ], className="mb-3")

    # --- callbacks ---

    def _register(self) -> None:
        keys = [f.key for f in self.fields]
        select_dynamic = [f for f in self.fields if f.kind == "select" and callable(f.options)]
        fid = self.fid

        @callback(Output(fid("table"), "children"), *[Output(fid(f.key), "options") for f in select_dynamic],
                  Input(self.version_id, "data"))
        def render(_version):
            total, items = self.store.list_items(engine(), self.kind, limit=500)
            options = [f.options() for f in select_dynamic]
            if not items:
                return dbc.Alert("None yet.", color="light", id=fid("empty")), *options
            head = html.Thead(html.Tr([html.Th(c) for c, _ in self.columns] + [html.Th("")]))
            rows = [html.Tr([html.Td(fn(item)) for _, fn in self.columns] + [html.Td(dbc.ButtonGroup([
                dbc.Button("Edit", id={"type": fid("edit"), "pk": item["id"]}, size="sm", color="secondary",
                           outline=True),
                dbc.Button("Delete", id={"type": fid("delete"), "pk": item["id"]}, size="sm", color="danger",
                           outline=True)]))], id=f"{fid('row')}-{item['id']}") for item in items]
            return dbc.Table([head, html.Tbody(rows)], size="sm", hover=True, id=fid("list")), *options

        @callback(Output(self.version_id, "data", allow_duplicate=True), Output(fid("errors"), "children"),
                  Output(fid("saved"), "children"), Output(fid("editing"), "data", allow_duplicate=True),
                  *[Output(fid(k), "invalid") for k in keys], *[Output(f"{fid(k)}-fb", "children") for k in keys],
                  Input(fid("save"), "n_clicks"), State(self.version_id, "data"), State(fid("editing"), "data"),
                  *[State(fid(k), "value") for k in keys], prevent_initial_call=True)
        def save(n, version, editing, *values):
            blank = (no_update,) * (4 + 2 * len(keys))
            if not n:
                return blank
            raw = dict(zip(keys, values, strict=True))
            try:
                clean = self.validate(self.to_body(raw))
                if editing:
                    item = self.store.update_item(engine(), self.kind, editing, clean)
                else:
                    item = self.store.create_item(engine(), self.kind, clean)
            except ValidationError as exc:
                msgs = {k: "" for k in keys}
                unplaced = {}
                for k, v in exc.fields.items():
                    top = k.split(".", 1)[0].split("[", 1)[0]
                    if top in msgs and not msgs[top]:
                        msgs[top] = f"{k}: {v}" if k != top else v
                    else:
                        unplaced[k] = v
                box = dbc.Alert([html.Div(f"{k}: {v}") for k, v in exc.fields.items()], color="danger",
                                id=fid("invalid"))
                return (no_update, box, None, no_update, *[bool(msgs[k]) for k in keys],
                        *[msgs[k] for k in keys])
            except self.store.NotFound:
                return (version + 1, dbc.Alert("It was deleted meanwhile.", color="warning"), None, None,
                        *[False] * len(keys), *[""] * len(keys))
            name = item.get("name") or item.get("code")
            return (version + 1, None, dbc.Alert(f"Saved {name}.", color="success", id=fid("ok"), duration=4000),
                    None, *[False] * len(keys), *[""] * len(keys))

        @callback(Output(fid("editing"), "data", allow_duplicate=True), Output(fid("form-title"), "children"),
                  Output(fid("save"), "children"), *[Output(fid(k), "value") for k in keys],
                  Input({"type": fid("edit"), "pk": ALL}, "n_clicks"), Input(fid("cancel"), "n_clicks"),
                  Input(self.version_id, "data"), State(fid("editing"), "data"), prevent_initial_call=True)
        def edit(_clicks, _cancel, _version, editing):
            trigger = ctx.triggered_id
            if isinstance(trigger, dict):
                if not ctx.triggered[0]["value"]:
                    return (no_update,) * (3 + len(keys))
                try:
                    item = self.store.get_item(engine(), self.kind, trigger["pk"])
                except self.store.NotFound:
                    return (no_update,) * (3 + len(keys))
                form = self.to_form(item)
                return (item["id"], f"Edit {item.get('name') or item.get('code')}", "Update",
                        *[form.get(k) for k in keys])
            if trigger == self.version_id and editing:
                return (no_update,) * (3 + len(keys))  # another section changed: keep this form as it is
            return (None, "Add", "Add", *[f.default for f in self.fields])

        @callback(Output(fid("confirm"), "children"), Output(fid("delete-target"), "data"),
                  Input({"type": fid("delete"), "pk": ALL}, "n_clicks"), prevent_initial_call=True)
        def ask(_clicks):
            if not isinstance(ctx.triggered_id, dict) or not ctx.triggered[0]["value"]:
                return no_update, no_update
            pk = ctx.triggered_id["pk"]
            try:
                item = self.store.get_item(engine(), self.kind, pk)
                impact = self.store.item_impact(engine(), self.kind, pk)
            except self.store.NotFound:
                return None, None
            goes = [f"{n} {IMPACT_TEXT.get(k, k)}" for k, n in impact.items() if n]
            text = f"Delete {item.get('name') or item.get('code')}?" + (
                f" With it: {', '.join(goes)}." if goes else " Nothing else depends on it.")
            return dbc.Alert([html.Span(text, id=fid("impact")), html.Div([
                dbc.Button("Delete", id=fid("delete-confirm"), color="danger", size="sm", className="me-2"),
                dbc.Button("Keep it", id=fid("delete-cancel"), color="secondary", size="sm")], className="mt-2")],
                color="warning"), pk

        @callback(Output(self.version_id, "data", allow_duplicate=True),
                  Output(fid("confirm"), "children", allow_duplicate=True),
                  Input(fid("delete-confirm"), "n_clicks"), Input(fid("delete-cancel"), "n_clicks"),
                  State(fid("delete-target"), "data"), State(self.version_id, "data"), prevent_initial_call=True)
        def confirm(ok, cancel, pk, version):
            if ctx.triggered_id == fid("delete-cancel") and cancel:
                return no_update, None
            if ctx.triggered_id != fid("delete-confirm") or not ok or pk is None:
                return no_update, no_update  # the buttons just appeared: nothing was clicked yet
            try:
                self.store.delete_item(engine(), self.kind, pk)
            except self.store.NotFound:
                pass
            return version + 1, None


def settings_nav(active: str) -> dbc.Nav:
    """The settings pages' own navigation (only /settings/ is in the main navigation bar)."""
    items = [("Overview and file", "/settings/"), ("Hierarchy", "/settings/hierarchy/"),
             ("Products", "/settings/products/"), ("Shift calendars", "/settings/calendars/"),
             ("Reason codes", "/settings/reasons/"), ("Alert rules", "/settings/alerts/"),
             ("Machines", "/machine-config/")]
    return dbc.Nav([dbc.NavItem(dbc.NavLink(label, href=href, active=href == active)) for label, href in items],
                   pills=True, className="mb-3", id="settings-nav")
