"""The simulated plant's Sparkplug B edge node, and the MQTT broker on loopback it publishes through.

A machine of protocol SPARKPLUG_B is a gateway publishing one device: group ``DemoPlant``, edge node
``<machine id>-gw``, device ``<machine id>``, its metrics the scalar canonical values (``SPARKPLUG_METRICS``) by
name. NBIRTH (with bdSeq and its NDEATH as the will) and DBIRTH at start and on NCMD "Node Control/Rebirth", DDATA
with the values that changed at every plant tick, NDEATH at stop.

The broker is the plant's own Mosquitto (Debian's package: /usr/sbin/mosquitto) on the machine's port, started with
the endpoint and ended with it (and with the plant process, however that ends): a Sparkplug machine's "PLC port" is
its broker's. Without Mosquitto the machine is simulated without a server, as a ControlLogix one is without
plant.enip (``broker_available``).
"""
from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from sparkplug.payload import DataType, Metric, Payload, decode, encode, now_ms
from sparkplug.topics import BD_SEQ, REBIRTH, MessageType, Topic, next_seq

from . import tags as T
from .servers import Endpoint

log = logging.getLogger("plant")

GROUP_ID = "DemoPlant"
SPARKPLUG_METRICS: tuple[tuple[str, DataType], ...] = tuple((name, DataType[t]) for name, t in T.SPARKPLUG_VARS)


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None)


def broker_available() -> bool:
    return mosquitto_binary() is not None


def _die_with_parent() -> None:  # in the broker's process, before exec: it ends when the plant process ends
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - not Linux: stop() still ends it
        pass


