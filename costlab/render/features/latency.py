"""How ``--latency``'s measurement (costlab.analyses.latency.Latency, with its Roofline) is drawn."""

from __future__ import annotations

from typing import Any, Sequence

from ..numbers import Style, number
from ..view import Heading, View
from .registry import Presenter, register

#: The mark of a noisy measurement in tables (JSON: "noisy": true).
NOISY = "noisy"
LAYER_LATENCY_HEADERS = ["ms ± IQR", "GFLOP/s", "FLOP/B", "bound", "roofline ms"]
LAYER_LATENCY_CSV = ["latency_ms", "latency_iqr_ms", "latency_noisy", "achieved_gflops", "intensity",
                     "bound", "roofline_ms"]
TARGET_LATENCY_CSV = ["latency_ms", "latency_iqr_ms", "latency_noisy", "latency_ratio", "roofline_ms",
                      "roofline_fraction"]


def milliseconds(value: float) -> str:
    """Milliseconds for a table (:data:`~costlab.render.numbers.Style.MS`)."""
    return number(value, Style.MS)


def latency_text(latency: Any) -> str:
    """'0.731 ± 0.026', with ' noisy' appended when IQR/median is above the threshold."""
    text = f"{milliseconds(latency.median)} ± {milliseconds(latency.iqr)}"
    return f"{text} {NOISY}" if latency.noisy else text


def threads_text(threads: int) -> str:
    """1 → '1 thread', 2 → '2 threads'."""
    return f"{threads} thread{'' if threads == 1 else 's'}"


def speed_ratio_text(ratio: float | None, first: bool) -> str:
    """3.09 → '3.09× faster' (first's median over this one's); the first target is the baseline."""
    if first:
        return "baseline"
    if not ratio:
        return "n/a"
    return f"{number(ratio, Style.TIMES)} faster" if ratio >= 1 else f"{number(1 / ratio, Style.TIMES)} slower"


def _everywhere(group: Sequence[Any]) -> bool:
    return bool(group) and all(latency is not None for latency in group)


@register("latency")
class LatencyPresenter(Presenter):
    """Per layer its own measurement and roofline (a folded block's sums); side by side the latency,
    its ratio to the first target's and the roofline; once per report how it was measured."""

    from_run = True

    def layer_columns(self, group: Sequence[Any], unit: str, view: View | None) -> list[Heading]:
        if not _everywhere(group):  # latency is shown when every target was measured
            return []
        if view is None:
            return [Heading(title) for title in LAYER_LATENCY_CSV]
        return [Heading(title, numeric, keep) for title, numeric, keep in
                zip(LAYER_LATENCY_HEADERS, (True, True, True, False, True), (90, 25, 22, 28, 35))]

    def layer_cells(self, feature: Any, headings: Sequence[Heading], row: Any, members: Sequence[Any],
                    unit: str, view: View | None) -> list[Any]:
        """A layer's own measurement, or a folded block's sums (its IQR left out)."""
        timed = [m for m in members if m.latency is not None and m.latency.roofline is not None]
        if not timed:
            return ["" if view is None else "–"] * len(headings)
        if len(timed) == 1 and timed[0].name == row.name:
            return _layer_latency_cells(timed[0].latency, view)
        measured = sum(m.latency.median for m in timed)
        flops = sum(m.latency.roofline.flops for m in timed)
        moved = sum(m.latency.roofline.bytes for m in timed)
        kinds = {m.latency.roofline.bound for m in timed}
        noisy = any(m.latency.noisy for m in timed)
        predicted = sum(m.latency.roofline.predicted_ms for m in timed)
        kind = kinds.pop() if len(kinds) == 1 else "mixed"
        if view is None:
            return [f"{measured:.6g}", "", noisy, f"{flops / (measured * 1e-3) / 1e9:.6g}" if measured else "",
                    f"{flops / moved:.6g}" if moved else "", kind, f"{predicted:.6g}"]
        return [f"{milliseconds(measured)} (sum){' ' + NOISY if noisy else ''}",
                f"{flops / (measured * 1e-3) / 1e9:.1f}" if measured else "–",
                f"{flops / moved:.1f}" if moved else "–", kind, milliseconds(predicted)]

    def total_cells(self, feature: Any, headings: Sequence[Heading], unit: str, view: View) -> list[str]:
        """The whole target measured as one module."""
        roof = feature.roofline
        intensity = roof.intensity if roof is not None else None
        return [latency_text(feature), f"{(roof.achieved_gflops if roof else None) or 0:.1f}",
                "–" if intensity is None else f"{intensity:.1f}", "",
                milliseconds(roof.predicted_ms) if roof is not None else "–"]

    def side_by_side(self, group: Sequence[Any], unit: str, view: View | None) -> tuple[list[Heading], list[list[Any]]]:
        """Measured latency, its ratio to the first target's, and the roofline's prediction."""
        if not _everywhere(group):
            return [], []
        first = group[0].median
        ratios = [first / latency.median if latency.median else None for latency in group]
        if view is None:
            return [Heading(title) for title in TARGET_LATENCY_CSV], [
                [f"{t.median:.6g}", f"{t.iqr:.6g}", t.noisy, "" if ratio is None else f"{ratio:.6g}",
                 f"{(t.roofline.predicted_ms if t.roofline else 0):.6g}",
                 f"{(t.roofline.fraction if t.roofline else None) or 0:.6g}"]
                for t, ratio in zip(group, ratios)]
        headings = [Heading("latency ms ± IQR", True, 90), Heading("time vs first", False, 85),
                    Heading("roofline ms", True, 35), Heading("of roofline", True, 33)]
        return headings, [[latency_text(t), speed_ratio_text(ratio, index == 0),
                           milliseconds(t.roofline.predicted_ms if t.roofline else 0.0),
                           f"{100 * ((t.roofline.fraction if t.roofline else None) or 0.0):.0f} %"]
                          for index, (t, ratio) in enumerate(zip(group, ratios))]

    def report_section(self, analyses: Sequence[Any], unit: str, view: View) -> list[str]:
        """How latency was measured and the peaks of the roofline, once per report."""
        if not _everywhere([a.latency for a in analyses]):
            return []
        return view.prose(latency_notes(analyses))


