"""Validation of the plant's configuration: one module serving the wizard, the REST API and the YAML import.

Every check names the field and says what is expected, in the shape the API returns: a ValidationError carries
{"<field path>": "<what is expected>"}, with paths such as "port", "protocol_config.slot", "tags[3].address" or,
in an imported file, "machines[2].tags[0].role". Protocol settings and tag addresses are checked by the protocol's
own driver (collectors.base.driver_class(protocol).validate_config / parse_address), so what the wizard, the API
and an import accept is exactly what the collectors can poll.

Nothing here touches the database or a PLC: references that need the database (does line 7 exist, is LINE-017
already taken) are checked by db/config_store.py, which raises the same ValidationError.
"""
from __future__ import annotations

import ipaddress
import math
import re
from datetime import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collectors.base import PROTOCOL_DEFAULT_PORTS, SECRET_KEY_WORDS, ConfigError, driver_class
from db.models import LOSS_CATEGORIES, PLANNED_CATEGORIES, PROTOCOLS, TAG_ROLES

SECRET = "***"  # what the API and the pages show instead of a password; sent back, it keeps the stored one
PROTOCOL_LABELS = {"ETHERNET_IP": "Allen-Bradley (EtherNet/IP)", "S7": "Siemens S7", "OPCUA": "OPC-UA",
                   "MODBUS": "Modbus TCP"}
MIN_POLL_MS, MAX_POLL_MS = 100, 3_600_000
MACHINE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
HOST_LABEL_RE = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z")
HHMM_RE = re.compile(r"([01]\d|2[0-3]):([0-5]\d)\Z")
FLOAT_TYPES = {"REAL", "LREAL", "FLOAT", "DOUBLE", "FLOAT32", "FLOAT64"}

# Fields the API sends back that a client may send again unchanged (GET, edit, PUT): accepted and ignored.
MACHINE_READ_ONLY = {"id", "state", "connection_state", "tag_count", "line_name", "connection_id", "last_error",
                     "counts"}
MACHINE_FIELDS = ("name", "machine_id", "description", "ip_address", "port", "protocol", "protocol_config",
                  "poll_interval_ms", "line", "enabled")
MACHINE_REQUIRED = ("name", "machine_id", "protocol", "ip_address")
TAG_READ_ONLY = {"id", "value", "quality", "reason", "time", "suggested_role"}
TAG_FIELDS = ("name", "address", "data_type", "role", "scale", "offset", "deadband", "sampling_interval_ms",
              "report_by_exception", "enabled", "options")

# Canonical roles suggested from tag names: the last part of the name, letters and digits only, lower case, is
# looked up here. A role goes to the first tag whose name matches its earliest synonym.
ROLE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "counter.good": ("goodcount", "goodparts", "good", "goodcounter", "partsgood", "goodqty", "goodunits"),
    "counter.total": ("productioncount", "totalcount", "partcount", "partscount", "totalparts", "count",
                      "productcount", "piececount", "cyclecount", "totalqty", "total", "counter"),
    "counter.reject": ("rejectcount", "rejects", "reject", "scrapcount", "scrap", "badcount", "badparts",
                       "nokcount", "rejectqty"),
    "state.running": ("running", "isrunning", "run", "machinerunning", "inproduction"),
    "state.faulted": ("faulted", "fault", "isfaulted", "infault", "alarm", "alarmactive", "machinefault", "error"),
    "state.stopped": ("stopped", "isstopped", "stop", "machinestopped"),
    "state.code": ("state", "machinestate", "statecode", "status", "machinestatus", "mode"),
    "fault.code": ("lastfaultcode", "faultcode", "activefaultcode", "alarmcode", "errorcode", "faultnumber"),
    "cycle.time": ("cycletime", "lastcycletime", "actualcycletime", "cycletimeactual"),
    "cycle.ideal_time": ("idealcycletime", "targetcycletime", "standardcycletime", "nominalcycletime",
                         "cycletimetarget", "designcycletime"),
    "product.code": ("productcode", "product", "productid", "recipe", "recipenumber", "articlenumber", "sku",
                     "partnumber"),
    "order.id": ("orderid", "ordernumber", "workorder", "order", "workordernumber", "jobnumber", "batchid"),
}


class ValidationError(ValueError):
    """Invalid input. fields maps each offending field (a path) to what is expected there."""

    def __init__(self, fields: dict[str, str], message: str | None = None):
        self.fields = dict(fields)
        self.message = message or ("invalid input: " + "; ".join(f"{k}: {v}" for k, v in self.fields.items()))
        super().__init__(self.message)


class _Errors:
    """Collects field errors so that one answer names every bad field, not only the first."""

    def __init__(self, prefix: str = ""):
        self.prefix = prefix
        self.fields: dict[str, str] = {}

    def add(self, field: str, message: str) -> None:
        self.fields.setdefault(self.prefix + field, message)

    def absorb(self, exc: ValidationError, prefix: str = "") -> None:
        for k, v in exc.fields.items():
            self.fields.setdefault(self.prefix + prefix + k, v)

    def raise_if_any(self, message: str | None = None) -> None:
        if self.fields:
            raise ValidationError(self.fields, message)


# --- small field checks: each returns the clean value or records an error and returns None -------------------


