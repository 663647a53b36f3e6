"""CSV for spreadsheets: cells, times, locales and formula neutralisation, in chunks for a streamed response.

The rules (README, "CSV exports"):
- UTF-8, a header row, RFC 4180 quoting (a cell holding the delimiter, a quote or a line break is quoted), CRLF.
- Times are ISO 8601 with their offset (2026-11-27T06:00:00-06:00), in the plant's time zone or the one asked for;
  fractions of a second only when there are any.
- Numbers: integers as they are; other numbers in the shortest form that reads back to the same value (Python's
  repr), with the decimal separator asked for. A missing number, NaN or an infinity is an empty cell.
- Booleans: true / false.
- Formula neutralisation: a TEXT cell (a name, a string tag's value, a note, a reason) that starts with = + - @,
  a tab or a carriage return gets a single quote in front, so a spreadsheet shows it as text instead of running
  it. Numbers are never touched: a negative value stays a number (-3.5). A text cell that is itself a plain
  number ("-12", "+3.5e2") is left as it is too: a spreadsheet reads it as that number, and no formula fits in it.
"""
from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timezone, tzinfo

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\Z")
DELIMITERS = {",": ",", ";": ";", "tab": "\t", "\t": "\t", "comma": ",", "semicolon": ";"}
DECIMALS = {".": ".", ",": ",", "point": ".", "comma": ","}
CHUNK_ROWS = 2000


def neutralise(text: str) -> str:
    """A text cell as a spreadsheet must show it: with a leading ' when it would otherwise be read as a formula."""
    if text and text[0] in FORMULA_TRIGGERS and not PLAIN_NUMBER.match(text):
        return "'" + text
    return text


class CsvFormat:
    """How cells are written: delimiter, decimal separator, time zone."""

    def __init__(self, delimiter: str = ",", decimal: str = ".", tz: tzinfo = timezone.utc):
        if delimiter not in ("\t", ",", ";"):
            raise ValueError(f"delimiter {delimiter!r}")
        if decimal not in (".", ","):
            raise ValueError(f"decimal separator {decimal!r}")
        if decimal == delimiter:
            raise ValueError("the decimal separator cannot be the delimiter")
        self.delimiter = delimiter
        self.decimal = decimal
        self.tz = tz

    def time(self, value) -> str:
        """An epoch-seconds float or an aware datetime, in ISO 8601 with the offset of self.tz."""
        if value is None:
            return ""
        if isinstance(value, (int, float)):
            dt = datetime.fromtimestamp(value, self.tz)
        else:
            if value.tzinfo is None:
                value = value.replace(tzinfo=timezone.utc)
            dt = value.astimezone(self.tz)
        return dt.isoformat()

    def number(self, value) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value)
        value = float(value)
        if not math.isfinite(value):
            return ""
        out = repr(value)
        if out.endswith(".0"):
            out = out[:-2]
        return out.replace(".", ",") if self.decimal == "," else out

    def cell(self, value) -> str:
        """Any value by its type: numbers as numbers, text neutralised, datetimes as times."""
        if value is None:
            return ""
        if isinstance(value, (bool, int, float)):
            return self.number(value)
        if isinstance(value, datetime):
            return self.time(value)
        if isinstance(value, date):
            return value.isoformat()
        return neutralise(str(value))

    def stream(self, header: list[str], rows: Iterable[Iterable[str]]) -> Iterator[bytes]:
        """UTF-8 chunks: the header, then the rows (already cells, see cell()), CHUNK_ROWS at a time."""
        buf = io.StringIO()
        writer = csv.writer(buf, delimiter=self.delimiter, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow(header)
        n = 0
        for row in rows:
            writer.writerow(row)
            n += 1
            if n >= CHUNK_ROWS:
                yield buf.getvalue().encode("utf-8")
                buf.seek(0)
                buf.truncate()
                n = 0
        yield buf.getvalue().encode("utf-8")
