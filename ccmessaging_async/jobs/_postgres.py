"""A job in PostgreSQL, shared by many workers on many machines.

The driver is psycopg 3's synchronous API, called from worker threads
(``anyio.to_thread``), as the SQLite store is: it runs on asyncio and trio alike, where
psycopg's async API and asyncpg are asyncio-only, and a job's database work is a few
group commits per second, which threads carry easily. Each worker holds three
connections: one for commits, one for taking rows and reading, one for its heartbeat (so
that a long commit never delays a renewal).

The protocol, the same states as a job file:

- **Taking.** A worker takes free rows in groups (``FOR UPDATE SKIP LOCKED``, so workers
  never wait for each other), marking them with its id and a fresh lease token. Its lease
  is its ``workers`` row: ``expires_at``, renewed by its heartbeat from the database's
  ``now()``, never a worker's clock; one renewal covers every row it holds.
- **Fence before dialling.** A row goes ``sending`` only by a conditional update (this
  worker, this token, still ``pending``, the worker's lease not expired or ended),
  committed in the same group commits as the job file's claims, before the request can
  leave. A claim that matches nothing is not dialled.
- **Losing a worker.** A worker whose lease expired (it died, or was cut off) or that
  ended is reaped by whichever worker looks next: the rows it had taken but not sent are
  free again; the rows it had ``sending`` become ``unknown``, recorded, and are never
  dialled again unless ``resend_unknown``. A worker that could not renew for half its
  lease stops dialling by itself (:mod:`._runner`), and one whose lease was taken back
  finds every further claim refused.
- **Outcomes** are recorded only for a row this worker still has ``sending``: an outcome
  that arrives after the row was reaped leaves it ``unknown`` (logged).

The job's pace, shared by its workers, is :mod:`._postgres_pace`.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from ._errors import JobRefusedError, JobStoppedError
from ._input import InputRow
from ._postgres_pace import PostgresPace
from ._postgres_schema import ensure_schema
from ._records import (
    STATES,
    Deferral,
    Final,
    InputIdentity,
    InputRules,
    JobInfo,
    PendingRow,
    Recorded,
    RunProgress,
    UnknownRow,
    Waiting,
    unknown_rows_of,
)
from ._store import Committed

__all__ = [
    "PostgresStore",
    "connect",
    "describe_database",
    "read_info",
    "read_outcomes",
    "settled_counts",
    "state_counts",
]

logger = logging.getLogger("ccmessaging_async.jobs")

_REAPED = (
    "OutcomeUnknownError: the worker sending this row stopped or lost its lease before its "
    "outcome was recorded; not sent again (--resend-unknown sends it again)"
)
_CHUNK = 10_000


def describe_database(url: str) -> str:
    """``postgresql://user@host:port/dbname``: the URL without its password or options."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(an unreadable URL)"
    user = f"{parts['user']}@" if parts.get("user") else ""
    host = parts.get("host") or "localhost"
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{host}{port}/{parts.get('dbname') or ''}"


def connect(url: str, *, timeout: float) -> psycopg.Connection[tuple[Any, ...]]:
    """Connect so as to notice a dead peer within about ``timeout`` seconds."""
    where = describe_database(url)
    try:
        password = str(conninfo_to_dict(url).get("password") or "")
    except psycopg.ProgrammingError as exc:
        raise JobRefusedError(f"the job database URL cannot be read: {exc}") from None
    try:
        return psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=max(2, round(timeout)),
            application_name="ccmessaging-async",
            keepalives=1,
            keepalives_idle=max(1, round(timeout / 3)),
            keepalives_interval=1,
            keepalives_count=3,
            tcp_user_timeout=max(1000, round(timeout * 1000)),
        )
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if password:
            reason = reason.replace(password, "***")
        raise JobRefusedError(
            f"cannot reach the job database {where}: {reason}. Nothing was dialled"
        ) from None


