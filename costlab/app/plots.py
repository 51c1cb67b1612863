"""The reports' pictures (PNG), drawn by `costlab report` when matplotlib (the [plot] extra) is installed.

Each picture is two steps: the numbers it draws (:class:`Roofline`, the sweep, :class:`LiveMemory`),
computed without matplotlib, so that the reports' Markdown can state them whether or not the
picture is drawn; and the drawing, which imports matplotlib lazily (Agg canvas, no pyplot, no
global state) and returns PNG bytes at :data:`DPI`.

- **Roofline** of a canonical comparison's layers: x = arithmetic intensity (FLOPs / byte,
  FLOPs = 2 × MACs, bytes = input + weights + output at float32), y = GFLOP/s, both logarithmic;
  the roof is min(peak GFLOP/s, intensity × peak GB/s) of :data:`REFERENCE_PEAKS`; each layer is
  drawn where the roof puts it (its bound, not a measurement).
- **The bottleneck-width sweep**: MACs of ``conv1x1:{w} > conv5x5:32`` against w, beside the plain
  5×5, with the break-even width marked (costlab.app.sweep's figure).
- **Live memory through MobileNet v2's inverted residual** with and without its 1×1 projection,
  from costlab.analyses.memory's per-layer live bytes at inference.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..core.analysis import FLOPS_PER_MAC, Analysis
from ..core.errors import CostlabError
from ..core.extras import installed, missing_message
from ..core.roofline import Peaks, bound

#: Dots per inch of every picture (about 750×450 pixels: small enough to commit).
DPI = 100

#: The roof of the roofline pictures: a fixed machine, so that the committed pictures do not
#: depend on where `costlab report` runs. Its peaks are those stated by the committed measured
#: report reports/latency-inception.md (`costlab report --latency cpu` on the project's 2-core
#: CPU); tests/test_plots.py holds them equal to that report.
REFERENCE_PEAKS = Peaks(device="cpu", device_name="the 2-core CPU of reports/latency-inception.md", threads=2,
                        dtype="float32", gflops=396.0, gbps=29.7)

#: Every picture's file name (under reports/), and the Markdown report that shows it.
ROOFLINE_INCEPTION = "roofline-inception-bottleneck.png"
ROOFLINE_SEPARABLE = "roofline-separable-512.png"
BOTTLENECK_SWEEP = "sweep-bottleneck-width.png"
PROJECTION_MEMORY = "memory-projection.png"
PICTURES = (ROOFLINE_INCEPTION, ROOFLINE_SEPARABLE, BOTTLENECK_SWEEP, PROJECTION_MEMORY)

INCEPTION_TITLE = "Inception's 1×1 bottleneck"
SEPARABLE_TITLE = "3×3 standard vs separable (512 → 512, 14×14)"

#: The sweep drawn in BOTTLENECK_SWEEP (the README's `costlab sweep` example).
SWEEP_TARGETS = ("conv5x5:32", "conv1x1:{w} > conv5x5:32")
SWEEP_PARAM = "w=4:192:4"
SWEEP_INPUT = (192, 28, 28)


def plotting_available() -> bool:
    return installed("matplotlib")


def _matplotlib() -> tuple[Any, Any]:
    """(Figure, FigureCanvasAgg), imported here only."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise CostlabError(missing_message("plot", "the reports' pictures")) from None
    return Figure, FigureCanvasAgg


def png(figure: Any) -> bytes:
    """A matplotlib Figure as PNG bytes at DPI (no date or software stamp, so a redraw is byte-stable)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


# --- roofline --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RooflinePoint:
    target: str
    layer: str           # its name and type: 'conv1 (conv1x1)'
    flops: int
    bytes: int

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes

    def attainable_gflops(self, peaks: Peaks) -> float:
        """FLOPs ÷ the roofline's bound = min(peak GFLOP/s, intensity × peak GB/s)."""
        return self.flops / bound(self.flops, self.bytes, peaks).seconds / 1e9


@dataclass(frozen=True)
class Roofline:
    title: str
    peaks: Peaks
    points: tuple[RooflinePoint, ...]


def roofline_of(title: str, targets: Sequence[Analysis], peaks: Peaks = REFERENCE_PEAKS) -> Roofline:
    """Every layer that multiplies (MACs > 0) of ``targets``, as a point of the roofline."""
    points = tuple(RooflinePoint(t.name, f"{layer.name} ({layer.type})", FLOPS_PER_MAC * layer.macs, layer.bytes)
                   for t in targets for layer in t.layers if layer.macs > 0 and layer.bytes > 0)
    return Roofline(title, peaks, points)


def roofline_caption(roofline: Roofline) -> str:
    p = roofline.peaks
    return (f"Each layer at its arithmetic intensity (FLOPs = 2 × MACs per byte of input, weights and output, "
            f"float32) on the roofline of a fixed reference machine, {p.device_name} ({p.gflops:g} GFLOP/s, "
            f"{p.gbps:g} GB/s, ridge {p.ridge:.1f} FLOP/B), not of the machine that runs `costlab report`; "
            "a point sits where the roof bounds it (predicted, not measured).")


