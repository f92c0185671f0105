"""README's test examples pass as written: copied into a file and run by pytest."""

from __future__ import annotations

import re
from pathlib import Path

from tests._helpers import run_pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_test_examples() -> list[str]:
    """The README's Python blocks that are tests themselves (they define ``test_*``)."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    return [block for block in blocks if re.search(r"^async def test_|^def test_", block, re.M)]


def test_readmes_test_examples_pass_as_written(tmp_path: Path) -> None:
    examples = readme_test_examples()
    assert len(examples) >= 3  # the plugin fixtures, respx and pytest-httpx
    for number, example in enumerate(examples):
        (tmp_path / f"test_readme_example_{number}.py").write_text(example)
    run = run_pytest(tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    summary = run.stdout.strip().splitlines()[-1]
    passed = re.match(r"(\d+) passed in", summary)
    assert passed, summary  # nothing skipped, failed or errored
    assert int(passed.group(1)) >= len(examples)


def test_readme_has_no_relative_links() -> None:
    """README is the package's page on PyPI, where a link into the repository is dead."""
    relative = re.findall(r"\]\((?!https?://|#)([^)]*)\)", README.read_text())
    assert relative == []
