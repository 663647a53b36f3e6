"""Plain HTTP and WebSocket routes beside the Dash pages."""
from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from flask_sock import Sock

log = logging.getLogger(__name__)


def register_routes(server: Flask, runtime) -> None:
    @server.get("/healthz")
    def healthz():
        body = runtime.health()
        return jsonify(body), (200 if body["status"] == "ok" else 503)

    @server.get("/metrics")
    def metrics():
        return Response(prometheus_text(runtime.health()), mimetype="text/plain; version=0.0.4")

    sock = Sock(server)
    from core import ws

    ws.register(sock, lambda: runtime)


WRITER_METRICS = {
    "queue_rows": ("oee_writer_queue_rows", "gauge", "Rows waiting in the writer's memory queue"),
    "spooled_rows": ("oee_writer_spooled_rows", "gauge", "Rows kept in the disk spool while the database is away"),
    "spooled_bytes": ("oee_writer_spooled_bytes", "gauge", "Size of the disk spool"),
    "dropped_rows": ("oee_writer_dropped_rows_total", "counter", "Acknowledged rows dropped past the queue or spool bound"),
    "written_rows": ("oee_writer_written_rows_total", "counter", "Rows committed to the database"),
    "duplicate_batches_skipped": ("oee_writer_duplicate_batches_total", "counter",
                                  "Batches replayed after an unconfirmed commit and skipped by the ledger"),
}
CONNECTION_METRICS = {
    "cycles": ("oee_connection_cycles_total", "counter", "Read cycles completed"),
    "skipped_cycles": ("oee_connection_skipped_cycles_total", "counter", "Cycles skipped: the previous one still ran"),
    "bad_tags": ("oee_connection_bad_tags", "gauge", "Tags with bad quality in the last cycle"),
    "latency_ms": ("oee_connection_latency_ms", "gauge", "Read cycle duration (moving average)"),
    "consecutive_failures": ("oee_connection_consecutive_failures", "gauge", "Failed attempts since the last success"),
}


def _label(value) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def prometheus_text(health: dict) -> str:
    """The health document in Prometheus' text format: what /healthz says, as numbers to alert on."""
    lines = [
        "# HELP oee_up 1 when the database is reachable and writes succeed",
        "# TYPE oee_up gauge",
        f"oee_up {1 if health['status'] == 'ok' else 0}",
    ]
    writer = health.get("writer") or {}
    for key, (name, kind, text) in WRITER_METRICS.items():
        if key in writer:
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", f"{name} {writer[key]}"]
    connections = [c for c in health.get("connections", []) if "name" in c]
    lines += ["# HELP oee_connection_up 1 when the connection's last cycle succeeded", "# TYPE oee_connection_up gauge"]
    for c in connections:
        lines.append(f'oee_connection_up{{connection="{_label(c["name"])}",protocol="{c["protocol"]}"}} '
                     f'{1 if c["state"] == "connected" else 0}')
    for key, (name, kind, text) in CONNECTION_METRICS.items():
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        for c in connections:
            if c.get(key) is not None:
                lines.append(f'{name}{{connection="{_label(c["name"])}",protocol="{c["protocol"]}"}} {c[key]}')
    return "\n".join(lines) + "\n"
