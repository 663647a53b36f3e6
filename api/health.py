"""/healthz and /metrics: the app's health and numbers for load balancers and Prometheus, beside the API.

/healthz is open to anyone (auth/rules.py), but only a viewer (a signed-in user or an API token of any role, or
anyone while anonymous viewing is on, as on loopback) gets the whole document: connections with hosts, ports and
errors, the database URL, the writer, the collector process. Others get {"status", "version"}: enough for a load
balancer. The HTTP status is 200 while the node serves (ok, starting, degraded) and 503 when it cannot
(processes.runtime.health_http_status).
"""
from __future__ import annotations

from flask import Flask, Response, jsonify

from auth import rules
from auth.web import may
from exports.prometheus import CONTENT_TYPE as METRICS_CONTENT_TYPE
from exports.prometheus import make_registry as metrics_registry
from exports.prometheus import render as render_metrics
from processes.runtime import health_http_status, public_health


def register_routes(server: Flask, runtime) -> None:
    @server.get("/healthz")
    def healthz():
        body = runtime.health()
        shown = body if may(rules.VIEWER) else public_health(body)
        response = jsonify(shown)
        response.headers["Cache-Control"] = "no-store"
        return response, health_http_status(body)

    registry = metrics_registry(runtime)

    @server.get("/metrics")
    def metrics():
        """Prometheus text format (exports/prometheus.py lists the names)."""
        return Response(render_metrics(registry), headers={"Content-Type": METRICS_CONTENT_TYPE})
