"""The library's way into a batch job: open it, run it with a session, read it, export it.

Every blocking step (the store's database work, reading the input) runs in a worker
thread, so these functions may be awaited from any asyncio or trio program.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Literal

import anyio
import attrs

from .._models import CreateCallRequest
from .._session import AsyncSession
from ._errors import storage_errors
from ._hours import CallingHours
from ._job import DEFAULT_LEASE, OpenedJob, is_database_url, open_stored_job
from ._numbers import NumberPlan
from ._reconcile import DEFAULT_GRACE, DEFAULT_SKEW, Reconciliation, settle_unknown
from ._records import Recorded, Waiting
from ._runner import Run, StopControl, run_job
from ._status import export as export_report
from ._status import status_text

__all__ = ["Job", "describe_job", "export_job", "open_job"]


def _location(store: str | os.PathLike[str]) -> Path | str:
    return str(store) if is_database_url(str(store)) else Path(store)


@attrs.define(eq=False)
class Job:
    """An open job, ready for one run by this process (see :func:`open_job`)."""

    _job: OpenedJob
    _ran: Run | None = None
    _reconciled: bool = False

    @property
    def label(self) -> str:
        """How messages name the job (a path, or a name and a database without password)."""
        return self._job.store.label

    @property
    def imported(self) -> int:
        """Rows taken in from the input when the job was opened (0 on a resume)."""
        return self._job.imported

    @property
    def interrupted(self) -> int:
        """Rows an earlier run or a lost worker left being sent, now ``unknown``."""
        return self._job.interrupted

    @property
    def invalid(self) -> int:
        """Rows that cannot be sent (an input error, an invalid number), failed undialled."""
        return self._job.invalid

    @property
    def duplicates(self) -> int:
        """Rows whose number an earlier row has, ``skipped`` without dialling when opened."""
        return self._job.duplicates

    async def counts(self) -> dict[str, int]:
        """Return the job's rows by state (every worker's): pending, sending, ... unknown."""
        return await anyio.to_thread.run_sync(self._job.store.counts)

    async def run(
        self,
        session: AsyncSession,
        *,
        concurrency: int = 50,
        rate: float | None = None,
        max_throttle_wait: float = 600.0,
        stop: anyio.Event | None = None,
        on_recorded: Callable[[list[Recorded]], None] | None = None,
        is_suppressed: Callable[[str], Awaitable[bool]] | None = None,
        calling_hours: CallingHours | None = None,
        on_waiting: Callable[[Waiting], None] | None = None,
    ) -> Run:
        """Dial the job's pending rows through ``session``; return how the run went.

        Every row this run dials is committed as ``sending`` before its request can leave
        and gets exactly one recorded outcome. ``rate`` is the most calls per second (on a
        job in PostgreSQL: the job's, every worker's calls together; a worker without one
        keeps to the job's); throttling slows the run below it, and after
        ``max_throttle_wait`` seconds with nothing accepted the run stops (see
        :class:`~ccmessaging_async.Pacing`). Setting ``stop`` ends the run: no new calls,
        the calls in flight end. ``on_recorded`` runs after each commit with the
        outcomes it recorded. ``is_suppressed`` (a :class:`SuppressionList`, or any async
        callable) is asked about each row's number (E.164 where the job could tell) at
        the last moment before it is dialled: a suppressed row ends ``skipped``, and if
        it raises, the run stops (nothing is dialled unchecked). With ``calling_hours``
        a row is dialled only inside them in its number's local time; the others wait,
        ``pending``, and the run waits for them rather than ending (``stop`` ends it),
        calling ``on_waiting`` each time it looks again.
        On a job in PostgreSQL the run ends when no row is left to take, also by other
        workers. Once per :func:`open_job`.

        Raises :class:`~ccmessaging_async.ConfigurationError` before anything is dialled
        if ``calling_hours`` cannot place every number in a zone.
        """
        if self._ran is not None:
            raise RuntimeError("this job was already run once; open it again to resume")
        if calling_hours is not None:
            info = await anyio.to_thread.run_sync(self._job.store.info)
            calling_hours.check(None if info is None else info.rules.default_region)

        async def watch(control: StopControl) -> None:
            if stop is not None:
                await stop.wait()
                control.stop()

        pacing = await anyio.to_thread.run_sync(
            lambda: self._job.pacing(rate, max_throttle_wait=max_throttle_wait)
        )
        self._ran = await run_job(
            session,
            self._job,
            concurrency=concurrency,
            pacing=pacing,
            on_recorded=on_recorded or (lambda _records: None),
            watch_stop=watch,
            storage_errors=storage_errors(),
            is_suppressed=is_suppressed,
            hours=calling_hours,
            on_waiting=on_waiting or (lambda _waiting: None),
        )
        return self._ran

    async def reconcile(
        self,
        session: AsyncSession,
        *,
        grace: float = DEFAULT_GRACE,
        skew: float = DEFAULT_SKEW,
        wait: float = 0.0,
        on_recorded: Callable[[list[Recorded]], None] | None = None,
    ) -> Reconciliation:
        """Settle the job's ``unknown`` rows from the platform's call records; never dial.

        A row with one call record of its number (and its ``caller_present``) that
        started within an attempt's window (``skew`` seconds wider each way) becomes
        ``succeeded``, the record's serial number in its new report line. A row with no
        such record once ``grace`` seconds have passed since its attempt becomes
        ``failed`` as not created, provided the records of that time hold every call the
        job created then. Anything else stays ``unknown``; the result says why, row by
        row. While rows wait for the grace, looks again for up to ``wait`` seconds. A
        row settled as not created is dialled again only on a resume with
        ``resend_unknown=True``. May follow :meth:`run` in the same opening.
        """
        job = self._job

        def recorded(records: list[Recorded]) -> None:
            if job.report is not None:
                job.report.append(records)
            if on_recorded is not None:
                on_recorded(records)

        self._reconciled = True
        return await settle_unknown(
            session, job.store, grace=grace, skew=skew, wait=wait, on_recorded=recorded
        )

    async def aclose(self) -> None:
        """Record how the run ended, write the report (if one was asked for), close the store."""
        ran = self._ran
        how = "reconciled" if ran is None and self._reconciled else "finished"
        how = how if ran is None else ran.how
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(
                lambda: self._job.close(how, None if ran is None else ran.pacing)
            )


@contextlib.asynccontextmanager
async def open_job(
    store: str | os.PathLike[str],
    *,
    name: str | None = None,
    input: str | os.PathLike[str] | None = None,  # noqa: A002 - the CLI's word for it
    requests: Iterable[CreateCallRequest] | None = None,
    report: str | os.PathLike[str] | None = None,
    resend_unknown: bool = False,
    lease: float = DEFAULT_LEASE,
    default_region: str | None = None,
    send_as: Literal["input", "e164", "national"] = "input",
    allow_duplicates: bool = False,
) -> AsyncIterator[Job]:
    """Open (or start) the job in ``store`` for one run by this process.

    ``store`` is a job file's path (SQLite: one run at a time) or a ``postgresql://`` URL
    with ``name`` (a database holds many jobs; many workers may run one). A new job takes
    its rows from ``input`` (a CSV or JSONL file) or ``requests``; given again on a
    resume, they must be the same, or the job is refused. ``report`` (JSONL, or CSV if it
    ends in ``.csv``) is written as the job's outcomes are recorded (a job file) or when
    the run ends (the whole job, every worker's rows). Raises :class:`JobRefusedError`
    before anything is dialled when that would be unsafe.

    Numbers are checked as the job takes its input in: ``default_region`` (``"CN"``)
    reads those without a country code and checks them with libphonenumber (the
    ``phone`` extra); ``send_as`` sends them as written, as ``e164`` or ``national``.
    A row whose number an earlier row has ends ``skipped``, unless ``allow_duplicates``.
    These three are the job's: a resume that gives the input gives the same.
    """
    numbers = NumberPlan(default_region, send_as)
    job = await anyio.to_thread.run_sync(
        lambda: open_stored_job(
            None if input is None else Path(input),
            None if report is None else Path(report),
            _location(store),
            name=name,
            resend_unknown=resend_unknown,
            lease=lease,
            requests=requests,
            numbers=numbers,
            allow_duplicates=allow_duplicates,
        )
    )
    opened = Job(job)
    try:
        yield opened
    finally:
        await opened.aclose()


async def describe_job(store: str | os.PathLike[str], *, name: str | None = None) -> str:
    """Return the job's status as ``ccmessaging-async status`` prints it (also while it runs)."""
    return await anyio.to_thread.run_sync(lambda: status_text(_location(store), name))


async def export_job(
    store: str | os.PathLike[str], out: str | os.PathLike[str], *, name: str | None = None
) -> int:
    """Write the job's whole report to ``out`` (JSONL, or CSV if ``.csv``); return its lines."""
    return await anyio.to_thread.run_sync(lambda: export_report(_location(store), Path(out), name))
