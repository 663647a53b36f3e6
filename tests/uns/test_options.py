"""--mqtt-* and --sparkplug-* options: each bad value is an error naming the option, the password never repeated;
topic levels escape what MQTT gives a meaning."""
from __future__ import annotations

import pytest

from processes.settings import SettingsError, from_args
from uns.broker import parse_broker_url
from uns.topics import level, unescape


def test_off_by_default_and_the_url_read_from_the_environment(monkeypatch):
    assert from_args([]).mqtt_url == "" and from_args([]).mqtt_broker is None
    monkeypatch.setenv("OEE_MQTT_URL", "mqtt://edge:p%40ss@broker.plant:1884")
    broker = from_args([]).mqtt_broker
    assert (broker.host, broker.port, broker.username, broker.password) == ("broker.plant", 1884, "edge", "p@ss")
    assert broker.shown == "mqtt://edge:***@broker.plant:1884" and "p@ss" not in repr(broker)
    assert parse_broker_url("mqtts://h").port == 8883 and parse_broker_url("mqtt://h").port == 1883


@pytest.mark.parametrize("argv, option, words", [
    (["--mqtt-url", "http://u:hunter2@h"], "--mqtt-url [OEE_MQTT_URL]", "mqtt://"),
    (["--mqtt-url", "mqtt://u:hunter2@"], "--mqtt-url [OEE_MQTT_URL]", "no host"),
    (["--mqtt-url", "mqtt://u:hunter2@h:99999"], "--mqtt-url [OEE_MQTT_URL]", "not a broker URL"),
    (["--mqtt-url", "mqtt://u:hunter2@h/topic"], "--mqtt-url [OEE_MQTT_URL]", "no path"),
    (["--mqtt-url", "mqtt://h", "--mqtt-ca-file", "/etc/hostname"], "--mqtt-ca-file [OEE_MQTT_CA_FILE]", "mqtts"),
    (["--mqtt-url", "mqtts://h", "--mqtt-ca-file", "/no/such.pem"], "--mqtt-ca-file [OEE_MQTT_CA_FILE]",
     "not a file"),
    (["--mqtt-ca-file", "/etc/hostname"], "--mqtt-ca-file [OEE_MQTT_CA_FILE]", "without --mqtt-url"),
    (["--mqtt-prefix", "oee/+"], "--mqtt-prefix [OEE_MQTT_PREFIX]", "wildcard"),
    (["--mqtt-prefix", "$SYS"], "--mqtt-prefix [OEE_MQTT_PREFIX]", "starts with $"),
    (["--mqtt-prefix", "a//b"], "--mqtt-prefix [OEE_MQTT_PREFIX]", "empty level"),
    (["--mqtt-buffer", "0"], "--mqtt-buffer [OEE_MQTT_BUFFER]", "out of range"),
    (["--mqtt-buffer", "lots"], "--mqtt-buffer [OEE_MQTT_BUFFER]", "whole number"),
    (["--sparkplug-group", "G"], "--sparkplug-group [OEE_SPARKPLUG_GROUP]", "--mqtt-url"),
    (["--mqtt-url", "mqtt://h", "--sparkplug-group", "a/b"], "--sparkplug-group [OEE_SPARKPLUG_GROUP]", "/, + or #"),
    (["--mqtt-url", "mqtt://h", "--sparkplug-node", "n"], "--sparkplug-group [OEE_SPARKPLUG_GROUP]", "needed"),
])
def test_a_bad_value_names_its_option(argv, option, words):
    with pytest.raises(SettingsError) as err:
        from_args(argv)
    assert str(err.value).startswith(option + ":") and words in str(err.value), err.value
    assert "hunter2" not in str(err.value)


@pytest.mark.parametrize("name, topic_level", [
    ("Line 4/5", "Line 4%2F5"), ("Filler #2", "Filler %232"), ("a+b", "a%2Bb"), ("100%", "100%25"),
    ("", "_"), (None, "_"), ("Fülleinheit", "Fülleinheit"),
])
def test_a_name_is_one_level_without_wildcards_and_comes_back(name, topic_level):
    assert level(name) == topic_level
    assert not set("/+#") & set(level(name))
    if name:
        assert unescape(level(name)) == name
