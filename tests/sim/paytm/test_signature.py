"""The emulator's own checksum (signature.py) against Paytm's `paytmchecksum`, the oracle.

Then a cross check: the product client's checksum (agent.paytm.checksum) and the emulator's
are independent implementations of one algorithm, so on the same input they must agree.
"""

from __future__ import annotations

import base64
import random
import string

import paytmchecksum
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.paytm import checksum as client
from agent.sim.paytm.signature import (
    HASH_FIELD,
    SimKey,
    check,
    check_params,
    params_text,
    sign,
    sign_params,
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
KEY = SimKey(KEY_TEXT.encode())
CLIENT_KEY = client.MerchantKey(KEY_TEXT.encode())
ROUNDS = 300

# -- reference vectors (§2.6) ------------------------------------------------------------------


def test_reference_vectors() -> None:
    assert sign(STRING_VECTOR, KEY, salt="abcd") == STRING_CHECKSUM
    assert sign_params(PARAMS_VECTOR, KEY, salt="WXYZ") == PARAMS_CHECKSUM
    assert check(STRING_VECTOR, KEY, STRING_CHECKSUM)
    assert check_params(PARAMS_VECTOR, KEY, PARAMS_CHECKSUM)


def test_a_checksum_is_108_characters_with_a_fresh_salt_each_time() -> None:
    checksums = {sign(STRING_VECTOR, KEY) for _ in range(20)}
    assert {len(c) for c in checksums} == {108}
    assert len(checksums) > 1


def test_params_text_rules() -> None:
    # Code-point order (upper case first), values only, None and any-case "null" → "".
    assert params_text({"b": "2", "a": "1", "B": "0"}) == "0|1|2"
    assert params_text({"a": None, "b": "NuLl", "c": "x"}) == "||x"
    assert params_text({}) == ""


def test_checksumhash_is_not_signed_nor_verified() -> None:
    checksum = sign_params(PARAMS_VECTOR, KEY)
    assert sign_params({**PARAMS_VECTOR, HASH_FIELD: "x"}, KEY, salt="WXYZ") == PARAMS_CHECKSUM
    assert check_params({**PARAMS_VECTOR, HASH_FIELD: checksum}, KEY, checksum)


# -- round trips against paytmchecksum ---------------------------------------------------------


def test_params_ours_signtheirs_verify() -> None:
    rng = random.Random(11)
    for _ in range(ROUNDS):
        params = random_params(rng)
        assert theirs_verify(params, sign_params(params, KEY))


def test_params_theirs_sign_ours_verify() -> None:
    rng = random.Random(12)
    for _ in range(ROUNDS):
        params = random_params(rng)
        assert check_params(params, KEY, paytmchecksum.generateSignature(dict(params), KEY_TEXT))


def test_string_ours_signtheirs_verify() -> None:
    rng = random.Random(13)
    for _ in range(ROUNDS):
        text = random_text(rng)
        assert theirs_verify(text, sign(text, KEY))


def test_string_theirs_sign_ours_verify() -> None:
    rng = random.Random(14)
    for _ in range(ROUNDS):
        text = random_text(rng)
        assert check(text, KEY, paytmchecksum.generateSignature(text, KEY_TEXT))


def test_empty_inputs_round_trip() -> None:
    assert theirs_verify("", sign("", KEY))
    assert check("", KEY, paytmchecksum.generateSignature("", KEY_TEXT))
    assert theirs_verify({}, sign_params({}, KEY))


def test_tampering_other_key_or_other_mode_is_rejected() -> None:
    assert not check(STRING_VECTOR + " ", KEY, STRING_CHECKSUM)
    assert not check_params({**PARAMS_VECTOR, "transactionAmount": "101"}, KEY, PARAMS_CHECKSUM)
    assert not check(STRING_VECTOR, SimKey(b"PONMLKJIHGFEDCBA"), STRING_CHECKSUM)
    assert not check(STRING_VECTOR, KEY, PARAMS_CHECKSUM)
    other_salt = sign(STRING_VECTOR, KEY, salt="abce")
    assert check(STRING_VECTOR, KEY, other_salt) and other_salt != STRING_CHECKSUM


# -- whitespace, as paytmchecksum's base64 decoding tolerates it -------------------------------


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
    assert check(STRING_VECTOR, KEY, checksum) is theirs
    assert theirs is not tampered  # the oracle really accepts the spaced-out checksum


def test_line_wrapped_params_checksum_verifies() -> None:
    wrapped = PARAMS_CHECKSUM[:54] + "\r\n" + PARAMS_CHECKSUM[54:] + "\n"
    assert check_params(PARAMS_VECTOR, KEY, wrapped)
    assert theirs_verify(dict(PARAMS_VECTOR), wrapped)


# -- malformed input is "not valid", never an exception ----------------------------------------


@pytest.mark.parametrize("checksum", [
    "", "x", "not base64 at all!", "=" * 108, STRING_CHECKSUM[:-4], STRING_CHECKSUM + "AAAA",
    STRING_CHECKSUM.replace("Q", "*", 1),  # right length, outside the alphabet
    STRING_CHECKSUM.replace("Q", "\u00a0", 1),  # not ASCII whitespace: not skipped
    base64.b64encode(bytes(80)).decode(),  # right length, padding does not decrypt
    base64.b64encode(bytes(64)).decode(),  # wrong ciphertext length
    " " + STRING_CHECKSUM[1:],
    STRING_CHECKSUM.replace("=", "A"),
    "₹" * 108,
])
def test_malformed_checksum_is_false(checksum: str) -> None:
    assert check(STRING_VECTOR, KEY, checksum) is False
    assert check_params(PARAMS_VECTOR, KEY, checksum) is False


@pytest.mark.parametrize("checksum", [None, 42, b"bytes", ["x"], {"a": "b"}])
def test_non_string_checksum_is_false(checksum: object) -> None:
    assert check(STRING_VECTOR, KEY, checksum) is False
    assert check_params(PARAMS_VECTOR, KEY, checksum) is False


@pytest.mark.parametrize("value", [42, 1.5, True, ["a"], {"a": "b"}, b"bytes"])
def test_params_with_a_non_string_value_are_false(value: object) -> None:
    params: dict[str, object] = {**PARAMS_VECTOR, "transactionAmount": value}
    assert check_params(params, KEY, PARAMS_CHECKSUM) is False
    odd_name: dict[object, object] = {1: "x"}
    assert check_params(odd_name, KEY, PARAMS_CHECKSUM) is False  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_checksum_never_raises(checksum: str) -> None:
    assert check(STRING_VECTOR, KEY, checksum) is False


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=string.ascii_letters + string.digits + "+/=", min_size=108,
               max_size=108))
