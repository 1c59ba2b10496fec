"""`edc-agent register --link URL`: a register console for integrators and the demo.

Three layers, so each can be used (and tested) alone:
- `agent.sim.register.commands`: text lines → commands (pure);
- `agent.sim.register.client.RegisterClient`: a register speaking the protocol (no printing);
- here: `Transcript` prints every frame readably (and in hex with `--hex`), `Console`
  runs commands against a client, `console_main` wires a link URL to them.

On a terminal it is a REPL (`agent.sim.register.repl`): a `> ` prompt with history,
editing and tab completion, and commands that run while you type the next one. With
stdin from a pipe or `--script FILE` the commands run one after the other.

Exit codes: 0 when the commands ran (declined payments and unanswered requests
included: they are printed), 1 on a link error (device missing, frame undelivered,
link closed, the agent refused the connection), 2 on a wrong command line or script
(the line is named).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import io
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final, TextIO, assert_never

from agent.errors import AgentError, ConfigError, LinkError, UndeliveredError
from agent.link.codec import encode_frame
from agent.link.layer import Link
from agent.link.spec import LinkSpec, parse_link_url
from agent.link.timings import LinkProtocol
from agent.logs import setup_logging
from agent.register.codec import message_id
from agent.register.messages import (
    Accepted,
    Error,
    Last,
    Paylink,
    Ping,
    Pong,
    Refund,
    Reply,
    Request,
    Resend,
    Result,
    Sale,
    State,
    Status,
    Totals,
    TotalsReport,
    Void,
)
from agent.sim.register import commands as cmd
from agent.sim.register.client import Exchange, Received, RegisterClient, Sent, TranscriptEvent
from agent.sim.register.commands import CommandError, CommandParser, ScriptError, paise_to_rupees
from agent.sim.register.repl import PROGRESS_DEFAULT_S, Repl, describe_waiting, stdin_is_terminal
from drivers.base import Transport, TransportState
from drivers.errors import TransportError

CONNECT_TIMEOUT_S: Final = 5.0  # the first attempt to open the device / reach the agent
# The emulator's terminal gives up on a customer after 60 s and the agent then sends the
# failed result: waiting longer than that shows the final answer, not "no final answer".
WAIT_DEFAULT_S: Final = 120.0
TCP_DROPPED: Final = ("the agent closed the connection on {url}: a tcp lane serves one "
                      "register at a time, so another register (or console) is probably "
                      "connected to this lane already; close it, or use another lane")

OUT: Final = "register → agent: "
IN: Final = "agent → register: "


# --------------------------------------------------------------------------- formatting


def describe_request(message: Request) -> str:
    match message:
        case Sale():
            text = f"sale {message.txn} {paise_to_rupees(message.amount)}"
            if message.ref is not None:
                text += f" ref {message.ref!r}"
            if message.mode != "ALL":
                text += f" mode {message.mode}"
            if message.tid is not None:
                text += f" tid {message.tid}"
            return text
        case Void():
            return f"void {message.txn}"
        case Paylink():
            return (f"paylink {message.txn} {paise_to_rupees(message.amount)} to "
                    f"{message.phone}, expires in {message.expiry_s} s")
        case Resend():
            return f"resend {message.txn}"
        case Refund():
            return (f"refund {message.refund_id} of {message.txn} "
                    f"{paise_to_rupees(message.amount)}")
        case Status():
            return f"status {message.txn}" + ("" if message.kind == "sale"
                                              else f" ({message.kind})")
        case Last():
            return "last"
        case Ping():
            return "ping"
        case Totals():
            return "totals" + (f" {message.day}" if message.day else "")
        case _:
            assert_never(message)


def describe_reply(message: Reply, *, again: bool = False) -> list[str]:
    """The reply as lines: a headline, then payment, receipt (`| `) and warnings (`! `).

    A result shown `again` (its txn, kind and status were seen) is the headline only.
    """
    match message:
        case Accepted():
            return [f"accepted {message.kind} {message.txn}"]
        case State():
            return [f"state {message.state} {message.kind} {message.txn}"]
        case Result():
            head = (f"result {'again ' if again else ''}{message.status} {message.code} "
                    f"\"{message.message}\" ({message.kind} {message.txn} "
                    f"{paise_to_rupees(message.amount)})")
            lines = [head]
            if again:  # the details were shown the first time
                return lines
            if message.payment is not None:
                details = " ".join(f"{k}={v}" for k, v in message.payment.to_json().items())
                lines.append(f"  payment: {details}")
            lines.extend(f"  | {line}" for line in message.receipt)
            lines.extend(f"  ! {warning}" for warning in message.warnings)
            return lines
        case Error():
            text = f"error {message.code.value} \"{message.message}\""
            if message.field is not None:
                text += f" field={message.field}"
            if message.txn is not None:
                text += f" txn={message.txn}"
            if message.paytm_code is not None:
                text += f" paytm_code={message.paytm_code}"
            return [text]
        case Pong():
            return [f"pong lane={message.lane} tid={message.tid} "
                    f"busy={'yes' if message.busy else 'no'} cloud={message.cloud} "
                    f"version={message.version}"
                    + ("" if message.link is None else f" link={message.link}")]
        case TotalsReport():
            f = message.figures
            return [f"totals {message.day} lane={message.lane} tid={message.tid} "
                    f"sales={f.sales.count}/{paise_to_rupees(f.sales.amount)} "
                    f"net={f.net} failed={f.failed.count} unknown={f.unknown.count}",
                    *(f"  | {line}" for line in message.receipt)]
        case _:
            assert_never(message)


class Transcript:
    """Prints each frame as `register → agent: …` / `agent → register: …` (hex with show_hex)."""

    def __init__(self, out: TextIO, *, show_hex: bool = False, err: TextIO | None = None
                 ) -> None:
        self._out = out
        self._err = err if err is not None else out
        self._hex = show_hex
        self.printer: Callable[[str], None] | None = None  # the REPL's, above the prompt

    def line(self, text: str) -> None:
        if self.printer is not None:
            self.printer(text)
            return
        self._out.write(text + "\n")
        self._out.flush()

    def error(self, text: str) -> None:
        self._err.write("edc-agent register: " + text + "\n")
        self._err.flush()

    def __call__(self, event: TranscriptEvent) -> None:
        match event:
            case Sent(payload=payload, message=message):
                if message is None:
                    self.line(OUT + "raw " + payload.decode("ascii", "replace"))
                else:
                    self.line(OUT + describe_request(message))
            case Received(payload=payload, message=message, problem=problem):
                if message is None:
                    why = f"{problem.code.value}: {problem.message}" if problem else "?"
                    self.line(f"{IN}INVALID reply ({why}) "
                              + payload.decode("ascii", "replace"))
                else:
                    lines = describe_reply(message, again=event.again)
                    if event.unsolicited:
                        lines[0] += " (late)" if message.re is not None else " (on its own)"
                    self.line(IN + lines[0])
                    for extra in lines[1:]:
                        self.line(extra)
        if self._hex:
            if event.link == 1:
                self.line("  hex: " + encode_frame(event.payload).hex(" "))
            else:
                # A v2 frame's seq is the link's business, not the client's: show what
                # is certain, the payload (SOH seq before it, ETX and the crc after it).
                self.line("  hex (v2 payload): " + event.payload.hex(" "))


# --------------------------------------------------------------------------- running


class LinkFailure(AgentError):
    """A link error that ends a script (exit 1); the message is for the operator."""


class Console:
    """Runs console commands against a `RegisterClient`; output through a `Transcript`."""

    def __init__(self, client: RegisterClient, transcript: Transcript, *,
                 wait_s: float, progress_s: float = 0.0) -> None:
        self.client = client
        self.transcript = transcript
        self.wait_s = wait_s
        self.progress_s = progress_s  # 0: no elapsed-time lines (scripts, pipes)

    async def _with_progress(self, what: str | None, work: Awaitable[Exchange]) -> Exchange:
        """Await `work`, printing `… what: waiting N s` every progress_s until it ends."""
        task = asyncio.ensure_future(work)
        if what is None or self.progress_s <= 0:
            return await task
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            while True:
                done, _ = await asyncio.wait([task], timeout=self.progress_s)
                if done:
                    return task.result()
                self.transcript.line(f"  … {what}: waiting {loop.time() - started:.0f} s "
                                     f"(up to {self.wait_s:g} s)")
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait([task])

    async def execute(self, command: cmd.Command) -> bool:
        """Run one command; False after `quit`. LinkFailure on a link error."""
        say = self.transcript.line
        try:
            match command:
                case cmd.Send(request=request):
                    self._report(await self._with_progress(
                        describe_waiting(command), self.client.request(request, self.wait_s)))
                case cmd.SendRaw(payload=payload):
                    self._report(await self.client.request_raw(payload, self.wait_s))
                case cmd.Wait(seconds=seconds):
                    wait_s = self.wait_s if seconds is None else seconds
                    result = await self.client.next_result(wait_s)
                    if result is None:
                        say(f"  no result from the agent within {wait_s:g} s")
                    else:
                        say(f"  waited for: result {result.status} ({result.kind} "
                            f"{result.txn})")
                case cmd.Sleep(seconds=seconds):
                    await asyncio.sleep(seconds)
                case cmd.Help():
                    say(cmd.HELP)
                case cmd.Quit():
                    return False
        except UndeliveredError:
            raise LinkFailure(self._undelivered_text()) from None
        except LinkError as exc:  # LinkClosedError included
            raise LinkFailure(f"link error: {exc}") from None
        return True

    def _report(self, exchange: Exchange) -> None:
        if exchange.timed_out:
            got = f" (got {len(exchange.replies)} other repl"
            got += "y)" if len(exchange.replies) == 1 else "ies)"
            self.transcript.line(f"  no final answer within {self.wait_s:g} s"
                                 + (got if exchange.replies else ""))

    def _undelivered_text(self) -> str:
        transport = self.client.link.transport
        status = transport.status
        why = f" ({status.state}: {status.last_error})" if status.last_error else ""
        sends = 1 + self.client.link.timings.retries
        return f"the agent did not acknowledge the frame after {sends} sends on {status.url}{why}"

    async def run_script(self, commands: list[cmd.Command]) -> int:
        for command in commands:
            try:
                if not await self.execute(command):
                    break
            except LinkFailure as exc:
                self.transcript.error(str(exc))
                return 1
        return 0

    async def run_interactive(self, lines: AsyncIterator[str],
                              parser: CommandParser) -> int:
        async for line in lines:
            try:
                command = parser.parse(line)
            except CommandError as exc:
                self.transcript.line(f"  {exc.message}")
                continue
            if command is None:
                continue
            try:
                if not await self.execute(command):
                    return 0
            except LinkFailure as exc:
                self.transcript.error(str(exc))
                if self.client.closed:
                    return 1
        return 0


async def _stdin_lines() -> AsyncIterator[str]:
    """Lines of stdin, read by a daemon thread so a pending read never blocks the exit."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def pump() -> None:
        # RuntimeError: the loop has closed, nobody is reading any more.
        with contextlib.suppress(RuntimeError):
            with contextlib.suppress(OSError, ValueError):
                for line in sys.stdin:
                    loop.call_soon_threadsafe(queue.put_nowait, line)
            loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=pump, name="register-console-stdin", daemon=True).start()
    while (line := await queue.get()) is not None:
        yield line


