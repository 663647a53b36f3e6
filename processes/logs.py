"""The log's two formats: text for a terminal (the default), JSON for a log stack (--log-format json).

JSON is one object a line, as Loki, Elasticsearch (ECS-like field names are easy to map) and journald read it:

    {"time": "2026-12-01T12:00:00.123Z", "level": "ERROR", "logger": "collectors.poller", "role": "collector",
     "pid": 4242, "message": "connection LINE-003 (...) failed: ...", "connection": "LINE-003",
     "machine": "LINE-003", "exception": "Traceback ..."}

connection and machine are there when the line concerns one (the pollers log through a LoggerAdapter with them);
exception when the record carries one. Secrets never reach either format: a password in a URL (scheme://user:***@)
and `password=...` style values are masked in the message and the exception text, in case one slipped into an
error message from a library.
"""
from __future__ import annotations

import json
import logging
import os
import re
from datetime import datetime, timezone

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CONTEXT_FIELDS = ("connection", "machine")
NOISY = ("apscheduler", "asyncua", "pymodbus", "snap7", "pycomm3", "alembic")

_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s:/@]+:)([^\s@/]+)(@)", re.IGNORECASE)
_KEY_VALUE = re.compile(r"(\b(?:password|passwd|pwd|secret|token|api_key)\b\s*[=:]\s*)(['\"]?)([^\s'\",;&]+)",
                        re.IGNORECASE)


def redact(text: str) -> str:
    """Mask the secrets a message could carry: the password of a URL, password=..., token: ..."""
    if not text:
        return text
    text = _URL_PASSWORD.sub(r"\1***\3", text)
    return _KEY_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)


class JsonFormatter(logging.Formatter):
    def __init__(self, role: str):
        super().__init__()
        self.role = role

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "role": self.role,
            "pid": record.process or os.getpid(),
            "message": redact(record.getMessage()),
        }
        for key in CONTEXT_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                doc[key] = value
        if record.exc_info:
            doc["exception"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            doc["exception"] = redact(record.exc_text)
        if record.stack_info:
            doc["stack"] = record.stack_info
        return json.dumps(doc, ensure_ascii=False, default=str)


class RedactingFormatter(logging.Formatter):
    """The text format, with the same masking as the JSON one."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure(level: str, fmt: str = "text", role: str = "all") -> None:
    """The root logger's one handler on standard error, in the format asked for; libraries' chatter at WARNING."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(role) if fmt == "json" else RedactingFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)  # a library's warnings.warn() becomes a log line, in the same format
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
