"""The API against its own OpenAPI document, with schemathesis: generated requests for every operation of the
document, on SQLite and on PostgreSQL, and every answer checked against the document (status codes, content types,
response schemas, no server errors).

The app runs as role `web`: it has no collectors, so the machines schemathesis invents are stored but never
polled. Every address it invents is moved to 127.0.0.1, port 1 (closed) before the request goes out, so the
operations that reach out to a PLC (test_connection, discover_tags, test-connection) run too, and fail fast, on
this machine only; test_plc_calls_answer_as_documented runs them against the simulated plant. Revoking tokens runs
too, on any token but the one this test calls with (its id is moved out of the way).
"""
from __future__ import annotations

import uuid

import jsonschema
import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.conftest import PG_ADMIN_URL, _drop
from tests.config.conftest import Client, endpoint
from tests.test_app import RunningApp

CLOSED_PORT = 1  # nothing listens there: a PLC call fails at once with "connection refused"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def web_app(request, tmp_path_factory):
    args = ["--no-demo", "--role", "web"]
    database = None
    if request.param == "postgresql":
        database = f"oee_openapi_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        # No live bus: with none, a web process does not wait 10 s after every write for collector processes
        # that are not there to answer (collectors.service.reload_collectors).
        args += ["--database-url", f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{database}", "--live-bus", "off"]
    running = RunningApp(tmp_path_factory.mktemp(f"web-{request.param}"), *args)
    try:
        running.wait_healthy()
        running.client = Client(running.port, running.token("admin"))
        yield running
    finally:
        running.stop()
        if database:
            _drop(PG_ADMIN_URL, database)


@pytest.fixture(scope="module")
def api_schema(web_app):
    return schemathesis.openapi.from_url(f"http://127.0.0.1:{web_app.port}/api/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(scope="module")
def auth_header(web_app):
    return {"Authorization": f"Bearer {web_app.token('admin')}"}


@pytest.fixture(scope="module")
def own_token_ids(web_app, auth_header):
    status, listed = web_app.client.get("/api/auth/tokens/")
    assert status == 200, listed
    return {t["id"] for t in listed["results"]}


def _loopback_only(value):
    """The body with every PLC address this test could send moved to 127.0.0.1, port 1: nothing leaves the host."""
    if isinstance(value, dict):
        out = {k: _loopback_only(v) for k, v in value.items()}
        if "ip_address" in out or "protocol" in out:
            out["ip_address"], out["port"] = "127.0.0.1", CLOSED_PORT
        if isinstance(out.get("endpoint"), str):
            out["endpoint"] = f"opc.tcp://127.0.0.1:{CLOSED_PORT}/"
        return out
    if isinstance(value, list):
        return [_loopback_only(v) for v in value]
    return value


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case, auth_header, own_token_ids):
    if case.body is not None and not isinstance(case.body, (str, bytes)):
        case.body = _loopback_only(case.body)
    if case.path.startswith("/api/auth/tokens/") and case.method == "DELETE":
        if str(case.path_parameters.get("id")) in {str(i) for i in own_token_ids}:
            case.path_parameters["id"] = 10**9  # revoking the token this test calls with would end the run
    case.call_and_validate(headers=auth_header, checks=[
        schemathesis.checks.not_a_server_error,
        schemathesis.checks.status_code_conformance,
        schemathesis.checks.content_type_conformance,
        schemathesis.checks.response_schema_conformance,
    ])


def _with_nul(value):
    """The value with a NUL character added to its first string (depth first); (value, whether one was)."""
    if isinstance(value, str):
        return value + "\x00", True
    if isinstance(value, dict):
        for key, item in value.items():
            changed, done = _with_nul(item)
            if done:
                return {**value, key: changed}, True
    if isinstance(value, list):
        for i, item in enumerate(value):
            changed, done = _with_nul(item)
            if done:
                return value[:i] + [changed] + value[i + 1:], True
    return value, False


@schema.parametrize()
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
def test_a_nul_in_any_text_is_refused_never_a_server_error(case, auth_header, own_token_ids):
    """PostgreSQL refuses NUL in text (psycopg.DataError: a 500 before); SQLite stored it. Every operation, with a
    NUL in the first text of its body, else of its query, else of its path, answers as its document says."""
    if case.body is not None and not isinstance(case.body, (str, bytes)):
        case.body = _loopback_only(case.body)
    done = False
    for part in ("body", "query", "path_parameters"):
        value = getattr(case, part, None)
        if value is not None and not isinstance(value, bytes):
            changed, done = _with_nul(value)
            if done:
                setattr(case, part, changed)
                break
    if case.path.startswith("/api/auth/tokens/") and case.method == "DELETE":
        if str(case.path_parameters.get("id")).rstrip("\x00") in {str(i) for i in own_token_ids}:
            case.path_parameters["id"] = 10**9
    case.call_and_validate(headers=auth_header, checks=[
        schemathesis.checks.not_a_server_error,
        schemathesis.checks.status_code_conformance,
        schemathesis.checks.content_type_conformance,
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
