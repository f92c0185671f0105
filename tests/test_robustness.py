"""A failing or hostile platform gets no extra load, and every wait and buffer is bounded."""

from __future__ import annotations

import contextlib
import functools
import gzip
import json
import socket
import traceback
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import anyio
import anyio.abc
import anyio.streams.buffered
import httpx
import pytest
import respx

from ccmessaging_async import (
    AsyncSession,
    AuthenticationError,
    CallOutcome,
    CCMessagingError,
    ConfigurationError,
    ConnectionLostError,
    CreateCallRequest,
    NotSentError,
    OutcomeStatus,
    ResponseDecodeError,
    RetryPolicy,
    SessionStateError,
    ThrottledError,
    ThrottlingTimeoutError,
    TokenPolicy,
    TokenServiceUnreachableError,
    aiohttp_transport,
)
from tests._helpers import (
    APP_KEY,
    APP_SECRET,
    BASE_URL,
    CALL_PATH,
    TOKEN_PATH,
    FakeClock,
    call_json,
    token_json,
)

pytestmark = pytest.mark.anyio

REQUEST = CreateCallRequest(called="88884432")


def session(**kwargs: object) -> AsyncSession:
    kwargs.setdefault("retry", RetryPolicy.for_tests())
    kwargs.setdefault("token", TokenPolicy.for_tests())
    return AsyncSession(BASE_URL, APP_KEY, APP_SECRET, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("retry_after", ["0", "Wed, 21 Oct 2015 07:28:00 GMT"])
async def test_retry_after_now_does_not_multiply_the_load(
    router: respx.MockRouter, retry_after: str
) -> None:
    """429s saying "come back now" forever: the batch slows, gives up, and raises it."""
    router.post(TOKEN_PATH).respond(json=token_json())
    calls = router.post(CALL_PATH).respond(429, headers={"Retry-After": retry_after})
    requests = [CreateCallRequest(called=f"1{i:04d}") for i in range(200)]
    outcomes: list[CallOutcome] = []

    async def run(s: AsyncSession) -> None:
        batch = s.create_calls(requests, concurrency=20, retry_budget=20, max_throttle_wait=0.5)
        async for outcome in batch:
            outcomes.append(outcome)

    with anyio.fail_after(30):
        async with session() as s:
            with pytest.raises(ThrottlingTimeoutError, match=r"accepted no call for 0\.5s"):
                await run(s)
    assert outcomes
    assert {o.status for o in outcomes} == {OutcomeStatus.FAILED}
    # Throttled, or stopped while waiting to be sent again: never created either way.
    assert all(isinstance(o.error, ThrottledError | NotSentError) for o in outcomes)
    # Only the inputs in hand were tried, each a few times at a falling pace (0.1: 600).
    assert len(outcomes) <= 40
    assert calls.call_count <= 100


@pytest.mark.slow
async def test_a_gateway_refusing_every_token_is_not_hammered_for_tokens(
    router: respx.MockRouter,
) -> None:
    """When fresh tokens are refused too, the refresher backs off and calls fail fast."""
    token_route = router.post(TOKEN_PATH)
    token_route.side_effect = lambda _: httpx.Response(
        200, json=token_json(f"tok-{token_route.call_count}")
    )
    router.post(CALL_PATH).respond(403, json={"exceptionInfo": "auth fail!"})
    requests = [CreateCallRequest(called=f"1{i:04d}") for i in range(2000)]
    with anyio.fail_after(30):
        async with session(token=TokenPolicy(retry_backoff_initial=0)) as s:
            outcomes = [o async for o in s.create_calls(requests, concurrency=50)]
    assert {o.status for o in outcomes} == {OutcomeStatus.FAILED}
    assert all(isinstance(o.error, AuthenticationError) for o in outcomes)
    # the first token, one refresh after the first refusal; then backed off (0.1: 121)
    assert token_route.call_count == 2


async def test_a_clock_stepped_back_does_not_lock_the_session_out(
    router: respx.MockRouter,
) -> None:
    """A failed refresh's backoff is at most refresh_backoff_max ahead, whatever the clock did."""
    clock = FakeClock()
    token_route = router.post(TOKEN_PATH)
    token_route.side_effect = [
        httpx.Response(200, json=token_json("tok-1", "600")),
        httpx.Response(503),
        httpx.Response(200, json=token_json("tok-2", "600")),
    ]
    router.post(CALL_PATH).respond(json=call_json())
    policy = TokenPolicy(clock=clock, attempts=1, refresh_backoff_max=30)
    with anyio.fail_after(10):
        async with session(token=policy) as s:
            clock.advance(700)  # expired; the refresh fails and backs off
            with pytest.raises(AuthenticationError):
                await s.create_call(REQUEST)
            clock.advance(-100)  # an injected clock jumps back (the old token stays expired)
            with pytest.raises(AuthenticationError):
                await s.create_call(REQUEST)  # still backing off...
            clock.advance(31)  # ...but never longer than the longest backoff (0.1: 70 s more)
            result = await s.create_call(REQUEST)
    assert result.result_code == "0"
    assert token_route.call_count == 3


async def test_closing_the_session_sends_nothing_more(router: respx.MockRouter) -> None:
    """Calls waiting for a slot when the session closes end unsent with SessionStateError."""
    router.post(TOKEN_PATH).respond(json=token_json())
    release = anyio.Event()
    arrived: list[httpx.Request] = []

    async def slow_answer(request: httpx.Request) -> httpx.Response:
        arrived.append(request)
        await release.wait()
        return httpx.Response(200, json=call_json())

    calls = router.post(CALL_PATH)
    calls.side_effect = slow_answer
    ended: list[BaseException | None] = []

    async def caller(s: AsyncSession) -> None:
        try:
            await s.create_call(REQUEST)
        except CCMessagingError as exc:
            ended.append(exc)
        else:
            ended.append(None)

    limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            s = session(limits=limits)
            await s.__aenter__()
            for _ in range(6):
                tg.start_soon(caller, s)
            await anyio.wait_all_tasks_blocked()
            on_the_wire = len(arrived)  # two on the wire, four waiting for a slot
            await s.aclose()
            release.set()
    unsent = [e for e in ended if isinstance(e, SessionStateError)]
    assert (on_the_wire, len(unsent)) == (2, 4)
    assert len(arrived) == 2  # nothing reached the wire after close
    with pytest.raises(SessionStateError):
        await s.create_call(REQUEST)


@pytest.mark.parametrize("source", ["sync", "async"])
async def test_ordered_mode_pulls_no_further_ahead_than_promised(
    router: respx.MockRouter, source: str
) -> None:
    """One stuck call in ordered mode stops the intake at 2 * concurrency inputs ahead."""
    router.post(TOKEN_PATH).respond(json=token_json())
    release = anyio.Event()

    async def answer(request: httpx.Request) -> httpx.Response:
        if b'"10000"' in request.read():  # the first input is stuck
            await release.wait()
        return httpx.Response(200, json=call_json())

    router.post(CALL_PATH).side_effect = answer
    pulled = 0

    def numbers() -> Iterator[CreateCallRequest]:
        nonlocal pulled
        for i in range(300):
            pulled += 1
            yield CreateCallRequest(called=f"1{i:04d}")

    async def async_numbers() -> AsyncIterator[CreateCallRequest]:
        for request in numbers():
            yield request

    inputs = numbers() if source == "sync" else async_numbers()
    seen: list[int] = []
    with anyio.fail_after(30):
        async with session() as s, anyio.create_task_group() as tg:

            async def consume() -> None:
                async with contextlib.aclosing(
                    s.create_calls(inputs, concurrency=10, ordered=True)
                ) as outcomes:
                    seen.extend([o.index async for o in outcomes])

            tg.start_soon(consume)
            await anyio.wait_all_tasks_blocked()
            ahead = pulled
            release.set()
    assert ahead <= 2 * 10 + 1  # 0.1 pulled the whole input behind one slow call
    assert seen == list(range(300))


@functools.cache
def gzip_bomb(decoded_mb: int) -> bytes:
    """Gzip of gzip of zeros: a few KiB on the wire, ``decoded_mb`` MiB once both layers go."""
    inner = gzip.compress(b"\0" * (decoded_mb << 20), compresslevel=9)
    return gzip.compress(inner, compresslevel=9)


Answerer = Callable[[str, anyio.abc.SocketStream], Awaitable[None]]


async def raw_server(
    answer: Answerer, seen: list[bytes] | None = None
) -> tuple[int, anyio.abc.Listener[anyio.abc.SocketStream], Any]:
    """A bare HTTP/1.1 server on loopback: ``answer(path, stream)`` writes each answer.

    respx cannot stand in here: it reads (and so decodes) a mocked body itself.
    """
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")

    async def handle(stream: anyio.abc.SocketStream) -> None:
        buffered = anyio.streams.buffered.BufferedByteReceiveStream(stream)
        async with stream:
            while True:
                try:
                    head = await buffered.receive_until(b"\r\n\r\n", 65536)
                except (anyio.EndOfStream, anyio.IncompleteRead):
                    return
                if seen is not None:
                    seen.append(head)
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await buffered.receive_exactly(length)
                await answer(head.split(b" ")[1].decode(), stream)

    port = listener.extra(anyio.abc.SocketAttribute.local_port)  # noqa: S610 - anyio, not Django
    return port, listener, handle


def http_answer(body: bytes, **headers: str) -> bytes:
    lines = [b"HTTP/1.1 200 OK", f"Content-Length: {len(body)}".encode()]
    lines += [f"{name.replace('_', '-')}: {value}".encode() for name, value in headers.items()]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def transport_for(name: str, anyio_backend: str) -> httpx.AsyncBaseTransport | None:
    """None for httpx's own transport; the aiohttp one on asyncio (skip on trio)."""
    if name == "httpx":
        return None
    if anyio_backend != "asyncio":
        pytest.skip("the aiohttp transport runs on asyncio only")
    return aiohttp_transport()


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
@pytest.mark.parametrize("target", ["createcall", "token"])
async def test_compressed_answers_are_never_decompressed(
    target: str, transport: str, anyio_backend: str
) -> None:
    """A gzip bomb is refused unread: identity is asked, and a compressed body is not decoded."""
    chosen = transport_for(transport, anyio_backend)  # skips outside any task group
    bomb = http_answer(gzip_bomb(64), Content_Encoding="gzip, gzip")
    token = http_answer(json.dumps(token_json()).encode(), Content_Type="application/json")
    answers = {TOKEN_PATH: bomb if target == "token" else token, CALL_PATH: bomb}
    seen: list[bytes] = []

    async def fixed(path: str, stream: anyio.abc.SocketStream) -> None:
        await stream.send(answers[path])

    port, listener, handle = await raw_server(fixed, seen)
    policy = TokenPolicy.for_tests(attempts=1)
    tracemalloc.start()
    try:
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, handle)
            s = AsyncSession(
                f"http://127.0.0.1:{port}",
                APP_KEY,
                APP_SECRET,
                token=policy,
                transport=chosen,
            )
            with pytest.raises((ResponseDecodeError, AuthenticationError)) as info:
                async with s:
                    await s.create_call(REQUEST)
            tg.cancel_scope.cancel()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 << 20  # 0.1 held 437 MB for a 495-byte bomb
    expected = ResponseDecodeError if target == "createcall" else AuthenticationError
    assert isinstance(info.value, expected)
    assert "gzip" in str(info.value)
    assert all(b"\r\naccept-encoding: identity\r\n" in head.lower() for head in seen)


