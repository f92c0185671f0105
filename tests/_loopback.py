"""A bare HTTP/1.1 keep-alive server on 127.0.0.1 that a test drives step by step.

It counts connections and requests, holds answers to ``/hold`` until released, and closes
idle connections on demand (with a FIN, or a reset) — what a middlebox does.
"""

from __future__ import annotations

import json
import socket
import ssl
import struct
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import anyio
import anyio.abc
import anyio.streams.buffered
import anyio.streams.tls

__all__ = ["LoopbackServer", "ServerConnection", "json_answer"]


def json_answer(body: object) -> bytes:
    """A complete HTTP/1.1 200 answer carrying ``body`` as JSON."""
    data = json.dumps(body).encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(data)}"
    return head.encode() + b"\r\n\r\n" + data


OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class ServerConnection:
    """One accepted connection, as the server sees it."""

    def __init__(self, index: int, stream: anyio.abc.ByteStream) -> None:
        self.index = index
        self.stream = stream
        self.idle = True
        self.closed = anyio.Event()

    def close_with_reset(self) -> None:
        """Make the next close send a TCP reset instead of a FIN."""
        raw = self.stream.extra(anyio.abc.SocketAttribute.raw_socket)  # noqa: S610 - anyio
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class LoopbackServer:
    """Serve ``{}`` on every path; ``/hold`` waits for :meth:`release`."""

    def __init__(
        self,
        *,
        read_body: bool = True,
        answers: dict[str, bytes] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        #: Full answers by path (default: 200 ``{}``).
        self.answers = answers or {}
        #: Close the connection of the next complete request without answering it.
        self.drop_next = False
        self.connections: list[ServerConnection] = []
        #: (connection index, path, body length) of every complete request.
        self.requests: list[tuple[int, str, int]] = []
        self.port = 0
        self._read_body = read_body
        self._tls = tls
        #: TLS handshakes that failed (a client refusing the certificate, say).
        self.handshake_failures = 0
        self._release = anyio.Event()
        self._changed = anyio.Event()
        self._group: anyio.abc.TaskGroup | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self._tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Self:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)  # noqa: S610 - anyio
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        served: anyio.abc.Listener[anyio.abc.ByteStream] = listener
        if self._tls is not None:
            served = _CountingTLSListener(self, listener, self._tls, standard_compatible=False)
        self._group.start_soon(served.serve, self._serve)
        self._listener = served
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._group is not None
        self._group.cancel_scope.cancel()
        await self._group.__aexit__(exc_type, exc, tb)
        await self._listener.aclose()

    def release(self) -> None:
        """Answer every held request, now and from now on."""
        self._release.set()

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Wait until ``condition()`` holds (checked after each server event)."""
        while not condition():
            changed = self._changed
            await changed.wait()

    async def close_idle(self, *, reset: bool = False) -> list[ServerConnection]:
        """Close every idle connection (as a middlebox's idle timeout does); return them."""
        idle = [c for c in self.connections if c.idle and not c.closed.is_set()]
        for connection in idle:
            if reset:
                connection.close_with_reset()
            await connection.stream.aclose()
            connection.closed.set()
        self._notify()
        return idle

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def _serve(self, stream: anyio.abc.ByteStream) -> None:
        connection = ServerConnection(len(self.connections), stream)
        self.connections.append(connection)
        self._notify()
        buffered = anyio.streams.buffered.BufferedByteReceiveStream(stream)
        try:
            while True:
                head = await buffered.receive_until(b"\r\n\r\n", 65536)
                connection.idle = False
                self._notify()
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if not self._read_body:
                    await anyio.sleep_forever()
                await buffered.receive_exactly(length)
                path = head.split(b" ")[1].decode()
                self.requests.append((connection.index, path, length))
                self._notify()
                if self.drop_next:
                    self.drop_next = False
                    return
                if path.startswith("/hold"):
                    await self._release.wait()
                await stream.send(self.answers.get(path, OK))
                connection.idle = True
        except (
            anyio.EndOfStream,
            anyio.IncompleteRead,
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
            OSError,
        ):
            pass
        finally:
            connection.closed.set()
            self._notify()
            await stream.aclose()


class _CountingTLSListener(anyio.streams.tls.TLSListener):
    """anyio's TLS listener, counting failed handshakes on its server."""

    def __init__(self, server: LoopbackServer, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._server = server

    async def handle_handshake_error(  # type: ignore[override] # anyio's is static
        self, exc: BaseException, stream: anyio.abc.AnyByteStream
    ) -> None:
        """Count the failure, without anyio's logging of it."""
        await anyio.aclose_forcefully(stream)
        if isinstance(exc, anyio.get_cancelled_exc_class()) or not isinstance(exc, Exception):
            raise exc
        self._server.handshake_failures += 1
        self._server._notify()  # noqa: SLF001 - its own server
