"""The source text's numeric claims, each computed with costlab and judged.

The course notes costlab grew from state figures: "LeNet-5 has about 60,000 parameters",
"27 × 16 × 5 = 2196", "28×28×32". :data:`CLAIMS` holds each claim as *data*: its id, its
text, and every figure exactly as the source writes it. Beside the data, each claim has a
function that computes the same figures with costlab (presets, expressions, blocks and
formulas); no computed figure is typed in. :func:`check_claims` compares the two under the
rule the written figure implies and returns immutable :class:`ClaimResult` objects;
:func:`render_claims` writes them as a terminal table, Markdown, CSV or JSON.

Rules (docs/cost-model.md, "Claims of the source text"):

- a figure written plainly (``2,196``, ``28×28×32``, ``13``) is exact: it *holds* when the
  computed value equals it and *does not hold* otherwise;
- ``about X`` / ``around X`` *holds* when equal, *approximately holds* when the computed
  value lies within half a unit of X's last significant digit (``about 60,000``: ±5,000;
  ``about 12.4 million``: ±50,000; ``about 20 %``: ±5 points), else *does not hold*;
- ``X or more`` *holds* at X or above, *approximately holds* within that tolerance below X;
- ``below X`` *holds* when the computed value is less than X, else *does not hold*.

A claim's verdict is the worst verdict of its figures. Nothing here imports torch.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Literal, Mapping, Sequence, Union


from ..core.analysis import Analysis, Layer
from ..core.blocks import inception, inverted_residual
from ..core.errors import CostlabError
from ..core.expressions import analyze_expression
from ..core.formulas import cost_of, numel
from ..core.graph import Net
from ..core.specs import Conv, Elementwise, Linear, conv2d
from ..core.zoo import MOBILENET_V2_PLAN, build_preset


HOLDS = "holds"
APPROXIMATELY = "approximately holds"
FAILS = "does not hold"
VERDICTS = (HOLDS, APPROXIMATELY, FAILS)  # best to worst

Value = Union[Fraction, str]  # a number (exact), or a shape / text compared as text
Rule = Literal["exact", "about", "at least", "below"]


# --- figures as the source writes them -----------------------------------------------------

_NUMBER = re.compile(r"^(?:(?P<approx>about|around)\s+|(?P<below>below)\s+)?(?P<digits>\d[\d,]*(?:\.\d+)?)"
                     r"(?:\s+(?P<scale>thousand|million|billion))?(?:\s*(?P<unit>%|times))?"
                     r"(?P<more>\s+or more)?$")
_SHAPE = re.compile(r"^(?:\d+|n)(?:×(?:\d+|n))+$")
_SCALES = {None: 1, "thousand": 10**3, "million": 10**6, "billion": 10**9}


@dataclass(frozen=True)
class Figure:
    """One figure of a claim, ``stated`` exactly as the source writes it.

    A number (``2,196``, ``about 60,000``, ``12.4 million``, ``about 20 %``, ``1,000 times``,
    ``around 200 million or more``) or a volume written H×W×C (``28×28×32``, ``n×n×18``).
    ``value``, ``rule`` and ``tolerance`` are read from the text: the tolerance of an
    approximate figure is half a unit of its last significant digit (trailing zeros of a
    whole number are not significant).
    """

    quantity: str
    stated: str

    def __post_init__(self) -> None:
        if not (_NUMBER.match(self.stated) or _SHAPE.match(self.stated)):
            raise CostlabError(f"figure {self.stated!r} is neither a number nor a volume")

    @property
    def unit(self) -> str:
        """'count', '%', 'times' or 'volume'."""
        match = _NUMBER.match(self.stated)
        if match is None:
            return "volume"
        return match.group("unit") or "count"

    @property
    def rule(self) -> Rule:
        match = _NUMBER.match(self.stated)
        if match is None:
            return "exact"
        if match.group("more"):
            return "at least"
        if match.group("below"):
            return "below"
        return "about" if match.group("approx") else "exact"

    @property
    def value(self) -> Value:
        """The stated figure: a Fraction (percentages as fractions: 20 % → 1/5), or the volume text."""
        match = _NUMBER.match(self.stated)
        if match is None:
            return self.stated
        number = Fraction(match.group("digits").replace(",", ""))
        number *= _SCALES[match.group("scale")]
        return number / 100 if match.group("unit") == "%" else number

    @property
    def tolerance(self) -> Fraction:
        """Half a unit of the last significant digit (0 for exact figures and volumes)."""
        match = _NUMBER.match(self.stated)
        if match is None or self.rule in ("exact", "below"):
            return Fraction(0)
        digits = match.group("digits").replace(",", "")
        if "." in digits:
            place = Fraction(1, 10 ** len(digits.split(".")[1]))
        else:
            place = Fraction(10 ** (len(digits) - len(digits.rstrip("0"))))
        place *= _SCALES[match.group("scale")]
        if match.group("unit") == "%":
            place /= 100
        return place / 2


@dataclass(frozen=True)
class Computed:
    """A figure as costlab computes it, and how (which preset, expression or block)."""

    value: Value
    how: str


@dataclass(frozen=True)
class Computation:
    """What a claim's function returns: a computed value per figure quantity, and a note."""

    figures: Mapping[str, Computed]
    note: str = ""


