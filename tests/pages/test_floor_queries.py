"""db.floor_queries and db.loss_pareto on real SQLite and PostgreSQL: rejects an operator counts by hand lower
quality as oee_report (GET /api/oee/) computes it, and are audited; reasons come most used first; the stop that
asks for a reason; the Pareto of downtime and of the six losses adds up to the engine's numbers."""
from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from db import downtime_queries as dq
from db import floor_queries as fq
from db import loss_pareto
from db.models import AuditEntry
from db.oee_queries import oee_report
from tests.pages.test_ui_queries import T0, states, store  # noqa: F401 - the same plant on both databases


def test_manual_rejects_lower_quality_by_exactly_them_and_are_audited(store):  # noqa: F811
    before = oee_report(store, "machine", "M1", T0, T0 + 3600)
    assert (before["good_count"], before["total_count"]) == (1740, 1800)
    fq.add_manual_rejects(store, "M1", 30, "scratched labels", now=T0 + 1800.5)
    after = oee_report(store, "machine", "M1", T0, T0 + 3600)
    assert (after["good_count"], after["total_count"]) == (1710, 1800)
    assert after["quality"] == pytest.approx(1710 / 1800)
    assert after["quality"] < before["quality"]
    assert after["losses"]["quality.process_defects"] > before["losses"]["quality.process_defects"]
    with Session(store.engine) as session:
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "quality.manual_reject"))
    assert entry is not None and "M1" in entry.target


@pytest.mark.parametrize("count", [0, -3, "x", 2.5, True, None, 10**9])
def test_manual_rejects_refuse_a_count_that_is_no_count(store, count):  # noqa: F811
    with pytest.raises(dq.DowntimeError) as err:
        fq.add_manual_rejects(store, "M1", count, now=T0 + 10)
    assert err.value.field == "count"


def test_manual_rejects_of_an_unknown_machine_name_the_machine(store):  # noqa: F811
    with pytest.raises(dq.DowntimeError) as err:
        fq.add_manual_rejects(store, "NOPE", 3, now=T0 + 10)
    assert err.value.field == "machine"


def test_reasons_come_most_used_first(store):  # noqa: F811
    names = [r["code"] for r in fq.reasons_by_use(store, now=T0 + 3600)]
    assert "SPEED" not in names  # a speed reason cannot be a stop's
    dq.assign_downtime_reason(store, "M1", T0 + 900, "ADJ")
    ranked = fq.reasons_by_use(store, now=T0 + 3600)
    assert ranked[0]["code"] == "ADJ" and ranked[0]["uses"] == 1
    assert [r["uses"] for r in ranked[1:]] == [0] * (len(ranked) - 1)


def test_the_current_stop_is_the_open_one_else_a_recent_one_without_a_reason(store):  # noqa: F811
    stop = fq.current_stop(store, "M2", now=T0 + 3700)
    assert stop is not None and stop["open"] and stop["start"] == pytest.approx(T0 + 3600)
    assert fq.current_stop(store, "M1", now=T0 + 3700) is None  # M1 runs; its last stop ended long ago
    recent = fq.current_stop(store, "M1", now=T0 + 2100)  # its 30 s idle at 2000 ended 70 s before
    assert recent is not None and recent["start"] == pytest.approx(T0 + 2000)


def test_the_downtime_pareto_groups_the_stops_and_keeps_them(store):  # noqa: F811
    found = loss_pareto.pareto(store, T0, T0 + 3600, what="downtime", by="machine")
    m1 = next(g for g in found["groups"] if g["key"] == "M1")
    assert m1["seconds"] == pytest.approx(300 + 600 + 30)
    assert m1["count"] == 3 and all(k.startswith("M1@") for k in m1["events"])
    by_reason = loss_pareto.pareto(store, T0, T0 + 3600, what="downtime", by="reason")
    assert sum(g["seconds"] for g in by_reason["groups"]) == pytest.approx(sum(g["seconds"] for g in found["groups"]))
    assert by_reason["groups"][0]["cumulative"] < by_reason["groups"][-1]["cumulative"] == pytest.approx(1.0)


def test_the_six_losses_pareto_equals_the_engines_losses(store):  # noqa: F811
    report = oee_report(store, "site", "Test site", T0, T0 + 3600)
    found = loss_pareto.pareto(store, T0, T0 + 3600, what="losses", by="category", site_key="Test site")
    got = {g["key"]: g["seconds"] for g in found["groups"]}
    want = {cat: sum(report["losses"].get(k) or 0 for k in keys) for cat, keys in loss_pareto.LOSS_KEYS.items()}
    assert got == pytest.approx({k: v for k, v in want.items() if v > 0.5})
    assert "equipment_failure" in got and "process_defects" in got
    failure = next(g for g in found["groups"] if g["key"] == "equipment_failure")
    assert failure["events"] == [next(iter(k for k in failure["events"]))]  # the 300 s fault behind it


def test_the_pareto_names_a_bad_grouping(store):  # noqa: F811
    with pytest.raises(ValueError, match="by"):
        loss_pareto.pareto(store, T0, T0 + 3600, by="colour")


def test_the_last_stops_keep_one_an_operator_called_planned(store):  # noqa: F811
    dq.assign_downtime_reason(store, "M1", T0 + 600, "PM")
    starts = [e["start"] for e in fq.last_stops(store, "M1", now=T0 + 3600)]
    assert starts == pytest.approx([T0 + 900, T0 + 600])  # the 30 s idle is a minor stop: left out
