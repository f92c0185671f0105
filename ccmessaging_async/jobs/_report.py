"""The report: a JSONL or CSV view of a job's outcomes, one line per ended row.

Lines are written only after their outcomes are committed to the job file, in the same
order (the outcomes' ``seq``). At the start of every run the report is brought level with
the job file: a torn or missing tail is written again from it. A report that holds an
outcome for a row the job file has not ended (the job file lost its latest writes: its
``-wal`` file was removed, or it was copied without it) refuses the job: rebuilding the
report from the job file would throw that evidence away and dial those rows again. A
report that otherwise does not match the job file is rebuilt whole, atomically (a
temporary file renamed over it).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Protocol

from ._errors import JobRefusedError
from ._records import Recorded
from ._sqlite import SQLiteStore
from ._store import JobStore

__all__ = ["CSV_COLUMNS", "JobReport", "Report", "WholeReport", "render", "write_report"]

CSV_COLUMNS = (
    "row",
    "line",
    "status",
    "called",
    "result_code",
    "result_desc",
    "call_serial_no",
    "sip_service_address",
    "access_code",
    "error",
    "attempts",
    "latency_ms",
    "settled_by",
)
_CSV_HEADER = ",".join(CSV_COLUMNS) + "\n"


def _is_csv(path: Path) -> bool:
    return path.suffix.lower() == ".csv"


def render(record: Recorded, *, as_csv: bool) -> str:
    """One report line (with its newline) for a recorded outcome."""
    final = record.final
    if not as_csv:
        line: dict[str, Any] = {
            "row": final.row,
            "line": final.line,
            "status": final.status,
            "called": final.called,
            "result": json.loads(final.result) if final.result else None,
            "error": final.error,
            "attempts": final.attempts,
            "latency_ms": float(final.latency_ms),
        }
        if final.settled_by is not None:
            line["settled_by"] = final.settled_by
        return json.dumps(line) + "\n"
    result: dict[str, Any] = json.loads(final.result) if final.result else {}
    cells = [
        final.row,
        final.line,
        final.status,
        final.called,
        final.result_code,
        result.get("result_desc"),
        result.get("call_serial_no"),
        result.get("sip_service_address"),
        result.get("access_code"),
        # One physical line per record, so the report can be counted by lines.
        (final.error or "").replace("\r", " ").replace("\n", " "),
        final.attempts,
        final.latency_ms,
        final.settled_by,
    ]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(["" if c is None else c for c in cells])
    return buffer.getvalue()


def write_report(records: Iterable[Recorded], path: Path) -> None:
    """Write a whole report to ``path`` atomically (JSONL, or CSV if it ends in ``.csv``)."""
    as_csv = _is_csv(path)
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8", newline="") as handle:
        if as_csv:
            handle.write(_CSV_HEADER)
        for record in records:
            handle.write(render(record, as_csv=as_csv))
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)


def _ended_rows(path: Path, as_csv: bool) -> Iterator[tuple[int, int]]:
    """``(row, line)`` of every line of the report at ``path`` that records an outcome."""
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        if as_csv:
            for cells in csv.DictReader(handle):
                with contextlib.suppress(TypeError, ValueError):
                    if cells.get("status"):
                        yield int(cells["row"]), int(cells["line"])
            return
        for text in handle:
            with contextlib.suppress(ValueError):
                line = json.loads(text)
                if isinstance(line, dict) and isinstance(line.get("status"), str):
                    yield int(line["row"]), int(line["line"])


def _refuse_lost_writes(path: Path, store: SQLiteStore, as_csv: bool) -> None:
    """Refuse the job if the report ended rows that the job file has not."""
    ended = dict(_ended_rows(path, as_csv))
    lost = sorted(line for row, line in ended.items() if not store.has_ended(row))
    if not lost:
        return
    shown = ", ".join(map(str, lost[:10])) + (", ..." if len(lost) > 10 else "")
    raise JobRefusedError(
        f"the report {path} records outcomes for {len(lost)} rows that the job file "
        f"{store.path} has not ended (input lines {shown}): the job file has lost its "
        f"latest writes, most likely because {store.path.name}-wal was removed or the job "
        "file was copied without it. Nothing was dialled. Put the -wal file back beside "
        "the job file and re-run; without it, those rows and the rows that were being "
        "sent cannot be told from rows never dialled: start a new job (another --out) "
        "from the input rows the report does not list"
    )


def _complete_lines(path: Path) -> tuple[int, int, bytes]:
    """Count of complete lines, the offset just after them, and the last of them."""
    count, offset, last = 0, 0, b""
    with path.open("rb") as handle:
        for line in handle:
            if not line.endswith(b"\n"):
                break
            count, offset, last = count + 1, offset + len(line), line
    return count, offset, last


class JobReport(Protocol):
    """A job's report as a run writes it."""

    path: Path
    #: Whether opening it found it out of step with the store and wrote it again.
    rebuilt: bool

    def append(self, records: Iterable[Recorded]) -> None:
        """Take the lines of newly committed outcomes."""

    def close(self) -> None:
        """Finish the report."""


class Report:
    """The report of the one run of a job file, appended as outcomes are committed."""

    def __init__(self, path: Path, store: SQLiteStore) -> None:
        self.path = path
        self._as_csv = _is_csv(path)
        self.rebuilt = False
        self._level(store)
        self._handle: IO[str] = path.open("a", encoding="utf-8", newline="")

    def _level(self, store: SQLiteStore) -> None:
        recorded = store.outcome_count()
        if not self.path.exists():
            write_report(store.outcomes(), self.path)
            return
        lines, offset, last = _complete_lines(self.path)
        kept = lines - (1 if self._as_csv else 0)  # outcome lines, without a CSV header
        text = last.decode("utf-8", "replace")
        if kept > 0:
            matches = kept <= recorded and text == render(store.outcome(kept), as_csv=self._as_csv)
        else:
            matches = kept == 0 and (not self._as_csv or text == _CSV_HEADER)
        if not matches:
            _refuse_lost_writes(self.path, store, self._as_csv)
            write_report(store.outcomes(), self.path)
            self.rebuilt = True
            return
        with self.path.open("r+b") as handle:
            handle.truncate(offset)  # a line torn by a crash
            handle.seek(offset)
            for record in store.outcomes(kept):
                handle.write(render(record, as_csv=self._as_csv).encode("utf-8"))

    def append(self, records: Iterable[Recorded]) -> None:
        """Write the lines of newly committed outcomes and flush them."""
        self._handle.write("".join(render(r, as_csv=self._as_csv) for r in records))
        self._handle.flush()

    def close(self) -> None:
        """Close the report file."""
        self._handle.close()


class WholeReport:
    """The report of a job that many workers share: the whole job, written when the run ends.

    Other workers' outcomes reach the store without passing through this run, so the
    report is written from the store, atomically, once this run has ended.
    """

    rebuilt = False

    def __init__(self, path: Path, store: JobStore) -> None:
        self.path = path
        self._store = store

    def append(self, records: Iterable[Recorded]) -> None:
        """Nothing to do until the run ends."""

    def close(self) -> None:
        """Write the whole job's report."""
        write_report(self._store.outcomes(), self.path)
