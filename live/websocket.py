"""The live WebSocket endpoints (flask-sock). The message schema is documented in docs/live.md.

    /ws/dashboard/                  every machine: machine_status, metrics, alert
    /ws/dashboard/line/<id>/        the machines of one line (its id, or its name when unique)
    /ws/dashboard/machine/<id>/     one machine (LINE-001), with its tag values (tag_update)
    /ws/plc/<machine_ids>/          tag values and status of machines, comma-separated (LINE-001,LINE-002)
    /ws/events/                     event (state changes), alert (faults, lost connections, alert rules), status
    /ws/config/                     config_update when machines, lines or tags change

Each socket gets a snapshot first, then changes, and a heartbeat every few seconds. Each holds one server thread
(two with simple-websocket's reader): size gunicorn's --threads for the sockets plus the page requests.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time

from flask import request

from live.service import LiveService, Scope

log = logging.getLogger(__name__)

CLOSE_GOING_AWAY = 1001
CLOSE_BAD_REQUEST = 4400
CLOSE_NOT_FOUND = 4404
MAX_CLIENT_MESSAGE = 16_384
MAX_MACHINES_IN_PATH = 200
DASHBOARD_TOPICS = {"machine", "metrics", "alert"}


def dumps(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False, default=str)


class Rejected(Exception):
    def __init__(self, error: str, message: str, code: int = CLOSE_NOT_FOUND):
        super().__init__(message)
        self.error, self.message, self.code = error, message, code


# --- scopes ---------------------------------------------------------------------------------------------------------


def _machines(live: LiveService, keys: list[str]) -> set[int]:
    found, missing = set(), []
    for key in keys:
        mid = live.catalog.find_machine(key)
        if mid is None:
            missing.append(key)
        else:
            found.add(mid)
    if missing:
        live.refresh_catalog_now()
        still = []
        for key in missing:
            mid = live.catalog.find_machine(key)
            if mid is None:
                still.append(key)
            else:
                found.add(mid)
        if still:
            names = ", ".join(repr(k) for k in still)
            raise Rejected("unknown_machine", f"unknown machine{'s' if len(still) > 1 else ''} {names}")
    return found


def scope_for(live: LiveService, endpoint: str, arg: str | None = None) -> Scope:
    if endpoint == "dashboard":
        return Scope("dashboard", DASHBOARD_TOPICS, None, False, live)
    if endpoint == "line":
        line_id, why = live.catalog.find_line(arg)
        if line_id is None:
            live.refresh_catalog_now()
            line_id, why = live.catalog.find_line(arg)
        if line_id is None:
            raise Rejected("ambiguous_line" if "ambiguous" in why else "unknown_line", why)
        line = live.catalog.lines[line_id]
        return Scope("line", DASHBOARD_TOPICS, set(line["machines"]), False, live, line=line)
    if endpoint == "machine":
        return Scope("machine", DASHBOARD_TOPICS | {"tags", "event"}, _machines(live, [arg]), True, live)
    if endpoint == "plc":
        keys = [k.strip() for k in (arg or "").split(",") if k.strip()]
        if not keys:
            raise Rejected("bad_path", "give one or more machine ids, comma-separated: /ws/plc/LINE-001,LINE-002/",
                           CLOSE_BAD_REQUEST)
        if len(keys) > MAX_MACHINES_IN_PATH:
            raise Rejected("bad_path", f"at most {MAX_MACHINES_IN_PATH} machines per socket", CLOSE_BAD_REQUEST)
        return Scope("plc", {"tags", "machine", "alert"}, _machines(live, keys), True, live)
    if endpoint == "events":
        machines = request.args.get("machine")
        selected = _machines(live, [k for k in machines.split(",") if k.strip()]) if machines else None
        return Scope("events", {"event", "alert", "machine"}, selected, False, live)
    if endpoint == "config":
        return Scope("config", {"config"}, None, False, live)
    raise ValueError(endpoint)


# --- JSON for clients -----------------------------------------------------------------------------------------------


def _machine_ref(live: LiveService, mid: int) -> dict:
    return {"machine_id": live.catalog.machine_key(mid), "id": mid}


def _without_machine(msg: dict) -> dict:
    return {k: v for k, v in msg.items() if k != "machine"}


def to_client(live: LiveService, topic: str, msg: dict) -> dict:
    if topic == "machine":
        return {"type": "machine_status", **_machine_ref(live, msg["machine"]), **_without_machine(msg)}
    if topic == "metrics":
        return {"type": "metrics", **_machine_ref(live, msg["machine"]), **_without_machine(msg)}
    if topic == "event":
        return {"type": "event", **_machine_ref(live, msg["machine"]), **_without_machine(msg)}
    if topic == "alert":
        # an alert rule's alert of a whole line, area or site (writer_spooling: the plant) names no machine
        ref = _machine_ref(live, msg["machine"]) if msg.get("machine") is not None else {"machine_id": None,
                                                                                        "id": None}
        return {"type": "alert", **ref, **_without_machine(msg)}
    if topic == "config":
        cat = live.catalog
        return {"type": "config_update", "time": msg["time"], "changes": msg["changes"],
                "machines": list(cat.machines.values()), "lines": [_line(ln) for ln in cat.lines.values()]}
    raise ValueError(topic)


def _line(ln: dict) -> dict:
    return {k: v for k, v in ln.items() if k != "machines"}


def _machine_entry(live: LiveService, mid: int, state: dict) -> dict:
    info = live.catalog.machines.get(mid, {"id": mid, "machine_id": str(mid)})
    status = state["machines"].get(mid)
    metrics = state["metrics"].get(mid)
    return {**info, "status": _without_machine(status) if status else None,
            "metrics": _without_machine(metrics) if metrics else None}


def snapshot_message(live: LiveService, scope: Scope, state: dict) -> dict:
    cat = live.catalog
    if scope.machines is None:
        mids = list(cat.machines)
    else:
        mids = [m for m in cat.machines if m in scope.machines]
    msg = {"type": "snapshot", "endpoint": scope.endpoint, "time": time.time(), "heartbeat_s": live.heartbeat_s,
           "server": {"pid": os.getpid(), "bus": live.bus_kind}}
    if scope.endpoint == "config":
        msg["machines"] = list(cat.machines.values())
        msg["lines"] = [_line(ln) for ln in cat.lines.values()]
        return msg
    if scope.endpoint == "line":
        msg["line"] = _line(scope.info["line"])
    msg["machines"] = [_machine_entry(live, mid, state) for mid in mids]
    msg["alerts"] = [to_client(live, "alert", a) for a in state["alerts"]]
    if scope.endpoint == "events":
        msg["events"] = [to_client(live, "event", e) for e in state["events"]]
    if scope.with_tags:
        allowed = scope.tag_ids()
        tags = {}
        for tid, info in cat.tags.items():
            if allowed is not None and tid not in allowed:
                continue
            tags[str(tid)] = {"name": info["name"], "machine_id": cat.machine_key(info["machine"]),
                              "data_type": info["data_type"], "role": info["role"],
                              "value": state["tags"].get(tid)}
        msg["tags"] = tags
    return msg


def batch_messages(live: LiveService, batch) -> list[dict | str]:
    """A coalesced batch as client messages: status, metrics, tag values, then events and alerts in order."""
    out = []
    for topic in ("machine", "metrics"):
        for msg in batch.keyed.get(topic, {}).values():
            out.append(to_client(live, topic, msg))
    tags = batch.merged.get("tags")
    if tags:  # values arrive JSON-encoded (live.service encodes each once for every client)
        out.append('{"type":"tag_update","tags":{' + ",".join(tags.values()) + "}}")
    for topic, msg in batch.queued:
        out.append(to_client(live, topic, msg))
    return out


# --- the handler ----------------------------------------------------------------------------------------------------


def _client_message(raw) -> dict | None:
    """The reply to one message from the client (None: nothing to say)."""
    if isinstance(raw, bytes):
        return {"type": "error", "error": "bad_message", "message": "send JSON text, not binary"}
    if len(raw) > MAX_CLIENT_MESSAGE:
        return {"type": "error", "error": "too_large", "message": f"messages are limited to {MAX_CLIENT_MESSAGE} bytes"}
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        return {"type": "error", "error": "bad_json", "message": f"not JSON: {exc}"}
    if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
        return {"type": "error", "error": "bad_message", "message": 'a message is an object with a "type"'}
    if doc["type"] == "ping":
        return {"type": "pong", "time": time.time(), **({"id": doc["id"]} if "id" in doc else {})}
    if doc["type"] == "snapshot":
        return {"type": "_snapshot"}
    return {"type": "error", "error": "unknown_type",
            "message": f"unknown message type {doc['type']!r}; clients may send ping or snapshot"}


def serve(ws, live: LiveService, endpoint: str, arg: str | None = None) -> None:
    try:
        scope = scope_for(live, endpoint, arg)
    except Rejected as exc:
        try:
            ws.send(dumps({"type": "error", "error": exc.error, "message": exc.message}))
            ws.close(reason=exc.code, message=exc.message[:120])
        except Exception:
            pass
        return
    event = getattr(ws, "event", None)  # simple-websocket sets it on incoming data and on close
    own_event = not isinstance(event, threading.Event)
    state, sub = live.attach(scope, None if own_event else event)
    key = id(ws)
    info = {"endpoint": endpoint, "sub": sub, "sending_since": None, "kill": lambda: _kill(ws)}
    live.register_socket(key, info)

    def send(msg: dict | str) -> None:
        info["sending_since"] = time.monotonic()
        ws.send(msg if isinstance(msg, str) else dumps(msg))
        info["sending_since"] = None
        live.messages_sent += 1

    try:
        send(snapshot_message(live, scope, state))
        heartbeat = live.heartbeat_s
        next_beat = time.monotonic() + heartbeat
        while not live.stopped:
            wait = max(next_beat - time.monotonic(), 0.0)
            sub.event.wait(min(wait, 0.25) if own_event else wait)
            sub.event.clear()
            while True:  # what the client said (receive(0) never blocks; raises once the socket is closed)
                raw = ws.receive(timeout=0)
                if raw is None:
                    break
                reply = _client_message(raw)
                if reply and reply["type"] == "_snapshot":
                    sub.take()  # the new snapshot covers what was waiting
                    with live._lock:
                        state = _fresh_state(live, scope)
                    send(snapshot_message(live, scope, state))
                elif reply:
                    if reply["type"] == "pong":
                        reply["dropped"] = sub.dropped
                    send(reply)
            if not ws.connected:
                break
            batch = sub.take()
            if batch:
                for msg in batch_messages(live, batch):
                    send(msg)
            if time.monotonic() >= next_beat:
                send({"type": "heartbeat", "time": time.time(), "dropped": sub.dropped})
                next_beat = time.monotonic() + heartbeat
        if live.stopped and ws.connected:
            ws.close(reason=CLOSE_GOING_AWAY, message="server shutting down")
    except Exception as exc:  # the client went away (ConnectionClosed, OSError): let go of its queue
        log.debug("websocket %s closed: %s", endpoint, exc)
    finally:
        sub.close()
        live.unregister_socket(key)


def _fresh_state(live: LiveService, scope: Scope) -> dict:
    tag_ids = scope.tag_ids()
    return {
        "tags": ({t: v for t, v in live.tags.items() if tag_ids is None or t in tag_ids} if scope.with_tags else {}),
        "machines": {m: s for m, s in live.machines.items() if scope.machines is None or m in scope.machines},
        "metrics": {m: s for m, s in live.metrics.items() if scope.machines is None or m in scope.machines},
        "alerts": [a for a in live.alerts.values() if scope.machines is None or a["machine"] in scope.machines],
        "events": [e for e in live.events if scope.machines is None or e["machine"] in scope.machines],
    }


def _kill(ws) -> None:
    """Unblock a send that a client stopped reading: shut the TCP connection down under it."""
    sock = getattr(ws, "sock", None)
    if sock is not None:
        sock.shutdown(socket.SHUT_RDWR)


def install(server, runtime) -> None:
    """Mount the endpoints on the Flask server (flask-sock)."""
    from flask_sock import Sock

    register(Sock(server), lambda: runtime)


def register(sock, runtime_getter) -> None:
    """Mount the endpoints on a flask_sock.Sock. runtime_getter() returns the Runtime (its .live serves)."""

    def live() -> LiveService:
        return runtime_getter().live

    @sock.route("/ws/dashboard/", strict_slashes=False)
    def ws_dashboard(ws):
        serve(ws, live(), "dashboard")

    @sock.route("/ws/dashboard/line/<line_id>/", strict_slashes=False)
    def ws_dashboard_line(ws, line_id):
        serve(ws, live(), "line", line_id)

    @sock.route("/ws/dashboard/machine/<machine_id>/", strict_slashes=False)
    def ws_dashboard_machine(ws, machine_id):
        serve(ws, live(), "machine", machine_id)

    @sock.route("/ws/plc/<machine_ids>/", strict_slashes=False)
    def ws_plc(ws, machine_ids):
        serve(ws, live(), "plc", machine_ids)

    @sock.route("/ws/events/", strict_slashes=False)
    def ws_events(ws):
        serve(ws, live(), "events")

    @sock.route("/ws/config/", strict_slashes=False)
    def ws_config(ws):
        serve(ws, live(), "config")

