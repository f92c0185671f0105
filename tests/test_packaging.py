"""The package as built and imported: its version, its import cost, what its sdist carries."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import ccmessaging_async

ROOT = Path(__file__).resolve().parent.parent


def test_the_version_is_the_installed_distributions() -> None:
    assert ccmessaging_async.__version__ == importlib.metadata.version("ccmessaging-async")


def test_importing_the_package_does_not_load_importlib_metadata() -> None:
    """It cost tens of milliseconds of every import, only for ``__version__``."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, ccmessaging_async; print(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "'importlib.metadata'" not in loaded


def test_the_sdist_carries_the_package_tests_and_documents_only(tmp_path: Path) -> None:
    sdist = pytest.importorskip("hatchling.builders.sdist")
    built = next(sdist.SdistBuilder(str(ROOT)).build(directory=str(tmp_path)))
    with tarfile.open(built) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"pyproject.toml", "README.md", "CHANGELOG.md", "LICENSE"} <= names
    assert "ccmessaging_async/py.typed" in names
    assert "tests/conftest.py" in names
    assert not [n for n in names if n.startswith((".ci/", "benchmarks/", ".git/", ".venv"))]