@dataclass(frozen=True)
class Claim:
    """A claim of the source text: its id, its text, its figures, and the function computing them."""

    id: str
    text: str
    figures: tuple[Figure, ...]
    compute: Callable[[], Computation]


# --- judging --------------------------------------------------------------------------------

def relative_error(claimed: Value, computed: Value) -> float | None:
    """|computed − claimed| / |claimed| for numbers; None for volumes or a zero claim."""
    if isinstance(claimed, str) or isinstance(computed, str) or claimed == 0:
        return None
    return float(abs(computed - claimed) / abs(claimed))


def judge(figure: Figure, computed: Value) -> str:
    """The verdict of one figure under its rule (module docstring)."""
    claimed = figure.value
    if isinstance(claimed, str) or isinstance(computed, str):
        return HOLDS if claimed == computed else FAILS
    if figure.rule == "below":
        return HOLDS if computed < claimed else FAILS
    if figure.rule == "at least":
        if computed >= claimed:
            return HOLDS
        return APPROXIMATELY if claimed - computed <= figure.tolerance else FAILS
    if computed == claimed:
        return HOLDS
    if figure.rule == "about" and abs(computed - claimed) <= figure.tolerance:
        return APPROXIMATELY
    return FAILS


def show(value: Value, unit: str) -> str:
    """A value for people: 61706 → '61,706'; 1/5 as % → '20.0 %'; 990.2 times → '990.2 times'."""
    if isinstance(value, str):
        return value
    if unit == "%":
        return f"{float(value) * 100:.1f} %"
    text = f"{value.numerator // value.denominator:,}" if value.denominator == 1 else f"{float(value):,.4g}"
    return f"{text} times" if unit == "times" else text


def plain(value: Value) -> int | float | str:
    """A value for JSON and CSV: an int when whole, else a float; volumes stay text."""
    if isinstance(value, str):
        return value
    return value.numerator if value.denominator == 1 else float(value)


def percent(error: float | None) -> str:
    """0.0277 → '2.8 %', 0.0026 → '0.26 %', 0.28 → '28 %'."""
    if error is None:
        return ""
    value = 100 * error
    return f"{value:.0f} %" if value >= 10 else f"{value:.2g} %"


@dataclass(frozen=True)
class FigureCheck:
    """One figure: as stated, as computed, and the verdict."""

    figure: Figure
    computed: Computed
    verdict: str
    relative_error: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"quantity": self.figure.quantity, "stated": self.figure.stated,
                "claimed": plain(self.figure.value), "computed": plain(self.computed.value),
                "computed_text": show(self.computed.value, self.figure.unit),
                "rule": self.figure.rule, "tolerance": plain(self.figure.tolerance),
                "verdict": self.verdict, "relative_error": self.relative_error,
                "how": self.computed.how}


@dataclass(frozen=True)
class ClaimResult:
    """A claim with each of its figures checked; its verdict is the worst of theirs."""

    id: str
    claim: str
    checks: tuple[FigureCheck, ...]
    note: str = ""

    @property
    def verdict(self) -> str:
        return max((check.verdict for check in self.checks), key=VERDICTS.index)

    @property
    def relative_error(self) -> float | None:
        """The largest relative error among the figures that do not hold exactly (None if all do)."""
        errors = [c.relative_error for c in self.checks if c.verdict != HOLDS and c.relative_error is not None]
        return max(errors) if errors else None

    @property
    def verdict_text(self) -> str:
        """'holds', 'approximately holds (2.8 % off)', 'does not hold (1.7 % off)'."""
        error = self.relative_error
        return f"{self.verdict} ({percent(error)} off)" if error else self.verdict

    @property
    def claimed(self) -> list[int | float | str]:
        return [plain(c.figure.value) for c in self.checks]

    @property
    def computed(self) -> list[int | float | str]:
        return [plain(c.computed.value) for c in self.checks]

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: id, claim, claimed, computed, verdict, relative_error, note, figures."""
        return {"id": self.id, "claim": self.claim, "claimed": self.claimed, "computed": self.computed,
                "verdict": self.verdict, "relative_error": self.relative_error, "note": self.note,
                "figures": [c.to_dict() for c in self.checks]}


def check(claim: Claim) -> ClaimResult:
    """Compute ``claim``'s figures with costlab and judge each one."""
    computation = claim.compute()
    missing = [f.quantity for f in claim.figures if f.quantity not in computation.figures]
    if missing:
        raise KeyError(f"claim {claim.id}: nothing computed for {', '.join(missing)}")
    checks = []
    for figure in claim.figures:
        computed = computation.figures[figure.quantity]
        checks.append(FigureCheck(figure, computed, judge(figure, computed.value),
                                  relative_error(figure.value, computed.value)))
    notes = [_failure_note(c) for c in checks if c.verdict == FAILS and not isinstance(c.computed.value, str)]
    note = " ".join(filter(None, notes + [computation.note]))
    return ClaimResult(claim.id, claim.text, tuple(checks), note)


