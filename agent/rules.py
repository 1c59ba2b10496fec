"""The field rules several parts of the agent share, each written once.

The register protocol, the EDC and PG clients and the configuration all speak of paise,
Paytm terminal ids and POS ids; they must agree on what one is, or the config could accept
a terminal the client then refuses. Each caller keeps its own wording and field name (the
error names the field as that caller's reader knows it); the rule itself lives here.

A leaf module: it imports only the standard library and `agent.errors`, so every layer
(agent.paytm included, which may not import the register or the receipts) can use it.
"""

from __future__ import annotations

import re
from typing import Final

from agent.errors import FieldError

# Paise: digits without a leading zero, 1-12 of them ("0" is not an amount; Paytm's
# transactionAmount is string(12)).
PAISE_RE: Final = re.compile(r"[1-9][0-9]{0,11}")
# Paytm terminal id: paytmTid is string(8); 1-8 letters or digits.
TID_RE: Final = re.compile(r"[A-Za-z0-9]{1,8}")
# POS id: StoreID_POSID (Paytm's posId), letters and digits either side of one underscore.
POS_ID_RE: Final = re.compile(r"[A-Za-z0-9]+_[A-Za-z0-9]+")
POS_ID_MAX: Final = 50


def is_paise(value: object) -> bool:
    return isinstance(value, str) and PAISE_RE.fullmatch(value) is not None


def is_tid(value: object) -> bool:
    return isinstance(value, str) and TID_RE.fullmatch(value) is not None


def is_pos_id(value: object) -> bool:
    return (isinstance(value, str) and len(value) <= POS_ID_MAX
            and POS_ID_RE.fullmatch(value) is not None)


# The wording the Paytm clients use; the register protocol and the config word their own.
def check_paise(amount: object, field: str) -> str:
    if not isinstance(amount, str) or not is_paise(amount):
        raise FieldError(field, "must be 1–12 digits of paise without a leading zero "
                         f"(got {amount!r})")
    return amount


def check_tid(tid: object, field: str) -> str:
    if not isinstance(tid, str) or not is_tid(tid):
        raise FieldError(field, f"must be 1–8 letters or digits (got {tid!r})")
    return tid


def rupees_plain(paise: str | int) -> str:
    """'123450' → '1234.50': Paytm PG amounts (two decimals, no separators)."""
    whole, frac = divmod(int(paise), 100)
    return f"{whole}.{frac:02d}"
