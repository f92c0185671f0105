"""The batch engine: bounded concurrency, a pace that follows throttling, one outcome per input.

A throttled call (SPEC section 4) was not created: it waits for the batch's pace
(:class:`Pacing`, which slows the whole batch down) and goes again, as many times as it
takes, paid from no retry budget. The budget is left for outages.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
)

import anyio
import anyio.abc

from ._config import check_deadline
from ._endpoints import CREATE_CALL
from ._errors import (
    ConfigurationError,
    NotCreatedError,
    NotSentError,
    OutcomeUnknownError,
    ResultCodeError,
    ThrottledError,
    ThrottlingTimeoutError,
    UsageError,
)
from ._models import CreateCallRequest
from ._outcomes import CallOutcome, OutcomeStatus, status_of
from ._pacing import Pacing
from ._retry import RetryBudget
from ._sender import Sender

__all__ = ["check_batch_options", "run_batch"]


def check_batch_options(concurrency: int, rate: float | None, retry_budget: int | None) -> None:
    """Raise :class:`ConfigurationError` for options no batch can run with."""
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise ConfigurationError(f"concurrency must be an int >= 1, got {concurrency!r}")
    if rate is not None and not (isinstance(rate, int | float) and 0 < rate < math.inf):
        raise ConfigurationError(f"rate must be > 0 calls per second, or None, got {rate!r}")
    if retry_budget is not None and (
        not isinstance(retry_budget, int) or isinstance(retry_budget, bool) or retry_budget < 0
    ):
        raise ConfigurationError(f"retry_budget must be an int >= 0, got {retry_budget!r}")


class _InputFailed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


async def _aiter(
    requests: Iterable[CreateCallRequest] | AsyncIterable[CreateCallRequest],
) -> AsyncGenerator[CreateCallRequest, None]:
    if isinstance(requests, AsyncIterable):
        async for request in requests:
            yield request
    else:
        for request in requests:
            yield request


class _Batch:
    """Workers that each pull one input, send it and hand over its outcome.

    Finished outcomes wait in a buffer of ``concurrency`` places, and a worker whose outcome
    finds the buffer full waits before pulling again, so at most ``2 * concurrency`` inputs
    are ever pulled ahead of the consumer; no task is spawned per input. In ordered mode
    the consumer holds finished outcomes until their turn, so workers also stop pulling
    while the input ``2 * concurrency`` past the next one owed is reached.
    """

    def __init__(
        self,
        sender: Sender,
        requests: Iterable[CreateCallRequest] | AsyncIterable[CreateCallRequest],
        *,
        concurrency: int,
        pacing: Pacing,
        retry_budget: int | None,
        on_send: Callable[[int, CreateCallRequest], object] | None,
        ordered: bool,
        call_timeout: float | None = None,
    ) -> None:
        check_batch_options(concurrency, None, retry_budget)
        self._call_timeout = check_deadline("call_timeout", call_timeout)
        self._sender = sender
        self._requests = requests
        self._concurrency = concurrency
        self._pacing = pacing
        self._observer = sender.observer
        self._observer.watch_pacing(pacing)
        self._budget = RetryBudget(
            retry_budget if retry_budget is not None else max(10, concurrency)
        )
        self._on_send = on_send
        self._next_index = 0
        self._exhausted = False
        self._failure: Exception | None = None
        self._workers = 0
        self._pulling: anyio.Event | None = None  # set when the anext() under way returns
        self._window = 2 * concurrency if ordered else None
        self._owed = 0  # ordered mode: the index the consumer waits for next
        self._room = anyio.Event()
        self.send_stream, self.receive_stream = anyio.create_memory_object_stream[
            CallOutcome | _InputFailed
        ](max_buffer_size=concurrency)
        self.scope = anyio.CancelScope()
        self.finished = anyio.Event()

    async def feed(self) -> None:
        try:
            with self.scope:
                async with self.send_stream:
                    if isinstance(self._requests, AsyncIterable):
                        async with contextlib.aclosing(_aiter(self._requests)) as inputs:
                            await self._run_workers(self._async_puller(inputs))
                    else:
                        await self._run_workers(self._sync_puller(iter(self._requests)))
                    if self._failure is None and self._pacing.gave_up:
                        self._failure = ThrottlingTimeoutError(
                            f"the platform accepted no call for "
                            f"{self._pacing.max_throttle_wait:g}s while throttling: the batch "
                            f"stopped after {self._next_index} inputs; the rest were not taken up"
                        )
                    if self._failure is not None:
                        await self.send_stream.send(_InputFailed(self._failure))
        finally:
            self.finished.set()

    def _sync_puller(
        self, inputs: Iterator[CreateCallRequest]
    ) -> Callable[[], Awaitable[tuple[int, CreateCallRequest] | None]]:
        async def take() -> CreateCallRequest:
            await self._wait_for_room()
            try:
                return next(inputs)
            except StopIteration:  # a coroutine must not raise StopIteration (PEP 479)
                raise StopAsyncIteration from None

        return lambda: self._pull(take)

    def _async_puller(
        self, inputs: AsyncIterator[CreateCallRequest]
    ) -> Callable[[], Awaitable[tuple[int, CreateCallRequest] | None]]:
        async def take() -> CreateCallRequest:
            # One anext() at a time. Not a lock: a lock hands itself to its waiters one
            # loop turn each, so after an anext() that had to wait (a group of rows read
            # in a thread) the workers would go out one turn apart. An event lets them all
            # go at once, and an anext() whose item is ready does not suspend.
            while (pulling := self._pulling) is not None:
                await pulling.wait()
            self._pulling = mine = anyio.Event()
            try:
                await self._wait_for_room()
                return await anext(inputs)
            finally:
                self._pulling = None
                mine.set()

        return lambda: self._pull(take)

    def delivered(self, next_index: int) -> None:
        """Ordered mode: the consumer has every outcome before ``next_index``."""
        self._owed = next_index
        self._room.set()
        self._room = anyio.Event()

    async def _wait_for_room(self) -> None:
        while self._window is not None and self._next_index >= self._owed + self._window:
            await self._room.wait()

    async def _pull(
        self, take: Callable[[], Awaitable[CreateCallRequest]]
    ) -> tuple[int, CreateCallRequest] | None:
        if self._exhausted or self._pacing.stopped:
            return None
        try:
            request = await take()
        except StopAsyncIteration:
            self._exhausted = True
            return None
        except Exception as exc:  # noqa: BLE001 - raised to the consumer at the end
            self._failure, self._exhausted = exc, True
            return None
        return self._numbered(request)

    def _numbered(self, request: CreateCallRequest) -> tuple[int, CreateCallRequest]:
        index = self._next_index
        self._next_index += 1
        return index, request

    async def _run_workers(
        self, pull: Callable[[], Awaitable[tuple[int, CreateCallRequest] | None]]
    ) -> None:
        async with anyio.create_task_group() as workers:
            self._workers = 1
            workers.start_soon(self._worker, pull, workers)

    async def _worker(
        self,
        pull: Callable[[], Awaitable[tuple[int, CreateCallRequest] | None]],
        workers: anyio.abc.TaskGroup,
    ) -> None:
        while (item := await pull()) is not None:
            # Grow the pool one worker per input pulled, up to the concurrency: a short
            # input never starts more workers than it has items.
            if self._workers < self._concurrency:
                self._workers += 1
                workers.start_soon(self._worker, pull, workers)
            outcome = await self._one(*item)
            try:
                # Without a scheduler round trip when the buffer has room (the common case).
                self.send_stream.send_nowait(outcome)
            except anyio.WouldBlock:
                try:
                    await self.send_stream.send(outcome)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    return  # the consumer is gone; the batch is being cancelled
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                return

    async def _one(self, index: int, request: CreateCallRequest) -> CallOutcome:
        started = time.perf_counter()
        attempts = 0
        sent = [started]  # when the send after the pace's turn began

        async def before_send() -> None:
            await self._before_send(index, request)
            sent[0] = time.perf_counter()

        while True:
            try:
                delivered = await self._sender.send(
                    CREATE_CALL,
                    request,
                    budget=self._budget,
                    before_send=before_send,
                    deadline=self._time_left(started),
                    paced=True,
                    on_not_sent=self._pacing.throttled,
                )
            except ThrottledError as exc:
                attempts += exc.attempts
                paused = self._pacing.throttled(exc.retry_after)
                self._observer.throttled(paused=paused)
                if exc.retry_after:
                    await self._pacing.hold(exc.retry_after)
                if self._pacing.stopped or self._time_left(started) == 0:
                    return _failure(index, request, exc, started, attempts)
                continue  # not created: it waits for the pace and goes again
            except (NotCreatedError, OutcomeUnknownError) as exc:
                if isinstance(exc, ResultCodeError):  # the platform took it, and said no
                    self._pacing.accepted(time.perf_counter() - sent[0])
                return _failure(index, request, exc, started, attempts + exc.attempts)
            except UsageError as exc:  # closed while it waited, or a certificate: not sent
                unsent = NotSentError(f"createcall was not sent: {exc}")
                unsent.__cause__ = exc
                error = unsent.with_context(endpoint=CREATE_CALL.name, attempts=0)
                return _failure(index, request, error, started, attempts)
            except Exception as exc:  # noqa: BLE001 - every input must end with an outcome
                # Nothing else should come out of a send; if it does, assume the worst.
                unknown = OutcomeUnknownError(f"unexpected {type(exc).__name__} while sending")
                unknown.__cause__ = exc
                return _failure(index, request, unknown, started, attempts)
            self._pacing.accepted(time.perf_counter() - sent[0])
            return CallOutcome(
                index=index,
                request=request,
                status=OutcomeStatus.SUCCEEDED,
                result=delivered.result,
                attempts=attempts + delivered.attempts,
                latency=time.perf_counter() - started,
            )

    def _time_left(self, started: float) -> float | None:
        """Return what is left of ``call_timeout`` (``None``: no deadline; 0: none left)."""
        if self._call_timeout is None:
            return None
        return max(0.0, self._call_timeout - (time.perf_counter() - started))

    async def _before_send(self, index: int, request: CreateCallRequest) -> None:
        """Wait for the pace's turn, then run the user's hook: the last moment before a send."""
        if not await self._pacing.admit():
            raise NotSentError(
                "createcall was not sent: the batch stopped dialling before its turn"
            ).with_context(endpoint=CREATE_CALL.name, attempts=0)
        if self._on_send is not None:
            await _run_hook(self._on_send, index, request)


async def run_batch(
    sender: Sender,
    task_group: anyio.abc.TaskGroup,
    requests: Iterable[CreateCallRequest] | AsyncIterable[CreateCallRequest],
    *,
    concurrency: int,
    pacing: Pacing,
    ordered: bool,
    retry_budget: int | None,
    on_send: Callable[[int, CreateCallRequest], object] | None,
    call_timeout: float | None = None,
) -> AsyncGenerator[CallOutcome, None]:
    """Run ``requests`` through ``sender``; yield one outcome per input.

    The work runs in ``task_group`` (the session's), not inside this generator, so that a
    consumer may stop iterating at any point: closing the generator cancels the work and
    waits for it to end.
    """
    batch = _Batch(
        sender,
        requests,
        concurrency=concurrency,
        pacing=pacing,
        retry_budget=retry_budget,
        on_send=on_send,
        ordered=ordered,
        call_timeout=call_timeout,
    )
    task_group.start_soon(batch.feed, name="ccmessaging-batch")
    pending: dict[int, CallOutcome] = {}
    next_index = 0
    receive = batch.receive_stream
    try:
        while True:
            try:
                item = receive.receive_nowait()
            except anyio.WouldBlock:
                try:
                    item = await receive.receive()
                except anyio.EndOfStream:
                    break
            except anyio.EndOfStream:
                break
            if isinstance(item, _InputFailed):
                raise item.error
            if not ordered:
                yield item
                continue
            pending[item.index] = item
            while next_index in pending:
                yield pending.pop(next_index)
                next_index += 1
                batch.delivered(next_index)
    finally:
        batch.scope.cancel()
        with anyio.CancelScope(shield=True):
            await batch.finished.wait()
        batch.receive_stream.close()


async def _run_hook(
    hook: Callable[[int, CreateCallRequest], object], index: int, request: CreateCallRequest
) -> None:
    result = hook(index, request)
    if inspect.isawaitable(result):
        await result


def _failure(
    index: int,
    request: CreateCallRequest,
    error: NotCreatedError | OutcomeUnknownError,
    started: float,
    attempts: int,
) -> CallOutcome:
    return CallOutcome(
        index=index,
        request=request,
        status=status_of(error),
        error=error,
        attempts=attempts,
        latency=time.perf_counter() - started,
    )
