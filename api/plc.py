"""/api/plc/: machines with their PLC connection and tags, connection tests and tag discovery.

    GET, POST               /api/plc/machines/                     list (paginated) / create (with tags, optional)
    GET, PUT, PATCH, DELETE /api/plc/machines/{id}/                {id}: the numeric id or the machine_id
    POST                    /api/plc/machines/{id}/test_connection/
    POST                    /api/plc/machines/{id}/discover_tags/
    POST                    /api/plc/machines/{id}/reload_connection/
    GET, PUT                /api/plc/machines/{id}/tags/           the tag list with roles and live values
    POST                    /api/plc/test-connection/              a connection not yet saved

Input goes through config.validation (the wizard's and the import's validation); 400 names every bad field.
Writes are one transaction each (config.store) and are followed by a reload of this process's collectors, so a
saved machine is polled without a restart. PLC work goes through collectors.service. A password in
protocol_config is never sent back: it reads '***', and '***' sent back keeps the stored one.
"""
from __future__ import annotations

from urllib.parse import urlencode

from flask import jsonify, request

from api import ApiError, bad_request, bp, not_found, runtime
from api.openapi import describe, error_responses, schema
from collectors import service
from config import admin as machine_admin
from config import store as cs
from config.fields import ValidationError
from config.validation import (
    MACHINE_FIELDS,
    MACHINE_REQUIRED,
    PROTOCOL_LABELS,
    redact,
    validate_connection,
    validate_discover_options,
    validate_machine,
    validate_tags,
)
from collectors.machine_model import STATE_PRESETS
from db.models import FAULT_KINDS, MACHINE_STATES, PROTOCOLS, TAG_ROLES

MAX_PAGE_SIZE = 500


# --- shared by the API modules: bodies, pages, errors ---------------------------------------------------------------


def json_body(*, allow_list: bool = False, optional: bool = False):
    if not request.data and optional:
        return {}
    data = request.get_json(silent=True)
    if data is None:
        raise bad_request("the body must be JSON (Content-Type: application/json)",
                          {"body": "a JSON " + ("array or object" if allow_list else "object")})
    if not isinstance(data, (dict, list)) or (isinstance(data, list) and not allow_list):
        raise bad_request("the body must be a JSON object", {"body": "a JSON object"})
    return data


def invalid(exc: ValidationError) -> ApiError:
    return bad_request(exc.message, exc.fields)


def page_args(default_size: int = 50) -> tuple[int, int, int]:
    """page (from 1) and page_size (1..500) from the query: (page, size, offset)."""
    fields = {}
    values = {}
    for key, default, hi in (("page", 1, 10**9), ("page_size", default_size, MAX_PAGE_SIZE)):
        raw = request.args.get(key)
        if raw is None:
            values[key] = default
        elif not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= hi:
            fields[key] = f"a whole number from 1 to {hi}, not {raw!r}"
        else:
            values[key] = int(raw)
    if fields:
        raise bad_request("invalid query parameters", fields)
    return values["page"], values["page_size"], (values["page"] - 1) * values["page_size"]


def paginated(total: int, results: list, page: int, size: int) -> dict:
    def link(n: int) -> str:
        args = {k: v for k, v in request.args.items() if k not in ("page", "page_size")}
        args.update(page=n, page_size=size)
        return f"{request.base_url}?{urlencode(args)}"

    return {"count": total, "next": link(page + 1) if page * size < total else None,
            "previous": link(page - 1) if page > 1 and total else None, "results": results}


def page_schema(name: str, item_ref: dict) -> dict:
    return schema(name, {
        "type": "object", "required": ["count", "next", "previous", "results"],
        "properties": {"count": {"type": "integer", "minimum": 0},
                       "next": {"type": ["string", "null"], "description": "URL of the next page"},
                       "previous": {"type": ["string", "null"], "description": "URL of the previous page"},
                       "results": {"type": "array", "items": item_ref}}})


