"""Many workers on one job in PostgreSQL, as operators run them, and as they fail.

Worker processes run the console script against the emulator over loopback; the job
lives in a real PostgreSQL. After every scenario the same invariants hold: no number is
dialled twice, every row has exactly one recorded outcome, and ``unknown`` is at most
what killed or cut-off workers had in flight.
"""

from __future__ import annotations

import random
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from ccmessaging_async.cli import ExitCode
from ccmessaging_async.jobs._postgres_status import postgres_status
from ccmessaging_async.testing import Emulator, EmulatorServer
from tests._tcprelay import TcpRelay
from tests.test_batch_job import env_for, numbers, report, write_csv

pytestmark = [pytest.mark.e2e]

CLI = [sys.executable, "-m", "ccmessaging_async.cli"]
CONCURRENCY = 5

#: The console script, in a process whose clock (time and datetime) is an hour ahead.
CLOCK_AHEAD = """
import datetime, sys, time
ahead = 3600.0
real_time, real_time_ns = time.time, time.time_ns
time.time = lambda: real_time() + ahead
time.time_ns = lambda: real_time_ns() + int(ahead * 1e9)
class AheadDateTime(datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return super().now(tz) + datetime.timedelta(seconds=ahead)
datetime.datetime = AheadDateTime
from ccmessaging_async.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture
def served() -> Iterator[EmulatorServer]:
    emulator = Emulator()
    emulator.latency = 0.02
    with EmulatorServer(emulator) as server:
        yield server


@pytest.fixture
def name() -> str:
    return f"campaign-{secrets.token_hex(4)}"


def worker(
    served: EmulatorServer, url: str, name: str, *more: str, script: str | None = None
) -> subprocess.Popen[str]:
    """A ``work`` process (or ``batch`` when ``more`` starts with it) on the job."""
    command = more[0] if more and more[0] == "batch" else "work"
    rest = more[1:] if command == "batch" else more
    start = [sys.executable, "-c", script] if script else CLI
    return subprocess.Popen(
        [
            *start,
            command,
            *rest,
            "--job",
            url,
            "--name",
            name,
            "--lease",
            "2",
            "--concurrency",
            str(CONCURRENCY),
            "--transport",
            "httpx",
        ],
        env={**env_for(served), "PYTHONFAULTHANDLER": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str]:
    """Wait for a worker's end; one that hangs fails with every thread's stack (faulthandler)."""
    try:
        _stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)  # PYTHONFAULTHANDLER: dump every thread, then die
        _stdout, stderr = process.communicate(timeout=30)
        pytest.fail(f"the worker did not end within {timeout:g}s; its threads:\n{stderr}")
    return process.returncode, stderr


def job_rows(url: str, name: str) -> tuple[dict[str, int], dict[int, int]]:
    """States of the job's rows, and how many outcomes each row has."""
    with psycopg.connect(url) as db:
        states: dict[str, int] = dict(
            db.execute(
                "SELECT r.state, count(*) FROM ccmessaging.rows r JOIN ccmessaging.jobs j "
                "ON j.id = r.job WHERE j.name = %s GROUP BY r.state",
                (name,),
            ).fetchall()
        )
        outcomes: dict[int, int] = dict(
            db.execute(
                "SELECT o.row, count(*) FROM ccmessaging.outcomes o JOIN ccmessaging.jobs j "
                "ON j.id = o.job WHERE j.name = %s GROUP BY o.row",
                (name,),
            ).fetchall()
        )
    return states, outcomes


def dialled_by(url: str, name: str, pid: int) -> int:
    """Rows of job ``name`` that the worker process ``pid`` has dialled so far."""
    with psycopg.connect(url) as db:
        found = db.execute(
            "SELECT count(*) FROM ccmessaging.rows r JOIN ccmessaging.workers w "
            "ON w.id = r.worker JOIN ccmessaging.jobs j ON j.id = r.job "
            "WHERE j.name = %s AND w.pid = %s AND r.state = 'succeeded'",
            (name, pid),
        ).fetchone()
    return int(found[0]) if found else 0


