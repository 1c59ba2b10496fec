from __future__ import annotations

from datetime import datetime

import pytest

from agent.paytm.clock import IST
from agent.receipts import (
    ReceiptData,
    build_receipt,
    display_info,
    mask,
    print_info,
    rupees,
    rupees_plain,
)


@pytest.mark.parametrize(
    ("paise", "text"),
    [("1", "₹0.01"), ("100", "₹1.00"), ("123450", "₹1,234.50"), ("99999999", "₹9,99,999.99"),
     ("12345600", "₹1,23,456.00"), ("999999999999", "₹9,99,99,99,999.99")],
)
def test_rupees(paise: str, text: str) -> None:
    assert rupees(paise) == text


def test_plain_rupees_for_pg() -> None:
    assert rupees_plain("130300") == "1303.00"
    assert rupees_plain("5") == "0.05"


def test_mask() -> None:
    assert mask("12345678") == "XXXX5678"
    assert mask("123") == "123"


def test_display_info_cuts_and_warns() -> None:
    info, warnings = display_info(
        {"Bill no": "INV-42", "Cashier name": "Ramesh Kumar Sharma Verma", "a": "b", "c": "d"},
        defaults=(("Store", "MG Road"),),
    )
    assert len(info) == 3
    assert all(len(k) <= 10 and len(v) <= 20 for k, v in info.items())
    assert any("cut" in w for w in warnings) and any("only 3" in w for w in warnings)


def test_display_register_entries_win_over_lane_defaults() -> None:
    info, warnings = display_info({"Store": "Indiranagar"}, defaults=(("Store", "MG Road"),))
    assert info == {"Store": "Indiranagar"} and warnings == []


def test_print_info_non_ascii_replaced() -> None:
    info, warnings = print_info({"Name": "Café"})
    assert info == {"Name": "Caf?"} and warnings


@pytest.mark.parametrize("width", [24, 32, 40, 48])
@pytest.mark.parametrize("status", ["success", "failed", "unknown"])
def test_receipt_lines_fit_the_width(width: int, status: str) -> None:
    data = ReceiptData(
        kind="sale", status=status, when=datetime(2026, 11, 21, 18, 5, 9, tzinfo=IST),
        mid="TESTMID00000000000001", tid="12345678", txn="ORDER00000000000000000000000001",
        amount="123450", message="Transaction declined by bank: insufficient funds",
        rrn="512345678901", auth_code="123456", card="4111XXXXXXXX1111", scheme="VISA",
        bank="State Bank of India", paytm_txn_id="20250605011610000000000000000000000",
        printed=(("Invoice", "INV-2026-000042"),),
    )
    lines = build_receipt(data, width=width, header=["My Store", "MG Road, Bengaluru"],
                          footer=["Thank you, visit again"])
    assert all(len(line) <= width for line in lines)
    text = "\n".join(lines)
    assert "₹1,234.50" in text
    assert "21-11-2026" in text and "18:05:09 IST" in text
    tid_line = next(line for line in lines if line.startswith("TID"))
    assert tid_line.endswith("XXXX5678")
    mid_line = next(line for line in lines if line.startswith("MID"))
    assert mid_line.endswith("0001") and "TESTMID" not in text
    assert {"success": "APPROVED", "failed": "DECLINED", "unknown": "STATUS UNKNOWN"}[status] \
        in text
    assert "Invoice" in text


def test_upi_receipt_shows_method_not_card() -> None:
    data = ReceiptData(kind="sale", status="success",
                       when=datetime(2026, 1, 2, 3, 4, 5, tzinfo=IST), mid="M", tid="T",
                       txn="ORDER0001", amount="100", method="UPI", rrn="512345678901")
    text = "\n".join(build_receipt(data))
    assert "Paid by" in text and "UPI" in text and "Card" not in text
