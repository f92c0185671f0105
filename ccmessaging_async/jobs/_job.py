"""Opening a batch job: its store, its input taken in or checked, its report.

The store is a job file (SQLite, locked for one run) or a job in a PostgreSQL database
(a URL and a job name, shared by many workers). Every refusal here happens before a
session is opened, so before anything is dialled.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import attrs

from .._models import CreateCallRequest
from .._pacing import Pacing
from ._errors import POSTGRES_EXTRA, JobRefusedError, storage_errors
from ._input import InputRow, RequestRows, identify, is_jsonl, read_rows
from ._numbers import NumberPlan, checked_numbers
from ._records import InputRules, JobInfo
from ._report import JobReport, Report, WholeReport
from ._shared_pace import SharedPacing
from ._sqlite import SQLiteStore
from ._store import JobStore

__all__ = [
    "DEFAULT_LEASE",
    "OpenedJob",
    "default_job_path",
    "is_database_url",
    "open_store",
    "open_stored_job",
]

#: Seconds a PostgreSQL worker's claims outlive its last heartbeat.
DEFAULT_LEASE = 30.0


def is_database_url(location: object) -> bool:
    """Whether ``location`` names a PostgreSQL database rather than a job file."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def default_job_path(report: Path) -> Path:
    """Where the job file of ``report`` lives unless ``--job`` says otherwise."""
    return report.with_name(report.name + ".job")


@attrs.define
class OpenedJob:
    """An open job: its store, its report (if this run writes one), what opening it did."""

    store: JobStore
    report: JobReport | None
    #: Rows taken in from the input by this run (0 on a resume).
    imported: int
    #: Rows an earlier run left being sent, now ``unknown``.
    interrupted: int
    #: Rows that cannot be sent (an input error), failed by this run without dialling.
    invalid: int
    #: Rows whose number an earlier row has, skipped by this run without dialling.
    duplicates: int = 0

    def pacing(self, rate: float | None, *, max_throttle_wait: float) -> Pacing:
        """Return the pace of this run: on a shared job, ``rate`` is the job's (all workers').

        Without ``rate`` a worker on a shared job keeps to the rate the job was given.
        """
        shared = self.store.shared_pace
        if shared is not None:
            if rate is not None:
                shared.set_rate(rate)
            return SharedPacing(rate, max_throttle_wait=max_throttle_wait, store=shared)
        return Pacing(rate, max_throttle_wait=max_throttle_wait)

    def close(self, how: str, pacing: Pacing | None = None) -> None:
        """Record how the run ended (and its pace), close the report, release the job file."""
        try:
            self.store.end_run(
                how,
                throttles=0 if pacing is None else pacing.throttles,
                pace=None if pacing is None else pacing.rate,
            )
        except storage_errors():
            pass  # what stopped the job may refuse this too; the run row stays open
        finally:
            try:
                if self.report is None:
                    pass
                elif how == "stopped":
                    # What stopped the run may refuse the report's last write too; the
                    # report is a view, written again from the store at the next start.
                    with contextlib.suppress(*storage_errors()):
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


#: How a job made from an iterable of requests names its input.
_REQUESTS = "(requests)"


def _import(
    store: JobStore,
    input_path: Path | None,
    requests: Iterable[CreateCallRequest] | None,
    report: Path | None,
    *,
    check_stop: Callable[[], None],
    plan: NumberPlan,
    rules: InputRules,
) -> int:
    if requests is not None:
        given = RequestRows(requests)
        return store.import_rows(
            checked_numbers(_stoppable(given, check_stop), plan),
            _REQUESTS,
            "requests",
            given.identity,
            rules,
        )
    if input_path is None and not store.single_writer:
        raise JobRefusedError(
            f"there is no job {store.label}: start it with its input "
            "(batch INPUT --out REPORT --job URL --name NAME), then add workers"
        )
    if input_path is None:
        raise JobRefusedError(f"the job {store.label} holds no rows; give the input file")
    if report is not None and report.exists() and report.stat().st_size > 0:
        raise JobRefusedError(
            f"the report {report} already exists and belongs to no job here (its job "
            f"{store.label} is new): it may hold another job's outcomes; move it away or "
            "choose another --out"
        )
    identity = identify(input_path)
    kind = "jsonl" if is_jsonl(input_path) else "csv"
    rows = checked_numbers(_stoppable(read_rows(input_path), check_stop), plan)
    return store.import_rows(rows, str(input_path.resolve()), kind, lambda: identity, rules)


def _stoppable(rows: Iterable[InputRow], check_stop: Callable[[], None]) -> Iterator[InputRow]:
    for row in rows:
        check_stop()  # a stop while a big input is taken in ends the import
        yield row


