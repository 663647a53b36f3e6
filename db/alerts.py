"""Alerts in the database: what the evaluator (alerting/) opens and resolves, what GET /api/alerts/ lists and what
POST /api/alerts/<id>/ack acknowledges. Every change of an alert's state is audited in its own transaction.

An alert is active, then maybe acknowledged, then resolved; at most one unresolved alert per (rule, subject).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import and_, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from db import audit
from db.faults import iso
from db.models import ALERT_STATES, Alert, AlertRule, Area, Line, Machine


class NotFound(LookupError):
    pass


@dataclass
class Rule:
    """A rule as the evaluator needs it: its scope resolved to machine ids (None: the whole plant)."""

    id: int
    name: str
    kind: str
    scope: str  # "machine LINE-001", "line Filling", "plant"
    machine_ids: set[int] | None
    for_s: float
    reset_s: float
    threshold: float | None
    metric: str | None
    window: str | None
    webhook_url: str | None
    webhook_secret: dict | None
    email_to: list[str]


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


def load_rules(engine: Engine) -> list[Rule]:
    """The enabled rules with their machines."""
    with Session(engine) as session:
        rules = session.scalars(select(AlertRule).where(AlertRule.enabled.is_(True)).order_by(AlertRule.id)).all()
        machine_lines = {mid: lid for mid, lid in session.execute(select(Machine.id, Machine.line_id))}
        machine_keys = {mid: key for mid, key in session.execute(select(Machine.id, Machine.machine_id))}
        line_area = {lid: (aid, name) for lid, aid, name in session.execute(select(Line.id, Line.area_id, Line.name))}
        area_site = {aid: (sid, name) for aid, sid, name in session.execute(select(Area.id, Area.site_id, Area.name))}
        out = []
        for r in rules:
            if r.machine_id is not None:
                ids, scope = {r.machine_id}, f"machine {machine_keys.get(r.machine_id, r.machine_id)}"
            elif r.line_id is not None:
                ids = {m for m, lid in machine_lines.items() if lid == r.line_id}
                scope = f"line {line_area.get(r.line_id, (None, r.line_id))[1]}"
            elif r.area_id is not None:
                ids = {m for m, lid in machine_lines.items() if line_area.get(lid, (None,))[0] == r.area_id}
                scope = f"area {area_site.get(r.area_id, (None, r.area_id))[1]}"
            elif r.site_id is not None:
                ids = {m for m, lid in machine_lines.items()
                       if area_site.get(line_area.get(lid, (None,))[0], (None,))[0] == r.site_id}
                scope = f"site {r.site_id}"
            else:
                ids, scope = None, "plant"
            out.append(Rule(r.id, r.name, r.kind, scope, ids, r.for_s or 0.0, r.reset_s or 0.0, r.threshold,
                            r.metric, r.window, r.webhook_url, r.webhook_secret, list(r.email_to or [])))
        return out


def open_alerts(engine: Engine) -> dict[tuple[int, str], dict]:
    """The unresolved alerts by (rule id, subject)."""
    with Session(engine) as session:
        rows = session.scalars(select(Alert).where(Alert.state != "resolved")).all()
        return {(a.rule_id, a.subject): _alert(a) for a in rows}


def _alert(a: Alert, rule_name: str | None = None, machine_key: str | None = None) -> dict:
    return {"id": a.id, "rule_id": a.rule_id, "rule": rule_name, "subject": a.subject, "machine": a.machine_id,
            "machine_id": machine_key, "state": a.state, "message": a.message, "started_at": iso(a.started_at),
            "acknowledged_by": a.acknowledged_by, "acknowledged_at": iso(a.acknowledged_at),
            "resolved_at": iso(a.resolved_at)}


def open_alert(engine: Engine, rule: Rule, subject: str, machine_id: int | None, message: str,
               started_at: float) -> dict:
    with Session(engine) as session, session.begin():
        a = Alert(rule_id=rule.id, subject=subject, machine_id=machine_id, state="active", message=message[:2000],
                  started_at=_dt(started_at))
        session.add(a)
        session.flush()
        out = _alert(a, rule.name)
        audit.record(session, audit.SYSTEM, "alert.activate", f"alert {a.id} of rule {rule.name}", None,
                     {"subject": subject, "state": "active", "message": a.message})
    return out


def resolve_alert(engine: Engine, alert_id: int, at: float, rule_name: str) -> None:
    with Session(engine) as session, session.begin():
        a = session.get(Alert, alert_id)
        if a is None or a.state == "resolved":
            return
        before = a.state
        a.state, a.resolved_at = "resolved", _dt(at)
        audit.record(session, audit.SYSTEM, "alert.resolve", f"alert {alert_id} of rule {rule_name}",
                     {"state": before}, {"state": "resolved"})


def acknowledge_alert(engine: Engine, alert_id: int, actor: str | None = None) -> dict:
    """active -> acknowledged (who and when); an acknowledged or resolved alert stays as it is."""
    with Session(engine) as session, session.begin():
        a = session.get(Alert, alert_id)
        if a is None:
            raise NotFound(f"no alert with id {alert_id}")
        if a.state == "active":
            who = (actor if actor is not None else audit.current_actor())[:200]
            session.execute(update(Alert).where(Alert.id == alert_id, Alert.state == "active")
                            .values(state="acknowledged", acknowledged_by=who,
                                    acknowledged_at=datetime.now(timezone.utc)))
            rule = session.get(AlertRule, a.rule_id)
            audit.record(session, actor, "alert.acknowledge", f"alert {alert_id} of rule {rule.name if rule else ''}",
                         {"state": "active"}, {"state": "acknowledged", "acknowledged_by": who})
    return get_alert(engine, alert_id)


def get_alert(engine: Engine, alert_id: int) -> dict:
    with Session(engine) as session:
        row = session.execute(select(Alert, AlertRule.name, Machine.machine_id)
                              .join(AlertRule, Alert.rule_id == AlertRule.id)
                              .outerjoin(Machine, Alert.machine_id == Machine.id)
                              .where(Alert.id == alert_id)).first()
        if row is None:
            raise NotFound(f"no alert with id {alert_id}")
        return _alert(*row)


def list_alerts(engine: Engine, *, states=None, rule_id: int | None = None, machine_ids=None, offset: int = 0,
                limit: int = 50) -> tuple[int, list[dict]]:
    """(total, one page newest first). states: a subset of ALERT_STATES."""
    conds = []
    if states:
        conds.append(Alert.state.in_([s for s in states if s in ALERT_STATES]))
    if rule_id is not None:
        conds.append(Alert.rule_id == rule_id)
    if machine_ids is not None:
        conds.append(Alert.machine_id.in_(list(machine_ids)))
    where = and_(*conds) if conds else True
    with Session(engine) as session:
        total = session.scalar(select(func.count()).select_from(Alert).where(where)) or 0
        rows = session.execute(select(Alert, AlertRule.name, Machine.machine_id)
                               .join(AlertRule, Alert.rule_id == AlertRule.id)
                               .outerjoin(Machine, Alert.machine_id == Machine.id)
                               .where(where).order_by(Alert.started_at.desc(), Alert.id.desc())
                               .offset(offset).limit(limit)).all()
        return total, [_alert(*r) for r in rows]


def states_of(engine: Engine, alert_ids) -> dict[int, str]:
    """The stored state of these alerts (the evaluator hears of acknowledgements made in the web process)."""
    ids = list(alert_ids)
    if not ids:
        return {}
    with Session(engine) as session:
        return dict(session.execute(select(Alert.id, Alert.state).where(Alert.id.in_(ids))).all())


def record_delivery(engine: Engine, rule_id: int, *, sent_at: float | None = None, error: str | None = None) -> None:
    """How the last notification of a rule went: sent_at when a channel delivered it, error when one failed
    (kept until a notification goes through on every channel)."""
    values = {}
    if sent_at is not None:
        values["last_sent"] = _dt(sent_at)
    if error is None:
        values.update(last_error=None, last_error_at=None)
    else:
        values.update(last_error=error[:2000], last_error_at=datetime.now(timezone.utc))
    with engine.begin() as conn:
        conn.execute(update(AlertRule).where(AlertRule.id == rule_id).values(**values))
