"""Async client for Paytm's PG APIs used by All-in-One Payment Request (reference §11–§17):
Send and Resend Payment Request, Transaction Status (v3), Refund, Refund Status.

Like the EDC client, a call never raises for anything that happens on the wire: it returns
a `CallOutcome` — NotSent (provably never reached Paytm), Unknown (may have reached Paytm,
no trustworthy answer), or Answered with a typed answer (see `agent.paytm.pg_models`).
Requests are validated when built, so a field Paytm would refuse for its format raises
`FieldError` before any byte leaves.

What is posted (reference §2.4, §12):

    {"head": {"clientId": "C11", "version": "v1",
              "requestTimestamp": "1704083400",            epoch seconds
              "channelId": "WEB",
              "signature": "<108 chars>"},                 string mode over <body text>
     "body": <body text>}                                  serialised once, signed as is

Answers: where `head.signature` is present it is verified in string mode over the exact
text of `body` as received; one that does not verify makes the outcome Unknown (logged,
never trusted). Paytm says the answers of this family are signed (§13), but its samples
and error answers do not always carry one, and an unsigned answer is no worse than the
EDC answers we already accept over the same TLS connection: an absent (or null)
signature is accepted and logged at DEBUG.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import aiohttp

from agent.paytm.checksum import MerchantKey, generate, verify
from agent.paytm.http import check_base_url
from agent.paytm.jsontext import member_text
from agent.paytm.outcome import Answered, ApiName, CallOutcome, NotSent, Unknown
from agent.paytm.pg_models import (
    LinkAnswer,
    PgStatusAnswer,
    RefundAnswer,
    RefundRequest,
    RefundStatusAnswer,
    SendLinkRequest,
    check_order_id,
    check_ref_id,
    parse_link_answer,
    parse_pg_status_answer,
    parse_refund_answer,
    parse_refund_status_answer,
    pg_response_time,
)
from agent.paytm.pipeline import Dialect, ExchangeObserver, SignedCaller
from agent.paytm.settings import PaytmConfig
from agent.paytm.transport import Observer, PaytmPoster

log = logging.getLogger(__name__)

SEND_PATH = "/order/sendpaymentrequest"  # §12, Observed
STATUS_PATH = "/v3/order/status"  # §14, Confirmed
REFUND_PATH = "/refund/apply"  # §16, Observed
REFUND_STATUS_PATH = "/v2/refund/status"  # §17, Observed
# The resend path is Unconfirmed (§13): it comes from paytm.resend_path.
HEAD_VERSION = "v1"
HEAD_CHANNEL = "WEB"  # WEB or WAP (§12); Paytm's samples omit it, the page marks it mandatory

def check_response_signature(text: str, document: object, key: MerchantKey) -> Unknown | None:
    """None when the answer may be trusted: its head.signature verifies over the exact body
    text, or it carries none (absent, null or ""). Unknown (with the reason) otherwise."""
    head = document.get("head") if isinstance(document, dict) else None
    signature = head.get("signature") if isinstance(head, dict) else None
    if signature is None or signature == "":
        return None
    if not isinstance(signature, str):
        return Unknown(f"answer signature is not a string ({type(signature).__name__})")
    body_text = member_text(text, "body")
    if body_text is None:
        return Unknown("answer signature present but the body cannot be located")
    if not verify(body_text, key, signature):
        return Unknown("answer signature does not verify: not trusted")
    return None


class PgClient:
    """The five PG calls over one shared session; see the module docstring."""

    def __init__(self, session: aiohttp.ClientSession, config: PaytmConfig, key: MerchantKey,
                 observer: Observer | None = None,
                 exchanges: ExchangeObserver | None = None) -> None:
        self._config = config
        self._key = key
        self._base_url = check_base_url(config.pg_base_url, "paytm.pg_base_url")
        self._caller = SignedCaller(
            PaytmPoster(session, config),
            Dialect(envelope=self._envelope, verify=self._verify,
                    server_time=pg_response_time, describe=_describe),
            observer, exchanges)

    async def send_link(self, req: SendLinkRequest) -> CallOutcome[LinkAnswer]:
        """Ask Paytm to text the customer a UPI link. Queued is not paid."""
        body = req.body(self._config.mid, self._config.display_name)
        return await self._caller.call("send_link", self._base_url + SEND_PATH, req.order_id,
                                       body, lambda doc: parse_link_answer(doc, req.order_id))

    async def resend_link(self, order_id: str) -> CallOutcome[LinkAnswer]:
        """Send the SMS of an existing order again (same order id as the Send)."""
        check_order_id(order_id, "merchantOrderId")
        body: dict[str, object] = {"mid": self._config.mid, "merchantOrderId": order_id}
        return await self._caller.call("resend_link", self._base_url + self._config.resend_path,
                                       order_id, body,
                                       lambda doc: parse_link_answer(doc, order_id))

    async def status(self, order_id: str) -> CallOutcome[PgStatusAnswer]:
        """Transaction Status (v3). Check `answer.matches(order_id, amount)` before closing."""
        check_order_id(order_id)
        body: dict[str, object] = {"mid": self._config.mid, "orderId": order_id}
        return await self._caller.call("pg_status", self._base_url + STATUS_PATH, order_id,
                                       body, lambda doc: parse_pg_status_answer(doc, order_id))

    async def refund(self, req: RefundRequest) -> CallOutcome[RefundAnswer]:
        """Register a refund; its end comes from `refund_status` (or the refund webhook)."""
        return await self._caller.call(
            "refund_apply", self._base_url + REFUND_PATH, req.order_id,
            req.body(self._config.mid),
            lambda doc: parse_refund_answer(doc, req.order_id, req.ref_id))

    async def refund_status(self, order_id: str, ref_id: str) -> CallOutcome[RefundStatusAnswer]:
        check_order_id(order_id)
        check_ref_id(ref_id)
        body: dict[str, object] = {"mid": self._config.mid, "orderId": order_id,
                                   "refId": ref_id}
        return await self._caller.call(
            "refund_status", self._base_url + REFUND_STATUS_PATH, order_id, body,
            lambda doc: parse_refund_status_answer(doc, order_id, ref_id))

    # ------------------------------------------------------------------

    def _envelope(self, body: Mapping[str, object]) -> bytes:
        """The posted document: the body is serialised once and that exact text is both
        signed and posted, so the signature covers the bytes Paytm reads (§2.4)."""
        return pg_envelope(body, self._key, self._config.client_id)

    def _verify(self, text: str, document: object) -> Unknown | None:
        untrusted = check_response_signature(text, document, self._key)
        if untrusted is None and not _signed(document):
            log.debug("answer carries no signature (accepted)")
        return untrusted


def pg_envelope(body: Mapping[str, object], key: MerchantKey, client_id: str) -> bytes:
    """The posted PG document (certify builds its probes with it too)."""
    # json.dumps with its defaults, as in Paytm's own Python samples.
    body_text = json.dumps(body)
    head = {
        "clientId": client_id,
        "version": HEAD_VERSION,
        "requestTimestamp": str(int(time.time())),
        "channelId": HEAD_CHANNEL,
        "signature": generate(body_text, key),
    }
    return ('{"head": ' + json.dumps(head) + ', "body": ' + body_text + "}").encode()


def _describe(api: ApiName, order_id: str, outcome: CallOutcome[Any], latency_s: float) -> None:
    match outcome:
        case Answered(response=LinkAnswer() as answer):
            log.info("%s %s: %s %s %r in %.2f s", api, order_id,
                     "queued" if answer.queued else "refused", answer.code or "-",
                     answer.message, latency_s)
        case Answered(response=PgStatusAnswer() as answer):
            # Polled 8 times a minute per live link: DEBUG keeps the log readable.
            log.debug("%s %s: %s %s %r in %.2f s", api, order_id, answer.state.value,
                      answer.code, answer.message, latency_s)
        case Answered(response=RefundAnswer() as answer):
            log.info("%s %s: refund %s %s %s %r in %.2f s", api, order_id, answer.ref_id,
                     answer.state.value, answer.code, answer.message, latency_s)
        case Answered(response=RefundStatusAnswer() as answer):
            log.debug("%s %s: refund %s %s %s %r in %.2f s", api, order_id,
                      answer.ref_id, answer.state.value, answer.code, answer.message,
                      latency_s)
        case NotSent(reason=reason):
            log.warning("%s %s: not sent (%s) after %.2f s", api, order_id, reason,
                        latency_s)
        case Unknown(reason=reason):
            log.warning("%s %s: outcome unknown (%s) after %.2f s", api, order_id, reason,
                        latency_s)


def _signed(document: object) -> bool:
    head = document.get("head") if isinstance(document, dict) else None
    return isinstance(head, dict) and bool(head.get("signature"))
