"""The running plant: time scale on a real clock, ports (in use, fallback, freed), bad arguments, the demo plant."""

from __future__ import annotations

import socket
import struct
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import snap7
from pymodbus.client import ModbusTcpClient

import plant.runtime as runtime
from plant import Plant, PortInUseError, default_layout, enip_available, parse_layout
from plant.runtime import port_is_free

from .conftest import SIM_START, small_layout, small_yaml

ROLES = {"state.running", "state.faulted", "state.stopped", "state.code", "counter.total", "counter.good",
         "counter.reject", "fault.code", "cycle.time", "cycle.ideal_time", "product.code", "order.id", None}


def listening_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s


def test_time_scale_3600_runs_hours_in_seconds_with_shift_resets_and_rollover():
    """At 3600x the plant makes hours of production in ~3 s; what S7 shows always equals the ground truth."""
    yaml = small_yaml("S7", "MODBUS", extra=", counter_initial: 500")
    yaml = yaml.replace("protocol: MODBUS, counter_initial: 500",
                        "protocol: MODBUS, counter_modulus: 1000, counter_initial: 950, reset_counters_at_shift: false")
    start = datetime(2025, 3, 3, 4, 0, tzinfo=ZoneInfo("Europe/Berlin"))  # the 06:00 reset comes 2 s in
    p = Plant(parse_layout(yaml, "fast.yaml"), seed=3, time_scale=3600, sim_start=start, tick_s=0.05)
    p.start()
    try:
        eps = {e["machine_id"]: e for e in p.endpoints()}
        s7 = snap7.client.Client()
        s7.connect("127.0.0.1", 0, 1, eps["M-S7"]["port"])
        mb = ModbusTcpClient("127.0.0.1", port=eps["M-MB"]["port"])
        assert mb.connect()
        samples, wraps, last_mb = [], 0, None
        wall0 = time.monotonic()
        while time.monotonic() - wall0 < 3.0:
            with p.lock:  # the clock cannot tick while we hold the lock: the S7 read and the model agree
                t = p.machine("M-S7").now
                counter = struct.unpack(">i", s7.db_read(1, 0, 4))[0]
                assert counter == p.machine("M-S7").counters["total"]
            samples.append((t, counter))
            regs = mb.read_holding_registers(0, count=2, device_id=1).registers
            value = mb.convert_from_registers(regs, ModbusTcpClient.DATATYPE.UINT32, word_order="big")
            assert 0 <= value < 1000
            if last_mb is not None and value < last_mb:
                wraps += 1
            last_mb = value
            time.sleep(0.03)
        elapsed = time.monotonic() - wall0
        s7.disconnect()
        mb.close()
        gt = p.ground_truth("M-S7")
        assert gt.sim_now == pytest.approx(p.clock_now(), rel=0.05)
        assert gt.sim_now >= 3.0 * 3600 and gt.sim_now / 3600 <= elapsed + 1.5  # hours of production
        resets = [e.t_sim for e in gt.counter_events if e.kind == "shift_reset"]
        assert resets and resets[0] == pytest.approx(7200.0)  # 06:00
        assert samples[0][0] < 7200.0 < samples[-1][0]
        for t, counter in samples:  # every reading is the count since the last reset, exactly
            since = max([r for r in resets if r <= t], default=None)
            expected = gt.counts(since, t)["total"] if since is not None else 500 + gt.counts(0.0, t)["total"]
            assert counter == expected, (t, counter, expected)
        assert any(c < samples[0][1] for _t, c in samples[1:])  # the 06:00 reset seen through S7
        mb_truth = p.ground_truth("M-MB")
        rolls = [e for e in mb_truth.counter_events if e.kind == "rollover" and e.counter == "total"]
        assert len(rolls) >= 2 and wraps >= 1
        assert p.stats["ticks"] > 10 and p.stats["tick_max_s"] < 1.0
    finally:
        p.stop()