def _text(errors: _Errors, data: dict, key: str, *, max_len: int, required: bool = True, min_len: int = 1,
          what: str = "text", default: str | None = None) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            errors.add(key, f"required: {what}, {min_len} to {max_len} characters")
        return default
    if not isinstance(value, str):
        errors.add(key, f"must be text ({what}), not {type(value).__name__}")
        return None
    value = value.strip()
    if len(value) < min_len or len(value) > max_len:
        errors.add(key, f"{what}: {min_len} to {max_len} characters, not {len(value)}")
        return None
    return value


def _integer(errors: _Errors, data: dict, key: str, lo: int, hi: int, *, default=None, what: str = "") -> int | None:
    value = data.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            errors.add(key, f"must be a whole number from {lo} to {hi}{what}, not {value!r}")
            return None
    if not lo <= value <= hi:
        errors.add(key, f"must be from {lo} to {hi}{what}, not {value}")
        return None
    return value


def _number(errors: _Errors, data: dict, key: str, *, default: float, lo: float | None = None,
            hi: float | None = None, nonzero: bool = False, what: str = "") -> float | None:
    value = data.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        errors.add(key, f"must be a number{what}, not {value!r}")
        return None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = f"from {lo:g} to {hi:g}" if lo is not None and hi is not None else (
            f"at least {lo:g}" if lo is not None else f"at most {hi:g}")
        errors.add(key, f"must be {bounds}{what}, not {value:g}")
        return None
    if nonzero and value == 0:
        errors.add(key, f"must not be 0{what}")
        return None
    return float(value)


def _boolean(errors: _Errors, data: dict, key: str, default: bool) -> bool | None:
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        errors.add(key, f"must be true or false, not {value!r}")
        return None
    return value


def _unknown(errors: _Errors, data: dict, known, ignored=(), where: str = "") -> None:
    for key in data:
        if key not in known and key not in ignored:
            close = [k for k in known if k.replace("_", "") == str(key).replace("_", "").lower()
                     or k.startswith(str(key)[:4].lower())]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            errors.add(str(key), f"unknown field{where}{hint}; expected {', '.join(known)}")


def _object(errors: _Errors, value, key: str) -> dict | None:
    if not isinstance(value, dict):
        errors.add(key, f"must be an object, not {type(value).__name__}")
        return None
    return value


def valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    if len(host) > 253 or host.endswith("."):
        return False
    labels = host.split(".")
    if all(label.isdigit() for label in labels):
        return False  # looks like a broken IPv4 address, not a host name
    return all(HOST_LABEL_RE.match(label) for label in labels)


def is_secret_key(key: str) -> bool:
    return any(w in str(key).lower() for w in SECRET_KEY_WORDS)


def timezone_ok(name) -> bool:
    if not isinstance(name, str) or not name or len(name) > 64:
        return False
    try:
        ZoneInfo(name)
        return True
    except (ZoneInfoNotFoundError, ValueError):
        return False


def parse_hhmm(value) -> time | None:
    if isinstance(value, time):
        return value
    m = HHMM_RE.match(value) if isinstance(value, str) else None
    return time(int(m.group(1)), int(m.group(2))) if m else None


# --- protocol settings -------------------------------------------------------------------------------------------


SEALED_STAND_IN = "<encrypted>"  # what a driver's validation sees of an encrypted secret


def _is_sealed(value) -> bool:
    from core.credentials import is_sealed

    return is_sealed(value)


def _server_of(config: dict | None) -> tuple[str, int] | None:
    """The (host, port) an OPC-UA endpoint points at, None without one."""
    endpoint = (config or {}).get("endpoint")
    if not isinstance(endpoint, str) or not endpoint.strip():
        return None
    try:
        host, port = opcua_endpoint_host_port(endpoint.strip())
    except ValueError:
        return None
    return host.lower(), port


def merge_secrets(config: dict, stored: dict | None, prefix: str = "protocol_config.") -> dict:
    """A secret sent back as '***' means "keep the stored one". Raises ValidationError when none is stored, and
    when the endpoint moves to another server: a stored secret only goes to the server it was given for, so
    that changing the endpoint cannot send it somewhere else."""
    out = dict(config)
    old_server, new_server = _server_of(stored), _server_of(config)
    for key, value in config.items():
        if _is_sealed(value):  # only the server makes these, from what it stores; never taken from a client
            raise ValidationError({prefix + key: f"give the {key} itself as text, or '{SECRET}' to keep the stored "
                                                 "one"})
        if is_secret_key(key) and value == SECRET:
            if stored and stored.get(key) and old_server and new_server and old_server != new_server:
                raise ValidationError({prefix + key: f"the endpoint moves from {old_server[0]}:{old_server[1]} to "
                                                     f"{new_server[0]}:{new_server[1]}: give the {key} again (a "
                                                     "stored one only goes to the server it was given for)"})
            if stored and stored.get(key):
                out[key] = stored[key]
            else:
                raise ValidationError({prefix + key: f"'{SECRET}' stands for the stored {key}, and none is stored: "
                                                     f"give the {key} itself"})
    return out


def redact(config: dict | None) -> dict:
    """protocol_config as it may be shown: secrets replaced by '***' (never the stored value)."""
    return {k: (SECRET if v and is_secret_key(k) else v) for k, v in (config or {}).items()}


