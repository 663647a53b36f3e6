"""The one small interface every protocol driver implements, and the vocabulary they share.

A driver is built from validated settings, turns tag addresses into a read plan once (when the configuration is
loaded), and then only runs that plan. Two levels of error, as in Telegraf and Home Assistant:
  - a bad tag (no such address, a device's exception reply for that item, a reply of the wrong type or length)
    is a Reading with bad quality; the other tags keep going and the link stays up;
  - a dead link (refused, timed out, a broken session) raises DriverError; the collector closes the driver,
    backs off and reconnects.
Errors carry one kind from ERROR_KINDS, shared by the logs, the health page, the wizard and the API.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from keys.credentials import is_secret_key

# The error vocabulary: short keys mapped to readable text where they are shown.
CANNOT_CONNECT = "cannot_connect"
TIMEOUT = "timeout"
PROTOCOL_ERROR = "protocol_error"
DEVICE_ERROR = "device_error"
INVALID_ADDRESS = "invalid_address"
AUTH_FAILED = "auth_failed"
ERROR_KINDS = {
    CANNOT_CONNECT: "Cannot connect",
    TIMEOUT: "The device did not answer in time",
    PROTOCOL_ERROR: "The device answered in a way the protocol does not allow",
    DEVICE_ERROR: "The device refused the request",
    INVALID_ADDRESS: "The address does not exist or cannot be read",
    AUTH_FAILED: "The device refused the credentials or the security settings",
}

# Quality of a reading (same numbers as db.models.QUALITY_*).
GOOD, UNCERTAIN, BAD = 0, 1, 2

PROTOCOL_DEFAULT_PORTS = {"ETHERNET_IP": 44818, "S7": 102, "OPCUA": 4840, "MODBUS": 502, "SPARKPLUG_B": 1883,
                          "MQTT": 1883}


class DriverError(Exception):
    """A link-level failure. kind is one of ERROR_KINDS; suggestion tells the user what to try."""

    def __init__(self, kind: str, message: str, suggestion: str = "", *, link_up: bool = False):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.suggestion = suggestion
        self.diagnosed = False  # set when the port was looked at and this says what answers there (peers.py)
        # The link to a broker is up but the device behind it is not (an MQTT edge node's NDEATH): the collector
        # keeps the link open, so that it hears the device come back, instead of closing and reconnecting.
        self.link_up = link_up

    def as_dict(self) -> dict:
        return {"error": self.kind, "message": self.message, "suggestion": self.suggestion}


class ConfigError(ValueError):
    """Bad configuration, refused before anything is sent. field names what is wrong, e.g. 'tags[3].address'."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def redact_config(config: dict) -> dict:
    """protocol_config with the values of secret keys (password, private_key_password, ...) replaced by '***'."""
    return {k: ("***" if v and is_secret_key(k) else v)
            for k, v in (config or {}).items()}


@dataclass(frozen=True)
class ConnectionSettings:
    protocol: str
    host: str
    port: int
    config: dict = field(default_factory=dict)  # protocol_config: slot, rack, unit_id, word_order, endpoint, ...
    timeout_s: float = 3.0

    def __repr__(self) -> str:  # never shows a password, in logs or tracebacks
        return (f"ConnectionSettings(protocol={self.protocol!r}, host={self.host!r}, port={self.port!r}, "
                f"config={redact_config(self.config)!r}, timeout_s={self.timeout_s!r})")


@dataclass(frozen=True)
class TagSpec:
    """What a driver needs of a tag: the id it reports under, and where and how to read it."""

    tag_id: int
    address: str
    data_type: str
    name: str = ""


@dataclass
class Reading:
    value: Any  # int, float, bool or str; None when quality is BAD
    quality: int = GOOD
    reason: str | None = None  # why quality is not GOOD, in a few words (invalid_address: DB9 does not exist)


@dataclass
class DiagnosticStep:
    name: str  # tcp, handshake, identity, probe_read, ...
    ok: bool
    duration_ms: float
    detail: str = ""
    error: str | None = None  # one of ERROR_KINDS when not ok
    suggestion: str = ""


@dataclass
class TestResult:
    ok: bool
    steps: list[DiagnosticStep]
    identity: dict = field(default_factory=dict)  # product name, revision, CPU info, namespaces, ...

    @property
    def error(self) -> str | None:
        failed = next((s for s in self.steps if not s.ok), None)
        return failed.error if failed else None

    def as_dict(self) -> dict:
        return {"ok": self.ok, "error": self.error, "identity": self.identity,
                "steps": [asdict(s) for s in self.steps]}


@dataclass
class DiscoveredTag:
    address: str  # usable as a tag address as it is
    data_type: str  # in the driver's own data-type names (DINT, REAL, FLOAT32, ...)
    name: str = ""  # a readable name (the Logix tag name, the OPC-UA browse name, the register label)
    description: str = ""
    writable: bool | None = None
    value: Any = None  # a current value where discovery read one (Modbus scan, OPC-UA browse)
    children: list["DiscoveredTag"] = field(default_factory=list)  # UDT members, OPC-UA subfolders


class Step:
    """Times one diagnostic step: `with Step(steps, 'tcp') as step: ...`; an exception marks it failed."""

    def __init__(self, steps: list[DiagnosticStep], name: str):
        self.steps = steps
        self.name = name
        self.detail = ""

    def __enter__(self) -> "Step":
        self._t = time.perf_counter()
        return self

    def __exit__(self, exc_type, exc, _tb) -> bool:
        ms = round((time.perf_counter() - self._t) * 1000, 2)
        if exc is None:
            self.steps.append(DiagnosticStep(self.name, True, ms, self.detail))
            return False
        if isinstance(exc, DriverError):
            self.steps.append(DiagnosticStep(self.name, False, ms, exc.message, exc.kind, exc.suggestion))
            return False
        self.steps.append(DiagnosticStep(self.name, False, ms, f"{exc.__class__.__name__}: {exc}", PROTOCOL_ERROR))
        return False


