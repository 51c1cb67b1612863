"""The presets against their published sizes, their structure, their rows, --depth, --input and options.

The published figures are restated here from the project's reference figures
(../shared/reference.md); when that file is found, a test parses it and checks the restated
figures against it, so the two cannot drift. A figure written with fewer digits
("1.498 G", "4.2 M") holds within half a unit of its last significant digit.
"""

from __future__ import annotations

import csv
import io
import json
import re
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from costlab.core.analysis import Analysis
from costlab.app.cli import main
from conftest import find_reference
from costlab.core.specs import Conv, Linear
from costlab.core.zoo import PRESETS, build_preset

ROOT = Path(__file__).resolve().parent.parent

# reference.md, "Published sizes (torchvision's model table ...)": params exact, MACs as written.
TORCHVISION_TABLE = {
    "alexnet": ("61,100,840", "714,188,480"),
    "vgg16": ("138,357,544", "15,470,264,320"),
    "resnet50": ("25,557,032", "4,089,184,256"),
    "googlenet": ("6,624,904", "1.498 G"),
    "mobilenet-v2": ("3,504,872", "0.301 G"),
}
# reference.md, "Papers".
LENET5_PARAMS = "61,706"
MOBILENET_V1_PAPER = ("4.2 M", "569 M")  # params, mult-adds of 1.0 MobileNet-224

_SCALE = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9}


def published(text: str) -> tuple[Fraction, Fraction]:
    """'1.498 G' → (1.498e9, 0.0005e9); '61,706' → (61706, 0): a figure and half its last digit's unit.

    Whole numbers written in full (with thousands separators) are exact.
    """
    match = re.fullmatch(r"([\d,]+(?:\.\d+)?)\s*([KMG]?)", text.strip())
    assert match, text
    digits, scale = match.group(1).replace(",", ""), _SCALE[match.group(2)]
    value = Fraction(Decimal(digits)) * scale
    if not match.group(2):
        return value, Fraction(0)
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    return value, Fraction(1, 10**decimals) * scale / 2


def assert_published(count: int, text: str) -> None:
    value, tolerance = published(text)
    assert abs(count - value) <= tolerance, f"{count:,} is not {text} (±{float(tolerance):g})"


def test_restated_figures_match_reference_md() -> None:
    path = find_reference()
    if path is None:
        pytest.skip("shared/reference.md is not beside this checkout")
    text = path.read_text(encoding="utf-8")
    table = text.split("## Published sizes", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[2][:1].isdigit():
            rows[cells[0]] = (cells[2], cells[3])
    names = {"AlexNet": "alexnet", "VGG-16": "vgg16", "ResNet-50": "resnet50", "GoogLeNet": "googlenet",
             "MobileNet v2": "mobilenet-v2"}
    parsed = {}
    for model, (params, macs) in rows.items():
        (preset,) = [p for prefix, p in names.items() if model.startswith(prefix)]
        parsed[preset] = (params, macs.split("(")[0].strip())  # the full count where one is given
    assert parsed == TORCHVISION_TABLE
    papers = " ".join(text.split("## Papers", 1)[1].split())
    assert f"has {LENET5_PARAMS}" in papers
    params, macs = MOBILENET_V1_PAPER
    assert f"{params} parameters and {macs} mult-adds" in papers


# --- sizes -------------------------------------------------------------------------------

@pytest.mark.parametrize("preset", list(TORCHVISION_TABLE))
def test_torchvision_published_sizes(preset: str) -> None:
    params, macs = TORCHVISION_TABLE[preset]
    a = build_preset(preset)
    assert a.input == (3, 224, 224)
    assert a.params == published(params)[0]  # exactly
    assert_published(a.macs, macs)


def test_lenet5_has_61706_params() -> None:
    a = build_preset("lenet5")
    assert a.input == (1, 32, 32) and a.output == (10,)
    assert a.params == published(LENET5_PARAMS)[0]


def test_mobilenet_v1_paper_size() -> None:
    a = build_preset("mobilenet-v1")
    params, macs = MOBILENET_V1_PAPER
    assert_published(a.params, params)
    assert_published(a.macs, macs)


def test_published_rounding_rule() -> None:
    assert published("1.498 G") == (Fraction(1498, 1000) * 10**9, Fraction(5, 10**4) * 10**9)
    assert published("61,706") == (61706, 0)
    with pytest.raises(AssertionError):
        assert_published(1_498_600_000, "1.498 G")


# --- structure ---------------------------------------------------------------------------

def convs(a: Analysis) -> list:
    return [layer for layer in a.layers if isinstance(layer.spec, Conv)]


def depthwise_then_pointwise(a: Analysis) -> list[tuple]:
    """Pairs (depthwise k×k conv, the 1×1 conv right after it)."""
    found = []
    layers = convs(a)
    for dw, nxt in zip(layers, layers[1:]):
        channels = dw.input_shapes[0][1]
        if dw.spec.groups == channels > 1 and nxt.spec.kernel == (1, 1) and nxt.spec.groups == 1:
            found.append((dw, nxt))
    return found


def test_mobilenet_v1_has_13_depthwise_separable_blocks() -> None:
    a = build_preset("mobilenet-v1")
    pairs = depthwise_then_pointwise(a)
    assert len(pairs) == 13
    assert len(convs(a)) == 1 + 2 * 13  # the stem, then the blocks
    assert [dw.spec.kernel for dw, _ in pairs] == [(3, 3)] * 13
    assert {dw.name.split(".")[:2][0] for dw, _ in pairs} == {"blocks"}


# MobileNet v2's Table 2 (t, c, n, s), restated.
MOBILENET_V2_TABLE = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                      (6, 160, 3, 2), (6, 320, 1, 1)]


