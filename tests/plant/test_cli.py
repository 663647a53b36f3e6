"""python -m plant as a user runs it: help, a short run writing endpoints JSON, bad plant file, port in use."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from .conftest import small_yaml

ROOT = Path(__file__).parents[2]


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "plant", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_help_lists_the_options():
    r = run_cli("--help")
    assert r.returncode == 0
    for option in ("--layout", "--seed", "--time-scale", "--base-port", "--host", "--endpoints-json",
                   "--next-free-port", "--truth-json", "--duration", "--check"):
        assert option in r.stdout


def test_short_run_prints_and_writes_endpoints(tmp_path):
    layout = tmp_path / "plant.yaml"
    layout.write_text(small_yaml("S7", "MODBUS"))
    out = tmp_path / "endpoints.json"
    truth = tmp_path / "truth.json"
    r = run_cli("--layout", str(layout), "--seed", "5", "--time-scale", "600", "--duration", "1",
                "--endpoints-json", str(out), "--truth-json", str(truth), "--sim-start", "2025-03-03T05:00")
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert doc["seed"] == 5 and doc["time_scale"] == 600 and doc["site"]["id"] == "TEST"
    assert [e["machine_id"] for e in doc["endpoints"]] == ["M-S7", "M-MB"]
    for e in doc["endpoints"]:
        assert f"{e['machine_id']}" in r.stdout and f"127.0.0.1:{e['port']}" in r.stdout
        assert e["tags"] and e["protocol_config"]
    assert "DB1" in r.stdout and "HR0" in r.stdout  # the address layout summary
    gt = json.loads(truth.read_text())
    assert gt["M-S7"]["sim_now"] > 300 and gt["M-S7"]["states"]


def test_bad_plant_file_exits_2_naming_line_and_field(tmp_path):
    layout = tmp_path / "bad.yaml"
    layout.write_text(small_yaml("S7").replace("protocol: S7", "protocol: S7, reject_rate: lots"))
    r = run_cli("--layout", str(layout))
    assert r.returncode == 2
    assert f"{layout}, line 24: areas[0].lines[0].machines[0].reject_rate (machine M-S7): expected a number" \
        in r.stderr
    assert "Traceback" not in r.stderr
    r = run_cli("--layout", str(layout), "--check")
    assert r.returncode == 2


def test_port_in_use_exits_3(tmp_path):
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen(1)
    port = held.getsockname()[1]
    try:
        layout = tmp_path / "plant.yaml"
        layout.write_text(small_yaml("MODBUS"))
        r = run_cli("--layout", str(layout), "--base-port", str(port), "--duration", "1")
        assert r.returncode == 3
        assert f"machine M-MB (MODBUS): port {port} on 127.0.0.1 is already in use" in r.stderr
        r = run_cli("--layout", str(layout), "--base-port", str(port), "--duration", "0.5", "--next-free-port")
        assert r.returncode == 0, r.stderr
    finally:
        held.close()


def test_bad_arguments_exit_2():
    assert run_cli("--time-scale", "0").returncode == 2
    assert run_cli("--base-port", "70000").returncode == 2
    r = run_cli("--host", "example.com", "--duration", "1")
    assert r.returncode == 2 and "IPv4" in r.stderr


def test_only_runs_some_machines_each_exactly_as_in_the_whole_plant(tmp_path):
    """The app splits the demo plant over processes (--only): a machine run alone must live the same history as
    in the whole plant, and an unknown id is refused by name."""
    layout = tmp_path / "plant.yaml"
    layout.write_text(small_yaml("S7", "MODBUS"))
    truths = {}
    for name, only in (("whole", ()), ("alone", ("--only", "M-MB"))):
        truth = tmp_path / f"{name}.json"
        out = tmp_path / f"{name}-endpoints.json"
        r = run_cli("--layout", str(layout), "--seed", "5", "--time-scale", "3600", "--duration", "1",
                    "--endpoints-json", str(out), "--truth-json", str(truth), "--sim-start", "2025-03-03T05:00", *only)
        assert r.returncode == 0, r.stderr
        truths[name] = json.loads(truth.read_text())
        if only:
            assert [e["machine_id"] for e in json.loads(out.read_text())["endpoints"]] == ["M-MB"]
    assert set(truths["alone"]) == {"M-MB"}
    whole, alone = truths["whole"]["M-MB"], truths["alone"]["M-MB"]
    until = min(whole["sim_now"], alone["sim_now"])

    def history(t):  # the intervals both runs saw end
        return [(s["state"], s["fault_code"], s["start_sim"], s["end_sim"], s["product_code"])
                for s in t["states"] if s["end_sim"] is not None and s["end_sim"] <= until]

    assert len(history(whole)) >= 3
    assert history(alone) == history(whole)
    r = run_cli("--layout", str(layout), "--only", "M-MB,NOPE", "--check")
    assert r.returncode == 2 and "--only: no machine NOPE" in r.stderr
