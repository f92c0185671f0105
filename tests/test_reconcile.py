"""Settling unknown outcomes from the platform's call records, on both stores.

The calls whose outcome is unknown are made so by the emulator dropping the connection
after it created the call (it exists) or before (it does not); ``reconcile`` must tell
them apart from the records alone, and never dial.
"""

from __future__ import annotations

import csv
import datetime
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from ccmessaging_async import CallRecord, CreateCallRequest
from ccmessaging_async.cli import ExitCode, main
from ccmessaging_async.jobs import open_job
from ccmessaging_async.jobs._job import open_store
from ccmessaging_async.jobs._matching import decide
from ccmessaging_async.jobs._records import Attempt, UnknownRow
from ccmessaging_async.jobs._status import status_text
from ccmessaging_async.testing import DropPoint, Emulator, EmulatorServer
from tests._faultproxy import Fault, FaultProxy
from tests._helpers import emulator_env, in_process_session

CALLER = "95599"


def calls(n: int, prefix: str = "1396") -> list[CreateCallRequest]:
    return [CreateCallRequest(called=f"{prefix}{i:07d}", caller_present=CALLER) for i in range(n)]


def lines(report: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in report.read_text().splitlines()]


@pytest.mark.anyio
async def test_unknown_rows_are_settled_each_way_and_nothing_is_dialled(
    store: tuple[str, str | None], tmp_path: Path
) -> None:
    """Dropped after the call was made: created; dropped before: not created, both."""
    location, name = store
    emulator = Emulator()
    requests = calls(130)  # more records than one page
    made, never = [r.called for r in requests[:3]], [r.called for r in requests[3:5]]
    for number in made:
        emulator.drop_connection(number, DropPoint.AFTER_RECORD)
    for number in never:
        emulator.drop_connection(number, DropPoint.BEFORE_RECORD)
    report = tmp_path / "calls.jsonl"
    async with (
        in_process_session(emulator) as session,
        open_job(location, name=name, requests=requests, report=report) as job,
    ):
        await job.run(session, concurrency=10)
        assert (await job.counts())["unknown"] == 5
        created_before = emulator.createcall_requests
        done = await job.reconcile(session, grace=0)
        assert emulator.createcall_requests == created_before  # never dials
        counts = await job.counts()
    assert (done.created, done.not_created, done.unsettled) == (3, 2, [])
    assert emulator.record_queries >= 2  # paged
    assert counts["unknown"] == 0
    assert counts["succeeded"] == 128
    assert counts["failed"] == 2
    serials = {c.called: c.serial_no for c in emulator.calls}
    settled = [line for line in lines(report) if line.get("settled_by") == "call records"]
    assert len(lines(report)) == 135  # each settled row has a second line
    by_number = {line["called"]: line for line in settled}
    for number in made:
        line = by_number[number]
        assert line["status"] == "succeeded"
        assert line["result"]["call_serial_no"] == serials[number]  # type: ignore[index]
    for number in never:
        assert by_number[number]["status"] == "failed"
        assert "no call to this number in the platform's call records" in str(
            by_number[number]["error"]
        )


@pytest.mark.anyio
async def test_the_grace_and_late_records_leave_rows_unknown_until_they_settle(
    store: tuple[str, str | None],
) -> None:
    """Before the grace and before the record appears, a row stays unknown, with why."""
    location, name = store
    emulator = Emulator()
    requests = calls(6, "1395")
    emulator.drop_connection(requests[0].called, DropPoint.AFTER_RECORD)
    emulator.drop_connection(requests[1].called, DropPoint.BEFORE_RECORD)
    emulator.record_delay = 3600.0  # no record has appeared yet
    async with (
        in_process_session(emulator) as session,
        open_job(location, name=name, requests=requests) as job,
    ):
        await job.run(session, concurrency=2)
        early = await job.reconcile(session)  # grace 600 s: nothing can be said yet
        assert (early.created, early.not_created) == (0, 0)
        assert all(u.waiting for u in early.unsettled)
        assert "absence counts only after the grace" in early.unsettled[0].reason
        # The grace has passed, but the records hold none of the job's own calls of that
        # time either: absence proves nothing.
        blind = await job.reconcile(session, grace=0)
        assert (blind.created, blind.not_created) == (0, 0)
        assert "lack 4 of the 4 calls this job created" in blind.unsettled[0].reason
        emulator.record_delay = 0.0  # the records appear
        later = await job.reconcile(session, grace=0)
        assert (later.created, later.not_created, later.unsettled) == (1, 1, [])
        assert (await job.counts())["unknown"] == 0


