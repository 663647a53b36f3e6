"""OEE from polled tags agrees with the simulator's ground truth, for a machine of each protocol.

A simulated hour passes in a minute (time scale 60). The collectors poll every 50 ms (3 simulated seconds), write
count increments in quarter-second rows, and the OEE engine runs over the same wall-clock window the simulator
reports on. Ideal cycle times are the products' divided by the time scale, so the ratios are those of plant time.
The micro-stop threshold is off: the simulator's truth counts every idle or blocked stop as availability loss and
its micro-stops (inside running) as speed loss, and so must we to compare like with like.
"""
from __future__ import annotations

import dataclasses
import time
from datetime import datetime, timezone

import pytest
from sqlalchemy import text

import oee
from collectors.poller import BackoffPolicy
from config.demo_plant import sync_demo_plant
from db.oee_queries import oee_report
from db.store import open_store
from plant import Plant, default_layout
from processes.demo import demo_endpoints
from processes.runtime import Runtime
from processes.settings import Settings

SCALE = 60.0
MACHINES = ("LINE-001", "LINE-011", "LINE-013", "LINE-015")  # EtherNet/IP, OPC-UA, S7, Modbus
TOLERANCE = 0.01  # one percentage point on each factor


def test_oee_from_polled_tags_matches_the_ground_truth(tmp_path):
    layout = default_layout()
    # Without the daily breaks (tests/support/plants.py): the result must not depend on the hour CI runs at.
    layout = dataclasses.replace(layout, machines=tuple(m for m in layout.machines if m.id in MACHINES), breaks=())
    plant = Plant(layout, seed=11, time_scale=SCALE).start()
    runtime = None
    try:
        endpoints = demo_endpoints(plant.endpoints(), layout)
        products = {p.code: p for m in layout.machines for p in m.products}
        url = f"sqlite:///{tmp_path / 'oee.sqlite3'}"
        store = open_store(url)
        sync_demo_plant(store.engine, {"name": "Site"}, endpoints,
                        [{"code": c, "name": p.name, "ideal_cycle_time": p.ideal_cycle_time / SCALE}
                         for c, p in products.items()])
        with store.engine.begin() as conn:  # faster than a user may poll (100 ms): this plant's hour is seconds
            conn.execute(text("UPDATE connections SET poll_interval_ms = 50"))
        store.close()
        runtime = Runtime(Settings(database_url=url, data_dir=tmp_path, demo=False), collector_options={
            "backoff": BackoffPolicy(0.2, 1.0), "reload_interval_s": 3600, "count_bucket_s": 0.25}).start()
        deadline = time.monotonic() + 15
        while not all(p.cycles > 3 for p in runtime.collectors.pollers.values()):
            assert time.monotonic() < deadline, "collectors did not start"
            time.sleep(0.1)
        start = time.time() + 0.5
        time.sleep(3600 / SCALE + 1.0)
        end = time.time() - 0.5
        assert runtime.writer.flush(20)
        results = {}
        for machine_id in MACHINES:
            ours = oee_report(runtime.store, "machine", machine_id, start, end,
                              config=oee.Config(micro_stop_threshold_s=0, startup_window_s=0))
            truth = plant.ground_truth(machine_id).oee(datetime.fromtimestamp(start, timezone.utc),
                                                       datetime.fromtimestamp(end, timezone.utc))
            results[machine_id] = (ours, truth)
        report = "\n".join(
            f"{m}: ours A {o['availability']:.4f} P {o['performance']:.4f} Q {o['quality']:.4f} "
            f"(n={o['total_count']:.0f}) | truth A {t['availability']:.4f} P {t['performance']:.4f} "
            f"Q {t['quality']:.4f} (n={t['total']})" for m, (o, t) in results.items())
        print("\n" + report)
        for machine_id, (ours, truth) in results.items():
            assert truth["total"] > 20, f"{machine_id}: too little production to compare\n{report}"
            # Performance and quality are counts: a part finishing at a window edge falls on either side of it
            # (the poll and the count bucket decide), and on a slow machine one part is 1/n of the factor.
            edge_part = 1.0 / truth["total"]
            for factor, tolerance in (("availability", TOLERANCE), ("performance", TOLERANCE + edge_part),
                                      ("quality", TOLERANCE + edge_part)):
                assert ours[factor] == pytest.approx(truth[factor], abs=tolerance), f"{machine_id} {factor}\n{report}"
    finally:
        if runtime is not None:
            runtime.stop()
        plant.stop()
