"""A PLC address that points at something else: every driver says what answered, in time, and nothing hangs.

Regression for "[harden] No request, PLC or database can take the app down" (item A): an EtherNet/IP test of a port
that answers `HTTP/1.1 400` and closes spun a thread for ever (pycomm3 loops on recv() returning b''), eight of
them filled the test pool and a healthy PLC's test timed out after them; saved as a machine, its job stayed
`connecting` for ever. Real listeners and real protocol servers on 127.0.0.1; nothing mocked.
"""
from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from collectors import service
from collectors.base import CANNOT_CONNECT, PROTOCOL_ERROR, TIMEOUT
from collectors.poller import BackoffPolicy
from config.demo_plant import sync_demo_plant
from db.store import open_store
from plant import Plant, default_layout
from plant.enip import LogixServer, LogixTag
from processes.demo import demo_endpoints
from processes.runtime import Runtime
from processes.settings import Settings
from tests.support.listeners import Listener
from tests.support.waiting import wait_for

PROTOCOLS = {"ETHERNET_IP": "EtherNet/IP", "S7": "S7", "OPCUA": "OPC-UA", "MODBUS": "Modbus TCP"}
ONE_OF_EACH = ("LINE-001", "LINE-011", "LINE-013", "LINE-015")  # EtherNet/IP, OPC-UA, S7, Modbus
TIMEOUT_S = 1.0
BUDGET_S = TIMEOUT_S * 12 + 5  # the connection test's own deadline (collectors/service.py)


@pytest.fixture(scope="module")
def listeners():
    found = {kind: Listener(kind).start() for kind in ("http", "silent", "close")}
    yield found
    for listener in found.values():
        listener.stop()


def config_for(protocol: str, port: int) -> dict:
    return {"endpoint": f"opc.tcp://127.0.0.1:{port}/"} if protocol == "OPCUA" else {}


# (listener, error kind, words of the message, seconds it may take at most)
CASES = [
    ("http", PROTOCOL_ERROR, "answered HTTP, not {name}", 3.0),
    ("close", PROTOCOL_ERROR, "closed it without answering: not {name}", 3.0),
    # S7: python-snap7 connects with its own 5 s, whatever the timeout asked (collectors/drivers/s7.py)
    ("silent", TIMEOUT, "answer", BUDGET_S),
]


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
@pytest.mark.parametrize("kind, error, words, within_s", CASES, ids=[c[0] for c in CASES])
def test_connection_test_of_a_port_that_is_no_plc(listeners, protocol, kind, error, words, within_s):
    port = listeners[kind].port
    started = time.monotonic()
    result = service.test_connection(protocol, "127.0.0.1", port, config_for(protocol, port), timeout_s=TIMEOUT_S)
    took = time.monotonic() - started
    assert result["ok"] is False
    assert result["error"] == error, result
    assert words.format(name=PROTOCOLS[protocol]) in result["message"], result
    assert result["suggestion"], result
    assert took < within_s, f"{protocol} against the {kind} listener took {took:.2f} s"
    if kind != "silent":
        # the steps tell where it failed: TCP worked, the first exchange did not
        assert [s["name"] for s in result["steps"]][0] == "tcp" and result["steps"][0]["ok"], result["steps"]
        assert str(port) in result["message"]


def test_eight_plus_one_stuck_tests_do_not_starve_a_healthy_one(listeners):
    """Nine tests of a device that never answers (each allowed 30 s a request), then one of a healthy
    controller: it answers within its own few seconds, not after them."""
    silent = Listener("silent").start()
    healthy = LogixServer({"ProductionCount": LogixTag("DINT", 42)}, port=0, slot=0).start()
    stuck: list[dict] = []
    threads = [threading.Thread(target=lambda: stuck.append(service.test_connection(
        "ETHERNET_IP", "127.0.0.1", silent.port, {}, timeout_s=30.0)), daemon=True) for _ in range(9)]
    try:
        for t in threads:
            t.start()
        wait_for(lambda: silent.accepted >= 9, timeout=10)
        started = time.monotonic()
        result = service.test_connection("ETHERNET_IP", "127.0.0.1", healthy.port, {}, timeout_s=2.0)
        took = time.monotonic() - started
        assert result["ok"] is True, result
        assert took < 10, f"the healthy controller's test took {took:.1f} s behind the stuck ones"
        assert not stuck  # they are still waiting on the silent device
    finally:
        silent.release()  # the silent device hangs up: the stuck tests end with a clear error
        for t in threads:
            t.join(10)
        silent.stop()
        healthy.stop()
    assert len(stuck) == 9 and all(r["error"] in (PROTOCOL_ERROR, CANNOT_CONNECT) for r in stuck), stuck