@pytest.mark.anyio
async def test_two_records_that_fit_a_row_leave_it_unknown(
    store: tuple[str, str | None],
) -> None:
    """The same number twice in a job (allowed), both cut off: neither is settled."""
    location, name = store
    emulator = Emulator()
    number = "13940000001"
    requests = [CreateCallRequest(called=number, caller_present=CALLER)] * 2 + calls(3, "1384")
    emulator.drop_connection(number, DropPoint.AFTER_RECORD, times=2)
    async with (
        in_process_session(emulator) as session,
        open_job(location, name=name, requests=requests, allow_duplicates=True) as job,
    ):
        await job.run(session, concurrency=4)
        done = await job.reconcile(session, grace=0)
        assert (await job.counts())["unknown"] == 2
    assert (done.created, done.not_created) == (0, 0)
    assert [u.row for u in done.unsettled] == [0, 1]
    assert all("2 call records of its number fit" in u.reason for u in done.unsettled)


@pytest.mark.anyio
async def test_a_row_settled_as_not_created_is_dialled_again_only_when_asked(
    store: tuple[str, str | None],
) -> None:
    """--resend-unknown dials the rows settled as not created, never those created."""
    location, name = store
    emulator = Emulator()
    requests = calls(4, "1393")
    emulator.drop_connection(requests[0].called, DropPoint.AFTER_RECORD)
    emulator.drop_connection(requests[1].called, DropPoint.BEFORE_RECORD)
    async with in_process_session(emulator) as session:
        async with open_job(location, name=name, requests=requests) as job:
            await job.run(session, concurrency=2)
            await job.reconcile(session, grace=0)
        async with open_job(location, name=name) as job:
            await job.run(session, concurrency=2)  # not asked: nothing dialled
        assert len(emulator.calls) == 3
        async with open_job(location, name=name, resend_unknown=True) as job:
            await job.run(session, concurrency=2)
            assert (await job.counts())["succeeded"] == 4
    assert emulator.calls_for(requests[1].called) == 1  # the one never created, now made
    assert emulator.calls_for(requests[0].called) == 1  # the one created: not again


@pytest.mark.anyio
async def test_a_call_settled_as_created_counts_as_the_jobs_own(
    store: tuple[str, str | None],
) -> None:
    """Its serial number is one of the job's calls: no other row can be settled with it."""
    location, name = store
    emulator = Emulator()
    first, second = "+8613870000001", "13870000001"  # one number, spelt two ways
    requests = [CreateCallRequest(called=n, caller_present=CALLER) for n in (first, second)]
    emulator.drop_connection(first, DropPoint.AFTER_RECORD)
    async with (
        in_process_session(emulator) as session,
        open_job(location, name=name, requests=requests) as job,
    ):
        await job.run(session, concurrency=1)
        done = await job.reconcile(session, grace=0)
    assert (done.created, done.not_created) == (1, 0)
    serial_of = {c.called: c.serial_no for c in emulator.calls}
    opened = await anyio.to_thread.run_sync(lambda: open_store(location, name=name))
    try:
        made = await anyio.to_thread.run_sync(opened.created_calls, 0.0, 4e9)
    finally:
        await anyio.to_thread.run_sync(opened.close)
    assert {serial for serial, _ended in made} == set(serial_of.values())
    # And a row whose window holds that record is not settled with it.
    row = UnknownRow(9, 11, second, CALLER, (Attempt(20, 0.0, 4e9),))
    record = _record(serial_of[first], first, 1000.0)
    finals, unsettled = decide([row], [record], now=4e9, known={serial_of[first]})
    assert [f.status for f in finals] == []
    assert len(unsettled) == 1


def _record(serial: str, called: str, at: float, caller: str | None = CALLER) -> CallRecord:
    return CallRecord(
        call_serial_no=serial,
        called=called,
        start_time=datetime.datetime.fromtimestamp(at, datetime.UTC),
        caller_present=caller,
    )


def _row(row: int, called: str, sent: float, ended: float) -> UnknownRow:
    return UnknownRow(row, row + 2, called, CALLER, (Attempt(row + 1, sent, ended),))


def test_a_record_matches_by_number_caller_and_time_only() -> None:
    """Other callers, other numbers and other times are not this row's call."""
    row = _row(0, "13900000001", 1000.0, 1005.0)
    others = [
        _record("a", "13900000001", 1003.0, caller="10086"),  # another caller number
        _record("b", "13900000002", 1003.0),  # another number
        _record("c", "13900000001", 900.0),  # long before the attempt
        _record("d", "13900000001", 1100.0),  # long after it
    ]
    finals, unsettled = decide([row], others, now=1006.0, grace=600.0, skew=30.0)
    assert finals == []
    assert unsettled[0].waiting
    ours = _record("e", "+86 139-0000-0001", 1002.0)  # spelt with the country code
    finals, _ = decide([row], [*others, ours], now=1006.0, grace=600.0, skew=30.0)
    assert [f.status for f in finals] == ["succeeded"]
    assert json.loads(finals[0].result or "{}")["call_serial_no"] == "e"


