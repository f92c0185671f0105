"""The job file's schema, version 4, checked on open and migrated from versions 1 to 3.

``PRAGMA user_version`` holds the version and ``PRAGMA application_id`` marks a job file::

    job       one row: the input's path, format, size and SHA-256, its row count, when made,
              and how it was read (region, send_as, allow_duplicates)
    rows      row (from 0), line, digest (8-byte BLAKE2b of the row's bytes), called,
              caller_present, call_data, input_error, state, result_code (of its latest
              outcome), number (who it calls: E.164 where known), duplicate_of (the
              earlier row with the same number), not_before (Unix time; the row waits
              for calling hours) and waiting_for (that moment, as said to a person);
              indexed by (state, result_code), so counting stays fast, by number, and
              the waiting rows by not_before; sent_at (Unix time of its latest claim),
              settled_by (it was unknown, and settled as failed from call records)
    outcomes  seq (1, 2, ... in the order rows ended: the report's line order), row,
              status, result (JSON), result_code, error, attempts, latency_ms,
              finished_at, sent_at (when its row was claimed: with finished_at, the
              attempt's window) and settled_by (set on a line that settles an unknown
              outcome afterwards: how it was settled)
    runs      id, pid, started_at, ended_at, how (finished / interrupted / terminated /
              stopped / throttled), resent (unknown rows it put back to be dialled
              again), throttles (answers that said too fast), pace (its limit at the
              end, calls/s; empty: unlimited); ended_at stays empty for a run that died

Version 2 added ``rows.result_code``, its index and ``runs.resent``, ``throttles``, ``pace``;
version 3 ``job.region``, ``send_as``, ``allow_duplicates`` (empty for a job made before:
it was taken in without looking for duplicates) and ``rows.number``, ``duplicate_of``,
``not_before``, ``waiting_for``; version 4 ``rows.sent_at``, ``settled_by`` and
``outcomes.sent_at``, ``settled_by``.

States are text, readable with the ``sqlite3`` shell; they are not guarded by a CHECK
constraint, which measured 8 us per updated row.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ._errors import JobRefusedError

__all__ = ["APPLICATION_ID", "SCHEMA", "SCHEMA_VERSION", "check_schema"]

SCHEMA_VERSION = 4
APPLICATION_ID = int.from_bytes(b"ccma", "big")

SCHEMA = f"""
PRAGMA application_id = {APPLICATION_ID};
PRAGMA user_version = {SCHEMA_VERSION};
CREATE TABLE job (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    input_path TEXT NOT NULL,
    input_format TEXT NOT NULL,
    input_size INTEGER NOT NULL,
    input_sha256 TEXT NOT NULL,
    rows INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    region TEXT,
    send_as TEXT NOT NULL DEFAULT 'input',
    allow_duplicates INTEGER
);
CREATE TABLE rows (
    row INTEGER PRIMARY KEY,
    line INTEGER NOT NULL,
    digest BLOB NOT NULL,
    called TEXT,
    caller_present TEXT,
    call_data TEXT,
    input_error TEXT,
    state TEXT NOT NULL DEFAULT 'pending',  -- one of _records.STATES
    result_code TEXT,
    number TEXT,
    duplicate_of INTEGER,
    not_before REAL,
    waiting_for TEXT,
    sent_at REAL,
    settled_by TEXT
);
CREATE INDEX rows_state ON rows (state, result_code);
CREATE INDEX rows_number ON rows (number) WHERE number IS NOT NULL;
CREATE INDEX rows_waiting ON rows (not_before) WHERE state = 'pending' AND not_before IS NOT NULL;
CREATE TABLE outcomes (
    seq INTEGER PRIMARY KEY,
    row INTEGER NOT NULL REFERENCES rows (row),
    status TEXT NOT NULL,
    result TEXT,
    result_code TEXT,
    error TEXT,
    attempts INTEGER NOT NULL,
    latency_ms REAL NOT NULL,
    finished_at TEXT NOT NULL,
    sent_at REAL,
    settled_by TEXT
);
CREATE INDEX outcomes_settled ON outcomes (status) WHERE settled_by IS NOT NULL;
CREATE INDEX outcomes_created ON outcomes (sent_at) WHERE status = 'succeeded';
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    pid INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    how TEXT,
    resent INTEGER NOT NULL DEFAULT 0,
    throttles INTEGER NOT NULL DEFAULT 0,
    pace REAL
);
"""

#: From version 1: the latest result code of each ended row, found through an index
#: that lives only for the migration.
_FROM_VERSION_1 = """
ALTER TABLE rows ADD COLUMN result_code TEXT;
ALTER TABLE runs ADD COLUMN resent INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN throttles INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN pace REAL;
CREATE INDEX migrating ON outcomes (row, seq);
UPDATE rows SET result_code = (
    SELECT result_code FROM outcomes o WHERE o.row = rows.row ORDER BY seq DESC LIMIT 1
) WHERE state NOT IN ('pending', 'sending');
DROP INDEX migrating;
CREATE INDEX rows_state ON rows (state, result_code);
PRAGMA user_version = 2;
"""

#: From version 2: how the input was read, and who each row calls.
_FROM_VERSION_2 = """
ALTER TABLE job ADD COLUMN region TEXT;
ALTER TABLE job ADD COLUMN send_as TEXT NOT NULL DEFAULT 'input';
ALTER TABLE job ADD COLUMN allow_duplicates INTEGER;
ALTER TABLE rows ADD COLUMN number TEXT;
ALTER TABLE rows ADD COLUMN duplicate_of INTEGER;
ALTER TABLE rows ADD COLUMN not_before REAL;
ALTER TABLE rows ADD COLUMN waiting_for TEXT;
CREATE INDEX rows_number ON rows (number) WHERE number IS NOT NULL;
CREATE INDEX rows_waiting ON rows (not_before) WHERE state = 'pending' AND not_before IS NOT NULL;
PRAGMA user_version = 3;
"""

#: From version 3: each attempt's window, and how unknown outcomes were settled.
_FROM_VERSION_3 = """
ALTER TABLE rows ADD COLUMN sent_at REAL;
ALTER TABLE rows ADD COLUMN settled_by TEXT;
ALTER TABLE outcomes ADD COLUMN sent_at REAL;
ALTER TABLE outcomes ADD COLUMN settled_by TEXT;
CREATE INDEX outcomes_settled ON outcomes (status) WHERE settled_by IS NOT NULL;
CREATE INDEX outcomes_created ON outcomes (sent_at) WHERE status = 'succeeded';
PRAGMA user_version = 4;
"""


#: The steps from each earlier version: version ``v`` runs ``_STEPS[v:]``.
_STEPS = ("", _FROM_VERSION_1, _FROM_VERSION_2, _FROM_VERSION_3)


def check_schema(db: sqlite3.Connection, path: Path, *, writable: bool = True) -> bool:
    """Check that ``db`` is a job file this release reads; return whether it is empty.

    A job file of an earlier version is migrated (``writable``) or refused with what to do.
    """
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        application = db.execute("PRAGMA application_id").fetchone()[0]
        tables = db.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise JobRefusedError(f"{path} cannot be read as a job file ({exc})") from None
    if not tables:
        return True
    if application != APPLICATION_ID:
        raise JobRefusedError(f"{path} is an SQLite file but not a job file")
    earlier = isinstance(version, int) and 1 <= version < SCHEMA_VERSION
    if earlier and writable:
        steps = "".join(_STEPS[version:])
        db.executescript(f"BEGIN IMMEDIATE; {steps} COMMIT;")
    elif earlier:
        raise JobRefusedError(
            f"{path} was written by an earlier release (job schema version {version}): resume "
            f"the job once with this release to bring it to version {SCHEMA_VERSION}"
        )
    elif version != SCHEMA_VERSION:
        raise JobRefusedError(
            f"{path} has job schema version {version}; this release reads version {SCHEMA_VERSION}"
        )
    return False
