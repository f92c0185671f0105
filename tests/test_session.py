"""AsyncSession and createcall against respx: wire format, tokens, SPEC section 3 re-sends."""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import attrs
import httpx
import pytest
import respx

from ccmessaging_async import (
    AsyncSession,
    AuthenticationError,
    ConfigurationError,
    CreateCallRequest,
    InvalidRequestError,
    NotCreatedError,
    NotSentError,
    OutcomeUnknownError,
    RequestRejectedError,
    ResponseDecodeError,
    ResultCode,
    ResultCodeError,
    RetryPolicy,
    ServerError,
    SessionOptions,
    SessionStateError,
    ThrottledError,
    TokenPolicy,
)
from ccmessaging_async._settings import Settings
from tests._helpers import (
    APP_KEY,
    APP_SECRET,
    BASE_URL,
    CALL_PATH,
    TOKEN_PATH,
    FakeClock,
    call_json,
    reachable_reprs,
    token_json,
    tokens_in_order,
)

pytestmark = pytest.mark.anyio

REQUEST = CreateCallRequest(called="88884432", call_data="1", caller_present="95599")


def session(**kwargs: Any) -> AsyncSession:
    kwargs.setdefault("retry", RetryPolicy.for_tests())
    kwargs.setdefault("token", TokenPolicy.for_tests())
    return AsyncSession(BASE_URL, APP_KEY, APP_SECRET, **kwargs)


class ClosingTransport(httpx.AsyncHTTPTransport):
    """httpx's transport, noting when the session closes it."""

    closed = False

    async def __aexit__(self, *exc_info: Any) -> None:
        self.closed = True
        await super().__aexit__(*exc_info)


def watched(clock: FakeClock) -> TokenPolicy:
    """Token settings on a fake clock, with the default refresh backoff (in fake seconds)."""
    return TokenPolicy(clock=clock, retry_backoff_initial=0, retry_backoff_max=0)


def mock_ok(router: respx.MockRouter, token: str = "tok-1") -> tuple[respx.Route, respx.Route]:
    token_route = router.post(TOKEN_PATH).respond(json=token_json(token))
    call_route = router.post(CALL_PATH).respond(json=call_json())
    return token_route, call_route


async def test_wire_format_of_both_requests(router: respx.MockRouter) -> None:
    """Token and createcall requests carry the documented headers and exact JSON keys."""
    token_route, call_route = mock_ok(router)
    async with session(token=TokenPolicy.for_tests(lifetime=600)) as s:
        result = await s.create_call(REQUEST)
    assert result.access_code == "179080024609291"
    assert result.sip_service_address == "10.137.203.215:5063"
    assert result.call_serial_no == "1"

    token_request = token_route.calls.last.request
    assert token_request.headers["Content-Type"] == "application/json"
    assert token_request.headers["X-Token-Expire"] == "600"
    assert json.loads(token_request.content) == {"app_key": APP_KEY, "app_secret": APP_SECRET}

    call_request = call_route.calls.last.request
    assert call_request.headers["X-APP-Key"] == APP_KEY
    assert call_request.headers["Authorization"] == "Bearer tok-1"
    assert call_request.headers["Content-Type"] == "application/json"
    assert json.loads(call_request.content) == {
        "called": "88884432",
        "callData": "1",
        "callerPresent": "95599",
    }


async def test_none_fields_are_not_sent(router: respx.MockRouter) -> None:
    """A request without optional fields sends only the called number."""
    _, call_route = mock_ok(router)
    async with session() as s:
        await s.create_call(CreateCallRequest(called="88884432"))
    assert json.loads(call_route.calls.last.request.content) == {"called": "88884432"}


async def test_invalid_request_sends_nothing(router: respx.MockRouter) -> None:
    """A wrong request type is refused before anything reaches the wire."""
    _, call_route = mock_ok(router)
    async with session() as s:
        with pytest.raises(InvalidRequestError):
            await s.create_call({"called": "1"})  # type: ignore[arg-type]
    assert call_route.call_count == 0


async def test_result_code_error(router: respx.MockRouter) -> None:
    """A non-zero resultCode raises ResultCodeError with the enum member."""
    router.post(TOKEN_PATH).respond(json=token_json())
    router.post(CALL_PATH).respond(
        json={"resultCode": "30010010002", "resultDesc": "VDN unavailable"}
    )
    async with session() as s:
        with pytest.raises(ResultCodeError) as info:
            await s.create_call(REQUEST)
    assert info.value.result_code is ResultCode.VDN_UNAVAILABLE
    assert info.value.description == "VDN unavailable"


