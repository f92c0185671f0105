"""README and docs/ as written: their test examples pass, their first program runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from ccmessaging_async.testing import Emulator, EmulatorServer
from tests._helpers import emulator_env, run_pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCUMENTS = [README, *sorted((ROOT / "docs").glob("*.md"))]


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def doc_tests() -> list[str]:
    """The Python blocks of README and docs/ that are tests themselves (define ``test_*``)."""
    return [
        block
        for path in DOCUMENTS
        for block in python_blocks(path.read_text())
        if re.search(r"^async def test_|^def test_", block, re.M)
    ]


def test_the_documents_test_examples_pass_as_written(tmp_path: Path) -> None:
    examples = doc_tests()
    assert len(examples) >= 4  # the plugin fixtures, respx, pytest-httpx, telemetry
    for number, example in enumerate(examples):
        (tmp_path / f"test_doc_example_{number}.py").write_text(example)
    run = run_pytest(tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    summary = run.stdout.strip().splitlines()[-1]
    passed = re.match(r"(\d+) passed in", summary)
    assert passed, summary  # nothing skipped, failed or errored
    assert int(passed.group(1)) >= len(examples)


@pytest.mark.e2e
def test_the_readmes_first_program_runs_against_the_emulator(tmp_path: Path) -> None:
    section = README.read_text().split("## A first program", 1)[1]
    program = python_blocks(section)[0]
    path = tmp_path / "first_call.py"
    path.write_text(program)
    with EmulatorServer(Emulator()) as server:
        emulator = server.app
        done = subprocess.run(
            [sys.executable, str(path)],
            env=emulator_env(server.url, emulator.app_key, emulator.app_secret),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.split()[0] == emulator.calls[0].serial_no


def test_readme_has_no_relative_links() -> None:
    """README is the package's page on PyPI, where a link into the repository is dead."""
    relative = re.findall(r"\]\((?!https?://|#)([^)]*)\)", README.read_text())
    assert relative == []


def test_every_spec_section_the_code_cites_is_in_docs() -> None:
    """The code cites "SPEC section N": docs/SPEC.md has each such section."""
    cited = {
        int(number)
        for path in (ROOT / "ccmessaging_async").rglob("*.py")
        for number in re.findall(r"SPEC\s+section\s+(\d+)", path.read_text())
    }
    headings = {
        int(number)
        for number in re.findall(r"^## (\d+)\. ", (ROOT / "docs" / "SPEC.md").read_text(), re.M)
    }
    assert cited
    assert cited <= headings
