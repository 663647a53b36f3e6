"""plant/README.md documents the address maps the code serves."""

from __future__ import annotations

from pathlib import Path

from plant.tags import markdown_maps

README = Path(__file__).parents[2] / "plant" / "README.md"


def test_readme_maps_match_the_code():
    text = README.read_text()
    begin, end = "<!-- maps:begin -->\n", "<!-- maps:end -->"
    documented = text[text.index(begin) + len(begin): text.index(end)]
    assert documented == markdown_maps(), "plant/README.md is stale: paste the output of python -m plant --print-maps"


def test_readme_documents_state_codes_and_the_time_mapping():
    text = README.read_text()
    assert "wall = wall_start + t / time_scale" in text
    for code, name in ((1, "running"), (2, "idle / starved"), (3, "blocked"), (4, "faulted"), (5, "planned stop"),
                       (6, "changeover")):
        assert f"| {code} | {name} |" in text
