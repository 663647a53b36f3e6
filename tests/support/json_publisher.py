"""A plain MQTT client that publishes JSON (or any bytes) on topics, as a gateway or a UNS producer does."""
from __future__ import annotations

import json
import queue

import paho.mqtt.client as mqtt


class JsonPublisher:
    def __init__(self, host: str, port: int, username: str | None = None, password: str | None = None):
        self.host, self.port = host, port
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        if username:
            self.client.username_pw_set(username, password)

    def __enter__(self) -> "JsonPublisher":
        answers: queue.Queue = queue.Queue()
        self.client.on_connect = lambda c, u, f, rc, p: answers.put(rc)
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()
        rc = answers.get(timeout=10)
        assert not rc.is_failure, rc
        return self

    def __exit__(self, *exc) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, topic: str, document, retain: bool = False, raw: bool = False) -> None:
        payload = document if raw else json.dumps(document).encode()
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)
