"""The EDC client end to end against the Paytm emulator on loopback.

Every code of reference §4.4 the emulator can produce from a request this client can
build, every magic amount, every injected fault; each time the outcome class (accepted,
refused, NotSent, Unknown) and what the emulator recorded (was the sale registered,
exactly one Sale for the id).

Not reachable from this client, so not here: 1809, 1813, 1814, 1815, 1825 (sub-wallet,
split and timeoutConfig fields, which SaleRequest does not offer), 0012, 0022, 0902 and
9001 (the emulator has no such merchant states).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from agent.paytm.checksum import ChecksumMode, MerchantKey
from agent.paytm.clock import now_ist, parse_paytm
from agent.paytm.codes import EDC_REQUEST_CODES, Handling
from agent.paytm.edc import (
    EdcClient,
    GstInfo,
    SaleRequest,
    StatusRequest,
    VoidRequest,
)
from agent.paytm.edc_answers import RequestAnswer, StatusAnswer, StatusState
from agent.paytm.http import make_session
from agent.paytm.outcome import Answered, CallOutcome, NotSent, Unknown
from agent.paytm.settings import PaytmConfig
from agent.sim.paytm import (
    DEMO_INACTIVE_TID,
    DEMO_MID,
    DEMO_TIDS,
    Emulator,
    EmulatorSettings,
    Fault,
    FaultKind,
    ResultStyle,
)
from agent.sim.paytm.signature import ChecksumMode as EmulatorMode
from devtools.config import CLIENT_DEMO_KEY

TID, OTHER_TID = DEMO_TIDS
READ_TIMEOUT_S = 5.0
FAST_READ_TIMEOUT_S = 0.3  # for the one test that waits for a read timeout
CUSTOMER_DELAY_S = 30.0  # emulator time, moved with advance(): nothing sleeps

_ids = itertools.count(1)


def new_txn() -> str:
    return f"EMU{next(_ids):08d}"


@asynccontextmanager
async def connect(emulator: Emulator, *, key: MerchantKey = CLIENT_DEMO_KEY, mid: str = DEMO_MID,
                  mode: ChecksumMode | None = None,
                  read_timeout_s: float = READ_TIMEOUT_S) -> AsyncIterator[EdcClient]:
    config = PaytmConfig(mid=mid, edc_base_url=emulator.base_url,
                         checksum_mode=mode or ChecksumMode(emulator.settings.checksum_mode.value),
                         connect_timeout_s=5.0, read_timeout_s=read_timeout_s)
    async with make_session(config) as session:
        yield EdcClient(session, config, key)


@asynccontextmanager
async def running(settings: EmulatorSettings) -> AsyncIterator[tuple[Emulator, EdcClient]]:
    emulator = Emulator(settings)
    async with emulator.serve(), connect(emulator) as client:
        yield emulator, client


@pytest.fixture
async def client(emulator: Emulator) -> AsyncIterator[EdcClient]:
    async with connect(emulator) as edc:
        yield edc


VARIANTS = [(ResultStyle.OBSERVED, ChecksumMode.PARAMS),
            (ResultStyle.DOCUMENTED, ChecksumMode.JSON)]


@pytest.fixture(params=VARIANTS, ids=[f"{s.value}-{m.value}" for s, m in VARIANTS])
async def variant(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Emulator, EdcClient]]:
    style, mode = request.param
    settings = EmulatorSettings(result_style=style, checksum_mode=EmulatorMode(mode))
    async with running(settings) as pair:
        yield pair


class Till:
    """One sale's requests, with the times Status Enquiry must repeat."""

    def __init__(self, client: EdcClient, amount: str = "100", tid: str = TID,
                 **extra: Any) -> None:
        self.client = client
        self.txn = new_txn()
        self.tid = tid
        self.time = now_ist()
        self.request = SaleRequest(tid=tid, txn=self.txn, amount=amount, txn_time=self.time,
                                   **extra)

    async def sale(self) -> CallOutcome[RequestAnswer]:
        return await self.client.sale(self.request)

    async def status(self, void: bool = False) -> CallOutcome[StatusAnswer]:
        return await self.client.status(StatusRequest(tid=self.tid, txn=self.txn,
                                                      txn_time=self.time, void=void))

    async def void(self) -> CallOutcome[RequestAnswer]:
        return await self.client.void(VoidRequest(tid=self.tid, txn=self.txn,
                                                  txn_time=self.time))

    async def accepted(self) -> None:
        answer = _answer(await self.sale())
        assert answer.accepted and answer.code == "0009", answer

    async def refused(self, code: str) -> RequestAnswer:
        answer = _answer(await self.sale())
        assert isinstance(answer, RequestAnswer)
        assert (answer.accepted, answer.code) == (False, code), answer
        return answer

    async def state(self, void: bool = False) -> StatusAnswer:
        answer = _answer(await self.status(void))
        assert isinstance(answer, StatusAnswer)
        return answer


