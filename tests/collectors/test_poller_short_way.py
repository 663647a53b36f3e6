"""ConnectionPoller._process takes a short way for plain tags (stored on every read, unscaled numbers, no machine
role); it must store, publish and keep exactly what the general way does."""
from __future__ import annotations

import math

from collectors.base import BAD, GOOD, UNCERTAIN, Reading
from collectors.poller import BackoffPolicy, ConnectionPoller
from collectors.snapshot import LatestValues
from live.hub import Hub


class RowsTaken:
    """What the poller hands to the writer, in order (the writer itself is tested in tests/storage)."""

    def __init__(self):
        self.samples: list[tuple] = []

    def submit_samples(self, rows):
        self.samples.extend(rows)
        return True

    def submit_states(self, rows):
        return True

    submit_counts = submit_faults = submit_states


def make_poller(general_only: bool):
    tags = [{"id": i + 1, "name": f"t{i}", "address": f"HR{2 * i}", "data_type": "FLOAT32" if i % 3 else "UINT32",
             "scale": 1.0, "offset": 0.0, "deadband": 0.0, "report_by_exception": False, "role": None,
             "machine_id": None} for i in range(40)]
    config = {"id": 1, "name": "c", "protocol": "MODBUS", "host": "127.0.0.1", "port": 1, "protocol_config": {},
              "poll_interval_ms": 1000, "tags": tags, "machines": {}}
    hub = Hub()
    sub = hub.subscribe(maxlen=10_000)
    poller = ConnectionPoller(config, writer=RowsTaken(), snapshot=LatestValues(), hub=hub, trackers={},
                              tracker_locks={}, backoff=BackoffPolicy())
    if general_only:
        for tag in poller.tags:
            tag.plain = False
    return poller, sub


def test_short_way_equals_general_way():
    fast, fast_sub = make_poller(False)
    slow, slow_sub = make_poller(True)
    assert all(t.plain for t in fast.tags)
    values = [1.5, 2, 2, float("nan"), float("inf"), -0.0, 7, 3.25, 10**6, 0.1]
    for cycle in range(12):
        readings = {}
        for tag_id in range(1, 41):
            k = (cycle * 7 + tag_id) % 13
            if k == 11:
                continue  # no reading for this tag this cycle
            if k == 12:
                readings[tag_id] = Reading(None, BAD, "device_error: refused")
            elif k == 10:
                readings[tag_id] = Reading(4.5, UNCERTAIN, "UncertainLastUsableValue")
            else:
                readings[tag_id] = Reading(values[(k + cycle) % len(values)])
        now = 1000.0 + cycle
        fast._process(now, readings)
        slow._process(now, readings)
    def same(a, b):
        return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
    assert len(fast.writer.samples) == len(slow.writer.samples) > 400
    for a, b in zip(fast.writer.samples, slow.writer.samples):
        assert all(same(x, y) and type(x) is type(y) for x, y in zip(a, b)), (a, b)
    assert fast.snapshot.tags().keys() == slow.snapshot.tags().keys()
    for tag_id, item in fast.snapshot.tags().items():
        assert all(same(x, y) for x, y in zip(item, slow.snapshot.tags()[tag_id])), tag_id
    published_fast, published_slow = fast_sub.get_all(0), slow_sub.get_all(0)
    assert len(published_fast) == len(published_slow) == 12
    for (ta, ma), (tb, mb) in zip(published_fast, published_slow):
        assert ta == tb and ma.keys() == mb.keys()
        assert all(all(same(x, y) for x, y in zip(ma[k], mb[k])) and len(ma[k]) == len(mb[k]) for k in ma)
    assert [(t.last_quality, t.last_stored) for t in fast.tags] == [(t.last_quality, t.last_stored) for t in slow.tags]
    assert fast.bad_tags == slow.bad_tags > 0
