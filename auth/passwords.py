"""Password hashing with argon2id (argon2-cffi, its default parameters: RFC 9106's low-memory profile)."""
from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 10
MAX_LENGTH = 256  # hashing is deliberately slow; a megabyte "password" must not cost more

_hasher = PasswordHasher()
# Verified against when the user name is unknown, so that an unknown name costs as long as a wrong password.
_DUMMY = _hasher.hash("not a password: for timing only")


class PasswordError(ValueError):
    """A password that does not meet the rules; the message says which."""


def check_rules(password: str, field: str = "password") -> None:
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        raise PasswordError(f"{field}: use at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordError(f"{field}: at most {MAX_LENGTH} characters")
    if password.strip() == "":
        raise PasswordError(f"{field}: must not be blank")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify(password_hash: str | None, password: str) -> bool:
    """True when password matches; a missing hash is verified against a dummy (same cost) and fails."""
    if not isinstance(password, str) or len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(password_hash or _DUMMY, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
