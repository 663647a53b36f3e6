"""/api/auth/: who am I, API tokens, users (admins), embed links (engineers). Who may call what: auth/rules.py.

Secrets are answered once: a new token's `secret`, a new or reset user's `one_time_password`, and never again.
"""
from __future__ import annotations

import time

from flask import g, jsonify, request

from api import ApiError, bp, params, runtime
from api.openapi import describe, error_responses, schema
from auth import embed as embeds
from auth import tokens, users
from auth.web import auth_of, describe_identity


def _engine():
    return runtime().store.engine


def _body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_input", "send a JSON object with Content-Type: application/json",
                       {"body": "a JSON object"})
    return body


def _user_error(exc: users.UserError) -> ApiError:
    kind = {404: "not_found", 409: "conflict"}.get(exc.status, "invalid_input")
    return ApiError(exc.status, kind, str(exc), {exc.field: exc.message})


@bp.get("/auth/me/")
def auth_me():
    return jsonify(describe_identity())


@bp.get("/auth/tokens/")
def list_tokens():
    return jsonify({"results": tokens.list_for(_engine(), g.user.id)})


@bp.post("/auth/tokens/")
def create_token():
    if g.via != "session":
        raise ApiError(403, "session_required",
                       "create tokens from a signed-in session (the page /account/tokens/), not with another token")
    body = _body()
    unknown = set(body) - {"name", "expires_in_days"}
    try:
        if unknown:
            raise users.UserError(sorted(unknown)[0], "not a field; use name and expires_in_days")
        row, secret = tokens.create(_engine(), g.user, body.get("name"), body.get("expires_in_days"))
    except users.UserError as exc:
        raise _user_error(exc) from None
    return jsonify({"token": row, "secret": secret}), 201


@bp.delete("/auth/tokens/<token_id>/")
def revoke_token(token_id: str):
    pk = params.row_id(token_id)
    if pk is None:
        raise ApiError(404, "not_found", f"no token with id {token_id!r}; ids are whole numbers")
    owner = None if g.role == "admin" else g.user.id
    try:
        return jsonify(tokens.revoke(_engine(), pk, user_id=owner))
    except users.UserError as exc:
        raise _user_error(exc) from None


@bp.get("/auth/users/")
def list_users():
    return jsonify({"results": users.list_all(_engine())})


@bp.post("/auth/users/")
def create_user():
    body = _body()
    unknown = set(body) - {"username", "role", "password"}
    try:
        if unknown:
            raise users.UserError(sorted(unknown)[0], "not a field; use username, role and password (optional)")
        given = body.get("password")
        password = given if given is not None else users.new_one_time_password()
        user = users.create(_engine(), body.get("username"), password, body.get("role"), must_change_password=True)
    except users.UserError as exc:
        raise _user_error(exc) from None
    out = {"user": users.public(user)}
    if given is None:
        out["one_time_password"] = password
    return jsonify(out), 201


@bp.patch("/auth/users/<user_id>/")
def update_user(user_id: str):
    pk = params.row_id(user_id)
    if pk is None:
        raise ApiError(404, "not_found", f"no user with id {user_id!r}; ids are whole numbers")
    try:
        user, one_time = users.update(_engine(), pk, _body(), by_user_id=g.user.id)
    except users.UserError as exc:
        raise _user_error(exc) from None
    out = {"user": users.public(user)}
    if one_time:
        out["one_time_password"] = one_time
    return jsonify(out)


