"""Settling a job's unknown outcomes from the platform's call records (SPEC section 5).

The records of the stretches of time the unknown attempts cover are read (near ones in
one range), each stretch checked against the calls the job knows it made, and
:func:`~._matching.decide` says what they settle. Reading records never dials; a row is
settled only while it is still ``unknown``.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable

import anyio
import attrs

from .._models import CallRecord
from .._session import AsyncSession
from ._matching import DEFAULT_GRACE, DEFAULT_SKEW, Span, Unsettled, decide, window
from ._records import Recorded, UnknownRow
from ._store import JobStore

__all__ = ["DEFAULT_GRACE", "DEFAULT_SKEW", "Reconciliation", "Unsettled", "settle_unknown"]

#: Attempts closer together than this are looked up in one range of records.
_GAP = 600.0


@attrs.define
class Reconciliation:
    """What settling a job's unknown rows did."""

    #: Rows settled as created (now ``succeeded``) and as not created (now ``failed``).
    created: int = 0
    not_created: int = 0
    #: The rows still ``unknown``, each with its reason.
    unsettled: list[Unsettled] = attrs.field(factory=list)
    #: Call records read.
    records: int = 0

    def describe(self) -> str:
        """``settled from the call records: 3 created, 1 not created; 2 still unknown``."""
        left = f"; {len(self.unsettled)} still unknown" if self.unsettled else ""
        return (
            f"settled from the call records: {self.created} created, "
            f"{self.not_created} not created{left}"
        )


def _spans(rows: Iterable[UnknownRow], skew: float) -> list[tuple[float, float]]:
    """Return the stretches of time to read: the attempts' windows, near ones merged."""
    windows = sorted(
        window(a.sent_at, a.ended_at, skew)
        for row in rows
        for a in row.attempts
        if a.sent_at is not None
    )
    merged: list[tuple[float, float]] = []
    for start, end in windows:
        if merged and start <= merged[-1][1] + _GAP:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _at(unix: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(unix, datetime.UTC)


async def _read(
    session: AsyncSession,
    store: JobStore,
    rows: list[UnknownRow],
    *,
    now: float,
    grace: float,
    skew: float,
) -> tuple[list[CallRecord], list[Span], set[str]]:
    """Read the records of every stretch the rows' attempts cover; check each stretch.

    A stretch's absence is evidence only if its records hold every call the job
    created in it (and recorded long enough ago to have appeared).
    """
    records: dict[str, CallRecord] = {}
    spans: list[Span] = []
    known: set[str] = set()
    for start, end in _spans(rows, skew):
        found: set[str] = set()
        # Read wider than the span by the skew, so that the record of every call the job
        # sent inside the span is read, whatever the two clocks.
        async for record in session.call_records(_at(start - skew), _at(end + skew)):
            records[record.call_serial_no] = record
            found.add(record.call_serial_no)
        made = await anyio.to_thread.run_sync(store.created_calls, start, end)
        known.update(serial for serial, _ended in made)
        due = [serial for serial, ended in made if ended <= min(end, now - grace)]
        missing = [serial for serial in due if serial not in found]
        untrusted = None
        if missing:
            untrusted = (
                f"the call records of that time lack {len(missing)} of the {len(due)} calls "
                f"this job created then (serial number {missing[0]}): the absence of this "
                "row's call proves nothing"
            )
        spans.append(Span(start, end, untrusted))
    return list(records.values()), spans, known


async def settle_unknown(
    session: AsyncSession,
    store: JobStore,
    *,
    grace: float = DEFAULT_GRACE,
    skew: float = DEFAULT_SKEW,
    wait: float = 0.0,
    look_every: float = 10.0,
    on_recorded: Callable[[list[Recorded]], None] = lambda _records: None,
) -> Reconciliation:
    """Settle the job's ``unknown`` rows from the call records; never dials.

    While rows wait for their records (the grace has not passed), looks again every
    ``look_every`` seconds for up to ``wait`` seconds. ``on_recorded`` runs with each
    group of settlements once they are committed.
    """
    if not grace >= 0 or not skew >= 0 or not wait >= 0:
        raise ValueError("grace, skew and wait must be numbers of seconds, 0 or more")
    failure: Exception | None = None
    done = Reconciliation()
    async with anyio.create_task_group() as tasks:
        if store.lease is not None:  # a worker of a shared job: others must not reap it
            tasks.start_soon(_keep_alive, store, store.lease / 3)
        try:
            done = await _settle(
                session,
                store,
                grace=grace,
                skew=skew,
                wait=wait,
                look_every=look_every,
                on_recorded=on_recorded,
            )
        except Exception as exc:  # noqa: BLE001 - raised as it is, not in a group
            failure = exc
        tasks.cancel_scope.cancel()
    if failure is not None:
        raise failure
    return done


async def _keep_alive(store: JobStore, every: float) -> None:
    while True:
        await anyio.sleep(every)
        await anyio.to_thread.run_sync(store.keep_alive)


async def _settle(
    session: AsyncSession,
    store: JobStore,
    *,
    grace: float,
    skew: float,
    wait: float,
    look_every: float,
    on_recorded: Callable[[list[Recorded]], None],
) -> Reconciliation:
    done = Reconciliation()
    deadline = anyio.current_time() + wait
    while True:
        rows = await anyio.to_thread.run_sync(store.unknown_rows)
        now = await anyio.to_thread.run_sync(store.now)
        records, spans, known = await _read(session, store, rows, now=now, grace=grace, skew=skew)
        done.records += len(records)
        finals, unsettled = decide(
            rows, records, now=now, grace=grace, skew=skew, known=known, spans=spans
        )
        settled = await anyio.to_thread.run_sync(store.settle, finals) if finals else []
        on_recorded(settled)
        done.created += sum(r.final.status == "succeeded" for r in settled)
        done.not_created += sum(r.final.status == "failed" for r in settled)
        done.unsettled = unsettled
        left = deadline - anyio.current_time()
        ready = [u.ready_at for u in unsettled if u.ready_at is not None]
        if left <= 0 or not ready:
            return done
        # Look again when the first grace ends (records may appear sooner: at least
        # every ``look_every`` seconds).
        await anyio.sleep(min(look_every, left, max(min(ready) - now, 0.0) + 0.1))