# --- saved as machines: the collectors ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plant():
    layout = default_layout()
    small = dataclasses.replace(layout, machines=tuple(m for m in layout.machines if m.id in ONE_OF_EACH))
    p = Plant(small, seed=7, time_scale=60).start()
    yield p
    p.stop()


def runtime_polling(tmp_path, endpoints, **collector_options) -> Runtime:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'oee.sqlite3'}", data_dir=tmp_path, demo=False)
    store = open_store(settings.effective_database_url)
    sync_demo_plant(store.engine, {"name": "Test site"}, endpoints, [])
    store.close()
    options = {"backoff": BackoffPolicy(initial_s=0.2, max_s=1.0), "reload_interval_s": 3600, "timeout_s": TIMEOUT_S}
    return Runtime(settings, collector_options={**options, **collector_options}).start()


def pointed_at(plant, port: int) -> list[dict]:
    endpoints = demo_endpoints(plant.endpoints(), plant.layout)
    for ep in endpoints:
        ep["port"] = port
        ep["poll_interval_ms"] = 200
        if ep["protocol"] == "OPCUA":
            ep["protocol_config"] = {**ep["protocol_config"], "endpoint": f"opc.tcp://127.0.0.1:{port}/oee/"}
    return endpoints


@pytest.mark.parametrize("kind, words", [("http", "answered HTTP, not {name}"),
                                          ("close", "closed it without answering: not {name}")])
def test_a_saved_machine_on_such_a_port_shows_failing_with_why(tmp_path, plant, listeners, kind, words):
    runtime = runtime_polling(tmp_path, pointed_at(plant, listeners[kind].port))
    try:
        pollers = list(runtime.collectors.pollers.values())
        assert len(pollers) == 4
        wait_for(lambda: all(p.state == "failing" for p in pollers), timeout=15)
        for p in pollers:
            health = p.health()
            assert health["last_error"]["error"] == PROTOCOL_ERROR, health
            assert words.format(name=PROTOCOLS[p.protocol]) in health["last_error"]["message"], health
        body = runtime.health()  # /healthz says so too, with why
        assert body["status"] == "degraded"
        problems = {p["component"]: p["error"] for p in body["problems"]}
        for p in pollers:
            assert words.format(name=PROTOCOLS[p.protocol]) in problems[f"connection {p.name}"], problems
    finally:
        runtime.stop()


def test_a_call_that_does_not_end_is_stopped_by_the_watchdog(tmp_path, plant, listeners):
    """A driver call that ignores its deadline (here: 60 s of timeout against a silent device) is reported as a
    timeout after watchdog_s, the connection shows failing, and the call ends (its socket is shut under it)."""
    endpoints = [ep for ep in pointed_at(plant, listeners["silent"].port) if ep["protocol"] == "MODBUS"]
    runtime = runtime_polling(tmp_path, endpoints, timeout_s=60.0, watchdog_s=1.5)
    try:
        (poller,) = runtime.collectors.pollers.values()
        started = time.monotonic()
        wait_for(lambda: poller.state == "failing", timeout=10)
        took = time.monotonic() - started
        assert took < 6, took
        error = poller.health()["last_error"]
        assert error["error"] == TIMEOUT and "did not end within 1.5 s; aborted" in error["message"], error
        wait_for(lambda: poller._call_started is None, timeout=5)  # the stuck read has returned
    finally:
        stopping = time.monotonic()
        runtime.stop()
        assert time.monotonic() - stopping < 5
