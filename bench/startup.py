"""How long `python app.py` takes, from start to every demo machine having samples, states and counts.

    python -m bench.startup [--repeat 5]

Each run starts the app with the demo on a fresh SQLite folder and watches its database. Printed per run and as
medians: the app answering /healthz (the baseline, measured in the same run: what the web process alone costs)
and all 16 demo machines filled (the figure; the target is 10 s on a quiet 2-core machine). The machine and the
load are printed beside them: on a busy machine both grow.
"""
from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.machine import loadavg, machine_description
from bench.verdict import verdict
from tests.test_app import RunningApp
from tests.test_demo import MACHINE_FILL

TARGET_S = 10.0


def one_run(folder: Path, limit_s: float = 120.0) -> dict:
    started = time.monotonic()
    app = RunningApp(folder)
    db = folder / "data" / "oee.sqlite3"
    healthz = filled = None
    try:
        while time.monotonic() - started < limit_s and filled is None:
            if healthz is None:
                try:
                    urllib.request.urlopen(f"{app.base}/healthz", timeout=1).close()
                    healthz = time.monotonic() - started
                except OSError as exc:
                    if getattr(exc, "code", None):  # an HTTP answer (503 while starting) is an answer
                        healthz = time.monotonic() - started
            try:
                with sqlite3.connect(db, timeout=1) as conn:
                    rows = conn.execute(MACHINE_FILL).fetchall()
            except sqlite3.Error:
                rows = []
            if len(rows) == 16 and all(r[2] and r[3] and r[4] for r in rows):
                filled = time.monotonic() - started
            time.sleep(0.1)
    finally:
        app.stop()
    return {"healthz_s": healthz, "filled_s": filled}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs (medians are printed)")
    args = parser.parse_args(argv)
    print(f"machine: {machine_description()}")
    runs = []
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="oee-bench-startup-") as tmp:
            load = loadavg()
            r = one_run(Path(tmp))
            runs.append(r)
            shown = {k: "-" if v is None else f"{v:.2f} s" for k, v in r.items()}
            print(f"run {i + 1}: /healthz answers after {shown['healthz_s']}, 16 machines filled after "
                  f"{shown['filled_s']} (load before: {load})")
    done = [r for r in runs if r["filled_s"] is not None]
    if not done:
        print("no run filled every machine within 120 s; " + verdict(None, TARGET_S, "s", bound="at most"))
        return
    med_h = statistics.median(r["healthz_s"] for r in done if r["healthz_s"] is not None)
    med_f = statistics.median(r["filled_s"] for r in done)
    print(f"median of {len(done)}: /healthz {med_h:.2f} s (baseline), every demo machine filled {med_f:.2f} s\n"
          + verdict(med_f, TARGET_S, "s", bound="at most", what="every demo machine filled, median"))


if __name__ == "__main__":
    main()
