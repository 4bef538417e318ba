"""Secrets kept encrypted at rest that must be read back in clear (a brand's signing secret verifies HMACs,
so a hash will not do): AES-256-GCM under the data key.

A sealed value is ``v1:`` + base64url(nonce ‖ ciphertext ‖ tag). The caller's ``context`` (for a brand
signing secret: its brand and channel) is authenticated with it, so a value copied to a row of another context
does not open, any more than an altered one or one sealed under another key. (Rows of one brand and channel are
generations of the same secret; a value copied between them still opens.) The version prefix leaves room for another
cipher or key later without guessing what a stored value is.

The data key is ``CLEARLINE_DATA_KEY`` (32 bytes, base64) or, unset, HKDF-SHA256 of ``secret_key`` under a
fixed label, so a deployment that never set one keeps working; a key used for nothing else either way.
"""

from __future__ import annotations

import base64
import binascii
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from clearline.kit.errors import ClearlineError

VERSION = "v1"
_PREFIX = VERSION + ":"
_NONCE_BYTES = 12  # GCM's standard nonce; random, so a key must seal far fewer than 2**32 values (it does)
_TAG_BYTES = 16
KEY_BYTES = 32
# The HKDF "info" label: the derived key is for sealing data at rest and nothing else (sessions, click ids
# and IP hashes use secret_key by other routes), and a new label gives an unrelated key.
DATA_KEY_LABEL = b"clearline data key v1: secrets at rest"


class UnreadableSecretError(ClearlineError):
    """A sealed value that does not open: wrong data key, altered, or copied from another row."""

    status_code = 500
    code = "unreadable_secret"


def parse_data_key(text: str) -> bytes:
    """``CLEARLINE_DATA_KEY``'s bytes: base64 (standard or URL-safe, padded or not) of exactly 32 bytes."""
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    try:
        key = base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the data key must be base64 (e.g. `openssl rand -base64 32`)") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"the data key must be {KEY_BYTES} bytes in base64, not {len(key)}")
    return key


def derive_data_key(secret_key: str) -> bytes:
    """The data key of a deployment that sets no ``CLEARLINE_DATA_KEY``."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=DATA_KEY_LABEL).derive(secret_key.encode())


def data_key() -> bytes:
    """The configured data key (read from the settings; derived once per distinct setting)."""
    from clearline.config import get_settings

    settings = get_settings()
    configured = settings.data_key.get_secret_value() if settings.data_key is not None else None
    return _key(configured, settings.secret_key)


@lru_cache(maxsize=4)
def _key(configured: str | None, secret_key: str) -> bytes:
    return parse_data_key(configured) if configured else derive_data_key(secret_key)


@lru_cache(maxsize=4)
def _cipher(key: bytes) -> AESGCM:
    return AESGCM(key)


def _associated(context: str) -> bytes:
    return f"{_PREFIX}{context}".encode()


def seal(plaintext: str, *, context: str, key: bytes | None = None) -> str:
    """``plaintext`` encrypted under the data key (or ``key``), bound to ``context``."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = _cipher(key or data_key()).encrypt(nonce, plaintext.encode(), _associated(context))
    return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(stored: str, *, context: str, key: bytes | None = None) -> str:
    """The plaintext of a value `seal` made for ``context``; `UnreadableSecretError` saying why otherwise."""
    if not stored.startswith(_PREFIX):
        raise UnreadableSecretError(
            f"{context}: not a sealed value (no {_PREFIX!r} prefix); was it written before the migration that "
            "encrypts secrets, or by hand?"
        )
    try:
        raw = base64.urlsafe_b64decode(stored[len(_PREFIX) :].encode())
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) < _NONCE_BYTES + _TAG_BYTES:
        raise UnreadableSecretError(f"{context}: the sealed value is malformed (altered or cut short)")
    try:
        plaintext = _cipher(key or data_key()).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _associated(context))
    except InvalidTag:
        raise UnreadableSecretError(
            f"{context}: the sealed value does not decrypt: CLEARLINE_DATA_KEY (or, unset, CLEARLINE_SECRET_KEY) "
            "is not the key it was sealed with, or the value was altered or copied from another row"
        ) from None
    return plaintext.decode()
