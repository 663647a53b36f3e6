"""'Planned against actual' climbs with the counts as they were made, not in stairs: a count row spans a minute, the
chart's steps 30 s; each row is spread over the steps it spans (it was placed whole at its midpoint, which filled
every other step)."""
from __future__ import annotations

import pytest

from db.spool import Batch
from db.store import open_store
from db.ui_queries import count_progress
from tests.oee_api.test_ideal_cycle_time import H, T0, _plant


@pytest.fixture
def store(sqlite_url):
    store = open_store(sqlite_url)
    yield store
    store.close()


def test_minute_count_rows_fill_every_30_s_step(store):
    ids = _plant(store, machine_ideal=1.0)
    counts = [(ids["machine"], T0 + 60 * i, T0 + 60 * (i + 1), None, 60, 60, 0) for i in range(60)]
    store.write_batch(Batch("h", states=[(ids["machine"], T0, T0 + H, "running", None, None)], counts=counts))
    p = count_progress(store, "machine", "PLC-X", T0, T0 + H, steps=120)
    steps = [b - a for a, b in zip([0.0] + p["total"], p["total"])]
    assert len(steps) == 120
    assert steps == pytest.approx([30.0] * 120)  # one part a second, in every 30 s step
    assert p["total"][-1] == pytest.approx(3600) and p["good"][-1] == pytest.approx(3600)


def test_a_row_across_the_range_start_counts_its_share_inside(store):
    ids = _plant(store, machine_ideal=1.0)
    store.write_batch(Batch("h", states=[(ids["machine"], T0 - 60, T0 + H, "running", None, None)],
                            counts=[(ids["machine"], T0 - 30, T0 + 30, None, 60, 60, 0)]))
    p = count_progress(store, "machine", "PLC-X", T0, T0 + H, steps=120)
    assert p["total"][0] == pytest.approx(30) and p["total"][-1] == pytest.approx(30)
