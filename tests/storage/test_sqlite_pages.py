"""The SQLite file's page size (db.engine.SQLITE_PAGE_SIZE), on real SQLite files.

A poll cycle adds one row at the end of each tag's run in ix_samples_tag_time, so a commit rewrites one index page
per tag in the WAL: the page size is what a cycle costs in writes. A new file takes the small pages; a file made
before keeps its own and goes on working.
"""
from __future__ import annotations

import os
import sqlite3
import time

from db import engine as engine_module
from db.spool import Batch
from db.store import open_store

TAGS = 1_000
HISTORY_S = 600  # rows per tag already stored: each tag's newest rows sit on a leaf page of their own


def _page_size(path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA page_size").fetchone()[0]


def _cycle(t: float, tags: int = TAGS) -> list[tuple]:
    return [(t, tag, float(tag), None, 0, None) for tag in range(1, tags + 1)]


def test_a_new_database_has_small_pages_and_a_cycle_writes_about_a_small_page_per_tag(tmp_path):
    path = tmp_path / "oee.sqlite3"
    store = open_store(f"sqlite:///{path}")
    try:
        assert _page_size(path) == engine_module.SQLITE_PAGE_SIZE == 1024
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        _with_history(store, path, TAGS)  # ten minutes of history, as a running plant has
        assert store.write_batch(Batch("one-cycle", samples=_cycle(time.time())))
        wal = os.path.getsize(f"{path}-wal")
        # measured: 1,737 bytes a tag with 1 KiB pages (a leaf each, their parents, the rows), 5,006 with 4 KiB
        assert wal < 2_500 * TAGS, f"one cycle of {TAGS} tags wrote {wal:,} bytes of WAL"
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM samples").scalar() == TAGS * (HISTORY_S + 1)
    finally:
        store.close()


def _with_history(store, path, tags: int) -> None:
    t0 = time.time() - HISTORY_S
    with sqlite3.connect(path) as raw:
        raw.executemany("INSERT INTO samples (time, tag_id, value, quality) VALUES (?, ?, ?, 0)",
                        ((t0 + s, tag, 1.0) for s in range(HISTORY_S) for tag in range(1, tags + 1)))
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    assert os.path.getsize(f"{path}-wal") == 0


def _wal_of_one_commit(tmp_path, name: str, cycles: int, tags: int) -> int:
    path = tmp_path / name
    store = open_store(f"sqlite:///{path}")
    try:
        _with_history(store, path, tags)
        now = time.time()
        assert store.write_batch(Batch(name, samples=[r for k in range(cycles) for r in _cycle(now + k, tags)]))
        with store.engine.connect() as conn:  # the pooled connection has SQLite's default cache again
            assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -2000
            assert conn.exec_driver_sql("SELECT count(*) FROM samples WHERE time >= ?", (now,)).scalar() == cycles * tags
        return os.path.getsize(f"{path}-wal")
    finally:
        store.close()


def test_five_cycles_in_one_commit_write_about_twice_the_wal_of_one_not_five_times(tmp_path):
    """Why a SQLite writer that fell behind takes several cycles a commit (db.writer.SQLITE_MAX_BATCH_ROWS): the
    pages a commit writes are one per tag whatever that tag's rows in it (measured: 1.9x one cycle's for five)."""
    one = _wal_of_one_commit(tmp_path, "one.sqlite3", 1, 2_000)
    five = _wal_of_one_commit(tmp_path, "five.sqlite3", 5, 2_000)
    assert five < 2.5 * one, f"one cycle {one:,} bytes of WAL, five in one commit {five:,}"


def test_a_database_made_with_other_pages_keeps_them_and_its_rows(tmp_path, monkeypatch):
    path = tmp_path / "old.sqlite3"
    monkeypatch.setattr(engine_module, "SQLITE_PAGE_SIZE", 4096)  # as every database was made before
    old = open_store(f"sqlite:///{path}")
    assert old.write_batch(Batch("before", samples=_cycle(time.time() - 60, 50)))
    old.close()
    monkeypatch.undo()
    store = open_store(f"sqlite:///{path}")  # today's code on yesterday's file
    try:
        assert _page_size(path) == 4096
        assert store.write_batch(Batch("after", samples=_cycle(time.time(), 50)))
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*), count(DISTINCT time) FROM samples").one() == (100, 2)
    finally:
        store.close()