def _answer(outcome: CallOutcome[Any]) -> Any:
    assert isinstance(outcome, Answered), outcome
    return outcome.response


def _registered(emulator: Emulator) -> list[str]:
    return [str(t["txn"]) for t in emulator.transactions()]


# -- magic amounts ----------------------------------------------------------------------------


async def test_card_success(variant: tuple[Emulator, EdcClient]) -> None:
    emulator, client = variant
    till = Till(client, "100", reference="INV42")
    await till.accepted()
    answer = await till.state()
    assert (answer.state, answer.code, answer.amount, answer.reference) == (
        StatusState.SUCCESS, "0000", "100", "INV42")
    payment = answer.payment
    assert payment is not None and payment.method == "CARD"
    assert payment.card is not None and "XXXXXXXX" in payment.card
    assert payment.auth_code and payment.rrn and payment.scheme and payment.card_type
    assert payment.acquirement_id and len(payment.acquirement_id) == 35
    assert emulator.count("sale", till.txn) == 1


async def test_upi_success(variant: tuple[Emulator, EdcClient]) -> None:
    _, client = variant
    till = Till(client, "106")
    await till.accepted()
    answer = await till.state()
    assert answer.state is StatusState.SUCCESS
    assert answer.payment is not None
    assert (answer.payment.method, answer.payment.card, answer.payment.auth_code) == (
        "UPI", None, None)
    assert answer.payment.rrn


async def test_declined_by_bank(variant: tuple[Emulator, EdcClient]) -> None:
    _, client = variant
    till = Till(client, "101")
    await till.accepted()
    answer = await till.state()
    assert (answer.state, answer.code) == (StatusState.FAILED, "0011")
    assert "declined" in answer.message.lower()
    assert answer.payment is not None and answer.payment.auth_code is None


async def test_customer_never_pays(variant: tuple[Emulator, EdcClient]) -> None:
    emulator, client = variant
    till = Till(client, "102")
    await till.accepted()
    answer = await till.state()
    assert (answer.state, answer.code) == (StatusState.PENDING, "0010")
    emulator.advance(emulator.settings.terminal_timeout_s)
    answer = await till.state()
    assert (answer.state, answer.code) == (StatusState.FAILED, "0011")
    assert answer.payment is None


async def test_cashier_rejects_the_popup(variant: tuple[Emulator, EdcClient]) -> None:
    _, client = variant
    till = Till(client, "103")
    await till.accepted()
    answer = await till.state()
    assert (answer.state, answer.code, answer.payment) == (StatusState.FAILED, "0011", None)


async def test_not_found_at_first(variant: tuple[Emulator, EdcClient]) -> None:
    emulator, client = variant
    till = Till(client, "104")
    await till.accepted()
    answer = await till.state()
    # Paytm pairs 0404 with F; the client must not read it as a failed payment.
    assert (answer.state, answer.code) == (StatusState.NOT_FOUND, "0404")
    emulator.advance(emulator.settings.not_found_window_s)
    assert (await till.state()).state is StatusState.SUCCESS


async def test_sale_response_lost_but_sale_landed(variant: tuple[Emulator, EdcClient]) -> None:
    emulator, client = variant
    till = Till(client, "105")
    outcome = await till.sale()
    assert isinstance(outcome, Unknown), outcome
    assert outcome.http_status is None
    assert emulator.count("sale", till.txn) == 1  # not resent behind our back
    assert _registered(emulator) == [till.txn]
    assert (await till.state()).state is StatusState.SUCCESS


async def test_magic_amounts_use_the_last_two_digits(client: EdcClient) -> None:
    till = Till(client, "123401")  # ₹1234.01: declined
    await till.accepted()
    assert (await till.state()).state is StatusState.FAILED


# -- Sale refusals (§4.4) ---------------------------------------------------------------------


async def test_0330_wrong_key(emulator: Emulator) -> None:
    async with connect(emulator, key=MerchantKey(b"WRONGKEY12345678")) as client:
        answer = await Till(client).refused("0330")
        assert answer.handling is Handling.OPERATOR
    assert _registered(emulator) == []