#: Rows whose number an earlier row of the job has: each points at the first row with it.
_MARK_DUPLICATES = """
WITH firsts AS (
    SELECT number, min(row) AS first FROM ccmessaging.rows
    WHERE job = %(job)s AND number IS NOT NULL GROUP BY number HAVING count(*) > 1
)
UPDATE ccmessaging.rows r SET duplicate_of = firsts.first FROM firsts
WHERE r.job = %(job)s AND r.number = firsts.number AND r.row > firsts.first
"""


class PostgresStore:
    """The job ``name`` in the PostgreSQL database at ``url``, opened by one worker."""

    single_writer = False

    def __init__(self, url: str, name: str, *, lease: float) -> None:
        if not 1 <= lease <= 3600:
            raise JobRefusedError(f"the lease must be 1 to 3600 seconds, got {lease:g}")
        self.lease: float | None = lease
        self.name = name
        self.where = describe_database(url)
        self.label = f"{name!r} in {self.where}"
        self._connections: list[psycopg.Connection[tuple[Any, ...]]] = []
        try:
            self._db = self._open(url)
            ensure_schema(self._db, self.where)
            self._reader = self._open(url)
            self._beat = self._open(url)
            # The shared pace's transactions run in threads of their own, beside takings
            # (on _reader): a connection shared by two threads would interleave them.
            self._pacing = self._open(url)
        except BaseException:
            self.close()
            raise
        self._offset = self._clock_offset()
        self._job: int | None = self._find_job()
        self._worker: int | None = None
        self._pace: PostgresPace | None = None
        self._tokens: dict[int, int] = {}  # row -> the lease token it was taken with
        self._after = -1  # the last row this worker took

    def _clock_offset(self) -> float:
        """Seconds the database's clock is ahead of this machine's (read once, at open)."""
        before = time.time()
        found = self._db.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()
        after = time.time()
        return 0.0 if found is None else float(found[0]) - (before + after) / 2

    def forget_waits(self) -> int:
        """Let rows waiting for calling hours be looked at again, if no other worker runs.

        A worker starting alone on the job (a resume) applies its own hours to them; one
        joining others leaves the moments they set.
        """
        return max(
            0,
            self._db.execute(
                "UPDATE ccmessaging.rows SET not_before = NULL, waiting_for = NULL "
                "WHERE job = %(job)s AND state = 'pending' AND worker IS NULL "
                "AND not_before IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ccmessaging.workers "
                "WHERE job = %(job)s AND id <> %(me)s AND ended_at IS NULL "
                "AND expires_at > now())",
                {"job": self.job, "me": self.worker},
            ).rowcount,
        )

    def now(self) -> float:
        """Return the database's clock, Unix time (this machine's, corrected at open)."""
        return time.time() + self._offset

    def waiting(self) -> Waiting:
        """Return the job's pending rows deferred to a moment still to come."""
        return read_waiting(self._reader, self.job)

    def _open(self, url: str) -> psycopg.Connection[tuple[Any, ...]]:
        db = connect(url, timeout=self._lease_seconds / 2)
        self._connections.append(db)
        return db

    @property
    def _lease_seconds(self) -> float:
        return self.lease or 30.0

    def _find_job(self) -> int | None:
        found = self._db.execute(
            "SELECT id FROM ccmessaging.jobs WHERE name = %s", (self.name,)
        ).fetchone()
        return None if found is None else int(found[0])

    @property
    def job(self) -> int:
        """The job's id (it must have been taken in)."""
        if self._job is None:
            raise JobRefusedError(f"there is no job {self.label}; give the input file to start")
        return self._job

    @property
    def worker(self) -> int:
        """Return this worker's id, registered with its lease on first use."""
        if self._worker is None:
            found = self._db.execute(
                "INSERT INTO ccmessaging.workers (job, host, pid, lease, expires_at) "
                "VALUES (%s, %s, %s, make_interval(secs => %s), now() + make_interval(secs => %s)) "
                "RETURNING id",
                (self.job, socket.gethostname(), os.getpid(), self.lease, self.lease),
            ).fetchone()
            assert found is not None  # noqa: S101 - INSERT ... RETURNING returns its row
            self._worker = int(found[0])
        return self._worker

    @property
    def shared_pace(self) -> PostgresPace:
        """The job's pace, which its workers share (the job must have been taken in)."""
        if self._pace is None:
            self._pace = PostgresPace(self._pacing, self._beat, self.job)
        return self._pace

    # ---- the input ---------------------------------------------------------------------

    def info(self) -> JobInfo | None:
        """Return what the job knows of its input (``None``: no such job yet)."""
        if self._job is None:
            return None
        return read_info(self._reader, self._job)

    def import_rows(
        self,
        rows: Iterable[InputRow],
        input_path: str,
        input_format: str,
        identity: Callable[[], InputIdentity],
        rules: InputRules,
    ) -> int:
        """Create the job and take in its rows, in one transaction (COPY).

        Unless ``rules`` allow duplicates, a row whose number an earlier row has is marked.
        """
        with self._db.transaction():
            found = self._db.execute(
                "INSERT INTO ccmessaging.jobs (name, input_path, input_format, input_size, "
                "input_sha256, region, send_as, allow_duplicates) "
                "VALUES (%s, %s, %s, 0, '', %s, %s, %s) ON CONFLICT (name) DO NOTHING "
                "RETURNING id",
                (
                    self.name,
                    input_path,
                    input_format,
                    rules.default_region,
                    rules.send_as,
                    rules.allow_duplicates,
                ),
            ).fetchone()
            if found is None:
                raise JobRefusedError(
                    f"the job {self.label} was started by another process meanwhile; run the "
                    "command again to join it"
                )
            job = int(found[0])
            count = 0
            with self._db.cursor().copy(
                "COPY ccmessaging.rows (job, row, line, digest, called, caller_present, "
                "call_data, input_error, number) FROM STDIN"
            ) as copy:
                for r in rows:
                    copy.write_row(
                        (
                            job,
                            r.row,
                            r.line,
                            r.digest,
                            r.called,
                            r.caller_present,
                            r.call_data,
                            r.error,
                            r.number,
                        )
                    )
                    count += 1
            if not rules.allow_duplicates:
                self._db.execute(_MARK_DUPLICATES, {"job": job})
            known = identity()  # once every row was read
            self._db.execute(
                "UPDATE ccmessaging.jobs SET rows = %s, input_size = %s, input_sha256 = %s "
                "WHERE id = %s",
                (count, known.size, known.sha256, job),
            )
        self._job = job
        # Fresh statistics, or the planner takes a million pending rows for a handful and
        # reads them all to fence a group of claims (measured: 82 ms a commit, not 3 ms).
        self._db.execute("ANALYZE ccmessaging.rows")
        return count

    def digests(self) -> Iterator[tuple[int, int, bytes]]:
        """``(row, line, digest)`` of every row, in order."""
        after = -1
        while True:
            found = self._reader.execute(
                "SELECT row, line, digest FROM ccmessaging.rows WHERE job = %s AND row > %s "
                "ORDER BY row LIMIT %s",
                (self.job, after, _CHUNK),
            ).fetchall()
            for row, line, digest in found:
                yield row, line, bytes(digest)
            if len(found) < _CHUNK:
                return
            after = found[-1][0]

    # ---- a run -------------------------------------------------------------------------

    def _reap(self, db: psycopg.Connection[tuple[Any, ...]]) -> int:
        """Settle what workers that ended or lapsed left behind; return rows made unknown.

        Each such worker is settled once (by whichever worker looks first), so a look
        finds nothing to do in one indexed query while every worker is alive.
        """
        job = self.job
        gone = [
            worker
            for (worker,) in db.execute(
                "UPDATE ccmessaging.workers SET settled = true, "
                "ended_at = coalesce(ended_at, now()), how = coalesce(how, 'lost') "
                "WHERE job = %s AND NOT settled AND (ended_at IS NOT NULL OR expires_at < now()) "
                "RETURNING id",
                (job,),
            ).fetchall()
        ]
        if not gone:
            return 0
        lost = db.execute(
            "WITH lost AS (UPDATE ccmessaging.rows SET state = 'unknown', result_code = NULL "
            "WHERE job = %(job)s AND worker = ANY(%(gone)s) AND state = 'sending' "
            "RETURNING row, sent_at) "
            "INSERT INTO ccmessaging.outcomes "
            "(job, row, status, error, attempts, latency_ms, sent_at) "
            "SELECT %(job)s, row, 'unknown', %(why)s, 0, 0, sent_at FROM lost ORDER BY row",
            {"job": job, "gone": gone, "why": _REAPED},
        ).rowcount
        db.execute(
            "UPDATE ccmessaging.rows SET worker = NULL, lease = NULL "
            "WHERE job = %s AND worker = ANY(%s) AND state = 'pending'",
            (job, gone),
        )
        return max(lost, 0)

    def settle_interrupted(self, *, resend_unknown: bool) -> int:
        """Settle what stopped workers left; with ``resend_unknown``, unknown rows go again.

        So do the rows settled afterwards as not created (from the call records).
        """
        worker = self.worker
        with self._db.transaction():
            interrupted = self._reap(self._db)
        if resend_unknown:
            with self._db.transaction():
                resent = self._db.execute(
                    "UPDATE ccmessaging.rows SET state = 'pending', result_code = NULL, "
                    "settled_by = NULL, worker = NULL, lease = NULL WHERE job = %s AND "
                    "(state = 'unknown' OR (state = 'failed' AND settled_by IS NOT NULL))",
                    (self.job,),
                ).rowcount
                self._db.execute(
                    "UPDATE ccmessaging.workers SET resent = %s WHERE id = %s", (resent, worker)
                )
        return interrupted

    def fail_invalid(self) -> int:
        """Give each free pending row that cannot be sent (its input error) its outcome."""
        return max(
            0,
            self._db.execute(
                "WITH bad AS (UPDATE ccmessaging.rows SET state = 'failed' WHERE job = %(job)s "
                "AND state = 'pending' AND worker IS NULL AND input_error IS NOT NULL "
                "RETURNING row, input_error) "
                "INSERT INTO ccmessaging.outcomes (job, row, status, error, attempts, latency_ms) "
                "SELECT %(job)s, row, 'failed', input_error, 0, 0 FROM bad ORDER BY row",
                {"job": self.job},
            ).rowcount,
        )

    def skip_duplicates(self) -> int:
        """End each free pending row marked as a duplicate, ``skipped`` without a call."""
        return max(
            0,
            self._db.execute(
                "WITH dup AS (UPDATE ccmessaging.rows SET state = 'skipped' WHERE job = %(job)s "
                "AND state = 'pending' AND worker IS NULL AND duplicate_of IS NOT NULL "
                "RETURNING row, duplicate_of) "
                "INSERT INTO ccmessaging.outcomes (job, row, status, error, attempts, latency_ms) "
                "SELECT %(job)s, dup.row, 'skipped', 'DuplicateNumberError: the same number as "
                "row ' || dup.duplicate_of || ' (line ' || f.line || '): each number is called "
                "once per job (--allow-duplicates calls every row)', 0, 0 FROM dup "
                "JOIN ccmessaging.rows f ON f.job = %(job)s AND f.row = dup.duplicate_of "
                "ORDER BY dup.row",
                {"job": self.job},
            ).rowcount,
        )

    def take(self, limit: int) -> list[PendingRow]:
        """Take up to ``limit`` free rows for this worker (after reaping lapsed workers).

        Raises :class:`JobStoppedError` if this worker's lease was taken back.
        """
        worker, token = self.worker, secrets.randbits(63)
        with self._reader.transaction():
            self._reap(self._reader)
            alive = self._reader.execute(
                "SELECT 1 FROM ccmessaging.workers WHERE id = %s AND ended_at IS NULL "
                "AND expires_at > now()",
                (worker,),
            ).fetchone()
            if alive is None:
                raise JobStoppedError(
                    "this worker's lease was taken back (it was not renewed in time)"
                )
            found = self._take_after(self._after, worker, token, limit)
            if not found and self._after >= 0:  # rows given back behind where it looks
                found = self._take_after(-1, worker, token, limit)
        found.sort()
        if found:
            self._after = max(self._after, found[-1][0])
        for values in found:
            self._tokens[values[0]] = token
        return [PendingRow(*values) for values in found]

    def _take_after(self, after: int, worker: int, token: int, limit: int) -> list[Any]:
        # Looking from the last row taken skips the index entries of rows already taken
        # (dead until vacuumed), which a scan from the start would read at every taking.
        # Materialised: a subquery the planner rescans would take more than ``limit``.
        return self._reader.execute(
            "WITH free AS MATERIALIZED (SELECT row FROM ccmessaging.rows "
            "WHERE job = %(job)s AND state = 'pending' AND worker IS NULL AND row > %(after)s "
            "AND (not_before IS NULL OR not_before <= now()) "
            "ORDER BY row LIMIT %(limit)s FOR UPDATE SKIP LOCKED) "
            "UPDATE ccmessaging.rows r SET worker = %(worker)s, lease = %(token)s "
            "FROM free WHERE r.job = %(job)s AND r.row = free.row "
            "RETURNING r.row, r.line, r.called, r.caller_present, r.call_data, r.number, "
            "extract(epoch FROM r.not_before)::double precision",
            {"worker": worker, "token": token, "job": self.job, "limit": limit, "after": after},
        ).fetchall()

    def others_working(self) -> bool:
        """Whether rows are pending or being sent anywhere but in this worker.

        Rows waiting for their calling hours are not: :meth:`waiting` tells of them.
        """
        found = self._reader.execute(
            "SELECT EXISTS (SELECT 1 FROM ccmessaging.rows WHERE job = %s "
            "AND state IN ('pending', 'sending') AND worker IS DISTINCT FROM %s "
            "AND (not_before IS NULL OR not_before <= now() OR worker IS NOT NULL))",
            (self.job, self.worker),
        ).fetchone()
        return bool(found and found[0])

    def keep_alive(self) -> bool:
        """Renew this worker's lease from the database's clock; ``False`` once it lapsed."""
        found = self._beat.execute(
            "UPDATE ccmessaging.workers SET expires_at = now() + lease "
            "WHERE id = %s AND ended_at IS NULL AND expires_at > now() RETURNING 1",
            (self.worker,),
        ).fetchone()
        return found is not None

    def commit(
        self,
        claims: list[int],
        finals: list[Final],
        releases: Iterable[int] = (),
        deferrals: Iterable[Deferral] = (),
        progress: RunProgress | None = None,
    ) -> Committed:
        """Fence ``claims`` to ``sending``, free ``releases``, record ``finals``: one commit.

        ``deferrals`` this worker holds (or sent and were throttled) are freed, not to be
        taken by any worker before their moment. ``progress`` is noted in this worker's row.
        """
        put_off = list(deferrals)
        worker, job = self.worker, self.job
        released = list(releases)
        recorded: list[Recorded] = []
        refused: set[int] = set()
        with self._db.transaction():
            if claims:
                fenced = self._db.execute(
                    "UPDATE ccmessaging.rows r SET state = 'sending', sent_at = now() "
                    "FROM ccmessaging.workers w, unnest(%(rows)s::integer[], %(tokens)s::bigint[]) "
                    "AS c(row, lease) WHERE r.job = %(job)s AND r.row = c.row "
                    "AND r.lease = c.lease AND r.worker = %(worker)s AND r.state = 'pending' "
                    "AND w.id = %(worker)s AND w.ended_at IS NULL AND w.expires_at > now() "
                    "RETURNING r.row",
                    {
                        "rows": claims,
                        "tokens": [self._tokens.get(row, -1) for row in claims],
                        "job": job,
                        "worker": worker,
                    },
                ).fetchall()
                refused = set(claims) - {row for (row,) in fenced}
            if released:
                self._db.execute(
                    "UPDATE ccmessaging.rows SET state = 'pending', worker = NULL, lease = NULL "
                    "WHERE job = %s AND row = ANY(%s) AND state = 'sending' AND worker = %s",
                    (job, released, worker),
                )
            if put_off:
                self._db.execute(
                    "UPDATE ccmessaging.rows r SET state = 'pending', worker = NULL, "
                    "lease = NULL, not_before = to_timestamp(d.at), waiting_for = d.note "
                    "FROM unnest(%(rows)s::integer[], %(at)s::double precision[], "
                    "%(notes)s::text[]) AS d(row, at, note) WHERE r.job = %(job)s "
                    "AND r.row = d.row AND r.worker = %(worker)s "
                    "AND r.state IN ('pending', 'sending')",
                    {
                        "rows": [d.row for d in put_off],
                        "at": [d.not_before for d in put_off],
                        "notes": [d.waiting_for for d in put_off],
                        "job": job,
                        "worker": worker,
                    },
                )
            if progress is not None:
                self._db.execute(
                    "UPDATE ccmessaging.workers SET throttles = %s, pace = %s WHERE id = %s",
                    (progress.throttles, progress.pace, worker),
                )
            if finals:
                recorded = self._record(finals)
        for row in (*released, *(d.row for d in put_off), *(f.row for f in finals)):
            self._tokens.pop(row, None)
        return Committed(recorded, frozenset(refused))

    def _record(self, finals: list[Final]) -> list[Recorded]:
        ended = self._db.execute(
            # A row this worker sent, or one it holds and skips (never claimed: no call).
            "UPDATE ccmessaging.rows r SET state = f.status, result_code = f.code "
            "FROM unnest(%(rows)s::integer[], %(statuses)s::text[], %(codes)s::text[], "
            "%(tokens)s::bigint[]) AS f(row, status, code, lease) "
            "WHERE r.job = %(job)s AND r.row = f.row AND r.worker = %(worker)s "
            "AND (r.state = 'sending' OR (f.status = 'skipped' AND r.state = 'pending' "
            "AND r.lease = f.lease)) RETURNING r.row",
            {
                "rows": [f.row for f in finals],
                "statuses": [f.status for f in finals],
                "codes": [f.result_code for f in finals],
                "tokens": [self._tokens.get(f.row, -1) for f in finals],
                "job": self.job,
                "worker": self.worker,
            },
        ).fetchall()
        mine = {row for (row,) in ended}
        kept = [f for f in finals if f.row in mine]
        late = [f.row for f in finals if f.row not in mine]
        if late:
            logger.warning(
                "%d outcomes (rows %s) came after this worker's lease was taken back; the "
                "job recorded those rows as unknown",
                len(late),
                ", ".join(map(str, late[:10])) + (", ..." if len(late) > 10 else ""),
            )
        if not kept:
            return []
        return self._insert_outcomes(kept)

    def _insert_outcomes(self, finals: list[Final]) -> list[Recorded]:
        """Record ``finals``, in order, each with when its row was last claimed."""
        seqs = self._db.execute(
            "INSERT INTO ccmessaging.outcomes (job, row, status, result, result_code, error, "
            "attempts, latency_ms, sent_at, settled_by) SELECT %(job)s, f.row, f.status, "
            "f.result, f.code, f.error, f.attempts, f.latency, r.sent_at, f.settled_by "
            "FROM unnest(%(rows)s::integer[], %(statuses)s::text[], %(results)s::text[], "
            "%(codes)s::text[], %(errors)s::text[], %(attempts)s::integer[], "
            "%(latencies)s::double precision[], %(settled)s::text[]) WITH ORDINALITY AS "
            "f(row, status, result, code, error, attempts, latency, settled_by, n) "
            "JOIN ccmessaging.rows r ON r.job = %(job)s AND r.row = f.row "
            "ORDER BY f.n RETURNING seq",
            {
                "job": self.job,
                "rows": [f.row for f in finals],
                "statuses": [f.status for f in finals],
                "results": [f.result for f in finals],
                "codes": [f.result_code for f in finals],
                "errors": [f.error for f in finals],
                "attempts": [f.attempts for f in finals],
                "latencies": [f.latency_ms for f in finals],
                "settled": [f.settled_by for f in finals],
            },
        ).fetchall()
        return [Recorded(int(seq), final) for (seq,), final in zip(seqs, finals, strict=True)]

    # ---- settling unknown outcomes ---------------------------------------------------

    def unknown_rows(self) -> list[UnknownRow]:
        """Return the job's ``unknown`` rows, each with its attempts since its last outcome."""
        return unknown_rows_of(
            self._reader.execute(
                "SELECT r.row, r.line, r.called, r.caller_present, o.seq::integer, o.status, "
                "extract(epoch FROM o.sent_at)::double precision, "
                "extract(epoch FROM o.finished_at)::double precision "
                "FROM ccmessaging.rows r JOIN ccmessaging.outcomes o ON o.job = r.job "
                "AND o.row = r.row WHERE r.job = %s AND r.state = 'unknown' "
                "ORDER BY r.row, o.seq",
                (self.job,),
            )
        )

    def created_calls(self, start: float, end: float) -> list[tuple[str, float]]:
        """Return ``(serial number, ended)`` of the calls made (or settled as made), sent then."""
        return [
            (serial, float(finished))
            for serial, finished in self._reader.execute(
                "SELECT result::json ->> 'call_serial_no', "
                "extract(epoch FROM finished_at)::double precision FROM ccmessaging.outcomes "
                "WHERE job = %s AND status = 'succeeded' "
                "AND sent_at BETWEEN to_timestamp(%s) AND to_timestamp(%s)",
                (self.job, start, end),
            )
            if serial
        ]

    def settle(self, finals: list[Final]) -> list[Recorded]:
        """Record how ``unknown`` rows were settled; rows no longer unknown are left."""
        with self._db.transaction():
            still = {
                row
                for (row,) in self._db.execute(
                    "UPDATE ccmessaging.rows r SET state = f.status, result_code = f.code, "
                    "settled_by = f.settled_by FROM unnest(%(rows)s::integer[], "
                    "%(statuses)s::text[], %(codes)s::text[], %(settled)s::text[]) "
                    "AS f(row, status, code, settled_by) WHERE r.job = %(job)s "
                    "AND r.row = f.row AND r.state = 'unknown' RETURNING r.row",
                    {
                        "job": self.job,
                        "rows": [f.row for f in finals],
                        "statuses": [f.status for f in finals],
                        "codes": [f.result_code for f in finals],
                        "settled": [f.settled_by for f in finals],
                    },
                ).fetchall()
            }
            settled = [f for f in finals if f.row in still]
            return self._insert_outcomes(settled) if settled else []

    def end_run(self, how: str, *, throttles: int = 0, pace: float | None = None) -> None:
        """Give back the rows this worker took and did not dial; record how it ended."""
        if self._worker is None:
            return
        with self._db.transaction():
            self._db.execute(
                "UPDATE ccmessaging.rows SET worker = NULL, lease = NULL "
                "WHERE job = %s AND worker = %s AND state = 'pending'",
                (self.job, self._worker),
            )
            self._db.execute(
                "UPDATE ccmessaging.workers SET ended_at = now(), how = %s, throttles = %s, "
                "pace = %s WHERE id = %s AND ended_at IS NULL",
                (how, throttles, pace, self._worker),
            )

    def close(self) -> None:
        """Close the worker's connections."""
        for db in self._connections:
            db.close()

    # ---- reading -----------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Rows by state, every state named."""
        return state_counts(self._reader, self.job)

    def outcome_count(self) -> int:
        """How many outcomes the job has recorded."""
        found = self._reader.execute(
            "SELECT count(*) FROM ccmessaging.outcomes WHERE job = %s", (self.job,)
        ).fetchone()
        return int(found[0]) if found else 0

    def outcomes(self, after: int = 0) -> Iterator[Recorded]:
        """Yield the job's outcomes in the order they were recorded, numbered from 1."""
        return read_outcomes(self._reader, self.job, after)


