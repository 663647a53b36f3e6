"""Every collecting process schedules the hourly summaries' refresh; one_refresher lets one of them run it at a
time (two collector processes on one database did all of it twice). Here another real process holds the lock."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from db.oee_hours_refresh import one_refresher
from db.store import open_store
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
HOLDER = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[2])
    from db.oee_hours_refresh import one_refresher
    from db.store import open_store
    store = open_store(sys.argv[1])
    with one_refresher(store) as alone:
        print("alone" if alone else "not alone", flush=True)
        sys.stdin.readline()  # hold it until the test says so
    store.close()
""")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    return f"sqlite:///{tmp_path}/r.sqlite3" if request.param == "sqlite" else request.getfixturevalue("pg_url")


def test_one_process_refreshes_at_a_time_and_the_lock_goes_with_it(url):
    store = open_store(url)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, url, str(ROOT)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "alone"
        with one_refresher(store) as alone:
            assert alone is False  # the other process holds it
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.wait(30) == 0
        with one_refresher(store) as alone:
            assert alone is True  # let go when the holder finished
            with one_refresher(store) as again:
                assert again is False  # not twice, even within one process
        with one_refresher(store) as alone:
            assert alone is True
        # A holder that dies without letting go (killed) releases it too.
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, url, str(ROOT)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        assert holder.stdout.readline().strip() == "alone"
        holder.kill()
        holder.wait(30)

        def free() -> bool:  # the server ends a dead client's session when it sees the socket closed
            with one_refresher(store) as alone:
                return alone

        wait_for(free, 10, 0.1)
    finally:
        if holder.poll() is None:
            holder.kill()
        store.close()