def assert_invariants(
    emulator: Emulator, url: str, name: str, rows: int, *, unknown_at_most: int
) -> dict[str, int]:
    """Nobody dialled twice, every row one outcome, unknown bounded; return the states."""
    states, outcomes = job_rows(url, name)
    assert emulator.duplicates() == {}
    assert outcomes == dict.fromkeys(range(rows), 1)
    assert states.get("pending", 0) == states.get("sending", 0) == 0
    assert states.get("unknown", 0) <= unknown_at_most
    ended = states.get("succeeded", 0), states.get("failed", 0), states.get("unknown", 0)
    assert ended[0] <= len(emulator.calls) <= sum(ended)  # an unknown row: dialled or not
    return states


def test_workers_on_two_machines_share_one_job(
    served: EmulatorServer, postgres_url: str, name: str, tmp_path: Path
) -> None:
    """`batch` starts the job, two `work` join it; each row dialled once; one report."""
    called = numbers(300, "1392")
    source, out = write_csv(tmp_path / "in.csv", called), tmp_path / "out.jsonl"
    first = worker(
        served, postgres_url, name, "batch", str(source), "--out", str(out), "--rate", "100"
    )
    assert served.app.wait_for_calls(10, timeout=60)
    others = [worker(served, postgres_url, name) for _ in range(2)]
    status = subprocess.run(
        [*CLI, "status", postgres_url, "--name", name],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "300 rows" in status
    assert "workers running" in status
    for process in (first, *others):
        code, stderr = finish(process)
        assert code == ExitCode.OK, stderr
    assert_invariants(served.app, postgres_url, name, 300, unknown_at_most=0)
    lines = report(out)
    assert sorted(str(line["called"]) for line in lines) == sorted(called)
    assert {line["status"] for line in lines} == {"succeeded"}
    with psycopg.connect(postgres_url) as db:
        dialled_by = db.execute(
            "SELECT count(DISTINCT worker) FROM ccmessaging.rows r JOIN ccmessaging.jobs j "
            "ON j.id = r.job WHERE j.name = %s",
            (name,),
        ).fetchone()
    assert dialled_by is not None
    assert dialled_by[0] >= 2  # the work was shared


def test_killing_workers_at_random_moments_rings_nobody_twice(
    served: EmulatorServer, postgres_url: str, name: str, tmp_path: Path
) -> None:
    """Six SIGKILLs of random workers at random moments, each replaced by a new one."""
    called = numbers(500, "1393")
    source, out = write_csv(tmp_path / "in.csv", called), tmp_path / "out.jsonl"
    emulator = served.app
    running = [worker(served, postgres_url, name, "batch", str(source), "--out", str(out))]
    assert emulator.wait_for_calls(5, timeout=60)
    running += [worker(served, postgres_url, name) for _ in range(2)]
    chance = random.Random(21)
    kills = 0
    for _ in range(6):
        target = min(len(emulator.calls) + chance.randint(5, 50), 480)
        emulator.wait_for_calls(target, timeout=60)
        victim = running.pop(chance.randrange(len(running)))
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=30)
        kills += 1
        running.append(worker(served, postgres_url, name))
    codes = [finish(process) for process in running]
    for code, stderr in codes:
        assert code in (ExitCode.OK, ExitCode.UNKNOWN), stderr
        assert "Traceback" not in stderr
    states = assert_invariants(
        emulator, postgres_url, name, 500, unknown_at_most=kills * CONCURRENCY
    )
    assert states.get("succeeded", 0) + states.get("unknown", 0) == 500