async def test_0330_wrong_checksum_mode(emulator: Emulator) -> None:
    assert emulator.settings.checksum_mode is EmulatorMode.PARAMS
    async with connect(emulator, mode=ChecksumMode.JSON) as client:
        await Till(client).refused("0330")


async def test_json_mode_end_to_end() -> None:
    async with running(EmulatorSettings(checksum_mode=EmulatorMode.JSON)) as (_, client):
        till = Till(client, "100", display_info={"Bill": "INV42"}, payment_mode="CARD",
                    auto_accept=True)
        await till.accepted()
        assert (await till.state()).state is StatusState.SUCCESS


async def test_full_request_is_accepted(client: EdcClient) -> None:
    till = Till(client, "100", reference="INV42", payment_mode="ALL", auto_accept=False,
                display_info={"Bill": "INV42", "Till": "1"}, print_info={"Cashier": "Asha"},
                extend_info={"lane": "till-1"},
                gst=GstInfo("29ABCDE1234F1Z5", "CGST:9|SGST:9", "INV42", "20240101100000"))
    await till.accepted()


async def test_0002_invalid_parameters(emulator: Emulator, client: EdcClient) -> None:
    # A GSTIN of the wrong shape: our client checks completeness, Paytm checks the format.
    till = Till(client, gst=GstInfo("not-a-gstin", "CGST:9", "INV1", "20240101100000"))
    answer = await till.refused("0002")
    assert answer.message == "Request Parameters are not valid"  # seed 003, verbatim
    assert answer.handling is Handling.FIX_REQUEST
    assert _registered(emulator) == []


async def test_1810_display_info_too_long(client: EdcClient) -> None:
    # Per-entry limits are Unconfirmed (§10.1), so the client leaves them to Paytm.
    await Till(client, display_info={"Bill": "x" * 21}).refused("1810")


async def test_0007_inactive_terminal(client: EdcClient) -> None:
    await Till(client, tid=DEMO_INACTIVE_TID).refused("0007")


async def test_0007_terminal_switched_off(emulator: Emulator, client: EdcClient) -> None:
    emulator.set_terminal_active(OTHER_TID, False)
    await Till(client, tid=OTHER_TID).refused("0007")


async def test_0029_unknown_terminal(client: EdcClient) -> None:
    await Till(client, tid="11111111").refused("0029")


async def test_0029_unknown_merchant(emulator: Emulator) -> None:
    async with connect(emulator, mid="UNKNOWNMID0000000001") as client:
        await Till(client).refused("0029")


async def test_0333_terminal_busy(emulator: Emulator, client: EdcClient) -> None:
    first = Till(client, "102")  # pending until the terminal times out
    await first.accepted()
    second = Till(client, "100")
    answer = await second.refused("0333")
    assert answer.handling is Handling.BUSY
    other_terminal = Till(client, "100", tid=OTHER_TID)
    await other_terminal.accepted()
    emulator.advance(emulator.settings.terminal_timeout_s)
    await Till(client, "100").accepted()
    assert second.txn not in _registered(emulator)


async def test_0233_duplicate_id(emulator: Emulator, client: EdcClient) -> None:
    till = Till(client, "100")
    await till.accepted()
    answer = await till.refused("0233")
    assert answer.handling is Handling.DUPLICATE
    assert emulator.count("sale", till.txn) == 2
    assert _registered(emulator) == [till.txn]


def test_every_refusal_here_is_a_documented_code() -> None:
    for code in ("0330", "0002", "1810", "0007", "0029", "0333", "0233"):
        assert code in EDC_REQUEST_CODES


# -- Status Enquiry and Void codes ------------------------------------------------------------


async def test_status_of_unknown_id_is_not_found(emulator: Emulator, client: EdcClient) -> None:
    till = Till(client)
    answer = await till.state()
    assert (answer.state, answer.code) == (StatusState.NOT_FOUND, "0404")
    assert emulator.count("status", till.txn) == 1


async def test_status_with_wrong_key_stays_pending(emulator: Emulator, client: EdcClient) -> None:
    till = Till(client)
    await till.accepted()
    async with connect(emulator, key=MerchantKey(b"WRONGKEY12345678")) as wrong:
        answer = _answer(await wrong.status(StatusRequest(tid=TID, txn=till.txn,
                                                          txn_time=till.time)))
    assert (answer.state, answer.code) == (StatusState.PENDING, "0330")


async def test_status_on_unknown_terminal_stays_pending(client: EdcClient) -> None:
    till = Till(client, tid="11111111")
    answer = await till.state()
    # 0029 is not a status code: never FAILED, never NOT_FOUND on a guess.
    assert (answer.state, answer.code) == (StatusState.PENDING, "0029")


