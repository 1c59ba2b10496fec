"""Calls that move no money and prove the key, the MID and the checksum mode.

EDC: a Status Enquiry for a random merchantTransactionId that cannot exist, signed in params
mode, then in JSON mode, then with a key that is not the merchant's. Any answer other than
0330 means that mode works; 0330 means it does not; the wrong key must get 0330 (or Paytm is
not checking checksums, and nothing is proven). PG: a Transaction Status of a random order
id — 334 / NO_RECORD_FOUND is the normal answer, 330 a refused signature.

Every probe goes through the agent's own signed-call pipeline (`agent.paytm.pipeline`), so
what is proven is what the agent will do; every answer is kept (`Observation`) for the clock
check and the answer-style check.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from agent.certify.model import Findings, Verdict
from agent.config import Config
from agent.paytm.checksum import ChecksumMode, MerchantKey
from agent.paytm.clock import now_ist
from agent.paytm.edc import (
    STATUS_PATH,
    StatusRequest,
    edc_envelope,
    note_answer_checksum,
    parse_status_answer,
    response_time,
)
from agent.paytm.edc_answers import StatusAnswer
from agent.paytm.outcome import Answered, ApiName, CallOutcome, NotSent, Unknown
from agent.paytm.pg import STATUS_PATH as PG_STATUS_PATH
from agent.paytm.pg import check_response_signature, pg_envelope
from agent.paytm.pg_models import PgStatusAnswer, parse_pg_status_answer, pg_response_time
from agent.paytm.pipeline import Dialect, SignedCaller
from agent.paytm.transport import PaytmPoster

PROBE_PREFIX = "CERT"  # + random letters and digits: an id no sale or order can have
PROBE_RANDOM_CHARS = 16
CHECKSUM_REFUSED = "0330"
EDC_UNKNOWN_MERCHANT = "0029"
PG_CHECKSUM_REFUSED = "330"
PG_MID_INVALID = "335"
PG_NOT_FOUND = "334"
_ALPHABET = string.ascii_uppercase + string.digits


def probe_id() -> str:
    return PROBE_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(PROBE_RANDOM_CHARS))


@dataclass(frozen=True, slots=True)
class Observation:
    """One answer as received, for the clock and answer-style checks."""

    family: str  # "EDC" or "PG"
    what: str  # which probe
    document: object
    server_time: datetime | None
    local_time: datetime  # our clock halfway through the call
    latency_s: float


@dataclass(frozen=True, slots=True)
class _Reply:
    observation: Observation | None
    answer: StatusAnswer | PgStatusAnswer | None
    problem: str | None  # not sent / unknown / untrusted


def _quiet(api: ApiName, subject: str, outcome: CallOutcome[Any], latency_s: float) -> None:
    """Probes are reported by certify itself, not logged as calls of the agent."""


async def _probe(poster: PaytmPoster, dialect: Dialect, family: str, what: str, api: ApiName,
                 url: str, subject: str, body: Mapping[str, object],
                 parse: Callable[[object], StatusAnswer | PgStatusAnswer | Unknown]) -> _Reply:
    """One call through the agent's own signed-call pipeline, keeping the raw answer."""
    received: list[object] = []

    def keep(document: object) -> StatusAnswer | PgStatusAnswer | Unknown:
        received.append(document)
        return parse(document)

    sent_at = now_ist()
    outcome: CallOutcome[StatusAnswer | PgStatusAnswer] = await SignedCaller(
        poster, dialect).call(api, url, subject, body, keep)
    observation = None
    if received and isinstance(outcome, Answered):
        observation = Observation(family, what, received[0], outcome.server_time,
                                  sent_at + timedelta(seconds=outcome.latency_s / 2),
                                  outcome.latency_s)
    match outcome:
        case Answered(response=answer):
            return _Reply(observation, answer, None)
        case NotSent(reason=reason):
            return _Reply(None, None, f"not sent: {reason}")
        case Unknown(reason=reason):
            return _Reply(None, None, f"no clear answer: {reason}")


async def _edc_probe(config: Config, poster: PaytmPoster, key: MerchantKey,
                     mode: ChecksumMode, what: str) -> _Reply:
    request = StatusRequest(tid=config.lanes[0].tid, txn=probe_id(), txn_time=now_ist())
    paytm = config.paytm
    dialect = Dialect(
        envelope=lambda body: edc_envelope(body, key, mode, paytm.channel_id),
        verify=note_answer_checksum, server_time=response_time, describe=_quiet)
    return await _probe(poster, dialect, "EDC", what, "status",
                        paytm.edc_base_url.rstrip("/") + STATUS_PATH, request.txn,
                        request.body(paytm.mid),
                        lambda doc: parse_status_answer(doc, txn=request.txn))


def _wrong_key(key: MerchantKey) -> MerchantKey:
    """A key that is certainly not the merchant's (its bytes reversed, or shifted if it
    reads the same backwards)."""
    raw = key.secret_bytes[::-1]
    if raw == key.secret_bytes:
        raw = raw[1:] + raw[:1] if len(set(raw)) > 1 else bytes([raw[0] ^ 1]) + raw[1:]
    return MerchantKey(raw)


def _describe(reply: _Reply) -> str:
    if reply.answer is None:
        return reply.problem or "no answer"
    answer = reply.answer
    ms = f"{reply.observation.latency_s * 1000:.0f} ms" if reply.observation else "?"
    return f"answered {answer.code or '(no code)'} {answer.message!r} in {ms}"


