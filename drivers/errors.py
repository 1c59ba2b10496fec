"""The drivers' exceptions.

`drivers` is the bottom of the house and imports nothing of the agent, so its errors
have their own root here, `TransportError`. The link layer turns them into its own
states; the few catch-alls above it name both roots (`AgentError`, `TransportError`).
"""

from __future__ import annotations


class TransportError(Exception):
    """A byte pipe (serial, USB, TCP) failed."""


class DeviceNotFoundError(TransportError):
    """The device named by a link URL is not present (unplugged, wrong path or id)."""


class DevicePermissionError(TransportError):
    """The device exists but the agent's user may not open it."""


class TransportDownError(TransportError):
    """A write was attempted while the pipe is down (device gone, peer not connected)."""


class TransportClosedError(TransportError):
    """The pipe was closed on purpose; no more reads or writes."""

