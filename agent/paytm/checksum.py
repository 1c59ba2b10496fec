"""Paytm's checksum ("signature", "CHECKSUMHASH"), byte-compatible with `paytmchecksum` 1.7.

    input ─► input + "|" + salt ─► sha256 hex (64) + salt (4) = 68 ASCII chars
          ─► PKCS#7 pad to 80 bytes ─► AES-128-CBC(key, IV "@@@@&&&&####$$$$")
          ─► base64 ─► 108 chars

Two ways to form the input (reference §2.2):
- *json* mode: the caller's string, byte for byte (PG APIs sign the exact body text);
- *params* mode: values of the dict sorted by key, joined with "|", where None and
  "null" (any case) become "".

Verification never raises: anything malformed is simply "not valid".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import random
from collections.abc import Mapping
from enum import StrEnum

from Crypto.Cipher import AES

from agent.errors import SecretError

IV = b"@@@@&&&&####$$$$"
KEY_LENGTH = 16  # Paytm merchant keys are 16 characters: AES-128
SALT_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxyz"
SALT_LENGTH = 4
CHECKSUM_LENGTH = 108  # base64 of 80 bytes
_PLAINTEXT_LENGTH = 68  # 64 hex + 4 salt
_CIPHERTEXT_LENGTH = 80
_PAD = bytes([_CIPHERTEXT_LENGTH - _PLAINTEXT_LENGTH]) * (_CIPHERTEXT_LENGTH - _PLAINTEXT_LENGTH)
CHECKSUM_FIELD = "CHECKSUMHASH"

# Salt needs no secrecy (it travels inside the ciphertext); it only has to vary.
_salt_random = random.Random()


class ChecksumMode(StrEnum):
    PARAMS = "params"
    JSON = "json"


class MerchantKey:
    """The merchant key. Its repr and str never show the key itself."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_LENGTH:
            raise SecretError(
                f"merchant key must be {KEY_LENGTH} characters long, got {len(key)}"
            )
        self._key = key

    @classmethod
    def from_text(cls, text: str) -> MerchantKey:
        # Key files usually end with a newline; the key itself never contains whitespace.
        stripped = text.strip()
        try:
            raw = stripped.encode("ascii")
        except UnicodeEncodeError:
            raise SecretError("merchant key must be plain ASCII characters") from None
        return cls(raw)

    @property
    def secret_bytes(self) -> bytes:
        return self._key

    def __repr__(self) -> str:
        return "MerchantKey(•••)"

    __str__ = __repr__


def params_string(params: Mapping[str, str | None]) -> str:
    """The dict-mode input: values sorted by key (code-point order), None/"null" → ""."""
    return "|".join(
        "" if (value is None or value.lower() == "null") else value
        for _, value in sorted(params.items())
    )


def _new_salt() -> str:
    return "".join(_salt_random.choices(SALT_ALPHABET, k=SALT_LENGTH))


def _hash_plaintext(data: str, salt: str) -> bytes:
    digest = hashlib.sha256(f"{data}|{salt}".encode()).hexdigest()
    return (digest + salt).encode("ascii")


def generate(data: str, key: MerchantKey, salt: str | None = None) -> str:
    """Checksum of `data` in string (json) mode; `salt` is fixed only by tests."""
    plaintext = _hash_plaintext(data, _new_salt() if salt is None else salt)
    cipher = AES.new(key.secret_bytes, AES.MODE_CBC, IV)
    return base64.b64encode(cipher.encrypt(plaintext + _PAD)).decode("ascii")


def generate_params(
    params: Mapping[str, str | None], key: MerchantKey, salt: str | None = None
) -> str:
    """Checksum of a dict in params mode (the `CHECKSUMHASH` key, if present, is left out)."""
    return generate(params_string(_without_checksum(params)), key, salt)


def verify(data: str, key: MerchantKey, checksum: str) -> bool:
    """True only when `checksum` was made from exactly `data` with `key`."""
    plaintext = _decrypt(checksum, key)
    if plaintext is None:
        return False
    salt = plaintext[-SALT_LENGTH:].decode("ascii", errors="replace")
    return hmac.compare_digest(plaintext, _hash_plaintext(data, salt))


def verify_params(params: Mapping[str, str | None], key: MerchantKey, checksum: str) -> bool:
    """Params-mode verification over every received field except `CHECKSUMHASH`."""
    return verify(params_string(_without_checksum(params)), key, checksum)


def _without_checksum(params: Mapping[str, str | None]) -> Mapping[str, str | None]:
    if CHECKSUM_FIELD not in params:
        return params
    return {k: v for k, v in params.items() if k != CHECKSUM_FIELD}


def _decrypt(checksum: str, key: MerchantKey) -> bytes | None:
    if not isinstance(checksum, str) or len(checksum) != CHECKSUM_LENGTH:
        return None
    try:
        raw = base64.b64decode(checksum, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != _CIPHERTEXT_LENGTH:
        return None
    padded = AES.new(key.secret_bytes, AES.MODE_CBC, IV).decrypt(raw)
    if padded[_PLAINTEXT_LENGTH:] != _PAD:
        return None
    return padded[:_PLAINTEXT_LENGTH]
