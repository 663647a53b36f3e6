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
        t0 = time.time() - HISTORY_S
        with sqlite3.connect(path) as raw:  # ten minutes of history, as a running plant has
            raw.executemany("INSERT INTO samples (time, tag_id, value, quality) VALUES (?, ?, ?, 0)",
                            ((t0 + s, tag, 1.0) for s in range(HISTORY_S) for tag in range(1, TAGS + 1)))
        with sqlite3.connect(path) as raw:
            assert raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0  # not busy: WAL emptied
        assert os.path.getsize(f"{path}-wal") == 0
        assert store.write_batch(Batch("one-cycle", samples=_cycle(time.time())))
        wal = os.path.getsize(f"{path}-wal")
        # measured: 1,737 bytes a tag with 1 KiB pages (a leaf each, their parents, the rows), 5,006 with 4 KiB
        assert wal < 2_500 * TAGS, f"one cycle of {TAGS} tags wrote {wal:,} bytes of WAL"
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM samples").scalar() == TAGS * (HISTORY_S + 1)
    finally:
        store.close()


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
