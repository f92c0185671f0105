"""The aiohttp transport over connections a middlebox closes (extra ``aiohttp``, asyncio only).

As on the default transport: what was never written is sent again, what was written on a
reused connection and dropped before any answer is unknown with its idle time, and the
connector learns to stop reusing connections that long idle.
"""

from __future__ import annotations

import ssl

import aiohttp
import httpx
import pytest
import trustme

from ccmessaging_async import (
    AsyncSession,
    ConnectionLostError,
    CreateCallRequest,
    RetryPolicy,
    TokenPolicy,
    aiohttp_transport,
)
from ccmessaging_async._transports import aiohttp_transport as transport_module
from ccmessaging_async._transports import aiohttp_wire
from ccmessaging_async._transports.aiohttp_transport import SafeAiohttpTransport
from ccmessaging_async._transports.aiohttp_wire import (
    WIRE_SUPPORTED,
    TrackedConnector,
    TrackedHandler,
)
from ccmessaging_async._transports.connection import ConnectionDropped, RequestNotWritten
from ccmessaging_async._transports.keepalive import SAFE_FRACTION
from tests._helpers import APP_KEY, APP_SECRET, CALL_PATH, TOKEN_PATH, call_json, token_json
from tests._loopback import LoopbackServer, json_answer

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """Run on asyncio only: aiohttp needs it."""
    return "asyncio"


@pytest.fixture
def handlers(monkeypatch: pytest.MonkeyPatch) -> list[TrackedHandler]:
    """Every connection the tracked connector opens, in order."""
    made: list[TrackedHandler] = []
    connection_made = TrackedHandler.connection_made

    def collect(self: TrackedHandler, transport: object) -> None:
        made.append(self)
        connection_made(self, transport)  # type: ignore[arg-type]

    monkeypatch.setattr(TrackedHandler, "connection_made", collect)
    return made


def stop_reading(handler: TrackedHandler) -> None:
    """Keep the event loop from seeing what the peer does next."""
    assert handler.transport is not None
    handler.transport.pause_reading()


