"""README.md opens with the two commands a newcomer runs, and .ci/run runs exactly those."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert first_block, "README.md has no bash block"
    return [line for line in first_block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_install_and_compare_then_tests() -> None:
    install, tests = readme_commands()[:2]
    assert "pip install torch==2.13.0" in install and install.endswith("costlab compare")
    assert install.index("torch==2.13.0") < install.index('pip install -e ".[test]"')
    assert tests == "python -m pytest --measured"  # the quick suite and the tests that measure (tests/conftest.py)


def test_ci_runs_exactly_the_readme_commands() -> None:
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    for command in readme_commands()[:2]:
        assert command in ci_lines
