"""The batch job under the attacks of an angry operator: stops, lost files, late signals.

Each test is a way the job's first promise (nobody rung after a stop, nobody rung twice,
a record that tells the truth) was broken before, over loopback against the emulator.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccmessaging_async.cli import ExitCode, main
from ccmessaging_async.jobs._sqlite_schema import SCHEMA
from ccmessaging_async.jobs._status import status_text
from ccmessaging_async.testing import EmulatorServer
from tests.test_batch_job import (
    COMMAND,
    assert_consistent,
    env_for,
    job_states,
    numbers,
    report,
    served,
    statuses,
    write_csv,
)

__all__ = ["served"]  # the fixture, shared with the other batch-job tests

pytestmark = [pytest.mark.e2e]


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
def test_a_stop_under_a_rate_dials_nobody_more(
    served: EmulatorServer, tmp_path: Path, transport: str
) -> None:
    """With --rate, SIGTERM ends the run at once: rows waiting for their turn stay pending."""
    emulator = served.app
    called = numbers(60)
    source, out = write_csv(tmp_path / "in.csv", called), tmp_path / "out.jsonl"
    command = [*COMMAND, str(source), "--out", str(out), "--rate", "2", "--concurrency", "20"]
    command += ["--transport", transport]
    with subprocess.Popen(
        command, env=env_for(served), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as run:
        assert emulator.wait_for_calls(4, timeout=60)
        at_signal = len(emulator.calls)
        run.send_signal(signal.SIGTERM)
        _, stderr = run.communicate(timeout=60)
    assert run.returncode == ExitCode.TERMINATED, stderr
    # The next turn was half a second away: at most one call can have started meanwhile.
    created = len(emulator.calls)
    assert created <= at_signal + 1, f"{created - at_signal} people rung after SIGTERM"
    states = job_states(Path(f"{out}.job"))
    assert states["pending"] == 60 - created
    assert states.get("sending", 0) == 0
    assert main(["batch", str(source), "--out", str(out)]) == ExitCode.OK
    assert_consistent(emulator, statuses(out))


def test_signals_in_one_burst_are_one_stop(served: EmulatorServer, tmp_path: Path) -> None:
    """A second SIGINT right after the first (a terminal and `timeout`) abandons nothing."""
    emulator = served.app
    emulator.latency = 0.3
    source, out = write_csv(tmp_path / "in.csv", numbers(200)), tmp_path / "out.jsonl"
    command = [*COMMAND, str(source), "--out", str(out), "--concurrency", "10"]
    with subprocess.Popen(
        command, env=env_for(served), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as run:
        assert emulator.wait_for_calls(10, timeout=60)
        run.send_signal(signal.SIGINT)
        assert run.stderr is not None
        seen = ""
        while "no new calls" not in seen:  # the first one was taken: now the second
            seen += run.stderr.readline()
        run.send_signal(signal.SIGINT)
        _, stderr = run.communicate(timeout=60)
    stderr = seen + stderr
    assert run.returncode == ExitCode.INTERRUPTED, stderr
    assert "abandoning" not in stderr
    states = job_states(Path(f"{out}.job"))
    assert states.get("sending", 0) == states.get("unknown", 0) == 0
    assert states["succeeded"] == len(emulator.calls)


_LATE_SIGNAL = """
import os, signal, sys
from ccmessaging_async.cli import main
from ccmessaging_async.jobs import _job
close = _job.OpenedJob.close
def close_after_a_signal(self, *args):
    os.kill(os.getpid(), signal.{name})  # the last outcome is in: the run is ending
    close(self, *args)
