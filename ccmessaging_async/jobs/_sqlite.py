"""The job file: a batch job's rows and their states in SQLite, one run at a time.

A row's state moves ``pending -> sending -> succeeded | failed | unknown`` (the tables are
described in :mod:`._schema`). ``sending`` is committed (WAL, ``synchronous=FULL``: on
disk) before the row's request can leave the process, and only once its call holds a
token and an in-flight slot; a row still ``sending`` when a run starts was interrupted and
becomes ``unknown`` first, always (and then ``pending`` again with ``--resend-unknown``,
so the report holds a line for the unknown outcome and one for the new call). One run per
job: an exclusive ``flock`` on the job file, held until the run ends and released by the
OS on any death.

While a run holds the job, its latest writes may live only in the ``-wal`` file beside
it: that file belongs to the job. When a run ends, the job file is checkpointed and left
in rollback-journal mode, a single self-contained file that can be copied alone and read
without write access.

It implements :class:`~._store.JobStore`; its claims need no fencing, since the lock
makes this run the job's only writer.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from ._errors import JobRefusedError
from ._input import InputRow
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
from ._sqlite_schema import SCHEMA, check_schema
from ._store import Committed

__all__ = [
    "SQLiteStore",
    "open_read_only",
    "read_info",
    "read_outcomes",
    "read_waiting",
    "running_pid",
    "settled_counts",
    "state_counts",
]

_INTERRUPTED = (
    "OutcomeUnknownError: the job stopped while this row was being sent; not sent again "
    "(--resend-unknown sends it again)"
)


#: Rows whose number an earlier row has: each points at the first row with it (two
#: lookups in the index on the number per row; ``UPDATE ... FROM`` needs SQLite 3.33).
_MARK_DUPLICATES = """
UPDATE rows SET duplicate_of = (SELECT min(f.row) FROM rows f WHERE f.number = rows.number)
WHERE number IS NOT NULL
AND row > (SELECT min(f.row) FROM rows f WHERE f.number = rows.number)
"""

_DUPLICATE_REASON = (
    "'DuplicateNumberError: the same number as row ' || duplicate_of || ' (line ' || "
    "(SELECT f.line FROM rows f WHERE f.row = rows.duplicate_of) || '): each number is "
    "called once per job (--allow-duplicates calls every row)'"
)


try:
    import fcntl
except ImportError:  # Windows: the job file's lock is a POSIX one
    fcntl = None  # type: ignore[assignment]

#: Why a job file cannot be run on this system.
NEEDS_POSIX = (
    "batch jobs need a POSIX system (Linux, macOS, WSL): a job file is locked with POSIX "
    "file locks and a run stops on signals; the SDK itself runs anywhere"
)


def _now() -> str:
    return _moment(time.time())


def _moment(unix: float) -> str:
    """Write a Unix time as the job file writes moments (ISO 8601, UTC, milliseconds)."""
    return datetime.datetime.fromtimestamp(unix, datetime.UTC).isoformat(timespec="milliseconds")


def _unix(moment: str) -> float:
    return datetime.datetime.fromisoformat(moment).timestamp()


class SQLiteStore:
    """One job file, locked for this process until :meth:`close`."""

    single_writer = True
    lease = None
    shared_pace = None  # one run: its own pace is the job's

    def __init__(self, path: Path, *, synchronous: str = "FULL") -> None:
        self.path = path
        self.label = str(path)
        self._after = -1  # the last row taken
        self._held: set[int] = set()  # taken by this run, neither ended nor given back
        self._lock_fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            self._lock()
            self._db = self._connect(synchronous)
            try:
                self._reader = self._connect("FULL")
            except BaseException:
                self._db.close()
                raise
        except BaseException:
            # No SQLite connection is open any more, so closing this descriptor cannot
            # drop SQLite's own locks.
            os.close(self._lock_fd)
            raise
        self._next_seq: int = self._scalar("SELECT COALESCE(MAX(seq), 0) FROM outcomes") + 1
        self.run_id = self._start_run()

    def _lock(self) -> None:
        if fcntl is None:
            raise JobRefusedError(NEEDS_POSIX)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = running_pid(self.path)
            who = f" (pid {holder})" if holder else ""
            raise JobRefusedError(
                f"the job file {self.path} is in use by another run{who}; wait for it to end "
                f"or stop it (`ccmessaging-async status {self.path}` shows its progress)"
            ) from None

    def _connect(self, synchronous: str) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            empty = check_schema(db, self.path)
        except BaseException:
            db.close()
            raise
        db.execute("PRAGMA journal_mode = WAL")
        db.execute(f"PRAGMA synchronous = {synchronous}")
        db.execute("PRAGMA busy_timeout = 10000")
        if empty:
            db.executescript(f"BEGIN IMMEDIATE; {SCHEMA} COMMIT;")
        return db

    def _scalar(self, sql: str, *args: Any) -> Any:
        return self._db.execute(sql, args).fetchone()[0]

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _start_run(self) -> int:
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO runs (pid, started_at) VALUES (?, ?)", (os.getpid(), _now())
            )
        return int(cursor.lastrowid or 0)

    # ---- the input ---------------------------------------------------------------------

    def info(self) -> JobInfo | None:
        """Return what the job file knows of its input (``None``: not taken in yet)."""
        return read_info(self._db)

    def import_rows(
        self,
        rows: Iterable[InputRow],
        input_path: str,
        input_format: str,
        identity: Callable[[], InputIdentity],
        rules: InputRules,
    ) -> int:
        """Take the rows of the input into the job, in one transaction; return their count.

        Nothing is kept if ``rows`` raises (the import is refused as a whole). Unless
        ``rules`` allow duplicates, a row whose number an earlier row has is marked so.
        """
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO rows (row, line, digest, called, caller_present, call_data, "
                "input_error, number) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (
                        r.row,
                        r.line,
                        r.digest,
                        r.called,
                        r.caller_present,
                        r.call_data,
                        r.error,
                        r.number,
                    )
                    for r in rows
                ),
            )
            if not rules.allow_duplicates:
                db.execute(_MARK_DUPLICATES)
            count = int(db.execute("SELECT count(*) FROM rows").fetchone()[0])
            known = identity()  # once every row was read
            db.execute(
                "INSERT INTO job (id, input_path, input_format, input_size, input_sha256, rows, "
                "created_at, region, send_as, allow_duplicates) "
                "VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    input_path,
                    input_format,
                    known.size,
                    known.sha256,
                    count,
                    _now(),
                    rules.default_region,
                    rules.send_as,
                    rules.allow_duplicates,
                ),
            )
        return count

    def digests(self) -> Iterator[tuple[int, int, bytes]]:
        """``(row, line, digest)`` of every row, in order."""
        yield from self._reader.execute("SELECT row, line, digest FROM rows ORDER BY row")

    # ---- a run -------------------------------------------------------------------------

    def settle_interrupted(self, *, resend_unknown: bool) -> int:
        """Settle rows an earlier run left ``sending``; return how many became ``unknown``.

        They are recorded ``unknown`` first, whatever else happens; with ``resend_unknown``
        they, the rows already ``unknown`` and those settled afterwards as not created
        are then ``pending`` again.
        """
        interrupted = self._end_rows("unknown", "?", "state = 'sending'", _INTERRUPTED)
        if resend_unknown:
            with self._transaction() as db:
                resent = db.execute(
                    "UPDATE rows SET state = 'pending', result_code = NULL, settled_by = NULL "
                    "WHERE state = 'unknown' OR (state = 'failed' AND settled_by IS NOT NULL)"
                ).rowcount
                db.execute("UPDATE runs SET resent = ? WHERE id = ?", (resent, self.run_id))
        return interrupted

    def fail_invalid(self) -> int:
        """Give each pending row that cannot be sent (its input error) its failed outcome."""
        return self._end_rows(
            "failed", "input_error", "state = 'pending' AND input_error IS NOT NULL"
        )

    def skip_duplicates(self) -> int:
        """End each pending row whose number an earlier row has, without a call."""
        return self._end_rows(
            "skipped", _DUPLICATE_REASON, "state = 'pending' AND duplicate_of IS NOT NULL"
        )

    def _end_rows(self, status: str, error: str, where: str, *args: str) -> int:
        """Give every row matching ``where`` the outcome ``status``, in one transaction."""
        # ``error`` and ``where`` are this module's own fixed SQL fragments, never input.
        columns = "seq, row, status, error, attempts, latency_ms, finished_at, sent_at"
        values = f"? + row_number() OVER (ORDER BY row) - 1, row, ?, {error}, 0, 0, ?, sent_at"
        insert = f"INSERT INTO outcomes ({columns}) SELECT {values} FROM rows WHERE {where}"  # noqa: S608
        with self._transaction() as db:
            count = db.execute(insert, (self._next_seq, status, *args, _now())).rowcount
            db.execute(f"UPDATE rows SET state = ? WHERE {where}", (status,))  # noqa: S608
        self._next_seq += count
        return count

    def take(self, limit: int) -> list[PendingRow]:
        """Return the next ``limit`` rows still ``pending``, in order (this run holds the job).

        Rows deferred to a moment still to come are left; once the end is reached, the
        rows behind (deferred earlier, their moment come) are looked at again, except
        those this run took and has not ended (their state is still ``pending``).
        """
        found = self._take_after(self._after, limit)
        if not found and self._after >= 0:
            behind = self._take_after(-1, limit + len(self._held))
            found = [values for values in behind if values[0] not in self._held][:limit]
        if found:
            self._after = max(self._after, found[-1][0])
        self._held.update(values[0] for values in found)
        return [PendingRow(*values) for values in found]

    def _take_after(self, after: int, limit: int) -> list[Any]:
        return self._reader.execute(
            "SELECT row, line, called, caller_present, call_data, number, not_before FROM rows "
            "WHERE state = 'pending' AND row > ? AND (not_before IS NULL OR not_before <= ?) "
            "ORDER BY row LIMIT ?",
            (after, time.time(), limit),
        ).fetchall()

    def forget_waits(self) -> int:
        """Let the rows waiting for calling hours be looked at again by this run's hours.

        One run at a time works a job file, so its hours are the job's: a resume with
        other hours (or none) must not keep the moments of the last ones.
        """
        with self._transaction() as db:
            return db.execute(
                "UPDATE rows SET not_before = NULL, waiting_for = NULL "
                "WHERE state = 'pending' AND not_before IS NOT NULL"
            ).rowcount

    def now(self) -> float:
        """Return this machine's clock (the job file is this machine's)."""
        return time.time()

    def waiting(self) -> Waiting:
        """Return the pending rows deferred to a moment still to come."""
        return read_waiting(self._reader, time.time())

    def others_working(self) -> bool:
        """Return ``False``: one run holds a job file."""
        return False

    def keep_alive(self) -> bool:
        """Return ``True``: the lock on the job file is this run's until it ends."""
        return True

    def commit(
        self,
        claims: list[int],
        finals: list[Final],
        releases: Iterable[int] = (),
        deferrals: Iterable[Deferral] = (),
        progress: RunProgress | None = None,
    ) -> Committed:
        """Mark ``claims`` ``sending``, ``releases`` ``pending`` again and record ``finals``.

        In one durable transaction. A row is released only when its call was provably
        never created (it was throttled, then stopped before its turn came again).
        ``deferrals`` go back to ``pending`` until their moment; ``progress`` is noted in
        this run's row (``status`` reads it while the run goes on).
        """
        deferrals = list(deferrals)
        first = self._next_seq
        now = time.time()
        finished = _moment(now)
        with self._transaction() as db:
            if claims:
                db.executemany(
                    "UPDATE rows SET state = 'sending', sent_at = ? WHERE row = ?",
                    ((now, row) for row in claims),
                )
            db.executemany(
                "UPDATE rows SET state = 'pending' WHERE row = ? AND state = 'sending'",
                ((row,) for row in releases),
            )
            db.executemany(
                "UPDATE rows SET state = 'pending', not_before = ?, waiting_for = ? "
                "WHERE row = ? AND state IN ('pending', 'sending')",
                ((d.not_before, d.waiting_for, d.row) for d in deferrals),
            )
            if progress is not None:
                db.execute(
                    "UPDATE runs SET throttles = ?, pace = ? WHERE id = ?",
                    (progress.throttles, progress.pace, self.run_id),
                )
            if finals:
                _insert_outcomes(db, first, finals, finished)
                db.executemany(
                    "UPDATE rows SET state = ?, result_code = ? WHERE row = ?",
                    ((f.status, f.result_code, f.row) for f in finals),
                )
        self._held.difference_update(f.row for f in finals)
        self._held.difference_update(d.row for d in deferrals)
        self._next_seq = first + len(finals)
        return Committed([Recorded(first + i, final) for i, final in enumerate(finals)])

    def end_run(self, how: str, *, throttles: int = 0, pace: float | None = None) -> None:
        """Record how this run ended, how often it was throttled and its pace at the end."""
        with self._transaction() as db:
            db.execute(
                "UPDATE runs SET ended_at = ?, how = ?, throttles = ?, pace = ? WHERE id = ?",
                (_now(), how, throttles, pace, self.run_id),
            )

    def close(self) -> None:
        """Close the job file and release its lock (SQLite first, then the lock).

        The write-ahead log is folded into the job file first, so that it stands alone.
        """
        try:
            self._reader.close()
            # Only done when no reader (``status``) holds the file; else at least folded.
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._db.execute("PRAGMA journal_mode = DELETE")
            self._db.close()
        finally:
            os.close(self._lock_fd)

    # ---- settling unknown outcomes ---------------------------------------------------

    def unknown_rows(self) -> list[UnknownRow]:
        """Return the ``unknown`` rows, each with its attempts since its last known outcome."""
        history = self._reader.execute(
            "SELECT r.row, r.line, r.called, r.caller_present, o.seq, o.status, o.sent_at, "
            "o.finished_at FROM rows r JOIN outcomes o ON o.row = r.row "
            "WHERE r.state = 'unknown' ORDER BY r.row, o.seq"
        )
        return unknown_rows_of((*values, _unix(finished)) for *values, finished in history)

    def created_calls(self, start: float, end: float) -> list[tuple[str, float]]:
        """Return ``(serial number, ended)`` of the calls made (or settled as made), sent then."""
        return [
            (serial, _unix(finished))
            for serial, finished in self._reader.execute(
                "SELECT json_extract(result, '$.call_serial_no'), finished_at FROM outcomes "
                "WHERE status = 'succeeded' AND sent_at BETWEEN ? AND ?",
                (start, end),
            )
            if serial
        ]

    def settle(self, finals: list[Final]) -> list[Recorded]:
        """Record how ``unknown`` rows were settled; rows no longer unknown are left."""
        first = self._next_seq
        with self._transaction() as db:
            settled = [
                f
                for f in finals
                if db.execute(
                    "UPDATE rows SET state = ?, result_code = ?, settled_by = ? "
                    "WHERE row = ? AND state = 'unknown'",
                    (f.status, f.result_code, f.settled_by, f.row),
                ).rowcount
            ]
            _insert_outcomes(db, first, settled, _now())
        self._next_seq = first + len(settled)
        return [Recorded(first + i, final) for i, final in enumerate(settled)]

    def has_ended(self, row: int) -> bool:
        """Whether ``row`` exists and has its outcome (it is neither pending nor sending)."""
        found = self._reader.execute("SELECT state FROM rows WHERE row = ?", (row,)).fetchone()
        return found is not None and found[0] not in ("pending", "sending")

    # ---- reading -----------------------------------------------------------------------

    def outcome_count(self) -> int:
        """How many outcomes are recorded (the report's line count)."""
        return int(self._next_seq - 1)

    def outcomes(self, after: int = 0) -> Iterator[Recorded]:
        """Yield the recorded outcomes from ``after + 1`` on, in order."""
        yield from read_outcomes(self._reader, after)

    def outcome(self, seq: int) -> Recorded:
        """Return the outcome recorded as number ``seq`` (from 1)."""
        (found,) = read_outcomes(self._reader, seq - 1, limit=1)
        return found

    def counts(self) -> dict[str, int]:
        """Rows by state."""
        return state_counts(self._reader)


