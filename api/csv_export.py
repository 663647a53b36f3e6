"""CSV exports under /export: OEE by bucket, tag history, downtime events and shift reports.

Every route answers a streamed CSV (see exports/csv_format.py for the cell rules) or, before the first byte, a JSON
error in the API's shape ({"error", "message", "fields"}) naming each bad parameter. Parameters common to all:

    start, end     ISO 8601 (an offset or Z; none: UTC) or epoch seconds; default: the 24 h before now
    tz             IANA time zone for the times written (America/Chicago); default: the plant's
    delimiter      , (default)  ;  or tab
    decimal        . (default) or ,  (not the same as the delimiter)
    bom            1: start with a UTF-8 byte order mark (Excel on Windows then reads UTF-8 correctly)

/export/oee.csv takes exactly the parameters of GET /api/oee/ (machine | line | area | site, bucket) and gives
the same numbers: one row per bucket, or one row for the range without a bucket. tz changes how times are
written, never where buckets fall (the plant's calendar, as in the API).
"""
from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from api import ApiError, bad_request, not_found, params
from api import oee as api_oee
from db import export_queries as q
from db.oee_queries import SCOPES, ScopeError, TooMuchData, oee_report
from exports.csv_format import DECIMALS, DELIMITERS, CsvFormat
from oee import RangeTooLong, TooManyBuckets
from oee.totals import Totals

log = logging.getLogger(__name__)
bp = Blueprint("export", __name__, url_prefix="/export")

FORMAT_PARAMS = {"tz", "delimiter", "decimal", "bom"}
RANGE_PARAMS = {"start", "end"}
OEE_PARAMS = set(api_oee.PARAMS)
TAG_PARAMS = {"tag", "machine", "resolution"} | RANGE_PARAMS
SCOPE_PARAMS = set(SCOPES) | RANGE_PARAMS
RESOLUTIONS = ("raw", "1m", "1h")
MAX_TAG_ROWS = 5_000_000  # an upper bound of the rows of one tag export (see export_queries.estimated_rows)
MAX_BUCKETS = api_oee.MAX_BUCKETS  # the API's limit, so that every export the API can answer gives its numbers

LOSS_KEYS = [s.key for s in Totals().waterfall() if s.kind == "loss"]
OEE_NUMBERS = ["availability", "performance", "quality", "oee", "utilization", "teep", "all_time_s",
               "planned_time_s", "run_time_s", "net_run_time_s", "fully_productive_time_s", "total_count",
               "good_count", "reject_count", "stop_count", "failure_count", "minor_stop_count",
               "startup_reject_count", "mtbf_s", "mttr_s"]


def loss_column(key: str) -> str:
    """'availability.equipment_failure' -> 'loss_availability_equipment_failure_s'."""
    return "loss_" + key.replace(".", "_") + "_s"


# warnings: the likely cause of each factor above 100 % (the flags say which), in words, for a spreadsheet reader
OEE_HEADER = ["start", "end", "bucket", "scope", "key", *OEE_NUMBERS, *map(loss_column, LOSS_KEYS), "flags",
              "warnings"]
SHIFT_HEADER = ["shift", "start", "end", "machine", "scope", "key", *OEE_NUMBERS, *map(loss_column, LOSS_KEYS),
                "flags", "warnings"]
RAW_HEADER = ["time", "machine", "tag_id", "tag", "value", "value_text", "quality", "reason"]
ROLLUP_HEADER = ["time", "machine", "tag_id", "tag", "n", "avg", "min", "max"]
DOWNTIME_HEADER = ["machine", "machine_name", "line", "start", "end", "duration_s", "in_range_s", "state",
                   "fault_code", "fault_name", "loss_category", "planned", "minor", "source", "reason_code",
                   "reason_name", "note", "split_from"]
QUALITY_NAMES = {0: "good", 1: "uncertain", 2: "bad"}


@bp.errorhandler(ApiError)
def _error(exc: ApiError):
    body = {"error": exc.error, "message": exc.message}
    if exc.fields:
        body["fields"] = exc.fields
    return jsonify(body), exc.status


@bp.get("/<path:_anything>")
def _no_such_export(_anything):
    raise not_found("no such export; use /export/oee.csv, /export/tags.csv, /export/downtime.csv, "
                    "/export/shift-report.csv or /export/audit.csv")


def _store():
    return current_app.extensions["oee"].store


# --- parameters ------------------------------------------------------------------------------------------------


check_unknown = params.unknown


