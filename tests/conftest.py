"""Shared fixtures: both anyio backends and a respx router on loopback."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import respx
from hypothesis import settings

from tests._fake_clock import fake_clock_options
from tests._helpers import BASE_URL


def _bytecode_cached_outside_the_checkout() -> None:
    """Where ``PYTHONDONTWRITEBYTECODE`` is set, cache bytecode under the temp dir instead.

    The variable keeps ``__pycache__`` out of the checkout. But the suite starts about a
    hundred Python processes (the console script) and a worker per half core, and each
    then compiled the package and rewrote the test plugins' asserts again: about 15 s of
    a run on 2 cores. A cache prefix outside the checkout keeps both. Set here, before
    pytest-xdist starts its workers, which inherit it, as do the processes tests start.
    """
    if os.environ.get("PYTHONDONTWRITEBYTECODE") and not os.environ.get("PYTHONPYCACHEPREFIX"):
        del os.environ["PYTHONDONTWRITEBYTECODE"]
        os.environ["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir(), "ccmessaging-pycache"))


_bytecode_cached_outside_the_checkout()

# No per-example deadline: on a shared, loaded machine a slow example is not a failure.
settings.register_profile("ccmessaging", deadline=None)
settings.load_profile("ccmessaging")

# The installed pytest11 entry point would import the SDK before coverage starts; pyproject
# turns it off (-p no:ccmessaging_async) and the plugin is loaded here instead, measured.
pytest_plugins = ["ccmessaging_async_pytest"]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str | tuple[str, dict[str, Any]]:
    """Run every async test on asyncio and on trio (with a fake clock where marked)."""
    name = str(request.param)
    if request.node.get_closest_marker("fake_clock") is None:
        return name
    return name, fake_clock_options(name)


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    """A respx router for the loopback base URL; unmatched requests fail the test."""
    with respx.mock(base_url=BASE_URL, assert_all_called=False) as mock:
        yield mock


class _FaultRowsFromWorkers:
    """The fault scenarios pytest-xdist's workers ran, gathered by the controller."""

    @pytest.hookimpl
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """Gather the fault scenarios a worker ran (pytest-xdist's hook)."""
        del error
        from tests._report import ROWS  # noqa: PLC0415 - only when the suite ran

        ROWS.extend(tuple(row) for row in getattr(node, "workeroutput", {}).get("fault_rows", []))


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """Two workers per core for ``-n auto``: many tests wait, on a socket or a process."""
    del config
    return (
        2 * len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else 2 * (os.cpu_count() or 1)
    )


def pytest_configure(config: pytest.Config) -> None:
    """With pytest-xdist, gather the workers' fault scenarios for the summary table."""
    if config.pluginmanager.hasplugin("xdist") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(_FaultRowsFromWorkers())


def pytest_sessionfinish(session: pytest.Session) -> None:
    """In a pytest-xdist worker, hand the fault scenarios it ran to the controller."""
    from tests._report import ROWS  # noqa: PLC0415 - only when the suite ran

    output = getattr(session.config, "workeroutput", None)
    if output is not None:
        output["fault_rows"] = [list(row) for row in ROWS]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the fault-injection scenario table when fault scenarios ran."""
    from tests._report import ROWS, table  # noqa: PLC0415 - only when the suite ran

    if ROWS:
        ROWS.sort(key=lambda row: (int(row[0].split(".")[0]), row[0]))  # 1., 2., ... 10.
        terminalreporter.section("fault-injection scenarios")
        terminalreporter.write_line(table())


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | None]:
    """Where a job lives, and its name: a job file, or a job in PostgreSQL (both stores)."""
    if request.param == "sqlite":
        return str(tmp_path / "calls.job"), None
    url: str = request.getfixturevalue("postgres_url")
    return url, f"job-{secrets.token_hex(4)}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database of this test run's own (skipped without a server, but in CI)."""
    from tests._postgres import own_database  # noqa: PLC0415 - only the tests that need it

    with own_database() as url:
        yield url