def test_plant_history_is_the_same_however_it_is_advanced():
    """Through the runtime too: same seed, different chunks of sim time, same ground truth; times map to wall."""
    layout = small_layout("S7", "MODBUS")
    truths = []
    for steps in ([7200.0], [float(t) for t in range(37, 7200, 37)] + [7200.0]):
        with Plant(layout, seed=9, time_scale=60, sim_start=SIM_START, run_clock=False) as p:
            for t in steps:
                p.advance_to(t)
            gts = [p.ground_truth(m) for m in ("M-S7", "M-MB")]
            truths.append([(g.to_dict()["states"], g.to_dict()["product_runs"], g.part_times(), g.totals) for g in gts])
            g = gts[0]
            assert g.wall_start == p.wall_start and g.time_scale == 60
            assert g.states[1].start_wall == p.wall_time(g.states[1].start_sim)
            assert p.wall_time(3600) - p.wall_start == timedelta(minutes=1)
            assert p.plant_time(3600) == SIM_START + timedelta(hours=1)
    strip = [[(s, r, parts, tot) for s, r, parts, tot in run] for run in truths]
    for run in strip:  # wall times differ between the two plants (started at different moments); sim times must not
        for machine in run:
            for row in machine[0] + machine[1]:
                row.pop("start_wall"), row.pop("end_wall")
    assert strip[0] == strip[1]


def test_port_in_use_names_the_machine_and_port():
    held = listening_socket()
    port = held.getsockname()[1]
    try:
        layout = parse_layout(small_yaml("MODBUS").replace("protocol: MODBUS", f"protocol: MODBUS, port: {port}"),
                              "p.yaml")
        with pytest.raises(PortInUseError) as info:
            Plant(layout).start()
        msg = str(info.value)
        assert f"machine M-MB (MODBUS): port {port} on 127.0.0.1 is already in use" in msg
        assert "port_fallback=True" in msg and "--next-free-port" in msg
        assert info.value.machine_id == "M-MB" and info.value.port == port

        with Plant(layout, port_fallback=True) as p:
            got = p.endpoints()[0]["port"]
            assert got > port
            mb = ModbusTcpClient("127.0.0.1", port=got)
            assert mb.connect() and not mb.read_holding_registers(0, count=2, device_id=1).isError()
            mb.close()
    finally:
        held.close()


def test_port_held_by_an_s7_server_with_reuseport_is_detected():
    other = snap7.server.Server(log=False)
    other.start_to("127.0.0.1", 0)
    port = other.server_socket.getsockname()[1]
    try:
        layout = parse_layout(small_yaml("S7").replace("protocol: S7", f"protocol: S7, port: {port}"), "p.yaml")
        with pytest.raises(PortInUseError, match=f"machine M-S7 \\(S7\\): port {port}"):
            Plant(layout).start()
    finally:
        other.stop()


def test_base_port_gives_each_machine_base_plus_index_and_stop_frees_them():
    layout = small_layout("S7", "MODBUS")
    probe = listening_socket()
    base = probe.getsockname()[1]
    probe.close()
    if not (port_is_free("127.0.0.1", base) and port_is_free("127.0.0.1", base + 1)):
        pytest.skip("the ports next to a fresh ephemeral port are taken")
    p = Plant(layout, base_port=base)
    p.start()
    try:
        assert [e["port"] for e in p.endpoints()] == [base, base + 1]
        assert not port_is_free("127.0.0.1", base) and not port_is_free("127.0.0.1", base + 1)
    finally:
        p.stop()
    assert port_is_free("127.0.0.1", base) and port_is_free("127.0.0.1", base + 1)
    p.stop()  # idempotent
    with pytest.raises(RuntimeError, match="cannot be started again"):
        p.start()


def test_base_port_conflict_names_the_second_machine():
    held = listening_socket()
    port = held.getsockname()[1]
    try:
        with pytest.raises(PortInUseError, match=f"machine M-MB \\(MODBUS\\): port {port}"):
            Plant(small_layout("S7", "MODBUS"), base_port=port - 1).start()
    finally:
        held.close()


def test_base_port_colliding_with_an_explicit_port_names_both_machines():
    probe = listening_socket()
    base = probe.getsockname()[1]
    probe.close()
    layout = parse_layout(small_yaml("S7", "MODBUS").replace("protocol: MODBUS", f"protocol: MODBUS, port: {base}"),
                          "p.yaml")
    with pytest.raises(PortInUseError, match=f"machine M-S7 \\(S7\\): port {base} .*machine M-MB has it"):
        Plant(layout, base_port=base).start()
    with Plant(layout, base_port=base, port_fallback=True) as p:
        ports = {e["machine_id"]: e["port"] for e in p.endpoints()}
    assert ports["M-MB"] == base and ports["M-S7"] > base