async def test_void_flow(emulator: Emulator, client: EdcClient) -> None:
    till = Till(client, "100")
    await till.accepted()
    assert (await till.state()).state is StatusState.SUCCESS
    void_state = await till.state(void=True)
    assert (void_state.state, void_state.code) == (StatusState.NOT_FOUND, "0180")
    answer = _answer(await till.void())
    assert (answer.accepted, answer.code) == (True, "0009")
    void_state = await till.state(void=True)
    assert (void_state.state, void_state.code) == (StatusState.SUCCESS, "0000")
    assert emulator.count("void", till.txn) == 1
    void_statuses = [r for r in emulator.requests if r.api == "status" and r.event]
    assert [(r.event, r.result_code) for r in void_statuses] == [("VOID", "0180"),
                                                                 ("VOID", "0000")]


async def test_void_fails_on_the_terminal() -> None:
    settings = EmulatorSettings(customer_delay_s=CUSTOMER_DELAY_S)
    async with running(settings) as (emulator, client):
        till = Till(client, "100")
        await till.accepted()
        assert (await till.state()).state is StatusState.PENDING
        emulator.advance(CUSTOMER_DELAY_S)
        assert (await till.state()).state is StatusState.SUCCESS
        assert _answer(await till.void()).accepted
        pending = await till.state(void=True)
        assert (pending.state, pending.code) == (StatusState.PENDING, "0010")
        emulator.finish(till.txn, "failed")
        failed = await till.state(void=True)
        assert (failed.state, failed.code) == (StatusState.FAILED, "0090")
        # The sale itself is untouched by the failed void.
        assert (await till.state()).state is StatusState.SUCCESS


@pytest.mark.parametrize(("amount", "reason"), [("102", "pending"), ("101", "not successful")])
async def test_void_refused_for_unfinished_or_failed_sale(client: EdcClient, amount: str,
                                                          reason: str) -> None:
    till = Till(client, amount)
    await till.accepted()
    answer = _answer(await till.void())
    assert (answer.accepted, answer.code) == (False, "0002")
    # Seed 003's text: the reason is the emulator's detail, outside resultMsg.
    assert answer.message == "Request Parameters are not valid", reason


async def test_void_refused_while_terminal_busy(client: EdcClient) -> None:
    paid = Till(client, "100")
    await paid.accepted()
    assert (await paid.state()).state is StatusState.SUCCESS
    await Till(client, "102").accepted()  # holds the terminal
    answer = _answer(await paid.void())
    assert (answer.accepted, answer.code) == (False, "0333")


async def test_void_of_unknown_sale(client: EdcClient) -> None:
    answer = _answer(await Till(client).void())
    assert (answer.accepted, answer.code) == (False, "0002")


# -- injected faults --------------------------------------------------------------------------

# (kind, does the emulator process the request before spoiling the answer, HTTP status seen)
SALE_FAULTS: list[tuple[FaultKind, bool, int | None]] = [
    (FaultKind.HTTP_500, True, 500),
    (FaultKind.HTML, True, 200),
    (FaultKind.MALFORMED_JSON, True, 200),
    (FaultKind.DROP_AFTER_READ, True, None),
    (FaultKind.LOSE_RESPONSE, True, None),
    # The emulator closes before reading: nothing happened at "Paytm". The client cannot
    # know that (the request was written to an open connection), so it is Unknown too.
    (FaultKind.DROP_BEFORE_READ, False, None),
]


@pytest.mark.parametrize(("kind", "processed", "http_status"), SALE_FAULTS,
                         ids=[k.value for k, _, _ in SALE_FAULTS])
async def test_sale_fault_is_unknown(emulator: Emulator, client: EdcClient, kind: FaultKind,
                                     processed: bool, http_status: int | None) -> None:
    emulator.inject(Fault(kind=kind, api="sale"))
    till = Till(client, "100")
    outcome = await till.sale()
    assert isinstance(outcome, Unknown), outcome
    assert outcome.http_status == http_status
    assert emulator.count("sale") == 1  # one attempt on the wire, no silent retry
    assert emulator.requests[0].fault == kind.value
    # Status Enquiry resolves it: charged if the sale landed, unknown to Paytm otherwise.
    answer = await till.state()
    if processed:
        assert _registered(emulator) == [till.txn]
        assert answer.state is StatusState.SUCCESS
    else:
        assert _registered(emulator) == []
        assert answer.state is StatusState.NOT_FOUND


