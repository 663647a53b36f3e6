"""The MQTT (plain JSON topics) driver against a real Mosquitto and a plain JSON publisher: connection test,
discovery under a filter, values by JSON pointer as they are published, bad payloads, wildcards, credentials."""
from __future__ import annotations

import time

import pytest

from collectors.base import AUTH_FAILED, BAD, CANNOT_CONNECT, GOOD, ConfigError, ConnectionSettings, DriverError, \
    TagSpec
from collectors.drivers.mqtt_json import MqttJsonDriver, convert, split_address
from tests.collectors.test_sparkplug_driver import Collected
from tests.support.json_publisher import JsonPublisher
from tests.support.mosquitto import Mosquitto
from tests.support.waiting import wait_for

FILLER = "plant/line4/filler"


def _driver(host, port, **config) -> MqttJsonDriver:
    return MqttJsonDriver(ConnectionSettings("MQTT", host, port, config, timeout_s=3.0))


@pytest.fixture
def broker():
    with Mosquitto() as b:
        yield b


def test_discover_lists_topics_and_json_fields_under_the_filter(broker):
    with JsonPublisher(broker.host, broker.port) as pub:
        pub.publish(FILLER, {"counts": {"good": 10, "reject": 1}, "state": 1, "running": True, "name": "F4"},
                    retain=True)
        pub.publish("plant/line4/temp", 21.5, retain=True)
        pub.publish("other/x", {"a": 1}, retain=True)
        pub.publish("plant/line4/raw", b"\x00\x01not json", retain=True, raw=True)
        found = {t.address: t for t in _driver(broker.host, broker.port, topic_filter="plant/#").discover(seconds=1)}
    assert set(found) == {FILLER, "plant/line4/temp", "plant/line4/raw"}
    fields = {c.address: c for c in found[FILLER].children}
    assert fields[f"{FILLER}#/counts/good"].value == 10 and fields[f"{FILLER}#/counts/good"].data_type == "INT32"
    assert fields[f"{FILLER}#/running"].data_type == "BOOL" and fields[f"{FILLER}#/name"].data_type == "STRING"
    assert found["plant/line4/temp"].data_type == "DOUBLE" and found["plant/line4/temp"].value == 21.5
    assert "not JSON" in found["plant/line4/raw"].description


def test_values_by_pointer_arrive_as_published(broker):
    tags = [TagSpec(1, f"{FILLER}#/counts/good", "DINT", "good"), TagSpec(2, f"{FILLER}#/state", "INT32", "state"),
            TagSpec(3, f"{FILLER}#/running", "BOOL", "running"), TagSpec(4, "plant/line4/temp", "REAL", "temp"),
            TagSpec(5, f"{FILLER}#/missing", "INT32", "missing"), TagSpec(6, f"{FILLER}#/name", "INT32", "name")]
    with JsonPublisher(broker.host, broker.port) as pub:
        pub.publish(FILLER, {"counts": {"good": 10}, "state": 1, "running": True, "name": "F4"}, retain=True)
        driver = _driver(broker.host, broker.port)
        driver.plan(tags)
        seen = Collected(driver)
        driver.connect()
        try:
            wait_for(lambda: seen.latest(1), timeout=5)  # the retained message, at once
            assert (seen.latest(1).value, seen.latest(2).value, seen.latest(3).value) == (10, 1, True)
            assert seen.latest(5).quality == BAD and "no /missing in the payload on plant/line4/filler" in \
                seen.latest(5).reason
            assert seen.latest(6).quality == BAD and "not a number" in seen.latest(6).reason
            started = time.monotonic()
            pub.publish("plant/line4/temp", 22.25)
            wait_for(lambda: seen.latest(4) and seen.latest(4).value == 22.25, timeout=5, interval=0.005)
            assert time.monotonic() - started < 1.0
            for i in range(11, 40):
                pub.publish(FILLER, {"counts": {"good": i}, "state": 1, "running": True, "name": "F4"})
            wait_for(lambda: seen.latest(1).value == 39, timeout=5)
            goods = [b[1].value for b in seen.readings if 1 in b]
            assert goods[-29:] == list(range(11, 40))
            pub.publish(FILLER, b"{broken", raw=True)
            wait_for(lambda: seen.latest(1).quality == BAD, timeout=5)
            assert "the payload on plant/line4/filler is not JSON" in seen.latest(1).reason
            assert seen.latest(4).quality == GOOD  # the other topic keeps going
            pub.publish(FILLER, {"counts": {"good": 41}, "state": 2, "running": False, "name": "F4"})
            wait_for(lambda: seen.latest(1).quality == GOOD and seen.latest(1).value == 41, timeout=5)
        finally:
            driver.close()


