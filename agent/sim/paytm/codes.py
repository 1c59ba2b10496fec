"""The emulator's own table of EDC answers, transcribed from Paytm's documents.

Deliberately not shared with the client (`agent.paytm.codes`): an oracle that borrows the
code it judges cannot catch its errors. Each row says which document it comes from.

Sale and Void (`resultCodeId`): Paytm's Sale page, table "Response Codes & Messages"
(seed 003_9f61149989f15b41.txt; reference §4.4). Its columns are the code, the word Paytm
puts in `resultStatus` and the `resultMsg`, copied here character for character —
including Paytm's own spelling ("greater that", "..!").

Status Enquiry: no official table (reference §5.3 lists what integrators report); the
words are those of §5.3 (S SUCCESS, F FAIL, P PENDING) and the texts those of the §5.2
example ("Success") and of §5.3's table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Answer:
    code: str  # resultCodeId
    letter: str  # A, S, P or F
    word: str  # the long form of the status
    message: str  # resultMsg


def _table(*rows: Answer) -> dict[str, Answer]:
    return {row.code: row for row in rows}


# Seed 003, "Response Codes & Messages" (Sale; the Void page answers with the same codes).
REQUEST_ANSWERS: dict[str, Answer] = _table(
    Answer("0009", "A", "ACCEPTED_SUCCESS", "ACCEPTED_SUCCESS"),
    Answer("0330", "F", "FAIL", "Invalid checksum"),
    Answer("1809", "F", "FAIL", "Subwallet amount greater that transaction amount"),
    Answer("1810", "F", "FAIL", "Length of DisplayInfo Param Greater than Max Length"),
    Answer("0007", "F", "FAIL", "Terminal is not in active state"),
    Answer("0333", "F", "FAIL", "Multiple payment request not allowed for same terminal..!"),
    Answer("0002", "F", "FAIL", "Request Parameters are not valid"),
    Answer("0012", "F", "FAIL", "SYSTEM_ERROR"),
    Answer("0022", "F", "FAIL", "BLOCKED_MERCHANT"),
    Answer("0029", "F", "FAIL", "NOT_FOUND"),
    Answer("0233", "F", "FAIL", "Duplicate Order Id..!"),
    Answer("9001", "F", "FAIL", "MERCHANT_CONFIGURATION_ERROR"),
    Answer("0902", "F", "FAIL", "MERCHANT_BLOCKED"),
    Answer("1825", "F", "FAIL", "if splitType is other than AT_TXN, POST_TXN"),
    Answer("1815", "F", "FAIL", "Timeout config cannot be passed with split params"),
    Answer("1813", "F", "FAIL", "Split params cannot be passed with POST_FACTO type"),
    Answer("1814", "F", "FAIL", "Timeout config cannot be passed on along with AT_TXN time"),
)

# Reference §5.2 (example) and §5.3 (codes reported by integrators; Unconfirmed).
STATUS_ANSWERS: dict[str, Answer] = _table(
    Answer("0000", "S", "SUCCESS", "Success"),
    Answer("0010", "P", "PENDING", "Please check status on EDC machine"),
    Answer("0011", "F", "FAIL", "Sale transaction failed"),
    Answer("0012", "F", "FAIL", "SYSTEM_ERROR"),
    Answer("0404", "F", "FAIL", "Merchant transaction id does not exist"),
    Answer("0090", "F", "FAIL", "ECR void failed"),
    Answer("0180", "F", "FAIL", "Void transaction not found"),
    Answer("0330", "F", "FAIL", "Invalid checksum"),
)

ANSWERS: dict[str, Answer] = {**REQUEST_ANSWERS, **STATUS_ANSWERS}
