"""The package as built and imported: its version, its import cost, what its sdist carries."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import ccmessaging_async
from ccmessaging_async.jobs._errors import storage_errors
from tests._helpers import run_pytest

ROOT = Path(__file__).resolve().parent.parent


def test_the_version_is_the_installed_distributions() -> None:
    assert ccmessaging_async.__version__ == importlib.metadata.version("ccmessaging-async")


def test_importing_the_package_does_not_load_importlib_metadata_nor_psycopg() -> None:
    """Each cost tens of milliseconds of every start.

    ``importlib.metadata`` only for ``__version__``; psycopg only for its errors, in a job
    file's run (about 80 ms of each ``batch`` process).
    """
    program = (
        "import sys, ccmessaging_async, ccmessaging_async.cli\n"
        "from ccmessaging_async.jobs._errors import storage_errors\n"
        "storage_errors()\n"
        "print(sorted(sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    ).stdout
    assert "'importlib.metadata'" not in loaded
    assert "'psycopg'" not in loaded


def test_a_job_in_postgresql_stops_on_psycopgs_errors() -> None:
    psycopg = pytest.importorskip("psycopg")
    assert psycopg.Error in storage_errors()


def test_the_sdist_carries_the_package_tests_and_documents_only(tmp_path: Path) -> None:
    sdist = pytest.importorskip("hatchling.builders.sdist")
    built = next(sdist.SdistBuilder(str(ROOT)).build(directory=str(tmp_path)))
    with tarfile.open(built) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"pyproject.toml", "README.md", "CHANGELOG.md", "LICENSE"} <= names
    assert "ccmessaging_async/py.typed" in names
    assert "tests/conftest.py" in names
    assert {"docs/SPEC.md", "examples/first_call.py", "tests/requirements.txt"} <= names
    assert not [n for n in names if n.startswith((".ci/", "benchmarks/", ".git/", ".venv"))]


def test_the_wheel_carries_the_plugin_module_and_its_entry_point(tmp_path: Path) -> None:
    wheel = pytest.importorskip("hatchling.builders.wheel")
    built = next(wheel.WheelBuilder(str(ROOT)).build(directory=str(tmp_path)))
    with zipfile.ZipFile(built) as archive:
        names = set(archive.namelist())
        entry_points = next(
            archive.read(name).decode() for name in names if name.endswith("entry_points.txt")
        )
        metadata = next(
            archive.read(name).decode() for name in names if name.endswith(".dist-info/METADATA")
        )
    # Only what users install for a feature: the tools to test, lint and benchmark are
    # requirement files of the repository, not extras.
    extras = set(re.findall(r"^Provides-Extra: (\S+)$", metadata, re.M))
    assert extras == {"aiohttp", "cli", "http2", "otel", "phone", "postgres"}
    assert "Classifier: Development Status :: 3 - Alpha" in metadata
    assert re.search(r"^Keywords: .*createcall", metadata, re.M)
    assert "ccmessaging_async_pytest.py" in names
    assert "ccmessaging_async/py.typed" in names
    assert not [name for name in names if name.startswith(("tests/", "benchmarks/"))]
    assert "ccmessaging_async = ccmessaging_async_pytest" in entry_points


@pytest.mark.slow
def test_a_pytest_run_that_uses_no_fixture_of_ours_does_not_import_the_sdk(
    tmp_path: Path,
) -> None:
    """Every installed plugin is loaded in every run: ours must cost nothing unused."""
    (tmp_path / "test_other.py").write_text(
        "import sys\n\n"
        "def test_elsewhere():\n"
        "    assert 'ccmessaging_async_pytest' in sys.modules  # the plugin is loaded\n"
        "    assert 'ccmessaging_async' not in sys.modules\n"
    )
    (tmp_path / "test_ours.py").write_text(
        "import pytest\n"
        "from ccmessaging_async import CreateCallRequest\n\n"
        "@pytest.mark.anyio\n"
        "async def test_dialer(ccmessaging_session, ccmessaging_emulator):\n"
        "    await ccmessaging_session.create_call(CreateCallRequest(called='88884432'))\n"
        "    assert ccmessaging_emulator.calls_for('88884432') == 1\n"
    )
    for test in ("test_other.py", "test_ours.py"):
        run = run_pytest(tmp_path, test)
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]


def test_the_fixtures_still_load_under_their_first_module_name() -> None:
    import ccmessaging_async_pytest  # noqa: PLC0415
    from ccmessaging_async.testing import pytest_plugin  # noqa: PLC0415

    for name in ccmessaging_async_pytest.__all__:
        assert getattr(pytest_plugin, name) is getattr(ccmessaging_async_pytest, name)


@pytest.mark.slow
def test_the_sdk_imports_and_calls_with_httpcore_and_aiohttp_as_bytecode_only(
    tmp_path: Path,
) -> None:
    """Some distributions and frozen apps ship .pyc files only: no upstream source to read."""
    import aiohttp  # noqa: PLC0415 - installed with the test requirements
    import httpcore  # noqa: PLC0415

    for package in (httpcore, aiohttp):
        source = Path(package.__file__ or "").parent
        copy = tmp_path / source.name
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__"))
        subprocess.run(
            [sys.executable, "-m", "compileall", "-b", "-q", str(copy)], check=True, timeout=120
        )
        for path in copy.rglob("*.py"):
            path.unlink()
    program = (
        "import anyio, httpcore, aiohttp\n"
        "assert httpcore.__file__.endswith('.pyc') and aiohttp.__file__.endswith('.pyc')\n"
        "from ccmessaging_async import AsyncSession, CreateCallRequest, aiohttp_transport\n"
        "from ccmessaging_async.testing import Emulator, EmulatorServer\n"
        "async def main(url, emulator):\n"
        "    for transport in (None, aiohttp_transport()):\n"
        "        async with AsyncSession(url, emulator.app_key, emulator.app_secret,\n"
        "                                transport=transport) as session:\n"
        "            await session.create_call(CreateCallRequest(called='88881234'))\n"
        "with EmulatorServer(Emulator()) as server:\n"
        "    anyio.run(main, server.url, server.app)\n"
        "    assert len(server.app.calls) == 2\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok"
