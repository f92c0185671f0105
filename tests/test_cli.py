"""The console script explains itself: version, help on every option, clear refusals."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from ccmessaging_async import AsyncSession, ConfigurationError, __version__
from ccmessaging_async.cli import ExitCode, main
from ccmessaging_async.cli._parser import build_parser
from ccmessaging_async.testing import Emulator, EmulatorServer


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.strip() == f"ccmessaging-async {__version__}"


@pytest.mark.parametrize("module", ["ccmessaging_async", "ccmessaging_async.cli"])
def test_python_dash_m_runs_the_console_script(module: str) -> None:
    """`python -m ccmessaging_async` (and `.cli`) is the console script."""
    done = subprocess.run(
        [sys.executable, "-m", module, "--version"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"ccmessaging-async {__version__}"


_WITHOUT_POSIX = """
import signal, sys
sys.modules["fcntl"] = None  # as on Windows: no fcntl, no signal masks, no SIGXFSZ
del signal.pthread_sigmask, signal.SIGXFSZ
from ccmessaging_async.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_the_console_script_runs_where_posix_is_missing_and_says_what_needs_it(
    tmp_path: Path,
) -> None:
    """Without fcntl and signal masks (Windows), ``--version`` works; ``batch`` says why not."""
    version = subprocess.run(
        [sys.executable, "-c", _WITHOUT_POSIX, "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert version.returncode == 0, version.stderr
    assert __version__ in version.stdout
    source = tmp_path / "calls.csv"
    source.write_text("called\n13800000001\n")
    batch = subprocess.run(
        [sys.executable, "-c", _WITHOUT_POSIX, "batch", str(source), "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert batch.returncode == ExitCode.USAGE, batch.stderr
    assert "batch jobs need a POSIX system (Linux, macOS, WSL)" in batch.stderr


def test_every_option_of_every_command_has_help() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
    for name, command in commands.choices.items():
        for action in command._actions:  # noqa: SLF001
            if isinstance(action, argparse._HelpAction):  # noqa: SLF001
                continue
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"


def test_the_emulator_on_a_busy_port_is_refused_before_printing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["emulator", "--port", str(port)]) == ExitCode.USAGE
    captured = capsys.readouterr()
    assert captured.out == ""  # no export lines for a server that never started
    assert f"cannot listen on 127.0.0.1:{port}" in captured.err


@pytest.mark.e2e
def test_a_failed_first_token_says_so_once_without_a_retry_line(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emulator = Emulator()
    with EmulatorServer(emulator) as server:
        monkeypatch.setenv("CCMESSAGING_BASE_URL", server.url)
        monkeypatch.setenv("CCMESSAGING_APP_KEY", emulator.app_key)
        monkeypatch.setenv("CCMESSAGING_APP_SECRET", "not-the-secret")
        with caplog.at_level(logging.WARNING, logger="ccmessaging_async"):
            assert main(["call", "--called", "88884432"]) == ExitCode.NOT_CREATED
    assert "retrying in" not in caplog.text
    assert "rejected the app key/secret (HTTP 401" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["call", "--called", "1"], ["batch", "--out", "x.jsonl"]])
def test_allow_insecure_http_reaches_the_session(
    command: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[object] = []

    def from_env(**options: object) -> AsyncSession:
        seen.append(options.get("allow_insecure_http"))
        raise ConfigurationError("stop here")

    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.csv").write_text("called\n1\n")
    if command[0] == "batch":
        command = ["batch", "in.csv", *command[1:]]
    monkeypatch.setattr(AsyncSession, "from_env", staticmethod(from_env))
    assert main(command) == ExitCode.USAGE
    assert main([*command, "--allow-insecure-http"]) == ExitCode.USAGE
    assert seen == [False, True]


@pytest.mark.parametrize("missing", ["uvicorn", "rich.progress"])
def test_without_the_cli_extra_a_command_says_which_extra_to_install(
    missing: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # as if not installed
    monkeypatch.setattr("ccmessaging_async.cli._progress.stderr_is_terminal", lambda: True)
    assert main(["demo", "--calls", "1"]) == ExitCode.USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: demo needs the cli extra: pip install 'ccmessaging-async[cli]'"]


def test_loop_uvloop_without_uvloop_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)
    assert main(["demo", "--calls", "1", "--loop", "uvloop"]) == ExitCode.USAGE
    assert "pip install uvloop" in capsys.readouterr().err


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_loop_picks_the_event_loop(loop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo runs on the loop asked for (uvloop itself is not a test dependency)."""
    asked: list[object] = []
    real_run = anyio.run

    def run(job: Any, *args: Any, backend: str, backend_options: dict[str, Any]) -> Any:
        asked.append(backend_options["use_uvloop"])
        return real_run(job, *args, backend=backend)

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())
    monkeypatch.setattr(anyio, "run", run)
    assert main(["demo", "--calls", "5", "--loop", loop]) == ExitCode.OK
    assert asked == [loop == "uvloop"]


def test_only_a_job_is_told_to_resume_when_interrupted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C on ``status`` (or the emulator) is "interrupted", not a resume hint."""

    def interrupted(_args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr("ccmessaging_async.cli._status", interrupted)
    assert main(["status", "job.job"]) == ExitCode.INTERRUPTED
    assert capsys.readouterr().err.strip() == "interrupted"


def test_a_plain_http_gateway_is_refused_in_the_words_of_the_command_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The refusal names the option a command-line user can type."""
    monkeypatch.setenv("CCMESSAGING_BASE_URL", "http://gateway.example")
    monkeypatch.setenv("CCMESSAGING_APP_KEY", "key")
    monkeypatch.setenv("CCMESSAGING_APP_SECRET", "secret")
    assert main(["call", "--called", "13800000001"]) == ExitCode.USAGE
    assert "--allow-insecure-http" in capsys.readouterr().err


def test_a_transport_without_its_extra_says_which_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--transport aiohttp`` without aiohttp: the extra to install, not a traceback."""
    monkeypatch.setitem(sys.modules, "aiohttp", None)
    monkeypatch.setenv("CCMESSAGING_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("CCMESSAGING_APP_KEY", "key")
    monkeypatch.setenv("CCMESSAGING_APP_SECRET", "secret")
    source = tmp_path / "in.csv"
    source.write_text("called\n13800000001\n")
    command = ["batch", str(source), "--out", str(tmp_path / "r"), "--transport", "aiohttp"]
    assert main(command) == ExitCode.USAGE
    assert "pip install 'ccmessaging-async[aiohttp]'" in capsys.readouterr().err
