"""The committed reports under reports/, each rebuilt from scratch by `costlab report`.

Every report is a pure function returning its files (Markdown and CSV); the command writes
them. Reports without measurements are deterministic: tests/test_reports.py regenerates
them and fails when a committed one differs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

from ..core.analysis import Comparison
from ..core.augment import augmentation_costs
from ..core.expressions import analyze_expression
from ..render.formats import Format
from ..render.numbers import count
from ..render.report import comparison_text, convention, csv_text, grid, shape
from ..core.zoo import PRESETS, PROJECTION_BLOCK, build_preset, mobilenet_v2_without_projections, projection_block

if TYPE_CHECKING:
    from ..core.analysis import Analysis


@dataclass(frozen=True)
class ReportFile:
    """One file of a report: its path relative to the reports directory, and its text."""

    path: str
    text: str


REGENERATE = "Regenerate with `costlab report` (reports/README.md lists every report)."


def _comparison_report(stem: str, title: str, explanation: str, comparison: Comparison) -> list[ReportFile]:
    md = "\n".join([f"# {title}", "", explanation, "",
                    comparison_text(comparison, Format.MD, per_layer=True).replace("## costlab compare", "## Side by side", 1),
                    REGENERATE, ""])
    rows = [[t.name, layer.name, layer.type, shape(layer.output[1:]), layer.macs, layer.params,
             layer.ops, layer.formula] for t in comparison.targets for layer in t.layers]
    table = csv_text(["target", "layer", "type", "output", "macs", "params", "ops", "formula"], rows)
    return [ReportFile(f"{stem}.md", md), ReportFile(f"{stem}.csv", table)]


def inception_report() -> list[ReportFile]:
    """The 5×5 convolution on 28×28×192, without and with a 1×1 bottleneck to 16 channels."""
    targets = ("conv5x5:32", "conv1x1:16 > conv5x5:32")
    comparison = Comparison(tuple(analyze_expression(t, (192, 28, 28)) for t in targets))
    plain, reduced = comparison.targets
    explanation = (f"32 filters of 5×5 on a 28×28×192 input cost {count(plain.macs)} MACs. A 1×1 "
                   f"bottleneck to 16 channels first costs {count(reduced.layers[0].macs)} + "
                   f"{count(reduced.layers[1].macs)} = {count(reduced.macs)} MACs: "
                   f"{plain.macs / reduced.macs:.2f}× fewer, with {plain.params / reduced.params:.2f}× "
                   "fewer parameters and the same 28×28×32 output.")
    return _comparison_report("inception-bottleneck", "Inception's 1×1 bottleneck", explanation, comparison)


def separable_report() -> list[ReportFile]:
    """Standard vs depthwise-separable 3×3: the source text's 6×6×3 example and a realistic layer."""
    files = []
    cases = [("separable-small", (3, 6, 6), 5, "valid", "the source text's example: 5 filters on 6×6×3"),
             ("separable-512", (512, 14, 14), 512, "same", "a realistic layer: 512 → 512 channels on 14×14")]
    for stem, shape_in, out, pad, what in cases:
        targets = (f"conv3x3:{out},{pad}", f"dw3x3,{pad} > pw:{out}")
        comparison = Comparison(tuple(analyze_expression(t, shape_in) for t in targets))
        standard, separable = comparison.targets
        expected = 1 / out + 1 / 9
        explanation = (f"Standard against depthwise-separable 3×3 convolution, {what}. Ratio of MACs "
                       f"(separable / standard) = {separable.macs / standard.macs:.4f}; the formula "
                       f"1/C_out + 1/k² gives {expected:.4f}"
                       + (" (it holds exactly at stride 1 with same padding)." if pad == "same" else
                          " (valid padding shrinks the depthwise output, so they differ slightly).")
                       + f" Separable is {standard.macs / separable.macs:.2f}× cheaper.")
        files += _comparison_report(stem, f"Depthwise-separable convolution: {what}", explanation, comparison)
    return files


