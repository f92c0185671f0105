"""The ``batch`` and ``work`` commands: a run of a job, what it prints, its exit code."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from .._outcomes import OutcomeStatus
from .._session import AsyncSession
from ..jobs._errors import JobRefusedError, JobStoppedError, storage_errors
from ..jobs._hours import CallingHours
from ..jobs._job import OpenedJob, is_database_url, open_stored_job
from ..jobs._numbers import NumberPlan
from ..jobs._records import Recorded, Waiting
from ..jobs._runner import Run, describe_pace, run_job
from ..jobs._sqlite import NEEDS_POSIX
from ..jobs._suppression import SuppressionList
from ._connection import run_on_loop, session_factory
from ._exit import ExitCode
from ._progress import progress_bar
from ._reconcile import settle_after_run
from ._signals import StopSignals, watch_for_stop
from ._summary import Summary

__all__ = ["run_batch_command"]


def _job_exit_code(counts: dict[str, int], run: Run) -> ExitCode:
    if run.failure is not None:
        return ExitCode.STORAGE
    if run.stopped:
        return _signal_exit_code(run.signal or signal.SIGINT)
    if run.throttled is not None:
        return ExitCode.THROTTLED
    if counts["unknown"]:
        return ExitCode.UNKNOWN
    if counts["failed"]:
        return ExitCode.NOT_CREATED
    return ExitCode.OK


def _signal_exit_code(received: signal.Signals) -> ExitCode:
    return ExitCode.TERMINATED if received == signal.SIGTERM else ExitCode.INTERRUPTED


def run_batch_command(args: argparse.Namespace) -> int:
    """``batch`` and ``work``: run a job (``work`` joins one in a database, with no input)."""
    if not hasattr(signal, "pthread_sigmask"):
        raise JobRefusedError(NEEDS_POSIX)
    if args.concurrency < 1:
        raise ValueError("--concurrency must be at least 1")
    if not 0 < args.max_throttle_wait < float("inf"):
        raise ValueError("--max-throttle-wait must be a number of seconds above 0")
    for option, value in (
        ("--reconcile-wait", args.reconcile_wait),
        ("--grace", args.grace),
        ("--skew", args.skew),
    ):
        if value is not None and not 0 <= value < float("inf"):
            raise ValueError(f"{option} must be a number of seconds, 0 or more")
    if args.command == "work" and not is_database_url(args.job):
        raise JobRefusedError(
            "work joins a job in PostgreSQL (--job postgresql://... --name NAME); a job file "
            "is worked by one run at a time: resume it with batch"
        )
    make_session = session_factory(args.transport, insecure=args.allow_insecure_http)
    # From here to the end, a signal at any moment is a stop, never the default action.
    with StopSignals() as signals:
        code = _run_batch(args, make_session, signals)
        first = signals.first
    if first is not None and code not in (ExitCode.STORAGE, _signal_exit_code(first.signal)):
        print("stopped; re-run the same command to resume", file=sys.stderr)
        return _signal_exit_code(first.signal)
    return code


def _open(args: argparse.Namespace, signals: StopSignals) -> OpenedJob:
    working = args.command == "work"
    job = open_stored_job(
        None if working else args.input,
        None if working else args.out,
        args.job,
        name=args.name,
        resend_unknown=args.resend_unknown,
        check_stop=signals.raise_if_received,
        lease=args.lease,
        numbers=None if working else NumberPlan(args.region, args.send_as),
        allow_duplicates=False if working else args.allow_duplicates,
    )
    if job.imported:
        print(f"job {job.store.label}: {job.imported} rows taken in", file=sys.stderr)
    if job.interrupted:
        print(
            f"{job.interrupted} rows were being sent when an earlier run stopped: "
            "recorded as unknown, "
            + (
                "and dialled again (--resend-unknown): each may ring twice"
                if args.resend_unknown
                else "not dialled again (--resend-unknown dials them)"
            ),
            file=sys.stderr,
        )
    if job.invalid:
        print(f"{job.invalid} rows cannot be sent (their report lines say why)", file=sys.stderr)
    if job.duplicates:
        print(
            f"{job.duplicates} rows have the number of an earlier row: skipped, not called "
            "(--allow-duplicates calls every row)",
            file=sys.stderr,
        )
    if job.report is not None and job.report.rebuilt:
        print(f"the report {args.out} did not match the job file: rebuilt", file=sys.stderr)
    return job


def _calling_hours(args: argparse.Namespace, job: OpenedJob) -> CallingHours | None:
    """Read ``--window`` (with ``--days`` and ``--tz``), checked against the job."""
    if args.window is None:
        if args.days is not None or args.tz is not None:
            raise ValueError("--days and --tz go with --window (the calling hours)")
        return None
    hours = CallingHours(args.window, days=args.days, default_zone=args.tz)
    info = job.store.info()
    hours.check(None if info is None else info.rules.default_region)
    return hours


def _suppression_list(path: Path | None, job: OpenedJob) -> SuppressionList | None:
    """Open the ``--suppress`` list, its numbers read as the job reads its own."""
    if path is None:
        return None
    info = job.store.info()
    region = None if info is None else info.rules.default_region
    try:
        suppressed = SuppressionList(path, default_region=region)
    except JobStoppedError as exc:
        raise JobRefusedError(str(exc)) from None
    ignored = (
        f"; {suppressed.ignored} lines are not numbers (ignored)" if suppressed.ignored else ""
    )
    print(f"suppression list {path}: {len(suppressed)} numbers{ignored}", file=sys.stderr)
    return suppressed


def _run_batch(
    args: argparse.Namespace, make_session: Callable[[], AsyncSession], signals: StopSignals
) -> int:
    job = _open(args, signals)
    how = "failed"
    outcome: Run | None = None
    summary = Summary()
    summary.counts[OutcomeStatus.FAILED] += job.invalid  # failed without dialling
    try:
        suppressed = _suppression_list(args.suppress, job)
        hours = _calling_hours(args, job)
        pacing = job.pacing(args.rate, max_throttle_wait=args.max_throttle_wait)
        ran = Run(pacing=pacing)

        async def run() -> Run:
            async with make_session() as session:
                concurrency = args.concurrency
                pool = session.limits.max_connections
                if pool is not None and concurrency > pool:
                    print(
                        f"--concurrency {concurrency} is above the connection pool's {pool}: "
                        f"using {pool} (more would only wait for a connection)",
                        file=sys.stderr,
                    )
                    concurrency = pool
                pending = job.store.counts()["pending"]
                waited: list[str] = []

                def waiting(now: Waiting) -> None:
                    said = now.describe()
                    if said and (not waited or waited[-1] != said):
                        waited.append(said)
                        print(f"every row left waits: {said}", file=sys.stderr)

                def note() -> str:
                    said = ran.waiting.describe()
                    return describe_pace(pacing) + (f" | {said}" if said else "")

                with progress_bar(pending, "calls", note) as advance:

                    def recorded(records: list[Recorded]) -> None:
                        for record in records:
                            final = record.final
                            if final.status == "skipped":
                                summary.skipped += 1
                            else:
                                latency = final.latency_ms / 1000 if final.attempts else None
                                summary.add(OutcomeStatus(final.status), latency)
                            advance(final.status)

                    ended = await run_job(
                        session,
                        job,
                        concurrency=concurrency,
                        pacing=pacing,
                        on_recorded=recorded,
                        watch_stop=watch_for_stop(signals),
                        storage_errors=storage_errors(),
                        is_suppressed=suppressed,
                        hours=hours,
                        on_waiting=waiting,
                        run=ran,
                    )
                if not ended.stopped and ended.failure is None and signals.first is None:
                    await settle_after_run(
                        session, job, args, stopped=lambda: signals.first is not None
                    )
                return ended

        outcome = run_on_loop(run, args)
        summary.stop()
        if not outcome.stopped and outcome.failure is None and signals.first is not None:
            # It came after the last call ended.
            outcome.stopped, outcome.signal = True, signals.first.signal
        how = outcome.how
        print(summary.line() + describe_pace(outcome.pacing))
        return _job_exit_code(_say_how_it_ended(job, outcome), outcome)
    finally:
        job.close(how, outcome.pacing if outcome is not None else None)


def _say_how_it_ended(job: OpenedJob, outcome: Run) -> dict[str, int]:
    """Print the job's counts and why the run stopped, if it did; return the counts."""
    try:
        counts = job.store.counts()
    except storage_errors():
        if outcome.failure is None:
            raise
        counts = {}  # the store that stopped the run cannot be read either
    else:
        print("job: " + ", ".join(f"{n} {state}" for state, n in counts.items()))
    if outcome.failure is not None:
        print(
            f"error: stopped ({outcome.failure}): could not record to the job "
            f"{job.store.label} or the report, or check a row; nothing more was dialled. Fix "
            "the cause and re-run the same command to resume.",
            file=sys.stderr,
        )
    elif outcome.stopped:
        print("stopped; re-run the same command to resume", file=sys.stderr)
    elif outcome.throttled is not None:
        print(
            f"error: {outcome.throttled}. The rows not created are pending: re-run the "
            "same command later to resume",
            file=sys.stderr,
        )
    return counts
