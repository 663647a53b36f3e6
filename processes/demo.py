"""The demo: start the simulated plant on loopback and configure its machines, so collectors poll it at once. The
configuration is imported as a user's configuration file would be (config/demo_plant.py): calendars, state codes
(the wizard's "demo" preset), products with their ideal cycle times, reason codes."""
from __future__ import annotations

import logging

from config.demo_plant import ensure_reason_codes, sync_demo_plant

log = logging.getLogger(__name__)

# Reasons an operator can give a stop in the demo, beside the PLC fault codes (which map to reasons of their own).
OPERATOR_REASONS = (
    {"code": "PM", "name": "Planned maintenance", "loss_category": "planned_maintenance", "planned": True},
    {"code": "CLEAN", "name": "Cleaning and sanitation", "loss_category": "planned_maintenance", "planned": True},
    {"code": "BREAK", "name": "Team break or meeting", "loss_category": "break", "planned": True},
    {"code": "NO-ORDER", "name": "No order scheduled", "loss_category": "no_production_scheduled", "planned": True},
    {"code": "CHANGEOVER", "name": "Product changeover", "loss_category": "setup_adjustment"},
    {"code": "ADJUST", "name": "Adjustment or trial run", "loss_category": "setup_adjustment"},
    {"code": "MATERIAL", "name": "Waiting for material", "loss_category": "idling_minor_stops"},
    {"code": "OPERATOR", "name": "No operator available", "loss_category": "idling_minor_stops"},
    {"code": "DOWNSTREAM", "name": "Blocked by downstream", "loss_category": "idling_minor_stops"},
    {"code": "BREAKDOWN", "name": "Breakdown (other)", "loss_category": "equipment_failure"},
)


def demo_reasons(layout) -> list[dict]:
    """The plant's fault catalogue as reasons (code = the PLC fault code), then the operators' reasons."""
    faults = {f.code: f.name for m in layout.machines for f in m.faults}
    return [{"code": str(code), "name": name, "loss_category": "equipment_failure", "planned": False}
            for code, name in sorted(faults.items())] + list(OPERATOR_REASONS)


def demo_endpoints(plant_endpoints: list[dict], layout) -> list[dict]:
    """The plant's endpoints with what the database wants beside them (counter rollover from the layout)."""
    endpoints = []
    for ep in plant_endpoints:
        spec = layout.machine(ep["machine_id"])
        tags = []
        for tag in ep["tags"]:
            tag = dict(tag)
            if (tag.get("role") or "").startswith("counter."):
                tag["options"] = {"rollover": spec.counter_modulus}
            tags.append(tag)
        endpoints.append({**ep, "tags": tags})
    return endpoints


def demo_calendars(layout) -> tuple[dict[str, dict], dict[str, str]]:
    """Shift calendars from the plant file: one per set of shifts worked, with the breaks of each shift."""
    from datetime import time

    def at(minute: int) -> time:
        return time((minute // 60) % 24, minute % 60)

    shifts = sorted(layout.shifts, key=lambda s: s.start_minute)
    spans = {s.name: (s.start_minute, shifts[(i + 1) % len(shifts)].start_minute) for i, s in enumerate(shifts)}

    def breaks_of(name: str) -> list[dict]:
        a, b = spans[name]
        inside = (lambda m: a <= m < b) if a < b else (lambda m: m >= a or m < b)
        return [{"name": br.name, "start": at(br.start_minute), "duration_s": br.duration_s}
                for br in layout.breaks if inside(br.start_minute)]

    calendars, assignment = {}, {}
    for spec in layout.machines:
        worked = [s.name for s in shifts if s.name in spec.shifts]
        name = "Shifts " + "+".join(worked)
        if name not in calendars:
            calendars[name] = {"timezone": layout.timezone, "shifts": [
                {"name": n, "start": at(spans[n][0]), "end": at(spans[n][1]), "breaks": breaks_of(n)} for n in worked]}
        assignment[spec.id] = name
    return calendars, assignment


def start_demo(runtime) -> None:
    from processes.plant_process import for_settings

    s = runtime.settings
    plant = for_settings(s)
    runtime.plant = plant
    if not plant.processes:
        plant.launch()
    endpoints = plant.endpoints()
    layout = plant.layout
    products = {p.code: p for m in layout.machines for p in m.products}
    calendars, assignment = demo_calendars(layout)
    # Ideal cycle times are in plant seconds; at a time scale of 60 a part takes a 60th of the wall time.
    sync_demo_plant(
        runtime.store.engine,
        {"name": layout.site_name, "timezone": layout.timezone},
        demo_endpoints(endpoints, layout),
        [{"code": p.code, "name": p.name, "ideal_cycle_time": p.ideal_cycle_time / s.plant_time_scale}
         for p in products.values()],
        calendars if s.plant_time_scale == 1 else None,  # a time-scaled plant runs its own faster calendar
        assignment,
        backend=runtime.store.backend_name,
    )
    ensure_reason_codes(runtime.store.engine, demo_reasons(layout), backend=runtime.store.backend_name)
    log.info("simulated plant: %d machines on 127.0.0.1 in processes %s (seed %d, time scale %g)",
             len(layout.machines), ", ".join(map(str, plant.pids)), s.plant_seed, s.plant_time_scale)