PAGE_PARAMETERS = [
    {"name": "page", "in": "query", "required": False, "description": "page number, from 1",
     "schema": {"type": "integer", "minimum": 1}},
    {"name": "page_size", "in": "query", "required": False, "description": "items per page, 1 to 500 (default 50)",
     "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE}},
]


def ok(description: str, ref: dict, status: int = 200) -> dict:
    return {str(status): {"description": description, "content": {"application/json": {"schema": ref}}}}


def body(ref: dict, description: str = "", required: bool = True) -> dict:
    return {"required": required, "description": description, "content": {"application/json": {"schema": ref}}}


# --- machines ---------------------------------------------------------------------------------------------------


def _engine():
    return runtime().store.engine


def _backend() -> str:
    return runtime().store.backend_name


def _machine_pk(key: str) -> int:
    try:
        return cs.find_machine(_engine(), key)
    except cs.NotFound as exc:
        raise not_found(f"{exc}; see /api/plc/machines/") from None


def public_machine(m: dict) -> dict:
    """A machine as the API shows it: secrets redacted, with its live state."""
    out = {**m, "protocol_config": redact(m["protocol_config"])}
    out.update(service.machine_status(runtime(), m))
    return out


def _editable(m: dict) -> dict:
    return {k: m[k] for k in MACHINE_FIELDS}


@bp.get("/plc/machines/")
def list_machines():
    page, size, offset = page_args()
    total, rows = cs.list_machines(_engine(), offset=offset, limit=size)
    return jsonify(paginated(total, [public_machine(m) for m in rows], page, size))


@bp.post("/plc/machines/")
def create_machine():
    data = json_body()
    try:
        clean = validate_machine(data)
        m = machine_admin.save_machine(runtime(), clean)
    except ValidationError as exc:
        raise invalid(exc) from None
    resp = jsonify(public_machine(cs.get_machine(_engine(), m["id"])))
    resp.status_code = 201
    resp.headers["Location"] = f"{request.base_url}{m['id']}/"
    return resp


@bp.get("/plc/machines/<key>/")
def get_machine(key):
    return jsonify(public_machine(cs.get_machine(_engine(), _machine_pk(key))))


def _save(pk: int, merged: dict, stored: dict):
    try:
        clean = validate_machine(merged, stored_config=stored["protocol_config"])
        if "tags" not in merged and clean["protocol"] != stored["protocol"] and stored["tag_count"]:
            # the tags' addresses belong to the old protocol: they must come along, checked for the new one
            raise ValidationError({"tags": f"the protocol changes from {stored['protocol']} to {clean['protocol']}: "
                                           "send the tag list for the new protocol with it (or PUT the tags "
                                           "first to an empty list)"})
        if "tags" not in merged and stored["tag_count"]:
            # settings changed (zero_based, unit id, ...): the stored tags must still be valid under them
            validate_tags(clean["protocol"], clean["protocol_config"], _stored_tags(pk))
        m = machine_admin.save_machine(runtime(), clean, pk)
    except ValidationError as exc:
        raise invalid(exc) from None
    return jsonify(public_machine(m))


def _stored_tags(pk: int) -> list[dict]:
    return [{k: v for k, v in t.items() if k != "id"} for t in cs.machine_tags(_engine(), pk)]


@bp.put("/plc/machines/<key>/")
def put_machine(key):
    pk = _machine_pk(key)
    data = json_body()
    missing = {f: "required for PUT (PATCH changes single fields)" for f in MACHINE_REQUIRED if f not in data}
    if missing and not (data.get("protocol") == "OPCUA" and set(missing) == {"ip_address"}):
        raise bad_request("a PUT gives the whole machine", missing)
    return _save(pk, data, cs.get_machine(_engine(), pk))


@bp.patch("/plc/machines/<key>/")
def patch_machine(key):
    pk = _machine_pk(key)
    data = json_body()
    stored = cs.get_machine(_engine(), pk)
    merged = {**_editable({**stored, "protocol_config": redact(stored["protocol_config"])}), **data}
    new_endpoint = isinstance(data.get("protocol_config"), dict) and data["protocol_config"].get("endpoint")
    if new_endpoint and "ip_address" not in data:  # OPC-UA: a new endpoint brings its own host and port
        merged.pop("ip_address", None)
        if "port" not in data:
            merged.pop("port", None)
    return _save(pk, merged, stored)


@bp.delete("/plc/machines/<key>/")
def delete_machine(key):
    pk = _machine_pk(key)
    removed = machine_admin.delete_machine(runtime(), pk)
    return jsonify({"deleted": removed,
                    "message": f"machine {removed['machine_id']} deleted with its {removed['tags']} tags and their "
                               f"history ({removed['samples']} samples, {removed['states']} state intervals, "
                               f"{removed['counts']} count rows, {removed['downtime_events']} downtime events)"})


@bp.get("/plc/machines/<key>/tags/")
def get_tags(key):
    pk = _machine_pk(key)
    page, size, offset = page_args(default_size=MAX_PAGE_SIZE)
    tags = cs.machine_tags(_engine(), pk)
    live = service.live_values(runtime(), [t["id"] for t in tags])
    rows = [{**t, **live.get(t["id"], {"value": None, "quality": None, "reason": None, "time": None})}
            for t in tags]
    return jsonify(paginated(len(rows), rows[offset:offset + size], page, size))


@bp.put("/plc/machines/<key>/tags/")
def put_tags(key):
    pk = _machine_pk(key)
    data = json_body(allow_list=True)
    tags = data.get("tags") if isinstance(data, dict) else data
    if isinstance(data, dict) and set(data) - {"tags"}:
        raise bad_request("the body is the tag list, or {\"tags\": [...]}",
                          {k: "unknown field; expected tags" for k in set(data) - {"tags"}})
    machine = cs.get_machine(_engine(), pk)
    if machine["protocol"] is None:
        raise bad_request("the machine has no connection", {"protocol": "set the machine's protocol first"})
    try:
        clean = validate_tags(machine["protocol"], machine["protocol_config"], tags)
        cs.replace_tags(_engine(), pk, clean, backend=_backend())
    except ValidationError as exc:
        raise invalid(exc) from None
    service.reload_collectors(runtime())
    return get_tags(key)


@bp.post("/plc/machines/<key>/test_connection/")
def test_saved_connection(key):
    pk = _machine_pk(key)
    data = json_body(optional=True)
    m = cs.get_machine(_engine(), pk)
    extra = {k: data[k] for k in ("probe_address", "timeout_s") if k in data}
    if set(data) - set(extra):
        raise bad_request("unknown fields", {k: "unknown field; expected probe_address, timeout_s"
                                             for k in set(data) - set(extra)})
    try:
        conn = validate_connection({"protocol": m["protocol"], "ip_address": m["ip_address"], "port": m["port"],
                                    "protocol_config": redact(m["protocol_config"]), **extra},
                                   stored_config=m["protocol_config"])
    except ValidationError as exc:
        raise invalid(exc) from None
    return jsonify(_test(conn))


def _test(conn: dict) -> dict:
    return service.test_connection(conn["protocol"], conn["ip_address"], conn["port"], conn["protocol_config"],
                                   probe_address=conn["probe_address"], timeout_s=conn["timeout_s"],
                                   credentials=runtime().credentials)


@bp.post("/plc/test-connection/")
def test_new_connection():
    data = json_body()
    try:
        conn = validate_connection(data)
    except ValidationError as exc:
        raise invalid(exc) from None
    return jsonify(_test(conn))


@bp.post("/plc/machines/<key>/discover_tags/")
def discover_tags(key):
    pk = _machine_pk(key)
    data = json_body(optional=True)
    m = cs.get_machine(_engine(), pk)
    try:
        options = validate_discover_options(m["protocol"], data)
    except ValidationError as exc:
        raise invalid(exc) from None
    result = service.discover(m["protocol"], m["ip_address"], m["port"], m["protocol_config"],
                              credentials=runtime().credentials, **options)
    if not result["ok"]:
        if result["error"] == "invalid_input":
            raise bad_request(result["message"], result.get("fields"))
        raise DeviceError(result)
    return jsonify({"count": result["count"], "duration_ms": result["duration_ms"], "tags": result["tags"]})


class DeviceError(ApiError):
    """The PLC could not do what was asked: 502 with the error kind, the message and a suggestion."""

    def __init__(self, result: dict):
        super().__init__(502, result["error"], result["message"])
        self.suggestion = result.get("suggestion", "")


@bp.errorhandler(DeviceError)
def _device_error(exc: DeviceError):
    return jsonify({"error": exc.error, "message": exc.message, "suggestion": exc.suggestion}), 502


@bp.post("/plc/machines/<key>/reload_connection/")
def reload_connection(key):
    pk = _machine_pk(key)
    result = service.reload_collectors(runtime())
    m = public_machine(cs.get_machine(_engine(), pk))
    return jsonify({**result, "machine": m})


# --- the OpenAPI document ------------------------------------------------------------------------------------------

_PROTOCOL_CONFIG_DOC = (
    "Settings of the protocol; each is checked by the protocol's driver, and a bad one is named as "
    "protocol_config.<key>. ETHERNET_IP: slot (0-16), route ('1,0'), plc_family (ControlLogix, CompactLogix). "
    "S7: cpu_type (S7-300, S7-400, S7-1200, S7-1500), rack (0-7), slot (0-31), pdu_size (240-960). "
    "OPCUA: endpoint (opc.tcp://host:port/path), security_policy (None, Basic256Sha256, ...), security_mode (None, "
    "Sign, SignAndEncrypt), username, password, certificate, private_key (paths on the server). "
    "MODBUS: unit_id (0-255), byte_order and word_order (big, little), zero_based (true: HR0 is register 0). "
    "SPARKPLUG_B (ip_address and port are the MQTT broker's): group_id, edge_node_id, device_id (optional: the "
    "device's DBIRTH/DDATA metrics; else the node's), username, password, tls (true/false), tls_ca_file (a CA "
    "certificate's file name in the certificate folder), client_id, keepalive_s. MQTT (JSON topics; the broker's "
    "address and port): topic_filter (where discovery listens, default '#'), and the same username, password, tls, "
    "tls_ca_file, client_id, keepalive_s. "
    "A password is returned as '***'; send '***' back to keep the stored one.")

_TAG_PROPS = {
    "name": {"type": "string", "minLength": 1, "maxLength": 200},
    "address": {"type": "string", "minLength": 1, "maxLength": 255,
                "description": "ETHERNET_IP: a tag name (GoodCount, Program:Main.Step, Arr[2]); S7: DB1.DBD4, "
                               "DB1.DBX20.0, MW10; OPCUA: a NodeId (ns=2;s=Machine.GoodCount); MODBUS: HR0, IR3, C0, "
                               "DI1, 40001; SPARKPLUG_B: a metric name as the BIRTH gives it (Counts/Good); MQTT: a "
                               "topic, optionally with a JSON pointer after '#' (plant/line4/filler#/counts/good); "
                               "no wildcards"},
    "data_type": {"type": "string", "minLength": 1, "maxLength": 16,
                  "description": "in the protocol's names: DINT, REAL, BOOL (Logix, S7); Int32, Double, Boolean "
                                 "(OPC-UA); UINT16, UINT32, FLOAT32, BOOL (Modbus); INT32, UINT32, FLOAT, DOUBLE, "
                                 "BOOLEAN, STRING (Sparkplug B); BOOL, INT32, INT64, DOUBLE, STRING (MQTT)"},
    "role": {"type": ["string", "null"], "enum": [*TAG_ROLES, None],
             "description": "the canonical role the machine model reads, or null for a process value"},
    "scale": {"type": "number", "description": "value = raw * scale + offset; not 0"},
    "offset": {"type": "number"},
    "deadband": {"type": "number", "minimum": 0},
    "sampling_interval_ms": {"type": ["integer", "null"], "minimum": 100, "maximum": 3600000},
    "report_by_exception": {"type": "boolean"},
    "enabled": {"type": "boolean"},
    "options": {"type": ["object", "null"], "description": "e.g. {\"rollover\": 1000000} for a counter's modulus"},
}
TAG_INPUT = schema("TagInput", {"type": "object", "required": ["name", "address", "data_type"],
                                "properties": _TAG_PROPS})
TAG = schema("Tag", {"type": "object", "required": ["id", "name", "address", "data_type", "role"], "properties": {
    "id": {"type": "integer"}, **_TAG_PROPS,
    "value": {"description": "the latest value the collector read (null when none or bad)"},
    "quality": {"type": ["string", "null"], "enum": ["good", "uncertain", "bad", None]},
    "reason": {"type": ["string", "null"]}, "time": {"type": ["number", "null"], "description": "epoch seconds"}}})
TAG_PAGE = page_schema("TagPage", TAG)

_MACHINE_PROPS = {
    "name": {"type": "string", "minLength": 1, "maxLength": 200},
    "machine_id": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                   "description": "stable id, e.g. LINE-017"},
    "description": {"type": ["string", "null"], "maxLength": 2000},
    "ip_address": {"type": "string", "minLength": 1, "maxLength": 255,
                   "description": "IPv4 or IPv6 address or host name of the PLC (for OPCUA it may be left out "
                                  "when protocol_config.endpoint is given; for SPARKPLUG_B and MQTT the broker's)"},
    "port": {"type": ["integer", "null"], "minimum": 1, "maximum": 65535,
             "description": "default: 44818 (ETHERNET_IP), 102 (S7), 4840 (OPCUA), 502 (MODBUS), 1883 "
                            "(SPARKPLUG_B and MQTT: the broker's port; 8883 is usual with tls)"},
    "protocol": {"type": "string", "enum": list(PROTOCOLS),
                 "description": ", ".join(f"{k}: {v}" for k, v in PROTOCOL_LABELS.items())},
    "protocol_config": {"type": ["object", "null"], "description": _PROTOCOL_CONFIG_DOC},
    "poll_interval_ms": {"type": ["integer", "null"], "minimum": 100, "maximum": 3600000,
                         "description": "milliseconds between two reads (default 1000)"},
    "line": {"type": ["integer", "null"], "minimum": 1, "description": "id of a line (/api/config/lines/)"},
    "enabled": {"type": ["boolean", "null"], "description": "false: kept with its history, not polled"},
    "calendar": {"type": ["string", "integer", "null"], "minLength": 1, "maxLength": 100, "minimum": 1,
                 "description": "the machine's shift calendar by name (or id; answered as its name); null: the "
                                "line's calendar, else none (every hour is planned)"},
    "state_code_map": {"type": ["object", "string", "null"],
                       "propertyNames": {"pattern": "^-?[0-9]{1,10}$"},
                       "additionalProperties": {"type": "string", "enum": list(MACHINE_STATES)},
                       "description": "the PLC's state codes (text) to states, e.g. {\"1\": \"running\", \"3\": "
                                      "\"faulted\", \"7\": \"changeover\"}, or a preset's name ("
                                      + ", ".join(k for k, p in STATE_PRESETS.items() if p.codes)
                                      + "), answered as its codes; null: 1 running, 2 idle, 3 blocked, 4 faulted, "
                                        "5 planned_stop, 6 changeover"},
    "ideal_cycle_time_s": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 86400,
                           "description": "seconds per part at full speed when the product has none; null: none"},
    "micro_stop_threshold_s": {"type": ["number", "null"], "minimum": 0, "maximum": 86400,
                               "description": "stops shorter than this are minor stops (0: none); null: the site's, "
                                              "else 120"},
    "fault_codes": {"type": ["array", "null"], "maxItems": 5000, "description": (
        "what the PLC's fault codes mean: downtime shows '42 Jam at infeed'; kind is the state an active code "
        "gives (fault: faulted, planned_stop, changeover); null: none"),
        "items": {"type": "object", "required": ["code", "text"], "additionalProperties": False, "properties": {
            "code": {"type": "integer", "not": {"const": 0}, "minimum": -2147483648, "maximum": 2147483647},
            "text": {"type": "string", "minLength": 1, "maxLength": 200},
            "kind": {"type": "string", "enum": list(FAULT_KINDS)}}}},
}
MACHINE_INPUT = schema("MachineInput", {
    "type": "object", "required": ["name", "machine_id", "protocol", "ip_address"],
    "properties": {**_MACHINE_PROPS, "tags": {"type": "array", "items": TAG_INPUT,
                                              "description": "optional: the tags, saved with the machine"}}})