def classics_report() -> list[ReportFile]:
    """Every preset side by side: params, MACs, ratios to LeNet-5, share of params in FC layers."""
    analyses = [build_preset(name) for name in PRESETS]
    base = analyses[0]
    headers = ["network", "input", "params", "MACs", "params ÷ LeNet-5", "MACs ÷ LeNet-5",
               "params in FC layers", "MACs per param"]
    rows, raw = [], []
    for a in analyses:
        fc = sum(layer.params for layer in a.layers if layer.op == "linear")
        fc_share = fc / a.params
        rows.append([a.name, shape(a.input), count(a.params), count(a.macs), f"{a.params / base.params:,.1f}×",
                     f"{a.macs / base.macs:,.1f}×", f"{100 * fc_share:.1f} %", f"{a.macs / a.params:,.1f}"])
        raw.append([a.name, shape(a.input), a.params, a.macs, f"{a.params / base.params:.6g}",
                    f"{a.macs / base.macs:.6g}", fc, f"{fc_share:.6g}"])
    md = "\n".join([
        "# The classic architectures side by side", "",
        "Parameters and MACs of every preset at its default input, against LeNet-5, and the share of "
        "parameters held by the fully connected layers (what made AlexNet and VGG heavy, and what "
        "global average pooling removed from ResNet, GoogLeNet and the MobileNets).", "",
        grid(headers, rows, Format.MD, [False, False] + [True] * 6), "", convention("macs"),
        "GoogLeNet's auxiliary classifiers are training-only and not in its totals.", "", REGENERATE, ""])
    table = csv_text(["network", "input", "params", "macs", "params_vs_lenet5", "macs_vs_lenet5",
                     "fc_params", "fc_params_share"], raw)
    return [ReportFile("classics.md", md), ReportFile("classics.csv", table)]


def augmentation_report(preset: str = "alexnet") -> list[ReportFile]:
    """Per-image cost of mirroring, random cropping and PCA colour shift beside one forward pass."""
    network = build_preset(preset)
    channels, height, width = 3, 256, 256
    crop = network.input[1]
    costs = augmentation_costs(channels, height, width, crop)
    headers = ["step", "MACs", "ops", "bytes (float32)", "arithmetic vs forward", "formula"]
    forward_arithmetic = network.macs + network.ops
    rows = [[c.name, count(c.macs), count(c.ops), count(c.bytes),
             f"{100 * (c.macs + c.ops) / forward_arithmetic:.4f} %", c.formula] for c in costs]
    rows.append([f"one {network.name} forward pass ({shape(network.input)})", count(network.macs),
                 count(network.ops), count(network.bytes), "100 %", "sum of its layers"])
    md = "\n".join([
        "# Data augmentation against a forward pass", "",
        f"The augmentations the course notes name, per {channels}×{height}×{width} image (AlexNet's "
        f"{height} → {crop} random crop), beside one forward pass of {network.name}. Mirroring and "
        "cropping do no arithmetic at all: they only move bytes. The PCA colour shift costs one add per "
        "element after a 3×3 product per image; the eigen-decomposition of the pixel covariance is "
        "done once per data set.", "",
        grid(headers, rows, Format.MD, [False, True, True, True, True, False]), "",
        "Augmentation runs on the CPU while the accelerator trains, so its cost is in memory traffic "
        "and data-loader throughput rather than arithmetic.", "", REGENERATE, ""])
    table = csv_text(["step", "macs", "ops", "bytes"], [[c.name, c.macs, c.ops, c.bytes] for c in costs]
                    + [[f"{network.name} forward", network.macs, network.ops, network.bytes]])
    return [ReportFile("augmentation.md", md), ReportFile("augmentation.csv", table)]


def claims_report() -> list[ReportFile]:
    """The source text's numeric claims, each computed by costlab (costlab/app/claims.py)."""
    from .claims import check_claims, render_claims

    results = check_claims()
    return [ReportFile("claims.md", render_claims(results, Format.MD)),
            ReportFile("claims.csv", render_claims(results, Format.CSV))]


