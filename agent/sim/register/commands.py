"""Register console commands: one line of text in, one typed command out. Pure, no I/O.

    sale AMOUNT [--txn ID] [--ref R] [--mode ALL|CARD|QR] [--tid T]
    void TXN
    status TXN [--kind sale|void|paylink|refund]
    last
    ping
    totals [DAY]        the lane's day so far (an X-report); DAY is YYYY-MM-DD
    paylink AMOUNT PHONE [--txn ID] [--expiry-s N]
    resend TXN
    refund TXN REFUND_ID AMOUNT
    raw {json}          the rest of the line is sent as it is (printable ASCII)
    wait [S]            wait for the next result the agent sends on its own
    sleep S             pause a script
    help
    quit

AMOUNT is in rupees (`150`, `150.00`, `0.5`) and becomes paise exactly; more than two
decimals is an error, not a rounding. Arguments may be quoted (`--ref "Bill 12"`);
`#` starts a comment line. A request is checked against the protocol's field rules
when it is parsed, so a script with a bad line sends nothing (use `raw` to send what
the rules forbid, to see how the agent answers).
"""

from __future__ import annotations

import difflib
import math
import re
import secrets
import shlex
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Final

from agent.errors import AgentError, FieldError
from agent.link.codec import InvalidPayloadError, check_payload
from agent.paytm.clock import IST
from agent.register import fields
from agent.register.ids import IdSource
from agent.register.messages import (
    Last,
    Paylink,
    Ping,
    Refund,
    Request,
    Resend,
    Sale,
    Status,
    Totals,
    Void,
)

HELP = __doc__.split("\n\n")[1] if __doc__ else ""

_AMOUNT_RE = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")
_PAISE_PER_RUPEE = Decimal(100)
_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# Every verb and its options: the parser's rules, the REPL's tab completion and
# "did you mean" all read this one table.
VERBS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType({
    "sale": ("--txn", "--ref", "--mode", "--tid"),
    "void": (),
    "status": ("--kind",),
    "last": (),
    "ping": (),
    "paylink": ("--txn", "--expiry-s"),
    "resend": (),
    "refund": (),
    "raw": (),
    "wait": (),
    "sleep": (),
    "help": (),
    "quit": (),
})
ALIASES: Final[Mapping[str, str]] = MappingProxyType({"?": "help", "exit": "quit"})
OPTION_VALUES: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType({
    "--mode": ("ALL", "CARD", "QR"),
    "--kind": ("sale", "void", "paylink", "refund"),
})
SUGGEST_CUTOFF: Final = 0.6  # difflib ratio: "sael" → sale, "stats" → status, "xyz" → nothing


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """The closest of `choices` to a mistyped `word`, or None when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=SUGGEST_CUTOFF)
    return close[0] if close else None


class CommandError(AgentError):
    """A console command line is wrong; `message` says how, for the person who typed it."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class ScriptError(AgentError):
    """A line of a script is wrong; the console exits 2 and names the line."""

    def __init__(self, source: str, line: int, message: str) -> None:
        self.source = source
        self.line = line
        self.message = message
        super().__init__(f"{source}:{line}: {message}")


@dataclass(frozen=True, slots=True)
class Send:
    request: Request


@dataclass(frozen=True, slots=True)
class SendRaw:
    payload: bytes


@dataclass(frozen=True, slots=True)
class Wait:
    seconds: float | None = None  # None: the console's --wait-s


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class Help:
    pass


@dataclass(frozen=True, slots=True)
class Quit:
    pass


Command = Send | SendRaw | Wait | Sleep | Help | Quit


