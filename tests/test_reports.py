"""The committed reports equal a fresh regeneration (pytest --update-golden rewrites them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from costlab.reports import build_reports

REPORTS = Path(__file__).resolve().parent.parent / "reports"


@pytest.mark.parametrize("file", build_reports(), ids=lambda f: f.path)
def test_committed_report_equals_a_fresh_regeneration(file, golden) -> None:
    golden(REPORTS / file.path, file.text)


def test_reports_regenerate_through_the_cli(tmp_path: Path) -> None:
    from costlab.cli import main
    import io

    out = io.StringIO()
    assert main(["report", "--output-dir", str(tmp_path)], stdout=out) == 0
    for file in build_reports():
        assert (tmp_path / file.path).read_text(encoding="utf-8") == file.text
