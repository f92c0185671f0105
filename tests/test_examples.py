"""Every program in ``examples/`` runs as written against the emulator, so none can rot."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from ccmessaging_async.testing import DropPoint, Emulator, EmulatorServer
from tests._helpers import emulator_env, run_pytest

pytestmark = [pytest.mark.e2e]

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def served() -> Iterator[EmulatorServer]:
    with EmulatorServer(Emulator()) as server:
        yield server


def run(served: EmulatorServer, name: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    """Run ``examples/name`` as a user would, with the CCMESSAGING_* variables set."""
    emulator = served.app
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *arguments],
        env=emulator_env(served.url, emulator.app_key, emulator.app_secret),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_example_is_run_here() -> None:
    """A new example without a test here fails this test."""
    tested = {
        "first_call.py",
        "asyncio_service.py",
        "batch_with_progress.py",
        "web_service.py",
        "test_dialer.py",
    }
    assert {path.name for path in EXAMPLES.glob("*.py")} == tested


def test_the_first_program_creates_one_call(served: EmulatorServer) -> None:
    done = run(served, "first_call.py", "88884432")
    assert done.returncode == 0, done.stderr
    serial = served.app.calls[0].serial_no
    assert done.stdout.startswith(f"created: serial {serial}")
    served.app.result_codes["88884433"] = "30010010002"
    refused = run(served, "first_call.py", "88884433")
    assert refused.returncode == 1
    assert "not created" in refused.stderr


def test_the_asyncio_service_handles_each_meaning(served: EmulatorServer) -> None:
    emulator = served.app
    emulator.result_codes["88880002"] = "30010010002"
    emulator.drop_connection("88880003", DropPoint.AFTER_RECORD)
    done = run(served, "asyncio_service.py", "88880001", "88880002", "88880003")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("88880001 created")
    assert lines[1].startswith("88880002 not created (ResultCodeError)")
    assert lines[2].startswith("88880003 unknown")
    assert emulator.duplicates() == {}


def test_the_batch_prints_progress_and_creates_every_call(served: EmulatorServer) -> None:
    done = run(served, "batch_with_progress.py", "250")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "100/250: 100 created, 0 not created, 0 unknown",
        "200/250: 200 created, 0 not created, 0 unknown",
        "250/250: 250 created, 0 not created, 0 unknown",
    ]
    assert len(served.app.calls) == 250


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_web_service_answers_by_what_the_outcome_means(
    served: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    testclient = pytest.importorskip("fastapi.testclient")
    emulator = served.app
    for key, value in emulator_env(served.url, emulator.app_key, emulator.app_secret).items():
        if key.startswith("CCMESSAGING_"):
            monkeypatch.setenv(key, value)
    emulator.result_codes["88880002"] = "30010010002"
    emulator.drop_connection("88880003", DropPoint.AFTER_RECORD)
    service = _load("web_service")
    with testclient.TestClient(service.app) as client:  # runs the lifespan: one session
        created = client.post("/calls", json={"called": "88880001"})
        refused = client.post("/calls", json={"called": "88880002"})
        unknown = client.post("/calls", json={"called": "88880003"})
        invalid = client.post("/calls", json={"called": ""})
    assert created.status_code == 201
    assert created.json()["call_serial_no"] == emulator.calls[0].serial_no
    assert (refused.status_code, refused.json()["error"]) == (503, "ResultCodeError")
    assert (unknown.status_code, unknown.json()["created"]) == (502, None)
    assert invalid.status_code == 422
    assert emulator.token_requests == 1  # one session for the app's life


def test_the_example_test_file_passes(tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "test_dialer.py", tmp_path)
    done = run_pytest(tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "4 passed" in done.stdout  # two tests, on asyncio and on trio
