"""An httpcore connection pool whose cost per request does not grow with its connections.

httpcore's pool re-examines every connection (and polls every idle socket) each time a
request is queued or finished, and counts idle connections with a list over all of them
for each one: quadratic in the connections, so a batch with hundreds of calls in flight
spends its CPU on bookkeeping. :class:`FlatConnectionPool` keeps the same semantics with
incremental state: idle connections per origin (most recently used first, since the
oldest is the likeliest to have been closed by a middlebox), a FIFO of waiting requests,
and the connection about to be reused — only that one — checked for expiry and for having
been closed by the server.

It stays an ``httpcore.AsyncConnectionPool`` and keeps its ``handle_async_request``, so
``respx.mock()`` (which patches that method), ``respx.mock(using="httpx")`` and
pytest-httpx (which patch httpx's transport) intercept it as before. It replaces the
private bookkeeping method and request list of httpcore 1.0.x, checked by
:data:`FLAT_POOL_SUPPORTED`; HTTP/1.1 only (with ``http2=True`` the session keeps httpcore's
pool, which multiplexes requests over few connections).
"""

from __future__ import annotations

import ssl
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Self

import httpcore
from httpcore._async.connection_pool import AsyncPoolRequest

from .connection import TrackedConnection
from .tracked_pool import TrackedConnectionPool

__all__ = ["FLAT_POOL_SUPPORTED", "FlatConnectionPool"]


def _internals_as_pinned() -> bool:
    """Whether httpcore's pool still has the private parts this pool replaces or calls.

    Checked by what exists, never by reading httpcore's source (which a bytecode-only
    install does not have); how httpcore's ``handle_async_request`` uses them is checked
    by the suite's pool tests, on the lowest and the highest httpcore the pins allow.
    """
    pool = httpcore.AsyncConnectionPool
    assign = getattr(pool, "_assign_requests_to_connections", None)
    close = getattr(pool, "_close_connections", None)
    if not (callable(assign) and callable(close)):
        return False
    request_api = ("assign_to_connection", "clear_connection", "is_queued", "wait_for_connection")
    return all(callable(getattr(AsyncPoolRequest, name, None)) for name in request_api)


#: httpcore's internals look as in the pinned 1.0.x releases (else httpcore's pool is used).
FLAT_POOL_SUPPORTED = _internals_as_pinned()


_OriginKey = tuple[bytes, bytes, int]


def _key(origin: httpcore.Origin) -> _OriginKey:
    # httpcore's Origin compares by value but is not hashable.
    return (origin.scheme, origin.host, origin.port)


class _Requests:
    """The pool's requests: the live ones, those waiting (FIFO), and a hook on each end.

    It stands in for httpcore's request list, which httpcore only appends to and removes
    from (and iterates for ``repr``).
    """

    def __init__(
        self, on_released: Callable[[httpcore.AsyncConnectionInterface | None], None]
    ) -> None:
        self._live: dict[AsyncPoolRequest, None] = {}
        self.waiting: deque[AsyncPoolRequest] = deque()
        self._on_released = on_released

    def append(self, pool_request: AsyncPoolRequest) -> None:
        self._live[pool_request] = None
        self.waiting.append(pool_request)
        # httpcore hands a request back to the queue with clear_connection() when its
        # connection turned out unavailable; it must then wait again, and the connection
        # be looked at (it may be closed).
        original = pool_request.clear_connection

        def clear_connection() -> None:
            self._on_released(pool_request.connection)
            original()
            self.waiting.appendleft(pool_request)

        pool_request.clear_connection = clear_connection  # type: ignore[method-assign]

    def remove(self, pool_request: AsyncPoolRequest) -> None:
        del self._live[pool_request]
        self._on_released(pool_request.connection)

    def is_live(self, pool_request: AsyncPoolRequest) -> bool:
        return pool_request in self._live

    def __iter__(self) -> Iterator[AsyncPoolRequest]:
        return iter(list(self._live))

    def __len__(self) -> int:
        return len(self._live)