async def test_slow_answer_within_read_timeout(emulator: Emulator, client: EdcClient) -> None:
    emulator.inject(Fault(kind=FaultKind.DELAY, api="sale", delay_s=0.05))
    await Till(client).accepted()


async def test_answer_slower_than_read_timeout_is_unknown(emulator: Emulator) -> None:
    emulator.inject(Fault(kind=FaultKind.DELAY, api="sale", delay_s=60))
    async with connect(emulator, read_timeout_s=FAST_READ_TIMEOUT_S) as client:
        till = Till(client)
        outcome = await till.sale()
        assert isinstance(outcome, Unknown), outcome
    assert _registered(emulator) == [till.txn]  # it landed while we waited


@pytest.mark.parametrize("kind", [FaultKind.HTTP_500, FaultKind.HTML, FaultKind.MALFORMED_JSON,
                                  FaultKind.DROP_AFTER_READ, FaultKind.DROP_BEFORE_READ])
async def test_status_fault_is_unknown_then_recovers(emulator: Emulator, client: EdcClient,
                                                     kind: FaultKind) -> None:
    till = Till(client, "100")
    await till.accepted()
    emulator.inject(Fault(kind=kind, api="status"))
    assert isinstance(await till.status(), Unknown)
    assert (await till.state()).state is StatusState.SUCCESS


@pytest.mark.parametrize(("kind", "processed"), [(FaultKind.HTTP_500, True),
                                                 (FaultKind.DROP_BEFORE_READ, False)])
async def test_void_fault_is_unknown(emulator: Emulator, client: EdcClient, kind: FaultKind,
                                     processed: bool) -> None:
    till = Till(client, "100")
    await till.accepted()
    assert (await till.state()).state is StatusState.SUCCESS
    emulator.inject(Fault(kind=kind, api="void"))
    assert isinstance(await till.void(), Unknown)
    expected = StatusState.SUCCESS if processed else StatusState.NOT_FOUND
    assert (await till.state(void=True)).state is expected


async def test_fault_count_applies_to_the_next_n_calls(emulator: Emulator,
                                                       client: EdcClient) -> None:
    till = Till(client, "100")
    await till.accepted()
    emulator.inject(Fault(kind=FaultKind.HTTP_500, api="any", count=2))
    assert isinstance(await till.status(), Unknown)
    assert isinstance(await till.status(), Unknown)
    assert (await till.state()).state is StatusState.SUCCESS


# -- not sent ---------------------------------------------------------------------------------


async def test_emulator_down_is_not_sent() -> None:
    emulator = Emulator()
    async with emulator.serve() as base_url:
        pass
    config = PaytmConfig(mid=DEMO_MID, edc_base_url=base_url, connect_timeout_s=5.0)
    async with make_session(config) as session:
        client = EdcClient(session, config, CLIENT_DEMO_KEY)
        till = Till(client)
        assert isinstance(await till.sale(), NotSent)
        assert isinstance(await till.status(), NotSent)
    assert emulator.requests == []


# -- a day at the till ------------------------------------------------------------------------


@pytest.fixture
def tz_far_from_india() -> Iterator[None]:
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Pacific/Honolulu"
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


@pytest.mark.usefixtures("tz_far_from_india")
async def test_each_magic_amount_once_exactly_one_sale_each(emulator: Emulator,
                                                            client: EdcClient) -> None:
    expected = {"100": StatusState.SUCCESS, "101": StatusState.FAILED,
                "102": StatusState.PENDING, "103": StatusState.FAILED,
                "104": StatusState.NOT_FOUND, "105": StatusState.SUCCESS,
                "106": StatusState.SUCCESS}
    tills = {amount: Till(client, amount, tid=f"7{index:07d}")
             for index, amount in enumerate(expected, start=1)}
    for amount, till in tills.items():
        outcome = await till.sale()
        assert isinstance(outcome, Unknown if amount == "105" else Answered), (amount, outcome)
    for amount, till in tills.items():
        assert (await till.state()).state is expected[amount], amount
        assert emulator.count("sale", till.txn) == 1
    # Our transactionDateTime and the emulator's own IST clock agree, although the host
    # is in Honolulu (UTC-10): a wrong zone would be 15.5 hours off.
    sent = next(r for r in emulator.requests if r.txn == tills["100"].txn)
    assert isinstance(sent.json, dict)
    ours = parse_paytm(sent.json["body"]["transactionDateTime"])
    theirs = parse_paytm(emulator.transaction(tills["100"].txn)["started"])
    assert ours is not None and theirs is not None
    assert abs((ours - theirs).total_seconds()) < 5
