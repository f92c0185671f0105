"""Contracts with other libraries' internals the SDK leans on: fail here first if they move.

httpx: ``AsyncClient._transport_for_url`` (the direct send; pinned ``httpx<0.29``).
httpx-aiohttp: it maps aiohttp's errors to httpx's with the aiohttp error as the cause,
which the aiohttp transport reads to tell a failed connect from a later failure (pinned
``httpx-aiohttp<0.3``).
"""

from __future__ import annotations

import socket

import httpx
import pytest
import respx

from ccmessaging_async import AsyncSession, CreateCallRequest, TokenPolicy
from ccmessaging_async._transports import httpx_transport
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


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_httpx_aiohttp_keeps_the_aiohttp_error_as_the_cause() -> None:
    """httpx-aiohttp raises httpx errors caused by aiohttp's: the transport's fix reads it."""
    aiohttp = pytest.importorskip("aiohttp")
    httpx_aiohttp = pytest.importorskip("httpx_aiohttp")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once closed
    transport = httpx_aiohttp.AiohttpTransport()
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.TransportError) as info:
            await client.get(f"http://127.0.0.1:{port}/")
    assert isinstance(info.value.__cause__, aiohttp.ClientConnectorError)