def read_info(db: psycopg.Connection[tuple[Any, ...]], job: int) -> JobInfo | None:
    found = db.execute(
        "SELECT input_path, input_format, input_size, input_sha256, rows, created_at, region, "
        "send_as, allow_duplicates FROM ccmessaging.jobs WHERE id = %s",
        (job,),
    ).fetchone()
    if found is None:
        return None
    path, kind, size, sha256, rows, created, region, send_as, duplicates = found
    return JobInfo(
        path,
        kind,
        InputIdentity(size, sha256),
        rows,
        created.isoformat(timespec="milliseconds"),
        InputRules(region, send_as, duplicates),
    )


def read_waiting(db: psycopg.Connection[tuple[Any, ...]], job: int) -> Waiting:
    """Return the job's pending rows deferred to after now (the database's clock)."""
    rows, first = db.execute(
        "SELECT count(*), extract(epoch FROM min(not_before))::double precision "
        "FROM ccmessaging.rows WHERE job = %s AND state = 'pending' "
        "AND not_before IS NOT NULL AND not_before > now()",
        (job,),
    ).fetchone() or (0, None)
    if not rows:
        return Waiting()
    found = db.execute(
        "SELECT waiting_for FROM ccmessaging.rows WHERE job = %s AND state = 'pending' "
        "AND not_before = to_timestamp(%s) LIMIT 1",
        (job, first),
    ).fetchone()
    return Waiting(int(rows), float(first), None if found is None else found[0])


