"""The flat connection pool: httpcore's semantics, constant bookkeeping, honest failures.

Driven through httpcore's own request API against a loopback server the test controls.
"""

from __future__ import annotations

import logging

import anyio
import httpcore
import pytest

from ccmessaging_async._transports import network
from ccmessaging_async._transports.connection import (
    ConnectionDropped,
    RequestNotWritten,
    TrackedConnection,
)
from ccmessaging_async._transports.keepalive import MIN_EXPIRY, SAFE_FRACTION
from ccmessaging_async._transports.pool import FLAT_POOL_SUPPORTED, FlatConnectionPool
from tests._helpers import FakeClock
from tests._loopback import LoopbackServer

pytestmark = pytest.mark.anyio


def pool_for(**options: object) -> FlatConnectionPool:
    settings: dict[str, object] = {"max_connections": 10, "keepalive_expiry": 5.0}
    settings.update(options)
    return FlatConnectionPool(**settings)  # type: ignore[arg-type]


async def get(pool: FlatConnectionPool, url: str, **extensions: object) -> httpcore.Response:
    return await pool.request("GET", url, extensions=extensions)


def test_httpcore_internals_are_as_pinned() -> None:
    """The pinned httpcore still has what the flat pool replaces (else the session warns)."""
    assert FLAT_POOL_SUPPORTED


async def test_connections_never_exceed_max_connections() -> None:
    async with LoopbackServer() as server, pool_for(max_connections=3) as pool:
        statuses: list[int] = []

        async def one() -> None:
            statuses.append((await get(pool, server.url + "/hold")).status)

        async with anyio.create_task_group() as group:
            for _ in range(7):
                group.start_soon(one)
            await server.wait_until(lambda: len(server.requests) == 3)
            assert len(server.connections) == 3
            server.release()
    assert statuses == [200] * 7
    assert len(server.connections) == 3


async def test_pool_timeout_when_every_connection_is_busy() -> None:
    async with LoopbackServer() as server, pool_for(max_connections=1) as pool:
        async with anyio.create_task_group() as group:
            group.start_soon(get, pool, server.url + "/hold")
            await server.wait_until(lambda: len(server.requests) == 1)
            with pytest.raises(httpcore.PoolTimeout):
                await get(pool, server.url + "/", timeout={"pool": 0.01})
            server.release()
        # The timed-out request left nothing behind: the one connection serves the next.
        assert (await get(pool, server.url + "/")).status == 200
    assert len(server.connections) == 1


async def test_a_cancelled_waiting_request_leaves_the_pool_usable() -> None:
    async with LoopbackServer() as server, pool_for(max_connections=1) as pool:
        async with anyio.create_task_group() as group:
            group.start_soon(get, pool, server.url + "/hold")
            await server.wait_until(lambda: len(server.requests) == 1)
            with anyio.CancelScope() as waiting:
                waiting.cancel()
                await get(pool, server.url + "/")
            server.release()
        assert (await get(pool, server.url + "/")).status == 200
        assert "Requests: 0 active, 0 queued" in repr(pool)
    assert [path for _, path, _ in server.requests] == ["/hold", "/"]


async def test_at_most_max_keepalive_connections_stay_idle() -> None:
    async with (
        LoopbackServer() as server,
        pool_for(max_connections=4, max_keepalive_connections=1) as pool,
    ):
        async with anyio.create_task_group() as group:
            for _ in range(4):
                group.start_soon(get, pool, server.url + "/hold")
            await server.wait_until(lambda: len(server.requests) == 4)
            server.release()
        assert len(pool.connections) == 1
        await server.wait_until(lambda: sum(c.closed.is_set() for c in server.connections) == 3)


async def test_the_most_recently_used_idle_connection_is_reused() -> None:
    """The oldest idle connection is the likeliest to have been closed by a middlebox."""
    async with LoopbackServer() as server, pool_for() as pool:
        async with anyio.create_task_group() as group:
            group.start_soon(get, pool, server.url + "/hold")
            await server.wait_until(lambda: len(server.requests) == 1)
            await get(pool, server.url + "/second")  # a second connection, released first
            server.release()
        await get(pool, server.url + "/third")
    by_path = {path: index for index, path, _ in server.requests}
    assert by_path["/third"] == by_path["/hold"] != by_path["/second"]


async def test_idle_connections_expire_after_keepalive_expiry() -> None:
    clock = FakeClock()
    async with LoopbackServer() as server, pool_for(keepalive_expiry=2.0, clock=clock) as pool:
        await get(pool, server.url + "/")
        clock.advance(1.9)
        await get(pool, server.url + "/")
        assert len(server.connections) == 1
        clock.advance(2.1)
        await get(pool, server.url + "/")
        assert len(server.connections) == 2
        await server.connections[0].closed.wait()


