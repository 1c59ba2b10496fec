"""Fuzzing the Paytm answer parsers (agent/paytm/edc.py, agent/paytm/pg_models.py).

Beyond the parsers' own property tests (tests/paytm): every answer shape the emulator
gives (both result styles, every state) is damaged member by member and byte by byte,
and the money-safety rules of tests/fuzz/oracles.py must hold for every parser on every
document: never a success without a success signal, never a failure that could have
been paid, never an answer about another transaction taken for ours.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from agent.paytm.outcome import Unknown
from agent.paytm.transport import decode_response
from tests.fuzz.budget import budget
from tests.fuzz.oracles import check_edc, check_pg
from tests.fuzz.strategies import mutated_bytes, mutated_document

TXN, ORDER, REF = "CH0001L01N00001", "ORD1001", "REF1001"
HEAD = {"responseTimeStamp": "2024-01-01 10:00:00", "channelId": "EDC", "version": "3.1"}


def _edc(status: str, code: str, code_id: str, msg: str, **body: Any) -> dict[str, Any]:
    return {"head": dict(HEAD), "body": {
        "merchantTransactionId": TXN, "paytmMid": "TESTMID00000000000001",
        "paytmTid": "12345678", **body,
        "resultInfo": {"resultStatus": status, "resultCode": code, "resultCodeId": code_id,
                       "resultMsg": msg}}}


PAYMENT = {"transactionAmount": "15000", "acquirementId": "2024" + "1" * 31,
           "retrievalReferenceNo": "123456789012", "authCode": "123456",
           "issuerMaskCardNo": "4111XXXXXXXX1111", "issuingBankName": "HDFC Bank",
           "cardType": "CREDIT_CARD", "cardScheme": "VISA", "payMethod": "CARD",
           "bankResponseCode": "00", "merchantReferenceNo": "INV1"}
EDC_SEEDS: list[dict[str, Any]] = [
    _edc("ACCEPTED_SUCCESS", "A", "0009", "ACCEPTED_SUCCESS"),
    _edc("A", "ACCEPTED_SUCCESS", "0009", "ACCEPTED_SUCCESS"),  # documented style
    _edc("FAIL", "F", "0333", "Terminal is busy"),
    _edc("FAIL", "F", "0233", "Duplicate order id"),
    _edc("SUCCESS", "S", "0000", "Success", **PAYMENT),
    _edc("S", "SUCCESS", "0000", "Success", **PAYMENT),
    _edc("PENDING", "P", "0010", "Pending"),
    _edc("FAIL", "F", "0011", "Transaction declined by bank", **PAYMENT),
    _edc("FAIL", "F", "0404", "Transaction not found"),
    _edc("FAIL", "F", "0180", "Void not found"),
    _edc("FAIL", "F", "0090", "Void rejected on terminal"),
    _edc("FAIL", "F", "0012", "System error"),
]


def _pg(status: str, code: str, msg: str, **body: Any) -> dict[str, Any]:
    return {"head": {"responseTimestamp": "1704083400000", "version": "v1",
                     "signature": "x"},
            "body": {**body, "resultInfo": {"resultStatus": status, "resultCode": code,
                                            "resultMsg": msg}}}


PG_SEEDS: list[dict[str, Any]] = [
    _pg("S", "0000", "Success", merchantOrderId=ORDER),
    _pg("F", "325", "Duplicate order id", merchantOrderId=ORDER),
    _pg("TXN_SUCCESS", "01", "Txn Success", orderId=ORDER, txnId="2024" + "2" * 31,
        bankTxnId="123456789012", txnAmount="1303.00", paymentMode="UPI"),
    _pg("TXN_FAILURE", "227", "Payment failed", orderId=ORDER, txnAmount="1303.00"),
    _pg("TXN_FAILURE", "810", "Link expired", orderId=ORDER),
    _pg("PENDING", "402", "Pending at bank", orderId=ORDER),
    _pg("NO_RECORD_FOUND", "334", "No record", orderId=ORDER),
    _pg("PENDING", "601", "Refund pending", orderId=ORDER, refId=REF, refundId="R1",
        refundAmount="10.00"),
    _pg("TXN_SUCCESS", "10", "Refund successful", orderId=ORDER, refId=REF,
        refundAmount="10.00", totalRefundAmount="10.00"),
    _pg("TXN_FAILURE", "620", "Balance low", orderId=ORDER, refId=REF),
    _pg("TXN_FAILURE", "617", "Duplicate refId", orderId=ORDER, refId=REF),
    _pg("TXN_FAILURE", "631", "No such refund", orderId=ORDER, refId=REF),
    _pg("TXN_FAILURE", "501", "System error", orderId=ORDER),
    _pg("F", "330", "Invalid checksum"),
]
txns = st.sampled_from([TXN, None])


@budget(200)
@given(st.sampled_from(EDC_SEEDS).flatmap(mutated_document), txns)
def test_damaged_edc_answers(document: Any, txn: str | None) -> None:
    check_edc(document, txn)


@budget(200)
@given(st.sampled_from(PG_SEEDS).flatmap(mutated_document), st.sampled_from([ORDER, None]),
       st.sampled_from([REF, None]))
def test_damaged_pg_answers(document: Any, order_id: str | None, ref_id: str | None) -> None:
    check_pg(document, order_id, ref_id)


@budget(200)
@given(st.sampled_from([json.dumps(d).encode() for d in EDC_SEEDS + PG_SEEDS]).flatmap(
    mutated_bytes), st.sampled_from([200, 400, 404, 500]))
def test_damaged_answer_bytes(raw: bytes, http_status: int) -> None:
    document = decode_response(http_status, raw)  # documented: never raises
    if isinstance(document, Unknown):
        return
    check_edc(document, TXN)
    check_pg(document, ORDER, REF)
