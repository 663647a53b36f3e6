"""/metrics: the runtime's numbers in Prometheus' text format, through prometheus_client.

One custom collector reads the runtime when Prometheus scrapes (nothing is counted twice: the counters are the
writer's, the pollers' and the hub's own). Each app has its own registry, so several apps in one process (tests)
do not share metrics. Names:

    oee_up, oee_info{version,role,backend}
    oee_writer_queue_rows, _queue_limit_rows, _spooled_rows, _spooled_batches, _spooled_bytes, _database_ok (gauges)
    oee_writer_written_rows_total, _written_batches_total, _dropped_rows_total, _duplicate_batches_total
    oee_connection_up, _bad_tags, _latency_ms (moving average), _last_latency_ms, _consecutive_failures (gauges)
    oee_connection_cycles_total (polls), _skipped_cycles_total, _samples_total, _errors_total{kind},
    oee_connection_cycle_seconds (summary: _count and _sum of successful read cycles)
        all with labels connection, protocol
    oee_websocket_clients; oee_live_messages_sent_total, oee_live_dropped_total (when the live service runs)
    oee_mqtt_connected, _buffered_messages, _buffer_limit_messages, _in_flight_messages (gauges),
    oee_mqtt_published_messages_total, _dropped_messages_total       the Unified Namespace publisher (--mqtt-url)
    oee_problems (what /healthz lists as failing: connections, the writer, TimescaleDB jobs)
    oee_timescaledb_job_last_run_ok{job,hypertable} (1, 0 when the last run failed; absent before the first run),
    oee_timescaledb_job_runs_total, _failures_total, oee_timescaledb_job_last_success_seconds (epoch)
                              our retention, compression and refresh policies (db/backend.py read_jobs)
    oee_machine_oee, _availability, _performance, _quality (ratios, 1 = 100 %), _good_count, _total_count,
    _shift_start_seconds      with labels machine, line, shift: the current shift (db/shift_oee.py), the numbers of
                              GET /api/oee/ for it; recomputed at most every OEE_CACHE_S seconds
"""
from __future__ import annotations

import logging
import threading
import time

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector

from db.shift_oee import current_shift_oee