_job.OpenedJob.close = close_after_a_signal
sys.exit(main(sys.argv[1:]))
"""


def _batch_with_a_signal(
    served: EmulatorServer, script: str, source: Path, out: Path, code: ExitCode
) -> None:
    """Run `batch` through ``script`` (which sends the signal); it ends with ``code``."""
    done = subprocess.run(
        [sys.executable, "-c", script, "batch", str(source), "--out", str(out)],
        env=env_for(served),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("name", "code"), [("SIGTERM", ExitCode.TERMINATED), ("SIGINT", ExitCode.INTERRUPTED)]
)
def test_a_signal_after_the_last_outcome_ends_the_documented_way(
    served: EmulatorServer, tmp_path: Path, name: str, code: ExitCode
) -> None:
    """A signal while the job closes is not the default action: 143 or 130, run recorded."""
    source, out = write_csv(tmp_path / "in.csv", numbers(5)), tmp_path / "out.jsonl"
    script = _LATE_SIGNAL.format(name=name)
    _batch_with_a_signal(served, script, source, out, code)
    db = sqlite3.connect(f"{out}.job")
    try:
        assert db.execute("SELECT count(*) FROM runs WHERE ended_at IS NULL").fetchone() == (0,)
    finally:
        db.close()
    assert len(served.app.calls) == 5


def test_a_job_file_that_lost_its_wal_refuses_to_dial_again(
    served: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Killed, then its -wal file removed: the resume refuses, naming the rows; nobody rung."""
    emulator = served.app
    called = numbers(300)
    source, out = write_csv(tmp_path / "in.csv", called), tmp_path / "out.jsonl"
    job = Path(f"{out}.job")
    command = [*COMMAND, str(source), "--out", str(out), "--concurrency", "5"]
    # A first run that ends cleanly leaves the rows in the job file alone, no -wal beside it.
    emulator.latency = 0.01
    with subprocess.Popen(command, env=env_for(served), stderr=subprocess.DEVNULL) as run:
        assert emulator.wait_for_calls(20, timeout=60)
        run.send_signal(signal.SIGTERM)
        assert run.wait(60) == ExitCode.TERMINATED
    assert not Path(f"{job}-wal").exists()
    first_run = len(report(out))
    # The second run's claims and outcomes live only in the -wal file when it is killed.
    with subprocess.Popen(command, env=env_for(served), stderr=subprocess.DEVNULL) as run:
        assert emulator.wait_for_calls(60, timeout=60)
        run.kill()
        run.wait(60)
    Path(f"{job}-wal").unlink()
    Path(f"{job}-shm").unlink(missing_ok=True)
    tokens = emulator.token_requests
    lines = len(report(out))
    emulator.latency = 0.0
    capsys.readouterr()
    assert main(["batch", str(source), "--out", str(out)]) == ExitCode.USAGE
    refusal = capsys.readouterr().err
    assert "has lost its latest writes" in refusal
    assert "-wal was removed" in refusal
    lost = sorted(int(str(line["line"])) for line in report(out)[first_run:])
    assert f"for {len(lost)} rows" in refusal
    assert f"(input lines {', '.join(map(str, lost[:10]))}, ...)" in refusal
    assert emulator.token_requests == tokens  # refused before a session was opened
    assert emulator.duplicates() == {}
    assert len(report(out)) == lines  # the evidence is kept