def crosscheck_report() -> list[ReportFile]:
    """Every preset's MACs beside fvcore's and PyTorch's counter's, with the named conventions.

    Builds each preset with the torch bridge (torch and fvcore are imported here only).
    """
    from ..torch_bridge.crosscheck import CHECKS, cross_check

    checked = [cross_check(build_preset(name), checks=CHECKS) for name in PRESETS]
    headers = ["network", "input", "costlab MACs", "fvcore", "fvcore − costlab", "agreement",
               "torch ÷ 2", "agreement", "conventions that explain the difference"]
    rows, raw = [], []
    for a in checked:
        fv, th = a.checks["fvcore"], a.checks["torch"]
        named = "; ".join(f"{name} {int(share):+,}" for check in (fv, th)
                          for name, share in check.conventions.items())
        rows.append([a.name, shape(a.input), count(a.macs), count(int(fv.total)),
                     f"{int(fv.difference):+,}", fv.agreement, count(int(th.total)),
                     th.agreement, named or "none"])
        raw.append([a.name, shape(a.input), a.macs, fv.total, fv.agreement, th.total, th.agreement, named])
    meanings = {name: text for a in checked for check in a.checks.values()
                for name, text in check.explanations.items()}
    explanations = [f"- **{name}**: {meanings[name]}" for name in sorted(meanings)]
    md = "\n".join([
        "# Cross-check of every preset against fvcore and PyTorch's counter", "",
        "Each preset is built as a real `nn.Module` by costlab's builder and counted by fvcore's "
        "`FlopCountAnalysis` (1 per multiply-add) and by `torch.utils.flop_counter.FlopCounterMode` "
        "(2 FLOPs per multiply-add, halved here), at the preset's default input, batch 1. A difference "
        "is either zero (`exact`) or explained by a named convention of the tool (`explained`), module "
        "by module; `costlab analyze PRESET --check fvcore,torch` shows the rows.", "",
        grid(headers, rows, Format.MD, [False, False, True, True, True, False, True, False, False]), "",
        "The conventions:", "", *explanations, "", convention("macs"), "", REGENERATE, ""])
    table = csv_text(["network", "input", "costlab_macs", "fvcore", "fvcore_agreement", "torch_halved",
                      "torch_agreement", "conventions"], raw)
    return [ReportFile("crosscheck.md", md), ReportFile("crosscheck.csv", table)]


# --- memory ------------------------------------------------------------------------------------

#: The inverted residual the memory report prices: MobileNet v2's stage at 56×56 (24 channels, t = 6).
MEMORY_BATCHES = (1, 32)
MEMORY_NETWORKS = ("mobilenet-v1", "mobilenet-v2", "resnet50")


MEASURED_MEMORY_REPORT = "memory-measured.md"


def memory_cases() -> list[tuple[str, "Analysis"]]:
    """The analyses of the memory report, keyed by a label: the block with and without its projection,
    MobileNet v2 with and without projections, and the three networks, at each batch of MEMORY_BATCHES."""
    cases = []
    for batch in MEMORY_BATCHES:
        for projection in (True, False):
            a = projection_block(batch, projection)
            cases.append((f"inverted residual {a.name}, batch {batch}", a))
        without = mobilenet_v2_without_projections(batch)
        cases.append((f"{without.name}, batch {batch}", without))
        for name in MEMORY_NETWORKS:
            cases.append((f"{name}, batch {batch}", build_preset(name, batch=batch)))
    return cases


