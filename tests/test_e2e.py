"""End to end over real loopback sockets: the emulator served by uvicorn, the CLI, the demo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from ccmessaging_async import AsyncSession, CreateCallRequest, OutcomeStatus
from ccmessaging_async.cli import main
from ccmessaging_async.testing import DropPoint, Emulator, EmulatorServer

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def served() -> Iterator[EmulatorServer]:
    with EmulatorServer(Emulator()) as server:
        yield server


def numbers(n: int) -> list[str]:
    return [f"1390000{i:04d}" for i in range(n)]


@pytest.mark.anyio
async def test_thousand_calls_over_loopback(served: EmulatorServer) -> None:
    """1,000 calls at concurrency 50 all succeed with one token fetch and 1,000 records."""
    emulator = served.app
    requests = (CreateCallRequest(called=n) for n in numbers(1000))
    with anyio.fail_after(120):
        async with AsyncSession(served.url, emulator.app_key, emulator.app_secret) as session:
            outcomes = [o async for o in session.create_calls(requests, concurrency=50)]
    assert len(outcomes) == 1000
    assert all(o.ok for o in outcomes)
    assert emulator.token_requests == 1
    assert len(emulator.calls) == 1000
    assert emulator.duplicates() == {}


@pytest.mark.anyio
async def test_forced_expiry_over_loopback(served: EmulatorServer) -> None:
    """Tokens expiring mid-batch cost one refresh and lose no outcome."""
    emulator = served.app
    requests = (CreateCallRequest(called=n) for n in numbers(300))
    outcomes = []
    with anyio.fail_after(120):
        async with AsyncSession(served.url, emulator.app_key, emulator.app_secret) as session:
            async for outcome in session.create_calls(requests, concurrency=30):
                outcomes.append(outcome)
                if len(outcomes) == 100:
                    emulator.expire_all_tokens()
    assert sorted(o.index for o in outcomes) == list(range(300))
    assert all(o.ok for o in outcomes)
    assert emulator.token_requests == 2


@pytest.mark.anyio
async def test_rate_limit_holds_by_the_emulators_clock(served: EmulatorServer) -> None:
    """rate=50 keeps the calls the emulator saw at about 50 per second."""
    emulator = served.app
    requests = (CreateCallRequest(called=n) for n in numbers(51))
    with anyio.fail_after(60):
        async with AsyncSession(served.url, emulator.app_key, emulator.app_secret) as session:
            outcomes = [o async for o in session.create_calls(requests, rate=50.0)]
    assert all(o.ok for o in outcomes)
    times = sorted(call.at for call in emulator.calls)
    observed = (len(times) - 1) / (times[-1] - times[0])
    assert observed <= 50 * 1.15


def _env(server: EmulatorServer) -> dict[str, str]:
    return {
        **os.environ,
        "CCMESSAGING_BASE_URL": server.url,
        "CCMESSAGING_APP_KEY": server.app.app_key,
        "CCMESSAGING_APP_SECRET": server.app.app_secret,
    }


def _write_csv(path: Path, rows: list[str]) -> None:
    path.write_text("called,caller_present,call_data\n" + "".join(r + "\n" for r in rows))


def _final_lines(path: Path) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [line for line in lines if "status" in line]


def test_batch_job_resumes_after_sigkill(served: EmulatorServer, tmp_path: Path) -> None:
    """A job killed mid-run and re-run writes each row once and sends nothing twice."""
    emulator = served.app
    emulator.latency = 0.02
    rows = [f"{n},95599," for n in numbers(400)]
    source, out = tmp_path / "in.csv", tmp_path / "out.jsonl"
    _write_csv(source, rows)
    command = [sys.executable, "-m", "ccmessaging_async.cli", "batch", str(source)]
    command += ["--out", str(out), "--concurrency", "20"]
    with subprocess.Popen(command, env=_env(served), stdout=subprocess.DEVNULL) as process:
        try:
            # kill it mid-run, with calls in flight
            assert emulator.wait_for_calls(60, timeout=60)
            os.kill(process.pid, signal.SIGKILL)
        finally:
            process.wait(30)
    first_run = len(emulator.calls)
    assert 0 < first_run < 400
    emulator.latency = 0.0
    done = subprocess.run(command, env=_env(served), capture_output=True, text=True, check=False)
    assert done.returncode in (0, 1), done.stderr
    finals = _final_lines(out)
    assert sorted(int(str(f["row"])) for f in finals) == list(range(400))
    assert emulator.duplicates() == {}
    succeeded = [f for f in finals if f["status"] == "succeeded"]
    unknown = [f for f in finals if f["status"] == "unknown"]
    assert len(succeeded) + len(unknown) == 400
    # unknown rows were interrupted in flight: each was sent at most once, never re-sent
    assert len(emulator.calls) <= 400
    assert len(emulator.calls) >= len(succeeded)


def _use(server: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in _env(server).items():
        if key.startswith("CCMESSAGING_"):
            monkeypatch.setenv(key, value)


def test_interrupted_rows_are_resent_only_on_request(
    served: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows left 'sending' become unknown on resume; --resend-unknown sends them again."""
    _use(served, monkeypatch)
    emulator = served.app
    source, out = tmp_path / "in.csv", tmp_path / "out.jsonl"
    _write_csv(source, [f"{n},," for n in numbers(3)])
    out.write_text('{"row": 1, "line": 3, "event": "sending"}\n{"row": 0, "li')  # torn line
    assert main(["batch", str(source), "--out", str(out)]) == 1  # one outcome is unknown
    finals = {int(str(f["row"])): f for f in _final_lines(out)}
    assert {row: f["status"] for row, f in finals.items()} == {
        0: "succeeded",
        1: "unknown",
        2: "succeeded",
    }
    assert (finals[1]["line"], finals[1]["called"]) == (3, numbers(3)[1])
    assert emulator.calls_for(numbers(3)[1]) == 0
    assert main(["batch", str(source), "--out", str(out), "--resend-unknown"]) == 0
    assert emulator.calls_for(numbers(3)[1]) == 1
    assert len(emulator.calls) == 3


