"""Checksum: reference vectors, round trips against the official `paytmchecksum`, bad input."""

from __future__ import annotations

import base64
import random
import string
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import paytmchecksum
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import SecretError
from agent.paytm.checksum import (
    MerchantKey,
    generate,
    generate_params,
    params_string,
    verify,
    verify_params,
)
from devtools.checksum_inputs import (
    ASCII_SPACE,
    PARAMS_CHECKSUM,
    PARAMS_VECTOR,
    REFERENCE_KEY_TEXT,
    STRING_CHECKSUM,
    STRING_VECTOR,
    random_params,
    random_text,
    theirs_verify,
)

KEY_TEXT = REFERENCE_KEY_TEXT
KEY = MerchantKey(KEY_TEXT.encode())
ROUNDS = 1000

# -- reference vectors (§2.6) ------------------------------------------------------------------


def test_string_mode_vector() -> None:
    assert generate(STRING_VECTOR, KEY, salt="abcd") == STRING_CHECKSUM
    assert verify(STRING_VECTOR, KEY, STRING_CHECKSUM)


def test_params_mode_vector() -> None:
    assert params_string(PARAMS_VECTOR) == (
        "ORDER0001|TESTMID00000000000001|12345678|100|2024-01-01 10:00:00")
    assert generate_params(PARAMS_VECTOR, KEY, salt="WXYZ") == PARAMS_CHECKSUM
    assert verify_params(PARAMS_VECTOR, KEY, PARAMS_CHECKSUM)


def test_vectors_agree_with_official_library() -> None:
    assert paytmchecksum.verifySignature(STRING_VECTOR, KEY_TEXT, STRING_CHECKSUM)
    assert paytmchecksum.verifySignature(dict(PARAMS_VECTOR), KEY_TEXT, PARAMS_CHECKSUM)


def test_repeated_generation_with_one_key_is_stable() -> None:
    # Each MerchantKey reuses one chained CBC cipher; every call must still start from the IV.
    key = MerchantKey(KEY_TEXT.encode())
    for _ in range(5):
        assert generate(STRING_VECTOR, key, salt="abcd") == STRING_CHECKSUM
        assert generate_params(PARAMS_VECTOR, key, salt="WXYZ") == PARAMS_CHECKSUM


def test_generation_from_threads_matches_official_library() -> None:
    key = MerchantKey(KEY_TEXT.encode())
    texts = [f'{{"n":"{i}"}}' for i in range(400)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        checksums = list(pool.map(lambda text: generate(text, key), texts))
    assert all(theirs_verify(text, cs) for text, cs in zip(texts, checksums, strict=True))


def test_params_string_rules() -> None:
    # Code-point order (upper case first), values only, None and any-case "null" → "".
    assert params_string({"b": "2", "a": "1", "B": "0"}) == "0|1|2"
    assert params_string({"a": None, "b": "NuLl", "c": "x"}) == "||x"
    assert params_string({}) == ""


def test_params_mode_ignores_checksumhash_field() -> None:
    checksum = generate_params(PARAMS_VECTOR, KEY)
    assert verify_params({**PARAMS_VECTOR, "CHECKSUMHASH": checksum}, KEY, checksum)


# -- round trips against the official library --------------------------------------------------


def test_params_ours_signtheirs_verify() -> None:
    rng = random.Random(1)
    for _ in range(ROUNDS):
        params = random_params(rng)
        checksum = generate_params(params, KEY)
        assert len(checksum) == 108
        assert theirs_verify(params, checksum), params


def test_params_theirs_sign_ours_verify() -> None:
    rng = random.Random(2)
    for _ in range(ROUNDS):
        params = random_params(rng)
        checksum = paytmchecksum.generateSignature(dict(params), KEY_TEXT)
        assert verify_params(params, KEY, checksum), params


def test_json_ours_signtheirs_verify() -> None:
    rng = random.Random(3)
    for _ in range(ROUNDS):
        text = random_text(rng)
        assert theirs_verify(text, generate(text, KEY)), text


def test_json_theirs_sign_ours_verify() -> None:
    rng = random.Random(4)
    for _ in range(ROUNDS):
        text = random_text(rng)
        assert verify(text, KEY, paytmchecksum.generateSignature(text, KEY_TEXT)), text


def test_empty_inputs_round_trip() -> None:
    assert verify("", KEY, paytmchecksum.generateSignature("", KEY_TEXT))
    assert theirs_verify("", generate("", KEY))
    assert verify_params({}, KEY, paytmchecksum.generateSignature({}, KEY_TEXT))


# -- tampering and garbage ---------------------------------------------------------------------


def test_tampered_body_is_rejected() -> None:
    rng = random.Random(5)
    for _ in range(200):
        text = random_text(rng)
        checksum = generate(text, KEY)
        assert not verify(text + " ", KEY, checksum)
        assert not verify(text.replace("{", "{ ", 1), KEY, checksum)
        params = {k: v for k, v in random_params(rng).items()}
        checksum = generate_params(params, KEY)
        key = sorted(params)[0]
        params[key] = (params[key] or "") + "x"
        assert not verify_params(params, KEY, checksum)


def test_tampered_checksum_is_rejected() -> None:
    checksum = generate(STRING_VECTOR, KEY)
    raw = bytearray(base64.b64decode(checksum))
    for position in (0, 15, 16, 40, 63, 64, 79):
        for bit in (0x01, 0x80):
            changed = bytearray(raw)
            changed[position] ^= bit
            assert not verify(STRING_VECTOR, KEY, base64.b64encode(bytes(changed)).decode())


def test_other_salt_or_key_is_rejected() -> None:
    assert not verify(STRING_VECTOR, MerchantKey(b"ABCDEFGHIJKLMNOQ"), STRING_CHECKSUM)
    assert not verify(STRING_VECTOR, KEY, generate(STRING_VECTOR + "x", KEY))


@pytest.mark.parametrize("checksum", [
    "", "x", "not base64 at all!", "=" * 108, STRING_CHECKSUM[:-4], STRING_CHECKSUM + "AAAA",
    STRING_CHECKSUM.replace("Q", "*", 1),  # right length, outside the alphabet
    base64.b64encode(bytes(80)).decode(),  # right length, padding does not decrypt
    base64.b64encode(bytes(64)).decode(),  # wrong ciphertext length
    " " + STRING_CHECKSUM[1:],
    STRING_CHECKSUM.replace("=", "A"),
])
def test_malformed_checksum_is_false(checksum: str) -> None:
    assert verify(STRING_VECTOR, KEY, checksum) is False
    assert verify_params(PARAMS_VECTOR, KEY, checksum) is False


def test_non_string_checksum_is_false() -> None:
    assert verify(STRING_VECTOR, KEY, None) is False  # type: ignore[arg-type]
    assert verify(STRING_VECTOR, KEY, 42) is False  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_checksum_never_raises(checksum: str) -> None:
    assert verify(STRING_VECTOR, KEY, checksum) is False


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=string.ascii_letters + string.digits + "+/=", min_size=108,
               max_size=108))