def _insert_outcomes(db: sqlite3.Connection, first: int, finals: list[Final], at: str) -> None:
    """Record ``finals`` as outcomes ``first``, ``first + 1``, ... with their attempt's start."""
    db.executemany(
        "INSERT INTO outcomes (seq, row, status, result, result_code, error, attempts, "
        "latency_ms, finished_at, sent_at, settled_by) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, (SELECT sent_at FROM rows WHERE row = ?), ?)",
        (
            (
                first + i,
                f.row,
                f.status,
                f.result,
                f.result_code,
                f.error,
                f.attempts,
                f.latency_ms,
                at,
                f.row,
                f.settled_by,
            )
            for i, f in enumerate(finals)
        ),
    )


def read_info(db: sqlite3.Connection) -> JobInfo | None:
    """Return what a job file knows of its input (``None``: not taken in yet)."""
    found = db.execute(
        "SELECT input_path, input_format, input_size, input_sha256, rows, created_at, region, "
        "send_as, allow_duplicates FROM job"
    ).fetchone()
    if found is None:
        return None
    path, kind, size, sha256, rows, created, region, send_as, duplicates = found
    rules = InputRules(region, send_as, None if duplicates is None else bool(duplicates))
    return JobInfo(path, kind, InputIdentity(size, sha256), rows, created, rules)


