"""The collectors: one scheduler job per connection, built from the configuration in the database.

- Jobs never overlap themselves (max_instances=1, coalesce); a cycle that would is skipped, counted, and why is kept
  (CollectorManager.skips: the cycle in progress, the read and process time of the one before), and the
  count is logged at most once a minute per connection, not once per skipped cycle.
- Start times are jittered across the first interval so that many PLCs are not polled in the same instant.
- `reload()` compares each connection's configuration with what runs and restarts only what changed; it runs
  every few seconds and when the API or the wizard saves, so changes need no restart. The timed one first reads
  a cheap stamp of the configuration (collector_config.config_stamp) and reads the tags again only when the stamp
  moved, or every full_reload_s whatever it says (an edit by hand that keeps every sum of the stamp); an explicit
  reload() always reads everything.
- Several collector processes can share one PostgreSQL: a connection assigned to a node (collector_node) is
  polled by that node only; the others are claimed with PostgreSQL advisory locks held on a session of their own,
  so when a node dies its locks go with its session and another node takes its connections at its next reload.
"""
from __future__ import annotations

import collections
import logging
import random
import threading
import time
from datetime import datetime, timedelta, timezone

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
from apscheduler.executors.pool import ThreadPoolExecutor

from collectors.base import ConfigError
from collectors.machine_model import TYPE_MODULUS, MachineTracker
from collectors.poller import BackoffPolicy, ConnectionPoller
from collectors.snapshot import LatestValues
from db import collector_config

log = logging.getLogger(__name__)
UTC = timezone.utc
ADVISORY_LOCK_CLASS = 0x0EE  # first key of the two-key advisory lock; the second is the connection id
EXECUTOR = "collectors"


class ConnectionClaims:
    """Which connections this process may poll. SQLite: one process, all of them."""

    def __init__(self, store, node: str):
        self.store = store
        self.node = node
        self._session = None
        self.held: set[int] = set()

    def _connection(self):
        if self._session is None or self._session.closed:
            import psycopg

            url = self.store.engine.url.set(drivername="postgresql")
            self._session = psycopg.connect(url.render_as_string(hide_password=False), autocommit=True,
                                            connect_timeout=5)
            self.held.clear()  # a new session holds nothing
        return self._session

    def filter(self, connections: list[dict]) -> list[dict] | None:
        """The connections this node polls; None when the claims cannot be checked (keep what runs)."""
        mine = [c for c in connections if c["collector_node"] in (None, "", self.node)]
        if self.store.engine.dialect.name != "postgresql":
            return mine
        wanted = {c["id"] for c in mine if not c["collector_node"]}
        for attempt in (1, 2):  # a session lost with the database gets one fresh try before giving up
            try:
                session = self._connection()
                for cid in sorted(wanted - self.held):
                    row = session.execute("SELECT pg_try_advisory_lock(%s, %s)", (ADVISORY_LOCK_CLASS, cid)).fetchone()
                    if row[0]:
                        self.held.add(cid)
                for cid in sorted(self.held - wanted):
                    session.execute("SELECT pg_advisory_unlock(%s, %s)", (ADVISORY_LOCK_CLASS, cid))
                    self.held.discard(cid)
                break
            except Exception as exc:
                self.close()
                if attempt == 2:
                    log.debug("cannot claim connections through PostgreSQL advisory locks: %s", exc)
                    return None
        return [c for c in mine if c["collector_node"] == self.node or c["id"] in self.held]

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
        self.held.clear()


