"""Your own machine, correct OEE: a third-party PLC that is not the demo plant (tests/support/third_party_plc.py: its
own tag names, its own state codes 1 run / 3 fault / 7 changeover, an ideal-cycle-time tag), over Modbus TCP,
OPC-UA and EtherNet/IP on 127.0.0.1, configured only as a user would, polled by the app's collectors for two
cycles of its schedule (run 20 s at ideal speed, faulted 10 s, every 30 s, 10 % rejects). Known in advance:
A 0.667, P 1.0, Q 0.9, OEE 0.6, equipment failure 10 s of every 30 s.

Measured by hand before this work: availability 1.00, performance null, OEE null.

With the machine's own settings (state_code_map: 3 is a fault on this PLC, a blocked machine by the default map;
micro_stop_threshold_s 5: a 10 s fault is not a minor stop, as it is by the default of 120 s; fault_codes), each
machine configured another way: the Modbus one through the wizard in Chromium, the OPC-UA one through the REST
API, the EtherNet/IP one through a YAML import. Beside them, one machine per protocol added through the API with
no settings of its own (its state from the PLC's InProduction / AlarmActive bits): what holds without them.
"""
from __future__ import annotations

import time

import pytest
import yaml
from selenium.webdriver.support.ui import Select

from tests.config.conftest import Client, wait_for
from tests.config.test_wizard import choose, click, fill, run_connection_test
from tests.support.auth import browser_login
from tests.support.browser import EC, By, WebDriverWait, make_browser, wait_text
from tests.support.third_party_plc import MODBUS_TAGS, Schedule, ThirdPartyPlc
from tests.test_app import RunningApp

PROTOCOLS = ("MODBUS", "OPCUA", "ETHERNET_IP")
CYCLES = 2
POINT = 0.01  # "within 1 point"
OWN_SETTINGS = {"state_code_map": {"1": "running", "3": "faulted", "7": "changeover"},
                "micro_stop_threshold_s": 5,
                "fault_codes": [{"code": 42, "text": "Filler jam", "kind": "fault"}]}
OWN_WAY = {"MODBUS": "wizard", "OPCUA": "api", "ETHERNET_IP": "yaml"}  # how each machine with its own settings is made