def validate_protocol_config(protocol: str, config, *, host: str | None = None, port: int | None = None) -> dict:
    """The driver's own check of protocol_config, with defaults filled; None values are left out of what is
    stored. Raises ValidationError naming protocol_config.<field>."""
    if not isinstance(config, dict):
        raise ValidationError({"protocol_config": f"must be an object of settings, not {type(config).__name__}"})
    for key in config:
        if not isinstance(key, str) or not key:
            raise ValidationError({"protocol_config": "setting names must be non-empty text"})
    try:
        cls = driver_class(protocol)
    except ConfigError as exc:
        raise ValidationError({"protocol": exc.message}) from None
    # A secret kept encrypted (core.credentials: {"$enc": ...}) is checked as the text it stands for, and stored
    # as it is: validation never needs the key.
    sealed = {k: v for k, v in config.items() if is_secret_key(k) and _is_sealed(v)}
    try:
        clean = cls.validate_config({**config, **{k: SEALED_STAND_IN for k in sealed}})
    except ConfigError as exc:
        raise ValidationError({f"protocol_config.{exc.field}": exc.message}) from None
    except (TypeError, ValueError) as exc:  # a driver that choked on a wrongly typed value
        raise ValidationError({"protocol_config": f"settings do not fit {protocol}: {exc}"}) from None
    if protocol == "OPCUA":
        for key in ("certificate", "private_key", "server_certificate"):
            path = clean.get(key)
            if path:
                import os

                if not os.path.isfile(path):
                    raise ValidationError({f"protocol_config.{key}": f"file {path!r} not found on the server; give "
                                                                      "the path of a PEM or DER file there"})
    # What is stored is what was given, normalised (S7-1200, 'big', ints); defaults are filled at every load.
    return {k: sealed.get(k, v) for k, v in clean.items() if v is not None and k in config}


def opcua_endpoint_host_port(endpoint: str) -> tuple[str, int]:
    from urllib.parse import urlparse

    p = urlparse(endpoint)
    return p.hostname or "", p.port or PROTOCOL_DEFAULT_PORTS["OPCUA"]


# --- machines --------------------------------------------------------------------------------------------------


def validate_machine(data, *, stored_config: dict | None = None) -> dict:
    """A whole machine body (POST, PUT, or a PATCH merged onto the stored machine). Returns the clean machine:
    name, machine_id, description, ip_address, port, protocol, protocol_config, poll_interval_ms, line, enabled.
    stored_config: the stored protocol_config, whose secrets '***' stands for. Raises ValidationError."""
    errors = _Errors()
    if not isinstance(data, dict):
        raise ValidationError({"body": "must be a JSON object with the machine's fields"})
    _unknown(errors, data, MACHINE_FIELDS + ("tags",), MACHINE_READ_ONLY)
    out: dict = {}
    out["name"] = _text(errors, data, "name", max_len=200, what="the machine's name")
    machine_id = data.get("machine_id")
    if machine_id is None:
        errors.add("machine_id", "required: a stable id of 1 to 64 letters, digits, '-', '_' or '.', e.g. LINE-017")
    elif not isinstance(machine_id, str) or not MACHINE_ID_RE.match(machine_id):
        errors.add("machine_id", f"{machine_id!r}: use 1 to 64 letters, digits, '-', '_' or '.', starting with a "
                                 "letter or digit, e.g. LINE-017")
    else:
        out["machine_id"] = machine_id
    out["description"] = _text(errors, data, "description", max_len=2000, min_len=0, required=False,
                               what="a description", default="") or ""
    protocol = data.get("protocol")
    if protocol is None:
        errors.add("protocol", f"required: one of {', '.join(PROTOCOLS)}")
    elif protocol not in PROTOCOLS:
        errors.add("protocol", f"{protocol!r} is not supported; use one of {', '.join(PROTOCOLS)}")
        protocol = None
    out["protocol"] = protocol
    config = data.get("protocol_config")
    if config is None:
        config = {}
    config = _object(errors, config, "protocol_config")
    if config is not None and protocol:
        try:
            config = merge_secrets(config, stored_config)
            config = validate_protocol_config(protocol, config)
        except ValidationError as exc:
            errors.absorb(exc)
            config = None
    out["protocol_config"] = config
    host = data.get("ip_address")
    raw = data.get("protocol_config") if isinstance(data.get("protocol_config"), dict) else {}
    endpoint = (config or raw).get("endpoint") if protocol == "OPCUA" else None
    endpoint = endpoint if isinstance(endpoint, str) and endpoint.strip() else None
    if endpoint:
        try:
            ep_host, ep_port = opcua_endpoint_host_port(endpoint.strip())
        except ValueError:
            ep_host, ep_port = None, None
        if host is None:
            host = ep_host
        elif isinstance(host, str) and ep_host and host.strip().lower() != ep_host.lower():
            errors.add("ip_address", f"{host!r} differs from the host of protocol_config.endpoint ({ep_host}); the "
                                     "endpoint is what the client connects to: leave ip_address out or make them agree")
        if isinstance(data.get("port"), int) and ep_port and data["port"] != ep_port:
            errors.add("port", f"{data['port']} differs from the port of protocol_config.endpoint ({ep_port}); leave "
                               "port out or make them agree")
    if host is None:
        errors.add("ip_address", "required: the PLC's IPv4 address (e.g. 192.168.1.10), IPv6 address or host name")
    elif not isinstance(host, str) or not valid_host(host.strip()):
        errors.add("ip_address", f"{host!r} is not an IP address or host name; expected e.g. 192.168.1.10 or "
                                 "plc-17.plant.local")
    else:
        out["ip_address"] = host.strip()
    default_port = PROTOCOL_DEFAULT_PORTS.get(protocol) if protocol else None
    if data.get("port") is None and endpoint:
        try:
            default_port = opcua_endpoint_host_port(endpoint.strip())[1]
        except ValueError:
            pass
    out["port"] = _integer(errors, data, "port", 1, 65535, default=default_port,
                           what=f" (the PLC's TCP port; {protocol} usually {default_port})" if default_port else "")
    out["poll_interval_ms"] = _integer(errors, data, "poll_interval_ms", MIN_POLL_MS, MAX_POLL_MS, default=1000,
                                       what=" milliseconds between two reads")
    line = data.get("line")
    if line is not None and (isinstance(line, bool) or not isinstance(line, int) or line < 1):
        errors.add("line", f"must be the id of a line (a whole number, see /api/config/lines/) or null, not {line!r}")
        line = None
    out["line"] = line
    out["enabled"] = _boolean(errors, data, "enabled", True)
    tags = data.get("tags")
    if tags is not None and protocol and config is not None:
        try:
            out["tags"] = validate_tags(protocol, config, tags)
        except ValidationError as exc:
            errors.absorb(exc)
    errors.raise_if_any()
    return out


