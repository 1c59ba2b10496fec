"""`edc-agent demo`: the Paytm emulator, the agent and a virtual register on a pty, in one
process, running a script a newcomer can follow: who says what, in order.

    virtual register   ══ pty ══ agent lane till-1 (link v1) ══ loopback HTTP ══ Paytm emulator
    virtual register 2 ══ pty ══ agent lane till-2 (link v2, protocol=2) ══╝

Nothing is special-cased for the demo: the agent runs exactly as under `edc-agent run`,
with a temporary journal and the emulator's demo merchant.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import tempfile
import tty as termios_tty
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final, TextIO

from agent.app import Agent
from agent.config import Config, config_from_dict
from agent.link.codec import ACK, encode_answer, encode_frame_v2
from agent.link.layer import Link
from agent.link.timings import LinkProtocol, LinkTimings
from agent.logs import RECENT, SECRETS
from agent.paytm.checksum import MerchantKey
from agent.paytm.outcome import CallRecord
from agent.receipts import rupees
from agent.register.codec import encode, message_id
from agent.register.messages import (
    Accepted,
    Error,
    ErrorCode,
    Message,
    Paylink,
    Ping,
    Pong,
    Refund,
    Request,
    Result,
    Sale,
    State,
    Status,
    Void,
)
from agent.sim.paytm import DEMO_KEY, DEMO_MID, Emulator, EmulatorSettings, demo_bench_tid
from agent.sim.register.client import Received, RegisterClient, Sent, TranscriptEvent
from drivers.fd import FdTransport

if TYPE_CHECKING:
    from agent.web.server import WebServer

DEMO_HTTP_PORT: Final = 8765  # the page with --keep (README); --http-port N changes it

DEMO_TID = "12345678"
DEMO_TID_2 = demo_bench_tid(1)  # till-2's terminal, also the demo merchant's
CUSTOMER_DELAY_S = 1.5  # the simulated customer takes this long to tap a card
RESULT_WAIT_S = 30.0
REFUND_DELAY_S = 1.5  # Paytm keeps a refund pending (601) this long in the demo
DEMO_POLLING = {"first_check_s": 0.5, "interval_s": 0.5, "slow_after_s": 60,
                "slow_interval_s": 2, "unknown_after_s": 120, "not_found_grace_s": 20,
                "paylink_interval_s": 0.5}


class Narrator:
    """Prints who says what: register, agent, Paytm. One line per message."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._last_status: dict[str, str] = {}
        self._txn_of: dict[str, str] = {}  # request id → its txn, to name what was refused

    def say(self, text: str = "") -> None:
        print(text, file=self._out, flush=True)

    def step(self, number: int, title: str) -> None:
        self.say()
        self.say(f"{number}. {title}")

    def register_event(self, event: TranscriptEvent) -> None:
        self._register_event("register says  ", event)

    def register_2_event(self, event: TranscriptEvent) -> None:
        self._register_event("register 2 says", event)

    def _register_event(self, who: str, event: TranscriptEvent) -> None:
        match event:
            case Sent(message=message) if message is not None:
                txn = getattr(message, "txn", None)
                if isinstance(txn, str):
                    self._txn_of[message.id] = txn
                self.say(f"   {who} {_describe(message)}")
            case Received(message=Error(code=ErrorCode.TERMINAL_BUSY) as error):
                # On a busy terminal the error's `txn` names the holder, not the refused
                # request: say both.
                refused = self._txn_of.get(error.re or "", "the request")
                self.say(f"   agent says      error TERMINAL_BUSY: {refused} refused, the "
                         f"terminal is busy with {error.txn or 'another sale'} "
                         f"(\"{error.message}\")")
            case Received(message=message) if message is not None:
                self.say(f"   agent says      {_describe(message)}")
                if isinstance(message, Result) and message.status != "unknown":
                    for line in message.receipt:
                        self.say(f"   {'':15} │ {line}")

    def paytm_call(self, record: CallRecord) -> None:
        name = _API_NAMES.get(record.api, record.api)
        if record.outcome != "answered":
            answer = f"no answer ({record.outcome}: {record.reason})"
        else:
            words = _CODE_WORDS.get(record.api, _CODE_WORDS["status"])
            answer = f"{record.code or '-'} {words.get(record.code or '', '')}".strip()
        key = f"{record.api}:{record.txn}"
        if record.api in _POLLS and self._last_status.get(key) == answer:
            return  # the same "still pending" again: say it once
        self._last_status[key] = answer
        self.say(f"   Paytm says      {name} {record.txn} → {answer} "
                 f"({record.latency_s * 1000:.0f} ms)")


