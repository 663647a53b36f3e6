"""/export/*.csv on each backend: what pandas reads back equals what the API and the query layer answer."""
from __future__ import annotations

import io
import math

import pandas as pd
import pytest
from sqlalchemy import text

from api.csv_export import LOSS_KEYS, MAX_TAG_ROWS, OEE_NUMBERS, loss_column
from app import create_app
from db.queries import tag_series
from processes.runtime import Runtime
from processes.settings import Settings
from tests.export.conftest import FORMULA_TAG, T0, H, iso, read_csv, seed

RANGE = {"start": iso(T0), "end": iso(T0 + 8 * H)}


def api(client, **params) -> dict:
    resp = client.get("/api/oee/", query_string=params)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def epochs(series: pd.Series) -> list[float]:
    return [ts.timestamp() for ts in pd.to_datetime(series, format="ISO8601", utc=True)]


def same(a, b) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    return a == b


def assert_row_equals_api(row: pd.Series, part: dict) -> None:
    for k in OEE_NUMBERS:
        assert same(row[k], part.get(k)), (k, row[k], part.get(k))
    for k in LOSS_KEYS:
        assert same(row[loss_column(k)], part["losses"][k]), (k, row[loss_column(k)], part["losses"][k])
    flags = row["flags"] if isinstance(row["flags"], str) else ""
    assert flags.split() == part["flags"]
    warnings = row["warnings"] if isinstance(row["warnings"], str) else ""
    assert warnings == " | ".join(w["text"] for w in part["warnings"])


@pytest.mark.parametrize("scope, key", [("machine", "M1"), ("machine", "M2"), ("line", "Line A")])
@pytest.mark.parametrize("bucket", ["hour", "shift", "day", None])
def test_oee_csv_equals_the_api(plant, scope, key, bucket):
    client, _, _ = plant
    params = {scope: key, **RANGE, **({"bucket": bucket} if bucket else {})}
    body = api(client, **params)
    df = read_csv(client.get("/export/oee.csv", query_string=params))
    parts = body["buckets"] if bucket else [body]
    assert len(df) == len(parts)
    assert epochs(df["start"]) == [p["start"] for p in parts]
    assert epochs(df["end"]) == [p["end"] for p in parts]
    for (_, row), part in zip(df.iterrows(), parts, strict=True):
        assert_row_equals_api(row, part)
        assert row["scope"] == scope and str(row["key"]) == key
    if bucket:
        assert list(df["bucket"]) == [p["label"] for p in parts]
        # a week of OEE in a spreadsheet adds up: counts summed over buckets give the range's
        assert df["total_count"].sum() == body["total_count"]


def test_oee_times_are_in_the_plant_zone_by_default_and_in_the_one_asked_for(plant):
    client, _, _ = plant
    params = {"machine": "M1", **RANGE, "bucket": "hour"}
    plant_zone = client.get("/export/oee.csv", query_string=params).get_data(as_text=True).splitlines()
    assert plant_zone[1].startswith("2026-09-21T09:00:00-05:00,2026-09-21T10:00:00-05:00,")  # America/Chicago, CDT
    utc = client.get("/export/oee.csv", query_string={**params, "tz": "UTC"}).get_data(as_text=True).splitlines()
    assert utc[1].startswith("2026-09-21T14:00:00+00:00,2026-09-21T15:00:00+00:00,")
    india = client.get("/export/oee.csv", query_string={**params, "tz": "Asia/Kolkata"}).get_data(as_text=True)
    assert india.splitlines()[1].startswith("2026-09-21T19:30:00+05:30,")
    # the buckets stay the plant's hours: only the writing of the times changes
    assert [line.split(",")[5:] for line in utc[1:]] == [line.split(",")[5:] for line in plant_zone[1:]]


def test_semicolon_and_decimal_comma_read_back_the_same(plant):
    client, _, _ = plant
    params = {"machine": "M1", **RANGE, "bucket": "hour"}
    plain = read_csv(client.get("/export/oee.csv", query_string=params))
    resp = client.get("/export/oee.csv", query_string={**params, "delimiter": ";", "decimal": ","})
    text = resp.get_data(as_text=True)
    assert text.splitlines()[0].startswith("start;end;bucket;scope;key;availability;")
    assert "0,952" in text and "0.952" not in text
    local = read_csv(resp, sep=";", decimal=",")
    pd.testing.assert_frame_equal(plain, local)
    tabbed = read_csv(client.get("/export/oee.csv", query_string={**params, "delimiter": "tab"}), sep="\t")
    pd.testing.assert_frame_equal(plain, tabbed)


