"""Alert rules: the one validation of a rule's body (the API and the settings page) and their storage, audited.

The body, so that scripts can rely on it:

    {"name": "Filler stopped", "kind": "machine_stopped", "machine": "LINE-001", "for_s": 60, "reset_s": 30,
     "webhook_url": "https://hooks.example/oee", "email_to": ["lead@plant.example"]}

- kind: machine_stopped (an unplanned stop: faulted, idle, blocked or offline, longer than for_s), oee_below (the
  metric of a machine or of each machine of the scope below threshold over the current window), connection_failing
  (a PLC connection failing longer than for_s), writer_spooling (the database away or rows dropped, longer than
  for_s).
- scope: exactly one of machine (its machine_id), line, area, site (a name or an id); connection_failing and
  writer_spooling may leave it out (the whole plant).
- threshold (oee_below, required): a FRACTION from 0 to 1, as GET /api/oee/ gives OEE (0.65 is 65 %).
  metric: oee (default), availability, performance or quality; window: hour (default) or shift.
- for_s: how long the condition must hold before the alert fires (the delay); reset_s: how long it must be gone
  before the alert resolves, so that a flapping signal does not flood anyone. 0 to 86,400 s each.
- webhook_url: http:// or https://. Shown back masked (scheme and host, the rest as ***: a chat or automation
  hook's path or query is often its token); sending the masked form back keeps the stored URL.
  webhook_secret (optional, 16 to 200 characters): the key of the X-OEE-Signature HMAC-SHA256; stored encrypted,
  never shown back (webhook_secret_set says whether one is set).
  Without one the key is derived from this installation's master key (keys/).
- email_to: a list of e-mail addresses (at most 20).
"""
from __future__ import annotations

import re
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from config.fields import FieldErrors, ValidationError, boolean_field, number_field, text_field, unknown_fields
from db import audit
from db.faults import iso
from db.models import ALERT_KINDS, AlertRule, Area, Line, Machine, Site

SCOPES = ("machine", "line", "area", "site")
METRICS = ("oee", "availability", "performance", "quality")
WINDOWS = ("hour", "shift")
FIELDS = ("name", "kind", *SCOPES, "for_s", "reset_s", "threshold", "metric", "window", "webhook_url",
          "webhook_secret", "email_to", "enabled")
READ_ONLY = ("id", "webhook_secret_set", "last_sent", "last_error", "last_error_at")
MAX_S = 86_400
MAX_EMAILS = 20
EMAIL_RE = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\Z")
SCOPE_OPTIONAL = ("connection_failing", "writer_spooling")


class NotFound(LookupError):
    pass


def validate(data: dict, session: Session) -> dict:
    """The clean rule (scope resolved to ids), or ValidationError naming every bad field."""
    errors = FieldErrors()
    if not isinstance(data, dict):
        raise ValidationError({"body": "a JSON object"})
    unknown_fields(errors, data, FIELDS, ignored=READ_ONLY)
    clean = {"name": text_field(errors, data, "name", max_len=200, what="the rule's name")}
    kind = data.get("kind")
    if kind not in ALERT_KINDS:
        errors.add("kind", f"one of {', '.join(ALERT_KINDS)}, not {kind!r}")
    clean["kind"] = kind
    clean.update(_scope(errors, data, session, kind))
    clean["for_s"] = number_field(errors, data, "for_s", default=0.0, lo=0, hi=MAX_S, what=" seconds")
    clean["reset_s"] = number_field(errors, data, "reset_s", default=0.0, lo=0, hi=MAX_S, what=" seconds")
    if kind == "oee_below":
        if data.get("threshold") is None:
            errors.add("threshold", "required for oee_below: a fraction from 0 to 1 (0.65 is 65 %)")
        clean["threshold"] = number_field(errors, data, "threshold", default=None, lo=0, hi=1,
                                          what=" (a fraction: 0.65 is 65 %)")
        metric, window = data.get("metric", "oee"), data.get("window", "hour")
        if metric not in METRICS:
            errors.add("metric", f"one of {', '.join(METRICS)}, not {metric!r}")
        if window not in WINDOWS:
            errors.add("window", f"hour or shift, not {window!r}")
        clean["metric"], clean["window"] = metric, window
    else:
        for key in ("threshold", "metric", "window"):
            if data.get(key) is not None:
                errors.add(key, "only for kind oee_below")
        clean["threshold"] = clean["metric"] = clean["window"] = None
    clean["webhook_url"] = _webhook_url(errors, data.get("webhook_url"))
    secret = data.get("webhook_secret")
    if secret is not None and (not isinstance(secret, str) or not 16 <= len(secret) <= 200):
        errors.add("webhook_secret", "text of 16 to 200 characters (or leave it out: a key derived from the "
                                     "installation's master key signs)")
    clean["webhook_secret"] = secret
    clean["email_to"] = _emails(errors, data.get("email_to"))
    clean["enabled"] = boolean_field(errors, data, "enabled", True)
    errors.raise_if_any()
    return clean


