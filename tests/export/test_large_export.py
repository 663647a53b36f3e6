"""Two million samples exported from a running server: the stream is complete and the server's memory stays flat.

The app runs as its own process (`python app.py --role web`), so its resident memory can be read from /proc: its
peak (VmHWM) after a small export is the baseline, and a 2,000,000-row export (about 140 MB of CSV) must not raise
it by more than a few batches' worth. On PostgreSQL the rows come through a server-side cursor, seen in
pg_stat_activity as FETCH FORWARD while the download runs.
"""
from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.orm import Session

from db.models import Connection, Machine, Tag
from db.spool import Batch
from db.store import open_store
from tests.support.pgcluster import free_port

ROOT = Path(__file__).resolve().parents[2]
ROWS = 2_000_000
T0 = 1_700_000_000.0
MAX_GROWTH_MB = 40  # a full copy of the rows would be hundreds of MB


def fill(url: str) -> int:
    store = open_store(url)
    try:
        with Session(store.engine) as s, s.begin():
            m = Machine(machine_id="BIG", name="Big machine")
            s.add(m)
            s.flush()
            c = Connection(name="big", machine_id=m.id, protocol="MODBUS", host="127.0.0.1", port=502,
                           poll_interval_ms=1000)
            s.add(c)
            s.flush()
            tag = Tag(connection_id=c.id, machine_id=m.id, name="Pressure", address="40001", data_type="FLOAT32")
            s.add(tag)
            s.flush()
            tag_id = tag.id
        step = 200_000
        for lo in range(0, ROWS, step):
            store.write_batch(Batch(f"big-{lo}", samples=[
                (T0 + i, tag_id, (i % 1000) / 8.0 - 60.0, None, 0, None) for i in range(lo, min(lo + step, ROWS))]))
        return tag_id
    finally:
        store.close()


def memory_kb(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


class Server:
    def __init__(self, url: str, tmp_path: Path):
        self.port = free_port()
        self.log = open(tmp_path / "app.log", "w+")
        self.proc = subprocess.Popen(
            [sys.executable, "app.py", "--no-demo", "--role", "web", "--port", str(self.port), "--database-url", url,
             "--data-dir", str(tmp_path / "data")], cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, Path(self.log.name).read_text()
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2).read()
                return
            except OSError:
                assert time.monotonic() < deadline, "the app did not start"
                time.sleep(0.2)

    def download(self, path: str, during=None) -> tuple[int, int, bytes]:
        """(lines, bytes, last line) of a streamed download; during(bytes_so_far) is called once per MB."""
        lines = size = 0
        tail = b""
        next_call = 1 << 20
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=300) as resp:
            assert resp.status == 200
            while chunk := resp.read(1 << 16):
                lines += chunk.count(b"\n")
                size += len(chunk)
                tail = (tail + chunk)[-200:]
                if during is not None and size >= next_call:
                    during(size)
                    next_call += 1 << 20
        return lines, size, tail.rstrip(b"\r\n").rsplit(b"\n", 1)[-1]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_million_rows_in_constant_memory(backend, tmp_path, request):
    url = f"sqlite:///{tmp_path / 'big.sqlite3'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    started = time.monotonic()
    tag_id = fill(url)
    filled = time.monotonic() - started
    server = Server(url, tmp_path)
    try:
        small = f"/export/tags.csv?tag={tag_id}&start={T0}&end={T0 + 100_000}&tz=UTC"
        lines, _, _ = server.download(small)
        assert lines == 100_001
        base = memory_kb(server.proc.pid)
        samples, fetching = [], []

        def during(_size):
            samples.append(memory_kb(server.proc.pid)["VmRSS"])
            if backend == "postgresql" and not fetching:
                with psycopg.connect(url, autocommit=True) as conn:
                    fetching.extend(r[0] for r in conn.execute(
                        "SELECT query FROM pg_stat_activity WHERE application_name = 'oee' AND pid <> "
                        "pg_backend_pid() AND (query ILIKE 'FETCH%' OR query ILIKE 'DECLARE%')"))

        t = time.monotonic()
        lines, size, last = server.download(
            f"/export/tags.csv?tag={tag_id}&start={T0}&end={T0 + ROWS}&tz=UTC&delimiter=;&decimal=,", during)
        seconds = time.monotonic() - t
        peak = memory_kb(server.proc.pid)
    finally:
        server.stop()
    growth_mb = (peak["VmHWM"] - base["VmHWM"]) / 1024
    print(f"\n{backend}: filled {ROWS:,} samples in {filled:.1f} s; exported {lines - 1:,} rows, {size / 1e6:.0f} MB "
          f"in {seconds:.1f} s ({(lines - 1) / seconds:,.0f} rows/s); server RSS after warm-up "
          f"{base['VmRSS'] / 1024:.0f} MB, peak before {base['VmHWM'] / 1024:.0f} MB, peak after "
          f"{peak['VmHWM'] / 1024:.0f} MB (+{growth_mb:.1f} MB), RSS during the download "
          f"{min(samples) / 1024:.0f}-{max(samples) / 1024:.0f} MB")
    assert lines == ROWS + 1
    last_time = datetime.fromtimestamp(T0 + ROWS - 1, timezone.utc).isoformat().encode()
    assert last.startswith(last_time + b";BIG;")  # the last sample is there
    assert last.split(b";")[4] == f"{((ROWS - 1) % 1000) / 8.0 - 60.0}".replace(".", ",").encode()
    assert growth_mb < MAX_GROWTH_MB, "the export's memory grew with its size"
    if backend == "postgresql":
        assert fetching and "FETCH FORWARD" in fetching[0].upper(), fetching