class FlatConnectionPool(TrackedConnectionPool):
    """httpcore's HTTP/1.1 pool with bookkeeping of constant cost per request.

    Same limits and behaviour: ``max_connections``, ``max_keepalive_connections``,
    ``keepalive_expiry`` (lowered by :class:`~.keepalive.KeepAlive` when a peer closes
    idle connections sooner), the pool timeout and cancellation while waiting; a
    connection the server closed while idle is never used.
    """

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
        if http2:
            raise ValueError("the flat pool is HTTP/1.1 only; use TrackedConnectionPool")
        super().__init__(
            ssl_context=ssl_context,
            max_connections=max_connections,
            max_keepalive_connections=max_keepalive_connections,
            keepalive_expiry=keepalive_expiry,
            clock=clock,
        )
        self._queue = _Requests(self._released_connection)
        self._requests = self._queue  # type: ignore[assignment]
        self._idle: dict[_OriginKey, deque[TrackedConnection]] = {}
        self._idle_count = 0
        self._released: list[TrackedConnection] = []
        # httpcore's list of connections stays (its `connections` and repr read it); the
        # set answers "still pooled?" on every release without a scan.
        self._pooled: set[TrackedConnection] = set()

    def _released_connection(self, connection: httpcore.AsyncConnectionInterface | None) -> None:
        if isinstance(connection, TrackedConnection):
            self._released.append(connection)

    def _assign_requests_to_connections(self) -> list[httpcore.AsyncConnectionInterface]:
        closing: list[httpcore.AsyncConnectionInterface] = []
        now = self._clock()
        for released in self._released:
            self._settle(released, now, closing)
        self._released.clear()
        self._expire_idle(now, closing)
        waiting = self._queue.waiting
        while waiting:
            pool_request = waiting[0]
            if not self._queue.is_live(pool_request) or not pool_request.is_queued():
                waiting.popleft()
                continue
            origin = pool_request.request.url.origin
            connection = self._reusable(origin, now, closing) or self._new(origin, closing)
            if connection is None:
                break
            waiting.popleft()
            pool_request.assign_to_connection(connection)
        return closing

    def _settle(
        self,
        connection: TrackedConnection,
        now: float,
        closing: list[httpcore.AsyncConnectionInterface],
    ) -> None:
        """Keep a connection whose request ended as idle, or let it go."""
        if connection not in self._pooled:
            return
        if connection.is_closed():
            self._forget(connection, None)
        elif not connection.is_idle():
            # Assigned to a request that was cancelled before using it: never connected.
            self._forget(connection, closing)
        elif self._idle_count >= self._max_keepalive_connections:
            self._forget(connection, closing)
        else:
            connection.idle_since = now
            self._idle.setdefault(_key(connection.origin), deque()).append(connection)
            self._idle_count += 1

    def _expire_idle(self, now: float, closing: list[httpcore.AsyncConnectionInterface]) -> None:
        """Close idle connections past the expiry, oldest first, wherever they wait."""
        for stack in self._idle.values():
            while stack and self.keepalive.expired(now - (stack[0].idle_since or now)):
                self._drop(stack.popleft(), closing)

    def _reusable(
        self, origin: httpcore.Origin, now: float, closing: list[httpcore.AsyncConnectionInterface]
    ) -> TrackedConnection | None:
        """Take the most recently used idle connection to ``origin`` the server kept open."""
        stack = self._idle.get(_key(origin))
        while stack:
            connection = stack.pop()
            self._idle_count -= 1
            if connection.peer_closed():
                # Readable while idle: the server closed it (or sent what only precedes a
                # close). Closed after ``idle_for`` seconds means its idle timeout is shorter.
                self.keepalive.peer_closed_after(now - (connection.idle_since or now))
                self._forget(connection, closing)
                continue
            return connection
        return None

    def _new(
        self, origin: httpcore.Origin, closing: list[httpcore.AsyncConnectionInterface]
    ) -> TrackedConnection | None:
        """Create a connection if the limit allows, closing the oldest idle one if needed."""
        if len(self._connections) >= self._max_connections:
            oldest = next((stack for stack in self._idle.values() if stack), None)
            if oldest is None:
                return None
            self._drop(oldest.popleft(), closing)
        connection = self.create_connection(origin)
        self._connections.append(connection)
        self._pooled.add(connection)
        return connection

    def _drop(
        self, connection: TrackedConnection, closing: list[httpcore.AsyncConnectionInterface]
    ) -> None:
        """Let an idle connection go."""
        self._idle_count -= 1
        self._forget(connection, closing)

    def _forget(
        self,
        connection: TrackedConnection,
        closing: list[httpcore.AsyncConnectionInterface] | None,
    ) -> None:
        """Take a connection out of the pool, to be closed unless it already is."""
        self._pooled.discard(connection)
        self._connections.remove(connection)
        if closing is not None:
            closing.append(connection)

    async def __aenter__(self) -> Self:
        """Return the pool (closed on exit)."""
        return self

    async def aclose(self) -> None:
        """Close every connection."""
        self._idle.clear()
        self._idle_count = 0
        self._released.clear()
        self._pooled.clear()
        await super().aclose()