def test_mobilenet_v2_has_17_inverted_residual_blocks() -> None:
    a = build_preset("mobilenet-v2")
    pairs = depthwise_then_pointwise(a)
    assert len(pairs) == sum(n for _, _, n, _ in MOBILENET_V2_TABLE) == 17
    blocks = {dw.name.rsplit(".conv.", 1)[0] for dw, _ in pairs}
    assert len(blocks) == 17
    skips, channels = 0, 32
    for _, c, n, s in MOBILENET_V2_TABLE:
        for repeat in range(n):
            skips += (s == 1 or repeat > 0) and channels == c
            channels = c
    assert sum(1 for layer in a.layers if layer.op == "add") == skips == 10
    # every projection is linear: no activation after its batch norm
    for _, projection in pairs:
        index = a.layers.index(projection)
        assert a.layers[index + 1].op == "norm"
        assert index + 2 == len(a.layers) or a.layers[index + 2].op != "act"


# Inception widths (#1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj) of GoogLeNet's table.
INCEPTION_4A = (192, 96, 208, 16, 48, 64)
INCEPTION_4D = (112, 144, 288, 32, 64, 64)


def test_googlenet_aux_heads_are_training_only_and_reported() -> None:
    a = build_preset("googlenet")
    assert not any(layer.name.startswith("aux") for layer in a.layers)
    assert {layer.name.split(".")[0] for layer in a.training_only} == {"aux1", "aux2"}
    # each head: 4×4 average pool → 1×1 conv to 128 (+ BN) → FC 2048→1024 → FC 1024→1000
    params = macs = 0
    for widths in (INCEPTION_4A, INCEPTION_4D):
        channels = widths[0] + widths[2] + widths[4] + widths[5]
        params += channels * 128 + 2 * 128 + 128 * 16 * 1024 + 1024 + 1024 * 1000 + 1000
        macs += channels * 128 * 16 + 128 * 16 * 1024 + 1024 * 1000
    assert (a.training_only_params, a.training_only_macs) == (params, macs)
    without = build_preset("googlenet", options={"aux_logits": False})
    assert without.training_only == () and (without.params, without.macs) == (a.params, a.macs)
    data = a.to_dict()
    assert data["training_only"]["params"] == params and data["params"] == a.params
    code, out, _ = run("analyze", "googlenet")
    assert code == 0 and f"Training only, not in the totals: {len(a.training_only)} layers, {macs:,} MACs, " \
                         f"{params:,} params." in out


# --- rows and --depth ----------------------------------------------------------------------

def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def csv_rows(*argv: str) -> list[dict[str, str]]:
    code, out, err = run(*argv, "--format", "csv")
    assert code == 0, err
    return list(csv.DictReader(io.StringIO(out)))


@pytest.mark.parametrize("preset", list(PRESETS))
def test_rows_sum_to_totals_at_every_depth(preset: str) -> None:
    code, out, _ = run("analyze", preset, "--format", "json")
    target = json.loads(out)["targets"][0]
    deepest = max(len(layer["name"].split(".")) for layer in target["layers"])
    for depth in [None, *range(1, deepest + 1)]:
        rows = csv_rows("analyze", preset, *([] if depth is None else ["--depth", str(depth)]))
        for column in ("macs", "params", "ops", "activations"):
            assert sum(int(r[column]) for r in rows) == target[column], (depth, column)
        if depth is None:
            assert [r["layer"] for r in rows] == [layer["name"] for layer in target["layers"]]
            continue
        for r in rows:  # a folded row is the sum of the layers under its name
            members = [layer for layer in target["layers"]
                       if layer["name"] == r["layer"] or layer["name"].startswith(r["layer"] + ".")]
            assert int(r["macs"]) == sum(layer["macs"] for layer in members)
            assert int(r["params"]) == sum(layer["params"] for layer in members)
            assert len(r["layer"].split(".")) <= depth