@pytest.fixture
def race_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the peer's close come between the pool's check and the write (the race)."""
    monkeypatch.setattr(aiohttp_wire, "is_readable", lambda sock: False)


def connector_of(transport: httpx.AsyncBaseTransport) -> TrackedConnector:
    assert isinstance(transport, SafeAiohttpTransport)
    assert isinstance(transport.client, aiohttp.ClientSession)
    connector = transport.client.connector
    assert isinstance(connector, TrackedConnector)
    return connector


def test_the_installed_aiohttp_is_tracked() -> None:
    assert WIRE_SUPPORTED


@pytest.mark.usefixtures("race_window")
async def test_a_call_written_on_a_connection_reset_while_idle_is_sent_again(
    handlers: list[TrackedHandler],
) -> None:
    """The reset reaches the socket before the loop sees it: the write fails, so it never left."""
    server = LoopbackServer(
        answers={TOKEN_PATH: json_answer(token_json()), CALL_PATH: json_answer(call_json())}
    )
    async with (
        server,
        AsyncSession(
            server.url,
            APP_KEY,
            APP_SECRET,
            transport=aiohttp_transport(),
            token=TokenPolicy.for_tests(),
            retry=RetryPolicy.for_tests(),
        ) as session,
    ):
        await session.create_call(CreateCallRequest(called="1"))
        for handler in handlers:
            stop_reading(handler)
        closed = await server.close_idle(reset=True)
        assert closed
        result = await session.create_call(CreateCallRequest(called="2"))
    assert result.result_code == "0"
    assert [path for _, path, _ in server.requests].count(CALL_PATH) == 2


async def test_a_reused_connection_dropped_before_answering_is_unknown_and_teaches_the_expiry(
    handlers: list[TrackedHandler],
) -> None:
    server = LoopbackServer(
        answers={TOKEN_PATH: json_answer(token_json()), CALL_PATH: json_answer(call_json())}
    )
    transport = aiohttp_transport()
    async with (
        server,
        AsyncSession(
            server.url,
            APP_KEY,
            APP_SECRET,
            transport=transport,
            token=TokenPolicy.for_tests(),
            retry=RetryPolicy.for_tests(),
        ) as session,
    ):
        await session.create_call(CreateCallRequest(called="1"))
        server.drop_next = True
        with pytest.raises(ConnectionLostError) as caught:
            await session.create_call(CreateCallRequest(called="2"))
        connector = connector_of(transport)
    assert caught.value.reused
    idle_for = caught.value.idle_for
    assert idle_for is not None
    assert caught.value.attempts == 1
    assert [path for _, path, _ in server.requests].count(CALL_PATH) == 2
    assert connector.keepalive.expiry == pytest.approx(max(0.1, idle_for * SAFE_FRACTION))
    assert connector._keepalive_timeout == connector.keepalive.expiry  # noqa: SLF001
    assert len(handlers) == 1


@pytest.mark.usefixtures("race_window")
async def test_through_httpx_a_request_not_written_is_a_write_error(
    handlers: list[TrackedHandler],
) -> None:
    async with (
        LoopbackServer() as server,
        httpx.AsyncClient(transport=aiohttp_transport()) as client,
    ):
        assert (await client.get(server.url + "/")).status_code == 200
        (handler,) = handlers
        stop_reading(handler)
        await server.close_idle(reset=True)
        with pytest.raises(httpx.WriteError) as caught:
            await client.post(server.url + "/", content=b'{"a": 1}')
    assert isinstance(caught.value.__cause__, RequestNotWritten)
    assert isinstance(caught.value.__cause__.__cause__, aiohttp.ClientError)
    assert len(server.requests) == 1


async def test_a_connection_the_peer_closed_is_not_reused_even_before_the_loop_reads_it(
    handlers: list[TrackedHandler],
) -> None:
    transport = aiohttp_transport()
    async with LoopbackServer() as server, httpx.AsyncClient(transport=transport) as client:
        await client.get(server.url + "/")
        stop_reading(handlers[0])  # the event loop never sees the reset
        await server.close_idle(reset=True)
        response = await client.post(server.url + "/", content=b"{}")
        connector = connector_of(transport)
    assert response.status_code == 200
    assert len(handlers) == 2
    assert len(server.requests) == 2
    assert connector.keepalive.expiry is not None
    assert connector.keepalive.expiry < connector.keepalive.configured  # type: ignore[operator]


async def test_through_httpx_a_dropped_reused_connection_says_how_long_it_idled() -> None:
    async with (
        LoopbackServer() as server,
        httpx.AsyncClient(transport=aiohttp_transport()) as client,
    ):
        await client.get(server.url + "/")
        server.drop_next = True
        with pytest.raises(httpx.ReadError) as caught:  # aiohttp itself re-sends a GET
            await client.post(server.url + "/", content=b"{}")
    assert isinstance(caught.value.__cause__, ConnectionDropped)
    assert caught.value.__cause__.idle_for >= 0


async def test_a_read_timeout_on_a_reused_connection_teaches_nothing() -> None:
    """A connection aiohttp closes itself (its read timeout) says nothing of the peer."""
    transport = aiohttp_transport()
    async with LoopbackServer() as server, httpx.AsyncClient(transport=transport) as client:
        await client.get(server.url + "/")
        with pytest.raises(httpx.TimeoutException):
            await client.get(server.url + "/hold", timeout=httpx.Timeout(5, read=0.05))
        connector = connector_of(transport)
        server.release()
    assert connector.keepalive.expiry == connector.keepalive.configured


@pytest.mark.usefixtures("race_window")
async def test_over_tls_a_request_not_written_is_a_write_error(
    handlers: list[TrackedHandler],
) -> None:
    """Over TLS, asyncio marks only the socket under its TLS layer closing on a failed write."""
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    async with (
        LoopbackServer(tls=server_context) as server,
        httpx.AsyncClient(transport=aiohttp_transport(verify=client_context)) as client,
    ):
        assert (await client.get(server.url + "/")).status_code == 200
        (handler,) = handlers
        stop_reading(handler)
        await server.close_idle(reset=True)
        with pytest.raises(httpx.WriteError) as caught:
            await client.post(server.url + "/", content=b'{"a": 1}')
    assert isinstance(caught.value.__cause__, RequestNotWritten)
    assert len(server.requests) == 1


async def test_without_the_internals_it_falls_back_to_aiohttps_connector(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(transport_module, "WIRE_SUPPORTED", False)
    transport = aiohttp_transport()
    async with LoopbackServer() as server, httpx.AsyncClient(transport=transport) as client:
        assert (await client.get(server.url + "/")).status_code == 200
        assert isinstance(transport, SafeAiohttpTransport)
        assert isinstance(transport.client, aiohttp.ClientSession)
        assert type(transport.client.connector) is aiohttp.TCPConnector


async def test_a_connector_whose_internals_differ_tracks_nothing_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When aiohttp builds another protocol than the one tracked: none tracked, and declared.

    The transport then declares it does not track writes, so a call cut short is
    outcome-unknown rather than "not sent" on a record that was never filled in.
    """
    monkeypatch.setattr(aiohttp_wire, "ResponseHandler", type("SomeOtherHandler", (), {}))
    transport = aiohttp_transport()
    assert isinstance(transport, SafeAiohttpTransport)
    assert transport.tracks_writes  # before its first request: this aiohttp allows it
    async with LoopbackServer() as server, httpx.AsyncClient(transport=transport) as client:
        assert (await client.get(server.url + "/")).status_code == 200
        assert isinstance(transport.client, aiohttp.ClientSession)
        connector = transport.client.connector
        assert isinstance(connector, TrackedConnector)
        assert not connector.tracking
        assert not transport.tracks_writes