_API_NAMES = {"sale": "Sale", "status": "Status Enquiry", "void": "Void",
              "send_link": "Send Payment Request", "resend_link": "Resend Payment Request",
              "pg_status": "Transaction Status", "refund_apply": "Refund",
              "refund_status": "Refund Status"}
_POLLS = frozenset({"status", "pg_status", "refund_status"})
_EDC_WORDS = {"0009": "accepted, sent to the terminal", "0000": "success",
              "0010": "pending: waiting for the customer", "0011": "failed",
              "0404": "not found (yet)", "0333": "terminal busy", "0007": "terminal inactive"}
_CODE_WORDS = {
    "sale": _EDC_WORDS, "status": _EDC_WORDS, "void": _EDC_WORDS,
    "send_link": {"0000": "SMS with the UPI link queued"},
    "resend_link": {"0000": "SMS queued again"},
    "pg_status": {"01": "paid", "334": "not paid yet", "400": "pending", "402": "pending",
                  "227": "failed", "810": "failed or expired"},
    "refund_apply": {"601": "refund registered, pending", "10": "refunded"},
    "refund_status": {"601": "pending", "10": "refunded"},
}


def _describe(message: Message) -> str:
    match message:
        case Sale(txn=txn, amount=amount):
            return f"sale {txn} {rupees(amount)}"
        case Void(txn=txn):
            return f"void {txn}"
        case Paylink(txn=txn, amount=amount, phone=phone):
            return f"paylink {txn} {rupees(amount)} to {phone[:2]}XXXXXX{phone[-2:]}"
        case Refund(txn=txn, refund_id=refund_id, amount=amount):
            return f"refund {refund_id} of {txn}: {rupees(amount)}"
        case Status(txn=txn, kind=kind):
            return f"status {txn} ({kind})"
        case Accepted(txn=txn, kind=kind):
            return f"accepted {kind} {txn}"
        case State(txn=txn, state=state):
            return f"state {txn}: {state}"
        case Result(txn=txn, kind=kind, status=status, code=code, message=text):
            return f"result {kind} {txn}: {status.upper()} {code} \"{text}\""
        case Error(code=code, message=text, txn=txn):
            return f"error {code.value}{' ' + txn if txn else ''}: \"{text}\""
        case Pong(lane=lane, tid=tid, busy=busy, cloud=cloud, link=link):
            return (f"pong: lane {lane}, terminal {tid}, busy={busy}, Paytm {cloud}"
                    + ("" if link is None else f", link v{link}"))
    return type(message).__name__.lower()


def demo_config(base_url: str, journal: Path, tty: str, http_listen: str,
                tty_2: str | None = None) -> Config:
    lanes: list[dict[str, str]] = [{"name": "till-1", "link": f"serial://{tty}",
                                    "tid": DEMO_TID, "pos_id": "S1_1"}]
    if tty_2 is not None:
        # The second till speaks link v2 only (protocol §6): CRC-16 frames, numbered ACKs.
        lanes.append({"name": "till-2", "link": f"serial://{tty_2}?protocol=2",
                      "tid": DEMO_TID_2, "pos_id": "S1_2"})
    return config_from_dict({
        "paytm": {"mid": DEMO_MID, "merchant_key_file": "(demo key, in memory)",
                  "edc_base_url": base_url, "pg_base_url": base_url},
        "polling": DEMO_POLLING,
        "journal": {"path": str(journal)},
        "http": {"listen": http_listen},
        "receipt": {"width": 32, "header": ["Demo Store", "MG Road, Bengaluru"],
                    "footer": ["Thank you!"]},
        "lanes": lanes,
    })


