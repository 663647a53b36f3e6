"""A private PostgreSQL cluster for tests that must stop and start the server, or preload TimescaleDB.

Uses Debian's server binaries; initdb refuses to run as root, so as root the cluster runs as the postgres user.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def timescaledb_installed() -> bool:
    bindir = _bindir()
    if bindir is None:
        return False
    return bool(glob.glob(str(bindir.parent / "lib" / "timescaledb.so")))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    def __init__(self, *, preload_timescaledb: bool = False, port: int | None = None):
        self.bindir = _bindir()
        if self.bindir is None:
            raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql")
        self.port = port or free_port()
        self.preload_timescaledb = preload_timescaledb
        self.root = Path(tempfile.mkdtemp(prefix="oee-pg-"))
        self.datadir = self.root / "data"
        self.logfile = self.root / "server.log"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
            os.chmod(self.root, 0o755)

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(a) for a in args]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120)

    def init(self) -> "PgCluster":
        self._run(self.bindir / "initdb", "-D", self.datadir, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        return self

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        if self.preload_timescaledb:
            opts += " -c shared_preload_libraries=timescaledb -c timescaledb.max_background_workers=4"
        self._run(self.bindir / "pg_ctl", "-D", self.datadir, "-l", self.logfile, "-w", "-o", opts, "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(self.bindir / "pg_ctl", "-D", self.datadir, "-m", mode, "-w", "stop", check=False)

    def kill(self) -> None:
        """An abrupt stop, as when a server crashes: immediate mode, no shutdown checkpoint."""
        self.stop("immediate")

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        self.psql("postgres", f'CREATE DATABASE "{name}"')
        return self.url(name)

    def psql(self, dbname: str, sql: str) -> str:
        out = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-X", "-At",
                              "-d", dbname, "-c", sql], check=True, capture_output=True, text=True, timeout=60)
        return out.stdout.strip()

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "PgCluster":
        self.init()
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.destroy()


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")
