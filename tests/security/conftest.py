"""The app as the security tests see it: create_app on a real Runtime (role web, no demo, SQLite), a plant of one
line with two machines, a user and a token of every role, and Flask test clients that sign in as users do.

Two apps share one database: one listening on loopback (anonymous viewing on by default) and one built with
--host 0.0.0.0 (anonymous viewing off by default; built, never bound)."""
from __future__ import annotations

import json
import urllib.parse

import pytest

from app import create_app
from db.models import USER_ROLES
from processes.runtime import Runtime
from processes.settings import Settings
from tests.support.auth import PASSWORD, make_token, make_user

ORIGIN = "http://localhost"  # the Flask test client's host


class Site:
    def __init__(self, folder, host: str):
        self.runtime = Runtime(Settings(host=host, data_dir=folder, demo=False, role="web")).start()
        self.app = create_app(self.runtime)
        self.server = self.app.server
        self.engine = self.runtime.store.engine

    def client(self, role: str | None = None, *, token: str | None = None, username: str | None = None):
        """A test client: anonymous, signed in as the user of a role (through POST /login), or with a token."""
        c = self.server.test_client()
        if role is not None:
            user = make_user(self.engine, role, username)
            r = c.post("/login", data={"username": user.username, "password": PASSWORD}, headers={"Origin": ORIGIN})
            assert r.status_code == 302, r.data
        if token is not None:
            c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        return c


@pytest.fixture(scope="session")
def sites(tmp_path_factory):
    folder = tmp_path_factory.mktemp("security")  # one data folder: one database and one data/secret.key
    loopback = Site(folder, "127.0.0.1")
    remote = Site(folder, "0.0.0.0")
    engineer = make_token(loopback.engine, "engineer", name="setup")
    c = loopback.client(token=engineer)
    site = c.post("/api/config/sites/", json={"name": "Sec site", "timezone": "UTC"}).get_json()
    area = c.post("/api/config/areas/", json={"name": "Sec area", "site": site["id"]}).get_json()
    line = c.post("/api/config/lines/", json={"name": "Sec line", "area": area["id"]}).get_json()
    for mid in ("SEC-A", "SEC-B"):
        r = c.post("/api/plc/machines/", json={"name": mid, "machine_id": mid, "protocol": "MODBUS",
                                               "ip_address": "127.0.0.1", "port": 1, "enabled": False,
                                               "line": line["id"]})
        assert r.status_code == 201, r.get_json()
    for role in USER_ROLES:
        make_user(loopback.engine, role)
    loopback.line_id = remote.line_id = line["id"]
    yield {"loopback": loopback, "remote": remote}
    loopback.runtime.stop()
    remote.runtime.stop()


@pytest.fixture(scope="session")
def site(sites):
    return sites["loopback"]


# --- Dash callback requests as the browser makes them ---------------------------------------------------------


def _parse_output(spec: str) -> list[dict]:
    """Dash's output string ('..a.children...b.data@hash..' or 'a.children') as the outputs list of a request."""
    parts = spec[2:-2].split("...") if spec.startswith("..") else [spec]
    out = []
    for part in parts:
        ident, prop = part.rsplit(".", 1) if not part.startswith("{") else part.rsplit("}.", 1)
        if part.startswith("{"):
            ident = json.loads(ident + "}")
        out.append({"id": ident, "property": prop})
    return out


def callback_body(site: Site, output_contains: str, values: dict | None = None) -> dict:
    """The request body of the callback whose output mentions output_contains, inputs and state filled from
    values (by component id), as Dash's renderer sends it."""
    deps = site.server.test_client().get("/_dash-dependencies").get_json()
    dep = next(d for d in deps if output_contains in d["output"])
    values = values or {}

    def fill(items):  # pattern-matching ids come as JSON text in the dependencies, as objects in a request
        return [{**i, "id": json.loads(i["id"]) if i["id"].startswith("{") else i["id"],
                 "value": values.get(i["id"])} for i in items]

    outputs = _parse_output(dep["output"])
    return {"output": dep["output"], "outputs": outputs if len(outputs) > 1 else outputs[0],
            "inputs": fill(dep["inputs"]), "state": fill(dep["state"]),
            "changedPropIds": [f"{dep['inputs'][0]['id']}.{dep['inputs'][0]['property']}"]}


def router_body(pathname: str) -> dict:
    """The pages router's request: draw the page at pathname (what a click on a dcc.Link sends)."""
    search = ""
    if "?" in pathname:
        pathname, search = pathname.split("?", 1)
        search = "?" + search
    return {"output": ".._pages_content.children..._pages_store.data..",
            "outputs": [{"id": "_pages_content", "property": "children"}, {"id": "_pages_store", "property": "data"}],
            "inputs": [{"id": "_pages_location", "property": "pathname", "value": pathname},
                       {"id": "_pages_location", "property": "search", "value": search}],
            "changedPropIds": ["_pages_location.pathname"]}


def post_callback(client, body: dict, origin: str | None = ORIGIN):
    headers = {"Origin": origin} if origin else {}
    return client.post("/_dash-update-component", json=body, headers=headers)


def quote(s: str) -> str:
    return urllib.parse.quote(s, safe="")