def _failure_note(c: FigureCheck) -> str:
    """'The source's 2,196 does not hold: costlab computes 2,160 (36 fewer, 1.7 %).'"""
    claimed, computed = c.figure.value, c.computed.value
    assert not isinstance(claimed, str) and not isinstance(computed, str)
    difference = computed - claimed
    side = "fewer" if difference < 0 else "more"
    gap = show(abs(difference), c.figure.unit if c.figure.unit != "times" else "count")
    return (f"The source's \"{c.figure.stated}\" ({c.figure.quantity}) does not hold: costlab computes "
            f"{show(computed, c.figure.unit)} ({gap} {side}, {percent(c.relative_error)}).")


def stated_figure(claim_id: str, quantity: str) -> Figure:
    """The figure ``quantity`` of the claim ``claim_id`` as the source states it (data, not a computation)."""
    for claim in CLAIMS:
        if claim.id == claim_id:
            for figure in claim.figures:
                if figure.quantity == quantity:
                    return figure
    raise KeyError(f"{claim_id}: {quantity}")


def check_claims(claims: Sequence[Claim] | None = None) -> tuple[ClaimResult, ...]:
    """Check every claim of :data:`CLAIMS` (or the ones given), in order."""
    return tuple(check(claim) for claim in (CLAIMS + MEMORY_CLAIMS if claims is None else claims))


# --- helpers for the computations ------------------------------------------------------------

def hwc(shape: Sequence[int]) -> str:
    """A batch-first C×H×W shape written the source's way, H×W×C: (1, 32, 28, 28) → '28×28×32'."""
    channels, *spatial = shape[1:]
    return "×".join(str(n) for n in [*spatial, channels])


def _convs(a: Analysis) -> list[Layer]:
    return [layer for layer in a.layers if isinstance(layer.spec, Conv)]


def is_depthwise(layer: Layer) -> bool:
    """A convolution with one group per input channel (and more than one channel)."""
    return isinstance(layer.spec, Conv) and 1 < layer.spec.groups == layer.input_shapes[0][1]


def is_pointwise(layer: Layer) -> bool:
    """An ungrouped 1×1 convolution."""
    return isinstance(layer.spec, Conv) and layer.spec.groups == 1 and set(layer.spec.kernel) == {1}


def separable_pairs(a: Analysis) -> list[tuple[Layer, Layer]]:
    """Each depthwise convolution followed, as the next convolution, by a pointwise one."""
    convs = _convs(a)
    return [(dw, pw) for dw, pw in zip(convs, convs[1:]) if is_depthwise(dw) and is_pointwise(pw)]


def per_output(layer: Layer) -> Fraction:
    """Multiplies per output element: the layer's MACs ÷ its output elements."""
    return Fraction(layer.macs, layer.activations)


def positions(layer: Layer) -> Fraction:
    """Output positions of a convolution: output elements ÷ output channels."""
    return Fraction(layer.activations, layer.output[1])


def _exact(n: int | Fraction) -> Fraction:
    return Fraction(n)


# --- the computations, one per claim ---------------------------------------------------------

def _lenet5_params() -> Computation:
    a = build_preset("lenet5")
    linears = [layer for layer in a.layers if isinstance(layer.spec, Linear)]
    first_fc = a.layers.index(linears[0])
    volume = [layer for layer in a.layers[:first_fc] if len(layer.output) == 4][-1]
    figures = {
        "parameters": Computed(_exact(a.params), f"lenet5 preset: params of its {len(a.layers)} layers"),
        "volume before the FC layers": Computed(hwc(volume.output), f"lenet5 preset: output of {volume.name}"),
        "first FC": Computed(_exact(linears[0].output[-1]), f"lenet5 preset: {linears[0].name} outputs"),
        "second FC": Computed(_exact(linears[1].output[-1]), f"lenet5 preset: {linears[1].name} outputs"),
        "classes (softmax)": Computed(_exact(linears[2].output[-1]),
                                      f"lenet5 preset: {linears[2].name} outputs"),
    }
    return Computation(figures, "costlab's LeNet-5 is the common modern variant (ReLU, max-pool, every "
                                "conv2 filter sees all input maps); LeCun et al.'s original, with its "
                                "sparse C3 connections, is a little smaller. The softmax adds no "
                                "parameters (the preset ends in logits).")


def _alexnet_params() -> Computation:
    alexnet, lenet = build_preset("alexnet"), build_preset("lenet5")
    return Computation({
        "parameters": Computed(_exact(alexnet.params), "alexnet preset (torchvision's AlexNet)"),
        "ratio to LeNet-5": Computed(Fraction(alexnet.params, lenet.params),
                                     "alexnet preset params ÷ lenet5 preset params"),
    })