async def drip_server(
    drip_path: str,
) -> tuple[int, anyio.abc.Listener[anyio.abc.SocketStream], Any]:
    """Loopback HTTP: ``drip_path`` answers one byte every 0.1 s, forever; others a token."""
    token = http_answer(json.dumps(token_json()).encode(), Content_Type="application/json")

    async def drip(path: str, stream: anyio.abc.SocketStream) -> None:
        if path != drip_path:
            await stream.send(token)
            return
        await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        while True:  # each byte well within the read timeout
            await anyio.sleep(0.1)
            await stream.send(b" ")

    return await raw_server(drip)


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
async def test_a_dripping_answer_ends_at_the_exchange_deadline(
    transport: str, anyio_backend: str
) -> None:
    """An answer dripped byte by byte ends at the sum of the timeouts, as outcome-unknown."""
    chosen = transport_for(transport, anyio_backend)  # skips outside any task group
    port, listener, handle = await drip_server(CALL_PATH)
    timeout = httpx.Timeout(0.5)  # read 0.5 s never trips; the whole exchange: 2 s
    with anyio.fail_after(8):  # 0.1 kept reading past 30 s
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, handle)
            async with AsyncSession(
                f"http://127.0.0.1:{port}",
                APP_KEY,
                APP_SECRET,
                timeout=timeout,
                token=TokenPolicy.for_tests(),
                transport=chosen,
            ) as s:
                with pytest.raises(ConnectionLostError):
                    await s.create_call(REQUEST)
            tg.cancel_scope.cancel()


