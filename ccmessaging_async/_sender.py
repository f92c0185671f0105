"""The send loop: token, slot, exchange, then what SPEC section 3 says comes next.

It reads as the rule it keeps: send; turn what came back into a result or a typed error
(:mod:`._classify`); ask :func:`._retry.decide` whether that error may be sent again; wait
and send again, or raise it.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar

import anyio
import attrs

from . import _http
from ._classify import classify_answer, classify_deadline, classify_failure
from ._endpoints import Endpoint
from ._errors import (
    MAX_ERROR_BODY,
    AuthenticationError,
    CCMessagingError,
    ConnectionLostError,
    InvalidRequestError,
    NotSentError,
    SessionStateError,
    TokenServiceUnreachableError,
)
from ._exchange import Exchange
from ._retry import Resend, RetryBudget, RetryPolicy, decide
from ._slots import Slots
from ._telemetry import CallWatch, Observer
from ._token_manager import Token, TokenManager
from ._transports.base import Answer, BodyLimits, HiddenHeaders
from ._transports.httpx_transport import merged_headers
from ._transports.record import ExchangeRecord, recording
from ._version import __version__

__all__ = ["BODY_LIMITS", "USER_AGENT", "Delivered", "Sender"]

logger = logging.getLogger("ccmessaging_async")

ResultT = TypeVar("ResultT")
RequestT = TypeVar("RequestT")

#: The answers are small JSON documents: a 200's body is bounded, an error's more tightly.
BODY_LIMITS = BodyLimits(success=64 * 1024, error=MAX_ERROR_BODY)
USER_AGENT = f"ccmessaging-async/{__version__}"


@attrs.frozen(slots=True)
class Delivered(Generic[ResultT]):
    """A result, and how many sends it took."""

    result: ResultT
    attempts: int


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
        exchange: Exchange,
        extra_headers: Mapping[str, str] | None = None,
        observer: Observer | None = None,
    ) -> None:
        self._exchange_with = exchange
        self._observer = observer if observer is not None else Observer()
        self._base_url = base_url
        self._tokens = tokens
        self._policy = policy
        self._headers = merged_headers(
            client,
            {
                **(extra_headers or {}),
                "X-APP-Key": app_key,
                "Content-Type": "application/json",
                "Accept": "application/json",
                # The answers are small JSON: compression would only open the door to
                # decompression bombs. Bodies are never decoded (see read_bounded).
                "Accept-Encoding": "identity",
                "User-Agent": USER_AGENT,
            },
        )
        # Requests wait here rather than in httpcore's pool, where a long wait would end in
        # PoolTimeout; a wait here has no timeout and costs nothing when a slot is free.
        bound = exchange.max_in_flight
        self._in_flight = Slots(bound) if bound else None
        self._closed = False
        self._deadline = _http.exchange_deadline(client.timeout)

    @property
    def observer(self) -> Observer:
        """Where this sender's calls are reported (spans and metrics)."""
        return self._observer

    def close(self) -> None:
        """Send nothing more: calls waiting for a token or a slot get SessionStateError."""
        self._closed = True
        self._tokens.close()
        if self._in_flight is not None:
            self._in_flight.close()

    async def send(
        self,
        endpoint: Endpoint[RequestT, ResultT],
        request: RequestT,
        *,
        budget: RetryBudget | None = None,
        before_send: Callable[[], Awaitable[None]] | None = None,
        deadline: float | None = None,
        paced: bool = False,
        on_not_sent: Callable[[], object] | None = None,
    ) -> Delivered[ResultT]:
        """Send ``request`` and return its result, or raise a typed error.

        ``before_send`` is awaited once, just before the first request can be written: the
        call then holds a token and an in-flight slot. If it raises, nothing is sent and
        :class:`NotSentError` is raised (the one it raised, or one saying so). ``paced``:
        a throttled answer is raised at once, for the batch to pace (see ``decide``);
        ``on_not_sent`` is called for each send that could not leave (a throttle signal).
        ``deadline`` (seconds) bounds the whole call,
        re-sends included: when it passes, :class:`NotSentError` if the request in flight
        provably never left completely (or none was in flight), else
        :class:`ConnectionLostError`; nothing is sent after it.
        """
        call = _Call.prepare(endpoint, request, self._base_url)
        progress = _Progress()
        with self._observer.call(endpoint, request) as watch:
            options = _SendOptions(budget, before_send, paced, on_not_sent)
            if deadline is None:
                delivered = await self._send(call, progress, options, watch)
            else:
                with anyio.move_on_after(deadline):
                    await self._send(call, progress, options, watch)
                if progress.delivered is None:
                    raise self._past_deadline(call, progress, deadline)
                delivered = progress.delivered
            result_code = getattr(delivered.result, "result_code", None)
            watch.finished(
                attempts=delivered.attempts,
                result_code=result_code if isinstance(result_code, str) else None,
            )
            return delivered

    def _past_deadline(
        self, call: _Call[Any], progress: _Progress, deadline: float
    ) -> CCMessagingError:
        name = call.endpoint.name
        record = progress.exchange
        if record is None or (self._exchange_with.tracks_writes and record.unsent):
            error: CCMessagingError = NotSentError(
                f"{name} was not sent: its deadline of {deadline:g}s passed first"
            )
            attempts = progress.sent - (record is not None)
        else:
            error = ConnectionLostError(
                f"{name} got no answer within its deadline of {deadline:g}s; it may have "
                "reached the platform"
            )
            attempts = progress.sent
        return error.with_context(endpoint=name, attempts=attempts)

    async def _send(
        self, call: _Call[ResultT], progress: _Progress, options: _SendOptions, watch: CallWatch
    ) -> Delivered[ResultT]:
        attempts = resends = 0
        token_refreshed = False
        budget = options.budget
        while True:
            token = await self._token(attempts)
            attempts += 1
            hook = options.before_send if attempts == 1 else None
            outcome = await self._attempt(
                call, token, attempt=attempts, before_send=hook, progress=progress
            )
            if not isinstance(outcome, CCMessagingError):
                self._tokens.accepted(token)
                if budget is not None:
                    budget.refund()
                delivered = Delivered(outcome, attempts)
                progress.delivered = delivered
                return delivered
            if isinstance(outcome, AuthenticationError):  # the gateway refused the token
                self._tokens.refused(token)
            if isinstance(outcome, NotSentError) and options.on_not_sent is not None:
                options.on_not_sent()
            step = decide(
                outcome,
                resends=resends,
                token_refreshed=token_refreshed,
                budget_left=budget is None or budget.can_spend,
                policy=self._policy,
                draw=random.random(),  # noqa: S311 - jitter, not cryptography
                paced=options.paced,
                idempotent=call.endpoint.idempotent,
            )
            if not isinstance(step, Resend):
                if (
                    budget is not None
                    and not budget.can_spend
                    and self._would_resend(outcome, resends, token_refreshed, options.paced)
                ):  # (a batch's budget: createcall only, never idempotent)
                    watch.budget_refused(outcome)
                raise step.with_context(endpoint=call.endpoint.name, attempts=attempts)
            watch.resent(outcome, refresh_token=step.refresh_token)
            if step.spends_budget and budget is not None:
                budget.spend()
            if step.refresh_token:
                token_refreshed = True
            else:
                resends += 1
            await anyio.sleep(step.delay)

    def _would_resend(
        self, error: CCMessagingError, resends: int, token_refreshed: bool, paced: bool
    ) -> bool:
        """Whether ``error`` would have been sent again had the budget allowed it."""
        step = decide(
            error,
            resends=resends,
            token_refreshed=token_refreshed,
            budget_left=True,
            policy=self._policy,
            draw=0.0,
            paced=paced,
        )
        return isinstance(step, Resend)

    async def _token(self, attempts: int) -> Token:
        try:
            return await self._tokens.get()
        except (AuthenticationError, TokenServiceUnreachableError) as error:
            error.with_context(attempts=attempts)
            raise

    async def _attempt(
        self,
        call: _Call[ResultT],
        token: Token,
        *,
        attempt: int,
        before_send: Callable[[], Awaitable[None]] | None,
        progress: _Progress,
    ) -> ResultT | CCMessagingError:
        """One send: the result, or the typed error for what happened."""
        started = time.perf_counter()
        # A cancellation (the caller's deadline) leaves ``progress.exchange`` set: what the
        # exchange it cut short had written decides what the caller is told.
        try:
            answer = await self._exchange(call, token, before_send, progress)
        except _http.RequestError as exc:
            progress.exchange = None
            call.log(type(exc).__name__, started, attempt)
            return classify_failure(call.endpoint, exc, call.url)
        except TimeoutError:
            record, progress.exchange = progress.exchange, None
            call.log("deadline", started, attempt)
            unsent = self._exchange_with.tracks_writes and record is not None and record.unsent
            return classify_deadline(call.endpoint, self._deadline, unsent=unsent)
        progress.exchange = None
        call.log(str(answer.status), started, attempt)
        return classify_answer(call.endpoint, answer, redact=(token.value,))

    async def _exchange(
        self,
        call: _Call[Any],
        token: Token,
        before_send: Callable[[], Awaitable[None]] | None,
        progress: _Progress,
    ) -> Answer:
        """Send one request and read its bounded body, holding an in-flight slot."""
        slots = self._in_flight
        if slots is not None:
            await slots.acquire()
        try:
            if before_send is not None:
                await _before_send(call.endpoint, before_send)
            if self._closed:
                raise SessionStateError("the session was closed before this call could be sent")
            method = call.endpoint.method
            # No local holds the token as plain text (see HiddenHeaders).
            headers = HiddenHeaders([*self._headers, ("Authorization", "Bearer " + token.value)])
            with anyio.fail_after(self._deadline), recording() as progress.exchange:
                progress.sent += 1
                return await self._exchange_with.exchange(
                    method, call.url, headers, call.body, BODY_LIMITS
                )
        finally:
            if slots is not None:
                slots.release()