async def test_token_fetched_once_for_many_concurrent_calls(router: respx.MockRouter) -> None:
    """A thousand concurrent create_call()s share one token request."""
    token_route, call_route = mock_ok(router)
    async with session() as s, anyio.create_task_group() as tg:
        for _ in range(1000):
            tg.start_soon(s.create_call, REQUEST)
    assert token_route.call_count == 1
    assert call_route.call_count == 1000


async def test_no_stampede_when_a_token_expires_under_load(router: respx.MockRouter) -> None:
    """Many calls arriving after expiry cause exactly one new token request."""
    clock = FakeClock()
    token_route = router.post(TOKEN_PATH)
    token_route.side_effect = tokens_in_order("tok-1", "tok-2", expires="600")
    call_route = router.post(CALL_PATH).respond(json=call_json())
    async with session(token=watched(clock)) as s:
        clock.advance(601)
        async with anyio.create_task_group() as tg:
            for _ in range(500):
                tg.start_soon(s.create_call, REQUEST)
    assert token_route.call_count == 2
    assert {c.request.headers["Authorization"] for c in call_route.calls} == {"Bearer tok-2"}


async def test_refresh_ahead_of_expiry_in_the_background(router: respx.MockRouter) -> None:
    """In the advisory window calls keep the old token while the refresher fetches a new one."""
    clock = FakeClock()
    release = anyio.Event()
    answers = iter(["tok-1", "tok-2"])

    async def token_answer(request: httpx.Request) -> httpx.Response:
        value = next(answers)
        if value == "tok-2":
            await release.wait()
        return httpx.Response(200, json=token_json(value, "600"))

    token_route = router.post(TOKEN_PATH)
    token_route.side_effect = token_answer
    call_route = router.post(CALL_PATH).respond(json=call_json())
    with anyio.fail_after(5):
        async with session(token=watched(clock)) as s:
            clock.advance(500)  # advisory window of a 600 s token, before the mandatory one
            await s.create_call(REQUEST)  # not blocked although the refresh is pending
            assert token_route.call_count in (1, 2)
            release.set()
            clock.advance(75)  # mandatory window: callers wait for the refresh
            await s.create_call(REQUEST)
    auths = [c.request.headers["Authorization"] for c in call_route.calls]
    assert auths == ["Bearer tok-1", "Bearer tok-2"]
    assert token_route.call_count == 2


async def test_short_lifetime_does_not_refresh_on_every_call(router: respx.MockRouter) -> None:
    """A 60 s token is reused for calls made within its first 40 s."""
    clock = FakeClock()
    token_route, call_route = mock_ok(router)
    token_route.respond(json=token_json("tok-1", "60"))
    async with session(token=watched(clock)) as s:
        for _ in range(40):
            await s.create_call(REQUEST)
            clock.advance(1)
    assert token_route.call_count == 1
    assert call_route.call_count == 40


async def test_failed_refresh_keeps_the_old_token(router: respx.MockRouter) -> None:
    """While the old token is valid, a failing token service fails no call."""
    clock = FakeClock()
    token_route = router.post(TOKEN_PATH)
    token_route.side_effect = [
        httpx.Response(200, json=token_json("tok-1", "600")),
        *[httpx.Response(503)] * 20,
    ]
    call_route = router.post(CALL_PATH).respond(json=call_json())
    with anyio.fail_after(5):
        async with session(token=watched(clock)) as s:
            clock.advance(580)  # mandatory window: waits for one refresh attempt, which fails
            result = await s.create_call(REQUEST)
            await s.create_call(REQUEST)
    assert result.result_code == "0"
    assert {c.request.headers["Authorization"] for c in call_route.calls} == {"Bearer tok-1"}
    # one background attempt of three sends (token_attempts), then backoff: not hammered
    assert token_route.call_count == 1 + 3