def _vgg16_params() -> Computation:
    a = build_preset("vgg16")
    return Computation({"parameters": Computed(_exact(a.params), "vgg16 preset (torchvision's VGG-16)")})


CLASSIC_PRESETS = ("lenet5", "alexnet", "vgg11", "vgg13", "vgg16", "vgg19")


def _classic_200m() -> Computation:
    analyses = [build_preset(name) for name in CLASSIC_PRESETS]
    largest = max(analyses, key=lambda a: a.params)
    listed = ", ".join(f"{a.name} {a.params:,}" for a in analyses)
    return Computation(
        {"parameters of the largest classic architecture":
            Computed(_exact(largest.params), f"largest params among the presets {', '.join(CLASSIC_PRESETS)}: "
                                            f"{largest.name}")},
        f"None of the classic architectures reaches that: {listed}.")


def _onebyone_shape() -> Computation:
    a = analyze_expression("conv1x1:32", (192, 28, 28))
    return Computation({"output volume": Computed(hwc(a.layers[0].output), "conv1x1:32 on 192x28x28")})


def _inception_stack() -> Computation:
    net = Net((192, 28, 28))
    projected = inception(net, net.input, 64, 0, 128, 0, 32, 32, reductions=False, norm=False,
                          name="projected")
    bare = inception(net, net.input, 64, 0, 128, 0, 32, None, reductions=False, norm=False, name="bare")
    a = net.analysis("inception", projected)
    pool = a.layer("bare.branch4.0")
    projection = a.layer("projected.branch4.1.conv")
    return Computation({
        "1×1 branch": Computed(hwc(a.layer("projected.branch1.conv").output), "inception block, branch 1"),
        "3×3 branch": Computed(hwc(a.layer("projected.branch2.0.conv").output), "inception block, branch 2"),
        "5×5 branch": Computed(hwc(a.layer("projected.branch3.0.conv").output), "inception block, branch 3"),
        "max-pool branch": Computed(hwc(pool.output), "3×3 max-pool, stride 1, same padding, on 192x28x28"),
        "stacked output": Computed(hwc(projected.shape),
                                   "inception block without reductions, the pool branch projected by a "
                                   "1×1 conv to 32 channels"),
    }, f"A same-padded max-pool keeps all {pool.input_shapes[0][1]} input channels: its branch has "
       f"{projection.output[1]} channels only with a 1×1 convolution after the pool (GoogLeNet's pool "
       f"projection), and only then does the stack reach {hwc(projected.shape)}; the bare pool branch "
       f"stacks to {hwc(bare.shape)}.")


def _inception_5x5() -> Computation:
    layer = analyze_expression("conv5x5:32", (192, 28, 28)).layers[0]
    how = "conv5x5:32 on 192x28x28"
    return Computation({
        "multiplies per output": Computed(per_output(layer), f"{how}: MACs ÷ output elements"),
        "outputs": Computed(_exact(layer.activations), f"{how}: output elements"),
        "multiplies": Computed(_exact(layer.macs), f"{how}: {layer.formula}"),
        "multiplies, rounded": Computed(_exact(layer.macs), f"{how}: MACs"),
    })


def _bottleneck_layer(index: int) -> Computation:
    layer = analyze_expression("conv1x1:16 > conv5x5:32", (192, 28, 28)).layers[index]
    how = f"conv1x1:16 > conv5x5:32 on 192x28x28, layer {layer.name}"
    return Computation({
        "output volume": Computed(hwc(layer.output), how),
        "multiplies per output": Computed(per_output(layer), f"{how}: MACs ÷ output elements"),
        "multiplies": Computed(_exact(layer.macs), f"{how}: {layer.formula}"),
    })


def _bottleneck_total() -> Computation:
    with_reduction = analyze_expression("conv1x1:16 > conv5x5:32", (192, 28, 28))
    direct = analyze_expression("conv5x5:32", (192, 28, 28))
    ratio = Fraction(direct.macs, with_reduction.macs)
    return Computation({
        "with the 1×1 bottleneck": Computed(_exact(with_reduction.macs),
                                            "conv1x1:16 > conv5x5:32 on 192x28x28: sum of its layers"),
        "without": Computed(_exact(direct.macs), "conv5x5:32 on 192x28x28"),
    }, f"The bottleneck costs {float(ratio):.2f}× fewer MACs.")


DSC_INPUT = (3, 6, 6)
DSC_STANDARD = "conv3x3:5,valid"
DSC_SEPARABLE = "dw3x3,valid > pw:5"


def _dsc() -> tuple[Layer, Analysis]:
    standard = analyze_expression(DSC_STANDARD, DSC_INPUT).layers[0]
    return standard, analyze_expression(DSC_SEPARABLE, DSC_INPUT)