@attrs.frozen(slots=True)
class _SendOptions:
    """How one call is sent beyond its request: see :meth:`Sender.send`."""

    budget: RetryBudget | None
    before_send: Callable[[], Awaitable[None]] | None
    paced: bool
    on_not_sent: Callable[[], object] | None


@attrs.define(slots=True)
class _Progress:
    """How far one call got: exchanges begun, and the one on the wire right now."""

    sent: int = 0
    exchange: ExchangeRecord | None = None
    #: The result, once there is one (a deadline passing after it changes nothing).
    delivered: Delivered[Any] | None = None


@attrs.frozen(slots=True)
class _Call(Generic[ResultT]):
    """One request, encoded once for all its sends."""

    endpoint: Endpoint[Any, ResultT]
    url: str
    body: bytes = attrs.field(repr=False)  # holds the called number
    #: The request as named in DEBUG logs (numbers masked); None when DEBUG is off.
    label: str | None

    @classmethod
    def prepare(
        cls, endpoint: Endpoint[RequestT, ResultT], request: RequestT, base_url: str
    ) -> _Call[ResultT]:
        if not isinstance(request, endpoint.request_type):
            raise InvalidRequestError(
                f"{endpoint.name} takes a {endpoint.request_type.__name__}, "
                f"not {type(request).__name__}"
            ).with_context(endpoint=endpoint.name)
        body = json.dumps(endpoint.encode(request), ensure_ascii=False).encode()
        label = endpoint.describe(request) if logger.isEnabledFor(logging.DEBUG) else None
        return cls(endpoint, base_url + endpoint.path, body, label)

    def log(self, what: str, started: float, attempt: int) -> None:
        if self.label is not None:
            logger.debug(
                "%s %s %s -> %s in %.1f ms (attempt %d)",
                self.endpoint.method,
                self.endpoint.path,
                self.label,
                what,
                (time.perf_counter() - started) * 1000,
                attempt,
            )


async def _before_send(
    endpoint: Endpoint[Any, Any], before_send: Callable[[], Awaitable[None]]
) -> None:
    try:
        await before_send()
    except NotSentError:
        raise  # it says why itself
    except Exception as exc:  # whatever the hook raised, nothing was sent
        error = NotSentError(
            f"{endpoint.name} was not sent: the on_send hook failed ({type(exc).__name__})"
        )
        raise error.with_context(endpoint=endpoint.name, attempts=0) from exc
