"""The overview's tiles agree with the configuration and speak in names: a disabled machine shows "Disabled", never
the green RUNNING it last reported; a product reads by its name, its code after. The page's own callback, called
as Dash calls it, over a real SQLite database."""
from __future__ import annotations

import time

import pytest
from sqlalchemy.orm import Session

from app import create_app
from db.models import Area, Line, Machine, Product, Site
from db.spool import Batch
from processes.runtime import Runtime
from processes.settings import Settings


@pytest.fixture
def app(sqlite_url, tmp_path):
    runtime = Runtime(Settings(database_url=sqlite_url, data_dir=tmp_path, demo=False, role="web")).start()
    with Session(runtime.store.engine) as s, s.begin():
        line = Line(area=Area(site=Site(name="Plant", timezone="UTC"), name="Area"), name="Line")
        on = Machine(machine_id="ON-1", name="Filler", line=line, ideal_cycle_time_s=1.0)
        off = Machine(machine_id="OFF-1", name="Old capper", line=line, ideal_cycle_time_s=1.0, enabled=False)
        s.add_all([line, on, off, Product(code="104", name="Cola 6x1.5L", ideal_cycle_time_s=1.0)])
        s.flush()
        ids = (on.id, off.id)
        line_id = line.id
    now = time.time()
    runtime.store.write_batch(Batch("b", states=[(pk, now - 600, None, "running", None, "104") for pk in ids]))
    dash_app = create_app(runtime)
    dash_app.line_id = line_id
    yield dash_app
    runtime.stop()


def test_a_disabled_machine_is_not_running_and_products_read_by_name(app):
    from pages import overview

    with app.server.test_request_context("/"):
        status, _clock = overview._status(0)
    on, off = status["tiles"]["ON-1"], status["tiles"]["OFF-1"]
    assert on["pill"] == "Running" and on["info"].startswith("Cola 6x1.5L (104)")
    assert off["pill"] == "Disabled" and off["state"] == "offline" and off["since"] == ""
    assert "info" not in off  # no product, no rate: it is not making anything


def test_the_line_pages_machine_table_says_disabled_too(app):
    from components import scope_dashboard

    with app.server.test_request_context("/"):
        out = scope_dashboard._oee({"range": "hour"}, 0, {"scope": "line", "key": str(app.line_id)})
    rows = {}
    for tr in out[6].children[1].children:
        cells = tr.children
        rows[cells[0].children.children] = cells[2].children.children
    assert rows == {"ON-1": "Running", "OFF-1": "Disabled"}
