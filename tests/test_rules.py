"""agent.rules: the shared field rules, and that every reader of a rule agrees on it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grimp
import pytest

from agent import receipts, rules
from agent.config import config_from_dict
from agent.errors import ConfigError, FieldError
from agent.paytm import pg_models
from agent.register import fields

PAISE = [("1", True), ("999999999999", True), ("0", False), ("01", False),
         ("1" * 13, False), ("1\n", False), ("-1", False), ("", False), (1, False)]
TIDS = [("T1", True), ("12345678", True), ("", False), ("123456789", False),
        ("T-1", False), ("1234\n", False), (12345678, False)]


def _config(**lane: str) -> dict[str, Any]:
    return {"paytm": {"mid": "TESTMID00000000000001", "merchant_key_file": "/tmp/k",
                      "edc_base_url": "http://127.0.0.1:8900",
                      "pg_base_url": "http://127.0.0.1:8900"},
            "lanes": [{"name": "till-1", "link": "serial:///dev/ttyUSB0?baudrate=9600",
                       "tid": "12345678", "pos_id": "S12_1", **lane}]}


POS_IDS = [("S12_1", True), ("S" * 45 + "_1234", True), ("S" * 46 + "_1234", False),
           ("S12_", False), ("S12-1", False), ("S12_1\n", False), ("", False)]


@pytest.mark.parametrize(("value", "ok"), PAISE)
def test_paise_is_one_rule_for_the_register_and_paytm(value: object, ok: bool) -> None:
    assert rules.is_paise(value) is ok
    checks: list[Callable[[], str]] = [lambda: fields.amount(value),
                                       lambda: rules.check_paise(value, "transactionAmount")]
    for check in checks:
        if ok:
            assert check() == value
        else:
            with pytest.raises(FieldError):
                check()


@pytest.mark.parametrize(("value", "ok"), TIDS)
def test_terminal_id_is_one_rule_for_the_register_paytm_and_config(value: object,
                                                                   ok: bool) -> None:
    assert rules.is_tid(value) is ok
    if not isinstance(value, str):
        return
    config = _config(tid=value)
    if ok:
        assert fields.tid(value) == value
        assert config_from_dict(config).lanes[0].tid == value
    else:
        with pytest.raises(FieldError):
            fields.tid(value)
        with pytest.raises(FieldError):
            rules.check_tid(value, "paytmTid")
        with pytest.raises(ConfigError):
            config_from_dict(config)


@pytest.mark.parametrize(("value", "ok"), POS_IDS)
def test_pos_id_is_one_rule_for_paytm_and_config(value: str, ok: bool) -> None:
    assert rules.is_pos_id(value) is ok
    config = _config(pos_id=value)
    if ok or not value:  # an empty pos_id is "not set" in the config
        config_from_dict(config)
    else:
        with pytest.raises(ConfigError):
            config_from_dict(config)


def test_rupees_plain_has_one_home() -> None:
    assert rules.rupees_plain("123450") == "1234.50" and rules.rupees_plain(5) == "0.05"
    assert receipts.rupees_plain is rules.rupees_plain
    assert pg_models.paise_to_rupees("130300") == "1303.00"


def test_the_rules_are_a_leaf_and_paytm_does_not_reach_up() -> None:
    graph = grimp.build_graph("agent", "drivers", include_external_packages=False)
    assert graph.find_modules_directly_imported_by("agent.rules") <= {"agent.errors"}
    above = ("agent.receipts", "agent.register", "agent.link", "agent.engine", "drivers")
    paytm = graph.find_descendants("agent.paytm") | {"agent.paytm"}
    offenders = sorted(f"{m} imports {i}" for m in paytm
                       for i in graph.find_modules_directly_imported_by(m)
                       if any(i == a or i.startswith(a + ".") for a in above))
    assert offenders == []
