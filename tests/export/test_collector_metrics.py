"""A collector process (--role collector) serves its own /metrics and /healthz with --metrics-port."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from auth import tokens, users
from db.store import open_store
from tests.test_app import RunningApp, free_port


def get(port: int, path: str, token: str | None = None) -> tuple[int, str]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                 headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def cycles_by_connection(text: str) -> dict[str, float]:
    return {s.labels["connection"]: s.value for family in text_string_to_metric_families(text)
            if family.name == "oee_connection_cycles" for s in family.samples if s.name.endswith("_total")}


def wait_for_metrics(port: int, token: str | None = None, timeout: float = 60) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    cycles: dict[str, float] = {}
    while time.monotonic() < deadline:
        try:
            status, body = get(port, "/metrics", token)
        except OSError:
            status, body = 0, ""
        if status == 200:
            cycles = cycles_by_connection(body)
            if len(cycles) == 16 and all(v > 0 for v in cycles.values()):
                return cycles
        time.sleep(0.5)
    raise AssertionError(f"the collector's /metrics did not show 16 polling connections: {cycles}")


def test_a_collector_process_serves_its_polls_on_its_metrics_port(tmp_path):
    port = free_port()
    app = RunningApp(tmp_path, "--role", "collector", "--metrics-port", str(port))
    try:
        first = wait_for_metrics(port)
        status, body = get(port, "/healthz")
        assert status == 200 and json.loads(body)["status"] == "ok"
        later = wait_for_metrics(port)
        while not all(later[c] > first[c] for c in first):  # polls go on and the counters follow them
            time.sleep(0.5)
            later = cycles_by_connection(get(port, "/metrics")[1])
        assert "LINE-001" in later
    finally:
        app.stop()


def test_without_anonymous_viewing_the_collector_metrics_need_a_token(tmp_path):
    data = tmp_path / "data"
    store = open_store(f"sqlite:///{data / 'oee.sqlite3'}")
    users.create(store.engine, "prometheus", "a long enough password 1", "viewer")
    _, secret = tokens.create(store.engine, users.by_name(store.engine, "prometheus"), "scrape")
    store.close()
    port = free_port()
    app = RunningApp(tmp_path, "--role", "collector", "--metrics-port", str(port), "--anonymous-viewing", "off")
    try:
        wait_for_metrics(port, secret)
        status, body = get(port, "/metrics")
        assert status == 401 and "Authorization: Bearer" in body
        assert get(port, "/metrics", secret[:-2] + "xx")[0] == 401
        status, body = get(port, "/healthz")  # public, as on the web side, but only status and version
        assert status == 200 and set(json.loads(body)) == {"status", "version"}
        status, body = get(port, "/healthz", secret)  # a viewer's token: the whole document
        assert status == 200 and {"connections", "database", "problems"} <= set(json.loads(body))
    finally:
        app.stop()


def test_a_busy_metrics_port_is_a_clear_error(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        app = RunningApp(tmp_path, "--role", "collector", "--metrics-port", str(port), "--no-demo")
        try:
            assert app.proc.wait(60) == 2
            assert f"--metrics-port [OEE_METRICS_PORT]: cannot listen on 127.0.0.1:{port}" in app.output()
        finally:
            app.stop()


def test_the_collector_metrics_server_answers_only_its_own_host_names(tmp_path):
    """The same Host rule as the web server (auth/guards.py): a DNS-rebinding page cannot read /metrics."""
    import socket

    from processes.collector_http import CollectorHttp
    from processes.runtime import Runtime
    from processes.settings import Settings

    runtime = Runtime(Settings(data_dir=tmp_path, demo=False, role="web")).start()
    server = CollectorHttp(runtime, "127.0.0.1", 0).start()
    try:
        def status_for(host: str) -> int:
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
                return int(sock.recv(200).split()[1])

        assert status_for("evil.example:9108") == 400
        assert status_for(f"127.0.0.1:{server.port}") in (200, 503)
        assert status_for("localhost") in (200, 503)
    finally:
        server.stop()
        runtime.stop()