def rupees_to_paise(text: str) -> str:
    """`"150.00"` → `"15000"`, exactly; CommandError for anything that is not 0.01–10^10."""
    if _AMOUNT_RE.fullmatch(text) is None:
        raise CommandError(f"amount {text!r} is not a number of rupees like 150 or 150.00")
    _, _, decimals = text.partition(".")
    if len(decimals) > 2:
        raise CommandError(f"amount {text!r} has more than 2 decimal places (paise are whole)")
    whole_digits = len(text.partition(".")[0].lstrip("0"))
    if whole_digits > 10:
        raise CommandError(f"amount {text!r} is too large (at most 12 digits of paise)")
    paise = int(Decimal(text) * _PAISE_PER_RUPEE)
    if paise <= 0:
        raise CommandError(f"amount {text!r} must be more than zero")
    result = str(paise)
    if len(result) > 12:
        raise CommandError(f"amount {text!r} is too large (at most 12 digits of paise)")
    return result


def paise_to_rupees(paise: str) -> str:
    """`"15000"` → `"₹150.00"` (anything else is shown as it is)."""
    if not paise.isascii() or not paise.isdigit():
        return paise
    value = int(paise)
    return f"₹{value // 100}.{value % 100:02d}"


class TxnSource:
    """Merchant transaction ids for requests typed without `--txn`: `T` + time + random + n.

    `T240501123045K7Q1`: 8–32 letters and digits, the time in IST (as on the page,
    the receipts and the logs), unique between two console runs in the same second
    (3 random base-36 characters) and within a run (the counter).
    """

    def __init__(self, clock: Callable[[], float] = time.time,
                 salt: str | None = None) -> None:
        self._clock = clock
        self._salt = salt if salt is not None else "".join(
            secrets.choice(_BASE36) for _ in range(3))
        self._count = 0

    def __call__(self) -> str:
        self._count += 1
        stamp = datetime.fromtimestamp(self._clock(), IST).strftime("%y%m%d%H%M%S")
        return f"T{stamp}{self._salt}{self._count}"[:32]


_OPTION_LABELS = {"txn": "--txn", "ref": "--ref", "mode": "--mode", "tid": "--tid",
                  "kind": "--kind", "expiry_s": "--expiry-s", "amount": "AMOUNT",
                  "phone": "PHONE", "refund_id": "REFUND_ID"}


def _split(verb: str, args: list[str], positional: Iterable[str],
           options: Iterable[str]) -> tuple[list[str], dict[str, str]]:
    names = list(positional)
    allowed = set(options)
    values: list[str] = []
    opts: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--") and len(arg) > 2:
            if arg not in allowed:
                known = ", ".join(sorted(allowed)) or "none"
                close = suggest(arg, allowed)
                hint = f"did you mean {close}? " if close else ""
                raise CommandError(f"{verb}: unknown option {arg} ({hint}options: {known})")
            if i + 1 >= len(args):
                raise CommandError(f"{verb}: {arg} needs a value")
            if arg in opts:
                raise CommandError(f"{verb}: {arg} given twice")
            opts[arg] = args[i + 1]
            i += 2
            continue
        values.append(arg)
        i += 1
    if len(values) != len(names):
        usage = " ".join([verb, *names])
        raise CommandError(f"{verb}: expected {len(names)} argument(s): {usage}"
                           f" (got {len(values)})")
    return values, opts