def test_arbitrary_base64_checksum_never_raises(checksum: str) -> None:
    # Reaches decryption: the right length and alphabet, random ciphertext and padding.
    assert check(STRING_VECTOR, KEY, checksum) is False


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=16, max_size=96).filter(lambda raw: len(raw) % 16 == 0))
def test_arbitrary_ciphertext_never_raises(raw: bytes) -> None:
    assert check(STRING_VECTOR, KEY, base64.b64encode(raw).decode()) is False


@settings(max_examples=200, deadline=None)
@given(st.text(), st.text())
def test_arbitrary_data_never_raises(data: str, checksum: str) -> None:
    assert check(data, KEY, checksum) is False
    assert check_params({"a": data}, KEY, checksum) is False


@pytest.mark.parametrize("secret", [b"", b"short", b"ABCDEFGHIJKLMNO", b"A" * 17, b"A" * 32])
def test_a_key_is_16_bytes(secret: bytes) -> None:
    with pytest.raises(ValueError, match="16 characters"):
        SimKey(secret)


def test_the_key_is_never_shown() -> None:
    assert KEY.secret_bytes == KEY_TEXT.encode()
    assert KEY_TEXT not in repr(KEY) and KEY_TEXT not in str(KEY)


# -- the client's checksum and the emulator's agree --------------------------------------------


def test_client_and_emulator_compute_the_same_checksum_for_the_same_salt() -> None:
    rng = random.Random(21)
    for _ in range(ROUNDS):
        salt = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(4))
        text = random_text(rng)
        params = random_params(rng)
        assert sign(text, KEY, salt) == client.generate(text, CLIENT_KEY, salt)
        assert client.params_string(params) == params_text(params)
        assert sign_params(params, KEY, salt) == client.generate(params_text(params), CLIENT_KEY,
                                                                 salt)


def test_each_verifies_what_the_other_signed() -> None:
    rng = random.Random(22)
    for _ in range(ROUNDS):
        text = random_text(rng)
        params = random_params(rng)
        assert client.verify(text, CLIENT_KEY, sign(text, KEY))
        assert check(text, KEY, client.generate(text, CLIENT_KEY))
        assert client.verify_params(params, CLIENT_KEY, sign_params(params, KEY))
        assert check_params(params, KEY, client.generate_params(params, CLIENT_KEY))


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.text(),
    st.text(alphabet=string.ascii_letters + string.digits + "+/=" + ASCII_SPACE,
            min_size=100, max_size=120),
    st.lists(st.tuples(st.integers(0, 108), st.sampled_from([*ASCII_SPACE, "x", "="])),
             max_size=4).map(lambda edits: _edited(STRING_CHECKSUM, edits)),
))
def test_client_and_emulator_judge_any_checksum_alike(checksum: str) -> None:
    assert check(STRING_VECTOR, KEY, checksum) is client.verify(STRING_VECTOR, CLIENT_KEY,
                                                                 checksum)


def _edited(checksum: str, edits: list[tuple[int, str]]) -> str:
    for position, char in sorted(edits, reverse=True):
        checksum = checksum[:position] + char + checksum[position:]
    return checksum
