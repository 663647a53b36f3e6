"""Plant files for tests that need the demo plant to be making parts whatever the time of day.

The demo plant stops every machine for its daily breaks (10:00, 18:00 and 02:00 plant time, 30 minutes each): a
page test that waits for a running machine or an unplanned stop would fail when CI happens to run then. These
tests run the same plant without the breaks (--plant-file); the breaks themselves are covered by the plant's and
the OEE engine's own tests.
"""
from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def demo_plant_without_breaks(folder: Path) -> Path:
    doc = yaml.safe_load((ROOT / "plant" / "default_plant.yaml").read_text())
    doc["breaks"] = []
    path = Path(folder) / "plant-without-breaks.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path
