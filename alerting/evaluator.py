"""The alert evaluator: every few seconds, each enabled rule against the collector's live state.

Per rule and subject (a machine, a connection, the writer) a condition holds since some time. The alert opens
once the condition has held for_s (the delay) and resolves once it has been gone reset_s (so a signal that
flaps within reset_s keeps one alert open instead of flooding anyone). Alerts are stored (db/alerts.py), so an
alert open at a restart stays open and is not sent again; an acknowledgement made in a web process is read back
from the database and notified once. Notifications are queued to alerting.notify, never sent from here.

Conditions:
- machine_stopped: the machine is faulted, idle, blocked or offline (an unplanned stop; planned stops and
  changeovers are not), since its current state began.
- connection_failing: a PLC connection of the scope (or any) failing, since it went down.
- writer_spooling: the writer's database away, or rows dropped since the last evaluation (then held for 60 s).
- oee_below: the metric of a machine of the scope over the current hour or shift below the threshold; read
  from the database at most every OEE_EVERY_S per rule.

A process evaluates only the machines, connections and writer it has, so collector processes that share a plant
never fire the same alert twice, nor resolve each other's. A machine's open alert is kept while this process has no state of the machine
(just restarted, before its first read): only a machine seen running again resolves it.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerting.notify import Notification, Notifier
from db import alerts as store
from db.models import Machine

log = logging.getLogger(__name__)

STOPPED_STATES = ("faulted", "idle", "blocked", "offline")
EVERY_S = 2.0
OEE_EVERY_S = 60.0
DROPS_HOLD_S = 60.0


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat().replace("+00:00", "Z")


class Evaluator:
    """sources: machines() -> {machine pk: tracker snapshot}, connections() -> [{id, name, state, down_since,
    machine_ids}], writer() -> Writer.stats() or None."""

    def __init__(self, engine, notifier: Notifier, *, machines, connections, writer, oee_store=None,
                 publish=None, link_base: str = "", webhook_key=None, clock=time.time, node: str = ""):
        self.engine = engine
        self.notifier = notifier
        self.machines = machines
        self.connections = connections
        self.writer = writer
        self.oee_store = oee_store
        self.publish = publish or (lambda topic, message: None)
        self.link_base = link_base.rstrip("/")
        self.webhook_key = webhook_key or (lambda rule: None)  # rule -> bytes of its HMAC key
        self.clock = clock
        self.node = node  # this collector process's name: its writer is its own subject
        self._cleared_since: dict[tuple[int, str], float] = {}
        self._known: dict[int, str] = {}  # alert id -> the state last notified
        self._writer_bad_since: float | None = None
        self._drops_seen: int | None = None
        self._drops_until = 0.0
        self._oee_cache: dict[tuple[int, int], tuple[float, float | None]] = {}  # (rule, machine) -> (at, value)
        self._lock = threading.Lock()
        self.evaluations = 0
        self.last_error: str | None = None

    # --- one evaluation ------------------------------------------------------------------------------------------

    def run_once(self) -> None:
        with self._lock:  # the scheduler never overlaps it; a test calling it directly neither
            try:
                self._evaluate()
                self.last_error = None
            except Exception as exc:  # the database away: try again next time; say it once
                text = f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                if self.last_error != text:
                    log.warning("alert evaluation failed (%s); retrying every %.0f s", text, EVERY_S)
                self.last_error = text
            self.evaluations += 1

    def _evaluate(self) -> None:
        now = self.clock()
        rules = store.load_rules(self.engine)
        by_id = {r.id: r for r in rules}
        with Session(self.engine) as session:
            keys = dict(session.execute(select(Machine.id, Machine.machine_id)).all())
        machines = self.machines() or {}
        conditions: dict[tuple[int, str], tuple[float, int | None, str]] = {}
        for rule in rules:
            for subject, (since, mid, message) in self._conditions(rule, machines, keys, now).items():
                conditions[(rule.id, subject)] = (since, mid, message)
        connection_ids = {c["id"] for c in self.connections() or []}
        opened = store.open_alerts(self.engine)
        # acknowledgements made elsewhere (a web process): notify each once
        for key, alert in opened.items():
            known = self._known.get(alert["id"])
            if alert["state"] == "acknowledged" and known == "active" and key[0] in by_id:
                self._notify(by_id[key[0]], alert, "acknowledged", keys)
            self._known[alert["id"]] = alert["state"]
        for key, (since, mid, message) in conditions.items():
            self._cleared_since.pop(key, None)
            rule = by_id[key[0]]
            if key in opened or now - since < rule.for_s:
                continue
            alert = store.open_alert(self.engine, rule, key[1], mid, message, since)
            self._known[alert["id"]] = "active"
            log.info("alert %d: rule %r fired for %s (%s)", alert["id"], rule.name, key[1], message)
            self._notify(rule, alert, "active", keys)
        for key, alert in opened.items():
            if key in conditions:
                continue
            rule = by_id.get(key[0])
            if rule is not None and not self._ours(key[1], machines, connection_ids):
                continue  # another collector process's, or not seen since this one started: unknown, kept
            cleared = self._cleared_since.setdefault(key, now)
            if rule is not None and now - cleared < rule.reset_s:
                continue
            store.resolve_alert(self.engine, alert["id"], now, rule.name if rule else str(key[0]))
            self._cleared_since.pop(key, None)
            self._known.pop(alert["id"], None)
            log.info("alert %d: resolved (%s)", alert["id"], key[1])
            if rule is not None:
                self._notify(rule, {**alert, "state": "resolved"}, "resolved", keys)

    def _ours(self, subject: str, machines: dict, connection_ids: set) -> bool:
        """Is this subject one this process sees (its machines, its connections, its writer)?"""
        kind, _, ident = subject.partition(":")
        if kind == "machine":
            return int(ident) in machines
        if kind == "connection":
            return int(ident) in connection_ids
        if kind == "writer":
            return ident == self.node
        return True

    # --- conditions ------------------------------------------------------------------------------------------------

    def _conditions(self, rule, machines: dict, keys: dict, now: float) -> dict[str, tuple[float, int | None, str]]:
        out = {}
        in_scope = (lambda mid: True) if rule.machine_ids is None else (lambda mid: mid in rule.machine_ids)
        if rule.kind == "machine_stopped":
            for mid, snap in machines.items():
                if in_scope(mid) and snap.get("state") in STOPPED_STATES and snap.get("since") is not None:
                    code = snap.get("fault_code")
                    out[f"machine:{mid}"] = (snap["since"], mid, f"{keys.get(mid, mid)} {snap['state']}"
                                             + (f" (fault code {code})" if code else ""))
        elif rule.kind == "connection_failing":
            for c in self.connections() or []:
                ids = list(c.get("machine_ids") or [])
                if c.get("state") != "failing" or (rule.machine_ids is not None and not any(map(in_scope, ids))):
                    continue
                since = c.get("down_since") or now
                out[f"connection:{c['id']}"] = (since, ids[0] if ids else None,
                                                f"connection {c.get('name')} failing")
        elif rule.kind == "writer_spooling":
            stats = self.writer()
            if stats is not None:
                dropped = int(stats.get("dropped_rows") or 0)
                if self._drops_seen is not None and dropped > self._drops_seen:
                    self._drops_until = now + DROPS_HOLD_S
                self._drops_seen = dropped
                bad = not stats.get("database_ok", True) or now < self._drops_until
                if bad:
                    self._writer_bad_since = self._writer_bad_since or now
                    why = ("the database is away; rows kept in the spool" if not stats.get("database_ok", True)
                           else f"{dropped} rows dropped")
                    out[f"writer:{self.node}"] = (self._writer_bad_since, None, why)
                else:
                    self._writer_bad_since = None
        elif rule.kind == "oee_below" and self.oee_store is not None:
            for mid in machines:
                if not in_scope(mid):
                    continue
                value = self._metric(rule, mid, keys.get(mid), now)
                if value is not None and value < rule.threshold:
                    out[f"machine:{mid}"] = (now - rule.for_s, mid,
                                             f"{keys.get(mid, mid)} {rule.metric} {value:.1%} below "
                                             f"{rule.threshold:.1%} this {rule.window}")
        return out

    def _metric(self, rule, mid: int, key: str | None, now: float) -> float | None:
        """The rule's metric of one machine over the current hour or shift, read at most every OEE_EVERY_S."""
        cached = self._oee_cache.get((rule.id, mid))
        if cached is not None and now - cached[0] < OEE_EVERY_S:
            return cached[1]
        value = None
        if key is not None:
            from db.oee_queries import oee_report

            try:
                if rule.window == "shift":
                    report = oee_report(self.oee_store, "machine", key, now - 16 * 3600, now, bucket="shift")
                    current = [b for b in report.get("buckets") or [] if b["start"] <= now]
                    value = current[-1].get(rule.metric) if current else None
                else:
                    report = oee_report(self.oee_store, "machine", key, now - (now % 3600), now)
                    value = report.get(rule.metric)
            except (LookupError, ValueError) as exc:
                log.debug("oee_below %r: %s has no %s (%s)", rule.name, key, rule.metric, exc)
        if value is not None and not math.isfinite(value):
            value = None
        self._oee_cache[(rule.id, mid)] = (now, value)
        return value

    # --- telling -------------------------------------------------------------------------------------------------

    def _notify(self, rule, alert: dict, state: str, keys: dict) -> None:
        mid = alert.get("machine")
        machine_key = keys.get(mid) if mid is not None else None
        link = f"{self.link_base}/machine/{machine_key}" if machine_key else f"{self.link_base}/settings/alerts/"
        self.publish("alert", {"id": f"rule:{alert['id']}", "machine": mid, "active": state != "resolved",
                               "severity": "warning", "kind": "rule", "rule": rule.name, "rule_kind": rule.kind,
                               "state": state, "since": alert.get("started_at"), "message": alert.get("message")})
        try:
            key = self.webhook_key(rule) if rule.webhook_url else None
        except Exception as exc:  # a secret that cannot be opened: said on the rule, the e-mail still goes
            key = None
            store.record_delivery(self.engine, rule.id, error=f"webhook: its secret cannot be used: {exc}")
        self.notifier.submit(Notification(
            rule_id=rule.id, rule=rule.name, kind=rule.kind, scope=rule.scope, machine_id=machine_key, state=state,
            started_at=alert.get("started_at"), link=link, alert_id=alert["id"], message=alert.get("message") or "",
            webhook_url=rule.webhook_url, webhook_key=key, email_to=rule.email_to))


