"""Notifications of alert state changes: a signed webhook and an e-mail per rule, sent off the evaluator's thread.

One notification per change of an alert's state (active, acknowledged, resolved). Each goes through a bounded
queue to one sender thread, so a dead SMTP server or a webhook that hangs never stalls the evaluation; a full
queue drops the newest and says so on the rule.

Webhook: a JSON POST {rule, kind, scope, machine_id, state, started_at, link, alert_id, message} with the header
X-OEE-Signature: sha256=<hex HMAC-SHA256 of the body> (the rule's webhook_secret, or a key derived from the
installation's master key for that rule). A 2xx answer is delivered; anything else is retried with backoff
(RETRY_DELAYS_S), then recorded on the rule (last_error). E-mail: SMTP from --smtp-url (smtp://, with STARTTLS
when the server offers it; smtps:// for TLS from the start); the URL's password is never logged or recorded.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import smtplib
import ssl
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from db import alerts as alert_store

log = logging.getLogger(__name__)

RETRY_DELAYS_S = (1.0, 2.0, 4.0)  # after the first attempt: four attempts in about 7 s
TIMEOUT_S = 5.0
MAX_QUEUED = 1000
SIGNATURE_HEADER = "X-OEE-Signature"


@dataclass
class Notification:
    rule_id: int
    rule: str
    kind: str
    scope: str
    machine_id: str | None
    state: str  # active, acknowledged, resolved
    started_at: str | None
    link: str
    alert_id: int
    message: str
    webhook_url: str | None
    webhook_key: bytes | None
    email_to: list[str]

    def payload(self) -> dict:
        return {"rule": self.rule, "kind": self.kind, "scope": self.scope, "machine_id": self.machine_id,
                "state": self.state, "started_at": self.started_at, "link": self.link, "alert_id": self.alert_id,
                "message": self.message}


def sign(key: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def smtp_display(url: str) -> str:
    """The SMTP URL as it may be shown: without user and password."""
    if not url:
        return ""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or (465 if parts.scheme == 'smtps' else 25)}"


class Notifier:
    def __init__(self, engine, *, smtp_url: str = "", smtp_from: str = "oee@localhost",
                 retry_delays_s=RETRY_DELAYS_S, timeout_s: float = TIMEOUT_S):
        self.engine = engine
        self._smtp_url = smtp_url
        self.smtp_from = smtp_from
        self.retry_delays_s = tuple(retry_delays_s)
        self.timeout_s = timeout_s
        self._queue: queue.Queue = queue.Queue(MAX_QUEUED)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    def __repr__(self) -> str:  # never the SMTP password
        return f"Notifier(smtp={smtp_display(self._smtp_url) or 'off'})"

    def start(self) -> "Notifier":
        self._thread = threading.Thread(target=self._run, name="alert-notifier", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._queue.put(None) if not self._queue.full() else None
        if self._thread:
            self._thread.join(timeout)

    def submit(self, n: Notification) -> None:
        """Never blocks the caller (the evaluator)."""
        if not n.webhook_url and not n.email_to:
            return
        try:
            self._queue.put_nowait(n)
        except queue.Full:
            self.dropped += 1
            log.error("alert notifications: queue full (%d); the notification of alert %d (%s) is not sent",
                      MAX_QUEUED, n.alert_id, n.state)
            self._record(n.rule_id, None, f"notification of alert {n.alert_id} ({n.state}) dropped: queue full")

    def _run(self) -> None:
        while not self._stop.is_set():
            n = self._queue.get()
            if n is None:
                continue
            try:
                self.deliver(n)
            except Exception:  # noqa: BLE001 - the sender must keep sending
                log.exception("alert notifications: sending alert %d failed", n.alert_id)

    def deliver(self, n: Notification) -> None:
        errors, delivered = [], False
        if n.webhook_url:
            error = self._webhook(n)
            if error:
                errors.append(f"webhook: {error}")
            else:
                delivered = True
        if n.email_to:
            error = self._email(n)
            if error:
                errors.append(f"e-mail: {error}")
            else:
                delivered = True
        if errors:
            self.failed += 1
            log.warning("alert %d (%s) of rule %r: %s", n.alert_id, n.state, n.rule, "; ".join(errors))
        else:
            self.sent += 1
        self._record(n.rule_id, time.time() if delivered else None, "; ".join(errors) or None)

    def _record(self, rule_id: int, sent_at: float | None, error: str | None) -> None:
        try:
            alert_store.record_delivery(self.engine, rule_id, sent_at=sent_at, error=error)
        except Exception as exc:  # the database away: the log line above still says it
            log.warning("alert notifications: cannot record the delivery on rule %d: %s", rule_id,
                        str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__)

    def _webhook(self, n: Notification) -> str | None:
        body = json.dumps(n.payload(), separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "oee-alerts/1"}
        if n.webhook_key:
            headers[SIGNATURE_HEADER] = sign(n.webhook_key, body)
        error = None
        for attempt, delay in enumerate((0.0, *self.retry_delays_s)):
            if delay and self._stop.wait(delay):
                return error or "stopped before it could be sent"
            req = urllib.request.Request(n.webhook_url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310 - http(s) only
                    if 200 <= resp.status < 300:
                        return None
                    error = f"HTTP {resp.status}"
            except urllib.error.HTTPError as exc:
                error = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError, ValueError) as exc:
                reason = getattr(exc, "reason", exc)
                error = f"{reason.__class__.__name__}: {reason}" if not isinstance(reason, str) else reason
            attempts = attempt + 1
        return f"{error} after {attempts} attempts"

    def _email(self, n: Notification) -> str | None:
        if not self._smtp_url:
            return "no SMTP server set (--smtp-url)"
        url = urlsplit(self._smtp_url)
        msg = EmailMessage()
        msg["From"] = self.smtp_from
        msg["To"] = ", ".join(n.email_to)
        what = {"active": "ALERT", "acknowledged": "Acknowledged", "resolved": "Resolved"}.get(n.state, n.state)
        msg["Subject"] = f"[OEE] {what}: {n.rule} ({n.scope})"
        msg.set_content(f"{n.message}\n\nRule: {n.rule} ({n.kind})\nScope: {n.scope}\nState: {n.state}\n"
                        f"Started: {n.started_at}\n{n.link}\n")
        try:
            if url.scheme == "smtps":
                client = smtplib.SMTP_SSL(url.hostname, url.port or 465, timeout=self.timeout_s,
                                          context=ssl.create_default_context())
            else:
                client = smtplib.SMTP(url.hostname, url.port or 25, timeout=self.timeout_s)
            with client:
                client.ehlo()
                if url.scheme == "smtp" and client.has_extn("starttls"):
                    client.starttls(context=ssl.create_default_context())
                    client.ehlo()
                if url.username:
                    client.login(unquote(url.username), unquote(url.password or ""))
                client.send_message(msg)
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            # the exception's text never holds the URL; say which server, without its credentials
            return f"{exc.__class__.__name__} from {smtp_display(self._smtp_url)}: {str(exc)[:200]}"
        return None
