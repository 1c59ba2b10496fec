"""S2S payment callbacks to the agent (reference §18.1): off unless a URL is configured.

When a payment-link order becomes final (paid, failed, expired) the emulator POSTs the
callback Paytm would: form-encoded key-value pairs signed with CHECKSUMHASH (params mode),
or the JSON shape {"head": {"signature"}, "body"} signed over the body text.

Orders become final lazily (pg_state.py), so callbacks are collected whenever the state is
looked at — after every PG request, after `pay()`, and by `deliver()` — and sent by one
worker task, in order, one at a time. That task is the only background work the emulator
does: it is tracked, `deliver()` awaits it (so tests wait on it, never on a sleep) and
`close()` cancels it when the emulator stops.

Bad days on demand: `duplicates` (each callback is sent again that many times, after
everything that was waiting with it), `reverse` (callbacks waiting together go out newest
first), `hold` (nothing is sent until `deliver()`, so everything waits together),
`redeliver(order_id, tamper=...)` (send an order's callback again later, optionally
altered after signing: a forgery).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp

from agent.sim.paytm.clock import Instant, SimClock
from agent.sim.paytm.money import rupees
from agent.sim.paytm.pg_state import (
    CODE_CLOSED,
    CODE_DECLINED,
    CODE_PAID,
    LinkOrder,
    LinkStatus,
    PgState,
    pg_time,
)
from agent.sim.paytm.settings import EmulatorSettings
from agent.sim.paytm.signature import sign, sign_params
from agent.sim.paytm.state import StateError
from agent.sim.paytm.wire import COMPACT

log = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_S = 5.0
MAX_DUPLICATES = 10
FORM_TYPE = "application/x-www-form-urlencoded"
JSON_TYPE = "application/json"
SHAPES = ("form", "json")
STATUS_TEXT = {
    LinkStatus.PAID: ("TXN_SUCCESS", CODE_PAID, "Txn Success"),
    LinkStatus.FAILED: ("TXN_FAILURE", CODE_DECLINED,
                        "Your payment has been declined by your bank"),
    LinkStatus.EXPIRED: ("TXN_FAILURE", CODE_CLOSED, "Txn failed: the payment link expired"),
}


@dataclass(frozen=True, slots=True)
class Outgoing:
    order_id: str
    mid: str
    status: str  # TXN_SUCCESS | TXN_FAILURE
    content_type: str
    body: bytes
    copy: int = 0  # 0: the first send; n: the n-th duplicate or redelivery
    tampered: bool = False


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    order_id: str
    status: str
    copy: int
    tampered: bool
    content_type: str
    body: str
    http_status: int | None  # None when the POST failed
    error: str | None
    wall_time: float  # emulator clock, epoch seconds

    def to_json(self) -> dict[str, object]:
        return {"order_id": self.order_id, "status": self.status, "copy": self.copy,
                "tampered": self.tampered, "content_type": self.content_type,
                "body": self.body, "http_status": self.http_status, "error": self.error,
                "wall_time": self.wall_time}


def _fields(order: LinkOrder) -> dict[str, str]:
    status, code, message = STATUS_TEXT[order.status]
    payment = order.payment
    return {
        "ORDERID": order.order_id,
        "MID": order.mid,
        "TXNID": payment.txn_id if payment else "",
        "TXNAMOUNT": rupees(order.request.amount_paise),
        "CURRENCY": "INR",
        "PAYMENTMODE": payment.payment_mode if payment else "",
        "TXNDATE": payment.txn_date if payment else (
            pg_time(order.decided) if order.decided else ""),
        "STATUS": status,
        "RESPCODE": code,
        "RESPMSG": message,
        "GATEWAYNAME": payment.gateway if payment else "",
        "BANKTXNID": payment.bank_txn_id if payment else "",
        "BANKNAME": payment.bank_name if payment else "",
    }


def _json_body(fields: dict[str, str]) -> dict[str, object]:
    """The JSON callback's body: the Transaction Status field names (§14, §18.1)."""
    return {"orderId": fields["ORDERID"], "mid": fields["MID"], "txnId": fields["TXNID"],
            "txnAmount": fields["TXNAMOUNT"], "currency": fields["CURRENCY"],
            "paymentMode": fields["PAYMENTMODE"], "txnDate": fields["TXNDATE"],
            "gatewayName": fields["GATEWAYNAME"], "bankTxnId": fields["BANKTXNID"],
            "bankName": fields["BANKNAME"],
            "resultInfo": {"resultStatus": fields["STATUS"], "resultCode": fields["RESPCODE"],
                           "resultMsg": fields["RESPMSG"]}}


