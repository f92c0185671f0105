"""Endpoints as data, and the one send step that applies SPEC section 3 to all of them."""

from __future__ import annotations

import collections
import json
import logging
import time
from collections.abc import Awaitable, Callable
from importlib.metadata import version as _version
from typing import Any, Generic, TypeVar

import anyio
import attrs

from . import _http
from ._auth import TokenManager
from ._config import RetryPolicy, backoff_delay
from ._converter import structure_create_call, unstructure
from ._errors import (
    MAX_ERROR_BODY,
    AuthenticationError,
    CCMessagingError,
    HTTPStatusError,
    InvalidRequestError,
    NotSentError,
    OutcomeUnknownError,
    ResponseDecodeError,
    ResultCodeError,
    ServerError,
)
from ._models import CreateCallRequest, CreateCallResult, mask_number

__all__ = ["CREATE_CALL", "USER_AGENT", "CallStats", "Endpoint", "RetryBudget", "Sender", "Slots"]

logger = logging.getLogger("ccmessaging_async")

#: A transport's own way to do one exchange without httpx's request and response objects:
#: (method, url, headers, body, timeouts, body limits) -> Answer. It raises httpx's
#: transport errors, with connect failures as ConnectError / ConnectTimeout only.
FastExchange = Callable[
    [str, str, list[tuple[str, str]], bytes, dict[str, float | None], tuple[int, int]],
    Awaitable[_http.Answer],
]

RequestT = TypeVar("RequestT")
ResultT = TypeVar("ResultT")

_MAX_SUCCESS_BODY = 64 * 1024
_BODY_LIMITS = (_MAX_SUCCESS_BODY, MAX_ERROR_BODY)
USER_AGENT = f"ccmessaging-async/{_version('ccmessaging-async')}"


