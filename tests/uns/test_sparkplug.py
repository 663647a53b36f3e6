"""The app as a Sparkplug B edge node on a real Mosquitto, read back by a Sparkplug decoder (sparkplug/payload.py).

Real collectors poll the simulated plant's S7 and Modbus servers. The app reaches the broker through a TCP proxy,
so that its connection can be killed (no DISCONNECT: the broker sends the will, NDEATH). A test client plays the
primary host application: its STATE topic, and an NCMD asking for a rebirth.
"""
from __future__ import annotations

import json
import time

import paho.mqtt.client as mqtt
import pytest

from sparkplug.payload import DataType, Metric, Payload, decode, encode
from sparkplug.topics import BD_SEQ, REBIRTH, MessageType, Topic, state_topic
from tests.support.mosquitto import Mosquitto
from tests.support.proxy import FaultProxy
from tests.support.waiting import wait_for
from tests.uns.support import Reader, publishing_runtime, small_plant

GROUP, NODE, HOST = "Plant A", "Site A", "scada"


@pytest.fixture(scope="module")
def plant():
    p = small_plant()
    yield p
    p.stop()


class Decoded:
    """Every Sparkplug message of the node, decoded in order, DATA read with the types of its device's BIRTH."""

    def __init__(self, reader: Reader):
        self.reader = reader

    def all(self) -> list[tuple[Topic, Payload]]:
        types: dict[str | None, dict] = {}
        out = []
        with self.reader._lock:
            raw = list(self.reader.messages)
        for t, body, _ in raw:
            if t.startswith("spBv1.0/STATE/"):
                continue
            topic = Topic.parse(t)
            if topic.message_type in (MessageType.NCMD, MessageType.DCMD):
                continue
            payload = decode(body, types.get(topic.device_id))
            if topic.message_type is MessageType.DBIRTH:
                types[topic.device_id] = {m.name: m.datatype for m in payload.metrics}
            out.append((topic, payload))
        return out

    def of(self, kind: MessageType) -> list[tuple[Topic, Payload]]:
        return [(t, p) for t, p in self.all() if t.message_type is kind]


def metrics(payload: Payload) -> dict[str, Metric]:
    return {m.name: m for m in payload.metrics}


def host_client(broker) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="scada-host")
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def say_state(client: mqtt.Client, online: bool) -> None:
    doc = {"online": online, "timestamp": int(time.time() * 1000)}
    client.publish(state_topic(HOST), json.dumps(doc), qos=1, retain=True).wait_for_publish(5)