class Script:
    """The demo's scripted register session."""

    def __init__(self, client: RegisterClient, emulator: Emulator, say: Narrator,
                 client_2: RegisterClient | None = None) -> None:
        self.client = client
        self.client_2 = client_2
        self.emulator = emulator
        self.say = say
        self._n = 0

    def _id(self) -> str:
        self._n += 1
        return f"demo{self._n}"

    async def ask(self, request: Request) -> Result | Error | None:
        exchange = await self.client.request(request, RESULT_WAIT_S)
        final = exchange.final
        return final if isinstance(final, Result | Error) else None

    async def run(self) -> bool:
        steps: list[tuple[str, Callable[[], Awaitable[bool]]]] = [
            ("A card sale of ₹150.00: the customer taps a card", self.card_sale),
            ("A UPI sale of ₹250.06: the customer scans the QR on the terminal", self.upi_sale),
            ("A sale the bank declines (₹99.01)", self.declined_sale),
            ("A second sale while the first is still on the terminal", self.busy),
            ("The register repeats a sale it already sent (same txn)", self.repeat),
            ("The cashier voids the card sale of step 1", self.void),
            ("A UPI payment link by SMS: the customer pays ₹420.00 on their phone",
             self.paylink),
            ("A partial refund of ₹50.00 of the UPI sale of step 2", self.refund),
        ]
        if self.client_2 is not None:
            steps.append(("Till 2 speaks link v2: CRC-16 frames and ACKs that name their "
                          "frame", self.link_v2))
        ok = True
        for number, (title, step) in enumerate(steps, start=1):
            self.say.step(number, title)
            passed = await step()
            ok = ok and passed
            if not passed:
                self.say.say("   !! this step did not go as expected")
        return ok

    async def card_sale(self) -> bool:
        result = await self.ask(Sale(id=self._id(), txn="DEMOCARD0001", amount="15000",
                                     ref="INV-1001"))
        return isinstance(result, Result) and result.status == "success"

    async def upi_sale(self) -> bool:
        result = await self.ask(Sale(id=self._id(), txn="DEMOUPI00001", amount="25006"))
        return isinstance(result, Result) and result.status == "success"

    async def declined_sale(self) -> bool:
        result = await self.ask(Sale(id=self._id(), txn="DEMODECL0001", amount="9901"))
        return isinstance(result, Result) and result.status == "failed"

    async def busy(self) -> bool:
        first = asyncio.ensure_future(self.ask(
            Sale(id=self._id(), txn="DEMOBUSY0001", amount="50000")))
        await self._until_sent("DEMOBUSY0001")
        second = await self.ask(Sale(id=self._id(), txn="DEMOBUSY0002", amount="12000"))
        busy = isinstance(second, Error) and second.code.value == "TERMINAL_BUSY"
        self.say.say("   (the agent refused it without calling Paytm; the first goes on)")
        result = await first
        return busy and isinstance(result, Result) and result.status == "success"

    async def _until_sent(self, txn: str) -> None:
        while self.emulator.count("sale", txn) == 0:
            await self.emulator.recorded()

    async def repeat(self) -> bool:
        before = self.emulator.count("sale", "DEMOCARD0001")
        result = await self.ask(Sale(id=self._id(), txn="DEMOCARD0001", amount="15000",
                                     ref="INV-1001"))
        after = self.emulator.count("sale", "DEMOCARD0001")
        self.say.say(f"   (answered from the journal: Paytm received {after} Sale for "
                     "DEMOCARD0001 in all, never a second one)")
        return isinstance(result, Result) and result.status == "success" and before == after

    async def void(self) -> bool:
        result = await self.ask(Void(id=self._id(), txn="DEMOCARD0001"))
        return isinstance(result, Result) and result.kind == "void" \
            and result.status == "success"

    async def paylink(self) -> bool:
        result = await self.ask(Paylink(id=self._id(), txn="DEMOLINK0001", amount="42000",
                                        phone="9876543210"))
        return isinstance(result, Result) and result.kind == "paylink" \
            and result.status == "success"

    async def link_v2(self) -> bool:
        client = self.client_2
        if client is None:
            return False
        ping = Ping(id=self._id())
        frame = encode_frame_v2(encode(ping), 0)  # the register's first frame: seq 0
        self.say.say(f"   (on the wire: {frame[:6].hex(' ')} … {frame[-5:].hex(' ')}: SOH, "
                     f"seq '0', the JSON, ETX, CRC {frame[-4:].decode()}; the agent answers "
                     f"{encode_answer(ACK, 0).hex(' ')}, ACK '0' and its CRC)")
        pong = (await client.request(ping, RESULT_WAIT_S)).final
        sale = await self._ask_on(client, Sale(id=self._id(), txn="DEMOLINK2SALE1",
                                               amount="32000"))
        return (isinstance(pong, Pong) and pong.link == 2 and isinstance(sale, Result)
                and sale.status == "success")

    async def _ask_on(self, client: RegisterClient, request: Request) -> Result | Error | None:
        final = (await client.request(request, RESULT_WAIT_S)).final
        return final if isinstance(final, Result | Error) else None

    async def refund(self) -> bool:
        result = await self.ask(Refund(id=self._id(), txn="DEMOUPI00001",
                                       refund_id="DEMOREFUND01", amount="5000"))
        return isinstance(result, Result) and result.kind == "refund" \
            and result.status == "success"


