"""The writer and its spool: batching, order, bounds, losses reported, replay after a restart."""
from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import text

from db.spool import Batch, Spool
from db.store import open_store
from db.writer import Writer
from tests.support.pgcluster import PgCluster
from tests.support.waiting import wait_for


def _values(store) -> list[float]:
    with store.engine.connect() as conn:
        return list(conn.execute(text("SELECT value FROM samples ORDER BY value")).scalars())


def _cycle(seq0: int, n: int, t0: float) -> list[tuple]:
    """One collector cycle: n samples whose values are sequence numbers, so loss and doubling both show."""
    return [(t0 + (seq0 + i) * 0.001, (seq0 + i) % 50, float(seq0 + i), None, 0, None) for i in range(n)]


def test_rows_are_committed_on_size_and_on_time(sqlite_url, tmp_path):
    store = open_store(sqlite_url)
    writer = Writer(store, Spool(tmp_path / "spool"), batch_rows=1000, commit_interval_s=0.3)
    writer.start()
    try:
        writer.submit_samples(_cycle(0, 2500, time.time()))  # more than two full batches at once
        assert writer.flush(10)
        assert writer.written_rows == 2500
        writer.submit_samples(_cycle(2500, 10, time.time()))  # a small cycle waits for the commit interval
        time.sleep(0.1)
        assert writer.written_rows == 2500
        assert writer.flush(10)
        assert writer.written_rows == 2510
        assert _values(store) == [float(i) for i in range(2510)]
    finally:
        writer.stop()
        store.close()


def test_a_sqlite_writer_that_fell_behind_takes_several_batches_in_one_commit(sqlite_url, pg_url, tmp_path):
    """On SQLite a commit costs a page per tag whatever the rows per tag (db.writer.SQLITE_MAX_BATCH_ROWS): five
    batches' worth queued go in as one commit there, as five on PostgreSQL; every row once either way."""
    for url, commits in ((sqlite_url, 1), (pg_url, 5)):
        store = open_store(url)
        writer = Writer(store, Spool(tmp_path / f"spool-{commits}"), batch_rows=1000, commit_interval_s=0.05)
        try:
            for k in range(5):  # queued before the thread starts: the writer is five batches behind
                assert writer.submit_samples(_cycle(k * 1000, 1000, time.time()))
            writer.start()
            assert writer.flush(10)
            assert (writer.written_batches, writer.written_rows) == (commits, 5000), url
            assert _values(store) == [float(i) for i in range(5000)]
        finally:
            writer.stop()
            store.close()


def test_a_full_queue_drops_the_oldest_counts_and_says_so(sqlite_url, tmp_path, caplog):
    store = open_store(sqlite_url)
    writer = Writer(store, Spool(tmp_path / "spool"), max_queue_rows=1000)  # not started: nothing drains
    with caplog.at_level(logging.ERROR, logger="db.writer"):
        for k in range(15):
            assert writer.submit_samples(_cycle(k * 100, 100, time.time()))
    stats = writer.stats()
    assert stats["queue_rows"] == 1000
    assert stats["dropped_rows"] == 500
    assert sum("writer queue full" in r.message for r in caplog.records) == 1  # loud, but not once per cycle
    writer.start()
    assert writer.flush(10)
    assert _values(store) == [float(i) for i in range(500, 1500)]  # the newest were kept
    writer.stop()
    store.close()


def test_spool_bound_drops_oldest_and_counts(tmp_path):
    spool = Spool(tmp_path / "spool", max_bytes=20_000)
    dropped = 0
    for k in range(20):
        dropped += spool.append(Batch(f"b{k}", samples=_cycle(k * 100, 100, 0.0)))
    assert spool.bytes <= 20_000
    assert dropped == spool.dropped_rows > 0
    assert dropped + spool.rows == 2000
    first_kept = spool.peek()[1].batch_id
    assert first_kept == f"b{spool.dropped_batches}"  # the oldest went first, the order of the rest is kept


