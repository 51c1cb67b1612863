"""The two canonical comparisons with measured latency, as Markdown reports.

- ``inception``: the 5×5 convolution (32 filters) on 28×28×192, without and with a 1×1
  bottleneck to 16 channels;
- ``separable``: a standard 3×3 convolution against a depthwise-separable one (3×3 depthwise
  → 1×1 pointwise), 512 → 512 channels at 14×14.

Each report puts the MAC ratio beside the latency ratio measured in the same run, and the
roofline's prediction between them: what counting bytes as well as MACs explains of the
gap, and what is left to the kernels' efficiency. :func:`latency_report` measures and
renders one; :func:`case_markdown` only renders an already measured comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

from ..core.analysis import Analysis, Comparison, Layer
from ..core.errors import CostlabError
from ..render.features.latency import latency_text, threads_text
from ..render.numbers import Style, count, number
from ..core.specs import Shape
from .request import Request
from .targets import analyze_target

Progress = Callable[[str], None]

#: Ratios within this fraction of each other are said to agree.
AGREEMENT = 0.10


@dataclass(frozen=True)
class LatencyCase:
    """A canonical comparison: a baseline and a cheaper design on one input."""

    key: str
    title: str
    baseline: str
    cheaper: str
    input: Shape
    filename: str
    question: str

    @property
    def targets(self) -> tuple[str, str]:
        return (self.baseline, self.cheaper)


LATENCY_CASES: dict[str, LatencyCase] = {
    "inception": LatencyCase(
        "inception", "the inception 5×5 with and without its 1×1 bottleneck",
        "conv5x5:32", "conv1x1:16 > conv5x5:32", (192, 28, 28), "latency-inception.md",
        "A 1×1 bottleneck to 16 channels cuts the MACs of 32 filters of 5×5 on 28×28×192 by almost "
        "ten. Is the bottlenecked design ten times faster?"),
    "separable": LatencyCase(
        "separable", "standard vs depthwise-separable 3×3, 512 → 512 channels at 14×14",
        "conv3x3:512", "dw3x3 > pw:512", (512, 14, 14), "latency-separable.md",
        "A depthwise-separable 3×3 convolution costs 1/C_out + 1/k² of a standard one, "
        "1/512 + 1/9 here. Is it that much faster?"),
}


def case_measurement_count(case: LatencyCase) -> int:
    """Timings one report takes: each target whole and each of its layers."""
    return sum(1 + len(analyze_target(Request.of(t, case.input)).layers) for t in case.targets)


def measure_case(case: LatencyCase, device: str = "cpu", threads: int | None = None, batch: int = 1,
                 peaks: Any = None, progress: Progress | None = None, timing: Any = None,
                 calibration: Any = None) -> Comparison:
    """Both targets of the case, counted and timed (target and layers) in one run.

    ``peaks``: a :class:`~.roofline.Peaks` (default: cached, else calibrated); ``timing``: a
    :class:`~.timing.TimingSettings` (default: the standard care); ``calibration``: a kernel
    calibration (:class:`costlab.analyses.prediction.Calibration`) to predict each target and layer
    from before measuring it (None: no prediction).
    """
    from ..torch_bridge.latency import LatencySettings, measure_all
    from .pipeline import prediction_step, with_measured_prediction

    analyses = [analyze_target(Request.of(t, case.input, batch=batch)) for t in case.targets]
    if calibration is not None:
        predict = prediction_step(device, threads, calibration)
        analyses = [predict(a) for a in analyses]
    settings = (LatencySettings(device=device, threads=threads) if timing is None else
                LatencySettings(device=device, threads=threads, timing=timing, target_timing=None))
    return Comparison(tuple(with_measured_prediction(a)
                            for a in measure_all(analyses, settings, peaks=peaks, progress=progress)))


def measure_case_settled(case: LatencyCase, device: str = "cpu", threads: int | None = None, batch: int = 1,
                         peaks: Any = None, progress: Progress | None = None, timing: Any = None,
                         min_cpu_share: float = 0.0, attempts: int = 1, calibration: Any = None) -> Comparison:
    """:func:`measure_case`, measured again (up to ``attempts`` times in all) while a target's CPU share
    is below ``min_cpu_share`` — other work held the cores; a CostlabError if it never settles."""
    shares: list[float] = []
    for _ in range(max(1, attempts)):
        comparison = measure_case(case, device, threads, batch, peaks, progress, timing, calibration)
        shares = [t.latency.cpu_share for t in comparison.targets  # type: ignore[union-attr]
                  if t.latency.cpu_share is not None]  # type: ignore[union-attr]
        if all(share >= min_cpu_share for share in shares):
            return comparison
    raise CostlabError(f"latency report {case.key}: other work held the CPU in each of {attempts} attempts "
                       f"(CPU share {min(shares):.0%}, below {min_cpu_share:.0%}); measure on a quiet machine")


def report_filename(case: LatencyCase, device: str) -> str:
    """latency-separable.md on the CPU, latency-separable-cuda.md on a GPU (so neither replaces the other)."""
    return case.filename if device == "cpu" else case.filename.replace(".md", f"-{device.split(':')[0]}.md")


def latency_report(name: str, device: str = "cpu", threads: int | None = None, batch: int = 1,
                   peaks: Any = None, progress: Progress | None = None, command: str = "",
                   timing: Any = None, min_cpu_share: float = 0.0, attempts: int = 1,
                   calibration: Any = None) -> str:
    """Measure the canonical case ``name`` (inception or separable) and render its Markdown report.

    This is what ``costlab report --latency`` writes to ``reports/`` + :func:`report_filename`.
    ``min_cpu_share`` and ``attempts``: see :func:`measure_case_settled`; ``calibration``: the kernel
    calibration whose predictions stand beside the measurements (None: none).
    """
    if name not in LATENCY_CASES:
        raise CostlabError(f"no latency report {name!r} (known: {', '.join(LATENCY_CASES)})")
    case = LATENCY_CASES[name]
    comparison = measure_case_settled(case, device, threads, batch, peaks, progress, timing, min_cpu_share,
                                      attempts, calibration)
    return case_markdown(case, comparison, command)


# --- rendering -----------------------------------------------------------------------------------

def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def _percent(fraction: float | None) -> str:
    return "–" if fraction is None else f"{100 * fraction:.0f} %"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> str:
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join("---:" if r else "---" for r in right) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _machine(t: Analysis) -> str:
    latency = t.latency
    assert latency is not None
    peaks = (t.roofline.peaks if t.roofline is not None else None) or {}
    where = latency.device_name or "?"
    if latency.device == "cpu":
        where += f", CPU, {threads_text(latency.threads or 0)}"
    else:
        where += f" ({latency.device})"
    load = f"; 1-minute load average {latency.load_1min:.2f} at the start" if latency.load_1min is not None else ""
    return (f"{where}; torch {peaks.get('torch_version', '?')}; {latency.dtype}, batch {t.batch}; "
            f"host {peaks.get('host', '?')}{load}")


def _fraction_or(roofline: Any, default: float) -> float:
    """A roofline's measured fraction, or ``default`` where it has none."""
    fraction = roofline.fraction if roofline is not None else None
    return default if fraction is None else fraction


