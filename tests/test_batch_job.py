"""The batch job as operators use it, over loopback against the emulator under uvicorn.

Each test is one way real operators break a job: started twice, input edited after a
crash, a report reused or fed back, a disk that fills, signals at random moments.
"""

from __future__ import annotations

import json
import os
import random
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccmessaging_async import aiohttp_transport
from ccmessaging_async.cli import ExitCode, _progress, main
from ccmessaging_async.cli import _connection as connection
from ccmessaging_async.testing import DropPoint, Emulator, EmulatorServer
from tests._helpers import emulator_env

pytestmark = [pytest.mark.e2e]

COMMAND = [sys.executable, "-m", "ccmessaging_async.cli", "batch"]


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorServer]:
    """The emulator on loopback, with the CCMESSAGING_* variables pointing at it."""
    with EmulatorServer(Emulator()) as server:
        for key, value in env_for(server).items():
            if key.startswith("CCMESSAGING_"):
                monkeypatch.setenv(key, value)
        yield server


def env_for(server: EmulatorServer) -> dict[str, str]:
    return emulator_env(server.url, server.app.app_key, server.app.app_secret)


def numbers(n: int, prefix: str = "1390") -> list[str]:
    return [f"{prefix}{i:07d}" for i in range(n)]


def write_csv(path: Path, called: list[str]) -> Path:
    path.write_text("called,caller_present,call_data\n" + "".join(f"{n},95599,\n" for n in called))
    return path


def report(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def statuses(path: Path) -> dict[str, str]:
    """Called number -> status, asserting one report line per row."""
    lines = report(path)
    assert len({line["row"] for line in lines}) == len(lines), "a row has two lines"
    return {str(line["called"]): str(line["status"]) for line in lines}


def job_states(job: Path) -> dict[str, int]:
    db = sqlite3.connect(f"{job.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return dict(db.execute("SELECT state, count(*) FROM rows GROUP BY state").fetchall())
    finally:
        db.close()


def assert_consistent(emulator: Emulator, outcome_of: dict[str, str]) -> None:
    """No number created twice; each created as often as its recorded outcome allows."""
    assert emulator.duplicates() == {}
    for number, status in outcome_of.items():
        allowed = {"succeeded": (1, 1), "failed": (0, 0), "unknown": (0, 1)}[status]
        assert allowed[0] <= emulator.calls_for(number) <= allowed[1], (number, status)


# 1. Input used as its own output --------------------------------------------------------


def test_input_used_as_its_own_output_is_refused(served: EmulatorServer, tmp_path: Path) -> None:
    """`--out` or `--job` naming the input is refused before anything is dialled."""
    source = tmp_path / "c.jsonl"
    source.write_text("".join(f'{{"called": "{n}"}}\n' for n in numbers(5)))
    assert main(["batch", str(source), "--out", str(source)]) == ExitCode.USAGE
    assert main(["batch", str(source), "--out", str(tmp_path / "r"), "--job", str(source)]) == 2
    assert main(["batch", str(source), "--out", str(tmp_path / "./c.jsonl")]) == 2
    assert served.app.createcall_requests == 0
    assert served.app.token_requests == 0


# 2. The same job started twice at once ---------------------------------------------------


def test_second_run_of_a_running_job_is_refused(
    served: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """While one run holds the job, a second exits 2 naming the job file and the pid."""
    emulator = served.app
    emulator.latency = 0.05
    called = numbers(200)
    source, out = write_csv(tmp_path / "in.csv", called), tmp_path / "out.jsonl"
    command = [*COMMAND, str(source), "--out", str(out), "--concurrency", "5"]
    with subprocess.Popen(command, env=env_for(served), stderr=subprocess.PIPE) as first:
        assert emulator.wait_for_calls(5, timeout=60)
        assert main(["batch", str(source), "--out", str(out)]) == ExitCode.USAGE
        refusal = capsys.readouterr().err
        assert main(["status", str(out)]) == ExitCode.OK  # status reads a running job
        assert f"running now (pid {first.pid})" in capsys.readouterr().out
        assert first.wait(120) == ExitCode.OK
    assert f"{out}.job is in use by another run (pid {first.pid})" in refusal
    assert len(emulator.calls) == 200
    assert_consistent(emulator, statuses(out))


# 3. Input edited between a crash and the resume -------------------------------------------


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda rows: rows[1:2] + rows[:1] + rows[2:], "row 1 differs (line 2 then, line 2 now)"),
        (lambda rows: [*rows[:5], "13999999999", *rows[5:]], "row 6 differs"),
        (lambda rows: rows[:-1], "row 30 (line 31) is no longer there"),
        (lambda rows: [*rows, "13999999999"], "row 31 (line 32) is new"),
    ],
    ids=["re-sorted", "inserted", "removed", "appended"],
)
def test_edited_input_is_refused_on_resume(
    served: EmulatorServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    edit: object,
    named: str,
) -> None:
    """A resume with an edited input refuses before dialling and names the first change."""
    emulator = served.app
    called = numbers(30)
    emulator.drop_connection(called[20], DropPoint.BEFORE_RECORD)  # the job is "interrupted"
    source, out = write_csv(tmp_path / "in.csv", called), tmp_path / "out.jsonl"
    assert main(["batch", str(source), "--out", str(out)]) == ExitCode.UNKNOWN
    before = emulator.createcall_requests
    write_csv(source, edit(called))  # type: ignore[operator]
    capsys.readouterr()
    assert main(["batch", str(source), "--out", str(out)]) == ExitCode.USAGE
    assert named in capsys.readouterr().err
    assert emulator.createcall_requests == before
    assert main(["batch", str(source), "--out", str(out), "--resend-unknown"]) == 2
    write_csv(source, called)  # restored: the resume goes on
    assert main(["batch", str(source), "--out", str(out)]) == ExitCode.UNKNOWN
    assert main(["batch", "--out", str(out)]) == ExitCode.UNKNOWN  # the job owns its rows
    assert emulator.createcall_requests == before


