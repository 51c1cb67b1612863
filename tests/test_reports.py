"""The committed reports equal a fresh regeneration (pytest --update-golden rewrites them).

The reports are built once per session (the cross-check of every preset is most of the suite's
time) and shared by the golden test and the CLI test."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from costlab.app.reports import build_reports

REPORTS = Path(__file__).resolve().parent.parent / "reports"
BUILT = tuple(build_reports())


@pytest.mark.parametrize("file", BUILT, ids=lambda f: f.path)
def test_committed_report_equals_a_fresh_regeneration(file, golden) -> None:
    golden(REPORTS / file.path, file.text)


def test_reports_regenerate_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`costlab report` writes exactly what build_reports makes (built once, above)."""
    import costlab.app.reports
    from costlab.app.cli import main

    monkeypatch.setattr(costlab.app.reports, "build_reports", lambda *args, **kwargs: list(BUILT))
    out = io.StringIO()
    assert main(["report", "--output-dir", str(tmp_path)], stdout=out) == 0
    for file in BUILT:
        assert (tmp_path / file.path).read_text(encoding="utf-8") == file.text