class Driver(ABC):
    """One protocol. Not thread-safe: one collector job owns one driver instance."""

    protocol: ClassVar[str]
    data_types: ClassVar[tuple[str, ...]]  # the data-type names this protocol's tags use
    # A push driver (MQTT) is sent its values: read() returns the tags that changed since the last read (not every
    # tag), and the listener given to set_listener() is called from the driver's own thread when something came.
    pushes: ClassVar[bool] = False

    def __init__(self, settings: ConnectionSettings):
        self.settings = settings

    @classmethod
    def validate_config(cls, config: dict) -> dict:
        """Check and complete protocol_config; raise ConfigError naming the field. Returns it with defaults."""
        return dict(config)

    @classmethod
    @abstractmethod
    def parse_address(cls, address: str, data_type: str) -> Any:
        """Parse a tag address at configuration time; raise ConfigError('address' or 'data_type', expected form)."""

    @abstractmethod
    def plan(self, tags: list[TagSpec]) -> Any:
        """Turn tags into the cheapest set of requests (merged ranges, batches). Done once per configuration."""

    @abstractmethod
    def connect(self) -> None:
        """Open the link; raise DriverError (cannot_connect, timeout, auth_failed, protocol_error)."""

    @abstractmethod
    def read(self, plan: Any) -> dict[int, Reading]:
        """Run one read cycle of the plan: a Reading for every tag_id. Raise DriverError only for the link."""

    @abstractmethod
    def close(self) -> None:
        """Close the link; never raises."""

    def abort(self) -> None:
        """Called from another thread when a call of this driver overran its deadline: make that call end now
        (close the socket under it). Never raises. The default closes the driver; drivers whose close() would
        wait for the stuck call shut their socket down instead."""
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass

    def set_listener(self, callback) -> None:
        """Push drivers: callback() is called (from the driver's network thread) when values or news of the
        link arrived; the collector then reads at once instead of at its next interval."""

    @abstractmethod
    def test_connection(self) -> TestResult:
        """Diagnostics step by step (tcp, handshake, identity, probe read), each timed, never raises."""

    @abstractmethod
    def discover(self, **options) -> list[DiscoveredTag]:
        """What can be read: tag list, browse tree, data blocks, register scan. Raises DriverError."""


# --- files named in protocol settings ---------------------------------------------------------------------------
# Certificates and keys named in protocol_config are read from one folder only, <data dir>/certs (the runtime sets
# it at start). A name that leads elsewhere is refused with the same words whatever it names, and a file that
# cannot be loaded reads the same whether it is missing or not a certificate: the settings cannot be used to learn
# which files exist on the server.
_settings_file_folder = Path("data") / "certs"


def set_settings_file_folder(folder: str | Path) -> None:
    global _settings_file_folder
    _settings_file_folder = Path(folder)


def settings_file_folder() -> Path:
    return _settings_file_folder


def settings_file_refusal(field: str) -> ConfigError:
    return ConfigError(field, f"give the name of a file in the certificate folder {_settings_file_folder} "
                              "(PEM or DER; put the file there first)")


def settings_file(field: str, name: Any) -> Path:
    """The path of the file a protocol setting names, inside the certificate folder; ConfigError otherwise."""
    if not isinstance(name, str) or not name.strip() or "\x00" in name or len(name) > 255:
        raise settings_file_refusal(field)
    folder = _settings_file_folder.resolve()
    path = (folder / name.strip()).resolve()  # an absolute name, '..' or a symlink out of the folder lands outside
    if path == folder or not path.is_relative_to(folder):
        raise settings_file_refusal(field)
    return path


REGISTRY: dict[str, type[Driver]] = {}


def register(cls: type[Driver]) -> type[Driver]:
    REGISTRY[cls.protocol] = cls
    return cls


def driver_class(protocol: str) -> type[Driver]:
    import collectors.drivers  # noqa: F401  (importing the package registers every driver)

    try:
        return REGISTRY[protocol]
    except KeyError:
        raise ConfigError("protocol", f"{protocol!r} is not supported; use one of "
                                      f"{', '.join(sorted(REGISTRY))}") from None


def tcp_check(host: str, port: int, timeout_s: float) -> str:
    """Is anything listening? Raises DriverError with a suggestion; returns the peer address on success."""
    with tcp_connect(host, port, timeout_s) as sock:
        return "%s:%s" % sock.getpeername()[:2]


def tcp_connect(host: str, port: int, timeout_s: float):
    """A connected TCP socket (for drivers whose library can take one); failures as in tcp_check."""
    import socket

    try:
        return socket.create_connection((host, port), timeout=timeout_s)
    except ConnectionRefusedError:
        raise DriverError(CANNOT_CONNECT, f"{host}:{port} refused the connection",
                          f"Nothing listens on port {port} at {host}: check the port number and that the device "
                          "or server is running.") from None
    except socket.timeout:
        raise DriverError(TIMEOUT, f"no answer from {host}:{port} within {timeout_s:g} s",
                          "Check the IP address, the network route and any firewall between here and the device.") from None
    except socket.gaierror as exc:
        raise DriverError(CANNOT_CONNECT, f"host name {host!r} cannot be resolved ({exc.strerror})",
                          "Check the spelling of the host name, or use the IP address.") from None
    except OSError as exc:
        raise DriverError(CANNOT_CONNECT, f"{host}:{port}: {exc.strerror or exc}",
                          "Check the IP address and that this machine has a route to it.") from None