# 4. Yesterday's report reused with today's list --------------------------------------------


def test_yesterdays_report_is_never_taken_as_done(
    served: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another input with an old --out is refused, with or without the old job file."""
    yesterday = write_csv(tmp_path / "mon.csv", numbers(50, "1391"))
    today = write_csv(tmp_path / "tue.csv", numbers(50, "1392"))
    out = tmp_path / "results.jsonl"
    assert main(["batch", str(yesterday), "--out", str(out)]) == ExitCode.OK
    capsys.readouterr()
    assert main(["batch", str(today), "--out", str(out)]) == ExitCode.USAGE
    assert "is not the input this job was started with" in capsys.readouterr().err
    Path(f"{out}.job").unlink()
    assert main(["batch", str(today), "--out", str(out)]) == ExitCode.USAGE
    assert "already exists and belongs to no job" in capsys.readouterr().err
    assert not Path(f"{out}.job").exists()
    assert len(served.app.calls) == 50
    assert all(served.app.calls_for(n) == 0 for n in numbers(50, "1392"))


# 5. Durable before dialling, checked at the system-call level -----------------------------


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_every_claim_is_on_disk_before_its_request_is_written(
    served: EmulatorServer, tmp_path: Path
) -> None:
    """Under strace: each request is written only after its row's claim was fsynced."""
    called = numbers(30)
    source, out = write_csv(tmp_path / "in.csv", called), tmp_path / "out.jsonl"
    trace = tmp_path / "trace"
    command = ["strace", "-f", "-y", "-s", "8192", "-o", str(trace)]
    command += ["-e", "trace=pwrite64,write,writev,sendto,sendmsg,fsync,fdatasync"]
    command += [*COMMAND, str(source), "--out", str(out), "--concurrency", "4"]
    done = subprocess.run(command, env=env_for(served), capture_output=True, check=False)
    assert done.returncode == ExitCode.OK, done.stderr
    # A claim rewrites the row's record: line, digest, then called, caller_present and the
    # state side by side in the page that goes to the write-ahead log.
    written: set[str] = set()
    durable: set[str] = set()
    sent: list[str] = []
    durable_at_start: dict[str, set[str]] = {}  # by socket: what was on disk at "POST"
    for line in trace.read_text().splitlines():
        socket = re.search(r"(?:sendto|write|writev|sendmsg)\((\d+)<(?:TCP|socket)", line)
        if re.search(r"pwrite64\(\d+<[^>]*\.job-wal>", line):
            written |= {n for n in called if f"{n}95599sending" in line}
        elif re.search(r"(fsync|fdatasync)\(\d+<[^>]*\.job-wal>", line):
            durable |= written
            written = set()
        elif socket is not None:
            if "POST /apiaccess" in line:
                durable_at_start[socket[1]] = set(durable)
            number = next((n for n in called if f'called\\": \\"{n}' in line), None)
            if number is not None:
                on_disk = durable_at_start.pop(socket[1])
                assert number in on_disk, f"{number} was sent before its claim was on disk"
                sent.append(number)
    assert sorted(sent) == called


# 6. "Unknown" after a crash means the request may really have left -------------------------


def test_rows_left_unknown_by_a_kill_held_a_connection(
    served: EmulatorServer, tmp_path: Path
) -> None:
    """--concurrency 1000 is capped at the pool; after kill -9 only calls that left are unknown."""
    emulator = served.app
    emulator.latency = 0.3
    called = numbers(600)
    source, out = write_csv(tmp_path / "in.csv", called), tmp_path / "out.jsonl"
    command = [*COMMAND, str(source), "--out", str(out), "--concurrency", "1000"]
    with subprocess.Popen(command, env=env_for(served), stderr=subprocess.PIPE, text=True) as run:
        try:
            assert emulator.wait_for_calls(150, timeout=60)
        finally:
            run.kill()
            _, stderr = run.communicate(timeout=30)
    assert "--concurrency 1000 is above the connection pool's 100: using 100" in stderr
    # At most the pool's 100 calls in flight, and a few that had ended but whose outcome
    # was not committed yet when the process died (they were sent too).
    sending = job_states(Path(f"{out}.job")).get("sending", 0)
    assert sending <= 110
    emulator.latency = 0.0
    done = subprocess.run(command, env=env_for(served), capture_output=True, check=False)
    assert done.returncode == ExitCode.UNKNOWN
    outcome_of = statuses(out)
    assert len(outcome_of) == 600
    assert list(outcome_of.values()).count("unknown") == sending
    assert_consistent(emulator, outcome_of)


# 8. Input damage: refused before dialling, or confined to its row -------------------------


def test_damaged_input_is_refused_before_dialling(
    served: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stray quote or a misspelt column refuses the job with its line; nothing dialled."""
    out = tmp_path / "out.jsonl"
    lines = ["called,caller_present,call_data\n"] + [f"{n},95599,\n" for n in numbers(100)]
    lines[11] = '"' + lines[11]
    (tmp_path / "quote.csv").write_text("".join(lines))
    (tmp_path / "typo.csv").write_text("called,caller_presnt\n13900000001,95599\n")
    for name, message in (("quote.csv", "line 12: not valid CSV"), ("typo.csv", "caller_presnt")):
        assert main(["batch", str(tmp_path / name), "--out", str(out)]) == ExitCode.USAGE
        err = capsys.readouterr().err
        assert message in err
        assert "Traceback" not in err
        assert not Path(f"{out}.job").exists()
        assert not out.exists()
    assert served.app.createcall_requests == 0


def test_excel_csv_and_a_bad_byte(served: EmulatorServer, tmp_path: Path) -> None:
    """A BOM is accepted; a bad byte fails its own row with its line; the rest are dialled."""
    called = numbers(10)
    data = b"\xef\xbb\xbf" + write_csv(tmp_path / "in.csv", called).read_bytes()
    data = data.replace(called[4].encode(), called[4][:-1].encode() + b"\xff")
    (tmp_path / "in.csv").write_bytes(data)
    out = tmp_path / "out.jsonl"
    assert main(["batch", str(tmp_path / "in.csv"), "--out", str(out)]) == ExitCode.NOT_CREATED
    lines = {line["line"]: line for line in report(out)}
    assert lines[6]["status"] == "failed"
    assert "line 6 is not UTF-8" in str(lines[6]["error"])
    assert len(served.app.calls) == 9


# 9. Exit codes ---------------------------------------------------------------------------


def test_batch_exit_codes_say_what_a_retry_may_do(served: EmulatorServer, tmp_path: Path) -> None:
    """0 all created, 1 some certainly not created, 3 some may exist (of the whole job)."""
    assert [int(code) for code in ExitCode] == [0, 1, 2, 3, 4, 5, 130, 143]  # documented
    emulator = served.app
    ok = write_csv(tmp_path / "ok.csv", numbers(3, "1393"))
    refused = write_csv(tmp_path / "refused.csv", numbers(3, "1394"))
    unknown = write_csv(tmp_path / "unknown.csv", numbers(3, "1395"))
    emulator.result_codes[numbers(3, "1394")[1]] = "30010010002"
    emulator.result_codes[numbers(3, "1395")[0]] = "30010010002"
    emulator.drop_connection(numbers(3, "1395")[1], DropPoint.AFTER_RECORD)
    assert main(["batch", str(ok), "--out", str(tmp_path / "1")]) == ExitCode.OK
    assert main(["batch", str(refused), "--out", str(tmp_path / "2")]) == ExitCode.NOT_CREATED
    assert main(["batch", str(unknown), "--out", str(tmp_path / "3")]) == ExitCode.UNKNOWN
    assert main(["batch", str(unknown), "--out", str(tmp_path / "3")]) == 3  # still, on resume


def test_help_lists_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    """`batch --help` tells a wrapper script what each exit code means."""
    with pytest.raises(SystemExit):
        main(["batch", "--help"])
    text = capsys.readouterr().out
    for code in ExitCode:
        assert f"{int(code):>3}  {code.meaning}" in text


# The report, status and export -------------------------------------------------------------


def test_csv_report(served: EmulatorServer, tmp_path: Path) -> None:
    """--out ending in .csv writes a CSV report, brought level like the JSONL one."""
    called = numbers(5)
    served.app.result_codes[called[3]] = "30010010002"
    source, out = write_csv(tmp_path / "in.csv", called), tmp_path / "out.csv"
    assert main(["batch", str(source), "--out", str(out)]) == ExitCode.NOT_CREATED
    whole = out.read_text()
    lines = whole.splitlines()
    assert lines[0].split(",")[:5] == ["row", "line", "status", "called", "result_code"]
    assert sorted(line.split(",")[2] for line in lines[1:]) == ["failed"] + ["succeeded"] * 4
    out.write_text(whole[:-10])
    assert main(["batch", "--out", str(out)]) == ExitCode.NOT_CREATED
    assert out.read_text() == whole


def test_report_is_brought_level_with_the_job_file(served: EmulatorServer, tmp_path: Path) -> None:
    """A torn, missing or foreign report is rebuilt from the job file at the next start."""
    source, out = write_csv(tmp_path / "in.csv", numbers(20)), tmp_path / "out.jsonl"
    assert main(["batch", str(source), "--out", str(out)]) == ExitCode.OK
    whole = out.read_text()
    out.write_text(whole[: len(whole) - 30])  # a torn last line
    assert main(["batch", str(source), "--out", str(out)]) == ExitCode.OK
    assert out.read_text() == whole
    out.unlink()
    assert main(["batch", "--out", str(out)]) == ExitCode.OK
    assert out.read_text() == whole
    out.write_text('{"row": 0, "garbage": true}\n')
    assert main(["batch", "--out", str(out)]) == ExitCode.OK
    assert out.read_text() == whole
    assert len(served.app.calls) == 20


def test_status_and_export(
    served: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`status` counts rows by state and result code; `export` writes the report as CSV."""
    called = numbers(6)
    served.app.result_codes[called[2]] = "30010010002"
    source, out = write_csv(tmp_path / "in.csv", [*called, ""]), tmp_path / "out.jsonl"
    assert main(["batch", str(source), "--out", str(out)]) == ExitCode.NOT_CREATED
    capsys.readouterr()
    assert main(["status", str(out)]) == ExitCode.OK
    text = capsys.readouterr().out
    assert "pending 0, sending 0, succeeded 5, failed 2, unknown 0" in text
    assert "result codes: 0 x5, 30010010002 x1" in text
    assert "not running; last run pid" in text
    assert main(["status", str(out), "--json"]) == ExitCode.OK
    data = json.loads(capsys.readouterr().out)
    assert data["counts"] == {
        "pending": 0,
        "sending": 0,
        "succeeded": 5,
        "failed": 2,
        "unknown": 0,
        "skipped": 0,
    }
    assert data["result_codes"] == {"0": 5, "30010010002": 1}
    assert data["not_called"] == {"invalid": 1, "duplicates": 0, "suppressed": 0}
    assert data["input"]["rows"] == 7
    assert data["running"] is None
    assert data["last_run"]["how"] == "finished"
    assert main(["export", f"{out}.job", "--out", str(tmp_path / "again.csv")]) == ExitCode.OK
    exported = (tmp_path / "again.csv").read_text().splitlines()
    assert exported[0].startswith("row,line,status,called,result_code")
    assert len(exported) == 8
    assert main(["status", str(tmp_path / "nothing.job")]) == ExitCode.USAGE


def test_a_job_file_of_another_schema_is_refused(served: EmulatorServer, tmp_path: Path) -> None:
    """The schema version is checked on open; a job file from elsewhere is never misread."""
    source, out = write_csv(tmp_path / "in.csv", numbers(2)), tmp_path / "out.jsonl"
    assert main(["batch", str(source), "--out", str(out)]) == ExitCode.OK
    db = sqlite3.connect(f"{out}.job")
    db.execute("PRAGMA user_version = 99")
    db.close()
    assert main(["batch", str(source), "--out", str(out)]) == ExitCode.USAGE
    Path(f"{out}.job").write_text("not a database, just some text of a file\n" * 40)
    assert main(["batch", str(source), "--out", str(out)]) == ExitCode.USAGE
    assert len(served.app.calls) == 2


def test_resend_unknown_is_the_only_way_to_dial_an_unknown_row_again(
    served: EmulatorServer, tmp_path: Path
) -> None:
    """Unknown rows stay unknown on resume; --resend-unknown dials them and reports again."""
    called = numbers(3)
    served.app.drop_connection(called[1], DropPoint.AFTER_RECORD)
    source, out = write_csv(tmp_path / "in.csv", called), tmp_path / "out.jsonl"
    assert main(["batch", str(source), "--out", str(out)]) == ExitCode.UNKNOWN
    assert main(["batch", str(source), "--out", str(out)]) == ExitCode.UNKNOWN
    assert served.app.calls_for(called[1]) == 1
    assert main(["batch", str(source), "--out", str(out), "--resend-unknown"]) == ExitCode.OK
    assert served.app.calls_for(called[1]) == 2
    assert [line["status"] for line in report(out) if line["called"] == called[1]] == [
        "unknown",
        "succeeded",
    ]


# Signals, kills and full disks -----------------------------------------------------------


def test_sigterm_is_handled_like_ctrl_c(served: EmulatorServer, tmp_path: Path) -> None:
    """SIGTERM lets the calls in flight end, prints the summary, closes the job: exit 143."""
    emulator = served.app
    emulator.latency = 0.05
    source, out = write_csv(tmp_path / "in.csv", numbers(300)), tmp_path / "out.jsonl"
    command = [*COMMAND, str(source), "--out", str(out), "--concurrency", "10"]
    with subprocess.Popen(
        command, env=env_for(served), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as run:
        assert emulator.wait_for_calls(30, timeout=60)
        run.send_signal(signal.SIGTERM)
        stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == ExitCode.TERMINATED, stderr
    assert "calls:" in stdout
    assert "SIGTERM: no new calls" in stderr
    assert "Traceback" not in stderr
    states = job_states(Path(f"{out}.job"))
    assert states.get("sending", 0) == 0  # the calls in flight ended and were recorded
    assert states["succeeded"] == len(emulator.calls) < 300
    emulator.latency = 0.0
    assert main(["batch", str(source), "--out", str(out)]) == ExitCode.OK
    assert_consistent(emulator, statuses(out))


def test_ten_kills_and_resumes_never_ring_anyone_twice(
    served: EmulatorServer, tmp_path: Path
) -> None:
    """Ten runs stopped by SIGTERM, SIGINT or SIGKILL at random moments, then a last one."""
    emulator = served.app
    emulator.latency = 0.01
    called = numbers(600)
    source, out = write_csv(tmp_path / "in.csv", called), tmp_path / "out.jsonl"
    command = [*COMMAND, str(source), "--out", str(out), "--concurrency", "20"]
    chance = random.Random(8)
    for cycle in range(10):
        how = (signal.SIGTERM, signal.SIGINT, signal.SIGKILL)[cycle % 3]
        target = min(len(emulator.calls) + chance.randint(5, 40), 600)
        with subprocess.Popen(command, env=env_for(served), stdout=subprocess.DEVNULL) as run:
            emulator.wait_for_calls(target, timeout=60)
            run.send_signal(how)
            run.wait(60)
    assert main(["batch", str(source), "--out", str(out)]) in (ExitCode.OK, ExitCode.UNKNOWN)
    outcome_of = statuses(out)
    assert sorted(outcome_of) == sorted(called)
    assert_consistent(emulator, outcome_of)
    assert job_states(Path(f"{out}.job")).get("pending", 0) == 0


def _mount_tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)]
    return subprocess.run(command, capture_output=True, check=False).returncode == 0


def test_a_full_disk_stops_the_job_and_the_resume_is_exact(
    served: EmulatorServer, tmp_path: Path
) -> None:
    """On a full tmpfs the job stops (exit 4, no traceback); after space is freed it ends."""
    folder = tmp_path / "small"
    if os.geteuid() != 0 or not _mount_tmpfs(folder, "400k"):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        called = numbers(1500)
        source, out = write_csv(tmp_path / "in.csv", called), folder / "out.jsonl"
        command = [*COMMAND, str(source), "--out", str(out), "--concurrency", "20"]
        done = subprocess.run(
            command, env=env_for(served), capture_output=True, text=True, check=False
        )
        assert done.returncode == ExitCode.STORAGE, done.stderr
        assert "nothing more was dialled" in done.stderr
        assert "Traceback" not in done.stderr
        assert 0 < len(served.app.calls) < 1500
        subprocess.run(["mount", "-o", "remount,size=64m", str(folder)], check=True)
        done = subprocess.run(
            command, env=env_for(served), capture_output=True, text=True, check=False
        )
        assert done.returncode in (ExitCode.OK, ExitCode.UNKNOWN), done.stderr
        outcome_of = statuses(out)
        assert sorted(outcome_of) == sorted(called)
        assert_consistent(served.app, outcome_of)
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_a_file_size_limit_stops_the_job_and_the_resume_is_exact(
    served: EmulatorServer, tmp_path: Path
) -> None:
    """Under RLIMIT_FSIZE the job stops cleanly (exit 4) instead of dying of SIGXFSZ."""
    called = numbers(1500)
    source, out = write_csv(tmp_path / "in.csv", called), tmp_path / "out.jsonl"
    command = [*COMMAND, str(source), "--out", str(out), "--concurrency", "20"]

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))

    done = subprocess.run(
        command,
        env=env_for(served),
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=limit,
    )
    assert done.returncode == ExitCode.STORAGE, done.stderr
    assert "Traceback" not in done.stderr
    assert 0 < len(served.app.calls) < 1500
    done = subprocess.run(command, env=env_for(served), capture_output=True, text=True, check=False)
    assert done.returncode in (ExitCode.OK, ExitCode.UNKNOWN), done.stderr
    outcome_of = statuses(out)
    assert sorted(outcome_of) == sorted(called)
    assert_consistent(served.app, outcome_of)


