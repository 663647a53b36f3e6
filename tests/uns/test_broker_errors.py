"""A broker that is not there, refuses the credentials, or shows a certificate the app does not trust: /healthz
says which, naming the broker (never the password), the app keeps running and collecting; with the right CA file
mqtts:// works. Real Mosquitto brokers, a CA made for the test."""
from __future__ import annotations

import datetime
import ipaddress
import socket

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app import create_app
from tests.support.mosquitto import Mosquitto
from tests.support.waiting import wait_for
from tests.uns.support import publishing_runtime, small_plant

PASSWORD = "right-Pass-77"


@pytest.fixture(scope="module")
def plant():
    p = small_plant()
    yield p
    p.stop()


def make_ca_and_server_cert(folder):
    """(ca.pem, server.pem, server-key.pem): a CA of the test's own and a certificate for 127.0.0.1 it signed."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "uns test CA")])

    def build(subject, public_key, extension, critical):
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name).public_key(public_key)
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=1)).add_extension(extension, critical=critical)
                .sign(ca_key, hashes.SHA256()))

    ca = build(ca_name, ca_key.public_key(), x509.BasicConstraints(ca=True, path_length=None), True)
    cert = build(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]), key.public_key(),
                 x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
    paths = folder / "ca.pem", folder / "server.pem", folder / "server-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def mqtt_problem(web) -> tuple[int, dict, str | None]:
    response = web.get("/healthz")
    body = response.get_json()
    found = [p["error"] for p in body["problems"] if p["component"] == "mqtt publisher"]
    return response.status_code, body, found[0] if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_broker_there(tmp_path, plant):
    port = free_port()
    runtime = publishing_runtime(tmp_path, plant, f"mqtt://oee:{PASSWORD}@127.0.0.1:{port}")
    web = create_app(runtime).server.test_client()
    try:
        status, body, problem = wait_for(lambda: (lambda r: r if r[2] else None)(mqtt_problem(web)), timeout=15)
        assert status == 200 and body["status"] == "degraded"  # serving; the rest works
        assert problem.startswith(f"broker mqtt://oee:***@127.0.0.1:{port}: cannot connect to 127.0.0.1:{port}: "
                                  "Connection refused"), problem
        assert PASSWORD not in web.get("/healthz").get_data(as_text=True)
        wait_for(lambda: runtime.uns.outbox.buffered > 0, timeout=15)  # collecting and buffering meanwhile
        # the PLCs are read all the same (one may still be connecting when the first messages are buffered)
        wait_for(lambda: all(c["state"] == "connected" for c in runtime.health()["connections"]), timeout=20)
    finally:
        runtime.stop()


def test_wrong_password(tmp_path, plant):
    with Mosquitto(users={"oee": PASSWORD}) as broker:
        runtime = publishing_runtime(tmp_path, plant, f"mqtt://oee:wrong-{PASSWORD}@{broker.host}:{broker.port}")
        web = create_app(runtime).server.test_client()
        try:
            _, _, problem = wait_for(lambda: (lambda r: r if r[2] else None)(mqtt_problem(web)), timeout=15)
            assert "the broker refused the connection: Not authorized" in problem, problem
            assert PASSWORD not in web.get("/healthz").get_data(as_text=True)
        finally:
            runtime.stop()


def test_tls_with_and_without_the_ca(tmp_path, plant):
    ca, cert, key = make_ca_and_server_cert(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with Mosquitto(tls=(str(cert), str(key))) as broker:
        untrusted = publishing_runtime(tmp_path / "a", plant, f"mqtts://127.0.0.1:{broker.port}")
        web = create_app(untrusted).server.test_client()
        try:
            _, _, problem = wait_for(lambda: (lambda r: r if r[2] else None)(mqtt_problem(web)), timeout=15)
            assert f"the TLS certificate of 127.0.0.1:{broker.port} is not trusted" in problem, problem
            assert "--mqtt-ca-file" in problem
        finally:
            untrusted.stop()
        trusted = publishing_runtime(tmp_path / "b", plant, f"mqtts://127.0.0.1:{broker.port}",
                                     mqtt_ca_file=str(ca))
        try:
            wait_for(lambda: trusted.uns.outbox.connected and trusted.uns.outbox.published > 10, timeout=15)
            assert trusted.health()["mqtt"]["url"] == f"mqtts://127.0.0.1:{broker.port}"
        finally:
            trusted.stop()
