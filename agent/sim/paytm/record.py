"""The record of every request the emulator received, so tests can say
"exactly one Sale for this id" or "the client polled status three times"."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

# Long demo and benchmark runs would otherwise grow the record without end; tests never
# come near this.
MAX_RECORDED = 100_000


@dataclass(slots=True)
class RecordedRequest:
    api: str  # "sale" | "status" | "void" (PG APIs will add theirs)
    path: str
    method: str
    raw: str  # the body as received (undecodable bytes replaced); "" if never read
    json: object | None  # parsed body, None when it was not JSON
    mid: str | None  # from the body, when readable as strings
    tid: str | None
    txn: str | None  # merchantTransactionId
    event: str | None  # Status Enquiry `event` ("VOID")
    at: float  # emulator clock (monotonic, includes advance())
    wall_time: float  # emulator wall clock, epoch seconds
    status: int | None = None  # HTTP status answered; None while open or when dropped
    result_code: str | None = None  # resultCodeId answered, when a Paytm answer was built
    fault: str | None = None  # the injected fault kind that applied, if any
    dropped: bool = False  # the connection was closed without an answer

    def to_json(self) -> dict[str, object]:
        return {
            "api": self.api, "path": self.path, "method": self.method, "raw": self.raw,
            "json": self.json, "mid": self.mid, "tid": self.tid, "txn": self.txn,
            "event": self.event, "at": self.at, "wall_time": self.wall_time,
            "status": self.status, "result_code": self.result_code, "fault": self.fault,
            "dropped": self.dropped,
        }


class Recorder:
    def __init__(self) -> None:
        self._requests: deque[RecordedRequest] = deque(maxlen=MAX_RECORDED)
        self._waiters: list[asyncio.Future[None]] = []

    def add(self, request: RecordedRequest) -> RecordedRequest:
        self._requests.append(request)
        self.touch()
        return request

    def touch(self) -> None:
        """A request was added or learned more (its body was read and processed)."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def recorded(self) -> None:
        """Return when a request is next recorded or updated: tests wait on this, not a sleep."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

    @property
    def requests(self) -> list[RecordedRequest]:
        return list(self._requests)

    def count(self, path_or_api: str, txn: str | None = None) -> int:
        """Requests to an API ("sale") or path ("/ecr/payment/request"), for one id or all."""
        return sum(1 for r in self._requests
                   if path_or_api in (r.api, r.path) and (txn is None or r.txn == txn))

    def clear(self) -> None:
        self._requests.clear()
