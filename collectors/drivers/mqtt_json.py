"""MQTT driver for plain JSON topics: values are pushed by whoever publishes, not polled.

ip_address and port are the broker's. protocol_config: the broker settings of mqtt_link.py (username, password,
tls, tls_ca_file, client_id, keepalive_s) and
  topic_filter   "#"    where discovery listens (plant/#, plant/+/filler); never used to read tags

A tag's address is one topic, optionally with a JSON pointer (RFC 6901) into its payload after '#':
  plant/line4/filler                  the whole payload is the value (42, 3.5, true, "text" or a JSON string)
  plant/line4/filler#/counts/good     the member counts, then good, of a JSON object payload
  plant/line4/filler#/temps/0         an array element
Wildcards are refused: a tag reads one topic. Data types: BOOL, INT32, INT64, DOUBLE, STRING (REAL, DINT, ...
are taken as aliases). A payload that is not JSON, a pointer that leads nowhere and a value of the wrong kind make
the topic's tags bad, naming the topic; the link and the other topics keep going. Retained messages give the tags
their values as soon as the driver subscribes.
"""
from __future__ import annotations

import json
import logging
import math
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
from collectors.drivers.mqtt_link import (
    LINK_DEFAULTS,
    MqttLink,
    check_topic_filter,
    check_topic_name,
    validate_link_config,
)

log = logging.getLogger(__name__)

TYPES = ("BOOL", "INT32", "INT64", "DOUBLE", "STRING")
ALIASES = {"BOOLEAN": "BOOL", "BIT": "BOOL", "INT": "INT32", "DINT": "INT32", "INT16": "INT32", "LINT": "INT64",
           "UINT32": "INT64", "REAL": "DOUBLE", "FLOAT": "DOUBLE", "FLOAT32": "DOUBLE", "FLOAT64": "DOUBLE",
           "LREAL": "DOUBLE", "NUMBER": "DOUBLE", "TEXT": "STRING"}
INT_RANGE = {"INT32": 2**31, "INT64": 2**63}
MAX_DISCOVER_S = 30.0
MAX_FIELDS_PER_TOPIC = 200


def normalise_type(data_type: str) -> str:
    t = str(data_type or "").strip().upper()
    t = ALIASES.get(t, t)
    if t not in TYPES:
        raise ConfigError("data_type", f"{data_type!r}: use one of {', '.join(TYPES)}")
    return t


def split_address(address: str) -> tuple[str, list[str] | None, str]:
    """(topic, pointer tokens or None for the whole payload, pointer text). Raises ConfigError('address')."""
    if not isinstance(address, str) or not address.strip():
        raise ConfigError("address", "a topic, optionally with a JSON pointer: plant/line4/filler#/counts/good")
    topic, sep, pointer = address.partition("#")
    if sep and (topic == "" or topic.endswith("/")) and not pointer:
        raise ConfigError("address", f"{address!r} is a wildcard subscription; a tag reads one topic")
    try:
        check_topic_name(topic, "address")
    except ConfigError as exc:
        raise ConfigError("address", exc.message + " (a JSON pointer follows '#': topic#/counts/good)") from None
    if not sep:
        return topic, None, ""
    if pointer == "":
        return topic, [], ""
    if not pointer.startswith("/"):
        raise ConfigError("address", f"{address!r}: after '#' comes a JSON pointer starting with '/', e.g. "
                                     f"{topic}#/counts/good (a topic with a '#' wildcard cannot be a tag)")
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]
    return topic, tokens, pointer


def resolve(document: Any, tokens: list[str]) -> Any:
    """The value at a JSON pointer; KeyError naming the first step that leads nowhere."""
    value = document
    path = ""
    for token in tokens:
        path += "/" + token
        if isinstance(value, dict):
            if token not in value:
                raise KeyError(path)
            value = value[token]
        elif isinstance(value, list):
            if not token.isdigit() or int(token) >= len(value):
                raise KeyError(path)
            value = value[int(token)]
        else:
            raise KeyError(path)
    return value


def convert(value: Any, kind: str) -> Any:
    """A JSON value as the tag's type; ValueError saying why it does not fit."""
    if kind == "STRING":
        if isinstance(value, (dict, list)):
            return json.dumps(value, separators=(",", ":"))
        return "" if value is None else (str(value).lower() if isinstance(value, bool) else str(value))
    if value is None:
        raise ValueError("null")
    if kind == "BOOL":
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)):
            return value != 0
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "on", "off"):
            return value.strip().lower() in ("true", "1", "on")
        raise ValueError(f"{_kind(value)} is not a boolean")
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        try:
            value = float(value.strip()) if kind == "DOUBLE" or not value.strip().lstrip("-").isdigit() \
                else int(value.strip())
        except ValueError:
            raise ValueError(f"text {value[:40]!r} is not a number") from None
    if not isinstance(value, (int, float)):
        raise ValueError(f"{_kind(value)} is not a number")
    if kind == "DOUBLE":
        return float(value)
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise ValueError(f"{value} is not a whole number ({kind})")
        value = int(value)
    if not -INT_RANGE[kind] <= value < INT_RANGE[kind]:
        raise ValueError(f"{value} is outside {kind}")
    return value


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "text", bool: "a boolean"}.get(type(value), type(value).__name__)