def test_a_worker_cut_off_from_the_database_stops_and_the_others_finish(
    served: EmulatorServer, postgres_url: str, name: str, tmp_path: Path
) -> None:
    """Its connections reset mid-run: it stops dialling and exits 4; the job completes."""
    called = numbers(400, "1394")
    source = write_csv(tmp_path / "in.csv", called)
    emulator = served.app
    parts = conninfo_to_dict(postgres_url)
    with TcpRelay(str(parts.get("host") or "127.0.0.1"), int(parts.get("port") or 5432)) as relay:
        relayed = postgres_url.replace(f":{parts.get('port') or 5432}/", f":{relay.port}/")
        assert relayed != postgres_url
        cut_off = worker(served, relayed, name, "batch", str(source), "--out", str(tmp_path / "r"))
        assert emulator.wait_for_calls(40, timeout=60)
        survivor = worker(served, postgres_url, name)
        emulator.wait_for_calls(80, timeout=60)
        relay.cut()
        dialled_before = len(emulator.calls)
        code, stderr = finish(cut_off, timeout=60)
    assert code == ExitCode.STORAGE, stderr
    assert "could not record" in stderr or "could not be written" in stderr
    assert "Traceback" not in stderr
    code, stderr = finish(survivor)
    assert code in (ExitCode.OK, ExitCode.UNKNOWN), stderr
    states = assert_invariants(emulator, postgres_url, name, 400, unknown_at_most=CONCURRENCY)
    assert states.get("succeeded", 0) + states.get("unknown", 0) == 400
    assert len(emulator.calls) >= dialled_before


def test_a_worker_whose_clock_is_an_hour_ahead_takes_nothing_early(
    served: EmulatorServer, postgres_url: str, name: str, tmp_path: Path
) -> None:
    """Leases are the database's clock: a worker an hour ahead reaps no live worker's rows."""
    called = numbers(300, "1395")
    source = write_csv(tmp_path / "in.csv", called)
    emulator = served.app
    honest = worker(
        served,
        postgres_url,
        name,
        "batch",
        str(source),
        "--out",
        str(tmp_path / "r"),
        "--rate",
        "100",
    )
    assert emulator.wait_for_calls(10, timeout=60)
    ahead = worker(served, postgres_url, name, script=CLOCK_AHEAD)
    for process in (honest, ahead):
        code, stderr = finish(process)
        assert code == ExitCode.OK, stderr
    assert_invariants(emulator, postgres_url, name, 300, unknown_at_most=0)
    assert dialled_by(postgres_url, name, ahead.pid) > 0  # it did work beside the other