def read_outcomes(db: sqlite3.Connection, after: int = 0, limit: int = -1) -> Iterator[Recorded]:
    """Yield the recorded outcomes of a job file from ``after + 1`` on (``limit`` of them)."""
    for seq, *values in db.execute(
        "SELECT o.seq, o.row, r.line, r.called, o.status, o.result, o.result_code, o.error, "
        "o.attempts, o.latency_ms, o.settled_by FROM outcomes o JOIN rows r ON r.row = o.row "
        "WHERE o.seq > ? ORDER BY o.seq LIMIT ?",
        (after, limit),
    ):
        yield Recorded(seq, Final(*values))


def read_waiting(db: sqlite3.Connection, now: float) -> Waiting:
    """Return the pending rows of a job file deferred to after ``now`` (by its index)."""
    rows, first = db.execute(
        "SELECT count(*), min(not_before) FROM rows "
        "WHERE state = 'pending' AND not_before IS NOT NULL AND not_before > ?",
        (now,),
    ).fetchone()
    if not rows:
        return Waiting()
    found = db.execute(
        "SELECT waiting_for FROM rows WHERE state = 'pending' AND not_before = ? LIMIT 1",
        (first,),
    ).fetchone()
    return Waiting(rows, first, None if found is None else found[0])


def settled_counts(db: sqlite3.Connection) -> dict[str, int]:
    """Unknown outcomes settled afterwards, by how: ``created``, ``not_created``."""
    found = dict(
        db.execute(
            "SELECT status, count(*) FROM outcomes WHERE settled_by IS NOT NULL GROUP BY status"
        ).fetchall()
    )
    return {"created": found.get("succeeded", 0), "not_created": found.get("failed", 0)}


def state_counts(db: sqlite3.Connection) -> dict[str, int]:
    """Rows by state, every state named."""
    counts = dict.fromkeys(STATES, 0)
    counts.update(db.execute("SELECT state, count(*) FROM rows GROUP BY state").fetchall())
    return counts


def open_read_only(path: Path) -> sqlite3.Connection:
    """Open a job file for reading, also while a run holds it."""
    if not path.is_file():
        raise JobRefusedError(f"no job file at {path}")
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        empty = check_schema(db, path, writable=False)
    except BaseException:
        db.close()
        raise
    if empty:
        db.close()
        raise JobRefusedError(f"{path} is empty: not a job file")
    return db


def running_pid(path: Path) -> int | None:
    """Return the pid of a run of the job that has not ended and is alive, if any."""
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            found = db.execute(
                "SELECT pid FROM runs WHERE ended_at IS NULL ORDER BY id DESC LIMIT 1"
            ).fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return None
    if found is None or os.name != "posix":
        return None  # elsewhere, signal 0 is not a harmless probe
    try:
        os.kill(found[0], 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's
    return int(found[0])