async def test_expired_token_with_failing_service_is_an_auth_error(
    router: respx.MockRouter,
) -> None:
    """With the token expired and the service down, calls fail fast with AuthenticationError."""
    clock = FakeClock()
    token_route = router.post(TOKEN_PATH)
    token_route.side_effect = [
        httpx.Response(200, json=token_json("tok-1", "600")),
        *[httpx.Response(500)] * 20,
    ]
    call_route = router.post(CALL_PATH).respond(json=call_json())
    with anyio.fail_after(5):
        async with session(token=watched(clock)) as s:
            clock.advance(700)
            for _ in range(3):
                with pytest.raises(AuthenticationError):
                    await s.create_call(REQUEST)
    assert call_route.call_count == 0
    assert token_route.call_count == 1 + 3


async def test_403_refreshes_and_resends_once(router: respx.MockRouter) -> None:
    """An expired-token 403 triggers one refresh and exactly one re-send."""
    token_route = router.post(TOKEN_PATH)
    token_route.side_effect = tokens_in_order("tok-1", "tok-2")
    call_route = router.post(CALL_PATH)
    call_route.side_effect = [
        httpx.Response(403, json={"errorCode": "x", "exceptionInfo": "auth fail! expired"}),
        httpx.Response(200, json=call_json()),
    ]
    async with session() as s:
        result = await s.create_call(REQUEST)
    assert result.result_code == "0"
    auths = [c.request.headers["Authorization"] for c in call_route.calls]
    assert auths == ["Bearer tok-1", "Bearer tok-2"]


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_twice_is_an_auth_error(router: respx.MockRouter, status: int) -> None:
    """A token refused twice raises AuthenticationError after exactly two sends."""
    token_route = router.post(TOKEN_PATH)
    token_route.side_effect = tokens_in_order("tok-1", "tok-2")
    call_route = router.post(CALL_PATH).respond(status, json={"exceptionInfo": "auth fail!"})
    async with session() as s:
        with pytest.raises(AuthenticationError) as info:
            await s.create_call(REQUEST)
    assert info.value.status_code == status
    assert call_route.call_count == 2


