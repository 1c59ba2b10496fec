"""The agent's exception hierarchy: one root, precise subclasses.

Every error the agent raises on purpose derives from `AgentError`, so a caller
that must never crash (a lane, a request handler) can catch that one type and
still tell causes apart. Exceptions carry what caused them (the field, the
frame, the response) so logs and error replies can name it.
"""

from __future__ import annotations


class AgentError(Exception):
    """Root of every error raised on purpose by edc-agent."""


class ConfigError(AgentError):
    """The configuration is invalid; `problems` lists every problem found, each naming its key."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems) if self.problems else "invalid configuration")


class SecretError(ConfigError):
    """A secret (merchant key, credential) is missing, malformed or readable by others."""

    def __init__(self, message: str) -> None:
        super().__init__([message])


class FieldError(AgentError):
    """A request field is missing, of the wrong type or out of range.

    Raised before any byte leaves for Paytm; `field` names the offending field
    as the caller knows it (e.g. ``transactionAmount`` or ``amount``).
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class LinkError(AgentError):
    """The register link layer failed."""


class UndeliveredError(LinkError):
    """A frame was sent four times without an ACK (protocol S3)."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        super().__init__(f"frame not acknowledged after 4 sends ({len(payload)} byte payload)")

