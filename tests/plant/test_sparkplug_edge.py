"""The simulated plant's Sparkplug B machine: its own Mosquitto on the machine's port, an edge node that the app's
driver sees (BIRTH metrics by name, values as the plant ticks, a rebirth when asked, NDEATH when the plant stops)."""
from __future__ import annotations

import socket

import pytest

from collectors.base import ConnectionSettings, DriverError, TagSpec
from collectors.drivers.sparkplug import SparkplugDriver
from plant import Plant
from plant.sparkplug_edge import broker_available
from tests.collectors.test_sparkplug_driver import Collected
from tests.plant.conftest import SIM_START, small_layout
from tests.support.waiting import wait_for

pytestmark = pytest.mark.skipif(not broker_available(), reason="mosquitto is not installed")


def test_the_plants_edge_node_is_read_by_the_driver():
    plant = Plant(small_layout("SPARKPLUG_B", "MODBUS"), seed=7, sim_start=SIM_START, time_scale=60).start()
    try:
        ep = next(e for e in plant.endpoints() if e["protocol"] == "SPARKPLUG_B")
        assert ep["protocol_config"] == {"group_id": "DemoPlant", "edge_node_id": "M-SPB-gw", "device_id": "M-SPB"}
        roles = {t["name"]: t["role"] for t in ep["tags"]}
        assert roles["GoodCount"] == "counter.good" and roles["State"] == "state.code"
        settings = ConnectionSettings("SPARKPLUG_B", ep["host"], ep["port"], ep["protocol_config"], timeout_s=3.0)
        found = {t.address: t for t in SparkplugDriver(settings).discover()}
        assert {t["address"] for t in ep["tags"]} == set(found)
        assert found["GoodCount"].data_type == "INT32" and found["State"].data_type == "INT32"
        driver = SparkplugDriver(settings)
        tags = {t["name"]: i for i, t in enumerate(ep["tags"])}
        driver.plan([TagSpec(i, t["address"], t["data_type"], t["name"]) for i, t in enumerate(ep["tags"])])
        seen = Collected(driver)
        driver.connect()
        try:
            wait_for(lambda: seen.latest(tags["State"]) is not None, timeout=10)
            first = seen.latest(tags["ProductionCount"]).value
            wait_for(lambda: seen.latest(tags["ProductionCount"]).value != first, timeout=20)  # it ticks
            port = ep["port"]
        finally:
            plant.stop()
            plant = None
        wait_for(lambda: seen.errors, timeout=10)  # NDEATH, then the broker itself goes
        assert any("NDEATH" in e.message or "lost" in e.message for e in seen.errors)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        driver.close()
    finally:
        if plant is not None:
            plant.stop()
