"""The API against its own OpenAPI document, with schemathesis: generated requests for every operation, and every
answer checked against the document (status codes, content types, response schemas, no server errors).

The app runs as role `web`: it has no collectors, so the machines schemathesis invents (at whatever address) are
stored but never polled. The operations that reach out to a PLC (test_connection, discover_tags, test-connection)
are left out here for the same reason (they would dial invented addresses); test_api.py runs them against the
simulated plant on 127.0.0.1 and checks their answers against this same document below.
"""
from __future__ import annotations

import jsonschema
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.config.conftest import Client, endpoint
from tests.test_app import RunningApp

PLC_CALLS = r"test_connection|discover_tags|test-connection"


@pytest.fixture(scope="module")
def web_app(tmp_path_factory):
    running = RunningApp(tmp_path_factory.mktemp("web"), "--no-demo", "--role", "web")
    running.wait_healthy()
    running.client = Client(running.port, running.token("admin"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def api_schema(web_app):
    return schemathesis.openapi.from_url(f"http://127.0.0.1:{web_app.port}/api/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(scope="module")
def auth_header(web_app):
    return {"Authorization": f"Bearer {web_app.token('admin')}"}


# Revoking tokens at random would revoke the one this test calls with; tests/security covers DELETE there.
@schema.exclude(path_regex=PLC_CALLS).exclude(method="DELETE", path_regex="/api/auth/tokens/").parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case, auth_header):
    case.call_and_validate(headers=auth_header, checks=[
        schemathesis.checks.not_a_server_error,
        schemathesis.checks.status_code_conformance,
        schemathesis.checks.content_type_conformance,
        schemathesis.checks.response_schema_conformance,
    ])


def test_the_document_is_valid_openapi(web_app):
    from openapi_spec_validator import validate

    status, doc = web_app.client.get("/api/openapi.json")
    assert status == 200
    validate(doc)
    for path in ("/api/plc/machines/", "/api/plc/machines/{id}/", "/api/plc/machines/{id}/test_connection/",
                 "/api/plc/machines/{id}/discover_tags/", "/api/plc/machines/{id}/reload_connection/",
                 "/api/plc/test-connection/", "/api/plc/machines/{id}/tags/", "/api/config/export",
                 "/api/config/import", "/api/config/sites/", "/api/config/calendars/{id}/"):
        assert path in doc["paths"], path
    assert set(doc["paths"]["/api/plc/machines/{id}/"]) == {"get", "put", "patch", "delete"}


def _check(doc: dict, path: str, method: str, status: int, body) -> None:
    """Validate one real answer against the schema the document gives for it."""
    responses = doc["paths"][path][method]["responses"]
    ref = responses[str(status)]["content"]["application/json"]["schema"]
    resolver = {"$ref": ref["$ref"], "components": doc["components"]} if "$ref" in ref else ref
    jsonschema.validate(body, resolver)


def test_plc_calls_answer_as_documented(web_app, plant):
    """The operations left out above, against the simulated plant: their answers match the document."""
    api = web_app.client
    _, doc = api.get("/api/openapi.json")
    for protocol in ("ETHERNET_IP", "S7", "OPCUA", "MODBUS"):
        ep = endpoint(plant, protocol)
        conn = {"protocol": protocol, "ip_address": ep["host"], "port": ep["port"],
                "protocol_config": ep["protocol_config"]}
        status, result = api.post("/api/plc/test-connection/", conn)
        _check(doc, "/api/plc/test-connection/", "post", status, result)
        assert result["ok"], result
        status, m = api.post("/api/plc/machines/", {**conn, "name": protocol, "machine_id": f"DOC-{protocol}"})
        assert status == 201
        path = f"/api/plc/machines/{m['id']}"
        status, result = api.post(path + "/test_connection/")
        _check(doc, "/api/plc/machines/{id}/test_connection/", "post", status, result)
        status, found = api.post(path + "/discover_tags/", {"count": 40} if protocol == "MODBUS" else None)
        assert status == 200, found
        _check(doc, "/api/plc/machines/{id}/discover_tags/", "post", status, found)
    status, result = api.post("/api/plc/test-connection/", {"protocol": "S7", "ip_address": "127.0.0.1", "port": 1})
    _check(doc, "/api/plc/test-connection/", "post", status, result)
    status, answer = api.post("/api/plc/test-connection/", {"protocol": "S7", "port": 0})
    _check(doc, "/api/plc/test-connection/", "post", status, answer)
    status, _ = api.post("/api/plc/machines/", {"protocol": "S7", "ip_address": "127.0.0.1", "port": 1,
                                                 "name": "gone", "machine_id": "DOC-GONE"})
    status, answer = api.post("/api/plc/machines/DOC-GONE/discover_tags/")
    assert status == 502
    _check(doc, "/api/plc/machines/{id}/discover_tags/", "post", status, answer)
