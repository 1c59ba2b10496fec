"""Amounts as the PG APIs write them, transcribed from Paytm's documents, not the client's.

Reference §11 (integration checklist, seed 000): rupees "with at most 2 decimal points, no
comma or any special characters", e.g. "1303.00"; §16: refund amounts in rupees with 2
decimals. EDC amounts are paise as digits (§4.2) and need no formatting.
"""

from __future__ import annotations

PAISE_PER_RUPEE = 100


def rupees(paise: int) -> str:
    """130300 → "1303.00": two decimals, no separators, no currency sign."""
    whole, fraction = divmod(paise, PAISE_PER_RUPEE)
    return f"{whole}.{fraction:02d}"
