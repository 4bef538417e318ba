"""Password hashing (argon2), API-key and token hashing, constant-time comparisons."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def hash_token(token: str) -> str:
    """API keys and session tokens are high-entropy, so a plain SHA-256 is the right hash for lookup."""
    return hashlib.sha256(token.encode()).hexdigest()


def constant_time_equal(a: str | bytes, b: str | bytes) -> bool:
    if isinstance(a, str):
        a = a.encode()
    if isinstance(b, str):
        b = b.encode()
    return hmac.compare_digest(a, b)


def salted_hash(value: str, *, salt: str) -> str:
    """Personal data (IPs, e-mails) is kept only as a keyed hash."""
    return hmac.new(salt.encode(), value.strip().lower().encode(), hashlib.sha256).hexdigest()
