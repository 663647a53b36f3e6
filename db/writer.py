"""The one writer: a thread fed by a bounded queue, batching rows into transactions, spooling when the DB is away.

Collectors hand over whole poll cycles (`submit_samples(rows)`), never single values, so the queue costs a few
microseconds per cycle rather than per sample. The thread commits when a batch is full or when the oldest queued
row has waited `commit_interval_s`. When a write fails the batch goes to the disk spool and so does every batch
after it until the spool has been replayed, so rows reach the database in the order they were acknowledged.

Acknowledged means: `submit_*` returned True. Such rows are lost only when the memory queue or the spool overflows
(the oldest go first), and each loss is counted, logged, and reported in `stats()` (/healthz and /metrics).
"""
from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections import deque

from db.oee_hours import note_late_rows
from db.spool import Batch, Spool
from db.store import Store

log = logging.getLogger(__name__)
ROLLUP_SLICE_TAGS = 2_000  # tags per rollup transaction (see Writer._rollup_step)
# A refresh's slices are spread over this part of the rollup interval rather than run back to back: on SQLite each
# slice holds the one write lock 0.2-1.6 s, and 12-13 slices in a row (25,000 tags a writer) queued 100,000 rows
# behind them every minute: the latency p99 of bench.collect (every slowest probe in the refresh's seconds).
ROLLUP_SPREAD = 0.5
# What one SQLite commit may take when more is queued than a batch (batch_rows starts a commit). A SQLite commit
# writes each index page it touched to the WAL whole, one page per tag (ix_samples_tag_time), however many rows that
# tag has in the commit: a writer that has fallen behind catches up by taking several cycles a commit. A plant's file
# (5 minutes of history stored first), 50,000 tags, 2 collector processes, bench.collect: see README [perf].
SQLITE_MAX_BATCH_ROWS = 200_000


