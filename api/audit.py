"""/api/audit/: the audit log, newest first (admins only: auth.rules).

    GET /api/audit/?actor=&action=&target=&start=&end=&page=&page_size=

actor and target match text within (case-insensitive); action is exact (machine.update) or a prefix before a dot
(machine: machine.create, machine.update, ...); start and end are ISO 8601 or epoch seconds (end exclusive), both
optional. The same filters serve /export/audit.csv and the page /settings/audit/. Secrets in before/after were
masked ('***') when the entry was written.
"""
from __future__ import annotations

from datetime import datetime, timezone

from flask import jsonify, request

from api import bp, params, runtime
from api.openapi import describe, error_responses, schema
from api.plc import PAGE_PARAMETERS, ok, page_args, page_schema, paginated
from db import audit

FILTERS = ("actor", "action", "target", "start", "end")
MAX_TEXT = 200


def parse_filters(args, *, extra: set[str] = frozenset(), path: str = "/api/audit/") -> dict:
    """The filters of the audit log from query arguments, for db.audit.list_entries/iter_entries. Raises ApiError
    (400) naming each bad argument."""
    params.unknown(args, set(FILTERS) | set(extra), path)
    out: dict = {}
    for key in ("actor", "action", "target"):
        value = params.text(args, key, max_len=MAX_TEXT)
        if value:
            out[key] = value
    start, end = params.time_range(args, "audit", required=False)
    for key, value in (("since", start), ("until", end)):
        if value is not None:
            out[key] = datetime.fromtimestamp(value, timezone.utc)
    return out


@bp.get("/audit/")
def list_audit():
    filters = parse_filters(request.args, extra={"page", "page_size"})
    page, size, offset = page_args()
    total, rows = audit.list_entries(runtime().store.engine, offset=offset, limit=size, **filters)
    return jsonify(paginated(total, rows, page, size))


ENTRY = schema("AuditEntry", {"type": "object", "required": ["id", "time", "actor", "action", "target"],
                              "properties": {
    "id": {"type": "integer"},
    "time": {"type": "string", "format": "date-time", "description": "UTC"},
    "actor": {"type": "string", "description": "a user name, token:<user>/<name>, embed:..., anonymous or system"},
    "action": {"type": "string", "description": "e.g. machine.create, machine.update, machine.delete, "
                                                "machine.tags.update, settings.product.update, settings.import, "
                                                "downtime.update, downtime.split, user.create, token.revoke"},
    "target": {"type": "string", "description": "what changed, e.g. machine LINE-017"},
    "before": {"type": ["object", "null"], "description": "what it was (secrets '***')"},
    "after": {"type": ["object", "null"], "description": "what it became (secrets '***')"},
    "source_ip": {"type": ["string", "null"]}}})
FILTER_PARAMETERS = [
    {"name": "actor", "in": "query", "required": False, "description": "text within the actor",
     "schema": {"type": "string", "maxLength": MAX_TEXT}},
    {"name": "action", "in": "query", "required": False,
     "description": "an action (machine.update) or its prefix before a dot (machine)",
     "schema": {"type": "string", "maxLength": MAX_TEXT}},
    {"name": "target", "in": "query", "required": False, "description": "text within the target",
     "schema": {"type": "string", "maxLength": MAX_TEXT}},
    {"name": "start", "in": "query", "required": False, "description": "from (ISO 8601 or epoch seconds)",
     "schema": {"type": "string"}},
    {"name": "end", "in": "query", "required": False, "description": "until, exclusive (ISO 8601 or epoch seconds)",
     "schema": {"type": "string"}},
]
describe("/api/audit/", "get", {
    "summary": "The audit log, newest first: configuration changes (before and after) and PLC writes (admins)",
    "tags": ["audit"], "parameters": FILTER_PARAMETERS + PAGE_PARAMETERS,
    "responses": {**ok("A page of entries", page_schema("AuditPage", ENTRY)), **error_responses(400)}})
