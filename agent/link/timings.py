"""The link layer's timings and version, with their protocol defaults (§2, §6).

A lane may tune them on its link URL (`ack_timeout_s`, `retries`, `frame_gap_s`,
`protocol`); the drivers' URL parser hands those query keys up untouched and
`read_link_options` reads them here, where they are used.
"""

from __future__ import annotations

import enum
import math
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Final

from agent.link.codec import FRAME_GAP_S

# Protocol §2 defaults; a lane may override them in its link URL.
ACK_TIMEOUT_S: Final = 1.0  # S1: wait for ACK/NAK after the LRC
RETRIES: Final = 3  # S2: repetitions after the first send (4 sends in all)
ACK_DEADLINE_S: Final = 0.1  # R1: the receiver ACKs within this time (not tunable: our promise)
# FRAME_GAP_S (R5) lives with the decoder that enforces it (agent/link/codec.py).

LINK_OPTIONS: Final = ("ack_timeout_s", "retries", "frame_gap_s", "protocol")


class LinkProtocol(enum.StrEnum):
    """Which link versions a lane speaks (protocol §6)."""

    V1 = "1"  # v1 only: a v2 frame is ignored
    V2 = "2"  # v2 only: a v1 frame is answered with a bare NAK
    AUTO = "auto"  # both; send in the version of the last valid frame received


@dataclass(frozen=True, slots=True)
class LinkTimings:
    ack_timeout_s: float = ACK_TIMEOUT_S
    retries: int = RETRIES
    frame_gap_s: float = FRAME_GAP_S


def read_link_options(query: MutableMapping[str, str], key: str,
                      problems: list[str]) -> tuple[LinkTimings, LinkProtocol]:
    """Take the link layer's keys out of a link URL's query; each bad value is a problem
    naming `key`, and its default is used so the other checks still run."""
    return _timings(query, key, problems), _protocol(query, key, problems)


def _protocol(query: MutableMapping[str, str], key: str, problems: list[str]) -> LinkProtocol:
    text = query.pop("protocol", LinkProtocol.AUTO.value)
    try:
        return LinkProtocol(text)
    except ValueError:
        problems.append(f"{key}: protocol must be 1, 2 or auto (got {text!r})")
        return LinkProtocol.AUTO


def _timings(query: MutableMapping[str, str], key: str, problems: list[str]) -> LinkTimings:
    defaults = LinkTimings()
    ack = _float(query.pop("ack_timeout_s", str(defaults.ack_timeout_s)))
    if ack is None or not 0.01 <= ack <= 60:
        problems.append(f"{key}: ack_timeout_s must be a number of seconds in 0.01–60")
        ack = defaults.ack_timeout_s
    retries_text = query.pop("retries", str(defaults.retries))
    retries = int(retries_text) if retries_text.isdigit() else None
    if retries is None or not 0 <= retries <= 10:
        problems.append(f"{key}: retries must be an integer in 0–10")
        retries = defaults.retries
    gap = _float(query.pop("frame_gap_s", str(defaults.frame_gap_s)))
    if gap is None or not 0.01 <= gap <= 60:
        problems.append(f"{key}: frame_gap_s must be a number of seconds in 0.01–60")
        gap = defaults.frame_gap_s
    return LinkTimings(ack_timeout_s=ack, retries=retries, frame_gap_s=gap)


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return None if math.isnan(value) else value
