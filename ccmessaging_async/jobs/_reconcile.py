"""Settling a job's unknown outcomes from the platform's call records (SPEC section 5).

Each attempt whose outcome is unknown has a window on the store's clock: from the moment
its row was claimed (just before its first byte could leave) to the moment its outcome
was recorded. A call record of the row's number (and of its ``caller_present``, when the
row gave one) that started inside a window, widened by ``skew`` seconds each way for the
clocks of the store and the platform, is a candidate:

- exactly one candidate, claimed by no other row and not a call the job knows it
  created: the call was **created** (the row ``succeeded``, the record's serial number in
  its report line);
- none, once ``grace`` seconds have passed since the attempt ended, in a stretch of time
  where the records hold every call the job knows it created: **not created** (the row
  ``failed``, its line saying it rests on the records' absence);
- anything else stays ``unknown``, with the reason: two candidates, a record that fits
  two rows, the grace not yet passed, records that miss calls the job made.

Reading records never dials; a row is settled only while it is still ``unknown``.
"""

from __future__ import annotations

import datetime
import json
import re
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence

import anyio
import attrs

from .._models import CallRecord
from .._session import AsyncSession
from ._records import SETTLED_BY_RECORDS, Final, Recorded, UnknownRow
from ._store import JobStore

__all__ = [
    "DEFAULT_GRACE",
    "DEFAULT_SKEW",
    "Reconciliation",
    "Unsettled",
    "decide",
    "settle_unknown",
]

#: Seconds after an attempt before the absence of its record counts as evidence.
DEFAULT_GRACE = 600.0
#: Seconds by which the store's and the platform's clocks may differ.
DEFAULT_SKEW = 30.0
#: Attempts closer together than this are looked up in one range of records.
_GAP = 600.0
#: The fewest trailing digits two spellings of one number must share (``+86139...``
#: and ``139...``); fewer digits must be equal.
_SUFFIX = 7
_NOT_DIGITS = re.compile(r"\D")


@attrs.frozen
class Unsettled:
    """A row left ``unknown``, and why."""

    row: int
    line: int
    reason: str
    #: When its grace ends (Unix time, the store's clock), if it waits for it.
    ready_at: float | None = None

    @property
    def waiting(self) -> bool:
        """Whether it may still be settled by waiting (its grace has not passed)."""
        return self.ready_at is not None


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


def _digits(number: str) -> str:
    return _NOT_DIGITS.sub("", number)


def _key(digits: str) -> str:
    return digits[-_SUFFIX:]


def _same_number(a: str, b: str) -> bool:
    """Whether two spellings name one number (one may carry a country code the other lacks)."""
    if a == b:
        return True
    shorter, longer = sorted((a, b), key=len)
    return len(shorter) >= _SUFFIX and longer.endswith(shorter)


def _utc(unix: float) -> str:
    return datetime.datetime.fromtimestamp(unix, datetime.UTC).isoformat(timespec="seconds")


@attrs.frozen
class _Span:
    """A stretch of time whose records were read, and whether their absence is evidence."""

    start: float
    end: float
    #: Why the records of this stretch prove no absence (``None``: they do).
    untrusted: str | None = None


def decide(
    rows: Iterable[UnknownRow],
    records: Iterable[CallRecord],
    *,
    now: float,
    grace: float = DEFAULT_GRACE,
    skew: float = DEFAULT_SKEW,
    known: Collection[str] = (),
    spans: Sequence[_Span] = (),
) -> tuple[list[Final], list[Unsettled]]:
    """Settle what ``records`` settle of ``rows``; return the settlements and the rest.

    ``known`` are the serial numbers of calls the job created itself (never another
    row's); ``spans`` are the stretches read and whether absence in them is evidence
    (a row outside every span is not settled as not created).
    """
    by_key: dict[str, list[CallRecord]] = defaultdict(list)
    for record in records:
        if record.call_serial_no not in known:
            by_key[_key(_digits(record.called))].append(record)

    candidates: dict[int, list[CallRecord]] = {}
    claimed: dict[str, list[UnknownRow]] = defaultdict(list)
    rows = list(rows)
    for row in rows:
        found = _candidates(row, by_key, skew) if row.called else []
        candidates[row.row] = found
        for record in found:
            claimed[record.call_serial_no].append(row)

    finals: list[Final] = []
    unsettled: list[Unsettled] = []
    for row in rows:
        found = candidates[row.row]
        if not row.called:
            unsettled.append(Unsettled(row.row, row.line, "it has no number to look up"))
        elif len(found) > 1:
            serials = ", ".join(r.call_serial_no for r in found[:5])
            unsettled.append(
                Unsettled(
                    row.row,
                    row.line,
                    f"{len(found)} call records of its number fit its attempts (serial "
                    f"numbers {serials}): which one is this row's cannot be told",
                )
            )
        elif found and len(claimed[found[0].call_serial_no]) > 1:
            others = [str(r.row) for r in claimed[found[0].call_serial_no] if r.row != row.row]
            unsettled.append(
                Unsettled(
                    row.row,
                    row.line,
                    f"the call record {found[0].call_serial_no} fits this row and row(s) "
                    f"{', '.join(others)} (the same number): whose it is cannot be told",
                )
            )
        elif found:
            finals.append(_created(row, found[0]))
        else:
            verdict = _absent(row, now=now, grace=grace, spans=spans)
            if isinstance(verdict, Final):
                finals.append(verdict)
            else:
                unsettled.append(verdict)
    return finals, unsettled


