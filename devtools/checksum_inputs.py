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
