"""Batch jobs: many calls, each dialled at most once, whatever crashes, in a job store.

A job owns its rows (taken in once from a CSV/JSONL file or from requests) and gives each
exactly one recorded outcome: ``succeeded``, ``failed`` or ``unknown``, or ``skipped``
(not called: the same number as an earlier row, or a suppressed number). A row is
committed as ``sending`` before its request can leave, so a crash leaves it ``unknown``,
never dialled again unless asked (``resend_unknown=True``). :meth:`Job.reconcile`
settles ``unknown`` rows afterwards from the platform's call records. The store is chosen by where
it is:

- a path: a SQLite job file, one run at a time (an exclusive lock), the default;
- a ``postgresql://`` URL and a job name: a job in PostgreSQL that any number of workers,
  on any machines, run together (the ``postgres`` extra: ``pip install
  'ccmessaging-async[postgres]'``). Rows are taken in groups with ``SKIP LOCKED`` under a
  lease kept by each worker's heartbeat from the database's clock; a claim is fenced (it
  must still be this worker's, under an unexpired lease) and committed before the call is
  made; a dead worker's rows go back to the others, or become ``unknown`` if it was
  sending them.

Both run on asyncio and trio: the stores' blocking work runs in worker threads
(psycopg 3's synchronous driver, as :mod:`sqlite3`; psycopg's async API and asyncpg are
asyncio-only). The console script's ``batch``, ``work``, ``status`` and ``export`` are a
thin layer over this module::

    async with AsyncSession.from_env() as session:
        async with jobs.open_job("calls.job", input="calls.csv", report="calls.jsonl") as job:
            run = await job.run(session, concurrency=50)
"""

from __future__ import annotations

from ._api import Job, describe_job, export_job, open_job
from ._errors import JobRefusedError, JobStoppedError
from ._hours import CallingHours
from ._matching import Unsettled
from ._reconcile import Reconciliation
from ._records import Final, Recorded, Waiting
from ._runner import Run
from ._suppression import SuppressionList

__all__ = [
    "CallingHours",
    "Final",
    "Job",
    "JobRefusedError",
    "JobStoppedError",
    "Reconciliation",
    "Recorded",
    "Run",
    "SuppressionList",
    "Unsettled",
    "Waiting",
    "describe_job",
    "export_job",
    "open_job",
]
