"""Batch jobs: streamed CSV/JSONL input, the output file as a crash-safe journal, a summary."""

from __future__ import annotations

import collections
import csv
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import attrs

from .._batch import CallOutcome, OutcomeStatus
from .._errors import CCMessagingError, InvalidRequestError
from .._models import CreateCallRequest
from .._session import AsyncSession

__all__ = ["InputRow", "Journal", "Summary", "read_rows", "run_job"]

_FIELDS = ("called", "caller_present", "call_data")
_ALIASES = {"callerPresent": "caller_present", "callData": "call_data"}

# Journal states per input row (one byte each, so a million rows cost 1 MB).
_NONE, _SENDING, _FINAL, _FINAL_UNKNOWN = 0, 1, 2, 3


@attrs.frozen(slots=True)
class InputRow:
    """One data row of the input: its position, its line, and a request or the error."""

    row: int
    line: int
    request: CreateCallRequest | None
    error: str | None = None


def _request_from(values: dict[str, Any]) -> CreateCallRequest:
    fields = {}
    for key, value in values.items():
        name = _ALIASES.get(key, key)
        if name in _FIELDS and value not in (None, ""):
            fields[name] = value
    if "called" not in fields:
        raise InvalidRequestError("called is missing", field="called")
    return CreateCallRequest(**fields)


def read_rows(path: Path) -> Iterator[InputRow]:
    """Stream the rows of a CSV (header ``called,caller_present,call_data``) or JSONL file."""
    with path.open(encoding="utf-8", newline="") as handle:
        if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
            yield from _jsonl_rows(handle)
        else:
            yield from _csv_rows(handle)


def _jsonl_rows(handle: IO[str]) -> Iterator[InputRow]:
    lines = ((n, line) for n, line in enumerate(handle, start=1) if line.strip())
    for row, (line_no, line) in enumerate(lines):
        try:
            values = json.loads(line)
            if not isinstance(values, dict):
                raise InvalidRequestError("a JSONL line must hold a JSON object")
            yield InputRow(row, line_no, _request_from(values))
        except (ValueError, TypeError) as exc:
            yield InputRow(row, line_no, None, _row_error(exc))


def _csv_rows(handle: IO[str]) -> Iterator[InputRow]:
    reader = csv.DictReader(handle)
    if reader.fieldnames is None or "called" not in reader.fieldnames:
        raise InvalidRequestError("the CSV header must name the column 'called'")
    for row, values in enumerate(reader):
        line_no = reader.line_num
        try:
            if None in values:  # more cells than header columns
                raise InvalidRequestError("the row has more cells than the header")
            yield InputRow(row, line_no, _request_from(values))
        except (ValueError, TypeError) as exc:
            yield InputRow(row, line_no, None, _row_error(exc))