def _verify_requests(info: JobInfo, requests: Iterable[CreateCallRequest]) -> None:
    given = RequestRows(requests)
    for _row in given:
        pass
    if info.input_path == _REQUESTS and given.identity() == info.identity:
        return
    raise JobRefusedError(
        f"these requests are not the ones this job was started with ({info.input_path}, "
        f"{info.rows} rows): nothing was dialled. Open the job without requests to resume "
        "it, or start a new job"
    )


def _verify(store: JobStore, info: JobInfo, input_path: Path) -> None:
    if identify(input_path) == info.identity:
        return
    raise JobRefusedError(
        f"{input_path} is not the input this job was started with ({info.input_path}, "
        f"{info.identity.size} bytes, SHA-256 {info.identity.sha256[:12]}...): "
        f"{_first_difference(store, input_path)}. Nothing was dialled. Restore the original "
        "input, or start a new job with another --out"
    )


def _check_resume(
    store: JobStore,
    info: JobInfo,
    input_path: Path | None,
    requests: Iterable[CreateCallRequest] | None,
    rules: InputRules,
) -> None:
    """Refuse a resume that gives another input, or reads it by other rules."""
    if requests is None and input_path is None:
        return  # a worker joining, or a resume by the job alone: the job's rules hold
    if not info.rules.same_as(rules):
        raise JobRefusedError(
            f"this job took its input in with {info.rules.describe()}; a resume gives the "
            f"same (here: {rules.describe()}). Nothing was dialled"
        )
    if requests is not None:
        _verify_requests(info, requests)
    elif input_path is not None:
        _verify(store, info, input_path)


def _check_job_file(
    job: Path, input_path: Path | None, report: Path | None, *, given: bool
) -> None:
    if report is not None:
        _check_paths(input_path, report, job)
    if input_path is None and not given and not job.is_file():
        raise JobRefusedError(f"there is no job file {job}; give the input file to start")


def open_store(
    location: Path | str, *, name: str | None = None, lease: float = DEFAULT_LEASE
) -> JobStore:
    """Open the job at ``location``: a job file, or a ``postgresql://`` URL and ``name``."""
    if is_database_url(location):
        if not name:
            raise JobRefusedError("a job in a database needs a name (--name): it holds many")
        try:
            from ._postgres import PostgresStore  # noqa: PLC0415 - the postgres extra
        except ImportError:
            raise JobRefusedError(POSTGRES_EXTRA) from None

        return PostgresStore(str(location), name, lease=lease)
    if name is not None:
        raise JobRefusedError("--name is for a job in a database; a job file is one job")
    return SQLiteStore(Path(location))


def open_stored_job(
    input_path: Path | None,
    report: Path | None,
    location: Path | str | None,
    *,
    name: str | None = None,
    resend_unknown: bool,
    check_stop: Callable[[], None] = lambda: None,
    lease: float = DEFAULT_LEASE,
    requests: Iterable[CreateCallRequest] | None = None,
    numbers: NumberPlan | None = None,
    allow_duplicates: bool = False,
) -> OpenedJob:
    """Open (or start) a job; raise :class:`JobRefusedError` if that is unsafe.

    ``location`` is a job file (by default the report's, ``REPORT.job``) or a database URL
    with ``name``. ``report`` may be left out where a job's report is not written by this
    run (a worker joining a shared job). ``requests`` may stand for the input file.
    ``check_stop`` is called for each row taken in, and may raise to stop the import
    (nothing of it is kept). ``numbers`` and ``allow_duplicates`` say how the input is
    taken in; a resume that gives the input must give the same.
    """
    plan = numbers or NumberPlan()
    rules = InputRules(plan.default_region, plan.send_as, allow_duplicates)
    if requests is not None and input_path is not None:
        raise JobRefusedError("give the input file or the requests, not both")
    if location is None:
        if report is None:
            raise JobRefusedError("give the job (--job) or the report (--out)")
        location = default_job_path(report)
    job_path = None if is_database_url(location) else Path(location)
    if job_path is not None:
        _check_job_file(job_path, input_path, report, given=requests is not None)
    if input_path is not None and not input_path.is_file():
        raise JobRefusedError(f"the input file {input_path} does not exist")
    new_file = job_path is not None and not job_path.exists()
    store = open_store(location, name=name, lease=lease)
    imported = 0
    try:
        info = store.info()
        if info is None:
            imported = _import(
                store, input_path, requests, report, check_stop=check_stop, plan=plan, rules=rules
            )
        else:
            _check_resume(store, info, input_path, requests, rules)
        interrupted = store.settle_interrupted(resend_unknown=resend_unknown)
        invalid = store.fail_invalid()
        duplicates = store.skip_duplicates()
        job_report: JobReport | None = None
        if report is not None:
            job_report = (
                Report(report, store)
                if isinstance(store, SQLiteStore)
                else WholeReport(report, store)
            )
        return OpenedJob(store, job_report, imported, interrupted, invalid, duplicates)
    except BaseException:
        store.close()
        if job_path is not None and new_file and imported == 0:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{job_path}{suffix}").unlink(missing_ok=True)
        raise
