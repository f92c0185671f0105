"""What the runner needs of a job store, whichever database holds the job.

Two stores implement it: :class:`~._sqlite.SQLiteStore` (a job file, one run at a time)
and :class:`~._postgres.PostgresStore` (a job in a PostgreSQL database, many workers).
Every method blocks; the runner calls them from worker threads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

import attrs

from ._input import InputRow
from ._records import (
    Deferral,
    Final,
    InputIdentity,
    InputRules,
    JobInfo,
    PendingRow,
    Recorded,
    RunProgress,
    UnknownRow,
    Waiting,
)

__all__ = ["Committed", "JobStore", "SharedPaceStore", "Turns"]


@attrs.frozen(slots=True)
class Committed:
    """What one commit did: the outcomes it recorded, and the claims it refused."""

    recorded: list[Recorded]
    #: Rows whose claim did not match this worker's lease: they must not be dialled.
    refused: frozenset[int] = frozenset()


@attrs.frozen(slots=True)
class Turns:
    """Turns reserved at a job's pace: the first in ``start_in`` s, then every ``interval``."""

    start_in: float
    interval: float
    count: int


class SharedPaceStore(Protocol):
    """A store whose job's pace is shared by its workers (the database keeps it)."""

    def set_rate(self, rate: float) -> None:
        """Make ``rate`` the job's rate: every worker's calls together, per second."""
        ...

    def reserve_turns(self, count: int, window: float) -> Turns | None:
        """Reserve ``count`` turns at the job's pace (``None``: the job has no pace yet)."""
        ...

    def slow_down(self, factor: float, window: float, found: float | None = None) -> None:
        """Lower the job's pace: to ``found`` per worker running if given, else by ``factor``."""
        ...

    def pause(self, seconds: float) -> None:
        """Hold every worker's turns for ``seconds``."""
        ...


class JobStore(Protocol):
    """One job, opened by one run (a worker)."""

    #: How messages name the job (a path, or a database and a job name; never a password).
    label: str
    #: Whether this run is the job's only writer, so its report can follow each commit.
    single_writer: bool

    @property
    def shared_pace(self) -> SharedPaceStore | None:
        """The job's pace if its workers share one (kept by the store), else ``None``."""
        ...

    @property
    def lease(self) -> float | None:
        """Seconds a worker may go without renewing its lease (``None``: it holds a lock)."""
        ...

    def info(self) -> JobInfo | None:
        """Return what the job knows of its input (``None``: not taken in yet)."""
        ...

    def import_rows(
        self,
        rows: Iterable[InputRow],
        input_path: str,
        input_format: str,
        identity: Callable[[], InputIdentity],
        rules: InputRules,
    ) -> int:
        """Take in the input's rows atomically (all or none); return their count.

        ``identity`` is asked once every row was read. Unless ``rules`` allow duplicates, a
        row whose number an earlier row has is marked as its duplicate.
        """
        ...

    def digests(self) -> Iterator[tuple[int, int, bytes]]:
        """``(row, line, digest)`` of every row, in order."""
        ...

    def settle_interrupted(self, *, resend_unknown: bool) -> int:
        """Make rows left ``sending`` by a run that ended or died ``unknown``; return how many.

        With ``resend_unknown`` the job's ``unknown`` rows then become ``pending`` again.
        """
        ...

    def fail_invalid(self) -> int:
        """Give each pending row that cannot be sent (its input error) its failed outcome."""
        ...

    def skip_duplicates(self) -> int:
        """End each pending row marked as a duplicate, ``skipped`` without a call."""
        ...

    def take(self, limit: int) -> list[PendingRow]:
        """Take up to ``limit`` pending rows for this run to dial (claimed, not yet sending).

        A row deferred until a moment still to come is not taken.
        """
        ...

    def forget_waits(self) -> int:
        """Let rows deferred by an earlier run be looked at again (where one run works)."""
        ...

    def now(self) -> float:
        """Return the store's clock, Unix time (a database's clock, not this machine's)."""
        ...

    def waiting(self) -> Waiting:
        """Return the pending rows deferred until a moment still to come."""
        ...

    def others_working(self) -> bool:
        """Whether rows are still held by other live runs (they may come back to pending)."""
        ...

    def keep_alive(self) -> bool:
        """Renew this run's lease; return whether it still holds it."""
        ...

    def commit(
        self,
        claims: list[int],
        finals: list[Final],
        releases: Iterable[int],
        deferrals: Iterable[Deferral] = (),
        progress: RunProgress | None = None,
    ) -> Committed:
        """Move ``claims`` to ``sending`` (fenced), ``releases`` back, record ``finals``.

        ``deferrals`` go back to ``pending`` (from being held, or sent and throttled),
        not to be taken before their moment; ``progress`` is noted as this run's so far.
        In one durable transaction.
        """
        ...

    def end_run(self, how: str, *, throttles: int = 0, pace: float | None = None) -> None:
        """Record how this run ended; give back the rows it took and did not dial."""
        ...

    def close(self) -> None:
        """Close the store."""
        ...

    def unknown_rows(self) -> list[UnknownRow]:
        """Return the ``unknown`` rows, each with its attempts since its last known outcome."""
        ...

    def created_calls(self, start: float, end: float) -> list[tuple[str, float]]:
        """Return ``(serial number, ended)`` of the calls the job created, sent in a span.

        ``start`` and ``end`` are Unix times on the store's clock.
        """
        ...

    def settle(self, finals: list[Final]) -> list[Recorded]:
        """Record how ``unknown`` rows were settled, in one transaction; return what it did.

        A row that is no longer ``unknown`` (another worker resent it) is left as it is.
        """
        ...

    def counts(self) -> dict[str, int]:
        """Rows by state, every state named."""
        ...

    def outcome_count(self) -> int:
        """How many outcomes are recorded (the report's line count)."""
        ...

    def outcomes(self, after: int = 0) -> Iterator[Recorded]:
        """Yield the recorded outcomes in order, from the ``after + 1``-th on."""
        ...
