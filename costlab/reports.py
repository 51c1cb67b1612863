"""The committed reports under reports/, each rebuilt from scratch by `costlab report`.

Every report is a pure function returning its files (Markdown and CSV); the command writes
them. Reports without measurements are deterministic: tests/test_reports.py regenerates
them and fails when a committed one differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from .analysis import Comparison
from .augment import augmentation_costs
from .expressions import analyze_expression
from .report import comparison_text, convention, count, csv_text, grid, shape
from .zoo import PRESETS, build_preset


@dataclass(frozen=True)
class ReportFile:
    """One file of a report: its path relative to the reports directory, and its text."""

    path: str
    text: str


REGENERATE = "Regenerate with `costlab report` (reports/README.md lists every report)."


def _comparison_report(stem: str, title: str, explanation: str, comparison: Comparison) -> list[ReportFile]:
    md = "\n".join([f"# {title}", "", explanation, "",
                    comparison_text(comparison, "md", per_layer=True).replace("## costlab compare", "## Side by side", 1),
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
        grid(headers, rows, "md", [False, False] + [True] * 6), "", convention("macs"),
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
        grid(headers, rows, "md", [False, True, True, True, True, False]), "",
        "Augmentation runs on the CPU while the accelerator trains, so its cost is in memory traffic "
        "and data-loader throughput rather than arithmetic.", "", REGENERATE, ""])
    table = csv_text(["step", "macs", "ops", "bytes"], [[c.name, c.macs, c.ops, c.bytes] for c in costs]
                    + [[f"{network.name} forward", network.macs, network.ops, network.bytes]])
    return [ReportFile("augmentation.md", md), ReportFile("augmentation.csv", table)]


def claims_report() -> list[ReportFile]:
    """The source text's numeric claims, each computed by costlab (costlab/claims.py)."""
    from .claims import check_claims, render_claims

    results = check_claims()
    return [ReportFile("claims.md", render_claims(results, "md")),
            ReportFile("claims.csv", render_claims(results, "csv"))]


def crosscheck_report() -> list[ReportFile]:
    """Every preset's MACs beside fvcore's and PyTorch's counter's, with the named conventions.

    Builds each preset with the torch bridge (torch and fvcore are imported here only).
    """
    from .torch_bridge.crosscheck import CHECKS, cross_check

    checked = [cross_check(build_preset(name), checks=CHECKS) for name in PRESETS]
    headers = ["network", "input", "costlab MACs", "fvcore", "fvcore − costlab", "agreement",
               "torch ÷ 2", "agreement", "conventions that explain the difference"]
    rows, raw = [], []
    for a in checked:
        fv, th = a.checks["fvcore"], a.checks["torch"]
        named = "; ".join(f"{name} {int(share):+,}" for entry in (fv, th)
                          for name, share in entry.get("conventions", {}).items())
        rows.append([a.name, shape(a.input), count(a.macs), count(int(fv["total"])),
                     f"{int(fv['difference']):+,}", fv["agreement"], count(int(th["total"])),
                     th["agreement"], named or "none"])
        raw.append([a.name, shape(a.input), a.macs, fv["total"], fv["agreement"], th["total"],
                    th["agreement"], named])
    meanings = {name: text for a in checked for entry in a.checks.values()
                for name, text in entry.get("explanations", {}).items()}
    explanations = [f"- **{name}**: {meanings[name]}" for name in sorted(meanings)]
    md = "\n".join([
        "# Cross-check of every preset against fvcore and PyTorch's counter", "",
        "Each preset is built as a real `nn.Module` by costlab's builder and counted by fvcore's "
        "`FlopCountAnalysis` (1 per multiply-add) and by `torch.utils.flop_counter.FlopCounterMode` "
        "(2 FLOPs per multiply-add, halved here), at the preset's default input, batch 1. A difference "
        "is either zero (`exact`) or explained by a named convention of the tool (`explained`), module "
        "by module; `costlab analyze PRESET --check fvcore,torch` shows the rows.", "",
        grid(headers, rows, "md", [False, False, True, True, True, False, True, False, False]), "",
        "The conventions:", "", *explanations, "", convention("macs"), "", REGENERATE, ""])
    table = csv_text(["network", "input", "costlab_macs", "fvcore", "fvcore_agreement", "torch_halved",
                      "torch_agreement", "conventions"], raw)
    return [ReportFile("crosscheck.md", md), ReportFile("crosscheck.csv", table)]


#: The deterministic reports, in the order `costlab report` writes them.
REPORTS: tuple[Callable[[], list[ReportFile]], ...] = (
    inception_report, separable_report, classics_report, claims_report, crosscheck_report,
    augmentation_report,
)


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
              "thop, torchinfo and torchprofile, counts and speed; `python benchmarks/peers.py`"]
    return ReportFile("README.md", "\n".join(lines) + "\n")


def build_reports() -> list[ReportFile]:
    """Every deterministic report, built from scratch, and the index."""
    files = [file for make in REPORTS for file in make()]
    return files + [index(files)]
