"""A client that stops reading: the others keep their pace, what it loses is counted, and it is cut off in the end."""
from __future__ import annotations

import time

from tests.live.helpers import Closed, LiveClient
from tests.test_app import RunningApp

ALL = ",".join(f"LINE-{i:03d}" for i in range(1, 17))


def test_a_client_that_stops_reading_does_not_slow_the_others(tmp_path):
    app = RunningApp(tmp_path, "--time-scale", "60", "--ws-heartbeat", "1", "--ws-stall-timeout", "6")
    slow = fast = None
    try:
        app.wait_healthy()
        time.sleep(3)
        fast = LiveClient(app.port, f"/ws/plc/{ALL}/")
        snap = fast.recv()
        assert len(snap["tags"]) > 1000
        # The slow client asks for the whole snapshot again and again, then never reads: the server's sends to it
        # block as soon as the socket buffers are full.
        slow = LiveClient(app.port, f"/ws/plc/{ALL}/", rcvbuf=4096)
        for _ in range(40):
            slow.send({"type": "snapshot"})
        started = time.monotonic()
        arrivals = []
        while time.monotonic() - started < 5.0:
            msg = fast.recv(timeout=3)
            if msg["type"] == "tag_update":
                arrivals.append(time.monotonic())
        gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
        # Polled every second: updates keep flowing. A fast client held up by the slow one would wait for the
        # stall timeout (6 s); 3 s leaves room for a loaded test machine's pauses without hiding that.
        assert len(arrivals) > 10 and max(gaps) < 3.0, gaps
        live = app.wait_healthy()["live"]
        assert live["client_dropped"] > 0, live  # the slow one's values were coalesced, and counted
        beats = [m for m in fast.received if m["type"] == "heartbeat"]
        assert beats and beats[-1]["dropped"] == 0  # the fast one lost nothing
        # After --ws-stall-timeout without taking data, the server lets the slow client go (its thread is freed).
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            fast.drain(0.5)
            live = app.wait_healthy()["live"]
            if live["clients_evicted"] >= 1:
                break
        assert live["clients_evicted"] == 1 and live["clients"] == 1, live
        assert "took no data" in app.output()
        try:
            while True:
                slow.recv(timeout=5)  # what was buffered, then the end
        except (Closed, TimeoutError, ConnectionError, OSError) as exc:
            assert not isinstance(exc, TimeoutError)
        fast.until(lambda m: m["type"] == "tag_update", timeout=5)
    finally:
        for c in (slow, fast):
            if c is not None:
                c.close()
        app.stop()
