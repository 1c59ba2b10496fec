"""What the checksum oracle tests feed both sides: Paytm's own `paytmchecksum` as the judge,
and random inputs with the characters that have broken signature code before. Shared by the
client's tests (tests/paytm/test_checksum.py) and the emulator's (tests/sim/paytm/
test_signature.py): the two implementations are independent, their judge and inputs are one.
"""

from __future__ import annotations

import json
import random
import string
from typing import Final

import paytmchecksum

REFERENCE_KEY_TEXT: Final = "ABCDEFGHIJKLMNOP"  # reference §2.6
# Reference §2.6's vectors: a string-mode and a params-mode checksum with fixed salts.
STRING_VECTOR: Final = '{"mid":"TESTMID00000000000001","orderId":"ORD1"}'
STRING_CHECKSUM: Final = (
    "QuPa/27lQORhqqyoQgOLrCnUg0yY2b35uiGz+kSrV0uknHciivjSyQ2z/Z12Dau9C26hlrhDXyh8"
    "tYSk6Rbawfb9Oq38DEXzxUc8N/sVGqw=")
PARAMS_VECTOR: Final[dict[str, str | None]] = {
    "merchantTransactionId": "ORDER0001", "paytmMid": "TESTMID00000000000001",
    "paytmTid": "12345678", "transactionAmount": "100",
    "transactionDateTime": "2024-01-01 10:00:00"}
PARAMS_CHECKSUM: Final = (
    "wL/IDXcuNGpk/wAK3AhGsWn2Sg6hxuE9zslv/5TAKfDKKOcn0SPXhxBDSIxZa3T8ujqL+OMAC4/w"
    "aJu2FQajhepEouAeRVMUEtciuMdX8VM=")
# Multi-byte UTF-8, the astral plane, JSON escapes, the "|" separator and whitespace.
TRICKY: Final = "₹é中😀|\\\"\n\t "
ALPHABET: Final = string.ascii_letters + string.digits + TRICKY
ASCII_SPACE: Final = " \t\n\r\x0b\x0c"


def theirs_verify(data: str | dict[str, str | None], checksum: str,
                  key_text: str = REFERENCE_KEY_TEXT) -> bool:
    # paytmchecksum raises on malformed input and deletes CHECKSUMHASH from a dict in place.
    try:
        copy = dict(data) if isinstance(data, dict) else data
        return bool(paytmchecksum.verifySignature(copy, key_text, checksum))
    except Exception:
        return False


def random_value(rng: random.Random) -> str | None:
    roll = rng.random()
    if roll < 0.05:
        return None
    if roll < 0.10:
        return ""
    if roll < 0.15:
        return rng.choice(["null", "NULL", "nUlL"])
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 40)))


def random_params(rng: random.Random) -> dict[str, str | None]:
    names = {"".join(rng.choice(string.ascii_letters + "é_") for _ in range(rng.randint(1, 12)))
             for _ in range(rng.randint(1, 10))}
    return {name: random_value(rng) for name in names}


def random_text(rng: random.Random) -> str:
    body: dict[str, object] = dict(random_params(rng))
    body["nested"] = {"a": random_value(rng)}
    return json.dumps(body, ensure_ascii=rng.random() < 0.5)