log = logging.getLogger(__name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OEE_CACHE_S = 30.0

WRITER_GAUGES = {
    "queue_rows": ("oee_writer_queue_rows", "Rows waiting in the writer's memory queue"),
    "queue_limit_rows": ("oee_writer_queue_limit_rows", "Bound of the writer's memory queue"),
    "spooled_rows": ("oee_writer_spooled_rows", "Rows kept in the disk spool while the database is away"),
    "spooled_batches": ("oee_writer_spooled_batches", "Batches in the disk spool"),
    "spooled_bytes": ("oee_writer_spooled_bytes", "Size of the disk spool"),
}
WRITER_COUNTERS = {
    "written_rows": ("oee_writer_written_rows", "Rows committed to the database"),
    "written_batches": ("oee_writer_written_batches", "Batches committed to the database"),
    "dropped_rows": ("oee_writer_dropped_rows", "Acknowledged rows dropped past the queue or spool bound"),
    "duplicate_batches_skipped": ("oee_writer_duplicate_batches",
                                  "Batches replayed after an unconfirmed commit and skipped by the ledger"),
}
CONNECTION_GAUGES = {
    "bad_tags": ("oee_connection_bad_tags", "Tags with bad quality in the last cycle"),
    "latency_ms": ("oee_connection_latency_ms", "Read cycle duration, moving average"),
    "last_latency_ms": ("oee_connection_last_latency_ms", "Duration of the last successful read cycle"),
    "consecutive_failures": ("oee_connection_consecutive_failures", "Failed attempts since the last success"),
}
CONNECTION_COUNTERS = {
    "cycles": ("oee_connection_cycles", "Read cycles (polls) completed"),
    "skipped_cycles": ("oee_connection_skipped_cycles", "Cycles skipped: the previous one still ran"),
    "samples_stored": ("oee_connection_samples", "Samples handed to the writer"),
}
MACHINE_GAUGES = {
    "oee": ("oee_machine_oee", "OEE of the current shift so far (1 = 100 %)"),
    "availability": ("oee_machine_availability", "Availability of the current shift so far"),
    "performance": ("oee_machine_performance", "Performance of the current shift so far"),
    "quality": ("oee_machine_quality", "Quality of the current shift so far"),
    "good_count": ("oee_machine_good_count", "Good parts in the current shift so far"),
    "total_count": ("oee_machine_total_count", "Parts made in the current shift so far"),
}


MQTT_GAUGES = {
    "buffered_messages": ("oee_mqtt_buffered_messages", "Messages waiting in the MQTT publisher's buffer"),
    "buffer_limit_messages": ("oee_mqtt_buffer_limit_messages", "Bound of the MQTT publisher's buffer"),
    "in_flight_messages": ("oee_mqtt_in_flight_messages", "Messages sent to the broker and not yet acknowledged"),
}
MQTT_COUNTERS = {
    "published_messages": ("oee_mqtt_published_messages", "Messages the broker acknowledged"),
    "dropped_messages": ("oee_mqtt_dropped_messages", "Messages dropped past the buffer's bound while the broker "
                         "was away"),
}


class RuntimeCollector(Collector):
    def __init__(self, runtime, oee_cache_s: float = OEE_CACHE_S, clock=time.time):
        self.runtime = runtime
        self.clock = clock
        self.oee_cache_s = oee_cache_s
        self._oee: list = []
        self._oee_at = float("-inf")
        self._oee_lock = threading.Lock()
        self._oee_failing = False

    def collect(self):
        health = self.runtime.health()
        yield from self._process(health)
        # A web worker hears of the collector processes' connections and writers over the live bus; they serve
        # their own /metrics (--metrics-port), so only the process that runs them, or started them, reports them.
        own = self.runtime.collects or self.runtime.collector_process is not None
        yield from self._writer((health.get("writer") or {}) if own else {})
        yield from self._connections([c for c in health.get("connections") or []
                                      if c.get("state") != "config_error"] if own else [])
        yield from self._live(health)
        yield from self._mqtt(health.get("mqtt") or {})
        yield from self._timescaledb((health.get("timescaledb_jobs") or {}).get("jobs") or [] if own else [])
        yield from self._machines()

    def _process(self, health):
        up = GaugeMetricFamily("oee_up", "1 when the database is reachable and writes succeed")
        writer = health.get("writer") or {}
        up.add_metric([], 1 if (health["database"]["backend"] and writer.get("database_ok", True)
                                and health["status"] != "stopping") else 0)
        yield up
        yield GaugeMetricFamily("oee_problems", "What /healthz lists as failing now (connections, the writer, "
                                "TimescaleDB jobs); 0 when the status is ok", value=len(health.get("problems") or []))
        info = GaugeMetricFamily("oee_info", "The app's version, process role and database backend",
                                 labels=["version", "role", "backend"])
        info.add_metric([str(health.get("version")), str(health.get("role")),
                         str((health.get("database") or {}).get("backend"))], 1)
        yield info

    def _writer(self, writer: dict):
        if not writer:
            return
        for key, (name, text) in WRITER_GAUGES.items():
            if writer.get(key) is not None:
                yield GaugeMetricFamily(name, text, value=writer[key])
        ok = GaugeMetricFamily("oee_writer_database_ok", "1 when the writer's last commit succeeded")
        ok.add_metric([], 1 if writer.get("database_ok") else 0)
        yield ok
        for key, (name, text) in WRITER_COUNTERS.items():
            if writer.get(key) is not None:
                yield CounterMetricFamily(name, text, value=writer[key])

    def _connections(self, connections: list[dict]):
        labels = ["connection", "protocol"]
        up = GaugeMetricFamily("oee_connection_up", "1 when the connection's last cycle succeeded", labels=labels)
        gauges = {k: GaugeMetricFamily(n, t, labels=labels) for k, (n, t) in CONNECTION_GAUGES.items()}
        counters = {k: CounterMetricFamily(n, t, labels=labels) for k, (n, t) in CONNECTION_COUNTERS.items()}
        errors = CounterMetricFamily("oee_connection_errors", "Failed cycles by error kind (cannot_connect, timeout, "
                                     "protocol_error, ...)", labels=[*labels, "kind"])
        cycle = SummaryMetricFamily("oee_connection_cycle_seconds", "Duration of successful read cycles",
                                    labels=labels)
        for c in connections:
            key = [str(c["name"]), str(c.get("protocol"))]
            up.add_metric(key, 1 if c.get("state") == "connected" else 0)
            for k, family in gauges.items():
                if c.get(k) is not None:
                    family.add_metric(key, c[k])
            for k, family in counters.items():
                if c.get(k) is not None:
                    family.add_metric(key, c[k])
            for kind, n in (c.get("errors") or {}).items():
                errors.add_metric([*key, str(kind)], n)
            if c.get("latency_total_s") is not None:
                cycle.add_metric(key, count_value=c.get("cycles") or 0, sum_value=c["latency_total_s"])
        yield up
        yield from gauges.values()
        yield from counters.values()
        yield errors
        yield cycle

    def _live(self, health: dict):
        live = health.get("live")
        clients = live.get("clients") if isinstance(live, dict) else None
        if clients is None:
            clients = self.runtime.hub.subscriber_count
        yield GaugeMetricFamily("oee_websocket_clients", "WebSocket clients connected to this process", value=clients)
        if isinstance(live, dict):
            if live.get("messages_sent") is not None:
                yield CounterMetricFamily("oee_live_messages_sent", "Messages sent to WebSocket clients",
                                          value=live["messages_sent"])
            dropped = (live.get("client_dropped") or 0) + (live.get("source_dropped") or 0)
            yield CounterMetricFamily("oee_live_dropped", "Live values coalesced or pushed out for slow clients",
                                      value=dropped)

    def _mqtt(self, mqtt: dict):
        if not mqtt:
            return
        yield GaugeMetricFamily("oee_mqtt_connected", "1 while the MQTT publisher is connected to its broker",
                                value=1 if mqtt.get("connected") else 0)
        for key, (name, text) in MQTT_GAUGES.items():
            if mqtt.get(key) is not None:
                yield GaugeMetricFamily(name, text, value=mqtt[key])
        for key, (name, text) in MQTT_COUNTERS.items():
            if mqtt.get(key) is not None:
                yield CounterMetricFamily(name, text, value=mqtt[key])

    def _timescaledb(self, jobs: list[dict]):
        labels = ["job", "hypertable"]
        ok = GaugeMetricFamily("oee_timescaledb_job_last_run_ok", "1 when the TimescaleDB policy's last run "
                               "succeeded, 0 when it failed", labels=labels)
        runs = CounterMetricFamily("oee_timescaledb_job_runs", "Runs of the TimescaleDB policy", labels=labels)
        failures = CounterMetricFamily("oee_timescaledb_job_failures", "Failed runs of the TimescaleDB policy",
                                       labels=labels)
        success = GaugeMetricFamily("oee_timescaledb_job_last_success_seconds", "When the TimescaleDB policy last "
                                    "finished successfully (epoch seconds)", labels=labels)
        for job in jobs:
            key = [str(job.get("job")), str(job.get("hypertable"))]
            if job.get("last_run_ok") is not None:
                ok.add_metric(key, 1 if job["last_run_ok"] else 0)
            runs.add_metric(key, job.get("total_runs") or 0)
            failures.add_metric(key, job.get("total_failures") or 0)
            if job.get("last_successful_finish") is not None:
                success.add_metric(key, job["last_successful_finish"])
        yield from (ok, runs, failures, success)

    def _current_shift(self) -> list:
        """The current shift's OEE per machine, cached; [] while the database cannot answer (said once)."""
        store = self.runtime.store
        if store is None:
            return []
        with self._oee_lock:
            now = self.clock()
            if now - self._oee_at >= self.oee_cache_s:
                try:
                    self._oee = current_shift_oee(store, now)
                    if self._oee_failing:
                        log.info("metrics: current-shift OEE is back")
                    self._oee_failing = False
                except Exception as exc:  # the database is away: the other metrics still matter most
                    if not self._oee_failing:
                        log.warning("metrics: current-shift OEE not available: %s", str(exc).splitlines()[0])
                    self._oee_failing = True
                    self._oee = []
                self._oee_at = now
            return self._oee

    def _machines(self):
        labels = ["machine", "line", "shift"]
        families = {k: GaugeMetricFamily(n, t, labels=labels) for k, (n, t) in MACHINE_GAUGES.items()}
        start = GaugeMetricFamily("oee_machine_shift_start_seconds", "Start of the current shift (epoch seconds)",
                                  labels=labels)
        for item in self._current_shift():
            key = [item.machine, item.line, item.shift]
            for k, family in families.items():
                if item.report.get(k) is not None:
                    family.add_metric(key, item.report[k])
            start.add_metric(key, item.start)
        yield from families.values()
        yield start


def make_registry(runtime, **options) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RuntimeCollector(runtime, **options))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