def _tamper(fields: dict[str, str]) -> dict[str, str]:
    """What a forger would change: a failure into a success, or a larger amount."""
    forged = dict(fields)
    if forged["STATUS"] != "TXN_SUCCESS":
        forged.update(STATUS="TXN_SUCCESS", RESPCODE=CODE_PAID, RESPMSG="Txn Success")
    else:
        whole, _, frac = forged["TXNAMOUNT"].partition(".")
        forged["TXNAMOUNT"] = f"{int(whole) + 1}.{frac or '00'}"
    return forged


class WebhookSender:
    def __init__(self, settings: EmulatorSettings, state: PgState, clock: SimClock,
                 on_delivery: Callable[[], None] | None = None) -> None:
        self._settings = settings
        self._state = state
        self._clock = clock
        self._on_delivery = on_delivery
        self.url: str | None = settings.webhook_url
        self.shape = settings.webhook_format
        self.duplicates = 0
        self.reverse = False
        self.hold = False
        self._queue: deque[Outgoing] = deque()
        self._last: dict[tuple[str, str], dict[str, str]] = {}  # (mid, order) → fields
        self._worker: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self.deliveries: list[WebhookDelivery] = []

    def configure(self, *, url: str | None = None, shape: str | None = None,
                  duplicates: int | None = None, reverse: bool | None = None,
                  hold: bool | None = None, enabled: bool = True) -> None:
        """Change what is set (None leaves a setting alone); enabled=False turns delivery off."""
        if shape is not None and shape not in SHAPES:
            raise ValueError(f"format must be form or json, got {shape!r}")
        if duplicates is not None and (isinstance(duplicates, bool)
                                       or not isinstance(duplicates, int)
                                       or not 0 <= duplicates <= MAX_DUPLICATES):
            raise ValueError(f"duplicates must be 0..{MAX_DUPLICATES}, got {duplicates!r}")
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError(f"url must be http:// or https://, got {url!r}")
        if url is not None:
            self.url = url
        if not enabled:
            self.url = None
        if shape is not None:
            self.shape = shape
        if duplicates is not None:
            self.duplicates = duplicates
        if reverse is not None:
            self.reverse = reverse
        if hold is not None:
            self.hold = hold

    def options(self) -> dict[str, object]:
        return {"url": self.url, "format": self.shape, "duplicates": self.duplicates,
                "reverse": self.reverse, "hold": self.hold, "queued": len(self._queue)}

    # ------------------------------------------------------------------

    def _outgoing(self, fields: dict[str, str], copy: int = 0,
                  tampered: bool = False) -> Outgoing | None:
        merchant = self._settings.merchant(fields["MID"])
        if merchant is None:
            return None
        sent = _tamper(fields) if tampered else fields
        if self.shape == "json":
            # Signed over the genuine body; a tampered copy carries the altered one.
            # Compact, like every PG answer of the emulator (see pg.py).
            head = {"version": "v1",
                    "signature": sign(json.dumps(_json_body(fields), separators=COMPACT),
                                          merchant.key)}
            data = ('{"head":' + json.dumps(head, separators=COMPACT) + ',"body":'
                    + json.dumps(_json_body(sent), separators=COMPACT) + "}").encode()
            content_type = JSON_TYPE
        else:
            checksum = sign_params(fields, merchant.key)
            data = urlencode({**sent, "CHECKSUMHASH": checksum}).encode()
            content_type = FORM_TYPE
        return Outgoing(order_id=fields["ORDERID"], mid=fields["MID"], status=sent["STATUS"],
                        content_type=content_type, body=data, copy=copy, tampered=tampered)

    def collect(self, now: Instant) -> None:
        """Settle every open order; queue the callbacks of those that became final."""
        self._state.settle_all(now)
        settled = self._state.take_settled()
        if self.url is None or not settled:
            return
        batch: list[Outgoing] = []
        for order in settled:
            fields = _fields(order)
            self._last[(order.mid, order.order_id)] = fields
            outgoing = self._outgoing(fields)
            if outgoing is not None:
                batch.append(outgoing)
        self._queue.extend(batch)
        if not self.hold:
            self._start()

    def redeliver(self, order_id: str, tamper: bool = False, mid: str | None = None) -> None:
        """Queue the callback of a final order again (altered after signing if `tamper`)."""
        order = self._state.find_link(order_id, mid)
        self.collect(self._clock.now())
        if not order.status.final:
            raise StateError(f"order {order_id!r} is not final yet ({order.status.value})")
        if self.url is None:
            raise StateError("webhooks are off: configure a URL first")
        fields = self._last.get((order.mid, order.order_id)) or _fields(order)
        copy = 1 + sum(1 for d in self.deliveries if d.order_id == order_id)
        outgoing = self._outgoing(fields, copy=copy, tampered=tamper)
        if outgoing is not None:
            self._queue.append(outgoing)
        if not self.hold:
            self._start()

    def _start(self) -> None:
        if self._worker is not None and not self._worker.done():
            return
        if not self._queue:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside the loop: deliver() will send them
            return
        self._worker = loop.create_task(self._run(), name="emulator-webhooks")

    async def deliver(self) -> list[WebhookDelivery]:
        """Collect, send everything queued (even when held) and wait until it is sent.
        Returns the deliveries made meanwhile."""
        before = len(self.deliveries)
        self.collect(self._clock.now())
        while self._queue or (self._worker is not None and not self._worker.done()):
            self._start()
            if self._worker is not None:
                await asyncio.shield(self._worker)
        return self.deliveries[before:]

    def _round(self) -> list[Outgoing]:
        """Everything waiting, in the order it goes out: newest first when `reverse`, then
        `duplicates` more copies of each first send."""
        waiting = list(self._queue)
        self._queue.clear()
        if self.reverse:
            waiting.reverse()
        copies = [Outgoing(o.order_id, o.mid, o.status, o.content_type, o.body, copy=n)
                  for n in range(1, self.duplicates + 1) for o in waiting if o.copy == 0]
        return waiting + copies

    async def _run(self) -> None:
        while self._queue:
            for outgoing in self._round():
                await self._send(outgoing)

    async def _send(self, outgoing: Outgoing) -> None:
        url = self.url
        status: int | None = None
        error: str | None = None
        if url is None:
            error = "webhooks turned off"
        else:
            if self._session is None or self._session.closed:
                self._session = aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_S))
            try:
                async with self._session.post(
                        url, data=outgoing.body,
                        headers={"Content-Type": outgoing.content_type}) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                error = f"{type(exc).__name__}: {exc}"
        log.info("webhook %s %s copy %d%s → %s", outgoing.order_id, outgoing.status,
                 outgoing.copy, " (tampered)" if outgoing.tampered else "",
                 status if status is not None else error)
        self.deliveries.append(WebhookDelivery(
            order_id=outgoing.order_id, status=outgoing.status, copy=outgoing.copy,
            tampered=outgoing.tampered, content_type=outgoing.content_type,
            body=outgoing.body.decode(), http_status=status, error=error,
            wall_time=self._clock.now().wall))
        if self._on_delivery is not None:
            self._on_delivery()

    def reset(self) -> None:
        self._queue.clear()
        self._last.clear()
        self.deliveries.clear()
        self.url = self._settings.webhook_url
        self.shape = self._settings.webhook_format
        self.duplicates, self.reverse, self.hold = 0, False, False

    async def close(self) -> None:
        """Cancel any delivery in flight and release the HTTP session: no lingering tasks."""
        self._queue.clear()
        worker, self._worker = self._worker, None
        if worker is not None and not worker.done():
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        if self._session is not None:
            await self._session.close()
            self._session = None
