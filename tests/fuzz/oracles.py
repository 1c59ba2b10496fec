"""What must hold for any input: one check per fuzzing target.

The property tests (tests/fuzz/test_*.py) feed these checks generated inputs; the corpus
(tests/fuzz/corpus/*.json) feeds them the inputs worth keeping. A check raises
AssertionError for a broken rule, `KnownBug` for a failure already reported (see
KNOWN_BUGS), and returns quietly otherwise.

The money-safety rules are written from the protocol documents, not copied from the
parsers: a status is SUCCESS only when some signal says success and none says otherwise.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from agent.config import Config, config_from_dict, parse_config
from agent.errors import ConfigError
from agent.link.codec import (
    ACK,
    ENQ,
    ETX,
    MAX_PAYLOAD,
    MIN_PAYLOAD,
    NAK,
    SOH,
    STX,
    AnswerMalformed,
    AnswerReceived,
    ControlReceived,
    Event,
    FrameDecoder,
    FrameReceived,
    FrameRejected,
    InvalidPayloadError,
    PartialDropped,
    RejectReason,
    encode_frame,
)
from agent.net import is_loopback_host
from agent.paytm.checksum import MerchantKey
from agent.paytm.codes import EDC_REQUEST_CODES
from agent.paytm.edc import (
    parse_request_answer,
    parse_status_answer,
)
from agent.paytm.edc_answers import RequestAnswer, StatusAnswer, StatusState
from agent.paytm.outcome import Unknown
from agent.paytm.pg_models import (
    LinkAnswer,
    PgStatusAnswer,
    PgStatusState,
    RefundAnswer,
    RefundState,
    RefundStatusAnswer,
    parse_link_answer,
    parse_pg_status_answer,
    parse_refund_answer,
    parse_refund_status_answer,
)
from agent.paytm.webhook import Callback, InvalidCallback, parse_callback
from agent.register.codec import (
    MessageError,
    decode_reply,
    decode_request,
    encode,
    message_id,
)
from agent.register.messages import REQUEST_TYPES, Error, ErrorCode
from devtools.crc import reference_crc16

PRINTABLE: Final = re.compile(rb"[\x20-\x7e]*")


class KnownBug(Exception):
    """The input hits a bug that is already reported (KNOWN_BUGS); the check stops there."""


@dataclass(frozen=True, slots=True)
class Bug:
    name: str
    target: str
    exception: type[BaseException]
    message: re.Pattern[str]
    fix: str


# Findings of the fuzzers, each with the fix proposed (docs/reliability.md). Remove an
# entry once its fix is in: the strict-xfail corpus cases then tell which ones to drop.
# Reported and fixed so far: a 4,300-digit integer (tomllib's ValueError), a 309-digit
# duration (OverflowError) and an unbalanced "[" in a URL (urlsplit's ValueError). Their
# inputs stay in corpus/config.json as regression cases.
KNOWN_BUGS: Final[tuple[Bug, ...]] = ()


def _known(target: str, exc: BaseException) -> Bug | None:
    for bug in KNOWN_BUGS:
        if bug.target == target and isinstance(exc, bug.exception) \
                and bug.message.search(str(exc)):
            return bug
    return None


# -- frames -----------------------------------------------------------------------------


_SEQ: Final = "0123456789ABCDEF"
_HEX4: Final = re.compile(rb"[0-9A-F]{4}")


class ReferenceDecoder:
    """protocol §2 R1-R6, §6 V1-V4 and the decisions of agent/link/codec.py, one byte at
    a time: slow and obvious, the oracle for the fast decoder. `v2=False`: v1 only."""

    def __init__(self, gap_s: float, *, v2: bool = True) -> None:
        self.gap_s = gap_s
        self.v2 = v2
        self.state = "idle"
        self.buf = bytearray()
        self.tail = bytearray()  # crc digits of a v2 frame; seq and crc of an answer
        self.seq = 0
        self.control = 0
        self.last: float | None = None

    def expire(self, now: float) -> list[Event]:
        if self.state == "idle" or self.last is None or now - self.last < self.gap_s - 1e-9:
            return []
        events: list[Event] = []
        if self.state in ("payload", "lrc", "seq", "payload2", "crc"):
            events.append(PartialDropped())
        elif self.state == "answer" and self.tail:
            events.append(AnswerMalformed(self.control, bytes(self.tail)))
        self.state, self.last = "idle", None
        self.buf.clear()
        self.tail.clear()
        return events

    def feed(self, data: bytes, now: float) -> list[Event]:
        events = self.expire(now)
        for byte in data:
            events += self._byte(byte)
        if data:
            self.last = None if self.state == "idle" else now
        return events

    def _start(self, byte: int) -> None:
        self.buf.clear()
        self.tail.clear()
        self.state = "payload" if byte == STX else "seq"

    def _byte(self, byte: int) -> list[Event]:
        state = self.state
        if state == "answer":
            if 0x20 <= byte <= 0x7E:
                self.tail.append(byte)
                if len(self.tail) < 5:
                    return []
                self.state = "idle"
                return [self._answer()]
            # Not part of an answer: the ACK/NAK was bare; this byte starts afresh.
            events: list[Event] = []
            if self.tail:
                events.append(AnswerMalformed(self.control, bytes(self.tail)))
            self.tail.clear()
            self.state = "idle"
            return events + self._byte(byte)
        if state == "idle":
            if byte == STX or (byte == SOH and self.v2):
                self._start(byte)
            elif byte in (ENQ, ACK, NAK):
                if self.v2 and byte != ENQ:
                    self.state, self.control = "answer", byte
                    self.tail.clear()
                return [ControlReceived(byte)]
        elif state == "payload":
            if byte == STX:  # R4
                self.buf.clear()
            elif byte == ETX:
                self.state = "lrc"
            elif len(self.buf) == MAX_PAYLOAD:  # R3: this byte would be one too many
                self.buf.clear()
                self.state = "skip"
                return [FrameRejected(RejectReason.OVERSIZE)]
            else:
                self.buf.append(byte)
        elif state == "lrc":
            payload = bytes(self.buf)
            self.buf.clear()
            self.state = "idle"
            expected = functools.reduce(lambda a, b: a ^ b, payload, ETX)
            if byte != expected:
                return [FrameRejected(RejectReason.BAD_LRC)]
            if not PRINTABLE.fullmatch(payload):
                return [FrameRejected(RejectReason.BAD_BYTE)]
            if len(payload) < MIN_PAYLOAD:
                return [FrameRejected(RejectReason.TOO_SHORT)]
            return [FrameReceived(payload)]
        elif state == "skip":
            if byte == STX:
                self.state = "payload"
            elif byte == ETX:
                self.state = "skip_lrc"
        elif state == "skip_lrc":  # the oversized frame's LRC, whatever it is
            self.state = "idle"
        elif state == "seq":
            if byte in (STX, SOH):
                self._start(byte)
            else:
                self.seq, self.state = byte, "payload2"
        elif state == "payload2":
            if byte in (STX, SOH):
                self._start(byte)
            elif byte == ETX:
                self.state = "crc"
            elif len(self.buf) == MAX_PAYLOAD:
                self.buf.clear()
                self.state = "skip2"
                return [FrameRejected(RejectReason.OVERSIZE, version=2)]
            else:
                self.buf.append(byte)
        elif state == "skip2":
            if byte in (STX, SOH):
                self._start(byte)
            elif byte == ETX:
                self.state = "skip_crc"
                self.tail.clear()
        else:  # crc or skip_crc: four digits; STX/SOH restart
            if byte in (STX, SOH):
                self._start(byte)
                return []
            self.tail.append(byte)
            if len(self.tail) < 4:
                return []
            self.state = "idle"
            if state == "skip_crc":
                self.tail.clear()
                return []
            return [self._frame2()]
        return []

    def _frame2(self) -> Event:
        payload, text = bytes(self.buf), bytes(self.tail)
        self.buf.clear()
        self.tail.clear()
        expected = reference_crc16(bytes([self.seq]) + payload + bytes([ETX]))
        if not _HEX4.fullmatch(text) or int(text, 16) != expected:
            return FrameRejected(RejectReason.BAD_CRC, version=2)
        if chr(self.seq) not in _SEQ:
            return FrameRejected(RejectReason.BAD_SEQ, version=2)
        if not PRINTABLE.fullmatch(payload):
            return FrameRejected(RejectReason.BAD_BYTE, version=2)
        if len(payload) < MIN_PAYLOAD:
            return FrameRejected(RejectReason.TOO_SHORT, version=2)
        return FrameReceived(payload, 2, _SEQ.index(chr(self.seq)), expected)

    def _answer(self) -> Event:
        tail = bytes(self.tail)
        self.tail.clear()
        seq, text = chr(tail[0]), tail[1:]
        good = (_HEX4.fullmatch(text) is not None
                and int(text, 16) == reference_crc16(bytes([self.control, tail[0]]))
                and (seq == "?" or seq in _SEQ))
        if not good:
            return AnswerMalformed(self.control, tail)
        return AnswerReceived(self.control, None if seq == "?" else _SEQ.index(seq))


def check_frame_stream(chunks: list[tuple[bytes, float]], gap_s: float = 0.5, *,
                       v2: bool = True) -> None:
    """`chunks`: (bytes, arrival time), times not decreasing."""
    fast = FrameDecoder(gap_s, v2=v2)
    slow = ReferenceDecoder(gap_s, v2=v2)
    for data, now in chunks:
        got = fast.feed(data, now)
        assert got == slow.feed(data, now), (data, now)
        assert fast.buffered <= MAX_PAYLOAD
        for event in got:
            if isinstance(event, FrameReceived):
                assert MIN_PAYLOAD <= len(event.payload) <= MAX_PAYLOAD
                assert PRINTABLE.fullmatch(event.payload)
            elif isinstance(event, ControlReceived):
                assert event.byte in (ENQ, ACK, NAK)
            elif isinstance(event, AnswerReceived | AnswerMalformed):
                assert v2
            elif isinstance(event, FrameRejected):
                assert len(event.payload) <= MAX_PAYLOAD
    if chunks:
        end = chunks[-1][1] + gap_s
        assert fast.expire(end) == slow.expire(end)
        assert fast.idle and fast.buffered == 0


def check_encode_frame(payload: bytes) -> None:
    try:
        frame = encode_frame(payload)
    except InvalidPayloadError:
        assert not (MIN_PAYLOAD <= len(payload) <= MAX_PAYLOAD
                    and PRINTABLE.fullmatch(payload))
        return
    assert FrameDecoder().feed(frame, 0.0) == [FrameReceived(payload)]


# -- register messages ------------------------------------------------------------------


def check_request_payload(payload: bytes) -> None:
    decoded = decode_request(payload)  # documented: never raises
    assert isinstance(decoded, (*REQUEST_TYPES.values(), Error))
    out = encode(decoded)
    assert MIN_PAYLOAD <= len(out) <= MAX_PAYLOAD
    assert PRINTABLE.fullmatch(out)
    if isinstance(decoded, Error):
        assert decoded.re is None or decoded.re == message_id(payload)
        assert decode_reply(out) == decoded
        if decoded.code is ErrorCode.INVALID_FIELD:
            assert decoded.field
    else:
        assert decoded.id == message_id(payload)
        assert decode_request(out) == decoded


def check_reply_payload(payload: bytes) -> None:
    try:
        reply = decode_reply(payload)
    except MessageError as exc:
        assert exc.re is None or exc.re == message_id(payload)
        return
    out = encode(reply)
    assert len(out) <= MAX_PAYLOAD and PRINTABLE.fullmatch(out)
    assert decode_reply(out) == reply


# -- configuration ----------------------------------------------------------------------


def _config_holds(config: Config) -> None:
    names = [lane.name for lane in config.lanes]
    assert len(names) == len(set(names))
    for lane in config.lanes:
        assert lane.spec is not None
        assert re.fullmatch(r"[A-Za-z0-9_.-]{1,32}", lane.name)
        assert re.fullmatch(r"[A-Za-z0-9]{1,8}", lane.tid)
        assert len(lane.display) <= 3
    p = config.polling
    for value in (p.first_check_s, p.interval_s, p.slow_after_s, p.slow_interval_s,
                  p.unknown_after_s, p.not_found_grace_s, p.paylink_interval_s):
        assert math.isfinite(value) and value >= 0
    assert p.interval_s > 0 and p.slow_interval_s > 0 and p.unknown_after_s > 0
    assert p.unknown_after_s >= p.first_check_s
    for url in (config.paytm.edc_base_url, config.paytm.pg_base_url):
        # Read as the HTTP client reads it (yarl drops C0 controls and spaces around a
        # URL, and tabs and newlines inside it, exactly as urlsplit does).
        parts = urlsplit(url)
        assert parts.scheme == "https" or (parts.scheme == "http"
                                           and is_loopback_host(parts.hostname or ""))
    assert 0 < config.paytm.connect_timeout_s <= 300 and 0 < config.paytm.read_timeout_s <= 600
    assert 24 <= config.receipt.width <= 80
    assert config.log.level in ("debug", "info", "warning", "error")


def _only_config_error(target: str, load: Callable[[], Config]) -> None:
    try:
        config = load()
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
        return
    except Exception as exc:
        bug = _known(target, exc)
        if bug is not None:
            raise KnownBug(bug.name) from exc
        raise AssertionError(f"{type(exc).__name__} escaped: {exc}") from exc
    _config_holds(config)


def check_config_text(text: str) -> None:
    _only_config_error("config", lambda: parse_config(text))


def check_config_dict(data: Mapping[str, object]) -> None:
    _only_config_error("config", lambda: config_from_dict(data))


# -- Paytm answers ----------------------------------------------------------------------


def _result_info(document: object, body_key: str = "body") -> dict[str, object]:
    body = document.get(body_key) if isinstance(document, dict) else None
    info = body.get("resultInfo") if isinstance(body, dict) else None
    return info if isinstance(info, dict) else {}


def _text(value: object) -> str:
    return value.strip().upper() if isinstance(value, str) else ""


def _echo(document: object, keys: tuple[str, ...]) -> list[str]:
    body = document.get("body") if isinstance(document, dict) else None
    if not isinstance(body, dict):
        return []
    return [v for k in keys if isinstance(v := body.get(k), str) and v]


EDC_FAIL_WORDS: Final = frozenset({"F", "FAIL", "FAILED", "FAILURE", "TXN_FAILURE"})
EDC_PENDING_WORDS: Final = frozenset({"P", "PENDING"})
EDC_SUCCESS_WORDS: Final = frozenset({"S", "SUCCESS", "TXN_SUCCESS"})
EDC_ACCEPTED_WORDS: Final = frozenset({"A", "ACCEPTED", "ACCEPTED_SUCCESS"})


def check_edc(document: object, txn: str | None) -> None:
    info = _result_info(document)
    signals = {_text(info.get("resultStatus")), _text(info.get("resultCode"))} - {""}
    code = info.get("resultCodeId")
    code = code.strip() if isinstance(code, str) else ""
    other_txn = txn is not None and any(e != txn for e in _echo(document,
                                                                 ("merchantTransactionId",)))
    answer = parse_request_answer(document, txn)
    assert isinstance(answer, RequestAnswer | Unknown)
    if isinstance(answer, RequestAnswer):
        assert not other_txn, "an answer about another transaction was believed"
        if answer.accepted:
            # Accepted only routes the request to the terminal; believing a refusal that
            # is not one would free a terminal that is in fact busy, and the other way.
            assert code in ("0009", "")
            assert signals & EDC_ACCEPTED_WORDS or code == "0009"
            assert not signals & EDC_FAIL_WORDS
        else:
            assert code in EDC_REQUEST_CODES and code != "0009"
            assert not signals & EDC_ACCEPTED_WORDS
    for void in (False, True):
        status = parse_status_answer(document, void, txn)
        assert isinstance(status, StatusAnswer | Unknown)
        if isinstance(status, Unknown):
            continue
        assert not other_txn, "a status about another transaction was believed"
        if status.state is StatusState.SUCCESS:
            # Never a success without a success signal, never with a contrary one.
            assert code in ("0000", "")
            assert signals & EDC_SUCCESS_WORDS or code == "0000"
            assert not signals & (EDC_FAIL_WORDS | EDC_PENDING_WORDS)
        elif status.state is StatusState.FAILED:
            # A failure that was in fact paid sends a paying customer away.
            assert code == ("0090" if void else "0011")
            assert not signals & (EDC_SUCCESS_WORDS | EDC_PENDING_WORDS)
        elif status.state is StatusState.NOT_FOUND:
            assert code == "0404" or (void and code == "0180")


PG_NOT_ABOUT_THE_PAYMENT: Final = frozenset({"330", "335", "501", "1001"})


def check_pg(document: object, order_id: str | None, ref_id: str | None) -> None:
    info = _result_info(document)
    word = _text(info.get("resultStatus"))
    code = info.get("resultCode")
    code = code.strip() if isinstance(code, str) else ""
    orders = _echo(document, ("merchantOrderId", "orderId"))
    other_order = order_id is not None and any(o != order_id for o in orders)
    other_order_status = order_id is not None and any(
        o != order_id for o in _echo(document, ("orderId",)))
    other_ref = ref_id is not None and any(r != ref_id for r in _echo(document, ("refId",)))

    link = parse_link_answer(document, order_id)
    assert isinstance(link, LinkAnswer | Unknown)
    if isinstance(link, LinkAnswer):
        assert not other_order
        assert word in (EDC_SUCCESS_WORDS if link.queued else EDC_FAIL_WORDS)

    status = parse_pg_status_answer(document, order_id)
    assert isinstance(status, PgStatusAnswer | Unknown)
    if isinstance(status, PgStatusAnswer):
        assert not other_order_status
        if status.state is PgStatusState.SUCCESS:
            assert word == "TXN_SUCCESS" and code == "01"
        elif status.state is PgStatusState.FAILED:
            assert word == "TXN_FAILURE" and code
            assert code not in {"01", "400", "402", "334"} | PG_NOT_ABOUT_THE_PAYMENT
        elif status.state is PgStatusState.NOT_FOUND:
            assert code == "334" or (word == "NO_RECORD_FOUND" and not code)

    refund = parse_refund_answer(document, order_id, ref_id)
    assert isinstance(refund, RefundAnswer | Unknown)
    if isinstance(refund, RefundAnswer):
        assert not (other_order_status or other_ref)
        assert code != "501", "Paytm's own error says nothing about the refund"
        if refund.state is RefundState.SUCCESS:
            assert code == "10" and (not word or word in EDC_SUCCESS_WORDS)
        elif refund.state is RefundState.PENDING:
            assert code in ("601", "628") or (word in EDC_PENDING_WORDS
                                               and code not in ("617", "626", "631"))
        else:  # FAILED, DUPLICATE, BUSY, NOT_FOUND: refused, explicitly
            assert word in EDC_FAIL_WORDS and code

    refund_status = parse_refund_status_answer(document, order_id, ref_id)
    assert isinstance(refund_status, RefundStatusAnswer | Unknown)
    if isinstance(refund_status, RefundStatusAnswer):
        assert not (other_order_status or other_ref)
        if refund_status.state is RefundState.SUCCESS:
            assert word in EDC_SUCCESS_WORDS and code in ("10", "")
        elif refund_status.state is RefundState.FAILED:
            assert word in EDC_FAIL_WORDS and code
            assert code not in {"10", "601", "628", "600"} | PG_NOT_ABOUT_THE_PAYMENT


# -- webhook ----------------------------------------------------------------------------


def meaning(callback: Callback) -> tuple[str, str, str]:
    """What the agent acts on: which order to confirm by Transaction Status, and why. The
    other members are shown, never trusted (agent/webhook_server.py)."""
    return (callback.order_id, callback.mid, callback.status)


def check_callback(body: bytes, content_type: str, key: MerchantKey, mid: str | None,
                   signed: tuple[str, str, str] | None) -> None:
    """`signed`: the `meaning` of the untouched, signed body (None: nothing valid)."""
    result = parse_callback(body, content_type, key, mid)  # documented: never raises
    assert isinstance(result, Callback | InvalidCallback)
    if isinstance(result, InvalidCallback):
        assert result.reason and key.secret_bytes.decode() not in result.reason
        return
    # Accepted: it must say exactly what the signed original said.
    assert signed is not None, "an unsigned or forged callback was accepted"
    assert meaning(result) == signed, (result, signed)
    assert mid is None or result.mid == mid
    assert result.status in ("TXN_SUCCESS", "TXN_FAILURE")