def add_through_the_wizard(app, plc, machine_id: str) -> None:
    """The Modbus machine as an engineer connects it: settings, test, the vendor's register map typed from its
    manual, roles, the PLC's own state codes and fault table, save."""
    browser = make_browser(1500, 1100)
    try:
        browser_login(browser, app.base, app.user("engineer"))
        browser.get(f"{app.base}/machine-config/")
        click(browser, "#mc-new")
        click(browser, ".mc-protocol-MODBUS")
        WebDriverWait(browser, 15).until(EC.visibility_of_element_located((By.ID, "mc-machine-id")))
        fill(browser, "mc-machine-id", machine_id)
        fill(browser, "mc-name", "ACME filler (wizard)")
        fill(browser, "mc-host", plc.host)
        fill(browser, "mc-port", plc.modbus_port)
        fill(browser, "mc-poll", 100)
        fill(browser, "mc-micro", OWN_SETTINGS["micro_stop_threshold_s"])
        click(browser, "#mc-settings-next")
        run_connection_test(browser)
        WebDriverWait(browser, 15).until(EC.visibility_of_element_located((By.ID, "mc-mb-map")))
        fill(browser, "mc-mb-map", "\n".join(f"{t['name']},{t['address']},{t['data_type']}" for t in MODBUS_TAGS))
        click(browser, "#mc-mb-apply")
        wait_text(browser, "#mc-pick-count", f"of {len(MODBUS_TAGS)} selected")
        click(browser, "#mc-pick-shown")
        wait_text(browser, "#mc-pick-count", f"{len(MODBUS_TAGS)} of {len(MODBUS_TAGS)} selected")
        click(browser, "#mc-discover-next")
        WebDriverWait(browser, 20).until(EC.visibility_of_element_located((By.ID, "mc-map")))
        roles = {t["name"]: t["role"] for t in MODBUS_TAGS}
        for row in browser.find_elements(By.CSS_SELECTOR, "#mc-map tbody tr"):
            name = row.find_element(By.CSS_SELECTOR, "input").get_attribute("value")
            Select(row.find_element(By.CSS_SELECTOR, "select")).select_by_value(roles[name])
        choose(browser, "mc-state-preset", "custom")
        fill(browser, "mc-state-codes", "\n".join(f"{c}, {s}" for c, s in OWN_SETTINGS["state_code_map"].items()))
        fill(browser, "mc-fault-codes", "\n".join(f"{f['code']}, {f['text']}, {f['kind']}"
                                                  for f in OWN_SETTINGS["fault_codes"]))
        click(browser, "#mc-map-next")
        WebDriverWait(browser, 20).until(EC.visibility_of_element_located((By.ID, "mc-save")))
        click(browser, "#mc-save")
        wait_text(browser, "#mc-saved-ok", "the collectors poll it now", timeout=30)
    finally:
        browser.quit()


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """Start the app and the PLC (in changeover until its schedule starts), add the machines as a user would, start
    the schedule at a whole minute once every machine reports, let two cycles pass, read GET /api/oee/."""
    app = RunningApp(tmp_path_factory.mktemp("app"), "--no-demo")
    plc = None
    try:
        app.wait_healthy()
        api = Client(app.port, app.token("engineer"))
        plc = ThirdPartyPlc(Schedule(time.time() + 86400)).start()
        added = {}
        add_through_the_wizard(app, plc, "ACME-MODBUS-OWN")
        added[("MODBUS", "own")] = "ACME-MODBUS-OWN"
        status, created = api.post("/api/plc/machines/", plc.machine_body("OPCUA", "ACME-OPCUA-OWN", **OWN_SETTINGS))
        assert status == 201, created
        added[("OPCUA", "own")] = created["machine_id"]
        document = {"version": 1, "machines": [plc.machine_body("ETHERNET_IP", "ACME-ETHERNET_IP-OWN", **OWN_SETTINGS)]}
        status, result = api.post("/api/config/import", raw=yaml.safe_dump(document).encode(),
                                  content_type="application/yaml")
        assert status == 200, result
        added[("ETHERNET_IP", "own")] = "ACME-ETHERNET_IP-OWN"
        for protocol in PROTOCOLS:  # without the vendor's state codes: its run / alarm bits say the state
            body = plc.machine_body(protocol, f"ACME-{protocol}")
            body["tags"] = [t for t in body["tags"] if t["role"] != "state.code"]
            status, created = api.post("/api/plc/machines/", body)
            assert status == 201, created
            added[(protocol, "bits")] = created["machine_id"]
        expected = {m: "changeover" if way == "own" else "idle" for (_p, way), m in added.items()}
        states: dict = {}

        def all_polled():  # in changeover (the PLC's own code 7) or idle (by the bits) before the schedule starts
            states.update({m: api.get(f"/api/plc/machines/{m}/")[1].get("state") for m in expected})
            return states == expected

        try:
            wait_for(all_polled, timeout=60)
        except AssertionError:
            raise AssertionError(f"not every machine reports the state expected: {states}, expected {expected}") \
                from None
        t0 = (time.time() // 60 + 1) * 60  # a whole minute: count rows do not straddle the schedule's start
        if t0 - time.time() < 5:
            t0 += 60
        plc.schedule = Schedule(t0)
        end = t0 + CYCLES * plc.schedule.cycle_s
        time.sleep(max(0.0, end - time.time()) + 3.0)  # the writer commits within a second
        out = {}
        for key, machine_id in added.items():
            status, report = api.get(f"/api/oee/?machine={machine_id}&start={t0}&end={end}")
            assert status == 200, report
            out[key] = report
            status, machine = api.get(f"/api/plc/machines/{machine_id}/")
            out[key]["configured"] = machine
        yield {"reports": out, "schedule": plc.schedule}
    finally:
        if plc is not None:
            plc.stop()
        app.stop()


def _line(report: dict) -> str:
    losses = report["losses"]
    return (f"A {report['availability']} P {report['performance']} Q {report['quality']} OEE {report['oee']} "
            f"parts {report['total_count']} failure {losses['availability.equipment_failure']} minor "
            f"{losses['performance.idling_minor_stops']} flags {report['flags']}")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_what_holds_without_them(measured, protocol):
    s, r = measured["schedule"], measured["reports"][(protocol, "bits")]
    print(f"\n{protocol} (bits): {_line(r)}")
    assert "no_ideal_cycle_time" not in r["flags"], _line(r)  # the PLC's NominalCycle tag, no product set up
    assert r["total_count"] == pytest.approx(CYCLES * s.run_s / s.ideal_s, abs=2)
    assert r["oee"] == pytest.approx(s.oee, abs=POINT), _line(r)
    assert r["quality"] == pytest.approx(s.quality, abs=POINT), _line(r)
    assert r["availability"] * r["performance"] == pytest.approx(s.availability, abs=POINT), _line(r)
    fault = r["losses"]["availability.equipment_failure"] + r["losses"]["performance.idling_minor_stops"]
    assert fault / r["planned_time_s"] == pytest.approx(s.failure_share, abs=POINT), _line(r)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_with_the_machines_own_settings(measured, protocol):
    s, r = measured["schedule"], measured["reports"][(protocol, "own")]
    print(f"\n{protocol} (own settings, through the {OWN_WAY[protocol]}): {_line(r)}")
    m = r["configured"]
    assert (m["state_code_map"], m["micro_stop_threshold_s"], m["fault_codes"]) == (
        OWN_SETTINGS["state_code_map"], OWN_SETTINGS["micro_stop_threshold_s"], OWN_SETTINGS["fault_codes"])
    assert r["availability"] == pytest.approx(s.availability, abs=POINT), _line(r)
    assert r["performance"] == pytest.approx(1.0, abs=POINT), _line(r)
    assert r["quality"] == pytest.approx(s.quality, abs=POINT), _line(r)
    assert r["oee"] == pytest.approx(s.oee, abs=POINT), _line(r)
    failure = r["losses"]["availability.equipment_failure"]
    assert failure / r["planned_time_s"] == pytest.approx(s.failure_share, abs=POINT), _line(r)