def validate_connection(data, *, stored_config: dict | None = None) -> dict:
    """A connection not yet saved (the wizard's test, POST /api/plc/test-connection/): protocol, ip_address, port,
    protocol_config and an optional probe_address. stored_config: a saved machine's protocol_config, whose
    secrets '***' stands for (kept encrypted: collectors.service decrypts them for the driver)."""
    if not isinstance(data, dict):
        raise ValidationError({"body": "must be a JSON object with protocol, ip_address, port and protocol_config"})
    errors = _Errors()
    _unknown(errors, data, ("protocol", "ip_address", "port", "protocol_config", "probe_address", "timeout_s"),
             MACHINE_READ_ONLY | {"name", "machine_id", "description", "poll_interval_ms", "line", "enabled"})
    probe = data.get("probe_address")
    if probe is not None and (not isinstance(probe, str) or not probe.strip() or len(probe) > 255):
        errors.add("probe_address", "a tag address to read as the last step, or null for the protocol's default")
    timeout = _number(errors, data, "timeout_s", default=3.0, lo=0.2, hi=30.0, what=" seconds")
    body = {k: data[k] for k in ("protocol", "ip_address", "port", "protocol_config") if k in data}
    try:
        clean = validate_machine({"name": "test", "machine_id": "test", **body}, stored_config=stored_config)
    except ValidationError as exc:
        errors.absorb(exc)
        clean = {}
    errors.raise_if_any()
    return {"protocol": clean["protocol"], "ip_address": clean["ip_address"], "port": clean["port"],
            "protocol_config": clean["protocol_config"], "probe_address": probe.strip() if probe else None,
            "timeout_s": timeout}


# --- tags ------------------------------------------------------------------------------------------------------


def _parse_address(protocol: str, config: dict, address: str, data_type: str):
    cls = driver_class(protocol)
    if protocol == "MODBUS":
        return cls.parse_address(address, data_type, config)
    return cls.parse_address(address, data_type)


def role_type_problem(role: str | None, data_type: str) -> str | None:
    """Why a data type cannot carry a role, or None."""
    if not role:
        return None
    t = data_type.strip().upper()
    if "[" in t and not t.startswith("STRING"):
        return f"{role} needs a single value; {data_type} is an array (pick one element)"
    is_text = t.startswith("STRING") or t in ("CHAR",)
    is_float = t in FLOAT_TYPES
    if role.startswith("counter.") or role in ("fault.code", "state.code"):
        if is_text or is_float:
            return f"{role} needs a whole-number type, not {data_type}"
    if role.startswith("state.") and role != "state.code" and is_text:
        return f"{role} needs a BOOL (or a number, 0 = false), not {data_type}"
    if role.startswith("cycle.") and is_text:
        return f"{role} needs a number of seconds, not {data_type}"
    return None


def validate_tag(protocol: str, config: dict, data) -> dict:
    errors = _Errors()
    if not isinstance(data, dict):
        raise ValidationError({"": "must be an object with name, address and data_type"})
    _unknown(errors, data, TAG_FIELDS, TAG_READ_ONLY)
    out: dict = {"name": _text(errors, data, "name", max_len=200, what="the tag's name")}
    address = _text(errors, data, "address", max_len=255, what="the tag's address")
    data_type = _text(errors, data, "data_type", max_len=16, what=f"the data type ({protocol} type names)")
    if address and data_type:
        try:
            _parse_address(protocol, config, address, data_type)
        except ConfigError as exc:
            errors.add("data_type" if exc.field == "data_type" else "address", exc.message)
        except (TypeError, ValueError) as exc:
            errors.add("address", str(exc))
    out["address"], out["data_type"] = address, data_type
    role = data.get("role")
    if role in ("", None):
        role = None
    elif role not in TAG_ROLES:
        errors.add("role", f"{role!r} is not a role; use one of {', '.join(TAG_ROLES)}, or null for a process value")
        role = None
    elif data_type:
        problem = role_type_problem(role, data_type)
        if problem:
            errors.add("role", problem)
    out["role"] = role
    out["scale"] = _number(errors, data, "scale", default=1.0, nonzero=True, what=" (value = raw * scale + offset)")
    out["offset"] = _number(errors, data, "offset", default=0.0, what=" (value = raw * scale + offset)")
    out["deadband"] = _number(errors, data, "deadband", default=0.0, lo=0.0,
                              what=" (store a value only when it moves more than this)")
    out["sampling_interval_ms"] = _integer(errors, data, "sampling_interval_ms", MIN_POLL_MS, MAX_POLL_MS,
                                           what=" milliseconds, or null for the machine's poll interval")
    out["report_by_exception"] = _boolean(errors, data, "report_by_exception", False)
    out["enabled"] = _boolean(errors, data, "enabled", True)
    options = data.get("options")
    if options is not None:
        options = _object(errors, options, "options")
        if options is not None and "rollover" in options:
            rollover = options["rollover"]
            if rollover is not None and (isinstance(rollover, bool) or not isinstance(rollover, int)
                                         or not 2 <= rollover <= 2**64):
                errors.add("options.rollover", "the counter's modulus: a whole number from 2 to 2^64 (the counter "
                                               "goes from modulus - 1 to 0), or null")
    out["options"] = options or None
    errors.raise_if_any()
    return out


