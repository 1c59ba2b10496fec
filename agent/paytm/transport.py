"""One POST to Paytm, classified: the machinery the EDC and PG clients share.

    PaytmPoster.post(url, data) ─► HttpReply(status, raw, latency)   an HTTP answer came back
                                ─► NotSent                           nothing can have reached Paytm
                                ─► Unknown                           it may have reached Paytm

What the answer *means* is each client's business (edc.py, pg.py); this module only
knows HTTP, the overall deadline and the size cap, and how a finished call is reported
to the observer (diagnostics).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import aiohttp

from agent.paytm.clock import now_ist
from agent.paytm.http import client_timeout
from agent.paytm.outcome import (
    Answered,
    ApiName,
    CallOutcome,
    CallRecord,
    NotSent,
    Unknown,
    outcome_kind,
)
from agent.paytm.settings import PaytmConfig

log = logging.getLogger(__name__)

# A Paytm answer is well under a kilobyte; anything this large is not one.
MAX_RESPONSE_BYTES = 256 * 1024
_READ_CHUNK = 16 * 1024
# Overall deadline of a call = connect timeout + this many read timeouts + slack. The read
# timeout restarts on every chunk received, so without a cap a server that trickles bytes
# could hold a call forever. aiohttp rounds timeouts of 5 s or more up to the next whole
# second; the slack keeps our cap from firing while aiohttp is still connecting (which
# would turn a provable "not sent" into "unknown").
READ_TIMEOUTS_PER_CALL = 2
DEADLINE_SLACK_S = 2.0

T = TypeVar("T")
Observer = Callable[[CallRecord], None]


@dataclass(frozen=True, slots=True)
class HttpReply:
    status: int
    raw: bytes
    latency_s: float  # from just before the request to the end of the answer


class PaytmPoster:
    """POSTs a JSON document over the shared session and says what became of it."""

    def __init__(self, session: aiohttp.ClientSession, config: PaytmConfig) -> None:
        self._session = session
        self._timeout = client_timeout(config)
        self._deadline_s = (config.connect_timeout_s
                            + READ_TIMEOUTS_PER_CALL * config.read_timeout_s
                            + DEADLINE_SLACK_S)

    async def post(self, url: str, data: bytes) -> HttpReply | NotSent | Unknown:
        started = time.monotonic()
        if self._session.closed:
            return NotSent("the HTTP session is closed")
        try:
            async with asyncio.timeout(self._deadline_s):
                status, raw = await self._post(url, data)
        # Order matters: ConnectionTimeoutError is a TimeoutError, and every
        # ClientConnectorError (refused, DNS, TLS handshake and certificate errors are
        # subclasses) is raised by aiohttp's connector before a request byte is written.
        except aiohttp.ConnectionTimeoutError as exc:
            return NotSent(f"connect timeout: {exc}")
        except aiohttp.ClientConnectorError as exc:
            return NotSent(f"{type(exc).__name__}: {exc}")
        except TimeoutError as exc:
            # aiohttp's read timeout (SocketTimeoutError) or our overall deadline: the
            # request was (or may have been) written.
            return Unknown(f"no answer in time ({type(exc).__name__})")
        except (aiohttp.ClientError, OSError) as exc:
            # ServerDisconnectedError, ClientPayloadError, ClientOSError, resets...
            return Unknown(f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # an unforeseen failure must still read "unknown"
            log.exception("unexpected error posting to %s", url)
            return Unknown(f"unexpected {type(exc).__name__}: {exc}")
        if raw is None:
            return Unknown(f"answer larger than {MAX_RESPONSE_BYTES} bytes", status)
        return HttpReply(status, raw, time.monotonic() - started)

    async def _post(self, url: str, data: bytes) -> tuple[int, bytes | None]:
        async with self._session.post(
            url, data=data, headers={"Content-Type": "application/json"},
            timeout=self._timeout,
            # aiohttp turns a POST into a GET on 301/302/303; never follow anything.
            allow_redirects=False,
        ) as resp:
            return resp.status, await _read_limited(resp)


async def _read_limited(resp: aiohttp.ClientResponse) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(_READ_CHUNK):
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def decode_text(http_status: int, raw: bytes) -> tuple[str, object] | Unknown:
    """The text and JSON value of an HTTP answer worth parsing, or why it is not one.

    5xx is Unknown whatever it says (the gateway failed somewhere; the request may have
    been processed). 4xx may carry a Paytm answer, so its body is parsed like a 2xx.
    The text is kept because string-mode signatures cover the body *as received*.
    """
    if http_status >= 500:
        return Unknown(f"HTTP {http_status} from Paytm", http_status)
    if not (200 <= http_status < 300 or 400 <= http_status < 500):
        return Unknown(f"unexpected HTTP {http_status}", http_status)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return Unknown(f"HTTP {http_status} body is not UTF-8 text", http_status)
    try:
        document: object = json.loads(text)
    except (ValueError, RecursionError):
        return Unknown(f"HTTP {http_status} body is not JSON: {text[:80]!r}", http_status)
    return text, document


def decode_response(http_status: int, raw: bytes) -> object | Unknown:
    """The JSON value of an HTTP answer worth parsing, or why it is not one (see decode_text)."""
    decoded = decode_text(http_status, raw)
    if isinstance(decoded, Unknown):
        return decoded
    return decoded[1]


def notify(observer: Observer | None, api: ApiName, txn: str, outcome: CallOutcome[T],
           code: str | None, latency_s: float) -> None:
    """Hand the finished call to the diagnostics observer; its failures never reach the caller."""
    if observer is None:
        return
    answered = outcome if isinstance(outcome, Answered) else None
    record = CallRecord(
        api=api, txn=txn, outcome=outcome_kind(outcome),
        code=code if answered is not None else None,
        latency_s=latency_s,
        server_time=answered.server_time if answered is not None else None,
        wall_time=now_ist(),
        reason=outcome.reason if isinstance(outcome, NotSent | Unknown) else None,
    )
    try:
        observer(record)
    except Exception:  # diagnostics must never break a payment call
        log.exception("call observer failed")
