"""The batch engine on the in-process emulator (ASGITransport), on asyncio and trio."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

import anyio
import httpx
import pytest

from ccmessaging_async import (
    AsyncSession,
    CallOutcome,
    ConfigurationError,
    CreateCallRequest,
    InvalidRequestError,
    OutcomeStatus,
    OutcomeUnknownError,
    ResultCode,
    ResultCodeError,
    RetryPolicy,
    TokenPolicy,
)
from ccmessaging_async.testing import DropPoint, Emulator
from tests._helpers import FakeClock

pytestmark = pytest.mark.anyio


def numbers(n: int) -> list[str]:
    return [f"1380000{i:04d}" for i in range(n)]


def in_process(emulator: Emulator, token: TokenPolicy | None = None) -> AsyncSession:
    return AsyncSession(
        "http://127.0.0.1",
        emulator.app_key,
        emulator.app_secret,
        transport=httpx.ASGITransport(app=emulator),
        retry=RetryPolicy.for_tests(),
        token=token or TokenPolicy.for_tests(),
    )


async def collect(session: AsyncSession, requests: object, **kwargs: object) -> list[CallOutcome]:
    return [o async for o in session.create_calls(requests, **kwargs)]  # type: ignore[arg-type]


async def test_every_input_gets_exactly_one_outcome() -> None:
    """A batch yields one outcome per input, with its index and request."""
    emulator = Emulator()
    requests = [CreateCallRequest(called=n) for n in numbers(300)]
    async with in_process(emulator) as session:
        outcomes = await collect(session, requests, concurrency=20)
    assert sorted(o.index for o in outcomes) == list(range(300))
    assert all(o.ok and o.result is not None and o.attempts == 1 for o in outcomes)
    assert all(outcomes[i].request is requests[outcomes[i].index] for i in range(300))
    assert emulator.token_requests == 1
    assert len(emulator.calls) == 300
    assert emulator.duplicates() == {}


async def test_one_failure_does_not_abort_the_batch() -> None:
    """Business failures and bad inputs become failed outcomes; the rest succeed."""
    emulator = Emulator()
    emulator.result_codes["13800000003"] = ResultCode.VDN_UNAVAILABLE.value
    requests: list[object] = [CreateCallRequest(called=n) for n in numbers(10)]
    requests[5] = "not a request"
    async with in_process(emulator) as session:
        outcomes = {o.index: o for o in await collect(session, requests, concurrency=4)}
    assert outcomes[3].status is OutcomeStatus.FAILED
    assert isinstance(outcomes[3].error, ResultCodeError)
    assert outcomes[5].status is OutcomeStatus.FAILED
    assert isinstance(outcomes[5].error, InvalidRequestError)
    assert outcomes[5].attempts == 0
    assert sum(o.ok for o in outcomes.values()) == 8


async def test_dropped_connection_after_recording_is_unknown_and_not_resent() -> None:
    """A call the platform created before the connection dropped is unknown, sent once."""
    emulator = Emulator()
    emulator.drop_connection("13800000002", DropPoint.AFTER_RECORD)
    async with in_process(emulator) as session:
        outcomes = {o.index: o for o in await collect(session, _requests(5), concurrency=5)}
    assert outcomes[2].status is OutcomeStatus.UNKNOWN
    assert isinstance(outcomes[2].error, OutcomeUnknownError)
    assert outcomes[2].attempts == 1
    assert emulator.calls_for("13800000002") == 1


def _requests(n: int) -> Iterator[CreateCallRequest]:
    return (CreateCallRequest(called=number) for number in numbers(n))


async def test_ordered_outcomes_follow_the_input() -> None:
    """ordered=True yields outcomes in input order."""
    emulator = Emulator()
    async with in_process(emulator) as session:
        outcomes = await collect(session, _requests(100), concurrency=10, ordered=True)
    assert [o.index for o in outcomes] == list(range(100))


async def test_async_iterables_are_accepted() -> None:
    """An async generator of requests works like a list."""

    async def source() -> AsyncIterator[CreateCallRequest]:
        for number in numbers(20):
            yield CreateCallRequest(called=number)

    emulator = Emulator()
    async with in_process(emulator) as session:
        outcomes = await collect(session, source(), concurrency=3)
    assert len(outcomes) == 20
    assert all(o.ok for o in outcomes)


async def test_workers_waiting_on_an_async_input_all_go_when_it_resumes() -> None:
    """Calls waiting on an async input that paused go together when it resumes.

    Not one scheduler turn apart: after each group of rows a job read, that staggering
    cost it a fifth of its speed.
    """
    concurrency = 20
    refilled = anyio.Event()
    turns = 0
    started_at_turn: list[int] = []

    async def source() -> AsyncIterator[CreateCallRequest]:
        for number in numbers(concurrency):
            yield CreateCallRequest(called=number)
        await refilled.wait()
        for number in numbers(2 * concurrency)[concurrency:]:
            yield CreateCallRequest(called=number)

    async def count_turns() -> None:
        nonlocal turns
        while True:
            await anyio.lowlevel.checkpoint()
            turns += 1

    async def hook(index: int, _request: CreateCallRequest) -> None:
        if index >= concurrency:
            started_at_turn.append(turns)

    emulator = Emulator()
    async with in_process(emulator) as session, anyio.create_task_group() as tasks:
        received = 0
        async for _ in session.create_calls(source(), concurrency=concurrency, on_send=hook):
            received += 1
            if received == concurrency:
                # Every worker is now waiting for the input; let it resume.
                for _ in range(10):
                    await anyio.lowlevel.checkpoint()
                tasks.start_soon(count_turns)
                refilled.set()
        tasks.cancel_scope.cancel()
    assert received == 2 * concurrency
    assert len(started_at_turn) == concurrency
    assert max(started_at_turn) - min(started_at_turn) <= 3, started_at_turn


async def test_inputs_are_pulled_lazily_within_concurrency() -> None:
    """No more than ``2 * concurrency`` inputs (running + buffered) are pulled ahead."""
    emulator = Emulator()
    emulator.latency = 0.001
    pulled = 0
    max_ahead = 0
    finished = 0

    def source() -> Iterator[CreateCallRequest]:
        nonlocal pulled, max_ahead
        for number in numbers(200):
            pulled += 1
            max_ahead = max(max_ahead, pulled - finished)
            yield CreateCallRequest(called=number)

    async with in_process(emulator) as session:
        async for _ in session.create_calls(source(), concurrency=7):
            finished += 1
    assert finished == 200
    assert max_ahead <= 2 * 7 + 1


async def test_concurrency_is_bounded() -> None:
    """At most ``concurrency`` createcalls are in flight at once."""
    in_flight = 0
    peak = 0
    emulator = Emulator()

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            await anyio.sleep(0.001)
            await emulator(scope, receive, send)  # type: ignore[arg-type]
        finally:
            in_flight -= 1

    async with AsyncSession(
        "http://127.0.0.1",
        emulator.app_key,
        emulator.app_secret,
        transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
    ) as session:
        outcomes = await collect(session, _requests(120), concurrency=9)
    assert len(outcomes) == 120
    assert 1 < peak <= 9


async def test_stopping_iteration_cancels_cleanly() -> None:
    """Closing the iteration early cancels in-flight calls and leaves no task behind."""
    emulator = Emulator()
    emulator.latency = 0.01
    before = {task.id for task in anyio.get_running_tasks()}
    async with in_process(emulator) as session:
        with anyio.fail_after(10):
            batch = session.create_calls(_requests(10_000), concurrency=20)
            async with contextlib.aclosing(batch) as outcomes:
                async for outcome in outcomes:
                    assert outcome.ok
                    break
        during = {t.name for t in anyio.get_running_tasks() if t.id not in before}
        assert not any("batch" in (name or "") for name in during)
    assert {task.id for task in anyio.get_running_tasks()} - before == set()
    assert len(emulator.calls) < 100


async def test_failing_input_iterable_raises_after_in_flight_calls() -> None:
    """An exception from the user's iterable reaches the consumer; earlier inputs finish."""

    def source() -> Iterator[CreateCallRequest]:
        yield CreateCallRequest(called="13800000001")
        yield CreateCallRequest(called="13800000002")
        raise KeyError("broken input")

    emulator = Emulator()
    seen: list[CallOutcome] = []

    async def consume(session: AsyncSession) -> None:
        async for outcome in session.create_calls(source(), concurrency=5):
            seen.append(outcome)

    async with in_process(emulator) as session:
        with pytest.raises(KeyError):
            await consume(session)
    assert len(seen) == 2