def test_refusals_before_anything_is_dialled(
    served: EmulatorServer, postgres_url: str, name: str, tmp_path: Path
) -> None:
    """Another input under a job's name, `work` on a job file or on no job, a dead server."""
    first = write_csv(tmp_path / "a.csv", numbers(5, "1396"))
    other = write_csv(tmp_path / "b.csv", numbers(6, "1396"))
    code, stderr = finish(
        worker(served, postgres_url, name, "batch", str(first), "--out", str(tmp_path / "a"))
    )
    assert code == ExitCode.OK, stderr
    calls = len(served.app.calls)
    code, stderr = finish(
        worker(served, postgres_url, name, "batch", str(other), "--out", str(tmp_path / "b"))
    )
    assert code == ExitCode.USAGE
    assert "not the input this job was started with" in stderr
    code, stderr = finish(worker(served, postgres_url, "no-such-job"))
    assert code == ExitCode.USAGE
    assert "no job" in stderr
    code, stderr = finish(worker(served, "postgresql://ops:sekret-pw@127.0.0.1:1/campaigns", name))
    assert code == ExitCode.USAGE
    assert "127.0.0.1" in stderr
    assert "campaigns" in stderr
    assert "sekret-pw" not in stderr
    done = subprocess.run(
        [*CLI, "work", "--job", str(tmp_path / "x.job")],
        env=env_for(served),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == ExitCode.USAGE
    assert "resume it with batch" in done.stderr
    assert len(served.app.calls) == calls


def test_sigterm_ends_a_worker_and_the_rest_goes_to_the_others(
    served: EmulatorServer, postgres_url: str, name: str, tmp_path: Path
) -> None:
    """The stopped worker's calls in flight end and are recorded; its held rows go back."""
    called = numbers(300, "1400")
    source, out = write_csv(tmp_path / "in.csv", called), tmp_path / "out.jsonl"
    emulator = served.app
    first = worker(
        served, postgres_url, name, "batch", str(source), "--out", str(out), "--rate", "50"
    )
    assert emulator.wait_for_calls(10, timeout=60)
    second = worker(served, postgres_url, name, "--rate", "50")
    while dialled_by(postgres_url, name, second.pid) < 10:  # it is working: stop it mid-run
        assert emulator.wait_for_calls(len(emulator.calls) + 1, timeout=60)
    second.send_signal(signal.SIGTERM)
    code, stderr = finish(second)
    assert code == ExitCode.TERMINATED, stderr
    assert "SIGTERM: no new calls" in stderr
    code, stderr = finish(first)
    assert code == ExitCode.OK, stderr
    assert_invariants(emulator, postgres_url, name, 300, unknown_at_most=0)
    assert len(report(out)) == 300


def busiest_second(moments: list[float]) -> int:
    """The most calls that arrived within any one second."""
    moments = sorted(moments)
    most, first = 0, 0
    for last, moment in enumerate(moments):
        while moment - moments[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def test_rate_is_the_jobs_whatever_the_number_of_workers(
    served: EmulatorServer, postgres_url: str, name: str, tmp_path: Path
) -> None:
    """Three workers with --rate 20 make 20 calls/s together, not 60."""
    called = numbers(120, "1401")
    source, out = write_csv(tmp_path / "in.csv", called), tmp_path / "out.jsonl"
    emulator = served.app
    processes = [
        worker(served, postgres_url, name, "batch", str(source), "--out", str(out), "--rate", "20")
    ]
    assert emulator.wait_for_calls(1, timeout=60)
    processes += [worker(served, postgres_url, name, "--rate", "20") for _ in range(2)]
    for process in processes:
        code, stderr = finish(process)
        assert code == ExitCode.OK, stderr
    assert_invariants(emulator, postgres_url, name, 120, unknown_at_most=0)
    moments = [call.at for call in emulator.calls]
    assert busiest_second(moments) <= 21  # a turn at each end of the second
    assert max(moments) - min(moments) >= 119 / 20 * 0.95
    per_worker = {dialled_by(postgres_url, name, p.pid) for p in processes}
    assert len(per_worker - {0}) >= 2  # the workers did share the job
    status = subprocess.run(
        [*CLI, "status", postgres_url, "--name", name], capture_output=True, text=True, check=True
    ).stdout
    assert "rate 20 calls/s (every worker together)" in status


@pytest.mark.parametrize("rate", [["--rate", "80"], []], ids=["rate-80", "no-rate"])
def test_a_throttle_seen_by_one_worker_slows_the_job(
    served: EmulatorServer, postgres_url: str, name: str, tmp_path: Path, rate: list[str]
) -> None:
    """A tenant metered below the job's rate, or a job with none: a shared pace, no row fails.

    With no rate, the first worker throttled gives the job the pace it found (before, each
    worker found the platform's rate alone and the job had no pace).
    """
    called = numbers(200, "1402")
    source, out = write_csv(tmp_path / "in.csv", called), tmp_path / "out.jsonl"
    emulator = served.app
    emulator.set_capacity(40, burst=5)
    processes = [worker(served, postgres_url, name, "batch", str(source), "--out", str(out), *rate)]
    assert emulator.wait_for_calls(1, timeout=60)
    processes.append(worker(served, postgres_url, name, *rate))
    for process in processes:
        code, stderr = finish(process)
        assert code == ExitCode.OK, stderr
    assert_invariants(emulator, postgres_url, name, 200, unknown_at_most=0)
    with psycopg.connect(postgres_url) as db:
        pace = db.execute("SELECT pace FROM ccmessaging.jobs WHERE name = %s", (name,)).fetchone()
    assert pace is not None
    status = "\n".join(postgres_status(postgres_url, name)[0])
    if rate:
        assert pace[0] is not None
        assert pace[0] < 80  # throttling brought the job's pace down
        assert "rate 80 calls/s (every worker together)" in status
    elif pace[0] is not None:
        # A job with no rate gets a pace only from a worker's measured cut (the store and
        # SharedPacing tests check how): a run this short may end before one, and a found
        # pace has no ceiling, so only what status says of it is checked here.
        assert "no rate; the pace found from throttling:" in status
    assert emulator.throttled_requests > 0