def validate_tags(protocol: str, config: dict, tags) -> list[dict]:
    """A machine's whole tag list. Names are unique; a role belongs to at most one tag."""
    if not isinstance(tags, list):
        raise ValidationError({"tags": "must be a list of tags, each with name, address and data_type"})
    errors = _Errors()
    out, names, roles = [], {}, {}
    for i, tag in enumerate(tags):
        try:
            clean = validate_tag(protocol, config, tag)
        except ValidationError as exc:
            for k, v in exc.fields.items():
                errors.add(f"tags[{i}]" + (f".{k}" if k else ""), v)
            continue
        if clean["name"] in names:
            errors.add(f"tags[{i}].name", f"{clean['name']!r} is already the name of tags[{names[clean['name']]}]; "
                                          "tag names are unique within a machine")
        names.setdefault(clean["name"], i)
        if clean["role"]:
            if clean["role"] in roles:
                j = roles[clean["role"]]
                errors.add(f"tags[{i}].role", f"{clean['role']} is already the role of tags[{j}] "
                                              f"({tags[j].get('name')}); a role belongs to one tag")
            roles.setdefault(clean["role"], i)
        out.append(clean)
    errors.raise_if_any()
    return out


def _canon_name(name: str) -> str:
    last = re.split(r"[.:/\\]", str(name).strip())[-1]
    last = re.sub(r"\[.*?\]", "", last)
    return re.sub(r"[^a-z0-9]", "", last.lower())


def suggest_role(name: str) -> str | None:
    key = _canon_name(name)
    for role, synonyms in ROLE_SYNONYMS.items():
        if key in synonyms:
            return role
    return None


def suggest_roles(names: list[str]) -> dict[str, str]:
    """name -> suggested role for a list of tag names; each role at most once, to the best-matching name
    (the earliest synonym wins: LastFaultCode before ActiveFaultCode)."""
    best: dict[str, tuple[int, int, str]] = {}
    for pos, name in enumerate(names):
        key = _canon_name(name)
        for role, synonyms in ROLE_SYNONYMS.items():
            if key in synonyms:
                rank = (synonyms.index(key), pos)
                if role not in best or rank < best[role][:2]:
                    best[role] = (*rank, name)
    return {name: role for role, (_, _, name) in best.items()}


# --- the rest of the plant ---------------------------------------------------------------------------------------


def validate_site(data) -> dict:
    errors = _Errors()
    data = _object(errors, data, "body") or {}
    _unknown(errors, data, ("name", "timezone"), {"id", "areas"})
    out = {"name": _text(errors, data, "name", max_len=100, what="the site's name")}
    tz = data.get("timezone", "UTC")
    if not timezone_ok(tz):
        errors.add("timezone", f"{tz!r} is not a time zone; use an IANA name such as Europe/Berlin, "
                               "America/Chicago or UTC")
    out["timezone"] = tz
    errors.raise_if_any()
    return out


def validate_area(data) -> dict:
    errors = _Errors()
    data = _object(errors, data, "body") or {}
    _unknown(errors, data, ("name", "site"), {"id", "site_name", "lines"})
    out = {"name": _text(errors, data, "name", max_len=100, what="the area's name"),
           "site": _integer(errors, data, "site", 1, 2**31 - 1, what=" (the id of a site)")}
    if data.get("site") is None:
        errors.add("site", "required: the id of the site this area belongs to")
    errors.raise_if_any()
    return out


def validate_line(data) -> dict:
    errors = _Errors()
    data = _object(errors, data, "body") or {}
    _unknown(errors, data, ("name", "area"), {"id", "area_name", "site_name", "path"})
    out = {"name": _text(errors, data, "name", max_len=100, what="the line's name"),
           "area": _integer(errors, data, "area", 1, 2**31 - 1, what=" (the id of an area)")}
    if data.get("area") is None:
        errors.add("area", "required: the id of the area this line belongs to")
    errors.raise_if_any()
    return out


