"""The Pareto's axis and hover texts in units that fit the bars: 3 s of stops read "3 s", not "0.05 min"."""
from __future__ import annotations

import pytest

from components.loss_pareto import figure


def group(key: str, seconds: float, count: int = 1) -> dict:
    return {"key": key, "label": key, "seconds": seconds, "count": count, "cumulative": 1.0}


@pytest.mark.parametrize("top, unit, bar", [(3, "s", 3), (179, "s", 179), (600, "min", 10), (4 * 3600, "h", 4)])
def test_the_axis_takes_the_unit_of_the_largest_bar(top, unit, bar):
    fig = figure([group("a", top)])
    assert fig["layout"]["yaxis"]["title"]["text"] == unit
    assert fig["data"][0]["y"][0] == pytest.approx(bar)


def test_hover_texts_say_the_duration_and_how_many_stops():
    fig = figure([group("a", 3, 1), group("b", 2, 2), group("speed", 1, 0)])
    assert [c[1:] for c in fig["data"][0]["customdata"]] == [["3 s", "1 stop"], ["2 s", "2 stops"],
                                                            ["1 s", "no stops (speed or parts)"]]


def test_no_losses_draw_a_message_not_an_empty_axis():
    fig = figure([])
    assert not any(t.get("type") == "bar" for t in fig["data"])
