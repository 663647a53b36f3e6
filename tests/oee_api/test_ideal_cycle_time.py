"""The ideal cycle time oee_report() uses, on real databases: the product's, else the machine's cycle.ideal_time tag
at the time (its stored samples over the range), else the machine's ideal_cycle_time_s."""
from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from db.models import Area, Connection, Line, Machine, Product, Site, Tag
from db.oee_queries import oee_report
from db.spool import Batch
from db.store import open_store

H = 3600.0
T0 = 1_790_000_000.0 - (1_790_000_000.0 % H)


@pytest.fixture
def store(any_url):
    store = open_store(any_url)
    yield store
    store.close()


def _plant(store, *, machine_ideal=None, product_ideal=None) -> dict:
    with Session(store.engine) as s, s.begin():
        line = Line(area=Area(site=Site(name="Plant", timezone="UTC"), name="A"), name="L")
        m = Machine(machine_id="PLC-X", name="Third-party PLC", line=line, ideal_cycle_time_s=machine_ideal)
        s.add_all([line, m])
        if product_ideal is not None:
            s.add(Product(code="7", name="Seven", ideal_cycle_time_s=product_ideal))
        s.flush()
        conn = Connection(name="PLC-X", machine_id=m.id, protocol="MODBUS", host="127.0.0.1", port=502)
        s.add(conn)
        s.flush()
        ideal = Tag(connection_id=conn.id, machine_id=m.id, name="NominalCycle", address="HR40", data_type="FLOAT32",
                    role="cycle.ideal_time")
        s.add(ideal)
        s.flush()
        return {"machine": m.id, "ideal_tag": ideal.id}


def _history(store, ids, product=None):
    # Runs 2 h. The PLC's nominal cycle: 36 s in the first hour, 18 s in the second (a faster recipe), polled
    # every 10 s (stored each poll, as a tag without deadband is). 100 parts in each hour, 10 rejects in the second.
    samples = [(T0 - 30 + i * 10, ids["ideal_tag"], 36.0 if T0 - 30 + i * 10 < T0 + H else 18.0, None, 0, None)
               for i in range(723)]
    store.write_batch(Batch("h", samples=samples, states=[(ids["machine"], T0, T0 + 2 * H, "running", None, product)],
                            counts=[(ids["machine"], T0 + 600, T0 + 660, product, 100, 100, 0),
                                    (ids["machine"], T0 + H + 600, T0 + H + 660, product, 100, 90, 10)]))


def test_the_tag_gives_oee_with_no_product_and_follows_its_samples(store):
    ids = _plant(store)
    _history(store, ids)
    r = oee_report(store, "machine", "PLC-X", T0, T0 + 2 * H)
    assert "no_ideal_cycle_time" not in r["flags"]
    assert r["net_run_time_s"] == pytest.approx(100 * 36 + 100 * 18)
    assert r["performance"] == pytest.approx((100 * 36 + 100 * 18) / (2 * H))
    assert r["oee"] == pytest.approx((100 * 36 + 90 * 18) / (2 * H))
    hours = oee_report(store, "machine", "PLC-X", T0, T0 + 2 * H, bucket="hour")["buckets"]
    assert [b["net_run_time_s"] for b in hours] == pytest.approx([3600.0, 1800.0])
    # a range that starts after the last change still knows the value from the sample before it
    late = oee_report(store, "machine", "PLC-X", T0 + H + 300, T0 + 2 * H)
    assert late["net_run_time_s"] == pytest.approx(100 * 18)


def test_the_product_comes_before_the_tag_and_the_tag_before_the_machine(store):
    ids = _plant(store, machine_ideal=5.0, product_ideal=30.0)
    _history(store, ids, product="7")
    assert oee_report(store, "machine", "PLC-X", T0, T0 + 2 * H)["net_run_time_s"] == pytest.approx(200 * 30)
    with Session(store.engine) as s, s.begin():
        s.query(Product).delete()
    assert oee_report(store, "machine", "PLC-X", T0, T0 + 2 * H)["net_run_time_s"] == pytest.approx(100 * 36 + 100 * 18)
    with Session(store.engine) as s, s.begin():
        s.query(Tag).delete()
    assert oee_report(store, "machine", "PLC-X", T0, T0 + 2 * H)["net_run_time_s"] == pytest.approx(200 * 5)


def test_the_planned_against_actual_chart_takes_the_tag_too(store):
    from db.ui_queries import count_progress

    ids = _plant(store)
    _history(store, ids)
    p = count_progress(store, "machine", "PLC-X", T0, T0 + 2 * H, steps=2)
    assert not p["missing_ideal"]
    assert p["ideal"] == pytest.approx([3600 / 36, 3600 / 36 + 3600 / 18])