@pytest.mark.slow
async def test_session_start_is_bounded_by_the_token_timeout() -> None:
    """A dripping token service cannot hold `async with` past the token timeout."""
    port, listener, handle = await drip_server(TOKEN_PATH)
    policy = TokenPolicy.for_tests(timeout=1.0)
    with anyio.fail_after(6):  # per attempt 2 s, three attempts: 0.1 took 6 s and more
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, handle)
            session = AsyncSession(
                f"http://127.0.0.1:{port}",
                APP_KEY,
                APP_SECRET,
                timeout=httpx.Timeout(0.5),
                token=policy,
            )
            with pytest.raises(AuthenticationError, match="token timeout"):
                async with session:
                    pass
            tg.cancel_scope.cancel()


@pytest.mark.parametrize("value", ["tök-1", "tok\r\nX-Evil: 1", "tok 1", "t" * 9000])
async def test_an_unusable_token_is_refused_when_it_arrives(
    router: respx.MockRouter, value: str
) -> None:
    """A token that cannot go into a header fails the fetch, typed and without quoting it."""
    router.post(TOKEN_PATH).respond(json=token_json(value))
    calls = router.post(CALL_PATH).respond(json=call_json())
    with pytest.raises(AuthenticationError) as info:
        async with session(token=TokenPolicy.for_tests(attempts=1)):
            pass
    assert value not in repr(info.value)
    assert value not in str(info.value)
    assert calls.call_count == 0