# --- --input and options ---------------------------------------------------------------------

# MobileNet v1's Table 1, restated: (input channels M, output channels N, stride, output size at 224).
MOBILENET_V1_TABLE = ([(32, 64, 1, 112), (64, 128, 2, 56), (128, 128, 1, 56), (128, 256, 2, 28),
                       (256, 256, 1, 28), (256, 512, 2, 14)] + [(512, 512, 1, 14)] * 5
                      + [(512, 1024, 2, 7), (1024, 1024, 1, 7)])


@pytest.mark.parametrize("width, size", [(1.0, 224), (0.5, 160), (0.75, 192), (0.25, 128)])
def test_mobilenet_v1_width_and_resolution_follow_the_papers_formula(width: float, size: int) -> None:
    """Per block: depthwise D_K²·αM·(ρD_F)², pointwise αM·αN·(ρD_F)² (Howard et al., eq. 6)."""
    code, out, err = run("analyze", "mobilenet-v1", "--input", f"3x{size}x{size}", "--kwarg", f"width={width}",
                         "--format", "json")
    assert code == 0, err
    layers = {layer["name"]: layer for layer in json.loads(out)["targets"][0]["layers"]}
    alpha, rho = Fraction(width), Fraction(size, 224)
    for index, (m, n, _, side) in enumerate(MOBILENET_V1_TABLE):
        spatial = rho * side
        assert spatial.denominator == 1
        assert layers[f"blocks.{index}.dw.conv"]["macs"] == 3 * 3 * alpha * m * spatial**2
        assert layers[f"blocks.{index}.pw.conv"]["macs"] == alpha * m * alpha * n * spatial**2
        base = build_preset("mobilenet-v1")
        ratio_pw = Fraction(layers[f"blocks.{index}.pw.conv"]["macs"], base.layer(f"blocks.{index}.pw.conv").macs)
        ratio_dw = Fraction(layers[f"blocks.{index}.dw.conv"]["macs"], base.layer(f"blocks.{index}.dw.conv").macs)
        assert (ratio_pw, ratio_dw) == (alpha**2 * rho**2, alpha * rho**2)


@pytest.mark.parametrize("preset", ["resnet18", "resnet50", "vgg11", "googlenet", "mobilenet-v1", "mobilenet-v2"])
def test_doubling_the_input_side_quadruples_conv_macs(preset: str) -> None:
    """Every feature map of these nets doubles its side at 448: conv MACs ×4, FC and params unchanged."""
    small, large = build_preset(preset), build_preset(preset, input=(3, 448, 448))
    assert large.params == small.params
    for a, b in zip(small.layers, large.layers):
        assert a.name == b.name
        if isinstance(a.spec, Conv):
            assert b.macs == 4 * a.macs, a.name
        elif isinstance(a.spec, Linear):
            assert b.macs == a.macs, a.name


def test_resnet50_original_stride_placement() -> None:
    """Stride in the first 1×1 (original paper) instead of the 3×3 (v1.5): the 1×1 of each
    stage's first block runs on a quarter of the positions; nothing else changes."""
    v15, v1 = build_preset("resnet50"), build_preset("resnet50", options={"stride_in_1x1": True})
    assert v1.params == v15.params
    saved = 0
    for stage, (width, c_in, side) in enumerate([(128, 256, 56), (256, 512, 28), (512, 1024, 14)], start=2):
        assert v1.layer(f"layer{stage}.0.conv1").spec.stride == (2, 2)
        assert v15.layer(f"layer{stage}.0.conv2").spec.stride == (2, 2)
        saved += c_in * width * side * side * Fraction(3, 4)
    assert v15.macs - v1.macs == saved
    assert "stride_in_1x1" in build_preset("resnet50", options={"stride_in_1x1": "true"}).name


def test_googlenet_branch3_kernel_5_is_the_papers_5x5() -> None:
    k3, k5 = build_preset("googlenet"), build_preset("googlenet", options={"branch3_kernel": 5})
    layer = k5.layer("inception3a.branch3.1.conv")
    assert layer.spec.kernel == (5, 5) and layer.output[2:] == (28, 28)
    extra_params = extra_macs = 0
    for module in ("inception3a", "inception3b", "inception4a", "inception4b", "inception4c",
                   "inception4d", "inception4e", "inception5a", "inception5b"):
        conv = k3.layer(f"{module}.branch3.1.conv")
        reduce, out, side = conv.input_shapes[0][1], conv.output[1], conv.output[2]
        extra_params += (25 - 9) * reduce * out
        extra_macs += (25 - 9) * reduce * out * side * side
    assert (k5.params - k3.params, k5.macs - k3.macs) == (extra_params, extra_macs)


