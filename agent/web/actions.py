"""The Tools: what a technician may do from the page. Each returns a `ToolResult` that the
HTML page shows as a message and the API returns as JSON. Every use is logged.

None of them decides anything about money: a re-check asks the engine to ask Paytm now
(`Engine.recheck`), a resend hands a journaled result back to its lane (`Lane.deliver`),
exactly as the engine and recovery do.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import ssl
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from agent.errors import AgentError, FieldError, LinkError
from agent.journal import TxnState
from agent.journal.store import JournalError
from agent.logs import LOG_LEVELS, LogLine, RecentLines, current_level, set_level
from agent.paytm.clock import IST
from agent.paytm.edc_answers import StatusState
from agent.paytm.outcome import Answered, NotSent, Unknown
from agent.paytm.pg_models import PgStatusState
from agent.paytm.tls import ssl_context
from agent.web.context import CallWatch
from agent.web.facts import can_recheck
from agent.web.params import BadInput

if TYPE_CHECKING:
    from agent.bundle import LiveState
    from agent.web.view import AgentView, EngineView, LaneView

log = logging.getLogger(__name__)

LINK_TEST_TIMEOUT_S = 2.0  # ENQ → ACK; a register answers within 100 ms (protocol R1)
RECHECK_WAIT_S = 5.0  # wait this long for Paytm's answer before saying "still asking"
RESEND_WAIT_S = 3.0  # wait this long for the register's ACK before saying "queued"
CONNTEST_PREFIX = "CONNTEST"  # + 14 digits: an id Paytm cannot know → "not found" (0404)
CHECKSUM_REFUSED = "0330"
PG_CHECKSUM_REFUSED = "330"  # the All-in-One APIs' code for a bad signature


@dataclass(frozen=True, slots=True)
class ToolResult:
    ok: bool
    title: str
    text: str
    steps: list[tuple[str, str]] = field(default_factory=list)  # (step, what happened)


def find_lane(agent: AgentView, name: str) -> LaneView:
    for lane in agent.lanes:
        if lane.name == name:
            return lane
    raise BadInput(f"no lane named {name!r}", 404)


async def link_test(agent: AgentView, lane_name: str) -> ToolResult:
    lane = find_lane(agent, lane_name)
    log.info("technician: link test on lane %s", lane.name)
    try:
        rtt = await lane.link.check(LINK_TEST_TIMEOUT_S)
    except LinkError as exc:
        return ToolResult(False, f"Link test on {lane.name}: no answer",
                          f"{exc}. Check the cable and that the register program is running.")
    return ToolResult(True, f"Link test on {lane.name}: OK",
                      f"The register answered ENQ with ACK in {rtt * 1000:.1f} ms.")


async def paytm_test(agent: AgentView) -> ToolResult:
    """TLS handshake with Paytm's server, then one Status Enquiry for an id Paytm cannot
    know on the EDC API and one Transaction Status on the payment-link API: "not found"
    from both proves the way there, our MID and our checksums."""
    log.info("technician: Paytm connectivity test")
    config = agent.config.paytm
    steps: list[tuple[str, str]] = []
    url = urlsplit(config.edc_base_url)
    host = url.hostname or ""
    if url.scheme == "https":
        port = url.port or 443
        ok, text = await _tls_handshake(host, port, config.connect_timeout_s,
                                        lambda: ssl_context(config))
        steps.append(("TLS handshake", text))
        if not ok:
            return ToolResult(False, "Paytm connectivity: TLS handshake failed", text, steps)
    else:
        steps.append(("TLS handshake", f"skipped: plain http to {host} (a loopback "
                      "emulator); production uses https"))
    engine = agent.engine
    if engine is None:
        return ToolResult(False, "Paytm connectivity: the agent is not running", "", steps)
    tids = [lane.tid for lane in agent.config.lanes]
    if not tids:
        return ToolResult(False, "Paytm connectivity: no terminal configured",
                          "A status call needs a terminal id: add a lane.", steps)
    txn = CONNTEST_PREFIX + datetime.now(IST).strftime("%Y%m%d%H%M%S")
    try:
        edc_ok, edc_title, edc_text = await _probe_edc(engine, tids[0], txn, steps)
    except FieldError as exc:  # the engine refused the request before any call
        return ToolResult(False, "Paytm connectivity: cannot build the request", str(exc), steps)
    pg_ok, pg_text = await _probe_pg(engine, txn, agent.config.paytm.pg_base_url, steps)
    if not edc_ok:
        return ToolResult(False, edc_title, edc_text, steps)
    if not pg_ok:
        return ToolResult(False, "Paytm connectivity: EDC API OK, payment-link API not",
                          f"{edc_text} {pg_text}", steps)
    return ToolResult(True, edc_title, f"{edc_text} {pg_text}", steps)


async def _probe_edc(engine: EngineView, tid: str, txn: str,
                     steps: list[tuple[str, str]]) -> tuple[bool, str, str]:
    outcome = await engine.probe_status(tid, txn)
    match outcome:
        case Answered(response=answer, latency_s=latency_s):
            ms = f"{latency_s * 1000:.0f} ms"
            if answer.code == CHECKSUM_REFUSED:
                steps.append(("EDC status call", f"Paytm refused our checksum ({answer.code} "
                              f"{answer.message}) in {ms}"))
                return (False, "Paytm connectivity: checksum refused",
                        "Paytm is reachable but rejected the signature: check the "
                        "merchant key file and paytm.checksum_mode.")
            steps.append(("EDC status call", f"answered {answer.code or '(no code)'} "
                          f"{answer.message} in {ms}"))
            if answer.state is StatusState.NOT_FOUND:
                return (True, "Paytm connectivity: OK",
                        f"Paytm's EDC API answered in {ms} and accepted our MID and checksum "
                        f"(terminal {tid}, test id {txn}: not found, as expected).")
            return (True, "Paytm connectivity: reachable",
                    f"Paytm's EDC API answered in {ms}, but not with the expected "
                    f"'not found': {answer.code} {answer.message}.")
        case NotSent(reason=reason):
            steps.append(("EDC status call", f"not sent: {reason}"))
            return False, "Paytm connectivity: cannot reach Paytm", reason
        case Unknown(reason=reason):
            steps.append(("EDC status call", f"no clear answer: {reason}"))
            return False, "Paytm connectivity: no clear answer", reason


async def _probe_pg(engine: EngineView, txn: str, base_url: str,
                    steps: list[tuple[str, str]]) -> tuple[bool, str]:
    """Transaction Status of the same made-up id on the payment-link (All-in-One) API:
    'no record found' (334) proves that API's host, our MID and its checksum too."""
    outcome = await engine.probe_pg_status(txn)
    match outcome:
        case Answered(response=answer, latency_s=latency_s):
            ms = f"{latency_s * 1000:.0f} ms"
            steps.append(("Payment-link status call", f"answered {answer.code or '(no code)'} "
                          f"{answer.message} in {ms}"))
            if answer.state is PgStatusState.NOT_FOUND:
                return True, (f"The payment-link API ({base_url}) answered in {ms}: not "
                              "found, as expected.")
            return (answer.code != PG_CHECKSUM_REFUSED,
                    f"The payment-link API answered {answer.code} {answer.message} in {ms}"
                    + (": check the merchant key." if answer.code == PG_CHECKSUM_REFUSED
                       else "."))
        case NotSent(reason=reason):
            steps.append(("Payment-link status call", f"not sent: {reason}"))
            return False, f"The payment-link API ({base_url}) cannot be reached: {reason}."
        case Unknown(reason=reason):
            steps.append(("Payment-link status call", f"no clear answer: {reason}"))
            return False, f"The payment-link API gave no clear answer: {reason}."


