"""The job file's schema, version 1, checked on open so that a later release can migrate it.

``PRAGMA user_version`` holds the version and ``PRAGMA application_id`` marks a job file::

    job       one row: the input's path, format, size and SHA-256, its row count, when made
    rows      row (from 0), line, digest (8-byte BLAKE2b of the row's bytes), called,
              caller_present, call_data, input_error, state
    outcomes  seq (1, 2, ... in the order rows ended: the report's line order), row,
              status, result (JSON), result_code, error, attempts, latency_ms, finished_at
    runs      id, pid, started_at, ended_at, how (finished / interrupted / terminated /
              stopped); ended_at stays empty for a run that died

States are text, readable with the ``sqlite3`` shell; they are not guarded by a CHECK
constraint, which measured 8 us per updated row.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ._exit import JobRefusedError

__all__ = ["APPLICATION_ID", "SCHEMA", "SCHEMA_VERSION", "STATES", "check_schema"]

SCHEMA_VERSION = 1
APPLICATION_ID = int.from_bytes(b"ccma", "big")
STATES = ("pending", "sending", "succeeded", "failed", "unknown")

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
    created_at TEXT NOT NULL
);
CREATE TABLE rows (
    row INTEGER PRIMARY KEY,
    line INTEGER NOT NULL,
    digest BLOB NOT NULL,
    called TEXT,
    caller_present TEXT,
    call_data TEXT,
    input_error TEXT,
    state TEXT NOT NULL DEFAULT 'pending'  -- one of STATES
);
CREATE TABLE outcomes (
    seq INTEGER PRIMARY KEY,
    row INTEGER NOT NULL REFERENCES rows (row),
    status TEXT NOT NULL,
    result TEXT,
    result_code TEXT,
    error TEXT,
    attempts INTEGER NOT NULL,
    latency_ms REAL NOT NULL,
    finished_at TEXT NOT NULL
);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    pid INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    how TEXT
);
"""


def check_schema(db: sqlite3.Connection, path: Path) -> bool:
    """Check that ``db`` is a job file this release reads; return whether it is empty."""
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        application = db.execute("PRAGMA application_id").fetchone()[0]
        tables = db.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise JobRefusedError(f"{path} is not a job file ({exc})") from None
    if not tables:
        return True
    if application != APPLICATION_ID:
        raise JobRefusedError(f"{path} is an SQLite file but not a job file")
    if version != SCHEMA_VERSION:
        raise JobRefusedError(
            f"{path} has job schema version {version}; this release reads version {SCHEMA_VERSION}"
        )
    return False