def parse_format(args, default_tz: str) -> tuple[CsvFormat, bool]:
    fields = {}
    delimiter = DELIMITERS.get(args.get("delimiter", ","))
    if delimiter is None:
        fields["delimiter"] = "',' (default), ';' or 'tab'"
    decimal = DECIMALS.get(args.get("decimal", "."))
    if decimal is None:
        fields["decimal"] = "'.' (default) or ','"
    name = args.get("tz") or default_tz
    try:
        tz = timezone.utc if name.upper() in ("UTC", "Z") else ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        tz = None
        fields["tz"] = "an IANA time zone such as America/Chicago or Europe/Berlin, or UTC"
    bom = args.get("bom", "0")
    if bom not in ("0", "1", "true", "false"):
        fields["bom"] = "1 to start with a UTF-8 byte order mark, 0 (default) without"
    if not fields and delimiter == decimal:
        fields["decimal"] = f"not the delimiter {args.get('delimiter')!r}: use delimiter=; with decimal=,"
    if fields:
        raise bad_request(f"bad format parameter{'s' if len(fields) > 1 else ''}: {', '.join(sorted(fields))}",
                          fields)
    return CsvFormat(delimiter, decimal, tz), bom in ("1", "true")


def parse_range(args, kind: str) -> tuple[float, float]:
    """Like GET /api/oee/: default end now, start 24 h before it; checked by db.range_limits for this kind (an
    empty, inverted, future or too wide range is refused, naming the parameter)."""
    return params.time_range(args, kind, store=_store())


def parse_scope(args) -> tuple[str, str]:
    return params.scope(args)


def _scope_error(exc: ScopeError) -> ApiError:
    if "does not exist" in str(exc):
        return not_found(str(exc))
    return bad_request(str(exc), {exc.field: str(exc)})


# --- the response ----------------------------------------------------------------------------------------------


def _filename(kind: str, key: str, start: float, end: float) -> str:
    def stamp(t):
        return datetime.fromtimestamp(t, timezone.utc).strftime("%Y%m%dT%H%MZ")

    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", key).strip("-") or "export"
    return f"{kind}_{safe}_{stamp(start)}_{stamp(end)}.csv"


def csv_response(fmt: CsvFormat, bom: bool, header: list[str], rows: Iterable, filename: str) -> Response:
    """A streamed CSV. Past the first byte an error can no longer become a 400: it is logged and the transfer is
    cut short, so the client sees a failed download rather than a file that looks complete."""

    def body() -> Iterator[bytes]:
        if bom:
            yield b"\xef\xbb\xbf"
        try:
            yield from fmt.stream(header, rows)
        except GeneratorExit:  # the client went away: the cursor is closed on the way out
            raise
        except Exception:
            log.exception("export %s failed while streaming; the download was cut short", filename)
            raise

    resp = Response(body(), mimetype="text/csv")
    resp.headers["Content-Type"] = "text/csv; charset=utf-8"
    resp.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


# --- OEE ---------------------------------------------------------------------------------------------------------


def _oee_cells(fmt: CsvFormat, part: dict) -> list[str]:
    cell, num = fmt.cell, fmt.number
    losses = part.get("losses") or {}
    return ([num(part.get(k)) for k in OEE_NUMBERS] + [num(losses.get(k)) for k in LOSS_KEYS]
            + [cell(" ".join(part.get("flags") or ())),
               cell(" | ".join(w["text"] for w in part.get("warnings") or ()))])


def oee_rows(fmt: CsvFormat, report: dict) -> Iterator[list[str]]:
    head = [fmt.cell(report["scope"]), fmt.cell(report["key"])]
    parts = report.get("buckets")
    if parts is None:
        parts = [{**report, "label": ""}]
    for b in parts:
        yield [fmt.time(b["start"]), fmt.time(b["end"]), fmt.cell(b["label"]), *head, *_oee_cells(fmt, b)]


@bp.get("/oee.csv")
def oee_csv():
    args = request.args
    check_unknown(args, OEE_PARAMS | FORMAT_PARAMS, "/export/oee.csv")
    api_args = {k: args[k] for k in args if k in OEE_PARAMS}
    query = api_oee.parse_query(api_args)
    parse_format(args, "UTC")  # a bad format parameter is refused before the work
    report = api_oee.report(api_args)  # the API's own call: the same numbers, the same errors
    fmt, bom = parse_format(args, report["timezone"])
    return csv_response(fmt, bom, OEE_HEADER, oee_rows(fmt, report),
                        _filename(f"oee-{query['bucket'] or 'total'}", query["key"], query["start"], query["end"]))


