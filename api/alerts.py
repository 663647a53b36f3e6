"""Faults, events, alert rules and alerts.

    GET                     /api/faults/                 ?machine|line|area|site, active=1|0, start, end, page
    POST                    /api/faults/<id>/ack         who and when recorded (the first stands), audited
    GET                     /api/events/                 ?machine|line|area|site, kind=state,fault,alert, start
                                                          (default a week before end), end, limit (1..1000),
                                                          offset (limit + offset <= 10,000)
    GET, POST               /api/alerts/rules/           the body: config/alert_rules.py
    GET, PUT, PATCH, DELETE /api/alerts/rules/<id>/
    GET                     /api/alerts/                 ?state=active,acknowledged,resolved, rule, machine, page
    POST                    /api/alerts/<id>/ack

Viewers read; operators acknowledge; engineers write rules (auth/rules.py).
"""
from __future__ import annotations

import time

from flask import jsonify, request

from api import bad_request, bp, not_found, params, runtime
from api.openapi import describe, error_responses, schema
from api.plc import PAGE_PARAMETERS, body, invalid, json_body, ok, page_args, page_schema, paginated
from config import alert_rules as rules
from config.fields import ValidationError
from db import alerts as alert_store
from db import faults as fault_store
from db.export_queries import all_machines, scope_machines
from db.models import ALERT_KINDS, ALERT_STATES
from db.oee_queries import ScopeError

FAULT_PARAMS = {"machine", "line", "area", "site", "active", "start", "end", "page", "page_size"}
EVENT_PARAMS = {"machine", "line", "area", "site", "kind", "start", "end", "limit", "offset"}
ALERT_PARAMS = {"state", "rule", "machine", "page", "page_size"}
DEFAULT_EVENTS_S = 7 * 86400  # GET /api/events/ without a start: the week before end (or now)


def _engine():
    return runtime().store.engine


def _id(raw: str, what: str) -> int:
    pk = params.row_id(raw)
    if pk is None:
        raise not_found(f"no {what} with id {raw!r}; ids are whole numbers")
    return pk


def scope_of(args) -> list[tuple[int, str, str]] | None:
    """The machines of the scope asked for (None: no scope, the whole plant); 404 naming an unknown one."""
    given = params.scope(args, required=False)
    if given is None:
        return None
    try:
        return scope_machines(runtime().store, *given)
    except ScopeError as exc:
        if "does not exist" in str(exc):
            raise not_found(str(exc)) from None
        raise bad_request(str(exc), {exc.field: str(exc)}) from None


def _whole(args, name: str, lo: int, hi: int, default: int) -> int:
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or not lo <= int(raw) <= hi:
        raise bad_request(f"{name}: {raw[:40]!r} is not a whole number from {lo} to {hi}",
                          {name: f"a whole number from {lo} to {hi:,}"})
    return int(raw)


def _open_range(args) -> tuple[float | None, float | None]:
    """start and end, each optional (an open filter), checked as the downtime export checks its range."""
    return params.time_range(args, "downtime", required=False)


# --- faults -------------------------------------------------------------------------------------------------------


@bp.get("/faults/")
def list_faults():
    args = request.args
    params.unknown(args, FAULT_PARAMS, "/api/faults/")
    machines = scope_of(args)
    active = args.get("active")
    if active not in (None, "", "1", "0", "true", "false"):
        raise bad_request(f"active: {active[:40]!r} is not 1 or 0",
                          {"active": "1 (only active faults), 0 (only ended ones), or leave it out"})
    active = None if active in (None, "") else active in ("1", "true")
    start, end = _open_range(args)
    page, size, offset = page_args()
    total, rows = fault_store.list_faults(_engine(), machines if machines is not None else all_machines(
        runtime().store), active=active, start=start, end=end, offset=offset, limit=size)
    return jsonify(paginated(total, rows, page, size))


@bp.post("/faults/<pk>/ack")
def ack_fault(pk):
    try:
        return jsonify(fault_store.acknowledge_fault(_engine(), _id(pk, "fault")))
    except fault_store.NotFound as exc:
        raise not_found(str(exc)) from None


# --- events -------------------------------------------------------------------------------------------------------


