"""Shared test options: ``--update-golden`` rewrites the golden files instead of comparing."""

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
                     help="rewrite tests/golden/ and reports/ from a fresh run instead of comparing")


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
