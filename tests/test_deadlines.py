"""Per-call deadlines with a typed answer: not sent, or may have been sent — never a bare cancel."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import httpx
import pytest

from ccmessaging_async import (
    AsyncSession,
    ConfigurationError,
    ConnectionLostError,
    CreateCallRequest,
    NotSentError,
    OutcomeStatus,
    RetryPolicy,
    TokenPolicy,
    aiohttp_transport,
)
from ccmessaging_async._transports.pool import FlatConnectionPool
from ccmessaging_async._transports.record import recording
from tests._helpers import APP_KEY, APP_SECRET, CALL_PATH, TOKEN_PATH, call_json, token_json
from tests._loopback import LoopbackServer, json_answer

pytestmark = pytest.mark.anyio

HELD = "/hold"  # the platform's base path: createcall waits for server.release()


def platform() -> LoopbackServer:
    return LoopbackServer(
        answers={TOKEN_PATH: json_answer(token_json()), HELD + CALL_PATH: json_answer(call_json())}
    )


#: Builds the session's transport for pool limits (``None``: the default transport).
Transport = Callable[[httpx.Limits], httpx.AsyncBaseTransport | None]
ONE_CONNECTION = httpx.Limits(max_connections=1, max_keepalive_connections=1)


@pytest.fixture(params=["default", "aiohttp"])
def transport(request: pytest.FixtureRequest, anyio_backend: str) -> Transport:
    """The session's own transports: httpx's (default) and aiohttp's."""
    if request.param == "aiohttp":
        if anyio_backend != "asyncio":
            pytest.skip("the aiohttp transport runs on asyncio only")
        return lambda limits: aiohttp_transport(limits=limits)
    return lambda limits: None


def session_for(
    server: LoopbackServer, transport: Transport, limits: httpx.Limits | None = None
) -> AsyncSession:
    """A session with these pool limits, set on the transport or on the session."""
    limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=100)
    made = transport(limits)
    return AsyncSession(
        server.url + HELD,
        APP_KEY,
        APP_SECRET,
        token_url=server.url + TOKEN_PATH,
        transport=made,
        limits=limits,
        token=TokenPolicy.for_tests(),
        retry=RetryPolicy.for_tests(),
    )


def calls_received(server: LoopbackServer) -> int:
    return sum(path == HELD + CALL_PATH for _, path, _ in server.requests)


async def test_a_deadline_after_the_request_left_is_unknown_and_never_resent(
    transport: Transport,
) -> None:
    async with platform() as server, session_for(server, transport) as session:
        with anyio.fail_after(10), pytest.raises(ConnectionLostError, match="deadline") as caught:
            await session.create_call(CreateCallRequest(called="1"), timeout=0.2)
        server.release()
    assert caught.value.attempts == 1
    assert calls_received(server) == 1


async def test_a_deadline_while_waiting_for_a_connection_is_not_sent(
    transport: Transport,
) -> None:
    async with (
        platform() as server,
        session_for(server, transport, ONE_CONNECTION) as session,
        anyio.create_task_group() as group,
    ):
        group.start_soon(session.create_call, CreateCallRequest(called="1"))
        await server.wait_until(lambda: calls_received(server) == 1)
        with pytest.raises(NotSentError, match="deadline") as caught:
            await session.create_call(CreateCallRequest(called="2"), timeout=0.1)
        server.release()
    assert caught.value.attempts == 0
    assert calls_received(server) == 1


async def test_the_connection_cut_short_by_a_deadline_does_not_block_the_pool(
    transport: Transport,
) -> None:
    async with platform() as server, session_for(server, transport, ONE_CONNECTION) as session:
        with pytest.raises(ConnectionLostError):
            await session.create_call(CreateCallRequest(called="1"), timeout=0.1)
        server.release()
        with anyio.fail_after(10):
            result = await session.create_call(CreateCallRequest(called="2"), timeout=5)
    assert result.result_code == "0"


async def test_a_batch_with_a_per_call_deadline_gives_each_input_its_outcome(
    transport: Transport,
) -> None:
    async with platform() as server, session_for(server, transport) as session:
        requests = [CreateCallRequest(called=str(n)) for n in range(5)]
        with anyio.fail_after(10):
            outcomes = [
                o async for o in session.create_calls(requests, call_timeout=0.2, concurrency=5)
            ]
        server.release()
    assert sorted(o.index for o in outcomes) == list(range(5))
    assert {o.status for o in outcomes} == {OutcomeStatus.UNKNOWN}
    assert all(isinstance(o.error, ConnectionLostError) for o in outcomes)
    assert calls_received(server) == 5


@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan"), True, "3"])
async def test_a_bad_deadline_is_refused_before_anything_is_sent(bad: object) -> None:
    async with platform() as server, session_for(server, lambda limits: None) as session:
        with pytest.raises(ConfigurationError, match="timeout"):
            await session.create_call(CreateCallRequest(called="1"), timeout=bad)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="call_timeout"):
            session.create_calls([], call_timeout=bad)  # type: ignore[arg-type]
    assert calls_received(server) == 0


async def test_a_deadline_mid_write_records_the_request_as_unsent() -> None:
    """Cancelled while the kernel takes the body: the request never left completely."""
    async with LoopbackServer(read_body=False) as server:
        async with FlatConnectionPool(max_connections=1) as pool:
            with recording() as record, anyio.move_on_after(0.3):
                await pool.request("POST", server.url + "/", content=b"x" * (64 << 20))
        assert record.started
        assert record.write_failed
        assert record.unsent
        async with FlatConnectionPool(max_connections=1) as pool:
            with recording() as record, anyio.move_on_after(0.3):
                await pool.request("POST", server.url + HELD, content=b"{}")
        server.release()
    assert record.started
    assert not record.unsent  # written in full; the answer was what the deadline cut
