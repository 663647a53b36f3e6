"""The app as a Sparkplug B edge node (`--sparkplug-group`): one node, one device per machine (docs/uns.md).

    NBIRTH  spBv1.0/<group>/NBIRTH/<node>            seq 0, bdSeq, "Node Control/Rebirth" (false)
    DBIRTH  spBv1.0/<group>/DBIRTH/<node>/<machine>  every metric of the machine with its datatype and value
    DDATA   spBv1.0/<group>/DDATA/<node>/<machine>   the metrics that changed
    NDEATH  spBv1.0/<group>/NDEATH/<node>            the MQTT last will of the connection, with its bdSeq

seq counts every message after the NBIRTH 1..255 then 0 (the wrap of the specification); bdSeq counts connections
(each CONNECT carries a will with the next one, and the NBIRTH of that connection repeats it). An NCMD with
"Node Control/Rebirth" true, or a primary host (`--sparkplug-primary-host`) coming online, brings a new NBIRTH and
the DBIRTHs. With a primary host, nothing is published while its spBv1.0/STATE/<host> does not say online
(Sparkplug 3.0's JSON {"online": true, ...} or 2.2's ONLINE). Sparkplug messages are not buffered: while the broker
or the primary host is away, changes are not sent, and the births that follow carry the current values.

The codec and topic names are sparkplug/'s; the values come from the UNS publisher (uns/publisher.py), which reads
the live service's hub.
"""
from __future__ import annotations

import json
import logging
import math
import threading

import paho.mqtt.client as mqtt

from sparkplug.payload import DataType, Metric, Payload, PayloadError, decode, encode, now_ms
from sparkplug.topics import BD_SEQ, REBIRTH, MessageType, Topic, next_seq, state_topic
from uns.broker import Broker, diagnose, make_client

log = logging.getLogger(__name__)
STATE = "State"
FAULT_CODE = "Fault Code"
PRODUCT_CODE = "Product Code"
COUNTS = {"total": "Counts/Total", "good": "Counts/Good", "reject": "Counts/Reject"}
OEE = {"oee": "OEE/OEE", "availability": "OEE/Availability", "performance": "OEE/Performance",
       "quality": "OEE/Quality"}
TAG_FOLDER = "Tags/"
BOOLEAN_TYPES = {"BOOL", "BOOLEAN"}
TEXT_TYPES = {"STRING", "WSTRING", "CHAR", "WCHAR", "DATETIME", "DATE_AND_TIME", "VARIANT"}


def sparkplug_id(name) -> str:
    """A group, node or device id from a plant name: '/', '+' and '#' cannot be in one; they become '_'."""
    text = str(name or "").strip() or "_"
    return "".join("_" if ch in "/+#" else ch for ch in text)


# Roles whose tags hold whole numbers (config.validation refuses a float or text type for them).
WHOLE_NUMBER_ROLES = ("counter.", "state.code", "fault.code")


def tag_datatype(data_type: str | None, role: str | None = None) -> DataType:
    """A tag's metric type. Counters, state and fault codes are Int64, so that a host reading this node (another
    app's SPARKPLUG_B machine) can give them the same roles; every other number is a Double, as the collectors hand
    it over (scaled)."""
    kind = (data_type or "").upper()
    if kind in BOOLEAN_TYPES:
        return DataType.BOOLEAN
    if kind in TEXT_TYPES:
        return DataType.STRING
    if role and role.startswith(WHOLE_NUMBER_ROLES):
        return DataType.INT64
    return DataType.DOUBLE


def fit(value, kind: DataType):
    """The value as its birth's datatype holds it; None (a null metric) when it cannot."""
    if value is None:
        return None
    if kind is DataType.STRING:
        return value if isinstance(value, str) else json.dumps(value)
    if kind is DataType.BOOLEAN:
        return bool(value) if isinstance(value, (bool, int, float)) else None
    if kind is DataType.INT64:
        return int(round(value)) if isinstance(value, (int, float)) and math.isfinite(value) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if isinstance(value, bool):
        return float(value)
    return None


