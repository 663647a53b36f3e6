"""What runs behind the web app: the store, the writer, the scheduler, the hub, and (in the demo) the plant.

app.py builds one Runtime and hands it to the Flask server as `server.extensions["oee"]`; pages, the API and the
WebSocket read it from there. Start order matters: the database first (a bad URL must fail before anything
listens), then the writer, then whatever produces data.
"""
from __future__ import annotations

import gc
import logging
import os
import threading
import time

from apscheduler.schedulers.background import BackgroundScheduler

from collectors.base import set_settings_file_folder
from db import backend as backends
from db.spool import Spool
from db.store import Store, open_store
from db.writer import Writer
from live.hub import Hub
from processes.settings import Settings

log = logging.getLogger(__name__)
GC_THRESHOLDS = (50_000, 20, 20)  # young objects collected every 50,000 allocations, not 700 (Python's default)
APP_VERSION = "0.1.0"


class Runtime:
    def __init__(self, settings: Settings, *, collector_options: dict | None = None,
                 collector_argv: list[str] | None = None):
        self.settings = settings
        self.collector_argv = collector_argv or []  # options the collector process gets (settings.collector_process)
        self.collector_options = collector_options or {}  # backoff, timeouts: tests make them short
        self.store: Store | None = None
        self.writer: Writer | None = None
        self.scheduler: BackgroundScheduler | None = None
        self.hub = Hub()
        self.plant = None  # the simulated plant, when the demo runs
        # collectors.manager.CollectorManager when this process collects; live.remote_collectors.RemoteCollectors
        # when collector processes report to this one over the live bus
        self.collectors = None
        self.collector_process = None  # processes.collector_process.CollectorProcess: the child that collects for us
        self.live_bus_key: bytes | None = None  # the local live bus's key (settings.collector_process)
        self.live = None  # live.service.LiveService: WebSocket fan-out and the bridge between processes
        self.credentials = None  # keys.credentials.Credentials: seals and opens PLC passwords (set by start)
        self.uns = None  # uns.publisher.UnsPublisher: the plant published to an MQTT broker (--mqtt-url)
        self.alerting = None  # alerting.evaluator.Evaluator where this process collects: alert rules at work
        self.started_at = time.time()
        self._stopped = threading.Event()

    @property
    def collects(self) -> bool:
        """Does this process poll PLCs? (Role all with collector_process leaves that to its child.)"""
        s = self.settings
        return s.role == "collector" or (s.role == "all" and not s.collector_process)

    def start(self) -> "Runtime":
        s = self.settings
        policy = backends.TimeSeriesPolicy(samples_retention_days=s.samples_retention_days,
                                           compress_after_days=s.compress_after_days)
        self.store = open_store(s.effective_database_url, timescaledb=s.timescaledb, policy=policy)
        self._start_credentials()
        set_settings_file_folder(s.data_dir / "certs")  # the only folder PLC settings may name files in
        if self.collects:
            self.writer = Writer(self.store, Spool(s.spool_dir))
            self.writer.start()
        self.scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
        self.scheduler.start()
        from live.service import LiveService

        if s.collector_process:
            import secrets

            self.live_bus_key = secrets.token_bytes(32)
        elif s.live_bus == "local":
            self.live_bus_key = bytes.fromhex(os.environ.get("OEE_LIVE_BUS_KEY", ""))
        self.live = LiveService(self).start()  # before the collectors: their first values must reach it
        if self.collects:
            self._start_uns()  # before the collectors, as the live service: their first values are published too
            self._start_collection()
            from db.oee_summary import schedule as schedule_oee_summary

            schedule_oee_summary(self.scheduler, self.store)  # OEE by hour and shift for Grafana (PostgreSQL)
            from db.oee_hours_refresh import schedule as schedule_oee_hours

            schedule_oee_hours(self.scheduler, self.store)  # exact hourly Totals behind long reports (db/oee_hours.py)
            from alerting.evaluator import start_alerting

            self.alerting = start_alerting(self)  # against this process's own machines, connections and writer
        elif s.collector_process:
            self._start_collector_process()
        elif self.live.bus is not None:
            from live.remote_collectors import RemoteCollectors

            self.collectors = RemoteCollectors(self.live)
        return self

    def _start_collector_process(self) -> None:
        """The child that collects (processes/collector_process.py), then the demo plant it polls. The child imports
        while the plant starts; once the demo's machines are in the database it is asked to reload at once."""
        from live.remote_collectors import RemoteCollectors
        from processes.collector_process import CollectorProcess

        bus = self.live.bus
        self.collector_process = CollectorProcess(self.collector_argv, self.live.bus_kind,
                                                  getattr(bus, "address", None), self.live_bus_key).start()
        self.collectors = RemoteCollectors(self.live)
        if self.settings.demo:
            try:
                from processes.demo import start_demo
            except ImportError:
                log.info("simulated plant not available in this build; running without demo")
                return
            start_demo(self)

            def reload_now() -> None:
                try:
                    self.collectors.reload()
                except Exception as exc:  # its own timer picks the demo up within 10 s
                    log.debug("collector process: reload after the demo's start: %s", exc)

            threading.Thread(target=reload_now, name="collector-reload", daemon=True).start()

    def _start_uns(self) -> None:
        """The Unified Namespace publisher (uns/), in the process that collects, when --mqtt-url is given."""
        s = self.settings
        if not s.mqtt_url:
            return
        from uns.publisher import UnsPublisher

        node = None
        if s.sparkplug_group:  # a Sparkplug B edge node too; its id defaults to the site's name
            from uns.sparkplug_node import SparkplugNode

            sites = [m["site"] for m in self.live.catalog.machines.values() if m.get("site")]
            node = SparkplugNode(s.mqtt_broker, s.sparkplug_group, s.sparkplug_node or (sites[0] if sites else "oee"),
                                 primary_host=s.sparkplug_primary_host, live=self.live)
        self.uns = UnsPublisher(self.live, self.store, s.mqtt_broker, prefix=s.mqtt_prefix,
                                buffer_limit=s.mqtt_buffer, node_name=s.node_name, sparkplug=node).start()

    def tune_garbage_collector(self, freeze_after_s: float = 10.0) -> None:
        """For a process that polls thousands of tags: Python's default thresholds (700, 10, 10) ran a full
        collection more than once a second at 20,000 tags, each walking every object of the process (up to 225 ms,
        every thread paused). Collect young objects less often, and once the connections have built their plans,
        move what exists then out of the collector's sight (gc.freeze). bench/collect, 20,000 tags mixed, same
        machine, quiet: collector CPU 82 % -> 62 % of a core, skipped cycles 5 -> 0, p99 latency 3.4 -> 2.4 s.
        Again freeze_after_s after every reload that changed what runs: the new pollers' plans and tag lists were
        young objects walked by every collection (and a freeze at a fixed 10 s after the start came before the
        connections of a 50,000-tag plant had read).
        A freeze after a change that only added connections (the start) collects the young generations and
        freezes, without a full collection: a full one walks every object of the process with the GIL held
        (0.40-0.76 s at 25,000 tags a process in bench.collect at 50,000 tags, 2 processes) while the pollers'
        cycles wait, and that one pause was the skipped cycles of the window (all EVENT_JOB_MAX_INSTANCES: the
        cycles in progress ran past their next due time). Only after a change that removed or restarted a
        connection does the refreeze unfreeze and collect everything once, so what the removed pollers held is
        freed, not kept frozen for ever (their cyclic garbage sits in the frozen generation). The collections are
        counted and timed (gc_pauses()), the refreezes too (refreezes), and logged at stop.
        Called by app.py's main and wsgi.py for every role (not by the tests' in-process runtimes): a web process's
        requests make garbage too (a site's OEE report of 500 machines some 150,000 objects: ~200 young
        collections and a full one or two each time at the default thresholds)."""
        gc.set_threshold(*GC_THRESHOLDS)
        self._gc_pauses = {0: [0, 0.0], 1: [0, 0.0], 2: [0, 0.0]}  # generation -> [collections, seconds]
        self.refreezes: list[tuple[float, float, bool]] = []  # (epoch s, seconds, whether a full collection)
        started = [0.0]

        def timed(phase: str, info: dict) -> None:
            if phase == "start":
                started[0] = time.perf_counter()
            else:
                entry = self._gc_pauses[info["generation"]]
                entry[0] += 1
                entry[1] += time.perf_counter() - started[0]

        gc.callbacks.append(timed)
        changed = threading.Event()
        changed.set()  # the start is a change
        removed = threading.Event()  # a change since the last freeze removed or restarted a connection

        def on_change(changes: dict | None = None) -> None:
            if changes is None or changes.get("removed") or changes.get("restarted"):
                removed.set()
            changed.set()

        def refreeze() -> None:
            while not self._stopped.is_set():
                if not changed.wait(1.0):
                    continue
                changed.clear()
                if self._stopped.wait(freeze_after_s):
                    return
                if changed.is_set():
                    continue  # changed again meanwhile: wait until it settles
                began, full = time.perf_counter(), removed.is_set()
                removed.clear()
                if full:
                    gc.unfreeze()
                    gc.collect()
                else:
                    gc.collect(1)  # the young ones only: what is alive then is frozen with the rest
                gc.freeze()
                self.refreezes.append((time.time(), time.perf_counter() - began, full))
                log.debug("%d objects of the running collectors frozen out of the garbage collector (%s)",
                          gc.get_freeze_count(), "after a full collection" if full else "young collected")

        if self.collectors is not None and hasattr(self.collectors, "on_change"):
            self.collectors.on_change = on_change
        threading.Thread(target=refreeze, name="gc-freeze", daemon=True).start()

    def gc_pauses(self) -> dict[int, tuple[int, float]] | None:
        """Cyclic garbage collections since tune_garbage_collector: generation -> (count, seconds paused)."""
        pauses = getattr(self, "_gc_pauses", None)
        return None if pauses is None else {g: (n, round(t, 3)) for g, (n, t) in pauses.items()}

    def _start_credentials(self) -> None:
        """The PLC credential cipher (key from OEE_SECRET_KEY or data/secret.key), and plain-text secrets left in
        the database by an older version sealed with it. A key that cannot be loaded is reported, not fatal: the
        connections that need it say so, the rest of the app runs."""
        from db.collector_config import seal_stored_secrets
        from keys.credentials import Credentials

        self.credentials = Credentials.from_settings(self.settings)
        if self.credentials.problem:
            log.error("PLC credentials: %s", self.credentials.problem)
            return
        try:
            sealed = seal_stored_secrets(self.store.engine, self.credentials)
        except Exception as exc:  # another process may be doing the same; the next start tries again
            log.warning("PLC credentials: could not encrypt the stored plain-text secrets (%s)",
                        str(exc).splitlines()[0])
        else:
            if sealed:
                log.info("PLC credentials: encrypted the stored secrets of %d connection(s)", sealed)

    def _start_collection(self) -> None:
        """Demo plant and collectors; both arrive with the [plant] and [collect] work and are optional here."""
        if self.settings.demo:
            try:
                from processes.demo import start_demo
            except ImportError:
                log.info("simulated plant not available in this build; running without demo")
            else:
                start_demo(self)
        try:
            from collectors.manager import CollectorManager
        except ImportError:
            return
        self.collectors = CollectorManager(self, **self.collector_options)
        self.collectors.start()

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        began = time.monotonic()
        steps = []

        def step(name: str, fn) -> None:
            t = time.monotonic()
            fn()
            steps.append(f"{name} {time.monotonic() - t:.1f} s")

        if self.live is not None:
            step("live", self.live.stop)
        if self.uns is not None:
            step("mqtt", self.uns.stop)
        if self.collectors is not None:
            step("collectors", self.collectors.stop)
        if self.collector_process is not None:
            # before the plant: its PLCs vanishing would read as failures
            step("collector process", self.collector_process.stop)
        if self.scheduler is not None:
            step("scheduler", lambda: self.scheduler.shutdown(wait=False))
        if self.alerting is not None:
            step("alert notifications", self.alerting.notifier_stop)
        if self.plant is not None:
            step("plant", self.plant.stop)
        if self.writer is not None:
            step("writer", self.writer.stop)
        if self.store is not None:
            step("database", self.store.close)
        pauses = self.gc_pauses()
        if pauses:
            log.info("garbage collector while running: %s", ", ".join(
                f"generation {g} {n} collections {t:.2f} s" for g, (n, t) in pauses.items()))
        if steps:
            log.info("stopped in %.1f s (%s)", time.monotonic() - began, ", ".join(steps))

    def health(self) -> dict:
        """The whole health document (/healthz for viewers, /dataflow-monitor/, /metrics). status: ok; starting
        (the collector process has not reported yet, for a minute); degraded (something fails: each problem in
        `problems`, {"component", "error"}); stopping. public_health() is what anyone may see of it."""
        store = self.store
        writer = self.writer.stats() if self.writer else None
        if writer is None and self.collectors is not None and getattr(self.collectors, "remote", False):
            writer = self.collectors.writer_stats()  # the collector processes' writers
        connections = self.collectors.health() if self.collectors is not None else []
        problems = health_problems(connections, writer)
        mqtt = self.uns.stats() if self.uns is not None else None
        if mqtt is None and self.collectors is not None and getattr(self.collectors, "remote", False):
            mqtt = self.collectors.uns_stats()  # the collector processes' publishers
        if mqtt is not None and mqtt.get("problem"):
            problems.append({"component": "mqtt publisher", "error": mqtt["problem"]})
        child = None
        starting = False
        if self.collector_process is not None:
            child = {**self.collector_process.stats(), "reporting": self.collectors.reporting}
            if not child["reporting"]:  # starting (or restarting) for a minute, then it is a problem
                if time.time() - (child["started_at"] or 0) < 60:
                    starting = True
                else:
                    problems.append({"component": "collector process",
                                     "error": f"process {child['pid']} has not reported for a minute"
                                              + ("" if child["running"] else
                                                 f" (not running; last exit code {child['last_exit_code']})")})
        if store is None:
            problems.insert(0, {"component": "database", "error": "not open"})
        if self._stopped.is_set():
            status = "stopping"
        elif problems:
            status = "degraded"
        else:
            status = "starting" if starting else "ok"
        return {
            "status": status,
            "version": APP_VERSION,
            "problems": problems,
            "role": self.settings.role,
            "uptime_s": round(time.time() - self.started_at, 1),
            "database": {
                "backend": store.backend_name if store else None,
                "detail": store.backend.detail if store else None,
                "schema_version": store.schema_version if store else None,
                "url": store.url if store else None,
            },
            "writer": writer,
            "timescaledb_jobs": (writer or {}).get("timescaledb_jobs"),
            "connections": connections,
            "live": self.live.stats() if self.live is not None else None,
            "collector_process": child,
            "mqtt": mqtt,
        }