async def wait_connected(transport: Transport, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Return once the transport is up; TransportError when its first attempt failed."""
    try:
        state = await asyncio.wait_for(
            transport.wait_state(TransportState.UP, TransportState.RECONNECTING), timeout_s)
    except TimeoutError:
        status = transport.status
        why = f": {status.last_error}" if status.last_error else ""
        raise TransportError(f"{status.url} not up after {timeout_s:g} s{why}") from None
    if state is not TransportState.UP:
        status = transport.status
        raise TransportError(f"cannot open {status.url}: {status.last_error or 'failed'}")


def open_transport(spec: LinkSpec) -> Transport:
    """The register's end of `spec`: a tty opened by path, or a TCP client to the agent."""
    from drivers.factory import make_peer_transport

    return make_peer_transport(spec)


def _watch_tcp(spec: LinkSpec, transport: Transport) -> asyncio.Future[str]:
    """A future that gets the reason once the agent drops a tcp connection (never for a tty).

    The agent refuses a second register on a tcp lane by closing the connection at once;
    the console says so instead of "the agent did not acknowledge".
    """
    loop = asyncio.get_running_loop()
    lost: asyncio.Future[str] = loop.create_future()
    if spec.kind != "tcp":
        return lost

    async def watch() -> None:
        await transport.wait_state(TransportState.RECONNECTING, TransportState.DOWN)
        if not lost.done():
            lost.set_result(TCP_DROPPED.format(url=spec.url))

    task = loop.create_task(watch(), name="register-console-tcp-watch")
    lost.add_done_callback(lambda _: task.cancel())
    return lost


async def _until_lost(work: Awaitable[int], lost: asyncio.Future[str],
                      transcript: Transcript) -> int:
    task = asyncio.ensure_future(work)
    waiters: list[asyncio.Future[Any]] = [task, lost]
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        code = task.result()
        if code != 0 and lost.done():
            transcript.error(lost.result())
        return code
    task.cancel()
    await asyncio.wait([task])
    transcript.error(lost.result())
    return 1


async def run_console(
    spec: LinkSpec,
    transcript: Transcript,
    *,
    wait_s: float,
    script: list[cmd.Command] | None,
    parser: CommandParser,
    transport_factory: Callable[[LinkSpec], Transport] = open_transport,
    lines: Callable[[], AsyncIterator[str]] = _stdin_lines,
    terminal: bool = False,
    progress_s: float = PROGRESS_DEFAULT_S,
) -> int:
    transport = transport_factory(spec)
    try:
        await transport.open()
        try:
            await wait_connected(transport)
        except TransportError as exc:
            transcript.error(str(exc))
            return 1
        lost = _watch_tcp(spec, transport)
        link = Link(transport, spec.timings, name=spec.url, id_of=message_id,
                    protocol=spec.protocol)
        await link.start()
        try:
            async with RegisterClient(link, transcript=transcript) as client:
                if script is not None:
                    console = Console(client, transcript, wait_s=wait_s)
                    return await _until_lost(console.run_script(script), lost, transcript)
                if terminal:
                    console = Console(client, transcript, wait_s=wait_s, progress_s=progress_s)
                    return await _run_repl(console, parser, lost)
                console = Console(client, transcript, wait_s=wait_s)
                transcript.line(f"connected to {spec.url}; type help for the commands")
                return await _until_lost(console.run_interactive(lines(), parser), lost,
                                         transcript)
        finally:
            if not lost.done():
                lost.cancel()
            await link.stop()
    finally:
        await transport.close()


async def _run_repl(console: Console, parser: CommandParser, lost: asyncio.Future[str]) -> int:
    transcript = console.transcript
    loop = asyncio.get_running_loop()

    async def run(command: cmd.Command) -> bool:
        try:
            return await console.execute(command)
        except LinkFailure as exc:
            if console.client.closed and not lost.done():
                lost.set_result(str(exc))
            elif not lost.done():
                transcript.error(str(exc))
            return True

    def execute(command: cmd.Command) -> asyncio.Task[bool]:
        return loop.create_task(run(command), name="register-console-command")

    repl = Repl(execute, parser, sys.stdout)
    transcript.printer = repl.printer
    transcript.line(f"connected to {console.client.link.name}; type help for the commands, "
                    "Tab completes, Up recalls, Ctrl-D quits")
    try:
        return await repl.run(lost)
    finally:
        transcript.printer = None


def console_main(args: argparse.Namespace) -> int:
    """`edc-agent register --link URL [--protocol 1|2|auto] [--script FILE] [--hex]
    [--wait-s S]`."""
    # The drivers log each failed attempt as a warning ("retrying in 0.5 s"); the console
    # says what went wrong itself and exits, so only errors are logged.
    setup_logging("error")
    if isinstance(sys.stdout, io.TextIOWrapper):
        # ₹ and → on a console that cannot show them become escapes, not a crash.
        sys.stdout.reconfigure(errors="backslashreplace")
    err = sys.stderr
    try:
        spec = parse_link_url(args.link, key="--link")
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"edc-agent register: {problem}", file=err)
        return 2
    protocol: str | None = getattr(args, "protocol", None)
    if protocol is not None:
        # --protocol wins over the URL's protocol= option.
        spec = dataclasses.replace(spec, protocol=LinkProtocol(protocol))
    wait_s: float = args.wait_s
    if not wait_s > 0:
        print("edc-agent register: --wait-s must be more than 0", file=err)
        return 2
    parser = CommandParser()
    script: list[cmd.Command] | None = None
    if args.script is not None:
        try:
            with open(args.script, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            print(f"edc-agent register: cannot read script {args.script}: {exc}", file=err)
            return 2
        try:
            script = cmd.parse_script(text, parser, source=args.script)
        except ScriptError as exc:
            print(f"edc-agent register: {exc}", file=err)
            return 2
    transcript = Transcript(sys.stdout, show_hex=bool(args.hex), err=sys.stderr)
    terminal = script is None and stdin_is_terminal()
    progress_s: float = args.progress_s
    saved = _terminal_settings() if terminal else None
    try:
        return asyncio.run(run_console(spec, transcript, wait_s=wait_s, script=script,
                                       parser=parser, terminal=terminal,
                                       progress_s=progress_s))
    finally:
        if saved is not None:
            _restore_terminal(saved)


def _terminal_settings() -> list[Any] | None:
    # readline puts the terminal in its own mode while a line is read; leaving in the
    # middle of a read (quit from a command, the link lost) must give it back as it was.
    import termios

    try:
        return list(termios.tcgetattr(sys.stdin.fileno()))
    except (termios.error, OSError, ValueError):
        return None


def _restore_terminal(saved: list[Any]) -> None:
    import termios

    with contextlib.suppress(termios.error, OSError, ValueError):
        termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)
