"""The output formats are one enum the renderers and the CLI read; the recipe for adding a format in
docs/architecture.md names files that exist."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from costlab.app import cli
from costlab.render.formats import CLI_FORMAT_NAMES, CLI_FORMATS, Format

ROOT = Path(__file__).resolve().parent.parent
FORMAT_NAMES = [f.value for f in Format]
#: A format compared as a bare string: fmt == "md", view.fmt != "csv", fmt in ("table", "md").
BARE = re.compile(r"""\bfmt\b\s*(?:[=!]=|(?:not\s+)?in)\s*\(?\s*["'](?:%s)["']""" % "|".join(FORMAT_NAMES))


def _format_choices(parser: argparse.ArgumentParser) -> list[tuple[str, list[str]]]:
    found = []
    for action in parser._actions:
        if "--format" in action.option_strings:
            found.append((parser.prog, list(action.choices or ())))
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += _format_choices(sub)
    return found


def test_the_clis_format_choices_are_the_enums() -> None:
    choices = _format_choices(cli.build_parser())
    assert choices, "no --format found"
    assert all(names == list(CLI_FORMAT_NAMES) for _, names in choices), choices
    assert CLI_FORMAT_NAMES == tuple(f.value for f in CLI_FORMATS) and set(CLI_FORMATS) <= set(Format)


def test_no_format_is_checked_by_a_bare_string() -> None:
    offenders = []
    for path in sorted((ROOT / "costlab").rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if BARE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_a_format_is_its_string() -> None:
    assert Format.MD == "md" and Format("csv") is Format.CSV and str(Format.JSON) == "json"


def test_the_recipes_name_files_that_exist() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for heading in ("## Features", "### Add an output format"):
        section = text[text.index(heading):]
        section = section[:section.find("\n## ", 1)] if "\n## " in section[1:] else section
        paths = set(re.findall(r"`((?:costlab|docs|tests)/[\w/]+\.(?:py|md))`", section))
        assert paths, heading
        missing = [p for p in sorted(paths) if not (ROOT / p).exists()]
        assert missing == [], heading
    for name in ("render_analysis", "render_comparison", "preset_list", "render_peaks", "render_sweep",
                 "render_claims", "CLI_FORMATS", "@register"):
        assert name in text, name
