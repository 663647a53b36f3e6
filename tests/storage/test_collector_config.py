"""load_collector_config reads with Core queries (the collectors reload it every 10 s); it must give what the ORM
model of the same rows says: enabled connections only, their enabled tags in id order, a tag's own machine or its
connection's, the machines those tags feed with their code tables and fault kinds."""
from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.collector_config import fingerprint, load_collector_config
from db.models import Connection, Machine, MachineFaultCode, Site, Tag
from db.store import open_store


def _plant(engine) -> None:
    with Session(engine) as s, s.begin():
        s.add(Site(id=1, name="S", timezone="UTC"))
        s.add_all([Machine(id=1, machine_id="M-1", name="A", state_code_map={"1": "running", "2": "fault"}),
                   Machine(id=2, machine_id="M-2", name="B", enabled=False),
                   Machine(id=3, machine_id="M-3", name="C")])
        s.add_all([MachineFaultCode(machine_id=1, code=12, text="Jam", kind="fault"),
                   MachineFaultCode(machine_id=1, code=3, text="Starved", kind="starved")])
        s.add_all([Connection(id=5, name="plc-b", machine_id=1, protocol="MODBUS", host="127.0.0.1", port=502,
                              protocol_config={"unit_id": 2}, poll_interval_ms=500),
                   Connection(id=2, name="plc-a", machine_id=None, protocol="S7", host="127.0.0.1", port=102,
                              protocol_config={"rack": 0, "slot": 1}, collector_node="node-1"),
                   Connection(id=9, name="off", machine_id=3, protocol="MODBUS", host="127.0.0.1", port=502,
                              enabled=False)])
        s.add_all([Tag(id=30, connection_id=5, name="Count", address="HR10", data_type="UINT32",
                       role="counter.good", options={"rollover": 1000}, scale=0.5, offset=1.0),
                   Tag(id=7, connection_id=5, machine_id=2, name="State", address="HR1", data_type="UINT16",
                       role="state", deadband=0.25, report_by_exception=True, sampling_interval_ms=250),
                   Tag(id=8, connection_id=5, name="Off", address="HR2", data_type="UINT16", enabled=False),
                   Tag(id=11, connection_id=2, name="Temp", address="DB1.DBD0", data_type="REAL"),
                   Tag(id=12, connection_id=2, machine_id=3, name="Run", address="DB1.DBX4.0", data_type="BOOL",
                       role="running"),
                   Tag(id=13, connection_id=9, name="Gone", address="HR3", data_type="UINT16")])


def _from_orm(engine) -> list[dict]:
    """The same plain data read through the ORM objects, as the loader did before it moved to Core queries."""
    with Session(engine) as s:
        machines = {m.id: m for m in s.scalars(select(Machine))}
        kinds: dict[int, dict[str, str]] = {}
        for f in s.scalars(select(MachineFaultCode).order_by(MachineFaultCode.code)):
            kinds.setdefault(f.machine_id, {})[str(f.code)] = f.kind
        out = []
        for c in s.scalars(select(Connection).where(Connection.enabled.is_(True)).order_by(Connection.id)):
            tags = [{"id": t.id, "name": t.name, "address": t.address, "data_type": t.data_type, "scale": t.scale,
                     "offset": t.offset, "deadband": t.deadband, "report_by_exception": t.report_by_exception,
                     "role": t.role, "machine_id": t.machine_id or c.machine_id, "options": t.options or {},
                     "sampling_interval_ms": t.sampling_interval_ms}
                    for t in sorted(c.tags, key=lambda t: t.id) if t.enabled]
            mids = {t["machine_id"] for t in tags if t["machine_id"]}
            out.append({"id": c.id, "name": c.name, "protocol": c.protocol, "host": c.host, "port": c.port,
                        "protocol_config": dict(c.protocol_config or {}), "credential_error": None,
                        "poll_interval_ms": c.poll_interval_ms, "collector_node": c.collector_node,
                        "machine_id": c.machine_id, "tags": tags,
                        "machines": {m: {"machine_id": machines[m].machine_id,
                                         "state_code_map": machines[m].state_code_map,
                                         "fault_kinds": kinds.get(m, {}), "enabled": machines[m].enabled}
                                     for m in mids if m in machines}})
        return out


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_core_load_equals_the_orm_reading(backend, request):
    url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url")
    store = open_store(url)
    try:
        _plant(store.engine)
        loaded = load_collector_config(store.engine)
        expected = _from_orm(store.engine)
    finally:
        store.close()
    assert [c["id"] for c in loaded] == [2, 5]  # enabled only, by id
    assert [t["id"] for t in loaded[1]["tags"]] == [7, 30]  # enabled tags, by id
    assert loaded[1]["tags"][1]["machine_id"] == 1  # the connection's machine when the tag names none
    assert loaded[1]["machines"][1]["fault_kinds"] == {"3": "starved", "12": "fault"}
    assert loaded == expected
    assert [fingerprint(c) for c in loaded] == [fingerprint(c) for c in expected]


