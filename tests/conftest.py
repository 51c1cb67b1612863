"""Shared test options.

``--measured`` also runs the tests marked ``measures``: those that take real measurements (latency
timings, memory measured by MemTracker). Plain ``python -m pytest`` skips them and stays quick; CI
(`.ci/run`, the README's second command) runs ``python -m pytest --measured``.

``--update-golden`` rewrites the golden files (tests/golden/, the reports under reports/, the rule
tables of docs/cost-model.md) from a fresh run instead of comparing with them. It is for a change of
output made on purpose (a new column, a reworded note): rerun, read the diff, commit. It proves
nothing about the figures in them: each golden file's headline figures are asserted apart, from an
independent derivation (explicit arithmetic, published figures of shared/reference.md), by tests
that --update-golden does not touch (tests/test_golden_figures.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

GOLDEN = Path(__file__).parent / "golden"
ROOT = Path(__file__).resolve().parent.parent


def find_reference() -> Path | None:
    """The project's shared/reference.md (published figures), beside or above the checkout, if present."""
    for folder in [ROOT, *ROOT.parents]:
        candidate = folder / "shared" / "reference.md"
        if candidate.is_file():
            return candidate
    return None


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite tests/golden/ and reports/ from a fresh run instead of comparing "
                          "(for a change of output made on purpose; the headline figures are checked apart)")
    parser.addoption("--measured", action="store_true",
                     help="also run the tests marked `measures` (real timings and memory measurement; "
                          "slow): what CI runs")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without --measured, the tests marked ``measures`` are skipped, with the option named."""
    if config.getoption("--measured"):
        return
    skip = pytest.mark.skip(reason="takes real measurements: run with --measured (CI does)")
    for item in items:
        if "measures" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture
def golden(update_golden: bool) -> Callable[[Path, str], None]:
    """Compare ``text`` with the committed file, or rewrite it under --update-golden."""
    def check(path: Path, text: str) -> None:
        if update_golden:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            return
        assert path.exists(), f"{path} is missing: run pytest --update-golden"
        assert text == path.read_text(encoding="utf-8"), (
            f"{path} differs from a fresh run: run pytest --update-golden if the change is intended")
    return check