def test_resend_unknown_right_after_a_kill_records_the_unknown_first(
    served: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--resend-unknown on a killed job: each interrupted row gets its unknown line first."""
    emulator = served.app
    emulator.latency = 0.5
    source, out = write_csv(tmp_path / "in.csv", numbers(40)), tmp_path / "out.jsonl"
    command = [*COMMAND, str(source), "--out", str(out), "--concurrency", "10"]
    with subprocess.Popen(command, env=env_for(served), stderr=subprocess.DEVNULL) as run:
        assert emulator.wait_for_calls(5, timeout=60)
        run.kill()
        run.wait(60)
    sending = job_states(Path(f"{out}.job")).get("sending", 0)
    assert sending > 0
    emulator.latency = 0.0
    capsys.readouterr()
    assert main(["batch", str(source), "--out", str(out), "--resend-unknown"]) == ExitCode.OK
    err = capsys.readouterr().err
    assert f"{sending} rows were being sent when an earlier run stopped" in err
    assert "dialled again (--resend-unknown): each may ring twice" in err
    lines = report(out)
    unknown = [line["row"] for line in lines if line["status"] == "unknown"]
    assert len(unknown) == sending
    for row in unknown:
        assert [line["status"] for line in lines if line["row"] == row] == ["unknown", "succeeded"]
    text = status_text(Path(f"{out}.job"))
    assert (
        f"{sending} rows with an unknown outcome (or settled as not created) were put back" in text
    )


def test_export_never_overwrites_a_job_file(
    served: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`export JOB --out JOB` (or its -wal, or another job file) is refused; the job survives."""
    source, out = write_csv(tmp_path / "in.csv", numbers(3)), tmp_path / "out.jsonl"
    assert main(["batch", str(source), "--out", str(out)]) == ExitCode.OK
    other = tmp_path / "other.jsonl"
    assert main(["batch", str(source), "--out", str(other)]) == ExitCode.OK
    job = f"{out}.job"
    for target in (job, f"{job}-wal", f"{tmp_path}/./out.jsonl.job", f"{other}.job"):
        assert main(["export", job, "--out", target]) == ExitCode.USAGE
    assert "choose another --out" in capsys.readouterr().err
    assert main(["status", job]) == ExitCode.OK
    assert main(["batch", str(source), "--out", str(out)]) == ExitCode.OK


def test_status_counts_through_the_index() -> None:
    """`status` reads no table row by row per row: nothing in its plan grows quadratically."""
    with contextlib.closing(sqlite3.connect(":memory:")) as db:
        db.executescript(SCHEMA)
        plans = [
            " ".join(str(step[-1]) for step in db.execute("EXPLAIN QUERY PLAN " + query))
            for query in (
                "SELECT state, count(*) FROM rows GROUP BY state",
                "SELECT result_code, count(*) FROM rows WHERE result_code IS NOT NULL "
                "GROUP BY result_code ORDER BY count(*) DESC, result_code",
            )
        ]
    for plan in plans:
        assert "USING COVERING INDEX rows_state" in plan, plan
        assert "CORRELATED" not in plan, plan


_TO_VERSION_3 = (
    "DROP INDEX outcomes_settled; DROP INDEX outcomes_created; "
    "ALTER TABLE rows DROP COLUMN sent_at; ALTER TABLE rows DROP COLUMN settled_by; "
    "ALTER TABLE outcomes DROP COLUMN sent_at; ALTER TABLE outcomes DROP COLUMN settled_by; "
    "PRAGMA user_version = 3;"
)
_TO_VERSION_2 = (
    "DROP INDEX rows_number; ALTER TABLE rows DROP COLUMN number; DROP INDEX rows_waiting; "
    "ALTER TABLE rows DROP COLUMN not_before; ALTER TABLE rows DROP COLUMN waiting_for; "
    "ALTER TABLE rows DROP COLUMN duplicate_of; ALTER TABLE job DROP COLUMN region; "
    "ALTER TABLE job DROP COLUMN send_as; ALTER TABLE job DROP COLUMN allow_duplicates; "
    "PRAGMA user_version = 2;"
)
_TO_VERSION_1 = (
    "DROP INDEX rows_state; ALTER TABLE rows DROP COLUMN result_code; "
    "ALTER TABLE runs DROP COLUMN resent; ALTER TABLE runs DROP COLUMN throttles; "
    "ALTER TABLE runs DROP COLUMN pace; PRAGMA user_version = 1;"
)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_a_job_file_of_an_earlier_version_is_migrated(
    served: EmulatorServer, tmp_path: Path, version: int
) -> None:
    """A job file of schema version 1 to 3 is brought to version 4 on resume, its codes kept.

    Before version 3 it was taken in without looking for duplicates: the same command
    resumes it, and its rows with one number are each dialled, as they would have been.
    """
    called = numbers(4)
    served.app.result_codes[called[1]] = "30010010002"
    source, out = write_csv(tmp_path / "in.csv", [*called, called[0]]), tmp_path / "out.jsonl"
    assert main(["batch", str(source), "--out", str(out), "--allow-duplicates"]) == 1
    job = Path(f"{out}.job")
    db = sqlite3.connect(job)
    db.execute("UPDATE rows SET state = 'pending' WHERE row = 4")
    db.execute("DELETE FROM outcomes WHERE row = 4")
    steps = (_TO_VERSION_3, _TO_VERSION_2, _TO_VERSION_1)
    db.executescript("".join(steps[: 4 - version]))
    db.close()
    out.unlink()  # it has the outcome taken back above; the job writes it again
    assert "earlier release" in _refusal_of(job)
    # Version 3 kept how the input was read; before it, duplicates were not looked for.
    same = ["--allow-duplicates"] if version == 3 else []
    assert main(["batch", str(source), "--out", str(out), *same]) == ExitCode.NOT_CREATED
    assert "result codes: 0 x4, 30010010002 x1" in status_text(job)
    assert len(served.app.calls) == 5  # 4 created (one was refused), then the row again
    assert served.app.calls_for(called[0]) == 3


def _refusal_of(job: Path) -> str:
    try:
        status_text(job)
    except Exception as exc:  # noqa: BLE001 - the refusal's text is what is checked
        return str(exc)
    return ""


def test_status_of_an_ended_job_needs_read_access_only(
    served: EmulatorServer, tmp_path: Path
) -> None:
    """A job file that can be read but not written beside (a read-only mount) has a status."""
    source, out = write_csv(tmp_path / "in.csv", numbers(3)), tmp_path / "out.jsonl"
    assert main(["batch", str(source), "--out", str(out)]) == ExitCode.OK
    shared = tmp_path / "shared"
    shared.mkdir()
    job = shared / "out.jsonl.job"
    shutil.copy(f"{out}.job", job)  # the job file alone: it stands alone after a run
    with _read_only(shared):
        assert "succeeded 3" in status_text(job)


@contextlib.contextmanager
def _read_only(folder: Path) -> Iterator[None]:
    """Make ``folder`` read-only even for root (a read-only bind mount), else by its mode."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "--bind", str(folder), str(folder)], check=False)
    if mounted.returncode != 0:
        pytest.skip("needs a bind mount (root in a container that allows it) or a non-root user")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True)
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


_SIGNAL_DURING_IMPORT = """
import os, signal, sys
from ccmessaging_async.cli import main
from ccmessaging_async.jobs import _job
read_rows = _job.read_rows
def read_and_signal(path):
    for number, row in enumerate(read_rows(path)):
        if number == 10:
            os.kill(os.getpid(), signal.{name})  # a big input is still being taken in
        yield row
_job.read_rows = read_and_signal
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize(
    ("name", "code"), [("SIGTERM", ExitCode.TERMINATED), ("SIGINT", ExitCode.INTERRUPTED)]
)
def test_a_signal_while_the_input_is_taken_in_ends_the_import(
    served: EmulatorServer, tmp_path: Path, name: str, code: ExitCode
) -> None:
    """Ctrl-C during a long import ends it at once: no job file kept, nobody dialled."""
    source, out = write_csv(tmp_path / "in.csv", numbers(2000)), tmp_path / "out.jsonl"
    script = _SIGNAL_DURING_IMPORT.format(name=name)
    _batch_with_a_signal(served, script, source, out, code)
    assert not Path(f"{out}.job").exists()
    assert served.app.token_requests == 0
