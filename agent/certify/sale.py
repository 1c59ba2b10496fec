"""`--sale PAISE`: on each lane's terminal one guided sale, followed to its final status, its
receipt printed, then voided and the void followed to the end. Staging hosts and loopback
emulators only, unless `--production`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from agent.certify.model import Findings, Verdict
from agent.certify.probes import probe_id
from agent.config import Config, LaneConfig
from agent.errors import ConfigError, FieldError
from agent.net import is_loopback_host
from agent.paytm.clock import now_ist
from agent.paytm.edc import (
    EdcClient,
    SaleRequest,
    StatusRequest,
    VoidRequest,
)
from agent.paytm.edc_answers import StatusAnswer, StatusState
from agent.paytm.outcome import Answered, CallOutcome
from agent.receipts import ReceiptData, build_receipt, rupees
from agent.rules import check_paise

SECTION = "Sale"
# Paytm's staging hosts (reference §1); anything else is treated as production.
STAGING_HOSTS = frozenset({"securegw-stage.paytm.in", "securestage.paytmpayments.com"})
FINAL = frozenset({StatusState.SUCCESS, StatusState.FAILED})

Say = Callable[[str], None]


def check_sale_allowed(config: Config, paise: str, production: bool) -> None:
    """ConfigError (exit 2) when the guided sale may not run: money on a production host
    without --production, a malformed amount, no lane."""
    try:
        check_paise(paise, "transactionAmount")  # the agent's one rule for paise
    except FieldError as exc:
        raise ConfigError([f"--sale {paise}: {exc.message}"]) from None
    if not config.lanes:
        raise ConfigError(["--sale needs at least one [[lanes]] entry (its terminal)"])
    host = urlsplit(config.paytm.edc_base_url).hostname or ""
    if not production and host not in STAGING_HOSTS and not is_loopback_host(host):
        raise ConfigError([f"--sale moves real money on {host}, which is not a Paytm staging "
                           "host: add --production to mean it"])


async def run_sales(config: Config, client: EdcClient, paise: str, say: Say,
                    findings: Findings) -> None:
    for lane in config.lanes:
        await _one_lane(config, client, lane, paise, say, findings)


async def _follow(config: Config, client: EdcClient, request: StatusRequest,
                  say: Say) -> StatusAnswer | None:
    """Ask until the status is final or polling.unknown_after_s has passed."""
    deadline = time.monotonic() + config.polling.unknown_after_s
    while True:
        outcome: CallOutcome[StatusAnswer] = await client.status(request)
        if isinstance(outcome, Answered) and outcome.response.state in FINAL:
            return outcome.response
        if time.monotonic() >= deadline:
            return None
        if isinstance(outcome, Answered):
            say(f"    … {outcome.response.state.value} ({outcome.response.code} "
                f"{outcome.response.message})")
        await asyncio.sleep(config.polling.interval_s)


async def _one_lane(config: Config, client: EdcClient, lane: LaneConfig, paise: str,
                    say: Say, findings: Findings) -> None:
    name = f"Guided sale on terminal {lane.tid} ({lane.name})"
    txn_time = now_ist()
    sale = SaleRequest(tid=lane.tid, txn=probe_id(), amount=paise, txn_time=txn_time,
                       reference="CERTIFY")
    say(f"  → accept it on terminal {lane.tid} now: a sale of {rupees(paise)} "
        f"(merchantTransactionId {sale.txn})")
    sent = await client.sale(sale)
    if not isinstance(sent, Answered) or not sent.response.accepted:
        why = (f"{sent.response.code} {sent.response.message}" if isinstance(sent, Answered)
               else type(sent).__name__ + ": " + sent.reason)
        findings.add(SECTION, name, Verdict.FAIL, f"the sale was not accepted: {why}")
        return
    final = await _follow(config, client, StatusRequest(lane.tid, sale.txn, txn_time), say)
    if final is None:
        findings.add(SECTION, name, Verdict.FAIL, "the sale had no final status within "
                     f"{config.polling.unknown_after_s:g} s (polling.unknown_after_s)")
        return
    receipt = _receipt(config, lane, sale, final)  # printed with the check's details
    if final.state is not StatusState.SUCCESS:
        findings.add(SECTION, name, Verdict.FAIL, f"the sale failed: {final.code} "
                     f"{final.message}", ["Receipt:", *receipt])
        return
    say(f"  → accept the void on terminal {lane.tid} now")
    voided = await client.void(VoidRequest(lane.tid, sale.txn, txn_time))
    if not isinstance(voided, Answered) or not voided.response.accepted:
        why = (f"{voided.response.code} {voided.response.message}"
               if isinstance(voided, Answered) else voided.reason)
        findings.add(SECTION, name, Verdict.FAIL, f"sale paid, but the void was not accepted: "
                     f"{why}; refund it from the Paytm dashboard", ["Receipt:", *receipt])
        return
    void_final = await _follow(config, client,
                               StatusRequest(lane.tid, sale.txn, txn_time, void=True), say)
    if void_final is None or void_final.state is not StatusState.SUCCESS:
        why = (f"{void_final.code} {void_final.message}" if void_final is not None
               else "no final void status in time")
        findings.add(SECTION, name, Verdict.FAIL, f"sale paid, void not confirmed: {why}",
                     ["Receipt:", *receipt])
        return
    payment = final.payment
    findings.add(SECTION, name, Verdict.PASS,
                 f"sale of {rupees(paise)} paid"
                 + (f" by {payment.method}" if payment and payment.method else "")
                 + " and voided, both followed to their final status",
                 [f"Paytm transaction id (acquirementId): "
                  f"{payment.acquirement_id if payment else '?'}", "Receipt:", *receipt])


def _receipt(config: Config, lane: LaneConfig, sale: SaleRequest,
             answer: StatusAnswer) -> tuple[str, ...]:
    p = answer.payment
    data = ReceiptData(
        kind="sale", status=answer.state.value if answer.state in FINAL else "unknown",
        when=now_ist(), mid=config.paytm.mid, tid=lane.tid, txn=sale.txn, amount=sale.amount,
        message=answer.message, reference=sale.reference or "",
        rrn=(p.rrn or "") if p else "", auth_code=(p.auth_code or "") if p else "",
        card=(p.card or "") if p else "",  # masked as Paytm sent it
        scheme=(p.scheme or "") if p else "", method=(p.method or "") if p else "",
        bank=(p.bank or "") if p else "", paytm_txn_id=(p.acquirement_id or "") if p else "")
    return build_receipt(data, width=config.receipt.width, header=config.receipt.header,
                         footer=config.receipt.footer)
