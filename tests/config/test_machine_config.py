"""config.validation: every validation branch names its field and says what is expected (no server needed)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.fields import ValidationError
from config.plant_file import validate_document
from config.plant_items import (
    validate_area,
    validate_calendar,
    validate_line,
    validate_product,
    validate_reason,
    validate_site,
)
from config.validation import (
    merge_secrets,
    redact,
    suggest_role,
    suggest_roles,
    validate_connection,
    validate_machine,
    validate_tags,
)

GOOD = {"name": "Filler 17", "machine_id": "LINE-017", "protocol": "S7", "ip_address": "192.168.1.17",
        "protocol_config": {"rack": 0, "slot": 1}}


def errors_of(fn, *args, **kwargs) -> dict:
    with pytest.raises(ValidationError) as info:
        fn(*args, **kwargs)
    return info.value.fields


def test_a_good_machine_gets_its_defaults():
    clean = validate_machine(GOOD)
    assert clean["port"] == 102 and clean["poll_interval_ms"] == 1000 and clean["enabled"] is True
    assert clean["protocol_config"] == {"rack": 0, "slot": 1}  # what was given; defaults are filled at each load
    assert clean["line"] is None and clean["description"] == ""
    assert validate_machine({**GOOD, "protocol_config": {"cpu_type": "s7 1500"}})["protocol_config"] == {
        "cpu_type": "S7-1500"}  # normalised


@pytest.mark.parametrize("change, field, expected", [
    ({"name": None}, "name", "required"),
    ({"name": ""}, "name", "1 to 200 characters"),
    ({"name": 17}, "name", "must be text"),
    ({"machine_id": None}, "machine_id", "required"),
    ({"machine_id": "line 17"}, "machine_id", "letters, digits"),
    ({"machine_id": "-L"}, "machine_id", "starting with a letter or digit"),
    ({"description": "x" * 2001}, "description", "0 to 2000"),
    ({"protocol": None}, "protocol", "required: one of ETHERNET_IP, S7, OPCUA, MODBUS"),
    ({"protocol": "PROFINET"}, "protocol", "is not supported"),
    ({"ip_address": None}, "ip_address", "required"),
    ({"ip_address": "192.168.1"}, "ip_address", "not an IP address or host name"),
    ({"ip_address": "plc_17"}, "ip_address", "not an IP address or host name"),
    ({"port": 0}, "port", "from 1 to 65535"),
    ({"port": "102"}, "port", "whole number"),
    ({"port": True}, "port", "whole number"),
    ({"poll_interval_ms": 10}, "poll_interval_ms", "from 100 to 3600000"),
    ({"line": "Line 1"}, "line", "the id of a line"),
    ({"enabled": "yes"}, "enabled", "true or false"),
    ({"protocol_config": [1]}, "protocol_config", "must be an object"),
    ({"protocol_config": {"rack": 9}}, "protocol_config.rack", "0 to 7"),
    ({"protocol_config": {"cpu_type": "S7-200"}}, "protocol_config.cpu_type", "not supported"),
    ({"colour": "red"}, "colour", "unknown field"),
    ({"poll_intervall_ms": 5}, "poll_intervall_ms", "did you mean 'poll_interval_ms'"),
])
def test_each_machine_field_is_checked(change, field, expected):
    fields = errors_of(validate_machine, {**GOOD, **change})
    assert expected in fields[field], fields


def test_every_bad_field_is_named_at_once():
    fields = errors_of(validate_machine, {"name": "", "machine_id": "a b", "protocol": "X", "ip_address": "1.2.3",
                                          "port": 0})
    assert set(fields) == {"name", "machine_id", "protocol", "ip_address", "port"}


def test_read_only_fields_from_a_get_are_ignored():
    assert validate_machine({**GOOD, "id": 4, "state": "running", "tag_count": 3, "line_name": None})


@pytest.mark.parametrize("protocol, config, field, expected", [
    ("ETHERNET_IP", {"slot": 20}, "protocol_config.slot", "0 to 16"),
    ("ETHERNET_IP", {"plc_family": "Micro800"}, "protocol_config.plc_family", "not supported"),
    ("ETHERNET_IP", {"route": "1"}, "protocol_config.route", "port,link pairs"),
    ("ETHERNET_IP", {"plc_family": "CompactLogix", "slot": 2}, "protocol_config.slot", "always in slot 0"),
    ("MODBUS", {"unit_id": 256}, "protocol_config.unit_id", "0 to 255"),
    ("MODBUS", {"word_order": "middle"}, "protocol_config.word_order", "'big' or 'little'"),
    ("MODBUS", {"zero_based": "maybe"}, "protocol_config.zero_based", "true or false"),
    ("OPCUA", {"endpoint": "http://x/"}, "protocol_config.endpoint", "opc.tcp://"),
    ("OPCUA", {"security_policy": "Basic512"}, "protocol_config.security_policy", "not a security policy"),
    ("OPCUA", {"security_policy": "Basic256Sha256", "security_mode": "None"}, "protocol_config.security_mode",
     "goes with mode"),
    ("OPCUA", {"security_policy": "Basic256Sha256"}, "protocol_config.certificate", "needs this client's"),
    ("OPCUA", {"security_policy": "Basic256Sha256", "certificate": "/nonexistent.pem", "private_key": "/k.pem"},
     "protocol_config.certificate", "give the name of a file in the certificate folder"),
    ("OPCUA", {"password": "secret"}, "protocol_config.username", "needs a user name"),
])
def test_protocol_settings_are_checked_by_the_driver(protocol, config, field, expected):
    fields = errors_of(validate_machine, {**GOOD, "protocol": protocol, "protocol_config": config, "port": None})
    assert expected in fields[field], fields


def test_opcua_takes_host_and_port_from_the_endpoint_and_refuses_a_contradiction():
    body = {"name": "Pal", "machine_id": "PAL-1", "protocol": "OPCUA",
            "protocol_config": {"endpoint": "opc.tcp://10.0.0.5:4841/oee/"}}
    clean = validate_machine(body)
    assert (clean["ip_address"], clean["port"]) == ("10.0.0.5", 4841)
    fields = errors_of(validate_machine, {**body, "ip_address": "10.0.0.6", "port": 4840})
    assert "differs from the host" in fields["ip_address"] and "differs from the port" in fields["port"]


def test_secrets_are_redacted_and_kept_when_sent_back():
    stored = {"endpoint": "opc.tcp://h:4840/", "username": "op", "password": "hunter2"}
    shown = redact(stored)
    assert shown["password"] == "***" and "hunter2" not in str(shown)
    assert merge_secrets(shown, stored)["password"] == "hunter2"
    assert merge_secrets({**shown, "password": "new"}, stored)["password"] == "new"
    moved = errors_of(merge_secrets, {**shown, "endpoint": "opc.tcp://elsewhere:4840/"}, stored)
    assert "give the password again" in moved["protocol_config.password"]  # never sent to another server
    assert merge_secrets({**shown, "endpoint": "opc.tcp://H:4840/other"}, stored)["password"] == "hunter2"
    fields = errors_of(merge_secrets, {"password": "***"}, {})
    assert "none is stored" in fields["protocol_config.password"]


TAG = {"name": "GoodCount", "address": "DB1.DBD4", "data_type": "DINT", "role": "counter.good"}


@pytest.mark.parametrize("change, field, expected", [
    ({"name": None}, "tags[0].name", "required"),
    ({"address": "DB1.DBZ4"}, "tags[0].address", "expected DB<n>"),
    ({"data_type": "DECIMAL"}, "tags[0].data_type", ""),
    ({"role": "counter.best"}, "tags[0].role", "is not a role"),
    ({"role": "counter.good", "address": "DB1.DBD22", "data_type": "REAL"}, "tags[0].role", "whole-number type"),
    ({"scale": 0}, "tags[0].scale", "must not be 0"),
    ({"scale": "2"}, "tags[0].scale", "must be a number"),
    ({"offset": float("nan")}, "tags[0].offset", "must be a number"),
    ({"deadband": -1}, "tags[0].deadband", "at least 0"),
    ({"sampling_interval_ms": 5}, "tags[0].sampling_interval_ms", "from 100 to 3600000"),
    ({"report_by_exception": 1}, "tags[0].report_by_exception", "true or false"),
    ({"enabled": None, "options": {"rollover": 1}}, "tags[0].options.rollover", "modulus"),
    ({"options": []}, "tags[0].options", "must be an object"),
    ({"unit": "pcs"}, "tags[0].unit", "unknown field"),
])
def test_each_tag_field_is_checked(change, field, expected):
    fields = errors_of(validate_tags, "S7", {}, [{**TAG, **change}])
    assert expected in fields[field], fields


def test_tag_names_and_roles_are_unique_within_a_machine():
    fields = errors_of(validate_tags, "S7", {}, [TAG, {**TAG, "address": "DB1.DBD8"}, {**TAG, "name": "Good2"}])
    assert "already the name of tags[0]" in fields["tags[1].name"]
    assert "already the role of tags[0]" in fields["tags[2].role"]


@pytest.mark.parametrize("protocol, config, address, data_type, field", [
    ("MODBUS", {}, "HR70000", "UINT16", "address"),
    ("MODBUS", {"zero_based": False}, "HR0", "UINT16", "address"),
    ("MODBUS", {}, "HR0", "FLOAT128", "data_type"),
    ("OPCUA", {}, "ns=2;q=x", "Int32", "address"),
    ("ETHERNET_IP", {}, "Arr{5}", "DINT", "address"),
])
def test_addresses_are_refused_at_configuration_time(protocol, config, address, data_type, field):
    fields = errors_of(validate_tags, protocol, config, [{"name": "t", "address": address, "data_type": data_type}])
    assert f"tags[0].{field}" in fields, fields


def test_role_suggestions_from_names():
    assert suggest_role("GoodCount") == "counter.good"
    assert suggest_role("ns=2;s=LINE-011.Faulted") == "state.faulted"
    assert suggest_role("Program:MainProgram.StepNo") is None
    assert suggest_role("Stn01_Running") is None  # a station's bit is not the machine's state
    names = ["ProductionCount", "GoodCount", "RejectCount", "State", "Running", "ActiveFaultCode", "LastFaultCode",
             "CycleTime", "IdealCycleTime", "ProductCode", "OrderId", "Speed"]
    got = suggest_roles(names)
    assert got == {"ProductionCount": "counter.total", "GoodCount": "counter.good", "RejectCount": "counter.reject",
                   "State": "state.code", "Running": "state.running", "LastFaultCode": "fault.code",
                   "CycleTime": "cycle.time", "IdealCycleTime": "cycle.ideal_time", "ProductCode": "product.code",
                   "OrderId": "order.id"}


def test_connection_body_for_a_test_before_saving():
    clean = validate_connection({"protocol": "MODBUS", "ip_address": "127.0.0.1", "port": 5020,
                                 "protocol_config": {"unit_id": 1}, "probe_address": "HR0"})
    assert clean["probe_address"] == "HR0" and clean["protocol_config"]["unit_id"] == 1
    fields = errors_of(validate_connection, {"protocol": "MODBUS", "ip_address": "x..y", "probe_address": "",
                                             "timeout_s": 100})
    assert set(fields) >= {"ip_address", "probe_address", "timeout_s"}
    assert "body" in errors_of(validate_connection, [])


@pytest.mark.parametrize("fn, body, field, expected", [
    (validate_site, {"name": ""}, "name", "1 to 100"),
    (validate_site, {"name": "S", "timezone": "Mars/Olympus"}, "timezone", "IANA name"),
    (validate_area, {"name": "A"}, "site", "required"),
    (validate_area, {"name": "A", "site": "one"}, "site", "whole number"),
    (validate_line, {"name": "L"}, "area", "required"),
    (validate_product, {"code": "P1"}, "ideal_cycle_time_s", "required"),
    (validate_product, {"code": "P1", "ideal_cycle_time_s": 0}, "ideal_cycle_time_s", "above 0 and at most 86400"),
    (validate_product, {"code": "P1", "ideal_cycle_time_s": "1.5"}, "ideal_cycle_time_s", "above 0"),
    (validate_product, {"code": "", "ideal_cycle_time_s": 1}, "code", "1 to 64"),
    (validate_reason, {"code": "R", "name": "Jam"}, "loss_category", "required"),
    (validate_reason, {"code": "R", "name": "Jam", "loss_category": "coffee"}, "loss_category", "not a category"),
    (validate_reason, {"code": "R", "name": "Lunch", "loss_category": "break"}, "loss_category",
     "is a planned category but planned is false"),
    (validate_reason, {"code": "R", "name": "PM", "planned": True, "loss_category": "equipment_failure"},
     "loss_category", "is a loss category"),
    (validate_reason, {"code": "R", "name": "Jam", "planned": "no", "loss_category": "equipment_failure"},
     "planned", "true or false"),
    (validate_calendar, {"name": "C", "timezone": "X"}, "timezone", "IANA"),
    (validate_calendar, {"name": "C", "shifts": {}}, "shifts", "must be a list"),
    (validate_calendar, {"name": "C", "shifts": [{"name": "A", "start": "6:00", "end": "14:00"}]},
     "shifts[0].start", "'HH:MM'"),
    (validate_calendar, {"name": "C", "shifts": [{"name": "A", "start": "06:00", "end": "06:00"}]},
     "shifts[0].end", "must not end when it starts"),
    (validate_calendar, {"name": "C", "shifts": [{"name": "A", "start": "06:00", "end": "14:00", "weekdays": "017"}]},
     "shifts[0].weekdays", "Monday = 0"),
    (validate_calendar, {"name": "C", "shifts": [{"name": "A", "start": "06:00", "end": "14:00"},
                                                 {"name": "A", "start": "14:00", "end": "22:00"}]},
     "shifts[1].name", "unique"),
    (validate_calendar, {"name": "C", "shifts": [{"name": "A", "start": "06:00", "end": "14:00",
                                                  "breaks": [{"start": "13:50", "duration_s": 1800}]}]},
     "shifts[0].breaks[0].start", "does not fit in the shift"),
    (validate_calendar, {"name": "C", "shifts": [{"name": "A", "start": "06:00", "end": "14:00",
                                                  "breaks": [{"start": "10:00"}]}]},
     "shifts[0].breaks[0].duration_s", "required"),
])
def test_each_plant_setting_is_checked(fn, body, field, expected):
    fields = errors_of(fn, body)
    assert expected in fields[field], fields


def test_a_night_shift_crosses_midnight_with_its_break():
    clean = validate_calendar({"name": "C", "shifts": [{"name": "N", "start": "22:00", "end": "06:00",
                                                        "weekdays": "40", "breaks": [{"start": "02:00",
                                                                                      "duration_s": 1800}]}]})
    assert clean["shifts"][0]["weekdays"] == "04" and clean["shifts"][0]["breaks"][0]["name"] == "Break"


def test_a_document_names_each_error_by_its_path():
    doc = {
        "version": 1,
        "sites": [{"name": "S", "timezone": "UTC", "areas": [{"name": "A", "lines": ["L1", "L1"]}]}],
        "products": [{"code": "P", "ideal_cycle_time_s": 1}, {"code": "P", "ideal_cycle_time_s": 2}],
        "machines": [{**GOOD, "line": "S/A/L2", "tags": [{**TAG, "address": "DB1.DBQ0"}]},
                     {**GOOD, "line": "S/A/L1"}],
        "colours": [],
    }
    fields = errors_of(validate_document, doc)
    assert "machines[0].line" in fields and "neither in this file" in fields["machines[0].line"]
    assert "machines[0].tags[0].address" in fields
    assert "already machines[0]" in fields["machines[1]"]
    assert "already products[0]" in fields["products[1]"]
    assert "already sites[0].areas[0].lines[0]" in fields["sites[0].areas[0].lines[1]"]
    assert "unknown field" in fields["colours"]
    assert "version" in errors_of(validate_document, {"version": 2})


def test_unquoted_yaml_times_are_read_as_times():
    import yaml

    doc = yaml.safe_load("calendars:\n- name: C\n  shifts:\n  - {name: B, start: 14:00, end: 22:00}\n")
    assert doc["calendars"][0]["shifts"][0]["start"] == 840  # YAML 1.1 sexagesimal
    clean = validate_document(doc)
    assert clean["calendars"][0]["shifts"][0]["start"] == "14:00"


# --- any file at all: errors, never an exception -------------------------------------------------------------------

_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8)
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.sampled_from(["name", "areas", "lines", "shifts", "tags", "calendar", "line", "code", "start", "end", "x"])
    | st.text(max_size=4), inner, max_size=4), max_leaves=20)
_DOCUMENTS = st.dictionaries(st.sampled_from(["version", "sites", "products", "reason_codes", "calendars",
                                              "machines", ""]) | st.text(max_size=6), _SCALARS | _VALUES, max_size=7)


@settings(max_examples=300, deadline=None)
@given(_DOCUMENTS)
def test_any_document_gives_field_errors_never_an_exception(doc):
    """A configuration file of any shape is refused with its errors named (POST /api/config/import answered 500 for
    `calendars: 1.65e16`: the calendar names were read before the list was checked)."""
    try:
        validate_document(doc)
    except ValidationError as exc:
        assert exc.fields


def test_a_calendars_entry_that_is_not_a_list_is_named():
    with pytest.raises(ValidationError) as err:
        validate_document({"calendars": 1.65e16, "machines": [None]})
    assert err.value.fields["calendars"] == "must be a list"
