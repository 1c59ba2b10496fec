"""A raw client for the emulator's tests: `RawPaytm` signs requests by hand with
`agent.paytm.checksum`, so the emulator's tests do not depend on the agent's own client.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp

from agent.paytm.checksum import ChecksumMode, MerchantKey, generate, generate_params
from agent.sim.paytm import DEMO_MID, DEMO_TIDS, Emulator, EmulatorSettings
from devtools.config import CLIENT_DEMO_KEY

TID = DEMO_TIDS[0]
TID2 = DEMO_TIDS[1]
STAMP = "2024-01-01 10:00:00"
PATHS = {"sale": "/ecr/payment/request", "status": "/ecr/V2/payment/status",
         "void": "/ecr/void"}


@dataclass
class Answer:
    status: int
    text: str
    content_type: str

    @property
    def json(self) -> dict[str, Any]:
        data = json.loads(self.text)
        assert isinstance(data, dict)
        return data

    @property
    def body(self) -> dict[str, Any]:
        body = self.json["body"]
        assert isinstance(body, dict)
        return body

    @property
    def info(self) -> dict[str, str]:
        info = self.body["resultInfo"]
        assert isinstance(info, dict)
        return info

    @property
    def code(self) -> str:
        return self.info["resultCodeId"]

    @property
    def msg(self) -> str:
        return self.info["resultMsg"]

    @property
    def detail(self) -> str:
        """The emulator's own note on a 0002 (not a Paytm field; resultMsg stays Paytm's)."""
        detail = self.body.get("emulatorDetail", "")
        assert isinstance(detail, str)
        return detail

    @property
    def letter(self) -> str:
        """The one-letter status, wherever the result style put it."""
        info = self.info
        return info["resultCode"] if len(info["resultCode"]) == 1 else info["resultStatus"]


class RawPaytm:
    """Builds, signs and posts EDC requests by hand."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str,
                 key: MerchantKey = CLIENT_DEMO_KEY, mode: ChecksumMode = ChecksumMode.PARAMS,
                 mid: str = DEMO_MID) -> None:
        self.session = session
        self.base_url = base_url
        self.key = key
        self.mode = mode
        self.mid = mid

    def sale_body(self, txn: str, amount: str = "100", tid: str = TID,
                  **extra: object) -> dict[str, object]:
        body: dict[str, object] = {"paytmMid": self.mid, "paytmTid": tid,
                                   "transactionDateTime": STAMP, "merchantTransactionId": txn,
                                   "transactionAmount": amount}
        body.update(extra)
        return body

    def status_body(self, txn: str, tid: str = TID, event: str | None = None,
                    **extra: object) -> dict[str, object]:
        body: dict[str, object] = {"paytmMid": self.mid, "paytmTid": tid,
                                   "transactionDateTime": STAMP, "merchantTransactionId": txn}
        if event is not None:
            body["event"] = event
        body.update(extra)
        return body

    def void_body(self, txn: str, tid: str = TID, **extra: object) -> dict[str, object]:
        return self.status_body(txn, tid, None, **extra)

    def signed(self, body: Mapping[str, object], head: Mapping[str, object] | None = None,
               sign: Mapping[str, object] | None = None) -> str:
        """The request text. `sign`: sign this body instead (to tamper after signing)."""
        signed_body = body if sign is None else sign
        body_text = json.dumps(body)
        if self.mode is ChecksumMode.PARAMS:
            fields = {k: v for k, v in signed_body.items() if isinstance(v, str)}
            checksum = generate_params(fields, self.key)
        else:
            checksum = generate(json.dumps(signed_body), self.key)
        full_head: dict[str, object] = {"requestTimeStamp": STAMP, "channelId": "EDC",
                                        "version": "3.1", "checksum": checksum}
        if head is not None:
            full_head.update(head)
            full_head = {k: v for k, v in full_head.items() if v is not None}
        # Built by hand so the body text is byte-identical to what json mode signed.
        return '{"head": ' + json.dumps(full_head) + ', "body": ' + body_text + "}"

    async def post_raw(self, api: str, data: bytes | str,
                       content_type: str = "application/json") -> Answer:
        raw = data.encode() if isinstance(data, str) else data
        async with self.session.post(self.base_url + PATHS.get(api, api), data=raw,
                                     headers={"Content-Type": content_type}) as response:
            return Answer(response.status, await response.text(errors="replace"),
                          response.content_type)

    async def post(self, api: str, body: Mapping[str, object],
                   head: Mapping[str, object] | None = None,
                   sign: Mapping[str, object] | None = None) -> Answer:
        return await self.post_raw(api, self.signed(body, head, sign))

    async def sale(self, txn: str, amount: str = "100", tid: str = TID,
                   **extra: object) -> Answer:
        return await self.post("sale", self.sale_body(txn, amount, tid, **extra))

    async def status(self, txn: str, tid: str = TID, event: str | None = None) -> Answer:
        return await self.post("status", self.status_body(txn, tid, event))

    async def void(self, txn: str, tid: str = TID) -> Answer:
        return await self.post("void", self.void_body(txn, tid))


@asynccontextmanager
async def running(settings: EmulatorSettings, key: MerchantKey = CLIENT_DEMO_KEY,
                  mid: str = DEMO_MID) -> AsyncIterator[tuple[Emulator, RawPaytm]]:
    """An emulator with these settings and a raw client signing in its checksum mode."""
    emu = Emulator(settings)
    async with emu.serve() as base_url, aiohttp.ClientSession() as session:
        yield emu, RawPaytm(session, base_url, key, ChecksumMode(settings.checksum_mode.value),
                            mid)