class Slots:
    """A semaphore whose uncontended acquire does not yield to the event loop.

    anyio's semaphores take two scheduler checkpoints per acquire; on the hot path of every
    call that is measurable, and the send that follows yields anyway.
    """

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._waiters: collections.deque[anyio.Event] = collections.deque()

    async def acquire(self) -> None:
        """Take a slot, waiting (first come, first served) while none is free."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        granted = anyio.Event()
        self._waiters.append(granted)
        try:
            await granted.wait()
        except BaseException:
            if granted.is_set():
                self.release()  # handed over just as we were cancelled: pass it on
            else:
                self._waiters.remove(granted)
            raise

    def release(self) -> None:
        """Give a slot back, straight to the longest waiter if there is one."""
        if self._waiters:
            self._waiters.popleft().set()
        else:
            self._free += 1


@attrs.frozen
class Endpoint(Generic[RequestT, ResultT]):
    """One interface: where it lives and how its request and answer are converted.

    ``decode`` turns the decoded JSON of a 200 answer into the result, raising a
    :class:`CCMessagingError` for a business failure and anything else for a body that is
    not the documented shape. ``describe`` names a request in logs (numbers masked).
    """

    name: str
    method: str
    path: str
    request_type: type[RequestT]
    encode: Callable[[RequestT], dict[str, Any]]
    decode: Callable[[Any], ResultT]
    describe: Callable[[RequestT], str]


def _decode_create_call(data: Any) -> CreateCallResult:
    result = structure_create_call(data)
    if result.result_code != "0":
        raise ResultCodeError(result.result_code, result.result_desc)
    return result


CREATE_CALL: Endpoint[CreateCallRequest, CreateCallResult] = Endpoint(
    name="createcall",
    method="POST",
    path="/apiaccess/ccmessaging/v1/mobileagent/createcall",
    request_type=CreateCallRequest,
    encode=unstructure,
    decode=_decode_create_call,
    describe=lambda request: f"called={mask_number(request.called)}",
)


class RetryBudget:
    """Re-sends shared by a whole batch, so an outage cannot multiply the load.

    Each re-send spends one unit; each success returns a fraction of one, up to the
    capacity (botocore's retry quota works the same way).
    """

    def __init__(self, capacity: int, refill_per_success: float = 0.1) -> None:
        self.capacity = capacity
        self._available = float(capacity)
        self._refill = refill_per_success

    def __repr__(self) -> str:
        return f"<RetryBudget {self._available:.1f}/{self.capacity}>"

    def try_spend(self) -> bool:
        """Take one re-send from the budget; ``False`` when it is empty."""
        if self._available < 1:
            return False
        self._available -= 1
        return True

    def refund(self) -> None:
        """Give back part of a re-send after a success."""
        self._available = min(float(self.capacity), self._available + self._refill)


@attrs.define(slots=True)
class CallStats:
    """What one call cost: how many times it was sent."""

    attempts: int = 0


class Sender:
    """Sends endpoint requests with a token, re-sending only what SPEC section 3 allows."""

    def __init__(
        self,
        client: _http.AsyncClient,
        base_url: str,
        app_key: str,
        tokens: TokenManager,
        policy: RetryPolicy,
        *,
        max_in_flight: int | None = None,
        direct: bool = False,
        fast: FastExchange | None = None,
    ) -> None:
        self._client = client
        self._direct = direct
        self._fast = fast
        self._base_url = base_url
        self._tokens = tokens
        self._policy = policy
        self._requests = _http.RequestFactory(
            client,
            {
                "X-APP-Key": app_key,
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            },
        )
        # Requests wait here rather than in httpcore's pool, where a long wait would end in
        # PoolTimeout; a wait here has no timeout and costs nothing when a slot is free.
        self._in_flight = Slots(max_in_flight) if max_in_flight else None

    async def send(  # noqa: PLR0912, PLR0915 - SPEC section 3's decision table, kept in one place
        self,
        endpoint: Endpoint[RequestT, ResultT],
        request: RequestT,
        *,
        stats: CallStats | None = None,
        budget: RetryBudget | None = None,
        before_send: Callable[[], Awaitable[None]] | None = None,
    ) -> ResultT:
        """Send ``request`` and return its result, or raise a typed error.

        ``before_send`` is awaited once, just before the first request can be written: the
        call then holds a token and an in-flight slot. If it raises, nothing is sent and
        :class:`NotSentError` is raised.
        """
        if not isinstance(request, endpoint.request_type):
            raise InvalidRequestError(
                f"{endpoint.name} takes a {endpoint.request_type.__name__}, "
                f"not {type(request).__name__}"
            )
        if stats is None:
            stats = CallStats()
        body = json.dumps(endpoint.encode(request), ensure_ascii=False).encode()
        url = self._base_url + endpoint.path
        debug = logger.isEnabledFor(logging.DEBUG)
        label = endpoint.describe(request) if debug else ""
        resends = 0
        token_refused = False
        started = 0.0

        def log(what: str) -> None:
            if debug:
                logger.debug(
                    "%s %s %s -> %s in %.1f ms (attempt %d)",
                    endpoint.method,
                    endpoint.path,
                    label,
                    what,
                    (time.perf_counter() - started) * 1000,
                    stats.attempts,
                )

        def may_resend(*, from_budget: bool = True) -> bool:
            if resends >= self._policy.max_resends:
                return False
            return budget is None or not from_budget or budget.try_spend()

        while True:
            token = await self._tokens.get()
            stats.attempts += 1
            started = time.perf_counter()
            try:
                answer = await self._exchange(
                    endpoint, url, body, token.value, before_send if stats.attempts == 1 else None
                )
            except _http.NOT_SENT_ERRORS as exc:
                log(type(exc).__name__)
                if not may_resend():
                    raise NotSentError(
                        f"{endpoint.name} was not sent: {_http.describe_error(exc)}"
                    ) from exc
                resends += 1
                await anyio.sleep(
                    backoff_delay(resends, self._policy.backoff_initial, self._policy.backoff_max)
                )
                continue
            except OutcomeUnknownError as exc:
                log(type(exc.__cause__).__name__)
                raise
            status, content = answer.status, answer.content
            log(str(status))
            if status == 200:
                if answer.truncated:
                    raise ResponseDecodeError(
                        f"{endpoint.name} answered 200 with a body over {_MAX_SUCCESS_BODY} bytes"
                    )
                result = self._decode(endpoint, content)
                if budget is not None:
                    budget.refund()
                return result
            text = content.decode("utf-8", "replace")
            if status in (401, 403):
                if token_refused:
                    raise AuthenticationError(
                        f"the gateway refused a freshly fetched access token (HTTP {status})",
                        status_code=status,
                    )
                token_refused = True
                self._tokens.invalidate(token)
                continue
            if status == 429:
                retry_delay = _http.parse_retry_after(answer.retry_after)
                # A Retry-After is the platform saying when to come back: honouring it adds
                # no load, so it does not spend the batch's budget (max_resends still caps).
                if (
                    retry_delay is None or retry_delay <= self._policy.max_retry_after
                ) and may_resend(from_budget=retry_delay is None):
                    resends += 1
                    if retry_delay is None:
                        retry_delay = backoff_delay(
                            resends, self._policy.backoff_initial, self._policy.backoff_max
                        )
                    await anyio.sleep(retry_delay)
                    continue
                raise HTTPStatusError(
                    f"{endpoint.name} was rate limited (HTTP 429) and not re-sent",
                    status_code=status,
                    body=text,
                    retry_after=retry_delay,
                )
            # Only a 4xx says the platform refused the call; a 5xx, or any 1xx/2xx/3xx other
            # than the documented 200, leaves it unknown whether the call was created.
            error_type = HTTPStatusError if 400 <= status < 500 else ServerError
            raise error_type(
                f"{endpoint.name} answered HTTP {status}",
                status_code=status,
                body=text,
                retry_after=_http.parse_retry_after(answer.retry_after),
            )

    async def _exchange(
        self,
        endpoint: Endpoint[Any, Any],
        url: str,
        body: bytes,
        token: str,
        before_send: Callable[[], Awaitable[None]] | None,
    ) -> _http.Answer:
        """Send one request and read its body (bounded), holding an in-flight slot.

        Raises the not-sent transport errors as they are (the caller may re-send) and
        turns every other transport failure into :class:`OutcomeUnknownError`.
        """
        slots = self._in_flight
        if slots is not None:
            await slots.acquire()
        authorization = ("Authorization", "Bearer " + token)
        try:
            if before_send is not None:
                await _before_send(endpoint, before_send)
            if self._fast is not None:
                return await self._fast(
                    endpoint.method,
                    url,
                    [*self._requests.headers, authorization],
                    body,
                    self._requests.timeout,
                    _BODY_LIMITS,
                )
            return await _http.exchange(
                self._client,
                self._requests.build(endpoint.method, url, body, authorization),
                _BODY_LIMITS,
                direct=self._direct,
            )
        except _http.NOT_SENT_ERRORS:
            raise
        except _http.TransportError as exc:
            raise OutcomeUnknownError(
                f"{endpoint.name} may have reached the platform: {_http.describe_error(exc)}"
            ) from exc
        finally:
            if slots is not None:
                slots.release()

    @staticmethod
    def _decode(endpoint: Endpoint[Any, ResultT], content: bytes) -> ResultT:
        try:
            return endpoint.decode(json.loads(content))
        except CCMessagingError:
            raise
        except Exception as exc:  # noqa: BLE001 - every malformed body is the same failure
            raise ResponseDecodeError(
                f"{endpoint.name} answered 200 with a body that is not the documented JSON "
                f"({_describe_decode_error(exc)}); the call may have been created"
            ) from None


async def _before_send(
    endpoint: Endpoint[Any, Any], before_send: Callable[[], Awaitable[None]]
) -> None:
    try:
        await before_send()
    except Exception as exc:  # whatever the hook raised, nothing was sent
        raise NotSentError(
            f"{endpoint.name} was not sent: the on_send hook failed ({type(exc).__name__})"
        ) from exc


def _describe_decode_error(exc: Exception) -> str:
    import cattrs  # noqa: PLC0415 - only needed on this rare path

    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(exc))
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON at position {exc.pos}"
    return type(exc).__name__
