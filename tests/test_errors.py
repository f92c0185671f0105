"""The error tree by intent: one base per meaning, context on every error, pickling."""

from __future__ import annotations

import json
import pickle
from typing import Any

import httpx
import pytest
import respx

import ccmessaging_async
from ccmessaging_async import (
    AsyncSession,
    AuthenticationError,
    CallRecordsError,
    CCMessagingError,
    ConfigurationError,
    ConnectionLostError,
    CreateCallRequest,
    InvalidRequestError,
    NotCreatedError,
    NotSentError,
    OutcomeStatus,
    OutcomeUnknownError,
    RequestRejectedError,
    ResponseDecodeError,
    ResultCodeError,
    RetryPolicy,
    ServerError,
    SessionStateError,
    ThrottledError,
    ThrottlingTimeoutError,
    TokenPolicy,
    UsageError,
)
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

#: A usage error, a call certainly not created, a call that may exist, or a read (of the
#: call records) that failed and changed nothing.
BASES = (UsageError, NotCreatedError, OutcomeUnknownError, CallRecordsError)


def public_errors() -> list[type[CCMessagingError]]:
    names = ccmessaging_async.__all__
    found = [getattr(ccmessaging_async, name) for name in names]
    return [kind for kind in found if isinstance(kind, type) and issubclass(kind, CCMessagingError)]


@pytest.mark.parametrize("kind", public_errors(), ids=lambda kind: kind.__name__)
def test_every_error_has_exactly_one_meaning(kind: type[CCMessagingError]) -> None:
    """Every public error has one meaning: usage, not created, outcome unknown, or a read."""
    if kind in (CCMessagingError, *BASES):
        return
    assert sum(issubclass(kind, base) for base in BASES) == 1
    # single inheritance within the tree: at most one CCMessagingError among its bases
    assert sum(issubclass(base, CCMessagingError) for base in kind.__bases__) == 1


def test_a_rejection_never_catches_calls_that_may_exist() -> None:
    """`except RequestRejectedError` (a 4xx) is safe to answer by sending again: no 5xx."""
    assert not issubclass(ServerError, RequestRejectedError)
    assert not issubclass(ServerError, NotCreatedError)
    assert not hasattr(ccmessaging_async, "HTTPStatusError")  # never released: removed


SAMPLES: list[CCMessagingError] = [
    ConfigurationError("bad"),
    SessionStateError("closed"),
    InvalidRequestError("too long", field="called"),
    AuthenticationError("refused", status_code=403),
    NotSentError("refused"),
    ResultCodeError("30010000001", "not enabled"),
    RequestRejectedError("400", status_code=400, body="bad"),
    ThrottledError("429", status_code=429, body="slow down", retry_after=2.5),
    ThrottledError("flow control", status_code=200, code="10010000002"),
    ThrottlingTimeoutError("gave up"),
    ResponseDecodeError("not json"),
    ConnectionLostError("reset"),
    ServerError("500", status_code=500, body="oops", retry_after=None),
]


@pytest.mark.parametrize("error", SAMPLES, ids=lambda error: type(error).__name__)
def test_every_error_pickles_with_its_attributes(error: CCMessagingError) -> None:
    """An error shipped to another process comes back whole: message, attributes, context."""
    error.with_context(endpoint="createcall", attempts=2)
    error.trace_id = "req-123"
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)
    assert (copy.endpoint, copy.attempts, copy.trace_id) == ("createcall", 2, "req-123")


def test_context_is_set_once_and_the_endpoint_not_overwritten() -> None:
    """with_context keeps the first endpoint (where it failed) and the latest attempt count."""
    error = AuthenticationError("x").with_context(endpoint="tokenByAkSk", attempts=0)
    error.with_context(endpoint="createcall", attempts=1)
    assert (error.endpoint, error.attempts) == ("tokenByAkSk", 1)


# --- over every error a batch can end in ----------------------------------------------

#: called number -> what the platform does with it (a throttled call is paced and sent
#: again until it ends otherwise: tests/test_pacing.py)
ANSWERS: dict[str, Any] = {
    "1001": httpx.Response(200, json=call_json()),
    "1002": httpx.Response(200, json={"resultCode": "30010010002", "resultDesc": "vdn"}),
    "1003": httpx.Response(200, text="<html>"),
    "1004": httpx.Response(400, text="bad", headers={"X-Request-Id": "gw-1004"}),
    "1006": httpx.Response(500, text="oops", headers={"X-Request-Id": "gw-1006"}),
    "1007": httpx.Response(302, headers={"Location": "/elsewhere"}),
    "1008": httpx.ConnectError("refused"),
    "1009": httpx.ReadTimeout("slow"),
    "1010": httpx.RemoteProtocolError("closed"),
    "1012": httpx.WriteError("reset"),
    "1013": httpx.Response(200, json={"resultCode": "0"}),
}


