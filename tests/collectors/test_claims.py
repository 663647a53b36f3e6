"""Several collector processes on one PostgreSQL: connections are split, and a dead node's move to the others."""
from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from collectors.poller import BackoffPolicy
from config.demo_plant import sync_demo_plant
from db.models import Connection
from db.store import open_store
from plant import Plant, default_layout
from processes.demo import demo_endpoints
from processes.runtime import Runtime
from processes.settings import Settings

MACHINES = ("LINE-013", "LINE-014", "LINE-015", "LINE-016")  # two S7, two Modbus: quick to connect


@pytest.fixture(scope="module")
def plant():
    layout = default_layout()
    layout = dataclasses.replace(layout, machines=tuple(m for m in layout.machines if m.id in MACHINES))
    p = Plant(layout, seed=3).start()
    yield p
    p.stop()


def collector(pg_url, tmp_path, node):
    settings = Settings(database_url=pg_url, data_dir=tmp_path / node, demo=False, role="collector", node_name=node)
    return Runtime(settings, collector_options={"backoff": BackoffPolicy(0.2, 1.0), "reload_interval_s": 3600}).start()


def polled(runtime) -> set[str]:
    return {p.name for p in runtime.collectors.pollers.values()}


def test_nodes_split_the_connections_and_take_over_from_a_dead_one(pg_url, tmp_path, plant):
    store = open_store(pg_url)
    sync_demo_plant(store.engine, {"name": "Site"}, demo_endpoints(plant.endpoints(), plant.layout), [])
    with Session(store.engine) as session, session.begin():
        session.scalar(select(Connection).where(Connection.name == "LINE-016")).collector_node = "node-b"
    store.close()

    a = collector(pg_url, tmp_path, "node-a")
    b = collector(pg_url, tmp_path, "node-b")
    try:
        b.collectors.reload()
        mine_a, mine_b = polled(a), polled(b)
        assert mine_a | mine_b == set(MACHINES)
        assert not mine_a & mine_b  # never polled twice
        assert "LINE-016" in mine_b and "LINE-016" not in mine_a  # assigned to node-b by configuration
        assert mine_a == {"LINE-013", "LINE-014", "LINE-015"}  # a started first and claimed the free ones

        a.stop()  # node-a dies: its advisory locks end with its session
        changes = b.collectors.reload()
        assert polled(b) == set(MACHINES)
        assert sorted(changes["added"]) == sorted(c for c in b.collectors.pollers if
                                                   b.collectors.pollers[c].name != "LINE-016")
    finally:
        a.stop()
        b.stop()


def test_a_database_outage_keeps_the_running_connections(tmp_path, plant, caplog):
    """Regression: a lost claims session must not make a node drop its connections when the database returns."""
    import logging

    from tests.support.pgcluster import PgCluster

    with PgCluster() as cluster:
        url = cluster.create_database("oee")
        store = open_store(url)
        sync_demo_plant(store.engine, {"name": "Site"}, demo_endpoints(plant.endpoints(), plant.layout), [])
        store.close()
        node = collector(url, tmp_path, "node-a")
        try:
            running = dict(node.collectors.pollers)
            assert polled(node) == set(MACHINES)
            cluster.kill()
            with caplog.at_level(logging.INFO, logger="collectors.manager"):
                assert node.collectors.reload() == {}
                assert node.collectors.reload() == {}
                assert node.collectors.pollers == running  # still polling; the writer spools meanwhile
                cluster.start()
                changes = node.collectors.reload()
            assert changes == {"added": [], "removed": [], "restarted": []}
            assert node.collectors.pollers == running
            assert node.collectors.claims.held == {p.id for p in running.values()}  # locks taken again
            said = [r.message for r in caplog.records if "configuration" in r.message]
            assert len([m for m in said if "cannot read" in m]) == 1 and len(said) == 2
        finally:
            node.stop()


def test_the_node_name_comes_from_the_option_or_the_environment(monkeypatch):
    """Two collector processes on one host need names of their own to share the PLCs by collector_node."""
    import os

    from processes.settings import from_args

    monkeypatch.delenv("OEE_NODE_NAME", raising=False)
    assert from_args(["--role", "collector"]).node_name == os.uname().nodename
    assert from_args(["--role", "collector", "--node-name", "line-2"]).node_name == "line-2"
    monkeypatch.setenv("OEE_NODE_NAME", "line-3")
    assert from_args(["--role", "collector"]).node_name == "line-3"
