"""Seeing a job from outside: ``status`` (counts, result codes, the run) and ``export``."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ._errors import POSTGRES_EXTRA, JobRefusedError
from ._job import default_job_path, is_database_url
from ._records import JobInfo, Waiting
from ._report import write_report
from ._sqlite import (
    open_read_only,
    read_info,
    read_outcomes,
    read_waiting,
    running_pid,
    settled_counts,
    state_counts,
)

__all__ = ["export", "job_data", "job_lines", "resolve_job_path", "status_data", "status_text"]


def resolve_job_path(path: Path) -> Path:
    """Return the job file named by ``path``, or by the report ``path`` if it has one."""
    beside = default_job_path(path)
    return beside if not path.name.endswith(".job") and beside.is_file() else path


def status_text(location: Path | str, name: str | None = None) -> str:
    """Describe a job as ``ccmessaging-async status`` prints it, also while it runs."""
    return "\n".join(_status(location, name)[0])


def status_data(location: Path | str, name: str | None = None) -> dict[str, Any]:
    """Return a job's status as JSON-ready data (``status --json``), also while it runs."""
    return _status(location, name)[1]


def _status(location: Path | str, name: str | None) -> tuple[list[str], dict[str, Any]]:
    if is_database_url(location):
        describe, _export = _postgres_reading()
        return describe(str(location), _named(name))
    _no_name(name)
    return _sqlite_status(resolve_job_path(Path(location)))


_Describe = Callable[[str, str], tuple[list[str], dict[str, Any]]]


def _postgres_reading() -> tuple[_Describe, Callable[[str, str, Path], int]]:
    """``postgres_status`` and ``postgres_export``, or what extra to install."""
    try:
        from ._postgres_status import (  # noqa: PLC0415 - the postgres extra
            postgres_export,
            postgres_status,
        )
    except ImportError:
        raise JobRefusedError(POSTGRES_EXTRA) from None
    return postgres_status, postgres_export


def _named(name: str | None) -> str:
    if not name:
        raise JobRefusedError("a job in a database needs a name (--name): it holds many")
    return name


def _no_name(name: str | None) -> None:
    if name is not None:
        raise JobRefusedError("--name is for a job in a database; a job file is one job")


def job_lines(
    title: str,
    info: JobInfo | None,
    counts: dict[str, int],
    codes: Sequence[tuple[str, int]],
    resent: int,
    *,
    not_called: tuple[int, int, int] = (0, 0, 0),
    waiting: Waiting | None = None,
    settled: dict[str, int] | None = None,
) -> list[str]:
    """Return the lines of ``status`` that every store has: input, states, codes, resends.

    ``not_called``: rows ended without a call, as (invalid, duplicates, suppressed);
    ``waiting``: the pending rows waiting for their calling hours; ``settled``: unknown
    outcomes settled afterwards from the call records (``created``, ``not_created``).
    """
    lines = [title]
    if info is None:
        lines.append("  no rows yet (the input was never taken in)")
    else:
        lines.append(
            f"  input {info.input_path} ({info.input_format}, {info.identity.size} bytes, "
            f"SHA-256 {info.identity.sha256[:12]}...), {info.rows} rows, "
            f"started {info.created_at}"
        )
    lines.append("  " + ", ".join(f"{state} {n}" for state, n in counts.items()))
    if any(not_called):
        invalid, duplicates, suppressed = not_called
        lines.append(
            f"  not called: {invalid} invalid, {duplicates} duplicates, {suppressed} suppressed "
            "(their report lines say why)"
        )
    if waiting is not None and waiting.rows:
        lines.append(f"  {waiting.describe()}")
    if settled and any(settled.values()):
        lines.append(
            f"  settled from the call records: {settled['created']} created, "
            f"{settled['not_created']} not created (`reconcile`; their report lines say how)"
        )
    if codes:
        lines.append("  result codes: " + ", ".join(f"{code} x{n}" for code, n in codes))
    if resent:
        lines.append(
            f"  {resent} rows with an unknown outcome (or settled as not created) were put "
            "back to be dialled again (--resend-unknown): an unknown one may have rung twice; "
            "the report has both lines"
        )
    return lines


def job_data(
    label: str,
    info: JobInfo | None,
    counts: dict[str, int],
    codes: Sequence[tuple[str, int]],
    resent: int,
    *,
    not_called: tuple[int, int, int],
    waiting: Waiting,
    settled: dict[str, int],
) -> dict[str, Any]:
    """Return what :func:`job_lines` says, as JSON-ready data (``status --json``)."""
    invalid, duplicates, suppressed = not_called
    return {
        "job": label,
        "input": None
        if info is None
        else {
            "path": info.input_path,
            "format": info.input_format,
            "size": info.identity.size,
            "sha256": info.identity.sha256,
            "rows": info.rows,
            "created_at": info.created_at,
            "region": info.rules.default_region,
            "send_as": info.rules.send_as,
            "allow_duplicates": info.rules.allow_duplicates,
        },
        "counts": dict(counts),
        "not_called": {"invalid": invalid, "duplicates": duplicates, "suppressed": suppressed},
        "waiting": {
            "rows": waiting.rows,
            "next_at": None
            if waiting.next_at is None
            else datetime.datetime.fromtimestamp(waiting.next_at, datetime.UTC).isoformat(),
            "waiting_for": waiting.waiting_for,
        },
        "result_codes": dict(codes),
        "resent": resent,
        "settled": dict(settled),
    }


