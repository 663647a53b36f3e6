"""/api/openapi.json: the OpenAPI 3.1 document, assembled from what each API module declares with `describe()`."""
from __future__ import annotations

from flask import jsonify

from api import bp

_PATHS: dict[str, dict] = {}
_SCHEMAS: dict[str, dict] = {}

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "short key, e.g. invalid_input, not_found"},
        "message": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": {"type": "string"},
                   "description": "for invalid input: each offending field and what is expected"},
    },
}


def describe(path: str, method: str, operation: dict) -> None:
    """Declare one operation (OpenAPI Operation Object) for the document."""
    _PATHS.setdefault(path, {})[method.lower()] = operation


def schema(name: str, definition: dict) -> dict:
    """Declare a component schema; returns a $ref to it."""
    _SCHEMAS[name] = definition
    return {"$ref": f"#/components/schemas/{name}"}


def error_responses(*codes: int) -> dict:
    ref = {"$ref": "#/components/schemas/Error"}
    text = {400: "Invalid input: each bad parameter or field is named", 404: "Not found", 409: "Conflict"}
    return {str(c): {"description": text.get(c, "Error"), "content": {"application/json": {"schema": ref}}}
            for c in codes}


def document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {"title": "OEE analytics API", "version": "1",
                 "description": "JSON in and out. Times are ISO 8601; without an offset they are UTC."},
        "paths": dict(sorted(_PATHS.items())),
        "components": {"schemas": {"Error": ERROR_SCHEMA, **_SCHEMAS}},
    }


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(document())
