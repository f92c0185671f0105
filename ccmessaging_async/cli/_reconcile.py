"""``reconcile`` (and ``batch --reconcile-wait``): settle unknown rows from the call records."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import anyio

from .._errors import CCMessagingError
from .._session import AsyncSession
from ..jobs._job import OpenedJob, is_database_url, open_stored_job
from ..jobs._reconcile import DEFAULT_GRACE, DEFAULT_SKEW, Reconciliation, settle_unknown
from ..jobs._records import Recorded
from ..jobs._status import resolve_job_path
from ._connection import add_insecure_option, add_loop_option, run_on_loop, session_factory
from ._exit import ExitCode

__all__ = ["add_reconcile_command", "add_settle_options", "reconcile", "settle_after_run"]

#: Rows left unknown that are named one by one; ``status`` and ``export`` show the rest.
_NAMED = 20
#: Seconds between looks for a stop while a run settles its unknown rows.
_LOOK_FOR_A_STOP = 0.2


def add_settle_options(command: argparse.ArgumentParser) -> None:
    """Add ``--grace`` and ``--skew``: how call records settle an unknown row."""
    command.add_argument(
        "--grace",
        type=float,
        default=DEFAULT_GRACE,
        metavar="SECONDS",
        help="settle a row as not created only once this long has passed since its attempt "
        f"with no call record of it ({DEFAULT_GRACE:g})",
    )
    command.add_argument(
        "--skew",
        type=float,
        default=DEFAULT_SKEW,
        metavar="SECONDS",
        help="how far this machine's (or the job database's) clock and the platform's may "
        f"differ ({DEFAULT_SKEW:g})",
    )


def add_reconcile_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``reconcile`` command."""
    command = commands.add_parser(
        "reconcile",
        help="settle a job's unknown rows from the platform's call records (never dials)",
        description="Look up each unknown row of a job in the platform's call records:\n"
        "a record of its number within its attempt's time makes it succeeded; none after\n"
        "--grace makes it failed (not created; --resend-unknown dials it again); anything\n"
        "else leaves it unknown, with the reason. Exit 0: no row is unknown any more;\n"
        "3: some still are.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument("job", help="the job file (or its report), or a postgresql:// URL")
    command.add_argument(
        "--name", help="the job's name, when the job is in a database (which holds many)"
    )
    command.add_argument(
        "--out", type=Path, help="the job's report, to add the settled rows' lines to"
    )
    add_settle_options(command)
    command.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="while rows wait for their records (or the grace), look again for up to this long (0)",
    )
    add_insecure_option(command)
    add_loop_option(command)


def _check(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        value = getattr(args, name)
        if not 0 <= value < float("inf"):
            raise ValueError(f"--{name.replace('_', '-')} must be a number of seconds, 0 or more")


def _say(done: Reconciliation, counts: dict[str, int]) -> None:
    print(done.describe())
    for row in done.unsettled[:_NAMED]:
        print(f"  row {row.row} (line {row.line}) still unknown: {row.reason}")
    if len(done.unsettled) > _NAMED:
        print(f"  ... and {len(done.unsettled) - _NAMED} more (the report says why for each)")
    print("job: " + ", ".join(f"{n} {state}" for state, n in counts.items()))


async def settle_after_run(
    session: AsyncSession,
    job: OpenedJob,
    args: argparse.Namespace,
    stopped: Callable[[], bool] = lambda: False,
) -> Reconciliation | None:
    """Settle the run's unknown rows when ``--reconcile-wait`` asks (``None``: not asked).

    ``stopped`` is polled: once it says so (a signal came), the settling ends at once; what
    it settled is kept, the rest stays unknown.
    """
    if args.reconcile_wait is None:
        return None
    if not (await anyio.to_thread.run_sync(job.store.counts))["unknown"]:
        return None
    print(
        f"settling unknown rows from the call records (waiting up to {args.reconcile_wait:g} s "
        "for their records)",
        file=sys.stderr,
    )

    recorded = _to_report(job)
    done: Reconciliation | None = None
    failure: CCMessagingError | None = None

    async def settle(scope: anyio.CancelScope) -> None:
        nonlocal done, failure
        try:
            done = await settle_unknown(
                session,
                job.store,
                grace=args.grace,
                skew=args.skew,
                wait=args.reconcile_wait,
                on_recorded=recorded,
            )
        except CCMessagingError as exc:
            failure = exc
        scope.cancel()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(settle, tasks.cancel_scope)
        # The signals were received by the run's watcher thread, which notes the first
        # one: it is looked at a few times a second.
        while not stopped():  # noqa: ASYNC110 - set by a signal thread, not an event
            await anyio.sleep(_LOOK_FOR_A_STOP)
        tasks.cancel_scope.cancel()
    if failure is not None:
        # The run's outcomes stand; only the settling failed (what it settled is kept).
        print(f"error: {_cannot_read(failure)}", file=sys.stderr)
        return None
    if done is None:
        print("stopped while settling: the rows left unknown stay unknown", file=sys.stderr)
        return None
    _say(done, await anyio.to_thread.run_sync(job.store.counts))
    return done


def _to_report(job: OpenedJob) -> Callable[[list[Recorded]], None]:
    """Return what writes settled rows' lines to the job's report, if this run writes one."""

    def recorded(records: list[Recorded]) -> None:
        if job.report is not None:
            job.report.append(records)

    return recorded


def _cannot_read(exc: CCMessagingError) -> str:
    return (
        f"could not read the call records ({type(exc).__name__}: {exc}); the rows left "
        "unknown stay unknown: run `reconcile` later"
    )


def reconcile(args: argparse.Namespace) -> int:
    """Run ``reconcile``: exit 0 when no row is unknown any more, 3 when some are."""
    _check(args, "grace", "skew", "wait")
    location = args.job if is_database_url(args.job) else resolve_job_path(Path(args.job))
    make_session = session_factory("httpx", insecure=args.allow_insecure_http)
    job = open_stored_job(None, args.out, location, name=args.name, resend_unknown=False)
    how = "failed"
    try:
        if job.interrupted:
            print(
                f"{job.interrupted} rows were being sent when the last run stopped: now unknown",
                file=sys.stderr,
            )

        recorded = _to_report(job)

        async def run() -> Reconciliation:
            async with make_session() as session:
                return await settle_unknown(
                    session,
                    job.store,
                    grace=args.grace,
                    skew=args.skew,
                    wait=args.wait,
                    on_recorded=recorded,
                )

        try:
            done = run_on_loop(run, args)
        except CCMessagingError as exc:
            print(f"error: {_cannot_read(exc)}", file=sys.stderr)
            return ExitCode.UNKNOWN if job.store.counts()["unknown"] else ExitCode.OK
        how = "reconciled"
        counts = job.store.counts()
        _say(done, counts)
    finally:
        job.close(how)
    return ExitCode.UNKNOWN if counts["unknown"] else ExitCode.OK
