"""One pooled connection that says, when a request fails, whether it ever left.

It is httpcore's connection over a :class:`~.network.TrackedBackend`. When a request fails
before any answer, it re-raises httpcore's error as one of two subclasses that httpx maps
as usual (so every caller still sees an ``httpx.TransportError``), with the facts in the
cause chain:

- :class:`RequestNotWritten` (an ``httpcore.WriteError``, HTTP/1.1 only): not every byte of
  the request reached the kernel, so the platform never had a complete request (SPEC
  section 3);
- :class:`ConnectionDropped` (an ``httpcore.ReadError``): the request was written on a
  reused connection and the peer closed it before one byte of answer — typically a
  middlebox that closes idle connections. Still outcome-unknown, with ``idle_for``.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable

import httpcore

from .keepalive import KeepAlive
from .network import TrackedBackend
from .record import current_record

__all__ = ["ConnectionDropped", "RequestNotWritten", "TrackedConnection"]


class RequestNotWritten(httpcore.WriteError):
    """The request's last byte never reached the socket: the platform cannot have it."""


class ConnectionDropped(httpcore.ReadError):
    """A reused connection closed after the request was written and before any answer."""

    def __init__(self, message: str, *, idle_for: float) -> None:
        super().__init__(message)
        #: How long the connection had been idle before this request was written on it.
        self.idle_for = idle_for


_UNANSWERED = (httpcore.ReadError, httpcore.RemoteProtocolError, httpcore.WriteError)


class TrackedConnection(httpcore.AsyncHTTPConnection):
    """httpcore's connection, typing a failure by whether the request left.

    ``on_dropped`` is told how long a reused connection had been idle when its peer
    dropped it (the pool learns the middlebox's idle timeout from it).
    """

    def __init__(
        self,
        origin: httpcore.Origin,
        *,
        ssl_context: ssl.SSLContext | None,
        keepalive_expiry: float | None,
        on_dropped: Callable[[float], None],
        clock: Callable[[], float] = time.monotonic,
        http2: bool = False,
        keepalive: KeepAlive | None = None,
    ) -> None:
        self._wire = TrackedBackend()
        super().__init__(
            origin,
            ssl_context=ssl_context,
            keepalive_expiry=keepalive_expiry,
            http2=http2,
            network_backend=self._wire,
        )
        # HTTP/2 writes carry frames of several requests, and a write can fail after this
        # request's last frame went out in an earlier one: a failed write proves nothing.
        # HTTP/2 requests share the connection, so it counts its open streams itself to
        # know when it is idle (an HTTP/1.1 pool sets ``idle_since`` on release).
        self._multiplexed = http2
        self._streams = 0
        self._keepalive = keepalive
        #: Where it connects (httpcore keeps it private).
        self.origin = origin
        self._on_dropped = on_dropped
        self._clock = clock
        #: When the connection last became idle (set by the pool), ``None`` while unused.
        self.idle_since: float | None = None

    def peer_closed(self) -> bool:
        """Whether the server closed this (idle) connection: its socket reads at once."""
        stream = self._wire.stream
        return stream is not None and bool(stream.get_extra_info("is_readable"))

    def has_expired(self) -> bool:
        """Past its keep-alive expiry (the learnt one too), or closed by the peer while idle.

        httpcore checks readability only for HTTP/1.1; an HTTP/2 connection the peer
        dropped while idle (GOAWAY, then close) would otherwise get the next request.
        """
        if super().has_expired():
            return True
        idle_for = self._idle_for()
        if idle_for is None or not self.is_idle():
            return False
        if self.peer_closed():
            self._on_dropped(idle_for)
            return True
        return self._keepalive is not None and self._keepalive.expired(idle_for)

    def _idle_for(self) -> float | None:
        """Seconds idle, or ``None`` when in use or never used."""
        if self.idle_since is None or self._streams:
            return None
        return self._clock() - self.idle_since

    def _stream_closed(self) -> None:
        self._streams -= 1
        if not self._streams:
            self.idle_since = self._clock()

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        """Send ``request``; a failure before any answer says whether the request left."""
        record = self._wire.record
        read_before = 0 if record is None else record.bytes_read
        idle_for = self._idle_for()
        if (exchange := current_record()) is not None:
            exchange.started = True
            exchange.multiplexed = self._multiplexed
        if self._multiplexed:
            self._streams += 1
        try:
            response = await super().handle_async_request(request)
        except BaseException as exc:
            if self._multiplexed:
                self._stream_closed()
            if isinstance(exc, _UNANSWERED):
                self._raise_typed(exc, read_before, idle_for)
            raise
        stream = response.stream
        if not (self._multiplexed and isinstance(stream, AsyncIterable)):
            return response
        return httpcore.Response(
            status=response.status,
            headers=response.headers,
            content=_StreamEnd(stream, self._stream_closed),
            extensions=response.extensions,
        )

    def _raise_typed(self, exc: Exception, read_before: int, idle_for: float | None) -> None:
        """Raise ``exc`` as what it means: not written, or dropped after a reuse."""
        record = self._wire.record
        if record is not None:
            if record.write_failed and not self._multiplexed:
                raise RequestNotWritten(f"the request was not completely written ({exc})") from exc
            if idle_for is not None and record.bytes_read == read_before:
                self._on_dropped(idle_for)
                raise ConnectionDropped(
                    f"the peer closed a connection idle for {idle_for:.3f}s after the request "
                    f"was written, before any answer ({exc})",
                    idle_for=idle_for,
                ) from exc


class _StreamEnd:
    """A response body that reports when it is closed (an HTTP/2 stream's end)."""

    def __init__(self, stream: AsyncIterable[bytes], on_close: Callable[[], None]) -> None:
        self._stream = stream
        self._on_close: Callable[[], None] | None = on_close

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._stream.__aiter__()

    async def aclose(self) -> None:
        try:
            close = getattr(self._stream, "aclose", None)
            if close is not None:
                await close()
        finally:
            if self._on_close is not None:
                self._on_close()
                self._on_close = None