def test_births_data_seq_rebirth_primary_host_and_death(tmp_path, plant):
    with Mosquitto() as broker:
        proxy = FaultProxy(broker.port).start()
        reader = Reader(broker.host, broker.port, "spBv1.0/#", client_id="decoder")
        seen = Decoded(reader)
        status = Reader(broker.host, broker.port, "oee/_publisher/#", client_id="status")
        host = host_client(broker)
        runtime = publishing_runtime(tmp_path, plant, f"mqtt://127.0.0.1:{proxy.port}", sparkplug_group=GROUP,
                                     sparkplug_primary_host=HOST)
        try:
            node = runtime.uns.sparkplug
            assert (node.group_id, node.edge_node_id) == (GROUP, NODE)  # the node id: the site's name
            wait_for(lambda: node.connected, timeout=10)
            time.sleep(2.0)  # the collectors produce values meanwhile
            assert seen.all() == [], "published before the primary host was online"

            # The host comes online: NBIRTH (seq 0, bdSeq, Rebirth), a DBIRTH per machine with every metric's type.
            say_state(host, True)
            reader.wait(lambda r: len(seen.of(MessageType.DBIRTH)) == 2)
            (nbirth_topic, nbirth), = seen.of(MessageType.NBIRTH)
            assert str(nbirth_topic) == f"spBv1.0/{GROUP}/NBIRTH/{NODE}" and nbirth.seq == 0
            node_metrics = metrics(nbirth)
            assert node_metrics[BD_SEQ].datatype is DataType.INT64 and node_metrics[BD_SEQ].value == 0
            assert node_metrics[REBIRTH].datatype is DataType.BOOLEAN and node_metrics[REBIRTH].value is False
            births = {t.device_id: p for t, p in seen.of(MessageType.DBIRTH)}
            assert set(births) == {"LINE-013", "LINE-015"}
            catalog = runtime.live.catalog
            for device, payload in births.items():
                m = metrics(payload)
                assert m["State"].datatype is DataType.STRING and m["Counts/Total"].datatype is DataType.INT64
                assert m["OEE/OEE"].datatype is DataType.DOUBLE
                mid = catalog.find_machine(device)
                assert {f"Tags/{catalog.tags[t]['name']}" for t in catalog.tags_by_machine[mid]} <= set(m)
                assert all(x.datatype in (DataType.DOUBLE, DataType.BOOLEAN, DataType.STRING, DataType.INT64)
                           for x in payload.metrics)

            # DDATA on change, and seq: every message after the NBIRTH is the one before plus 1, modulo 256.
            reader.wait(lambda r: len(seen.of(MessageType.DDATA)) >= 20)
            sequence = [p.seq for _, p in seen.all()]
            assert sequence[0] == 0 and all(b == (a + 1) % 256 for a, b in zip(sequence, sequence[1:])), sequence
            for topic, payload in seen.of(MessageType.DDATA):
                birth = metrics(births[topic.device_id])
                for m in payload.metrics:
                    assert m.name in birth and m.datatype is birth[m.name].datatype  # read with the BIRTH's types
                    assert abs(m.timestamp / 1000 - time.time()) < 60  # each metric says when it was read

            # An NCMD that is not Sparkplug, or asks for nothing we know, changes nothing.
            host.publish(f"spBv1.0/{GROUP}/NCMD/{NODE}", b"not protobuf \xff\xff", qos=0)
            other = encode(Payload([Metric("Node Control/Reboot", DataType.BOOLEAN, True)], int(time.time() * 1000)))
            host.publish(f"spBv1.0/{GROUP}/NCMD/{NODE}", other, qos=0)
            time.sleep(1.0)
            assert len(seen.of(MessageType.NBIRTH)) == 1 and node.born

            # Rebirth on NCMD "Node Control/Rebirth": a new NBIRTH with seq 0 and the same bdSeq, then DBIRTHs.
            ncmd = encode(Payload([Metric(REBIRTH, DataType.BOOLEAN, True)], int(time.time() * 1000)))
            host.publish(f"spBv1.0/{GROUP}/NCMD/{NODE}", ncmd, qos=0)
            reader.wait(lambda r: len(seen.of(MessageType.NBIRTH)) == 2)
            reader.wait(lambda r: len(seen.of(MessageType.DBIRTH)) == 4)
            second = seen.of(MessageType.NBIRTH)[1][1]
            assert second.seq == 0 and metrics(second)[BD_SEQ].value == 0

            # The host goes offline: nothing more until it is back; then the births again.
            say_state(host, False)
            wait_for(lambda: not node.host_online, timeout=5)
            # a DDATA sent as the STATE arrived may still be on its way through the proxy and the broker
            time.sleep(0.5)
            before = len(seen.all())
            time.sleep(2.0)
            assert len(seen.all()) == before
            say_state(host, True)
            reader.wait(lambda r: len(seen.of(MessageType.NBIRTH)) == 3)

            # A killed connection: the broker sends the will, NDEATH with the bdSeq of the NBIRTH. The node comes
            # back with bdSeq + 1 in its new NBIRTH.
            proxy.cut()
            reader.wait(lambda r: seen.of(MessageType.NDEATH), 30)
            (death_topic, death), = seen.of(MessageType.NDEATH)
            assert str(death_topic) == f"spBv1.0/{GROUP}/NDEATH/{NODE}"
            assert metrics(death)[BD_SEQ].value == 0 and death.seq is None
            # The JSON publisher's connection died too: its will says so.
            status.wait(lambda r: r.json("oee/_publisher/test-node")[-1][1] == {"online": False}, 10)
            proxy.restore()
            reader.wait(lambda r: len(seen.of(MessageType.NBIRTH)) == 4, 30)
            assert metrics(seen.of(MessageType.NBIRTH)[3][1])[BD_SEQ].value == 1
            time.sleep(6)  # quiet links stay up (the proxy once closed a link idle for 5 s)
            health = runtime.health()["mqtt"]["sparkplug"]
            assert health["born"] and health["bd_seq"] == 1 and health["primary_host_online"], health

            # seq wraps after 255 to 0 (not to a new NBIRTH): the messages since the last NBIRTH, past 256.
            def since_birth():
                every = seen.all()
                last = max(i for i, (t, _) in enumerate(every) if t.message_type is MessageType.NBIRTH)
                return [p.seq for _, p in every[last:]]

            reader.wait(lambda r: len(since_birth()) > 260, 90)
            sequence = since_birth()
            assert sequence[:3] == [0, 1, 2] and sequence[255:258] == [255, 0, 1], sequence[250:260]
            assert all(b == (a + 1) % 256 for a, b in zip(sequence, sequence[1:]))
        finally:
            runtime.stop()
            reader.close()
            status.close()
            host.loop_stop()
            proxy.cut()
