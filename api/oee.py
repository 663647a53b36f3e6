"""GET /api/oee/: OEE with its losses for a machine, line, area or site over a range, optionally bucketed."""
from __future__ import annotations

from flask import jsonify, request

from api import bad_request, bp, not_found, params, runtime
from api.openapi import describe, error_responses, schema
from db.oee_queries import ScopeError, TooMuchData, oee_report
from oee import RangeTooLong, TooManyBuckets

PARAMS = {"machine", "line", "area", "site", "start", "end", "bucket"}
BUCKETS = ("hour", "shift", "day")
MAX_BUCKETS = 1000
DEFAULT_RANGE_S = params.DEFAULT_RANGE_S


def parse_query(args) -> dict:
    params.unknown(args, PARAMS, "/api/oee/")
    scope, key = params.scope(args)
    bucket = params.text(args, "bucket", max_len=16)
    if bucket is not None and bucket not in BUCKETS:
        raise bad_request(f"bucket: {bucket!r} is not a bucket", {"bucket": "hour, shift or day (or leave it out)"})
    start, end = params.time_range(args, bucket or "total", store=runtime().store)
    return {"scope": scope, "key": key, "start": start, "end": end, "bucket": bucket}


def report(args) -> dict:
    q = parse_query(args)
    try:
        return oee_report(runtime().store, q["scope"], q["key"], q["start"], q["end"], bucket=q["bucket"],
                          max_buckets=MAX_BUCKETS)
    except ScopeError as exc:
        if "does not exist" in str(exc):
            raise not_found(str(exc)) from None
        raise bad_request(str(exc), {exc.field: str(exc)}) from None
    except TooManyBuckets:
        hours = (q["end"] - q["start"]) / 3600
        raise bad_request(
            f"bucket: {q['bucket']} buckets over {hours:,.0f} hours would be more than {MAX_BUCKETS:,} rows",
            {"bucket": "a coarser bucket (shift or day) or a shorter range"}) from None
    except (TooMuchData, RangeTooLong) as exc:
        raise bad_request(str(exc), {"start": f"{exc}"}) from None
    except ValueError as exc:
        raise bad_request(str(exc), {"bucket" if "bucket" in str(exc) else "start": str(exc)}) from None


@bp.get("/oee/")
def get_oee():
    return jsonify(report(request.args))


_RESULT = schema("OeeReport", {
    "type": "object",
    "required": ["availability", "performance", "quality", "oee", "planned_time_s", "run_time_s", "total_count",
                 "good_count", "reject_count", "losses", "flags", "start", "end", "machines"],
    "properties": {
        "availability": {"type": ["number", "null"], "description": "fraction, 1.0 = 100 %; never capped"},
        "performance": {"type": ["number", "null"]},
        "quality": {"type": ["number", "null"]},
        "oee": {"type": ["number", "null"]},
        "planned_time_s": {"type": "number"},
        "run_time_s": {"type": "number"},
        "total_count": {"type": "number"},
        "good_count": {"type": "number"},
        "reject_count": {"type": "number"},
        "losses": {"type": "object", "additionalProperties": {"type": ["number", "null"]}},
        "waterfall": {"type": "array", "items": {"type": "object"}},
        "flags": {"type": "array", "items": {"type": "string"},
                  "description": "e.g. performance_above_100 (oee/README.md, section 3)"},
        "warnings": {"type": "array", "description": "each factor above 100 %, with its likely cause in words",
                     "items": {"type": "object", "required": ["flag", "factor", "value", "text"], "properties": {
                         "flag": {"type": "string"}, "factor": {"type": "string"}, "value": {"type": "number"},
                         "text": {"type": "string"}}}},
        "mtbf_s": {"type": ["number", "null"]},
        "mttr_s": {"type": ["number", "null"]},
        "start": {"type": "number"},
        "end": {"type": "number"},
        "machines": {"type": "array", "items": {"type": "object"}},
        "buckets": {"type": "array", "items": {"type": "object"}},
    },
})

describe("/api/oee/", "get", {
    "summary": "OEE, its factors and its losses over a range",
    "description": "Exactly one of machine, line, area, site. Times and counts are summed over machines and "
                   "buckets, then divided: percentages are never averaged.",
    "parameters": [
        {"name": "machine", "in": "query", "schema": {"type": "string"}, "description": "machine_id, e.g. LINE-001"},
        {"name": "line", "in": "query", "schema": {"type": "string"}, "description": "line name or id"},
        {"name": "area", "in": "query", "schema": {"type": "string"}, "description": "area name or id"},
        {"name": "site", "in": "query", "schema": {"type": "string"}, "description": "site name or id"},
        {"name": "start", "in": "query", "schema": {"type": "string"},
         "description": "ISO 8601 (UTC without an offset) or epoch seconds; default end - 24 h. At most 1,000 hours "
                        "before end with bucket=hour, 333 days with shift, 1,000 days with day or no bucket"},
        {"name": "end", "in": "query", "schema": {"type": "string"},
         "description": "default now; at most a day after now, and after the first recorded data"},
        {"name": "bucket", "in": "query", "schema": {"type": "string", "enum": list(BUCKETS)}},
    ],
    "responses": {"200": {"description": "OEE report", "content": {"application/json": {"schema": _RESULT}}},
                  **error_responses(400, 404)},
})
