"""No request can take the app down: `python app.py` (anonymous viewing on loopback) in a real process, asked what
any viewer can ask: ranges in the year 3000 and 9999, bodies of 300 MB, a foreign Host, a foreign WebSocket Origin.
Each is answered at once, in words, and the web process keeps its memory (read from /proc)."""
from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from datetime import time as clock

import pytest
import websocket
from sqlalchemy.orm import Session

from auth.guards import default_allowed_hosts, host_allowed, normalize_hosts
from db.models import Area, Line, Machine, MachineState, Shift, ShiftCalendar, Site
from tests.test_app import RunningApp

MB = 1024 * 1024


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class PeakMemory:
    """The highest resident memory of a process while the block runs (sampled every 20 ms)."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()

    def __enter__(self):
        self.before = rss_bytes(self.pid)
        self.peak = self.before
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_bytes(self.pid))

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes(self.pid))

    @property
    def growth(self) -> int:
        return self.peak - self.before


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """python app.py --no-demo with the demo's shape where it matters: LINE-001 on a three-shift calendar, in a stop
    that began ten minutes ago and has not ended (the engine looks back to its start)."""
    running = RunningApp(tmp_path_factory.mktemp("limits"), "--no-demo")
    running.wait_healthy()
    now = time.time()
    with Session(running.engine()) as s, s.begin():
        cal = ShiftCalendar(name="3x8", timezone="UTC", shifts=[
            Shift(name="A", start_time=clock(6), end_time=clock(14)),
            Shift(name="B", start_time=clock(14), end_time=clock(22)),
            Shift(name="C", start_time=clock(22), end_time=clock(6))])
        line = Line(area=Area(site=Site(name="Plant", timezone="UTC"), name="Bottling"), name="Line 1")
        s.add_all([cal, line])
        s.flush()
        machine = Machine(machine_id="LINE-001", name="Filler 1", line=line, calendar_id=cal.id)
        s.add(machine)
        s.flush()
        s.add(MachineState(machine_id=machine.id, start=datetime.fromtimestamp(now - 600, timezone.utc), end=None,
                           state="faulted", fault_code=7))
    yield running
    running.stop()


def get(app, path: str, token: str | None = None, timeout: float = 30) -> tuple[int, dict | str, float]:
    started = time.monotonic()
    try:
        status, text = app.get(path, timeout=timeout, token=token)
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode()
    try:
        body = json.loads(text)
    except ValueError:
        body = text
    return status, body, time.monotonic() - started


FAR = [
    ("/api/oee/?machine=LINE-001&start=3000-01-01T00:00:00Z&end=3000-01-01T01:00:00Z", "end"),
    ("/api/oee/?machine=LINE-001&start=9999-12-30T00:00:00Z&end=9999-12-31T23:00:00Z", "end"),
    ("/api/oee/?machine=LINE-001&start=9000-12-30T00:00:00Z&end=9000-12-31T00:00:00Z&bucket=shift", "end"),
    ("/api/oee/?machine=LINE-001&start=0001-01-01T00:00:00Z&end=0001-01-02T00:00:00Z", "end"),
    ("/api/oee/?machine=LINE-001&start=1e308", "start"),
    ("/api/oee/?machine=LINE-001&start=2000-01-01T00:00:00Z", "start"),
    ("/api/oee/?machine=LINE-001&start=2000-01-01T00:00:00Z&end=2000-01-02T00:00:00Z", "end"),  # before any data
    ("/export/oee.csv?machine=LINE-001&start=3000-01-01T00:00:00Z&end=3000-01-01T01:00:00Z", "end"),
    ("/export/oee.csv?machine=LINE-001&start=9999-12-30T00:00:00Z&end=9999-12-31T23:00:00Z", "end"),
    ("/export/shift-report.csv?machine=LINE-001&start=3000-01-01T00:00:00Z&end=3000-01-02T00:00:00Z", "end"),
    ("/export/downtime.csv?machine=LINE-001&start=3000-01-01T00:00:00Z&end=3000-01-02T00:00:00Z", "end"),
    ("/export/tags.csv?machine=LINE-001&start=3000-01-01T00:00:00Z&end=3000-01-02T00:00:00Z", "end"),
    ("/export/oee.csv?machine=LINE-001&start=0001-01-01T00:00:00Z&end=0001-01-02T00:00:00Z", "end"),
]


@pytest.mark.parametrize("path, field", FAR)
def test_a_range_beyond_the_data_answers_400_at_once(app, path, field):
    """Regression: year 3000 answered after 18.7 s with +750 MB in the web process; year 9999 ran past a minute."""
    with PeakMemory(app.proc.pid) as memory:
        status, body, took = get(app, path, timeout=20)
    assert status == 400, body
    assert field in body["fields"], body
    assert any(word in body["message"] for word in ("a day after now", "between 1970", "may cover", "first recorded"))
    assert took < 5, f"{path} took {took:.1f} s"
    assert memory.growth < 100 * MB, f"{path}: the web process grew by {memory.growth / MB:.0f} MB"


def test_the_audit_log_refuses_a_range_in_the_future_too(app):
    status, body, took = get(app, "/api/audit/?start=3000-01-01T00:00:00Z", token=app.token("admin"))
    assert status == 400 and "start" in body["fields"] and "a day after now" in body["message"]
    status, body, _ = get(app, "/api/audit/?end=9999-12-31T23:59:59Z", token=app.token("admin"))
    assert status == 400 and "end" in body["fields"], body


def test_three_at_once_keep_the_process_small(app):
    """Regression: three year-9999 requests at once grew the web process to 6.8 GB."""
    path = FAR[1][0]
    with PeakMemory(app.proc.pid) as memory, ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: get(app, path, timeout=20), range(3)))
    assert [a[0] for a in answers] == [400, 400, 400]
    assert max(a[2] for a in answers) < 5
    assert memory.growth < 100 * MB


def test_a_good_range_still_answers(app):
    status, body, _ = get(app, "/api/oee/?machine=LINE-001&bucket=hour")
    assert status == 200, body
    assert len(body["buckets"]) in (24, 25)


# --- bodies ---------------------------------------------------------------------------------------------------------


def _send_and_read(port: int, head: str, body_parts, *, read_timeout: float = 10) -> tuple[int, str, int]:
    """Send the head and as much of the body as the server takes, then read its answer: (status, text, bytes sent)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=read_timeout)
    sent = 0
    try:
        sock.sendall(head.encode())
        for part in body_parts:
            try:
                sock.sendall(part)
            except OSError:  # the server answered and closed: it reads no more
                break
            sent += len(part)
        data = b""
        while not _complete(data):  # not until the server closes: Werkzeug reads (and drops) what is left first
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    status_line, _, rest = data.decode("latin-1").partition("\r\n")
    return int(status_line.split()[1]), rest, sent


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def test_a_300_mb_callback_is_refused_before_it_is_read(app):
    """Regression: an anonymous 300 MB POST to /_dash-update-component was parsed before it was refused (144 ->
    819 MB). The Content-Length alone now gets 413, before a byte of the body is read."""
    head = (f"POST /_dash-update-component HTTP/1.1\r\nHost: 127.0.0.1:{app.port}\r\n"
            f"Origin: http://127.0.0.1:{app.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {300 * MB}\r\n\r\n")
    with PeakMemory(app.proc.pid) as memory:
        status, text, sent = _send_and_read(app.port, head, [b"[" * (64 * 1024)])
    assert status == 413, text[:500]
    assert "larger than 1,024 KiB" in text
    assert sent <= 64 * 1024  # answered after 64 KB of the 300 MB
    assert memory.growth < 30 * MB  # Werkzeug drops what follows the answer, 10 MB at a time


