"""The demo: start the simulated plant on loopback and configure its machines, so collectors poll it at once."""
from __future__ import annotations

import logging

from db.configuration import sync_demo_plant

log = logging.getLogger(__name__)


def demo_endpoints(plant, layout) -> list[dict]:
    """The plant's endpoints with what the database wants beside them (counter rollover from the layout)."""
    endpoints = []
    for ep in plant.endpoints():
        spec = layout.machine(ep["machine_id"])
        tags = []
        for tag in ep["tags"]:
            tag = dict(tag)
            if (tag.get("role") or "").startswith("counter."):
                tag["options"] = {"rollover": spec.counter_modulus}
            tags.append(tag)
        endpoints.append({**ep, "tags": tags})
    return endpoints


def start_demo(runtime) -> None:
    from plant import Plant, default_layout

    s = runtime.settings
    layout = default_layout()
    plant = Plant(layout, seed=s.plant_seed, time_scale=s.plant_time_scale, host="127.0.0.1",
                  base_port=s.plant_base_port, port_fallback=True)
    plant.start()
    runtime.plant = plant
    products = {p.code: p for m in layout.machines for p in m.products}
    sync_demo_plant(
        runtime.store.engine,
        {"name": layout.site_name, "timezone": layout.timezone},
        demo_endpoints(plant, layout),
        [{"code": p.code, "name": p.name, "ideal_cycle_time": p.ideal_cycle_time} for p in products.values()],
    )
    log.info("simulated plant: %d machines on 127.0.0.1 (seed %d, time scale %g)", len(layout.machines),
             s.plant_seed, s.plant_time_scale)
