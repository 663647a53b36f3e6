"""A factor above 100 % is never a silent 110 %: the overview's KPI cards and tiles and the shift report carry a
warning mark whose tooltip names the likely cause (here: an ideal cycle time too slow for what the machine does).
The pages' own callbacks and layouts, called as Dash calls them, over a real SQLite database."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
from sqlalchemy.orm import Session

from app import create_app
from db.models import Area, Line, Machine, MachineLifetime, Site
from db.spool import Batch
from processes.runtime import Runtime
from processes.settings import Settings


def _marks(component) -> list:
    """Every warning mark (class factor-warning) in a Dash component tree."""
    found = []
    if getattr(component, "className", None) == "factor-warning":
        found.append(component)
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if child is not None and not isinstance(child, (str, int, float)):
            found += _marks(child)
    return found


@pytest.fixture
def app(sqlite_url, tmp_path):
    runtime = Runtime(Settings(database_url=sqlite_url, data_dir=tmp_path, demo=False, role="web")).start()
    now = time.time()
    with Session(runtime.store.engine) as s, s.begin():
        line = Line(area=Area(site=Site(name="Plant", timezone="UTC"), name="Area"), name="Line")
        fast = Machine(machine_id="FAST", name="Labeller", line=line, ideal_cycle_time_s=1.0)  # makes 1.2 a second
        s.add_all([line, fast])
        s.flush()
        s.add(MachineLifetime(machine_id=fast.id, start=_utc(now - 7300)))
        line_id = line.id
        pk = fast.id
    start = now - (now % 60) - 7200  # running for two hours, 72 parts a minute
    runtime.store.write_batch(Batch("b", states=[(pk, start, None, "running", None, None)],
                                    counts=[(pk, start + 60 * i, start + 60 * i + 59, None, 72, 72, 0)
                                            for i in range(120)]))
    dash_app = create_app(runtime)
    dash_app.line_id = line_id
    yield dash_app
    runtime.stop()


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, timezone.utc)


def test_overview_kpis_and_tiles_mark_a_factor_above_100(app):
    from pages import overview

    with app.server.test_request_context("/"):
        _notes, kpis, _worst, numbers = overview._numbers({"range": "hour"}, 0)
    marks = {getattr(m, "id", None): m.title for m in _marks(kpis)}
    assert "overview-kpi-performance-warning" in marks, marks
    assert "ideal cycle time is too slow" in marks["overview-kpi-performance-warning"]
    assert "overview-kpi-oee-warning" in marks  # OEE above 100 % too: 1.2 parts a second at an ideal 1 s
    assert "overview-kpi-quality-warning" not in marks
    tile = numbers["tiles"]["FAST"]
    assert "counts twice" in tile["warn"] and tile["value"].startswith("1")  # shown as it is: 1xx %


def test_the_shift_report_marks_it(app):
    from pages import reports

    day = datetime.now(timezone.utc).date().isoformat()
    with app.server.test_request_context("/reports/"):
        page, _search = reports._sheet(day, reports.WHOLE_DAY, str(app.line_id))
    marks = {getattr(m, "id", None): m.title for m in _marks(page)}
    assert "report-kpi-performance-warning" in marks, marks
    assert any("ideal cycle time" in m.title for m in _marks(page) if not getattr(m, "id", None))  # machines