@dataclass
class MqttPlan:
    # topic -> [(tag_id, pointer tokens or None, pointer text, type)]
    by_topic: dict[str, list[tuple[int, list[str] | None, str, str]]] = field(default_factory=dict)


@register
class MqttJsonDriver(Driver):
    protocol = "MQTT"
    data_types = TYPES
    pushes = True

    DEFAULTS = {"topic_filter": "#", **LINK_DEFAULTS}

    def __init__(self, settings):
        super().__init__(settings)
        self.config = self.validate_config(settings.config)
        self._link: MqttLink | None = None
        self._lock = threading.Lock()
        self._plan = MqttPlan()
        self._pending: dict[int, Reading] = {}
        self._listener = None
        self._bad_topics: set[str] = set()  # topics whose last payload was refused (logged once each)
        self.messages = 0

    def __repr__(self) -> str:
        return f"<MqttJsonDriver {self.settings.host}:{self.settings.port}>"

    @classmethod
    def validate_config(cls, config: dict) -> dict:
        out = dict(cls.DEFAULTS)
        out.update({k: v for k, v in (config or {}).items() if v is not None})
        out["topic_filter"] = check_topic_filter(out["topic_filter"], "topic_filter")
        return validate_link_config(out)

    @classmethod
    def parse_address(cls, address: str, data_type: str) -> tuple[str, list[str] | None, str, str]:
        topic, tokens, pointer = split_address(address)
        return topic, tokens, pointer, normalise_type(data_type)

    def plan(self, tags: list[TagSpec]) -> MqttPlan:
        plan = MqttPlan()
        for i, tag in enumerate(tags):
            try:
                topic, tokens, pointer, kind = self.parse_address(tag.address, tag.data_type)
            except ConfigError as exc:
                raise ConfigError(f"tags[{i}].{exc.field}", f"tag {tag.name or tag.tag_id}: {exc.message}") from None
            plan.by_topic.setdefault(topic, []).append((tag.tag_id, tokens, pointer, kind))
        with self._lock:
            self._plan = plan
        return plan

    def set_listener(self, callback) -> None:
        self._listener = callback

    # --- link ---

    def _open(self, on_message) -> MqttLink:
        s = self.settings
        link = MqttLink(s.host, s.port, self.config, s.timeout_s, on_message=on_message, on_lost=self._on_lost)
        link.connect()
        return link

    def connect(self) -> None:
        self.close()
        link = self._open(self._on_message)
        self._link = link
        try:
            link.subscribe(sorted(self._plan.by_topic))
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            link.close()

    def abort(self) -> None:
        self.close()

    def _on_lost(self, reason: str) -> None:
        if self._listener is not None:
            self._listener()

    def _on_message(self, topic: str, data: bytes) -> None:
        entries = self._plan.by_topic.get(topic)
        if not entries:
            return
        self.messages += 1
        readings = self.readings_of(topic, data, entries)
        with self._lock:
            self._pending.update(readings)
        if self._listener is not None:
            self._listener()

    def readings_of(self, topic: str, data: bytes, entries) -> dict[int, Reading]:
        try:
            document = json.loads(data)
        except (UnicodeDecodeError, ValueError) as exc:
            if topic not in self._bad_topics:
                self._bad_topics.add(topic)
                log.warning("MQTT %s:%s: the payload on %s is not JSON (%s)", self.settings.host, self.settings.port,
                            topic, exc)
            why = f"{PROTOCOL_ERROR}: the payload on {topic} is not JSON ({str(exc)[:80]})"
            return {tag_id: Reading(None, BAD, why) for tag_id, *_ in entries}
        self._bad_topics.discard(topic)
        out = {}
        for tag_id, tokens, pointer, kind in entries:
            try:
                value = document if tokens is None else resolve(document, tokens)
            except KeyError as exc:
                out[tag_id] = Reading(None, BAD, f"{INVALID_ADDRESS}: no {exc.args[0]} in the payload on {topic}")
                continue
            try:
                out[tag_id] = Reading(convert(value, kind), GOOD)
            except ValueError as exc:
                out[tag_id] = Reading(None, BAD, f"{PROTOCOL_ERROR}: {topic}#{pointer}: {exc} ({kind})")
        return out

    # --- reading ---

    def read(self, plan: MqttPlan) -> dict[int, Reading]:
        link = self._link
        if link is None:
            raise DriverError(CANNOT_CONNECT, "not connected", "connect() first")
        link.check()
        with self._lock:
            out, self._pending = self._pending, {}
        return out

    # --- diagnostics ---

    def test_connection(self, probe_address: str | None = None) -> TestResult:
        """tcp, handshake (MQTT CONNECT), subscribe (topic_filter, or the probe address's topic), and with
        probe_address the value of its next (or retained) message. Never raises."""
        s = self.settings
        steps: list[DiagnosticStep] = []
        identity: dict[str, Any] = {"broker": f"{s.host}:{s.port}"}
        got = threading.Event()
        seen: dict[str, bytes] = {}

        def on_message(topic, data):
            seen.setdefault(topic, data)
            got.set()

        link = None
        try:
            with Step(steps, "tcp") as step:
                step.detail = f"connected to {tcp_check(s.host, s.port, s.timeout_s)}"
            with Step(steps, "handshake") as step:
                link = self._open(on_message)
                user = self.config.get("username")
                step.detail = (f"the broker accepted the connection{' as ' + user if user else ' anonymously'}"
                               f"{' over TLS' if self.config.get('tls') else ''}")
            probe = self.parse_address(probe_address, "STRING") if probe_address else None
            with Step(steps, "subscribe") as step:
                target = probe[0] if probe else self.config["topic_filter"]
                link.subscribe([target])
                step.detail = f"subscribed to {target}"
            if probe:
                with Step(steps, "probe_read") as step:
                    if not got.wait(max(s.timeout_s, 1.0)):
                        raise DriverError(TIMEOUT, f"nothing was published on {probe[0]} within "
                                                f"{max(s.timeout_s, 1.0):g} s (and nothing is retained there)")
                    entries = [(0, probe[1], probe[2], "STRING")]
                    reading = self.readings_of(probe[0], seen[probe[0]], entries)[0]
                    if reading.quality == BAD:
                        kind, _, text = (reading.reason or "").partition(": ")
                        raise DriverError(kind or PROTOCOL_ERROR, text or "unreadable")
                    step.detail = f"{probe_address} = {reading.value[:200]!r}"
        except Exception:  # already recorded as the failed step
            pass
        finally:
            if link is not None:
                link.close()
        return TestResult(bool(steps) and all(st.ok for st in steps), steps, identity)

    def discover(self, seconds: float = 3.0, topic_filter: str | None = None, limit: int = 2000,
                 **_options) -> list[DiscoveredTag]:
        """Listens under topic_filter for `seconds` and lists each topic seen with the JSON fields of its last
        payload: a tag per scalar field (topic#/pointer), or the topic itself when the payload is one value."""
        wanted = check_topic_filter(topic_filter or self.config["topic_filter"], "topic_filter")
        seconds = min(max(float(seconds), 0.2), MAX_DISCOVER_S)
        last: dict[str, bytes] = {}
        lock = threading.Lock()

        def on_message(topic, data):
            with lock:
                if topic in last or len(last) < limit:
                    last[topic] = data

        link = self._open(on_message)
        try:
            link.subscribe([wanted])
            time.sleep(seconds)
        finally:
            link.close()
        found = []
        with lock:
            items = sorted(last.items())
        for topic, data in items:
            try:
                document = json.loads(data)
            except (UnicodeDecodeError, ValueError):
                found.append(DiscoveredTag(address=topic, data_type="STRING", name=topic, writable=False,
                                           description="payload is not JSON: read as text only if it is a number "
                                                       "or a JSON string", value=None))
                continue
            fields = list(_leaves(document, ""))[:MAX_FIELDS_PER_TOPIC]
            if len(fields) == 1 and fields[0][0] == "":
                value = fields[0][1]
                found.append(DiscoveredTag(address=topic, data_type=_type_of(value), name=topic, writable=False,
                                           description="the whole payload", value=value))
                continue
            children = [DiscoveredTag(address=f"{topic}#{pointer}", data_type=_type_of(value), name=pointer,
                                      writable=False, description=f"JSON field {pointer}", value=value)
                        for pointer, value in fields]
            found.append(DiscoveredTag(address=topic, data_type="JSON", name=topic, writable=False,
                                       description=f"JSON object, {len(children)} fields", children=children))
        return found


def _leaves(value: Any, pointer: str):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}")
    elif isinstance(value, list):
        for i, item in enumerate(value[:50]):
            yield from _leaves(item, f"{pointer}/{i}")
    else:
        yield pointer, value


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT64" if abs(value) >= 2**31 else "INT32"
    if isinstance(value, float):
        return "DOUBLE"
    return "STRING"

