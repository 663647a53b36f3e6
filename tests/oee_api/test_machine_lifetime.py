"""Time that cannot be a machine's loss is not its planned time: before it was added, while it was disabled. Lines
and sites sum only their machines' planned time. On real SQLite and PostgreSQL; the migration's backfill too."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from datetime import time as clock

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from config import store as config_store
from db import migrate
from db.engine import make_engine
from db.machine_lifetime import periods, record_enabled
from db.models import Area, Line, Machine, MachineLifetime, Shift, ShiftCalendar, Site
from db.oee_queries import oee_report
from db.spool import Batch
from db.store import open_store

H = 3600.0
T0 = 1_790_000_000.0 - (1_790_000_000.0 % 86400) + 6 * H  # 06:00 UTC, a shift start, in the past


def utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, timezone.utc)


@pytest.fixture
def store(any_url):
    store = open_store(any_url)
    yield store
    store.close()


def _line(store) -> dict:
    """M1 in service all along; M2 added at 10:00, first data at 10:00:30, disabled 12:00-13:00. Both 1 s parts,
    on a 06:00-14:00 shift."""
    with Session(store.engine) as s, s.begin():
        cal = ShiftCalendar(name="Day", timezone="UTC", shifts=[Shift(name="A", start_time=clock(6),
                                                                      end_time=clock(14))])
        line = Line(area=Area(site=Site(name="Plant", timezone="UTC"), name="Area"), name="L")
        m1 = Machine(machine_id="M1", name="Old", line=line, ideal_cycle_time_s=1.0)
        m2 = Machine(machine_id="M2", name="New", line=line, ideal_cycle_time_s=1.0)
        s.add_all([cal, line, m1, m2])
        s.flush()
        m1.calendar_id = m2.calendar_id = cal.id
        s.add_all([MachineLifetime(machine_id=m1.id, start=utc(T0 - 30 * 86400), end=None),
                   MachineLifetime(machine_id=m2.id, start=utc(T0 + 4 * H), end=utc(T0 + 6 * H)),
                   MachineLifetime(machine_id=m2.id, start=utc(T0 + 7 * H), end=None)])
        ids = {"M1": m1.id, "M2": m2.id}
    # M1 runs the whole shift at 90 % speed; M2 runs whenever it is in service and reporting, at 100 %.
    store.write_batch(Batch("b", states=[
        (ids["M1"], T0 - H, T0 + 8 * H, "running", None, None),
        (ids["M2"], T0 + 4 * H + 30, T0 + 8 * H, "running", None, None),
    ], counts=[(ids["M1"], T0 + i * 60, T0 + (i + 1) * 60, None, 54, 54, 0) for i in range(480)]
       + [(ids["M2"], T0 + i * 60, T0 + (i + 1) * 60, None, 60, 60, 0) for i in range(241, 360)]
       + [(ids["M2"], T0 + i * 60, T0 + (i + 1) * 60, None, 60, 60, 0) for i in range(420, 480)]))
    return ids


def test_time_before_a_machine_was_added_and_while_disabled_is_not_planned(store):
    _line(store)
    m2 = oee_report(store, "machine", "M2", T0, T0 + 8 * H)
    planned = 3 * H  # 10:00-12:00 and 13:00-14:00
    assert m2["planned_time_s"] == pytest.approx(planned)
    assert m2["losses"]["availability.unknown"] == pytest.approx(30)  # added, not yet reporting: a real loss
    assert m2["losses"]["planned.no_production_scheduled"] == pytest.approx(5 * H)
    assert m2["oee"] == pytest.approx((119 + 60) * 60 / planned)
    line = oee_report(store, "line", "L", T0, T0 + 8 * H)
    m1 = oee_report(store, "machine", "M1", T0, T0 + 8 * H)
    assert m1["oee"] == pytest.approx(0.9)
    assert line["planned_time_s"] == pytest.approx(8 * H + planned)
    assert line["oee"] == pytest.approx((480 * 54 + 179 * 60) / (8 * H + planned))
    from db import ui_queries

    assert ui_queries.data_start(store, "machine", "M2") == pytest.approx(T0 + 4 * H)  # added, then first data
    # the same numbers whether a range starts at the shift or at the machine's adding (the first-day rule)
    from_added = oee_report(store, "machine", "M2", T0 + 4 * H, T0 + 8 * H)
    for key in ("availability", "performance", "quality", "oee", "planned_time_s"):
        assert from_added[key] == pytest.approx(m2[key], abs=1e-9), key


def test_a_machine_without_a_record_is_in_service_always(store):
    ids = _line(store)
    with Session(store.engine) as s, s.begin():
        s.query(MachineLifetime).filter_by(machine_id=ids["M2"]).delete()
    m2 = oee_report(store, "machine", "M2", T0, T0 + 8 * H)
    assert m2["planned_time_s"] == pytest.approx(8 * H)
    assert m2["losses"]["availability.unknown"] == pytest.approx(4 * H + 30)


def _clean_machine(machine_id: str, enabled: bool = True) -> dict:
    return {"machine_id": machine_id, "name": machine_id, "description": "", "protocol": "MODBUS",
            "ip_address": "127.0.0.1", "port": 1502, "protocol_config": {"unit_id": 1}, "poll_interval_ms": 1000,
            "line": None, "enabled": enabled}


def test_adding_disabling_and_enabling_a_machine_are_recorded(store):
    before = time.time()
    m = config_store.create_machine(store.engine, _clean_machine("NEW-1"))
    pk = m["id"]
    with Session(store.engine) as s:
        (start, end), = periods(s, [pk])[pk]
    assert before - 1 <= start <= time.time() and end is None
    config_store.set_machine_enabled(store.engine, pk, False)
    config_store.set_machine_enabled(store.engine, pk, False)  # no change: nothing new
    config_store.update_machine(store.engine, pk, _clean_machine("NEW-1", enabled=True))
    config_store.update_machine(store.engine, pk, _clean_machine("NEW-1", enabled=True))
    with Session(store.engine) as s:
        spans = periods(s, [pk])[pk]
    assert len(spans) == 2 and spans[0][1] is not None and spans[1][1] is None
    assert spans[0][0] <= spans[0][1] <= spans[1][0]
    # a machine added disabled is not in service until it is enabled
    off = config_store.create_machine(store.engine, _clean_machine("NEW-2", enabled=False))
    with Session(store.engine) as s:
        assert periods(s, [off["id"]]) == {}
    # an import creates machines like the API does
    config_store.import_document(store.engine, {"sites": [], "products": [], "reason_codes": [], "calendars": [],
                                                "machines": [{**_clean_machine("NEW-3"), "tags": []}]})
    with Session(store.engine) as s:
        pk3 = s.scalar(select(Machine.id).where(Machine.machine_id == "NEW-3"))
        assert len(periods(s, [pk3])[pk3]) == 1
    # deleting a machine deletes its record (the foreign key cascades; a new machine could get its id)
    config_store.delete_machine(store.engine, pk3)
    with Session(store.engine) as s:
        assert s.query(MachineLifetime).filter_by(machine_id=pk3).count() == 0


def test_disabling_a_machine_made_before_the_record_keeps_its_past(store):
    ids = _line(store)
    with Session(store.engine) as s, s.begin():
        s.query(MachineLifetime).filter_by(machine_id=ids["M1"]).delete()
        record_enabled(s, ids["M1"], False, at=T0 + 4 * H)
    m1 = oee_report(store, "machine", "M1", T0, T0 + 8 * H)
    assert m1["planned_time_s"] == pytest.approx(4 * H)


def test_the_migration_backfills_existing_machines(any_url):
    engine = make_engine(any_url)
    backend = "sqlite" if any_url.startswith("sqlite") else "postgresql"
    from alembic import command

    with engine.begin() as conn:
        command.upgrade(migrate._config(conn, backend), "0004")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO machines (id, machine_id, name, description, enabled) VALUES "
                          "(1, 'OLD', 'with data', '', true), (2, 'EMPTY', 'no data', '', true), "
                          "(3, 'OFF', 'disabled', '', false)"))
    store = None
    try:
        from db.types import UtcDateTime  # noqa: F401  (the column type the rows below are written through)

        with Session(engine) as s, s.begin():
            from db.models import MachineState

            s.add_all([MachineState(machine_id=1, start=utc(T0), end=utc(T0 + H), state="running"),
                       MachineState(machine_id=1, start=utc(T0 + H), end=None, state="idle"),
                       MachineState(machine_id=3, start=utc(T0 - H), end=utc(T0 + 2 * H), state="running")])
        before = time.time()
        store = open_store(any_url)
        assert store.schema_version == migrate.head_revision()
        with Session(store.engine) as s:
            got = periods(s, [1, 2, 3])
        assert got[1] == [(T0, None)]
        assert got[2][0][1] is None and before - 1 <= got[2][0][0] <= time.time()
        assert got[3] == [(T0 - H, T0 + 2 * H)]
    finally:
        if store is not None:
            store.close()
        engine.dispose()
