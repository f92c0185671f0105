"""Running a batch job: its pending rows through the batch engine, each outcome committed.

A row is claimed (committed as ``sending``) from the engine's ``on_send`` hook, when its
call holds a token and an in-flight slot, once :class:`DialGate` has said at that moment
that it may be dialled; its request leaves only once that claim is durable. Outcomes are
committed in groups with the claims, then written to the report. The first SIGINT or
SIGTERM stops new calls (rows waiting for their turn stay ``pending``) and lets those in
flight end; another one at least :data:`SAME_STOP` seconds later abandons them (they stay
``sending``, and become ``unknown`` on the next run).
"""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
from collections.abc import AsyncGenerator, Callable, Coroutine
from typing import Any

import anyio
import attrs

from .._errors import (
    NotSentError,
    ResultCodeError,
    ThrottledError,
    ThrottlingTimeoutError,
)
from .._models import CreateCallRequest
from .._outcomes import CallOutcome
from .._pacing import Pacing
from .._session import AsyncSession
from ._commits import ClaimRefusedError, GroupCommitter
from ._gate import Defer, DialGate, IsSuppressed, Skip
from ._hours import CallingHours
from ._job import OpenedJob
from ._lease import LEASE_TAKEN, LeaseKeeper
from ._records import Deferral, Final, PendingRow, Recorded, RunProgress, Waiting
from ._shared_pace import SharedPacing
from ._store import JobStore

__all__ = ["Run", "StopControl", "describe_pace", "run_job"]


@attrs.define
class Run:
    """How one run of a job went."""

    #: The run's pace (its rate now, the throttles it met).
    pacing: Pacing
    #: The signal that stopped the run, if one did.
    signal: signal.Signals | None = None
    #: Whether :meth:`StopControl.stop` stopped the run (a signal, or the caller's stop).
    stopped: bool = False
    #: Why the store or the report could not be written (or the lease was lost), if that
    #: stopped the run.
    failure: str | None = None
    #: Why the run stopped dialling because the platform throttled every call too long.
    throttled: str | None = None
    #: Rows waiting for their calling hours (as this run last knew), and the first opening.
    waiting: Waiting = attrs.field(factory=Waiting)

    @property
    def how(self) -> str:
        """How it ended: finished, stopped, throttled, interrupted or terminated."""
        if self.failure is not None:
            return "stopped"
        if self.throttled is not None and not self.stopped:
            return "throttled"
        if not self.stopped:
            return "finished"
        return "terminated" if self.signal == signal.SIGTERM else "interrupted"


def _final(row: PendingRow, outcome: CallOutcome) -> Final:
    result = outcome.result
    error = outcome.error
    if result is not None:
        code: str | None = result.result_code
    else:
        code = error.code if isinstance(error, ResultCodeError) else None
    return Final(
        row=row.row,
        line=row.line,
        called=row.called,
        status=outcome.status.value,
        result=None if result is None else json.dumps(attrs.asdict(result, recurse=False)),
        result_code=code,
        error=None if error is None else f"{type(error).__name__}: {error}",
        attempts=outcome.attempts,
        latency_ms=round(outcome.latency * 1000, 3),
    )


def _skipped(row: PendingRow, skip: Skip) -> Final:
    return Final.without_call(row.row, row.line, row.called, "skipped", error=skip.reason)


class _Withheld(Exception):  # noqa: N818 - not an error: a decision
    """The gate said no at the last moment: the row is not dialled and stays pending."""


def describe_pace(pacing: Pacing) -> str:
    """`` | throttled N, pace R/s`` once the platform has throttled the run, else nothing."""
    if not pacing.throttles:
        return ""
    pace = "unlimited" if pacing.rate is None else f"{pacing.rate:.1f} calls/s"
    return f" | throttled {pacing.throttles} ({pacing.pauses} pauses), pace {pace}"


def _not_dialled(outcome: CallOutcome, *, claimed: bool) -> bool:
    """Whether ``outcome`` proves its row's call was never created, so it stays pending.

    A row whose claim was never committed was not sent. A claimed row that ended
    throttled, or unsent at a send that never began (each send before it was throttled),
    was stopped while it waited for its turn.
    """
    if not claimed:
        return True
    error = outcome.error
    return isinstance(error, ThrottledError) or (
        isinstance(error, NotSentError) and error.attempts == 0
    )