def _webhook_url(errors: FieldErrors, value) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or len(value) > 2000:
        errors.add("webhook_url", "an http:// or https:// URL of at most 2,000 characters")
        return None
    try:
        url = urlsplit(value.strip())
        url.port  # noqa: B018 - raises on a port that is no number
    except ValueError:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.hostname:
        errors.add("webhook_url", f"an http:// or https:// URL with a host, not {value[:80]!r}")
        return None
    return value.strip()


MASK = "***"


def masked_url(url: str | None) -> str | None:
    """The URL as pages, the API and the audit log show it: scheme://host[:port] and *** for any user, path or
    query (a Slack- or Teams-style hook carries its token there)."""
    if not url:
        return url
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port is not None:
        netloc += f":{parts.port}"
    hidden = parts.username or parts.password or parts.path.strip("/") or parts.query or parts.fragment
    return f"{parts.scheme}://{netloc}/{MASK}" if hidden else f"{parts.scheme}://{netloc}/"


def _emails(errors: FieldErrors, value) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or len(value) > MAX_EMAILS:
        errors.add("email_to", f"a list of at most {MAX_EMAILS} e-mail addresses")
        return []
    out = []
    for i, addr in enumerate(value):
        if not isinstance(addr, str) or len(addr) > 254 or not EMAIL_RE.match(addr.strip()):
            errors.add(f"email_to[{i}]", f"an e-mail address such as lead@plant.example, not {addr!r}")
        else:
            out.append(addr.strip())
    return out


def _scope(errors: FieldErrors, data: dict, session: Session, kind) -> dict:
    given = [s for s in SCOPES if data.get(s) not in (None, "")]
    out = {"machine_id": None, "line_id": None, "area_id": None, "site_id": None}
    if len(given) > 1:
        for s in given:
            errors.add(s, "give exactly one of machine, line, area or site")
        return out
    if not given:
        if kind not in SCOPE_OPTIONAL:
            errors.add("machine", "give exactly one of machine (its machine_id), line, area or site (name or id)")
        return out
    scope = given[0]
    key = data[scope]
    if isinstance(key, bool) or not isinstance(key, (str, int)):
        errors.add(scope, f"the {scope}'s {'machine_id' if scope == 'machine' else 'name or id'}, not {key!r}")
        return out
    key = str(key).strip()
    if scope == "machine":
        found = session.scalar(select(Machine.id).where(Machine.machine_id == key))
        if found is None:
            errors.add("machine", f"machine {key!r} does not exist (see /api/plc/machines/)")
        out["machine_id"] = found
        return out
    model = {"line": Line, "area": Area, "site": Site}[scope]
    ids = list(session.scalars(select(model.id).where(model.name == key)))
    if not ids and key.isascii() and key.isdigit() and int(key) < 2**31:
        ids = [i for i in [session.scalar(select(model.id).where(model.id == int(key)))] if i is not None]
    if not ids:
        errors.add(scope, f"{scope} {key!r} does not exist (see /api/config/{scope}s/)")
    elif len(ids) > 1:
        errors.add(scope, f"{scope} name {key!r} is used {len(ids)} times; give its id ({', '.join(map(str, ids))})")
    else:
        out[f"{scope}_id"] = ids[0]
    return out


# --- storage -----------------------------------------------------------------------------------------------------


