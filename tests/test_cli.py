"""The command line contract: outputs, JSON shape, exit codes, one-line errors, atomic writes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from costlab.app.cli import main
from conftest import GOLDEN

ROOT = Path(__file__).resolve().parent.parent


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_default_compare_is_the_inception_case(golden, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = run("compare")
    assert (code, err) == (0, "")
    assert "120 M" in out and "12.4 M" in out  # 5·5·192·28·28·32 and 1·1·192·28·28·16 + 5·5·16·28·28·32
    assert "2.41 M + 10.0 M" in out and "9.68× fewer" in out
    golden(GOLDEN / "compare_default.txt", out)
    code, out, err = run("compare", "--exact", "--wide")
    assert f"{5 * 5 * 192 * 28 * 28 * 32:,}" in out and f"{192 * 28 * 28 * 16 + 5 * 5 * 16 * 28 * 28 * 32:,}" in out
    assert f"{192 * 28 * 28 * 16:,} + {5 * 5 * 16 * 28 * 28 * 32:,}" in out


def test_headline_cases_as_json() -> None:
    code, out, _ = run("compare", "conv5x5:32", "conv1x1:16 > conv5x5:32", "--input", "192x28x28",
                       "--format", "json")
    data = json.loads(out)
    assert code == 0
    assert [t["macs"] for t in data["targets"]] == [120_422_400, 12_443_648]
    assert [layer["macs"] for layer in data["targets"][1]["layers"]] == [2_408_448, 10_035_200]
    assert data["ratios"][0] == 1.0 and round(data["ratios"][1], 2) == 9.68
    code, out, _ = run("compare", "conv3x3:5,valid", "dw3x3,valid > pw:5", "--input", "3x6x6",
                       "--format", "json")
    data = json.loads(out)
    assert [t["macs"] for t in data["targets"]] == [2160, 672]
    assert [layer["macs"] for layer in data["targets"][1]["layers"]] == [432, 240]


def test_json_follows_the_contract() -> None:
    _, out, _ = run("compare", "resnet18", "conv3x3:8 > relu", "--input", "3x32x32", "--format", "json",
                    "--batch", "2")
    data = json.loads(out)
    assert set(data) == {"unit", "targets", "ratios"} and data["unit"] == "macs"
    ops = {"conv", "linear", "matmul", "norm", "act", "pool", "add", "mul", "concat", "reshape",
           "dropout", "other"}
    for target in data["targets"]:
        assert {"name", "input", "batch", "output", "macs", "params", "ops", "activations",
                "layers"} <= set(target)
        assert target["input"] == [3, 32, 32] and target["batch"] == 2
        assert target["macs"] == sum(layer["macs"] for layer in target["layers"])
        assert target["params"] == sum(layer["params"] for layer in target["layers"])
        for layer in target["layers"]:
            assert {"name", "op", "output", "macs", "params", "ops", "formula"} <= set(layer)
            assert layer["op"] in ops
    assert data["ratios"] == [data["targets"][0]["macs"] / t["macs"] for t in data["targets"]]


def test_flops_unit_doubles_the_count() -> None:
    _, out, _ = run("compare", "--unit", "flops", "--format", "json")
    data = json.loads(out)
    assert data["unit"] == "flops"
    assert [t["flops"] for t in data["targets"]] == [2 * t["macs"] for t in data["targets"]]
    _, text, _ = run("compare", "--unit", "flops", "--exact")
    assert "240,844,800" in text and "FLOPs" in text


def test_csv_and_markdown() -> None:
    _, out, _ = run("compare", "--format", "csv")
    lines = out.splitlines()
    assert lines[0].startswith("target,input,batch,output,macs")
    assert lines[1].split(",")[4] == "120422400"
    _, out, _ = run("compare", "--format", "md", "--per-layer")
    assert "| conv1x1:16 > conv5x5:32 |" in out
    assert "1·1·192 × 28·28·16 = 2,408,448" in out


def test_analyze_depth_subtotals_add_up() -> None:
    _, out, _ = run("analyze", "resnet50", "--depth", "1", "--format", "csv")
    rows = out.splitlines()[1:]
    assert sum(int(r.split(",")[4]) for r in rows) == 4_089_184_256
    assert any(r.startswith("layer3,") for r in rows)


def test_list_shows_every_preset() -> None:
    _, out, _ = run("list", "--format", "json")
    names = [p["name"] for p in json.loads(out)]
    assert names[:2] == ["lenet5", "alexnet"] and "mobilenet-v2" in names and len(names) == 14


def test_output_is_written_atomically(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    code, out, _ = run("compare", "--format", "json", "--output", str(target))
    assert code == 0 and out == ""
    assert json.loads(target.read_text())["targets"][0]["macs"] == 120_422_400
    assert os.listdir(tmp_path) == ["out.json"]


@pytest.mark.parametrize("argv, message", [
    (["compare", "conv3x3:8,g3", "--input", "3x8x8"], "groups 3 do not divide"),
    (["compare", "conv3x3:6,g4", "--input", "6x8x8"], "groups 4 do not divide the 6 output channels"),
    (["compare", "conv9x9:8,valid", "--input", "3x8x8"], "larger than the padded input"),
    (["compare", "conv3x3:8,s0", "--input", "3x8x8"], "stride"),
    (["compare", "conv3x3:0", "--input", "3x8x8"], "positive integer"),
    (["compare", "conv3x3:8 >> relu", "--input", "3x8x8"], "expected a layer"),
    (["compare", "res(conv3x3:8,s3)", "--input", "4x8x8"], "no strided 1×1 projection"),
    (["compare", "(conv3x3:8,valid | conv1x1:8)", "--input", "4x8x8"], "mismatched sizes"),
    (["compare", "conv5x5:32"], "needs --input"),
    (["compare", "resnet51"], "unknown preset or layer 'resnet51'; did you mean resnet50?"),
    (["compare", "resnet50(width=2)"], "has no option 'width'"),
    (["compare", "mobilenet-v1", "--kwarg", "width=abc"], "expects a float"),
    (["compare", "mobilenet-v1", "--kwarg", "width"], "expected key=value"),
    (["compare", "--input", "3x224x224x2x2"], "bad --input"),
    (["compare", "--input", "0x4x4"], "bad --input"),
    (["compare", "--input", "axb"], "bad --input"),
    (["compare", "--batch", "0"], "positive integer"),
    (["compare", "--format", "xml"], "invalid choice"),
    (["compare", "--frobnicate"], "unrecognized arguments"),
    (["analyze", "resnet18", "--depth", "0"], "positive integer"),
    (["analyze"], "required"),
    (["explode"], "invalid choice"),
    (["compare", "--output", "/nonexistent/dir/out.json"], "cannot write --output"),
    (["compare", "--output", "/"], "it is a directory"),
    (["compare", "missing.json"], "no spec file missing.json"),
    (["compare", "resnet5O(width=2)"], "unknown preset or layer 'resnet5O'"),
])
def test_bad_input_is_one_line_and_exit_2(argv: list[str], message: str) -> None:
    code, out, err = run(*argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("costlab: error: ")
    assert message in err
    assert "Traceback" not in err


def test_nothing_half_written_on_error(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    code, _, _ = run("compare", "conv5x5:32", "conv5x5:32,g5", "--input", "192x28x28",
                     "--output", str(target))
    assert code == 2 and not target.exists() and os.listdir(tmp_path) == []


def test_spec_files(tmp_path: Path) -> None:
    text = tmp_path / "bottleneck.txt"
    text.write_text("# 1x1 reduction first\nconv1x1:16 >\nconv5x5:32\n")
    spec = tmp_path / "bottleneck.json"
    spec.write_text(json.dumps({"name": "bn", "input": [192, 28, 28], "expression": "conv1x1:16 > conv5x5:32"}))
    _, out, _ = run("compare", str(text), str(spec), "--format", "json", "--input", "192x28x28")
    assert [t["macs"] for t in json.loads(out)["targets"]] == [12_443_648, 12_443_648]
    spec.write_text("{not json")
    code, _, err = run("compare", str(spec))
    assert code == 2 and "not valid JSON" in err


def test_console_process_imports_no_torch() -> None:
    script = ("import sys; from costlab.app.cli import main; import io; "
              "assert main(['compare'], stdout=io.StringIO()) == 0; "
              "assert main(['compare', 'resnet50', 'mobilenet-v2'], stdout=io.StringIO()) == 0; "
              "import costlab; costlab.analyze('conv3x3:8', input=(3, 8, 8)); "
              "assert 'torch' not in sys.modules, 'torch was imported'; "
              "assert 'pandas' not in sys.modules, 'pandas was imported'; "
              # what compare on expressions and presets does without (bench_compare_process.py's time)
              "late = [m for m in sys.modules if m.startswith('costlab.analyses') or m == 'difflib']; "
              "assert not late, late")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr


def test_python_module_entry_point() -> None:
    result = subprocess.run([sys.executable, "-m", "costlab", "compare", "--format", "json"], cwd=ROOT,
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0
    assert json.loads(result.stdout)["targets"][1]["macs"] == 12_443_648


@pytest.mark.parametrize("extra", [[], ["--freeze", "2"], ["--convention", "fvcore"], ["--check", "torch"],
                                   ["--freeze", "2", "--convention", "thop", "--check", "torch"],
                                   ["--memory"], ["--memory", "--freeze", "2", "--convention", "thop"]])
@pytest.mark.parametrize("command", [["analyze", "lenet5"], ["analyze", "lenet5", "--depth", "1"],
                                     ["compare", "lenet5", "conv3x3:4 > gap > fc:10", "--per-layer"],
                                     ["compare", "lenet5", "conv3x3:4 > gap > fc:10"]])
def test_csv_columns_line_up_with_every_option(command: list[str], extra: list[str]) -> None:
    argv = command + extra + ["--format", "csv"]
    if command[0] == "compare":
        argv += ["--input", "1x32x32"]
    code, out, err = run(*argv)
    assert code == 0, err
    rows = list(__import__("csv").DictReader(io.StringIO(out)))
    header = out.splitlines()[0].split(",")
    assert len(set(header)) == len(header)
    for row in rows:
        assert None not in row and len(row) == len(header)  # no cell without a header, no header without a cell
        if "formula" in row:  # per-layer rows: the formula column holds the formula, macs an integer
            assert row["formula"].startswith(("ops", "no arithmetic", "identity", "sum of")) or "=" in row["formula"]
            assert row["macs"].isdigit()
