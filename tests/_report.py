"""Collects one row per fault scenario and prints the table at the end of the run."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import sniffio

from ccmessaging_async import CallOutcome, OutcomeStatus
from ccmessaging_async.testing import Emulator

ROWS: list[tuple[str, int, int, int, int, int]] = []


def record_scenario(name: str, outcomes: Iterable[CallOutcome], emulator: Emulator) -> None:
    """Add the scenario's counts (calls, succeeded, failed, unknown, duplicates)."""
    with contextlib.suppress(sniffio.AsyncLibraryNotFoundError):
        name = f"{name} ({sniffio.current_async_library()})"
    counts = dict.fromkeys(OutcomeStatus, 0)
    total = 0
    for outcome in outcomes:
        counts[outcome.status] += 1
        total += 1
    ROWS.append(
        (
            name,
            total,
            counts[OutcomeStatus.SUCCEEDED],
            counts[OutcomeStatus.FAILED],
            counts[OutcomeStatus.UNKNOWN],
            len(emulator.duplicates()),
        )
    )


def table() -> str:
    """The rows as a Markdown table."""
    lines = [
        "| scenario | calls | succeeded | failed | unknown | duplicates |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {r[5]} |" for r in ROWS]
    return "\n".join(lines)