class LoopbackBroker:
    """Mosquitto on host:port (0: a free port), anonymous, no persistence."""

    def __init__(self, host: str, port: int):
        self.host = host
        self.port = port or self._free_port(host)
        self.proc: subprocess.Popen | None = None
        self._dir: Path | None = None

    @staticmethod
    def _free_port(host: str) -> int:
        with socket.socket() as s:
            s.bind((host, 0))
            return s.getsockname()[1]

    def start(self, timeout: float = 10.0) -> "LoopbackBroker":
        binary = mosquitto_binary()
        if binary is None:
            raise FileNotFoundError("mosquitto is not installed (Debian: apt-get install mosquitto)")
        self._dir = Path(tempfile.mkdtemp(prefix="plant-mosquitto-"))
        config = self._dir / "mosquitto.conf"
        lines = f"listener {self.port} {self.host}\nallow_anonymous true\npersistence false\nlog_dest stderr\n" \
            "log_type error\n"
        if os.geteuid() == 0:
            # Started as root Mosquitto switches to the user mosquitto, and that change clears the parent-death
            # signal: it would outlive a plant process that is killed. It stays as the plant runs, on loopback.
            lines += "user root\n"
        config.write_text(lines)
        self.proc = subprocess.Popen([binary, "-c", str(config)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                self.stop()
                if "in use" in err:
                    raise OSError(errno.EADDRINUSE, f"port {self.port} is already in use")
                raise RuntimeError(f"mosquitto exited at start: {err.strip()}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on {self.host}:{self.port} within {timeout:g} s")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
        if proc is not None and proc.stderr:
            proc.stderr.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


class SparkplugEndpoint(Endpoint):
    protocol = "SPARKPLUG_B"

    def __init__(self, plant, spec, host, port):
        super().__init__(plant, spec, host, port)
        self.broker: LoopbackBroker | None = None
        self.client = None
        self._last: dict[str, Any] = {}
        self._seq = 0
        self._bd_seq = 0
        self._lock = threading.Lock()

    @property
    def edge_node_id(self) -> str:
        return f"{self.spec.id}-gw"

    @property
    def device_id(self) -> str:
        return self.spec.id

    def start(self) -> None:
        import paho.mqtt.client as mqtt

        self.broker = LoopbackBroker(self.host, self.requested_port).start()
        self.port = self.broker.port
        connected = threading.Event()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"plant-{self.edge_node_id}",
                             protocol=mqtt.MQTTv311)
        client.will_set(str(Topic(GROUP_ID, MessageType.NDEATH, self.edge_node_id)), self._death(), qos=1)
        client.on_connect = lambda *a: connected.set()
        client.on_message = self._on_message
        try:
            client.connect(self.host, self.port, keepalive=30)
            client.loop_start()
            if not connected.wait(10):
                raise RuntimeError(f"the plant's broker on {self.host}:{self.port} did not answer")
        except Exception:
            client.loop_stop()
            self.broker.stop()
            raise
        client.subscribe(str(Topic(GROUP_ID, MessageType.NCMD, self.edge_node_id)), qos=1)
        self.client = client
        self._birth(self.plant.snapshot(self.spec.id))

    def _death(self) -> bytes:
        return encode(Payload(metrics=[Metric(BD_SEQ, DataType.UINT64, self._bd_seq)], timestamp=now_ms()))

    def _metrics(self, values: dict[str, Any], names) -> list[Metric]:
        kinds = dict(SPARKPLUG_METRICS)
        out = []
        for name in names:
            v = values.get(name)
            kind = kinds[name]
            if kind is DataType.INT32 and isinstance(v, int):
                v = max(-2**31, min(v, 2**31 - 1))
            elif kind is DataType.DOUBLE and v is not None:
                v = float(v)
            elif kind is DataType.STRING and v is not None:
                v = str(v)
            out.append(Metric(name, kind, v, is_null=v is None))
        return out

    def _birth(self, values: dict[str, Any]) -> None:
        with self._lock:
            client = self.client
            if client is None:
                return
            self._seq = 0
            node = [Metric(BD_SEQ, DataType.UINT64, self._bd_seq), Metric(REBIRTH, DataType.BOOLEAN, False)]
            client.publish(str(Topic(GROUP_ID, MessageType.NBIRTH, self.edge_node_id)),
                           encode(Payload(metrics=node, timestamp=now_ms(), seq=0)), qos=0)
            names = [n for n, _ in SPARKPLUG_METRICS]
            self._seq = next_seq(self._seq)
            client.publish(str(Topic(GROUP_ID, MessageType.DBIRTH, self.edge_node_id, self.device_id)),
                           encode(Payload(metrics=self._metrics(values, names), timestamp=now_ms(), seq=self._seq)),
                           qos=0)
            self._last = {n: values.get(n) for n in names}

    def push(self, values: dict[str, Any]) -> None:
        with self._lock:
            client = self.client
            if client is None:
                return
            changed = [n for n, _ in SPARKPLUG_METRICS if self._last.get(n, ...) != values.get(n)]
            if not changed:
                return
            self._seq = next_seq(self._seq)
            client.publish(str(Topic(GROUP_ID, MessageType.DDATA, self.edge_node_id, self.device_id)),
                           encode(Payload(metrics=self._metrics(values, changed), timestamp=now_ms(), seq=self._seq)),
                           qos=0)
            for n in changed:
                self._last[n] = values.get(n)

    def _on_message(self, client, userdata, msg) -> None:
        try:
            payload = decode(msg.payload)
        except ValueError:
            return
        if any(m.name == REBIRTH and m.value for m in payload.metrics):
            with self.plant.lock:
                values = self.plant.snapshot(self.spec.id)
            self._birth(values)

    def stop(self) -> None:
        with self._lock:
            client, self.client = self.client, None
        if client is not None:
            try:
                client.publish(str(Topic(GROUP_ID, MessageType.NDEATH, self.edge_node_id)), self._death(),
                               qos=0)
                client.disconnect()
                client.loop_stop()
            except Exception:  # noqa: BLE001 - stopping: the broker goes next anyway
                log.debug("closing the edge node's client failed", exc_info=True)
        if self.broker is not None:
            self.broker.stop()

    def protocol_config(self) -> dict[str, Any]:
        return {"group_id": GROUP_ID, "edge_node_id": self.edge_node_id, "device_id": self.device_id}

    def summary(self) -> str:
        return (f"Sparkplug B through mqtt://{self.host}:{self.port} (the plant's Mosquitto): "
                f"spBv1.0/{GROUP_ID}/DDATA/{self.edge_node_id}/{self.device_id} ({len(SPARKPLUG_METRICS)} metrics)")