def test_malformed_rows_get_error_outcomes(
    served: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bad CSV rows get a failed line naming their line number; good rows are sent."""
    _use(served, monkeypatch)
    source, out = tmp_path / "in.csv", tmp_path / "out.jsonl"
    _write_csv(source, ["13900000001,,", ",95599,", "1" * 40 + ",,", "13900000002,1,2,extra"])
    assert main(["batch", str(source), "--out", str(out)]) == 1
    finals = {int(str(f["line"])): f for f in _final_lines(out)}
    assert finals[2]["status"] == "succeeded"
    for line in (3, 4, 5):
        assert finals[line]["status"] == "failed"
        assert "InvalidRequestError" in str(finals[line]["error"])
    assert len(served.app.calls) == 1


def test_jsonl_input(
    served: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JSONL input works like CSV, bad JSON lines included."""
    _use(served, monkeypatch)
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text('{"called": "13900000001", "caller_present": "95599"}\n{oops\n\n[1]\n')
    assert main(["batch", str(source), "--out", str(out)]) == 1
    statuses = sorted(str(f["status"]) for f in _final_lines(out))
    assert statuses == ["failed", "failed", "succeeded"]


def test_unknown_outcome_is_recorded_not_resent(
    served: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection dropped after the platform acted gives an unknown line, sent once."""
    _use(served, monkeypatch)
    served.app.drop_connection("13900000001", DropPoint.AFTER_RECORD)
    source, out = tmp_path / "in.csv", tmp_path / "out.jsonl"
    _write_csv(source, ["13900000001,,", "13900000002,,"])
    assert main(["batch", str(source), "--out", str(out)]) == 1
    assert main(["batch", str(source), "--out", str(out)]) == 0  # resume: nothing left
    finals = {str(f["called"]): f["status"] for f in _final_lines(out)}
    assert finals == {"13900000001": OutcomeStatus.UNKNOWN.value, "13900000002": "succeeded"}
    assert served.app.calls_for("13900000001") == 1


def test_call_command_prints_json(
    served: EmulatorServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`call` prints the result as JSON and exits 0; a bad number exits non-zero."""
    _use(served, monkeypatch)
    assert main(["call", "--called", "88884432", "--caller-present", "95599"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["result_code"] == "0"
    assert printed["access_code"]
    assert main(["call", "--called", ""]) == 1
    assert "InvalidRequestError" in capsys.readouterr().err


def test_call_command_names_missing_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without credentials in the environment `call` fails with a clear message."""
    monkeypatch.delenv("CCMESSAGING_BASE_URL", raising=False)
    assert main(["call", "--called", "1"]) == 2


def test_demo_exits_zero() -> None:
    """The README's first command succeeds: every demo call is created once."""
    done = subprocess.run(
        [sys.executable, "-m", "ccmessaging_async.cli", "demo", "--calls", "200"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "200 succeeded" in done.stdout
    assert "0 numbers called twice" in done.stdout


def test_summary_percentiles_use_flat_memory() -> None:
    """The batch summary's latency percentiles are right to about 1% from a few buckets."""
    from ccmessaging_async import CallOutcome  # noqa: PLC0415
    from ccmessaging_async.cli._job import Summary  # noqa: PLC0415

    summary = Summary()
    request = CreateCallRequest(called="1")
    for i in range(1, 10_001):
        summary.add(
            CallOutcome(
                index=i,
                request=request,
                status=OutcomeStatus.SUCCEEDED,
                attempts=1,
                latency=i / 10_000,
            )
        )
    assert summary.percentile(0.5) == pytest.approx(0.5, rel=0.01)
    assert summary.percentile(0.99) == pytest.approx(0.99, rel=0.01)
    assert len(summary.latency_buckets) < 1000