async def _start_web_kept(agent: Agent, say: Narrator, port: int) -> WebServer | None:
    """The page for --keep; a port in use is said plainly and a free port is used instead."""
    from agent.web.server import WebStartError, start_web

    try:
        return await start_web(agent)
    except WebStartError as exc:
        say.say(f"!  the technician page cannot use port {port}: {exc}")
        say.say("!  using a free port instead (choose one with --http-port N)")
    try:
        return await start_web(agent, listen="127.0.0.1:0")
    except WebStartError as exc:
        say.say(f"!  no technician page: {exc}")
        return None


async def run_demo(keep: bool, out: TextIO = sys.stdout,
                   http_port: int = DEMO_HTTP_PORT) -> int:
    say = Narrator(out)
    # The page's Log tab shows what the agent logged during the demo (the transcript
    # on stdout stays the story; the log lines go only to the page).
    logging.getLogger().addHandler(RECENT)
    logging.getLogger().setLevel(logging.INFO)
    emulator = Emulator(EmulatorSettings(customer_delay_s=CUSTOMER_DELAY_S,
                                         refund_delay_s=REFUND_DELAY_S))
    with tempfile.TemporaryDirectory(prefix="edc-agent-demo-") as tmp:
        ptys = [os.openpty(), os.openpty()]
        for _, slave in ptys:
            # Raw at once, so nothing a register writes is echoed back before the agent
            # opens it.
            termios_tty.setraw(slave)
        tty, tty_2 = (os.ttyname(slave) for _, slave in ptys)
        try:
            async with emulator.serve() as base_url:
                listen = f"127.0.0.1:{http_port}" if keep else "127.0.0.1:0"
                config = demo_config(base_url, Path(tmp) / "journal.db", tty, listen, tty_2)
                SECRETS.add(DEMO_KEY.secret_bytes.decode("ascii"))
                # The agent gets its own key object of the demo merchant's key, never the
                # emulator's: each side signs with its own code.
                agent = Agent(config, MerchantKey(DEMO_KEY.secret_bytes))
                agent.observe_calls(say.paytm_call)
                say.say("edc-agent demo: a virtual register, the agent and a Paytm emulator")
                say.say(f"   register on {tty} (pty) · Paytm emulator at {base_url} · "
                        f"journal {Path(tmp) / 'journal.db'}")
                say.say(f"   register 2 on {tty_2} (pty, link v2)")
                await agent.start()
                web = await _start_web_kept(agent, say, http_port) if keep else None
                try:
                    ok = await _run_registers(ptys[0][0], ptys[1][0], emulator, say,
                                              (web.url if web is not None
                                               else "(no page)") if keep else None)
                finally:
                    if web is not None:
                        await web.stop()
                    await agent.stop()
        finally:
            for pair in ptys:
                for fd in pair:
                    os.close(fd)
    say.say()
    say.say("Demo finished: every step behaved as expected." if ok
            else "Demo finished with unexpected results (see above).")
    return 0 if ok else 1


@contextlib.asynccontextmanager
async def _register(master: int, name: str, protocol: LinkProtocol,
                    transcript: Callable[[TranscriptEvent], None],
                    ) -> AsyncIterator[RegisterClient]:
    transport = FdTransport(master, name, close_fd=False)
    await transport.open()
    link = Link(transport, LinkTimings(), name=name, id_of=message_id, protocol=protocol)
    await link.start()
    client = RegisterClient(link, transcript=transcript)
    await client.start()
    try:
        yield client
    finally:
        await client.stop()
        await link.stop()
        await transport.close()


async def _run_registers(master: int, master_2: int, emulator: Emulator, say: Narrator,
                         web_url: str | None) -> bool:
    # Register 1 is a register of before link v2; register 2 speaks v2 only.
    async with _register(master, "virtual-register", LinkProtocol.V1,
                         say.register_event) as client, \
            _register(master_2, "virtual-register-2", LinkProtocol.V2,
                      say.register_2_event) as client_2:
        ok = await Script(client, emulator, say, client_2).run()
        if web_url is not None:
            await _stay_up(say, web_url)
        return ok


async def _stay_up(say: Narrator, web_url: str) -> None:
    say.say()
    say.say(f"The technician page is at {web_url} (read-only: the demo sets no password)")
    say.say("Staying up (--keep). Press Ctrl-C to stop.")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def demo_main(args: argparse.Namespace) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(run_demo(bool(args.keep), http_port=int(args.http_port)))
    return 130
