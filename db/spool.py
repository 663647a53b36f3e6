"""A bounded, ordered, crash-safe disk buffer of writer batches, for when the database is away.

One file per batch, named so that listing the folder gives the order and each file's row count without
opening it: ``<sequence>_<rows>_<batch id>.spool``. A file is written to a temporary name, fsynced and renamed,
so a crash leaves either a whole batch or none. The content is `marshal` (plain tuples of numbers and strings:
no code runs on load, unlike pickle) behind a magic number and a CRC.
"""
from __future__ import annotations

import logging
import marshal
import os
import threading
import zlib
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path

log = logging.getLogger(__name__)

MAGIC = b"OEESPL1\n"
MARSHAL_VERSION = 4


@dataclass
class Batch:
    """One unit of writing: committed to the database in one transaction, or spooled as one file."""

    batch_id: str
    samples: list = field(default_factory=list)  # (epoch_s, tag_id, value, value_text, quality, reason)
    states: list = field(default_factory=list)  # (machine_id, start_s, end_s|None, state, fault_code, product)
    counts: list = field(default_factory=list)  # (machine_id, start_s, end_s, product, total, good, reject)
    faults: list = field(default_factory=list)  # (machine_id, code|None, start_s, end_s|None)

    @property
    def rows(self) -> int:
        return len(self.samples) + len(self.states) + len(self.counts) + len(self.faults)

    def span(self) -> tuple[float, float] | None:
        """Earliest and latest sample time, for the rollups to know what to recompute (C-speed passes: the writer
        asks for every batch, 50,000 rows a second at the [perf] target)."""
        if not self.samples:
            return None
        times = list(map(_first, self.samples))
        return min(times), max(times)

    def sample_tag_ids(self) -> set[int]:
        return set(map(_second, self.samples))


_first, _second = itemgetter(0), itemgetter(1)


class SpoolCorrupt(Exception):
    pass


def encode(batch: Batch) -> bytes:
    body = marshal.dumps((batch.batch_id, batch.samples, batch.states, batch.counts, batch.faults), MARSHAL_VERSION)
    return MAGIC + zlib.crc32(body).to_bytes(4, "big") + body


def decode(data: bytes) -> Batch:
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
        raise SpoolCorrupt("bad header")
    crc, body = data[len(MAGIC):len(MAGIC) + 4], data[len(MAGIC) + 4:]
    if zlib.crc32(body).to_bytes(4, "big") != crc:
        raise SpoolCorrupt("checksum mismatch")
    parts = marshal.loads(body)
    if len(parts) == 4:  # spooled by a version without faults
        parts = (*parts, [])
    batch_id, samples, states, counts, faults = parts
    return Batch(batch_id, list(samples), list(states), list(counts), list(faults))


class Spool:
    def __init__(self, directory: str | os.PathLike, max_bytes: int = 1 << 30):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        for leftover in self.dir.glob("*.tmp"):  # a crash in the middle of a write: that batch was never acked
            leftover.unlink(missing_ok=True)
        self._files: list[tuple[Path, int, int]] = []  # (path, rows, bytes), oldest first
        for path in sorted(self.dir.glob("*.spool")):
            try:
                rows = int(path.name.split("_")[1])
            except (IndexError, ValueError):
                rows = 0
            self._files.append((path, rows, path.stat().st_size))
        self._next_seq = (int(self._files[-1][0].name.split("_")[0]) + 1) if self._files else 1
        self.dropped_rows = 0
        self.dropped_batches = 0

    # --- what is in it

    def __len__(self) -> int:
        return len(self._files)

    @property
    def rows(self) -> int:
        return sum(r for _, r, _ in self._files)

    @property
    def bytes(self) -> int:
        return sum(b for _, _, b in self._files)

    # --- writing and reading

    def append(self, batch: Batch) -> int:
        """Store a batch durably. Returns rows dropped (the oldest batches) to stay under the bound."""
        data = encode(batch)
        with self._lock:
            name = f"{self._next_seq:012d}_{batch.rows}_{batch.batch_id}.spool"
            self._next_seq += 1
            tmp = self.dir / (name + ".tmp")
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.dir / name)
            self._files.append((self.dir / name, batch.rows, len(data)))
            dropped = 0
            total = sum(b for _, _, b in self._files)
            # Over the bound the oldest go first: the newest data is what the plant is looking at now.
            while total > self.max_bytes and len(self._files) > 1:
                path, rows, size = self._files.pop(0)
                path.unlink(missing_ok=True)
                total -= size
                dropped += rows
                self.dropped_batches += 1
            self.dropped_rows += dropped
            return dropped

    def peek(self) -> tuple[Path, Batch] | None:
        """The oldest batch, not removed. A corrupt file is set aside and counted as dropped."""
        with self._lock:
            while self._files:
                path, rows, _size = self._files[0]
                try:
                    return path, decode(path.read_bytes())
                except (OSError, SpoolCorrupt, ValueError, EOFError, TypeError) as exc:
                    self._files.pop(0)
                    aside = self.dir / "corrupt"
                    aside.mkdir(exist_ok=True)
                    try:
                        os.replace(path, aside / path.name)
                    except OSError:
                        pass
                    self.dropped_rows += rows
                    self.dropped_batches += 1
                    log.error("spool file %s is unreadable (%s); set aside in %s, %d rows lost", path.name, exc,
                              aside, rows)
            return None

    def remove(self, path: Path) -> None:
        with self._lock:
            self._files = [f for f in self._files if f[0] != path]
            path.unlink(missing_ok=True)
