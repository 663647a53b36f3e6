"""The broker to publish to: `--mqtt-url mqtt://user:pass@host:1883` (mqtts:// with `--mqtt-ca-file`), parsed once,
shown without its password, and a paho-mqtt 2 client made for it (CallbackAPIVersion.VERSION2)."""
from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True)
class Broker:
    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a repr, a log or a page
    ca_file: str = ""

    @property
    def tls(self) -> bool:
        return self.scheme == "mqtts"

    @property
    def shown(self) -> str:
        """The URL as logs, /healthz and pages may show it: the password is ***."""
        user = f"{self.username}{':***' if self.password is not None else ''}@" if self.username is not None else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{user}{host}:{self.port}"


def parse_broker_url(url: str, ca_file: str = "") -> Broker:
    """A Broker, or ValueError saying what is wrong (never repeating the password)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a broker URL ({exc}); use mqtt://user:pass@host:1883 or mqtts://host:8883") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"scheme {parts.scheme!r} is not mqtt:// or mqtts://; use mqtt://user:pass@host:1883 or "
                         "mqtts://host:8883")
    if not parts.hostname:
        raise ValueError("no host; use mqtt://user:pass@host:1883")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("a broker URL has no path or query; use mqtt://user:pass@host:1883")
    if ca_file and scheme != "mqtts":
        raise ValueError("a CA file is for mqtts:// (TLS); the URL is mqtt://")
    if ca_file and not Path(ca_file).is_file():
        raise ValueError(f"CA file {ca_file!r} is not a file")
    return Broker(scheme=scheme, host=parts.hostname, port=port or DEFAULT_PORTS[scheme],
                  username=unquote(parts.username) if parts.username is not None else None,
                  password=unquote(parts.password) if parts.password is not None else None, ca_file=ca_file)


def make_client(broker: Broker, client_id: str, *, clean_session: bool = True) -> mqtt.Client:
    """An MQTT 3.1.1 client for the broker (credentials, TLS with the CA file or the system's CAs); not connected.
    Its reconnects back off from 1 s to 30 s."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session,
                         protocol=mqtt.MQTTv311)
    if broker.username is not None:
        client.username_pw_set(broker.username, broker.password)
    if broker.tls:
        client.tls_set(ca_certs=broker.ca_file or None, cert_reqs=ssl.CERT_REQUIRED)
    client.reconnect_delay_set(1, 30)
    return client


def diagnose(broker: Broker, timeout_s: float = 3.0) -> str:
    """Why a connection failed, when paho does not say (its connect failure callback has no reason): the TCP
    connect, then for mqtts:// the TLS handshake with the same checks, each named."""
    where = f"{broker.host}:{broker.port}"
    try:
        sock = socket.create_connection((broker.host, broker.port), timeout_s)
    except OSError as exc:
        return f"cannot connect to {where}: {exc.strerror or exc}"
    with sock:
        if not broker.tls:
            return f"{where} accepted the connection but no MQTT session followed"
        context = ssl.create_default_context(cafile=broker.ca_file or None)
        try:
            with context.wrap_socket(sock, server_hostname=broker.host):
                pass
        except ssl.SSLCertVerificationError as exc:
            return (f"the TLS certificate of {where} is not trusted ({exc.verify_message}); give the CA that "
                    "signed it with --mqtt-ca-file")
        except (ssl.SSLError, OSError) as exc:
            return f"the TLS handshake with {where} failed: {exc}"
    return f"{where} accepted the connection and the TLS handshake but no MQTT session followed"