MACHINE_PATCH = schema("MachinePatch", {
    "type": "object", "description": "any fields of MachineInput; protocol_config is replaced as a whole",
    "properties": {**_MACHINE_PROPS, "tags": {"type": "array", "items": TAG_INPUT}}})


def _nullable(prop: dict) -> dict:
    """A response property that is null for a machine without a connection."""
    out = {k: v for k, v in prop.items() if k not in ("minLength", "pattern")}
    if isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    return out


_ERROR_OBJ = {"type": ["object", "null"], "properties": {"error": {"type": ["string", "null"]},
                                                         "message": {"type": "string"},
                                                         "suggestion": {"type": "string"}}}
MACHINE = schema("Machine", {
    "type": "object",
    "required": ["id", "machine_id", "name", "protocol", "ip_address", "port", "protocol_config", "enabled",
                 "state", "tag_count"],
    "properties": {
        "id": {"type": "integer"},
        **{k: _nullable(v) for k, v in _MACHINE_PROPS.items()},
        "description": {"type": "string"},
        "line_name": {"type": ["string", "null"], "description": "the line as Site/Area/Line"},
        "connection_id": {"type": ["integer", "null"]},
        "tag_count": {"type": "integer"},
        "state": {"type": "string", "description": "disabled, not_polled, config_error, connecting, failing, or the "
                                                   "machine's state: running, idle, blocked, faulted, planned_stop, "
                                                   "changeover, offline, unknown"},
        "connection_state": {"type": ["string", "null"]},
        "last_error": _ERROR_OBJ,
        "counts": {"type": ["object", "null"], "description": "parts counted since the collector started"},
        "effective_calendar": {"type": "object", "description": "read-only: the calendar in effect and where it "
                                                                 "comes from (from: machine, line, or null: none)",
                               "properties": {"id": {"type": ["integer", "null"]}, "name": {"type": ["string", "null"]},
                                              "from": {"type": ["string", "null"], "enum": ["machine", "line", None]},
                                              "text": {"type": "string"}}},
        "effective_micro_stop_threshold_s": {
            "type": "object", "description": "read-only: the threshold in effect and where it comes from",
            "properties": {"value": {"type": "number"},
                           "from": {"type": "string", "enum": ["machine", "site", "default"]}}},
    }})