def validate_product(data) -> dict:
    errors = _Errors()
    data = _object(errors, data, "body") or {}
    _unknown(errors, data, ("code", "name", "ideal_cycle_time_s"), {"id"})
    out = {"code": _text(errors, data, "code", max_len=64, what="the product code"),
           "name": _text(errors, data, "name", max_len=200, min_len=0, required=False, default="", what="a name")}
    ict = data.get("ideal_cycle_time_s")
    expected = "seconds per unit at full speed, above 0 and at most 86400"
    if ict is None:
        errors.add("ideal_cycle_time_s", f"required: {expected}")
    elif isinstance(ict, bool) or not isinstance(ict, (int, float)) or not math.isfinite(ict) or not 0 < ict <= 86400:
        errors.add("ideal_cycle_time_s", f"{ict!r}: {expected}")
    out["ideal_cycle_time_s"] = float(ict) if "ideal_cycle_time_s" not in errors.fields else None
    errors.raise_if_any()
    return out


def validate_reason(data) -> dict:
    errors = _Errors()
    data = _object(errors, data, "body") or {}
    _unknown(errors, data, ("code", "name", "planned", "loss_category"), {"id"})
    out = {"code": _text(errors, data, "code", max_len=64, what="the reason code"),
           "name": _text(errors, data, "name", max_len=200, what="the reason's name"),
           "planned": _boolean(errors, data, "planned", False)}
    category = data.get("loss_category")
    allowed = PLANNED_CATEGORIES if out["planned"] else LOSS_CATEGORIES
    if category is None:
        errors.add("loss_category", f"required: one of {', '.join(allowed)}")
    elif category not in allowed:
        other = LOSS_CATEGORIES if out["planned"] else PLANNED_CATEGORIES
        if category in other:
            errors.add("loss_category", f"{category} is a {'loss' if out['planned'] else 'planned'} category but "
                                        f"planned is {str(out['planned']).lower()}; use one of {', '.join(allowed)}")
        else:
            errors.add("loss_category", f"{category!r} is not a category; use one of {', '.join(allowed)}")
    out["loss_category"] = category
    errors.raise_if_any()
    return out


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


def validate_calendar(data) -> dict:
    """A shift calendar: name, timezone, shifts [{name, start 'HH:MM', end 'HH:MM', weekdays '01234',
    breaks [{name, start 'HH:MM', duration_s}]}]."""
    errors = _Errors()
    data = _object(errors, data, "body") or {}
    _unknown(errors, data, ("name", "timezone", "shifts"), {"id"})
    out = {"name": _text(errors, data, "name", max_len=100, what="the calendar's name")}
    tz = data.get("timezone", "UTC")
    if not timezone_ok(tz):
        errors.add("timezone", f"{tz!r} is not a time zone; use an IANA name such as Europe/Berlin or UTC")
    out["timezone"] = tz
    shifts = data.get("shifts", [])
    if not isinstance(shifts, list):
        errors.add("shifts", "must be a list of shifts")
        shifts = []
    out["shifts"], seen = [], {}
    for i, shift in enumerate(shifts):
        p = f"shifts[{i}]."
        if not isinstance(shift, dict):
            errors.add(f"shifts[{i}]", "must be an object with name, start, end")
            continue
        sub = _Errors(p)
        _unknown(sub, shift, ("name", "start", "end", "weekdays", "breaks"), {"id"})
        name = _text(sub, shift, "name", max_len=64, what="the shift's name")
        if name and name in seen:
            sub.add("name", f"{name!r} is already shifts[{seen[name]}]; shift names are unique in a calendar")
        if name:
            seen.setdefault(name, i)
        start, end = parse_hhmm(shift.get("start")), parse_hhmm(shift.get("end"))
        if start is None:
            sub.add("start", f"expected a time of day 'HH:MM' (24 h), not {shift.get('start')!r}")
        if end is None:
            sub.add("end", f"expected a time of day 'HH:MM' (24 h), not {shift.get('end')!r}")
        if start is not None and end is not None and start == end:
            sub.add("end", "the shift must not end when it starts (a shift ending earlier than it starts crosses "
                           "midnight)")
        weekdays = shift.get("weekdays", "0123456")
        if (not isinstance(weekdays, str) or not weekdays or not set(weekdays) <= set("0123456")
                or len(set(weekdays)) != len(weekdays)):
            sub.add("weekdays", f"{weekdays!r}: the days it runs as digits, Monday = 0 ... Sunday = 6, each once, "
                                "e.g. '01234' for Monday to Friday")
        else:
            weekdays = "".join(sorted(weekdays))
        breaks_in = shift.get("breaks", [])
        breaks = []
        if not isinstance(breaks_in, list):
            sub.add("breaks", "must be a list of breaks")
            breaks_in = []
        for j, brk in enumerate(breaks_in):
            bp = _Errors(f"{p}breaks[{j}].")
            if not isinstance(brk, dict):
                sub.add(f"breaks[{j}]", "must be an object with name, start, duration_s")
                continue
            _unknown(bp, brk, ("name", "start", "duration_s"), {"id"})
            bname = _text(bp, brk, "name", max_len=64, required=False, default="Break", what="the break's name")
            bstart = parse_hhmm(brk.get("start"))
            if bstart is None:
                bp.add("start", f"expected a time of day 'HH:MM' (24 h), not {brk.get('start')!r}")
            if brk.get("duration_s") is None:
                bp.add("duration_s", "required: the break's length in seconds, 60 to 28800")
            duration = _integer(bp, brk, "duration_s", 60, 28800, what=" seconds")
            if bstart is not None and duration and start is not None and end is not None:
                length = (_minutes(end) - _minutes(start)) % 1440
                into = (_minutes(bstart) - _minutes(start)) % 1440
                if into * 60 + duration > length * 60:
                    bp.add("start", f"the break {bstart:%H:%M} + {duration // 60} min does not fit in the shift "
                                    f"{start:%H:%M}-{end:%H:%M}")
            errors.fields.update({k: v for k, v in bp.fields.items() if k not in errors.fields})
            breaks.append({"name": bname, "start": bstart.strftime("%H:%M") if bstart else None,
                           "duration_s": duration})
        errors.fields.update({k: v for k, v in sub.fields.items() if k not in errors.fields})
        out["shifts"].append({"name": name, "start": start.strftime("%H:%M") if start else None,
                              "end": end.strftime("%H:%M") if end else None, "weekdays": weekdays,
                              "breaks": breaks})
    errors.raise_if_any()
    return out