@attrs.define
class StopControl:
    """What a stop watcher may do to a running job."""

    _run: Run
    _gate: DialGate
    _calls: anyio.CancelScope

    def stop(self, received: signal.Signals | None = None) -> bool:
        """Dial nothing more (calls in flight end); return whether this was the first stop."""
        if self._run.stopped:
            return False
        self._run.stopped, self._run.signal = True, received
        self._gate.stop()
        return True

    def abandon(self) -> None:
        """Give up the calls in flight too: their rows stay ``sending`` (later ``unknown``)."""
        self._calls.cancel()


class _RowsInFlight:
    """The rows one run has taken up, by the engine's index, and which of them are claimed."""

    def __init__(
        self,
        store: JobStore,
        gate: DialGate,
        committer: GroupCommitter,
        *,
        group: int,
        on_lost: Callable[[str], None],
        run: Run,
        on_waiting: Callable[[Waiting], None],
    ) -> None:
        self._on_lost = on_lost
        self._run = run
        self._on_waiting = on_waiting
        self._store = store
        self._gate = gate
        self._committer = committer
        self._group = group
        self._taken: dict[int, PendingRow] = {}
        self._claimed: set[int] = set()  # their claim is committed: they are `sending`
        self._skipped: dict[int, Skip] = {}  # the gate said: end them without a call
        self._deferred: dict[int, Defer] = {}  # the gate said: outside their calling hours

    def _going(self) -> bool:
        return not self._gate.stopped and self._committer.failure is None

    async def requests(self) -> AsyncGenerator[CreateCallRequest, None]:
        """Yield the job's pending rows as requests, until a stop or a failure to record.

        Rows are taken up a group at a time; those outside their calling hours are
        deferred at once (they never wait for a turn at the pace). When none is left to
        take but other workers still hold some (they may give them back, or die), or
        rows wait for their calling hours, this one waits and looks again.
        """
        index = 0
        while self._going():
            rows = await anyio.to_thread.run_sync(self._store.take, self._group)
            if not rows:
                if not await self._wait_for_more():
                    return
                continue
            first = index
            for row in rows:
                if not self._going():
                    return
                if row.not_before is not None:  # it waited; its hours may have come
                    self._note_waiting(-1)
                verdict = self._gate.outside_hours(row)
                if isinstance(verdict, Defer):
                    self._defer(row, verdict)
                    continue
                if isinstance(verdict, Skip):
                    self._committer.finish(_skipped(row, verdict))
                    continue
                self._taken[index] = row
                yield CreateCallRequest(
                    called=row.called, caller_present=row.caller_present, call_data=row.call_data
                )
                index += 1
            if index == first:  # all deferred or skipped: let the next taking not see them
                await self._committer.sync()

    async def _wait_for_more(self) -> bool:
        """Wait for rows to take (from other workers, or calling hours); ``False``: none."""
        if await anyio.to_thread.run_sync(self._store.others_working):
            await self._gate.idle(
                _LOOK_AGAIN
                if self._store.lease is None
                else min(_LOOK_AGAIN, self._store.lease / 4)
            )
            return True
        waiting = await anyio.to_thread.run_sync(self._store.waiting)
        self._run.waiting = waiting
        if waiting.next_at is None:
            return False
        self._on_waiting(waiting)
        await self._gate.idle(min(max(waiting.next_at - self._store.now(), 0.0), _WAIT_AT_MOST))
        return True

    def _note_waiting(self, change: int, deferral: Deferral | None = None) -> None:
        waiting = self._run.waiting
        first, label = waiting.next_at, waiting.waiting_for
        if deferral is not None and (first is None or deferral.not_before < first):
            first, label = deferral.not_before, deferral.waiting_for
        self._run.waiting = Waiting(max(0, waiting.rows + change), first, label)

    def _defer(self, row: PendingRow, verdict: Defer) -> None:
        deferral = Deferral(row.row, verdict.opening.at.timestamp(), verdict.opening.label)
        self._committer.defer(deferral)
        self._note_waiting(+1, deferral)

    async def claim(self, index: int, _request: CreateCallRequest) -> None:
        """Claim the row (the ``on_send`` hook), once the gate has said yes at this moment."""
        try:
            verdict = await self._gate.admit(self._taken[index])
        except Exception as exc:  # noqa: BLE001 - any failure to check stops the run
            # A check that fails (a suppression list that cannot be read) stops the run:
            # nothing is dialled that could not be checked.
            self._on_lost(f"{type(exc).__name__}: {exc}")
            raise _Withheld from None
        if isinstance(verdict, Skip):
            self._skipped[index] = verdict
            raise _Withheld
        if isinstance(verdict, Defer):
            self._deferred[index] = verdict
            raise _Withheld
        if not verdict:
            raise _Withheld
        if index not in self._claimed:  # a throttled call's re-send keeps its claim
            try:
                await self._committer.claim(self._taken[index].row)
            except ClaimRefusedError:
                self._on_lost(LEASE_TAKEN)
                raise _Withheld from None
            self._claimed.add(index)

    def settle(self, outcome: CallOutcome) -> None:
        """Queue the outcome of a row, or put the row back if it was never dialled."""
        row = self._taken.pop(outcome.index)
        claimed = outcome.index in self._claimed
        self._claimed.discard(outcome.index)
        skip = self._skipped.pop(outcome.index, None)
        defer = self._deferred.pop(outcome.index, None)
        if not _not_dialled(outcome, claimed=claimed):
            self._committer.finish(_final(row, outcome))
        elif skip is not None:
            self._committer.finish(_skipped(row, skip))
        elif defer is not None:
            self._defer(row, defer)
        elif claimed:
            self._committer.release(row.row)


