"""The page's words for ordinary states: no red badge, no "-0 s", no blank, no unknown code."""

from __future__ import annotations

from agent.web.facts import code_facts
from agent.web.pages.config import NOT_SET, shown
from agent.web.pages.overview import pill_word, signed_seconds


def test_payment_link_and_refund_codes_are_known() -> None:
    facts = {c.code: c for c in code_facts(["01", "10", "601"], "refund")}
    assert facts["10"].meaning == "Refund successful"
    assert facts["601"].meaning == "Refund raised, pending"
    assert facts["01"].meaning == "Txn Success"
    [paid] = code_facts(["01"], "paylink")
    assert paid.name == "TXN_SUCCESS"
    # A sale's codes still come from the EDC tables first.
    [accepted] = code_facts(["0009"], "sale")
    assert "not in the agent's code table" not in accepted.meaning


def test_paytm_not_asked_yet_is_not_a_red_badge() -> None:
    badge = str(pill_word("unknown"))
    assert "not known yet" in badge and "s-unknown" not in badge and "s-idle" in badge
    assert "s-down" in str(pill_word("down"))


def test_clock_skew_never_reads_minus_zero() -> None:
    assert signed_seconds(-0.3) == "0 s"
    assert signed_seconds(0.4) == "0 s"
    assert signed_seconds(-2.6) == "-3 s"
    assert signed_seconds(4.0) == "+4 s"


def test_empty_config_values_read_not_set() -> None:
    assert NOT_SET in str(shown(""))
    assert shown("EDC") == "EDC"