@pytest.mark.parametrize("kwargs,match", [
    ({"time_scale": 0}, "time_scale"),
    ({"time_scale": -5}, "time_scale"),
    ({"time_scale": float("nan")}, "time_scale"),
    ({"time_scale": "fast"}, "time_scale"),
    ({"host": "example.com"}, "IPv4"),
    ({"host": "::1"}, "IPv4"),
    ({"base_port": 65535}, "base_port"),
    ({"base_port": -1}, "base_port"),
    ({"tick_s": 0}, "tick_s"),
    ({"seed": "1"}, "seed"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        Plant(small_layout("S7", "MODBUS"), **kwargs)


def test_manual_clock_refuses_advance_while_the_clock_runs():
    with Plant(small_layout("MODBUS"), time_scale=10) as p:
        with pytest.raises(RuntimeError, match="clock is running"):
            p.advance(10)
    with Plant(small_layout("MODBUS"), run_clock=False) as p:
        p.advance(100)
        assert p.sim_now == 100.0
        with pytest.raises(ValueError):
            p.advance_to(50)
        assert p.wall_time(100) - p.wall_start == (p.wall_time(100) - p.wall_time(0))


def test_controllogix_machines_are_simulated_without_a_server_when_enip_is_missing(monkeypatch):
    monkeypatch.setattr(runtime, "enip_available", lambda: False)
    # From a fixed morning hour: ten minutes inside the layout's lunch break would make no parts.
    with Plant(small_layout("S7", "ETHERNET_IP"), run_clock=False, sim_start=SIM_START) as p:
        assert [e["machine_id"] for e in p.endpoints()] == ["M-S7"]
        assert p.skipped_machines() == ["M-LX"]
        p.advance(600)
        assert p.ground_truth("M-LX").totals["total"] > 0


def test_demo_plant_starts_with_every_endpoint_documented():
    layout = default_layout()
    with Plant(layout, seed=1, time_scale=60) as p:
        eps = p.endpoints()
        expected = 16 if enip_available() else 6
        assert len(eps) == expected
        assert len({e["port"] for e in eps}) == expected
        for e in eps:
            assert set(e) >= {"machine_id", "name", "protocol", "host", "port", "site", "area", "line",
                              "protocol_config", "tags"}
            assert e["host"] == "127.0.0.1" and e["site"] == "RIVERSIDE"
            assert {t["role"] for t in e["tags"]} <= ROLES
            roles = [t["role"] for t in e["tags"] if t["role"]]
            for role in ROLES - {None}:
                assert roles.count(role) == 1, (e["machine_id"], role)
            assert port_is_free("127.0.0.1", e["port"]) is False
        logix = [e for e in eps if e["protocol"] == "ETHERNET_IP"]
        for e in logix:
            assert len({t["address"].split("[")[0] for t in e["tags"]}) > 100
            assert e["protocol_config"]["slot"] == 0
        ports = [e["port"] for e in eps]
    assert all(port_is_free("127.0.0.1", port) for port in ports)


def test_a_tick_that_crosses_a_counter_reset_stops_just_before_it():
    """The PLC shows the shift's last counts before its counters reset: a tick that would cross the 06:00 reset
    stops just before it, the next one goes on. Before, a client read the count of up to a tick earlier (12 s of
    plant time at a time scale of 60, more when a tick came late) and lost the parts made in between."""
    with Plant(parse_layout(small_yaml("S7"), "t.yaml"), seed=3, time_scale=60, sim_start=SIM_START,
               run_clock=False) as p:
        reset = p.model.next_counter_reset()
        assert reset == pytest.approx(3600.0)  # 06:00
        p.advance_to(reset - 30)
        held = p._tick_target(reset + 20)
        assert held == pytest.approx(reset - runtime.RESET_HOLD_S) and held < reset
        p.advance_to(held)
        m = p.machine("M-S7")
        assert m.counters["total"] > 0  # the shift's last count, not yet reset
        assert m.counters["total"] == m.spec.counter_initial + p.ground_truth("M-S7").counts(None, held)["total"]
        assert p._tick_target(reset + 20) == reset + 20  # held once: the next tick crosses the reset
        p.advance_to(reset + 20)
        assert m.counters["total"] == p.ground_truth("M-S7").counts(reset, reset + 20)["total"]