def _dsc_standard() -> Computation:
    standard, _ = _dsc()
    per_filter = Fraction(standard.params, standard.spec.out_channels)
    how = f"{DSC_STANDARD} on 3x6x6"
    product = per_filter * positions(standard) * standard.output[1]
    return Computation({
        "output volume": Computed(hwc(standard.output), how),
        "parameters per filter": Computed(per_filter, f"{how}: params ÷ filters"),
        "positions": Computed(positions(standard), f"{how}: output elements ÷ filters"),
        "multiplies": Computed(_exact(standard.macs), f"{how}: {standard.formula}"),
    }, f"{show(per_filter, 'count')} × {show(positions(standard), 'count')} × {standard.output[1]} is "
       f"{show(product, 'count')}, which is what the convolution's formula gives ({standard.formula}).")


def _dsc_part(index: int) -> Computation:
    standard, separable = _dsc()
    layer = separable.layers[index]
    how = f"{DSC_SEPARABLE} on 3x6x6, layer {layer.name}"
    figures = {
        "input volume": Computed(hwc(layer.input_shapes[0]), how),
        "multiplies per output": Computed(per_output(layer), f"{how}: MACs ÷ output elements"),
        "positions": Computed(positions(layer), f"{how}: output elements ÷ filters"),
        "filters": Computed(_exact(layer.output[1]), f"{how}: output channels"),
        "multiplies": Computed(_exact(layer.macs), f"{how}: {layer.formula}"),
        "share of the standard cost": Computed(Fraction(layer.macs, standard.macs),
                                               f"{layer.name} MACs ÷ {DSC_STANDARD} MACs"),
    }
    stated = stated_figure("dsc-standard", "multiplies")
    return Computation(figures, f"Against the source's own {stated.stated} the share would be "
                                f"{show(layer.macs / stated.value, '%')}.")


def _dsc_total() -> Computation:
    standard, separable = _dsc()
    ratio = Fraction(standard.macs, separable.macs)
    return Computation({
        "depthwise + pointwise": Computed(_exact(separable.macs), f"{DSC_SEPARABLE} on 3x6x6: sum of its layers"),
        "standard": Computed(_exact(standard.macs), f"{DSC_STANDARD} on 3x6x6"),
    }, f"The drop is from {standard.macs:,} to {separable.macs:,}: {float(ratio):.2f}× fewer MACs.")


def _dsc_tenfold() -> Computation:
    a = build_preset("mobilenet-v1")
    pairs = separable_pairs(a)
    standard, separable, ratios = 0, 0, []
    for dw, pw in pairs:
        spec = dw.spec
        assert isinstance(spec, Conv)
        full = cost_of(conv2d(pw.spec.out_channels, spec.kernel, spec.stride, spec.padding),  # type: ignore[union-attr]
                       [dw.input_shapes[0]]).macs
        standard += full
        separable += dw.macs + pw.macs
        ratios.append(Fraction(full, dw.macs + pw.macs))
    kernel = pairs[0][0].spec.kernel  # type: ignore[union-attr]
    taps = kernel[0] * kernel[1]
    example_standard, example = _dsc()
    example_ratio = Fraction(example_standard.macs, example.macs)
    return Computation(
        {"standard ÷ depthwise-separable MACs": Computed(
            Fraction(standard, separable),
            f"mobilenet-v1 preset: its {len(pairs)} depthwise-separable layers against standard "
            "convolutions of the same kernel, stride and channels on the same inputs")},
        f"Layer by layer the saving is 1 ÷ (1/N + 1/k²), from {float(min(ratios)):.2f}× to "
        f"{float(max(ratios)):.2f}× on MobileNet v1, and it stays below k² = {taps} for "
        f"{'×'.join(map(str, kernel))} kernels however wide the layer; the source's own "
        f"{hwc((1,) + DSC_INPUT)} example saves only "
        f"{float(example_ratio):.2f}×.")


def _mobilenet_v1_layers() -> Computation:
    a = build_preset("mobilenet-v1")
    pairs = separable_pairs(a)
    last = a.layers.index(pairs[-1][1])
    after = [layer for layer in a.layers[last + 1:] if layer.op in ("pool", "linear", "conv")]
    tail = " → ".join(f"{layer.name} ({layer.type})" for layer in after)
    return Computation(
        {"depthwise-separable layers": Computed(
            _exact(len(pairs)), "mobilenet-v1 preset: depthwise convs each followed by a 1×1 conv")},
        f"After them: {tail}; the softmax follows in the loss (presets end in logits) and costs no MACs.")


def _mobilenet_v2_blocks() -> Computation:
    a = build_preset("mobilenet-v2")
    convs = _convs(a)
    pairs = separable_pairs(a)
    expanded = 0
    for dw, _ in pairs:
        before = convs[convs.index(dw) - 1]
        if is_pointwise(before) and before.output[1] == dw.output[1] > before.input_shapes[0][1]:
            expanded += 1
    skips = sum(1 for layer in a.layers if isinstance(layer.spec, Elementwise))
    return Computation(
        {"bottleneck blocks": Computed(_exact(len(pairs)),
                                       "mobilenet-v2 preset: depthwise convs each followed by a 1×1 projection")},
        f"{expanded} of them have all three convolutions; the first (expansion factor "
        f"{MOBILENET_V2_PLAN[0][0]}) has no expansion convolution, as in the paper's Table 2. {skips} of them add their input back (stride 1, "
        f"same channels).")


