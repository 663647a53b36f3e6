"""The demo's process machines (LINE-008 syrup blender, LINE-009 tunnel pasteuriser, LINE-010 juice mixer) count
what they make as it flows, in litres, against an ideal rate in litres: while one runs, its performance means
something at once. They counted whole batches of 4-7 minutes, so a range in which a batch was running but not yet
finished read 0 % (the overview's tiles at a shift's start, and 'Lowest OEE now' full of them)."""
from __future__ import annotations

from plant import default_layout
from plant.model import PlantModel

PROCESS = ("LINE-008", "LINE-009", "LINE-010")


def test_process_products_are_litres_at_an_ideal_rate():
    layout = default_layout()
    for mid in PROCESS:
        for p in layout.machine(mid).products:
            assert "litre" in p.name.lower() or "(L)" in p.name, p.name
            assert 0.05 <= p.ideal_cycle_time <= 2.0, (p.code, p.ideal_cycle_time)  # seconds per litre


def test_every_five_minutes_of_running_count_litres_at_about_the_ideal_rate():
    model = PlantModel(default_layout(), seed=1)
    model.advance_to(36 * 3600)
    for mid in PROCESS:
        truth = model.ground_truth(mid)
        checked = 0
        for s in truth.states:
            if s.state_name != "running" or s.end_sim is None or s.end_sim - s.start_sim < 300:
                continue
            window = truth.oee(s.start_sim, s.start_sim + 300)  # the first five minutes of each run
            assert window["total"] > 0, (mid, s.start_sim)
            assert 0.8 <= window["performance"] <= 1.0, (mid, s.start_sim, window["performance"])
            checked += 1
        assert checked >= 5, mid
