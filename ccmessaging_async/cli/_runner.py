"""Running a batch job: its pending rows through the batch engine, each outcome committed.

A row is claimed (committed as ``sending``) from the engine's ``on_send`` hook, when its
call holds a token and an in-flight slot, and its request leaves only once that claim is
durable. Outcomes are committed in groups with the claims, then written to the report.
The first SIGINT or SIGTERM stops new calls and lets those in flight end; a second one
abandons them (they stay ``sending``, and become ``unknown`` on the next run).
"""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Iterator

import anyio
import attrs

from .._errors import ResultCodeError
from .._models import CreateCallRequest
from .._outcomes import CallOutcome, OutcomeStatus
from .._session import AsyncSession
from ._commits import GroupCommitter
from ._job import Job
from ._progress import Advance
from ._store import Final, PendingRow, Recorded
from ._summary import Summary

__all__ = ["Run", "run_job"]


@attrs.define
class Run:
    """How one run of a job went."""

    summary: Summary = attrs.field(factory=Summary)
    #: The signal that stopped the run, if one did.
    signal: signal.Signals | None = None
    #: Why the job file or the report could not be written, if that stopped the run.
    failure: str | None = None

    @property
    def how(self) -> str:
        """``finished``, ``stopped`` (could not record), ``interrupted`` or ``terminated``."""
        if self.failure is not None:
            return "stopped"
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


async def _watch_signals(
    signals: AsyncIterator[signal.Signals], run: Run, calls: anyio.CancelScope
) -> None:
    async for received in signals:
        if run.signal is None:
            run.signal = signal.Signals(received)
            print(
                f"\n{run.signal.name}: no new calls; waiting for the calls in flight to end "
                "(send it again to abandon them: they will count as unknown)",
                file=sys.stderr,
            )
        else:
            calls.cancel()


async def run_job(
    session: AsyncSession,
    job: Job,
    *,
    concurrency: int,
    rate: float | None,
    advance: Advance,
) -> Run:
    """Dial the job's pending rows through ``session``; return how the run went."""
    run = Run()
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
    sent: dict[int, PendingRow] = {}  # by the engine's index

    def requests() -> Iterator[CreateCallRequest]:
        for index, row in enumerate(job.store.pending()):
            if run.signal is not None or committer.failure is not None:
                return
            sent[index] = row
            yield CreateCallRequest(
                called=row.called, caller_present=row.caller_present, call_data=row.call_data
            )

    async def claim(index: int, _request: CreateCallRequest) -> None:
        await committer.claim(sent[index].row)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(committer.run)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            with anyio.CancelScope() as calls:
                tasks.start_soon(_watch_signals, signals, run, calls)
                try:
                    async with contextlib.aclosing(
                        session.create_calls(
                            requests(), concurrency=concurrency, rate=rate, on_send=claim
                        )
                    ) as outcomes:
                        async for outcome in outcomes:
                            row = sent.pop(outcome.index)
                            if committer.failure is not None:
                                break
                            committer.finish(_final(row, outcome))
                except sqlite3.Error as exc:  # reading the pending rows failed
                    run.failure = f"{type(exc).__name__}: {exc}"
            await committer.close()
            tasks.cancel_scope.cancel()
    run.failure = run.failure or committer.failure
    summary.stop()
    return run
