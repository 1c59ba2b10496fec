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


PAYTM_TXN_35 = "20261202122628465069039488491423217"  # 35 digits, as Paytm's EDC sends


@pytest.mark.parametrize(("kind", "paytm_txn_id"),
                         [("sale", PAYTM_TXN_35), ("refund", PAYTM_TXN_35[:30])])
def test_a_long_paytm_txn_id_wraps_evenly_and_right_aligned(kind: str,
                                                            paytm_txn_id: str) -> None:
    data = ReceiptData(kind=kind, status="success",
                       when=datetime(2026, 12, 2, 7, 9, 58, tzinfo=IST),
                       mid="TESTMID00000000000001", tid="12345678", txn="DEMOREFUND01",
                       amount="5000", paytm_txn_id=paytm_txn_id,
                       parent="DEMOUPI00001" if kind == "refund" else "")
    lines = build_receipt(data, width=32)
    at = lines.index("Paytm txn")
    rule = next(i for i in range(at, len(lines)) if lines[i].startswith("---"))
    pieces = lines[at + 1:rule]
    assert "".join(piece.strip() for piece in pieces) == paytm_txn_id
    # Every value line ends at the right edge, like MID, TID and Txn above it.
    assert all(len(line) == 32 for line in pieces)
    sizes = [len(piece.strip()) for piece in pieces]
    assert max(sizes) - min(sizes) <= 1  # no orphan like "217" on a line of its own
    txn_line = next(line for line in lines if line.startswith("Txn"))
    assert len(txn_line) == 32
