"""Faults from the machine model through the one writer into SQLite, PostgreSQL and TimescaleDB: opened, closed,
acknowledged once (audited), left open by a restart and closed at start; the spool keeps them; the migration
agrees with the models."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from collectors.machine_model import MachineTracker
from db import faults
from db.collector_config import close_open_states
from db.models import Base
from db.spool import Batch, Spool, decode, encode
from db.store import open_store
from db.writer import Writer

CODES = {"1": "running", "3": "faulted", "7": "changeover"}


def _machine(store):
    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO machines (id, machine_id, name, description, enabled) "
                          "VALUES (1, 'F-1', 'Filler', '', true)"))
        conn.execute(text("INSERT INTO machine_fault_codes (machine_id, code, text, kind) VALUES "
                          "(1, 42, 'Filler jam', 'fault'), (1, 900, 'Cleaning', 'planned_stop')"))


def test_the_tracker_opens_and_closes_a_fault_once():
    t = MachineTracker(1, state_code_map=CODES, fault_kinds={"900": "planned_stop"})
    assert t.update(0, {"state.code": 1}).faults == []
    assert t.update(1, {"state.code": 3, "fault.code": 42}).faults == [(1, 42, 1, None)]
    assert t.update(2, {"state.code": 3, "fault.code": 42, "product.code": 7}).faults == []  # same fault
    assert t.update(3, {"state.code": 3, "fault.code": 43}).faults == [(1, 42, 1, 3), (1, 43, 3, None)]
    assert t.update(4, {"state.code": 1, "fault.code": 43}).faults == [(1, 43, 3, 4)]
    assert t.update(5, {"state.code": 3, "fault.code": 900}).faults == []  # its table makes it a planned stop
    assert t.offline(6).faults == []
    t.update(7, {"state.code": 3, "fault.code": 42})
    assert t.offline(8).faults == [(1, 42, 7, 8)]


def test_faults_reach_the_database_through_the_writer_and_are_acknowledged_once(any_url, tmp_path):
    store = open_store(any_url)
    writer = Writer(store, Spool(tmp_path / "spool"), commit_interval_s=0.05)
    try:
        _machine(store)
        writer.start()
        t = MachineTracker(1, state_code_map=CODES)
        t0 = 1_795_840_000.25
        for dt, values in ((0, {"state.code": 1}), (10, {"state.code": 3, "fault.code": 42}),
                           (25, {"state.code": 1}), (30, {"state.code": 3, "fault.code": 77})):
            out = t.update(t0 + dt, values)
            writer.submit_states(out.states)
            writer.submit_faults(out.faults)
        assert writer.flush(10)
        machines = [(1, "F-1", "Filler")]
        total, rows = faults.list_faults(store.engine, machines)
        assert total == 2
        newest, first = rows
        assert (first["code"], first["text"], first["duration_s"], first["active"]) == (42, "Filler jam", 15.0, False)
        assert (newest["code"], newest["text"], newest["active"], newest["end"]) == (77, "fault 77", True, None)
        assert faults.list_faults(store.engine, machines, active=True)[0] == 1
        assert faults.list_faults(store.engine, machines, start=t0 + 26, end=t0 + 40)[1][0]["id"] == newest["id"]

        acked = faults.acknowledge_fault(store.engine, first["id"], actor="lead")
        again = faults.acknowledge_fault(store.engine, first["id"], actor="someone-else")
        assert acked["acknowledged_by"] == again["acknowledged_by"] == "lead" and acked["acknowledged_at"]
        with store.engine.connect() as conn:
            entries = conn.execute(text("SELECT actor, action FROM audit_log WHERE action = 'fault.acknowledge'")).all()
        assert entries == [("lead", "fault.acknowledge")]

        # The writer closing the fault later never undoes the acknowledgement.
        writer.submit_faults([(1, 42, t0 + 10, t0 + 25)])
        assert writer.flush(10)
        assert faults.get_fault(store.engine, first["id"])["acknowledged_by"] == "lead"

        events = faults.list_events(store.engine, machines, limit=10)
        assert [e["kind"] for e in events[:2]] == ["fault", "state"] and events[0]["text"] == "fault 77"
        assert [e["kind"] for e in faults.list_events(store.engine, machines, kinds=("fault",))] == ["fault", "fault"]
        assert len(faults.list_events(store.engine, machines, limit=2, offset=1)) == 2

        # A restart: the open fault ends where the machine's last state interval was closed.
        writer.stop()
        close_open_states(store.engine, store.backend_name, [1])
        assert faults.list_faults(store.engine, machines, active=True)[0] == 0
    finally:
        writer.stop()
        store.close()


def test_a_spooled_batch_keeps_its_faults_and_an_old_spool_file_still_reads():
    batch = Batch("b1", faults=[(1, 42, 10.0, None)])
    assert decode(encode(batch)).faults == [(1, 42, 10.0, None)]
    import marshal
    import zlib

    from db.spool import MAGIC, MARSHAL_VERSION

    body = marshal.dumps(("old", [], [], []), MARSHAL_VERSION)  # written by a version without faults
    old = decode(MAGIC + zlib.crc32(body).to_bytes(4, "big") + body)
    assert old.batch_id == "old" and old.faults == []


def test_the_migrated_tables_are_what_the_models_declare(any_url):
    store = open_store(any_url)
    try:
        with store.engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), Base.metadata)
        mine = [d for d in diffs if any(t in repr(d) for t in ("'faults'", "'alert_rules'", "'alerts'"))]
        assert mine == []
    finally:
        store.close()


def test_a_scope_key_that_only_looks_like_an_id_is_no_scope(any_url):
    """Regression (schemathesis on PostgreSQL, GET /api/events/?line=...): a line '99999999999' overflowed the
    integer column (DataError, a 500) and '²' passed isdigit() and failed int() (ValueError)."""
    import pytest

    from db.export_queries import scope_machines
    from db.oee_queries import ScopeError

    store = open_store(any_url)
    try:
        for key in ("99999999999", "²"):
            with pytest.raises(ScopeError, match="does not exist"):
                scope_machines(store, "line", key)
    finally:
        store.close()