MACHINE_PAGE = page_schema("MachinePage", MACHINE)
STEP = schema("DiagnosticStep", {"type": "object", "required": ["name", "ok", "duration_ms"], "properties": {
    "name": {"type": "string", "description": "tcp, handshake, identity, probe_read"},
    "ok": {"type": "boolean"}, "duration_ms": {"type": "number"}, "detail": {"type": "string"},
    "error": {"type": ["string", "null"]}, "suggestion": {"type": "string"}}})
TEST_RESULT = schema("TestResult", {"type": "object", "required": ["ok", "error", "steps"], "properties": {
    "ok": {"type": "boolean"},
    "error": {"type": ["string", "null"], "description": "cannot_connect, timeout, protocol_error, device_error, "
                                                         "invalid_address, auth_failed, invalid_input or unknown"},
    "error_text": {"type": ["string", "null"]}, "message": {"type": "string"},
    "suggestion": {"type": "string", "description": "what to try when a step failed"},
    "steps": {"type": "array", "items": STEP}, "identity": {"type": "object"},
    "duration_ms": {"type": "number"}}})
TEST_INPUT = schema("TestConnectionInput", {
    "type": "object", "required": ["protocol"],
    "properties": {k: _MACHINE_PROPS[k] for k in ("protocol", "ip_address", "port", "protocol_config")} | {
        "probe_address": {"type": ["string", "null"], "minLength": 1, "maxLength": 255,
                          "description": "a tag to read as the last step"},
        "timeout_s": {"type": ["number", "null"], "minimum": 0.2, "maximum": 30}}})