def parse_kinds(args) -> tuple[str, ...]:
    raw = params.text(args, "kind")
    if raw is None:
        return fault_store.EVENT_KINDS
    kinds = tuple(k.strip() for k in raw.split(",") if k.strip())
    bad = [k for k in kinds if k not in fault_store.EVENT_KINDS]
    if bad or not kinds:
        raise bad_request(f"kind: {', '.join(bad) or raw!r} is not a kind of event",
                          {"kind": "state, fault or alert, or several comma-separated"})
    return kinds


@bp.get("/events/")
def list_events():
    args = request.args
    params.unknown(args, EVENT_PARAMS, "/api/events/")
    machines = scope_of(args)
    kinds = parse_kinds(args)
    start, end = _open_range(args)
    if start is None:  # no table of events has an index on time alone: a start keeps the read bounded
        start = (end if end is not None else time.time()) - DEFAULT_EVENTS_S
    limit = _whole(args, "limit", 1, fault_store.MAX_LIMIT, 100)
    offset = _whole(args, "offset", 0, fault_store.MAX_EVENT_WINDOW - limit, 0)
    rows = fault_store.list_events(_engine(), machines, kinds=kinds, start=start, end=end, offset=offset,
                                   limit=limit)
    nxt = None
    if len(rows) == limit and offset + 2 * limit <= fault_store.MAX_EVENT_WINDOW:
        from urllib.parse import urlencode

        nxt = f"{request.base_url}?{urlencode({**args.to_dict(), 'offset': offset + limit, 'limit': limit})}"
    return jsonify({"results": rows, "limit": limit, "offset": offset, "next": nxt})


# --- alert rules --------------------------------------------------------------------------------------------------


def _rule_or_404(pk: int) -> dict:
    try:
        return rules.get_rule(_engine(), pk)
    except rules.NotFound as exc:
        raise not_found(f"{exc}; see /api/alerts/rules/") from None


@bp.get("/alerts/rules/")
def list_rules():
    page, size, offset = page_args()
    total, rows = rules.list_rules(_engine(), offset=offset, limit=size)
    return jsonify(paginated(total, rows, page, size))


@bp.post("/alerts/rules/")
def create_rule():
    try:
        row = rules.create_rule(_engine(), json_body(), runtime().credentials)
    except ValidationError as exc:
        raise invalid(exc) from None
    resp = jsonify(row)
    resp.status_code = 201
    resp.headers["Location"] = f"{request.base_url}{row['id']}/"
    return resp


@bp.get("/alerts/rules/<pk>/")
def get_rule(pk):
    return jsonify(_rule_or_404(_id(pk, "alert rule")))


def _save(pk: str, partial: bool):
    pk = _id(pk, "alert rule")
    _rule_or_404(pk)
    try:
        return jsonify(rules.update_rule(_engine(), pk, json_body(), runtime().credentials, partial=partial))
    except ValidationError as exc:
        raise invalid(exc) from None
    except rules.NotFound as exc:
        raise not_found(str(exc)) from None


@bp.put("/alerts/rules/<pk>/")
def put_rule(pk):
    return _save(pk, False)


@bp.patch("/alerts/rules/<pk>/")
def patch_rule(pk):
    return _save(pk, True)


@bp.delete("/alerts/rules/<pk>/")
def delete_rule(pk):
    pk = _id(pk, "alert rule")
    try:
        rules.delete_rule(_engine(), pk)
    except rules.NotFound as exc:
        raise not_found(f"{exc}; see /api/alerts/rules/") from None
    return jsonify({"deleted": pk})


# --- alerts -------------------------------------------------------------------------------------------------------


@bp.get("/alerts/")
def list_alerts():
    args = request.args
    params.unknown(args, ALERT_PARAMS, "/api/alerts/")
    states = None
    raw = params.text(args, "state")
    if raw is not None:
        states = [s.strip() for s in raw.split(",") if s.strip()]
        if not states or any(s not in ALERT_STATES for s in states):
            raise bad_request(f"state: {raw[:40]!r} is not a state of an alert",
                              {"state": "active, acknowledged or resolved, or several comma-separated"})
    rule = params.text(args, "rule")
    rule_id = None
    if rule is not None:
        rule_id = _whole(args, "rule", 1, 2**31 - 1, 0)
    machines = None
    if params.text(args, "machine"):
        machines = [pk for pk, _mid, _name in scope_of({"machine": args["machine"]})]
    page, size, offset = page_args()
    total, rows = alert_store.list_alerts(_engine(), states=states, rule_id=rule_id, machine_ids=machines,
                                          offset=offset, limit=size)
    return jsonify(paginated(total, rows, page, size))


