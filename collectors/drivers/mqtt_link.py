"""The MQTT link shared by the SPARKPLUG_B and MQTT drivers (paho-mqtt 2.x): connect to a broker, subscribe, hand
each message to the driver, and say in the drivers' error vocabulary what went wrong.

protocol_config keys both drivers take (validate_link_config):
  username, password   the broker's credentials (password is a secret: stored encrypted, never shown)
  tls                  false; true: TLS to the broker (mqtts), the certificate checked against the system's CAs,
                       or against tls_ca_file
  tls_ca_file          name of a CA certificate (PEM) in the certificate folder (collectors.base.settings_file)
  client_id            the MQTT client id; empty: the broker gives one. Two clients with one id push each other off
  keepalive_s          30

Messages are handled on paho's network thread, one at a time, in the order the broker sent them; while a handler
runs, nothing more is read from the socket, so a slow consumer slows the broker down instead of losing messages.
"""
from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Callable

import paho.mqtt.client as mqtt

from collectors.base import (
    AUTH_FAILED,
    CANNOT_CONNECT,
    DEVICE_ERROR,
    TIMEOUT,
    ConfigError,
    DriverError,
    settings_file,
)

log = logging.getLogger(__name__)

LINK_DEFAULTS = {"username": None, "password": None, "tls": False, "tls_ca_file": None, "client_id": None,
                 "keepalive_s": 30}
WILDCARDS = ("+", "#")


def _flag(out: dict, key: str) -> bool:
    value = out[key]
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        value = value.strip().lower() in ("true", "1", "yes")
    if not isinstance(value, bool):
        raise ConfigError(key, f"must be true or false, not {value!r}")
    return value


def validate_link_config(out: dict) -> dict:
    """Check the broker settings in out (defaults filled by the caller) in place; raises ConfigError."""
    for key in ("username", "password", "client_id"):
        value = out.get(key)
        if value in ("", None):
            out[key] = None
        elif not isinstance(value, str) or len(value) > 256 or "\x00" in value:
            raise ConfigError(key, "must be text of at most 256 characters")
    if out["password"] is not None and out["username"] is None:
        raise ConfigError("username", "a password needs a username")
    out["tls"] = _flag(out, "tls")
    if out.get("tls_ca_file") in ("", None):
        out["tls_ca_file"] = None
    else:
        settings_file("tls_ca_file", out["tls_ca_file"])  # only a file of the certificate folder
        out["tls"] = True
    keepalive = out["keepalive_s"]
    if isinstance(keepalive, str) and keepalive.strip().isdigit():
        keepalive = int(keepalive)
    if isinstance(keepalive, bool) or not isinstance(keepalive, int) or not 5 <= keepalive <= 3600:
        raise ConfigError("keepalive_s", f"seconds from 5 to 3600, not {out['keepalive_s']!r}")
    out["keepalive_s"] = keepalive
    return out


def check_topic_name(topic: str, field: str) -> str:
    """A topic to subscribe to or publish on exactly: no wildcard, not empty."""
    if not isinstance(topic, str) or not topic:
        raise ConfigError(field, "a topic is required")
    if any(w in topic for w in WILDCARDS):
        raise ConfigError(field, f"{topic!r} holds a wildcard ('+' or '#'); give one topic exactly")
    if "\x00" in topic or len(topic.encode()) > 65535:
        raise ConfigError(field, f"{topic!r} is not a valid MQTT topic")
    return topic


def check_topic_filter(topic_filter: str, field: str) -> str:
    """A subscription filter: '+' only as a whole level, '#' only as the last level."""
    if not isinstance(topic_filter, str) or not topic_filter:
        raise ConfigError(field, "a topic filter is required, e.g. 'plant/#' or '#'")
    levels = topic_filter.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise ConfigError(field, f"{topic_filter!r}: '#' must be a whole level and the last one (plant/#)")
        if "+" in level and level != "+":
            raise ConfigError(field, f"{topic_filter!r}: '+' must be a whole level (plant/+/filler)")
    return topic_filter


_AUTH_REASONS = ("bad user name or password", "not authorized", "bad username or password")


