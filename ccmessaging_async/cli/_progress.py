"""A progress bar on a terminal (rich, from the cli extra); elsewhere a line now and then.

With stderr not a terminal (cron, a CI log, a pipe), a plain line says how far the run
has got every :data:`LINE_EVERY` seconds while rows end.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .._outcomes import OutcomeStatus

__all__ = ["Advance", "progress_bar", "stderr_is_terminal"]

#: Called once per ended row with its status (an outcome's, or a job's ``skipped``).
Advance = Callable[[str], None]

#: Seconds between progress lines when stderr is not a terminal.
LINE_EVERY = 10.0


def _progress_lines(total: int | None, label: str, note: Callable[[], str]) -> Advance:
    counts: dict[str, int] = {}
    started = last = time.monotonic()

    def advance(status: str) -> None:
        nonlocal last
        counts[status] = counts.get(status, 0) + 1
        now = time.monotonic()
        if now - last < LINE_EVERY:
            return
        last = now
        done = sum(counts.values())
        of = f"/{total}" if total is not None else ""
        shown = ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))
        print(
            f"{label}: {done}{of} ended ({shown}) in {now - started:.0f} s{note()}",
            file=sys.stderr,
            flush=True,
        )

    return advance


def stderr_is_terminal() -> bool:
    """Whether a progress bar makes sense."""
    return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


@contextmanager
def progress_bar(
    total: int | None, label: str, note: Callable[[], str] = lambda: ""
) -> Iterator[Advance]:
    """Yield a function that advances a bar of ``total`` rows by one ended row.

    ``note()`` is shown after the counts (the pace, say), as of the last row ended.
    """
    if not stderr_is_terminal():
        yield _progress_lines(total, label, note)
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
            "ok {task.fields[succeeded]} failed {task.fields[failed]} "
            "unknown {task.fields[unknown]}{task.fields[skipped_note]}{task.fields[note]}"
        ),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=False) as progress:
        counts: dict[str, Any] = dict.fromkeys((s.value for s in OutcomeStatus), 0)
        skipped = 0
        task = progress.add_task(label, total=total, note=note(), skipped_note="", **counts)

        def advance(status: str) -> None:
            nonlocal skipped
            if status == "skipped":
                skipped += 1
            else:
                counts[status] += 1
            shown = f" skipped {skipped}" if skipped else ""
            progress.update(task, advance=1, note=note(), skipped_note=shown, **counts)

        yield advance
