"""Shared by the configuration tests: one simulated plant (one machine per protocol) and one running app per
module, and a small JSON client. Every machine the tests save points at 127.0.0.1."""
from __future__ import annotations

import dataclasses
import json
import urllib.error
import urllib.request

import pytest

from plant import Plant, default_layout
from tests.support.waiting import wait_for  # noqa: F401 (the config tests import it from here)
from tests.test_app import RunningApp

ONE_OF_EACH = {"ETHERNET_IP": "LINE-001", "OPCUA": "LINE-011", "S7": "LINE-013", "MODBUS": "LINE-015"}


@pytest.fixture(scope="module")
def plant():
    layout = default_layout()
    ids = set(ONE_OF_EACH.values())
    p = Plant(dataclasses.replace(layout, machines=tuple(m for m in layout.machines if m.id in ids)), seed=3).start()
    yield p
    p.stop()


def endpoint(plant, protocol: str) -> dict:
    return next(e for e in plant.endpoints() if e["protocol"] == protocol)


class Client:
    """JSON over HTTP with an API token (Authorization: Bearer), as a script uses the API."""

    def __init__(self, port: int, token: str | None = None):
        self.base = f"http://127.0.0.1:{port}"
        self.token = token

    def call(self, method: str, path: str, body=None, *, raw: bytes | None = None,
             content_type: str = "application/json", timeout: float = 60) -> tuple[int, object]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        headers = {"Content-Type": content_type} if data is not None else {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, text = resp.status, resp.read().decode()
                ctype = resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            status, text, ctype = exc.code, exc.read().decode(), exc.headers.get("Content-Type", "")
        return status, (json.loads(text) if "json" in ctype and text else text)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.call("PUT", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self.call("PATCH", path, body, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """`python app.py --no-demo` with its collectors: what the wizard and the API configure, it polls."""
    folder = tmp_path_factory.mktemp("app")
    running = RunningApp(folder, "--no-demo")
    running.wait_healthy()
    running.client = Client(running.port, running.token("engineer"))
    running.data_db = folder / "data" / "oee.sqlite3"
    yield running
    running.stop()