def test_num_classes_and_vgg_batch_norm_options() -> None:
    a, b = build_preset("resnet50"), build_preset("resnet50", options={"num_classes": 10})
    assert a.params - b.params == (2048 + 1) * (1000 - 10) and b.output == (10,)
    plain, bn = build_preset("vgg16"), build_preset("vgg16", options={"batch_norm": True})
    conv_channels = [layer.output[1] for layer in convs(plain)]
    assert bn.params - plain.params == 2 * sum(conv_channels)
    assert bn.macs == plain.macs


def test_lenet5_accepts_another_input() -> None:
    a = build_preset("lenet5", input=(1, 28, 28))
    # 28 → conv 24 → pool 12 → conv 8 → pool 4: fc1 reads 16·4·4
    assert a.layer("fc1").input_shapes[0] == (1, 16 * 4 * 4)


# --- against torchvision's own modules (skipped without torchvision) -------------------------

TORCHVISION_CASES = [
    ("alexnet", {}, "alexnet", {}),
    *[(f"vgg{d}", {}, f"vgg{d}", {}) for d in (11, 13, 16, 19)],
    ("vgg16", {"batch_norm": True}, "vgg16_bn", {}),
    *[(f"resnet{d}", {}, f"resnet{d}", {}) for d in (18, 34, 50, 101, 152)],
    ("resnet18", {"num_classes": 10}, "resnet18", {"num_classes": 10}),
    ("googlenet", {}, "googlenet", {"aux_logits": True, "init_weights": False}),
    ("mobilenet-v2", {}, "mobilenet_v2", {}),
    ("mobilenet-v2", {"width": 0.5}, "mobilenet_v2", {"width_mult": 0.5}),
]


def _torchvision_counts(torch, module, size: tuple[int, ...], training: bool) -> tuple[dict, dict, int]:
    """Per-module MACs (FlopCounterMode's FLOPs ÷ 2) and output shapes of one forward on the meta device."""
    from torch.utils.flop_counter import FlopCounterMode

    module.train(training)
    shapes: dict[str, tuple[int, ...]] = {}
    handles = [m.register_forward_hook(lambda _m, _a, out, name=name: shapes.__setitem__(name, tuple(out.shape)))
               for name, m in module.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with FlopCounterMode(display=False) as counter:
        module(torch.empty((2,) + size, device="meta"))  # batch 2: train-mode BN needs more than one value
    for handle in handles:
        handle.remove()
    prefix = type(module).__name__ + "."
    macs = {name[len(prefix):]: sum(ops.values()) // 2 for name, ops in counter.get_flop_counts().items()
            if name.startswith(prefix)}
    return macs, shapes, sum(counter.get_flop_counts()["Global"].values()) // 2


@pytest.mark.parametrize("preset, options, builder, kwargs", TORCHVISION_CASES,
                         ids=[f"{c[0]}{c[1] or ''}" for c in TORCHVISION_CASES])
def test_preset_matches_torchvision_layer_by_layer(preset: str, options: dict, builder: str,
                                                   kwargs: dict) -> None:
    torch = pytest.importorskip("torch")
    models = pytest.importorskip("torchvision.models")
    with torch.device("meta"):
        module = getattr(models, builder)(weights=None, **kwargs)
    a = build_preset(preset, options=options, batch=2)
    layers = {layer.name: layer for layer in a.layers + a.training_only}
    owners = {name: sum(p.numel() for p in m.parameters(recurse=False)) for name, m in module.named_modules()}
    owners = {name: n for name, n in owners.items() if n}
    assert owners == {name: layer.params for name, layer in layers.items() if layer.params}
    assert sum(p.numel() for p in module.parameters()) == a.params + a.training_only_params
    inference, shapes, total = _torchvision_counts(torch, module, a.input, training=False)
    assert total == a.macs
    for layer in a.layers:
        if isinstance(layer.spec, (Conv, Linear)):
            assert inference[layer.name] == layer.macs, layer.name
            assert shapes[layer.name] == layer.output, layer.name
    if a.training_only:
        training, _, _ = _torchvision_counts(torch, module, a.input, training=True)
        for layer in a.training_only:
            if isinstance(layer.spec, (Conv, Linear)):
                assert training[layer.name] == layer.macs, layer.name
