"""The hub's coalescing and the bus's packing and transport, with real objects and a real PostgreSQL."""
from __future__ import annotations

import contextlib
import itertools
import threading
import time

from live.bus import PG_PAYLOAD_LIMIT, LocalBus, PgBus, pack, unpack
from live.hub import Hub


def latest(hub: Hub, **kw):
    return hub.subscribe_latest(merge=("tags",), keyed={"machine": "machine"}, **kw)


def test_latest_value_per_tag_wins_and_what_was_overwritten_is_counted():
    hub = Hub()
    sub = latest(hub)
    hub.publish("tags", {1: [1.0, 10, 0], 2: [1.0, 20, 0]})
    hub.publish("tags", {1: [2.0, 11, 0]})
    hub.publish("machine", {"machine": 7, "state": "running"})
    hub.publish("machine", {"machine": 7, "state": "faulted"})
    hub.publish("machine", {"machine": 8, "state": "idle"})
    batch = sub.take()
    assert batch.merged["tags"] == {1: [2.0, 11, 0], 2: [1.0, 20, 0]}
    assert [m["state"] for m in batch.keyed["machine"].values()] == ["faulted", "idle"]
    assert sub.dropped == 2 and hub.dropped == 2
    assert not sub.take()


def test_events_queue_in_order_and_overflow_drops_the_oldest_counted():
    hub = Hub()
    sub = latest(hub, max_queued=3)
    for i in range(5):
        hub.publish("event", {"machine": 1, "n": i})
    assert [m["n"] for _t, m in sub.take().queued] == [2, 3, 4]
    assert sub.dropped == 2


def test_select_filters_in_the_publishers_thread():
    hub = Hub()
    sub = latest(hub, select=lambda topic, m: {k: v for k, v in m.items() if k < 10} or None)
    hub.publish("tags", {50: [1, 1, 0]})
    assert not sub.event.is_set() and not sub.take()
    hub.publish("tags", {5: [1, 1, 0], 50: [1, 1, 0]})
    assert sub.take().merged["tags"] == {5: [1, 1, 0]}


def test_a_subscriber_that_never_takes_does_not_slow_the_publisher_or_grow():
    hub = Hub()
    stuck = [latest(hub) for _ in range(50)]
    reader = latest(hub)
    got = []
    done = threading.Event()

    def read():
        while not done.is_set():
            reader.event.wait(0.1)
            reader.event.clear()
            b = reader.take()
            if b:
                got.append(len(b.merged.get("tags", {})))

    t = threading.Thread(target=read)
    t.start()
    started = time.perf_counter()
    for i in range(2000):
        hub.publish("tags", {k: [i, i, 0] for k in range(100)})
    elapsed = time.perf_counter() - started
    done.set()
    t.join()
    assert elapsed < 5.0
    for s in stuck:
        assert len(s._merged["tags"]) == 100  # bounded by the number of tags, not by the number of messages
        assert s.dropped == 100 * 1999
    assert got


def test_pack_stays_under_the_postgresql_limit_splits_big_batches_and_round_trips():
    seq = itertools.count(1).__next__
    tags = {str(i): [1795841286.2845738 + i, i * 1.5, 0] for i in range(3000)}
    items = [("tags", tags), ("machine", {"machine": 1, "state": "running"}), ("event", {"machine": 1, "n": 1})]
    payloads, too_big = pack(items, "abc", seq, PG_PAYLOAD_LIMIT)
    assert too_big == 0 and len(payloads) > 10
    assert all(len(p.encode()) < 8000 for p in payloads)
    merged, others = {}, []
    for p in payloads:
        origin, msgs = unpack(p)
        assert origin == "abc"
        for topic, m in msgs:
            if topic == "tags":
                merged.update(m)
            else:
                others.append((topic, m))
    assert merged == tags
    assert others == items[1:]
    # a value JSON cannot carry, or one message too large to split, is counted, never raised
    _p, bad = pack([("event", {"x": float("nan")}), ("event", {"x": "y" * 9000})], "abc", seq, PG_PAYLOAD_LIMIT)
    assert bad == 2


