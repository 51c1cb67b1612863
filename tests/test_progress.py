"""Progress bars (tqdm, costlab.app.cli._progress_bar): drawn on stderr only when it is a terminal, for
sweeps (per point), --check (per target and tool) and `costlab report` (per report and picture)."""

from __future__ import annotations

import io

import pytest

from costlab.app.cli import main


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(argv: list[str], err: io.StringIO) -> tuple[int, str]:
    out = io.StringIO()
    return main(argv, stdout=out, stderr=err), out.getvalue()


SWEEP = ["sweep", "conv1x1:{w} > conv5x5:32", "--param", "w=4:16:4", "--input", "192x28x28"]


def test_sweep_bar_on_a_terminal_only() -> None:
    terminal = Terminal()
    code, out = run(SWEEP, terminal)
    assert code == 0 and "sweep" in terminal.getvalue() and "/4 [" in terminal.getvalue()
    captured = io.StringIO()
    code, same = run(SWEEP, captured)
    assert code == 0 and captured.getvalue() == "" and same == out  # the result is the same either way
    quiet = Terminal()
    assert run(SWEEP + ["--quiet"], quiet) == (0, out) and quiet.getvalue() == ""


def test_check_bar_counts_targets_times_tools() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("fvcore")
    terminal = Terminal()
    code, _ = run(["compare", "conv3x3:4", "conv1x1:4", "--input", "3x8x8", "--check", "fvcore,torch"], terminal)
    assert code == 0 and "--check" in terminal.getvalue() and "/4 [" in terminal.getvalue()


def test_report_bar_counts_reports(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from costlab.app import plots, reports

    def fake_reports(progress=None):  # type: ignore[no-untyped-def]
        for make in reports.REPORTS:
            if progress is not None:
                progress(make.__name__)
        return [reports.ReportFile("README.md", "# r\n")]

    monkeypatch.setattr(reports, "build_reports", fake_reports)
    monkeypatch.setattr(plots, "plotting_available", lambda: False)
    terminal = Terminal()
    code, out = run(["report", "--output-dir", str(tmp_path)], terminal)
    total = len(reports.REPORTS)
    assert code == 0 and f"/{total} [" in terminal.getvalue()
    assert out.endswith('pictures not redrawn: matplotlib is not installed (pip install -e ".[plot]")\n')
