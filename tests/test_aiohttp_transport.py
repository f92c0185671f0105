"""The aiohttp transport (extra ``aiohttp``, asyncio only) keeps SPEC section 3's rules."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import httpx
import pytest

from ccmessaging_async import (
    AsyncSession,
    CreateCallRequest,
    OutcomeStatus,
    RetryPolicy,
    TokenPolicy,
    TokenServiceUnreachableError,
    aiohttp_transport,
)
from ccmessaging_async.testing import Emulator, EmulatorServer
from tests._faultproxy import Fault, FaultProxy
from tests._loopback import LoopbackServer

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(Emulator()) as served:
        yield served


def session(url: str, emulator: Emulator, **kwargs: object) -> AsyncSession:
    return AsyncSession(
        url,
        emulator.app_key,
        emulator.app_secret,
        transport=aiohttp_transport(),
        retry=RetryPolicy.for_tests(),
        token=TokenPolicy.for_tests(),
        **kwargs,  # type: ignore[arg-type]
    )


async def test_batch_over_aiohttp(server: EmulatorServer) -> None:
    """A batch through the aiohttp transport succeeds with one token request."""
    emulator = server.app
    requests = [CreateCallRequest(called=f"1500{i:06d}") for i in range(300)]
    with anyio.fail_after(60):
        async with session(server.url, emulator) as s:
            outcomes = [o async for o in s.create_calls(requests, concurrency=30)]
    assert [o.status for o in outcomes] == [OutcomeStatus.SUCCEEDED] * 300
    assert emulator.token_requests == 1
    assert emulator.duplicates() == {}


async def test_reset_after_sending_is_unknown_not_resent(server: EmulatorServer) -> None:
    """A connection dropped after the platform acted is unknown, not a re-sendable connect error."""
    emulator = server.app
    called = [f"1501{i:06d}" for i in range(100)]
    with FaultProxy(server.host, server.port) as proxy:
        for number in called[::5]:
            proxy.faults[number] = Fault.RESET_AFTER_FORWARD
        with anyio.fail_after(60):
            async with session(proxy.url, emulator) as s:
                outcomes = [
                    o
                    async for o in s.create_calls(
                        [CreateCallRequest(called=n) for n in called], concurrency=10
                    )
                ]
    for outcome in outcomes:
        if outcome.request.called in called[::5]:
            assert outcome.status is OutcomeStatus.UNKNOWN
            assert outcome.attempts == 1
        else:
            assert outcome.ok
    assert emulator.duplicates() == {}
    assert all(emulator.calls_for(n) == 1 for n in called)


async def test_refused_connection_is_not_sent() -> None:
    """Nothing listening is a connect error: the one failure the SDK may re-send."""
    with FaultProxy("127.0.0.1", 9) as proxy:
        proxy.refuse()
        url = f"http://127.0.0.1:{proxy.port}/apiaccess/ccmessaging/v1/mobileagent/createcall"
        async with httpx.AsyncClient(transport=aiohttp_transport()) as client:
            with pytest.raises(httpx.ConnectError):
                await client.post(url, content=b"{}")
        emulator = Emulator()
        with (
            anyio.fail_after(30),
            pytest.raises(TokenServiceUnreachableError, match="ConnectError"),
        ):
            async with session(f"http://127.0.0.1:{proxy.port}", emulator):
                pass


async def test_an_answer_cut_short_is_a_read_error_and_its_connection_is_not_reused() -> None:
    """The token request's body (read by httpx) stops early: a read error, not a connect one.

    The request was answered, so it reached the server: whatever cuts the body short is a
    read error (outcome unknown), and the connection goes, never back to the pool.
    """
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    server = LoopbackServer(answers={"/token": head + b'{"AccessToken": "a'})
    transport = aiohttp_transport()
    with anyio.fail_after(10):
        async with server, httpx.AsyncClient(transport=transport) as client:
            async with client.stream("POST", server.url + "/token", content=b"{}") as response:
                assert response.status_code == 200
                await server.wait_until(lambda: server.connections[0].idle)
                await server.close_idle()
                with pytest.raises(httpx.ReadError):
                    await response.aread()
            assert (await client.post(server.url + "/", content=b"{}")).status_code == 200
    assert [index for index, _path, _length in server.requests] == [0, 1]  # a new connection
