"""/api/config/: the plant's settings (hierarchy, products, reason codes, shift calendars) and the whole
configuration as one YAML document.

    GET, POST               /api/config/{kind}/          kind: sites, areas, lines, products, reasons, calendars
    GET, PUT, PATCH, DELETE /api/config/{kind}/{id}/
    GET                     /api/config/export           YAML (or ?format=json); passwords read '***'
    POST                    /api/config/import           YAML or JSON; ?dry_run=true checks without saving

The same validation as the pages (config.validation); each write is one transaction (config.store). An import
is validated whole first: a file with any error changes nothing and its errors are named by their path in it.
"""
from __future__ import annotations

import yaml
from flask import Response, jsonify, request

from api import bad_request, bp, not_found, params, runtime
from api.openapi import describe, error_responses, schema
from api.plc import PAGE_PARAMETERS, body, invalid, json_body, ok, page_args, page_schema, paginated
from collectors import service
from config import plant_items
from config import store as cs
from config.admin import import_text
from config.fields import ValidationError
from db.models import LOSS_CATEGORIES, PLANNED_CATEGORIES

VALIDATORS = {"sites": plant_items.validate_site, "areas": plant_items.validate_area,
              "lines": plant_items.validate_line, "products": plant_items.validate_product,
              "reasons": plant_items.validate_reason, "calendars": plant_items.validate_calendar}
EDITABLE = {"sites": ("name", "timezone", "micro_stop_threshold_s"), "areas": ("name", "site"),
            "lines": ("name", "area", "calendar"),
            "products": ("code", "name", "ideal_cycle_time_s"), "reasons": ("code", "name", "planned", "loss_category"),
            "calendars": ("name", "timezone", "shifts")}
MAX_IMPORT_BYTES = 5 * 1024 * 1024


def _engine():
    return runtime().store.engine


def _pk(kind: str, raw: str) -> int:
    pk = params.row_id(raw)
    if pk is None:
        raise not_found(f"no {cs.KINDS[kind].label} with id {raw!r}; ids are whole numbers, see /api/config/{kind}/")
    return pk


def _get(kind: str, pk: int) -> dict:
    try:
        return cs.get_item(_engine(), kind, pk)
    except cs.NotFound as exc:
        raise not_found(f"{exc}; see /api/config/{kind}/") from None


def _route(kind: str) -> None:
    validate = VALIDATORS[kind]

    def list_view():
        page, size, offset = page_args()
        total, rows = cs.list_items(_engine(), kind, offset=offset, limit=size)
        return jsonify(paginated(total, rows, page, size))

    def create_view():
        try:
            row = cs.create_item(_engine(), kind, validate(json_body()))
        except ValidationError as exc:
            raise invalid(exc) from None
        resp = jsonify(row)
        resp.status_code = 201
        resp.headers["Location"] = f"{request.base_url}{row['id']}/"
        return resp

    def get_view(pk: str):
        return jsonify(_get(kind, _pk(kind, pk)))

    def save(pk: int, data: dict):
        try:
            return jsonify(cs.update_item(_engine(), kind, pk, validate(data)))
        except ValidationError as exc:
            raise invalid(exc) from None

    def put_view(pk: str):
        pk = _pk(kind, pk)
        _get(kind, pk)
        return save(pk, json_body())

    def patch_view(pk: str):
        pk = _pk(kind, pk)
        current = _get(kind, pk)
        return save(pk, {**{k: current[k] for k in EDITABLE[kind]}, **json_body()})

    def delete_view(pk: str):
        pk = _pk(kind, pk)
        _get(kind, pk)
        impact = cs.delete_item(_engine(), kind, pk)
        if impact.get("machines_unassigned"):
            service.reload_collectors(runtime())
        return jsonify({"deleted": pk, "impact": impact})

    base = f"/config/{kind}/"
    bp.add_url_rule(base, f"{kind}_list", list_view, methods=["GET"])
    bp.add_url_rule(base, f"{kind}_create", create_view, methods=["POST"])
    bp.add_url_rule(base + "<pk>/", f"{kind}_get", get_view, methods=["GET"])
    bp.add_url_rule(base + "<pk>/", f"{kind}_put", put_view, methods=["PUT"])
    bp.add_url_rule(base + "<pk>/", f"{kind}_patch", patch_view, methods=["PATCH"])
    bp.add_url_rule(base + "<pk>/", f"{kind}_delete", delete_view, methods=["DELETE"])


for _kind in VALIDATORS:
    _route(_kind)


