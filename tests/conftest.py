"""Shared fixtures: real SQLite files, real PostgreSQL databases made per test, TimescaleDB where present.

PostgreSQL: the server at OEE_TEST_PG (default postgresql://postgres@127.0.0.1:5432/postgres, trust auth). Each
test gets a database of its own, dropped afterwards, so runs never see each other's data. TimescaleDB needs the
library preloaded, which the shared server must not be; those tests start a private cluster that preloads it, and
are skipped, with the reason printed (pytest -rs), where the extension is not installed.
"""
from __future__ import annotations

import itertools
import os
import uuid

import psycopg
import pytest

from tests.support.pgcluster import PgCluster, timescaledb_installed

PG_ADMIN_URL = os.environ.get("OEE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
_counter = itertools.count()
TIMESCALEDB_SKIP = ("TimescaleDB is not installed on this machine's PostgreSQL (no timescaledb.so): "
                    "TimescaleDB tests SKIPPED; the plain PostgreSQL path was tested instead")


def _admin():
    try:
        return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required for the storage tests and is not reachable at {PG_ADMIN_URL}: {exc}. "
                    "Start it (see .ci/run) or point OEE_TEST_PG at one.")


def _drop(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture
def pg_url():
    """A new, empty database on the shared PostgreSQL server."""
    name = f"oee_test_{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    _drop(PG_ADMIN_URL, name)


@pytest.fixture(scope="session")
def timescale_cluster():
    if not timescaledb_installed():
        pytest.skip(TIMESCALEDB_SKIP)
    cluster = PgCluster(preload_timescaledb=True)
    cluster.init()
    cluster.start()
    yield cluster
    cluster.destroy()


@pytest.fixture
def timescale_url(timescale_cluster):
    name = f"oee_ts_{next(_counter)}_{uuid.uuid4().hex[:6]}"
    url = timescale_cluster.create_database(name)
    yield url
    _drop(timescale_cluster.url(), name)


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'oee.sqlite3'}"


@pytest.fixture(params=["sqlite", "postgresql", "timescaledb"])
def any_url(request, tmp_path):
    """The same test on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'oee.sqlite3'}"
    if request.param == "postgresql":
        return request.getfixturevalue("pg_url")
    return request.getfixturevalue("timescale_url")


@pytest.fixture
def mosquitto():
    """A Mosquitto broker of this test's own on 127.0.0.1 (anonymous clients allowed): (host, port)."""
    from tests.support.mosquitto import Mosquitto
    with Mosquitto() as broker:
        yield broker.host, broker.port