SAVED_TEST_INPUT = schema("SavedTestInput", {"type": "object", "properties": {
    "probe_address": {"type": ["string", "null"], "minLength": 1, "maxLength": 255},
    "timeout_s": {"type": ["number", "null"], "minimum": 0.2, "maximum": 30}}})
DISCOVERED = schema("DiscoveredTag", {"type": "object", "required": ["address", "data_type", "name", "children"],
                                      "properties": {
    "address": {"type": "string"}, "data_type": {"type": "string"}, "name": {"type": "string"},
    "description": {"type": "string"}, "writable": {"type": ["boolean", "null"]}, "value": {},
    "children": {"type": "array", "items": {"$ref": "#/components/schemas/DiscoveredTag"}}}})
DISCOVER_INPUT = schema("DiscoverInput", {"type": "object", "description": (
    "Options of the machine's protocol. ETHERNET_IP: program ('*' every program, null controller tags only), "
    "max_array_elements. OPCUA: root (NodeId), depth (1-10), limit, include_server, read_values, namespace_uris. "
    "S7: db_layouts {\"<db number>\": \"<CSV name,offset,type per line>\"}, max_dbs. MODBUS: table (HR, IR, C, DI), "
    "start, count (1-10000), unit. SPARKPLUG_B: wait_s (seconds to wait for the BIRTH after asking for a rebirth). "
    "MQTT: seconds (to listen, 0.5-30), topic_filter (default: the connection's), limit (topics)."), "properties": {
    "program": {"type": ["string", "null"]}, "max_array_elements": {"type": "integer", "minimum": 1},
    "root": {"type": "string"}, "depth": {"type": "integer", "minimum": 1, "maximum": 10},
    "limit": {"type": "integer", "minimum": 1}, "include_server": {"type": "boolean"},
    "read_values": {"type": "boolean"}, "namespace_uris": {"type": "boolean"},
    "db_layouts": {"type": "object", "additionalProperties": {"type": "string"}},
    "max_dbs": {"type": "integer", "minimum": 1},
    "table": {"type": "string", "enum": ["HR", "IR", "C", "DI"]}, "start": {"type": "integer", "minimum": 0},
    "count": {"type": "integer", "minimum": 1, "maximum": 10000}, "unit": {"type": "integer", "minimum": 0},
    "wait_s": {"type": "number", "minimum": 0.5, "maximum": 30},
    "seconds": {"type": "number", "minimum": 0.5, "maximum": 30}, "topic_filter": {"type": "string"}}})