# --- shift report ------------------------------------------------------------------------------------------------


def _shift_report(store, scope: str, key: str, start: float, end: float) -> dict:
    try:
        return oee_report(store, scope, key, start, end, bucket="shift", max_buckets=MAX_BUCKETS)
    except ScopeError as exc:
        raise _scope_error(exc) from None
    except TooManyBuckets:
        raise bad_request(f"more than {MAX_BUCKETS:,} shifts in {(end - start) / 86400:,.0f} days",
                          {"start": "a shorter range (a shift report covers at most "
                                    f"{MAX_BUCKETS:,} shifts); or /export/oee.csv with bucket=day"}) from None
    except (TooMuchData, RangeTooLong) as exc:
        raise bad_request(str(exc), {"start": str(exc)}) from None
    except ValueError as exc:
        raise bad_request(str(exc), {"machine" if scope == "machine" else scope: str(exc)}) from None


@bp.get("/shift-report.csv")
def shift_report_csv():
    """One row per shift and machine (the numbers of GET /api/oee/?machine=...&bucket=shift), then, for a line,
    area or site, one row per shift for the whole of it (machine empty)."""
    args = request.args
    check_unknown(args, SCOPE_PARAMS | FORMAT_PARAMS, "/export/shift-report.csv")
    scope, key = parse_scope(args)
    start, end = parse_range(args, "shift")
    parse_format(args, "UTC")
    store = _store()
    whole = _shift_report(store, scope, key, start, end)  # checks the scope, the calendar and the size first
    fmt, bom = parse_format(args, whole["timezone"])
    machines = [m["machine_id"] for m in whole["machines"]]

    def rows():
        for machine_id in machines:
            rep = whole if scope == "machine" else _shift_report(store, "machine", machine_id, start, end)
            yield from _shift_rows(fmt, rep, machine_id, "machine", machine_id)
        if scope != "machine":
            yield from _shift_rows(fmt, whole, "", scope, key)

    return csv_response(fmt, bom, SHIFT_HEADER, rows(), _filename("shift-report", key, start, end))


def _shift_rows(fmt: CsvFormat, report: dict, machine: str, scope: str, key: str) -> Iterator[list[str]]:
    for b in report.get("buckets") or ():
        yield [fmt.cell(b["label"]), fmt.time(b["start"]), fmt.time(b["end"]), fmt.cell(machine), fmt.cell(scope),
               fmt.cell(key), *_oee_cells(fmt, b)]


# --- tags --------------------------------------------------------------------------------------------------------


def _tag_ids(values: list[str]) -> list[int]:
    ids, bad = [], []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            pk = params.row_id(part)
            if pk is not None:
                ids.append(pk)
            else:
                bad.append(part)
    if bad:
        what = "is not a tag id" if len(bad) == 1 else "are not tag ids"
        raise bad_request(f"tag: {', '.join(map(repr, bad))} {what}",
                          {"tag": "tag ids (numbers), repeated (tag=3&tag=4) or separated by commas (tag=3,4)"})
    return ids


@bp.get("/tags.csv")
def tags_csv():
    """Tag history: raw samples, or the 1-minute / 1-hour rollups, of some tags (tag=3,4) or of a machine's
    (machine=LINE-001). Rows come tag after tag, each in time order."""
    args = request.args
    check_unknown(args, TAG_PARAMS | FORMAT_PARAMS, "/export/tags.csv")
    tag_values = args.getlist("tag")
    if bool(tag_values) == bool(args.get("machine")):
        raise bad_request("give either tag (one or more tag ids) or machine (all of its tags)",
                          {"tag": "tag ids, e.g. tag=3,4", "machine": "a machine_id, e.g. LINE-001"})
    resolution = params.text(args, "resolution", max_len=8) or "raw"
    if resolution not in RESOLUTIONS:
        raise bad_request(f"resolution: {resolution!r} is not a resolution",
                          {"resolution": "raw (every sample), 1m or 1h (rollups: n, avg, min, max)"})
    start, end = parse_range(args, resolution)
    store = _store()
    try:
        if tag_values:
            tags = q.resolve_tags(store, tag_ids=_tag_ids(tag_values))
        else:
            tags = q.resolve_tags(store, machine=params.text(args, "machine"))
    except q.TagLookupError as exc:
        raise ApiError(404, "not_found", str(exc), {"tag": str(exc)}) from None
    except ScopeError as exc:
        raise _scope_error(exc) from None
    if not tags:
        raise bad_request(f"machine {args['machine']!r} has no tags", {"machine": "a machine with tags"})
    estimate = q.estimated_rows(tags, start, end, resolution)
    if estimate > MAX_TAG_ROWS:
        raise bad_request(_too_many_rows(tags, start, end, resolution, estimate),
                          {"resolution" if resolution != "1h" else "start": _suggestion(resolution)})
    fmt, bom = parse_format(args, q.plant_timezone(store))
    key = args.get("machine") or "tags-" + "-".join(str(t.id) for t in tags[:5])
    header = RAW_HEADER if resolution == "raw" else ROLLUP_HEADER
    return csv_response(fmt, bom, header, _tag_rows(fmt, store, tags, start, end, resolution),
                        _filename(f"tags-{resolution}", key, start, end))


