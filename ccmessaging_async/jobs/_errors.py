"""The errors that refuse a job before anything is dialled, or end a run early."""

from __future__ import annotations

import sqlite3
import sys

__all__ = ["POSTGRES_EXTRA", "JobRefusedError", "JobStoppedError", "storage_errors"]


#: What to install for jobs in PostgreSQL, said when it is missing.
POSTGRES_EXTRA = (
    "a job in PostgreSQL needs the postgres extra: pip install 'ccmessaging-async[postgres]'"
)


class JobRefusedError(Exception):
    """The job refuses to start: its input, store or lock say it would be unsafe.

    Raised before anything is dialled; the message says what to do.
    """


class JobStoppedError(Exception):
    """The job could not write its store or report (or lost its lease), and stopped dialling."""


def storage_errors() -> tuple[type[Exception], ...]:
    """Return the errors of a job's store that stop a run (psycopg's, when it is in use)."""
    errors: tuple[type[Exception], ...] = (sqlite3.Error, OSError, JobStoppedError)
    # Not imported for a job file: nothing can raise its errors, and importing it costs a
    # job's process about 80 ms.
    psycopg = sys.modules.get("psycopg")
    return errors if psycopg is None else (*errors, psycopg.Error)
