"""Cell rules of the CSV exports (exports/csv_format.py), without a database."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from exports.csv_format import CsvFormat, neutralise


@pytest.mark.parametrize("text, expected", [
    ("=1+1", "'=1+1"),
    ("+SUM(A1)", "'+SUM(A1)"),
    ("-1+1", "'-1+1"),
    ("-cmd|' /C calc'!A0", "'-cmd|' /C calc'!A0"),
    ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
    ("\t=1", "'\t=1"),
    ("\rx", "'\rx"),
    ("=HYPERLINK(\"http://evil\")", "'=HYPERLINK(\"http://evil\")"),
    # a text cell that is a plain number is a number to a spreadsheet, not a formula: left alone
    ("-12", "-12"),
    ("+3.5", "+3.5"),
    ("-3.5e-2", "-3.5e-2"),
    ("-.5", "-.5"),
    # nothing to do
    ("", ""),
    ("Filler 2", "Filler 2"),
    ("a=b", "a=b"),
    (" =1", " =1"),
    ("'=1", "'=1"),
    ("1+1", "1+1"),
])
def test_text_cells_that_a_spreadsheet_would_run_get_a_quote(text, expected):
    assert neutralise(text) == expected
    assert CsvFormat().cell(text) == expected


@pytest.mark.parametrize("value, expected", [
    (-3.5, "-3.5"),  # numbers are never neutralised
    (-12, "-12"),
    (0.1 + 0.2, "0.30000000000000004"),  # shortest repr that reads back to the same double
    (3.0, "3"),
    (1e-7, "1e-07"),
    (-2.5e20, "-2.5e+20"),
    (float("nan"), ""),
    (float("-inf"), ""),
    (None, ""),
    (True, "true"),
    (False, "false"),
])
def test_numbers_stay_numbers(value, expected):
    assert CsvFormat().cell(value) == expected


def test_decimal_comma_changes_only_numbers():
    fmt = CsvFormat(";", ",")
    assert fmt.cell(-1234.5) == "-1234,5"
    assert fmt.cell(1e-7) == "1e-07"
    assert fmt.cell(7) == "7"
    assert fmt.cell("3.5 bar") == "3.5 bar"


def test_delimiter_and_decimal_cannot_be_the_same():
    with pytest.raises(ValueError):
        CsvFormat(",", ",")


@pytest.mark.parametrize("tz, expected", [
    (timezone.utc, "2026-11-27T12:00:00+00:00"),
    (ZoneInfo("America/Chicago"), "2026-11-27T06:00:00-06:00"),
    (ZoneInfo("Asia/Kolkata"), "2026-11-27T17:30:00+05:30"),
])
def test_times_carry_their_offset(tz, expected):
    t = datetime(2026, 11, 27, 12, tzinfo=timezone.utc)
    fmt = CsvFormat(tz=tz)
    assert fmt.time(t) == expected
    assert fmt.time(t.timestamp()) == expected
    assert fmt.time(t.timestamp() + 0.25) == expected.replace(":00+", ":00.250000+").replace(":00-", ":00.250000-")


def test_stream_quotes_what_needs_it_and_reads_back():
    fmt = CsvFormat()
    rows = [[fmt.cell(v) for v in ("a,b", 'say "hi"', "two\nlines", -1.5, "=1")]] * 5000
    data = b"".join(fmt.stream(["c1", "c2", "c3", "c4", "c5"], rows)).decode("utf-8")
    back = list(csv.reader(io.StringIO(data)))
    assert back[0] == ["c1", "c2", "c3", "c4", "c5"]
    assert len(back) == 5001
    assert back[1] == ["a,b", 'say "hi"', "two\nlines", "-1.5", "'=1"]
    assert "\r\n" in data
