"""The demo's simulated plant in processes of its own (`python -m plant`), as real PLCs are other machines.

In the app's process its protocol servers took the interpreter lock from the collectors and the pages. Apart, the
plant's machines are split over up to one process per core (each machine's history depends only on the seed and
its id, so a split plant behaves as a whole one), which also starts it in a fraction of the time: an OPC-UA
server takes about 3 s of CPU to build its address space, and those now build side by side.

Only the standard library is imported here: app.py starts the plant before its own heavy imports, so that both
take their seconds at the same time (launch_early).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_PROCESSES = 4
START_TIMEOUT_S = 90.0
_early: PlantProcesses | None = None


def split(machines: list, processes: int) -> list[list]:
    """Machines dealt round-robin over the processes, OPC-UA machines first (their servers are slow to start)."""
    ordered = sorted(machines, key=lambda m: m.protocol != "OPCUA")
    groups: list[list] = [[] for _ in range(max(1, min(processes, len(machines))))]
    for i, m in enumerate(ordered):
        groups[i % len(groups)].append(m)
    return [g for g in groups if g]


class PlantProcesses:
    """The plant as child processes. They end with the app: stop(), or their standard input closing when the app
    dies however it dies (--stop-on-stdin-eof)."""

    def __init__(self, layout_path: str, seed: int, time_scale: float, base_port: int, folder: Path,
                 processes: int | None = None, log_format: str = "text"):
        from plant.layout import load_layout

        self.key = (str(layout_path), seed, time_scale, base_port)
        self.layout = load_layout(layout_path)
        self.folder = Path(folder)
        count = processes or min(os.cpu_count() or 1, MAX_PROCESSES)
        self.groups = [[m.id for m in g] for g in split(list(self.layout.machines), count)]
        self.args = [sys.executable, "-m", "plant", "--layout", str(layout_path), "--seed", str(seed),
                     "--time-scale", repr(time_scale), "--base-port", str(base_port), "--next-free-port",
                     "--stop-on-stdin-eof", "--log-level", "WARNING", "--log-format", log_format]
        self.processes: list[tuple[subprocess.Popen, Path]] = []

    @property
    def pids(self) -> list[int]:
        return [p.pid for p, _ in self.processes]

    def launch(self) -> PlantProcesses:
        """Start the processes and return at once; endpoints() waits for them."""
        self.folder.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        for n, group in enumerate(self.groups):
            path = self.folder / f"plant-endpoints-{os.getpid()}-{n}.json"
            path.unlink(missing_ok=True)
            proc = subprocess.Popen(self.args + ["--only", ",".join(group), "--endpoints-json", str(path)],
                                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, cwd=ROOT, env=env)
            self.processes.append((proc, path))
        return self

    def endpoints(self) -> list[dict]:
        """Every machine's endpoint (port, tag map), in layout order, once every server listens. Raises
        RuntimeError when a process exits or does not get there in START_TIMEOUT_S."""
        deadline = time.monotonic() + START_TIMEOUT_S
        found: list[dict] = []
        for proc, path in self.processes:
            while not path.exists():
                if proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"the simulated plant exited at start (code {proc.returncode}); its error "
                                       "is in the log above")
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the simulated plant did not start in {START_TIMEOUT_S:.0f} s")
                time.sleep(0.05)
            found += json.loads(path.read_text(encoding="utf-8"))["endpoints"]
        order = {m.id: i for i, m in enumerate(self.layout.machines)}
        return sorted(found, key=lambda e: order[e["machine_id"]])

    def stop(self) -> None:
        processes, self.processes = self.processes, []
        for proc, _ in processes:
            if proc.stdin:
                try:
                    proc.stdin.close()  # each plant stops itself on end of input
                except OSError:
                    pass
        for proc, path in processes:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            path.unlink(missing_ok=True)


def for_settings(settings) -> PlantProcesses:
    """The plant the settings ask for: the one launch_early started for them, else a new one (not launched)."""
    global _early
    from plant.layout import default_layout_path

    layout_path = settings.plant_file or str(default_layout_path())
    key = (str(layout_path), settings.plant_seed, settings.plant_time_scale, settings.plant_base_port)
    early, _early = _early, None
    if early is not None and early.key == key:
        return early
    if early is not None:
        early.stop()
    return PlantProcesses(layout_path, settings.plant_seed, settings.plant_time_scale, settings.plant_base_port,
                          Path(settings.data_dir), log_format=settings.log_format)


def launch_early(argv: list[str]) -> None:
    """From app.py, before its heavy imports: start the demo plant if these arguments will run it. Anything
    unusual (bad arguments, a subcommand, no demo, the web role) is left to main(), which says what is wrong."""
    global _early
    if argv[:1] and not argv[0].startswith("-"):
        return
    import contextlib
    import io

    try:
        from processes.settings import from_args

        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            settings = from_args(argv)  # --help, or an error: main() parses them again and prints it once
    except BaseException:  # noqa: BLE001
        return
    if not settings.demo or settings.role == "web":
        return
    try:
        _early = for_settings(settings).launch()
    except Exception:  # noqa: BLE001 - start_demo tries again and reports
        _early = None
