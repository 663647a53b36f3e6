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


AUTH_RESPONSES = {
    "401": {"description": "Not signed in (or anonymous viewing is off): send Authorization: Bearer <API token>",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
    "403": {"description": "Signed in without the role this needs (auth/rules.py), or a cross-site request",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
}
PUBLIC_PATHS = ("/api/openapi.json", "/api/auth/me/")
_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
# What auth/guards.py may answer to any request, before the operation itself sees it.
GUARD_RESPONSES = {
    "400": {"description": "Invalid input: text the database cannot store (a NUL character, a lone surrogate) in "
                           "the path, a parameter or the body, JSON nested too deeply, or a Host not allowed",
            "content": _ERROR},
    "503": {"description": "The request ran past its deadline (--request-timeout) and was stopped",
            "content": _ERROR},
}
BODY_RESPONSES = {"413": {"description": "The body is larger than this request may send (1 MiB; 8 MiB for an "
                                         "engineer's configuration import)", "content": _ERROR}}


def _with_auth(path: str, operations: dict) -> dict:
    """Every operation but the public ones may answer 401 or 403, and takes a token or the session cookie; every
    operation may answer what the guards answer (and 413 when it takes a body)."""
    out = {}
    for method, op in operations.items():
        responses = {**GUARD_RESPONSES, **(BODY_RESPONSES if "requestBody" in op else {}), **op.get("responses", {})}
        if path not in PUBLIC_PATHS:
            op = {**op, "security": [{"bearer": []}, {"session": []}]}
            responses = {**AUTH_RESPONSES, **responses}
        out[method] = {**op, "responses": responses}
    return out


def document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {"title": "OEE analytics API", "version": "1",
                 "description": "JSON in and out. Times are ISO 8601; without an offset they are UTC."},
        "paths": {p: _with_auth(p, ops) for p, ops in sorted(_PATHS.items())},
        "components": {"schemas": {"Error": ERROR_SCHEMA, **_SCHEMAS}, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "an API token (oee_...), made on /account/tokens/"},
            "session": {"type": "apiKey", "in": "cookie", "name": "oee_session",
                        "description": "the browser session of /login; state-changing requests must come from "
                                       "this server's pages (Origin checked)"}}},
    }


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(document())