def test_bom_for_excel(plant):
    client, _, _ = plant
    resp = client.get("/export/oee.csv", query_string={"machine": "M1", **RANGE, "bom": "1"})
    assert resp.get_data().startswith(b"\xef\xbb\xbfstart,end,")
    assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert resp.headers["Content-Disposition"].startswith('attachment; filename="oee-total_M1_')
    df = pd.read_csv(io.BytesIO(resp.get_data()), encoding="utf-8-sig")
    assert list(df.columns)[0] == "start"


@pytest.mark.parametrize("resolution", ["raw", "1m", "1h"])
def test_tag_history_equals_the_query_layer(plant, resolution):
    client, store, ids = plant
    df = read_csv(client.get("/export/tags.csv", query_string={
        "tag": f"{ids['speed']},{ids['temp']}", **RANGE, "resolution": resolution}))
    expected = []
    for tag in ("speed", "temp"):
        expected += [(ids[tag], row) for row in tag_series(store, ids[tag], T0, T0 + 8 * H, resolution)]
    assert len(df) == len(expected) > 0
    assert list(df["tag_id"]) == [t for t, _ in expected]
    if resolution == "raw":
        assert epochs(df["time"]) == pytest.approx([r["time"] for _, r in expected], abs=1e-6)
        assert list(df["value"]) == [r["value"] for _, r in expected]
        assert list(df["quality"]) == [{0: "good", 2: "bad"}[r["quality"]] for _, r in expected]
        assert set(df.loc[df["quality"] == "bad", "reason"]) == {"'=cmd|' /C calc'!A0"}
        assert (df.loc[df["tag_id"] == ids["temp"], "value"] < 0).all()  # negative values stay numbers
        assert list(df.loc[df["tag_id"] == ids["temp"], "tag"].unique()) == ["'-Temp"]  # a name is text
    else:
        assert epochs(df["time"]) == [r["bucket"] for _, r in expected]
        for col in ("n", "avg", "min", "max"):
            assert list(df[col]) == [r[col] for _, r in expected], col


def test_a_machines_tags(plant):
    client, _, ids = plant
    df = read_csv(client.get("/export/tags.csv", query_string={"machine": "M1", **RANGE, "resolution": "1h"}))
    assert set(df["tag_id"]) == {ids["speed"], ids["temp"], ids["text"]}
    assert set(df["machine"]) == {"M1"}


def test_text_values_and_names_are_neutralised_numbers_are_not(plant):
    client, _, ids = plant
    df = read_csv(client.get("/export/tags.csv", query_string={"tag": ids["text"], **RANGE}), dtype=str)
    assert list(df["value_text"]) == ["'=1+1", "-12", "'@SUM(A1:A2)", "'\tTabbed", "'\rCR", "plain, with comma",
                                      'quote " inside', "+3.5e2", "'-1+1", "Zürich ✓"]
    assert set(df["tag"]) == {"'" + FORMULA_TAG}


def test_downtime_events(plant):
    client, _, _ = plant
    df = read_csv(client.get("/export/downtime.csv", query_string={"line": "Line A", **RANGE, "tz": "UTC"}))
    got = [tuple(None if isinstance(v, float) and math.isnan(v) else v for v in r) for r in df[[
        "machine", "start", "end", "duration_s", "state", "loss_category", "minor", "source", "reason_code",
        "note"]].itertuples(index=False)]
    assert got == [
        ("M1", "2026-09-21T21:00:00+00:00", "2026-09-21T21:15:00+00:00", 900, "faulted", "equipment_failure", False,
         "operator", "JAM", "operator"),
        ("M1", "2026-09-21T21:15:00+00:00", "2026-09-21T21:30:00+00:00", 900, "faulted", "equipment_failure", False,
         "state", None, None),
        ("M1", "2026-09-21T21:30:00+00:00", "2026-09-21T21:31:00+00:00", 60, "idle", "idling_minor_stops", True,
         "state", None, None),
        ("M2", "2026-09-21T18:00:00+00:00", "2026-09-21T22:00:00+00:00", 14400, "idle", "idling_minor_stops", False,
         "state", None, None),
    ]
    assert list(df["reason_name"].dropna()) == ["'+Jam at the infeed"]
    assert set(df["line"]) == {"Line A"} and list(df["machine_name"][:1]) == ["Filler"]
    # an event that began before the range keeps its real start
    late = read_csv(client.get("/export/downtime.csv", query_string={
        "machine": "M2", "start": iso(T0 + 6 * H), "end": iso(T0 + 8 * H), "tz": "UTC"}))
    assert list(late["start"]) == ["2026-09-21T18:00:00+00:00"] and list(late["in_range_s"]) == [7200]