@pytest.mark.parametrize("failure", [httpx.DecodingError("bad gzip"), httpx.TooManyRedirects("x")])
async def test_any_httpx_failure_after_sending_is_typed_unknown(
    router: respx.MockRouter, failure: Exception
) -> None:
    """Errors httpx raises outside TransportError still come out typed as outcome-unknown."""
    router.post(TOKEN_PATH).respond(json=token_json())
    router.post(CALL_PATH).side_effect = failure
    async with session() as s:
        with pytest.raises(ConnectionLostError):
            await s.create_call(REQUEST)


def reachable_texts(root: object, depth: int = 8) -> list[str]:
    """Every string reachable from an exception.

    Causes, contexts, args and attributes, and the headers and bodies of any httpx request
    or response on the way.
    """
    texts: list[str] = []
    seen: set[int] = set()
    stack: list[tuple[object, int]] = [(root, 0)]
    while stack:
        item, level = stack.pop()
        if id(item) in seen or level > depth:
            continue
        seen.add(id(item))
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, bytes | bytearray):
            texts.append(bytes(item).decode("latin-1"))
        elif isinstance(item, dict):
            stack += [(part, level + 1) for pair in item.items() for part in pair]
        elif isinstance(item, list | tuple | set | frozenset):
            stack += [(part, level + 1) for part in item]
        elif isinstance(item, BaseException | httpx.Request | httpx.Response | httpx.Headers):
            texts.append(repr(item))
            more: list[object] = [vars(item)]
            if isinstance(item, BaseException):
                more += [item.__cause__, item.__context__, item.args]
            if isinstance(item, httpx.Headers):
                more.append(dict(item))
            if isinstance(item, httpx.Request):
                with contextlib.suppress(httpx.RequestNotRead):
                    more.append(item.content)
            stack += [(part, level + 1) for part in more]
    return texts