@bp.get("/config/export")
def export_config():
    fmt = request.args.get("format", "yaml")
    if fmt not in ("yaml", "json"):
        raise bad_request("invalid query parameters", {"format": "yaml (default) or json"})
    doc = cs.export_document(_engine())
    if fmt == "json":
        return jsonify(doc)
    text = ("# OEE configuration: import with POST /api/config/import or on /settings/.\n"
            "# Passwords are not exported ('***'); an import keeps the stored one of an existing machine.\n"
            + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return Response(text, mimetype="application/yaml",
                    headers={"Content-Disposition": "attachment; filename=oee-config.yaml"})


@bp.post("/config/import")
def import_config():
    dry = request.args.get("dry_run", "false")
    if dry not in ("true", "false", "1", "0"):
        raise bad_request("invalid query parameters", {"dry_run": "true or false"})
    if request.content_length and request.content_length > MAX_IMPORT_BYTES:
        raise bad_request("the file is too large", {"body": f"at most {MAX_IMPORT_BYTES} bytes"})
    raw = request.get_data()
    try:
        result = import_text(raw, _engine(), backend=runtime().store.backend_name, dry_run=dry in ("true", "1"),
                             credentials=runtime().credentials)
    except ValidationError as exc:
        raise invalid(exc) from None
    if result["applied"]:
        result["collectors"] = service.reload_collectors(runtime())
    return jsonify(result)


# --- the OpenAPI document ------------------------------------------------------------------------------------------

_TIME = {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$", "description": "HH:MM, 24 h"}
_ID = {"type": "integer"}
SCHEMAS = {
    "sites": {"name": {"type": "string", "minLength": 1, "maxLength": 100},
              "timezone": {"type": "string", "description": "IANA time zone, e.g. America/Chicago (default UTC)"},
              "micro_stop_threshold_s": {"type": ["number", "null"], "minimum": 0, "maximum": 86400,
                                         "description": "its machines' micro-stop threshold where they have none "
                                                        "(stops shorter are minor stops; 0: none); null: 120"}},
    "areas": {"name": {"type": "string", "minLength": 1, "maxLength": 100}, "site": {**_ID, "minimum": 1}},
    "lines": {"name": {"type": "string", "minLength": 1, "maxLength": 100}, "area": {**_ID, "minimum": 1},
              "calendar": {"type": ["string", "integer", "null"], "minLength": 1, "maxLength": 100, "minimum": 1,
                           "description": "the shift calendar of its machines that have none of their own, by name "
                                          "(or id; answered as its name); null: none"}},
    "products": {"code": {"type": "string", "minLength": 1, "maxLength": 64},
                 "name": {"type": ["string", "null"], "maxLength": 200},
                 "ideal_cycle_time_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 86400,
                                        "description": "seconds per unit at full speed"}},
    "reasons": {"code": {"type": "string", "minLength": 1, "maxLength": 64},
                "name": {"type": "string", "minLength": 1, "maxLength": 200},
                "planned": {"type": "boolean", "description": "planned stops come off the planned time"},
                "loss_category": {"type": "string", "enum": [*LOSS_CATEGORIES, *PLANNED_CATEGORIES],
                                  "description": f"planned false: {', '.join(LOSS_CATEGORIES)}; planned true: "
                                                 f"{', '.join(PLANNED_CATEGORIES)}"}},
    "calendars": {"name": {"type": "string", "minLength": 1, "maxLength": 100},
                  "timezone": {"type": "string"},
                  "shifts": {"type": "array", "items": {"type": "object", "required": ["name", "start", "end"],
                                                        "properties": {
                      "name": {"type": "string", "minLength": 1, "maxLength": 64}, "start": _TIME, "end": _TIME,
                      "weekdays": {"type": "string", "pattern": "^[0-6]{1,7}$",
                                   "description": "days it runs, Monday = 0, e.g. 01234"},
                      "breaks": {"type": "array", "items": {"type": "object", "required": ["start", "duration_s"],
                                                            "properties": {
                          "name": {"type": "string"}, "start": _TIME,
                          "duration_s": {"type": "integer", "minimum": 60, "maximum": 28800}}}}}}}},
}
REQUIRED = {"sites": ["name"], "areas": ["name", "site"], "lines": ["name", "area"],
            "products": ["code", "ideal_cycle_time_s"], "reasons": ["code", "name", "loss_category"],
            "calendars": ["name"]}
OUTPUT_EXTRA = {"areas": {"site_name": {"type": "string"}},
                "lines": {"area_name": {"type": "string"}, "site_name": {"type": "string"},
                          "path": {"type": "string", "description": "Site/Area/Line"}}}
NAMES = {"sites": "Site", "areas": "Area", "lines": "Line", "products": "Product", "reasons": "ReasonCode",
         "calendars": "ShiftCalendar"}

for _kind, _props in SCHEMAS.items():
    _name = NAMES[_kind]
    _in = schema(f"{_name}Input", {"type": "object", "required": REQUIRED[_kind], "properties": _props})
    _patch = schema(f"{_name}Patch", {"type": "object", "properties": _props})
    _out = schema(_name, {"type": "object", "required": ["id", *REQUIRED[_kind]],
                          "properties": {"id": _ID, **_props, **OUTPUT_EXTRA.get(_kind, {})}})
    _page = page_schema(f"{_name}Page", _out)
    _deleted = {"type": "object", "required": ["deleted", "impact"],
                "properties": {"deleted": _ID, "impact": {"type": "object", "description": "what went with it"}}}
    _key = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}]
    _tags = ["plant settings"]
    describe(f"/api/config/{_kind}/", "get", {"summary": f"List {_kind}", "tags": _tags,
                                              "parameters": PAGE_PARAMETERS,
                                              "responses": {**ok("A page", _page), **error_responses(400)}})
    describe(f"/api/config/{_kind}/", "post", {"summary": f"Create a {_name}", "tags": _tags,
                                               "requestBody": body(_in),
                                               "responses": {**ok("Created", _out, 201), **error_responses(400)}})
    describe(f"/api/config/{_kind}/{{id}}/", "get", {"summary": f"One {_name}", "tags": _tags, "parameters": _key,
                                                     "responses": {**ok("Found", _out), **error_responses(404)}})
    describe(f"/api/config/{_kind}/{{id}}/", "put", {"summary": f"Replace a {_name}", "tags": _tags,
                                                     "parameters": _key, "requestBody": body(_in),
                                                     "responses": {**ok("Saved", _out), **error_responses(400, 404)}})
    describe(f"/api/config/{_kind}/{{id}}/", "patch", {"summary": f"Change some fields of a {_name}",
                                                       "tags": _tags, "parameters": _key, "requestBody": body(_patch),
                                                       "responses": {**ok("Saved", _out),
                                                                     **error_responses(400, 404)}})
    describe(f"/api/config/{_kind}/{{id}}/", "delete", {
        "summary": f"Delete a {_name} (a site takes its areas and lines; machines stay, without a line)",
        "tags": _tags, "parameters": _key,
        "responses": {"200": {"description": "Deleted", "content": {"application/json": {"schema": _deleted}}},
                      **error_responses(404)}})

