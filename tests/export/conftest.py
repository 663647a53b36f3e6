"""A small plant on a real database for the export tests: two machines on a line with a shift calendar, tags with
awkward names and values (formulas, negative numbers), samples, states, counts and an operator's reason."""
from __future__ import annotations

import io
import os
import uuid
from datetime import datetime, time, timezone

import pandas as pd
import pytest
from sqlalchemy.orm import Session

from app import create_app
from db import backend as backends
from db.models import (
    Area,
    Connection,
    DowntimeEvent,
    Line,
    Machine,
    Product,
    ReasonCode,
    Shift,
    ShiftCalendar,
    Site,
    Tag,
)
from db.spool import Batch
from processes.runtime import Runtime
from processes.settings import Settings
from tests.conftest import PG_ADMIN_URL, _admin, _drop

H = 3600.0
T0 = 1_790_000_000.0 - (1_790_000_000.0 % H)  # a whole hour, in the past (2026-09-21 12:00 UTC)
PLANT_TZ = "America/Chicago"
FORMULA_TAG = "=HYPERLINK(\"http://evil\",\"x\")"


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat().replace("+00:00", "Z")


def seed(store) -> dict:
    """The plant and 8 hours of history from T0. Returns ids by name."""
    with Session(store.engine) as s, s.begin():
        site = Site(name="Plant", timezone=PLANT_TZ)
        area = Area(site=site, name="Packaging")
        line = Line(area=area, name="Line A")
        cal = ShiftCalendar(name="3x8", timezone=PLANT_TZ, shifts=[
            Shift(name="Day", start_time=time(6), end_time=time(14)),
            Shift(name="Swing", start_time=time(14), end_time=time(22)),
            Shift(name="Night", start_time=time(22), end_time=time(6)),
        ])
        m1 = Machine(machine_id="M1", name="Filler", line=line)
        m2 = Machine(machine_id="M2", name="Capper", line=line, ideal_cycle_time_s=2.0)
        s.add_all([site, area, line, cal, m1, m2, Product(code="P", name="Bottle", ideal_cycle_time_s=1.2),
                   ReasonCode(code="JAM", name="+Jam at the infeed", planned=False, loss_category="equipment_failure")])
        s.flush()
        m1.calendar_id = cal.id
        m2.calendar_id = cal.id
        conn = Connection(name="PLC 1", machine_id=m1.id, protocol="MODBUS", host="127.0.0.1", port=502,
                          poll_interval_ms=1000)
        s.add(conn)
        s.flush()
        speed = Tag(connection_id=conn.id, machine_id=m1.id, name="Speed", address="40001", data_type="FLOAT32")
        text = Tag(connection_id=conn.id, machine_id=m1.id, name=FORMULA_TAG, address="40010", data_type="STRING")
        temp = Tag(connection_id=conn.id, machine_id=m1.id, name="-Temp", address="40020", data_type="FLOAT32")
        s.add_all([speed, text, temp])
        s.flush()
        ids = {"M1": m1.id, "M2": m2.id, "speed": speed.id, "text": text.id, "temp": temp.id}
    samples = []
    for i in range(0, 8 * 3600, 10):  # every 10 s for 8 h
        t = T0 + i + 0.25
        samples.append((t, ids["speed"], 100.0 + (i % 600) / 7.0, None, 0, None))
        samples.append((t, ids["temp"], -20.5 + (i % 100) / 1000.0, None, 0 if i % 3600 else 2,
                        None if i % 3600 else "=cmd|' /C calc'!A0"))
    texts = ["=1+1", "-12", "@SUM(A1:A2)", "\tTabbed", "\rCR", "plain, with comma", "quote \" inside", "+3.5e2",
             "-1+1", "Zürich ✓"]
    for k, value in enumerate(texts):
        samples.append((T0 + 60 * k, ids["text"], None, value, 0, None))
    store.write_batch(Batch("seed", samples=samples, states=[
        (ids["M1"], T0, T0 + 7 * H, "running", None, "P"),
        (ids["M1"], T0 + 7 * H, T0 + 7.5 * H, "faulted", 101, "P"),
        (ids["M1"], T0 + 7.5 * H, T0 + 7.5 * H + 60, "idle", None, "P"),
        (ids["M1"], T0 + 7.5 * H + 60, T0 + 8 * H, "running", None, "P"),
        (ids["M2"], T0, T0 + 4 * H, "running", None, None),
        (ids["M2"], T0 + 4 * H, T0 + 8 * H, "idle", None, None),
    ], counts=[(ids["M1"], T0 + i * 600, T0 + (i + 1) * 600, "P", 476, 464, 12) for i in range(48)]
       + [(ids["M2"], T0 + i * 600, T0 + (i + 1) * 600, None, 250, 250, 0) for i in range(24)]))
    with Session(store.engine) as s, s.begin():
        jam = s.query(ReasonCode).filter_by(code="JAM").one()
        s.add(DowntimeEvent(machine_id=ids["M1"], start=datetime.fromtimestamp(T0 + 7 * H, timezone.utc),
                            end=datetime.fromtimestamp(T0 + 7.25 * H, timezone.utc), reason_id=jam.id,
                            note="operator"))
    if store.backend_name == backends.TIMESCALEDB:
        backends.refresh_continuous_aggregates(store.engine, T0, T0 + 8 * H)
    else:
        store.refresh_rollups(T0, T0 + 8 * H)
    return ids


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "timescaledb"])
def backend_url(request, tmp_path_factory):
    """One database per backend for a whole module of read-only tests (the seed takes a few seconds)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'oee.sqlite3'}"
        return
    if request.param == "postgresql":
        name = f"oee_export_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with _admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
        _drop(PG_ADMIN_URL, name)
        return
    cluster = request.getfixturevalue("timescale_cluster")
    name = f"oee_export_ts_{uuid.uuid4().hex[:8]}"
    url = cluster.create_database(name)
    yield url
    _drop(cluster.url(), name)


@pytest.fixture(scope="module")
def plant(backend_url, tmp_path_factory):
    """(test client, store, ids) over the seeded plant; tests must not change it (see sqlite_plant)."""
    runtime = Runtime(Settings(database_url=backend_url, data_dir=tmp_path_factory.mktemp("data"), demo=False,
                               role="web")).start()
    ids = seed(runtime.store)
    app = create_app(runtime)
    yield app.server.test_client(), runtime.store, ids
    runtime.stop()


@pytest.fixture(scope="module")
def sqlite_plant(tmp_path_factory):
    """The seeded plant on SQLite alone, for tests of bad input (they do not change it)."""
    tmp_path = tmp_path_factory.mktemp("sqlite_plant")
    sqlite_url = f"sqlite:///{tmp_path / 'oee.sqlite3'}"
    runtime = Runtime(Settings(database_url=sqlite_url, data_dir=tmp_path, demo=False, role="web")).start()
    ids = seed(runtime.store)
    app = create_app(runtime)
    yield app.server.test_client(), runtime.store, ids
    runtime.stop()


def read_csv(resp, **kwargs) -> pd.DataFrame:
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return pd.read_csv(io.BytesIO(resp.get_data()), keep_default_na=False, na_values=[""], **kwargs)