async def test_forced_token_expiry_mid_batch_loses_nothing() -> None:
    """All tokens expiring mid-batch costs one refresh; every call still succeeds."""
    emulator = Emulator()
    async with in_process(emulator) as session:
        outcomes = []
        async for outcome in session.create_calls(_requests(200), concurrency=20):
            outcomes.append(outcome)
            if len(outcomes) == 50:
                emulator.expire_all_tokens()
    assert all(o.ok for o in outcomes)
    assert len(outcomes) == 200
    assert emulator.token_requests == 2
    assert emulator.duplicates() == {}


async def test_rate_limited_platform_is_waited_out() -> None:
    """429 with Retry-After is re-sent after waiting; every call ends succeeded once."""
    emulator = Emulator()
    emulator.rate_limit = 1000
    emulator.rate_limit_retry_after = 0
    async with in_process(emulator) as session:
        outcomes = await collect(session, _requests(50), concurrency=10)
    assert all(o.ok for o in outcomes)
    assert emulator.duplicates() == {}


async def test_rate_option_spaces_starts() -> None:
    """rate=R spaces the calls 1/R apart, as the emulator's timestamps show."""
    emulator = Emulator()
    async with in_process(emulator) as session:
        outcomes = await collect(session, _requests(11), concurrency=10, rate=200.0)
    assert all(o.ok for o in outcomes)
    times = sorted(call.at for call in emulator.calls)
    span = times[-1] - times[0]
    assert span >= 10 / 200.0 * 0.9  # 10 intervals of 5 ms, never a burst