async def check_edc(config: Config, poster: PaytmPoster, key: MerchantKey,
                    findings: Findings) -> list[Observation]:
    section = "EDC"
    if not config.lanes:
        findings.add(section, "Key, MID and checksum mode", Verdict.FAIL,
                     "no lane configured: a Status Enquiry needs a terminal id",
                     ["Add a [[lanes]] entry with the tid of your terminal."])
        return []
    configured = config.paytm.checksum_mode
    replies = {mode: await _edc_probe(config, poster, key, mode, f"status, {mode.value} mode")
               for mode in (ChecksumMode.PARAMS, ChecksumMode.JSON)}
    wrong = await _edc_probe(config, poster, _wrong_key(key), configured,
                             "status, deliberately wrong key")
    observations = [r.observation for r in (*replies.values(), wrong) if r.observation]
    details = [f"{mode.value} mode: {_describe(reply)}" for mode, reply in replies.items()]
    details.append(f"deliberately wrong key: {_describe(wrong)}")
    name = "Key, MID and checksum mode"

    unreachable = [r for r in replies.values() if r.answer is None]
    if unreachable:
        findings.add(section, name, Verdict.FAIL,
                     "Paytm's EDC API gave no usable answer to the probes", details)
        return observations
    codes = {mode: reply.answer.code for mode, reply in replies.items() if reply.answer}
    works = {mode for mode, code in codes.items() if code != CHECKSUM_REFUSED}
    tid = config.lanes[0].tid
    if any(code == EDC_UNKNOWN_MERCHANT for code in codes.values()):
        findings.add(section, name, Verdict.FAIL,
                     f"Paytm does not know this merchant or terminal ({EDC_UNKNOWN_MERCHANT}): "
                     f"check paytm.mid and the tid {tid} of lane {config.lanes[0].name}",
                     details)
        return observations
    if not works:
        findings.add(section, name, Verdict.FAIL,
                     "the merchant key or the MID is wrong: both checksum modes were refused "
                     f"with {CHECKSUM_REFUSED}", details)
        return observations
    proven = wrong.answer is not None and wrong.answer.code == CHECKSUM_REFUSED
    if not proven:
        details.append("Paytm did not refuse a wrong key: it may not check EDC checksums "
                       "here, so the mode below is not proven.")
    mode_names = " and ".join(f"{m.value}" for m in sorted(works))
    if configured in works:
        other = ChecksumMode.JSON if configured is ChecksumMode.PARAMS else ChecksumMode.PARAMS
        if other in works and proven:
            details.append(f"both modes were accepted; the configured {configured.value} mode "
                           "is kept")
        findings.add(section, name, Verdict.PASS if proven else Verdict.WARN,
                     f"{mode_names} mode works; configured: checksum_mode = "
                     f"\"{configured.value}\"", details)
    else:
        [working] = works
        findings.add(section, name, Verdict.FAIL,
                     f"{working.value} mode works, the configured {configured.value} mode is "
                     f"refused: set checksum_mode = \"{working.value}\" in [paytm]", details)
    return observations


async def check_pg(config: Config, poster: PaytmPoster, key: MerchantKey,
                   findings: Findings) -> list[Observation]:
    section = "PG"
    name = "Key and MID (payment links)"
    uses_links = any(lane.pos_id for lane in config.lanes)
    order_id = probe_id()
    untrusted: list[str] = []

    def verify(text: str, document: object) -> Unknown | None:
        refused = check_response_signature(text, document, key)
        if refused is not None:
            untrusted.append(refused.reason)
        return refused

    paytm = config.paytm
    dialect = Dialect(envelope=lambda body: pg_envelope(body, key, paytm.client_id),
                      verify=verify, server_time=pg_response_time, describe=_quiet)
    reply = await _probe(poster, dialect, "PG", "transaction status", "pg_status",
                         paytm.pg_base_url.rstrip("/") + PG_STATUS_PATH, order_id,
                         {"mid": paytm.mid, "orderId": order_id},
                         lambda doc: parse_pg_status_answer(doc, order_id))
    failure = Verdict.FAIL if uses_links else Verdict.WARN
    hint = [] if uses_links else ["No lane has a pos_id, so payment links are not used: "
                                  "this does not fail the run."]
    if untrusted:
        findings.add(section, name, failure, "the answer's signature does not verify with our "
                     "key: the merchant key is wrong", [*untrusted, *hint])
        return []
    if reply.observation is None or not isinstance(reply.answer, PgStatusAnswer):
        findings.add(section, name, failure, f"Transaction Status: {reply.problem}", hint)
        return []
    observation, parsed = reply.observation, reply.answer
    said = (f"Transaction Status of a random order id answered {parsed.result.status or '?'} "
            f"{parsed.code} {parsed.message!r} in {observation.latency_s * 1000:.0f} ms")
    if parsed.code == PG_CHECKSUM_REFUSED:
        findings.add(section, name, failure, "the merchant key or the MID is wrong: the "
                     f"signature was refused with {PG_CHECKSUM_REFUSED}", [said, *hint])
    elif parsed.code == PG_MID_INVALID:
        findings.add(section, name, failure, f"Paytm does not know MID {config.paytm.mid} "
                     f"for payment links ({PG_MID_INVALID})", [said, *hint])
    elif parsed.code == PG_NOT_FOUND:
        findings.add(section, name, Verdict.PASS, "key and MID accepted (not found, as "
                     "expected for an order that cannot exist)", [said])
    else:
        findings.add(section, name, Verdict.PASS, "key and MID accepted", [said])
    return [observation]
