"""``python -m plant``: run the simulated plant standalone."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .layout import PlantFileError, default_layout_path, load_layout
from .runtime import Plant, PlantStartError, PortInUseError

EXIT_OK, EXIT_USAGE, EXIT_START = 0, 2, 3


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be greater than 0: {text!r}")
    return v


def _port(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= v <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0..65535: {text!r}")
    return v


def _datetime(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date-time: {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m plant",
        description="Simulated plant: one protocol server per simulated PLC (ControlLogix over EtherNet/IP, "
                    "Siemens S7, OPC-UA, Modbus TCP), machines with states, faults, changeovers and shift counters.",
        epilog="Sim time runs time-scale times faster than the wall clock (wall = start + sim / time-scale). "
               "Address maps: plant/README.md or --print-maps.",
    )
    p.add_argument("--layout", "--plant", dest="layout", metavar="FILE", default=str(default_layout_path()),
                   help="plant layout YAML (default: the demo plant, plant/default_plant.yaml)")
    p.add_argument("--seed", type=int, default=1, help="random seed: the same seed gives the same history (default 1)")
    p.add_argument("--time-scale", type=_positive_float, default=1.0, metavar="X",
                   help="sim seconds per wall second, e.g. 60: an hour passes in a minute (default 1)")
    p.add_argument("--base-port", type=_port, default=0, metavar="PORT",
                   help="machine n (0-based, layout order) listens on PORT+n; 0: free ephemeral ports (default)")
    p.add_argument("--host", default="127.0.0.1",
                   help="IPv4 address to listen on (default 127.0.0.1: this computer only)")
    p.add_argument("--next-free-port", action="store_true",
                   help="when a machine's port is in use, take the next free one instead of failing")
    p.add_argument("--endpoints-json", metavar="PATH", help="write the endpoints (ports, tag maps) as JSON")
    p.add_argument("--truth-json", metavar="PATH", help="on exit, write every machine's ground truth as JSON")
    p.add_argument("--sim-start", type=_datetime, metavar="ISO",
                   help="plant calendar at sim time 0, e.g. 2025-01-06T05:00 (plant time zone when naive); "
                        "default: now")
    p.add_argument("--duration", type=_positive_float, metavar="SECONDS",
                   help="stop after so many wall seconds (default: run until Ctrl-C)")
    p.add_argument("--only", metavar="IDS", default="",
                   help="run only these machines of the layout (comma-separated ids), each exactly as in the whole "
                        "plant (its own random stream, its base-port offset): one plant can run in several processes")
    p.add_argument("--stop-on-stdin-eof", action="store_true",
                   help="stop when standard input closes: a parent process that starts the plant (python app.py) "
                        "takes it down with it, however the parent ends")
    p.add_argument("--check", action="store_true", help="validate the layout, print the machines and exit")
    p.add_argument("--print-maps", action="store_true",
                   help="print the address maps (S7 DB, Modbus registers, OPC-UA, Logix) as Markdown and exit")
    p.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument("--log-format", default="text", choices=["text", "json"],
                   help="json: one JSON object a line, as the app's --log-format json (role \"plant\")")
    return p


def _print_endpoints(plant: Plant, out) -> None:
    eps = plant.endpoints()
    print(f"Plant {plant.layout.site_name} ({plant.layout.site_id}), {len(eps)} simulated PLCs, seed {plant.seed}, "
          f"time scale {plant.time_scale:g}", file=out)
    print(f"Sim time 0 = plant time {plant.sim_start.isoformat(timespec='seconds')} = wall "
          f"{plant.wall_start.isoformat(timespec='seconds')}", file=out)
    w_id = max([len(e["machine_id"]) for e in eps] + [7])
    print(f"{'MACHINE':<{w_id}}  {'PROTOCOL':<11}  {'ADDRESS':<21}  {'AREA / LINE':<32}  ADDRESS LAYOUT", file=out)
    for e in eps:
        where = f"{e['host']}:{e['port']}"
        area = f"{e['area']} / {e['line']}"
        print(f"{e['machine_id']:<{w_id}}  {e['protocol']:<11}  {where:<21}  {area[:32]:<32}  {e['summary']}",
              file=out)
    for mid in plant.skipped_machines():
        print(f"{mid:<{w_id}}  (simulated without a server: plant.enip is not available)", file=out)
    out.flush()


def endpoints_document(plant: Plant) -> dict[str, Any]:
    return {
        "site": {"id": plant.layout.site_id, "name": plant.layout.site_name, "timezone": plant.layout.timezone},
        "seed": plant.seed,
        "time_scale": plant.time_scale,
        "sim_start": plant.sim_start.isoformat(),
        "wall_start": plant.wall_start.isoformat(),
        "time_mapping": "wall = wall_start + sim_seconds / time_scale; plant time = sim_start + sim_seconds",
        "endpoints": plant.endpoints(),
    }


def _write_json(path: str, doc: Any) -> None:
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(p)


class _JsonLines(logging.Formatter):
    """The app's JSON log lines (processes/logs.py, which the plant cannot import: it is the lowest layer)."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
               .replace("+00:00", "Z"),
               "level": record.levelname, "logger": record.name, "role": "plant", "pid": record.process,
               "message": record.getMessage()}
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.log_format == "json":
        for handler in logging.getLogger().handlers:
            handler.setFormatter(_JsonLines())
    if args.print_maps:
        from .tags import markdown_maps

        sys.stdout.write(markdown_maps())
        return EXIT_OK
    try:
        layout = load_layout(args.layout)
    except PlantFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.only:
        wanted = [m.strip() for m in args.only.split(",") if m.strip()]
        unknown = sorted(set(wanted) - {m.id for m in layout.machines})
        if unknown:
            print(f"error: --only: no machine {', '.join(unknown)} in {args.layout}", file=sys.stderr)
            return EXIT_USAGE
        layout = dataclasses.replace(layout, machines=tuple(m for m in layout.machines if m.id in wanted))
    if args.check:
        print(f"{args.layout}: OK, site {layout.site_id} ({layout.timezone}), {len(layout.machines)} machines")
        for m in layout.machines:
            print(f"  {m.id:<10} {m.protocol:<11} {m.area} / {m.line}: {m.name}")
        return EXIT_OK
    try:
        plant = Plant(layout, seed=args.seed, time_scale=args.time_scale, host=args.host, base_port=args.base_port,
                      port_fallback=args.next_free_port, sim_start=args.sim_start)
    except (TypeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        plant.start()
    except (PortInUseError, PlantStartError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_START

    stop = threading.Event()

    def on_signal(_sig, _frame):
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if args.stop_on_stdin_eof:
        # A child of the app: Ctrl+C in the terminal reaches us too, but the app stops its collectors first and
        # then us (our standard input), so that they do not see their PLCs vanish and log it.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        def watch_stdin():
            while sys.stdin.buffer.read(4096):
                pass
            stop.set()

        threading.Thread(target=watch_stdin, name="plant-stdin", daemon=True).start()
    try:
        _print_endpoints(plant, sys.stdout)
        if args.endpoints_json:
            _write_json(args.endpoints_json, endpoints_document(plant))
            print(f"endpoints written to {args.endpoints_json}")
        print("running; Ctrl-C to stop" if args.duration is None else f"running for {args.duration:g} s")
        sys.stdout.flush()
        deadline = None if args.duration is None else time.monotonic() + args.duration
        while not stop.is_set():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            stop.wait(1.0 if left is None else min(1.0, left))
    finally:
        if args.truth_json:
            truth = {mid: plant.ground_truth(mid).to_dict() for mid in plant.model.machines}
        plant.stop()
        if args.truth_json:
            _write_json(args.truth_json, truth)
            print(f"ground truth written to {args.truth_json}")
    return EXIT_OK