def _row_error(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"InvalidRequestError: not JSON ({exc.msg})"
    if isinstance(exc, CCMessagingError):
        return f"{type(exc).__name__}: {exc}"
    return f"InvalidRequestError: {exc}"


class Journal:
    """The output JSONL, which is also the job's journal.

    Each row gets a ``sending`` line before its request can leave the process and one
    final line (``succeeded`` / ``failed`` / ``unknown``) when it ends; every line is
    flushed as written. Reopening it reads what an earlier run recorded.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._states = bytearray()
        self.repaired_torn_line = False
        if path.exists():
            self._load()
        self._handle = path.open("a", encoding="utf-8")

    def _load(self) -> None:
        with self.path.open("rb+") as handle:
            data = handle.read()
            end = data.rfind(b"\n") + 1
            if end < len(data):  # a line torn by a crash: cut it off
                handle.truncate(end)
                self.repaired_torn_line = True
        for raw in data[:end].splitlines():
            try:
                entry = json.loads(raw)
                row = int(entry["row"])
            except (ValueError, KeyError, TypeError):
                continue
            status = entry.get("status")
            if status is None:
                state = _SENDING
            elif status == OutcomeStatus.UNKNOWN.value:
                state = _FINAL_UNKNOWN
            else:
                state = _FINAL
            self._set(row, max(state, self._get(row)) if state == _SENDING else state)

    def _get(self, row: int) -> int:
        return self._states[row] if row < len(self._states) else _NONE

    def _set(self, row: int, state: int) -> None:
        if row >= len(self._states):
            self._states.extend(bytes(row + 1 - len(self._states)))
        self._states[row] = state

    def close(self) -> None:
        """Flush and close the file."""
        self._handle.close()

    def interrupted(self, row: int) -> bool:
        """Whether an earlier run started sending ``row`` and never recorded its end."""
        return self._get(row) == _SENDING

    def should_send(self, row: int, *, resend_unknown: bool) -> bool:
        """Whether ``row`` still needs sending in this run."""
        state = self._get(row)
        if state == _NONE:
            return True
        return resend_unknown and state in (_SENDING, _FINAL_UNKNOWN)

    def _write(self, entry: dict[str, Any]) -> None:
        self._handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._handle.flush()

    def sending(self, row: int, line: int) -> None:
        """Record that ``row`` is about to be sent."""
        self._write({"row": row, "line": line, "event": "sending"})
        self._set(row, _SENDING)

    def final(
        self,
        row: int,
        line: int,
        status: OutcomeStatus,
        *,
        called: str | None,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        attempts: int = 0,
        latency: float = 0.0,
    ) -> None:
        """Record the one final outcome of ``row``."""
        self._write(
            {
                "row": row,
                "line": line,
                "status": status.value,
                "called": called,
                "result": result,
                "error": error,
                "attempts": attempts,
                "latency_ms": round(latency * 1000, 3),
            }
        )
        self._set(row, _FINAL_UNKNOWN if status is OutcomeStatus.UNKNOWN else _FINAL)


@attrs.define
class Summary:
    """Counts, throughput and latency percentiles of one run."""

    counts: dict[OutcomeStatus, int] = attrs.field(factory=lambda: dict.fromkeys(OutcomeStatus, 0))
    skipped: int = 0
    started: float = attrs.field(factory=time.perf_counter)
    elapsed: float = 0.0
    #: Latencies in log-spaced buckets of about 1% width: memory stays flat however many
    #: calls a job makes, and percentiles are exact to about 1%.
    latency_buckets: collections.Counter[int] = attrs.field(factory=collections.Counter)

    def add(self, outcome: CallOutcome) -> None:
        """Count one outcome."""
        self.counts[outcome.status] += 1
        if outcome.attempts:
            self.latency_buckets[_bucket(outcome.latency)] += 1

    @property
    def total(self) -> int:
        """Outcomes counted in this run."""
        return sum(self.counts.values())

    def percentile(self, share: float) -> float:
        """Latency percentile in seconds (nearest rank, to about 1%), 0 without samples."""
        samples = sum(self.latency_buckets.values())
        if not samples:
            return 0.0
        rank = max(1, math.ceil(share * samples))
        seen = 0
        for bucket in sorted(self.latency_buckets):
            seen += self.latency_buckets[bucket]
            if seen >= rank:
                return _bucket_value(bucket)
        return _bucket_value(max(self.latency_buckets))

    def line(self) -> str:
        """One summary line."""
        rate = self.total / self.elapsed if self.elapsed > 0 else 0.0
        counts = ", ".join(f"{n} {status.value}" for status, n in self.counts.items())
        skipped = f", {self.skipped} skipped (already recorded)" if self.skipped else ""
        return (
            f"{self.total} calls: {counts}{skipped} | {rate:.1f} calls/s | "
            f"latency p50 {self.percentile(0.5) * 1000:.1f} ms, "
            f"p99 {self.percentile(0.99) * 1000:.1f} ms | {self.elapsed:.2f} s"
        )


_BUCKETS_PER_E = 100.0
_SMALLEST = 1e-6


def _bucket(seconds: float) -> int:
    return round(math.log(max(seconds, _SMALLEST)) * _BUCKETS_PER_E)


def _bucket_value(bucket: int) -> float:
    return math.exp(bucket / _BUCKETS_PER_E)


def result_dict(outcome: CallOutcome) -> dict[str, Any] | None:
    """Return the result of an outcome as a JSON-ready dict."""
    return attrs.asdict(outcome.result) if outcome.result is not None else None


def error_text(outcome: CallOutcome) -> str | None:
    """``TypeName: message`` of an outcome's error."""
    if outcome.error is None:
        return None
    return f"{type(outcome.error).__name__}: {outcome.error}"


async def run_job(
    session: AsyncSession,
    input_path: Path,
    output_path: Path,
    *,
    concurrency: int,
    rate: float | None,
    resend_unknown: bool,
    progress: Any = None,
) -> Summary:
    """Run the batch job of ``input_path`` into ``output_path``, resuming what it holds."""
    journal = Journal(output_path)
    summary = Summary()
    in_flight: dict[int, InputRow] = {}
    try:

        def requests() -> Iterator[CreateCallRequest]:
            for item in read_rows(input_path):
                if journal.interrupted(item.row) and not resend_unknown:
                    journal.final(
                        item.row,
                        item.line,
                        OutcomeStatus.UNKNOWN,
                        called=item.request.called if item.request else None,
                        error="OutcomeUnknownError: the job stopped while this row was being "
                        "sent; not sent again (--resend-unknown sends it again)",
                    )
                    summary.counts[OutcomeStatus.UNKNOWN] += 1
                    if progress is not None:
                        progress(None)
                    continue
                if not journal.should_send(item.row, resend_unknown=resend_unknown):
                    summary.skipped += 1
                    if progress is not None:
                        progress(None)
                    continue
                if item.request is None:
                    journal.final(
                        item.row, item.line, OutcomeStatus.FAILED, called=None, error=item.error
                    )
                    summary.counts[OutcomeStatus.FAILED] += 1
                    if progress is not None:
                        progress(None)
                    continue
                in_flight[id(item.request)] = item
                yield item.request

        def on_send(_index: int, request: CreateCallRequest) -> None:
            item = in_flight[id(request)]
            journal.sending(item.row, item.line)

        async for outcome in session.create_calls(
            requests(), concurrency=concurrency, rate=rate, on_send=on_send
        ):
            item = in_flight.pop(id(outcome.request))
            journal.final(
                item.row,
                item.line,
                outcome.status,
                called=outcome.request.called,
                result=result_dict(outcome),
                error=error_text(outcome),
                attempts=outcome.attempts,
                latency=outcome.latency,
            )
            summary.add(outcome)
            if progress is not None:
                progress(outcome)
    finally:
        summary.elapsed = time.perf_counter() - summary.started
        journal.close()
    return summary


def stderr_is_terminal() -> bool:
    """Whether a progress bar makes sense."""
    return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