async def test_late_403_keeps_a_token_that_was_just_refreshed(router: respx.MockRouter) -> None:
    """A 403 for an old token does not throw away the fresh token others already use."""
    token_route = router.post(TOKEN_PATH)
    token_route.side_effect = tokens_in_order("tok-1", "tok-2", "tok-3")
    first_sent = anyio.Event()
    release = anyio.Event()

    async def answer(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"] == "Bearer tok-1":
            if not first_sent.is_set():  # the first call's answer comes late
                first_sent.set()
                await release.wait()
            return httpx.Response(403, json={"exceptionInfo": "auth fail!"})
        return httpx.Response(200, json=call_json())

    call_route = router.post(CALL_PATH)
    call_route.side_effect = answer
    async with session() as s, anyio.create_task_group() as tg:
        tg.start_soon(s.create_call, REQUEST)  # will get the late 403 for tok-1
        await first_sent.wait()
        await s.create_call(REQUEST)  # tok-1 refused at once: fetches tok-2
        release.set()
    assert token_route.call_count == 2
    auths = [c.request.headers["Authorization"] for c in call_route.calls]
    assert auths.count("Bearer tok-2") == 2


async def test_connect_error_is_resent(router: respx.MockRouter) -> None:
    """A connection that could not be made is re-sent: nothing reached the platform."""
    router.post(TOKEN_PATH).respond(json=token_json())
    call_route = router.post(CALL_PATH)
    call_route.side_effect = [httpx.ConnectError("refused"), httpx.Response(200, json=call_json())]
    async with session() as s:
        result = await s.create_call(REQUEST)
    assert result.result_code == "0"
    assert call_route.call_count == 2


async def test_connect_errors_beyond_the_policy_raise_not_sent(router: respx.MockRouter) -> None:
    """Persistent connect failures end in NotSentError after 1 + max_resends tries."""
    router.post(TOKEN_PATH).respond(json=token_json())
    call_route = router.post(CALL_PATH)
    call_route.side_effect = httpx.ConnectTimeout("timed out")
    async with session(retry=RetryPolicy.for_tests(max_resends=3)) as s:
        with pytest.raises(NotSentError):
            await s.create_call(REQUEST)
    assert call_route.call_count == 4


@pytest.mark.parametrize(
    "error",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.ReadError("reset by peer"),
        httpx.WriteError("broken pipe"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ],
)
async def test_errors_after_sending_are_outcome_unknown(
    router: respx.MockRouter, error: Exception
) -> None:
    """Failures once the request may have left are reported as unknown and never re-sent."""
    router.post(TOKEN_PATH).respond(json=token_json())
    call_route = router.post(CALL_PATH)
    call_route.side_effect = error
    async with session() as s:
        with pytest.raises(OutcomeUnknownError):
            await s.create_call(REQUEST)
    assert call_route.call_count == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_is_a_status_error_with_unknown_outcome(
    router: respx.MockRouter, status: int
) -> None:
    """A 5xx raises ServerError (outcome unknown, never a NotCreatedError) after one send."""
    router.post(TOKEN_PATH).respond(json=token_json())
    call_route = router.post(CALL_PATH).respond(status, text="business failure " * 200)
    async with session() as s:
        with pytest.raises(ServerError) as info:
            await s.create_call(REQUEST)
    assert not isinstance(info.value, NotCreatedError)
    assert isinstance(info.value, OutcomeUnknownError)
    assert info.value.status_code == status
    assert len(info.value.body) <= 1024
    assert call_route.call_count == 1


@pytest.mark.parametrize("status", [202, 204, 302])
async def test_unexpected_non_error_statuses_are_unknown(
    router: respx.MockRouter, status: int
) -> None:
    """A 2xx/3xx other than 200 is not a refusal: outcome unknown, sent once."""
    router.post(TOKEN_PATH).respond(json=token_json())
    call_route = router.post(CALL_PATH).respond(status)
    async with session() as s:
        with pytest.raises(OutcomeUnknownError):
            await s.create_call(REQUEST)
    assert call_route.call_count == 1


@pytest.mark.parametrize("status", [400, 404])
async def test_4xx_is_a_status_error_not_resent(router: respx.MockRouter, status: int) -> None:
    """A 4xx (other than 401/403/429) raises RequestRejectedError after one send."""
    router.post(TOKEN_PATH).respond(json=token_json())
    call_route = router.post(CALL_PATH).respond(status, text="bad path")
    async with session() as s:
        with pytest.raises(RequestRejectedError) as info:
            await s.create_call(REQUEST)
    assert not isinstance(info.value, OutcomeUnknownError)
    assert info.value.body == "bad path"
    assert call_route.call_count == 1


async def test_429_waits_for_retry_after_and_resends(router: respx.MockRouter) -> None:
    """A 429 with Retry-After is waited out and re-sent."""
    router.post(TOKEN_PATH).respond(json=token_json())
    call_route = router.post(CALL_PATH)
    call_route.side_effect = [
        httpx.Response(429, headers={"Retry-After": "0"}),
        httpx.Response(200, json=call_json()),
    ]
    async with session() as s:
        result = await s.create_call(REQUEST)
    assert result.result_code == "0"
    assert call_route.call_count == 2


async def test_429_asking_too_long_a_wait_is_not_waited(router: respx.MockRouter) -> None:
    """A Retry-After beyond max_retry_after gives up with a ThrottledError (429) at once."""
    router.post(TOKEN_PATH).respond(json=token_json())
    call_route = router.post(CALL_PATH).respond(429, headers={"Retry-After": "3600"})
    with anyio.fail_after(5):
        async with session() as s:
            with pytest.raises(ThrottledError) as info:
                await s.create_call(REQUEST)
    assert info.value.status_code == 429
    assert info.value.retry_after == 3600
    assert call_route.call_count == 1


@pytest.mark.parametrize(
    "content",
    [b"<html>502 Bad Gateway</html>", b"", b'{"resultCode": null}', b"[1,2]", b"\xff\xfe"],
)
async def test_non_json_200_is_a_decode_error(router: respx.MockRouter, content: bytes) -> None:
    """A 200 whose body is not the documented JSON raises ResponseDecodeError (unknown)."""
    router.post(TOKEN_PATH).respond(json=token_json())
    call_route = router.post(CALL_PATH).respond(200, content=content)
    async with session() as s:
        with pytest.raises(ResponseDecodeError) as info:
            await s.create_call(REQUEST)
    assert isinstance(info.value, OutcomeUnknownError)
    assert call_route.call_count == 1


async def test_huge_200_body_is_not_read_whole(router: respx.MockRouter) -> None:
    """An oversized success body is cut off and reported, not loaded into memory."""
    router.post(TOKEN_PATH).respond(json=token_json())
    router.post(CALL_PATH).respond(200, content=b" " * (2 * 1024 * 1024))
    async with session() as s:
        with pytest.raises(ResponseDecodeError, match="over"):
            await s.create_call(REQUEST)


async def test_wrong_credentials_fail_at_start_without_hammering(
    router: respx.MockRouter,
) -> None:
    """401 from the token service raises AuthenticationError on entry after one request."""
    token_route = router.post(TOKEN_PATH).respond(401, json={"error": "bad key"})
    with pytest.raises(AuthenticationError) as info:
        async with session():
            pass
    assert info.value.status_code == 401
    assert token_route.call_count == 1


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(500),
        httpx.Response(429, headers={"Retry-After": "0"}),
        httpx.Response(200, text="<html>gateway error</html>"),
        httpx.ConnectError("refused"),
    ],
)
async def test_token_request_is_retried(router: respx.MockRouter, failure: Any) -> None:
    """The idempotent token request is retried on 5xx, 429, HTML bodies and connect errors."""
    token_route = router.post(TOKEN_PATH)
    token_route.side_effect = [failure, httpx.Response(200, json=token_json())]
    router.post(CALL_PATH).respond(json=call_json())
    async with session() as s:
        await s.create_call(REQUEST)
    assert token_route.call_count == 2


