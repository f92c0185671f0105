"""Contracts with other libraries' internals the SDK leans on: fail here first if they move.

httpx: ``AsyncClient._transport_for_url`` (the direct send; pinned ``httpx<0.30``), and
``AsyncHTTPTransport._pool``, which the session replaces with the flat pool (httpcore's
pool internals it replaces are checked in ``test_pool.py``; pinned ``httpcore<1.1``).
aiohttp's connector internals are checked on each connector by the transport itself
(``test_aiohttp_connections.py``).
"""

from __future__ import annotations

from typing import Any

import httpcore
import httpx
import pytest
import respx

from ccmessaging_async import AsyncSession, CreateCallRequest, TokenPolicy, _client
from ccmessaging_async._transports import default, httpx_transport
from ccmessaging_async._transports.pool import FlatConnectionPool
from ccmessaging_async._transports.tracked_pool import TrackedConnectionPool
from tests._helpers import (
    APP_KEY,
    APP_SECRET,
    BASE_URL,
    CALL_PATH,
    TOKEN_PATH,
    call_json,
    token_json,
)

pytestmark = pytest.mark.anyio


def test_httpx_transport_lookup_is_what_send_uses() -> None:
    """The transport lookup is still what the direct send assumes (checked at import too)."""
    assert httpx_transport.DIRECT_SEND
    transport = httpx.AsyncHTTPTransport()
    client = httpx.AsyncClient(transport=transport, trust_env=False)
    lookup = client._transport_for_url  # noqa: SLF001 - the contract under test
    assert lookup(httpx.URL(BASE_URL + CALL_PATH)) is transport


async def test_respx_in_httpx_mode_sees_the_direct_send() -> None:
    """respx.mock(using="httpx") intercepts createcall sent through the direct path."""
    async with respx.mock(using="httpx", base_url=BASE_URL) as router:
        router.post(TOKEN_PATH).respond(json=token_json())
        call = router.post(CALL_PATH).respond(json=call_json())
        async with AsyncSession(BASE_URL, APP_KEY, APP_SECRET, token=TokenPolicy.for_tests()) as s:
            await s.create_call(CreateCallRequest(called="1"))
    assert call.call_count == 1


async def test_without_the_lookup_calls_go_through_client_send(
    router: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If httpx's internals no longer match, the SDK falls back to AsyncClient.send."""
    monkeypatch.setattr(httpx_transport, "DIRECT_SEND", False)
    monkeypatch.setattr(httpx_transport, "send_direct", lambda *_: pytest.fail("sent directly"))
    router.post(TOKEN_PATH).respond(json=token_json())
    call = router.post(CALL_PATH).respond(json=call_json())
    async with AsyncSession(BASE_URL, APP_KEY, APP_SECRET, token=TokenPolicy.for_tests()) as s:
        await s.create_call(CreateCallRequest(called="1"))
    assert call.call_count == 1


def built_transports(monkeypatch: pytest.MonkeyPatch) -> list[httpx.AsyncHTTPTransport]:
    """Record the transports the sessions of a test build for themselves."""
    built: list[httpx.AsyncHTTPTransport] = []

    def recording(**options: Any) -> httpx.AsyncHTTPTransport:
        built.append(default.default_transport(**options))
        return built[-1]

    monkeypatch.setattr(_client, "default_transport", recording)
    return built


def pool_of(transport: httpx.AsyncHTTPTransport) -> httpcore.AsyncConnectionPool:
    return transport._pool  # noqa: SLF001 - the contract under test


@pytest.mark.parametrize("using", ["httpcore", "httpx"])
async def test_respx_intercepts_the_session_over_the_flat_pool(
    monkeypatch: pytest.MonkeyPatch, using: str
) -> None:
    """Both respx modes see every request of a session that uses the flat pool.

    The default mode patches the pool class the flat pool extends; httpx mode the transport.
    """
    built = built_transports(monkeypatch)
    async with respx.mock(using=using, base_url=BASE_URL) as router:
        token = router.post(TOKEN_PATH).respond(json=token_json())
        call = router.post(CALL_PATH).respond(json=call_json())
        async with AsyncSession(BASE_URL, APP_KEY, APP_SECRET, token=TokenPolicy.for_tests()) as s:
            await s.create_call(CreateCallRequest(called="1"))
    assert (token.call_count, call.call_count) == (1, 1)
    assert isinstance(pool_of(built[0]), FlatConnectionPool)


async def test_pytest_httpx_intercepts_the_session_over_the_flat_pool(
    monkeypatch: pytest.MonkeyPatch, httpx_mock: Any
) -> None:
    built = built_transports(monkeypatch)
    httpx_mock.add_response(method="POST", url=BASE_URL + TOKEN_PATH, json=token_json())
    httpx_mock.add_response(method="POST", url=BASE_URL + CALL_PATH, json=call_json("7"))
    async with AsyncSession(BASE_URL, APP_KEY, APP_SECRET, token=TokenPolicy.for_tests()) as s:
        result = await s.create_call(CreateCallRequest(called="1"))
    assert result.call_serial_no == "7"
    assert isinstance(pool_of(built[0]), FlatConnectionPool)


def test_http2_keeps_httpcore_s_bookkeeping() -> None:
    """HTTP/2 multiplexes over few connections: httpcore's pool logic is right there."""
    transport = default.default_transport(verify=True, limits=httpx.Limits(), http2=True)
    assert type(pool_of(transport)) is TrackedConnectionPool


async def test_unexpected_internals_fall_back_to_httpx_s_pool_with_a_warning(
    router: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(default, "FLAT_POOL_SUPPORTED", False)
    built = built_transports(monkeypatch)
    router.post(TOKEN_PATH).respond(json=token_json())
    call = router.post(CALL_PATH).respond(json=call_json())
    with pytest.warns(RuntimeWarning, match="using httpx's own connection pool"):
        session = AsyncSession(BASE_URL, APP_KEY, APP_SECRET, token=TokenPolicy.for_tests())
    async with session:
        await session.create_call(CreateCallRequest(called="1"))
    assert call.call_count == 1
    assert type(pool_of(built[0])) is httpcore.AsyncConnectionPool
