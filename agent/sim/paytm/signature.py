"""Paytm's checksum as the emulator computes it, transcribed from reference §2.

The emulator is the oracle the product's client is tested against, so it does not borrow
the client's `agent.paytm.checksum`: an oracle that shares the code it judges cannot catch
its errors. This is written plainly from Paytm's description (and checked against Paytm's
own `paytmchecksum` in tests/sim/paytm/test_signature.py); speed does not matter here.

    input + "|" + salt ─► sha256 hex + salt (68 chars) ─► PKCS#7 to 80 bytes
    ─► AES-128-CBC(merchant key, IV "@@@@&&&&####$$$$") ─► base64 (108 chars)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import string
from collections.abc import Mapping
from enum import StrEnum

from Crypto.Cipher import AES

PAYTM_IV = b"@@@@&&&&####$$$$"
KEY_BYTES = 16  # Paytm merchant keys are 16 characters: AES-128
SALT_CHARS = string.ascii_uppercase + string.digits + string.ascii_lowercase
SALT_LENGTH = 4
HASH_FIELD = "CHECKSUMHASH"  # a key-value post carries its checksum among the fields
# paytmchecksum's base64 decoding skips whitespace, so a wrapped or padded checksum verifies.
_ASCII_WHITESPACE = " \t\n\r\x0b\x0c"


class ChecksumMode(StrEnum):
    """What an EDC request's checksum is computed over (reference §2.5: Paytm is unclear).

    The values are those of the agent's `paytm.checksum_mode` setting.
    """

    PARAMS = "params"  # the top-level string fields of body, dict mode
    JSON = "json"  # the exact text of body, string mode


class SimKey:
    """A merchant's key as the emulator holds it. Never shown by repr or str."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        if len(secret) != KEY_BYTES:
            raise ValueError(f"a Paytm merchant key is {KEY_BYTES} characters, got {len(secret)}")
        self._secret = secret

    @property
    def secret_bytes(self) -> bytes:
        return self._secret

    def __repr__(self) -> str:
        return "SimKey(•••)"

    __str__ = __repr__


def new_salt() -> str:
    return "".join(secrets.choice(SALT_CHARS) for _ in range(SALT_LENGTH))


def params_text(params: Mapping[str, str | None]) -> str:
    """Dict mode (reference §2.2): the values in key order, joined by "|"; keys not included."""
    values = []
    for name in sorted(params):
        value = params[name]
        values.append("" if value is None or value.lower() == "null" else value)
    return "|".join(values)


def _salted_hash(data: str, salt: str) -> str:
    return hashlib.sha256(f"{data}|{salt}".encode()).hexdigest() + salt


def sign(data: str, key: SimKey, salt: str | None = None) -> str:
    """String mode: the checksum of `data` byte for byte (a fixed salt gives §2.6's vectors)."""
    plain = _salted_hash(data, new_salt() if salt is None else salt).encode("ascii")
    pad = 16 - len(plain) % 16
    cipher = AES.new(key.secret_bytes, AES.MODE_CBC, iv=PAYTM_IV)
    return base64.b64encode(cipher.encrypt(plain + bytes([pad]) * pad)).decode("ascii")


def sign_params(params: Mapping[str, str | None], key: SimKey, salt: str | None = None) -> str:
    return sign(params_text({k: v for k, v in params.items() if k != HASH_FIELD}), key, salt)


def _decrypted(checksum: str, key: SimKey) -> str | None:
    """The 68-character hash-and-salt inside a checksum, or None if it holds none."""
    compact = "".join(c for c in checksum if c not in _ASCII_WHITESPACE)
    try:
        raw = base64.b64decode(compact.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        return None
    if not raw or len(raw) % 16:
        return None
    padded = AES.new(key.secret_bytes, AES.MODE_CBC, iv=PAYTM_IV).decrypt(raw)
    pad = padded[-1]
    if not 1 <= pad <= 16 or padded[-pad:] != bytes([pad]) * pad:
        return None
    try:
        return padded[:-pad].decode("ascii")
    except UnicodeDecodeError:
        return None


def check(data: str, key: SimKey, checksum: object) -> bool:
    """String mode. Never raises: whatever the sender put there is at worst "not valid"."""
    if not isinstance(data, str) or not isinstance(checksum, str):
        return False
    inside = _decrypted(checksum, key)
    if inside is None or len(inside) <= SALT_LENGTH:
        return False
    expected = _salted_hash(data, inside[-SALT_LENGTH:])
    # A sender's guess must not learn from timing how much of it was right.
    return hmac.compare_digest(inside.encode(), expected.encode())


def check_params(params: Mapping[str, object], key: SimKey, checksum: object) -> bool:
    """Dict mode over every received field but CHECKSUMHASH. Never raises."""
    fields: dict[str, str | None] = {}
    for name, value in params.items():
        if not isinstance(name, str) or not (value is None or isinstance(value, str)):
            return False  # Paytm's library cannot sign it, so nothing valid can carry it
        if name != HASH_FIELD:
            fields[name] = value
    return check(params_text(fields), key, checksum)
