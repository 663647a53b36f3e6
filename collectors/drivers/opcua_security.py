"""OPC-UA security: which endpoint, security policy and mode, and user identity a connection uses, checked against
what the server offers (the error says what it does offer); the client certificate and key; and asyncua's own DEBUG
dump of ActivateSession redacted, so that a password never reaches a log."""
from __future__ import annotations

import logging
from typing import Any

from asyncua import Client, ua
from asyncua.crypto import uacrypto

from collectors.base import AUTH_FAILED, PROTOCOL_ERROR, DriverError, settings_file, settings_file_folder
from collectors.drivers.opcua_nodes import MODE_NAMES, MODES, POLICIES, policy_name

# --- asyncua logs the whole ActivateSessionRequest (user name and password included) at DEBUG: redact it --------


class _RedactActivateSession(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(isinstance(a, (ua.ActivateSessionRequest, ua.ActivateSessionParameters,
                                                           ua.UserNameIdentityToken)) for a in args):
            record.args = tuple(f"{a.__class__.__name__}(<redacted>)" if isinstance(
                a, (ua.ActivateSessionRequest, ua.ActivateSessionParameters, ua.UserNameIdentityToken)) else a
                for a in args)
        elif isinstance(record.msg, (ua.ActivateSessionRequest, ua.ActivateSessionParameters)):
            record.msg = f"{record.msg.__class__.__name__}(<redacted>)"
        return True


_REDACT_FILTER = _RedactActivateSession()
for _name in ("asyncua.client.ua_client.UASocketProtocol", "asyncua.client.ua_client.UaClient",
              "asyncua.client.ua_session", "asyncua.client.client"):
    _logger = logging.getLogger(_name)
    if _REDACT_FILTER not in _logger.filters:
        _logger.addFilter(_REDACT_FILTER)


async def negotiate(client: Client, cfg: dict) -> ua.EndpointDescription:
    """GetEndpoints over an unsecured channel; check that the policy, mode and identity wanted are offered;
    configure security. Raises DriverError with what the server does offer."""
    endpoints = await client.connect_and_get_server_endpoints()
    policy_cls = POLICIES[cfg["security_policy"]]
    mode = MODES[cfg["security_mode"]]
    tcp = [ep for ep in endpoints if ep.EndpointUrl.startswith("opc.tcp")] or list(endpoints)
    match = next((ep for ep in tcp if ep.SecurityPolicyUri == policy_cls.URI and ep.SecurityMode == mode), None)
    if match is None:
        offered: dict[str, list[str]] = {}
        for ep in tcp:
            offered.setdefault(policy_name(ep.SecurityPolicyUri), []).append(MODE_NAMES.get(ep.SecurityMode, "?"))
        text = ", ".join(name if modes == ["None"] else f"{name} ({', '.join(sorted(set(modes)))})"
                         for name, modes in offered.items()) or "nothing"
        policy = cfg["security_policy"]
        what = policy if policy == "None" else f"{policy} with mode {cfg['security_mode']}"
        raise DriverError(AUTH_FAILED, f"the server does not offer policy {what}; it offers: {text}",
                          f"The server does not offer policy {what}; it offers: {text}. Set security_policy and "
                          f"security_mode to one of these, or enable {policy} on the server.")
    tokens = {t.TokenType for t in (match.UserIdentityTokens or [])}
    if cfg["username"] and ua.UserTokenType.UserName not in tokens:
        raise DriverError(AUTH_FAILED, "this endpoint does not accept a user name and password",
                          "Remove username and password (anonymous), or choose an endpoint/policy that offers "
                          "user name login.")
    if not cfg["username"] and tokens and ua.UserTokenType.Anonymous not in tokens:
        raise DriverError(AUTH_FAILED, "this endpoint does not accept anonymous sessions",
                          "Set username and password.")
    if cfg["security_policy"] != "None":
        await _set_security(client, cfg, policy_cls, mode, match)
    return match


def _cannot_load(what: str, name: str, also: str = "") -> DriverError:
    """One answer whatever went wrong (missing, unreadable, not a certificate, outside the folder): no hint of
    which files exist on the server."""
    folder = settings_file_folder()
    return DriverError(AUTH_FAILED, f"cannot load the {what} {name!r} from the certificate folder {folder}{also}",
                       f"Put the {what} (PEM or DER) in {folder} under that name, readable by the app.")


async def _set_security(client: Client, cfg: dict, policy_cls, mode, endpoint: ua.EndpointDescription) -> None:
    try:
        cert_path = str(settings_file("certificate", cfg["certificate"]))
        key_path = str(settings_file("private_key", cfg["private_key"]))
        cert = await uacrypto.load_certificate(cert_path)
    except Exception:
        raise _cannot_load("client certificate", cfg["certificate"]) from None
    if not cfg["application_uri"]:
        try:
            from cryptography import x509
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            uris = san.value.get_values_for_type(x509.UniformResourceIdentifier)
            if uris:
                client.application_uri = uris[0]
        except Exception:
            pass
    if cfg["server_certificate"]:
        try:
            server_cert: Any = str(settings_file("server_certificate", cfg["server_certificate"]))
            await uacrypto.load_certificate(server_cert)
        except Exception:
            raise _cannot_load("server certificate", cfg["server_certificate"]) from None
    else:
        peer = uacrypto.x509_from_der(endpoint.ServerCertificate)
        if peer is None:
            raise DriverError(PROTOCOL_ERROR, "the server's endpoint carries no certificate",
                              "Give server_certificate, or check the server's certificate configuration.")
        server_cert = uacrypto.der_from_x509(peer)
    try:
        await client.set_security(policy_cls, cert_path, key_path, cfg["private_key_password"] or None,
                                  server_cert, mode)
    except (OSError, ValueError, TypeError):
        raise _cannot_load("private key", cfg["private_key"], " (or its private_key_password is wrong)") from None
