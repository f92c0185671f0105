"""Seeing a job in PostgreSQL from outside: ``status`` and ``export``, also while it runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from ._errors import JobRefusedError
from ._postgres import (
    connect,
    describe_database,
    read_info,
    read_outcomes,
    read_waiting,
    settled_counts,
    state_counts,
)
from ._postgres_schema import ensure_schema
from ._report import write_report
from ._status import job_data, job_lines

__all__ = ["postgres_export", "postgres_status"]


def _open_existing(url: str, name: str) -> tuple[psycopg.Connection[tuple[Any, ...]], int]:
    where = describe_database(url)
    db = connect(url, timeout=15)
    try:
        ensure_schema(db, where)
        found = db.execute("SELECT id FROM ccmessaging.jobs WHERE name = %s", (name,)).fetchone()
    except BaseException:
        db.close()
        raise
    if found is None:
        db.close()
        raise JobRefusedError(f"there is no job {name!r} in {where}")
    return db, int(found[0])


def postgres_status(url: str, name: str) -> tuple[list[str], dict[str, Any]]:
    """Describe the job ``name`` as ``status`` prints it (and as data), while workers run."""
    db, job = _open_existing(url, name)
    with db:
        info = read_info(db, job)
        counts = state_counts(db, job)
        codes = db.execute(
            "SELECT result_code, count(*) FROM ccmessaging.rows WHERE job = %s "
            "AND result_code IS NOT NULL GROUP BY result_code ORDER BY count(*) DESC, result_code",
            (job,),
        ).fetchall()
        resent, alive, lost = db.execute(
            "SELECT coalesce(sum(resent), 0), "
            "count(*) FILTER (WHERE ended_at IS NULL AND expires_at > now()), "
            "count(*) FILTER (WHERE how = 'lost') FROM ccmessaging.workers WHERE job = %s",
            (job,),
        ).fetchone() or (0, 0, 0)
        not_called = db.execute(
            "SELECT count(*) FILTER (WHERE state = 'failed' AND input_error IS NOT NULL), "
            "count(*) FILTER (WHERE state = 'skipped' AND duplicate_of IS NOT NULL), "
            "count(*) FILTER (WHERE state = 'skipped' AND duplicate_of IS NULL) "
            "FROM ccmessaging.rows WHERE job = %s AND state IN ('failed', 'skipped')",
            (job,),
        ).fetchone() or (0, 0, 0)
        waiting = read_waiting(db, job)
        settled = settled_counts(db, job)
        rate, pace = db.execute(
            "SELECT rate, pace FROM ccmessaging.jobs WHERE id = %s", (job,)
        ).fetchone() or (None, None)
        workers = db.execute(
            "SELECT host, pid, throttles FROM ccmessaging.workers WHERE job = %s "
            "AND ended_at IS NULL AND expires_at > now() ORDER BY id",
            (job,),
        ).fetchall()
    facts = (f"job {name!r} in {describe_database(url)}", info, counts, codes, resent)
    lines = job_lines(*facts, not_called=not_called, waiting=waiting, settled=settled)
    data = job_data(*facts, not_called=not_called, waiting=waiting, settled=settled)
    data.update(
        rate=rate,
        pace=pace,
        running=[
            {"host": host, "pid": pid, "throttles": throttles} for host, pid, throttles in workers
        ],
        lost_workers=lost,
    )
    if rate is not None:
        lines.append(f"  rate {rate:g} calls/s (every worker together), pace now {pace:.1f}")
    elif pace is not None:
        lines.append(
            f"  no rate; the pace found from throttling: {pace:.1f} calls/s (every worker)"
        )
    if alive:
        lines.append(
            f"  {alive} workers running: "
            + ", ".join(f"{host} pid {pid}" for host, pid, _throttles in workers)
        )
        throttled = sum(throttles for _host, _pid, throttles in workers)
        if throttled:
            lines.append(f"  the workers running were throttled {throttled} times so far")
    else:
        lines.append("  no worker running")
    if lost:
        lines.append(f"  {lost} workers lost (died or cut off); their rows were settled")
    return lines, data


def postgres_export(url: str, name: str, out: Path) -> int:
    """Write the whole report of the job ``name`` to ``out``; return its line count."""
    db, job = _open_existing(url, name)
    with db:
        write_report(read_outcomes(db, job), out)
        found = db.execute(
            "SELECT count(*) FROM ccmessaging.outcomes WHERE job = %s", (job,)
        ).fetchone()
    return int(found[0]) if found else 0
