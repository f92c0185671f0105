"""What a job store holds and hands out: its input's identity, rows to dial, outcomes."""

from __future__ import annotations

from collections.abc import Iterable

import attrs

__all__ = [
    "SETTLED_BY_RECORDS",
    "STATES",
    "Attempt",
    "Deferral",
    "Final",
    "InputIdentity",
    "InputRules",
    "JobInfo",
    "PendingRow",
    "Recorded",
    "RunProgress",
    "UnknownRow",
    "Waiting",
    "unknown_rows_of",
]

#: A row's states: ``pending -> sending -> succeeded | failed | unknown``, or
#: ``pending -> skipped`` (ended without a call by the job's rules: a duplicate, a
#: suppressed number).
STATES = ("pending", "sending", "succeeded", "failed", "unknown", "skipped")

#: How a row whose outcome was unknown was settled afterwards: from the platform's records.
SETTLED_BY_RECORDS = "call records"


@attrs.frozen(slots=True)
class InputIdentity:
    """What identifies an input's content."""

    size: int
    sha256: str


@attrs.frozen(slots=True)
class InputRules:
    """How a job took its input in: fixed when it is made, the same on every resume."""

    #: How numbers without a country code were read (``None``: as written).
    default_region: str | None = None
    #: How numbers are sent: ``input`` (as written), ``e164`` or ``national``.
    send_as: str = "input"
    #: Whether a number already in the job is dialled again (``None``: the job was taken
    #: in by a release that did not look for duplicates).
    allow_duplicates: bool | None = False

    def same_as(self, given: InputRules) -> bool:
        """Whether ``given`` (a resume's options) read the input as these rules did."""
        return (self.default_region, self.send_as) == (given.default_region, given.send_as) and (
            self.allow_duplicates is None or self.allow_duplicates == given.allow_duplicates
        )

    def describe(self) -> str:
        """Name the rules as command-line options."""
        words = [f"--region {self.default_region}"] if self.default_region else []
        words += [f"--send-as {self.send_as}"] if self.send_as != "input" else []
        words += ["--allow-duplicates"] if self.allow_duplicates else []
        return " ".join(words) or "no --region, --send-as or --allow-duplicates"


@attrs.frozen(slots=True)
class JobInfo:
    """What a job store records about its input."""

    input_path: str
    input_format: str
    identity: InputIdentity
    rows: int
    created_at: str
    rules: InputRules = InputRules()


@attrs.frozen(slots=True)
class PendingRow:
    """A row still to be dialled."""

    row: int
    line: int
    called: str
    caller_present: str | None
    call_data: str | None
    #: Who ``called`` reaches (E.164 when the job could tell), for the job's rules.
    number: str | None = None
    #: Until when it waited for its calling hours, if it did (Unix time).
    not_before: float | None = None


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
    #: How an unknown outcome was settled afterwards (``None``: the call's own outcome).
    settled_by: str | None = None

    @classmethod
    def without_call(
        cls,
        row: int,
        line: int,
        called: str | None,
        status: str,
        *,
        error: str | None = None,
        result: str | None = None,
        settled_by: str | None = None,
    ) -> Final:
        """Return an outcome reached without dialling: skipped, or settled afterwards."""
        return cls(row, line, called, status, result, None, error, 0, 0.0, settled_by)


@attrs.frozen(slots=True)
class Attempt:
    """One attempt whose outcome is unknown: when its row was claimed, when it ended.

    Times are Unix times on the store's clock. ``sent_at`` is ``None`` for an attempt
    recorded by a release that did not keep it.
    """

    seq: int
    sent_at: float | None
    ended_at: float


@attrs.frozen(slots=True)
class UnknownRow:
    """A row whose outcome is ``unknown``, with what matching it to a call record needs."""

    row: int
    line: int
    #: The number as sent, and the number shown to the called party (if one was given).
    called: str | None
    caller_present: str | None
    #: Its attempts since it was last settled or dialled with a known outcome.
    attempts: tuple[Attempt, ...]


@attrs.frozen(slots=True)
class Recorded:
    """A committed outcome, numbered in the order rows ended."""

    seq: int
    final: Final


@attrs.frozen(slots=True)
class Deferral:
    """A row put off until its calling hours: not taken again before ``not_before``."""

    row: int
    #: Unix time, on the store's clock.
    not_before: float
    #: The moment as said to a person: ``09:00 Asia/Shanghai``.
    waiting_for: str


@attrs.frozen(slots=True)
class Waiting:
    """The pending rows waiting for their calling hours: how many, and the first moment."""

    rows: int = 0
    #: Unix time of the earliest, on the store's clock (``None``: no row waits).
    next_at: float | None = None
    waiting_for: str | None = None

    def describe(self) -> str:
        """``N waiting for calling hours, next at 09:00 Asia/Shanghai``, or nothing."""
        if not self.rows:
            return ""
        return f"{self.rows} waiting for calling hours, next at {self.waiting_for}"


@attrs.frozen(slots=True)
class RunProgress:
    """How a run is being paced so far, kept with the job as it goes (``status`` shows it)."""

    #: Answers that said "too fast" so far.
    throttles: int
    #: The pace now, calls per second (``None``: unlimited).
    pace: float | None


def unknown_rows_of(
    history: Iterable[tuple[int, int, str | None, str | None, int, str, float | None, float]],
) -> list[UnknownRow]:
    """Gather ``unknown`` rows from their outcomes, in order of row then of outcome.

    ``history`` gives ``(row, line, called, caller_present, seq, status, sent_at,
    ended_at)`` per outcome; a row's attempts are its ``unknown`` outcomes since its last
    known one (a settlement, or a call whose outcome was known).
    """
    found: dict[int, UnknownRow] = {}
    for row, line, called, caller, seq, status, sent_at, ended_at in history:
        if status != "unknown":  # a known outcome ends what came before it
            found.pop(row, None)
            continue
        attempt = Attempt(seq, sent_at, ended_at)
        known = found.get(row)
        attempts = (*known.attempts, attempt) if known else (attempt,)
        found[row] = UnknownRow(row, line, called, caller, attempts)
    return list(found.values())
