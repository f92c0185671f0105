"""One send path: what a session's exchange declares decides the outcome, in one place.

The sender asks the exchange (``tracks_writes``, ``max_in_flight``), never the
configuration: a test per declared capability, over a fake exchange, and one table of
what each configuration declares.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest

from ccmessaging_async import (
    AsyncSession,
    CCMessagingError,
    ConnectionLostError,
    CreateCallRequest,
    NotSentError,
    RetryPolicy,
    TokenPolicy,
    aiohttp_transport,
)
from ccmessaging_async._config import DEFAULT_LIMITS
from ccmessaging_async._endpoints import CREATE_CALL
from ccmessaging_async._exchange import ClientExchange, TransportExchange
from ccmessaging_async._models import AccessToken
from ccmessaging_async._sender import Sender
from ccmessaging_async._token_manager import TokenManager
from ccmessaging_async._transports.base import Answer, BodyLimits, HiddenHeaders
from ccmessaging_async._transports.record import current_record
from tests._helpers import APP_KEY, APP_SECRET, BASE_URL, call_json

pytestmark = pytest.mark.anyio


class HeldExchange:
    """An exchange that declares what it is told and holds every request until released.

    With ``writes``, each request is recorded as completely written before it waits.
    """

    def __init__(self, *, tracks_writes: bool, max_in_flight: int | None, writes: bool) -> None:
        self.tracks_writes = tracks_writes
        self.max_in_flight = max_in_flight
        self.writes = writes
        self.release = anyio.Event()
        self.in_flight = self.most = self.calls = 0

    async def exchange(
        self, method: str, url: str, headers: HiddenHeaders, body: bytes, limits: BodyLimits
    ) -> Answer:
        """Hold the request (written, if told so) until released; answer a created call."""
        record = current_record()
        assert record is not None  # the sender opened one
        self.calls += 1
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            if self.writes:
                record.started, record.handed = True, len(body)
            await self.release.wait()
            return Answer(200, None, json.dumps(call_json()).encode(), truncated=False)
        finally:
            self.in_flight -= 1


async def started_sender(exchange: HeldExchange) -> Sender:
    async def fetch() -> AccessToken:
        return AccessToken("a-token", expires=3600.0)

    tokens = TokenManager(fetch, TokenPolicy.for_tests())
    await tokens.start()
    async with httpx.AsyncClient() as client:  # only its (empty) headers and timeouts are read
        return Sender(client, BASE_URL, APP_KEY, tokens, RetryPolicy.for_tests(), exchange=exchange)


@pytest.mark.parametrize(
    ("tracks_writes", "writes", "expected"),
    [
        (True, False, NotSentError),  # provably never written: not sent
        (True, True, ConnectionLostError),  # written: it may have reached the platform
        (False, False, ConnectionLostError),  # nothing known of the writes: unknown
    ],
)
async def test_a_call_cut_short_is_not_sent_only_where_its_exchange_tracks_writes(
    tracks_writes: bool, writes: bool, expected: type[CCMessagingError]
) -> None:
    """The deadline passes mid-exchange: what is told follows ``tracks_writes`` alone."""
    held = HeldExchange(tracks_writes=tracks_writes, max_in_flight=None, writes=writes)
    sender = await started_sender(held)
    with anyio.fail_after(5), pytest.raises(expected) as caught:
        await sender.send(CREATE_CALL, CreateCallRequest(called="13800000001"), deadline=0.05)
    assert held.calls == 1  # never re-sent, whatever it was told
    assert caught.value.attempts == (0 if expected is NotSentError else 1)


@pytest.mark.parametrize("bound", [2, None])
async def test_calls_wait_for_a_slot_only_where_the_exchange_declares_a_bound(
    bound: int | None,
) -> None:
    """Five calls at once: at most ``max_in_flight`` in the exchange, or all five."""
    held = HeldExchange(tracks_writes=True, max_in_flight=bound, writes=True)
    sender = await started_sender(held)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as calls:
            for i in range(5):
                calls.start_soon(sender.send, CREATE_CALL, CreateCallRequest(called=f"1380{i}"))
            while held.calls < (bound or 5):
                await anyio.lowlevel.checkpoint()
            for _ in range(10):  # let any call that could start, start
                await anyio.lowlevel.checkpoint()
            held.release.set()
    assert held.most == (bound or 5)
    assert held.calls == 5


def declared(session: AsyncSession) -> tuple[str, bool, int | None]:
    exchange: Any = session._sender._exchange_with  # noqa: SLF001 - what it declares
    return type(exchange).__name__, exchange.tracks_writes, exchange.max_in_flight


def session(**options: Any) -> AsyncSession:
    return AsyncSession("https://cc.example.com", APP_KEY, APP_SECRET, **options)


async def test_each_configuration_declares_what_it_knows() -> None:
    """The one factory's table: which exchange each way of sending gets, and what it knows."""
    limits = httpx.Limits(max_connections=7, max_keepalive_connections=7)
    assert declared(session(limits=limits)) == ("ClientExchange", True, 7)
    assert declared(session(limits=limits, proxy="http://127.0.0.1:3128")) == (
        "ClientExchange",
        False,  # httpx's proxy pool does not record writes
        7,
    )
    brought = httpx.AsyncClient()
    try:
        assert declared(session(client=brought)) == ("ClientExchange", False, None)
    finally:
        await brought.aclose()
    mock = httpx.MockTransport(lambda request: httpx.Response(200))
    assert declared(session(transport=mock)) == (
        "ClientExchange",
        False,  # a transport of the user's own: nothing known of its writes
        DEFAULT_LIMITS.max_connections,
    )
    assert isinstance(session()._sender._exchange_with, ClientExchange)  # noqa: SLF001


async def test_the_aiohttp_transport_is_exchanged_with_directly(anyio_backend: str) -> None:
    """The aiohttp transport exchanges by itself (no httpx request), tracking its writes."""
    if anyio_backend != "asyncio":
        pytest.skip("the aiohttp transport runs on asyncio only")
    limits = httpx.Limits(max_connections=9, max_keepalive_connections=9)
    made = session(transport=aiohttp_transport(limits=limits))
    assert declared(made) == ("TransportExchange", True, 9)
    assert isinstance(made._sender._exchange_with, TransportExchange)  # noqa: SLF001
