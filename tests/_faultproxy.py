"""A small HTTP/1.1-aware TCP proxy on 127.0.0.1 that injects network faults per call.

It reads each request (headers and Content-Length body), looks at the JSON body's
``called`` number, and for numbers given a fault it resets the client connection before
forwarding, resets it after the upstream answered (the platform acted), or delays the
answer. It can also stop listening, so connects are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import socket
import struct
import threading
from types import TracebackType
from typing import Self


class Fault(enum.Enum):
    """What the proxy does to a request for a given number."""

    RESET_BEFORE_FORWARD = "reset-before"
    RESET_AFTER_FORWARD = "reset-after"
    DELAY = "delay"


class FaultProxy:
    """Forward 127.0.0.1:<port> to ``upstream``, with faults per called number."""

    def __init__(self, upstream_host: str, upstream_port: int, *, delay: float = 1.0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.delay = delay
        self.faults: dict[str, Fault] = {}
        self.port = 0
        self.accepted = 0
        self._open = 0
        self._changed = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        """The proxy's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._thread.start()
        self.listen()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.refuse()
        asyncio.run_coroutine_threadsafe(self._cancel_all(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def listen(self) -> None:
        """Accept connections (on the same port as before, once one was chosen)."""
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)

    def refuse(self) -> None:
        """Stop listening: new connections are refused by the kernel."""
        asyncio.run_coroutine_threadsafe(self._close_listener(), self._loop).result(10)

    def close_clients(self) -> None:
        """Abort every open client connection (e.g. idle keep-alive ones) and wait for it."""

        async def abort_all() -> None:
            for writer in list(self._writers):
                _reset(writer)

        asyncio.run_coroutine_threadsafe(abort_all(), self._loop).result(10)
        self.wait_all_closed()

    def wait_all_closed(self, timeout: float = 10.0) -> bool:
        """Wait until no client connection is open; return whether that happened."""
        with self._changed:
            return self._changed.wait_for(lambda: self._open == 0, timeout)

    @property
    def open_connections(self) -> int:
        """Client connections open right now."""
        return self._open

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close_listener(self) -> None:
        if self._server is not None:
            # close() stops listening at once. Not wait_closed(): since CPython 3.12.1 it
            # also waits for every client connection, which outlive the listener here.
            self._server.close()
            self._server = None

    async def _cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _count(self, delta: int) -> None:
        with self._changed:
            self._open += delta
            self._changed.notify_all()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.accepted += 1
        self._writers.add(writer)
        self._count(1)
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                request = await _read_message(reader)
                if request is None:
                    return
                fault = self._fault_for(request)
                if fault is Fault.RESET_BEFORE_FORWARD:
                    _reset(writer)
                    return
                if upstream is None:
                    upstream = await asyncio.open_connection(*self.upstream)
                upstream[1].write(request)
                await upstream[1].drain()
                response = await _read_message(upstream[0])
                if response is None or fault is Fault.RESET_AFTER_FORWARD:
                    _reset(writer)
                    return
                if fault is Fault.DELAY:
                    await asyncio.sleep(self.delay)
                writer.write(response)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            if upstream is not None:
                upstream[1].close()
            writer.close()
            self._writers.discard(writer)
            self._count(-1)
            self._tasks.discard(task)

    def _fault_for(self, request: bytes) -> Fault | None:
        if not self.faults:
            return None
        body = request.partition(b"\r\n\r\n")[2]
        with contextlib.suppress(ValueError, AttributeError):
            called = json.loads(body).get("called")
            return self.faults.get(called)
        return None


async def _read_message(reader: asyncio.StreamReader) -> bytes | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return head + await reader.readexactly(length)


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
