"""The headline figures of every golden file, derived apart from costlab.

The golden tests (test_cli, test_display, test_reports) hold the committed files equal to a fresh
run, and ``--update-golden`` rewrites them: alone they prove only that output did not change. Here the
*committed* files are read (never regenerated) and their headline figures are held against explicit
arithmetic (filters × kernel × positions) and the published figures of shared/reference.md, so a
re-recorded wrong count fails here whatever --update-golden wrote.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import GOLDEN, ROOT, find_reference

REPORTS = ROOT / "reports"

# Published figures (torchvision's model table, shared/reference.md): params, MACs at 3×224×224.
PUBLISHED = {"alexnet": (61_100_840, 714_188_480), "vgg16": (138_357_544, 15_470_264_320),
             "resnet50": (25_557_032, 4_089_184_256)}
MOBILENET_V2 = (3_504_872, 300_774_272)  # reference.md: 3,504,872 params, 0.301 G MACs (to 3 digits)
LENET5_PARAMS = 61_706  # reference.md: LeNet-5's common modern variant


def conv(k: int, c_in: int, c_out: int, h: int, w: int, groups: int = 1) -> tuple[int, int]:
    """(MACs, weights) of a k×k convolution without bias giving c_out×h×w: one multiply-add per
    kernel tap and input channel of its group, per output element."""
    macs = k * k * (c_in // groups) * c_out * h * w
    return macs, k * k * (c_in // groups) * c_out


def si(value: float) -> str:
    """Three significant figures with an SI prefix (k, M, G), spelled out apart from costlab.render."""
    for scale, prefix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if value >= scale:
            mantissa = value / scale
            return f"{mantissa:.{2 if mantissa < 10 else 1 if mantissa < 100 else 0}f}{prefix}"
    return str(value)


def kib(n_bytes: int) -> str:
    mantissa = n_bytes / 1024
    return f"{mantissa:.{2 if mantissa < 10 else 1 if mantissa < 100 else 0}f} KiB"


def mib(n_bytes: int) -> str:
    mantissa = n_bytes / 2**20
    return f"{mantissa:.{2 if mantissa < 10 else 1 if mantissa < 100 else 0}f} MiB"


def committed(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def row(text: str, first_cell: str) -> str:
    """The line of a text or Markdown table whose first cell is ``first_cell``."""
    for line in text.splitlines():
        cells = [c.strip() for c in (line.strip("|").split("|") if line.startswith("|") else re.split(r"\s{2,}", line))]
        if cells and cells[0] == first_cell:
            return line
    raise AssertionError(f"no row {first_cell!r}")


# The inception case: 32 filters of 5×5 on 28×28×192, and a 1×1 bottleneck to 16 channels first.
PLAIN, PLAIN_WEIGHTS = conv(5, 192, 32, 28, 28)
REDUCE, REDUCE_WEIGHTS = conv(1, 192, 16, 28, 28)
EXPAND, EXPAND_WEIGHTS = conv(5, 16, 32, 28, 28)


def test_inception_arithmetic_is_the_source_texts() -> None:
    assert (PLAIN, REDUCE, EXPAND) == (120_422_400, 2_408_448, 10_035_200)  # reference.md, inception-5x5 etc.


def test_default_compare_golden() -> None:
    text = committed(GOLDEN / "compare_default.txt")
    plain, reduced = row(text, "conv5x5:32"), row(text, "conv1x1:16 > conv5x5:32")
    for figure in (si(PLAIN), si(PLAIN_WEIGHTS), kib(4 * PLAIN_WEIGHTS), "baseline"):
        assert figure in plain, (figure, plain)
    total, weights = REDUCE + EXPAND, REDUCE_WEIGHTS + EXPAND_WEIGHTS
    for figure in (si(total), f"{si(REDUCE)} + {si(EXPAND)}", si(weights), kib(4 * weights),
                   f"{PLAIN / total:.2f}× fewer"):
        assert figure in reduced, (figure, reduced)


def test_inception_report() -> None:
    text = committed(REPORTS / "inception-bottleneck.md")
    total = REDUCE + EXPAND
    assert f"cost {PLAIN:,} MACs" in text
    assert f"{REDUCE:,} + {EXPAND:,} = {total:,} MACs: {PLAIN / total:.2f}× fewer" in text
    assert f"{PLAIN_WEIGHTS / (REDUCE_WEIGHTS + EXPAND_WEIGHTS):.2f}× fewer parameters" in text
    assert f"{PLAIN_WEIGHTS:,}" in row(text, "conv5x5:32") and f"{4 * PLAIN_WEIGHTS:,} B" in row(text, "conv5x5:32")


@pytest.mark.parametrize("stem, c_in, size, c_out, pad", [("separable-small", 3, 6, 5, "valid"),
                                                         ("separable-512", 512, 14, 512, "same")])
def test_separable_reports(stem: str, c_in: int, size: int, c_out: int, pad: str) -> None:
    out = size - 2 if pad == "valid" else size
    standard, standard_weights = conv(3, c_in, c_out, out, out)
    depthwise, _ = conv(3, c_in, c_in, out, out, groups=c_in)
    pointwise, _ = conv(1, c_in, c_out, out, out)
    text = committed(REPORTS / f"{stem}.md")
    assert f"{standard:,}" in row(text, f"conv3x3:{c_out},{pad}") and f"{standard_weights:,}" in row(
        text, f"conv3x3:{c_out},{pad}")
    separable = row(text, f"dw3x3,{pad} > pw:{c_out}")
    assert f"{depthwise + pointwise:,}" in separable and f"{depthwise:,} + {pointwise:,}" in separable
    assert f"{standard / (depthwise + pointwise):.2f}× fewer" in separable
    if stem == "separable-small":
        assert (standard, depthwise, pointwise) == (2_160, 432, 240)  # reference.md: 9·16·3, 3·16·5; 27·16·5


def test_backbones_golden() -> None:
    text = committed(GOLDEN / "compare_backbones_80.txt")
    base_macs = PUBLISHED["resnet50"][1]
    for name, (params, macs) in [("resnet50", PUBLISHED["resnet50"]), ("mobilenet-v2", MOBILENET_V2),
                                 ("vgg16", PUBLISHED["vgg16"])]:
        line = row(text, name)
        for figure in (si(macs), si(params), mib(4 * params)):
            assert figure in line, (figure, line)
        if name != "resnet50":
            ratio = base_macs / macs
            assert (f"{ratio:.2f}× fewer" if ratio > 1 else f"{1 / ratio:.2f}× more") in line


def test_resnet50_golden() -> None:
    text = committed(GOLDEN / "analyze_resnet50_80.txt")
    params, macs = PUBLISHED["resnet50"]
    assert f"{si(macs)} MACs, {si(params)}" in text.replace("\n  ", " ")
    stem, stem_weights = conv(7, 3, 64, 112, 112)
    assert all(f in row(text, "conv1") for f in (si(stem), si(stem_weights), f"{100 * stem / macs:.1f} %"))
    fc_macs = 2048 * 1000
    assert all(f in row(text, "fc") for f in (si(fc_macs), si(fc_macs + 1000)))
    assert si(conv(3, 64, 64, 56, 56)[0]) in row(text, "layer1.0.conv2")
    assert all(f in row(text, "total") for f in (si(macs), si(params), "100.0 %"))


def test_classics_and_crosscheck_reports_hold_the_published_sizes() -> None:
    classics, crosscheck = committed(REPORTS / "classics.md"), committed(REPORTS / "crosscheck.md")
    for name, (params, macs) in PUBLISHED.items():
        assert f"{params:,}" in row(classics, name) and f"{macs:,}" in row(classics, name)
        assert f"{macs:,}" in row(crosscheck, name)
    assert f"{LENET5_PARAMS:,}" in row(classics, "lenet5")
    assert f"{PUBLISHED['alexnet'][0] / LENET5_PARAMS:,.1f}×" in row(classics, "alexnet")


def test_augmentation_and_memory_reports() -> None:
    augmentation = committed(REPORTS / "augmentation.md")
    assert f"{PUBLISHED['alexnet'][1]:,}" in row(augmentation, "one alexnet forward pass (3×224×224)")
    assert f"{2 * 3 * 256 * 256 * 4:,}" in row(augmentation, "mirroring")        # read and write, float32
    assert f"{2 * 3 * 224 * 224 * 4:,}" in row(augmentation, "random cropping")
    memory = committed(REPORTS / "memory.md")
    for name, params in (("resnet50", PUBLISHED["resnet50"][0]), ("mobilenet-v2", MOBILENET_V2[0])):
        line = row(memory, f"{name}, batch 1")
        assert f"{params:,}" in line and f"{params * 4 / 2**20:.2f} MiB" in line


def test_published_figures_are_the_references() -> None:
    """The figures typed above are shared/reference.md's, where the checkout has it beside it."""
    reference = find_reference()
    if reference is None:
        pytest.skip("shared/reference.md is not beside this checkout")
    text = reference.read_text(encoding="utf-8")
    for params, macs in PUBLISHED.values():
        assert f"{params:,}" in text and f"{macs:,}" in text
    assert f"{MOBILENET_V2[0]:,}" in text and f"{MOBILENET_V2[1] / 1e9:.3f} G" in text
    assert f"{LENET5_PARAMS:,}" in text
