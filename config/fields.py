"""The field checks every configuration form shares (the wizard, the REST API, the YAML import): each names the
field and says what is expected, in the shape the API returns. A ValidationError carries
{"<field path>": "<what is expected>"}, with paths such as "port", "protocol_config.slot", "tags[3].address" or,
in an imported file, "machines[2].tags[0].role".

Each small check returns the clean value, or records an error in a FieldErrors and returns None, so that one answer
names every bad field, not only the first.
"""
from __future__ import annotations

import ipaddress
import math
import re
from datetime import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from db.types import text_problem

HOST_LABEL_RE = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z")
HHMM_RE = re.compile(r"([01]\d|2[0-3]):([0-5]\d)\Z")


class ValidationError(ValueError):
    """Invalid input. fields maps each offending field (a path) to what is expected there."""

    def __init__(self, fields: dict[str, str], message: str | None = None):
        self.fields = dict(fields)
        self.message = message or ("invalid input: " + "; ".join(f"{k}: {v}" for k, v in self.fields.items()))
        super().__init__(self.message)


class FieldErrors:
    """Collects field errors so that one answer names every bad field, not only the first."""

    def __init__(self, prefix: str = ""):
        self.prefix = prefix
        self.fields: dict[str, str] = {}

    def add(self, field: str, message: str) -> None:
        self.fields.setdefault(self.prefix + field, message)

    def absorb(self, exc: ValidationError, prefix: str = "") -> None:
        for k, v in exc.fields.items():
            self.fields.setdefault(self.prefix + prefix + k, v)

    def raise_if_any(self, message: str | None = None) -> None:
        if self.fields:
            raise ValidationError(self.fields, message)


def text_field(errors: FieldErrors, data: dict, key: str, *, max_len: int, required: bool = True, min_len: int = 1,
               what: str = "text", default: str | None = None) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            errors.add(key, f"required: {what}, {min_len} to {max_len} characters")
        return default
    if not isinstance(value, str):
        errors.add(key, f"must be text ({what}), not {type(value).__name__}")
        return None
    value = value.strip()
    if len(value) < min_len or len(value) > max_len:
        errors.add(key, f"{what}: {min_len} to {max_len} characters, not {len(value)}")
        return None
    problem = text_problem(value)
    if problem:  # PostgreSQL refuses NUL; no database encodes a lone surrogate
        errors.add(key, f"{what}: {problem}")
        return None
    return value


def integer_field(errors: FieldErrors, data: dict, key: str, lo: int, hi: int, *, default=None,
                  what: str = "") -> int | None:
    value = data.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            errors.add(key, f"must be a whole number from {lo} to {hi}{what}, not {value!r}")
            return None
    if not lo <= value <= hi:
        errors.add(key, f"must be from {lo} to {hi}{what}, not {value}")
        return None
    return value


def number_field(errors: FieldErrors, data: dict, key: str, *, default: float, lo: float | None = None,
                 hi: float | None = None, nonzero: bool = False, what: str = "") -> float | None:
    value = data.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        errors.add(key, f"must be a number{what}, not {value!r}")
        return None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = f"from {lo:g} to {hi:g}" if lo is not None and hi is not None else (
            f"at least {lo:g}" if lo is not None else f"at most {hi:g}")
        errors.add(key, f"must be {bounds}{what}, not {value:g}")
        return None
    if nonzero and value == 0:
        errors.add(key, f"must not be 0{what}")
        return None
    return float(value)


def boolean_field(errors: FieldErrors, data: dict, key: str, default: bool) -> bool | None:
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        errors.add(key, f"must be true or false, not {value!r}")
        return None
    return value


def unknown_fields(errors: FieldErrors, data: dict, known, ignored=(), where: str = "") -> None:
    for key in data:
        if key not in known and key not in ignored:
            close = [k for k in known if k.replace("_", "") == str(key).replace("_", "").lower()
                     or k.startswith(str(key)[:4].lower())]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            errors.add(str(key), f"unknown field{where}{hint}; expected {', '.join(known)}")


def calendar_ref(errors: FieldErrors, data: dict, what: str, key: str = "calendar"):
    """A shift calendar by name (text) or id (a whole number), or None; config.store checks that it exists."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    if isinstance(value, str) and 1 <= len(value.strip()) <= 100:
        return value.strip()
    errors.add(key, f"{what}: the name or id of a shift calendar (see /api/config/calendars/), or null; not {value!r}")
    return None


def object_of(errors: FieldErrors, value, key: str) -> dict | None:
    if not isinstance(value, dict):
        errors.add(key, f"must be an object, not {type(value).__name__}")
        return None
    return value


def valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    if len(host) > 253 or host.endswith("."):
        return False
    labels = host.split(".")
    if all(label.isdigit() for label in labels):
        return False  # looks like a broken IPv4 address, not a host name
    return all(HOST_LABEL_RE.match(label) for label in labels)


def timezone_ok(name) -> bool:
    if not isinstance(name, str) or not name or len(name) > 64:
        return False
    try:
        ZoneInfo(name)
        return True
    except (ZoneInfoNotFoundError, ValueError):
        return False


def parse_hhmm(value) -> time | None:
    if isinstance(value, time):
        return value
    m = HHMM_RE.match(value) if isinstance(value, str) else None
    return time(int(m.group(1)), int(m.group(2))) if m else None