async def test_no_secret_is_reachable_from_a_token_failure() -> None:
    """From a failed token fetch, no chain of attributes leads to the app secret."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once closed
    session = AsyncSession(
        f"http://127.0.0.1:{port}", APP_KEY, APP_SECRET, token=TokenPolicy.for_tests()
    )
    with pytest.raises(TokenServiceUnreachableError) as info:
        async with session:
            pass
    texts = reachable_texts(info.value)
    assert any("ConnectError" in text for text in texts)  # the walk did see the failure
    assert not [text for text in texts if APP_SECRET in text]


@pytest.mark.parametrize("failure", [httpx.ConnectError, httpx.ReadError])
@pytest.mark.parametrize("own_client", [False, True])
async def test_no_token_is_reachable_from_a_transport_failure(
    router: respx.MockRouter, failure: type[Exception], own_client: bool
) -> None:
    """From a failed createcall, no chain of attributes leads to the token or the secret."""
    router.post(TOKEN_PATH).respond(json=token_json("tok-SECRET-1234"))
    router.post(CALL_PATH).side_effect = failure
    async with contextlib.AsyncExitStack() as stack:
        client = None if own_client else await stack.enter_async_context(httpx.AsyncClient())
        s = session(client=client, retry=RetryPolicy.for_tests(max_resends=0))
        async with s:
            with pytest.raises((NotSentError, ConnectionLostError)) as info:
                await s.create_call(REQUEST)
    texts = reachable_texts(info.value)
    assert not [text for text in texts if "tok-SECRET-1234" in text or APP_SECRET in text]


async def test_a_traceback_rendered_with_locals_shows_no_token(
    router: respx.MockRouter,
) -> None:
    """No frame on the send path keeps the token in a local that a traceback would print."""
    router.post(TOKEN_PATH).respond(json=token_json("tok-SECRET-5678"))
    router.post(CALL_PATH).side_effect = RuntimeError("a transport bug")
    async with session() as s:
        with pytest.raises(RuntimeError) as info:
            await s.create_call(REQUEST)
    rendered = "".join(
        traceback.TracebackException.from_exception(info.value, capture_locals=True).format()
    )
    assert "_exchange" in rendered  # the walk went through the send path's frames
    assert "tok-SECRET-5678" not in rendered
    assert APP_SECRET not in rendered


@pytest.mark.parametrize("status", [200, 403])
async def test_a_deeply_nested_body_is_a_typed_error(router: respx.MockRouter, status: int) -> None:
    """A thousand nested brackets: a typed error (unknown for a 200), never RecursionError."""
    router.post(TOKEN_PATH).respond(json=token_json())
    router.post(CALL_PATH).respond(status, content=b"[" * 1000)  # within the body bound
    async with session() as s:
        with pytest.raises(CCMessagingError) as caught:
            await s.create_call(REQUEST)
        outcomes = [o async for o in s.create_calls([REQUEST, REQUEST], concurrency=2)]
    expected = OutcomeStatus.UNKNOWN if status == 200 else OutcomeStatus.FAILED
    assert isinstance(caught.value, ResponseDecodeError if status == 200 else AuthenticationError)
    assert [o.status for o in outcomes] == [expected, expected]


@pytest.mark.parametrize("expires", ["0.001", "1e-300", 0.001])
async def test_a_token_said_to_expire_at_once_is_kept_for_the_floor(
    router: respx.MockRouter, expires: object
) -> None:
    """`Expires` of a millisecond: 40 calls share one token fetch, and all succeed."""
    tokens = router.post(TOKEN_PATH).respond(json=token_json(expires=expires))
    router.post(CALL_PATH).respond(json=call_json())
    async with session() as s:
        outcomes = [o async for o in s.create_calls([REQUEST] * 40, concurrency=10)]
    assert [o.status for o in outcomes] == [OutcomeStatus.SUCCEEDED] * 40
    assert tokens.call_count == 1


async def test_a_session_used_from_another_event_loop_sends_nothing(
    router: respx.MockRouter,
) -> None:
    """Another thread's event loop gets SessionStateError before anything is sent."""
    router.post(TOKEN_PATH).respond(json=token_json())
    calls = router.post(CALL_PATH).respond(json=call_json())
    async with session() as s:

        def from_another_loop() -> BaseException | None:
            try:
                anyio.run(s.create_call, REQUEST)
            except BaseException as exc:  # noqa: BLE001 - returned to be checked
                return exc
            return None

        error = await anyio.to_thread.run_sync(from_another_loop)
        assert isinstance(error, SessionStateError)
        assert "another event loop" in str(error)
        assert calls.call_count == 0
        assert (await s.create_call(REQUEST)).result_code == "0"  # its own loop still works


@pytest.mark.parametrize("deadline", [10**400, 1e9, float("nan")])
async def test_an_absurd_deadline_is_a_configuration_error(
    router: respx.MockRouter, deadline: float
) -> None:
    """`timeout=10**400` names the bound instead of raising OverflowError; nothing is sent."""
    router.post(TOKEN_PATH).respond(json=token_json())
    calls = router.post(CALL_PATH).respond(json=call_json())
    async with session() as s:
        with pytest.raises(ConfigurationError, match="at most 86400 seconds"):
            await s.create_call(REQUEST, timeout=deadline)
    assert calls.call_count == 0


@pytest.mark.slow
async def test_the_refresher_fetches_at_most_once_a_second(router: respx.MockRouter) -> None:
    """A token refused right after its fetch is replaced only once the clock moved a second."""
    clock = FakeClock()
    tokens = router.post(TOKEN_PATH)
    tokens.side_effect = [
        httpx.Response(200, json=token_json("tok-1")),
        httpx.Response(200, json=token_json("tok-2")),
    ]

    def answer(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"] == "Bearer tok-2":
            return httpx.Response(200, json=call_json())
        return httpx.Response(403, json={"exceptionInfo": "auth fail! expired token info"})

    router.post(CALL_PATH).mock(side_effect=answer)
    results: list[str] = []
    with anyio.fail_after(20):
        async with session(token=TokenPolicy(clock=clock)) as s:

            async def call() -> None:
                results.append((await s.create_call(REQUEST)).result_code)

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(call)
                await anyio.wait_all_tasks_blocked()
                assert tokens.call_count == 1  # tok-1 refused, the refresher waits
                clock.advance(1.0)
    assert results == ["0"]
    assert tokens.call_count == 2