@bp.post("/alerts/<pk>/ack")
def ack_alert(pk):
    try:
        return jsonify(alert_store.acknowledge_alert(_engine(), _id(pk, "alert")))
    except alert_store.NotFound as exc:
        raise not_found(str(exc)) from None


# --- the OpenAPI document -------------------------------------------------------------------------------------------

_T = {"type": ["string", "null"], "format": "date-time"}
_SCOPE_PARAMS = [{"name": s, "in": "query", "required": False, "schema": {"type": "string"},
                  "description": f"only this {s} ({'its machine_id' if s == 'machine' else 'name or id'}); "
                                 "at most one of machine, line, area, site"} for s in ("machine", "line", "area", "site")]
_RANGE_PARAMS = [{"name": n, "in": "query", "required": False, "schema": {"type": "string"},
                  "description": "ISO 8601 or epoch seconds; optional"} for n in ("start", "end")]
_FAULT = schema("Fault", {"type": "object", "properties": {
    "id": {"type": "integer"}, "machine_id": {"type": "string"}, "machine_name": {"type": "string"},
    "code": {"type": ["integer", "null"]}, "text": {"type": "string", "description": "from the machine's fault table"},
    "start": _T, "end": _T, "duration_s": {"type": "number"}, "active": {"type": "boolean"},
    "acknowledged_by": {"type": ["string", "null"]}, "acknowledged_at": _T}})
_EVENT = schema("Event", {"type": "object", "properties": {
    "kind": {"enum": list(fault_store.EVENT_KINDS)}, "time": _T, "machine_id": {"type": ["string", "null"]},
    "machine_name": {"type": ["string", "null"]}, "state": {"type": "string"}, "fault_code": {"type": ["integer", "null"]},
    "product_code": {"type": ["string", "null"]}, "end": _T, "id": {"type": ["integer", "null"]},
    "text": {"type": "string"}}})
_RULE_PROPS = {
    "name": {"type": "string", "maxLength": 200}, "kind": {"enum": list(ALERT_KINDS)},
    "machine": {"type": "string"}, "line": {"type": ["string", "integer"]}, "area": {"type": ["string", "integer"]},
    "site": {"type": ["string", "integer"]},
    "for_s": {"type": "number", "minimum": 0, "maximum": rules.MAX_S, "description": "the delay"},
    "reset_s": {"type": "number", "minimum": 0, "maximum": rules.MAX_S},
    "threshold": {"type": ["number", "null"], "minimum": 0, "maximum": 1,
                  "description": "oee_below: a fraction (0.65 is 65 %)"},
    "metric": {"enum": list(rules.METRICS) + [None]}, "window": {"enum": list(rules.WINDOWS) + [None]},
    "webhook_url": {"type": ["string", "null"], "format": "uri"},
    "webhook_secret": {"type": "string", "minLength": 16, "maxLength": 200, "writeOnly": True},
    "email_to": {"type": "array", "items": {"type": "string", "format": "email"}, "maxItems": rules.MAX_EMAILS},
    "enabled": {"type": "boolean"}}
_RULE_IN = schema("AlertRuleInput", {"type": "object", "required": ["name", "kind"], "properties": _RULE_PROPS,
                                     "description": "exactly one of machine, line, area, site (connection_failing "
                                                    "and writer_spooling may have none)"})
_RULE = schema("AlertRule", {"type": "object", "properties": {
    "id": {"type": "integer"}, **{k: v for k, v in _RULE_PROPS.items() if k != "webhook_secret"},
    "webhook_secret_set": {"type": "boolean"}, "last_sent": _T, "last_error": {"type": ["string", "null"]},
    "last_error_at": _T}})
_ALERT = schema("Alert", {"type": "object", "properties": {
    "id": {"type": "integer"}, "rule_id": {"type": "integer"}, "rule": {"type": "string"},
    "subject": {"type": "string"}, "machine_id": {"type": ["string", "null"]}, "state": {"enum": list(ALERT_STATES)},
    "message": {"type": "string"}, "started_at": _T, "acknowledged_by": {"type": ["string", "null"]},
    "acknowledged_at": _T, "resolved_at": _T}})