def test_downtime_rows_are_the_downtime_pages(plant):
    client, store, _ = plant
    from db.downtime_queries import downtime_events

    page = downtime_events(store, T0, T0 + 8 * H, reconcile=False)
    df = read_csv(client.get("/export/downtime.csv", query_string=RANGE))  # no scope: the whole plant
    assert len(df) == len(page) == 4
    assert sorted(epochs(df["start"])) == sorted(e["start"] for e in page)
    assert sorted(df["duration_s"]) == sorted(e["duration_s"] for e in page)


@pytest.mark.parametrize("filters, machines_states", [
    ({"minor": "0"}, [("M1", "faulted"), ("M1", "faulted"), ("M2", "idle")]),
    ({"category": "equipment_failure"}, [("M1", "faulted"), ("M1", "faulted")]),
    ({"category": "unassigned"}, [("M1", "faulted"), ("M1", "idle"), ("M2", "idle")]),
    ({"reason": "JAM"}, [("M1", "faulted")]),
    ({"min_duration_s": "3600"}, [("M2", "idle")]),
])
def test_downtime_filters_as_on_the_page(plant, filters, machines_states):
    client, _, _ = plant
    df = read_csv(client.get("/export/downtime.csv", query_string={**RANGE, **filters}))
    assert list(zip(df["machine"], df["state"], strict=True)) == machines_states


def test_shift_report_equals_the_api_by_shift(plant):
    client, _, _ = plant
    df = read_csv(client.get("/export/shift-report.csv", query_string={"line": "Line A", **RANGE}))
    per_machine = {m: api(client, machine=m, **RANGE, bucket="shift")["buckets"] for m in ("M1", "M2")}
    whole = api(client, line="Line A", **RANGE, bucket="shift")["buckets"]
    expected = [(m, b) for m in ("M1", "M2") for b in per_machine[m]] + [(None, b) for b in whole]
    assert len(df) == len(expected) == 6
    for (_, row), (machine, part) in zip(df.iterrows(), expected, strict=True):
        assert_row_equals_api(row, part)
        assert row["shift"] == part["label"]
        assert (row["machine"] if isinstance(row["machine"], str) else None) == machine
    assert list(df["shift"][:2]) == ["2026-09-21 Day", "2026-09-21 Swing"]


