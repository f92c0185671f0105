"""The ``ccmessaging-async`` console script: call, batch, emulator, demo."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import attrs

from .._aiohttp import aiohttp_transport
from .._batch import CallOutcome, OutcomeStatus
from .._errors import CCMessagingError, ConfigurationError
from .._models import CreateCallRequest
from .._session import ENV_APP_KEY, ENV_APP_SECRET, ENV_BASE_URL, AsyncSession
from ._job import Summary, run_job, stderr_is_terminal

__all__ = ["main"]

EXIT_OK, EXIT_CALLS_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ccmessaging-async",
        description="Create CC-Messaging anonymous calls. Credentials come from "
        f"{ENV_BASE_URL}, {ENV_APP_KEY} and {ENV_APP_SECRET}.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    call = commands.add_parser("call", help="create one call and print the result as JSON")
    call.add_argument("--called", required=True, help="the number to call")
    call.add_argument("--caller-present", help="the number shown to the called party")
    call.add_argument("--call-data", help="call data")

    batch = commands.add_parser(
        "batch", help="create the calls of a CSV/JSONL file; re-run to resume"
    )
    batch.add_argument("input", type=Path, help="CSV (called,caller_present,call_data) or JSONL")
    batch.add_argument("--out", type=Path, required=True, help="output JSONL, also the journal")
    batch.add_argument("--concurrency", type=int, default=50, help="calls in flight (50)")
    batch.add_argument("--rate", type=float, default=None, help="at most this many calls/s")
    batch.add_argument(
        "--resend-unknown",
        action="store_true",
        help="send again rows whose outcome is unknown (may ring someone twice)",
    )
    batch.add_argument(
        "--transport",
        choices=("httpx", "aiohttp"),
        default="httpx",
        help="aiohttp: several times less CPU per call (needs the aiohttp extra)",
    )

    emulator = commands.add_parser("emulator", help="serve the platform emulator on loopback")
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=8080)

    demo = commands.add_parser(
        "demo", help="run a batch against the emulator over real loopback sockets"
    )
    demo.add_argument("--calls", type=int, default=1000)
    demo.add_argument("--concurrency", type=int, default=50)
    demo.add_argument("--rate", type=float, default=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the console script; return its exit code."""
    args = _parser().parse_args(argv)
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "call": _call,
        "batch": _batch,
        "emulator": _emulator,
        "demo": _demo,
    }
    try:
        return handlers[args.command](args)
    except KeyboardInterrupt:
        print("interrupted; re-run the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ConfigurationError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CCMessagingError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_CALLS_FAILED
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _call(args: argparse.Namespace) -> int:
    request = CreateCallRequest(
        called=args.called, caller_present=args.caller_present, call_data=args.call_data
    )

    async def run() -> dict[str, Any]:
        async with AsyncSession.from_env() as session:
            return attrs.asdict(await session.create_call(request))

    print(json.dumps(anyio.run(run), ensure_ascii=False))
    return EXIT_OK


@contextmanager
def _progress(total: int | None, label: str) -> Iterator[Callable[[CallOutcome | None], None]]:
    if not stderr_is_terminal():
        yield lambda _outcome: None
        return
    from rich.progress import (  # noqa: PLC0415 - an optional dependency (the cli extra)
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "ok {task.fields[ok]} failed {task.fields[failed]} unknown {task.fields[unknown]}"
        ),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=False) as progress:
        counts = dict.fromkeys(("ok", "failed", "unknown"), 0)
        task = progress.add_task(label, total=total, ok=0, failed=0, unknown=0)

        def advance(outcome: CallOutcome | None) -> None:
            if outcome is not None:
                key = {
                    OutcomeStatus.SUCCEEDED: "ok",
                    OutcomeStatus.FAILED: "failed",
                    OutcomeStatus.UNKNOWN: "unknown",
                }[outcome.status]
                counts[key] += 1
            progress.update(
                task,
                advance=1,
                ok=counts["ok"],
                failed=counts["failed"],
                unknown=counts["unknown"],
            )

        yield advance


def _count_rows(path: Path) -> int | None:
    if not stderr_is_terminal():
        return None
    with path.open("rb") as handle:
        lines = sum(1 for line in handle if line.strip())
    return lines - (0 if path.suffix.lower() in (".jsonl", ".ndjson", ".json") else 1)


def _exit_code(summary: Summary) -> int:
    bad = summary.counts[OutcomeStatus.FAILED] + summary.counts[OutcomeStatus.UNKNOWN]
    return EXIT_OK if bad == 0 else EXIT_CALLS_FAILED


def _batch(args: argparse.Namespace) -> int:
    if args.concurrency < 1:
        raise ValueError("--concurrency must be at least 1")
    if not args.input.exists():
        raise ValueError(f"input file {args.input} does not exist")

    async def run() -> Summary:
        transport = aiohttp_transport() if args.transport == "aiohttp" else None
        async with AsyncSession.from_env(transport=transport) as session:
            with _progress(_count_rows(args.input), "calls") as progress:
                return await run_job(
                    session,
                    args.input,
                    args.out,
                    concurrency=args.concurrency,
                    rate=args.rate,
                    resend_unknown=args.resend_unknown,
                    progress=progress,
                )

    summary = anyio.run(run)
    print(summary.line())
    return _exit_code(summary)


def _emulator(args: argparse.Namespace) -> int:
    import uvicorn  # noqa: PLC0415 - an optional dependency (the cli extra)

    from ..testing import Emulator  # noqa: PLC0415 - only this command needs it

    emulator = Emulator()
    print("Point the SDK at the emulator with:")
    print(f"  export {ENV_BASE_URL}=http://{args.host}:{args.port}")
    print(f"  export {ENV_APP_KEY}={emulator.app_key}")
    print(f"  export {ENV_APP_SECRET}={emulator.app_secret}")
    sys.stdout.flush()
    uvicorn.run(emulator, host=args.host, port=args.port, log_level="warning", lifespan="off")
    return EXIT_OK


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
            with _progress(args.calls, "demo calls") as progress:
                async for outcome in session.create_calls(
                    requests, concurrency=args.concurrency, rate=args.rate
                ):
                    summary.add(outcome)
                    progress(outcome)
        summary.elapsed = time.perf_counter() - summary.started
        return summary

    with EmulatorServer(emulator) as server:
        print(
            f"emulator listening on {server.url}; {args.calls} calls, "
            f"concurrency {args.concurrency}"
        )
        summary = anyio.run(run, server.url)
    print(summary.line())
    duplicates = emulator.duplicates()
    print(
        f"emulator: {len(emulator.calls)} calls created, {emulator.token_requests} token "
        f"request(s), {len(duplicates)} numbers called twice"
    )
    ok = summary.counts[OutcomeStatus.SUCCEEDED] == args.calls and not duplicates
    return EXIT_OK if ok else EXIT_CALLS_FAILED