def _suggestion(resolution: str) -> str:
    return {"raw": "a coarser resolution (1m or 1h) or a shorter range",
            "1m": "a coarser resolution (1h) or a shorter range"}.get(resolution, "a shorter range")


def _too_many_rows(tags, start, end, resolution, estimate) -> str:
    days = (end - start) / 86400
    fits = days * MAX_TAG_ROWS / estimate
    return (f"{len(tags)} tag{'s' if len(tags) > 1 else ''} over {days:,.1f} days at resolution {resolution} could "
            f"be up to {estimate:,} rows; an export holds at most {MAX_TAG_ROWS:,}. Use {_suggestion(resolution)} "
            f"(about {fits:,.1f} days fit at {resolution}).")


def _tag_rows(fmt: CsvFormat, store, tags, start, end, resolution) -> Iterator[list]:
    cell, num, ftime = fmt.cell, fmt.number, fmt.time
    fixed = {t.id: (cell(t.machine), str(t.id), cell(t.name)) for t in tags}
    quality = QUALITY_NAMES
    for batch in q.tag_history(store, tags, start, end, resolution):
        if resolution == "raw":
            for t, tag_id, value, value_text, qual, reason in batch:
                m, i, n = fixed[tag_id]
                yield (ftime(t), m, i, n, num(value), cell(value_text), quality.get(qual, str(qual)), cell(reason))
        else:
            for t, tag_id, count, avg, lo, hi in batch:
                m, i, n = fixed[tag_id]
                yield (ftime(t), m, i, n, str(int(count)), num(avg), num(lo), num(hi))


# --- downtime ----------------------------------------------------------------------------------------------------

DOWNTIME_FILTERS = {"category", "reason", "minor", "planned", "min_duration_s"}
DOWNTIME_PARAMS = SCOPE_PARAMS | DOWNTIME_FILTERS


def _flag(args, name: str) -> bool:
    value = args.get(name, "1")
    if value not in ("0", "1", "true", "false"):
        raise bad_request(f"{name}: {value!r} is not 1 or 0", {name: "1 (include, the default) or 0 (leave out)"})
    return value in ("1", "true")


@bp.get("/downtime.csv")
def downtime_csv():
    """Downtime events that overlap the range, whole (an ongoing one has no end): the downtime page's list
    (db/downtime_queries.downtime_events: operators' reasons, notes and splits), machine after machine, oldest first.
    Scope: machine, line, area or site, or none for the whole plant. Filters as on the page: category (a loss
    category, or 'unassigned'), reason (a reason code), minor=0, planned=0, min_duration_s."""
    args = request.args
    check_unknown(args, DOWNTIME_PARAMS | FORMAT_PARAMS, "/export/downtime.csv")
    scope, key = params.scope(args, required=False) or ("site", None)
    start, end = parse_range(args, "downtime")
    try:
        min_duration = float(params.text(args, "min_duration_s", max_len=32) or 0)
    except ValueError:
        min_duration = math.nan
    if not 0 <= min_duration <= 366 * 86400:
        raise bad_request("min_duration_s: not a number of seconds",
                          {"min_duration_s": "seconds from 0 to a year, e.g. 120"})
    filters = {"category": params.text(args, "category"), "reason": params.text(args, "reason"),
               "include_minor": _flag(args, "minor"), "include_planned": _flag(args, "planned"),
               "min_duration_s": min_duration}
    store = _store()
    try:
        machines = q.all_machines(store) if key is None else q.scope_machines(store, scope, key)
    except ScopeError as exc:
        raise _scope_error(exc) from None
    fmt, bom = parse_format(args, q.plant_timezone(store))
    return csv_response(fmt, bom, DOWNTIME_HEADER, _downtime_rows(fmt, store, machines, start, end, filters),
                        _filename("downtime", key or "plant", start, end))


