"""The register console on a terminal: a `> ` prompt that never blocks.

- Line editing, history (Up/Down, kept in `~/.edc-agent-register-history`) and tab
  completion of commands, options and option values come from the standard library's
  `readline` (GNU readline or libedit), so the console needs no extra package.
- Each command runs as its own task: the prompt comes back at once and you may type
  `ping` or `status` while a sale waits for the customer. What the agent sends is
  printed the moment it arrives, above the line being typed, which is then redrawn.
- While a request waits for its final reply, an elapsed-time line is printed every
  `progress_s` seconds (`… sale ORDER0001: waiting 10 s`).

Ordering rule: `input()` blocks, so it runs in a thread. The thread hands each line
to the event loop and waits until the loop has started the command (and printed its
`register → agent` line) before it shows the next prompt, so the request's line is
never printed after the prompt that follows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TextIO

from agent.sim.register import commands as cmd

PROMPT: Final = "> "
HISTORY_FILE: Final = Path("~/.edc-agent-register-history")
HISTORY_MAX: Final = 1000  # lines kept in the history file
PROGRESS_DEFAULT_S: Final = 5.0  # an elapsed-time line this often while a request waits
CLEAR_LINE: Final = "\r\x1b[K"  # carriage return, erase to the end of the line


class LivePrinter:
    """Prints lines above the prompt: erase the prompt line, print, redraw prompt + typing."""

    def __init__(self, out: TextIO, line_buffer: Callable[[], str]) -> None:
        self._out = out
        self._line_buffer = line_buffer
        self._lock = threading.Lock()
        self.prompt_shown = False

    def __call__(self, text: str) -> None:
        with self._lock:
            if self.prompt_shown:
                self._out.write(CLEAR_LINE + text + "\n" + PROMPT + self._line_buffer())
            else:
                self._out.write(text + "\n")
            self._out.flush()


def _setup_readline() -> Callable[[], str]:
    """Completion and history; returns the function that reads the line being typed."""
    try:
        import readline
    except ImportError:  # a Python built without it: plain input(), no editing
        return lambda: ""
    history = HISTORY_FILE.expanduser()
    with contextlib.suppress(OSError):
        readline.read_history_file(history)
    readline.set_history_length(HISTORY_MAX)

    def save() -> None:
        with contextlib.suppress(OSError):
            readline.write_history_file(history)

    import atexit

    atexit.register(save)
    matches: list[str] = []

    def complete(text: str, state: int) -> str | None:
        if state == 0:
            matches[:] = completions(readline.get_line_buffer()[:readline.get_endidx()], text)
        return matches[state] if state < len(matches) else None

    readline.set_completer_delims(" \t")
    readline.set_completer(complete)
    if "libedit" in (readline.__doc__ or ""):
        readline.parse_and_bind("bind ^I rl_complete")
    else:
        readline.parse_and_bind("tab: complete")
    return readline.get_line_buffer


def completions(before: str, text: str) -> list[str]:
    """What may follow `before` (the line up to the cursor) when the word typed is `text`."""
    words = before.split()
    if not words or (len(words) == 1 and not before.endswith(" ")):
        return [verb + " " for verb in cmd.VERBS if verb.startswith(text.lower())]
    verb = cmd.ALIASES.get(words[0].lower(), words[0].lower())
    previous = words[-1] if before.endswith(" ") else (words[-2] if len(words) > 1 else "")
    if previous in cmd.OPTION_VALUES:
        return [value + " " for value in cmd.OPTION_VALUES[previous]
                if value.lower().startswith(text.lower())]
    if text.startswith("-"):
        used = set(words)
        return [option + " " for option in cmd.VERBS.get(verb, ())
                if option.startswith(text) and option not in used]
    return []


class Repl:
    """Reads lines on a terminal and starts each command without waiting for the last one."""

    def __init__(self, execute: Callable[[cmd.Command], asyncio.Task[bool]],
                 parser: cmd.CommandParser, out: TextIO) -> None:
        self._execute = execute
        self._parser = parser
        self._line_buffer = _setup_readline()
        self.printer = LivePrinter(out, self._line_buffer)
        self._tasks: set[asyncio.Task[bool]] = set()

    async def run(self, link_lost: asyncio.Future[str]) -> int:
        """0 after `quit` or Ctrl-D; 1 when the link is lost (the reason is printed)."""
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        handled = threading.Event()
        stop = threading.Event()

        def read() -> None:
            # RuntimeError: the loop has closed, nobody is reading any more.
            with contextlib.suppress(RuntimeError):
                while not stop.is_set():
                    self.printer.prompt_shown = True
                    try:
                        line: str | None = input(PROMPT)
                    except (EOFError, OSError, ValueError):
                        line = None
                    self.printer.prompt_shown = False
                    handled.clear()
                    loop.call_soon_threadsafe(lines.put_nowait, line)
                    if line is None:
                        return
                    handled.wait()

        threading.Thread(target=read, name="register-console-repl", daemon=True).start()
        try:
            while True:
                next_line = asyncio.ensure_future(lines.get())
                waiters: list[asyncio.Future[Any]] = [next_line, link_lost]
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                if link_lost.done():
                    next_line.cancel()
                    self.printer(f"edc-agent register: {link_lost.result()}")
                    return 1
                line = next_line.result()
                if line is None:
                    self.printer("")  # Ctrl-D: end the prompt's line
                    return 0
                try:
                    if not await self._handle(line):
                        return 0
                finally:
                    handled.set()
        finally:
            stop.set()
            for task in self._tasks:
                task.cancel()
            if self._tasks:
                await asyncio.wait(self._tasks)

    async def _handle(self, line: str) -> bool:
        try:
            command = self._parser.parse(line)
        except cmd.CommandError as exc:
            self.printer(f"  {exc.message}")
            return True
        if command is None:
            return True
        if isinstance(command, cmd.Quit):
            return False
        task = self._execute(command)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        # One turn of the loop runs the task up to its first wait, which is after it
        # printed its `register → agent` line (see the ordering rule above).
        await asyncio.sleep(0)
        return not (task.done() and not task.cancelled() and task.exception() is None
                    and not task.result())


def stdin_is_terminal() -> bool:
    try:
        return os.isatty(sys.stdin.fileno()) and os.isatty(sys.stdout.fileno())
    except (OSError, ValueError):
        return False


def describe_waiting(request: cmd.Command) -> str | None:
    """`sale ORDER0001` for a request worth an elapsed-time line, else None."""
    if isinstance(request, cmd.Send):
        txn = getattr(request.request, "txn", None)
        return f"{request.request.TYPE} {txn}" if txn is not None else request.request.TYPE
    return None