def memory_report() -> list[ReportFile]:
    """Weights, inference peak and Adam training-step peak of the MobileNet v2 projection case and of
    MobileNet v1, v2 and ResNet-50 at batch 1 and 32 (predicted by costlab.analyses.memory; measured in
    reports/memory-measured.md)."""
    from ..analyses.memory import memory
    from ..render.numbers import Style, number

    headers = ["case", "params", "weights", "inference peak", "at", "output handed on",
               "saved for backward", "training peak (Adam)", "where"]
    rows, raw = [], []
    predicted = {}
    for label, a in memory_cases():
        m = memory(a, "adam")
        predicted[label] = m
        output = math.prod((a.batch,) + tuple(a.output)) * 4
        rows.append([label, count(a.params), number(m.weights, Style.BYTES_2DP), number(m.inference_peak, Style.BYTES_2DP),
                     m.inference_peak_at, number(output, Style.BYTES_2DP), number(m.saved, Style.BYTES_2DP), number(m.training_peak, Style.BYTES_2DP),
                     m.training_peak_at])
        raw.append([label, a.params, m.weights, m.buffers, m.inputs, m.inference_peak, m.inference_peak_at,
                    output, m.saved, m.optimizer_state, m.training_peak, m.training_peak_at])
    block = {p: predicted[f"inverted residual {'with' if p else 'without'} projection, batch 1"] for p in (True, False)}
    net = {p: predicted["mobilenet-v2, batch 1" if p else "mobilenet-v2 without projections, batch 1"]
           for p in (True, False)}
    c, n, t = PROJECTION_BLOCK["channels"], PROJECTION_BLOCK["size"], PROJECTION_BLOCK["expansion"]
    md = "\n".join([
        "# Memory: what a design holds at inference and in a training step", "",
        "Predicted by `costlab.analyses.memory` from liveness over each design's layer graph (float32; a tensor "
        "is freed after its last use; docs/cost-model.md, \"Memory\"). The training step is the steady "
        "state of Adam: weights, two state tensors per trainable parameter, the gradients, and what "
        "autograd saves for the backward pass. [memory-measured.md](memory-measured.md) holds the same "
        "cases measured by PyTorch's MemTracker on CPU, with the ratios.", "",
        "## MobileNet v2's 1×1 projection", "",
        f"The inverted residual on {c}×{n}×{n} (expansion {t}: 1×1 to {c * t} channels, 3×3 depthwise, "
        f"1×1 projection back to {c}, and the skip) against the same block without its projection. "
        f"Within the block the peak is where the expansion and its batch norm are both alive: "
        f"{number(block[True].inference_peak, Style.BYTES_2DP)} with the projection, {number(block[False].inference_peak, Style.BYTES_2DP)} "
        f"without. The projection pays off in what the block hands to the next one and keeps for "
        f"the skip ({c} channels instead of {c * t}), and in the next block's expansion weights: the "
        f"whole MobileNet v2 peaks at {number(net[True].inference_peak, Style.BYTES_2DP)} at inference, against "
        f"{number(net[False].inference_peak, Style.BYTES_2DP)} for the same network with every projection removed "
        f"({100 * net[True].inference_peak / net[False].inference_peak:.1f} %).", "",
        grid(headers, rows, Format.MD, [False, True, True, True, False, True, True, True, False]), "",
        "`at`: the layer whose output, once written, brings the inference peak; `where`: the phase of "
        "the training step at its peak and the layer it is at. The input is held by the caller throughout; parameters are "
        "float32 whatever the batch, so at batch 1 the weights dominate and at batch 32 the "
        "activations saved for backward do.", "", REGENERATE, ""])
    table = csv_text(["case", "params", "weights_bytes", "buffers_bytes", "input_bytes", "inference_peak_bytes",
                      "inference_peak_at", "output_bytes", "saved_bytes", "adam_state_bytes",
                      "training_peak_bytes", "training_peak_at"], raw)
    return [ReportFile("memory.md", md), ReportFile("memory.csv", table)]


def index(files: Sequence[ReportFile]) -> ReportFile:
    """reports/README.md: what each report holds and how it is made."""
    lines = ["# Reports", "", "Every file here is regenerated from scratch by `costlab report` "
             "(deterministic, no measurements; tests/test_reports.py fails when a committed one "
             "differs from a fresh run). Measured reports are regenerated by the command named in them.", ""]
    for file in files:
        if file.path.endswith(".md"):
            title = file.text.splitlines()[0].lstrip("# ")
            stem = file.path[:-3]
            csv_note = f" ([csv]({stem}.csv))" if any(f.path == f"{stem}.csv" for f in files) else ""
            lines.append(f"- [{file.path}]({file.path}){csv_note}: {title}")
    lines += ["", "Measured reports (timings differ from run to run, so no test compares them):", "",
              "- [latency-inception.md](latency-inception.md), [latency-separable.md](latency-separable.md): "
              "the inception bottleneck and standard vs depthwise-separable (512 → 512 at 14×14) with "
              "measured latency and the roofline; [latency-augmentation.md](latency-augmentation.md): the "
              "augmentations measured beside a forward pass; `costlab report --latency cpu` (or `cuda`)",
              "- [peers.md](peers.md) ([csv](peers.csv)): costlab beside fvcore, PyTorch's counter, ptflops, "
              "thop, torchinfo and torchprofile, counts and speed; `python benchmarks/peers.py`",
              f"- [{MEASURED_MEMORY_REPORT}]({MEASURED_MEMORY_REPORT}): the memory report's cases measured by "
              "MemTracker on CPU beside the prediction (exact bytes, but minutes of CPU and gigabytes of "
              "memory); `python benchmarks/bench_memory_model.py --report`"]
    return ReportFile("README.md", "\n".join(lines) + "\n")


#: The deterministic reports, in the order `costlab report` writes them.
REPORTS: tuple[Callable[[], list[ReportFile]], ...] = (
    inception_report, separable_report, classics_report, claims_report, crosscheck_report,
    augmentation_report, memory_report,
)


def build_reports() -> list[ReportFile]:
    """Every deterministic report, built from scratch, and the index."""
    files = [file for make in REPORTS for file in make()]
    return files + [index(files)]