def test_a_call_the_job_knows_it_made_is_not_another_rows_record() -> None:
    """A record whose serial a succeeded row holds cannot settle an unknown row."""
    row = _row(0, "13900000001", 1000.0, 1005.0)
    theirs = _record("known", "13900000001", 1002.0)
    finals, unsettled = decide([row], [theirs], now=1006.0, known={"known"})
    assert finals == []
    assert len(unsettled) == 1


# ---- the console script, over loopback ------------------------------------------------


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorServer]:
    """The emulator on loopback, with the CCMESSAGING_* variables pointing at it."""
    with EmulatorServer(Emulator()) as server:
        point_at(monkeypatch, server, server.url)
        yield server


def point_at(monkeypatch: pytest.MonkeyPatch, server: EmulatorServer, url: str) -> None:
    for key, value in emulator_env(url, server.app.app_key, server.app.app_secret).items():
        if key.startswith("CCMESSAGING_"):
            monkeypatch.setenv(key, value)


def write_csv(path: Path, called: list[str]) -> Path:
    path.write_text(
        "called,caller_present,call_data\n" + "".join(f"{n},{CALLER},\n" for n in called)
    )
    return path


@pytest.mark.e2e
def test_a_killed_batch_is_settled_then_resent_and_everyone_is_called_once(
    served: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SIGKILL mid-run; reconcile settles every interrupted row as the platform knows it.

    Then ``--resend-unknown`` dials exactly the rows the records say were never created:
    every number ends with one call.
    """
    emulator = served.app
    emulator.latency = 0.05  # calls in flight when the run dies
    called = [f"1392{i:07d}" for i in range(300)]
    source, out = write_csv(tmp_path / "in.csv", called), tmp_path / "out.jsonl"
    command = [sys.executable, "-m", "ccmessaging_async.cli", "batch", str(source)]
    command += ["--out", str(out), "--concurrency", "20", "--transport", "httpx"]
    env = emulator_env(served.url, emulator.app_key, emulator.app_secret)
    with subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL) as process:
        try:
            assert emulator.wait_for_calls(100, timeout=60)
            os.kill(process.pid, signal.SIGKILL)
        finally:
            process.wait(30)
    emulator.latency = 0.0
    capsys.readouterr()
    # The platform may still be creating the calls it received before the kill: a grace
    # of a second (waited for) lets their records appear.
    code = main(["reconcile", str(out), "--out", str(out), "--grace", "1", "--wait", "30"])
    said = capsys.readouterr()
    assert code == ExitCode.OK, said
    settled = [line for line in lines(out) if line.get("settled_by")]
    assert settled, said.err  # the kill left rows in flight
    for line in settled:
        made = emulator.calls_for(str(line["called"]))
        assert line["status"] == ("succeeded" if made else "failed")
    assert "settled from the call records" in said.out
    assert "settled from the call records" in status_text(Path(f"{out}.job"))
    created = sum(line["status"] == "succeeded" for line in settled)
    assert f"{created} created, {len(settled) - created} not created" in said.out

    never = [str(line["called"]) for line in settled if line["status"] == "failed"]
    resumed = main(["batch", str(source), "--out", str(out)])
    assert resumed == (ExitCode.NOT_CREATED if never else ExitCode.OK)
    assert all(emulator.calls_for(number) == 0 for number in never)  # not asked: not dialled
    assert main(["batch", str(source), "--out", str(out), "--resend-unknown"]) == ExitCode.OK
    assert emulator.duplicates() == {}
    assert {c.called for c in emulator.calls} == set(called)


@pytest.mark.e2e
def test_batch_settles_its_own_unknown_rows_behind_a_faulty_relay(
    served: EmulatorServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A relay cuts two connections after the platform acted and swallows two requests."""
    emulator = served.app
    called = [f"1391{i:07d}" for i in range(30)]
    with FaultProxy(served.host, served.port) as proxy:
        for number in called[:2]:
            proxy.faults[number] = Fault.RESET_AFTER_FORWARD
        for number in called[2:4]:
            proxy.faults[number] = Fault.RESET_BEFORE_FORWARD
        point_at(monkeypatch, served, proxy.url)
        source, out = write_csv(tmp_path / "in.csv", called), tmp_path / "out.csv"
        arguments = ["batch", str(source), "--out", str(out), "--transport", "httpx"]
        code = main([*arguments, "--reconcile-wait", "5", "--grace", "0"])
    said = capsys.readouterr()
    assert code == ExitCode.NOT_CREATED, said  # two rows certainly not created
    assert "2 created, 2 not created" in said.out
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    settled = {row["called"]: row for row in rows if row["settled_by"] == "call records"}
    serials = {c.called: c.serial_no for c in emulator.calls}
    for number in called[:2]:
        assert settled[number]["status"] == "succeeded"
        assert settled[number]["call_serial_no"] == serials[number]
    for number in called[2:4]:
        assert settled[number]["status"] == "failed"
        assert emulator.calls_for(number) == 0
    assert len(rows) == 34


@pytest.mark.e2e
def test_records_that_cannot_be_read_leave_rows_unknown_and_say_so(
    served: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A retCode error: `batch` keeps its outcomes, `reconcile` exits 3; nothing settled."""
    emulator = served.app
    called = [f"1390{i:07d}" for i in range(5)]
    emulator.drop_connection(called[0], DropPoint.AFTER_RECORD)
    emulator.records_ret_code = "2"
    source, out = write_csv(tmp_path / "in.csv", called), tmp_path / "out.jsonl"
    arguments = ["batch", str(source), "--out", str(out), "--reconcile-wait", "1"]
    assert main(arguments) == ExitCode.UNKNOWN
    assert "could not read the call records (CallRecordsError" in capsys.readouterr().err
    assert main(["reconcile", str(out)]) == ExitCode.UNKNOWN
    assert "retCode 2" in capsys.readouterr().err
    assert [line["status"] for line in lines(out)].count("unknown") == 1
    assert emulator.createcall_requests == 5
    emulator.records_ret_code = None
    assert main(["reconcile", str(out), "--grace", "0"]) == ExitCode.OK


@pytest.mark.e2e
def test_the_command_settles_a_job_on_either_store(
    served: EmulatorServer,
    store: tuple[str, str | None],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`reconcile` on a job file or a job in PostgreSQL; `status` counts what it settled."""
    location, name = store
    named = ["--name", name] if name else []
    emulator = served.app
    called = [f"1389{i:07d}" for i in range(12)]
    emulator.drop_connection(called[0], DropPoint.AFTER_RECORD)
    emulator.drop_connection(called[1], DropPoint.BEFORE_RECORD)
    source, out = write_csv(tmp_path / "in.csv", called), tmp_path / "out.jsonl"
    batch = ["batch", str(source), "--out", str(out), "--job", location, *named]
    assert main([*batch, "--transport", "httpx"]) == ExitCode.UNKNOWN
    assert main(["reconcile", location, *named, "--grace", "0"]) == ExitCode.OK
    said = capsys.readouterr().out
    assert "settled from the call records: 1 created, 1 not created" in said
    assert main(["status", location, *named, "--json"]) == ExitCode.OK
    status = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert status["settled"] == {"created": 1, "not_created": 1}
    assert status["counts"]["unknown"] == 0
    assert emulator.createcall_requests == 12  # reconcile dialled nothing


@pytest.mark.e2e
def test_a_stop_while_batch_waits_for_records_stops_it_at_once(
    served: EmulatorServer, tmp_path: Path
) -> None:
    """Ctrl-C during `--reconcile-wait` ends the wait; the row stays unknown; exit 130."""
    emulator = served.app
    called = [f"1388{i:07d}" for i in range(3)]
    emulator.drop_connection(called[0], DropPoint.AFTER_RECORD)
    emulator.record_delay = 3600.0  # its record never appears in time
    source, out = write_csv(tmp_path / "in.csv", called), tmp_path / "out.jsonl"
    command = [sys.executable, "-m", "ccmessaging_async.cli", "batch", str(source)]
    command += ["--out", str(out), "--reconcile-wait", "600"]
    env = emulator_env(served.url, emulator.app_key, emulator.app_secret)
    with subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) as process:
        try:
            assert process.stderr is not None
            for line in process.stderr:
                if line.startswith("settling unknown rows"):
                    break
            process.send_signal(signal.SIGINT)
            code = process.wait(timeout=30)  # not 600 s
            rest = process.stderr.read()
        finally:
            process.kill()
    assert code == ExitCode.INTERRUPTED
    assert "stopped while settling" in rest
    assert [line["status"] for line in lines(out)].count("unknown") == 1


def test_a_record_in_the_same_millisecond_as_the_attempts_end_is_its_call() -> None:
    """Times are whole milliseconds on both sides: a window is wider each way by that much.

    Seen: an attempt claimed at ...294.0367641 whose outcome was kept as ...294.037 (it
    came at ...294.0379), its call recorded at ...294.038 (made at ...294.0376103).
    """
    row = _row(0, "13900000001", 1796570294.0367641, 1796570294.037)
    for at in (1796570294.036, 1796570294.038, 1796570294.0385):
        finals, _ = decide([row], [_record("e", "13900000001", at)], now=1796570300.0, skew=0.0)
        assert [f.status for f in finals] == ["succeeded"], at
