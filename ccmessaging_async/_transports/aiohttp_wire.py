"""aiohttp connections that say, when a request fails, whether it ever left (extra ``aiohttp``).

The aiohttp counterpart of :mod:`.connection`. aiohttp writes a request with
``transport.write()``, and asyncio swallows a failed ``send()``: it only marks the
transport closing. Each connection's transport is watched, so an exchange knows afterwards
whether every byte of its request reached the socket, whether its connection was reused
and after how long idle, and whether any byte of answer came back. From that record,
:func:`typed_failure` types a failure as SPEC section 3 wants, and the connector learns a
middlebox's idle timeout (:class:`~.keepalive.KeepAlive`).

It relies on aiohttp internals present from 3.10 to 3.14 (pinned: the connector's
protocol factory, keep-alive timeout and ``_release``; ``ResponseHandler`` as the
connection's protocol), checked by what they are: at import (:data:`WIRE_SUPPORTED`) and
on each connector (:attr:`TrackedConnector.tracking`), never by reading aiohttp's source.
Without them the transport keeps aiohttp's own connections, declares that it does not
track writes, and reports every failure after connecting as outcome-unknown. A request
is bound to its connection's record by its first write, from the task sending it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, cast

import aiohttp
import httpx
from aiohttp.client_proto import ResponseHandler

from .connection import ConnectionDropped, RequestNotWritten
from .keepalive import KeepAlive
from .network import is_readable
from .record import ExchangeRecord, current_record

__all__ = ["WIRE_SUPPORTED", "TrackedConnector", "typed_failure"]

logger = logging.getLogger("ccmessaging_async")


def typed_failure(exc: BaseException, record: ExchangeRecord) -> httpx.TransportError:
    """Type an aiohttp failure after connecting as an httpx error, by what the record shows.

    Not written: a ``WriteError`` caused by :class:`RequestNotWritten` (not sent). Dropped
    after a reuse: a ``ReadError`` caused by :class:`ConnectionDropped`. Otherwise a
    ``ReadError`` (``ReadTimeout`` for a timeout) caused by ``exc`` (outcome unknown).
    """
    message = str(exc) or type(exc).__name__
    reason: BaseException = exc
    error: httpx.TransportError = (
        httpx.ReadTimeout(message) if isinstance(exc, TimeoutError) else httpx.ReadError(message)
    )
    if record.not_written:
        reason = RequestNotWritten(f"the request was not completely written ({message})")
        error = httpx.WriteError(message)
    elif (idle_for := record.dropped_after) is not None:
        reason = ConnectionDropped(
            f"the peer closed a connection idle for {idle_for:.3f}s after the "
            f"request was written, before any answer ({message})",
            idle_for=idle_for,
        )
    if reason is not exc:
        reason.__cause__ = exc
    error.__cause__ = reason
    return error


def _socket_failed(transport: asyncio.BaseTransport) -> bool:
    """Whether a write just made asyncio give up on the socket under ``transport``."""
    if transport.is_closing():
        return True
    # Over TLS the encrypted bytes go to a socket transport inside asyncio's SSL
    # protocol; only that one is marked closing at once. Unknown layouts (uvloop) answer
    # False, which only ever makes a failure outcome-unknown.
    raw = getattr(getattr(transport, "_ssl_protocol", None), "_transport", None)
    return isinstance(raw, asyncio.BaseTransport) and raw.is_closing()


class _WriteWatch:
    """An asyncio transport that tells its connection whether each write reached the socket."""

    def __init__(self, transport: asyncio.Transport, on_write: Callable[[int, bool], None]) -> None:
        self._transport = transport
        self._on_write = on_write

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._transport.write(data)
        self._on_write(len(data), _socket_failed(self._transport))

    def writelines(self, chunks: Iterable[bytes | bytearray | memoryview]) -> None:
        chunks = list(chunks)
        self._transport.writelines(chunks)
        self._on_write(sum(len(c) for c in chunks), _socket_failed(self._transport))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class TrackedHandler(ResponseHandler):
    """aiohttp's protocol for one connection, recording each request's fate."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        on_dropped: Callable[[float], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(loop)
        self._on_dropped = on_dropped
        self._clock = clock
        self._record: ExchangeRecord | None = None
        self._requests = 0
        #: When the connector last put it back in the pool; ``None`` while in use.
        self.idle_since: float | None = None

    def went_idle(self) -> None:
        """Note that the connector put it back in the pool."""
        self.idle_since = self._clock()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Watch the transport's writes."""
        watched = _WriteWatch(cast("asyncio.Transport", transport), self._wrote)
        super().connection_made(cast("asyncio.Transport", watched))

    def _bind(self, record: ExchangeRecord) -> None:
        """Start recording the request whose first bytes are being written."""
        idle_since, self.idle_since = self.idle_since, None
        record.started = True
        if self._requests and idle_since is not None:
            record.idle_for = self._clock() - idle_since
        self._record = record
        self._requests += 1

    def is_connected(self) -> bool:
        """Say whether it is connected and, while idle in the pool, not closed by the peer.

        aiohttp learns of a peer's close only when the event loop reads it: a connection
        taken from the pool earlier in that loop iteration would get a request written
        into a socket the peer already closed.
        """
        if not super().is_connected():
            return False
        idle_since = self.idle_since
        if idle_since is None or self.transport is None:
            return True
        if not is_readable(self.transport.get_extra_info("socket")):
            return True
        self._on_dropped(self._clock() - idle_since)
        return False

    def data_received(self, data: bytes) -> None:
        """Count answer bytes."""
        if self._record is not None:
            self._record.bytes_read += len(data)
        super().data_received(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        """Learn from a reused connection the peer closed before answering."""
        record, self._record = self._record, None
        # aiohttp clears ``transport`` when it closes the connection itself (a timeout).
        by_peer = self.transport is not None
        if by_peer and self.idle_since is not None:
            self._on_dropped(self._clock() - self.idle_since)  # closed while idle
        elif by_peer and record is not None:
            record.peer_closed = True
            if (idle_for := record.dropped_after) is not None:
                self._on_dropped(idle_for)
        super().connection_lost(exc)

    def _wrote(self, size: int, failed: bool) -> None:
        # A write runs in the task sending the request (or a task it started, which
        # shares its context): the record open there is that request's.
        record = current_record()
        if record is None:
            return
        if record is not self._record:
            self._bind(record)
        if failed:
            record.write_failed = True
        else:
            record.handed += size


class TrackedConnector(aiohttp.TCPConnector):
    """aiohttp's connector over :class:`TrackedHandler` connections, with a learnt keep-alive."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # aiohttp's connector keeps its protocol factory and keep-alive expiry in private
        # attributes (3.10-3.14). Checked on the instance, by what they are: where they
        # differ, aiohttp's own connections are kept and nothing is tracked.
        factory = getattr(self, "_factory", None)
        expiry = getattr(self, "_keepalive_timeout", None)
        #: Its connections record each request's fate (else they are aiohttp's own).
        self.tracking = (
            isinstance(factory, functools.partial)
            and factory.func is ResponseHandler
            and callable(getattr(super(), "_release", None))
        )
        #: The keep-alive expiry in use: the configured one, or one learnt lower.
        self.keepalive = KeepAlive(expiry if isinstance(expiry, int | float) else None)
        if self.tracking:
            # aiohttp types the factory as making its own handler; a subclass is one.
            self._factory = functools.partial(  # type: ignore[assignment]
                TrackedHandler, loop=self._loop, on_dropped=self._peer_closed_after
            )
        else:
            logger.debug("aiohttp %s: connections not tracked", aiohttp.__version__)

    def _release(self, key: Any, protocol: ResponseHandler, *args: Any, **kwargs: Any) -> None:
        """Note when a connection went back to the pool."""
        if isinstance(protocol, TrackedHandler):
            protocol.went_idle()
        super()._release(key, protocol, *args, **kwargs)

    def _peer_closed_after(self, idle_for: float) -> None:
        self.keepalive.peer_closed_after(idle_for)
        if self.keepalive.expiry is not None:
            self._keepalive_timeout = self.keepalive.expiry


def _wire_supported() -> bool:
    """Whether this aiohttp has what the tracked connector builds on.

    Checked again on each connector instance (:attr:`TrackedConnector.tracking`).
    """
    return callable(getattr(aiohttp.TCPConnector, "_release", None)) and all(
        callable(getattr(ResponseHandler, name, None))
        for name in ("connection_made", "data_received", "connection_lost", "is_connected")
    )


#: Whether the installed aiohttp can be tracked (else its own connector is used).
WIRE_SUPPORTED = _wire_supported()