# --- the whole configuration as one document (YAML export / import) -----------------------------------------------

DOCUMENT_VERSION = 1
DOCUMENT_KEYS = ("version", "sites", "products", "reason_codes", "calendars", "machines")


def _yaml_times(calendar):
    """YAML 1.1 reads an unquoted 14:00 as the sexagesimal number 840: give such times back as 'HH:MM'."""
    def fix(v):
        return f"{v // 60:02d}:{v % 60:02d}" if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1440 else v

    if not isinstance(calendar, dict) or not isinstance(calendar.get("shifts"), list):
        return calendar
    shifts = []
    for shift in calendar["shifts"]:
        if isinstance(shift, dict):
            shift = {**shift, "start": fix(shift.get("start")), "end": fix(shift.get("end"))}
            if isinstance(shift.get("breaks"), list):
                shift["breaks"] = [{**b, "start": fix(b.get("start"))} if isinstance(b, dict) else b
                                   for b in shift["breaks"]]
        shifts.append(shift)
    return {**calendar, "shifts": shifts}


def line_path(site: str, area: str, line: str) -> str:
    return f"{site}/{area}/{line}"


def validate_document(doc, *, known_lines: set[str] = frozenset(), stored_configs: dict[str, dict] | None = None
                      ) -> dict:
    """The whole configuration as exported: sites (with areas and lines), products, reason_codes, calendars,
    machines (with tags; line as 'Site/Area/Line'). Every error is named by its path in the document.
    known_lines: line paths already in the database; stored_configs: machine_id -> stored protocol_config (for
    passwords exported as '***')."""
    if not isinstance(doc, dict):
        raise ValidationError({"": "the file must hold a mapping with version, sites, products, reason_codes, "
                                   "calendars and machines"})
    errors = _Errors()
    _unknown(errors, doc, DOCUMENT_KEYS)
    version = doc.get("version", DOCUMENT_VERSION)
    if version != DOCUMENT_VERSION:
        errors.add("version", f"this app reads version {DOCUMENT_VERSION} files, not {version!r}")
    out: dict = {"version": DOCUMENT_VERSION, "sites": [], "products": [], "reason_codes": [], "calendars": [],
                 "machines": []}
    lines = set(known_lines)

    def items(key: str) -> list:
        value = doc.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            errors.add(key, "must be a list")
            return []
        return value

    def unique(key: str, i: int, value, seen: dict, what: str) -> None:
        if value is None:
            return
        if value in seen:
            errors.add(f"{key}[{i}]", f"{what} {value!r} is already {key}[{seen[value]}]")
        seen.setdefault(value, i)

    site_names: dict = {}
    for i, site in enumerate(items("sites")):
        try:
            clean = validate_site({k: v for k, v in site.items() if k != "areas"} if isinstance(site, dict) else site)
        except ValidationError as exc:
            errors.absorb(exc, f"sites[{i}].")
            continue
        unique("sites", i, clean["name"], site_names, "site")
        clean["areas"] = []
        areas = site.get("areas") or []
        if not isinstance(areas, list):
            errors.add(f"sites[{i}].areas", "must be a list")
            areas = []
        area_names: dict = {}
        for j, area in enumerate(areas):
            p = f"sites[{i}].areas[{j}]"
            if not isinstance(area, dict):
                errors.add(p, "must be a mapping with name and lines")
                continue
            _unknown(errors, area, ("name", "lines"), where=f" in {p}")
            name = _text(_sub := _Errors(p + "."), area, "name", max_len=100, what="the area's name")
            errors.fields.update(_sub.fields)
            unique(f"sites[{i}].areas", j, name, area_names, "area")
            line_list = area.get("lines") or []
            if not isinstance(line_list, list):
                errors.add(p + ".lines", "must be a list")
                line_list = []
            clean_lines, line_names = [], {}
            for k, ln in enumerate(line_list):
                lp = f"{p}.lines[{k}]"
                if isinstance(ln, str):
                    ln = {"name": ln}
                if not isinstance(ln, dict):
                    errors.add(lp, "must be a line name or a mapping with name")
                    continue
                _unknown(errors, ln, ("name",), where=f" in {lp}")
                lname = _text(_sub := _Errors(lp + "."), ln, "name", max_len=100, what="the line's name")
                errors.fields.update(_sub.fields)
                unique(f"{p}.lines", k, lname, line_names, "line")
                if lname and name:
                    clean_lines.append({"name": lname})
                    lines.add(line_path(clean["name"], name, lname))
            clean["areas"].append({"name": name, "lines": clean_lines})
        out["sites"].append(clean)

    for key, fn, natural in (("products", validate_product, "code"), ("reason_codes", validate_reason, "code"),
                             ("calendars", validate_calendar, "name")):
        seen: dict = {}
        for i, item in enumerate(items(key)):
            if key == "calendars":
                item = _yaml_times(item)
            try:
                clean = fn(item)
            except ValidationError as exc:
                errors.absorb(exc, f"{key}[{i}].")
                continue
            unique(key, i, clean[natural], seen, natural)
            out[key].append(clean)

    seen_machines: dict = {}
    for i, machine in enumerate(items("machines")):
        p = f"machines[{i}]."
        if not isinstance(machine, dict):
            errors.add(f"machines[{i}]", "must be a mapping with the machine's fields")
            continue
        line = machine.get("line")
        body = {k: v for k, v in machine.items() if k != "line"}
        stored = (stored_configs or {}).get(machine.get("machine_id"))
        if line is not None:
            if not isinstance(line, str):
                errors.add(p + "line", "the line as 'Site/Area/Line', or null")
            elif line not in lines:
                errors.add(p + "line", f"{line!r} is neither in this file's sites nor in the database; write it as "
                                       "'Site/Area/Line'")
        if isinstance(machine.get("machine_id"), str):
            unique("machines", i, machine["machine_id"], seen_machines, "machine_id")
        try:
            clean = validate_machine(body, stored_config=stored)
        except ValidationError as exc:
            errors.absorb(exc, p)
            continue
        clean["line"] = line
        clean.setdefault("tags", [])
        out["machines"].append(clean)
    errors.raise_if_any("the configuration file has errors")
    return out


