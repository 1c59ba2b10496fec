"""Paytm's checksum ("signature", "CHECKSUMHASH"), byte-compatible with `paytmchecksum` 1.7.

    input ─► input + "|" + salt ─► sha256 hex (64) + salt (4) = 68 ASCII chars
          ─► PKCS#7 pad to 80 bytes ─► AES-128-CBC(key, IV "@@@@&&&&####$$$$")
          ─► base64 ─► 108 chars

Two ways to form the input (reference §2.2):
- *json* mode: the caller's string, byte for byte (PG APIs sign the exact body text);
- *params* mode: values of the dict sorted by key, joined with "|", where None and
  "null" (any case) become "".

Verification never raises: anything malformed is simply "not valid". Like
`paytmchecksum` (whose base64 decoding discards whitespace), a checksum may carry ASCII
whitespace anywhere — a line-wrapped or space-padded value from a form post still verifies.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import random
import threading
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, TypeVar, cast

from agent.errors import SecretError

IV = b"@@@@&&&&####$$$$"
KEY_LENGTH = 16  # Paytm merchant keys are 16 characters: AES-128
SALT_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxyz"
SALT_LENGTH = 4
CHECKSUM_LENGTH = 108  # base64 of 80 bytes
_PLAINTEXT_LENGTH = 68  # 64 hex + 4 salt
_CIPHERTEXT_LENGTH = 80
_BLOCK = 16
_PAD = bytes([_CIPHERTEXT_LENGTH - _PLAINTEXT_LENGTH]) * (_CIPHERTEXT_LENGTH - _PLAINTEXT_LENGTH)
_IV_INT = int.from_bytes(IV, "big")
CHECKSUM_FIELD = "CHECKSUMHASH"
_NO_WHITESPACE = str.maketrans("", "", " \t\n\r\x0b\x0c")

# Salt needs no secrecy (it travels inside the ciphertext); it only has to vary.
_salt_random = random.Random()
# Every two-character string of the alphabet: one random draw below 62**4 picks a salt,
# uniformly, in two lookups (much cheaper than four `choice` calls).
_SALT_PAIRS = tuple(a + b for a in SALT_ALPHABET for b in SALT_ALPHABET)
_SALT_COUNT = len(_SALT_PAIRS) ** 2


T = TypeVar("T")


class ChecksumMode(StrEnum):
    PARAMS = "params"
    JSON = "json"


def load_aes() -> Any:
    """pycryptodome's AES module, imported on first use (the daemon warms it in a thread
    once it is READY: agent/app.py)."""
    from Crypto.Cipher import AES

    return AES


class MerchantKey:
    """The merchant key. Its repr and str never show the key itself."""

    __slots__ = ("_ciphers", "_key", "_lock", "_mask")

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_LENGTH:
            raise SecretError(
                f"merchant key must be {KEY_LENGTH} characters long, got {len(key)}"
            )
        self._key = key
        # Building an AES cipher (key schedule and mode set-up) costs more than the rest of
        # a checksum together, so each key keeps two for its lifetime, made on first use
        # (pycryptodome's import is 40 ms of the agent's start, and READY does not need it):
        # - ECB is stateless; CBC decryption is ECB decryption XOR the previous ciphertext
        #   block (the IV for the first), so verification needs nothing else.
        # - CBC encryption is chained and a CBC object carries its last ciphertext block
        #   into the next call as the IV. `_mask` = IV XOR that block: XOR-ing it into the
        #   first plaintext block makes the object encrypt exactly as a fresh
        #   AES.new(key, CBC, IV) would. The lock keeps block and mask in step across threads.
        self._ciphers: tuple[Any, Any] | None = None  # (ECB, CBC)
        self._mask = 0  # the CBC object starts with IV itself: IV XOR IV
        self._lock = threading.Lock()

    def _aes(self) -> tuple[Any, Any]:
        ciphers = self._ciphers
        if ciphers is None:
            with self._lock:
                if self._ciphers is None:
                    aes = load_aes()
                    self._ciphers = (aes.new(self._key, aes.MODE_ECB),
                                     aes.new(self._key, aes.MODE_CBC, iv=IV))
                ciphers = self._ciphers
        return ciphers

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

    def _encrypt_cbc(self, padded: bytes) -> bytes:
        cbc = self._aes()[1]
        with self._lock:
            first = (int.from_bytes(padded[:_BLOCK], "big") ^ self._mask).to_bytes(_BLOCK, "big")
            out: bytes = cbc.encrypt(first + padded[_BLOCK:])
            self._mask = _IV_INT ^ int.from_bytes(out[-_BLOCK:], "big")
        return out

    def _decrypt_cbc(self, raw: bytes) -> bytes:
        chained = IV + raw[:-_BLOCK]
        blocks: bytes = self._aes()[0].decrypt(raw)
        return (int.from_bytes(blocks, "big") ^ int.from_bytes(chained, "big")).to_bytes(
            len(raw), "big")

    def __repr__(self) -> str:
        return "MerchantKey(•••)"

    __str__ = __repr__


def params_string(params: Mapping[str, str | None]) -> str:
    """The dict-mode input: values sorted by key (code-point order), None/"null" → "".

    Every value must be a string or None (TypeError otherwise, as `paytmchecksum` fails on
    one); `verify_params` turns that into "not valid".
    """
    parts = []
    for key in sorted(params):
        value = params[key]
        if value is not None and not isinstance(value, str):
            raise TypeError(f"params-mode value of {key!r} is {type(value).__name__}, "
                            "not a string")
        # Only a 4-character value can be "null": skip lower() for all the others.
        if value is None or (len(value) == 4 and value.lower() == "null"):
            value = ""
        parts.append(value)
    return "|".join(parts)


def _new_salt() -> str:
    n = _salt_random.randrange(_SALT_COUNT)
    pairs = len(_SALT_PAIRS)
    return _SALT_PAIRS[n % pairs] + _SALT_PAIRS[n // pairs]


def _hash_plaintext(data: str, salt: str) -> bytes:
    # surrogatepass: a lone surrogate (JSON allows "\ud800") must give a mismatch, not an
    # exception; every valid string encodes exactly as plain UTF-8.
    digest = hashlib.sha256((data + "|" + salt).encode("utf-8", "surrogatepass")).hexdigest()
    return (digest + salt).encode("ascii")


def generate(data: str, key: MerchantKey, salt: str | None = None) -> str:
    """Checksum of `data` in string (json) mode; `salt` is fixed only by tests."""
    plaintext = _hash_plaintext(data, _new_salt() if salt is None else salt)
    return binascii.b2a_base64(key._encrypt_cbc(plaintext + _PAD), newline=False).decode("ascii")


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


def verify_params(params: Mapping[str, object], key: MerchantKey, checksum: str) -> bool:
    """Params-mode verification over every received field except `CHECKSUMHASH`.

    Never raises: a key or value that is not a string (a number, a nested object, as a
    JSON body may hold) makes the checksum "not valid" — it cannot have been made over
    such a value by Paytm's dict mode, which handles strings only.
    """
    try:
        # params_string refuses any value that is not a string (or None) with TypeError.
        text = params_string(cast(Mapping[str, str | None], _without_checksum(params)))
    except TypeError:  # also keys that cannot be sorted together
        return False
    return verify(text, key, checksum)


def _without_checksum(params: Mapping[str, T]) -> Mapping[str, T]:
    if CHECKSUM_FIELD not in params:
        return params
    return {k: v for k, v in params.items() if k != CHECKSUM_FIELD}


def _decrypt(checksum: str, key: MerchantKey) -> bytes | None:
    if not isinstance(checksum, str):
        return None
    # paytmchecksum's base64.b64decode skips whitespace anywhere; so do we (ASCII only:
    # that decoder refuses any non-ASCII text outright).
    checksum = checksum.translate(_NO_WHITESPACE)
    if len(checksum) != CHECKSUM_LENGTH:
        return None
    try:
        # strict_mode: only the base64 alphabet, padding only at the end.
        raw = binascii.a2b_base64(checksum, strict_mode=True)
    except ValueError:  # binascii.Error, and non-ASCII text
        return None
    if len(raw) != _CIPHERTEXT_LENGTH:
        return None
    padded = key._decrypt_cbc(raw)
    if padded[_PLAINTEXT_LENGTH:] != _PAD:
        return None
    return padded[:_PLAINTEXT_LENGTH]
