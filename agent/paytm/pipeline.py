"""The one signed-call pipeline the EDC and PG clients share.

    envelope ─► sign ─► post ─► read ─► verify ─► parse ─► report
    (client)  (client) (transport)     (client)  (client)  (log + observer)

A client says what differs — how its envelope is signed, whether and how an answer is
verified, how its answer is parsed and read back for the log — as a `Dialect`; the order of
the steps, the DEBUG traces and the classification of failures live here once. Logs never
carry a customer's full phone number: `mask_phones` keeps its last four digits, as the
journal does.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from agent.paytm.outcome import Answered, ApiName, CallOutcome, NotSent, Unknown
from agent.paytm.transport import Observer, PaytmPoster, decode_text, notify

log = logging.getLogger(__name__)



@dataclass(frozen=True, slots=True)
class Exchange:
    """One call's bytes as they went and came back, for a capture (the support bundle's
    last calls). Raw: an exchange observer masks what it keeps (agent/capture.py)."""

    api: ApiName
    subject: str
    url: str
    request: bytes
    status: int | None  # HTTP status; None when no answer came
    answer: bytes
    outcome: str  # answered | not_sent | unknown
    latency_s: float


ExchangeObserver = Callable[[Exchange], None]


class Coded(Protocol):
    """Every answer type: its Paytm code is what the observer records."""

    @property
    def code(self) -> str: ...


A = TypeVar("A", bound=Coded)
A_co = TypeVar("A_co", covariant=True)

# Members that hold a customer's phone number: the Send Payment Request body (§12) and the
# EMI pre-fill of merchantExtendedInfo (§4.2).
PHONE_FIELDS = ("userPhoneNo", "phoneNumber")
PHONE_KEPT_DIGITS = 4  # what the journal keeps of a phone number
LOGGED_ANSWER_CHARS = 2000  # an answer is well under this; more is cut in the DEBUG log
_PHONE_RE = re.compile(r'("(?:' + "|".join(PHONE_FIELDS) + r')"\s*:\s*")([^"\\]*)(")')


def mask_phone(number: str) -> str:
    """"9876543210" → "XXXXXX3210"."""
    kept = number[-PHONE_KEPT_DIGITS:] if len(number) > PHONE_KEPT_DIGITS else ""
    return "X" * (len(number) - len(kept)) + kept


def mask_phones(text: str) -> str:
    """`text` (JSON) with every phone member's value masked to its last four digits."""
    return _PHONE_RE.sub(lambda m: m.group(1) + mask_phone(m.group(2)) + m.group(3), text)


class Parse(Protocol[A_co]):
    def __call__(self, document: object) -> A_co | Unknown: ...


@dataclass(frozen=True, slots=True)
class Dialect:
    """What one API family does at each step that differs between families."""

    # envelope + sign: the exact bytes to post for a body
    envelope: Callable[[Mapping[str, object]], bytes]
    # verify: None when the answer (its text as received, and its JSON) may be trusted
    verify: Callable[[str, object], Unknown | None]
    # Paytm's time in the answer head (IST), for the clock check; None when absent
    server_time: Callable[[object], datetime | None]
    # report: the log line of a finished call (its answer types are the family's own)
    describe: Callable[[ApiName, str, CallOutcome[Any], float], None]


class SignedCaller:
    """Runs the calls of one API family through the pipeline."""

    def __init__(self, poster: PaytmPoster, dialect: Dialect,
                 observer: Observer | None = None,
                 exchanges: ExchangeObserver | None = None) -> None:
        self._poster = poster
        self._dialect = dialect
        self._observer = observer
        self._exchanges = exchanges

    async def call(self, api: ApiName, url: str, subject: str, body: Mapping[str, object],
                   parse: Parse[A]) -> CallOutcome[A]:
        """`subject`: the merchantTransactionId (EDC) or order id (PG) the call is about."""
        data = self._dialect.envelope(body)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s: POST %s %s", api, subject, url, mask_phones(data.decode()))
        started = time.monotonic()
        answer: list[tuple[int, bytes]] = []  # the HTTP answer, when one came
        outcome = await self._exchange(api, subject, url, data, parse, answer)
        latency_s = time.monotonic() - started
        self._dialect.describe(api, subject, outcome, latency_s)
        code = outcome.response.code if isinstance(outcome, Answered) else None
        notify(self._observer, api, subject, outcome, code, latency_s)
        if self._exchanges is not None:
            status, raw = answer[0] if answer else (None, b"")
            kind = "answered" if isinstance(outcome, Answered) else \
                "not_sent" if isinstance(outcome, NotSent) else "unknown"
            try:
                self._exchanges(Exchange(api, subject, url, data, status, raw, kind,
                                         latency_s))
            except Exception:  # diagnostics never reach the caller
                log.exception("exchange observer failed")
        return outcome

    async def _exchange(self, api: ApiName, subject: str, url: str, data: bytes,
                        parse: Parse[A], answer: list[tuple[int, bytes]]) -> CallOutcome[A]:
        reply = await self._poster.post(url, data)
        if isinstance(reply, NotSent | Unknown):
            return reply
        answer.append((reply.status, reply.raw))
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s: HTTP %d from %s: %s", api, subject, reply.status, url,
                      mask_phones(reply.raw[:LOGGED_ANSWER_CHARS].decode(errors="replace")))
        decoded = decode_text(reply.status, reply.raw)
        if isinstance(decoded, Unknown):
            return decoded
        text, document = decoded
        untrusted = self._dialect.verify(text, document)
        if untrusted is not None:
            log.warning("%s %s: %s; answer was HTTP %d %s", api, subject, untrusted.reason,
                        reply.status, mask_phones(text[:LOGGED_ANSWER_CHARS]))
            return Unknown(untrusted.reason, reply.status)
        parsed = parse(document)
        if isinstance(parsed, Unknown):
            return Unknown(parsed.reason, reply.status)
        return Answered(parsed, reply.latency_s, self._dialect.server_time(document))
