"""The PostgreSQL job schema, version 3: created on first use, checked on every open.

Everything lives in the schema ``ccmessaging`` of the database the URL names, so it
cannot collide with the user's own tables; one database holds many jobs, by name::

    schema_version  one row: the version of what follows
    jobs            id, name (unique), the input's path, format, size and SHA-256, its
                    row count, when it was made, how it was read (region, send_as,
                    allow_duplicates); the job's rate (calls/s, every worker
                    together) and its shared pace: the current limit, the next free
                    turn (``tat``, GCRA), a pause every worker honours, when the limit
                    was last lowered and raised
    workers         id, job, host, pid, started_at, lease (an interval), expires_at
                    (renewed by the worker's heartbeat, always from the database's
                    clock), ended_at, settled (what it left behind was settled), how,
                    resent, throttles, pace
    rows            (job, row), line, digest, called, caller_present, call_data,
                    input_error, state, result_code, worker and lease (the claim: which
                    worker took the row, and the token of that taking), number (who it
                    calls: E.164 where known), duplicate_of (the earlier row with it),
                    not_before (it waits for calling hours until then: no worker takes
                    it earlier, by the database's clock) and waiting_for (as said),
                    sent_at (its latest claim), settled_by (it was unknown, and was
                    settled as failed from the call records)
    outcomes        seq (the order rows ended), job, row, status, result, result_code,
                    error, attempts, latency_ms, finished_at, sent_at (when its row was
                    claimed: with finished_at, the attempt's window), settled_by (on a
                    line that settles an unknown outcome afterwards: how)

Version 2 added ``jobs.region``, ``send_as``, ``allow_duplicates`` (empty for a job made
before), ``rows.number``, ``duplicate_of``, ``not_before``, ``waiting_for`` and the
``skipped`` state; version 3 ``rows.sent_at``, ``settled_by`` and ``outcomes.sent_at``,
``settled_by``. A database of an earlier version is brought to this one by the first
worker of this release that opens it. A
database written by a newer release (a higher version) is refused, never changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._errors import JobRefusedError

if TYPE_CHECKING:
    import psycopg

__all__ = ["SCHEMA_VERSION", "ensure_schema"]

SCHEMA_VERSION = 3

#: Serialises creating the schema among workers starting together ("ccma" as a number).
_CREATING = int.from_bytes(b"ccma", "big")

_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS ccmessaging;
CREATE TABLE ccmessaging.schema_version (version integer NOT NULL);
CREATE TABLE ccmessaging.jobs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE,
    input_path text NOT NULL,
    input_format text NOT NULL,
    input_size bigint NOT NULL,
    input_sha256 text NOT NULL,
    rows bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    rate real,
    pace real,
    tat timestamptz NOT NULL DEFAULT '-infinity',
    paused_until timestamptz NOT NULL DEFAULT '-infinity',
    lowered_at timestamptz NOT NULL DEFAULT '-infinity',
    raised_at timestamptz NOT NULL DEFAULT '-infinity',
    region text,
    send_as text NOT NULL DEFAULT 'input',
    allow_duplicates boolean
);
CREATE TABLE ccmessaging.workers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job bigint NOT NULL REFERENCES ccmessaging.jobs ON DELETE CASCADE,
    host text NOT NULL,
    pid integer NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    lease interval NOT NULL,
    expires_at timestamptz NOT NULL,
    ended_at timestamptz,
    settled boolean NOT NULL DEFAULT false,
    how text,
    resent integer NOT NULL DEFAULT 0,
    throttles integer NOT NULL DEFAULT 0,
    pace real
);
CREATE INDEX workers_job ON ccmessaging.workers (job);
CREATE TABLE ccmessaging.rows (
    job bigint NOT NULL REFERENCES ccmessaging.jobs ON DELETE CASCADE,
    row integer NOT NULL,
    line integer NOT NULL,
    digest bytea NOT NULL,
    called text,
    caller_present text,
    call_data text,
    input_error text,
    state text NOT NULL DEFAULT 'pending' CONSTRAINT rows_state_check
        CHECK (state IN ('pending', 'sending', 'succeeded', 'failed', 'unknown', 'skipped')),
    result_code text,
    worker bigint,
    lease bigint,
    number text,
    duplicate_of integer,
    not_before timestamptz,
    waiting_for text,
    sent_at timestamptz,
    settled_by text,
    PRIMARY KEY (job, row)
);
CREATE INDEX rows_number ON ccmessaging.rows (job, number) WHERE number IS NOT NULL;
CREATE INDEX rows_waiting ON ccmessaging.rows (job, not_before)
    WHERE state = 'pending' AND not_before IS NOT NULL;
-- Rows free to take, in order; rows a worker holds; counts by state and result code.
CREATE INDEX rows_free ON ccmessaging.rows (job, row) WHERE state = 'pending' AND worker IS NULL;
CREATE INDEX rows_held ON ccmessaging.rows (worker)
    WHERE state IN ('pending', 'sending') AND worker IS NOT NULL;
CREATE INDEX rows_state ON ccmessaging.rows (job, state, result_code);
CREATE TABLE ccmessaging.outcomes (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job bigint NOT NULL REFERENCES ccmessaging.jobs ON DELETE CASCADE,
    row integer NOT NULL,
    status text NOT NULL,
    result text,
    result_code text,
    error text,
    attempts integer NOT NULL,
    latency_ms double precision NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    settled_by text
);
CREATE INDEX outcomes_job ON ccmessaging.outcomes (job, seq);
CREATE INDEX outcomes_settled ON ccmessaging.outcomes (job, status) WHERE settled_by IS NOT NULL;
CREATE INDEX outcomes_created ON ccmessaging.outcomes (job, sent_at) WHERE status = 'succeeded';
"""