class CollectorManager:
    def __init__(self, runtime, *, backoff: BackoffPolicy | None = None, heartbeat_s: float = 60.0,
                 reload_interval_s: float = 10.0, timeout_s: float = 3.0, count_bucket_s: float = 60.0,
                 watchdog_s: float | None = None, full_reload_s: float = 300.0):
        self.runtime = runtime
        self.store = runtime.store
        self.writer = runtime.writer
        self.scheduler = runtime.scheduler
        self.hub = runtime.hub
        self.snapshot = LatestValues()
        self.backoff = backoff or BackoffPolicy()
        self.heartbeat_s = heartbeat_s
        self.reload_interval_s = reload_interval_s
        self.timeout_s = timeout_s
        self.watchdog_s = watchdog_s  # None: the poller's own default from timeout_s
        self.count_bucket_s = count_bucket_s  # width of the production-count rows (time-scaled tests use less)
        self.claims = ConnectionClaims(self.store, runtime.settings.node_name)
        self.pollers: dict[int, ConnectionPoller] = {}
        self._fingerprints: dict[int, str] = {}
        self.config_errors: dict[int, str] = {}
        self.config_error_names: dict[int, str] = {}  # connection id -> name, for /healthz
        self.trackers: dict[int, MachineTracker] = {}
        self.tracker_locks: dict[int, threading.Lock] = {}
        self._reload_lock = threading.Lock()
        self._skip_logged: dict[int, float] = {}
        self.skips: collections.deque = collections.deque(maxlen=200)  # the causes of the last skipped cycles
        self._started = False
        self._stopping = threading.Event()
        self._config_ok = True
        self.full_reload_s = full_reload_s
        self._loaded: tuple | None = None  # (stamp, configuration, monotonic time) of the last full read
        self._fingerprinted: dict[int, tuple[dict, str]] = {}  # connection id -> (configuration, fingerprint)
        self.full_reads = 0  # full reads of the configuration (tests and the bench count them)
        self.on_change = None  # on_change(changes) after a reload that changed what runs (the process re-freezes gc)

    # --- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> None:
        self.scheduler.add_executor(ThreadPoolExecutor(max_workers=32), EXECUTOR)
        self.scheduler.add_listener(self._on_skipped, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)
        # APScheduler warns on every skipped run; we count them and say so once a minute instead.
        logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
        logging.getLogger("apscheduler.executors").setLevel(logging.ERROR)
        self._started = True
        self.reload()
        self.scheduler.add_job(self.reload_if_changed, "interval", seconds=self.reload_interval_s, id="collectors-reload",
                               executor=EXECUTOR, max_instances=1, coalesce=True)
        # Its own thread, not a job of the collectors' pool: that pool can be full of the very calls it watches.
        self._watchdog = threading.Thread(target=self._watch, name="collectors-watchdog", daemon=True)
        self._watchdog.start()

    def _watch(self) -> None:
        while not self._stopping.wait(1.0):
            for poller in list(self.pollers.values()):
                try:
                    poller.check_watchdog()
                except Exception:  # noqa: BLE001 - the watchdog must keep watching
                    poller.log.exception("collectors' watchdog: checking connection %s failed", poller.name)

    def stop(self) -> None:
        self._started = False
        self._stopping.set()
        for job_id in ["collectors-reload"] + [self._job_id(cid) for cid in self.pollers]:
            try:
                self.scheduler.remove_job(job_id)
            except Exception:
                pass
        for poller in self.pollers.values():
            poller.abort_if_busy()  # all at once: a stop waits for the slowest driver, not their sum
        for poller in self.pollers.values():
            poller.stop()
        now = time.time()
        for mid, tracker in self.trackers.items():
            with self.tracker_locks[mid]:
                out = tracker.flush(now)
            self.writer.submit_counts(out.counts)
        self.pollers.clear()
        self.claims.close()

    # --- configuration ---------------------------------------------------------------------------------------

    @staticmethod
    def _job_id(connection_id: int) -> str:
        return f"connection-{connection_id}"

    def reload_if_changed(self) -> dict:
        return self.reload(if_changed=True)

    def _configuration(self, if_changed: bool) -> list[dict]:
        """The configuration: the one read last when if_changed and its stamp has not moved, else read whole."""
        engine = self.store.engine
        stamp = collector_config.config_stamp(engine)  # before the read: a change during it moves the next stamp
        loaded = self._loaded
        if (if_changed and loaded is not None and loaded[0] == stamp
                and time.monotonic() - loaded[2] < self.full_reload_s):
            return loaded[1]
        config = collector_config.load_collector_config(engine, getattr(self.runtime, "credentials", None))
        self.full_reads += 1
        self._loaded = (stamp, config, time.monotonic())
        return config

    def reload(self, *, if_changed: bool = False) -> dict:
        """Bring the running pollers in line with the database. Returns what changed. if_changed (the timed
        reload): skip reading the tags when the configuration's stamp has not moved."""
        if not self._started:
            return {}
        with self._reload_lock:
            try:
                # The claims are asked every time: another node's connections are taken when it dies.
                wanted = self.claims.filter(self._configuration(if_changed))
            except Exception as exc:
                wanted = None
                error = exc
            else:
                error = None
            if wanted is None:
                # The database is away: keep polling what runs (the writer spools); say so once.
                if self._config_ok:
                    log.warning("cannot read the collectors' configuration (%s); keeping the %d running connections",
                                str(error).splitlines()[0] if error else "claims unavailable", len(self.pollers))
                self._config_ok = False
                return {}
            if not self._config_ok:
                log.info("collectors' configuration readable again")
            self._config_ok = True
            wanted_by_id = {c["id"]: c for c in wanted}
            changes = {"added": [], "removed": [], "restarted": []}
            for cid in list(self.pollers):
                if cid not in wanted_by_id:
                    self._remove(cid)
                    changes["removed"].append(cid)
            for cid in list(self.config_errors):  # a connection deleted or disabled is no problem any more
                if cid not in wanted_by_id:
                    self.config_errors.pop(cid, None)
                    self.config_error_names.pop(cid, None)
                    self._fingerprints.pop(cid, None)
            for cid in [c for c in self._fingerprinted if c not in wanted_by_id]:
                del self._fingerprinted[cid]
            for cid, cfg in wanted_by_id.items():
                # The same dict as last time (the stamp did not move): its fingerprint, a JSON dump of all its
                # tags (0.2-0.3 s at 50,000 tags), is the one computed then.
                seen = self._fingerprinted.get(cid)
                fp = seen[1] if seen is not None and seen[0] is cfg else collector_config.fingerprint(cfg)
                self._fingerprinted[cid] = (cfg, fp)
                if self._fingerprints.get(cid) == fp:
                    continue
                restarted = cid in self.pollers
                if restarted:
                    self._remove(cid)
                if self._add(cfg):
                    changes["restarted" if restarted else "added"].append(cid)
                self._fingerprints[cid] = fp
            if any(changes.values()):
                self.hub.publish("config", changes)  # live: WebSocket clients of /ws/config/ hear of it
                log.info("collectors: %d connections running (added %s, removed %s, restarted %s)",
                         len(self.pollers), changes["added"], changes["removed"], changes["restarted"])
                if self.on_change is not None:
                    self.on_change(changes)
            return changes

    def _tracker_for(self, machine_id: int, cfg: dict) -> None:
        machine = cfg["machines"].get(machine_id, {})
        if machine_id in self.trackers:  # a saved change of its code tables applies; its counters stay
            with self.tracker_locks[machine_id]:
                self.trackers[machine_id].configure(machine.get("state_code_map"), machine.get("fault_kinds"))
            return
        moduli = {}
        for tag in cfg["tags"]:
            if tag["machine_id"] == machine_id and (tag["role"] or "").startswith("counter."):
                moduli[tag["role"]] = tag["options"].get("rollover") or TYPE_MODULUS.get(tag["data_type"].upper())
        new_ids = [machine_id]
        collector_config.close_open_states(self.store.engine, self.store.backend_name, new_ids)
        self.trackers[machine_id] = MachineTracker(machine_id, state_code_map=machine.get("state_code_map"),
                                                   fault_kinds=machine.get("fault_kinds"),
                                                   counter_moduli=moduli, count_bucket_s=self.count_bucket_s)
        self.tracker_locks[machine_id] = threading.Lock()

    def _add(self, cfg: dict) -> bool:
        try:
            if cfg.get("credential_error"):  # never poll with a secret that could not be decrypted
                field, _, message = cfg["credential_error"].partition(": ")
                raise ConfigError(field, message)
            for tag in cfg["tags"]:
                if tag["machine_id"]:
                    self._tracker_for(tag["machine_id"], cfg)
            poller = ConnectionPoller(cfg, writer=self.writer, snapshot=self.snapshot, hub=self.hub,
                                      trackers=self.trackers, tracker_locks=self.tracker_locks,
                                      backoff=self.backoff, heartbeat_s=self.heartbeat_s, timeout_s=self.timeout_s,
                                      watchdog_s=self.watchdog_s)
        except ConfigError as exc:
            # Validation at save time should make this rare; a bad row must not stop the others.
            self.config_errors[cfg["id"]] = str(exc)
            self.config_error_names[cfg["id"]] = cfg["name"]
            machines = ",".join(sorted(m["machine_id"] for m in (cfg.get("machines") or {}).values())) or None
            log.error("connection %s not started: %s", cfg["name"], exc,
                      extra={"connection": cfg["name"], "machine": machines})
            return False
        self.config_errors.pop(cfg["id"], None)
        self.config_error_names.pop(cfg["id"], None)
        self.pollers[cfg["id"]] = poller
        interval = max(poller.interval_s, 0.1)
        first = datetime.now(UTC) + timedelta(seconds=random.uniform(0, min(interval, 2.0)))
        self.scheduler.add_job(poller.run_cycle, "interval", seconds=interval, id=self._job_id(cfg["id"]),
                               executor=EXECUTOR, max_instances=1, coalesce=True, next_run_time=first,
                               misfire_grace_time=None, replace_existing=True)
        return True

    def _remove(self, cid: int) -> None:
        try:
            self.scheduler.remove_job(self._job_id(cid))
        except Exception:
            pass
        poller = self.pollers.pop(cid, None)
        self._fingerprints.pop(cid, None)
        if poller is not None:
            poller.stop()
            gone = [t.tag_id for t in poller.tags]
            self.snapshot.forget_tags(gone)
            self.hub.publish("forget", {"tags": gone})  # web processes' copies too: a tag id can be reused

    # --- skipped cycles --------------------------------------------------------------------------------------

    def _on_skipped(self, event) -> None:
        if not event.job_id.startswith("connection-"):
            return
        cid = int(event.job_id.split("-", 1)[1])
        poller = self.pollers.get(cid)
        if poller is None:
            return
        poller.skipped_cycles += 1
        why = self.skip_cause(event, poller)
        self.skips.append(why)
        log.debug("connection %s: cycle skipped: %s", poller.name, why)  # the warning below: once a minute
        now = time.monotonic()
        if now - self._skip_logged.get(cid, 0.0) >= 60:
            self._skip_logged[cid] = now
            poller.log.warning("connection %s: cycle skipped (%d skipped so far; %s); the PLC, the plan or the "
                               "process is slower than the %.0f ms interval", poller.name, poller.skipped_cycles,
                               why, poller.interval_s * 1000)

    @staticmethod
    def skip_cause(event, poller: ConnectionPoller) -> dict:
        """Why a cycle was skipped: APScheduler's kind (max_instances: the previous cycle still ran when this
        one was due; missed: submitted later than misfire_grace_time), how late the scheduler saw it, and the
        timing of the cycle in progress or the one before."""
        now = time.time()
        due = [t.timestamp() for t in (getattr(event, "scheduled_run_times", None) or [])]
        if not due and getattr(event, "scheduled_run_time", None) is not None:
            due = [event.scheduled_run_time.timestamp()]
        why = {"connection": poller.name, "at": round(now, 3),
               "kind": "max_instances" if event.code == EVENT_JOB_MAX_INSTANCES else "missed",
               "due_s_ago": round(now - due[-1], 3) if due else None}
        began = poller.cycle_started_at
        if began is not None:
            why["running_for_s"] = round(now - began, 3)
        if poller.last_cycle is not None:
            last_began, read_s, process_s = poller.last_cycle
            why.update(last_began_s_ago=round(now - last_began, 3), last_read_s=round(read_s, 3),
                       last_process_s=round(process_s, 3))
        return why

    # --- reading ---------------------------------------------------------------------------------------------

    def connection_health(self, connection_id: int) -> dict | None:
        if connection_id in self.config_errors:
            return self._config_error_health(connection_id)
        poller = self.pollers.get(connection_id)
        return poller.health() if poller is not None else None

    def health(self) -> list[dict]:
        out = [p.health() for p in self.pollers.values()]
        out += [self._config_error_health(cid) for cid in list(self.config_errors)]
        return out

    def _config_error_health(self, cid: int) -> dict:
        return {"connection_id": cid, "name": self.config_error_names.get(cid), "state": "config_error",
                "last_error": {"error": None, "message": self.config_errors.get(cid)}}
