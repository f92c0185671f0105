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
import sys
from collections.abc import Iterator

import anyio
import attrs

from .._errors import (
    NotSentError,
    ResultCodeError,
    ThrottledError,
    ThrottlingTimeoutError,
)
from .._models import CreateCallRequest
from .._outcomes import CallOutcome, OutcomeStatus
from .._pacing import Pacing
from .._session import AsyncSession
from ._commits import GroupCommitter
from ._gate import DialGate
from ._job import Job
from ._progress import Advance
from ._signals import SAME_STOP, StopSignals
from ._store import Final, PendingRow, Recorded
from ._summary import Summary

__all__ = ["Run", "describe_pace", "run_job"]


@attrs.define
class Run:
    """How one run of a job went."""

    #: The run's pace (its rate now, the throttles it met).
    pacing: Pacing
    summary: Summary = attrs.field(factory=Summary)
    #: The signal that stopped the run, if one did.
    signal: signal.Signals | None = None
    #: Why the job file or the report could not be written, if that stopped the run.
    failure: str | None = None
    #: Why the run stopped dialling because the platform throttled every call too long.
    throttled: str | None = None

    @property
    def how(self) -> str:
        """How it ended: finished, stopped, throttled, interrupted or terminated."""
        if self.failure is not None:
            return "stopped"
        if self.throttled is not None and self.signal is None:
            return "throttled"
        if self.signal is None:
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


async def _watch_signals(
    signals: StopSignals, run: Run, gate: DialGate, calls: anyio.CancelScope
) -> None:
    while received := await anyio.to_thread.run_sync(signals.next, abandon_on_cancel=True):
        first = signals.first
        if run.signal is None:
            run.signal = received.signal
            gate.stop()
            print(
                f"\n{run.signal.name}: no new calls; waiting for the calls in flight to end "
                f"(send it again after {SAME_STOP:g}s to abandon them: they will count as "
                "unknown)",
                file=sys.stderr,
            )
        elif first is not None and received.at - first.at >= SAME_STOP:
            print(f"\n{received.signal.name}: abandoning the calls in flight", file=sys.stderr)
            calls.cancel()


class _RowsInFlight:
    """The rows one run has taken up, by the engine's index, and which of them are claimed."""

    def __init__(self, job: Job, gate: DialGate, committer: GroupCommitter) -> None:
        self._job = job
        self._gate = gate
        self._committer = committer
        self._taken: dict[int, PendingRow] = {}
        self._claimed: set[int] = set()  # their claim is committed: they are `sending`

    def requests(self) -> Iterator[CreateCallRequest]:
        """Yield the job's pending rows as requests, until a stop or a failure to record."""
        for index, row in enumerate(self._job.store.pending()):
            if self._gate.stopped or self._committer.failure is not None:
                return
            self._taken[index] = row
            yield CreateCallRequest(
                called=row.called, caller_present=row.caller_present, call_data=row.call_data
            )

    async def claim(self, index: int, _request: CreateCallRequest) -> None:
        """Claim the row (the ``on_send`` hook), once the gate has said yes at this moment."""
        if not self._gate.admit():
            raise _Withheld
        if index not in self._claimed:  # a throttled call's re-send keeps its claim
            await self._committer.claim(self._taken[index].row)
            self._claimed.add(index)

    def settle(self, outcome: CallOutcome) -> None:
        """Queue the outcome of a row, or put the row back if it was never dialled."""
        row = self._taken.pop(outcome.index)
        claimed = outcome.index in self._claimed
        self._claimed.discard(outcome.index)
        if not _not_dialled(outcome, claimed=claimed):
            self._committer.finish(_final(row, outcome))
        elif claimed:
            self._committer.release(row.row)


async def run_job(
    session: AsyncSession,
    job: Job,
    signals: StopSignals,
    *,
    concurrency: int,
    pacing: Pacing,
    advance: Advance,
) -> Run:
    """Dial the job's pending rows through ``session`` at ``pacing``; say how it went."""
    run = Run(pacing=pacing)
    gate = DialGate(pacing)
    summary = run.summary
    summary.counts[OutcomeStatus.FAILED] += job.invalid  # failed without dialling

    def committed(records: list[Recorded]) -> None:
        job.report.append(records)
        for record in records:
            final = record.final
            status = OutcomeStatus(final.status)
            summary.add(status, final.latency_ms / 1000 if final.attempts else None)
            advance(status)

    committer = GroupCommitter(job.store, committed)
    rows = _RowsInFlight(job, gate, committer)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(committer.run)
        with anyio.CancelScope() as calls:
            tasks.start_soon(_watch_signals, signals, run, gate, calls)
            try:
                async with contextlib.aclosing(
                    session.create_calls(
                        rows.requests(), concurrency=concurrency, on_send=rows.claim, pacing=pacing
                    )
                ) as outcomes:
                    async for outcome in outcomes:
                        if committer.failure is not None:
                            break
                        rows.settle(outcome)
            except sqlite3.Error as exc:  # reading the pending rows failed
                run.failure = f"{type(exc).__name__}: {exc}"
            except ThrottlingTimeoutError as exc:
                run.throttled = str(exc)
        await committer.close()
        tasks.cancel_scope.cancel()
    run.failure = run.failure or committer.failure
    summary.stop()
    return run
