"""How long an idle connection may wait to be reused, learnt from peers that close sooner.

Middleboxes (load balancers, nginx ``keepalive_timeout``, haproxy) close idle connections
after their own timeout, often shorter than the client's. A request written on such a
connection just as it is closed is lost with an unknown outcome. Each time a peer is seen
to close a connection that had been idle for ``t`` seconds, idle connections are from then
on reused only within ``SAFE_FRACTION * t`` (never under ``MIN_EXPIRY``).
"""

from __future__ import annotations

import logging

__all__ = ["MIN_EXPIRY", "SAFE_FRACTION", "KeepAlive"]

_log = logging.getLogger("ccmessaging_async.connections")

#: The share of the shortest idle time at which a peer closed a connection still used.
SAFE_FRACTION = 0.5
#: Never lower the expiry below this (seconds): a busier pool than this gains nothing.
MIN_EXPIRY = 0.1


class KeepAlive:
    """The current keep-alive expiry of one pool: the configured one, or a learnt lower one."""

    __slots__ = ("_warned", "configured", "expiry")

    def __init__(self, expiry: float | None) -> None:
        #: What the session was configured with (``None``: idle connections never expire).
        self.configured = expiry
        #: What the pool uses now.
        self.expiry = expiry
        self._warned = False

    def expired(self, idle_for: float) -> bool:
        """Whether a connection idle for ``idle_for`` seconds must not be reused."""
        return self.expiry is not None and idle_for > self.expiry

    def peer_closed_after(self, idle_for: float) -> None:
        """Learn from a peer that closed a connection idle for ``idle_for`` seconds.

        A close after the expiry in use teaches nothing: such a connection is never reused.
        """
        if self.expiry is not None and idle_for >= self.expiry:
            return
        safe = max(MIN_EXPIRY, idle_for * SAFE_FRACTION)
        if self.expiry is not None and safe >= self.expiry:
            return
        self.expiry = safe
        if self._warned:
            _log.debug("keep-alive expiry lowered to %.3fs", safe)
            return
        self._warned = True
        _log.warning(
            "a peer closed a connection that had been idle for %.3fs (a load balancer or "
            "proxy with a short idle timeout?); idle connections are now reused for at "
            "most %.3fs. Set httpx.Limits(keepalive_expiry=%.3g) to start there.",
            idle_for,
            safe,
            safe,
        )
