"""/healthz and /metrics: the app's health and numbers for load balancers and Prometheus, beside the API."""
from __future__ import annotations

from flask import Flask, Response, jsonify

from exports.prometheus import CONTENT_TYPE as METRICS_CONTENT_TYPE
from exports.prometheus import make_registry as metrics_registry
from exports.prometheus import render as render_metrics


def register_routes(server: Flask, runtime) -> None:
    @server.get("/healthz")
    def healthz():
        body = runtime.health()
        return jsonify(body), (200 if body["status"] == "ok" else 503)

    registry = metrics_registry(runtime)

    @server.get("/metrics")
    def metrics():
        """Prometheus text format (exports/prometheus.py lists the names)."""
        return Response(render_metrics(registry), headers={"Content-Type": METRICS_CONTENT_TYPE})
