"""A real WebSocket client (websocket-client, no background thread: what is not read stays in the socket)."""
from __future__ import annotations

import json
import socket
import time

import websocket


class Closed(Exception):
    def __init__(self, code: int | None, reason: str):
        super().__init__(f"closed {code}: {reason}")
        self.code, self.reason = code, reason


class LiveClient:
    def __init__(self, port: int, path: str, *, timeout: float = 20.0, rcvbuf: int | None = None):
        opts = ((socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf),) if rcvbuf else ()
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{port}{path}", timeout=timeout, sockopt=opts,
                                             skip_utf8_validation=True)  # pure-Python check: slow
        self.received: list[dict] = []

    def recv(self, timeout: float = 10.0) -> dict:
        """The next message; raises Closed when the server closed the socket, TimeoutError when nothing came."""
        self.ws.settimeout(timeout)
        try:
            opcode, data = self.ws.recv_data(control_frame=True)
        except websocket.WebSocketTimeoutException:
            raise TimeoutError(f"no message within {timeout} s") from None
        except websocket.WebSocketConnectionClosedException:
            raise Closed(None, "connection closed") from None
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
            raise Closed(code, data[2:].decode(errors="replace"))
        if opcode in (websocket.ABNF.OPCODE_PING, websocket.ABNF.OPCODE_PONG):
            return self.recv(timeout)
        msg = json.loads(data)
        self.received.append(msg)
        return msg

    def until(self, predicate, timeout: float = 15.0) -> dict:
        """Read until a message matches; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no matching message within {timeout} s; last: {self.received[-3:]}")
            msg = self.recv(left)
            if predicate(msg):
                return msg

    def drain(self, seconds: float) -> list[dict]:
        """Everything that arrives during the next seconds."""
        out = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                out.append(self.recv(left))
            except TimeoutError:
                break
        return out

    def send(self, data) -> None:
        self.ws.send(data if isinstance(data, str) else json.dumps(data))

    def close(self) -> None:
        try:
            self.ws.close(timeout=1)
        except Exception:
            pass


def tag_updates(messages: list[dict]) -> set[tuple[str, float]]:
    """(tag id, sample time) of every tag value in these messages."""
    return {(tid, v[0]) for m in messages if m["type"] == "tag_update" for tid, v in m["tags"].items()}