def settled_counts(db: psycopg.Connection[tuple[Any, ...]], job: int) -> dict[str, int]:
    """Unknown outcomes settled afterwards, by how: ``created``, ``not_created``."""
    found = dict(
        db.execute(
            "SELECT status, count(*) FROM ccmessaging.outcomes WHERE job = %s "
            "AND settled_by IS NOT NULL GROUP BY status",
            (job,),
        ).fetchall()
    )
    return {"created": found.get("succeeded", 0), "not_created": found.get("failed", 0)}


def state_counts(db: psycopg.Connection[tuple[Any, ...]], job: int) -> dict[str, int]:
    counts = dict.fromkeys(STATES, 0)
    counts.update(
        db.execute(
            "SELECT state, count(*) FROM ccmessaging.rows WHERE job = %s GROUP BY state", (job,)
        ).fetchall()
    )
    return counts


def read_outcomes(
    db: psycopg.Connection[tuple[Any, ...]], job: int, after: int = 0
) -> Iterator[Recorded]:
    number, last = after, -1
    offset = after
    while True:
        found = db.execute(
            "SELECT o.seq, o.row, r.line, r.called, o.status, o.result, o.result_code, "
            "o.error, o.attempts, o.latency_ms, o.settled_by FROM ccmessaging.outcomes o "
            "JOIN ccmessaging.rows r ON r.job = o.job AND r.row = o.row "
            "WHERE o.job = %s AND o.seq > %s ORDER BY o.seq OFFSET %s LIMIT %s",
            (job, last, offset, _CHUNK),
        ).fetchall()
        offset = 0
        for seq, *values in found:
            number += 1
            last = seq
            yield Recorded(number, Final(*values))
        if len(found) < _CHUNK:
            return