DISCOVER_RESULT = schema("DiscoverResult", {"type": "object", "required": ["count", "tags"], "properties": {
    "count": {"type": "integer"}, "duration_ms": {"type": "number"},
    "tags": {"type": "array", "items": DISCOVERED}}})
DEVICE_ERROR = schema("DeviceError", {"type": "object", "required": ["error", "message"], "properties": {
    "error": {"type": "string"}, "message": {"type": "string"}, "suggestion": {"type": "string"}}})
RELOAD_RESULT = schema("ReloadResult", {"type": "object", "required": ["reloaded"], "properties": {
    "reloaded": {"type": "boolean"}, "changes": {"type": "object"}, "message": {"type": "string"},
    "machine": MACHINE}})
DELETED = schema("MachineDeleted", {"type": "object", "required": ["deleted", "message"], "properties": {
    "deleted": {"type": "object", "properties": {k: {"type": "integer"} for k in (
        "tags", "samples", "states", "counts", "downtime_events")}},
    "message": {"type": "string"}}})
TAGS_INPUT = {"oneOf": [{"type": "array", "items": TAG_INPUT},
                        {"type": "object", "required": ["tags"], "properties": {"tags": {"type": "array",
                                                                                         "items": TAG_INPUT}}}]}
KEY = [{"name": "id", "in": "path", "required": True, "description": "the machine's numeric id or its machine_id",
        "schema": {"type": "string"}}]
