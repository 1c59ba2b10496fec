"""What the answers themselves say: Paytm's clock against ours, where the result letter
sits (the docs disagree, reference §4.3), and every field the client could not place."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from agent.certify.model import Findings, Verdict
from agent.certify.probes import Observation

CLOCK_WARN_S = 60.0  # beyond this the report warns
CLOCK_FAIL_S = 300.0  # beyond this it fails: timestamps Paytm may refuse, receipts wrong
# EDC timestamps have whole seconds: a skew this small is only rounding.
CLOCK_RESOLUTION_S = 1.0

# The fields the client knows (reads, or knowingly ignores), per reference section.
_HEAD_FIELDS = frozenset({"responseTimeStamp", "responseTimestamp", "channelId", "version",
                          "clientId", "checksum", "signature"})
_RESULT_FIELDS = frozenset({"resultStatus", "resultCode", "resultCodeId", "resultMsg"})
_EDC_STATUS_FIELDS = frozenset({  # §5.2
    "paytmMid", "paytmTid", "transactionDateTime", "merchantTransactionId",
    "merchantReferenceNo", "transactionAmount", "acquirementId", "retrievalReferenceNo",
    "authCode", "issuerMaskCardNo", "issuingBankName", "issuingBankId", "cardType",
    "cardScheme", "payMethod", "aid", "bankResponseCode", "bankResponseMessage", "bankMid",
    "bankTid", "acquiringBank", "originalAmount", "price", "productDetails", "emiDetails",
    "cashbackDetails", "merchantExtendedInfo", "extendedInfo", "resultInfo"})
_PG_STATUS_FIELDS = frozenset({  # §14
    "resultInfo", "txnId", "bankTxnId", "orderId", "txnAmount", "txnType", "gatewayName",
    "bankName", "mid", "paymentMode", "refundAmt", "txnDate"})


def check_clock(observations: Iterable[Observation], findings: Findings) -> None:
    timed = [o for o in observations if o.server_time is not None]
    if not timed:
        findings.add("Clock", "This PC against Paytm", Verdict.WARN,
                     "no answer carried a readable time: the clock could not be compared")
        return
    details = []
    worst = 0.0
    for o in timed:
        if o.server_time is None:  # filtered above; this narrows the type
            continue
        skew = (o.server_time - o.local_time).total_seconds()
        details.append(f"{o.family} {o.what}: Paytm {o.server_time:%Y-%m-%d %H:%M:%S} IST, "
                       f"Paytm minus this PC {skew:+.0f} s")
        if abs(skew) > abs(worst):
            worst = skew
    off = abs(worst)
    ahead = "behind" if worst > 0 else "ahead of"
    if off <= CLOCK_RESOLUTION_S + max(o.latency_s for o in timed):
        findings.add("Clock", "This PC against Paytm", Verdict.PASS,
                     "in step with Paytm's clock (within a second)", details)
    elif off <= CLOCK_WARN_S:
        findings.add("Clock", "This PC against Paytm", Verdict.PASS,
                     f"this PC is {off:.0f} s {ahead} Paytm", details)
    elif off <= CLOCK_FAIL_S:
        findings.add("Clock", "This PC against Paytm", Verdict.WARN,
                     f"this PC is {off:.0f} s {ahead} Paytm (more than {CLOCK_WARN_S:.0f} s): "
                     "enable time synchronisation (systemd-timesyncd or chrony)", details)
    else:
        findings.add("Clock", "This PC against Paytm", Verdict.FAIL,
                     f"this PC is {off / 60:.0f} minutes {ahead} Paytm (more than "
                     f"{CLOCK_FAIL_S / 60:.0f} minutes): set the clock and enable time "
                     "synchronisation before the first sale", details)


def check_answers(observations: Iterable[Observation], findings: Findings) -> None:
    observed = list(observations)
    edc = [o for o in observed if o.family == "EDC"]
    letters = []
    for o in edc:
        info = _result_info(o.document)
        if info is None:
            continue
        code, status = info.get("resultCode"), info.get("resultStatus")
        if isinstance(code, str) and len(code.strip()) == 1:
            letters.append(f"the letter in resultCode ({code!r}, resultStatus {status!r}): "
                           "as Odoo receives it")
        elif isinstance(status, str) and len(status.strip()) == 1:
            letters.append(f"the letter in resultStatus ({status!r}, resultCode {code!r}): "
                           "as the Sale page's table documents it")
        else:
            letters.append(f"no one-letter status (resultStatus {status!r}, resultCode "
                           f"{code!r}): the client reads the word and resultCodeId")
    if letters:
        distinct = sorted(set(letters))
        findings.add("Answers", "Where the result letter sits", Verdict.INFO, distinct[0],
                     distinct[1:])
    unplaced: list[str] = []
    for o in observed:
        known = _EDC_STATUS_FIELDS if o.family == "EDC" else _PG_STATUS_FIELDS
        unplaced.extend(f"{o.family} {o.what}: {where}" for where in _unknown_fields(
            o.document, known))
    if unplaced:
        findings.add("Answers", "Fields the client could not place", Verdict.INFO,
                     f"{len(unplaced)} field(s) not in the reference; the client ignores them",
                     sorted(set(unplaced)))
    else:
        findings.add("Answers", "Fields the client could not place", Verdict.PASS,
                     "none: every field of every answer is one the client knows")


def _result_info(document: object) -> Mapping[str, object] | None:
    body = document.get("body") if isinstance(document, dict) else None
    info = body.get("resultInfo") if isinstance(body, dict) else None
    return info if isinstance(info, dict) else None


def _unknown_fields(document: object, body_fields: frozenset[str]) -> list[str]:
    if not isinstance(document, dict):
        return ["(the answer is not a JSON object)"]
    found = [f"top level {key!r}" for key in document if key not in ("head", "body")]
    head, body = document.get("head"), document.get("body")
    if isinstance(head, dict):
        found += [f"head.{key}" for key in head if key not in _HEAD_FIELDS]
    if isinstance(body, dict):
        found += [f"body.{key} = {_short(value)}" for key, value in body.items()
                  if key not in body_fields]
    info = _result_info(document)
    if info is not None:
        found += [f"body.resultInfo.{key}" for key in info if key not in _RESULT_FIELDS]
    return found


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