def test_a_corrupt_spool_file_is_set_aside_and_counted(tmp_path):
    spool = Spool(tmp_path / "spool")
    spool.append(Batch("good-1", samples=_cycle(0, 10, 0.0)))
    spool.append(Batch("bad", samples=_cycle(10, 10, 0.0)))
    spool.append(Batch("good-2", samples=_cycle(20, 10, 0.0)))
    bad = sorted((tmp_path / "spool").glob("*bad.spool"))[0]
    bad.write_bytes(bad.read_bytes()[:-7])  # torn write
    reopened = Spool(tmp_path / "spool")
    seen = []
    while (item := reopened.peek()) is not None:
        seen.append(item[1].batch_id)
        reopened.remove(item[0])
    assert seen == ["good-1", "good-2"]
    assert reopened.dropped_rows == 10
    assert (tmp_path / "spool" / "corrupt" / bad.name).exists()


def test_a_restart_with_a_spool_replays_it_first_and_in_order(tmp_path):
    """Spooled while the database was away, the app stopped; the next start writes the spool before new rows."""
    with PgCluster() as cluster:
        url = cluster.create_database("oee")
        store = open_store(url)
        cluster.stop()
        writer = Writer(store, Spool(tmp_path / "spool"), commit_interval_s=0.05, retry_initial_s=0.2)
        writer.start()
        for k in range(5):
            writer.submit_samples(_cycle(k * 100, 100, time.time()))
            time.sleep(0.1)
        writer.stop()
        assert len(Spool(tmp_path / "spool")) >= 1
        assert writer.stats()["dropped_rows"] == 0
        store.close()

        cluster.start()
        store = open_store(url)
        writer = Writer(store, Spool(tmp_path / "spool"), commit_interval_s=0.05)
        writer.start()
        writer.submit_samples(_cycle(500, 100, time.time() + 100))
        assert writer.flush(30)
        writer.stop()
        with store.engine.connect() as conn:
            values = list(conn.execute(text("SELECT value FROM samples ORDER BY time")).scalars())
        assert values == [float(i) for i in range(600)]
        store.close()


def test_database_outage_in_the_middle_of_a_stream_loses_nothing_and_doubles_nothing(tmp_path, caplog):
    """A PostgreSQL cluster of the test's own is killed mid-stream and started again."""
    with PgCluster() as cluster:
        url = cluster.create_database("oee")
        store = open_store(url)
        writer = Writer(store, Spool(tmp_path / "spool"), batch_rows=2000, commit_interval_s=0.1,
                        retry_initial_s=0.2, retry_max_s=1.0)
        writer.start()
        produced = 0
        stop = threading.Event()
        saw = {"spooled": 0, "down": False}

        def produce():
            nonlocal produced
            while not stop.is_set():
                assert writer.submit_samples(_cycle(produced, 200, time.time()))
                produced += 200
                stats = writer.stats()
                saw["spooled"] = max(saw["spooled"], stats["spooled_rows"])
                saw["down"] = saw["down"] or not stats["database_ok"]
                time.sleep(0.01)

        with caplog.at_level(logging.INFO, logger="db.writer"):
            producer = threading.Thread(target=produce)
            producer.start()
            time.sleep(1.5)
            cluster.kill()  # no clean shutdown: in-flight transactions die with it
            time.sleep(2.5)
            cluster.start()
            time.sleep(1.5)
            stop.set()
            producer.join()
            assert writer.flush(60), writer.stats()
        stats = writer.stats()
        writer.stop()

        assert saw["down"] and saw["spooled"] > 0  # the outage was real and the spool carried it
        assert stats["dropped_rows"] == 0
        with store.engine.connect() as conn:
            total, distinct = conn.execute(text("SELECT count(*), count(DISTINCT value) FROM samples")).one()
            low, high = conn.execute(text("SELECT min(value), max(value) FROM samples")).one()
        assert produced > 20_000
        assert total == distinct == produced  # every sample exactly once
        assert (low, high) == (0.0, produced - 1.0)
        messages = [r.message for r in caplog.records]
        assert sum("database write failed" in m for m in messages) == 1  # said once when it went away
        assert sum("work again" in m for m in messages) == 1  # and once when it came back
        store.close()