def health_problems(connections: list[dict], writer: dict | None) -> list[dict]:
    """What fails now, each with why: connections failing or not configurable, the writer's database, our
    TimescaleDB policies whose last run failed. A problem that ends leaves the list with it."""
    problems = []
    for c in connections:
        if c.get("state") not in ("failing", "config_error"):
            continue
        err = c.get("last_error") or {}
        name = c.get("name") or f"#{c.get('connection_id')}"
        problems.append({"component": f"connection {name}",
                         "error": (f"{err['error']}: " if err.get("error") else "") + (err.get("message") or
                                                                                         c["state"])})
    if writer is not None and not writer.get("database_ok", True):
        problems.append({"component": "writer", "error": (writer.get("last_error") or "database writes fail")
                         + f"; {writer.get('spooled_rows') or 0} rows kept in the spool"})
    for job in ((writer or {}).get("timescaledb_jobs") or {}).get("jobs") or []:
        if job.get("last_run_ok") is False:
            problems.append({"component": f"timescaledb job {job['job_id']} ({job['job']} on {job['hypertable']})",
                             "error": job.get("error") or "its last run failed"})
    return problems


def public_health(body: dict) -> dict:
    """What an anonymous visitor or a load balancer gets: whether the node serves, and its version. Hosts,
    ports, errors, the database URL, paths and process ids are for viewers (auth/rules.py)."""
    return {"status": body["status"], "version": body["version"]}


def health_http_status(body: dict) -> int:
    """200 while the node serves (ok, starting, degraded: a load balancer keeps a degraded node in service, as
    its pages and API still answer); 503 only when it cannot (stopping, no database open)."""
    return 503 if body["status"] == "stopping" or body["database"]["backend"] is None else 200
