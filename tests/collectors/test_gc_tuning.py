"""The collector process's garbage-collector tuning (Runtime.tune_garbage_collector), in a process of its own: it
changes the interpreter's gc state, which the tests' process must not inherit."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import gc, json, logging, sys, time, weakref
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
full_after_start = runtime.gc_pauses()[2][0]


class Node:
    pass


def refreeze(changes):
    done = len(runtime.refreezes)
    runtime.collectors.on_change(changes)
    while len(runtime.refreezes) == done and time.monotonic() < deadline:
        time.sleep(0.05)
    return runtime.refreezes[-1][2]


keep = [[i] for i in range(20_000)]  # new long-lived containers, as the pollers of a reload that changed things
cycle = Node()
cycle.me = cycle  # cyclic garbage of the old generation (as a removed poller's objects): only a full collection frees it
gc.collect(1)
gone = weakref.ref(cycle)
del cycle
full_before = runtime.gc_pauses()[2][0]
added_full = refreeze({"added": [7], "removed": [], "restarted": []})
full_after_added = runtime.gc_pauses()[2][0]
watched = {id(o) for o in gc.get_objects()}  # generations 0-2: what the collections still walk
frozen_garbage_alive = gone() is not None
refrozen = gc.get_freeze_count()
removed_full = refreeze({"added": [], "removed": [7], "restarted": []})
full_after_removed = runtime.gc_pauses()[2][0]
young = [[i] for i in range(120_000)]  # more than one gen0 threshold: at least two young collections
out = {"threshold": gc.get_threshold(), "first": first, "refrozen": refrozen,
       "kept_watched": sum(id(o) in watched for o in keep), "pauses": runtime.gc_pauses(),
       "full_after_start": full_after_start, "added_full": added_full,
       "full_by_added": full_after_added - full_before, "frozen_garbage_alive": frozen_garbage_alive,
       "removed_full": removed_full, "full_by_removed": full_after_removed - full_after_added,
       "garbage_freed": gone() is None}
runtime.stop()
print(json.dumps(out))
"""


def test_collector_gc_is_tuned_frozen_again_after_a_change_and_its_pauses_logged(tmp_path):
    """The freeze after the start and after a change that only added connections makes no full collection (one
    walks every object with the GIL held: 0.40-0.76 s at 25,000 tags a process, the pollers' cycles overran and
    were skipped); after a change that removed a connection one full collection frees what it held."""
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
    assert out["full_after_start"] == 0  # the freeze after the start: young generations only
    assert out["added_full"] is False and out["full_by_added"] == 0
    assert out["frozen_garbage_alive"]  # (the price: old cyclic garbage stays frozen until a removal)
    assert out["removed_full"] is True and out["full_by_removed"] == 1
    assert out["garbage_freed"]  # a removed poller's objects are freed, not kept frozen for ever
    assert pauses[1][0] >= 2  # the young-generation collections of the freezes
    assert "garbage collector while running: generation 0" in done.stderr
