"""Every command the README shows runs (in a scratch directory, at 80 columns): an example whose
extra is not installed is skipped with the extra it needs."""

from __future__ import annotations

import importlib.util
import io
import re
import shlex
from pathlib import Path

import pytest

from costlab.app.cli import main

ROOT = Path(__file__).resolve().parent.parent
#: What an example needs beyond `pip install -e .[test]`: (argument pattern, module, extra).
NEEDS = ((r"^torchvision\.", "torchvision", "vision"), (r"^--plot$", "matplotlib", "plot"),
         (r"^hf:", "transformers", "hf"))
#: Commands whose terminal tables must fit the 80 columns.
FITTED = ("compare", "analyze", "list", "claims")


def readme_examples() -> list[list[str]]:
    """The `costlab …` lines of the README's bash blocks after the first (install and test)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)[1:]
    return [shlex.split(line, comments=True)[1:] for block in blocks for line in block.splitlines()
            if line.startswith("costlab ")]


def test_the_readme_has_examples() -> None:
    commands = {argv[0] for argv in readme_examples()}
    assert {"compare", "analyze", "sweep", "list", "claims", "report", "calibrate", "help"} <= commands


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch working directory, an 80-column terminal, a private peaks cache and a small calibration."""
    from costlab.torch_bridge import roofline

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("COSTLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setitem(roofline.MATMUL_SIZE, "cpu", 128)   # calibrate quickly: these figures are not kept
    monkeypatch.setitem(roofline.COPY_BYTES, "cpu", 2**20)
    return tmp_path


@pytest.mark.parametrize("argv", readme_examples(), ids=lambda argv: " ".join(argv)[:60])
def test_readme_example_runs(argv: list[str], scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if argv[0] == "report":  # tests/test_reports.py regenerates every report through the CLI already;
        from costlab.app import reports  # here only the command and its default directory are exercised

        monkeypatch.setattr(reports, "build_reports", lambda **_: [reports.ReportFile("README.md", "# reports\n")])
        monkeypatch.setattr("costlab.app.plots.build_pictures", lambda **_: {})  # drawn in tests/test_plots.py
    argv = [arg.replace("hf:examples/", f"hf:{ROOT}/examples/") for arg in argv]  # run from a scratch directory
    for pattern, module, extra in NEEDS:
        if any(re.match(pattern, arg) for arg in argv) and importlib.util.find_spec(module) is None:
            pytest.skip(f"needs the [{extra}] extra (pip install -e '.[{extra}]'): {module} is not installed")
    out, err = io.StringIO(), io.StringIO()
    code = main(argv + (["--quiet"] if "--latency" in argv or argv[0] == "calibrate" else []), out, err)
    assert (code, err.getvalue()) == (0, ""), argv
    assert out.getvalue()
    if argv[0] in FITTED and "--wide" not in argv and "--format" not in argv:
        too_long = [line for line in out.getvalue().splitlines() if len(line) > 80]
        assert not too_long, too_long
    if "--plot" in argv:
        assert (scratch / argv[argv.index("--plot") + 1]).read_bytes().startswith(b"\x89PNG")
    if argv[0] == "report":
        assert (scratch / "reports" / "README.md").is_file()  # the default directory, created
