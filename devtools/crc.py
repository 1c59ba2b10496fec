"""The link's CRC as its definition states it: the oracle of the fast codec (tests/link) and
of the fuzzers' reference decoder (tests/fuzz)."""

from __future__ import annotations


def reference_crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE bit by bit, straight from its definition (§6), not from the codec."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc
