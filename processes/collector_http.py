"""/metrics and /healthz for a collector process (`--role collector --metrics-port 9108`).

A collector process has no web server, yet Prometheus must see its polls, latencies, errors and writer queue (the
web workers' /metrics only knows their own process). This is a second, tiny HTTP server in the collector process
with the same two routes and the same rule as the app's (auth/rules.py): /healthz is public but shows its details
(connections, errors, database URL, process id) only to a viewer, and /metrics needs one; a viewer is a user's API
token (Authorization: Bearer ...), or anyone while anonymous viewing is on (by default only while --host is a
loopback address). Others get {"status", "version"} from /healthz. The Host header must be one of
--allowed-hosts, as on the web server (auth/guards.py), so that a DNS-rebinding page cannot read /metrics through
the browser of someone on the plant network.
"""
from __future__ import annotations

import logging
import socket
import threading

from flask import Flask, Response, jsonify, request
from werkzeug.serving import make_server

from auth import guards, tokens
from auth.web import allowed_hosts, anonymous_viewing_enabled
from exports.prometheus import CONTENT_TYPE, make_registry, render
from processes.runtime import health_http_status, public_health

log = logging.getLogger(__name__)


def metrics_app(runtime) -> Flask:
    server = Flask("oee-collector-metrics")
    registry = make_registry(runtime)
    anonymous = anonymous_viewing_enabled(runtime.settings)
    hosts = allowed_hosts(runtime.settings)

    @server.before_request
    def _host():
        return guards.host_refusal(hosts)

    def viewer() -> bool:
        if anonymous:
            return True
        scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and tokens.lookup(runtime.store.engine, secret.strip()) is not None

    @server.get("/healthz")
    def healthz():
        body = runtime.health()
        return jsonify(body if viewer() else public_health(body)), health_http_status(body)

    @server.get("/metrics")
    def metrics():
        if not viewer():
            return jsonify({"error": "unauthorized",
                            "message": "use the header Authorization: Bearer <API token> (a viewer's token; "
                                       "Prometheus: authorization: {credentials: ...} in the scrape config)"}), 401
        return Response(render(registry), headers={"Content-Type": CONTENT_TYPE})

    @server.after_request
    def _headers(response):
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        return response

    return server


class CollectorHttp:
    """The server on its own thread; stop() ends it."""

    def __init__(self, runtime, host: str, port: int):
        # Bound here so that a busy port raises OSError (Werkzeug would print its own text and exit).
        self._socket = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        self._server = make_server(host, port, metrics_app(runtime), threaded=True, fd=self._socket.fileno())
        self.port = self._socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="collector-metrics", daemon=True)

    def start(self) -> "CollectorHttp":
        self._thread.start()
        log.info("collector metrics on http://%s:%d/metrics", self._server.host, self.port)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(5)
        self._socket.close()
