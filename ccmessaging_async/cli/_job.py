"""Opening a batch job: its three files, its lock, its input taken in or checked, its report.

Every refusal here happens before a session is opened, so before anything is dialled.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs

from .._pacing import Pacing
from ._exit import JobRefusedError
from ._input import InputRow, identify, is_jsonl, read_rows
from ._report import Report
from ._store import JobInfo, JobStore

__all__ = ["Job", "default_job_path", "open_job"]


def default_job_path(report: Path) -> Path:
    """Where the job file of ``report`` lives unless ``--job`` says otherwise."""
    return report.with_name(report.name + ".job")


@attrs.define
class Job:
    """An open job: its store (locked), its report, and what opening it did."""

    store: JobStore
    report: Report
    #: Rows taken in from the input by this run (0 on a resume).
    imported: int
    #: Rows an earlier run left being sent, now ``unknown``.
    interrupted: int
    #: Rows that cannot be sent (an input error), failed by this run without dialling.
    invalid: int

    def close(self, how: str, pacing: Pacing | None = None) -> None:
        """Record how the run ended (and its pace), close the report, release the job file."""
        try:
            self.store.end_run(
                how,
                throttles=0 if pacing is None else pacing.throttles,
                pace=None if pacing is None else pacing.rate,
            )
        except sqlite3.Error:
            pass  # the disk that stopped the job may refuse this too; the run row stays open
        finally:
            try:
                if how == "stopped":
                    # The disk that stopped the run may refuse the report's last flush too;
                    # the report is a view, brought level from the job file at the next start.
                    with contextlib.suppress(OSError):
                        self.report.close()
                else:
                    self.report.close()
            finally:
                self.store.close()


def _same(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    with contextlib.suppress(OSError):
        return a.samefile(b)
    return False


def _check_paths(input_path: Path | None, report: Path, job: Path) -> None:
    if _same(report, job):
        raise JobRefusedError(f"the report and the job file are both {report}")
    if input_path is None:
        return
    for name, path in (("report (--out)", report), ("job file (--job)", job)):
        if _same(input_path, path):
            raise JobRefusedError(
                f"the {name} {path} is the input file: writing into it would make the job "
                "read its own outcomes as new calls"
            )


def _first_difference(store: JobStore, input_path: Path) -> str:
    """Name the first row of ``input_path`` that differs from the job's rows."""
    stored = store.digests()
    try:
        for now in read_rows(input_path):
            then = next(stored, None)
            if then is None:
                return f"row {now.row + 1} (line {now.line}) is new"
            row, line, digest = then
            if now.digest != digest:
                return f"row {row + 1} differs (line {line} then, line {now.line} now)"
    except JobRefusedError as exc:
        return f"it no longer reads as before ({exc})"
    gone = next(stored, None)
    if gone is not None:
        return f"row {gone[0] + 1} (line {gone[1]}) is no longer there"
    return "no row differs, but other bytes do (the header, blank lines, a BOM, line endings)"


def _import(
    store: JobStore,
    input_path: Path | None,
    job_path: Path,
    report: Path,
    check_stop: Callable[[], None],
) -> int:
    if input_path is None:
        raise JobRefusedError(f"the job file {job_path} holds no rows; give the input file")
    if report.exists() and report.stat().st_size > 0:
        raise JobRefusedError(
            f"the report {report} already exists and belongs to no job here (its job file "
            f"{store.path} is new): it may hold another job's outcomes; move it away or "
            "choose another --out"
        )
    identity = identify(input_path)
    kind = "jsonl" if is_jsonl(input_path) else "csv"

    def rows() -> Iterator[InputRow]:
        for row in read_rows(input_path):
            check_stop()  # a stop while a big input is taken in ends the import
            yield row

    return store.import_rows(rows(), input_path.resolve(), kind, identity)


def _verify(store: JobStore, info: JobInfo, input_path: Path) -> None:
    if identify(input_path) == info.identity:
        return
    raise JobRefusedError(
        f"{input_path} is not the input this job was started with ({info.input_path}, "
        f"{info.identity.size} bytes, SHA-256 {info.identity.sha256[:12]}...): "
        f"{_first_difference(store, input_path)}. Nothing was dialled. Restore the original "
        "input, or start a new job with another --out"
    )


def open_job(
    input_path: Path | None,
    report: Path,
    job_path: Path | None,
    *,
    resend_unknown: bool,
    check_stop: Callable[[], None] = lambda: None,
) -> Job:
    """Open (or start) the job that writes ``report``; raise :class:`JobRefusedError` if unsafe.

    ``check_stop`` is called for each row taken in, and may raise to stop the import
    (nothing of it is kept).
    """
    job_path = job_path or default_job_path(report)
    _check_paths(input_path, report, job_path)
    if input_path is not None and not input_path.is_file():
        raise JobRefusedError(f"the input file {input_path} does not exist")
    if input_path is None and not job_path.is_file():
        raise JobRefusedError(f"there is no job file {job_path}; give the input file to start")
    new_file = not job_path.exists()
    store = JobStore(job_path)
    imported = 0
    try:
        info = store.info()
        if info is None:
            imported = _import(store, input_path, job_path, report, check_stop)
        elif input_path is not None:
            _verify(store, info, input_path)
        interrupted = store.settle_interrupted(resend_unknown=resend_unknown)
        invalid = store.fail_invalid()
        return Job(store, Report(report, store), imported, interrupted, invalid)
    except BaseException:
        store.close()
        if new_file and imported == 0:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{job_path}{suffix}").unlink(missing_ok=True)
        raise