def _sqlite_status(path: Path) -> tuple[list[str], dict[str, Any]]:
    """Describe a job file as ``status`` prints it (and as data), also while it runs."""
    db = open_read_only(path)
    try:
        info = read_info(db)
        counts = state_counts(db)
        # Both read the index on (state, result_code) only: fast at a million rows.
        codes = db.execute(
            "SELECT result_code, count(*) FROM rows WHERE result_code IS NOT NULL "
            "GROUP BY result_code ORDER BY count(*) DESC, result_code"
        ).fetchall()
        resent = db.execute("SELECT coalesce(sum(resent), 0) FROM runs").fetchone()[0]
        waiting = read_waiting(db, time.time())
        settled = settled_counts(db)
        # Through the index on state: reads only the rows that ended without a call.
        not_called = db.execute(
            "SELECT coalesce(sum(state = 'failed' AND input_error IS NOT NULL), 0), "
            "coalesce(sum(state = 'skipped' AND duplicate_of IS NOT NULL), 0), "
            "coalesce(sum(state = 'skipped' AND duplicate_of IS NULL), 0) "
            "FROM rows WHERE state IN ('failed', 'skipped')"
        ).fetchone()
        last_run = db.execute(
            "SELECT pid, started_at, ended_at, how, throttles, pace FROM runs "
            "ORDER BY id DESC LIMIT 1"
        ).fetchone()
    finally:
        db.close()
    facts = (f"job {path}", info, counts, codes, resent)
    lines = job_lines(*facts, not_called=tuple(not_called), waiting=waiting, settled=settled)
    data = job_data(*facts, not_called=tuple(not_called), waiting=waiting, settled=settled)
    pid = running_pid(path)
    data["running"] = None if pid is None else {"pid": pid}
    data["last_run"] = None
    if pid is not None:
        lines.append(f"  running now (pid {pid})")
        if last_run is not None and last_run[4]:
            _pid, _started, _ended, _how, throttles, pace = last_run
            at = "unlimited" if pace is None else f"{pace:.1f} calls/s"
            lines.append(f"  throttled {throttles} times so far; its pace now {at}")
            data["running"].update(throttles=throttles, pace=pace)
    elif last_run is not None:
        run_pid, started, ended, how, throttles, pace = last_run
        data["last_run"] = dict(
            zip(
                ("pid", "started_at", "ended_at", "how", "throttles", "pace"), last_run, strict=True
            )
        )
        ending = f"{how} {ended}" if ended else "died without ending (kill -9, power loss)"
        lines.append(f"  not running; last run pid {run_pid} started {started}, {ending}")
        if throttles:
            at = "unlimited" if pace is None else f"{pace:.1f} calls/s"
            lines.append(f"  last run throttled {throttles} times; its pace at the end {at}")
    return lines, data


def _refuse_overwriting_a_job(path: Path | None, out: Path) -> None:
    """Refuse an ``out`` that is the job file, one of its companions, or any job file."""
    if path is not None:
        job = path.resolve()
        companions = {job, *(job.with_name(job.name + suffix) for suffix in _COMPANIONS)}
    if path is not None and out.resolve() in companions:
        raise JobRefusedError(
            f"{out} is the job file {path} or belongs to it: choose another --out"
        )
    if out.is_file():
        with out.open("rb") as handle:
            if handle.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC:
                raise JobRefusedError(
                    f"{out} is a database (a job file?), not a report: choose another --out"
                )


_COMPANIONS = ("-wal", "-shm", "-journal")
_SQLITE_MAGIC = b"SQLite format 3\x00"


def export(location: Path | str, out: Path, name: str | None = None) -> int:
    """Write the job's report to ``out`` (JSONL, or CSV if it ends in ``.csv``); return lines.

    ``out`` may not be the job file, its companions, or another database.
    """
    if is_database_url(location):
        _refuse_overwriting_a_job(None, out)
        _describe, write = _postgres_reading()
        return write(str(location), _named(name), out)
    _no_name(name)
    path = resolve_job_path(Path(location))
    _refuse_overwriting_a_job(path, out)
    db = open_read_only(path)
    try:
        write_report(read_outcomes(db), out)
        return int(db.execute("SELECT count(*) FROM outcomes").fetchone()[0])
    finally:
        db.close()