EXAMPLE_SIZES = (7, 14, 28, 56, 112)


def _mobilenet_v2_example() -> Computation:
    expansion = max((t for t, *_ in MOBILENET_V2_PLAN), key=[t for t, *_ in MOBILENET_V2_PLAN].count)
    shapes: dict[str, set[str]] = {}
    costs = set()
    for n in EXAMPLE_SIZES:
        net = Net((3, n, n))
        y = inverted_residual(net, net.input, 3, 1, expansion, name="block")
        a = net.analysis("example", y)
        convs = _convs(a)
        for label, layer in zip(("expansion output", "depthwise output", "projection output"), convs):
            shapes.setdefault(label, set()).add(hwc(layer.output).replace(f"{n}×{n}×", "n×n×"))
        costs.add(Fraction(a.macs, n * n))
    how = (f"inverted residual block (expansion factor {expansion}, MobileNet v2's) on 3×n×n "
           f"for n = {', '.join(map(str, EXAMPLE_SIZES))}")

    def one(texts: set[str]) -> str:
        return texts.pop() if len(texts) == 1 else " / ".join(sorted(texts))

    (per_position,) = costs
    return Computation(
        {label: Computed(one(set(texts)), how) for label, texts in shapes.items()},
        f"The block costs {show(per_position, 'count')}·n² MACs, and adds its input back "
        "(stride 1, channels kept).")


CLAIMS: tuple[Claim, ...] = (
    Claim("lenet5-params", "LeNet-5 has about 60,000 parameters; its last layers go from a 5×5×16 volume "
          "to FC 120, FC 84, softmax 10",
          (Figure("parameters", "about 60,000"), Figure("volume before the FC layers", "5×5×16"),
           Figure("first FC", "120"), Figure("second FC", "84"), Figure("classes (softmax)", "10")),
          _lenet5_params),
    Claim("alexnet-params", "AlexNet has about 60 million parameters, about 1,000 times LeNet-5",
          (Figure("parameters", "about 60 million"), Figure("ratio to LeNet-5", "about 1,000 times")),
          _alexnet_params),
    Claim("vgg16-params", "VGG-16 has about 138 million parameters",
          (Figure("parameters", "about 138 million"),), _vgg16_params),
    Claim("classic-200m", "the classic architectures \"hover around 200 million parameters or more\"",
          (Figure("parameters of the largest classic architecture", "around 200 million or more"),),
          _classic_200m),
    Claim("onebyone-shape", "32 filters of 1×1 on 28×28×192 give 28×28×32",
          (Figure("output volume", "28×28×32"),), _onebyone_shape),
    Claim("inception-stack", "on 28×28×192: 64 1×1, 128 3×3, 32 5×5 filters and a same-padded max-pool "
          "branch of 32 channels stack to 28×28×256",
          (Figure("1×1 branch", "28×28×64"), Figure("3×3 branch", "28×28×128"),
           Figure("5×5 branch", "28×28×32"), Figure("max-pool branch", "28×28×32"),
           Figure("stacked output", "28×28×256")),
          _inception_stack),
    Claim("inception-5x5", "32 filters of 5×5×192 on 28×28×192: 4,800 multiplies per output, 25,088 "
          "outputs, 120,422,400 in all (\"around 120 million\")",
          (Figure("multiplies per output", "4,800"), Figure("outputs", "25,088"),
           Figure("multiplies", "120,422,400"), Figure("multiplies, rounded", "around 120 million")),
          _inception_5x5),
    Claim("bottleneck-reduce", "16 filters of 1×1×192 to 28×28×16: 192 multiplies per output, 2,408,448 in all",
          (Figure("output volume", "28×28×16"), Figure("multiplies per output", "192"),
           Figure("multiplies", "2,408,448")),
          lambda: _bottleneck_layer(0)),
    Claim("bottleneck-5x5", "32 filters of 5×5×16 to 28×28×32: 400 multiplies per output, 10,035,200 in all",
          (Figure("output volume", "28×28×32"), Figure("multiplies per output", "400"),
           Figure("multiplies", "10,035,200")),
          lambda: _bottleneck_layer(1)),
    Claim("bottleneck-total", "the two together are about 12.4 million, against about 120 million",
          (Figure("with the 1×1 bottleneck", "about 12.4 million"), Figure("without", "about 120 million")),
          _bottleneck_total),
    Claim("dsc-standard", "5 filters of 3×3×3 on 6×6×3 give 4×4×5: 27 parameters per filter, 16 positions, "
          "\"27 × 16 × 5 = 2196\" multiplies",
          (Figure("output volume", "4×4×5"), Figure("parameters per filter", "27"),
           Figure("positions", "16"), Figure("multiplies", "2,196")),
          _dsc_standard),
    Claim("dsc-depthwise", "depthwise, 3 filters of 3×3: 9 × 16 × 3 = 432, \"about 20 %\" of the standard cost",
          (Figure("multiplies per output", "9"), Figure("positions", "16"), Figure("filters", "3"),
           Figure("multiplies", "432"), Figure("share of the standard cost", "about 20 %")),
          lambda: _dsc_part(0)),
    Claim("dsc-pointwise", "pointwise, 5 filters of 1×1×3 on 4×4×3: 3 × 16 × 5 = 240, \"about 10 %\" of the "
          "standard cost",
          (Figure("input volume", "4×4×3"), Figure("multiplies per output", "3"), Figure("positions", "16"),
           Figure("filters", "5"), Figure("multiplies", "240"),
           Figure("share of the standard cost", "about 10 %")),
          lambda: _dsc_part(1)),
    Claim("dsc-total", "240 + 432 = 672, \"from 2196 to 672\"",
          (Figure("depthwise + pointwise", "672"), Figure("standard", "2,196")), _dsc_total),
    Claim("dsc-tenfold", "depthwise-separable convolutions are \"around 10 times cheaper\" than standard ones",
          (Figure("standard ÷ depthwise-separable MACs", "around 10 times"),), _dsc_tenfold),
    Claim("mobilenet-v1-layers", "MobileNet v1 uses 13 depthwise-separable layers before pooling, FC and softmax",
          (Figure("depthwise-separable layers", "13"),), _mobilenet_v1_layers),
    Claim("mobilenet-v2-blocks", "MobileNet v2 uses its bottleneck block (expansion, depthwise, projection) "
          "17 times",
          (Figure("bottleneck blocks", "17"),), _mobilenet_v2_blocks),
    Claim("mobilenet-v2-example", "expansion of n×n×3 with 18 filters of 1×1, depthwise on n×n×18, projection "
          "back to n×n×3",
          (Figure("expansion output", "n×n×18"), Figure("depthwise output", "n×n×18"),
           Figure("projection output", "n×n×3")),
          _mobilenet_v2_example),
)