async def _tls_handshake(host: str, port: int, timeout_s: float,
                         make_context: Callable[[], ssl.SSLContext]) -> tuple[bool, str]:
    started = time.monotonic()
    try:
        context: ssl.SSLContext = make_context()
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(host, port, ssl=context,
                                                      server_hostname=host)
    except (OSError, ssl.SSLError, AgentError) as exc:
        return False, f"{host}:{port}: {type(exc).__name__}: {exc}"
    except TimeoutError:
        return False, f"{host}:{port}: no handshake within {timeout_s:g} s"
    ms = (time.monotonic() - started) * 1000
    tls = writer.get_extra_info("ssl_object")
    version = tls.version() if isinstance(tls, ssl.SSLObject) else "TLS"
    cert = tls.getpeercert() if isinstance(tls, ssl.SSLObject) else None
    expires = str(cert.get("notAfter", "")) if isinstance(cert, dict) else ""
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()
    text = f"{host}:{port}: {version} in {ms:.0f} ms, certificate verified"
    return True, text + (f" (valid until {expires})" if expires else "")


async def recheck(agent: AgentView, calls: CallWatch, row_id: int) -> ToolResult:
    journal = agent.journal
    try:
        record = journal.get(row_id)
    except JournalError:
        raise BadInput(f"no transaction with row {row_id}", 404) from None
    if agent.engine is None:
        return ToolResult(False, "Re-check: the agent is not running", "")
    if not can_recheck(record):
        return ToolResult(False, f"Re-check {record.txn}: nothing to ask",
                          f"It is {record.state.value}: only a transaction that is in "
                          "progress, pending or unknown can be re-checked.")
    log.info("technician: re-check %s %s (%s)", record.kind.value, record.txn,
             record.state.value)
    ids = {record.txn, record.parent} - {""}  # a refund's status may be asked by its order
    answer = calls.expect(lambda r: r.txn in ids and r.api not in ("sale", "void"))
    checked = agent.engine.recheck(row_id)
    call = await calls.wait(answer, RECHECK_WAIT_S)
    if call is not None:
        # Paytm answered; the engine journals what it said before the check is done.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(checked.wait(), RECHECK_WAIT_S)
    now = journal.get(row_id)
    if call is None:
        return ToolResult(False, f"Re-check {record.txn}: no answer yet",
                          f"Paytm did not answer within {RECHECK_WAIT_S:g} s; the agent keeps "
                          f"asking. The transaction is {now.state.value}.")
    got = f"{call.outcome}" + (f" {call.code}" if call.code else "")
    return ToolResult(call.outcome == "answered", f"Re-check {record.txn}: {now.state.value}",
                      f"Paytm's answer: {got} in {call.latency_s * 1000:.0f} ms. The "
                      f"transaction is {now.state.value}"
                      + ("." if now.state is not TxnState.UNKNOWN else
                         "; the agent keeps asking."))


