"""The collector process's garbage-collector tuning (Runtime.tune_garbage_collector), in a process of its own: it
changes the interpreter's gc state, which the tests' process must not inherit."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import gc, json, logging, sys, time
from pathlib import Path
from processes.runtime import Runtime
from processes.settings import Settings

logging.basicConfig(level=logging.INFO, stream=sys.stderr)
folder = Path(sys.argv[1])
settings = Settings(database_url=f"sqlite:///{folder / 'oee.sqlite3'}", data_dir=folder, demo=False,
                    role="collector")
runtime = Runtime(settings).start()
runtime.tune_garbage_collector(freeze_after_s=0.2)
deadline = time.monotonic() + 20
while gc.get_freeze_count() == 0 and time.monotonic() < deadline:
    time.sleep(0.05)
first = gc.get_freeze_count()
keep = [[i] for i in range(20_000)]  # new long-lived containers, as the pollers of a reload that changed things
runtime.collectors.on_change()
while gc.get_freeze_count() <= first and time.monotonic() < deadline:
    time.sleep(0.05)
watched = {id(o) for o in gc.get_objects()}  # generations 0-2: what the collections still walk
young = [[i] for i in range(120_000)]  # more than one gen0 threshold: at least two young collections
out = {"threshold": gc.get_threshold(), "first": first, "refrozen": gc.get_freeze_count(),
       "kept_watched": sum(id(o) in watched for o in keep),
       "pauses": runtime.gc_pauses()}
runtime.stop()
print(json.dumps(out))
"""


def test_collector_gc_is_tuned_frozen_again_after_a_change_and_its_pauses_logged(tmp_path):
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["threshold"][0] == 50_000
    assert out["first"] > 0  # frozen once the collectors started
    assert out["refrozen"] > out["first"]
    assert out["kept_watched"] == 0  # the objects made before the change are frozen too
    pauses = {int(g): n_t for g, n_t in out["pauses"].items()}
    assert pauses[0][0] >= 2 and pauses[0][1] > 0  # young collections counted and timed
    assert pauses[2][0] >= 2  # the two collections before each freeze
    assert "garbage collector while running: generation 0" in done.stderr