def test_two_writers_in_turn_keep_the_wal_short(tmp_path, monkeypatch):
    """Two stores on one file (as two collector processes) committing in turn, a commit always under way: SQLite's
    own checkpoints never bring the WAL back to its start then; db.store._keep_wal_short does once it is past
    SQLITE_WAL_RESTART_BYTES (here 1 MiB), and no row is lost."""
    import threading

    from db import store as store_module

    monkeypatch.setattr(store_module, "SQLITE_WAL_RESTART_BYTES", 2**20)
    path = tmp_path / "oee.sqlite3"
    stores = [open_store(f"sqlite:///{path}") for _ in range(2)]
    _with_history(stores[0], path, 2_000)
    peak, stop = [0], threading.Event()

    def watch():
        while not stop.is_set():
            peak[0] = max(peak[0], os.path.getsize(f"{path}-wal"))
            time.sleep(0.005)

    def write(k: int):
        for n in range(15):
            assert stores[k].write_batch(Batch(f"w{k}-{n}", samples=_cycle(time.time() + n, 2_000)[k::2]))

    watcher = threading.Thread(target=watch)
    watcher.start()
    writers = [threading.Thread(target=write, args=(k,)) for k in range(2)]
    try:
        for w in writers:
            w.start()
        for w in writers:
            w.join()
    finally:
        stop.set()
        watcher.join()
    try:
        with stores[0].engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM samples").scalar() == 2_000 * (HISTORY_S + 15)
        assert peak[0] < 6 * 2**20, f"the WAL reached {peak[0]:,} bytes"
    finally:
        for s in stores:
            s.close()


def test_a_reader_that_holds_the_wal_costs_the_writer_one_wait_not_one_per_commit(tmp_path, monkeypatch, caplog):
    """A long report keeps its snapshot of the WAL: the checkpoint gives up after SQLITE_WAL_RESTART_WAIT_MS, says
    so, and is not tried again at every commit (each try holds other writers up as long)."""
    import logging

    from db import store as store_module

    monkeypatch.setattr(store_module, "SQLITE_WAL_RESTART_BYTES", 2**20)
    monkeypatch.setattr(store_module, "SQLITE_WAL_RESTART_WAIT_MS", 300)
    path = tmp_path / "oee.sqlite3"
    store = open_store(f"sqlite:///{path}")
    try:
        first = [r for k in range(20) for r in _cycle(time.time() - 30 + k, 2_000)]  # past 1 MiB of WAL
        monkeypatch.setattr(store_module, "SQLITE_WAL_RESTART_BYTES", 64 * 2**20)  # not checkpointed yet
        assert store.write_batch(Batch("first", samples=first))
        monkeypatch.setattr(store_module, "SQLITE_WAL_RESTART_BYTES", 2**20)
        assert os.path.getsize(f"{path}-wal") > 2**20
        report = sqlite3.connect(path, isolation_level=None)
        report.execute("BEGIN")
        report.execute("SELECT count(*) FROM samples").fetchone()  # a read transaction on the WAL's snapshot
        took = []
        with caplog.at_level(logging.INFO, logger="db.store"):
            for k in range(4):
                started = time.monotonic()
                assert store.write_batch(Batch(f"b{k}", samples=_cycle(time.time() + k, 2_000)))
                took.append(time.monotonic() - started)
        report.execute("COMMIT")
        report.close()
        assert os.path.getsize(f"{path}-wal") > 2**20
        assert took[0] >= 0.3 and max(took[1:]) < 0.3, took  # one wait, then commits as fast as without it
        assert sum("readers held it" in r.message for r in caplog.records) == 1
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM samples").scalar() == 24 * 2_000
    finally:
        store.close()