class Writer:
    def __init__(self, store: Store, spool: Spool, *, max_queue_rows: int = 500_000, batch_rows: int = 20_000,
                 commit_interval_s: float = 0.5, retry_initial_s: float = 1.0, retry_max_s: float = 30.0,
                 rollup_interval_s: float = 60.0, jobs_interval_s: float = 60.0):
        self.store = store
        self.spool = spool
        self.max_queue_rows = max_queue_rows
        self.batch_rows = batch_rows
        # PostgreSQL writes a page whole only the first time after a checkpoint: no gain there from larger commits
        self.max_batch_rows = max(batch_rows, SQLITE_MAX_BATCH_ROWS) if store.backend_name == "sqlite" else batch_rows
        self.commit_interval_s = commit_interval_s
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.rollup_interval_s = rollup_interval_s
        self.jobs_interval_s = jobs_interval_s

        self._queue: deque[tuple[str, list, float]] = deque()  # (kind, rows, monotonic time queued)
        self._queue_rows = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

        self.db_ok = True
        self.failures_since_ok = 0
        self.last_error: str | None = None
        self.written_rows = 0
        self.written_batches = 0
        self.duplicate_batches = 0
        self.queue_dropped_rows = 0
        self._last_drop_log = 0.0
        self._retry_at = 0.0
        self._retry_delay = retry_initial_s
        # App-maintained rollups: recompute from the earliest sample time written since the last refresh.
        self._dirty_from: float | None = None
        # The tag-id slices (tag_id // ROLLUP_SLICE_TAGS) this writer wrote samples of since the last refresh: it
        # refreshes those only. With two collector processes each writer refreshed every tag's rollups, the other
        # writer's too: on PostgreSQL at 50,000 tags 2 x 25 slices of ~0.8 s a minute on the writer threads
        # (bench.collect), while rows queued.
        self._dirty_slices: set[int] = set()
        self._rollup_job: list | None = None  # [since, until, slices left]: a refresh under way
        self._next_slice_at = 0.0  # monotonic time the refresh under way takes its next slice
        self._slice_gap = 0.0
        self._last_rollup = time.monotonic()
        self._last_prune = 0.0
        # TimescaleDB's policies can fail on every run while their work is done (PROTOCOLS.md): read how their
        # last runs went every jobs_interval_s, for /healthz, /metrics and /dataflow-monitor/.
        self.timescaledb_jobs: dict | None = None
        self._last_jobs_check = float("-inf")
        self._jobs_failing = False
        self._idle = threading.Event()

    # --- the collectors' side ----------------------------------------------------------------------------------

    def submit_samples(self, rows: list[tuple]) -> bool:
        return self._submit("samples", rows)

    def submit_states(self, rows: list[tuple]) -> bool:
        return self._submit("states", rows)

    def submit_counts(self, rows: list[tuple]) -> bool:
        return self._submit("counts", rows)

    def submit_faults(self, rows: list[tuple]) -> bool:
        """(machine_id, code|None, start, end|None): a fault opens with end None and is closed by a later row."""
        return self._submit("faults", rows)

    def _submit(self, kind: str, rows: list[tuple]) -> bool:
        if not rows:
            return True
        if self._stop.is_set():
            return False
        with self._cond:
            self._queue.append((kind, list(rows), time.monotonic()))
            self._queue_rows += len(rows)
            dropped = 0
            while self._queue_rows > self.max_queue_rows and len(self._queue) > 1:
                _kind, old, _t = self._queue.popleft()
                self._queue_rows -= len(old)
                dropped += len(old)
            if dropped:
                self.queue_dropped_rows += dropped
            self._idle.clear()
            self._cond.notify()
        if dropped:
            now = time.monotonic()
            if now - self._last_drop_log > 10:
                self._last_drop_log = now
                log.error("writer queue full (%d rows): dropped the oldest %d rows (%d dropped in all); "
                          "the database or the disk cannot keep up", self.max_queue_rows, dropped,
                          self.queue_dropped_rows)
        return True

    # --- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        if len(self.spool):
            log.warning("spool holds %d batches (%d rows) from an earlier run; replaying them first",
                        len(self.spool), self.spool.rows)
            self.db_ok = False  # replay goes through the same path as after an outage
        self._thread = threading.Thread(target=self._run, name="db-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued (to the database, or to the spool if it is away) and stop the thread."""
        self._stop.set()
        with self._cond:
            self._cond.notify()
        if self._thread:
            self._thread.join(timeout)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until the queue and the spool are empty (the database has everything). For tests and shutdown."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._cond:
                empty = self._queue_rows == 0
                self._cond.notify()
            if empty and len(self.spool) == 0 and self._idle.wait(0.05):
                return True
            time.sleep(0.02)
        return False

    def stats(self) -> dict:
        return {
            "queue_rows": self._queue_rows,
            "queue_limit_rows": self.max_queue_rows,
            "spooled_batches": len(self.spool),
            "spooled_rows": self.spool.rows,
            "spooled_bytes": self.spool.bytes,
            "spool_limit_bytes": self.spool.max_bytes,
            "dropped_rows": self.queue_dropped_rows + self.spool.dropped_rows,
            "written_rows": self.written_rows,
            "written_batches": self.written_batches,
            "duplicate_batches_skipped": self.duplicate_batches,
            "database_ok": self.db_ok,
            "last_error": self.last_error,
            "timescaledb_jobs": self.timescaledb_jobs,
        }

    # --- the thread --------------------------------------------------------------------------------------------

    def _take_batch(self) -> Batch | None:
        """Wait for a full batch or the commit interval; return what is queued (whole submissions)."""
        with self._cond:
            while not self._stop.is_set():
                if self._queue_rows >= self.batch_rows:
                    break
                if self._queue and time.monotonic() - self._queue[0][2] >= self.commit_interval_s:
                    break
                if len(self.spool) and time.monotonic() >= self._retry_at:
                    break  # time to try the replay again
                if self.db_ok and time.monotonic() - self._last_jobs_check >= self.jobs_interval_s:
                    break  # housekeeping is due, rows or not
                if self.db_ok and self._rollup_due(time.monotonic()):
                    break  # a rollup refresh or its next slice is due: it waits no longer when the flow stops
                if not self._queue and not len(self.spool):
                    self._idle.set()
                timeout = self.commit_interval_s
                if self._queue:
                    timeout = max(0.0, self.commit_interval_s - (time.monotonic() - self._queue[0][2]))
                self._cond.wait(min(timeout, 0.25))
            if not self._queue:
                return None
            batch = Batch(uuid.uuid4().hex)
            taken = 0
            while self._queue and taken < self.max_batch_rows:
                kind, rows, _t = self._queue.popleft()
                self._queue_rows -= len(rows)
                taken += len(rows)
                getattr(batch, kind).extend(rows)
            return batch

    def _run(self) -> None:
        while True:
            stopping = self._stop.is_set()
            batch = self._take_batch()
            if len(self.spool):
                if batch is not None:
                    self._spool(batch)  # keep the order: older spooled rows go in first
                self._replay(force=stopping and self.db_ok)
            elif batch is not None:
                if not self._write(batch):
                    self._spool(batch)
            self._housekeeping()
            if stopping and not self._queue:
                return

    def _write(self, batch: Batch) -> bool:
        try:
            committed = self.store.write_batch(batch)
        except Exception as exc:  # any failure of the database: keep the batch, say so once
            self._mark_down(exc)
            return False
        self._mark_up()
        if committed:
            span = batch.span()
            # rows older than a few minutes may fall in summarized OEE hours
            note_late_rows(self.store, batch, earliest_sample=span[0] if span else None)
            self.written_rows += batch.rows
            self.written_batches += 1
            if span and self.store.rollups_follow(span[0]):  # TimescaleDB: only rows its policies miss
                self._dirty_from = span[0] if self._dirty_from is None else min(self._dirty_from, span[0])
                width = ROLLUP_SLICE_TAGS
                self._dirty_slices.update({tag_id // width for tag_id in batch.sample_tag_ids()})
        else:
            self.duplicate_batches += 1
        return True

    def _spool(self, batch: Batch) -> None:
        try:
            dropped = self.spool.append(batch)
        except OSError as exc:
            self.queue_dropped_rows += batch.rows
            log.error("cannot spool %d rows to %s: %s; they are lost", batch.rows, self.spool.dir, exc)
            return
        if dropped:
            log.error("spool over its limit of %d bytes: dropped the oldest %d rows (%d dropped in all)",
                      self.spool.max_bytes, dropped, self.spool.dropped_rows)

    def _replay(self, force: bool = False) -> None:
        """Write spooled batches oldest first while the database takes them; back off when it does not."""
        if not force and time.monotonic() < self._retry_at:
            return
        replayed = 0
        while True:
            item = self.spool.peek()
            if item is None:
                break
            path, batch = item
            if not self._write(batch):
                self._retry_delay = min(self._retry_delay * 2, self.retry_max_s)
                self._retry_at = time.monotonic() + self._retry_delay * random.uniform(0.8, 1.2)
                return
            self.spool.remove(path)
            replayed += 1
            if self._queue_rows >= self.batch_rows and replayed % 10 == 0:
                break  # let fresh rows join the spool now and then, so the memory queue stays short
        if replayed:
            log.info("replayed %d spooled batches; %d remain", replayed, len(self.spool))

    def _mark_down(self, exc: Exception) -> None:
        self.failures_since_ok += 1
        self.last_error = f"{exc.__class__.__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        if self.db_ok:
            self.db_ok = False
            self._retry_delay = self.retry_initial_s
            self._retry_at = time.monotonic() + self._retry_delay
            log.error("database write failed (%s); keeping rows in the spool at %s until it is back",
                      self.last_error, self.spool.dir)

    def _mark_up(self) -> None:
        if not self.db_ok:
            log.warning("database writes work again after %d failed attempts", self.failures_since_ok)
        self.db_ok = True
        self.last_error = None  # the outage is over: /healthz must not keep saying it
        self.failures_since_ok = 0
        self._retry_delay = self.retry_initial_s

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if not self.db_ok:
            return
        if self._rollup_due(now):
            self._rollup_step()
        if now - self._last_prune > 3600:
            self._last_prune = now
            try:
                self.store.prune_ledger()
            except Exception as exc:
                log.warning("could not prune the writer ledger: %s", exc)
        if now - self._last_jobs_check >= self.jobs_interval_s:
            self.check_timescaledb_jobs()

    def check_timescaledb_jobs(self) -> dict | None:
        """Read our TimescaleDB policies' last runs now; say once when a job starts or stops failing."""
        self._last_jobs_check = time.monotonic()
        try:
            found = self.store.timescaledb_jobs()
        except Exception as exc:  # the views can be refused or the database busy: keep the last answer, say so
            reason = str(getattr(exc, "orig", exc) or exc).strip().splitlines()[0]
            if not self._jobs_failing:
                log.warning("cannot read TimescaleDB's job statistics: %s; retrying every %.0f s", reason,
                            self.jobs_interval_s)
            self._jobs_failing = True
            return self.timescaledb_jobs
        self._jobs_failing = False
        found["checked_at"] = time.time()
        before = {j["job_id"]: j["last_run_ok"] for j in (self.timescaledb_jobs or {}).get("jobs", [])}
        for job in found["jobs"]:
            if job["last_run_ok"] is False and before.get(job["job_id"]) is not False:
                log.error("TimescaleDB %s job %d on %s: last run failed (%d failures of %d runs): %s",
                          job["job"], job["job_id"], job["hypertable"], job["total_failures"], job["total_runs"],
                          job["error"])
            elif job["last_run_ok"] and before.get(job["job_id"]) is False:
                log.warning("TimescaleDB %s job %d on %s: runs again", job["job"], job["job_id"], job["hypertable"])
        self.timescaledb_jobs = found
        return found

    def _rollup_due(self, now: float) -> bool:
        if self._rollup_job is not None:
            return now >= self._next_slice_at
        return self._dirty_from is not None and now - self._last_rollup >= self.rollup_interval_s

    def _rollup_step(self) -> None:
        """One slice of ROLLUP_SLICE_TAGS tag ids of the rollup refresh, on the writer thread. A minute of 50,000
        tags at 1 Hz is 3 million samples: refreshed in one transaction it held commits back for 2-4 s (the
        latency p99 of bench.collect); in slices, batches are committed between them. Only the slices this writer
        wrote samples of are refreshed (each tag is written by one writer: its connection's collector). Rows
        written meanwhile mark the rollups dirty again, so the next refresh covers them."""
        if self._rollup_job is None:
            self._last_rollup = time.monotonic()
            if self._dirty_from is None:
                return
            since, self._dirty_from = self._dirty_from, None
            slices, self._dirty_slices = sorted(self._dirty_slices), set()
            if not slices:
                return
            if not self.store.keeps_rollups:  # TimescaleDB: its continuous aggregates refresh whole, once
                slices = slices[:1]
            self._rollup_job = [since, time.time() + 1, slices]
            self._slice_gap = self.rollup_interval_s * ROLLUP_SPREAD / len(slices)
        since, until, slices = self._rollup_job
        width = ROLLUP_SLICE_TAGS
        try:
            self.store.refresh_rollups(since, until, (slices[0] * width, (slices[0] + 1) * width))
        except Exception as exc:
            log.warning("rollup refresh failed, will retry: %s", exc)
            self._rollup_job = None
            self._dirty_from = since if self._dirty_from is None else min(since, self._dirty_from)
            self._dirty_slices.update(slices)
            return
        del slices[0]
        self._next_slice_at = time.monotonic() + self._slice_gap
        if not slices:
            self._rollup_job = None