def _downtime_rows(fmt: CsvFormat, store, machines, start, end, filters) -> Iterator[list[str]]:
    from db.downtime_queries import downtime_events

    cell, num, ftime = fmt.cell, fmt.number, fmt.time
    for _pk, machine_id, _name in machines:  # one machine's events in memory at a time
        events = downtime_events(store, start, end, scope="machine", key=machine_id, reconcile=False, max_rows=None,
                                 **filters)
        for e in sorted(events, key=lambda d: d["start"]):
            yield [cell(e["machine_id"]), cell(e["machine_name"]), cell(e["line"]), ftime(e["start"]),
                   ftime(e["end"]), num(e["duration_s"]), num(e["in_range_s"]), cell(e["state"]),
                   num(e["fault_code"]), cell(e["fault_name"]), cell(e["loss_category"]), num(e["planned"]),
                   num(e["minor"]), cell(e["source"]), cell(e["reason_code"]), cell(e["reason_name"]),
                   cell(e["note"]), ftime(e["split_from"])]


# --- events (state changes, faults, alerts) -------------------------------------------------------------------------

EVENTS_HEADER = ["time", "kind", "machine", "machine_name", "state", "fault_code", "text", "end", "id"]
MAX_EVENT_ROWS = 10_000  # as GET /api/events/ reads at most; a narrower range gives the rest


@bp.get("/events.csv")
def events_csv():
    """GET /api/events/'s events of the range (default the last 24 h), newest first, at most MAX_EVENT_ROWS."""
    from api.alerts import parse_kinds, scope_of
    from db.faults import list_events

    args = request.args
    check_unknown(args, SCOPE_PARAMS | {"kind"} | FORMAT_PARAMS, "/export/events.csv")
    machines = scope_of(args)
    kinds = parse_kinds(args)
    start, end = params.time_range(args, "downtime")
    store = _store()
    fmt, bom = parse_format(args, q.plant_timezone(store))
    events = list_events(store.engine, machines, kinds=kinds, start=start, end=end, limit=MAX_EVENT_ROWS)

    def when(text):
        return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))

    rows = ([fmt.time(when(e["time"])), fmt.cell(e["kind"]), fmt.cell(e["machine_id"]), fmt.cell(e["machine_name"]),
             fmt.cell(e["state"]), fmt.number(e["fault_code"]), fmt.cell(e["text"]), fmt.time(when(e["end"])),
             fmt.number(e["id"])] for e in events)
    return csv_response(fmt, bom, EVENTS_HEADER, rows, _filename("events", "plant", start, end))


# --- the audit log ------------------------------------------------------------------------------------------------

AUDIT_HEADER = ["time", "actor", "action", "target", "source_ip", "changes", "before", "after", "id"]


@bp.get("/audit.csv")
def audit_csv():
    """The audit log (admins only: auth.rules), newest first, with the filters of GET /api/audit/ (actor,
    action, target, start, end). changes lists what differs (path: old -> new); before and after are the JSON
    of the entry, secrets '***' as stored."""
    from api.audit import parse_filters
    from db import audit

    args = request.args
    filters = parse_filters(args, extra=FORMAT_PARAMS, path="/export/audit.csv")
    fmt, bom = parse_format(args, q.plant_timezone(_store()))
    engine = _store().engine
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%MZ")
    return csv_response(fmt, bom, AUDIT_HEADER, _audit_rows(fmt, audit.iter_entries(engine, **filters)),
                        f"audit_{stamp}.csv")


def _audit_rows(fmt: CsvFormat, entries) -> Iterator[list[str]]:
    import json

    from db.audit import changes

    cell = fmt.cell

    def dump(value) -> str:
        return "" if value is None else json.dumps(value, sort_keys=True, ensure_ascii=False)

    for e in entries:
        diff = "; ".join(f"{path}: {json.dumps(old, ensure_ascii=False)} -> {json.dumps(new, ensure_ascii=False)}"
                         for path, old, new in changes(e["before"], e["after"]))
        yield [fmt.time(datetime.fromisoformat(e["time"].replace("Z", "+00:00"))), cell(e["actor"]),
               cell(e["action"]), cell(e["target"]), cell(e["source_ip"]), cell(diff), cell(dump(e["before"])),
               cell(dump(e["after"])), fmt.number(e["id"])]


def register(server: Flask) -> None:
    server.register_blueprint(bp)
