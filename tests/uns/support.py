"""What the UNS tests share: a small simulated plant, a collecting runtime that publishes, and a plain MQTT reader."""
from __future__ import annotations

import dataclasses
import json
import queue
import threading
import time

import paho.mqtt.client as mqtt

from collectors.poller import BackoffPolicy
from config.demo_plant import sync_demo_plant
from db.store import open_store
from plant import Plant, default_layout
from processes.demo import demo_endpoints
from processes.runtime import Runtime
from processes.settings import Settings

MACHINES = ("LINE-013", "LINE-015")  # an S7 case packer and a Modbus stretch wrapper
ODD_LINE = "Pack/Line #2+"  # every character a topic level cannot hold as it is


def small_plant() -> Plant:
    layout = default_layout()
    small = dataclasses.replace(layout, machines=tuple(m for m in layout.machines if m.id in MACHINES))
    return Plant(small, seed=7, time_scale=60).start()


def publishing_runtime(tmp_path, plant: Plant, mqtt_url: str, *, ports: dict[str, int] | None = None,
                       **settings) -> Runtime:
    """A runtime that polls the plant (every 200 ms) and publishes to mqtt_url; LINE-015 stands in ODD_LINE.
    ports: machine id -> the port to poll it on instead (a proxy in front of its PLC)."""
    endpoints = demo_endpoints(plant.endpoints(), plant.layout)
    for ep in endpoints:
        ep["port"] = (ports or {}).get(ep["machine_id"], ep["port"])
        ep["poll_interval_ms"] = 200
        if ep["machine_id"] == "LINE-015":
            ep["line"] = ODD_LINE
    s = Settings(database_url=f"sqlite:///{tmp_path / 'oee.sqlite3'}", data_dir=tmp_path, demo=False,
                 mqtt_url=mqtt_url, node_name="test-node", **settings)
    store = open_store(s.effective_database_url)
    sync_demo_plant(store.engine, {"name": "Site A"}, endpoints, [])
    store.close()
    runtime = Runtime(s, collector_options={"backoff": BackoffPolicy(initial_s=0.2, max_s=1.0),
                                            "reload_interval_s": 3600, "timeout_s": 1.0})
    return runtime.start()


class Reader:
    """A plain paho client that keeps every message it gets: (topic, payload bytes, retain flag)."""

    def __init__(self, host: str, port: int, topic: str = "#", *, client_id: str = "", clean: bool = True,
                 user: str | None = None, password: str | None = None):
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._subscribed: queue.Queue = queue.Queue()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
        if user:
            self.client.username_pw_set(user, password)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self._subscribed.put(rcs)
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect(host, port, keepalive=10)
        self.client.loop_start()
        self._subscribed.get(timeout=10)

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.messages.append((msg.topic, msg.payload, bool(msg.retain)))

    def json(self, topic: str | None = None, *, prefix: str | None = None) -> list[tuple[str, dict, bool]]:
        with self._lock:
            got = list(self.messages)
        return [(t, json.loads(p), r) for t, p, r in got
                if (topic is None or t == topic) and (prefix is None or t.startswith(prefix))]

    def wait(self, predicate, timeout: float = 20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = predicate(self)
            if found:
                return found
            time.sleep(0.1)
        raise AssertionError(f"not received within {timeout} s; topics seen: "
                             f"{sorted({t for t, _, _ in self.messages})[:40]}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
