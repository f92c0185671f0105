"""Sockets for httpcore that know whether every byte of a request reached the kernel.

SPEC section 3: a request whose bytes were not all handed to the socket was never complete
at the gateway, so it may be sent again. httpcore cannot say so: HTTP/1.1 swallows a failed
write and reports the read that follows, and on asyncio a failed ``send()`` inside the
event loop's transport surfaces only on the next operation. :class:`TrackedBackend` opens
anyio streams like httpcore's own backend does, and its streams keep a :class:`WireRecord`:
whether a write failed (raised, timed out, was cancelled, or was dropped by the transport)
and how many bytes were read.
"""

# httpcore's stream and backend interface takes a ``timeout`` argument (ASYNC109), and
# anyio's typed ``extra()`` is not Django's (S610).
# ruff: noqa: ASYNC109, S610

from __future__ import annotations

import select
import socket
import ssl
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import anyio.abc
import anyio.streams.tls
import httpcore

from .record import ExchangeRecord, current_record

__all__ = ["TrackedBackend", "TrackedStream", "WireRecord", "is_readable"]

_SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


class WireRecord:
    """What happened on one connection's socket: a failed write, and the bytes read."""

    __slots__ = ("bytes_read", "write_failed")

    def __init__(self) -> None:
        #: A write of this connection did not hand all its bytes to the kernel.
        self.write_failed = False
        #: Bytes received so far (TLS: decrypted bytes).
        self.bytes_read = 0


@contextmanager
def _mapped(errors: dict[type[BaseException], type[Exception]]) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for source, target in errors.items():
            if isinstance(exc, source):
                raise target(str(exc) or type(exc).__name__) from exc
        raise


_READ_ERRORS: dict[type[BaseException], type[Exception]] = {
    TimeoutError: httpcore.ReadTimeout,
    anyio.BrokenResourceError: httpcore.ReadError,
    anyio.ClosedResourceError: httpcore.ReadError,
    OSError: httpcore.ReadError,
}
_WRITE_ERRORS: dict[type[BaseException], type[Exception]] = {
    TimeoutError: httpcore.WriteTimeout,
    anyio.BrokenResourceError: httpcore.WriteError,
    anyio.ClosedResourceError: httpcore.WriteError,
    OSError: httpcore.WriteError,
}
_CONNECT_ERRORS: dict[type[BaseException], type[Exception]] = {
    TimeoutError: httpcore.ConnectTimeout,
    anyio.BrokenResourceError: httpcore.ConnectError,
    anyio.EndOfStream: httpcore.ConnectError,
    ssl.SSLError: httpcore.ConnectError,
    OSError: httpcore.ConnectError,
}


def is_readable(sock: socket.socket | None) -> bool:
    """Whether a read would return at once: for an idle connection, the peer closed it."""
    fd = -1 if sock is None else sock.fileno()
    if fd < 0:
        return True
    if sys.platform == "win32" or not hasattr(select, "poll"):  # pragma: no cover - POSIX CI
        readable, _, _ = select.select([fd], [], [], 0)
        return bool(readable)
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class TrackedStream(httpcore.AsyncNetworkStream):
    """An httpcore network stream over anyio that records write failures and bytes read."""

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        socket_stream: anyio.abc.SocketStream,
        record: WireRecord,
    ) -> None:
        self._stream = stream
        self._socket = socket_stream
        self._raw: socket.socket = socket_stream.extra(anyio.abc.SocketAttribute.raw_socket)
        #: Shared by the plain stream and the TLS stream over it.
        self.record = record

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Read up to ``max_bytes`` (``b""`` at end of stream)."""
        with _mapped(_READ_ERRORS), anyio.fail_after(timeout):
            try:
                data = await self._stream.receive(max_bytes)
            except anyio.EndOfStream:
                return b""
        self.record.bytes_read += len(data)
        if (exchange := current_record()) is not None:
            exchange.bytes_read += len(data)
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Hand all of ``buffer`` to the kernel, or record that it was not."""
        if not buffer:
            return
        exchange = current_record()
        try:
            with _mapped(_WRITE_ERRORS), anyio.fail_after(timeout):
                await self._stream.send(buffer)
        except BaseException:  # failed, timed out or cancelled part-way
            self._write_failed(exchange)
            raise
        if self._raw.fileno() < 0:
            # asyncio's transport swallows a failed send(): it closes the socket on the
            # loop iteration that anyio's send() yields for, before any read is processed.
            self._write_failed(exchange)
        elif exchange is not None:
            exchange.handed += len(buffer)

    def _write_failed(self, exchange: ExchangeRecord | None) -> None:
        self.record.write_failed = True
        if exchange is not None:
            exchange.write_failed = True

    async def aclose(self) -> None:
        """Close the stream (and the socket under it)."""
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> TrackedStream:
        """Return a TLS stream over this one, sharing its record."""
        try:
            with _mapped(_CONNECT_ERRORS), anyio.fail_after(timeout):
                tls = await anyio.streams.tls.TLSStream.wrap(
                    self._stream,
                    ssl_context=ssl_context,
                    hostname=server_hostname,
                    standard_compatible=False,
                    server_side=False,
                )
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._stream.aclose()
            raise
        return TrackedStream(tls, self._socket, self.record)

    def get_extra_info(self, info: str) -> Any:
        """Answer httpcore's questions: TLS object, addresses, socket, readability."""
        if info == "ssl_object":
            return self._stream.extra(anyio.streams.tls.TLSAttribute.ssl_object, None)
        if info == "client_addr":
            return self._socket.extra(anyio.abc.SocketAttribute.local_address, None)
        if info == "server_addr":
            return self._socket.extra(anyio.abc.SocketAttribute.remote_address, None)
        if info == "socket":
            return self._raw
        if info == "is_readable":
            return is_readable(self._raw)
        return None


class TrackedBackend(httpcore.AsyncNetworkBackend):
    """Opens :class:`TrackedStream` connections; remembers the last one it opened."""

    def __init__(self) -> None:
        #: The stream opened last (one backend serves one connection), and its record.
        self.stream: TrackedStream | None = None
        self.record: WireRecord | None = None

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> TrackedStream:
        """Connect to ``host:port`` within ``timeout``."""
        with _mapped(_CONNECT_ERRORS), anyio.fail_after(timeout):
            stream = await anyio.connect_tcp(host, port, local_host=local_address)
        return self._opened(stream, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> TrackedStream:
        """Connect to the Unix socket at ``path`` within ``timeout``."""
        with _mapped(_CONNECT_ERRORS), anyio.fail_after(timeout):
            stream = await anyio.connect_unix(path)
        return self._opened(stream, socket_options)

    async def sleep(self, seconds: float) -> None:
        """Sleep (httpcore's connect retries)."""
        await anyio.sleep(seconds)

    def _opened(
        self, stream: anyio.abc.SocketStream, socket_options: Iterable[_SocketOption] | None
    ) -> TrackedStream:
        raw = stream.extra(anyio.abc.SocketAttribute.raw_socket)
        for option in socket_options or ():
            raw.setsockopt(*option)
        self.record = WireRecord()
        self.stream = TrackedStream(stream, stream, self.record)
        return self.stream