@pytest.mark.parametrize("path, params, status, fields", [
    ("/export/oee.csv", {"machine": "M1", "colour": "red", "size": "2"}, 400, {"colour", "size"}),
    ("/export/oee.csv", {"machine": "M1", "shift": "A"}, 400, {"shift"}),
    ("/export/oee.csv", {"machine": "NOPE"}, 404, None),
    ("/export/oee.csv", {"machine": "M1", "start": "yesterday"}, 400, {"start"}),
    ("/export/oee.csv", {"machine": "M1", "start": iso(T0 - 400 * 24 * H), "end": iso(T0), "bucket": "hour"},
     400, {"bucket"}),
    ("/export/oee.csv", {"machine": "M1", "delimiter": "|"}, 400, {"delimiter"}),
    ("/export/oee.csv", {"machine": "M1", "decimal": ","}, 400, {"decimal"}),
    ("/export/oee.csv", {"machine": "M1", "tz": "Mars/Olympus"}, 400, {"tz"}),
    ("/export/oee.csv", {"machine": "M1", "bom": "maybe"}, 400, {"bom"}),
    ("/export/tags.csv", {"tag": "1", "machine": "M1"}, 400, {"tag", "machine"}),
    ("/export/tags.csv", {}, 400, {"tag", "machine"}),
    ("/export/tags.csv", {"tag": "speed"}, 400, {"tag"}),
    ("/export/tags.csv", {"tag": "999"}, 404, {"tag"}),
    ("/export/tags.csv", {"machine": "NOPE"}, 404, None),
    ("/export/tags.csv", {"machine": "M1", "resolution": "5m"}, 400, {"resolution"}),
    # Wide ranges end in the data (T0 + 8 h): a range more than a day after now is refused for that alone.
    ("/export/tags.csv", {"machine": "M1", "start": iso(T0 + 8 * H - 60 * 24 * H), "end": iso(T0 + 8 * H)}, 400,
     {"resolution"}),
    ("/export/tags.csv", {"machine": "M1", "start": iso(T0 + 8 * H - 4 * 365 * 24 * H), "end": iso(T0 + 8 * H),
                          "resolution": "1m"}, 400, {"resolution"}),
    ("/export/tags.csv", {"machine": "M1", "start": iso(T0 + 8 * H - 40 * 365 * 24 * H), "end": iso(T0 + 8 * H),
                          "resolution": "1h"}, 400, {"start"}),
    ("/export/tags.csv", {"machine": "M1", "line": "Line A"}, 400, {"line"}),
    ("/export/downtime.csv", {"machine": "M1", "start": iso(T0 + 8 * H - 400 * 24 * H), "end": iso(T0 + 8 * H)},
     400, {"start"}),
    ("/export/downtime.csv", {"machine": "M1", "line": "Line A"}, 400, {"machine", "line"}),
    ("/export/downtime.csv", {"machine": "M1", "minor": "maybe"}, 400, {"minor"}),
    ("/export/downtime.csv", {"machine": "M1", "min_duration_s": "long"}, 400, {"min_duration_s"}),
    ("/export/downtime.csv", {"area": "Nowhere"}, 404, None),
    ("/export/shift-report.csv", {"machine": "M1", "bucket": "hour"}, 400, {"bucket"}),
    ("/export/shift-report.csv", {"machine": "M1", "start": iso(T0 - 400 * 24 * H), "end": iso(T0)}, 400,
     {"start"}),
    ("/export/shift-report.csv", {"site": "Plant", "end": iso(T0), "start": iso(T0 + H)}, 400, {"start", "end"}),
    ("/export/nothing.csv", {}, 404, None),
])
def test_bad_input_names_the_parameter(sqlite_plant, path, params, status, fields):
    client, _, _ = sqlite_plant
    resp = client.get(path, query_string=params)
    body = resp.get_json()
    assert resp.status_code == status, body
    assert body["error"] in ("invalid_input", "not_found") and body["message"]
    if fields:
        assert fields <= set(body["fields"]), body


def test_too_large_a_range_suggests_a_coarser_resolution_or_a_shorter_range(sqlite_plant):
    client, _, _ = sqlite_plant
    body = client.get("/export/tags.csv", query_string={
        "machine": "M1", "start": iso(T0 + 8 * H - 60 * 24 * H), "end": iso(T0 + 8 * H)}).get_json()
    assert f"at most {MAX_TAG_ROWS:,}" in body["message"]
    assert "1m or 1h" in body["message"] and "shorter range" in body["message"]
    body = client.get("/export/oee.csv", query_string={
        "machine": "M1", "start": iso(T0 - 400 * 24 * H), "end": iso(T0), "bucket": "hour"}).get_json()
    assert "coarser bucket" in body["fields"]["bucket"] and "shorter range" in body["fields"]["bucket"]


def test_a_machine_without_a_calendar_has_no_shift_report(sqlite_url, tmp_path):
    runtime = Runtime(Settings(database_url=sqlite_url, data_dir=tmp_path, demo=False, role="web")).start()
    try:
        seed(runtime.store)
        with runtime.store.engine.begin() as conn:
            conn.execute(text("UPDATE machines SET calendar_id = NULL"))
        client = create_app(runtime).server.test_client()
        resp = client.get("/export/shift-report.csv", query_string={"machine": "M1", **RANGE})
        assert resp.status_code == 400
        assert "calendar" in resp.get_json()["message"]
    finally:
        runtime.stop()