async def test_token_service_down_fails_start_in_bounded_tries(router: respx.MockRouter) -> None:
    """A token service that keeps failing ends in AuthenticationError after token_attempts."""
    token_route = router.post(TOKEN_PATH).respond(503)
    with anyio.fail_after(5), pytest.raises(AuthenticationError):
        async with session(token=TokenPolicy.for_tests(attempts=4)):
            pass
    assert token_route.call_count == 4


async def test_user_client_is_not_closed(router: respx.MockRouter) -> None:
    """A client passed in by the user stays open after the session closes."""
    mock_ok(router)
    async with httpx.AsyncClient() as client:
        async with session(client=client) as s:
            await s.create_call(REQUEST)
        assert not client.is_closed
    assert client.is_closed


async def test_own_client_is_closed_and_no_task_left(router: respx.MockRouter) -> None:
    """Closing stops the refresher and closes the pool: no task is left running."""
    mock_ok(router)
    before = {task.id for task in anyio.get_running_tasks()}
    transport = ClosingTransport()
    async with session(transport=transport) as s:
        await s.create_call(REQUEST)
        during = {task.name for task in anyio.get_running_tasks() if task.id not in before}
    after = {task.id for task in anyio.get_running_tasks()} - before
    assert any("refresher" in (name or "") for name in during)
    assert after == set()
    assert transport.closed


async def test_session_state_errors(router: respx.MockRouter) -> None:
    """Using an unopened or closed session, or opening one twice, raises SessionStateError."""
    mock_ok(router)
    s = session()
    with pytest.raises(SessionStateError, match="async with"):
        await s.create_call(REQUEST)
    async with s:
        pass
    with pytest.raises(SessionStateError, match="closed"):
        await s.create_call(REQUEST)
    with pytest.raises(SessionStateError):
        async with s:
            pass


async def test_body_exceptions_cancel_cleanly(router: respx.MockRouter) -> None:
    """An exception in the body propagates and the session still closes."""
    mock_ok(router)
    transport = ClosingTransport()
    with pytest.raises(KeyError):
        async with session(transport=transport):
            raise KeyError("boom")
    assert transport.closed


async def test_unclosed_session_warns(router: respx.MockRouter) -> None:
    """A session left open emits a ResourceWarning when collected."""
    mock_ok(router)
    s = session()
    await s.__aenter__()
    try:
        with pytest.warns(ResourceWarning, match="not closed"):
            s.__del__()  # what the garbage collector calls on an abandoned session
    finally:
        await s.aclose()


def test_from_env_reads_the_three_variables() -> None:
    """from_env builds a session from CCMESSAGING_* variables."""
    s = AsyncSession.from_env(
        {
            "CCMESSAGING_BASE_URL": BASE_URL + "/",
            "CCMESSAGING_APP_KEY": APP_KEY,
            "CCMESSAGING_APP_SECRET": APP_SECRET,
        }
    )
    assert s.base_url == BASE_URL


