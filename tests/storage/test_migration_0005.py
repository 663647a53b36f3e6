"""Migration 0005 (machine settings) on real SQLite and real PostgreSQL: a database at 0004 with a plant in it is
upgraded in place, keeps every row (no table copy that would cascade to cells or unassign machines), and gets the
new columns and table with the constraints the models declare."""
from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from db import migrate
from db.engine import make_engine
from db.models import Base

NEW = {("lines", "calendar_id"), ("sites", "micro_stop_threshold_s"), ("machines", "micro_stop_threshold_s")}


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    return f"sqlite:///{tmp_path / 'oee.sqlite3'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")


def _at_0004(url: str):
    engine = make_engine(url)
    backend = engine.dialect.name
    with engine.begin() as conn:
        command.upgrade(migrate._config(conn, backend), "0004")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO shift_calendars (id, name, timezone) VALUES (1, 'Two shifts', 'UTC')"))
        conn.execute(text("INSERT INTO sites (id, name, timezone) VALUES (1, 'Riverside', 'UTC')"))
        conn.execute(text("INSERT INTO areas (id, site_id, name) VALUES (1, 1, 'Packaging')"))
        conn.execute(text("INSERT INTO lines (id, area_id, name) VALUES (1, 1, 'Bottling')"))
        conn.execute(text("INSERT INTO cells (id, line_id, name) VALUES (1, 1, 'Filler cell')"))
        conn.execute(text(
            "INSERT INTO machines (id, machine_id, name, description, line_id, cell_id, calendar_id, "
            "ideal_cycle_time_s, state_code_map, enabled) VALUES (1, 'LINE-001', 'Filler', '', 1, 1, 1, 1.5, "
            "'{\"3\": \"faulted\"}', true)"))
    return engine


def test_an_upgrade_from_0004_keeps_the_data_and_adds_the_settings(url):
    engine = _at_0004(url)
    try:
        assert migrate.current_revision(engine) == "0004"
        assert migrate.upgrade(engine, engine.dialect.name) == migrate.head_revision() >= "0005"
        with engine.begin() as conn:
            machine = conn.execute(text(
                "SELECT machine_id, line_id, cell_id, calendar_id, ideal_cycle_time_s, state_code_map, "
                "micro_stop_threshold_s FROM machines")).one()
            assert tuple(machine[:5]) == ("LINE-001", 1, 1, 1, 1.5) and machine[6] is None
            state_map = machine[5] if isinstance(machine[5], dict) else __import__("json").loads(machine[5])
            assert state_map == {"3": "faulted"}
            assert conn.execute(text("SELECT id, line_id FROM cells")).all() == [(1, 1)]  # no cascade from a copy
            assert conn.execute(text("SELECT name, calendar_id FROM lines")).all() == [("Bottling", None)]
            assert conn.execute(text("SELECT micro_stop_threshold_s FROM sites")).scalar() is None
            # the new foreign keys act: a fault table goes with its machine, a line loses a deleted calendar
            conn.execute(text("UPDATE lines SET calendar_id = 1"))
            conn.execute(text("INSERT INTO machine_fault_codes (machine_id, code, text, kind) "
                              "VALUES (1, 42, 'Jam at infeed', 'fault')"))
            with pytest.raises(Exception, match="(?i)unique"):
                with conn.begin_nested():
                    conn.execute(text("INSERT INTO machine_fault_codes (machine_id, code, text, kind) "
                                      "VALUES (1, 42, 'twice', 'fault')"))
            conn.execute(text("DELETE FROM shift_calendars"))
            assert conn.execute(text("SELECT calendar_id FROM lines")).scalar() is None
            assert conn.execute(text("SELECT calendar_id FROM machines")).scalar() is None
            conn.execute(text("DELETE FROM machines"))
            assert conn.execute(text("SELECT count(*) FROM machine_fault_codes")).scalar() == 0
    finally:
        engine.dispose()


def test_the_migrated_schema_is_what_the_models_declare(url):
    """Alembic's own comparison of the upgraded database with db.models finds nothing to add or drop for what
    0005 made (so the ORM and the migration agree on every backend)."""
    engine = _at_0004(url)
    try:
        migrate.upgrade(engine, engine.dialect.name)
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), Base.metadata)
        mine = [d for d in diffs if "machine_fault_codes" in repr(d)
                or any(t in repr(d) and c in repr(d) for t, c in NEW)]
        if engine.dialect.name == "sqlite":
            # SQLAlchemy does not reflect the name of a foreign key declared inline with its column
            mine = [d for d in mine if not (d[0] in ("add_fk", "remove_fk") and "calendar_id" in repr(d))]
        assert mine == []
    finally:
        engine.dispose()
