"""The committed reports equal a fresh regeneration (pytest --update-golden rewrites them).

The reports are built once per session, when a test first asks (the cross-check of every preset is
much of their time), and shared by the golden test and the CLI test; nothing is built at collection.
Their headline figures are held apart, from independent arithmetic, in tests/test_golden_figures.py."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from costlab.app.plots import PICTURES
from costlab.app.reports import ReportFile, build_reports

REPORTS = Path(__file__).resolve().parent.parent / "reports"
#: committed reports that measure (`costlab report --latency`, benchmarks/): not rebuilt by the tests
MEASURED = {"latency-inception.md", "latency-separable.md", "latency-augmentation.md", "memory-measured.md",
            "peers.md", "peers.csv"}


@pytest.fixture(scope="session")
def built() -> dict[str, ReportFile]:
    return {file.path: file for file in build_reports()}


def test_committed_reports_equal_a_fresh_regeneration(built: dict[str, ReportFile], golden) -> None:
    for path, file in built.items():
        golden(REPORTS / path, file.text)
    committed = {path.name for path in REPORTS.iterdir() if path.is_file()}
    assert committed - MEASURED - set(PICTURES) == set(built), \
        "a committed report is no longer built, or a new one is not committed"


def test_reports_regenerate_through_the_cli(built: dict[str, ReportFile], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """`costlab report` writes exactly what build_reports makes (built once, above)."""
    import costlab.app.reports
    from costlab.app.cli import main

    monkeypatch.setattr(costlab.app.reports, "build_reports", lambda *args, **kwargs: list(built.values()))
    out = io.StringIO()
    assert main(["report", "--output-dir", str(tmp_path)], stdout=out) == 0
    for file in built.values():
        assert (tmp_path / file.path).read_text(encoding="utf-8") == file.text
    # the pictures, drawn with the [plot] extra (tests/test_plots.py asserts the numbers each draws)
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        assert "pictures not redrawn: matplotlib is not installed" in out.getvalue()
    else:
        for name in PICTURES:
            assert (tmp_path / name).read_bytes().startswith(b"\x89PNG"), name
            assert any(f"]({name})" in file.text for file in built.values()), f"no report shows {name}"