_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}]

describe("/api/faults/", "get", {
    "summary": "Faults of machines, newest first", "tags": ["faults"],
    "parameters": _SCOPE_PARAMS + _RANGE_PARAMS + [
        {"name": "active", "in": "query", "required": False, "schema": {"enum": ["1", "0"]},
         "description": "1: only active faults; 0: only ended ones"}] + PAGE_PARAMETERS,
    "responses": {**ok("A page of faults", page_schema("FaultPage", _FAULT)), **error_responses(400, 404)}})
describe("/api/faults/{id}/ack", "post", {
    "summary": "Acknowledge a fault (operators); the first acknowledgement stands", "tags": ["faults"],
    "parameters": _ID, "responses": {**ok("The fault", _FAULT), **error_responses(404)}})
describe("/api/events/", "get", {
    "summary": "State changes, faults and alerts, newest first", "tags": ["events"],
    "parameters": _SCOPE_PARAMS + _RANGE_PARAMS + [
        {"name": "kind", "in": "query", "required": False, "schema": {"type": "string"},
         "description": "state, fault, alert (comma-separated; default all)"},
        {"name": "limit", "in": "query", "required": False,
         "schema": {"type": "integer", "minimum": 1, "maximum": fault_store.MAX_LIMIT}},
        {"name": "offset", "in": "query", "required": False,
         "schema": {"type": "integer", "minimum": 0, "maximum": fault_store.MAX_EVENT_WINDOW}}],
    "responses": {**ok("Events", schema("EventPage", {"type": "object", "properties": {
        "results": {"type": "array", "items": _EVENT}, "limit": {"type": "integer"}, "offset": {"type": "integer"},
        "next": {"type": ["string", "null"]}}})), **error_responses(400, 404)}})
describe("/api/alerts/rules/", "get", {"summary": "Alert rules", "tags": ["alerts"], "parameters": PAGE_PARAMETERS,
                                       "responses": ok("A page of rules", page_schema("AlertRulePage", _RULE))})
describe("/api/alerts/rules/", "post", {
    "summary": "Create an alert rule (engineers)", "tags": ["alerts"], "requestBody": body(_RULE_IN),
    "responses": {**ok("The rule", _RULE, 201), **error_responses(400)}})
describe("/api/alerts/rules/{id}/", "get", {"summary": "An alert rule", "tags": ["alerts"], "parameters": _ID,
                                            "responses": {**ok("The rule", _RULE), **error_responses(404)}})
for _method, _summary in (("put", "Replace an alert rule"), ("patch", "Change fields of an alert rule")):
    describe("/api/alerts/rules/{id}/", _method, {
        "summary": _summary + " (engineers)", "tags": ["alerts"], "parameters": _ID, "requestBody": body(_RULE_IN),
        "responses": {**ok("The rule", _RULE), **error_responses(400, 404)}})
describe("/api/alerts/rules/{id}/", "delete", {
    "summary": "Delete an alert rule and its alerts (engineers)", "tags": ["alerts"], "parameters": _ID,
    "responses": {**ok("Deleted", {"type": "object", "properties": {"deleted": {"type": "integer"}}}),
                  **error_responses(404)}})
describe("/api/alerts/", "get", {
    "summary": "Alerts, newest first", "tags": ["alerts"],
    "parameters": [{"name": "state", "in": "query", "required": False, "schema": {"type": "string"},
                    "description": "active, acknowledged, resolved (comma-separated)"},
                   {"name": "rule", "in": "query", "required": False, "schema": {"type": "integer"}},
                   {"name": "machine", "in": "query", "required": False, "schema": {"type": "string"}}]
    + PAGE_PARAMETERS,
    "responses": {**ok("A page of alerts", page_schema("AlertPage", _ALERT)), **error_responses(400, 404)}})
describe("/api/alerts/{id}/ack", "post", {
    "summary": "Acknowledge an alert (operators)", "tags": ["alerts"], "parameters": _ID,
    "responses": {**ok("The alert", _ALERT), **error_responses(404)}})
