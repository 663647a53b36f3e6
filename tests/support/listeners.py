"""TCP listeners on 127.0.0.1 that are not PLCs, for tests of drivers pointed at the wrong port.

- "http": reads the request and answers `HTTP/1.1 400 Bad Request`, then closes (a web server on the port);
- "silent": accepts and says nothing, keeping the connection open (a firewall that swallows, a stuck device);
- "close": accepts and closes at once (a service with no free connection slot, a port forwarder without target).

Usable as a context manager; release() closes the connections a silent listener holds, so that clients waiting on
them see the peer close.
"""
from __future__ import annotations

import socket
import threading

HTTP_400 = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nConnection: close\r\n"
            b"\r\nBad Request")
KINDS = ("http", "silent", "close")


class Listener:
    def __init__(self, kind: str):
        assert kind in KINDS, kind
        self.kind = kind
        self._sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self._sock.getsockname()[1]
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name=f"listener-{kind}", daemon=True)

    def start(self) -> "Listener":
        self._thread.start()
        return self

    def __enter__(self) -> "Listener":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.kind == "close":
                conn.close()
            elif self.kind == "silent":
                with self._lock:
                    self._held.append(conn)
            else:
                threading.Thread(target=self._answer_http, args=(conn,), daemon=True).start()

    @staticmethod
    def _answer_http(conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            conn.recv(4096)  # whatever the client sent first
            conn.sendall(HTTP_400)
        except OSError:
            pass
        finally:
            conn.close()

    def release(self) -> None:
        with self._lock:
            held, self._held = self._held, []
        for conn in held:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def stop(self) -> None:
        self._sock.close()
        self.release()
