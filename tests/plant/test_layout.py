"""The plant file: the demo layout, and one test per kind of bad input, each naming the YAML line and field."""

from __future__ import annotations

import pytest

from plant import PlantFileError, default_layout, default_layout_path, load_layout, parse_layout

from .conftest import small_yaml


def line_of(text: str, needle: str, nth: int = 0) -> int:
    """1-based line of the nth line containing needle."""
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    return hits[nth]


def test_default_layout_mirrors_the_site():
    layout = default_layout()
    ids = [m.id for m in layout.machines]
    by_protocol = {p: [m.id for m in layout.machines if m.protocol == p]
                   for p in ("ETHERNET_IP", "S7", "OPCUA", "MODBUS", "SPARKPLUG_B")}
    assert by_protocol["ETHERNET_IP"] == [f"LINE-{i:03d}" for i in range(1, 11)]
    assert len(by_protocol["S7"]) == len(by_protocol["OPCUA"]) == 2
    assert by_protocol["MODBUS"] == ["LINE-015"] and by_protocol["SPARKPLUG_B"] == ["LINE-016"]
    assert len(set(ids)) == 16
    assert 3 <= len(layout.areas) <= 4
    assert layout.site_id and layout.timezone
    assert [s.start_minute for s in layout.shifts] == [360, 840, 1320]
    assert {m.counter_modulus for m in layout.machines} == {1_000_000, 2**31}
    assert sum(len({p.ideal_cycle_time for p in m.products}) > 1 for m in layout.machines) >= 10
    assert default_layout_path().name == "default_plant.yaml"


def test_machine_options_and_defaults():
    layout = parse_layout(small_yaml("S7", "MODBUS", extra=", port: 15000") .replace(
        "port: 15000}\n          - {id: M-MB", "port: 15000, s7: {db: 7, slot: 2}}\n          - {id: M-MB")
        .replace("protocol: MODBUS, port: 15000", "protocol: MODBUS, port: 15001, modbus: {unit_id: 3}"), "o.yaml")
    s7, mb = layout.machines
    assert (s7.port, s7.options["db"], s7.options["s7_slot"], s7.options["rack"]) == (15000, 7, 2, 0)
    assert (mb.port, mb.options["unit_id"]) == (15001, 3)
    assert s7.faults[0].name == "Jam" and s7.faults[0].mtbf_s == 1800
    assert s7.starved.mtbf_s == 40 * 60


BAD = [
    # (what to change: old -> new, needle for the expected line, field in the message, reason in the message)
    ("protocol: S7", "protocol: S8", "protocol: S8", "machines[0].protocol (machine M-S7)", "unknown protocol 'S8'"),
    ("protocol: S7", "protcol: S7", "protcol: S7", "protcol", "did you mean 'protocol'"),
    ("id: M-MB", "id: M-S7", "id: M-S7, name: MODBUS", "machines[1].id", "duplicate machine id 'M-S7'"),
    ("timezone: Europe/Berlin", "timezone: Mars/Olympus", "timezone", "site.timezone", "unknown time zone"),
    ('start: "14:00"', 'start: "25:00"', '"25:00"', "shifts[1].start", "HH:MM"),
    ("ideal_cycle_time: 3.0", "ideal_cycle_time: -3", "ideal_cycle_time: -3", "products[1].ideal_cycle_time",
     "greater than 0"),
    ("mean_s: 60}}", "mean_s: sixty}}", "sixty", "faults[0].repair.mean_s", "expected a number"),
    ("median_s: 300, sigma: 0.5", "median_s: 300", "median_s: 300}", "faults[1].repair", "needs 'sigma'"),
    ("order_quantity: [300, 600]", "order_quantity: [600, 300]", "order_quantity", "order_quantity[1]", ">= 600"),
    ("protocol: S7", "protocol: S7, products: [11, 99]", "products: [11, 99]", "products[1]",
     "unknown product code 99"),
    ("protocol: S7", "protocol: S7, counter_modulus: 1000, counter_initial: 1000", "counter_initial",
     "counter_initial (machine M-S7)", "below counter_modulus"),
    ("protocol: S7", "protocol: S7, reject_rate: 1.5", "reject_rate", "reject_rate", "<= 1"),
    ("protocol: S7", "protocol: S7, shifts: [A, D]", "shifts: [A, D]", "shifts[1]", "unknown shift 'D'"),
    ("protocol: S7", "protocol: S7, port: 70000", "port: 70000", "port", "<= 65535"),
    ("protocol: S7", "protocol: S7, reset_counters_at_shift: yes please", "yes please", "reset_counters_at_shift",
     "true or false"),
    ("protocol: S7", "protocol: S7, starved: {mtbf_min: 5, duration: {dist: gamma, mean_s: 3}}", "gamma",
     "starved.duration.dist", "unknown distribution 'gamma'"),
]


