"""The app's master secret and the keys derived from it, one per purpose.

The master secret comes from OEE_SECRET_KEY (at least 32 characters; `python -c "import secrets;
print(secrets.token_urlsafe(32))"` makes one). Without it the app keeps one in <data dir>/secret.key, created on
first start with owner-only permissions, so that the demo needs no setup. Every process of one installation (web
workers, collector processes) must see the same secret: the web side encrypts PLC passwords and signs sessions and
embed links, the collector side decrypts the passwords.

Keys are derived with HKDF-SHA256 and a purpose label, so that a key leaked from one use (say, a session cookie
signer) says nothing about another (the PLC credential cipher).
"""
from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

log = logging.getLogger(__name__)

ENV = "OEE_SECRET_KEY"
FILE_NAME = "secret.key"
MIN_LENGTH = 32


class SecretKeyError(ValueError):
    """The configured secret is unusable; the message says how to fix it."""


def load_master_secret(data_dir: Path, environ: dict | None = None) -> bytes:
    """OEE_SECRET_KEY if set, else <data_dir>/secret.key (created when missing)."""
    environ = os.environ if environ is None else environ
    value = environ.get(ENV, "")
    if value:
        if len(value) < MIN_LENGTH:
            raise SecretKeyError(f"{ENV}: {len(value)} characters is too short; use at least {MIN_LENGTH}, e.g. "
                                 "the output of: python -c \"import secrets; print(secrets.token_urlsafe(32))\"")
        return value.encode()
    path = Path(data_dir) / FILE_NAME
    if path.exists():
        value = path.read_text().strip()
        if len(value) < MIN_LENGTH:
            raise SecretKeyError(f"{path}: the stored secret is too short ({len(value)} characters); restore it "
                                 f"from a backup, or set {ENV}")
        return value.encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    # O_EXCL: two processes starting together must not each write their own secret.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_master_secret(data_dir, environ)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
        f.flush()
        os.fsync(f.fileno())
    log.warning("no %s set: created a secret in %s (keep it with the database; every process of this "
                "installation needs the same one)", ENV, path)
    return value.encode()


def derive_key(master: bytes, purpose: str, length: int = 32) -> bytes:
    """A key for one purpose ('session', 'embed', 'plc-credentials', ...)."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=b"oee-platform", info=purpose.encode()).derive(master)