def start_alerting(runtime, *, every_s: float = EVERY_S) -> Evaluator:
    """The evaluator and its notifier in a collecting runtime: a scheduler job every every_s seconds."""
    from keys.master import derive_key, load_master_secret

    s = runtime.settings
    notifier = Notifier(runtime.store.engine, smtp_url=s.smtp_url, smtp_from=s.smtp_from).start()

    def machines():
        c = runtime.collectors
        return c.snapshot.machines() if c is not None and hasattr(c, "snapshot") else {}

    def connections():
        c = runtime.collectors
        if c is None or not hasattr(c, "pollers"):
            return []
        return [{"id": p.id, "name": p.name, "state": p.state, "down_since": p.down_since,
                 "machine_ids": list(p.machine_ids)} for p in list(c.pollers.values())]

    def writer():
        return runtime.writer.stats() if runtime.writer is not None else None

    master: list[bytes] = []

    def webhook_key(rule) -> bytes:
        if rule.webhook_secret:
            return runtime.credentials.decrypt("webhook_secret", rule.webhook_secret).encode()
        if not master:
            master.append(load_master_secret(s.data_dir))
        return derive_key(master[0], f"alert-webhook:{rule.id}")

    host = "localhost" if s.host in ("0.0.0.0", "::", "") else s.host
    evaluator = Evaluator(runtime.store.engine, notifier, machines=machines, connections=connections, writer=writer,
                          oee_store=runtime.store, publish=runtime.hub.publish,
                          link_base=f"http://{host}:{s.port}", webhook_key=webhook_key,
                          node=s.node_name)
    runtime.scheduler.add_job(evaluator.run_once, "interval", seconds=every_s, id="alert-evaluator",
                              max_instances=1, coalesce=True)
    evaluator.notifier_stop = notifier.stop
    return evaluator
