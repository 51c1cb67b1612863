"""``--latency``: a measured latency and the roofline beside it, as typed results (:class:`Latency`,
:class:`Roofline`) that an analysis and its layers carry. The measuring is the torch bridge's
(costlab.torch_bridge.latency); nothing here imports torch."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence

from ..core.features import Feature, Heading, View

if TYPE_CHECKING:
    from ..core.analysis import Analysis, Layer, Row

NOISY = "noisy"
#: A CPU target whose process got less than this share of its threads' time is called out.
CPU_SHARE_WARNING = 0.75
LAYER_LATENCY_HEADERS = ["ms ± IQR", "GFLOP/s", "FLOP/B", "bound", "roofline ms"]
LAYER_LATENCY_CSV = ["latency_ms", "latency_iqr_ms", "latency_noisy", "achieved_gflops", "intensity",
                     "bound", "roofline_ms"]
TARGET_LATENCY_CSV = ["latency_ms", "latency_iqr_ms", "latency_noisy", "latency_ratio", "roofline_ms",
                      "roofline_fraction"]


def milliseconds(value: float) -> str:
    """Milliseconds for a table: 0.0012, 0.079, 0.731, 2.68, 12.3, 1234."""
    if value >= 100:
        return f"{value:.0f}"
    if value >= 1:
        return f"{value:.3g}"
    return f"{value:.3f}" if value >= 0.01 else f"{value:.4f}"


def threads_text(threads: int) -> str:
    """1 → '1 thread', 2 → '2 threads'."""
    return f"{threads} thread{'' if threads == 1 else 's'}"


def speed_ratio_text(ratio: float | None, first: bool) -> str:
    """3.09 → '3.09× faster' (first's median over this one's); the first target is the baseline."""
    if first:
        return "baseline"
    if not ratio:
        return "n/a"
    return f"{ratio:.2f}× faster" if ratio >= 1 else f"{1 / ratio:.2f}× slower"


def _present(cls: type, values: Mapping[str, Any], always: frozenset[str]) -> dict[str, Any]:
    """A dataclass's fields as JSON, in their order: those in ``always``, and the others when set."""
    return {f.name: values[f.name] for f in fields(cls) if f.name in always or values[f.name] is not None}


@dataclass(frozen=True)
class Roofline:
    """A roofline point from the machine's measured peaks (JSON ``roofline``): the bound
    max(FLOPs / peak FLOP/s, bytes / peak B/s), its kind, and what was achieved against it.

    A layer's has ``bound`` (compute or memory); a target's is the sum of its layers' bounds, with
    how many of them are compute- and memory-bound and the ``peaks`` it was drawn from."""

    flops: int
    bytes: int
    intensity: float | None  # FLOPs / bytes (None without bytes)
    ridge: float
    compute_ms: float
    memory_ms: float
    predicted_ms: float
    bound: str | None = None
    bandwidth: str | None = None  # which of the peaks' bandwidths bounds it
    achieved_gflops: float | None = None
    achieved_gbps: float | None = None
    fraction: float | None = None  # predicted / measured
    compute_bound_layers: int | None = None
    memory_bound_layers: int | None = None
    peaks: Mapping[str, Any] | None = field(default=None, hash=False)

    _ALWAYS: ClassVar[frozenset[str]] = frozenset(
        ("flops", "bytes", "intensity", "ridge", "compute_ms", "memory_ms", "predicted_ms", "bandwidth"))

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any]) -> "Roofline":
        return cls(**entry)

    def to_dict(self) -> dict[str, Any]:
        entry = _present(type(self), self.__dict__, self._ALWAYS)
        if self.peaks is not None:
            entry["peaks"] = dict(self.peaks)
        return entry