def answer(request: httpx.Request) -> httpx.Response:
    called = json.loads(request.read())["called"]
    what = ANSWERS[called]
    if isinstance(what, Exception):
        raise what
    assert isinstance(what, httpx.Response)
    return what


async def test_outcome_status_is_one_isinstance_over_every_error(
    router: respx.MockRouter,
) -> None:
    """FAILED ⇔ NotCreatedError and UNKNOWN ⇔ OutcomeUnknownError, for every way a call ends."""
    router.post(TOKEN_PATH).respond(json=token_json())
    router.post(CALL_PATH).side_effect = answer
    requests = [CreateCallRequest(called=number) for number in ANSWERS]
    requests.append("not a request")  # type: ignore[arg-type]

    def hook(index: int, request: object) -> None:
        if index == 0:
            raise RuntimeError("journal full")

    async with AsyncSession(
        BASE_URL,
        APP_KEY,
        APP_SECRET,
        retry=RetryPolicy.for_tests(max_resends=1),
        token=TokenPolicy.for_tests(),
    ) as session:
        batch = session.create_calls([requests[0], *requests], on_send=hook, ordered=True)
        outcomes = [o async for o in batch]
    kinds = set()
    for outcome in outcomes:
        if outcome.status is OutcomeStatus.SUCCEEDED:
            assert outcome.error is None
            continue
        error = outcome.error
        assert error is not None
        kinds.add(type(error))
        assert (outcome.status is OutcomeStatus.FAILED) == isinstance(error, NotCreatedError)
        assert (outcome.status is OutcomeStatus.UNKNOWN) == isinstance(error, OutcomeUnknownError)
        assert error.attempts == outcome.attempts
    assert kinds == {
        NotSentError,
        ResultCodeError,
        ResponseDecodeError,
        RequestRejectedError,
        ServerError,
        ConnectionLostError,
        InvalidRequestError,
    }
    by_called = {o.request.called: o for o in outcomes[1:-1]}
    rejected = by_called["1004"].error
    assert isinstance(rejected, RequestRejectedError)
    assert (rejected.endpoint, rejected.attempts, rejected.trace_id) == ("createcall", 1, "gw-1004")
    assert by_called["1006"].error is not None
    assert by_called["1006"].error.trace_id == "gw-1006"
    assert by_called["1008"].attempts == 2  # not sent: re-sent once (max_resends=1)
    hooked = outcomes[0]
    assert isinstance(hooked.error, NotSentError)
    assert hooked.attempts == 0


async def test_a_refused_token_is_refreshed_once_then_not_created(
    router: respx.MockRouter,
) -> None:
    """A gateway refusing the token twice ends in AuthenticationError after two sends."""
    router.post(TOKEN_PATH).respond(json=token_json())
    router.post(CALL_PATH).respond(403, json={"exceptionInfo": "auth fail!"})
    async with AsyncSession(BASE_URL, APP_KEY, APP_SECRET, token=TokenPolicy.for_tests()) as s:
        outcomes = [o async for o in s.create_calls([CreateCallRequest(called="1")])]
    error = outcomes[0].error
    assert outcomes[0].status is OutcomeStatus.FAILED
    assert isinstance(error, AuthenticationError)
    assert (error.endpoint, error.attempts, error.status_code) == ("createcall", 2, 403)


async def test_a_token_failure_names_the_token_service(router: respx.MockRouter) -> None:
    """A call that gets no token says the token service failed, and that nothing was sent."""
    router.post(TOKEN_PATH).respond(401, headers={"X-Request-Id": "gw-token"})
    session = AsyncSession(BASE_URL, APP_KEY, APP_SECRET, token=TokenPolicy.for_tests())
    with pytest.raises(AuthenticationError) as info:
        async with session:
            pass
    assert (info.value.endpoint, info.value.attempts) == ("tokenByAkSk", 1)
    assert info.value.trace_id == "gw-token"


@pytest.mark.parametrize("value", ["x" * 200, "has space", "tab\there", "ünï"])
async def test_an_odd_request_id_is_not_kept(router: respx.MockRouter, value: str) -> None:
    """Only a short, printable, ASCII request id is kept on an error."""
    router.post(TOKEN_PATH).respond(json=token_json())
    router.post(CALL_PATH).respond(500, headers={b"X-Request-Id": value.encode()})
    async with AsyncSession(BASE_URL, APP_KEY, APP_SECRET, token=TokenPolicy.for_tests()) as s:
        with pytest.raises(ServerError) as info:
            await s.create_call(CreateCallRequest(called="1"))
    assert info.value.trace_id is None