def roofline_png(roofline: Roofline) -> bytes:
    Figure, FigureCanvasAgg = _matplotlib()
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    peaks = roofline.peaks
    figure = Figure(figsize=(7.5, 4.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    lows = [p.intensity for p in roofline.points]
    left, right = min(lows + [peaks.ridge]) / 4, max(lows + [peaks.ridge]) * 4
    xs = [left, peaks.ridge, right]
    axes.plot(xs, [min(peaks.gflops, x * peaks.gbps) for x in xs], color="0.2", linewidth=2,
              label=f"roof: min({peaks.gflops:g} GFLOP/s, intensity × {peaks.gbps:g} GB/s)")
    axes.axvline(peaks.ridge, linestyle=":", color="0.5", linewidth=0.8)
    axes.annotate(f"ridge {peaks.ridge:.1f} FLOP/B", (peaks.ridge, peaks.gflops), xytext=(4, -14),
                  textcoords="offset points", fontsize=8, color="0.3")
    targets = list(dict.fromkeys(p.target for p in roofline.points))
    markers = "os^Dv"
    for index, point in enumerate(roofline.points):
        series = targets.index(point.target)
        y = point.attainable_gflops(peaks)
        first = all(q.target != point.target for q in roofline.points[:index])
        axes.plot([point.intensity], [y], marker=markers[series % len(markers)], markersize=8, linestyle="none",
                  color=f"C{series}", label=f"[{series + 1}] {point.target}" if first else None, zorder=5)
        axes.annotate(point.layer, (point.intensity, y),
                      xytext=(6, -12 - 10 * (series % 2)), textcoords="offset points", fontsize=8, color=f"C{series}")
    axes.set_xscale("log")
    axes.set_yscale("log")
    for axis in (axes.xaxis, axes.yaxis):  # 400, not 4 × 10²
        axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axis.set_minor_formatter(NullFormatter())
    axes.set_xlim(left, right)
    axes.set_ylim(min(p.attainable_gflops(peaks) for p in roofline.points) / 3, peaks.gflops * 2)
    axes.set_xlabel("arithmetic intensity (FLOPs / byte)")
    axes.set_ylabel("GFLOP/s (bound by the roof)")
    axes.set_title(f"{roofline.title}: each layer on the reference roofline", fontsize=9)
    axes.grid(True, which="both", alpha=0.25)
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    return png(figure)


# --- the bottleneck-width sweep -----------------------------------------------------------------

def bottleneck_sweep() -> Any:
    """MACs of the plain 5×5 and of the 1×1 bottleneck to w channels, w = 4, 8, …, 192 (a Sweep)."""
    from .sweep import parse_param, run_sweep

    return run_sweep(SWEEP_TARGETS, parse_param(SWEEP_PARAM), SWEEP_INPUT)


def sweep_break_even(sweep: Any) -> list[float]:
    """The widths where the bottleneck's MACs meet the plain 5×5's."""
    from .sweep import break_even

    rows = sweep.rows()
    xs = [float(v) for v in sweep.param.numeric()]
    plain, reduced = ([float(r["macs"]) for r in rows if r["series"] == s] for s in sweep.series)
    return break_even(xs, reduced, plain)


def sweep_png(sweep: Any) -> bytes:
    from .sweep import sweep_figure

    return png(sweep_figure(sweep))


# --- live memory through the inverted residual ----------------------------------------------------

@dataclass(frozen=True)
class LiveMemory:
    """Bytes alive at inference after each layer of one design (weights and the caller's input included)."""

    name: str
    layers: tuple[str, ...]
    live: tuple[int, ...]
    peak: int
    handed_on: int  # bytes of the output handed to the next block

    @classmethod
    def of(cls, analysis: Analysis) -> "LiveMemory":
        import math

        from ..analyses.memory import memory

        m = memory(analysis)
        return cls(analysis.name, tuple(layer.name for layer in m.layers), tuple(layer.inference_live for layer in m.layers),
                   m.inference_peak, math.prod((analysis.batch,) + tuple(analysis.output)) * 4)


def projection_memory() -> tuple[LiveMemory, LiveMemory]:
    """MobileNet v2's inverted residual (costlab.core.zoo.PROJECTION_BLOCK) with and without its projection."""
    from ..core.zoo import projection_block

    return LiveMemory.of(projection_block(1, True)), LiveMemory.of(projection_block(1, False))


def mebibytes(n: int) -> str:
    """Bytes as the memory report writes them: two decimals in KiB, MiB or GiB."""
    from ..render.numbers import Style, number

    return number(n, Style.BYTES_2DP)


def memory_png(designs: Sequence[LiveMemory]) -> bytes:
    Figure, FigureCanvasAgg = _matplotlib()
    figure = Figure(figsize=(7.5, 4.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    longest = max(designs, key=lambda d: len(d.layers))
    for index, design in enumerate(designs):
        xs = list(range(len(design.layers)))
        axes.step(xs, [b / 2**20 for b in design.live], where="mid", marker="o", markersize=4, color=f"C{index}",
                  linestyle="-" if index == 0 else "--",
                  label=f"{design.name}: peak {mebibytes(design.peak)}, hands on {mebibytes(design.handed_on)}")
        axes.annotate(f"hands on {mebibytes(design.handed_on)}", (xs[-1], design.live[-1] / 2**20),
                      xytext=(-10, 10 if index == 0 else -16), textcoords="offset points", ha="right", fontsize=8,
                      color=f"C{index}")
    axes.set_xticks(list(range(len(longest.layers))))
    axes.set_xticklabels([name.removeprefix("block.") for name in longest.layers], rotation=35, ha="right", fontsize=8)
    axes.set_ylim(0, max(d.peak for d in designs) / 2**20 * 1.15)
    axes.set_ylabel("live at inference (MiB, float32, batch 1)")
    axes.set_xlabel("after layer")
    axes.set_title("MobileNet v2's inverted residual on 24×56×56 (t = 6): live memory with and without "
                   "the 1×1 projection", fontsize=9)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8, loc="lower center")
    figure.tight_layout()
    return png(figure)


# --- all of them -------------------------------------------------------------------------------------

def inception_targets() -> tuple[Analysis, ...]:
    from ..core.expressions import analyze_expression

    return tuple(analyze_expression(t, (192, 28, 28)) for t in ("conv5x5:32", "conv1x1:16 > conv5x5:32"))


def separable_targets() -> tuple[Analysis, ...]:
    from ..core.expressions import analyze_expression

    return tuple(analyze_expression(t, (512, 14, 14)) for t in ("conv3x3:512,same", "dw3x3,same > pw:512"))


def build_pictures(progress: Callable[[str], None] | None = None) -> dict[str, bytes]:
    """Every picture of reports/, by file name (needs matplotlib); ``progress`` is called after each."""
    _matplotlib()
    drawers: dict[str, Callable[[], bytes]] = {
        ROOFLINE_INCEPTION: lambda: roofline_png(roofline_of(INCEPTION_TITLE, inception_targets())),
        ROOFLINE_SEPARABLE: lambda: roofline_png(roofline_of(SEPARABLE_TITLE, separable_targets())),
        BOTTLENECK_SWEEP: lambda: sweep_png(bottleneck_sweep()),
        PROJECTION_MEMORY: lambda: memory_png(projection_memory()),
    }
    pictures = {}
    for name, draw in drawers.items():
        pictures[name] = draw()
        if progress is not None:
            progress(name)
    return pictures


# --- what the reports say about them (no matplotlib needed) -------------------------------------------

def figure_markdown(filename: str, alt: str, caption: str) -> str:
    """The Markdown that shows a picture beside the report (same directory), with its caption."""
    return f"![{alt}]({filename})\n\n*{caption}* (Drawn by `costlab report` with the [plot] extra.)"


def inception_figures() -> list[str]:
    from ..render.numbers import count

    roofline = roofline_of(INCEPTION_TITLE, inception_targets())
    sweep = bottleneck_sweep()
    plain_macs = sweep.rows()[0]["macs"]
    widths = ", ".join(f"w ≈ {w:.1f}" for w in sweep_break_even(sweep))
    return ["## Pictures", "",
            figure_markdown(ROOFLINE_INCEPTION, "the layers of both designs on the roofline", roofline_caption(roofline)),
            "", figure_markdown(BOTTLENECK_SWEEP, "MACs against the bottleneck width",
                                f"MACs of `conv1x1:{{w}} > conv5x5:32` on 192×28×28 for w = 4, 8, …, 192 beside the "
                                f"plain 5×5 ({count(plain_macs)} MACs): the bottleneck costs more than the 5×5 it "
                                f"reduces from {widths} channels on "
                                f"(`costlab sweep \"conv5x5:32\" \"conv1x1:{{w}} > conv5x5:32\" --param {SWEEP_PARAM} "
                                f"--input 192x28x28 --plot w.png`)."), ""]


def separable_figures() -> list[str]:
    roofline = roofline_of(SEPARABLE_TITLE, separable_targets())
    return ["## Picture", "",
            figure_markdown(ROOFLINE_SEPARABLE, "the layers of both designs on the roofline", roofline_caption(roofline)),
            ""]


def memory_figures() -> list[str]:
    with_projection, without = projection_memory()
    return [figure_markdown(PROJECTION_MEMORY, "live memory through the inverted residual",
                            f"Bytes alive at inference after each layer of the block (weights and the input "
                            f"included): the peak is the same depthwise stage either way ({mebibytes(with_projection.peak)} "
                            f"with the projection, {mebibytes(without.peak)} without), but the projection hands on "
                            f"{mebibytes(with_projection.handed_on)} instead of {mebibytes(without.handed_on)}: "
                            "the projection keeps memory low between blocks."), ""]
