"""The demo: start the simulated plant on loopback and configure its machines, so collectors poll it at once."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from db.configuration import ensure_reason_codes, sync_demo_plant

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]

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


class PlantProcess:
    """The simulated plant in a process of its own (`python -m plant`), as real PLCs are other machines: its 50
    protocol servers do not take the interpreter lock from the collectors and the pages. It ends with the app:
    stop(), or its standard input closing when the app dies however it dies (--stop-on-stdin-eof)."""

    START_TIMEOUT_S = 60.0

    def __init__(self, layout_path: str, settings, folder: Path):
        self.endpoints_path = folder / f"plant-endpoints-{os.getpid()}.json"
        self.args = [sys.executable, "-m", "plant", "--layout", layout_path, "--seed", str(settings.plant_seed),
                     "--time-scale", repr(settings.plant_time_scale), "--base-port", str(settings.plant_base_port),
                     "--next-free-port", "--endpoints-json", str(self.endpoints_path), "--stop-on-stdin-eof",
                     "--log-level", "WARNING"]
        self.process: subprocess.Popen | None = None

    def start(self) -> list[dict]:
        """Start the plant; its endpoints (ports, tag maps) once every server listens. Raises RuntimeError."""
        self.endpoints_path.parent.mkdir(parents=True, exist_ok=True)
        self.endpoints_path.unlink(missing_ok=True)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, cwd=ROOT,
                                        env=env)
        deadline = time.monotonic() + self.START_TIMEOUT_S
        while not self.endpoints_path.exists():
            if self.process.poll() is not None:
                raise RuntimeError(f"the simulated plant exited at start (code {self.process.returncode}); "
                                   "its error is in the log above")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the simulated plant did not start in {self.START_TIMEOUT_S:.0f} s")
            time.sleep(0.05)
        return json.loads(self.endpoints_path.read_text(encoding="utf-8"))["endpoints"]

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None:
            return
        try:
            proc.stdin.close()  # the plant stops itself on end of input
            proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait(5)
        self.endpoints_path.unlink(missing_ok=True)


def start_demo(runtime) -> None:
    from plant.layout import default_layout_path, load_layout

    s = runtime.settings
    layout_path = s.plant_file or str(default_layout_path())
    layout = load_layout(layout_path)
    plant = PlantProcess(layout_path, s, Path(s.data_dir))
    runtime.plant = plant
    endpoints = plant.start()
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
    )
    ensure_reason_codes(runtime.store.engine, demo_reasons(layout))
    log.info("simulated plant: %d machines on 127.0.0.1 in process %d (seed %d, time scale %g)",
             len(layout.machines), plant.process.pid, s.plant_seed, s.plant_time_scale)