# --- discovery options (the wizard's discover step, POST /api/plc/machines/{id}/discover_tags/) ------------------

DISCOVER_OPTIONS = {
    "ETHERNET_IP": ("program", "max_array_elements"),
    "OPCUA": ("root", "depth", "limit", "include_server", "read_values", "namespace_uris"),
    "S7": ("db_layouts", "max_dbs"),
    "MODBUS": ("table", "start", "count", "unit"),
}
MAX_SCAN = 10_000


def validate_discover_options(protocol: str, data) -> dict:
    """Options of one protocol's discovery: Logix program ('*' every program, null controller scope only);
    OPC-UA root NodeId, depth, limit; S7 db_layouts {"<db>": "<csv>"}; Modbus table, start, count, unit."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValidationError({"body": "must be a JSON object of discovery options"})
    errors = _Errors()
    _unknown(errors, data, DISCOVER_OPTIONS[protocol], where=f" for {protocol} discovery")
    out: dict = {}
    if protocol == "ETHERNET_IP":
        program = data.get("program", "*")
        if program is not None and (not isinstance(program, str) or not program.strip()):
            errors.add("program", "a program name, '*' for every program, or null for controller tags only")
        out["program"] = program
        out["max_array_elements"] = _integer(errors, data, "max_array_elements", 1, 10000, default=100)
    elif protocol == "OPCUA":
        root = data.get("root")
        if root is not None:
            from collectors.drivers.opcua import parse_node_address

            try:
                parse_node_address(root, "Variant")
            except (ConfigError, TypeError, AttributeError) as exc:
                errors.add("root", getattr(exc, "message", None) or "a NodeId such as ns=2;s=Machine or i=85")
        out["root"] = root
        out["depth"] = _integer(errors, data, "depth", 1, 10, default=5)
        out["limit"] = _integer(errors, data, "limit", 1, MAX_SCAN, default=2000)
        for key, default in (("include_server", False), ("read_values", True), ("namespace_uris", False)):
            out[key] = _boolean(errors, data, key, default)
    elif protocol == "S7":
        layouts = data.get("db_layouts")
        if layouts is not None:
            if not isinstance(layouts, dict):
                errors.add("db_layouts", 'an object of DB number to CSV layout, e.g. {"1": "GoodCount,4,DINT"}')
            else:
                clean = {}
                for key, csv_text in layouts.items():
                    if not str(key).isdigit() or not 1 <= int(key) <= 65535:
                        errors.add(f"db_layouts.{key}", "the key is a DB number from 1 to 65535")
                    elif not isinstance(csv_text, str):
                        errors.add(f"db_layouts.{key}", "the layout as CSV text: name,offset,type per line")
                    else:
                        from collectors.drivers.s7 import import_db_layout

                        try:
                            import_db_layout(csv_text, int(key))
                        except ConfigError as exc:
                            errors.add(f"db_layouts.{key}", f"{exc.field}: {exc.message}")
                        clean[int(key)] = csv_text
                out["db_layouts"] = clean
        out["max_dbs"] = _integer(errors, data, "max_dbs", 1, 65535, default=1024)
    elif protocol == "MODBUS":
        table = data.get("table", "HR")
        if table not in ("HR", "IR", "C", "DI"):
            errors.add("table", f"{table!r}: one of HR (holding registers), IR (input registers), C (coils), "
                                "DI (discrete inputs)")
        out["table"] = table
        out["start"] = _integer(errors, data, "start", 0, 65535, what=" (the first address, in the connection's "
                                                                      "numbering)")
        out["count"] = _integer(errors, data, "count", 1, MAX_SCAN, default=200, what=" addresses to scan")
        out["unit"] = _integer(errors, data, "unit", 0, 255)
    errors.raise_if_any()
    return {k: v for k, v in out.items() if v is not None or k == "program"}
