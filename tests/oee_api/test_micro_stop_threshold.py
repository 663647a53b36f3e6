"""oee_report() takes a machine's own micro-stop threshold when the machine has one (machines.micro_stop_threshold_s),
else the site's default, else 120 s; a caller's Config wins over both."""
from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

import oee
from db.models import Area, Line, Machine, Site
from db.oee_queries import oee_report
from db.spool import Batch
from db.store import open_store

T0 = 1_790_000_000.0 - (1_790_000_000.0 % 3600)


@pytest.fixture
def store(sqlite_url):
    store = open_store(sqlite_url)
    with Session(store.engine) as s, s.begin():
        line = Line(area=Area(site=Site(name="Plant", timezone="UTC"), name="A"), name="L")
        m = Machine(machine_id="X", name="X", line=line, ideal_cycle_time_s=0.1)
        s.add_all([line, m])
        s.flush()
        pk = m.id
    states = []
    for k in range(4):  # run 20 s, faulted 10 s, every 30 s
        states += [(pk, T0 + 30 * k, T0 + 30 * k + 20, "running", None, None),
                   (pk, T0 + 30 * k + 20, T0 + 30 * k + 30, "faulted", 42, None)]
    store.write_batch(Batch("b", states=states, counts=[(pk, T0 + 30 * k, T0 + 30 * k + 20, None, 200, 180, 20)
                                                         for k in range(4)]))
    yield store
    store.close()


def _set(store, model, value) -> None:
    with Session(store.engine) as s, s.begin():
        for row in s.query(model):
            row.micro_stop_threshold_s = value


def test_the_machines_threshold_then_the_sites_then_120_s(store):
    default = oee_report(store, "machine", "X", T0, T0 + 120)
    assert default["losses"]["performance.idling_minor_stops"] == pytest.approx(40)  # 10 s < 120 s: minor
    assert default["availability"] == pytest.approx(1.0)
    _set(store, Site, 8.0)
    site = oee_report(store, "machine", "X", T0, T0 + 120)
    assert site["losses"]["availability.equipment_failure"] == pytest.approx(40)
    _set(store, Machine, 15.0)
    own = oee_report(store, "machine", "X", T0, T0 + 120)
    assert own["losses"]["performance.idling_minor_stops"] == pytest.approx(40)  # the machine's 15 s wins
    given = oee_report(store, "machine", "X", T0, T0 + 120, config=oee.Config(micro_stop_threshold_s=5))
    assert given["availability"] == pytest.approx(80 / 120) and given["performance"] == pytest.approx(1.0)
    assert given["oee"] == pytest.approx(default["oee"]) == pytest.approx(720 * 0.1 / 120)
