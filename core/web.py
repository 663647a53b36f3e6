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
