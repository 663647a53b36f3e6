"""Sparkplug B driver: a host application's view of one edge node (and optionally one of its devices) through an
MQTT broker. Values are pushed, not polled.

ip_address and port are the broker's. protocol_config (validate_config fills the defaults):
  group_id       required   the edge node's Sparkplug group
  edge_node_id   required   the edge node's id
  device_id      null       a device of the edge node: its DBIRTH/DDATA metrics are read (node metrics too, when
                            no device metric has the name); null: the node's own NBIRTH/NDATA metrics
  + the broker settings of mqtt_link.py: username, password, tls, tls_ca_file, client_id, keepalive_s

A tag's address is a metric name as the BIRTH certificate gives it ("Counts/Good"); its data type is a Sparkplug
type name (INT32, FLOAT, BOOLEAN, STRING, ...; BOOL, REAL, DINT and other aliases are taken).

What the driver does with what it hears (spBv1.0/<group>/+/<edge> and spBv1.0/<group>/+/<edge>/+):
  - NBIRTH / DBIRTH: the metrics, their types and aliases; every tag gets its value (a tag whose metric is not in
    the BIRTH is bad: invalid_address; one whose metric's type does not fit the tag's is bad: protocol_error);
  - NDATA / DDATA: the metrics in it (by name or alias); a metric whose type changes without a new BIRTH is bad;
  - seq: every message of the node after NBIRTH counts 0..255; a gap (a lost message) asks for a rebirth
    (NCMD "Node Control/Rebirth"), as does data from a node whose BIRTH this client has not seen;
  - NDEATH (with the bdSeq of the NBIRTH it ends; a stale one is ignored) and DDEATH: the link stays, and read()
    raises cannot_connect with link_up: the collector makes the tags bad with the reason and the machines
    offline, as for a lost PLC, and recovers at the next BIRTH;
  - a payload that is not Sparkplug B: logged with its topic (once per topic), counted, and a rebirth asked for.
read() returns the tags whose values arrived since the last read; the collector is told at once (set_listener).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from collectors.base import (
    BAD,
    CANNOT_CONNECT,
    GOOD,
    INVALID_ADDRESS,
    PROTOCOL_ERROR,
    TIMEOUT,
    ConfigError,
    DiagnosticStep,
    DiscoveredTag,
    Driver,
    DriverError,
    Reading,
    Step,
    TagSpec,
    TestResult,
    register,
    tcp_check,
)
from collectors.drivers.mqtt_link import LINK_DEFAULTS, WILDCARDS, MqttLink, validate_link_config
from sparkplug.payload import DataType, Payload, PayloadError, decode, encode, metric, now_ms
from sparkplug.topics import BD_SEQ, REBIRTH, MessageType, Topic, TopicError, check_id, is_next, node_filter

log = logging.getLogger(__name__)

REBIRTH_MIN_INTERVAL_S = 3.0  # one rebirth request per this, however many gaps
TYPES = ("BOOLEAN", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "FLOAT", "DOUBLE",
         "STRING", "DATETIME")
ALIASES = {"BOOL": "BOOLEAN", "BIT": "BOOLEAN", "SINT": "INT8", "INT": "INT16", "DINT": "INT32", "LINT": "INT64",
           "USINT": "UINT8", "UINT": "UINT16", "WORD": "UINT16", "UDINT": "UINT32", "DWORD": "UINT32",
           "ULINT": "UINT64", "REAL": "FLOAT", "FLOAT32": "FLOAT", "LREAL": "DOUBLE", "FLOAT64": "DOUBLE",
           "TEXT": "STRING", "UUID": "STRING"}
_KIND = {**{t: "int" for t in ("INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "DATETIME")},
         "FLOAT": "float", "DOUBLE": "float", "BOOLEAN": "bool", "STRING": "text", "TEXT": "text", "UUID": "text"}


def type_name(kind: DataType) -> str:
    name = kind.name
    return ALIASES.get(name, name)


def fits(tag_type: str, kind: DataType) -> bool:
    """Can a metric of this Sparkplug type be read as the tag's type? Same family, or a whole number into a
    floating-point tag."""
    want, have = _KIND.get(tag_type), _KIND.get(kind.name)
    return have is not None and (want == have or (want == "float" and have == "int"))


def normalise_type(data_type: str) -> str:
    t = str(data_type or "").strip().upper()
    t = ALIASES.get(t, t)
    if t not in TYPES:
        raise ConfigError("data_type", f"{data_type!r} is not a Sparkplug B type; use one of {', '.join(TYPES)}")
    return t


@dataclass
class SparkplugPlan:
    by_metric: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # metric -> [(tag_id, type)]

    @property
    def tag_ids(self) -> list[int]:
        return [tid for entries in self.by_metric.values() for tid, _ in entries]


@dataclass
class _Scope:
    """What one BIRTH said: metric types by name, names by alias, latest values by name."""
    types: dict[str, DataType] = field(default_factory=dict)
    aliases: dict[int, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    born: bool = False
    death: str | None = None  # why it is offline (NDEATH / DDEATH), None while alive

    def lookup_types(self) -> dict[str, DataType]:
        return {**self.types, **{str(a): self.types[n] for a, n in self.aliases.items() if n in self.types}}


@register
class SparkplugDriver(Driver):
    protocol = "SPARKPLUG_B"
    data_types = TYPES
    pushes = True

    DEFAULTS = {"group_id": None, "edge_node_id": None, "device_id": None, **LINK_DEFAULTS}

    def __init__(self, settings):
        super().__init__(settings)
        self.config = self.validate_config(settings.config)
        self.group = self.config["group_id"]
        self.edge = self.config["edge_node_id"]
        self.device = self.config["device_id"]
        self._link: MqttLink | None = None
        self._lock = threading.Lock()
        self._births = threading.Condition(self._lock)
        self._plan = SparkplugPlan()
        self._listener = None
        self._reset()
        self.rebirths_requested = 0
        self.seq_gaps = 0
        self.bad_payloads = 0
        self.messages = 0
        self._bad_topics: dict[str, str] = {}  # topic -> why its last payload was refused

    def _reset(self) -> None:
        self._node = _Scope()
        self._dev = _Scope()
        self._seq: int | None = None
        self._bd_seq: int | None = None
        self._pending: dict[int, Reading] = {}
        self._last_rebirth = 0.0

    def __repr__(self) -> str:
        return (f"<SparkplugDriver {self.settings.host}:{self.settings.port} {self.group}/{self.edge}"
                f"{'/' + self.device if self.device else ''}>")

    @property
    def scope_name(self) -> str:
        return f"{self.group}/{self.edge}" + (f"/{self.device}" if self.device else "")

    # --- configuration ---

    @classmethod
    def validate_config(cls, config: dict) -> dict:
        out = dict(cls.DEFAULTS)
        out.update({k: v for k, v in (config or {}).items() if v is not None})
        for key in ("group_id", "edge_node_id"):
            if out[key] in (None, ""):
                raise ConfigError(key, f"required: the edge node's Sparkplug {key.replace('_', ' ')[:-3]} id")
        for key in ("group_id", "edge_node_id", "device_id"):
            if out[key] in (None, ""):
                out[key] = None
                continue
            try:
                out[key] = check_id(out[key], key)
            except ValueError as exc:
                raise ConfigError(key, str(exc).split(": ", 1)[-1]) from None
        return validate_link_config(out)

    @classmethod
    def parse_address(cls, address: str, data_type: str) -> tuple[str, str]:
        if not isinstance(address, str) or not address.strip():
            raise ConfigError("address", "the metric's name as the edge node's BIRTH gives it, e.g. Counts/Good")
        if any(w in address for w in WILDCARDS):
            raise ConfigError("address", f"{address!r} holds a wildcard ('+' or '#'); a tag reads one metric, "
                                         "named exactly")
        return address, normalise_type(data_type)

    def plan(self, tags: list[TagSpec]) -> SparkplugPlan:
        plan = SparkplugPlan()
        for i, tag in enumerate(tags):
            try:
                name, kind = self.parse_address(tag.address, tag.data_type)
            except ConfigError as exc:
                raise ConfigError(f"tags[{i}].{exc.field}", f"tag {tag.name or tag.tag_id}: {exc.message}") from None
            plan.by_metric.setdefault(name, []).append((tag.tag_id, kind))
        with self._lock:
            self._plan = plan
        return plan

    # --- link ---

    def set_listener(self, callback) -> None:
        self._listener = callback

    def connect(self) -> None:
        self.close()
        s = self.settings
        link = MqttLink(s.host, s.port, self.config, s.timeout_s, on_message=self._on_message, on_lost=self._on_lost)
        link.connect()
        with self._lock:
            self._reset()
        self._link = link
        try:
            link.subscribe(node_filter(self.group, self.edge))
        except DriverError:
            self.close()
            raise
        # A BIRTH is not retained: ask for one, and give it a moment to come, so that the first read has values.
        self._request_rebirth("the collector connected")
        with self._births:
            self._births.wait_for(self._born, min(s.timeout_s, 2.0))

    def close(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            link.close()

    def abort(self) -> None:
        self.close()

    def _born(self) -> bool:
        return self._node.born and (self.device is None or self._dev.born)

    def _request_rebirth(self, why: str) -> None:
        now = time.monotonic()
        if now - self._last_rebirth < REBIRTH_MIN_INTERVAL_S or self._link is None:
            return
        self._last_rebirth = now
        self.rebirths_requested += 1
        log.info("Sparkplug %s: asking for a rebirth (%s)", self.scope_name, why)
        payload = encode(Payload(metrics=[metric(REBIRTH, True, DataType.BOOLEAN)], timestamp=now_ms()))
        self._link.publish(str(Topic(self.group, MessageType.NCMD, self.edge)), payload, qos=0)

    # --- messages (paho's network thread) ---

    def _on_lost(self, reason: str) -> None:
        if self._listener is not None:
            self._listener()

    def _on_message(self, topic_text: str, data: bytes) -> None:
        try:
            topic = Topic.parse(topic_text)
        except TopicError:
            return
        if topic.message_type in (MessageType.NCMD, MessageType.DCMD):
            return
        self.messages += 1
        with self._lock:
            tell = self._handle(topic, topic_text, data)
        if tell and self._listener is not None:
            self._listener()

    def _handle(self, topic: Topic, topic_text: str, data: bytes) -> bool:
        """Under the lock. Returns whether the collector should read now."""
        kind = topic.message_type
        mine = not kind.is_device or topic.device_id == self.device
        scope = self._dev if kind.is_device else self._node
        birth_types = scope.lookup_types() if mine else None
        try:
            payload = decode(data, birth_types)
        except PayloadError as exc:
            self.bad_payloads += 1
            if topic_text not in self._bad_topics:
                log.warning("Sparkplug %s: the payload on %s is not Sparkplug B (%s); asking for a rebirth",
                            self.scope_name, topic_text, exc)
            self._bad_topics[topic_text] = str(exc)
            if kind is not MessageType.NDEATH:
                self._seq = None  # the message had a seq we could not read
                self._request_rebirth(f"unreadable payload on {topic_text}")
            return False
        self._bad_topics.pop(topic_text, None)
        if kind is MessageType.NDEATH:
            bd = next((m.value for m in payload.metrics if m.name == BD_SEQ), None)
            if bd is not None and self._bd_seq is not None and bd != self._bd_seq:
                return False  # the will of an earlier session, arriving after the new NBIRTH
            self._node.death = f"edge node {self.group}/{self.edge} sent NDEATH (offline)"
            self._pending.clear()
            self._node.born = False
            self._dev.born = False
            self._seq = None
            return True
        if kind is MessageType.NBIRTH:
            scope = self._node = _Scope()
            self._dev = _Scope()  # the devices are born again after their node
            self._seq = payload.seq
            self._bd_seq = next((m.value for m in payload.metrics if m.name == BD_SEQ), None)
        else:
            if not is_next(self._seq, payload.seq):
                if self._seq is not None:
                    self.seq_gaps += 1
                    log.warning("Sparkplug %s: seq %s after %s on %s: messages were lost; asking for a rebirth",
                                self.scope_name, payload.seq, self._seq, topic_text)
                    self._request_rebirth(f"seq {payload.seq} after {self._seq}")
                elif not self._node.born:
                    self._request_rebirth("data from a node whose NBIRTH this client has not seen")
            self._seq = payload.seq
        if not mine:
            return False
        if kind is MessageType.DDEATH:
            scope.death = f"device {self.device} of edge node {self.group}/{self.edge} sent DDEATH (offline)"
            self._pending.clear()
            scope.born = False
            return True
        if kind in (MessageType.NBIRTH, MessageType.DBIRTH):
            if kind is MessageType.DBIRTH:
                self._dev = scope = _Scope()
            for m in payload.metrics:
                if m.name is None:
                    continue
                if m.name in scope.types and scope.types[m.name] != m.datatype:
                    log.warning("Sparkplug %s: metric %r is %s in this BIRTH, %s before", self.scope_name, m.name,
                                m.datatype.name, scope.types[m.name].name)
                scope.types[m.name] = m.datatype
                if m.alias is not None:
                    scope.aliases[m.alias] = m.name
                scope.values[m.name] = m.value
            scope.born = True
            self._births.notify_all()
            if self._born():
                self._deliver_all()
            return self._born()
        if not scope.born:
            return False  # data before its BIRTH: unusable (aliases, types); a rebirth was asked for
        for m in payload.metrics:
            name = m.name if m.name is not None else scope.aliases.get(m.alias)
            if name is None or self._metric_scope(name) is not scope:
                continue  # not in its BIRTH, or a node metric a device metric of the same name hides
            born_as = scope.types[name]
            if m.datatype is not DataType.UNKNOWN and m.datatype != born_as:
                self._deliver(name, None, None, (PROTOCOL_ERROR, f"metric {name!r} changed type from "
                                                                 f"{born_as.name} to {m.datatype.name} without a "
                                                                 "new BIRTH"))
                continue
            scope.values[name] = m.value
            self._deliver(name, m.value, born_as)
        return bool(self._pending)

    def _metric_scope(self, name: str) -> _Scope | None:
        if self.device is not None and name in self._dev.types:
            return self._dev
        if name in self._node.types:
            return self._node
        return None

    def _deliver_all(self) -> None:
        for name in self._plan.by_metric:
            scope = self._metric_scope(name)
            if scope is None:
                where = f"{self.group}/{self.edge}" + (f" or its device {self.device}" if self.device else "")
                self._deliver(name, None, None, (INVALID_ADDRESS, f"no metric {name!r} in the BIRTH of {where}"))
            else:
                self._deliver(name, scope.values.get(name), scope.types[name])

    def _deliver(self, name: str, value, kind: DataType | None, problem: tuple[str, str] | None = None) -> None:
        """Under the lock: the tags reading this metric get a Reading for the collector's next read."""
        for tag_id, tag_type in self._plan.by_metric.get(name, ()):
            if problem is not None:
                self._pending[tag_id] = Reading(None, BAD, f"{problem[0]}: {problem[1]}")
            elif kind is not None and not fits(tag_type, kind):
                self._pending[tag_id] = Reading(None, BAD, f"{PROTOCOL_ERROR}: metric {name!r} is {kind.name} in "
                                                           f"the edge node's BIRTH; the tag reads {tag_type}")
            elif value is None:
                self._pending[tag_id] = Reading(None, BAD, f"metric {name!r} is null")
            else:
                self._pending[tag_id] = Reading(value, GOOD)

    # --- reading ---

    def read(self, plan: SparkplugPlan) -> dict[int, Reading]:
        link = self._link
        if link is None:
            raise DriverError(CANNOT_CONNECT, "not connected", "connect() first")
        link.check()
        with self._lock:
            death = self._node.death or (self._dev.death if self.device else None)
            if death and not self._born():
                raise DriverError(CANNOT_CONNECT, death, "The edge node (or its device) is offline or lost its "
                                                         "link to the broker; the collector waits for its BIRTH.",
                                  link_up=True)
            if not self._born():
                self._request_rebirth("no BIRTH seen yet")
                what = "NBIRTH" if not self._node.born else f"DBIRTH of device {self.device}"
                raise DriverError(CANNOT_CONNECT, f"edge node {self.group}/{self.edge} has not sent its {what} "
                                                  "since the collector connected (a rebirth was asked for)",
                                  "Check group_id, edge_node_id and device_id, and that the edge node is online.",
                                  link_up=True)
            out, self._pending = self._pending, {}
        return out

    # --- diagnostics ---

    def _wait_for_birth(self, wait_s: float) -> None:
        with self._births:
            if self._born():
                return
            self._request_rebirth("discovery")
            if self._births.wait_for(self._born, wait_s):
                return
            bad = dict(self._bad_topics)
        if bad:
            topic, why = next(iter(bad.items()))
            raise DriverError(PROTOCOL_ERROR, f"the payload on {topic} is not Sparkplug B ({why})",
                              "Check that the edge node publishes Sparkplug B (protobuf) on this group and node.")
        what = "NBIRTH" if not self._node.born else f"DBIRTH of device {self.device}"
        broker = self._link.where if self._link else f"{self.settings.host}:{self.settings.port}"
        raise DriverError(TIMEOUT, f"no {what} from edge node {self.group}/{self.edge} at {broker} within {wait_s:g} s, "
                                   "after asking for a rebirth",
                          "Check group_id, edge_node_id and device_id (case matters), and that the edge node is "
                          "online and answers Node Control/Rebirth.")

    def test_connection(self, probe_address: str | None = None) -> TestResult:
        """tcp, handshake (MQTT CONNECT), subscribe, birth (the edge node's BIRTH, a rebirth asked for), and with
        probe_address the metric's value. Never raises."""
        s = self.settings
        steps: list[DiagnosticStep] = []
        identity: dict[str, Any] = {"group_id": self.group, "edge_node_id": self.edge, "device_id": self.device}
        try:
            with Step(steps, "tcp") as step:
                step.detail = f"connected to {tcp_check(s.host, s.port, s.timeout_s)}"
            with Step(steps, "handshake") as step:
                link = MqttLink(s.host, s.port, self.config, s.timeout_s, on_message=self._on_message)
                link.connect()
                self._link = link
                user = self.config.get("username")
                step.detail = (f"the broker accepted the connection{' as ' + user if user else ' anonymously'}"
                               f"{' over TLS' if self.config.get('tls') else ''}")
            with Step(steps, "subscribe") as step:
                filters = node_filter(self.group, self.edge)
                link.subscribe(filters)
                step.detail = f"subscribed to {', '.join(filters)}"
            with Step(steps, "birth") as step:
                self._wait_for_birth(max(s.timeout_s, 2.0))
                with self._lock:
                    identity.update(node_metrics=len(self._node.types), bdSeq=self._bd_seq)
                    step.detail = f"NBIRTH of {self.group}/{self.edge}: {len(self._node.types)} metrics"
                    if self.device:
                        identity["device_metrics"] = len(self._dev.types)
                        step.detail += f"; DBIRTH of {self.device}: {len(self._dev.types)} metrics"
            if probe_address:
                with Step(steps, "probe_read") as step:
                    with self._lock:
                        scope = self._metric_scope(probe_address)
                        if scope is None:
                            raise DriverError(INVALID_ADDRESS, f"no metric {probe_address!r} in the BIRTH of "
                                                               f"{self.scope_name}")
                        step.detail = (f"{probe_address} = {scope.values.get(probe_address)!r} "
                                       f"({type_name(scope.types[probe_address])})")
        except Exception:  # already recorded as the failed step
            pass
        finally:
            self.close()
        return TestResult(bool(steps) and all(st.ok for st in steps), steps, identity)

    def discover(self, wait_s: float | None = None, **_options) -> list[DiscoveredTag]:
        """The metrics of the node's NBIRTH (and the device's DBIRTH), asking for a rebirth when none was seen."""
        own = self._link is None
        if own:
            s = self.settings
            link = MqttLink(s.host, s.port, self.config, s.timeout_s, on_message=self._on_message)
            link.connect()
            self._link = link
            link.subscribe(node_filter(self.group, self.edge))
        try:
            self._wait_for_birth(float(wait_s) if wait_s else max(self.settings.timeout_s, 3.0))
            with self._lock:
                scopes = [("node", f"edge node {self.group}/{self.edge} (NBIRTH)", self._node)]
                if self.device:
                    scopes.insert(0, ("device", f"device {self.device} (DBIRTH)", self._dev))
                found, seen = [], set()
                for _, where, scope in scopes:
                    for name, kind in scope.types.items():
                        if name in seen or name == BD_SEQ or name.startswith("Node Control/") \
                                or name.startswith("Device Control/") or kind not in _SCALARS:
                            continue
                        seen.add(name)
                        value = scope.values.get(name)
                        found.append(DiscoveredTag(address=name, data_type=type_name(kind), name=name,
                                                   description=f"metric of {where}, Sparkplug type {kind.name}",
                                                   writable=False, value=value if not isinstance(value, bytes)
                                                   else None))
            return found
        finally:
            if own:
                self.close()


_SCALARS = {DataType.BOOLEAN, DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64, DataType.UINT8,
            DataType.UINT16, DataType.UINT32, DataType.UINT64, DataType.FLOAT, DataType.DOUBLE, DataType.STRING,
            DataType.TEXT, DataType.UUID, DataType.DATETIME}
