"""The ``ccmessaging-async`` console script and its commands (``--help`` lists them).

The job commands are a thin layer over :mod:`ccmessaging_async.jobs`.
"""

from __future__ import annotations

import argparse
import errno
import json
import signal
import socket
import sqlite3
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import attrs

from .. import __version__
from .._config import ENV_APP_KEY, ENV_APP_SECRET, ENV_BASE_URL
from .._errors import (
    CCMessagingError,
    ConfigurationError,
    NotCreatedError,
    OutcomeUnknownError,
    UsageError,
)
from .._models import CreateCallRequest
from .._outcomes import OutcomeStatus
from .._session import AsyncSession
from ..jobs._errors import JobRefusedError, JobStoppedError, storage_errors
from ..jobs._hours import CallingHours
from ..jobs._job import DEFAULT_LEASE, OpenedJob, is_database_url, open_stored_job
from ..jobs._numbers import NumberPlan
from ..jobs._records import Recorded, Waiting
from ..jobs._runner import Run, describe_pace, run_job
from ..jobs._sqlite import NEEDS_POSIX
from ..jobs._status import export, status_data, status_text
from ..jobs._suppression import SuppressionList
from ._connection import add_insecure_option, add_loop_option, run_on_loop, session_factory
from ._exit import ExitCode
from ._progress import progress_bar
from ._reconcile import add_reconcile_command, add_settle_options, reconcile, settle_after_run
from ._signals import StopSignals, TerminatedError, watch_for_stop
from ._summary import Summary

__all__ = ["ExitCode", "main"]


_EXIT_CODES = "\n".join(f"  {code.value:>3}  {code.meaning}" for code in ExitCode)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ccmessaging-async",
        description="Create CC-Messaging anonymous calls. Credentials come from "
        f"{ENV_BASE_URL}, {ENV_APP_KEY} and {ENV_APP_SECRET}.",
        epilog=f"exit codes of call and batch:\n{_EXIT_CODES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    call = commands.add_parser("call", help="create one call and print the result as JSON")
    call.add_argument("--called", required=True, help="the number to call")
    call.add_argument("--caller-present", help="the number shown to the called party")
    call.add_argument("--call-data", help="call data")
    add_insecure_option(call)
    add_loop_option(call)

    batch = commands.add_parser(
        "batch",
        help="create the calls of a CSV/JSONL file; re-run the same command to resume",
        description="Create the calls of a CSV (header called,caller_present,call_data) or\n"
        "JSONL file. The job's state lives in a job file (OUT.job unless --job): re-run\n"
        "the same command to resume; a row is never dialled twice unless --resend-unknown.",
        epilog=f"exit codes:\n{_EXIT_CODES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    batch.add_argument(
        "input",
        type=Path,
        nargs="?",
        help="the input; on a resume it may be left out, and if given must be unchanged",
    )
    batch.add_argument(
        "--out", type=Path, required=True, help="the report: JSONL, or CSV if it ends in .csv"
    )
    batch.add_argument(
        "--job",
        help="the job file (default: OUT.job), or a postgresql:// URL with --name: a job that "
        "workers on other machines can join (`work`)",
    )
    batch.add_argument(
        "--region",
        metavar="CC",
        help="read numbers without a country code as this region's (CN, US, ...) and check "
        "every number with libphonenumber (the phone extra)",
    )
    batch.add_argument(
        "--send-as",
        choices=("input", "e164", "national"),
        default="input",
        help="send numbers as written (input, the default: the dial plan is yours), as E.164 "
        "or in national form",
    )
    batch.add_argument(
        "--allow-duplicates",
        action="store_true",
        help="dial every row, also a number an earlier row has (by default each number once "
        "per job)",
    )
    _add_run_options(batch)

    work = commands.add_parser(
        "work",
        help="join a job in PostgreSQL as one more worker, until no row is left",
        description="Dial the rows of a job that `batch --job postgresql://... --name NAME`\n"
        "started, beside its other workers, on this machine or another one.",
        epilog=f"exit codes:\n{_EXIT_CODES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    work.add_argument("--job", required=True, help="the job's database: a postgresql:// URL")
    _add_run_options(work)

    status = commands.add_parser("status", help="show a job's counts, also while it runs")
    status.add_argument("job", help="the job file (or its report), or a postgresql:// URL")
    _add_name_option(status)
    status.add_argument(
        "--json", action="store_true", help="print one JSON object (for scripts and monitoring)"
    )

    add_reconcile_command(commands)

    export_ = commands.add_parser("export", help="write a job's report again")
    export_.add_argument("job", help="the job file (or its report), or a postgresql:// URL")
    export_.add_argument("--out", type=Path, required=True, help="JSONL, or CSV if .csv")
    _add_name_option(export_)

    emulator = commands.add_parser("emulator", help="serve the platform emulator on loopback")
    emulator.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    emulator.add_argument("--port", type=int, default=8080, help="port to listen on (8080)")
    emulator.add_argument(
        "--capacity",
        type=float,
        metavar="CALLS_PER_S",
        help="throttle createcall beyond this many calls/s (a token bucket), as a tenant's "
        "gateway does",
    )
    emulator.add_argument(
        "--burst", type=int, default=10, help="calls at once within --capacity (10)"
    )
    emulator.add_argument(
        "--throttle-code",
        action="store_true",
        help="beyond --capacity answer HTTP 200 with resultCode 10010000002, not 429",
    )

    demo = commands.add_parser(
        "demo", help="run a batch against the emulator over real loopback sockets"
    )
    demo.add_argument("--calls", type=int, default=1000, help="calls to create (1000)")
    demo.add_argument("--concurrency", type=int, default=50, help="calls in flight (50)")
    demo.add_argument("--rate", type=float, default=None, help="at most this many calls/s")
    add_loop_option(demo)
    return parser


def _add_name_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--name", help="the job's name, when the job is in a database (which holds many)"
    )


