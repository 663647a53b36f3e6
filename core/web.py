"""Plain HTTP and WebSocket routes beside the Dash pages."""
from __future__ import annotations

import json
import logging

from flask import Flask, jsonify
from flask_sock import Sock

log = logging.getLogger(__name__)


def register_routes(server: Flask, runtime) -> None:
    @server.get("/healthz")
    def healthz():
        body = runtime.health()
        return jsonify(body), (200 if body["status"] == "ok" else 503)

    sock = Sock(server)

    @sock.route("/ws/live")
    def live(ws):
        """Streams live updates as JSON lines: {"topic": ..., "data": ...}. A ping every 15 s keeps proxies open."""
        sub = runtime.hub.subscribe()
        try:
            while True:
                items = sub.get_all(timeout=15)
                if not items:
                    ws.send(json.dumps({"topic": "ping"}))
                    continue
                for topic, data in items:
                    ws.send(json.dumps({"topic": topic, "data": data}, default=str))
        except Exception as exc:  # the client went away; nothing to do but let go of its queue
            log.debug("websocket closed: %s", exc)
        finally:
            sub.close()