def _layer_sentence(target: str, layer: Layer, ridge: float) -> str:
    roof, latency = layer.roofline, layer.latency
    assert roof is not None and latency is not None
    intensity = roof.intensity
    side = "above" if intensity is not None and intensity > ridge else "below"
    text = (f"`{target}` {layer.name} ({layer.type}): {'–' if intensity is None else f'{intensity:.1f}'} "
            f"FLOP/B, {side} the ridge of {ridge:.1f}: {roof.bound}-bound. The roofline allows "
            f"{number(roof.predicted_ms, Style.MS)} ms; measured {number(latency.median, Style.MS)} ms, "
            f"{_percent(roof.fraction)} of its roofline")
    if (roof.fraction or 0) > 1:
        text += (f" — faster than the bound: its {count(layer.bytes)} bytes stay in cache from call to "
                 "call, where the copy benchmark's bandwidth (a buffer far larger than the caches) "
                 "understates what it gets")
    return text + "."


def _explanation(base: Analysis, cheap: Analysis) -> list[str]:
    """What the roofline says about the gap between the MAC ratio and the measured ratio."""
    peaks = base.roofline.peaks  # type: ignore[union-attr]
    ridge = peaks["ridge"]
    mac_ratio = _ratio(base.macs, cheap.macs)
    measured = _ratio(base.latency.median, cheap.latency.median)  # type: ignore[union-attr]
    predicted = _ratio(base.roofline.predicted_ms, cheap.roofline.predicted_ms)  # type: ignore[union-attr]
    bytes_ratio = _ratio(base.bytes, cheap.bytes)
    lines = [f"Peaks measured on this machine: {peaks['gflops']:.1f} GFLOP/s "
             f"({peaks['matmul_size']}×{peaks['matmul_size']} matrix product) and {peaks['gbps']:.1f} GB/s "
             f"(copy of {peaks['copy_bytes'] / 2**20:.0f} MiB); ridge {ridge:.1f} FLOP/B. A layer's bound is "
             "max(FLOPs / peak FLOP/s, bytes / peak B/s), a design's the sum of its layers'.", ""]
    lines += [f"- {_layer_sentence(t.name, layer, ridge)}" for t in (base, cheap) for layer in t.layers]
    lines.append("")
    memory_bound = [layer for layer in cheap.layers if layer.roofline.bound == "memory"]  # type: ignore[union-attr]
    if mac_ratio and predicted and predicted < (1 - AGREEMENT) * mac_ratio:
        names = ", ".join(f"{layer.name} ({layer.type})" for layer in memory_bound) or "none of its layers"
        lines.append(
            f"**Counts:** the MACs say {number(mac_ratio, Style.TIMES)}; the roofline, which also counts bytes, says "
            f"{number(predicted, Style.TIMES)}. In `{cheap.name}`, {names} "
            f"{'is' if len(memory_bound) == 1 else 'are'} memory-bound: {'its' if len(memory_bound) == 1 else 'their'} "
            f"time follows bytes, not MACs, and the design moves only {number(bytes_ratio, Style.TIMES)} fewer bytes "
            f"({count(cheap.bytes)} against {count(base.bytes)}).")
    else:
        others = [layer for layer in cheap.layers if layer not in memory_bound and layer.macs]
        if memory_bound:
            share = (sum(layer.roofline.predicted_ms for layer in memory_bound)  # type: ignore[union-attr]
                     / cheap.roofline.predicted_ms)  # type: ignore[union-attr]
            names = ", ".join(f"{layer.name} ({layer.type})" for layer in memory_bound)
            why = (f"{names} {'is' if len(memory_bound) == 1 else 'are'} memory-bound but only "
                   f"{_percent(share)} of the design's bound; "
                   + (f"the compute-bound {', '.join(f'{o.name} ({o.type})' for o in others)} "
                      f"{'sets' if len(others) == 1 else 'set'} the pace" if others else "the rest sets the pace"))
        else:
            why = "every layer is compute-bound"
        lines.append(
            f"**Counts:** the MACs say {number(mac_ratio, Style.TIMES)} and the roofline says {number(predicted, Style.TIMES)}: {why}, "
            "so at the machine's peaks the two designs would differ by about their MACs.")
    base_fraction = base.roofline.fraction  # type: ignore[union-attr]
    cheap_fraction = cheap.roofline.fraction  # type: ignore[union-attr]
    worst = min(cheap.layers, key=lambda layer: _fraction_or(layer.roofline, 1.0))
    lines.append("")
    if measured and predicted and measured < (1 - AGREEMENT) * predicted:
        lines.append(
            f"**Measured:** {number(measured, Style.TIMES)}, short even of the roofline's {number(predicted, Style.TIMES)}. The roofline "
            "bounds the time from below; how far each kernel stays above its bound is what no count holds: "
            f"`{base.name}` runs at {_percent(base_fraction)} of its roofline, `{cheap.name}` at "
            f"{_percent(cheap_fraction)}, its {worst.name} ({worst.type}) at "
            f"{_percent(worst.roofline.fraction)}. The cheaper design's smaller, lower-intensity layers "  # type: ignore[union-attr]
            "run further from the machine's peaks than the baseline's one large convolution.")
    elif measured and predicted and measured > (1 + AGREEMENT) * predicted:
        lines.append(
            f"**Measured:** {number(measured, Style.TIMES)}, more than the roofline's {number(predicted, Style.TIMES)}: "
            f"`{cheap.name}` runs closer to its roofline ({_percent(cheap_fraction)}) than `{base.name}` "
            f"({_percent(base_fraction)}).")
    else:
        lines.append(f"**Measured:** {number(measured, Style.TIMES)}, as the roofline predicts ({number(predicted, Style.TIMES)}); "
                     f"both designs run at a like share of their roofline ({_percent(base_fraction)} and "
                     f"{_percent(cheap_fraction)}).")
    for t in (base, cheap):
        whole, parts = t.latency.median, t.latency.sum_of_layers  # type: ignore[union-attr]
        if parts and abs(whole - parts) > AGREEMENT * parts:
            lines += [""]
            lines.append(
                f"Run whole, `{t.name}` takes {number(whole, Style.MS)} ms against {number(parts, Style.MS)} ms for its "
                f"layers timed alone ({'more' if whole > parts else 'less'}): "
                + ("the difference is the cost of chaining them (the intermediate tensor leaves the cache, "
                   "one more module call)." if whole > parts else
                   "timed alone, each layer's input is fresh from the allocator rather than from the layer before."))
    return lines