def _add_run_options(command: argparse.ArgumentParser) -> None:
    """Add the options of a run of a job: pace, resending, lease, transport, loop."""
    _add_name_option(command)
    command.add_argument("--concurrency", type=int, default=50, help="calls in flight (50)")
    command.add_argument("--rate", type=float, default=None, help="at most this many calls/s")
    command.add_argument(
        "--max-throttle-wait",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="stop dialling (exit 5) when the platform throttles every call this long (600)",
    )
    command.add_argument(
        "--resend-unknown",
        action="store_true",
        help="dial again the rows whose outcome is unknown (may ring someone twice)",
    )
    command.add_argument(
        "--suppress",
        type=Path,
        metavar="FILE",
        help="a do-not-call list, one number per line, read again when it changes: its "
        "numbers are skipped, never dialled",
    )
    command.add_argument(
        "--window",
        metavar="HH:MM-HH:MM",
        help="calling hours, in each called person's local time (09:00-20:00): rows outside "
        "them wait, pending, and the job waits for them",
    )
    command.add_argument(
        "--days", help="the days of --window (mon-fri, sat,sun; every day by default)"
    )
    command.add_argument(
        "--tz",
        metavar="ZONE",
        help="the time zone of numbers with none known (an IANA name: Asia/Shanghai)",
    )
    command.add_argument(
        "--reconcile-wait",
        type=float,
        metavar="SECONDS",
        help="at the end, settle the run's unknown rows from the platform's call records, "
        "waiting up to this long for their records (see reconcile)",
    )
    add_settle_options(command)
    command.add_argument(
        "--lease",
        type=float,
        default=DEFAULT_LEASE,
        metavar="SECONDS",
        help="a job in PostgreSQL: how long a worker's rows outlive its last heartbeat "
        f"before other workers settle them ({DEFAULT_LEASE:g})",
    )
    command.add_argument(
        "--transport",
        choices=("auto", "httpx", "aiohttp"),
        default="auto",
        help="aiohttp: about half the CPU per call (the aiohttp extra, which the cli extra "
        "installs); auto (the default): aiohttp when installed, else httpx",
    )
    add_insecure_option(command)
    add_loop_option(command)