def test_postgresql_bus_delivers_in_order_between_processes_and_skips_its_own(pg_url):
    listener = PgBus(pg_url, "oee_live", listen_data=True, listen_control=False)
    sender = PgBus(pg_url, "oee_live", listen_data=False, listen_control=True)
    got, controls = [], []
    listener.on_data = got.extend
    sender.on_control = controls.append
    ready = threading.Event()
    listener.on_listening = ready.set
    sender_ready = threading.Event()
    sender.on_listening = sender_ready.set
    listener.start()
    sender.start()
    try:
        assert ready.wait(10) and sender_ready.wait(10)
        for i in range(500):
            sender.publish("tags", {str(i % 7): [float(i), i, 0]})
        listener.publish("tags", {"1": [0.0, 0, 0]})  # its own: not delivered back to it
        listener.control({"sync": listener.origin})
        deadline = time.monotonic() + 10
        while len(got) < 500 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [m["0" if i % 7 == 0 else str(i % 7)][1] for i, (_t, m) in enumerate(got)] == list(range(500))
        deadline = time.monotonic() + 5
        while not controls and time.monotonic() < deadline:
            time.sleep(0.05)
        assert controls == [{"sync": listener.origin}]
        assert sender.stats()["sent_messages"] == 500 and sender.stats()["dropped"] == 0
    finally:
        listener.stop()
        sender.stop()


KEY = b"k" * 32


def _local_pair(key: bytes = KEY, client_key: bytes | None = None):
    """The web side (listens) and the collector side (connects), as `python app.py` and its child use them."""
    web = LocalBus("oee_live", key=key, listen_data=True, listen_control=False)
    collector = LocalBus("oee_live", key=client_key or key, address=web.address, listen_data=False,
                         listen_control=True)
    return web, collector


def _started_web(**kw):
    """A local pair with its web side started: (web, collector side not started, what the web side received)."""
    web, collector = _local_pair(**kw)
    got: list = []
    web.on_data = got.extend
    web.start()
    return web, collector, got


@contextlib.contextmanager
def _collector_side(web: LocalBus):
    """A (new) collector process's end of the link, started, stopped after."""
    bus = LocalBus("oee_live", key=KEY, address=web.address, listen_data=False, listen_control=True).start()
    try:
        yield bus
    finally:
        bus.stop()


def _wait(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_local_bus_carries_data_and_control_in_order_on_loopback():
    web, collector = _local_pair()
    got, controls = [], []
    web.on_data = got.extend
    collector.on_control = controls.append
    web.on_listening = lambda: web.control({"sync": web.origin})
    assert web.address[0] == "127.0.0.1"
    web.start()
    collector.start()
    try:
        for i in range(2000):  # no payload limit here: a big tag batch is one frame
            collector.publish("tags", {str(i % 7): [float(i), i, 0]})
        collector.publish("tags", {str(t): [1.0, t, 0] for t in range(5000)})
        assert _wait(lambda: len(got) == 2001)
        assert [m[str(i % 7)][1] for i, (_t, m) in enumerate(got[:2000])] == list(range(2000))
        assert len(got[2000][1]) == 5000
        assert _wait(lambda: controls == [{"sync": web.origin}])
        assert collector.stats()["dropped"] == 0 and web.connections == 1
    finally:
        collector.stop()
        web.stop()


def test_local_bus_refuses_a_peer_without_the_key_and_serves_the_next_one():
    web, intruder, got = _started_web(client_key=b"x" * 32)
    intruder.start()
    try:
        assert _wait(lambda: not web.listen_ok)  # refused, and said so
        intruder.publish("tags", {"1": [0.0, 666, 0]})
        time.sleep(0.5)
        assert got == [] and web.connections == 0
        intruder.stop()
        with _collector_side(web) as collector:
            collector.publish("tags", {"1": [0.0, 7, 0]})
            assert _wait(lambda: got == [("tags", {"1": [0.0, 7, 0]})])
    finally:
        web.stop()


def test_local_bus_a_stalled_peer_does_not_block_the_next_collector():
    """A local process that connects and says nothing must not hang the web side's listener for good."""
    import socket

    web, _, got = _started_web()
    staller = socket.create_connection(web.address)
    try:
        time.sleep(0.2)
        with _collector_side(web) as collector:
            def delivered():
                collector.publish("tags", {"2": [0.0, 1, 0]})  # the collectors publish every second
                return ("tags", {"2": [0.0, 1, 0]}) in got
            assert _wait(delivered, timeout=20)
    finally:
        staller.close()
        web.stop()


def test_local_bus_web_side_takes_a_restarted_collector():
    web, collector, got = _started_web()
    collector.start()
    try:
        collector.publish("tags", {"1": [0.0, 1, 0]})
        assert _wait(lambda: len(got) == 1)
        collector.stop()  # the child died
        with _collector_side(web) as again:
            again.publish("tags", {"1": [1.0, 2, 0]})
            assert _wait(lambda: len(got) == 2, timeout=15)
            assert got[1] == ("tags", {"1": [1.0, 2, 0]}) and web.connections == 2 and web.listen_ok
    finally:
        web.stop()
