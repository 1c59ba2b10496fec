"""Bad days on demand: the next N matching calls are delayed, fail or lose their answer.

Every kind except `drop_before_read` lets the request reach the simulated Paytm first
(a Sale is registered) and only then spoils the answer: that is the case a client must
never mistake for "not sent". `drop_before_read` is the one where nothing happened.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

MAX_FAULT_DELAY_S = 600.0  # longer than any client timeout worth testing
ANY_API = "any"


class FaultKind(StrEnum):
    DELAY = "delay"  # answer normally, after delay_s
    HTTP_500 = "http_500"  # HTTP 500 with a short text body
    HTML = "html"  # HTTP 200 with an HTML error page (a proxy or WAF answering)
    MALFORMED_JSON = "malformed_json"  # HTTP 200, application/json, truncated JSON
    DROP_BEFORE_READ = "drop_before_read"  # close before reading: nothing registered
    DROP_AFTER_READ = "drop_after_read"  # process (sale registered), close without answering
    LOSE_RESPONSE = "lose_response"  # same as drop_after_read

    @property
    def processes_request(self) -> bool:
        return self is not FaultKind.DROP_BEFORE_READ

    @property
    def drops_answer(self) -> bool:
        return self in (FaultKind.DROP_BEFORE_READ, FaultKind.DROP_AFTER_READ,
                        FaultKind.LOSE_RESPONSE)


class FaultError(ValueError):
    """A fault description that makes no sense."""


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind | str
    api: str = ANY_API  # "sale" | "status" | "void" | "any"
    count: int = 1
    delay_s: float = 0.0  # waited before the fault acts (for `delay`, before the answer)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", FaultKind(self.kind))
        except ValueError:
            kinds = ", ".join(k.value for k in FaultKind)
            raise FaultError(f"kind must be one of {kinds}, got {self.kind!r}") from None
        if not isinstance(self.api, str) or not self.api:
            raise FaultError("api must be a non-empty string")
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise FaultError(f"count must be a whole number ≥ 1, got {self.count!r}")
        delay = self.delay_s
        if isinstance(delay, bool) or not isinstance(delay, int | float) \
                or not math.isfinite(delay) or not 0 <= delay <= MAX_FAULT_DELAY_S:
            raise FaultError(f"delay_s must be 0..{MAX_FAULT_DELAY_S:g} seconds, got {delay!r}")

    @property
    def fault_kind(self) -> FaultKind:
        return FaultKind(self.kind)

    @classmethod
    def from_json(cls, data: object, known_apis: frozenset[str]) -> Fault:
        if not isinstance(data, Mapping):
            raise FaultError("a fault is a JSON object")
        unknown = set(data) - {"api", "kind", "count", "delay_s"}
        if unknown:
            raise FaultError(f"unknown fault keys: {', '.join(sorted(map(str, unknown)))}")
        api = data.get("api", ANY_API)
        if api != ANY_API and api not in known_apis:
            raise FaultError(f"api must be one of {', '.join(sorted(known_apis))} or any, "
                             f"got {api!r}")
        kind = data.get("kind")
        if not isinstance(kind, str):
            raise FaultError("kind is required")
        count = data.get("count", 1)
        delay = data.get("delay_s", 0.0)
        if not isinstance(count, int) or not isinstance(delay, int | float):
            raise FaultError("count and delay_s must be numbers")
        return cls(kind=kind, api=str(api), count=count, delay_s=float(delay))

    def to_json(self) -> dict[str, object]:
        return {"api": self.api, "kind": self.fault_kind.value, "count": self.count,
                "delay_s": self.delay_s}


class FaultQueue:
    """Faults in the order they were injected; each call takes from the first that matches."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        self._faults.append(fault)

    def take(self, api: str) -> Fault | None:
        for i, fault in enumerate(self._faults):
            if fault.api in (api, ANY_API):
                if fault.count <= 1:
                    del self._faults[i]
                else:
                    self._faults[i] = Fault(kind=fault.kind, api=fault.api,
                                            count=fault.count - 1, delay_s=fault.delay_s)
                return fault
        return None

    def pending(self) -> list[Fault]:
        return list(self._faults)

    def clear(self) -> None:
        self._faults.clear()
