"""The app publishes its plant to a real Mosquitto as a Unified Namespace, read back by a plain MQTT client.

Real collectors poll the simulated plant's S7 and Modbus servers; the runtime publishes what its live service sees
(uns/publisher.py). Nothing mocked: the broker is a private Mosquitto on a free loopback port with a password.
"""
from __future__ import annotations

from datetime import datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app import create_app
from db.shift_oee import current_shift_oee
from tests.support.mosquitto import Mosquitto
from tests.support.proxy import FaultProxy
from tests.uns.support import ODD_LINE, Reader, publishing_runtime, small_plant
from uns.topics import level, unescape

PASSWORD = "s3cret-Broker-pw"
SITE = "oee/Site%20A"


@pytest.fixture(scope="module")
def plant():
    p = small_plant()
    yield p
    p.stop()


@pytest.fixture
def broker():
    with Mosquitto(users={"oee": PASSWORD, "reader": "r"}) as b:
        yield b


def parse_time(text: str) -> float:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def machine_prefix(runtime, machine_id: str) -> str:
    m = runtime.live.catalog.machines[runtime.live.catalog.find_machine(machine_id)]
    return "/".join(["oee", level(m["site"]), level(m["area"]), level(m["line"]), level(m["machine_id"])])


def test_topics_and_payloads_read_back_by_a_plain_client(tmp_path, plant, broker):
    reader = Reader(broker.host, broker.port, "oee/#", client_id="reader-1", user="reader", password="r")
    runtime = publishing_runtime(tmp_path, plant, f"mqtt://oee:{PASSWORD}@{broker.host}:{broker.port}")
    try:
        packer, wrapper = machine_prefix(runtime, "LINE-013"), machine_prefix(runtime, "LINE-015")
        # The ISA-95 tree, and a line name with /, # and + escaped into one level (and back).
        assert wrapper.split("/")[3] == "Pack%2FLine %232%2B" and unescape(wrapper.split("/")[3]) == ODD_LINE
        assert packer.startswith("oee/Site A/") and len(packer.split("/")) == 5

        # Tag values on change: value, time (ISO 8601 UTC), quality; retained.
        tags = reader.wait(lambda r: r.json(prefix=f"{packer}/tags/"))
        topic, doc, _ = tags[0]
        assert set(doc) >= {"value", "time", "quality"} and doc["quality"] in ("good", "uncertain", "bad")
        assert abs(parse_time(doc["time"]) - __import__("time").time()) < 60
        by_tag = {t.rsplit("/", 1)[1] for t, _, _ in reader.json(prefix=f"{packer}/tags/")}
        known = {t["name"] for t in runtime.live.catalog.tags.values()
                 if runtime.live.catalog.machines[t["machine"]]["machine_id"] == "LINE-013"}
        assert by_tag <= {level(n) for n in known} and len(by_tag) >= 3, by_tag

        # State changes, with the previous state.
        states = reader.wait(lambda r: r.json(f"{wrapper}/state"))
        assert states[0][1]["state"] in ("running", "idle", "starved", "blocked", "faulted", "changeover",
                                         "stopped", "planned_stop", "offline", "unknown", "setup", "break"), states
        assert {"previous_state", "since", "fault_code", "product_code", "time"} <= set(states[0][1])

        # Count increments: each message's increment is the difference of its totals from the one before.
        counts = reader.wait(lambda r: (lambda c: c if len(c) >= 3 else None)(r.json(f"{packer}/counts")), 40)
        assert counts[0][1]["increment"] == {"total": 0, "good": 0, "reject": 0}  # the first: totals only
        for (_, before, _), (_, after, _) in zip(counts, counts[1:]):
            assert after["increment"] == {k: after[k] - before[k] for k in ("total", "good", "reject")}
            assert after["total"] > before["total"] or after["good"] != before["good"]

        # OEE, A, P, Q of the current shift: the numbers of /metrics and GET /api/oee/ (db/shift_oee.py).
        assert runtime.uns.publish_oee() == 2
        oee_docs = reader.wait(lambda r: r.json(f"{packer}/oee"))
        doc = oee_docs[-1][1]
        assert {"shift", "start", "end", "oee", "availability", "performance", "quality"} <= set(doc)
        expected = next(i for i in current_shift_oee(runtime.store, parse_time(doc["end"]))
                        if i.machine == "LINE-013")
        assert doc["shift"] == expected.shift and parse_time(doc["start"]) == pytest.approx(expected.start, abs=1e-3)

        # Current values are retained: a client that comes later gets each topic's latest at once.
        late = Reader(broker.host, broker.port, f"{packer}/#", client_id="reader-late", user="reader", password="r")
        try:
            got = late.wait(lambda r: (lambda j: j if {"state", "counts", "oee"} <= {t.rsplit("/", 1)[1] for t, _, _ in j}
                                       else None)(r.json()), 10)
            assert all(retained for _, _, retained in got[:5])
        finally:
            late.close()

        # The publisher's own status (the MQTT last will says offline when the connection dies).
        assert reader.wait(lambda r: r.json("oee/_publisher/test-node"))[0][1]["online"] is True

        # The password never shows: /healthz, /metrics.
        client = create_app(runtime).server.test_client()
        health = client.get("/healthz")
        assert PASSWORD not in health.get_data(as_text=True)
        body = health.get_json()
        assert body["mqtt"]["url"] == f"mqtt://oee:***@{broker.host}:{broker.port}" and body["mqtt"]["connected"]
        assert not [p for p in body["problems"] if p["component"] == "mqtt publisher"]
        metrics = client.get("/metrics").get_data(as_text=True)
        assert PASSWORD not in metrics
        values = {s.name: s.value for f in text_string_to_metric_families(metrics) for s in f.samples}
        assert values["oee_mqtt_connected"] == 1 and values["oee_mqtt_published_messages_total"] > 10
        runtime.stop()  # says goodbye: offline, retained
        reader.wait(lambda r: r.json("oee/_publisher/test-node")[-1][1]["online"] is False, 10)
    finally:
        runtime.stop()
        reader.close()