async def test_on_send_hook_runs_at_the_last_moment() -> None:
    """on_send runs once per input, holding a token, before its request; a failure blocks it."""
    emulator = Emulator()
    seen: list[int] = []

    async def hook(index: int, request: CreateCallRequest) -> None:
        assert emulator.calls_for(request.called) == 0
        assert emulator.token_requests == 1  # the call already holds its token
        await anyio.lowlevel.checkpoint()
        if index == 3:
            raise OSError("disk full")
        seen.append(index)

    async with in_process(emulator) as session:
        outcomes = {o.index: o for o in await collect(session, _requests(6), on_send=hook)}
    assert sorted(seen) == [0, 1, 2, 4, 5]
    assert outcomes[3].status is OutcomeStatus.FAILED
    assert "on_send hook failed (OSError)" in str(outcomes[3].error)
    assert emulator.calls_for("13800000003") == 0


async def test_on_send_hook_is_not_called_for_a_call_that_gets_no_token() -> None:
    """A call that never gets a token never reaches on_send: nothing is journalled as sent."""
    emulator = Emulator()
    seen: list[int] = []
    clock = FakeClock()
    async with in_process(
        emulator, token=TokenPolicy.for_tests(timeout=0.2, clock=clock)
    ) as session:
        emulator.app_secret = "rotated"  # every refresh is refused from now on
        clock.advance(7200)  # the token has expired
        outcomes = await collect(
            session, _requests(3), on_send=lambda index, _request: seen.append(index)
        )
    assert seen == []
    assert [o.status for o in outcomes] == [OutcomeStatus.FAILED] * 3
    assert emulator.createcall_requests == 0


async def test_bad_batch_arguments() -> None:
    """Nonsense concurrency, rate or budget is refused with ConfigurationError, at the call."""
    emulator = Emulator()
    async with in_process(emulator) as session:
        with pytest.raises(ConfigurationError, match="concurrency"):
            session.create_calls([], concurrency=0)
        with pytest.raises(ConfigurationError, match="rate"):
            session.create_calls([], rate=0)
        with pytest.raises(ConfigurationError, match="retry_budget"):
            session.create_calls([], retry_budget=-1)
        assert isinstance(ConfigurationError("x"), ValueError)  # what 0.1 raised still catches


# trio warns about any async generator left unclosed, by design: there, use aclosing().
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_plain_break_is_cleaned_up_by_session_close() -> None:
    """On asyncio a plain break, without aclosing, leaves nothing running after close."""
    emulator = Emulator()
    emulator.latency = 0.01
    before = {task.id for task in anyio.get_running_tasks()}
    with anyio.fail_after(10):
        async with in_process(emulator) as session:
            async for _ in session.create_calls(_requests(10_000), concurrency=20):
                break
    assert {task.id for task in anyio.get_running_tasks()} - before == set()