async def reconcile(agent: AgentView, day: date | None) -> ToolResult:
    """The close-of-day sweep now (of `day`, default today): the engine asks Paytm about
    every loose end of the day; the result is kept in the journal for the day's report."""
    if agent.sweeper is None:
        return ToolResult(False, "Reconcile: the agent is not running", "")
    log.info("technician: reconcile %s with Paytm", day or "today")
    record = await agent.sweeper.sweep(day, "page")
    text = (f"Asked Paytm about {record.asked} transaction(s); {record.changed} changed; "
            f"{record.disagreements} disagreement(s) between the journal and Paytm.")
    return ToolResult(record.disagreements == 0, f"Reconciled {record.day}", text)


async def resend(agent: AgentView, outbox_id: int) -> ToolResult:
    journal = agent.journal
    try:
        outbox = journal.outbox_row(outbox_id)
    except JournalError:
        raise BadInput(f"no result {outbox_id}", 404) from None
    txn = journal.get(outbox.txn_row).txn
    if outbox.delivered_at is not None:
        return ToolResult(True, f"Result {outbox_id} ({txn}) was already delivered",
                          "The register acknowledged it; nothing to resend.")
    if outbox.superseded:
        return ToolResult(False, f"Result {outbox_id} ({txn}) is superseded",
                          "A newer result of the same transaction replaced it; resend that.")
    lane = find_lane(agent, outbox.lane)
    log.info("technician: resend result %d of %s on lane %s", outbox_id, txn, lane.name)
    delivered = asyncio.get_running_loop().create_future()

    def on_change(what: str, row: int) -> None:
        if what == "delivered" and row == outbox.txn_row and not delivered.done() \
                and journal.outbox_row(outbox_id).delivered_at is not None:
            delivered.set_result(True)

    unsubscribe = journal.subscribe(on_change)
    try:
        woke = ""
        if lane.link.down:
            # The lane waits for the register to talk (protocol S3); an ENQ that the
            # register answers is such a sign of life.
            try:
                await lane.link.check(LINK_TEST_TIMEOUT_S)
                woke = " The register answered a link test first."
            except LinkError as exc:
                woke = f" The register did not answer a link test ({exc})."
        lane.deliver(outbox)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(delivered), RESEND_WAIT_S)
    finally:
        unsubscribe()
    if delivered.done():
        return ToolResult(True, f"Result {outbox_id} ({txn}) delivered",
                          "The register acknowledged it." + woke)
    delivered.cancel()
    return ToolResult(False, f"Result {outbox_id} ({txn}) queued",
                      f"Not acknowledged within {RESEND_WAIT_S:g} s; the lane keeps it and "
                      "sends it as soon as the register talks." + woke)


