"""TLS to the broker: a Mosquitto with a TLS listener and a certificate of its own CA. Without that CA the broker's
certificate is refused (auth_failed, saying so); with the CA's file named in the certificate folder it is taken; a
client without TLS on the TLS port, and a CA file that is not a certificate, get errors that say what is wrong."""
from __future__ import annotations

import datetime
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from collectors.base import AUTH_FAILED, ConfigError, ConnectionSettings, set_settings_file_folder, \
    settings_file_folder
from collectors.drivers.mqtt_json import MqttJsonDriver
from collectors.drivers.sparkplug import SparkplugDriver
from tests.support.mosquitto import Mosquitto


def _pem(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_pki(folder):
    """A CA, and a server certificate for 127.0.0.1 signed by it. Returns (ca file, server cert file, key file)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test broker CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    (folder / "broker-ca.pem").write_bytes(_pem(ca))
    (folder / "server.pem").write_bytes(_pem(cert))
    (folder / "server-key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                               serialization.PrivateFormat.TraditionalOpenSSL,
                                                               serialization.NoEncryption()))
    (folder / "not-a-cert.pem").write_text("hello")
    return folder / "broker-ca.pem", folder / "server.pem", folder / "server-key.pem"


@pytest.fixture
def tls_broker(tmp_path):
    before = settings_file_folder()
    set_settings_file_folder(tmp_path)  # the app's <data dir>/certs
    _ca, cert, key = make_pki(tmp_path)
    with Mosquitto(tls=(str(cert), str(key))) as broker:
        yield broker
    set_settings_file_folder(before)


def _mqtt(broker, **config):
    return MqttJsonDriver(ConnectionSettings("MQTT", broker.host, broker.port, config, timeout_s=2.0))


def test_the_brokers_certificate_is_checked(tls_broker):
    refused = _mqtt(tls_broker, tls=True).test_connection()
    assert not refused.ok and refused.error == AUTH_FAILED
    assert "TLS certificate of 127.0.0.1" in refused.steps[-1].detail and refused.steps[-1].suggestion
    ok = _mqtt(tls_broker, tls_ca_file="broker-ca.pem").test_connection()
    assert ok.ok, ok.as_dict()
    assert "over TLS" in ok.steps[1].detail
    spb = SparkplugDriver(ConnectionSettings("SPARKPLUG_B", tls_broker.host, tls_broker.port,
                                             {"group_id": "g", "edge_node_id": "e", "tls": True}, timeout_s=2.0))
    assert spb.test_connection().error == AUTH_FAILED


def test_plain_mqtt_on_a_tls_port_and_a_bad_ca_file(tls_broker):
    plain = _mqtt(tls_broker).test_connection()
    assert not plain.ok and plain.error in ("timeout", "cannot_connect"), plain.as_dict()
    assert plain.steps[-1].name == "handshake"
    bad_ca = _mqtt(tls_broker, tls_ca_file="not-a-cert.pem").test_connection()
    assert not bad_ca.ok and bad_ca.error == AUTH_FAILED and "not-a-cert.pem" in bad_ca.steps[-1].detail
    with pytest.raises(ConfigError) as err:
        MqttJsonDriver.validate_config({"tls_ca_file": "/etc/ssl/certs/ca-certificates.crt"})
    assert err.value.field == "tls_ca_file"
