"""What the simulated customer does, chosen by the last two digits of the amount in paise,
and the realistic payment details Status Enquiry reports (reference §5.2).

| paise | behaviour                                                           |
|-------|---------------------------------------------------------------------|
| 01    | declined by the bank (bankResponseCode 05)                          |
| 02    | the customer never pays: pending until the terminal times out       |
| 03    | the cashier rejects the pop-up on the terminal                      |
| 04    | success, but Status Enquiry says 0404 for the first seconds         |
| 05    | success, but the Sale response is lost (connection dropped)         |
| 06    | success by UPI                                                      |
| other | success by card                                                     |

Details are derived from a seed (MID + transaction id), so a run is reproducible.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum, StrEnum

from agent.sim.paytm.clock import Instant


class Behaviour(Enum):
    DECLINED = "01"
    NEVER_PAYS = "02"
    REJECTED = "03"
    LATE_RECORD = "04"
    LOST_RESPONSE = "05"
    UPI = "06"
    CARD = "card"


def behaviour_for(amount_paise: str) -> Behaviour:
    tail = amount_paise[-2:].rjust(2, "0")
    for behaviour in Behaviour:
        if behaviour.value == tail:
            return behaviour
    return Behaviour.CARD


class Outcome(StrEnum):
    """How a sale ends; also the words `emulator.finish(txn, outcome)` accepts."""

    SUCCESS = "success"  # paid by card
    UPI = "upi"  # paid by UPI
    DECLINED = "declined"  # declined by the bank
    TIMEOUT = "timeout"  # the customer never paid; the terminal gave up
    REJECTED = "rejected"  # the cashier rejected the pop-up

    @property
    def paid(self) -> bool:
        return self in (Outcome.SUCCESS, Outcome.UPI)


def natural_outcome(behaviour: Behaviour) -> Outcome:
    return {
        Behaviour.DECLINED: Outcome.DECLINED,
        Behaviour.NEVER_PAYS: Outcome.TIMEOUT,
        Behaviour.REJECTED: Outcome.REJECTED,
        Behaviour.UPI: Outcome.UPI,
    }.get(behaviour, Outcome.SUCCESS)


def honour_payment_mode(outcome: Outcome, payment_mode: str) -> Outcome:
    """What the customer can do on a terminal that offers only `payment_mode` (reference
    §10.6: the mode pre-selects how the customer pays): QR → a UPI payment, CARD → a card."""
    if payment_mode == "QR" and outcome is Outcome.SUCCESS:
        return Outcome.UPI
    if payment_mode == "CARD" and outcome is Outcome.UPI:
        return Outcome.SUCCESS
    return outcome


FAILURE_REASONS: dict[Outcome, str] = {
    Outcome.DECLINED: "Transaction declined by bank",
    Outcome.TIMEOUT: "Transaction timed out on terminal",
    Outcome.REJECTED: "Transaction rejected on terminal",
}

BANK_APPROVED = "00"
BANK_DO_NOT_HONOUR = "05"  # ISO 8583 "do not honour": the usual issuer decline
UPI_BANK_CODE, UPI_BANK_MESSAGE = "0", "NA"  # as in the observed UPI example of §5.2
# No UPI decline is documented for EDC; NPCI's U30 ("debit has failed") is the usual one.
UPI_DECLINED_CODE, UPI_DECLINED_MESSAGE = "U30", "Debit failed"

ACQUIRING_BANK = "ICICI Bank"
_ISSUERS = (("HDFC Bank", "HDFC"), ("ICICI Bank", "ICICI"), ("State Bank of India", "SBI"),
            ("Axis Bank", "AXIS"), ("Kotak Mahindra Bank", "KOTAK"))
# scheme, PAN prefix (first 4 digits shown), EMV application id
_SCHEMES = (("VISA", "4111", "A0000000031010"), ("RUPAY", "6521", "A0000005241010"),
            ("MASTERCARD", "5412", "A0000000041010"))
_CARD_TYPES = ("CREDIT_CARD", "DEBIT_CARD")
ACQUIREMENT_ID_DIGITS = 35  # "35-ish digits", reference §5.2
RRN_DIGITS = 12
AUTH_CODE_DIGITS = 6


@dataclass(frozen=True, slots=True)
class PaymentDetails:
    """The §5.2 fields that describe how the customer paid (field names as Paytm's)."""

    payMethod: str  # field names are Paytm's, verbatim
    acquirementId: str
    retrievalReferenceNo: str
    authCode: str | None
    issuerMaskCardNo: str | None
    issuingBankName: str | None
    issuingBankId: str | None
    cardType: str | None
    cardScheme: str | None
    aid: str | None
    bankResponseCode: str
    bankResponseMessage: str
    bankTid: str | None


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def payment_details(outcome: Outcome, seed: str, tid: str, at: Instant,
                    by_qr: bool = False) -> PaymentDetails | None:
    """None when no payment instrument was presented (timeout, rejected pop-up). `by_qr`:
    the terminal offered only QR, so a decline is a UPI decline (no card fields)."""
    if outcome in (Outcome.TIMEOUT, Outcome.REJECTED):
        return None
    rng = random.Random(seed)  # reproducible per transaction, not a secret
    date = at.ist().strftime("%Y%m%d")
    acquirement_id = date + _digits(rng, ACQUIREMENT_ID_DIGITS - len(date))
    rrn = _digits(rng, RRN_DIGITS)
    if outcome is Outcome.UPI or (by_qr and outcome is Outcome.DECLINED):
        declined = outcome is Outcome.DECLINED
        return PaymentDetails(
            payMethod="UPI", acquirementId=acquirement_id, retrievalReferenceNo=rrn,
            authCode=None, issuerMaskCardNo=None, issuingBankName=None, issuingBankId=None,
            cardType=None, cardScheme=None, aid=None,
            bankResponseCode=UPI_DECLINED_CODE if declined else UPI_BANK_CODE,
            bankResponseMessage=UPI_DECLINED_MESSAGE if declined else UPI_BANK_MESSAGE,
            bankTid=None)
    scheme, prefix, aid = rng.choice(_SCHEMES)
    bank, bank_id = rng.choice(_ISSUERS)
    masked = prefix + "X" * 8 + _digits(rng, 4)
    declined = outcome is Outcome.DECLINED
    return PaymentDetails(
        payMethod="CARD", acquirementId=acquirement_id, retrievalReferenceNo=rrn,
        authCode=None if declined else _digits(rng, AUTH_CODE_DIGITS),
        issuerMaskCardNo=masked, issuingBankName=bank, issuingBankId=bank_id,
        cardType=rng.choice(_CARD_TYPES), cardScheme=scheme, aid=aid,
        bankResponseCode=BANK_DO_NOT_HONOUR if declined else BANK_APPROVED,
        bankResponseMessage="Do not honour" if declined else "Approved", bankTid=tid)
