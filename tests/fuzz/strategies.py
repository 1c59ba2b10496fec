"""Generators shared by the fuzzers: byte-level mutation of valid inputs, JSON values,
and structural mutation of JSON documents (replace, delete or add a member anywhere)."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import strategies as st

# Values that make parsers think: codes, words and shapes Paytm and registers use.
WORDS = st.sampled_from([
    "A", "S", "F", "P", "X", "", " S ", "s", "ACCEPTED_SUCCESS", "ACCEPTED", "SUCCESS",
    "TXN_SUCCESS", "FAIL", "FAILED", "FAILURE", "TXN_FAILURE", "PENDING", "NO_RECORD_FOUND",
    "0000", "0009", "0010", "0011", "0012", "0090", "0180", "0233", "0330", "0333", "0404",
    "01", "10", "227", "330", "334", "335", "400", "402", "501", "600", "601", "617", "626",
    "628", "631", "810", "1001", "null", "None", "true", "0", "-1", "1e3", "NaN",
    "TESTMID00000000000001", "ORD1001", "CH0001L01N00001", "REF1001", "1303.00", "15000",
])
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False), WORDS, st.text(max_size=20))
JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.one_of(WORDS, st.text(max_size=10)), inner, max_size=4),
    max_leaves=12)


@st.composite
def mutated_bytes(draw: st.DrawFn, seed: bytes, max_ops: int = 4) -> bytes:
    """`seed` with a few byte-level edits: flips, deletions, insertions, repeats."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, max_ops))):
        op = draw(st.sampled_from(["flip", "delete", "insert", "replace", "repeat", "cut"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "delete" and data:
            del data[pos:pos + draw(st.integers(1, 8))]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8)
                                 | st.sampled_from([b'"', b"{", b"}", b"[", b",", b":",
                                                    b"\\", b"\\u0000", b"null", b"1e999"]))
        elif op == "replace" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "repeat" and data:
            end = pos + draw(st.integers(1, 16))
            data[pos:pos] = data[pos:end]
        elif op == "cut":
            data = data[:pos]
    return bytes(data)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += _paths(item, (*prefix, i))
    return out


@st.composite
def mutated_document(draw: st.DrawFn, seed: Any, max_ops: int = 3) -> Any:
    """`seed` (a JSON value) with a few structural edits anywhere in it."""
    doc = copy.deepcopy(seed)
    for _ in range(draw(st.integers(1, max_ops))):
        path = draw(st.sampled_from(_paths(doc)))
        op = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if not path:
            if op == "replace":
                doc = draw(JSON_VALUES)
            continue
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        if op == "replace":
            parent[last] = draw(st.one_of(WORDS, JSON_VALUES))
        elif op == "delete":
            del parent[last]
        elif isinstance(parent, dict):
            parent[draw(st.one_of(WORDS, st.text(max_size=12)))] = draw(JSON_VALUES)
    return doc


def compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