def live_state(agent: AgentView, log_lines: list[LogLine]) -> LiveState:
    """What only the running agent knows, copied on the loop (cheap: the capture's rings
    are copied by reference, decoded and masked later in the bundle's thread)."""
    from agent.bundle import LOG_LINES, LiveState

    lanes = []
    for lane in agent.lanes:
        status = lane.transport.status
        lanes.append({"name": lane.name, "tid": lane.config.tid,
                      "transport": status.state.value, "reconnects": status.reconnects,
                      "link_down": lane.link.down, "queued_results": lane.undelivered,
                      "counters": lane.link.counters.as_dict()})
    engine = agent.engine
    return LiveState(
        log=log_lines[-LOG_LINES:], capture=agent.capture.copy(), lanes=lanes,
        retention=dataclasses.asdict(agent.last_retention) if agent.last_retention else None,
        busy_terminals=dict(engine.busy_terminals()) if engine is not None else {},
        polling=engine.polling_count() if engine is not None else 0,
        started_at=agent.started_at)


async def support_bundle(agent: AgentView, recent: RecentLines) -> tuple[bytes, str]:
    """The support bundle (agent/bundle.py) with the live capture: (its bytes, file name).
    The snapshot is taken here, on the loop; the bundle is written in a thread."""
    from agent.bundle import build_bundle, default_name

    live = live_state(agent, list(recent.lines))
    name = default_name()

    def build() -> bytes:
        with tempfile.TemporaryDirectory(prefix="edc-agent-bundle-") as tmp:
            path = Path(tmp) / name
            build_bundle(path, agent.config, live=live, report=agent.bundle_report)
            return path.read_bytes()

    body = await asyncio.to_thread(build)
    log.info("support bundle %s made (%d bytes)", name, len(body))
    return body, name


def set_log_level(level: str) -> ToolResult:
    """Every logger's level, now, until the next restart (which reads [log] level again)."""
    if level not in LOG_LEVELS:
        raise BadInput(f"level: must be one of {', '.join(LOG_LEVELS)}")
    before = current_level()
    # Logged at WARNING so the change itself shows whatever the new level.
    log.warning("technician: log level %s → %s (until restart; the config says the default)",
                before, level)
    set_level(level)
    return ToolResult(True, f"Log level: {level}",
                      f"Was {before}. This lasts until the agent restarts; to keep it, set "
                      f"[log] level = \"{level}\" in the config.")