def _seconds(verb: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CommandError(f"{verb}: {text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise CommandError(f"{verb}: seconds must be zero or more (got {text!r})")
    return value


class CommandParser:
    """Turns lines into commands; requests get their ids (and default txns) here."""

    def __init__(self, ids: IdSource | None = None, txns: Callable[[], str] | None = None) -> None:
        self.ids = ids if ids is not None else IdSource()
        self.txns = txns if txns is not None else TxnSource()

    def parse(self, line: str) -> Command | None:
        """The command on `line`, None for a blank or comment line; CommandError if wrong."""
        text = line.strip()
        if not text or text.startswith("#"):
            return None
        verb, _, rest = text.partition(" ")
        verb = verb.lower()
        if verb == "raw":
            return self._raw(rest.strip())
        try:
            args = shlex.split(rest)
        except ValueError as exc:
            raise CommandError(f"{verb}: {exc}") from None
        try:
            return self._command(verb, args)
        except FieldError as exc:
            positional_txn = verb in ("void", "status", "resend", "refund")
            label = "TXN" if exc.field == "txn" and positional_txn else _OPTION_LABELS.get(
                exc.field, exc.field)
            raise CommandError(f"{verb}: {label} {exc.message}") from None

    def _raw(self, rest: str) -> SendRaw:
        if not rest:
            raise CommandError("raw: give the JSON to send, e.g. raw {\"v\":1,...}")
        try:
            payload = rest.encode("ascii")
            check_payload(payload)
        except UnicodeEncodeError:
            raise CommandError("raw: only printable ASCII fits in a frame (write \\uXXXX)"
                               ) from None
        except InvalidPayloadError as exc:
            raise CommandError(f"raw: {exc.reason}") from None
        return SendRaw(payload)

    def _command(self, verb: str, args: list[str]) -> Command:
        match verb:
            case "sale":
                (amount,), o = _split(verb, args, ["AMOUNT"], ["--txn", "--ref", "--mode", "--tid"])
                mode = o.get("--mode", "ALL").upper()
                return Send(Sale(
                    id=self.ids(), txn=o.get("--txn") or self.txns(),
                    amount=rupees_to_paise(amount), ref=o.get("--ref"), tid=o.get("--tid"),
                    mode=fields.mode(mode, "mode"),
                ))
            case "void":
                (txn,), _ = _split(verb, args, ["TXN"], [])
                return Send(Void(id=self.ids(), txn=txn))
            case "status":
                (txn,), o = _split(verb, args, ["TXN"], ["--kind"])
                kind = fields.kind(o.get("--kind", "sale").lower(), "kind")
                return Send(Status(id=self.ids(), txn=txn, kind=kind))
            case "last":
                _split(verb, args, [], [])
                return Send(Last(id=self.ids()))
            case "ping":
                _split(verb, args, [], [])
                return Send(Ping(id=self.ids()))
            case "totals":
                if len(args) > 1:
                    raise CommandError("totals: at most one DAY (YYYY-MM-DD)")
                return Send(Totals(id=self.ids(), day=fields.day(args[0]) if args else None))
            case "paylink":
                (amount, phone), o = _split(verb, args, ["AMOUNT", "PHONE"],
                                            ["--txn", "--expiry-s"])
                expiry = o.get("--expiry-s", str(fields.EXPIRY_DEFAULT_S))
                if not (expiry.isascii() and expiry.isdigit()) or len(expiry) > 9:
                    raise CommandError("paylink: --expiry-s must be whole seconds, 60-86400 "
                                       f"(got {expiry[:20]!r})")
                return Send(Paylink(
                    id=self.ids(), txn=o.get("--txn") or self.txns(),
                    amount=rupees_to_paise(amount), phone=phone, expiry_s=int(expiry),
                ))
            case "resend":
                (txn,), _ = _split(verb, args, ["TXN"], [])
                return Send(Resend(id=self.ids(), txn=txn))
            case "refund":
                (txn, refund_id, amount), _ = _split(verb, args,
                                                     ["TXN", "REFUND_ID", "AMOUNT"], [])
                return Send(Refund(id=self.ids(), txn=txn, refund_id=refund_id,
                                   amount=rupees_to_paise(amount)))
            case "wait":
                if len(args) > 1:
                    raise CommandError("wait: expected at most 1 argument: wait [S]")
                return Wait(_seconds(verb, args[0]) if args else None)
            case "sleep":
                (seconds,), _ = _split(verb, args, ["S"], [])
                return Sleep(_seconds(verb, seconds))
            case "help" | "?":
                return Help()
            case "quit" | "exit":
                return Quit()
        close = suggest(verb, VERBS)
        if close is not None:
            raise CommandError(f"unknown command {verb!r}: did you mean {close}? (type help)")
        raise CommandError(f"unknown command {verb!r} (type help)")


def parse_script(text: str, parser: CommandParser, source: str = "script") -> list[Command]:
    """Every command of a script, or ScriptError naming the first wrong line."""
    commands: list[Command] = []
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            command = parser.parse(line)
        except CommandError as exc:
            raise ScriptError(source, number, exc.message) from None
        if command is not None:
            commands.append(command)
    return commands