def public(session: Session, r: AlertRule) -> dict:
    """A rule as the API shows it: the scope by its key, the secret only as set or not."""
    out = {"id": r.id, "name": r.name, "kind": r.kind}
    if r.machine_id is not None:
        out["machine"] = session.scalar(select(Machine.machine_id).where(Machine.id == r.machine_id))
    elif r.line_id is not None:
        out["line"] = session.scalar(select(Line.name).where(Line.id == r.line_id))
    elif r.area_id is not None:
        out["area"] = session.scalar(select(Area.name).where(Area.id == r.area_id))
    elif r.site_id is not None:
        out["site"] = session.scalar(select(Site.name).where(Site.id == r.site_id))
    out.update({"for_s": r.for_s, "reset_s": r.reset_s, "threshold": r.threshold, "metric": r.metric,
                "window": r.window, "webhook_url": masked_url(r.webhook_url),
                "webhook_secret_set": r.webhook_secret is not None,
                "email_to": list(r.email_to or []), "enabled": r.enabled, "last_sent": iso(r.last_sent),
                "last_error": r.last_error, "last_error_at": iso(r.last_error_at)})
    return out


def _apply(r: AlertRule, clean: dict, credentials) -> None:
    if clean["webhook_url"] and r.webhook_url and clean["webhook_url"] == masked_url(r.webhook_url):
        clean = {**clean, "webhook_url": r.webhook_url}  # the masked form sent back: unchanged
    for key in ("name", "kind", "machine_id", "line_id", "area_id", "site_id", "for_s", "reset_s", "threshold",
                "metric", "window", "webhook_url", "email_to", "enabled"):
        setattr(r, key, clean[key])
    if clean.get("webhook_secret"):
        if credentials is None:
            raise ValidationError({"webhook_secret": "cannot be stored: this installation has no master key"})
        try:
            r.webhook_secret = credentials.encrypt("webhook_secret", clean["webhook_secret"])
        except ValueError as exc:
            raise ValidationError({"webhook_secret": str(exc)}) from None


def _name_taken(session: Session, name: str, pk: int | None) -> None:
    q = select(func.count()).select_from(AlertRule).where(AlertRule.name == name)
    if pk is not None:
        q = q.where(AlertRule.id != pk)
    if session.scalar(q):
        raise ValidationError({"name": f"a rule named {name!r} exists already"})


def list_rules(engine: Engine, *, offset: int = 0, limit: int = 50) -> tuple[int, list[dict]]:
    with Session(engine) as session:
        total = session.scalar(select(func.count()).select_from(AlertRule)) or 0
        rows = session.scalars(select(AlertRule).order_by(AlertRule.name).offset(offset).limit(limit)).all()
        return total, [public(session, r) for r in rows]


def get_rule(engine: Engine, pk: int) -> dict:
    with Session(engine) as session:
        r = session.get(AlertRule, pk)
        if r is None:
            raise NotFound(f"no alert rule with id {pk}")
        return public(session, r)


def create_rule(engine: Engine, data: dict, credentials=None) -> dict:
    with Session(engine) as session, session.begin():
        clean = validate(data, session)
        _name_taken(session, clean["name"], None)
        r = AlertRule()
        _apply(r, clean, credentials)
        session.add(r)
        session.flush()
        after = public(session, r)
        audit.record(session, None, "alert_rule.create", f"alert rule {r.name}", None, after)
        pk = r.id
    return get_rule(engine, pk)


def update_rule(engine: Engine, pk: int, data: dict, credentials=None, *, partial: bool = False) -> dict:
    with Session(engine) as session, session.begin():
        r = session.get(AlertRule, pk)
        if r is None:
            raise NotFound(f"no alert rule with id {pk}")
        before = public(session, r)
        if partial:
            merged = {k: v for k, v in before.items() if k in FIELDS}
            if any(s in data for s in SCOPES):  # a new scope replaces the old one
                merged = {k: v for k, v in merged.items() if k not in SCOPES}
            data = {**merged, **data}
        clean = validate(data, session)
        _name_taken(session, clean["name"], pk)
        _apply(r, clean, credentials)
        session.flush()
        after = public(session, r)
        audit.record(session, None, "alert_rule.update", f"alert rule {r.name}", before, after)
    return get_rule(engine, pk)


def delete_rule(engine: Engine, pk: int) -> None:
    with Session(engine) as session, session.begin():
        r = session.get(AlertRule, pk)
        if r is None:
            raise NotFound(f"no alert rule with id {pk}")
        audit.record(session, None, "alert_rule.delete", f"alert rule {r.name}", public(session, r), None)
        session.delete(r)