def _candidates(
    row: UnknownRow, by_key: dict[str, list[CallRecord]], skew: float
) -> list[CallRecord]:
    digits = _digits(row.called or "")
    windows = [(a.sent_at - skew, a.ended_at + skew) for a in row.attempts if a.sent_at is not None]
    caller = None if row.caller_present is None else _digits(row.caller_present)
    found = []
    for record in by_key.get(_key(digits), ()):
        if not _same_number(_digits(record.called), digits):
            continue
        # A record without callerPresent may still be this row's: it is a candidate.
        if caller and record.caller_present and _digits(record.caller_present) != caller:
            continue
        started = record.start_time.timestamp()
        if any(start <= started <= end for start, end in windows):
            found.append(record)
    return found


def _created(row: UnknownRow, record: CallRecord) -> Final:
    result = {
        "result_code": None,
        "result_desc": "settled from the platform's call records: a call to this number "
        f"started {record.start_time.isoformat(timespec='seconds')}",
        "call_serial_no": record.call_serial_no,
        "sip_service_address": None,
        "access_code": None,
    }
    return Final(
        row=row.row,
        line=row.line,
        called=row.called,
        status="succeeded",
        result=json.dumps(result),
        result_code=None,
        error=None,
        attempts=0,
        latency_ms=0.0,
        settled_by=SETTLED_BY_RECORDS,
    )


def _absent(
    row: UnknownRow, *, now: float, grace: float, spans: Sequence[_Span]
) -> Final | Unsettled:
    """Say what the absence of any record of ``row`` means: not created, or nothing yet."""
    if any(a.sent_at is None for a in row.attempts):
        return Unsettled(
            row.row,
            row.line,
            "an attempt of it was recorded by an earlier release, without its time window: "
            "look it up by hand",
        )
    ended = max(a.ended_at for a in row.attempts)
    if now - ended < grace:
        return Unsettled(
            row.row,
            row.line,
            f"no call record of it yet; absence counts only after the grace ({grace:g} s), at "
            f"{_utc(ended + grace)}",
            ready_at=ended + grace,
        )
    first = min(a.sent_at for a in row.attempts if a.sent_at is not None)
    for span in spans:
        if span.start <= first and ended <= span.end:
            if span.untrusted is not None:
                return Unsettled(row.row, row.line, span.untrusted)
            break
    else:
        return Unsettled(row.row, row.line, "its time was not read from the call records")
    return Final(
        row=row.row,
        line=row.line,
        called=row.called,
        status="failed",
        result=None,
        result_code=None,
        error=(
            "NotCreatedError: settled as not created: no call to this number in the "
            f"platform's call records {grace:g} s after its attempt ({_utc(first)} to "
            f"{_utc(ended)}), where they hold every call this job created then; this rests "
            "on the records being complete (--resend-unknown dials it again)"
        ),
        attempts=0,
        latency_ms=0.0,
        settled_by=SETTLED_BY_RECORDS,
    )


def _spans(rows: Iterable[UnknownRow], skew: float) -> list[tuple[float, float]]:
    """Return the stretches of time to read: the attempts' windows, near ones merged."""
    windows = sorted(
        (a.sent_at - skew, a.ended_at + skew)
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
) -> tuple[list[CallRecord], list[_Span], set[str]]:
    """Read the records of every stretch the rows' attempts cover; check each stretch.

    A stretch's absence is evidence only if its records hold every call the job
    created in it (and recorded long enough ago to have appeared).
    """
    records: dict[str, CallRecord] = {}
    spans: list[_Span] = []
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
        spans.append(_Span(start, end, untrusted))
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