GIGABYTE = 10**9


def _mobilenet_ram() -> Computation:
    """MobileNet v1 and v2 at inference, batch 1 (float32): the bytes they hold, in gigabytes."""
    from ..analyses.memory import memory

    figures = {}
    notes = []
    for name in ("mobilenet-v1", "mobilenet-v2"):
        a = build_preset(name)
        m = memory(a, "sgd")
        figures[f"{name} inference peak, GB"] = Computed(
            Fraction(m.inference_peak, GIGABYTE),
            f"{name} preset, batch 1, float32: costlab.analyses.memory inference peak ({m.inference_peak:,} B)")
        notes.append(f"{name}: {m.inference_peak:,} B at inference, {m.training_peak:,} B for an SGD "
                     "training step at batch 1")
    return Computation(figures, "; ".join(notes) + " (reports/memory.md).")


def _mobilenet_v2_projection() -> Computation:
    """MobileNet v2 against the same network with every 1×1 projection removed (reports/memory.md)."""
    from ..analyses.memory import memory
    from ..core.zoo import mobilenet_v2_without_projections, projection_block

    with_projection = memory(build_preset("mobilenet-v2"), "sgd")
    without = memory(mobilenet_v2_without_projections(1), "sgd")
    share = Fraction(with_projection.inference_peak, without.inference_peak)
    block_with, block_without = projection_block(1, True), projection_block(1, False)
    handed = Fraction(numel(block_with.output), numel(block_without.output))
    return Computation(
        {"inference peak with the projections, as a share of without": Computed(
            share, f"mobilenet-v2 preset ({with_projection.inference_peak:,} B) ÷ the same network without "
                   f"its 1×1 projections ({without.inference_peak:,} B), batch 1")},
        f"Within one block the peak hardly changes (it sits at the expansion); what the projection "
        f"shrinks is the tensor each block hands on and keeps for the skip: {show(handed, '%')} of it, "
        "and the weights of the next expansion.")


#: Memory claims of the course notes (quoted in issue 14; not yet in reference.md's claims table).
MEMORY_CLAIMS: tuple[Claim, ...] = (
    Claim("mobilenet-ram", "MobileNet was made for devices \"still below the double-digit RAM gigabytes\"",
          (Figure("mobilenet-v1 inference peak, GB", "below 10"),
           Figure("mobilenet-v2 inference peak, GB", "below 10")), _mobilenet_ram),
    Claim("mobilenet-v2-projection", "MobileNet v2's 1×1 projection is there \"to keep the memory usage low\"",
          (Figure("inference peak with the projections, as a share of without", "below 100 %"),),
          _mobilenet_v2_projection),
)


# --- rendering ---------------------------------------------------------------------------------

