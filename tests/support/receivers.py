"""Real receivers of notifications on 127.0.0.1 for tests: an HTTP server that records each webhook POST (body and
headers), and an SMTP server (aiosmtpd) that records each message, optionally asking for a login."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.pgcluster import free_port


class WebhookReceiver:
    """status: what it answers (500 to test retries); received: [(headers dict, body bytes)]; paths: the path and
    query of each POST, in the same order."""

    def __init__(self, status: int = 200):
        self.status = status
        self.received: list[tuple[dict, bytes]] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.paths.append(self.path)
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def payloads(self) -> list[dict]:
        return [json.loads(body) for _h, body in list(self.received)]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmtpReceiver:
    """messages: [(mail from, [rcpt to], message text)]. user/password: the login it demands (None: none)."""

    def __init__(self, user: str | None = None, password: str | None = None):
        self.messages: list[tuple[str, list[str], str]] = []
        self.logins: list[str] = []
        receiver = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
                receiver.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                                          envelope.content.decode("utf-8", "replace")))
                return "250 OK"

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user \
                and auth_data.password.decode() == password
            if ok:
                receiver.logins.append(user)
            return AuthResult(success=ok)

        kwargs = {}
        if user is not None:
            kwargs = {"authenticator": authenticator, "auth_require_tls": False, "auth_required": True}
        self.port = free_port()  # aiosmtpd's controller connects to its port to see it up: it needs a number
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **kwargs)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()