async def test_a_connection_the_server_closed_while_idle_is_never_used(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    async with LoopbackServer() as server, pool_for(clock=clock) as pool:
        await get(pool, server.url + "/")
        clock.advance(1.0)
        assert await server.close_idle()
        (connection,) = pool.connections
        assert isinstance(connection, TrackedConnection)
        with anyio.fail_after(5):
            while not connection.peer_closed():  # noqa: ASYNC110 - no event says a FIN came
                await anyio.sleep(0.001)
        with caplog.at_level(logging.WARNING, "ccmessaging_async"):
            assert (await get(pool, server.url + "/")).status == 200
        assert len(server.connections) == 2
        assert pool.keepalive.expiry == pytest.approx(1.0 * SAFE_FRACTION)
        assert "keepalive_expiry=0.5" in caplog.text


async def test_reuse_polls_only_the_connection_it_takes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cost per request does not grow with idle connections (httpcore polls every one)."""
    polls: list[int] = []
    real = network.is_readable

    def counted(sock: object) -> bool:
        polls.append(1)
        return real(sock)  # type: ignore[arg-type]

    monkeypatch.setattr(network, "is_readable", counted)
    async with LoopbackServer() as server, pool_for(max_connections=60) as pool:
        async with anyio.create_task_group() as group:
            for _ in range(50):
                group.start_soon(get, pool, server.url + "/hold")
            await server.wait_until(lambda: len(server.requests) == 50)
            server.release()
        assert len(pool.connections) == 50
        polls.clear()
        for _ in range(20):
            await get(pool, server.url + "/")
    assert len(polls) == 20


async def test_a_request_not_completely_written_says_so() -> None:
    """The server resets after the headers: the body never reached the kernel."""
    async with LoopbackServer(read_body=False) as server, pool_for() as pool:
        body = b"x" * (64 << 20)  # more than loopback's socket buffers take

        async def reset_when_seen() -> None:
            await server.wait_until(lambda: bool(server.connections))
            await server.wait_until(lambda: not server.connections[0].idle)
            server.connections[0].close_with_reset()
            await server.connections[0].stream.aclose()

        async with anyio.create_task_group() as group:
            group.start_soon(reset_when_seen)
            with pytest.raises(RequestNotWritten):
                await pool.request("POST", server.url + "/", content=body)
    assert server.requests == []


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "reset"])
async def test_a_write_on_a_connection_closed_after_the_reuse_check_is_not_sent(
    monkeypatch: pytest.MonkeyPatch, reset: bool
) -> None:
    """The close races the reuse check: the request's body write fails, so it never left."""
    peer_closed = TrackedConnection.peer_closed
    monkeypatch.setattr(TrackedConnection, "peer_closed", lambda self: False)
    async with LoopbackServer() as server, pool_for() as pool:
        await get(pool, server.url + "/")
        await server.close_idle(reset=reset)
        (connection,) = pool.connections
        assert isinstance(connection, TrackedConnection)
        with anyio.fail_after(5):  # the close crosses loopback
            while not peer_closed(connection):  # noqa: ASYNC110 - no event says a FIN came
                await anyio.sleep(0.001)
        with pytest.raises(RequestNotWritten):
            await pool.request("POST", server.url + "/", content=b'{"a": 1}')
    assert len(server.requests) == 1


async def test_a_reused_connection_dropped_before_any_answer_is_reported_with_its_idle_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    async with LoopbackServer() as server, pool_for(clock=clock) as pool:
        await get(pool, server.url + "/")
        clock.advance(0.8)
        server.drop_next = True
        with (
            caplog.at_level(logging.WARNING, "ccmessaging_async"),
            pytest.raises(ConnectionDropped) as caught,
        ):
            await get(pool, server.url + "/")
    assert caught.value.idle_for == pytest.approx(0.8)
    assert [path for _, path, _ in server.requests] == ["/", "/"]
    assert pool.keepalive.expiry == pytest.approx(0.8 * SAFE_FRACTION)
    assert "idle for 0.800s" in caplog.text


async def test_a_request_handed_back_by_a_closed_connection_gets_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request handed back by a closed connection waits again, and gets another.

    The closed connection must stop counting against the limit.
    """
    refused: list[TrackedConnection] = []
    send = TrackedConnection.handle_async_request
    closed = TrackedConnection.is_closed

    async def closed_first(self: TrackedConnection, request: httpcore.Request) -> httpcore.Response:
        if not refused:
            refused.append(self)
            raise httpcore.ConnectionNotAvailable
        return await send(self, request)

    monkeypatch.setattr(TrackedConnection, "handle_async_request", closed_first)
    monkeypatch.setattr(
        TrackedConnection, "is_closed", lambda self: self in refused or closed(self)
    )
    async with LoopbackServer() as server, pool_for(max_connections=1) as pool:
        with anyio.fail_after(5):
            assert (await get(pool, server.url + "/")).status == 200
        assert refused[0] not in pool.connections
        assert len(pool.connections) == 1


def test_the_flat_pool_refuses_http2() -> None:
    with pytest.raises(ValueError, match=r"HTTP/1\.1 only"):
        FlatConnectionPool(http2=True)


def test_the_learnt_expiry_has_a_floor() -> None:
    pool = pool_for()
    pool.keepalive.peer_closed_after(0.001)
    assert pool.keepalive.expiry == MIN_EXPIRY
    pool.keepalive.peer_closed_after(30.0)  # never raised again
    assert pool.keepalive.expiry == MIN_EXPIRY


def test_a_close_after_the_expiry_in_use_teaches_nothing() -> None:
    """A server closing idle connections at 5 s, after our 4 s, is no middlebox to learn."""
    pool = pool_for(keepalive_expiry=4.0)
    pool.keepalive.peer_closed_after(5.0)
    assert pool.keepalive.expiry == 4.0
    pool.keepalive.peer_closed_after(3.0)
    assert pool.keepalive.expiry == 3.0 * SAFE_FRACTION