def _signed(fraction: float | None) -> str:
    return "–" if fraction is None else f"{100 * fraction:+.0f} %"


def _prediction_lines(base: Analysis, cheap: Analysis, mac_ratio: float | None, predicted_ratio: float | None,
                      measured: float | None) -> list[str]:
    """The kernel-calibrated prediction's ratio against the measured one, and the calibration it used."""
    if predicted_ratio is None or base.prediction is None:
        return ["No kernel calibration of this machine was cached when this was measured: run "
                "`costlab calibrate`, then regenerate, for the predicted ratio (docs/cost-model.md, "
                "\"Predicted latency\")."]
    gap = predicted_ratio / measured - 1 if measured else None
    verdict = ("within" if gap is not None and abs(gap) <= AGREEMENT else "outside")
    return [
        f"Predicted from the counts and the {base.prediction.described} (each layer by its kernel family's "
        f"fitted model; nothing about these two designs was timed to make it): {number(predicted_ratio, Style.TIMES)}, "
        f"against {number(measured, Style.TIMES)} measured and {number(mac_ratio, Style.TIMES)} by MACs — {_signed(gap)}, {verdict} the "
        f"{100 * AGREEMENT:.0f} % the issue asks for. The per-call cost, the depthwise and pointwise kernels' "
        "lower efficiency and the small layers' poorer use of the cores are what the fitted families hold "
        "and the MACs and the roofline do not (docs/cost-model.md).",
    ]


