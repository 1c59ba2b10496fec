"""`edc-agent emulator --port N [--config FILE] [--customer-delay-s S]`.

Serves on 127.0.0.1 until SIGINT/SIGTERM. Prints one line when it listens (tests and
the demo wait for the word "listening"). With --config it plays the merchant of that
agent config, otherwise the demo merchant.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import signal
import sys
import time

from agent.config import load_config
from agent.errors import ConfigError
from agent.keyfile import load_merchant_key
from agent.logs import setup_logging
from agent.sim.paytm.app import Emulator
from agent.sim.paytm.settings import EmulatorSettings, Merchant, Terminal
from agent.sim.paytm.signature import ChecksumMode, SimKey

LISTEN_HOST = "127.0.0.1"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


# A day either way: enough to show a PC's wrong clock, short of dates that make no sense.
MAX_CLOCK_OFFSET_S = 86400.0


def settings_from_args(args: argparse.Namespace) -> EmulatorSettings:
    """Raises ConfigError (naming the problem) for a bad config, key file or delay."""
    delay = args.customer_delay_s if args.customer_delay_s is not None else 0.0
    if not (math.isfinite(delay) and delay >= 0):
        raise ConfigError([f"--customer-delay-s must be ≥ 0 seconds (got {delay})"])
    offset = getattr(args, "clock_offset_s", None) or 0.0
    if not (math.isfinite(offset) and abs(offset) <= MAX_CLOCK_OFFSET_S):
        raise ConfigError([f"--clock-offset-s must be within ±{MAX_CLOCK_OFFSET_S:g} seconds "
                           f"(got {offset})"])

    def wall_clock() -> float:  # Paytm's clock as this emulator shows it (certify's check)
        return time.time() + offset

    if args.config is None:
        return EmulatorSettings(customer_delay_s=delay, webhook_url=args.webhook_url,
                                wall_clock=wall_clock)
    config = load_config(args.config)
    # The agent's key file and config, read by the agent's code; from here on the emulator
    # holds the key and the mode as its own types (signature.py).
    key = SimKey(load_merchant_key(config.paytm.merchant_key_file).secret_bytes)
    terminals: dict[str, Terminal] = {}
    for lane in config.lanes:
        terminals.setdefault(lane.tid, Terminal(lane.tid))  # two lanes may share a terminal
    merchant = Merchant(mid=config.paytm.mid, key=key, terminals=tuple(terminals.values()))
    mode = ChecksumMode(config.paytm.checksum_mode.value)
    return EmulatorSettings(merchants=(merchant,), checksum_mode=mode, customer_delay_s=delay,
                            resend_path=config.paytm.resend_path,
                            webhook_url=args.webhook_url, wall_clock=wall_clock)


def emulator_main(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args)
    except ConfigError as exc:
        for problem in exc.problems or [str(exc)]:
            print(f"edc-agent emulator: {problem}", file=sys.stderr)
        return EXIT_USAGE
    port: int = args.port
    if not 0 <= port <= 65535:
        print(f"edc-agent emulator: --port must be 0..65535 (got {port})", file=sys.stderr)
        return EXIT_USAGE
    # One line per call on stderr ("sale MID ORDER0001 → 0009"); stdout keeps the banner.
    # The agent's log format (ISO-8601, IST): the two logs read side by side.
    setup_logging("info")
    try:
        asyncio.run(_serve(settings, port))
    except OSError as exc:
        print(f"edc-agent emulator: cannot listen on {LISTEN_HOST}:{port}: {exc.strerror or exc}",
              file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


async def _serve(settings: EmulatorSettings, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        emulator = Emulator(settings)
        async with emulator.serve(LISTEN_HOST, port) as base_url:
            merchants = "; ".join(f"merchant {m.mid}, terminals {m.describe_terminals()}"
                                  for m in settings.merchants)
            print(f"Paytm emulator listening on {base_url} — {merchants}; "
                  f"{settings.checksum_mode.value} checksum, customer delay "
                  f"{settings.customer_delay_s:g} s", flush=True)
            await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
