"""A Sparkplug B edge node that is not the app's own, for tests: a paho client that publishes NBIRTH (with bdSeq and
its last will NDEATH), DBIRTH, NDATA/DDATA (optionally by alias only, without names or types, as many edge nodes
do), DDEATH and NDEATH, counts seq as the specification says, and answers NCMD "Node Control/Rebirth" with new
BIRTHs (counting the requests). Its metric names and types are whatever the test gives it.

    edge = EdgeNode(host, port, "Plant7", "press-gw", node={"Uptime": (DataType.INT64, 0)},
                    devices={"press1": {"Counts/Good": (DataType.UINT32, 0), "Status/Code": (DataType.INT16, 1)}})
    with edge:                           # connects and publishes NBIRTH, DBIRTH
        edge.data("press1", {"Counts/Good": 5})
"""
from __future__ import annotations

import queue
import threading

import paho.mqtt.client as mqtt

from sparkplug.payload import DataType, Metric, Payload, decode, encode, now_ms
from sparkplug.topics import BD_SEQ, REBIRTH, MessageType, Topic, next_seq


class EdgeNode:
    def __init__(self, host: str, port: int, group: str, edge: str, *, node: dict | None = None,
                 devices: dict[str, dict] | None = None, aliases: bool = False, username: str | None = None,
                 password: str | None = None, answer_rebirth: bool = True):
        self.host, self.port, self.group, self.edge = host, port, group, edge
        self.node = dict(node or {})                      # name -> (DataType, value)
        self.devices = {d: dict(m) for d, m in (devices or {}).items()}
        self.aliases = aliases
        self.answer_rebirth = answer_rebirth
        self.username, self.password = username, password
        self.seq = 0
        self.bd_seq = 0
        self.rebirth_requests = 0
        self.rebirth_event = threading.Event()
        self._alias: dict[tuple[str | None, str], int] = {}
        self._client: mqtt.Client | None = None
        self._lock = threading.RLock()

    # --- connection ---

    def _new_client(self) -> mqtt.Client:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        if self.username:
            client.username_pw_set(self.username, self.password)
        client.will_set(str(Topic(self.group, MessageType.NDEATH, self.edge)), self._death_payload(), qos=1)
        client.on_message = self._on_message
        return client

    def start(self) -> "EdgeNode":
        answers: queue.Queue = queue.Queue()
        client = self._new_client()
        client.on_connect = lambda c, u, f, rc, p: answers.put(rc)
        client.connect(self.host, self.port, keepalive=30)
        client.loop_start()
        rc = answers.get(timeout=10)
        assert not rc.is_failure, rc
        self._client = client
        subscribed = threading.Event()
        client.on_subscribe = lambda *a: subscribed.set()
        client.subscribe(str(Topic(self.group, MessageType.NCMD, self.edge)), qos=1)
        assert subscribed.wait(10)
        self.birth()
        return self

    def stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()

    def __enter__(self) -> "EdgeNode":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- messages ---

    def _publish(self, topic: Topic | str, payload: bytes, qos: int = 0) -> None:
        info = self._client.publish(str(topic), payload, qos=qos)
        info.wait_for_publish(5)

    def _next_seq(self) -> int:
        self.seq = next_seq(self.seq)
        return self.seq

    def _death_payload(self) -> bytes:
        return encode(Payload(metrics=[Metric(BD_SEQ, DataType.UINT64, self.bd_seq)], timestamp=now_ms()))

    def _metrics(self, device: str | None, values: dict, birth: bool) -> list[Metric]:
        table = self.node if device is None else self.devices[device]
        out = []
        for name, value in values.items():
            kind = table[name][0]
            if self.aliases and not birth:
                # By alias only, without name or type: the host must take both from the BIRTH.
                out.append(Metric(None, DataType.UNKNOWN, value, alias=self._alias[(device, name)],
                                  is_null=value is None))
            else:
                alias = self._alias.get((device, name)) if self.aliases else None
                out.append(Metric(name, kind, value, alias=alias, is_null=value is None))
        return out

    def birth(self) -> None:
        """NBIRTH (seq 0, bdSeq) then a DBIRTH per device, with every metric and its type."""
        with self._lock:
            if self.aliases:
                n = 0
                for device, table in [(None, self.node)] + list(self.devices.items()):
                    for name in table:
                        n += 1
                        self._alias[(device, name)] = n
            self.seq = 0
            metrics = [Metric(BD_SEQ, DataType.UINT64, self.bd_seq), Metric(REBIRTH, DataType.BOOLEAN, False)]
            metrics += self._metrics(None, {k: v for k, (_, v) in self.node.items()}, birth=True)
            self._publish(Topic(self.group, MessageType.NBIRTH, self.edge),
                          encode(Payload(metrics=metrics, timestamp=now_ms(), seq=0)), qos=0)
            for device, table in self.devices.items():
                self._publish(Topic(self.group, MessageType.DBIRTH, self.edge, device),
                              encode(Payload(metrics=self._metrics(device, {k: v for k, (_, v) in table.items()},
                                                                   birth=True),
                                             timestamp=now_ms(), seq=self._next_seq())))

    def _encode_data(self, device: str | None, values: dict) -> bytes:
        """The values as a DATA payload; a Metric among them goes as it is (a test's wrong type)."""
        metrics = []
        for name, value in values.items():
            if isinstance(value, Metric):
                metrics.append(value)
            else:
                metrics += self._metrics(device, {name: value}, birth=False)
        return encode(Payload(metrics=metrics, timestamp=now_ms(), seq=self._next_seq()))

    def data(self, device: str | None, values: dict) -> None:
        """NDATA (device None) or DDATA with these metric values (a Metric object is sent as it is)."""
        with self._lock:
            table = self.node if device is None else self.devices[device]
            for name, value in values.items():
                if not isinstance(value, Metric):
                    table[name] = (table[name][0], value)
            kind = MessageType.NDATA if device is None else MessageType.DDATA
            self._publish(Topic(self.group, kind, self.edge, device), self._encode_data(device, values))

    def skip_seq(self, n: int = 1) -> None:
        """Lose n messages: the next one's seq jumps."""
        with self._lock:
            for _ in range(n):
                self._next_seq()

    def device_death(self, device: str) -> None:
        with self._lock:
            self._publish(Topic(self.group, MessageType.DDEATH, self.edge, device),
                          encode(Payload(timestamp=now_ms(), seq=self._next_seq())))

    def node_death(self, bd_seq: int | None = None) -> None:
        """NDEATH as a graceful edge node sends it (the broker sends the same as the will on a lost link)."""
        with self._lock:
            bd = self.bd_seq if bd_seq is None else bd_seq
            self._publish(Topic(self.group, MessageType.NDEATH, self.edge),
                          encode(Payload(metrics=[Metric(BD_SEQ, DataType.UINT64, bd)], timestamp=now_ms())),
                          qos=1)
            if bd_seq is None:
                self.bd_seq += 1

    def publish_raw(self, topic: str, payload: bytes) -> None:
        self._publish(topic, payload)

    def _on_message(self, client, userdata, msg) -> None:
        try:
            payload = decode(msg.payload)
        except ValueError:
            return
        if any(m.name == REBIRTH and m.value for m in payload.metrics):
            self.rebirth_requests += 1
            self.rebirth_event.set()
            if self.answer_rebirth:
                threading.Thread(target=self.birth, daemon=True).start()
