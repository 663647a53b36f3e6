"""The data path end to end: simulated PLCs on the four real protocols, collectors, writer, database.

Faults are made with a TCP proxy in front of a real protocol server (a PLC that drops off and comes back, a slow
PLC) and with addresses that do not exist; nothing is mocked.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import time

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from collectors.base import BAD, GOOD
from collectors.poller import BackoffPolicy
from config.demo_plant import sync_demo_plant
from db.models import Connection, Tag
from plant import Plant, default_layout
from processes.demo import demo_endpoints
from processes.runtime import Runtime
from processes.settings import Settings
from tests.support import waiting
from tests.support.proxy import FaultProxy

ONE_OF_EACH = ("LINE-001", "LINE-011", "LINE-013", "LINE-015")  # EtherNet/IP, OPC-UA, S7, Modbus


def small_layout(ids):
    layout = default_layout()
    return dataclasses.replace(layout, machines=tuple(m for m in layout.machines if m.id in ids))


@pytest.fixture(scope="module")
def plant():
    p = Plant(small_layout(ONE_OF_EACH), seed=7, time_scale=60).start()
    yield p
    p.stop()


def make_runtime(tmp_path, endpoints, layout, **collector_options):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'oee.sqlite3'}", data_dir=tmp_path, demo=False)
    runtime = Runtime(settings, collector_options={
        "backoff": BackoffPolicy(initial_s=0.2, max_s=1.0), "reload_interval_s": 3600, "timeout_s": 1.0,
        **collector_options})
    # The configuration is in the database before the collectors start, as after a save in the wizard.
    from db.store import open_store

    store = open_store(settings.effective_database_url)
    sync_demo_plant(store.engine, {"name": "Test site"}, endpoints, [])
    store.close()
    return runtime.start()


wait_for = functools.partial(waiting.wait_for, timeout=15.0, interval=0.1)


def poller_named(runtime, name):
    return next(p for p in runtime.collectors.pollers.values() if p.name == name)


def test_every_protocol_fills_samples_states_and_counts(tmp_path, plant):
    runtime = make_runtime(tmp_path, demo_endpoints(plant.endpoints(), plant.layout), plant.layout)
    try:
        engine = runtime.store.engine

        def filled():
            with engine.connect() as conn:
                rows = conn.execute(text(
                    "SELECT m.machine_id, "
                    " (SELECT count(*) FROM samples s JOIN tags t ON t.id = s.tag_id WHERE t.machine_id = m.id),"
                    " (SELECT count(*) FROM machine_states ms WHERE ms.machine_id = m.id),"
                    " (SELECT coalesce(sum(total), 0) FROM production_counts pc WHERE pc.machine_id = m.id) "
                    "FROM machines m")).all()
            return rows if rows and all(r[1] and r[2] and r[3] for r in rows) else None

        runtime.writer.commit_interval_s = 0.2
        rows = wait_for(filled, timeout=30)
        assert {r[0] for r in rows} == set(ONE_OF_EACH)
        for poller in runtime.collectors.pollers.values():
            assert poller.state == "connected", poller.health()
            bad = [(t.name, runtime.collectors.snapshot.tag(t.tag_id)) for t in poller.tags
                   if runtime.collectors.snapshot.tag(t.tag_id)[2] != GOOD]
            assert not bad, (poller.name, bad)
        health = runtime.health()
        assert health["status"] == "ok" and len(health["connections"]) == 4
    finally:
        runtime.stop()


def test_a_plc_that_drops_off_and_comes_back(tmp_path, plant, caplog):
    endpoints = demo_endpoints(plant.endpoints(), plant.layout)
    modbus = next(e for e in endpoints if e["protocol"] == "MODBUS")
    proxy = FaultProxy(modbus["port"]).start()
    modbus["port"] = proxy.port
    for ep in endpoints:
        ep["poll_interval_ms"] = 200
    runtime = make_runtime(tmp_path, endpoints, plant.layout)
    try:
        with caplog.at_level(logging.INFO, logger="collectors"):
            wait_for(lambda: all(p.state == "connected" for p in runtime.collectors.pollers.values()))
            victim = poller_named(runtime, "LINE-015")
            bystander = poller_named(runtime, "LINE-013")
            proxy.cut()
            wait_for(lambda: victim.state == "failing")
            cycles_before = bystander.cycles
            time.sleep(2.5)  # several backoff rounds, all refused
            assert victim.failures >= 3
            assert bystander.cycles > cycles_before + 5 and bystander.state == "connected"  # undisturbed
            machine = runtime.collectors.snapshot.machine(victim.machine_ids[0])
            assert machine["state"] == "offline"
            tag_id = victim.tags[0].tag_id
            assert runtime.collectors.snapshot.tag(tag_id)[2] == BAD
            proxy.restore()
            wait_for(lambda: victim.state == "connected", timeout=10)
            wait_for(lambda: runtime.collectors.snapshot.tag(tag_id)[2] == GOOD)
        failed = [r for r in caplog.records if "LINE-015" in r.message and ") failed:" in r.message]
        recovered = [r for r in caplog.records if "LINE-015" in r.message and "recovered" in r.message]
        assert len(failed) == 1 and len(recovered) == 1  # one line each way, not one per attempt
        assert "failed attempts" in recovered[0].message
    finally:
        runtime.stop()
        proxy.cut()


def test_an_address_that_does_not_exist_is_bad_alone(tmp_path, plant):
    endpoints = demo_endpoints(plant.endpoints(), plant.layout)
    bogus = {
        "MODBUS": ("HR9000", "UINT16"),
        "S7": ("DB99.DBW0", "INT"),
        "OPCUA": ("ns=2;s=NoSuchNode", "Double"),
        "ETHERNET_IP": ("NoSuchTag", "DINT"),
    }
    for ep in endpoints:
        address, data_type = bogus[ep["protocol"]]
        ep["tags"] = ep["tags"] + [{"name": "Bogus", "address": address, "data_type": data_type, "role": None}]
    runtime = make_runtime(tmp_path, endpoints, plant.layout)
    try:
        with Session(runtime.store.engine) as session:
            bogus_ids = set(session.scalars(select(Tag.id).where(Tag.name == "Bogus")))
        assert len(bogus_ids) == 4
        wait_for(lambda: all(p.cycles >= 3 for p in runtime.collectors.pollers.values()))
        for poller in runtime.collectors.pollers.values():
            assert poller.state == "connected", poller.health()
            for tag in poller.tags:
                t, value, quality, reason = runtime.collectors.snapshot.tag(tag.tag_id)
                if tag.tag_id in bogus_ids:
                    assert quality == BAD and value is None and reason, (poller.protocol, reason)
                else:
                    assert quality == GOOD, (poller.protocol, tag.name, reason)
        runtime.writer.flush(10)
        with runtime.store.engine.connect() as conn:  # the reason is kept with the bad sample, not only shown live
            stored = conn.execute(text(
                f"SELECT DISTINCT tag_id, quality, reason FROM samples WHERE tag_id IN ({','.join(map(str, bogus_ids))})"
            )).all()
        assert {r[0] for r in stored} == bogus_ids and all(r[1] == BAD and r[2] for r in stored), stored
    finally:
        runtime.stop()


def test_a_slow_plc_skips_cycles_and_never_stacks_them(tmp_path, plant, caplog):
    endpoints = [e for e in demo_endpoints(plant.endpoints(), plant.layout) if e["protocol"] == "MODBUS"]
    proxy = FaultProxy(endpoints[0]["port"]).start()
    proxy.delay_s = 0.15  # every reply; a read cycle is two or more requests
    endpoints[0]["port"] = proxy.port
    endpoints[0]["poll_interval_ms"] = 100
    runtime = make_runtime(tmp_path, endpoints, plant.layout)
    try:
        with caplog.at_level(logging.WARNING, logger="collectors"):
            poller = poller_named(runtime, "LINE-015")
            wait_for(lambda: poller.cycles >= 1)
            start_cycles, started = poller.cycles, time.monotonic()
            time.sleep(3.0)
            elapsed = time.monotonic() - started
            done = poller.cycles - start_cycles
        assert poller.state == "connected"
        assert poller.skipped_cycles >= 5
        assert done <= elapsed / 0.15 + 1  # cycles ran one after another, never two at once
        assert poller.last_latency_ms >= 150
        skipped_lines = [r for r in caplog.records if "cycle skipped" in r.message]
        assert len(skipped_lines) == 1  # said once a minute at most, not once per skipped cycle
        # Each skip says why: the cycle before still ran when this one was due (not a late submission), with
        # the slow reads behind it.
        causes = [w for w in runtime.collectors.skips if w["connection"] == poller.name]
        assert len(causes) >= 5
        assert {w["kind"] for w in causes} == {"max_instances"}
        assert all(w["last_read_s"] >= 0.15 for w in causes if "last_read_s" in w)
        assert any(w.get("running_for_s", 0) > 0.05 for w in causes)  # the cycle in progress when this one was due
    finally:
        runtime.stop()
        proxy.cut()


def test_a_configuration_change_is_picked_up_without_restart(tmp_path, plant):
    endpoints = [e for e in demo_endpoints(plant.endpoints(), plant.layout) if e["protocol"] in ("S7", "MODBUS")]
    runtime = make_runtime(tmp_path, endpoints, plant.layout)
    try:
        manager = runtime.collectors
        wait_for(lambda: len(manager.pollers) == 2 and all(p.cycles for p in manager.pollers.values()))
        s7, modbus = poller_named(runtime, "LINE-013"), poller_named(runtime, "LINE-015")
        with Session(runtime.store.engine) as session, session.begin():
            conn = session.scalar(select(Connection).where(Connection.name == "LINE-013"))
            conn.poll_interval_ms = 250
            session.scalar(select(Connection).where(Connection.name == "LINE-015")).enabled = False
        changes = manager.reload()
        assert changes == {"added": [], "removed": [modbus.id], "restarted": [s7.id]}
        assert [p.name for p in manager.pollers.values()] == ["LINE-013"]
        assert poller_named(runtime, "LINE-013").interval_s == 0.25
        assert manager.reload() == {"added": [], "removed": [], "restarted": []}  # nothing changed, nothing done
    finally:
        runtime.stop()


def test_scaling_deadband_and_report_by_exception(tmp_path, plant):
    endpoints = [e for e in demo_endpoints(plant.endpoints(), plant.layout) if e["protocol"] == "S7"][:1]
    runtime = make_runtime(tmp_path, endpoints, plant.layout)
    try:
        manager = runtime.collectors
        with Session(runtime.store.engine) as session, session.begin():
            ideal = session.scalar(select(Tag).where(Tag.role == "cycle.ideal_time"))
            ideal.scale, ideal.offset = 1000.0, 5.0  # seconds to milliseconds, plus an offset
            ideal.report_by_exception = True
            ideal_id = ideal.id
        manager.reload()
        poller = next(iter(manager.pollers.values()))
        wait_for(lambda: poller.cycles >= 10)
        runtime.writer.flush(10)
        raw = plant.snapshot("LINE-013")["IdealCycleTime"]
        t, value, quality, _ = manager.snapshot.tag(ideal_id)
        assert quality == GOOD and value == pytest.approx(raw * 1000.0 + 5.0)
        with runtime.store.engine.connect() as conn:
            stored = conn.execute(text("SELECT count(*) FROM samples WHERE tag_id = :t"), {"t": ideal_id}).scalar()
        assert 1 <= stored <= 3  # once, and again only on a product change; not every cycle
    finally:
        runtime.stop()


def test_the_timed_reload_reads_the_tags_only_when_the_configuration_changed(tmp_path, plant):
    """The timed reload (every 10 s) read every tag each time, 0.3-0.5 s of CPU at 50,000 tags, for nothing most of
    the time. Now a stamp first: unchanged, no statement reads the tags; a change saved through config.store (the
    API's and the wizard's path) is picked up at the next timed reload; an explicit reload() reads everything."""
    from sqlalchemy import event

    from config import store as config_store
    from db.models import Machine

    endpoints = [e for e in demo_endpoints(plant.endpoints(), plant.layout) if e["protocol"] == "S7"][:1]
    runtime = make_runtime(tmp_path, endpoints, plant.layout)
    engine = runtime.store.engine
    statements = []

    def tag_rows_read() -> list[str]:
        """The collectors' reads of the tags row by row (the stamp's aggregate is one row; the live catalog, which
        reads no address, is another service's)."""
        return [s for s in statements if "tags.address" in s and "count(*)" not in s]

    def seen(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        manager = runtime.collectors
        wait_for(lambda: len(manager.pollers) == 1)
        reads = manager.full_reads
        statements.clear()
        assert manager.reload_if_changed() == {"added": [], "removed": [], "restarted": []}
        assert manager.full_reads == reads
        assert statements and not tag_rows_read()

        with Session(engine) as session:
            pk = session.scalar(select(Machine.id).where(Machine.machine_id == "LINE-013"))
        tags = config_store.machine_tags(engine, pk)
        tags[0]["deadband"] = (tags[0]["deadband"] or 0.0) + 0.5
        config_store.replace_tags(engine, pk, tags)
        statements.clear()
        changes = manager.reload_if_changed()
        assert changes["restarted"] == [next(iter(manager.pollers))]
        assert manager.full_reads == reads + 1
        assert tag_rows_read()
        poller = next(iter(manager.pollers.values()))
        assert next(t for t in poller.tags if t.tag_id == tags[0]["id"]).deadband == tags[0]["deadband"]

        # An edit by hand that keeps every sum of the stamp (two tags' addresses swapped): the timed reload misses
        # it until its periodic full read; reload() (what the API calls after a save) reads everything at once.
        first, second = tags[0], next(t for t in tags[1:] if t["address"] != tags[0]["address"])
        with engine.begin() as conn:
            for tag, address in ((first, "swap"), (second, first["address"]), (first, second["address"])):
                conn.execute(text("UPDATE tags SET address = :a WHERE id = :t"), {"a": address, "t": tag["id"]})
        assert manager.reload_if_changed()["restarted"] == []
        manager.full_reload_s = 0.0
        assert manager.reload_if_changed()["restarted"] == [poller.id]
        manager.full_reload_s = 300.0
        assert manager.reload()["restarted"] == []
        assert manager.full_reads == reads + 3
    finally:
        event.remove(engine, "before_cursor_execute", seen)
        runtime.stop()