@dataclass(frozen=True)
class Latency(Feature):
    """A measured latency (JSON ``latency_ms``; times in ms): median and IQR over samples taken
    after warm-up, how it was taken, and the roofline beside it (JSON ``roofline``).

    The timing fields are those of ``costlab.torch_bridge.timing.Timing``; a target's adds the
    machine's load when it began, the sum of its layers' medians and the layers not timed alone."""

    median: float
    iqr: float
    q1: float | None = None
    q3: float | None = None
    min: float | None = None
    spread: float | None = None
    noisy: bool = False
    noise_threshold: float | None = None
    samples: int | None = None
    calls_per_sample: int | None = None
    warmup_calls: int | None = None
    device: str = "cpu"
    threads: int | None = None
    timer: str | None = None
    cpu_share: float | None = None
    run_share: float | None = None
    min_run_share: float | None = None
    attempts: int | None = None
    noisy_reason: str | None = None
    device_name: str | None = None
    dtype: str | None = None
    load_1min: float | None = None
    sum_of_layers: float | None = None
    untimed_layers: tuple[str, ...] | None = None
    roofline: Roofline | None = None

    name: ClassVar[str] = "latency"
    from_run: ClassVar[bool] = True
    _OPTIONAL: ClassVar[frozenset[str]] = frozenset(("load_1min", "sum_of_layers", "untimed_layers"))

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any], roofline: Roofline | None = None) -> "Latency":
        """From a timing's ``to_dict()`` and what a measurement adds to it."""
        values = dict(entry)
        if values.get("untimed_layers") is not None:
            values["untimed_layers"] = tuple(values["untimed_layers"])
        return cls(**values, roofline=roofline)

    def to_dict(self) -> dict[str, Any]:
        """The ``latency_ms`` entry of the JSON contract."""
        always = frozenset(f.name for f in fields(self)) - self._OPTIONAL - {"roofline"}
        entry = _present(type(self), self.__dict__, always)
        entry.pop("roofline", None)
        if self.untimed_layers is not None:
            entry["untimed_layers"] = list(self.untimed_layers)
        return entry

    def text(self) -> str:
        """'0.731 ± 0.026', with ' noisy' appended when IQR/median is above the threshold."""
        text = f"{milliseconds(self.median)} ± {milliseconds(self.iqr)}"
        return f"{text} {NOISY}" if self.noisy else text

    @property
    def starved(self) -> bool:
        """Noisy because other work held the CPU in every attempt."""
        return self.noisy and "starved" in (self.noisy_reason or "")

    # --- the feature ---

    def json_fields(self, unit: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"latency_ms": self.to_dict()}
        if self.roofline is not None:
            entry["roofline"] = self.roofline.to_dict()
        return entry

    @staticmethod
    def _everywhere(group: Sequence[Any]) -> bool:
        return bool(group) and all(latency is not None for latency in group)

    @classmethod
    def layer_columns(cls, group: Sequence[Any], unit: str, view: View | None) -> list[Heading]:
        if not cls._everywhere(group):  # latency is shown when every target was measured
            return []
        if view is None:
            return [Heading(title) for title in LAYER_LATENCY_CSV]
        return [Heading(title, numeric, keep) for title, numeric, keep in
                zip(LAYER_LATENCY_HEADERS, (True, True, True, False, True), (90, 25, 22, 28, 35))]

    def layer_cells(self, headings: Sequence[Heading], row: "Row", members: Sequence["Layer"], unit: str,
                    view: View | None) -> list[Any]:
        """A layer's own measurement, or a folded block's sums (its IQR left out)."""
        timed = [m for m in members if m.latency is not None and m.latency.roofline is not None]
        if not timed:
            return ["" if view is None else "–"] * len(headings)
        if len(timed) == 1 and timed[0].name == row.name:
            return _layer_latency_cells(timed[0].latency, view)  # type: ignore[arg-type]
        measured = sum(m.latency.median for m in timed)  # type: ignore[union-attr]
        flops = sum(m.latency.roofline.flops for m in timed)  # type: ignore[union-attr]
        moved = sum(m.latency.roofline.bytes for m in timed)  # type: ignore[union-attr]
        kinds = {m.latency.roofline.bound for m in timed}  # type: ignore[union-attr]
        noisy = any(m.latency.noisy for m in timed)  # type: ignore[union-attr]
        predicted = sum(m.latency.roofline.predicted_ms for m in timed)  # type: ignore[union-attr]
        kind = kinds.pop() if len(kinds) == 1 else "mixed"
        if view is None:
            return [f"{measured:.6g}", "", noisy, f"{flops / (measured * 1e-3) / 1e9:.6g}" if measured else "",
                    f"{flops / moved:.6g}" if moved else "", kind, f"{predicted:.6g}"]
        return [f"{milliseconds(measured)} (sum){' ' + NOISY if noisy else ''}",
                f"{flops / (measured * 1e-3) / 1e9:.1f}" if measured else "–",
                f"{flops / moved:.1f}" if moved else "–", kind, milliseconds(predicted)]

    def total_cells(self, headings: Sequence[Heading], unit: str, view: View) -> list[str]:
        """The whole target measured as one module."""
        roof = self.roofline
        intensity = roof.intensity if roof is not None else None
        return [self.text(), f"{(roof.achieved_gflops if roof else None) or 0:.1f}",
                "–" if intensity is None else f"{intensity:.1f}", "",
                milliseconds(roof.predicted_ms) if roof is not None else "–"]

    @classmethod
    def side_by_side(cls, group: Sequence[Any], unit: str, view: View | None) -> tuple[list[Heading], list[list[Any]]]:
        """Measured latency, its ratio to the first target's, and the roofline's prediction."""
        if not cls._everywhere(group):
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
        return headings, [[t.text(), speed_ratio_text(ratio, index == 0),
                           milliseconds(t.roofline.predicted_ms if t.roofline else 0.0),
                           f"{100 * ((t.roofline.fraction if t.roofline else None) or 0.0):.0f} %"]
                          for index, (t, ratio) in enumerate(zip(group, ratios))]

    @classmethod
    def report_section(cls, analyses: Sequence["Analysis"], unit: str, view: View) -> list[str]:
        """How latency was measured and the peaks of the roofline, once per report."""
        if not cls._everywhere([a.latency for a in analyses]):
            return []
        return view.prose(latency_notes(analyses))


def _layer_latency_cells(latency: Latency, view: View | None) -> list[Any]:
    roof = latency.roofline
    assert roof is not None
    if view is None:
        return [f"{latency.median:.6g}", f"{latency.iqr:.6g}", latency.noisy, f"{roof.achieved_gflops or 0:.6g}",
                "" if roof.intensity is None else f"{roof.intensity:.6g}", roof.bound or "",
                f"{roof.predicted_ms:.6g}"]
    return [latency.text(), f"{roof.achieved_gflops or 0:.1f}",
            "–" if roof.intensity is None else f"{roof.intensity:.1f}", roof.bound,
            milliseconds(roof.predicted_ms)]


def latency_notes(analyses: Sequence["Analysis"]) -> list[str]:
    """How latency was measured and the peaks of the roofline (every analysis measured)."""
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