def test_broker_gone_is_a_link_error(broker):
    driver = _driver(broker.host, broker.port)
    driver.plan([TagSpec(1, "a/b", "INT32", "x")])
    seen = Collected(driver)
    driver.connect()
    broker.stop()
    wait_for(lambda: seen.errors, timeout=10)
    assert seen.errors[-1].kind == CANNOT_CONNECT and "lost" in seen.errors[-1].message
    assert not seen.errors[-1].link_up
    driver.close()


def test_connection_test_with_a_probe_address(broker):
    with JsonPublisher(broker.host, broker.port) as pub:
        pub.publish(FILLER, {"counts": {"good": 7}}, retain=True)
        result = _driver(broker.host, broker.port).test_connection(probe_address=f"{FILLER}#/counts/good")
        assert result.ok, result.as_dict()
        assert [s.name for s in result.steps] == ["tcp", "handshake", "subscribe", "probe_read"]
        assert "= '7'" in result.steps[-1].detail
        bad = _driver(broker.host, broker.port).test_connection(probe_address=f"{FILLER}#/counts/nope")
        assert not bad.ok and bad.error == "invalid_address" and "/counts/nope" in bad.steps[-1].detail
        silent = _driver(broker.host, broker.port).test_connection(probe_address="nobody/here")
        assert not silent.ok and silent.error == "timeout" and "nobody/here" in silent.steps[-1].detail


def test_wrong_credentials_refused():
    with Mosquitto(users={"reader": "pw"}) as broker:
        result = _driver(broker.host, broker.port, username="reader", password="bad").test_connection()
        assert not result.ok and result.error == AUTH_FAILED and result.steps[-1].name == "handshake"
        with pytest.raises(DriverError) as err:
            d = _driver(broker.host, broker.port)
            d.plan([])
            d.connect()
        assert err.value.kind == AUTH_FAILED
        assert _driver(broker.host, broker.port, username="reader", password="pw").test_connection().ok


@pytest.mark.parametrize("address, message", [
    ("plant/+/filler", "wildcard"), ("plant/#", "wildcard subscription"), ("#", "wildcard subscription"),
    ("plant/line4#counts", "JSON pointer starting with '/'"), ("", "a topic"), ("plant/a+b#/x", "wildcard"),
])
def test_addresses_with_wildcards_are_refused(address, message):
    with pytest.raises(ConfigError) as err:
        MqttJsonDriver.parse_address(address, "INT32")
    assert err.value.field == "address" and message in err.value.message


def test_pointer_escapes_and_conversion():
    assert split_address("a/b#/x~1y/0/~0z") == ("a/b", ["x/y", "0", "~z"], "/x~1y/0/~0z")
    assert split_address("a/b") == ("a/b", None, "")
    assert convert("12", "INT32") == 12 and convert(3.0, "INT64") == 3 and convert(1, "BOOL") is True
    for value, kind in [(3.5, "INT32"), (2**40, "INT32"), ({"a": 1}, "DOUBLE"), ("x", "BOOL"), (None, "INT32")]:
        with pytest.raises(ValueError):
            convert(value, kind)


def test_bad_topic_filter_names_the_field():
    for bad in ["plant/#/x", "plant/a+", ""]:
        with pytest.raises(ConfigError) as err:
            MqttJsonDriver.validate_config({"topic_filter": bad})
        assert err.value.field == "topic_filter"
