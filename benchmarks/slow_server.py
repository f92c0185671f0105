"""A createcall server that answers late and forgets idle connections, for benchmarks.

    python benchmarks/slow_server.py --port P --delay 0.25 [--idle-close 1.0]

Plain asyncio protocol (cheap per request, so the clients are what is measured). Token
requests are answered at once; every createcall after ``--delay`` seconds, as the real
interface does while it waits for the call-setup event. With ``--idle-close T`` it closes
every connection that has been idle for T seconds, as a load balancer's or nginx's idle
timeout does: a request still unread in the socket then meets a reset, like on a real one.
``GET /stats`` answers ``{"received": [called numbers of complete createcalls], "cpu": s}``
and ``POST /reset`` clears the record. Prints ``ready`` once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource

from servers import CALL_JSON, TOKEN_JSON

CALL_PATH = b"/apiaccess/ccmessaging/v1/mobileagent/createcall"
TOKEN_PATH = b"/apigovernance/api/oauth/tokenByAkSk"


def _answer(body: str | bytes) -> bytes:
    data = body.encode() if isinstance(body, str) else body
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(data)}"
    return head.encode() + b"\r\n\r\n" + data


CALL_ANSWER, TOKEN_ANSWER = _answer(CALL_JSON), _answer(TOKEN_JSON)


class Server:
    """The record of what arrived, shared by the connections."""

    def __init__(self, delay: float, idle_close: float | None) -> None:
        self.delay = delay
        self.idle_close = idle_close
        self.received: list[str] = []


class Connection(asyncio.Protocol):
    """One keep-alive connection: parse requests, answer late, close when idle too long."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.buffer = b""
        self.pending = 0
        self.idle_timer: asyncio.TimerHandle | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()

    def data_received(self, data: bytes) -> None:
        self._disarm()
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            self._handle(head.split(b" ")[1], body)

    def _handle(self, path: bytes, body: bytes) -> None:
        self.pending += 1
        if path == CALL_PATH:
            self.server.received.append(json.loads(body)["called"])
            self.loop.call_later(self.server.delay, self._respond, CALL_ANSWER)
            return
        if path == TOKEN_PATH:
            answer = TOKEN_ANSWER
        elif path == b"/stats":
            usage = resource.getrusage(resource.RUSAGE_SELF)
            stats = {"received": self.server.received, "cpu": usage.ru_utime + usage.ru_stime}
            answer = _answer(json.dumps(stats))
        else:
            self.server.received.clear()
            answer = _answer("{}")
        self._respond(answer)

    def _respond(self, answer: bytes) -> None:
        self.pending -= 1
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(answer)
        if not self.pending and not self.buffer:
            self._arm()

    def _arm(self) -> None:
        if self.server.idle_close is not None:
            self.idle_timer = self.loop.call_later(self.server.idle_close, self._close_if_idle)

    def _disarm(self) -> None:
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None

    def _close_if_idle(self) -> None:
        if self.transport is not None and not self.pending and not self.buffer:
            self.transport.close()


async def serve(port: int, delay: float, idle_close: float | None) -> None:
    server = Server(delay, idle_close)
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(
        lambda: Connection(server), "127.0.0.1", port, backlog=4096, reuse_address=True
    )
    print("ready", flush=True)
    async with listener:
        await listener.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.25)
    parser.add_argument("--idle-close", type=float, default=None)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.delay, args.idle_close))


if __name__ == "__main__":
    main()
