"""The test broker helper: it accepts, carries messages, refuses wrong credentials when given users, and stops."""
from __future__ import annotations

import queue
import socket

import paho.mqtt.client as mqtt
import pytest

from tests.support.mosquitto import Mosquitto


def _connect(host, port, user=None, password=None):
    """(reason code of CONNACK, client) for a client that connected (or was refused)."""
    answers: queue.Queue = queue.Queue()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    if user:
        client.username_pw_set(user, password)
    client.on_connect = lambda c, u, flags, rc, props: answers.put(rc)
    client.connect(host, port, keepalive=10)
    client.loop_start()
    try:
        return answers.get(timeout=10), client
    except queue.Empty:
        client.loop_stop()
        raise


def test_a_message_goes_through_and_the_broker_stops(mosquitto):
    host, port = mosquitto
    rc, client = _connect(host, port)
    assert not rc.is_failure
    got: queue.Queue = queue.Queue()
    client.on_message = lambda c, u, msg: got.put((msg.topic, msg.payload))
    client.subscribe("t/#", qos=1)
    client.publish("t/x", b"hello", qos=1).wait_for_publish(5)
    assert got.get(timeout=5) == ("t/x", b"hello")
    client.loop_stop()
    client.disconnect()


def test_users_only_and_wrong_password_refused():
    with Mosquitto(users={"edge": "s3cret"}) as broker:
        rc, client = _connect(broker.host, broker.port, "edge", "s3cret")
        client.loop_stop()
        assert not rc.is_failure
        rc, client = _connect(broker.host, broker.port, "edge", "wrong")
        client.loop_stop()
        assert rc.is_failure, rc
        rc, client = _connect(broker.host, broker.port)
        client.loop_stop()
        assert rc.is_failure
        port = broker.port
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
