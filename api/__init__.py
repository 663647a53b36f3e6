"""The REST API under /api: JSON in and out, one error shape, registered on the Flask server by app.py.

Errors: {"error": "<short key>", "message": "<readable>", "fields": {"<field>": "<what is expected>"}} with a
4xx status. Modules add their routes to `bp` and describe them for /api/openapi.json through `openapi.path()`.
"""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

bp = Blueprint("api", __name__, url_prefix="/api")


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str, fields: dict | None = None):
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.fields = fields or {}


def bad_request(message: str, fields: dict | None = None) -> ApiError:
    return ApiError(400, "invalid_input", message, fields)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    body = {"error": exc.error, "message": exc.message}
    if exc.fields:
        body["fields"] = exc.fields
    return jsonify(body), exc.status


@bp.errorhandler(404)
def _not_found(_exc):
    return jsonify({"error": "not_found", "message": "no such API path; see /api/openapi.json"}), 404


@bp.errorhandler(405)
def _method(_exc):
    return jsonify({"error": "method_not_allowed", "message": "this path does not take that method"}), 405


def runtime():
    return current_app.extensions["oee"]


def register(server) -> None:
    """Import every API module (each adds its routes to bp), then mount the blueprint."""
    import importlib

    for name in ("oee", "plc", "config_plant", "auth", "audit", "alerts", "openapi"):
        try:
            importlib.import_module(f"api.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"api.{name}":
                raise
    server.register_blueprint(bp)
