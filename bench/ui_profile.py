"""Where a page callback's server time goes: replays the callback requests a `bench.ui --keep` run recorded, in this
process, under cProfile.

    python -m bench.ui --machines 100 --quick --keep      # prints the kept folder
    python -m bench.ui_profile FOLDER [--repeat 3] [--only overview] [--top 25]

Opens the kept folder's SQLite database as a web process would (role web: no collectors, no simulated plant) and
POSTs each recorded /_dash-update-component body (one of each page's callbacks) to the app's own Flask test client:
all once as a warm-up, then --repeat runs of every page in turn, one callback after the other. Prints per callback its thread's CPU time (median;
the load of other processes changes it little) and the wall time, the sum per page, and for the slowest callbacks
the functions where cProfile saw the time (cumulative). The data stopped growing when the bench ended; ranges that end "now" read
up to then.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import loadavg, machine_description  # noqa: E402
from bench.ui import callback_name  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder", type=Path, help="a folder kept by python -m bench.ui --keep")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--only", default="", help="only callbacks whose page or name contains this")
    p.add_argument("--top", type=int, default=25, help="functions listed per profiled callback")
    p.add_argument("--profiles", type=int, default=4, help="how many of the slowest callbacks to profile")
    args = p.parse_args(argv)
    calls = json.loads((args.folder / "callbacks.json").read_text())
    seen, unique = set(), []
    for c in calls:  # one of each request: the passes repeat them
        name = callback_name(c["output"])
        key = (c["page"], name)
        if key in seen or not c.get("body") or (args.only and args.only not in c["page"] + name):
            continue
        seen.add(key)
        unique.append((c["page"], name, c["body"]))

    os.environ.update({"OEE_ROLE": "web", "OEE_DEMO": "0", "OEE_LOG_LEVEL": "WARNING",
                       "OEE_DATABASE_URL": f"sqlite:///{args.folder / 'data' / 'oee.sqlite3'}",
                       "OEE_DATA_DIR": tempfile.mkdtemp(prefix="ui-profile-")})
    from app import create_app, start_runtime
    from processes.settings import from_args

    runtime = start_runtime(from_args([]))
    try:
        from tests.support.auth import PASSWORD, make_user

        client = create_app(runtime).server.test_client()
        origin = {"Origin": "http://localhost"}  # as a browser's same-origin fetch (auth/web.py refuses others)
        client.get("/")  # Dash's set-up on the first request
        # The operator terminal's callbacks need an operator; the other pages are a viewer's, which it also is.
        user = make_user(runtime.store.engine, "operator").username
        signed_in = client.post("/login", data={"username": user, "password": PASSWORD}, headers=origin)
        if signed_in.status_code != 302:
            raise SystemExit(f"login as {user} failed: HTTP {signed_in.status_code}")
        timing: dict[tuple[str, str], list[float]] = {}
        cpu: dict[tuple[str, str], list[float]] = {}  # this thread's CPU time: the request runs in it; load-proof
        size: dict[tuple[str, str], int] = {}  # bytes of the answer
        profiles = {(page, name): cProfile.Profile() for page, name, _body in unique}

        def post(body: str):
            return client.post("/_dash-update-component", data=body, content_type="application/json",
                               headers=origin)

        for _page, _name, body in unique:  # warm-up: imports, Dash's first-call work, SQLite's page cache
            post(body)
        # As page loads: each run replays every page's callbacks once, in the order the browser saw them answered
        # (one after the other: what callbacks asking at the same time share, components/site_report.py, is not
        # seen here; bench.ui sees it).
        for _ in range(args.repeat):
            for page, name, body in unique:
                started, started_cpu = time.perf_counter(), time.thread_time()
                profiles[(page, name)].enable()
                answer = post(body)
                profiles[(page, name)].disable()
                timing.setdefault((page, name), []).append((time.perf_counter() - started) * 1000)
                cpu.setdefault((page, name), []).append((time.thread_time() - started_cpu) * 1000)
                size[(page, name)] = len(answer.data)
                if answer.status_code not in (200, 204):
                    print(f"{page} {name}: HTTP {answer.status_code}", file=sys.stderr)
        print(f"{machine_description()}; load average {loadavg()}; {args.repeat} runs each, in-process, no network")
        print("CPU: the thread's CPU time (what the load average does not change much); wall: elapsed time")
        print(f"{'CPU median ms':>14} {'wall median ms':>15} {'wall max ms':>12} {'answer kB':>10}  page  callback")
        ranked = sorted(timing.items(), key=lambda kv: -statistics.median(cpu[kv[0]]))
        for (page, name), ms in ranked:
            print(f"{statistics.median(cpu[(page, name)]):14.1f} {statistics.median(ms):15.1f} {max(ms):12.1f} "
                  f"{size[(page, name)] / 1000:10.1f}  {page}  {name}")
        print(f"sum of the CPU medians per page: " + ", ".join(
            f"{pg} {sum(statistics.median(v) for (p2, _n), v in cpu.items() if p2 == pg):.0f} ms"
            for pg in dict.fromkeys(p2 for p2, _n in cpu)))
        for (page, name), _ms in ranked[:args.profiles]:
            out = io.StringIO()
            pstats.Stats(profiles[(page, name)], stream=out).sort_stats("cumulative").print_stats(args.top)
            print(f"\n=== {page} {name}: cumulative, {args.repeat} runs ===")
            print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:6000])
    finally:
        runtime.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
