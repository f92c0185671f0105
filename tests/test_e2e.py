"""End to end over real loopback sockets: the emulator served by uvicorn, the CLI, the demo."""

from __future__ import annotations

import itertools
import json
import statistics
import subprocess
import sys
from collections.abc import Iterator

import anyio
import pytest

from ccmessaging_async import AsyncSession, CreateCallRequest
from ccmessaging_async.cli import ExitCode, main
from ccmessaging_async.testing import DropPoint, Emulator, EmulatorServer
from tests._helpers import emulator_env

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
    # Arrival times carry the loop's and the server thread's jitter (one late arrival
    # shortens the span between the first and the last): the rate is read from the median
    # gap, which a burst would still drive towards zero.
    times = sorted(call.at for call in emulator.calls)
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    observed = 1 / statistics.median(gaps)
    assert observed <= 50 * 1.15


def _use(server: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    env = emulator_env(server.url, server.app.app_key, server.app.app_secret)
    for key, value in env.items():
        if key.startswith("CCMESSAGING_"):
            monkeypatch.setenv(key, value)


def test_call_command_prints_json(
    served: EmulatorServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`call` prints the result as JSON and exits 0; a bad number exits non-zero."""
    _use(served, monkeypatch)
    assert main(["call", "--called", "88884432", "--caller-present", "95599"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["result_code"] == "0"
    assert printed["access_code"]
    assert main(["call", "--called", ""]) == ExitCode.NOT_CREATED
    assert "InvalidRequestError" in capsys.readouterr().err


def test_call_exit_code_says_whether_the_call_may_exist(
    served: EmulatorServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`call` exits 1 when the call was certainly not created and 3 when it may exist."""
    _use(served, monkeypatch)
    served.app.result_codes["13900000001"] = "30010010002"
    served.app.drop_connection("13900000002", DropPoint.AFTER_RECORD)
    assert main(["call", "--called", "13900000001"]) == ExitCode.NOT_CREATED
    assert "ResultCodeError" in capsys.readouterr().err
    assert main(["call", "--called", "13900000002"]) == ExitCode.UNKNOWN
    assert "ConnectionLostError" in capsys.readouterr().err
    assert served.app.calls_for("13900000002") == 1


def test_call_command_names_missing_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without credentials in the environment `call` fails with a clear message."""
    monkeypatch.delenv("CCMESSAGING_BASE_URL", raising=False)
    assert main(["call", "--called", "1"]) == ExitCode.USAGE


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
