"""Validation of machines, their PLC connection and their tags: one module serving the wizard, the REST API and
the YAML import (config/fields.py has the shared field checks; config/plant_items.py the hierarchy, products,
reasons and calendars; config/plant_file.py the whole file).

Protocol settings and tag addresses are checked by the protocol's own driver
(collectors.base.driver_class(protocol).validate_config / parse_address), so what the wizard, the API and an import
accept is exactly what the collectors can poll.

Nothing here touches the database or a PLC: references that need the database (does line 7 exist, is LINE-017
already taken) are checked by config/store.py, which raises the same ValidationError.
"""
from __future__ import annotations

import math
import re

from collectors.base import PROTOCOL_DEFAULT_PORTS, ConfigError, driver_class
from config.fields import (
    FieldErrors,
    ValidationError,
    boolean_field,
    calendar_ref,
    integer_field,
    number_field,
    object_of,
    text_field,
    unknown_fields,
    valid_host,
)
from db.models import FAULT_KINDS, MACHINE_STATES, PROTOCOLS, TAG_ROLES
from keys.credentials import is_secret_key

SECRET = "***"  # what the API and the pages show instead of a password; sent back, it keeps the stored one
PROTOCOL_LABELS = {"ETHERNET_IP": "Allen-Bradley (EtherNet/IP)", "S7": "Siemens S7", "OPCUA": "OPC-UA",
                   "MODBUS": "Modbus TCP", "SPARKPLUG_B": "Sparkplug B edge node (MQTT)",
                   "MQTT": "MQTT JSON topics"}
MIN_POLL_MS, MAX_POLL_MS = 100, 3_600_000
MACHINE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
FLOAT_TYPES = {"REAL", "LREAL", "FLOAT", "DOUBLE", "FLOAT32", "FLOAT64"}

# Fields the API sends back that a client may send again unchanged (GET, edit, PUT): accepted and ignored.
MACHINE_READ_ONLY = {"id", "state", "connection_state", "tag_count", "line_name", "connection_id", "last_error",
                     "counts", "effective_calendar", "effective_micro_stop_threshold_s"}
# The machine's own settings; null means "inherit" (see db/machine_settings.py).
MACHINE_SETTINGS = ("calendar", "state_code_map", "ideal_cycle_time_s", "micro_stop_threshold_s", "fault_codes")
MACHINE_FIELDS = ("name", "machine_id", "description", "ip_address", "port", "protocol", "protocol_config",
                  "poll_interval_ms", "line", "enabled", *MACHINE_SETTINGS)
MAX_STATE_CODES, MAX_FAULT_CODES = 1000, 5000
CODE_LIMIT = 2**31  # codes are 32-bit signed PLC integers
EXAMPLE_MAP = '{"1": "running", "3": "faulted", "7": "changeover"}'
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


# --- protocol settings -------------------------------------------------------------------------------------------


SEALED_STAND_IN = "<encrypted>"  # what a driver's validation sees of an encrypted secret