@pytest.mark.parametrize(
    "missing", ["CCMESSAGING_BASE_URL", "CCMESSAGING_APP_KEY", "CCMESSAGING_APP_SECRET"]
)
def test_from_env_names_the_missing_variable(missing: str) -> None:
    """A missing variable is named in the error."""
    env = {
        "CCMESSAGING_BASE_URL": BASE_URL,
        "CCMESSAGING_APP_KEY": APP_KEY,
        "CCMESSAGING_APP_SECRET": APP_SECRET,
    }
    del env[missing]
    with pytest.raises(ConfigurationError, match=missing):
        AsyncSession.from_env(env)


@pytest.mark.parametrize(
    "url",
    ["http://service.besclouds.com", "ftp://127.0.0.1", "", "https://", "https://h/?q=1"],
)
def test_unsafe_or_bad_base_urls_are_refused(url: str) -> None:
    """Plain http to a remote host and malformed URLs are configuration errors."""
    with pytest.raises(ConfigurationError):
        AsyncSession(url, APP_KEY, APP_SECRET)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost", "http://[::1]:1"])
def test_plain_http_to_loopback_is_allowed(url: str) -> None:
    """Loopback needs no TLS (the emulator)."""
    assert AsyncSession(url, APP_KEY, APP_SECRET).base_url == url


def test_plain_http_to_remote_with_explicit_opt_in() -> None:
    """allow_insecure_http=True lets a user reach a plain-http gateway on purpose."""
    url = "http://gateway.internal"
    assert AsyncSession(url, APP_KEY, APP_SECRET, allow_insecure_http=True).base_url == url


@pytest.mark.parametrize("lifetime", [0, -1, 3601])
def test_token_lifetime_is_capped(lifetime: float) -> None:
    """A lifetime outside (0, 3600] is refused."""
    with pytest.raises(ConfigurationError):
        TokenPolicy(lifetime=lifetime)


async def test_secrets_never_in_reprs_errors_or_logs(
    router: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """No repr, str, exception message or DEBUG log line holds the secret or a token."""
    caplog.set_level(logging.DEBUG, logger="ccmessaging_async")
    token_route = router.post(TOKEN_PATH)
    token_route.side_effect = tokens_in_order("tok-AAAA-1111", "tok-BBBB-2222")
    call_route = router.post(CALL_PATH)
    call_route.side_effect = [
        httpx.Response(403, json={"exceptionInfo": "auth fail!"}),
        httpx.Response(403, json={"exceptionInfo": "auth fail!"}),
        httpx.Response(500, text="oops"),
        httpx.Response(200, text="not json"),
        httpx.ReadTimeout("slow"),
        httpx.Response(200, json={"resultCode": "30010000001", "resultDesc": "x"}),
    ]
    texts: list[str] = []
    async with session() as s:
        texts += [str(s), *reachable_reprs(s)]
        for _ in range(5):
            try:
                await s.create_call(REQUEST)
            except Exception as exc:  # noqa: BLE001 - every error type is inspected
                texts += [str(exc), repr(exc), repr(exc.__cause__)]
    texts += [record.getMessage() for record in caplog.records]
    blob = "\n".join(texts)
    for secret in (APP_SECRET, "tok-AAAA-1111", "tok-BBBB-2222", "88884432"):
        assert secret not in blob
    assert "8888****32" in blob  # numbers are masked in DEBUG lines


def test_both_constructors_take_the_settings_the_settings_object_holds() -> None:
    """One list of settings: SessionOptions (the keywords) and Settings (defaults, checks)."""
    held = {field.alias for field in attrs.fields(Settings) if field.init}
    assert held - {"base_url", "app_key", "app_secret"} == SessionOptions.__optional_keys__
    assert SessionOptions.__required_keys__ == frozenset()


def test_a_misspelt_setting_is_a_type_error_naming_it() -> None:
    """`retires=3` fails as a misspelt argument does, in both constructors."""
    environ = {
        "CCMESSAGING_BASE_URL": "https://cc.example.com",
        "CCMESSAGING_APP_KEY": "key",
        "CCMESSAGING_APP_SECRET": "secret",
    }
    misspelt = "unexpected keyword argument 'retires'"
    with pytest.raises(TypeError, match=misspelt):
        AsyncSession("https://cc.example.com", "key", "secret", retires=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=misspelt):
        AsyncSession.from_env(environ, retires=3)  # type: ignore[call-arg]


def test_the_settings_hide_the_app_secret() -> None:
    """A settings object in a traceback's locals shows no secret."""
    settings = Settings.of("https://cc.example.com", "key", "s3cret-value")
    assert "s3cret-value" not in repr(settings)
