"""The fuzzing corpus: inputs worth keeping, checked by the same oracles on every run.

Each tests/fuzz/corpus/<target>.json is a list of cases: a `name`, a `note` saying why the
case is kept, the input, and `bug` when it reproduces a reported bug (oracles.KNOWN_BUGS):
such a case is a strict xfail, so the day the fix lands it fails as XPASS and says
"drop the `bug` here and the entry in KNOWN_BUGS".

Inputs: bytes as `hex` or `text` (ASCII/UTF-8); in `text`, `{{c*n}}` stands for the
character c repeated n times (a 5000-digit number stays readable here).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent.paytm.checksum import MerchantKey
from tests.fuzz.oracles import (
    KnownBug,
    check_callback,
    check_config_dict,
    check_config_text,
    check_edc,
    check_frame_stream,
    check_pg,
    check_reply_payload,
    check_request_payload,
)

CORPUS = Path(__file__).parent / "corpus"
WEBHOOK_KEY = MerchantKey(b"ABCDEFGHIJKLMNOP")  # the key of tests/fuzz/test_webhook.py
_REPEAT = re.compile(r"\{\{(.)\*(\d+)\}\}")


def text(case: dict[str, Any]) -> str:
    return _REPEAT.sub(lambda m: m.group(1) * int(m.group(2)), case["text"])


def data(case: dict[str, Any]) -> bytes:
    return bytes.fromhex(case["hex"]) if "hex" in case else text(case).encode()


def _webhook(case: dict[str, Any]) -> None:
    expect = case.get("expect")
    signed = (str(expect[0]), str(expect[1]), str(expect[2])) if expect else None
    check_callback(case["body"].encode(), case["content_type"], WEBHOOK_KEY, case.get("mid"),
                   signed)


CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "frames": lambda c: check_frame_stream(
        [(bytes.fromhex(h), float(t)) for h, t in c["chunks"]]),
    "requests": lambda c: check_request_payload(data(c)),
    "replies": lambda c: check_reply_payload(data(c)),
    "config": lambda c: check_config_dict(c["data"]) if "data" in c
    else check_config_text(text(c)),
    "edc": lambda c: check_edc(c["document"], c.get("txn")),
    "pg": lambda c: check_pg(c["document"], c.get("order_id"), c.get("ref_id")),
    "webhook": _webhook,
}


def _cases() -> list[Any]:
    params = []
    for path in sorted(CORPUS.glob("*.json")):
        target = path.stem
        for case in json.loads(path.read_text()):
            marks = []
            if case.get("bug"):
                marks.append(pytest.mark.xfail(raises=KnownBug, strict=True,
                                               reason=f"known bug {case['bug']}"))
            params.append(pytest.param(target, case, id=f"{target}:{case['name']}",
                                       marks=marks))
    return params


def test_every_corpus_file_has_a_check() -> None:
    assert {p.stem for p in CORPUS.glob("*.json")} == set(CHECKS)


@pytest.mark.parametrize(("target", "case"), _cases())
def test_corpus(target: str, case: dict[str, Any]) -> None:
    assert case.get("note"), "say why the case is kept"
    CHECKS[target](case)