def _is_sealed(value) -> bool:
    from keys.credentials import is_sealed

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
    # A secret kept encrypted (keys.credentials: {"$enc": ...}) is checked as the text it stands for, and stored
    # as it is: validation never needs the key.
    sealed = {k: v for k, v in config.items() if is_secret_key(k) and _is_sealed(v)}
    try:
        clean = cls.validate_config({**config, **{k: SEALED_STAND_IN for k in sealed}})
    except ConfigError as exc:
        raise ValidationError({f"protocol_config.{exc.field}": exc.message}) from None
    except (TypeError, ValueError) as exc:  # a driver that choked on a wrongly typed value
        raise ValidationError({"protocol_config": f"settings do not fit {protocol}: {exc}"}) from None
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
    errors = FieldErrors()
    if not isinstance(data, dict):
        raise ValidationError({"body": "must be a JSON object with the machine's fields"})
    unknown_fields(errors, data, MACHINE_FIELDS + ("tags",), MACHINE_READ_ONLY)
    out: dict = {}
    out["name"] = text_field(errors, data, "name", max_len=200, what="the machine's name")
    machine_id = data.get("machine_id")
    if machine_id is None:
        errors.add("machine_id", "required: a stable id of 1 to 64 letters, digits, '-', '_' or '.', e.g. LINE-017")
    elif not isinstance(machine_id, str) or not MACHINE_ID_RE.match(machine_id):
        errors.add("machine_id", f"{machine_id!r}: use 1 to 64 letters, digits, '-', '_' or '.', starting with a "
                                 "letter or digit, e.g. LINE-017")
    else:
        out["machine_id"] = machine_id
    out["description"] = text_field(errors, data, "description", max_len=2000, min_len=0, required=False,
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
    config = object_of(errors, config, "protocol_config")
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
    out["port"] = integer_field(errors, data, "port", 1, 65535, default=default_port,
                           what=f" (the PLC's TCP port; {protocol} usually {default_port})" if default_port else "")
    out["poll_interval_ms"] = integer_field(errors, data, "poll_interval_ms", MIN_POLL_MS, MAX_POLL_MS, default=1000,
                                       what=" milliseconds between two reads")
    line = data.get("line")
    if line is not None and (isinstance(line, bool) or not isinstance(line, int) or line < 1):
        errors.add("line", f"must be the id of a line (a whole number, see /api/config/lines/) or null, not {line!r}")
        line = None
    out["line"] = line
    out["enabled"] = boolean_field(errors, data, "enabled", True)
    out.update(validate_machine_settings(errors, data))
    tags = data.get("tags")
    if tags is not None and protocol and config is not None:
        try:
            out["tags"] = validate_tags(protocol, config, tags)
        except ValidationError as exc:
            errors.absorb(exc)
    errors.raise_if_any()
    return out


def validate_machine_settings(errors: FieldErrors, data: dict) -> dict:
    """calendar, state_code_map, ideal_cycle_time_s, micro_stop_threshold_s and fault_codes, each None (inherit)
    or its clean value. Whether a calendar of that name or id exists is config.store's question."""
    out: dict = {}
    out["calendar"] = calendar_ref(errors, data, "the machine's shift calendar (null: the line's)")
    out["state_code_map"] = _state_code_map(errors, data.get("state_code_map"))
    ict = data.get("ideal_cycle_time_s")
    if ict is not None and (isinstance(ict, bool) or not isinstance(ict, (int, float)) or not math.isfinite(ict)
                            or not 0 < ict <= 86400):
        errors.add("ideal_cycle_time_s", f"{ict!r}: seconds per part at full speed, above 0 and at most 86400, or "
                                         "null (the product's, else none)")
        ict = None
    out["ideal_cycle_time_s"] = None if ict is None else float(ict)
    out["micro_stop_threshold_s"] = number_field(
        errors, data, "micro_stop_threshold_s", default=None, lo=0.0, hi=86400.0,
        what=" seconds (stops shorter than this are minor stops; 0: none), or null for the site's")
    out["fault_codes"] = _fault_codes(errors, data.get("fault_codes"))
    return out


def _state_code_map(errors: FieldErrors, value) -> dict[str, str] | None:
    """A PLC's state codes to MACHINE_STATES: {"3": "faulted"} (integer keys are taken too, as YAML writes them),
    or the name of a preset whose codes fill it in; {} and null: the default codes."""
    from collectors.machine_model import STATE_PRESETS

    if value is None:
        return None
    if isinstance(value, str):
        preset = STATE_PRESETS.get(value.strip())
        if preset is None or preset.codes is None:
            names = ", ".join(repr(k) for k, p in STATE_PRESETS.items() if p.codes)
            errors.add("state_code_map", f"{value!r} is not a preset of state codes; give a map of codes to states "
                                         f"such as {EXAMPLE_MAP}, or one of {names}")
            return None
        return {str(k): v for k, v in preset.codes.items()}
    if not isinstance(value, dict):
        errors.add("state_code_map", f"must be a map of the PLC's state codes to states, e.g. {EXAMPLE_MAP}, or "
                                     f"null; not {type(value).__name__}")
        return None
    if len(value) > MAX_STATE_CODES:
        errors.add("state_code_map", f"at most {MAX_STATE_CODES} codes, not {len(value)}")
        return None
    out: dict[str, str] = {}
    for key, state in value.items():
        code = _code(key)
        if code is None:
            errors.add(f"state_code_map.{key}", f"{key!r} is not a state code; codes are whole numbers such as '3'")
        elif str(code) in out:
            errors.add(f"state_code_map.{key}", f"code {code} is given twice")
        elif state not in MACHINE_STATES:
            errors.add(f"state_code_map.{key}", f"{state!r} is not a state; use one of {', '.join(MACHINE_STATES)}")
        else:
            out[str(code)] = state
    return dict(sorted(out.items(), key=lambda kv: int(kv[0]))) or None


def _code(key) -> int | None:
    if isinstance(key, bool):
        return None
    if isinstance(key, int):
        code = key
    elif isinstance(key, str) and re.fullmatch(r"\s*-?\d{1,10}\s*", key):
        code = int(key)
    else:
        return None
    return code if -CODE_LIMIT <= code < CODE_LIMIT else None


def _fault_codes(errors: FieldErrors, value) -> list[dict]:
    """A machine's fault table: [{"code": 42, "text": "Jam at infeed", "kind": "fault"}]; null is an empty one."""
    if value is None:
        return []
    if not isinstance(value, list):
        errors.add("fault_codes", 'must be a list such as [{"code": 42, "text": "Jam at infeed", "kind": "fault"}], '
                                  f"or null; not {type(value).__name__}")
        return []
    if len(value) > MAX_FAULT_CODES:
        errors.add("fault_codes", f"at most {MAX_FAULT_CODES} codes, not {len(value)}")
        return []
    out, seen = [], {}
    for i, entry in enumerate(value):
        sub = FieldErrors(f"fault_codes[{i}].")
        if not isinstance(entry, dict):
            errors.add(f"fault_codes[{i}]", 'must be an object with code, text and kind, e.g. {"code": 42, "text": '
                                            '"Jam at infeed", "kind": "fault"}')
            continue
        unknown_fields(sub, entry, ("code", "text", "kind"))
        code = entry.get("code")
        if code is None:
            sub.add("code", "required: the PLC's fault code, a whole number other than 0")
        elif (isinstance(code, bool) or not isinstance(code, int) or code == 0
              or not -CODE_LIMIT <= code < CODE_LIMIT):
            sub.add("code", f"{code!r}: the PLC's fault code, a whole number other than 0 (0 means no fault)")
        elif code in seen:
            sub.add("code", f"{code} is already fault_codes[{seen[code]}]; each code once")
        else:
            seen[code] = i
        text = text_field(sub, entry, "text", max_len=200, what="what the code means, e.g. Jam at infeed")
        kind = entry.get("kind", "fault")
        if kind not in FAULT_KINDS:
            sub.add("kind", f"{kind!r} is not a kind; use fault (the machine is faulted), planned_stop or changeover")
        errors.fields.update({k: v for k, v in sub.fields.items() if k not in errors.fields})
        if not sub.fields:
            out.append({"code": code, "text": text, "kind": kind})
    return sorted(out, key=lambda f: f["code"])


def validate_connection(data, *, stored_config: dict | None = None) -> dict:
    """A connection not yet saved (the wizard's test, POST /api/plc/test-connection/): protocol, ip_address, port,
    protocol_config and an optional probe_address. stored_config: a saved machine's protocol_config, whose
    secrets '***' stands for (kept encrypted: collectors.service decrypts them for the driver)."""
    if not isinstance(data, dict):
        raise ValidationError({"body": "must be a JSON object with protocol, ip_address, port and protocol_config"})
    errors = FieldErrors()
    unknown_fields(errors, data, ("protocol", "ip_address", "port", "protocol_config", "probe_address", "timeout_s"),
             MACHINE_READ_ONLY | {"name", "machine_id", "description", "poll_interval_ms", "line", "enabled",
                                  *MACHINE_SETTINGS})
    probe = data.get("probe_address")
    if probe is not None and (not isinstance(probe, str) or not probe.strip() or len(probe) > 255):
        errors.add("probe_address", "a tag address to read as the last step, or null for the protocol's default")
    timeout = number_field(errors, data, "timeout_s", default=3.0, lo=0.2, hi=30.0, what=" seconds")
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
    t = data_type.strip().upper().removesuffix("_ABCD").removesuffix("_CDAB")  # Modbus: a tag's own word order
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
    errors = FieldErrors()
    if not isinstance(data, dict):
        raise ValidationError({"": "must be an object with name, address and data_type"})
    unknown_fields(errors, data, TAG_FIELDS, TAG_READ_ONLY)
    out: dict = {"name": text_field(errors, data, "name", max_len=200, what="the tag's name")}
    address = text_field(errors, data, "address", max_len=255, what="the tag's address")
    data_type = text_field(errors, data, "data_type", max_len=16, what=f"the data type ({protocol} type names)")
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
    out["scale"] = number_field(errors, data, "scale", default=1.0, nonzero=True,
                                what=" (value = raw * scale + offset)")
    out["offset"] = number_field(errors, data, "offset", default=0.0, what=" (value = raw * scale + offset)")
    out["deadband"] = number_field(errors, data, "deadband", default=0.0, lo=0.0,
                              what=" (store a value only when it moves more than this)")
    out["sampling_interval_ms"] = integer_field(errors, data, "sampling_interval_ms", MIN_POLL_MS, MAX_POLL_MS,
                                           what=" milliseconds, or null for the machine's poll interval")
    out["report_by_exception"] = boolean_field(errors, data, "report_by_exception", False)
    out["enabled"] = boolean_field(errors, data, "enabled", True)
    options = data.get("options")
    if options is not None:
        options = object_of(errors, options, "options")
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
    errors = FieldErrors()
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


# --- discovery options (the wizard's discover step, POST /api/plc/machines/{id}/discover_tags/) ------------------

DISCOVER_OPTIONS = {
    "ETHERNET_IP": ("program", "max_array_elements"),
    "OPCUA": ("root", "depth", "limit", "include_server", "read_values", "namespace_uris"),
    "S7": ("db_layouts", "max_dbs"),
    "MODBUS": ("table", "start", "count", "unit"),
    "SPARKPLUG_B": ("wait_s",),
    "MQTT": ("seconds", "topic_filter", "limit"),
}
MAX_SCAN = 10_000


def validate_discover_options(protocol: str, data) -> dict:
    """Options of one protocol's discovery: Logix program ('*' every program, null controller scope only);
    OPC-UA root NodeId, depth, limit; S7 db_layouts {"<db>": "<csv>"}; Modbus table, start, count, unit."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValidationError({"body": "must be a JSON object of discovery options"})
    errors = FieldErrors()
    unknown_fields(errors, data, DISCOVER_OPTIONS[protocol], where=f" for {protocol} discovery")
    out: dict = {}
    if protocol == "ETHERNET_IP":
        program = data.get("program", "*")
        if program is not None and (not isinstance(program, str) or not program.strip()):
            errors.add("program", "a program name, '*' for every program, or null for controller tags only")
        out["program"] = program
        out["max_array_elements"] = integer_field(errors, data, "max_array_elements", 1, 10000, default=100)
    elif protocol == "OPCUA":
        root = data.get("root")
        if root is not None:
            from collectors.drivers.opcua_nodes import parse_node_address

            try:
                parse_node_address(root, "Variant")
            except (ConfigError, TypeError, AttributeError) as exc:
                errors.add("root", getattr(exc, "message", None) or "a NodeId such as ns=2;s=Machine or i=85")
        out["root"] = root
        out["depth"] = integer_field(errors, data, "depth", 1, 10, default=5)
        out["limit"] = integer_field(errors, data, "limit", 1, MAX_SCAN, default=2000)
        for key, default in (("include_server", False), ("read_values", True), ("namespace_uris", False)):
            out[key] = boolean_field(errors, data, key, default)
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
                        from collectors.drivers.s7_plan import import_db_layout

                        try:
                            import_db_layout(csv_text, int(key))
                        except ConfigError as exc:
                            errors.add(f"db_layouts.{key}", f"{exc.field}: {exc.message}")
                        clean[int(key)] = csv_text
                out["db_layouts"] = clean
        out["max_dbs"] = integer_field(errors, data, "max_dbs", 1, 65535, default=1024)
    elif protocol == "MODBUS":
        table = data.get("table", "HR")
        if table not in ("HR", "IR", "C", "DI"):
            errors.add("table", f"{table!r}: one of HR (holding registers), IR (input registers), C (coils), "
                                "DI (discrete inputs)")
        out["table"] = table
        out["start"] = integer_field(errors, data, "start", 0, 65535, what=" (the first address, in the connection's "
                                                                      "numbering)")
        out["count"] = integer_field(errors, data, "count", 1, MAX_SCAN, default=200, what=" addresses to scan")
        out["unit"] = integer_field(errors, data, "unit", 0, 255)
    elif protocol == "SPARKPLUG_B":
        out["wait_s"] = number_field(errors, data, "wait_s", default=None, lo=0.5, hi=30.0,
                                     what=" seconds to wait for the edge node's BIRTH after asking for a rebirth")
    elif protocol == "MQTT":
        out["seconds"] = number_field(errors, data, "seconds", default=3.0, lo=0.5, hi=30.0,
                                      what=" seconds to listen")
        topic_filter = data.get("topic_filter")
        if topic_filter is not None:
            from collectors.drivers.mqtt_link import check_topic_filter

            try:
                check_topic_filter(topic_filter, "topic_filter")
            except ConfigError as exc:
                errors.add("topic_filter", exc.message)
        out["topic_filter"] = topic_filter
        out["limit"] = integer_field(errors, data, "limit", 1, MAX_SCAN, default=2000, what=" topics")
    errors.raise_if_any()
    return {k: v for k, v in out.items() if v is not None or k == "program"}