#: Seconds between looks for rows that other workers may give back.
_LOOK_AGAIN = 2.0
#: Seconds at most between looks while rows wait for their calling hours (another
#: worker, or a resume with other hours, may have changed what waits).
_WAIT_AT_MOST = 60.0


async def run_job(
    session: AsyncSession,
    job: OpenedJob,
    *,
    concurrency: int,
    pacing: Pacing,
    on_recorded: Callable[[list[Recorded]], None] = lambda _records: None,
    watch_stop: Callable[[StopControl], Coroutine[Any, Any, None]] | None = None,
    storage_errors: tuple[type[Exception], ...] = (sqlite3.Error, OSError),
    is_suppressed: IsSuppressed | None = None,
    hours: CallingHours | None = None,
    on_waiting: Callable[[Waiting], None] = lambda _waiting: None,
    run: Run | None = None,
) -> Run:
    """Dial the job's pending rows through ``session`` at ``pacing``; say how it went.

    ``on_recorded`` runs after each commit with the outcomes it recorded. ``watch_stop``,
    if given, runs beside the job and may stop it through its :class:`StopControl`.
    ``storage_errors`` are the errors of the store that stop the run (exit 4).
    ``is_suppressed`` is asked about each row's number at the last moment: a suppressed
    row is ``skipped``; an exception stops the run as a storage failure does. With
    ``hours``, rows outside their calling hours wait (``pending``) for them; a run whose
    rows all wait, waits, calling ``on_waiting`` each time it looks again. ``run`` may
    be given to watch the run while it goes (its pace, the rows waiting).
    """
    run = run or Run(pacing=pacing)
    shared = pacing.shared if isinstance(pacing, SharedPacing) else None
    store = job.store
    await anyio.to_thread.run_sync(store.forget_waits)
    gate = DialGate(pacing, shared, is_suppressed, hours, clock=store.now)

    def committed(records: list[Recorded]) -> None:
        if job.report is not None:
            job.report.append(records)
        on_recorded(records)

    committer = GroupCommitter(
        store,
        committed,
        storage_errors,
        progress=lambda: RunProgress(pacing.throttles, pacing.rate),
    )

    def lost(why: str) -> None:
        run.failure = run.failure or why
        gate.stop()

    rows = _RowsInFlight(
        store,
        gate,
        committer,
        group=max(2 * concurrency, 16),
        on_lost=lost,
        run=run,
        on_waiting=on_waiting,
    )
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(committer.run)
        if store.lease is not None:
            tasks.start_soon(LeaseKeeper(store, store.lease, gate, lost).run)
        if shared is not None:
            tasks.start_soon(shared.report)
        with anyio.CancelScope() as calls:
            if watch_stop is not None:
                tasks.start_soon(watch_stop, StopControl(run, gate, calls))
            try:
                async with (
                    contextlib.aclosing(rows.requests()) as requests,
                    contextlib.aclosing(
                        session.create_calls(
                            requests, concurrency=concurrency, on_send=rows.claim, pacing=pacing
                        )
                    ) as outcomes,
                ):
                    async for outcome in outcomes:
                        if committer.failure is not None:
                            break
                        rows.settle(outcome)
            except storage_errors as exc:  # reading or taking the pending rows failed
                run.failure = run.failure or f"{type(exc).__name__}: {exc}"
            except ThrottlingTimeoutError as exc:
                run.throttled = str(exc)
        await committer.close()
        tasks.cancel_scope.cancel()
    run.failure = run.failure or committer.failure
    return run