def test_a_plc_that_goes_away_publishes_bad_quality_and_offline_then_recovers(tmp_path, plant, broker):
    """The Modbus PLC of LINE-015 behind a proxy that cuts it: its tags go bad with the reason, the machine offline
    (after what it was), and both come back."""
    modbus_port = next(e["port"] for e in plant.endpoints() if e["machine_id"] == "LINE-015")
    proxy = FaultProxy(modbus_port).start()
    reader = Reader(broker.host, broker.port, "oee/#", client_id="reader-2", user="reader", password="r")
    runtime = publishing_runtime(tmp_path, plant, f"mqtt://oee:{PASSWORD}@{broker.host}:{broker.port}",
                                 ports={"LINE-015": proxy.port})
    try:
        wrapper = machine_prefix(runtime, "LINE-015")
        reader.wait(lambda r: [d for _, d, _ in r.json(f"{wrapper}/state") if d["state"] != "offline"])
        proxy.cut()
        offline = reader.wait(lambda r: [d for _, d, _ in r.json(f"{wrapper}/state") if d["state"] == "offline"])
        assert offline[0]["previous_state"] not in (None, "offline")
        bad = reader.wait(lambda r: [d for _, d, _ in r.json(prefix=f"{wrapper}/tags/") if d["quality"] == "bad"])
        assert bad[0]["value"] is None and bad[0]["reason"] == "cannot_connect", bad[0]
        proxy.restore()
        def after_offline(r):
            states = [d for _, d, _ in r.json(f"{wrapper}/state")]
            first = next(i for i, d in enumerate(states) if d["state"] == "offline")
            return [d for d in states[first:] if d["state"] != "offline"]

        back = reader.wait(after_offline, 30)
        assert back[0]["previous_state"] == "offline"
        reader.wait(lambda r: r.json(prefix=f"{wrapper}/tags/")[-1][1]["quality"] == "good")
    finally:
        runtime.stop()
        reader.close()
        proxy.cut()