def test_arbitrary_base64_checksum_never_raises(checksum: str) -> None:
    # Reaches the decrypt path: right length and alphabet, random ciphertext and padding.
    assert verify(STRING_VECTOR, KEY, checksum) is False


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=80, max_size=80))
def test_arbitrary_ciphertext_never_raises(raw: bytes) -> None:
    assert verify(STRING_VECTOR, KEY, base64.b64encode(raw).decode()) is False


@pytest.mark.parametrize("key", [b"", b"short", b"ABCDEFGHIJKLMNO", b"ABCDEFGHIJKLMNOPQ",
                                 b"A" * 32])
def test_key_of_wrong_length_is_a_secret_error(key: bytes) -> None:
    with pytest.raises(SecretError, match="16 characters"):
        MerchantKey(key)


def test_key_from_text() -> None:
    assert MerchantKey.from_text(KEY_TEXT + "\n").secret_bytes == KEY_TEXT.encode()
    with pytest.raises(SecretError):
        MerchantKey.from_text("ABCDEFGHIJKLMNO₹")
    assert KEY_TEXT not in repr(KEY) and KEY_TEXT not in str(KEY)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 108), st.text(alphabet=ASCII_SPACE, min_size=1,
                                                       max_size=3)), max_size=6),
       st.booleans())
def test_whitespace_inside_a_checksum_is_accepted_as_paytmchecksum_does(
        inserts: list[tuple[int, str]], tampered: bool) -> None:
    checksum = STRING_CHECKSUM.replace("Q", "R", 1) if tampered else STRING_CHECKSUM
    for position, space in sorted(inserts, reverse=True):
        checksum = checksum[:position] + space + checksum[position:]
    theirs = theirs_verify(STRING_VECTOR, checksum)
    assert verify(STRING_VECTOR, KEY, checksum) is theirs
    assert theirs is not tampered  # the oracle really accepts the spaced-out checksum


def test_line_wrapped_checksum_verifies() -> None:
    wrapped = PARAMS_CHECKSUM[:54] + "\r\n" + PARAMS_CHECKSUM[54:] + "\n"
    assert verify_params(PARAMS_VECTOR, KEY, wrapped)
    assert theirs_verify(dict(PARAMS_VECTOR), wrapped)


@pytest.mark.parametrize("value", [42, 1.5, True, ["a"], {"a": "b"}, b"bytes"])
def test_verify_params_never_raises_on_a_non_string_value(value: object) -> None:
    params: dict[str, object] = {**PARAMS_VECTOR, "transactionAmount": value}
    assert verify_params(params, KEY, PARAMS_CHECKSUM) is False
    odd_key: dict[Any, object] = {1: "x"}
    assert verify_params(odd_key, KEY, PARAMS_CHECKSUM) is False  # a key that is no string