def test_live_catalog_tags_read_as_columns_equal_the_orm_reading(sqlite_url):
    """db.live_queries.live_catalog reads tags as columns (every live service reloads it every 30 s)."""
    from db.live_queries import live_catalog

    store = open_store(sqlite_url)
    try:
        _plant(store.engine)
        tags = live_catalog(store.engine)["tags"]
        with Session(store.engine) as s:
            expected = [{"id": t.id, "name": t.name, "machine": t.machine_id or c.machine_id,
                         "data_type": t.data_type, "role": t.role, "enabled": t.enabled}
                        for t, c in s.execute(select(Tag, Connection).join(Connection, Tag.connection_id == Connection.id)
                                              .order_by(Tag.id)).all()]
    finally:
        store.close()
    assert [t["id"] for t in tags] == [7, 8, 11, 12, 13, 30]  # disabled ones too: the catalog names every tag
    assert next(t for t in tags if t["id"] == 30)["machine"] == 1  # the connection's machine
    assert tags == expected


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_configuration_stamp_moves_with_each_kind_of_change(backend, request):
    """config_stamp lets the timed reload skip reading every tag: it must move when a tag, a connection, a machine
    or a fault code is added, removed, enabled/disabled or edited (by hand too), when a connection is saved
    (updated_at) and when anything is audited; and stay put when nothing changed."""
    from sqlalchemy import delete, update

    from db import audit
    from db.collector_config import config_stamp

    store = open_store(request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url"))
    engine = store.engine
    try:
        _plant(engine)
        changes = [
            update(Tag).where(Tag.id == 8).values(enabled=True),
            delete(Tag).where(Tag.id == 13),
            update(Connection).where(Connection.id == 9).values(enabled=True),
            update(Connection).where(Connection.id == 5).values(updated_at=1_800_000_000.0),
            update(Machine).where(Machine.id == 2).values(enabled=True),
            delete(MachineFaultCode).where(MachineFaultCode.code == 3),
            # by hand, as an UPDATE in the database: no updated_at, no audit entry
            update(Tag).where(Tag.id == 30).values(address="HR100"),
            update(Tag).where(Tag.id == 30).values(deadband=0.5),
            update(Tag).where(Tag.id == 7).values(options={"rollover": 10}),
            update(Connection).where(Connection.id == 5).values(poll_interval_ms=250),
            update(Machine).where(Machine.id == 1).values(state_code_map={"1": "running"}),
        ]
        stamps = [config_stamp(engine)]
        assert config_stamp(engine) == stamps[0]
        for change in changes:
            with engine.begin() as c:
                c.execute(change)
            stamps.append(config_stamp(engine))
        with Session(engine) as s, s.begin():
            s.add(Tag(id=40, connection_id=2, name="New", address="DB1.DBW8", data_type="INT"))
        stamps.append(config_stamp(engine))
        with Session(engine) as s, s.begin():
            audit.record(s, None, "machine.update", "machine M-1", {"state_code_map": {}}, {"state_code_map": {}})
        stamps.append(config_stamp(engine))
        assert config_stamp(engine) == stamps[-1]
    finally:
        store.close()
    assert all(before != after for before, after in zip(stamps, stamps[1:]))  # each change moved it