@pytest.mark.parametrize("old,new,needle,field,reason", BAD, ids=[b[3].split(" ")[0] + "|" + b[4][:20] for b in BAD])
def test_bad_plant_file_names_line_and_field(old, new, needle, field, reason):
    text = small_yaml("S7", "MODBUS")
    assert old in text
    bad = text.replace(old, new, 1)
    with pytest.raises(PlantFileError) as info:
        parse_layout(bad, "bad.yaml")
    err = info.value
    msg = str(err)
    assert err.line == line_of(bad, needle), msg
    assert msg.startswith(f"bad.yaml, line {err.line}: "), msg
    assert field in msg and reason in msg, msg


def test_duplicate_key_is_an_error_not_a_silent_override():
    bad = small_yaml("S7").replace("name: Lunch,", "name: Lunch, minutes: 10,")
    with pytest.raises(PlantFileError, match=r"line 7: breaks\[0\]\.minutes: duplicate key 'minutes'"):
        parse_layout(bad, "bad.yaml")


def test_yaml_syntax_error_names_the_line():
    bad = small_yaml("S7").replace("{code: 12, name: Large box, ideal_cycle_time: 3.0}",
                                   "{code: 12, name: Large box, ideal_cycle_time: 3.0")
    with pytest.raises(PlantFileError) as info:
        parse_layout(bad, "bad.yaml")
    assert info.value.line is not None and "invalid YAML" in str(info.value)
    assert abs(info.value.line - line_of(bad, "Large box")) <= 2


def test_missing_required_field():
    bad = small_yaml("S7").replace(", protocol: S7", "")
    with pytest.raises(PlantFileError, match=r"line \d+: areas\[0\]\.lines\[0\]\.machines\[0\] \(machine M-S7\): "
                                             r"missing required field 'protocol'"):
        parse_layout(bad, "bad.yaml")


def test_no_areas():
    text = small_yaml("S7")
    bad = text[: text.index("areas:")] + "areas: []\n"
    with pytest.raises(PlantFileError, match=rf"line {line_of(bad, 'areas: []')}: areas: expected at least 1 item"):
        parse_layout(bad, "bad.yaml")


def test_not_a_mapping():
    with pytest.raises(PlantFileError, match="expected a mapping"):
        parse_layout("- just\n- a list\n", "bad.yaml")


def test_unreadable_file(tmp_path):
    with pytest.raises(PlantFileError, match="cannot read plant file"):
        load_layout(tmp_path / "nope.yaml")
    p = tmp_path / "bin.yaml"
    p.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(PlantFileError, match="not UTF-8"):
        load_layout(p)


def test_load_layout_from_file(tmp_path):
    p = tmp_path / "plant.yaml"
    p.write_text(small_yaml("OPCUA").replace("protocol: OPCUA", "protocol: opc-ua"))
    layout = load_layout(p)
    assert layout.machines[0].protocol == "OPCUA"
    assert layout.source == str(p)