def case_markdown(case: LatencyCase, comparison: Comparison, command: str = "") -> str:
    """The Markdown report of a measured comparison of ``case`` (baseline first)."""
    base, cheap = comparison.targets
    mac_ratio = _ratio(base.macs, cheap.macs)
    measured = _ratio(base.latency.median, cheap.latency.median)  # type: ignore[union-attr]
    predicted = _ratio(base.roofline.predicted_ms, cheap.roofline.predicted_ms)  # type: ignore[union-attr]
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    noisy = [t.name for t in (base, cheap) if t.latency.noisy]  # type: ignore[union-attr]
    noisy += [f"{t.name}: {layer.name}" for t in (base, cheap) for layer in t.layers if layer.latency.noisy]  # type: ignore[union-attr]
    summary_rows = []
    for index, t in enumerate((base, cheap)):
        first = index == 0
        summary_rows.append([
            f"`{t.name}`", count(t.macs),
            "baseline" if first else f"{number(mac_ratio, Style.TIMES)} fewer",
            latency_text(t.latency),  # type: ignore[union-attr]
            "baseline" if first else f"{number(measured, Style.TIMES)} faster",
            number(t.roofline.predicted_ms, Style.MS),  # type: ignore[union-attr]
            "baseline" if first else f"{number(predicted, Style.TIMES)} faster",
            _percent(t.roofline.fraction),  # type: ignore[union-attr]
            number(t.latency.sum_of_layers, Style.MS),  # type: ignore[union-attr,arg-type]
            _percent(t.latency.cpu_share),  # type: ignore[union-attr]
        ])
    predictions = [t.prediction for t in (base, cheap)]
    predicted_ratio = (_ratio(predictions[0].total_ms, predictions[1].total_ms)  # type: ignore[union-attr]
                       if all(p is not None for p in predictions) else None)
    layer_rows = []
    for t in (base, cheap):
        by_layer = t.prediction.by_layer if t.prediction is not None else {}
        for layer in t.layers:
            roof, latency = layer.roofline, layer.latency
            assert roof is not None and latency is not None
            layer_rows.append([
                f"`{t.name}`", layer.name, layer.type, count(layer.macs), count(roof.flops),
                count(layer.bytes), f"{roof.intensity:.1f}", roof.bound,
                number(roof.predicted_ms, Style.MS), latency_text(latency),
                f"{roof.achieved_gflops or 0:.1f}", _percent(roof.fraction),
            ] + ([number(by_layer[layer.name], Style.MS), _signed(by_layer[layer.name] / latency.median - 1)]
                 if predicted_ratio is not None and layer.name in by_layer else
                 ["–", "–"] if predicted_ratio is not None else []))
    summary_headers = ["target", "MACs", "MAC ratio", "latency ms (median ± IQR)", "latency ratio", "roofline ms",
                       "roofline ratio", "of roofline", "sum of layers ms", "CPU share"]
    summary_right = [False, True, False, True, False, True, False, True, True, True]
    layer_headers = ["target", "layer", "type", "MACs", "FLOPs", "bytes", "FLOP/B", "bound", "roofline ms",
                     "measured ms ± IQR", "GFLOP/s", "of roofline"]
    layer_right = [False, False, False, True, True, True, True, False, True, True, True, True]
    if predicted_ratio is not None:
        for index, (row, p) in enumerate(zip(summary_rows, predictions)):
            row += [number(p.total_ms, Style.MS), "baseline" if index == 0 else f"{number(predicted_ratio, Style.TIMES)} faster",  # type: ignore[union-attr]
                    _signed(p.error)]  # type: ignore[union-attr]
        summary_headers += ["predicted ms", "predicted ratio", "prediction error"]
        summary_right += [True, False, True]
        layer_headers += ["predicted ms", "prediction error"]
        layer_right += [True, True]
    parts = [
        f"# Latency: {case.title}", "",
        case.question, "",
        f"Input {'×'.join(map(str, case.input))} (C×H×W). Measured {when} on {_machine(base)}.",
    ]
    if command:
        parts += ["", f"Regenerate with `{command}`."]
    headline = (f"**MAC ratio {number(mac_ratio, Style.TIMES)}, measured latency ratio {number(measured, Style.TIMES)}** (both from this "
                f"run); the roofline predicts {number(predicted, Style.TIMES)}.")
    if predicted_ratio is not None:
        headline = (f"**MAC ratio {number(mac_ratio, Style.TIMES)}, predicted ratio {number(predicted_ratio, Style.TIMES)}, measured latency "
                    f"ratio {number(measured, Style.TIMES)}** (all from this run); the roofline predicts {number(predicted, Style.TIMES)}.")
    parts += [
        "", "## MACs beside measured latency (one run)", "",
        headline, "",
        _table(summary_headers, summary_rows, summary_right),
        "", "## Per layer", "",
        _table(layer_headers, layer_rows, layer_right),
        "", "## What the roofline says", "",
    ]
    parts += _explanation(base, cheap)
    parts += ["", "## What the calibrated prediction says", ""] + _prediction_lines(
        base, cheap, mac_ratio, predicted_ratio, measured)
    latency = base.latency
    parts += [
        "", "## How this was measured", "",
        f"Each target ran whole as one module and each layer alone on a random input of its recorded shape, "
        f"in eval mode under torch.inference_mode, after a warm-up; calls were timed in blocks "
        f"({latency.timer}) until the interquartile range was within "  # type: ignore[union-attr]
        f"{100 * latency.noise_threshold:.0f} % of the median or the time limit came; "  # type: ignore[index]
        "a measurement still above it is marked noisy. FLOPs = 2 × MACs; bytes = input + weights + output "
        "of each layer, once each. 'of roofline' = roofline ms / measured ms. 'CPU share' = the process's "
        "CPU time ÷ (wall time × threads) while the target was timed: near 100 % when its threads had the "
        "cores to themselves.",
        "",
        ("Noisy measurements: " + ", ".join(noisy) + ".") if noisy else "No measurement was noisy.",
    ]
    return "\n".join(parts) + "\n"