def test_a_chunked_body_is_cut_at_the_limit(app):
    """No Content-Length: the body is read up to the limit (1 MiB), then 413; the rest is never read."""
    head = (f"POST /_dash-update-component HTTP/1.1\r\nHost: 127.0.0.1:{app.port}\r\n"
            f"Origin: http://127.0.0.1:{app.port}\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"10000\r\n" + b" " * 0x10000 + b"\r\n"  # 64 KiB chunks; 64 of them are 4 MiB
    with PeakMemory(app.proc.pid) as memory:
        status, text, sent = _send_and_read(app.port, head, [chunk] * 64)
    assert status == 413, text[:500]
    assert memory.growth < 30 * MB


def test_the_configuration_import_takes_its_5_mib(app):
    """A signed-in engineer's import may send up to 8 MiB (the YAML is limited to 5 MiB by the import itself)."""
    token = app.token("engineer")
    data = b"# padding\n" * (200 * 1024) + b"version: 1\n"  # 2 MB of YAML: over the 1 MiB of other requests
    req = urllib.request.Request(f"{app.base}/api/config/import?dry_run=true", data=data, method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/yaml"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200
    req = urllib.request.Request(f"{app.base}/api/plc/machines/", data=b" " * (2 * MB), method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=30)
    assert refused.value.code == 413


# --- Host and Origin ------------------------------------------------------------------------------------------------


def _raw_get(port: int, host: str, path: str = "/api/oee/?machine=LINE-001") -> tuple[int, str]:
    head = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    status, text, _ = _send_and_read(port, head, [])
    return status, text


def test_a_foreign_host_header_is_refused(app):
    """Regression: with the default loopback app, Host: evil.example:8050 was served: a DNS-rebinding page could
    read dashboards, exports and live values."""
    status, text = _raw_get(app.port, "evil.example:8050")
    assert status == 400, text[:300]
    assert "host_not_allowed" in text and "evil.example" in text and "--allowed-hosts" in text
    for name in (f"127.0.0.1:{app.port}", f"localhost:{app.port}", "localhost", f"[::1]:{app.port}"):
        status, text = _raw_get(app.port, name)
        assert status == 200, (name, text[:300])


def test_a_websocket_from_a_foreign_origin_is_refused_and_our_own_works(app):
    """Regression: a WebSocket with Origin: http://evil.example got its snapshot."""
    url = f"ws://127.0.0.1:{app.port}/ws/dashboard/"
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(url, origin="http://evil.example", timeout=10)
    assert refused.value.status_code == 403
    with pytest.raises(websocket.WebSocketBadStatusException):
        websocket.create_connection(url, origin="null", timeout=10)
    ws = websocket.create_connection(url, origin=f"http://127.0.0.1:{app.port}", timeout=10)
    try:
        assert json.loads(ws.recv())["type"] == "snapshot"
    finally:
        ws.close()
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:  # the rebinding page itself
        websocket.create_connection(url, origin="http://evil.example:8050", host="evil.example:8050", timeout=10)
    assert refused.value.status_code == 400


@pytest.mark.parametrize("host, allowed, expected", [
    ("evil.example:8050", ("localhost", "127.0.0.1", "::1"), False),
    ("LOCALHOST.:8050", ("localhost", "127.0.0.1", "::1"), True),
    ("[::1]:8050", ("localhost", "127.0.0.1", "::1"), True),
    ("127.0.0.1", ("localhost", "127.0.0.1", "::1"), True),
    ("127.0.0.2:8050", ("localhost", "127.0.0.1", "::1"), False),
    ("oee.plant.local:443", normalize_hosts(["oee.plant.local"]), True),
    ("a.plant.local", normalize_hosts(["*.plant.local"]), True),
    ("plant.local", normalize_hosts([".plant.local"]), True),
    ("evilplant.local", normalize_hosts([".plant.local"]), False),
    ("anything:1", normalize_hosts(["*"]), True),
    ("", ("localhost",), False),
])
def test_which_host_names_are_answered(host, allowed, expected):
    assert host_allowed(host, allowed) is expected


def test_the_default_allowed_hosts_follow_the_listening_address():
    assert default_allowed_hosts("127.0.0.1") == ("localhost", "127.0.0.1", "::1")
    assert default_allowed_hosts("::1") == ("localhost", "127.0.0.1", "::1")
    assert default_allowed_hosts("0.0.0.0") == ("*",)