def test_rollups_are_refreshed_in_slices_of_tags_with_commits_between(any_url, tmp_path, monkeypatch):
    """The writer refreshes the minute and hour rollups a slice of tag ids per transaction (a minute of 50,000
    tags held commits back for seconds in one); every tag is covered, those below the lowest and above the highest
    tag row too, and rows written while a refresh is under way are in the next one."""
    import db.writer as writer_module
    from db.queries import tag_series

    monkeypatch.setattr(writer_module, "ROLLUP_SLICE_TAGS", 3)
    store = open_store(any_url)
    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO connections (id, name, protocol, host, port, protocol_config, "
                          "poll_interval_ms, enabled) VALUES (1, 'plc', 'MODBUS', '127.0.0.1', 502, '{}', 1000, "
                          "true)"))
        for tid in range(10, 20):
            conn.execute(text("INSERT INTO tags (id, connection_id, name, address, data_type, scale, \"offset\", "
                              "deadband, report_by_exception, enabled) VALUES (:i, 1, :n, '40001', 'INT16', 1, 0, "
                              "0, false, true)"), {"i": tid, "n": f"t{tid}"})
    writer = Writer(store, Spool(tmp_path / "spool"), commit_interval_s=0.05, rollup_interval_s=0.2)
    steps = []
    step = writer._rollup_step
    monkeypatch.setattr(writer, "_rollup_step", lambda: (steps.append(writer._rollup_job is not None), step())[1])
    t0 = (time.time() // 60) * 60 - 120
    tags = [3, *range(10, 20), 25]  # below the lowest tag row, the tag rows, above the highest
    writer.start()
    try:
        assert writer.submit_samples([(t0 + i, tid, float(i), None, 0, None) for i in range(60) for tid in tags])
        assert writer.flush(10)
        for tid in tags:
            wait_for(lambda tid=tid: [m["n"] for m in tag_series(store, tid, t0 - 60, t0 + 120, "1m")] == [60],
                     timeout=15)
        assert writer.submit_samples([(t0 + 60 + i, 25, 1.0, None, 0, None) for i in range(30)])
        wait_for(lambda: [m["n"] for m in tag_series(store, 25, t0 - 60, t0 + 120, "1m")] == [60, 30], timeout=15)
    finally:
        writer.stop()
        store.close()
    if store.backend_name == "timescaledb":
        # Its continuous aggregates answered above; the writer ran no slice (each one did nothing but cost a
        # tag-span query and a wake-up, and the count here depended on how fast the answer came).
        assert steps == []
    else:
        assert steps.count(True) >= 4  # at least 4 slices: ..13, 13..16, 16..19, 19.. (one job carried on)


def test_a_refreshs_slices_are_spread_over_part_of_the_interval_with_commits_between(tmp_path, monkeypatch):
    """The slices of one refresh are not run back to back (on SQLite each holds the write lock, and a plant's
    worth in a row queued a second of rows behind them every minute): ROLLUP_SPREAD of the interval apart in all,
    batches committed in the gaps, every slice refreshed."""
    import db.writer as writer_module

    monkeypatch.setattr(writer_module, "ROLLUP_SLICE_TAGS", 3)
    store = open_store(f"sqlite:///{tmp_path}/s.sqlite3")
    events = []  # ("slice", lo, monotonic time) and ("commit", None, monotonic time) as they happen
    real_refresh, real_write = store.refresh_rollups, store.write_batch
    monkeypatch.setattr(store, "refresh_rollups", lambda since, until, tag_ids=None: (
        events.append(("slice", tag_ids[0], time.monotonic())), real_refresh(since, until, tag_ids))[1])
    monkeypatch.setattr(store, "write_batch", lambda batch: (
        events.append(("commit", None, time.monotonic())), real_write(batch))[1])
    interval = 2.0
    writer = Writer(store, Spool(tmp_path / "spool"), commit_interval_s=0.02, rollup_interval_s=interval)
    t0 = (time.time() // 60) * 60 - 120
    tags = [1, 4, 7, 10, 13]  # five slices of three tag ids
    writer.start()
    try:
        assert writer.submit_samples([(t0 + i, tid, float(i), None, 0, None) for i in range(10) for tid in tags])
        wait_for(lambda: any(e[0] == "slice" for e in events), timeout=15)
        while sum(e[0] == "slice" for e in events) < 5:  # rows keep coming while the refresh is under way
            assert writer.submit_samples([(time.time(), 1, 1.0, None, 0, None)])
            time.sleep(0.03)
        assert writer.flush(10)
    finally:
        writer.stop()
        store.close()
    slices = [e for e in events if e[0] == "slice"][:5]
    assert [lo for _k, lo, _t in slices] == [0, 3, 6, 9, 12]
    gap = interval * writer_module.ROLLUP_SPREAD / 5
    for (_k, _lo, a), (_k2, _lo2, b) in zip(slices, slices[1:]):
        assert b - a >= gap * 0.99
        assert any(k == "commit" and a < t < b for k, _lo3, t in events)  # a batch went in between


def test_rows_days_late_reach_the_minute_and_hour_rollups(any_url, tmp_path):
    """A spool replayed after a long outage writes rows days late. They must show in the 1-minute and 1-hour series
    as on-time rows do, also where those are already refreshed past them: TimescaleDB's refresh policies look back
    only 3 days (samples_1m) and 7 days (samples_1h), and below a continuous aggregate's watermark only materialized
    buckets are read, so without a refresh of their own such rows stayed out of both series for good."""
    from db import backend as backends
    from db.queries import tag_series

    store = open_store(any_url)
    now = time.time()
    recent = (now // 3600) * 3600 - 2 * 3600
    late = recent - 10 * 86400
    writer = Writer(store, Spool(tmp_path / "spool"), commit_interval_s=0.05, rollup_interval_s=0.2)
    writer.start()
    try:
        assert writer.submit_samples([(recent + i, 7, 1.0, None, 0, None) for i in range(60)])
        assert writer.flush(10)
        if store.backend_name == "timescaledb":  # what its policies do when they run: the watermarks move past
            backends.refresh_continuous_aggregates(store.engine, recent, recent + 3600)
        wait_for(lambda: [m["n"] for m in tag_series(store, 7, recent, recent + 3600, "1h")] == [60], timeout=15)
        assert writer.submit_samples([(late + i, 7, float(i), None, 0, None) for i in range(90)])
        assert writer.flush(10)
        wait_for(lambda: [(m["n"], m["max"]) for m in tag_series(store, 7, late, late + 120, "1m")]
                 == [(60, 59.0), (30, 89.0)], timeout=15)
        wait_for(lambda: [(m["n"], m["avg"]) for m in tag_series(store, 7, late, late + 3600, "1h")]
                 == [(90, 44.5)], timeout=15)
        # and the on-time hour is still there
        assert [m["n"] for m in tag_series(store, 7, recent, recent + 3600, "1h")] == [60]
    finally:
        writer.stop()
        store.close()


def test_a_writer_refreshes_the_rollups_of_the_tags_it_wrote_only(any_url, tmp_path, monkeypatch):
    """Two collector processes, two writers: each refreshes the slices of tag ids it wrote samples of, not the
    other's (each tag is one connection's, polled by one collector). Rows written by another writer keep their
    rollups to that writer's refresh; this writer's are all refreshed."""
    import db.writer as writer_module
    from db.queries import tag_series

    monkeypatch.setattr(writer_module, "ROLLUP_SLICE_TAGS", 10)
    store = open_store(any_url)
    other_store = open_store(any_url)
    t0 = (time.time() // 60) * 60 - 120
    mine, others = [3, 4, 31, 58], [12, 45]
    refreshed = []
    real_refresh = store.refresh_rollups
    monkeypatch.setattr(store, "refresh_rollups",
                        lambda since, until, tag_ids=None: (refreshed.append(tag_ids), real_refresh(since, until, tag_ids))[1])
    writer = Writer(store, Spool(tmp_path / "spool"), commit_interval_s=0.05, rollup_interval_s=0.2)
    other = Writer(other_store, Spool(tmp_path / "spool-other"), commit_interval_s=0.05, rollup_interval_s=3600)
    writer.start()
    other.start()
    try:
        assert other.submit_samples([(t0 + i, tid, float(i), None, 0, None) for i in range(60) for tid in others])
        assert other.flush(10)
        assert writer.submit_samples([(t0 + i, tid, float(i), None, 0, None) for i in range(60) for tid in mine])
        assert writer.flush(10)
        for tid in mine:
            wait_for(lambda tid=tid: [m["n"] for m in tag_series(store, tid, t0 - 60, t0 + 120, "1m")] == [60],
                     timeout=15)
        wait_for(lambda: writer._rollup_job is None and not writer._dirty_slices, timeout=15)
    finally:
        writer.stop()
        other.stop()
        store.close()
        other_store.close()
    if store.backend_name == "timescaledb":  # its continuous aggregates keep on-time rows' rollups
        assert refreshed == []
    else:
        assert sorted(set(refreshed)) == [(0, 10), (30, 40), (50, 60)]  # tags 3 and 4 share one slice