@contextmanager
def _signals_as_exceptions() -> Iterator[None]:
    """SIGTERM ends a command like Ctrl-C; a file-size limit is an error, not a kill."""

    def terminate(_signum: int, _frame: FrameType | None) -> None:
        raise TerminatedError

    previous_term = signal.signal(signal.SIGTERM, terminate)
    xfsz = getattr(signal, "SIGXFSZ", None)  # POSIX only
    previous_xfsz = None if xfsz is None else signal.signal(xfsz, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        if xfsz is not None:
            signal.signal(xfsz, previous_xfsz)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the console script; return its exit code."""
    args = _parser().parse_args(argv)
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "call": _call,
        "batch": _batch,
        "work": _batch,
        "status": _status,
        "reconcile": reconcile,
        "export": _export,
        "emulator": _emulator,
        "demo": _demo,
    }
    try:
        with _signals_as_exceptions():
            return handlers[args.command](args)
    except (KeyboardInterrupt, TerminatedError, CCMessagingError, JobRefusedError) as exc:
        code, message = _ending(exc, resumable=args.command in ("batch", "work"))
    except (sqlite3.Error, JobStoppedError) as exc:
        code, message = ExitCode.STORAGE, f"error: the job could not be written: {exc}"
    except OSError as exc:
        # A disk that is full, over quota, read-only or past a size limit is storage
        # trouble (exit 4), even when it surfaces outside the run, such as at close.
        storage = exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)
        code = ExitCode.STORAGE if storage else ExitCode.USAGE
        message = f"error: {exc}"
    except ValueError as exc:
        code, message = ExitCode.USAGE, f"error: {exc}"
    except storage_errors() as exc:  # the job's database (the postgres extra)
        code, message = ExitCode.STORAGE, f"error: the job could not be written: {exc}"
    except ModuleNotFoundError as exc:
        extra = _EXTRAS.get((exc.name or "").partition(".")[0])
        if extra is None:
            raise
        code = ExitCode.USAGE
        message = (
            f"error: {args.command} needs the {extra} extra: "
            f"pip install 'ccmessaging-async[{extra}]'"
        )
    print(message, file=sys.stderr)
    return code


#: The modules the extras install (the SDK itself needs none of them), by extra.
_EXTRAS = {
    "uvicorn": "cli",
    "rich": "cli",
    "aiohttp": "aiohttp",
    "h2": "http2",
    "phonenumbers": "phone",
    "psycopg": "postgres",
    "opentelemetry": "otel",
}

#: What ends a command early, in the order it is checked: its exit code and message.
_ENDINGS: tuple[tuple[type[BaseException], ExitCode, str], ...] = (
    (KeyboardInterrupt, ExitCode.INTERRUPTED, "interrupted{resume}"),
    (TerminatedError, ExitCode.TERMINATED, "terminated{resume}"),
    (UsageError, ExitCode.USAGE, "error: {exc}"),
    (JobRefusedError, ExitCode.USAGE, "error: {exc}"),
    (OutcomeUnknownError, ExitCode.UNKNOWN, "error: {name}: {exc}"),
    (NotCreatedError, ExitCode.NOT_CREATED, "error: {name}: {exc}"),
)


def _ending(exc: BaseException, *, resumable: bool) -> tuple[ExitCode, str]:
    resume = "; re-run the same command to resume" if resumable else ""
    for kind, code, message in _ENDINGS:
        if isinstance(exc, kind):
            return code, message.format(exc=exc, name=type(exc).__name__, resume=resume)
    raise exc


def _call(args: argparse.Namespace) -> int:
    request = CreateCallRequest(
        called=args.called, caller_present=args.caller_present, call_data=args.call_data
    )

    make_session = session_factory("httpx", insecure=args.allow_insecure_http)

    async def run() -> dict[str, Any]:
        async with make_session() as session:
            return attrs.asdict(await session.create_call(request))

    print(json.dumps(run_on_loop(run, args), ensure_ascii=False))
    return ExitCode.OK


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


def _batch(args: argparse.Namespace) -> int:
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


def _status(args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps(status_data(args.job, args.name), ensure_ascii=False))
    else:
        print(status_text(args.job, args.name))
    return ExitCode.OK


def _export(args: argparse.Namespace) -> int:
    lines = export(args.job, args.out, args.name)
    print(f"{lines} outcomes written to {args.out}")
    return ExitCode.OK


def _emulator(args: argparse.Namespace) -> int:
    import uvicorn  # noqa: PLC0415 - an optional dependency (the cli extra)

    from ..testing import Emulator  # noqa: PLC0415 - only this command needs it

    _check_free(args.host, args.port)
    emulator = Emulator()
    if args.capacity is not None:
        if not (0 < args.capacity < float("inf")) or args.burst < 1:
            raise ValueError("--capacity must be above 0 and --burst at least 1")
        emulator.set_capacity(args.capacity, burst=args.burst, result_code=args.throttle_code)
        print(f"createcall is throttled beyond {args.capacity:g} calls/s (burst {args.burst})")
    print("Point the SDK at the emulator with:")
    print(f"  export {ENV_BASE_URL}=http://{args.host}:{args.port}")
    print(f"  export {ENV_APP_KEY}={emulator.app_key}")
    print(f"  export {ENV_APP_SECRET}={emulator.app_secret}")
    sys.stdout.flush()
    uvicorn.run(emulator, host=args.host, port=args.port, log_level="warning", lifespan="off")
    return ExitCode.OK


def _check_free(host: str, port: int) -> None:
    """Refuse, before printing anything, an address the emulator could not listen on."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        raise ConfigurationError(
            f"the emulator cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None


def _demo(args: argparse.Namespace) -> int:
    from ..testing import Emulator, EmulatorServer  # noqa: PLC0415 - only this command

    if args.calls < 1 or args.concurrency < 1:
        raise ValueError("--calls and --concurrency must be at least 1")
    emulator = Emulator()

    async def run(url: str) -> Summary:
        summary = Summary()
        requests = (
            CreateCallRequest(called=f"1380000{i:04d}", caller_present="95599")
            for i in range(args.calls)
        )
        async with AsyncSession(url, emulator.app_key, emulator.app_secret) as session:
            with progress_bar(args.calls, "demo calls") as advance:
                async for outcome in session.create_calls(
                    requests, concurrency=args.concurrency, rate=args.rate
                ):
                    summary.add(outcome.status, outcome.latency if outcome.attempts else None)
                    advance(outcome.status.value)
        summary.stop()
        return summary

    with EmulatorServer(emulator) as server:
        print(
            f"emulator listening on {server.url}; {args.calls} calls, "
            f"concurrency {args.concurrency}"
        )
        summary = run_on_loop(run, args, server.url)
    print(summary.line())
    duplicates = emulator.duplicates()
    print(
        f"emulator: {len(emulator.calls)} calls created, {emulator.token_requests} token "
        f"request(s), {len(duplicates)} numbers called twice"
    )
    ok = summary.counts[OutcomeStatus.SUCCEEDED] == args.calls and not duplicates
    return ExitCode.OK if ok else ExitCode.NOT_CREATED
