"""What a job store holds and hands out: its input's identity, rows to dial, outcomes."""

from __future__ import annotations

import attrs

__all__ = ["STATES", "Final", "InputIdentity", "JobInfo", "PendingRow", "Recorded"]

#: A row's states: ``pending -> sending -> succeeded | failed | unknown``.
STATES = ("pending", "sending", "succeeded", "failed", "unknown")


@attrs.frozen(slots=True)
class InputIdentity:
    """What identifies an input's content."""

    size: int
    sha256: str


@attrs.frozen(slots=True)
class JobInfo:
    """What a job store records about its input."""

    input_path: str
    input_format: str
    identity: InputIdentity
    rows: int
    created_at: str


@attrs.frozen(slots=True)
class PendingRow:
    """A row still to be dialled."""

    row: int
    line: int
    called: str
    caller_present: str | None
    call_data: str | None


@attrs.frozen(slots=True)
class Final:
    """The one outcome of a row, to be committed."""

    row: int
    line: int
    called: str | None
    status: str
    result: str | None  # JSON text
    result_code: str | None
    error: str | None
    attempts: int
    latency_ms: float


@attrs.frozen(slots=True)
class Recorded:
    """A committed outcome, numbered in the order rows ended."""

    seq: int
    final: Final
