"""Long ranges read count rows summed in SQL (5-, 15- or 60-minute grains); the sums must not move parts across a
break. A grain that held the rows of zeros written in a break and the parts made after it was placed at its
midpoint, in the break: a week's OEE lost the production of every hour that a break began or ended in."""
from __future__ import annotations

from datetime import time as clock

import pytest
from sqlalchemy.orm import Session

from db.models import Area, Line, Machine, Shift, ShiftBreak, ShiftCalendar, Site
from db.oee_queries import count_grain_s, oee_report
from db.spool import Batch
from db.store import open_store

H, M = 3600.0, 60.0
D0 = 1_790_000_000.0 - (1_790_000_000.0 % 86400)  # a midnight (UTC), in the past
DAYS = 4


@pytest.fixture
def store(any_url):
    store = open_store(any_url)
    yield store
    store.close()


def _seed(store) -> None:
    """One shift 06:00-14:00 with a break 10:10-10:40 the machine stops for; 60 parts a minute while it runs; the
    collector's one-minute rows, of zeros where nothing was made."""
    with Session(store.engine) as s, s.begin():
        cal = ShiftCalendar(name="Day", timezone="UTC", shifts=[Shift(
            name="Day", start_time=clock(6), end_time=clock(14),
            breaks=[ShiftBreak(name="Lunch", start_time=clock(10, 10), duration_s=1800)])])
        line = Line(area=Area(site=Site(name="Plant", timezone="UTC"), name="A"), name="L")
        m = Machine(machine_id="M", name="M", line=line, ideal_cycle_time_s=1.0)
        s.add_all([cal, line, m])
        s.flush()
        m.calendar_id = cal.id
        pk = m.id
    states, counts = [], []
    for d in range(DAYS):
        day = D0 + d * 86400
        lunch, back = day + 10 * H + 10 * M, day + 10 * H + 40 * M
        states += [(pk, day + 6 * H, lunch, "running", None, None), (pk, lunch, back, "planned_stop", None, None),
                   (pk, back, day + 14 * H, "running", None, None),
                   (pk, day + 14 * H, day + 30 * H, "idle", None, None)]
        for i in range(8 * 60):
            t = day + 6 * H + i * M
            made = 0 if lunch <= t < back else 60
            counts.append((pk, t, t + 59.5, None, made, made, 0))
    store.write_batch(Batch("s", states=states, counts=counts))


def test_a_long_range_counts_what_its_days_count(store):
    _seed(store)
    assert count_grain_s(D0, D0 + DAYS * 86400) == 3600 and count_grain_s(D0, D0 + 86400) == 300
    week = oee_report(store, "machine", "M", D0, D0 + DAYS * 86400)
    days = [oee_report(store, "machine", "M", D0 + d * 86400, D0 + (d + 1) * 86400) for d in range(DAYS)]
    made = DAYS * (8 * 60 - 30) * 60
    assert sum(d["total_count"] for d in days) == made
    assert week["total_count"] == made
    assert week["outside_planned_total_count"] == 0
    assert week["oee"] == pytest.approx(1.0)
