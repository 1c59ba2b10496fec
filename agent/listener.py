"""Listening sockets that cannot starve the money path (the page and the webhook).

A flood of half-open connections to the technician page once used every file descriptor
the service had (1,024): the next Sale failed toward Paytm with "Too many open files" and
asyncio logged a traceback per accept retry. Now:

- `fd_budget()` raises the soft `RLIMIT_NOFILE` to the hard one (the unit sets
  `LimitNOFILE=`) and keeps `FD_RESERVED` descriptors plus `FD_PER_LANE` per lane for
  lanes, the journal (database, WAL, shared memory, two readers) and Paytm's connection
  pool; the listeners share what is left, within fixed caps.
- `GuardedSite` (agent/site.py: it needs aiohttp's server, which the agent imports only
  once it is READY) serves an aiohttp runner through a protocol factory that counts open
  connections: beyond its cap a new connection is closed at once (one WARNING per
  interval, with how many were refused), so the page's fds never exceed the cap.
- The idle/header timeout is aiohttp's keep-alive timeout, armed from the moment a
  connection opens (a connection that never completes its request headers is closed
  after `HEADER_TIMEOUT_S`); the body timeout is the page's own (`BODY_TIMEOUT_S`).
- `quiet_accept_errors()`: asyncio's "socket.accept() out of system resource" is logged
  once per interval, never once per retry.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from dataclasses import dataclass
from typing import Any

from agent.logs import Throttle

log = logging.getLogger(__name__)

HEADER_TIMEOUT_S = 10.0  # a connection must complete its request headers within this
BODY_TIMEOUT_S = 10.0  # and its (≤ 16 KiB) body within this
FD_RESERVED = 96  # stdio, epoll, journal (db, WAL, shm, readers), logging, spare
FD_PER_LANE = 4  # a lane's device or listening socket, its connection, a takeover
PAYTM_FDS = 40  # aiohttp's pool toward Paytm (paytm.http.CONNECTION_LIMIT = 32) and DNS
WEB_CONNECTIONS_MAX = 64  # the page: a technician's browser opens a handful
WEBHOOK_CONNECTIONS_MAX = 32  # Paytm's callbacks arrive one at a time
LISTENER_CONNECTIONS_MIN = 4
LISTEN_BACKLOG = 64
REFUSED_LOG_S = 60.0


@dataclass(frozen=True, slots=True)
class ListenerTimeouts:
    """How long a connection may take over its request: the protocol defaults above. A
    test shortens them to watch a slow client being cut off without waiting 10 s."""

    header_s: float = HEADER_TIMEOUT_S
    body_s: float = BODY_TIMEOUT_S


@dataclass(frozen=True, slots=True)
class FdBudget:
    limit: int  # the soft RLIMIT_NOFILE after raising it
    reserved: int  # kept for lanes, the journal and Paytm
    web: int  # the page's connection cap
    webhook: int  # the webhook listener's connection cap


def fd_budget(lanes: int) -> FdBudget:
    """Raise the soft fd limit to the hard one and share it out (call once at start)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, target,
                        exc)
    reserved = FD_RESERVED + PAYTM_FDS + FD_PER_LANE * lanes
    spare = soft - reserved
    web_cap = max(LISTENER_CONNECTIONS_MIN, min(WEB_CONNECTIONS_MAX, spare * 2 // 3))
    hook_cap = max(LISTENER_CONNECTIONS_MIN, min(WEBHOOK_CONNECTIONS_MAX, spare // 3))
    if spare < web_cap + hook_cap:
        log.warning("open-file limit %d is tight for %d lane(s) (about %d needed): set "
                    "LimitNOFILE= higher in the unit", soft, lanes,
                    reserved + web_cap + hook_cap)
    return FdBudget(limit=soft, reserved=reserved, web=web_cap, webhook=hook_cap)


_ACCEPT_LOG = Throttle(REFUSED_LOG_S)


def quiet_accept_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Log asyncio's accept-retry complaints (out of file descriptors) once per
    interval instead of once per attempt; everything else as before."""
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", ""))
        if message.startswith("socket.accept() out of system resource"):
            if _ACCEPT_LOG.allow():
                more = _ACCEPT_LOG.take_suppressed()
                log.error("cannot accept a connection: %s%s", context.get("exception"),
                          f" ({more} more since the last line)" if more else "")
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