T = ["machines"]

describe("/api/plc/machines/", "get", {"summary": "List machines with their live state", "tags": T,
                                       "parameters": PAGE_PARAMETERS,
                                       "responses": {**ok("A page of machines", MACHINE_PAGE), **error_responses(400)}})
describe("/api/plc/machines/", "post", {
    "summary": "Create a machine (with its tags, optional); the collectors poll it at once", "tags": T,
    "requestBody": body(MACHINE_INPUT),
    "responses": {**ok("Created", MACHINE, 201), **error_responses(400)}})
describe("/api/plc/machines/{id}/", "get", {"summary": "One machine", "tags": T, "parameters": KEY,
                                            "responses": {**ok("The machine", MACHINE), **error_responses(404)}})
describe("/api/plc/machines/{id}/", "put", {
    "summary": "Replace a machine's settings (and its tags when 'tags' is given)", "tags": T, "parameters": KEY,
    "requestBody": body(MACHINE_INPUT), "responses": {**ok("Saved", MACHINE), **error_responses(400, 404)}})
describe("/api/plc/machines/{id}/", "patch", {
    "summary": "Change some of a machine's fields (enabled: false disables it and keeps its history)", "tags": T,
    "parameters": KEY, "requestBody": body(MACHINE_PATCH),
    "responses": {**ok("Saved", MACHINE), **error_responses(400, 404)}})
