"""docs/ explains every command and option; the README's sample output is real."""

from __future__ import annotations

import argparse
import io
import re
from pathlib import Path

import pytest

from costlab.app.cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent
CLI_DOC = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


@pytest.mark.parametrize("command", list(_subcommands()))
def test_every_command_is_documented(command: str) -> None:
    assert re.search(rf"costlab {command}\b", CLI_DOC), f"docs/cli.md does not show `costlab {command}`"


@pytest.mark.parametrize("command, option", [
    (name, option) for name, sub in _subcommands().items() for action in sub._actions
    for option in action.option_strings if option.startswith("--") and option != "--help"])
def test_every_option_is_documented(command: str, option: str) -> None:
    assert f"`{option}" in CLI_DOC, f"docs/cli.md does not explain {option} (of costlab {command})"


def test_readme_sample_output_is_what_costlab_compare_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    """All of it, the notes under the table included, as an 80-column terminal shows it."""
    monkeypatch.setenv("COLUMNS", "80")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    out = io.StringIO()
    assert main(["compare"], stdout=out) == 0
    assert f"```\n{out.getvalue()}```" in readme, "README.md's sample output differs from `costlab compare`"


def test_docs_link_each_other() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for doc in ("docs/cli.md", "docs/cost-model.md", "docs/python-api.md"):
        assert (ROOT / doc).exists() and doc in readme