class MqttLink:
    """One MQTT client: connect() (raises DriverError), subscribe(), publish(), close(). on_message(topic, payload)
    and on_lost(reason) are called on paho's network thread."""

    def __init__(self, host: str, port: int, config: dict, timeout_s: float, *,
                 on_message: Callable[[str, bytes], None], on_lost: Callable[[str], None] | None = None):
        self.host, self.port, self.config, self.timeout_s = host, port, config, timeout_s
        self.on_message = on_message
        self.on_lost = on_lost
        self._client: mqtt.Client | None = None
        self._connack = threading.Event()
        self._connack_rc = None
        self._subacks: dict[int, list] = {}
        self._suback_event = threading.Condition()
        self.lost: str | None = None  # why the link went down after it was up

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def connect(self) -> None:
        self.close()
        cfg = self.config
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cfg.get("client_id") or "",
                             protocol=mqtt.MQTTv311, clean_session=True)
        client.connect_timeout = self.timeout_s
        client.reconnect_delay_set(60, 120)  # the collector reconnects (with its backoff); paho should not first
        if cfg.get("username"):
            client.username_pw_set(cfg["username"], cfg.get("password"))
        if cfg.get("tls"):
            try:
                ca = str(settings_file("tls_ca_file", cfg["tls_ca_file"])) if cfg.get("tls_ca_file") else None
                client.tls_set(ca_certs=ca, cert_reqs=ssl.CERT_REQUIRED)
            except ConfigError as exc:
                raise DriverError(AUTH_FAILED, f"tls_ca_file: {exc.message}") from None
            except (ssl.SSLError, OSError, ValueError):
                raise DriverError(AUTH_FAILED, f"tls_ca_file: {cfg['tls_ca_file']!r} cannot be loaded as a CA "
                                               "certificate (PEM)",
                                  "Put the broker's CA certificate, in PEM, into the certificate folder.") from None
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        self._connack.clear()
        self._connack_rc = None
        self.lost = None
        try:
            client.connect(self.host, self.port, keepalive=cfg.get("keepalive_s") or 30)
        except ConnectionRefusedError:
            raise DriverError(CANNOT_CONNECT, f"{self.where} refused the connection",
                              f"No MQTT broker listens on port {self.port} at {self.host}: check the port (1883, "
                              "8883 for TLS) and that the broker runs.") from None
        except ssl.SSLCertVerificationError as exc:
            raise DriverError(AUTH_FAILED, f"the TLS certificate of {self.where} was refused: "
                                           f"{exc.verify_message or exc.reason}",
                              "Give the broker's CA certificate as tls_ca_file, and use the host name the "
                              "certificate was made for.") from None
        except ssl.SSLError as exc:
            raise DriverError(AUTH_FAILED, f"TLS with {self.where} failed: {exc.reason or exc}",
                              "Check that the broker's port speaks TLS (8883) and that tls is what it "
                              "expects.") from None
        except (socket.timeout, TimeoutError):
            raise DriverError(TIMEOUT, f"no answer from {self.where} within {self.timeout_s:g} s",
                              "Check the address, the route and any firewall between here and the broker.") from None
        except socket.gaierror as exc:
            raise DriverError(CANNOT_CONNECT, f"host name {self.host!r} cannot be resolved ({exc.strerror})",
                              "Check the spelling of the host name, or use the IP address.") from None
        except OSError as exc:
            raise DriverError(CANNOT_CONNECT, f"{self.where}: {exc.strerror or exc}",
                              "Check the broker's address and that this machine has a route to it.") from None
        self._client = client
        client.loop_start()
        if not self._connack.wait(self.timeout_s):
            self.close()
            raise DriverError(TIMEOUT, f"{self.where} accepted the connection but did not answer MQTT CONNECT within "
                                       f"{self.timeout_s:g} s",
                              "Check that the port belongs to an MQTT broker (and whether it expects TLS).")
        rc = self._connack_rc
        if rc is not None and rc.is_failure:
            self.close()
            text = str(rc)
            if text.lower() in _AUTH_REASONS:
                raise DriverError(AUTH_FAILED, f"{self.where} refused the credentials ({text})",
                                  "Check username and password (protocol_config), and the broker's access rules.")
            raise DriverError(DEVICE_ERROR, f"{self.where} refused the connection ({text})",
                              "Check the client id and the broker's settings.")

    def subscribe(self, filters: list[str], qos: int = 1) -> None:
        """Subscribe and wait for the broker's SUBACK; a refused filter raises DriverError naming it."""
        client = self._client
        if client is None:
            raise DriverError(CANNOT_CONNECT, "not connected", "connect() first")
        if not filters:
            return
        with self._suback_event:
            rc, mid = client.subscribe([(f, qos) for f in filters])
            if rc != mqtt.MQTT_ERR_SUCCESS:
                raise DriverError(CANNOT_CONNECT, f"subscribing at {self.where} failed ({mqtt.error_string(rc)})")
            if not self._suback_event.wait_for(lambda: mid in self._subacks or self.lost, self.timeout_s):
                raise DriverError(TIMEOUT, f"{self.where} did not answer the subscription within {self.timeout_s:g} s")
            if self.lost:
                raise DriverError(CANNOT_CONNECT, f"connection to {self.where} lost ({self.lost})")
            codes = self._subacks.pop(mid)
        refused = [f for f, code in zip(filters, codes) if code.is_failure]
        if refused:
            raise DriverError(AUTH_FAILED, f"{self.where} refused the subscription to {', '.join(refused)}",
                              "The broker's access rules do not let this user read these topics.")

    def publish(self, topic: str, payload: bytes, qos: int = 0) -> None:
        client = self._client
        if client is not None:
            client.publish(topic, payload, qos=qos)

    def check(self) -> None:
        """Raise DriverError when the link is down."""
        if self._client is None:
            raise DriverError(CANNOT_CONNECT, "not connected", "connect() first")
        if self.lost:
            raise DriverError(CANNOT_CONNECT, f"connection to the broker {self.where} lost ({self.lost})",
                              "Check that the broker runs; the collector reconnects.")

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.disconnect()
            client.loop_stop()  # joins paho's thread, unless called from it
        except Exception:  # never raises
            log.debug("closing the MQTT client failed", exc_info=True)

    # --- paho callbacks (network thread) ---

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connack_rc = reason_code
        self._connack.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if client is not self._client or not self._connack.is_set():
            return
        self.lost = "the broker closed the connection" if not reason_code.is_failure else str(reason_code)
        with self._suback_event:
            self._suback_event.notify_all()
        if self.on_lost is not None:
            self.on_lost(self.lost)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        with self._suback_event:
            self._subacks[mid] = list(reason_codes)
            self._suback_event.notify_all()

    def _on_message(self, client, userdata, msg) -> None:
        try:
            self.on_message(msg.topic, msg.payload)
        except Exception:  # a handler's bug must not stop the network thread
            log.exception("handling an MQTT message on %s failed", msg.topic)