# The transport -------------------------------------------------------------------------------


def test_batch_takes_the_aiohttp_transport_when_installed(
    served: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[object] = []

    def recorded(**options: object) -> object:
        assert options == {"trust_env": True}  # the CLI honours HTTPS_PROXY as curl does
        built.append(aiohttp_transport(**options))  # type: ignore[arg-type]
        return built[-1]

    monkeypatch.setattr(connection, "aiohttp_transport", recorded)
    source = write_csv(tmp_path / "in.csv", numbers(20))
    assert main(["batch", str(source), "--out", str(tmp_path / "out.jsonl")]) == ExitCode.OK
    assert len(built) == 1
    assert len(served.app.calls) == 20


def test_without_the_aiohttp_extra_auto_is_httpx_and_aiohttp_is_refused(
    served: EmulatorServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(connection, "aiohttp_installed", lambda: False)
    monkeypatch.setattr(
        connection, "aiohttp_transport", lambda **_: pytest.fail("aiohttp was used")
    )
    source = write_csv(tmp_path / "in.csv", numbers(5))
    out = tmp_path / "out.jsonl"
    assert main(["batch", str(source), "--out", str(out), "--transport", "aiohttp"]) == 2
    assert "pip install 'ccmessaging-async[aiohttp]'" in capsys.readouterr().err
    assert not out.exists()
    assert served.app.calls == []
    assert main(["batch", str(source), "--out", str(out)]) == ExitCode.OK
    assert len(served.app.calls) == 5


def test_progress_lines_when_stderr_is_not_a_terminal(
    served: EmulatorServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """From cron or into a CI log, a line says how far the job has got as rows end."""
    monkeypatch.setattr(_progress, "LINE_EVERY", 0.0)
    source, out = write_csv(tmp_path / "in.csv", numbers(3)), tmp_path / "out.jsonl"
    assert main(["batch", str(source), "--out", str(out)]) == ExitCode.OK
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("calls:")]
    assert lines[-1].startswith("calls: 3/3 ended (succeeded 3) in ")