class SparkplugNode:
    def __init__(self, broker: Broker, group_id: str, edge_node_id: str, *, primary_host: str = "", live=None):
        self.broker = broker
        self.group_id = sparkplug_id(group_id)
        self.edge_node_id = sparkplug_id(edge_node_id)
        self.primary_host = primary_host
        self.live = live
        self.client = make_client(broker, f"oee-spb-{self.group_id}-{self.edge_node_id}"[:64])
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_connect_fail = self._on_connect_fail
        self._lock = threading.RLock()  # seq, births and values: paho's thread and the publisher's
        self.bd_seq = -1  # incremented before each connect: the first connection is 0
        self.seq = 0
        self.connected = False
        self.host_online = not primary_host
        self.born = False
        self.births = 0
        self.messages = 0
        self.last_error: str | None = None
        # device id -> {metric name: (datatype, value)}: what the births carry; updated on every change
        self.devices: dict[str, dict[str, tuple[DataType, object]]] = {}
        self.machine_devices: dict[int, str] = {}  # machine db id -> device id

    def topic(self, kind: MessageType, device: str | None = None) -> str:
        return str(Topic(self.group_id, kind, self.edge_node_id, device))

    # --- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> "SparkplugNode":
        self._arm_will()
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=15)
        self.client.loop_start()
        log.info("Sparkplug B: edge node %s/%s on %s%s", self.group_id, self.edge_node_id, self.broker.shown,
                 f", publishing while primary host {self.primary_host!r} is online" if self.primary_host else "")
        return self

    def stop(self) -> None:
        """A clean disconnect does not fire the will: send the NDEATH ourselves first."""
        with self._lock:
            if self.connected:
                info = self.client.publish(self.topic(MessageType.NDEATH), self._death(), qos=1)
                try:
                    info.wait_for_publish(0.5)
                except (RuntimeError, ValueError):  # the connection went meanwhile: the broker sent the will
                    pass
            self.born = False
        self.client.disconnect()
        self.client.loop_stop()

    def _death(self) -> bytes:
        return encode(Payload(timestamp=now_ms(), metrics=[Metric(BD_SEQ, DataType.INT64, self.bd_seq)]))

    def _arm_will(self) -> None:
        """The next connection's bdSeq, in its will (paho sends the will with each CONNECT, reconnects included)."""
        self.bd_seq = next_seq(self.bd_seq) if self.bd_seq >= 0 else 0
        self.client.will_set(self.topic(MessageType.NDEATH), self._death(), qos=1, retain=False)

    # --- paho's callbacks ------------------------------------------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.last_error = f"the broker refused the connection: {reason_code}"
            log.warning("Sparkplug B: %s", self.last_error)
            return
        self.connected = True
        self.last_error = None
        client.subscribe([(self.topic(MessageType.NCMD), 1), (f"spBv1.0/{self.group_id}/DCMD/{self.edge_node_id}/+",
                                                              1)])
        if self.primary_host:
            client.subscribe(state_topic(self.primary_host), 1)  # retained: its current state comes at once
        else:
            self.birth()

    def _on_connect_fail(self, client, userdata) -> None:
        if self.last_error is None or self.last_error.startswith("connection lost"):  # once per outage
            self.last_error = diagnose(self.broker)
            log.warning("Sparkplug B: %s; retrying", self.last_error)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        with self._lock:
            was = self.connected
            self.connected = False
            self.born = False
            self.host_online = not self.primary_host
            self._arm_will()  # before paho reconnects
        if was:
            self.last_error = f"connection lost ({reason_code})"
            log.warning("Sparkplug B: %s; births follow the reconnection", self.last_error)

    def _on_message(self, client, userdata, msg) -> None:
        try:
            if self.primary_host and msg.topic == state_topic(self.primary_host):
                self._host_state(msg.payload)
                return
            topic = Topic.parse(msg.topic)
            payload = decode(msg.payload)
        except (ValueError, PayloadError) as exc:  # TopicError is a ValueError
            log.warning("Sparkplug B: ignored a message on %s: %s", msg.topic, exc)
            return
        if topic.message_type is MessageType.NCMD and any(
                m.name == REBIRTH and m.value is True for m in payload.metrics):
            log.info("Sparkplug B: rebirth asked (NCMD %s)", REBIRTH)
            self.birth()

    def _host_state(self, raw: bytes) -> None:
        text = raw.decode(errors="replace").strip()
        try:
            online = bool(json.loads(text).get("online"))  # Sparkplug 3.0
        except (ValueError, AttributeError):
            online = text.upper() == "ONLINE"  # Sparkplug 2.2
        with self._lock:
            was, self.host_online = self.host_online, online
            if online and not was:
                log.info("Sparkplug B: primary host %r is online; births follow", self.primary_host)
                self.birth()
            elif was and not online:
                log.warning("Sparkplug B: primary host %r is offline; publishing stops until it is back",
                            self.primary_host)
                self.born = False

    # --- births and data -------------------------------------------------------------------------------------

    def birth(self) -> None:
        """NBIRTH (seq 0) and one DBIRTH per machine with every metric, when connected and the host is online."""
        with self._lock:
            if not (self.connected and self.host_online):
                return
            self._refresh_devices()
            self.seq = 0
            stamp = now_ms()
            node = [Metric(BD_SEQ, DataType.INT64, self.bd_seq, timestamp=stamp),
                    Metric(REBIRTH, DataType.BOOLEAN, False, timestamp=stamp)]
            self.client.publish(self.topic(MessageType.NBIRTH), encode(Payload(node, now_ms(), 0)), qos=0)
            for device, metrics in self.devices.items():
                self.seq = next_seq(self.seq)
                stamp = now_ms()
                body = [Metric(name, kind, value, is_null=value is None, timestamp=stamp)
                        for name, (kind, value) in metrics.items()]
                self.client.publish(self.topic(MessageType.DBIRTH, device),
                                    encode(Payload(body, now_ms(), self.seq)), qos=0)
            self.born = True
            self.births += 1
            self.messages += 1 + len(self.devices)

    def _refresh_devices(self) -> None:
        """Every machine of the live catalog as a device, with the live service's current values."""
        live = self.live
        if live is None:
            return
        catalog = live.catalog
        with live._lock:
            tags = dict(live.tags)
            machines = dict(live.machines)
            metrics = dict(live.metrics)
        for mid, m in catalog.machines.items():
            device = sparkplug_id(m["machine_id"])
            self.machine_devices[mid] = device
            known = self.devices.setdefault(device, {})
            status = machines.get(mid) or {}
            known.setdefault(STATE, (DataType.STRING, status.get("state")))
            known.setdefault(FAULT_CODE, (DataType.INT64, fit(status.get("fault_code"), DataType.INT64)))
            known.setdefault(PRODUCT_CODE, (DataType.STRING, fit(status.get("product_code"), DataType.STRING)))
            counts = (metrics.get(mid) or {}).get("counts") or status.get("counts") or {}
            for key, name in COUNTS.items():
                known.setdefault(name, (DataType.INT64, fit(counts.get(key), DataType.INT64)))
            for name in OEE.values():
                known.setdefault(name, (DataType.DOUBLE, None))
            for tid in catalog.tags_by_machine.get(mid, ()):
                tag = catalog.tags[tid]
                kind = tag_datatype(tag.get("data_type"), tag.get("role"))
                current = tags.get(tid)
                value = fit(current[1], kind) if current and current[2] != 2 else None
                known.setdefault(TAG_FOLDER + tag["name"], (kind, value))

    def update(self, machine_db_id: int, values: dict[str, object], *, tag_types: dict[str, DataType] | None = None,
               timestamp_ms: int | None = None) -> None:
        """Metrics of one machine that changed ({metric name: value}): kept for the next births, and sent as DDATA
        when born. A metric the DBIRTH did not have asks for a rebirth (its datatype must be declared first)."""
        with self._lock:
            device = self.machine_devices.get(machine_db_id)
            if device is None or device not in self.devices:
                self._refresh_devices()
                device = self.machine_devices.get(machine_db_id)
                if device is None:
                    return
                self.birth()  # a machine the births did not have
                return
            known = self.devices[device]
            changed = []
            new_metric = False
            for name, value in values.items():
                if name not in known:
                    new_metric = True
                    continue
                kind = known[name][0]
                value = fit(value, kind)
                if known[name][1] == value:
                    continue
                known[name] = (kind, value)
                changed.append(Metric(name, kind, value, is_null=value is None, timestamp=timestamp_ms or now_ms()))
            if new_metric:
                self._refresh_devices()
                self.birth()
                return
            if not changed or not self.born:
                return
            self.seq = next_seq(self.seq)
            self.client.publish(self.topic(MessageType.DDATA, device), encode(Payload(changed, now_ms(), self.seq)),
                                qos=0)
            self.messages += 1

    def stats(self) -> dict:
        return {"group_id": self.group_id, "edge_node_id": self.edge_node_id, "connected": self.connected,
                "primary_host": self.primary_host or None, "primary_host_online": self.host_online,
                "born": self.born, "bd_seq": self.bd_seq, "seq": self.seq, "births": self.births,
                "messages": self.messages, "last_error": self.last_error}
