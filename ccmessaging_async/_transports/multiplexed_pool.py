"""The pool for ``http2=True``: httpcore's own, over connections that check before reuse.

HTTP/2 multiplexes many requests over few connections, so httpcore's bookkeeping (linear
in the connections) costs little there; what it lacks is noticing that the peer closed an
idle connection (sent GOAWAY, or closed it) before opening a stream on it.
:class:`~.connection.TrackedConnection` adds that check, and the keep-alive expiry is
learnt as for HTTP/1.1 (:class:`~.keepalive.KeepAlive`). A stream refused by a GOAWAY
(above its ``last_stream_id``) is retried on another connection by httpcore itself.
"""

from __future__ import annotations

import ssl

import httpcore

from .connection import TrackedConnection
from .keepalive import KeepAlive

__all__ = ["MultiplexedConnectionPool"]


class MultiplexedConnectionPool(httpcore.AsyncConnectionPool):
    """httpcore's pool (HTTP/1.1 and HTTP/2) creating :class:`TrackedConnection` objects."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int | None = 10,
        max_keepalive_connections: int | None = None,
        keepalive_expiry: float | None = None,
    ) -> None:
        super().__init__(
            ssl_context=ssl_context,
            max_connections=max_connections,
            max_keepalive_connections=max_keepalive_connections,
            keepalive_expiry=keepalive_expiry,
            http2=True,
        )
        #: The keep-alive expiry in use, learnt from peers.
        self.keepalive = KeepAlive(keepalive_expiry)

    def create_connection(self, origin: httpcore.Origin) -> TrackedConnection:
        """Open (lazily) a connection to ``origin``, HTTP/2 when the server offers it."""
        return TrackedConnection(
            origin,
            ssl_context=self._ssl_context,
            keepalive_expiry=self._keepalive_expiry,
            on_dropped=self.keepalive.peer_closed_after,
            http2=True,
            keepalive=self.keepalive,
        )
