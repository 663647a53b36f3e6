"""/settings/products/: products and their ideal cycle times (the performance factor's yardstick)."""
from __future__ import annotations

import dash
from dash import dcc, html

from components.settings_crud import CrudSection, Field, settings_nav
from config.plant_items import validate_product

dash.register_page(__name__, path="/settings/products/", name="Products", title="OEE · Products", nav=False)
VERSION = "sp-version"


def _number(v):
    try:
        return float(v) if v not in (None, "") else None
    except (TypeError, ValueError):
        return v


PRODUCTS = CrudSection(
    "sp-product", "products", "Products", [
        Field("code", "Code", help="As the PLC reports it (the product.code tag), e.g. 1001"),
        Field("name", "Name", help="e.g. Cola 0.5 l PET"),
        Field("ideal_cycle_time_s", "Ideal cycle time (s)", kind="number",
              help="Seconds per unit at full rated speed; above 0"),
    ], [("Code", lambda p: p["code"]), ("Name", lambda p: p["name"]),
        ("Ideal cycle time", lambda p: f"{p['ideal_cycle_time_s']:g} s")], validate_product, VERSION,
    to_body=lambda v: {**v, "ideal_cycle_time_s": _number(v["ideal_cycle_time_s"])})


def layout(**_query):
    return html.Div([dcc.Store(id=VERSION, data=0), html.H2("Settings · Products"), settings_nav("/settings/products/"),
                     PRODUCTS.layout()])