def _layer_latency_cells(latency: Any, view: View | None) -> list[Any]:
    roof = latency.roofline
    assert roof is not None
    if view is None:
        return [f"{latency.median:.6g}", f"{latency.iqr:.6g}", latency.noisy, f"{roof.achieved_gflops or 0:.6g}",
                "" if roof.intensity is None else f"{roof.intensity:.6g}", roof.bound or "",
                f"{roof.predicted_ms:.6g}"]
    return [latency_text(latency), f"{roof.achieved_gflops or 0:.1f}",
            "–" if roof.intensity is None else f"{roof.intensity:.1f}", roof.bound,
            milliseconds(roof.predicted_ms)]


def latency_notes(analyses: Sequence[Any]) -> list[str]:
    """How latency was measured and the peaks of the roofline (every analysis measured)."""
    from ...analyses.latency import CPU_SHARE_WARNING  # not on `costlab compare`'s path
    first = analyses[0]
    latency = first.latency
    assert latency is not None
    peaks = (latency.roofline.peaks if latency.roofline is not None else None) or {}
    threads = f", {threads_text(latency.threads or 0)}" if latency.device == "cpu" else ""
    notes = [
        f"Latency: median ± IQR in ms on {latency.device} ({latency.device_name or '?'}{threads}), "
        f"{latency.dtype or first.dtype}, eval mode, inference mode, after warm-up; "
        f"'{NOISY}' marks IQR above {100 * (latency.noise_threshold or 0):.0f} % of the median.",
    ]
    if peaks:
        notes.append(
            f"Roofline: bound = max(FLOPs / {peaks['gflops']:.1f} GFLOP/s, bytes / {peaks['gbps']:.1f} GB/s), "
            f"the peaks measured on this machine (ridge {peaks['ridge']:.1f} FLOP/B, calibrated "
            f"{peaks.get('measured_at', '?')}); a network's roofline ms is the sum of its layers'; "
            "'of roofline' = roofline ms / measured ms.")
    measured = [(a, a.latency) for a in analyses if a.latency is not None]
    starved = [f"{a.name} ({100 * t.cpu_share:.0f} %)" for a, t in measured
               if t.run_share is None and (t.cpu_share or 1.0) < CPU_SHARE_WARNING]
    if starved:
        notes.append(f"Got less than {100 * CPU_SHARE_WARNING:.0f} % of its threads' CPU time while measured: "
                     f"{', '.join(starved)}: other work on the machine, or ops that used fewer threads than "
                     "given; measure again on a quiet machine before trusting it.")
    targets = [a.name for a, t in measured if t.noisy]
    layers = sum(1 for a in analyses for layer in a.layers if layer.latency is not None and layer.latency.noisy)
    if targets or layers:
        parts = ([f"target{'s' if len(targets) > 1 else ''} {', '.join(targets)}"] if targets else [])
        parts += [f"{layers} layer{'s' if layers != 1 else ''}"] if layers else []
        notes.append(f"Noisy measurements (IQR/median above the threshold, or starved of CPU in every attempt): "
                     f"{' and '.join(parts)}; 'noisy' marks them in the tables, \"noisy\": true in JSON.")
    starved = [f"{a.name} ({100 * (t.run_share or 0):.0f} %)" for a, t in measured if t.starved]
    starved_layers = sum(1 for a in analyses for layer in a.layers if layer.latency is not None
                         and layer.latency.starved)
    if starved or starved_layers:
        parts = starved + ([f"{starved_layers} layer{'s' if starved_layers != 1 else ''}"] if starved_layers else [])
        notes.append(f"Starved in every attempt (other work held the CPU; in parentheses the share of the time "
                     f"ready to run that its threads ran): {', '.join(parts)}; measure again on a quiet machine "
                     "before trusting them.")
    return notes