DOCUMENT = schema("ConfigDocument", {
    "type": "object", "description": "The whole configuration: names instead of ids; a machine's line is "
                                     "'Site/Area/Line'; passwords read '***'",
    "properties": {"version": {"type": "integer", "enum": [1]},
                   "sites": {"type": "array", "items": {"type": "object"}},
                   "products": {"type": "array", "items": {"type": "object"}},
                   "reason_codes": {"type": "array", "items": {"type": "object"}},
                   "calendars": {"type": "array", "items": {"type": "object"}},
                   "machines": {"type": "array", "items": {"type": "object"}}}})
IMPORT_RESULT = schema("ImportResult", {"type": "object", "required": ["valid", "applied"], "properties": {
    "valid": {"type": "boolean"}, "applied": {"type": "boolean"},
    "document": {"type": "object", "description": "how many of each kind the file holds"},
    "summary": {"type": ["object", "null"], "description": "created and updated per kind"},
    "collectors": {"type": "object"}}})
describe("/api/config/export", "get", {
    "summary": "The whole configuration as one document (YAML, or JSON with format=json); passwords read '***'",
    "tags": ["plant settings"],
    "parameters": [{"name": "format", "in": "query", "required": False,
                    "schema": {"type": "string", "enum": ["yaml", "json"]}}],
    "responses": {"200": {"description": "The document", "content": {
        "application/yaml": {"schema": DOCUMENT}, "application/json": {"schema": DOCUMENT}}},
        **error_responses(400)}})
describe("/api/config/import", "post", {
    "summary": "Create or update everything a document names (matched by name, code or machine_id); a document "
               "with any error changes nothing", "tags": ["plant settings"],
    "parameters": [{"name": "dry_run", "in": "query", "required": False,
                    "schema": {"type": "string", "enum": ["true", "false"]}}],
    "requestBody": {"required": True, "content": {"application/yaml": {"schema": DOCUMENT},
                                                  "application/json": {"schema": DOCUMENT}}},
    "responses": {**ok("Imported (or, with dry_run, checked)", IMPORT_RESULT), **error_responses(400)}})