def make_embed_link(page: str, key: str, days: float) -> dict:
    """Check that the machine or line exists, then sign. Raises UserError naming the field."""
    from db import ui_queries

    store = runtime().store
    if page == "machine":
        known = {m["machine_id"] for m in ui_queries.plant_machines(store)}
    else:
        known = {str(ln["id"]) for ln in ui_queries.plant_lines(store)}
    if key not in known:
        hint = "use a machine id such as LINE-001" if page == "machine" else "use the line's id (see /api/config/lines/)"
        raise users.UserError("key", f"no {page} {key!r}; {hint}")
    expires = int(time.time() + days * 86400)
    token = embeds.sign(auth_of().master, page, key, expires)
    scope = embeds.Scope(page, key, expires)
    return {"url": embeds.link(scope.path, token), "page": page, "key": key,
            "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires)), "embed_token": token}


@bp.post("/auth/embed-links/")
def create_embed_link():
    try:
        page, key, days = embeds.check_request(_body())
        return jsonify(make_embed_link(page, key, days)), 201
    except users.UserError as exc:
        raise _user_error(exc) from None


# --- OpenAPI -----------------------------------------------------------------------------------------------------

_TOKEN = schema("ApiToken", {"type": "object", "required": ["id", "name", "prefix", "active"], "properties": {
    "id": {"type": "integer"}, "name": {"type": "string"}, "prefix": {"type": "string"},
    "user_id": {"type": "integer"}, "created_at": {"type": ["string", "null"]},
    "expires_at": {"type": ["string", "null"]}, "last_used_at": {"type": ["string", "null"]},
    "revoked_at": {"type": ["string", "null"]}, "active": {"type": "boolean"}}})
_USER = schema("User", {"type": "object", "required": ["id", "username", "role", "active"], "properties": {
    "id": {"type": "integer"}, "username": {"type": "string"},
    "role": {"type": "string", "enum": list(users.ROLE_RANK)}, "active": {"type": "boolean"},
    "must_change_password": {"type": "boolean"}, "created_at": {"type": ["string", "null"]},
    "last_login_at": {"type": ["string", "null"]}}})


def _json(ref_or_schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": ref_or_schema}}}


def _body_schema(properties: dict, required: list) -> dict:
    return {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "properties": properties, "required": required, "additionalProperties": False}}}}


describe("/api/auth/me/", "get", {"summary": "Who the caller is (user, role, how authenticated)", "responses": {
    "200": _json({"type": "object"}, "The caller's identity")}})
describe("/api/auth/tokens/", "get", {"summary": "The caller's API tokens (never their secrets)", "responses": {
    "200": _json({"type": "object", "properties": {"results": {"type": "array", "items": _TOKEN}}}, "Tokens"),
    **error_responses(401, 403)}})
describe("/api/auth/tokens/", "post", {
    "summary": "Create an API token (from a signed-in session); its secret is in this answer only",
    "requestBody": _body_schema({"name": {"type": "string", "maxLength": 100},
                                 "expires_in_days": {"type": ["integer", "null"], "minimum": 1,
                                                     "maximum": tokens.MAX_DAYS}}, ["name"]),
    "responses": {"201": _json({"type": "object", "properties": {"token": _TOKEN, "secret": {"type": "string"}}},
                               "The token, and its secret (shown once)"), **error_responses(400, 401, 403)}})
describe("/api/auth/tokens/{id}/", "delete", {
    "summary": "Revoke an API token (yours; admins: anyone's)",
    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
    "responses": {"200": _json(_TOKEN, "The revoked token"), **error_responses(401, 403, 404)}})
describe("/api/auth/users/", "get", {"summary": "Users (admins)", "responses": {
    "200": _json({"type": "object", "properties": {"results": {"type": "array", "items": _USER}}}, "Users"),
    **error_responses(401, 403)}})
describe("/api/auth/users/", "post", {
    "summary": "Create a user (admins); without a password, a one-time password is made and answered once",
    "requestBody": _body_schema({"username": {"type": "string"}, "role": {"type": "string",
                                                                          "enum": list(users.ROLE_RANK)},
                                 "password": {"type": "string", "minLength": 10}}, ["username", "role"]),
    "responses": {"201": _json({"type": "object", "properties": {"user": _USER,
                                                                 "one_time_password": {"type": "string"}}},
                               "The user"), **error_responses(400, 401, 403, 409)}})
describe("/api/auth/users/{id}/", "patch", {
    "summary": "Change a user's role or active flag, or reset the password (admins)",
    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
    "requestBody": _body_schema({"role": {"type": "string", "enum": list(users.ROLE_RANK)},
                                 "active": {"type": "boolean"}, "reset_password": {"type": "boolean"}}, []),
    "responses": {"200": _json({"type": "object", "properties": {"user": _USER,
                                                                 "one_time_password": {"type": "string"}}},
                               "The user"), **error_responses(400, 401, 403, 404, 409)}})
describe("/api/auth/embed-links/", "post", {
    "summary": "Make a signed, expiring, read-only link to one machine's or line's dashboard (engineers)",
    "requestBody": _body_schema({"page": {"type": "string", "enum": list(embeds.PAGES)}, "key": {"type": "string"},
                                 "expires_in_days": {"type": "number", "exclusiveMinimum": 0,
                                                     "maximum": embeds.MAX_DAYS}}, ["page", "key"]),
    "responses": {"201": _json({"type": "object", "properties": {"url": {"type": "string"},
                                                                 "expires_at": {"type": "string"}}},
                               "The link"), **error_responses(400, 401, 403)}})