RULES = ("Rules: a figure written plainly must equal costlab's computation; \"about X\" approximately "
         "holds within half a unit of X's last significant digit (about 60,000: ±5,000); \"X or more\" "
         "holds at X or above; \"below X\" holds under X. A claim's verdict is the worst of its figures'.")


def _claimed_text(r: ClaimResult) -> str:
    return "; ".join(c.figure.stated for c in r.checks)


def _computed_text(r: ClaimResult) -> str:
    return "; ".join(show(c.computed.value, c.figure.unit) for c in r.checks)


def _summary(results: Sequence[ClaimResult]) -> str:
    counts = {v: sum(1 for r in results if r.verdict == v) for v in VERDICTS}
    return (f"{len(results)} claims: {counts[HOLDS]} hold, {counts[APPROXIMATELY]} approximately hold, "
            f"{counts[FAILS]} do not hold.")


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def claims_markdown(results: Sequence[ClaimResult]) -> str:
    """The Markdown report: a summary table, then each claim's figures, how each is computed, and notes."""
    from tabulate import tabulate  # imported only when a table is drawn

    parts = ["# The source text's numeric claims, computed by costlab", "",
             "Each claim of the course notes (listed in the project's reference figures) is restated "
             "as the source writes it; every computed value comes from costlab's presets, "
             "expressions, blocks and formulas. Regenerate with "
             "`costlab claims --format md --output reports/claims.md`.", "", RULES, "",
             _summary(results), ""]
    rows = [[r.id, _md_cell(r.claim), _md_cell(_claimed_text(r)), _md_cell(_computed_text(r)), r.verdict_text]
            for r in results]
    parts.append(tabulate(rows, headers=["id", "claim", "claimed", "computed", "verdict"],
                          tablefmt="github", disable_numparse=True))
    for r in results:
        parts += ["", f"## {r.id}: {r.verdict_text}", "", f"> {r.claim}", ""]
        figure_rows = [[_md_cell(c.figure.quantity), _md_cell(c.figure.stated),
                        _md_cell(show(c.computed.value, c.figure.unit)),
                        c.verdict + (f" ({percent(c.relative_error)} off)" if c.verdict != HOLDS
                                     and c.relative_error else ""),
                        _md_cell(c.computed.how)] for c in r.checks]
        parts.append(tabulate(figure_rows, headers=["figure", "claimed", "computed", "verdict",
                                                    "computed by costlab as"],
                              tablefmt="github", disable_numparse=True))
        if r.note:
            parts += ["", r.note]
    return "\n".join(parts) + "\n"


def claims_table(results: Sequence[ClaimResult], width: int | None = None) -> str:
    """The terminal report: one row per figure under its claim's id, then the notes; fitted to
    ``width`` columns (None: as wide as the cells) by shortening the figure and claim texts."""
    from ..render.display import Column, fitted, wrap

    rows = []
    for r in results:
        off = f"{percent(r.relative_error)} off" if r.relative_error else ""
        rows.append([r.id, "", off, f"⇒ {r.verdict}"])
        rows += [[f"  {c.figure.quantity}", c.figure.stated, show(c.computed.value, c.figure.unit), c.verdict]
                 for c in r.checks]
    columns = [Column(header, [row[index] for row in rows], keep=None, shrink=shrink, min_width=12)
               for index, (header, shrink) in enumerate((("claim and figure", "head"), ("claimed", "head"),
                                                         ("computed", None), ("verdict", None)))]
    table, _ = fitted(columns, width)
    notes = [f"  {r.id}: {r.note}" for r in results if r.note]
    parts = ["costlab claims: the source text's numeric claims, computed", "", table, ""]
    parts += wrap([_summary(results), RULES, "", "Notes:"] + notes, width)
    return "\n".join(parts) + "\n"


def claims_csv(results: Sequence[ClaimResult]) -> str:
    """One CSV row per figure, with its claim's id, text and verdict."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "claim", "figure", "claimed", "claimed_value", "computed", "rule", "verdict",
                     "relative_error", "claim_verdict", "how"])
    for r in results:
        for c in r.checks:
            writer.writerow([r.id, r.claim, c.figure.quantity, c.figure.stated, plain(c.figure.value),
                             plain(c.computed.value), c.figure.rule, c.verdict,
                             "" if c.relative_error is None else f"{c.relative_error:.6g}", r.verdict,
                             c.computed.how])
    return buffer.getvalue()


def render_claims(results: Sequence[ClaimResult], fmt: str = "table", width: int | None = None) -> str:
    """``costlab claims`` output in one of the CLI's formats (JSON: a list of objects, one per claim)."""
    from ..render.formats import CLI_FORMAT_NAMES, Format

    if fmt == Format.JSON:
        return json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False) + "\n"
    if fmt == Format.CSV:
        return claims_csv(results)
    if fmt == Format.MD:
        return claims_markdown(results)
    if fmt == Format.TABLE:
        return claims_table(results, width)
    raise CostlabError(f"unknown format {fmt!r} (known: {', '.join(CLI_FORMAT_NAMES)})")
