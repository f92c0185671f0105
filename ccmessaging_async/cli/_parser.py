"""The console script's command line: its commands, their options and help."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import __version__
from .._config import ENV_APP_KEY, ENV_APP_SECRET, ENV_BASE_URL
from ..jobs._job import DEFAULT_LEASE
from ._connection import add_insecure_option, add_loop_option
from ._exit import ExitCode
from ._reconcile import add_reconcile_command, add_settle_options

__all__ = ["build_parser"]


_EXIT_CODES = "\n".join(f"  {code.value:>3}  {code.meaning}" for code in ExitCode)


def build_parser() -> argparse.ArgumentParser:
    """Return the console script's arguments: a command and its options (``--help``)."""
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
