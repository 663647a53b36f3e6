"""Fixtures for the simulated plant: small layouts and one real plant per session (its OPC-UA server takes ~1.5 s
to initialise, so every protocol test shares it). The shared plant runs with a manual clock: a test advances it
and then reads through the real client library what the model says it should read."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from plant import Plant, enip_available, parse_layout

TZ = "Europe/Berlin"
SIM_START = datetime(2025, 3, 3, 5, 0, tzinfo=ZoneInfo(TZ))  # a Monday, one hour before the 06:00 shift change

HEAD = """\
site: {id: TEST, name: Test Site, timezone: Europe/Berlin}
shifts:
  - {name: A, start: "06:00"}
  - {name: B, start: "14:00"}
  - {name: C, start: "22:00"}
breaks:
  - {name: Lunch, start: "10:00", minutes: 30}
products:
  - {code: 11, name: Small box, ideal_cycle_time: 2.0}
  - {code: 12, name: Large box, ideal_cycle_time: 3.0}
faults:
  - {code: 101, name: Jam, mtbf_min: 30, repair: {dist: exponential, mean_s: 60}}
  - {code: 201, name: Motor trip, mtbf_min: 120, repair: {dist: lognormal, median_s: 300, sigma: 0.5}}
machine_defaults:
  starved: {mtbf_min: 40, duration: {dist: exponential, mean_s: 60}}
  blocked: {mtbf_min: 50, duration: {dist: exponential, mean_s: 45}}
  order_quantity: [300, 600]
  changeover: {dist: lognormal, median_s: 300, sigma: 0.3}
areas:
  - name: Area 1
    lines:
"""

MACHINES = {
    "S7": "M-S7",
    "MODBUS": "M-MB",
    "OPCUA": "M-UA",
    "ETHERNET_IP": "M-LX",
    "SPARKPLUG_B": "M-SPB",
}


def small_yaml(*protocols: str, extra: str = "") -> str:
    """A one-line site with one machine per protocol asked for; ``extra`` is added to every machine's mapping."""
    protocols = protocols or ("S7", "MODBUS", "OPCUA", "ETHERNET_IP")
    text = HEAD + "      - name: Line 1\n        machines:\n"
    for p in protocols:
        text += f"          - {{id: {MACHINES[p]}, name: {p} machine, protocol: {p}{extra}}}\n"
    return text


def small_layout(*protocols: str, extra: str = ""):
    return parse_layout(small_yaml(*protocols, extra=extra), source="small.yaml")


@pytest.fixture(scope="session")
def plant():
    """One plant with an S7, a Modbus, an OPC-UA and (when plant.enip is there) a ControlLogix machine, manual clock."""
    protocols = ["S7", "MODBUS", "OPCUA"] + (["ETHERNET_IP"] if enip_available() else [])
    p = Plant(small_layout(*protocols), seed=7, sim_start=SIM_START, run_clock=False)
    p.start()
    yield p
    p.stop()


def endpoint(plant: Plant, machine_id: str) -> dict:
    return next(e for e in plant.endpoints() if e["machine_id"] == machine_id)
