"""The ``ccmessaging-async`` console script and its commands (``--help`` lists them).

The job commands are a thin layer over :mod:`ccmessaging_async.jobs`; their running is
:mod:`._job`, the command line :mod:`._parser`.
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
from types import FrameType
from typing import Any

import attrs

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
from ..jobs._status import export, status_data, status_text
from ._connection import run_on_loop, session_factory
from ._exit import ExitCode
from ._job import run_batch_command
from ._parser import build_parser
from ._progress import progress_bar
from ._reconcile import reconcile
from ._signals import TerminatedError
from ._summary import Summary

__all__ = ["ExitCode", "main"]


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
    args = build_parser().parse_args(argv)
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "call": _call,
        "batch": run_batch_command,
        "work": run_batch_command,
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
