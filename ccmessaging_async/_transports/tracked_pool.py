"""httpcore's pool over connections that know whether a request left, learning keep-alive.

This is the pool for ``http2=True``: HTTP/2 multiplexes many requests over few
connections, so httpcore's bookkeeping (linear in the connections) costs little there;
what it lacks is noticing that the peer closed an idle connection (sent GOAWAY, or closed
it) before opening a stream on it, which :class:`~.connection.TrackedConnection` adds. A
stream refused by a GOAWAY (above its ``last_stream_id``) is retried on another
connection by httpcore itself. :class:`~.pool.FlatConnectionPool` extends it for HTTP/1.1.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable

import httpcore

from .connection import TrackedConnection
from .keepalive import KeepAlive

__all__ = ["TrackedConnectionPool"]


class TrackedConnectionPool(httpcore.AsyncConnectionPool):
    """httpcore's pool creating :class:`TrackedConnection` objects, keep-alive learnt."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int | None = 10,
        max_keepalive_connections: int | None = None,
        keepalive_expiry: float | None = None,
        http2: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            ssl_context=ssl_context,
            max_connections=max_connections,
            max_keepalive_connections=max_keepalive_connections,
            keepalive_expiry=keepalive_expiry,
            http2=http2,
        )
        #: The keep-alive expiry in use, learnt from peers.
        self.keepalive = KeepAlive(keepalive_expiry)
        self._clock = clock

    def create_connection(self, origin: httpcore.Origin) -> TrackedConnection:
        """Open (lazily) a connection to ``origin`` (HTTP/2 when enabled and offered)."""
        return TrackedConnection(
            origin,
            ssl_context=self._ssl_context,
            keepalive_expiry=self._keepalive_expiry,
            on_dropped=self.keepalive.peer_closed_after,
            clock=self._clock,
            http2=self._http2,
            keepalive=self.keepalive,
        )
