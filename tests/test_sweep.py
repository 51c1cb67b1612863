"""costlab sweep: parameter syntax, the canonical sweeps against independent formulas and published
figures, the freeze sweep, output formats, the plot, the Measure hook and the errors."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from costlab.app.cli import main
from costlab.core.errors import CostlabError
from costlab.app.sweep import Measure, SweepError, parse_param, render_sweep, run_sweep, sweep_png
from costlab.analyses.training import train_step
from costlab.core.zoo import build_preset

ROOT = Path(__file__).resolve().parent.parent


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def table(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


# --- the parameter ---------------------------------------------------------------------------

def test_ranges_are_inclusive_and_exact() -> None:
    assert parse_param("w=4:192:4").values == tuple(str(w) for w in range(4, 193, 4))
    assert parse_param("k=1:11:2").values == ("1", "3", "5", "7", "9", "11")
    assert parse_param("k=3:6").values == ("3", "4", "5", "6")
    assert parse_param("k=1:10:4").values == ("1", "5", "9")  # stop not reached: not added
    # decimal arithmetic: 0.1 + 0.2 is 0.3, and 0.7 is reached
    assert parse_param("a=0.1:0.7:0.1").values == ("0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7")
    assert parse_param("width=0.25,0.5,0.75,1.0").values == ("0.25", "0.5", "0.75", "1.0")
    assert parse_param("input=128,3x160x160").values == ("128", "3x160x160")
    assert parse_param("input=128:224:32").numeric() == (128.0, 160.0, 192.0, 224.0)
    assert parse_param("freeze=fc,0.5").numeric() is None


@pytest.mark.parametrize("text, message", [
    ("w", "expected NAME=VALUES"), ("1w=3", "expected NAME=VALUES"), ("w=", "no values"),
    ("w=4:1", "below start"), ("w=1:4:0", "step must be positive"), ("w=1:2:3:4", "start:stop"),
    ("w=a:4", "not a number"), ("w=1,,2", "empty value"), ("w=1,1", "appears twice"),
    ("w=1:1000000", "at most"), ("w={x}", "braces"),
])
def test_bad_params(text: str, message: str) -> None:
    with pytest.raises(SweepError, match=message):
        parse_param(text)


# --- the canonical sweeps ----------------------------------------------------------------------

def test_inception_bottleneck_width_sweep() -> None:
    code, out, err = run("sweep", "conv5x5:32", "conv1x1:{w} > conv5x5:32", "--param", "w=4:192:4",
                         "--input", "192x28x28")
    assert (code, err) == (0, "")
    rows = table(out)
    assert len(rows) == 2 * 48
    plain = 5 * 5 * 192 * 28 * 28 * 32
    for row in rows:
        w = int(row["value"])
        if row["series"] == "conv5x5:32":
            assert int(row["macs"]) == plain and float(row["ratio"]) == 1
        else:
            assert row["name"] == f"conv1x1:{w} > conv5x5:32"
            assert int(row["macs"]) == 28 * 28 * w * 192 + 28 * 28 * 32 * 5 * 5 * w
            assert int(row["params"]) == 192 * w + 5 * 5 * w * 32
            # the bottleneck pays off while w·(192 + 800) < 4800·32
            assert (float(row["ratio"]) > 1) == (w * (192 + 800) < 4800 * 32)
    at16 = next(r for r in rows if r["value"] == "16" and r["series"] != "conv5x5:32")
    assert int(at16["macs"]) == 2_408_448 + 10_035_200


def test_depthwise_kernel_sweep_follows_one_over_n_plus_one_over_k_squared() -> None:
    code, out, _ = run("sweep", "conv{k}x{k}:64", "dw{k}x{k} > pw:64", "--param", "k=1:11:2",
                       "--input", "64x56x56")
    rows = [r for r in table(out) if r["series"] == "dw{k}x{k} > pw:64"]
    assert [r["name"] for r in rows] == [f"dw{k}x{k} > pw:64" for k in range(1, 12, 2)]
    for row in rows:
        k = int(row["value"])
        assert float(row["ratio"]) == pytest.approx(1 / (1 / 64 + 1 / k ** 2), rel=1e-5)


# MobileNet v1 (Howard et al. 2017), Table 6 (width α at 224) and Table 7 (resolution at α = 1):
# million mult-adds and million parameters as printed.
MOBILENET_V1_WIDTH = {"1.0": (569, 4.2), "0.75": (325, 2.6), "0.5": (149, 1.3), "0.25": (41, 0.5)}
MOBILENET_V1_RESOLUTION = {"224": 569, "192": 418, "160": 290, "128": 186}


def test_mobilenet_v1_width_and_resolution_against_the_paper() -> None:
    code, out, _ = run("sweep", "mobilenet-v1", "--param", "width=" + ",".join(MOBILENET_V1_WIDTH))
    assert code == 0
    for row in table(out):
        macs, params = MOBILENET_V1_WIDTH[row["value"]]
        assert int(row["macs"]) / 1e6 == pytest.approx(macs, rel=0.01)
        assert round(int(row["params"]) / 1e6, 1) == params
    code, out, _ = run("sweep", "mobilenet-v1", "--param", "input=" + ",".join(MOBILENET_V1_RESOLUTION))
    for row in table(out):
        assert row["input"] == f"3x{row['value']}x{row['value']}"
        assert int(row["macs"]) / 1e6 == pytest.approx(MOBILENET_V1_RESOLUTION[row["value"]], rel=0.01)


def test_mobilenet_v2_width_sweep() -> None:
    code, out, _ = run("sweep", "mobilenet-v2", "--param", "width=0.35,0.5,0.75,1.0,1.4", "--format", "json")
    data = json.loads(out)
    assert data["param"] == "width" and data["series"] == ["mobilenet-v2"]
    macs = [p["macs"] for p in data["points"]]
    assert macs == sorted(macs)
    at_one = next(p for p in data["points"] if p["value"] == "1.0")
    assert at_one["params"] == 3_504_872                        # torchvision's table
    assert round(at_one["macs"] / 1e9, 3) == 0.301              # torchvision's table


def test_sweeping_a_template_preset_and_a_reference_together() -> None:
    with pytest.raises(CostlabError, match="has no option 'a'"):  # a preset takes the name as its option
        run_sweep(["mobilenet-v1(width={a})", "mobilenet-v1"], parse_param("a=0.5,1.0"))
    result = run_sweep(["mobilenet-v1(width={width})", "mobilenet-v1", "conv3x3:8"],
                       parse_param("width=0.5,1.0"), input=(3, 64, 64))
    for value in ("0.5", "1.0"):
        template = result.at("mobilenet-v1(width={width})", value).analysis
        option = result.at("mobilenet-v1", value).analysis
        assert template.macs == option.macs == build_preset("mobilenet-v1", (3, 64, 64),
                                                            options={"width": value}).macs
    reference = [p.analysis.macs for p in result.of("conv3x3:8")]
    assert reference[0] == reference[1] == 3 * 3 * 3 * 64 * 64 * 8


def test_batch_and_input_sweeps() -> None:
    result = run_sweep(["resnet18"], parse_param("batch=1,2,4"), input=(3, 32, 32))
    one = result.points[0].analysis.macs
    assert [p.analysis.macs for p in result.points] == [one, 2 * one, 4 * one]
    result = run_sweep(["conv3x3:8", "dw3x3 > pw:8"], parse_param("input=8,16,4x16x16"), input=(4, 1, 1))
    assert [p.analysis.input for p in result.of("conv3x3:8")] == [(4, 8, 8), (4, 16, 16), (4, 16, 16)]
    with pytest.raises(SweepError, match="needs the channels"):
        run_sweep(["conv3x3:8"], parse_param("input=8"))


def test_freeze_sweep_is_the_training_step_at_each_point() -> None:
    code, out, _ = run("sweep", "resnet18", "--param", "freeze=0:41:5", "--input", "3x64x64")
    rows = table(out)
    analysis = build_preset("resnet18", (3, 64, 64))
    steps = [int(r["train_step_macs"]) for r in rows]
    assert steps == [train_step(analysis, int(r["value"])).train_step_macs for r in rows]
    assert steps == sorted(steps, reverse=True)
    assert [int(r["trainable_params"]) + int(r["frozen_params"]) for r in rows] == [analysis.params] * len(rows)
    code, out, _ = run("sweep", "resnet18", "resnet34", "--param", "input=64,96", "--freeze", "fc")
    for row in table(out):
        assert int(row["trainable_params"]) == 512 * 1000 + 1000
        assert int(row["train_step_macs"]) == int(row["macs"]) + 512 * 1000


def test_formats() -> None:
    argv = ["sweep", "conv5x5:32", "conv1x1:{w} > conv5x5:32", "--param", "w=8,16", "--input", "192x28x28"]
    _, text, _ = run(*argv, "--format", "table")
    assert "[2] conv1x1:{w} > conv5x5:32" in text and "12,443,648" in text and "9.68×" in text
    _, md, _ = run(*argv, "--format", "md", "--unit", "flops")
    assert md.startswith("## costlab sweep w") and "| " in md and f"{2 * 12_443_648:,}" in md
    _, out, _ = run(*argv, "--unit", "flops")
    assert table(out)[3]["flops"] == str(2 * 12_443_648)
    _, out, _ = run(*argv, "--format", "json")
    data = json.loads(out)
    assert data["values"] == ["8", "16"] and len(data["points"]) == 4
    assert data["points"][3]["macs"] == 12_443_648 and data["points"][3]["ratio"] == pytest.approx(120_422_400 / 12_443_648)


def test_a_measure_adds_columns_and_a_second_axis(tmp_path: Path) -> None:
    calls: list[str] = []

    def layers_and_bytes(analysis, module) -> dict[str, int]:
        assert module is None  # presets: no module of their own
        calls.append(analysis.name)
        return {"layer_count": len(analysis.layers), "mbytes": analysis.bytes // 1_000_000}

    measure = Measure("shape", ("layer_count", "mbytes"), layers_and_bytes, plot_column="mbytes",
                      axis_label="MB moved")
    result = run_sweep(["dw{k}x{k} > pw:64"], parse_param("k=3,5"), input=(64, 56, 56), measures=[measure])
    assert calls == ["dw3x3 > pw:64", "dw5x5 > pw:64"]
    rows = table(render_sweep(result))
    assert [int(r["layer_count"]) for r in rows] == [2, 2]
    assert [int(r["mbytes"]) for r in rows] == [p.analysis.bytes // 1_000_000 for p in result.points]
    assert "layer_count" in render_sweep(result, "table")
    pytest.importorskip("matplotlib")
    assert sweep_png(result, "params").startswith(b"\x89PNG\r\n\x1a\n")


# --- the plot and the errors -----------------------------------------------------------------------

def test_plot_is_a_png_written_atomically(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    plot, output = tmp_path / "sweep.png", tmp_path / "sweep.csv"
    code, out, err = run("sweep", "resnet18", "--param", "freeze=0,fc,layer4", "--input", "3x32x32",
                         "--plot", str(plot), "--y", "train_step_macs", "--output", str(output))
    assert (code, out, err) == (0, "", "")
    assert plot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert table(output.read_text())[1]["value"] == "fc"
    assert sorted(os.listdir(tmp_path)) == ["sweep.csv", "sweep.png"]


def test_plot_without_matplotlib_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, out, err = run("sweep", "conv{k}x{k}:8", "--param", "k=1,3", "--input", "3x8x8",
                         "--plot", str(tmp_path / "p.png"))
    assert code == 2 and out == "" and os.listdir(tmp_path) == []
    assert err == 'costlab: error: --plot needs matplotlib, which is not installed: pip install -e ".[plot]"\n'


@pytest.mark.parametrize("argv, message", [
    (["sweep", "conv{k}x{k}:8", "--param", "w=1,3", "--input", "3x8x8"], "placeholder {k} has no value"),
    (["sweep", "conv3x3:{input}", "--param", "input=8", "--input", "3x8x8"], "input is varied with --param"),
    (["sweep", "conv{k}x{k:8", "--param", "k=1", "--input", "3x8x8"], "unbalanced braces"),
    (["sweep", "conv3x3:8", "--param", "k=1,3", "--input", "3x8x8"], "no target varies with 'k'"),
    (["sweep", "resnet18", "--param", "width=1,2"], "at width=1: resnet18 has no option 'width'"),
    (["sweep", "mobilenet-v1", "--param", "width=0.5,abc"], "at width=abc: mobilenet-v1: option width expects a float"),
    (["sweep", "conv{k}x{k}:8,valid", "--param", "k=1,9", "--input", "3x8x8"], "at k=9: bad expression"),
    (["sweep", "resnet18", "--param", "freeze=0,1", "--freeze", "fc"], "not both"),
    (["sweep", "resnet18", "--param", "freeze=0,zz9"], "at freeze=zz9: --freeze zz9"),
    (["sweep", "resnet18", "--param", "batch=1,0"], "expected a positive integer"),
    (["sweep", "resnet18", "--param", "input=3xax4"], "expected R or CxHxW"),
    (["sweep", "resnet18", "resnet18", "--param", "batch=1"], "appears twice"),
    (["sweep", "resnet18", "--param", "batch=1", "--y", "params"], "give --plot PATH"),
    (["sweep", "resnet18", "--param", "batch=1", "--plot", "/nonexistent/p.png"], "cannot write --plot"),
    (["sweep", "mobilenet-v1", "--param", "width=0.5", "--kwarg", "width=1"], "both given"),
    (["sweep", "resnet18"], "required: --param"),
])
def test_bad_sweeps_are_one_line_and_exit_2(argv: list[str], message: str) -> None:
    code, out, err = run(*argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("costlab: error: ") and message in err, err


def test_bad_plot_column(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    code, _, err = run("sweep", "resnet18", "--param", "batch=1", "--plot", str(tmp_path / "p.png"),
                       "--y", "latency")
    assert code == 2 and "--y latency: not a column" in err and os.listdir(tmp_path) == []


def test_sweep_and_freeze_import_neither_torch_nor_pandas() -> None:
    script = ("import sys, io; from costlab.app.cli import main; "
              "assert main(['sweep', 'conv1x1:{w} > conv5x5:32', '--param', 'w=4:64:4', '--input', "
              "'192x28x28'], stdout=io.StringIO()) == 0; "
              "assert main(['compare', 'resnet18', '--freeze', 'fc'], stdout=io.StringIO()) == 0; "
              "assert main(['sweep', 'resnet18', '--param', 'freeze=0,fc'], stdout=io.StringIO()) == 0; "
              "assert 'torch' not in sys.modules and 'pandas' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr


# --- plots a person reads --------------------------------------------------------------------------

def test_break_even_of_the_bottleneck_is_found_and_marked() -> None:
    from costlab.app.sweep import break_even, reference_series, si_tick, sweep_figure

    result = run_sweep(["conv5x5:32", "conv1x1:{w} > conv5x5:32"], parse_param("w=4:192:4"), input=(192, 28, 28))
    assert reference_series(result) == ("conv5x5:32",)
    # MACs of the bottleneck: 28·28·w·(192 + 5·5·32), equal to the plain 5·5·192·28·28·32 at w*
    exact = 5 * 5 * 192 * 28 * 28 * 32 / (28 * 28 * (192 + 5 * 5 * 32))
    xs = [float(v) for v in result.param.values]
    plain = [float(p.analysis.macs) for p in result.of("conv5x5:32")]
    bottleneck = [float(p.analysis.macs) for p in result.of("conv1x1:{w} > conv5x5:32")]
    (found,) = break_even(xs, bottleneck, plain)
    assert found == pytest.approx(exact)  # the cost is linear in w: interpolation is exact
    assert si_tick(80e6) == "80 M" and si_tick(1.5e3) == "1.5 k" and si_tick(0.25) == "0.25" and si_tick(0) == "0"
    pytest.importorskip("matplotlib")
    for y in ("macs", "ratio"):
        figure = sweep_figure(result, y)
        axes = figure.axes[0]
        figure.canvas.draw()
        assert [t.get_text() for t in axes.texts] == [f"break-even: w ≈ {exact:.4g}"]
        assert axes.yaxis.get_offset_text().get_text() == ""  # no 1e8 above the axis
        labels = [t.get_text() for t in axes.get_yticklabels() if t.get_text()]
        assert labels and all(re.fullmatch(r"-?[\d.]+( [kMG])?", text) for text in labels), labels
        styles = {line.get_label(): line.get_linestyle() for line in axes.get_lines()}
        if y == "macs":
            assert styles["[1] conv5x5:32 (reference)"] == "--" and styles["[2] conv1x1:{w} > conv5x5:32"] == "-"
            assert "120 M" in labels
        else:
            assert styles["ratio 1: break-even"] == "--"
            assert "MACs of [1] conv5x5:32" in axes.get_ylabel() and "÷ MACs of each" in axes.get_ylabel()
