"""PLC credentials at rest: the secret values of protocol_config (OPC-UA password, private_key_password, any key
that SECRET_KEY_WORDS below calls secret) are stored encrypted, and decrypted only where a driver is
built (the collectors, the wizard's and the API's test and discovery of a saved machine).

A stored secret is an envelope that says what it is: {"$enc": "v1:<base64 of nonce + AES-256-GCM ciphertext>"}.
The key is derive_key(<master secret>, "plc-credentials") (keys/master.py: OEE_SECRET_KEY, else the generated
<data dir>/secret.key); the setting's name is bound in as associated data, so an envelope cannot be moved to
another setting. Every process of one installation needs the same master secret.

A wrong or missing key is a CredentialError naming OEE_SECRET_KEY: the connection concerned reports it, and the
rest of the app carries on. Plain text is never guessed from an envelope, and an envelope never reaches a PLC.
"""
from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keys.master import ENV, SecretKeyError, derive_key, load_master_secret

PURPOSE = "plc-credentials"
MARK = "$enc"
VERSION = "v1:"
NONCE_BYTES = 12


class CredentialError(ValueError):
    """A stored secret that cannot be decrypted (wrong or missing key, damaged value), or a secret that cannot be
    encrypted (no usable key). field is the protocol_config key; the message says how to fix it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"protocol_config.{field}: {message}")
        self.field = field
        self.message = message


SECRET_KEY_WORDS = ("password", "passwd", "secret", "token")  # protocol_config keys whose values are never shown


def is_secret_key(key) -> bool:
    """A protocol_config key whose value is a secret: stored encrypted, never shown, masked in the audit log."""
    return any(w in str(key).lower() for w in SECRET_KEY_WORDS)


def is_sealed(value) -> bool:
    """An encrypted envelope as stored: {"$enc": "v1:..."}."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(MARK), str)


def has_plain_secrets(config: dict | None) -> bool:
    """True when protocol_config holds a secret in plain text (to be sealed)."""
    return any(is_secret_key(k) and v not in (None, "") and not is_sealed(v) for k, v in (config or {}).items())


def has_sealed(config: dict | None) -> bool:
    return any(is_sealed(v) for v in (config or {}).values())


class Credentials:
    """Seals and opens the secrets of a protocol_config with one key. Build it with from_settings() or
    from_data_dir(); unavailable(reason) stands in when no usable key could be loaded."""

    def __init__(self, key: bytes | None, *, problem: str | None = None):
        if key is not None and len(key) != 32:
            raise ValueError("the PLC credential key must be 32 bytes (AES-256)")
        self._aead = AESGCM(key) if key is not None else None
        self.problem = problem

    @classmethod
    def from_data_dir(cls, data_dir: str | os.PathLike, environ: dict | None = None) -> "Credentials":
        try:
            master = load_master_secret(Path(data_dir), environ)
        except (SecretKeyError, OSError) as exc:
            return cls.unavailable(f"no usable key ({exc}); set {ENV} to the installation's secret")
        return cls(derive_key(master, PURPOSE))

    @classmethod
    def from_settings(cls, settings, environ: dict | None = None) -> "Credentials":
        return cls.from_data_dir(settings.data_dir, environ)

    @classmethod
    def unavailable(cls, reason: str) -> "Credentials":
        return cls(None, problem=reason)

    def __repr__(self) -> str:  # never the key
        return f"Credentials({'unavailable: ' + self.problem if self._aead is None else 'AES-256-GCM'})"

    # --- one value ---

    def encrypt(self, field: str, value) -> dict:
        if self._aead is None:
            raise CredentialError(field, f"cannot be stored encrypted: {self.problem}")
        nonce = os.urandom(NONCE_BYTES)
        plain = json.dumps(value).encode()
        sealed = self._aead.encrypt(nonce, plain, field.encode())
        return {MARK: VERSION + base64.b64encode(nonce + sealed).decode()}

    def decrypt(self, field: str, envelope: dict):
        text = envelope.get(MARK, "") if isinstance(envelope, dict) else ""
        if not text.startswith(VERSION):
            raise CredentialError(field, f"stored in an unknown format ({text.split(':', 1)[0]!r}); give the "
                                         f"{field} again")
        if self._aead is None:
            raise CredentialError(field, f"cannot be decrypted: {self.problem}")
        try:
            raw = base64.b64decode(text[len(VERSION):], validate=True)
            plain = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], field.encode())
        except (InvalidTag, ValueError):
            raise CredentialError(field, f"cannot be decrypted with this installation's key: {ENV} (or "
                                         "data/secret.key) differs from the one it was stored with; set the "
                                         f"original {ENV}, or give the {field} again") from None
        return json.loads(plain)

    # --- a whole protocol_config ---

    def seal(self, config: dict | None) -> dict:
        """config with every plain secret value encrypted; envelopes and other values unchanged."""
        out = dict(config or {})
        for key, value in out.items():
            if is_secret_key(key) and value not in (None, "") and not is_sealed(value):
                out[key] = self.encrypt(key, value)
        return out

    def open(self, config: dict | None) -> dict:
        """config with every envelope decrypted, for a driver. Raises CredentialError naming the field."""
        out = dict(config or {})
        for key, value in out.items():
            if is_sealed(value):
                out[key] = self.decrypt(key, value)
        return out
