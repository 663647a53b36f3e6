"""How durations and counted words read (components/format.py): units that fit the size of the number, and
singular for one."""
from __future__ import annotations

import pytest

from components.format import duration, plural


@pytest.mark.parametrize("seconds, text", [
    (None, "—"), (-4, "0 s"), (0, "0 s"), (3, "3 s"), (3.4, "3 s"), (59.4, "59 s"), (59.6, "1 min"), (60, "1 min"),
    (125, "2 min 5 s"), (300, "5 min"), (3599.4, "59 min 59 s"), (3600, "1 h"), (4800, "1 h 20 min"),
    (3 * 3600 + 300, "3 h 5 min"), (86399, "1 d"), (86400, "1 d"), (2 * 86400 + 4 * 3600, "2 d 4 h"),
])
def test_duration_uses_the_units_that_fit(seconds, text):
    assert duration(seconds) == text


def test_plural_says_one_stop_and_many_stops():
    assert plural(1, "stop") == "1 stop"
    assert plural(0, "stop") == "0 stops"
    assert plural(3, "stop") == "3 stops"
    assert plural(1204, "entry", "entries") == "1,204 entries"
    assert plural(1, "entry", "entries") == "1 entry"