describe("/api/plc/machines/{id}/", "delete", {
    "summary": "Delete a machine with its connection, tags and all their history (samples, states, counts, "
               "downtime events); to keep the history, PATCH enabled: false instead", "tags": T, "parameters": KEY,
    "responses": {**ok("Deleted; what was removed", DELETED), **error_responses(404)}})
describe("/api/plc/machines/{id}/tags/", "get", {
    "summary": "The machine's tags with roles and their latest values", "tags": T,
    "parameters": KEY + PAGE_PARAMETERS, "responses": {**ok("The tags", TAG_PAGE), **error_responses(400, 404)}})
describe("/api/plc/machines/{id}/tags/", "put", {
    "summary": "Replace the tag list (a tag whose name stays keeps its id and history; a removed tag's history "
               "is deleted)", "tags": T, "parameters": KEY, "requestBody": body(TAGS_INPUT),
    "responses": {**ok("The tags now", TAG_PAGE), **error_responses(400, 404)}})
describe("/api/plc/machines/{id}/test_connection/", "post", {
    "summary": "Test the saved connection step by step", "tags": T, "parameters": KEY,
    "requestBody": body(SAVED_TEST_INPUT, required=False),
    "responses": {**ok("The diagnosis (ok false when a step failed)", TEST_RESULT), **error_responses(400, 404)}})
describe("/api/plc/machines/{id}/discover_tags/", "post", {
    "summary": "What the PLC offers: Logix tag list, OPC-UA browse, S7 data blocks (with layouts), Modbus scan",
    "tags": T, "parameters": KEY, "requestBody": body(DISCOVER_INPUT, required=False),
    "responses": {**ok("The tags found, as a tree", DISCOVER_RESULT), **error_responses(400, 404),
                  "502": {"description": "The PLC could not be reached or refused",
                          "content": {"application/json": {"schema": DEVICE_ERROR}}}}})
describe("/api/plc/machines/{id}/reload_connection/", "post", {
    "summary": "Make this process's collectors pick up the configuration now", "tags": T, "parameters": KEY,
    "responses": {**ok("Reloaded", RELOAD_RESULT), **error_responses(404)}})
describe("/api/plc/test-connection/", "post", {
    "summary": "Test a connection that is not saved yet", "tags": T, "requestBody": body(TEST_INPUT),
    "responses": {**ok("The diagnosis (ok false when a step failed)", TEST_RESULT), **error_responses(400)}})