_FROM_VERSION_1 = """
ALTER TABLE ccmessaging.jobs ADD COLUMN region text,
    ADD COLUMN send_as text NOT NULL DEFAULT 'input', ADD COLUMN allow_duplicates boolean;
ALTER TABLE ccmessaging.rows ADD COLUMN number text, ADD COLUMN duplicate_of integer,
    ADD COLUMN not_before timestamptz, ADD COLUMN waiting_for text,
    DROP CONSTRAINT rows_state_check, ADD CONSTRAINT rows_state_check
    CHECK (state IN ('pending', 'sending', 'succeeded', 'failed', 'unknown', 'skipped'));
CREATE INDEX rows_number ON ccmessaging.rows (job, number) WHERE number IS NOT NULL;
CREATE INDEX rows_waiting ON ccmessaging.rows (job, not_before)
    WHERE state = 'pending' AND not_before IS NOT NULL;
UPDATE ccmessaging.schema_version SET version = 2;
"""

_FROM_VERSION_2 = """
ALTER TABLE ccmessaging.rows ADD COLUMN sent_at timestamptz, ADD COLUMN settled_by text;
ALTER TABLE ccmessaging.outcomes ADD COLUMN sent_at timestamptz, ADD COLUMN settled_by text;
CREATE INDEX outcomes_settled ON ccmessaging.outcomes (job, status) WHERE settled_by IS NOT NULL;
CREATE INDEX outcomes_created ON ccmessaging.outcomes (job, sent_at) WHERE status = 'succeeded';
UPDATE ccmessaging.schema_version SET version = 3;
"""


def ensure_schema(db: psycopg.Connection[tuple[object, ...]], where: str) -> None:
    """Create the schema if the database has none; refuse one this release cannot use."""
    with db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(%s)", (_CREATING,))
        found = db.execute("SELECT to_regclass('ccmessaging.schema_version')").fetchone()
        if found is None or found[0] is None:
            db.execute(_SCHEMA.encode())
            db.execute("INSERT INTO ccmessaging.schema_version VALUES (%s)", (SCHEMA_VERSION,))
            return
        row = db.execute("SELECT max(version) FROM ccmessaging.schema_version").fetchone()
        version = row[0] if row else None
        if version in (1, 2):
            if version == 1:
                db.execute(_FROM_VERSION_1.encode())
            db.execute(_FROM_VERSION_2.encode())
            return
    if version != SCHEMA_VERSION:
        newer = isinstance(version, int) and version > SCHEMA_VERSION
        raise JobRefusedError(
            f"the job database {where} has job schema version {version}; this release uses "
            f"version {SCHEMA_VERSION}"
            + (": it was written by a newer release; upgrade ccmessaging-async" if newer else "")
        )
