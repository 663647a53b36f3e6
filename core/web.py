"""Plain HTTP and WebSocket routes beside the Dash pages."""
from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from flask_sock import Sock

from core.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from core.metrics import make_registry as metrics_registry
from core.metrics import render as render_metrics

log = logging.getLogger(__name__)


def register_routes(server: Flask, runtime) -> None:
    install_frame_policy(server, getattr(runtime.settings, "frame_ancestors", ("'self'",)))

    @server.get("/healthz")
    def healthz():
        body = runtime.health()
        return jsonify(body), (200 if body["status"] == "ok" else 503)

    registry = metrics_registry(runtime)

    @server.get("/metrics")
    def metrics():
        """Prometheus text format (core/metrics.py lists the names)."""
        return Response(render_metrics(registry), headers={"Content-Type": METRICS_CONTENT_TYPE})

    sock = Sock(server)
    from core import ws

    ws.register(sock, lambda: runtime)


def install_frame_policy(server: Flask, ancestors: tuple[str, ...]) -> None:
    """Who may show our pages in a frame (Grafana, a kiosk portal): Content-Security-Policy frame-ancestors on
    every response, from the --frame-ancestors setting; browsers refuse to frame them anywhere else. An older
    browser without CSP gets X-Frame-Options where it can say the same ('self' alone, or 'none')."""
    directive = "frame-ancestors " + " ".join(ancestors)
    legacy = {("'self'",): "SAMEORIGIN", ("'none'",): "DENY"}.get(tuple(ancestors))

    @server.after_request
    def _frame_policy(response):
        current = response.headers.get("Content-Security-Policy")
        if not current:
            response.headers["Content-Security-Policy"] = directive
        elif "frame-ancestors" not in current:
            response.headers["Content-Security-Policy"] = f"{current.rstrip('; ')}; {directive}"
        if legacy and "X-Frame-Options" not in response.headers:
            response.headers["X-Frame-Options"] = legacy
        return response
