"""Which call record is an unknown attempt's call: the rules, as a pure function.

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
"""

from __future__ import annotations

import datetime
import json
import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence

import attrs

from .._models import CallRecord
from ._records import SETTLED_BY_RECORDS, Final, UnknownRow

__all__ = ["DEFAULT_GRACE", "DEFAULT_SKEW", "Span", "Unsettled", "decide", "window"]

#: Seconds after an attempt before the absence of its record counts as evidence.
DEFAULT_GRACE = 600.0
#: Seconds by which the store's and the platform's clocks may differ.
DEFAULT_SKEW = 30.0
#: The fewest trailing digits two spellings of one number must share (``+86139...``
#: and ``139...``); fewer digits must be equal.
_SUFFIX = 7
_NOT_DIGITS = re.compile(r"\D")
#: The job file keeps an outcome's time in whole milliseconds (up to 1 ms early) and the
#: platform rounds a record's start to its millisecond (up to 0.5 ms late): a window is
#: 2 ms wider each way, whatever the skew.
_RESOLUTION = 0.002


def window(sent_at: float, ended_at: float, skew: float) -> tuple[float, float]:
    """Return when an attempt's call may have started, as its record would say."""
    margin = skew + _RESOLUTION
    return sent_at - margin, ended_at + margin


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
class Span:
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
    spans: Sequence[Span] = (),
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
    windows = [window(a.sent_at, a.ended_at, skew) for a in row.attempts if a.sent_at is not None]
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
    return Final.without_call(
        row.row,
        row.line,
        row.called,
        "succeeded",
        result=json.dumps(result),
        settled_by=SETTLED_BY_RECORDS,
    )


def _absent(
    row: UnknownRow, *, now: float, grace: float, spans: Sequence[Span]
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
    return Final.without_call(
        row.row,
        row.line,
        row.called,
        "failed",
        error=(
            "NotCreatedError: settled as not created: no call to this number in the "
            f"platform's call records {grace:g} s after its attempt ({_utc(first)} to "
            f"{_utc(ended)}), where they hold every call this job created then; this rests "
            "on the records being complete (--resend-unknown dials it again)"
        ),
        settled_by=SETTLED_BY_RECORDS,
    )
