"""Renderers: one result object in, one string out (terminal table, Markdown, CSV, JSON).

Renderers read their input and never change it; tabulate options are passed per call.
pandas is not needed here (CSV goes through the csv module), which keeps
``costlab compare`` fast as a whole process.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Iterable, Sequence

from tabulate import tabulate

from .analysis import FLOPS_PER_MAC, Analysis, Comparison, Layer, Row

FORMATS = ("table", "md", "csv", "json")

CONVENTION_MACS = ("MACs: multiply-accumulates of conv, linear and matmul layers, 1 per multiply-add; "
                   "bias adds, norms, activations, pools and element-wise ops are counted apart as ops.")
CONVENTION_FLOPS = ("FLOPs = 2 × MACs (multiply-accumulates of conv, linear and matmul layers); "
                    "bias adds, norms, activations, pools and element-wise ops are counted apart as ops.")


def convention(unit: str) -> str:
    """The one-line statement of the counting convention every report carries."""
    return CONVENTION_FLOPS if unit == "flops" else CONVENTION_MACS


def shape(dims: Sequence[int]) -> str:
    """(32, 28, 28) → '32×28×28'."""
    return "×".join(str(n) for n in dims) or "scalar"


def count(n: int) -> str:
    """Exact count with thousands separators."""
    return f"{n:,}"


def unit_label(unit: str) -> str:
    return "FLOPs" if unit == "flops" else "MACs"


def in_unit(macs: int, unit: str) -> int:
    return macs * FLOPS_PER_MAC if unit == "flops" else macs


def ratio_text(ratio: float | None, first: bool) -> str:
    """9.677 → '9.68× fewer'; 0.5 → '2.00× more'; the first target is the baseline."""
    if first:
        return "baseline"
    if ratio is None:
        return "n/a (no MACs)"
    if ratio >= 1:
        return f"{ratio:.2f}× fewer"
    return f"{1 / ratio:.2f}× more" if ratio > 0 else "n/a"


def _grid(headers: Sequence[str], rows: Iterable[Sequence[Any]], fmt: str, numeric: Sequence[bool]) -> str:
    tablefmt = "github" if fmt == "md" else "simple"
    align = ["right" if n else "left" for n in numeric]
    return tabulate(list(rows), headers=list(headers), tablefmt=tablefmt, colalign=align,
                    disable_numparse=True)


def _csv(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows(rows)
    return buffer.getvalue()


# --- comparison ----------------------------------------------------------------------

def _same_input(c: Comparison) -> bool:
    return len({(t.input, t.batch) for t in c.targets}) == 1


MAX_TERMS = 4


def mac_terms(a: Analysis, unit: str) -> str:
    """'2,408,448 + 10,035,200' when two to MAX_TERMS layers carry the MACs, else ''."""
    terms = [in_unit(layer.macs, unit) for layer in a.layers if layer.macs]
    return " + ".join(count(t) for t in terms) if 1 < len(terms) <= MAX_TERMS else ""


def comparison_summary_rows(c: Comparison) -> list[list[Any]]:
    """Raw rows (numbers as numbers) of the side-by-side table."""
    rows = []
    for index, (t, ratio) in enumerate(zip(c.targets, c.ratios)):
        rows.append([t.name, shape(t.input), t.batch, shape(t.output), in_unit(t.macs, c.unit),
                     mac_terms(t, c.unit), t.params, t.ops, t.activations, ratio,
                     ratio_text(ratio, index == 0)])
    return rows


def _layer_table(a: Analysis, fmt: str, unit: str, depth: int | None = None, share: bool = False) -> str:
    rows: list[list[str]] = []
    total = a.macs
    timed = has_latency((a,))
    for row in a.rows(depth):
        cells = [row.name, row.type, row.op, shape(row.output[1:]), count(in_unit(row.macs, unit)),
                 count(row.params), count(row.ops)]
        if share:
            cells.append(f"{100 * row.macs / total:.1f} %" if total else "–")
        if timed:
            cells += row_latency_cells(a, row)
        cells.append(row.formula)
        rows.append(cells)
    footer = ["total", "", "", shape(a.output), count(in_unit(a.macs, unit)), count(a.params),
              count(a.ops)] + (["100.0 %" if total else "–"] if share else [])
    footer += (target_latency_cells(a) if timed else []) + [""]
    rows.append(footer)
    headers = ["layer", "type", "op", "output", unit_label(unit), "params", "ops"]
    headers += (["share"] if share else []) + (LAYER_LATENCY_HEADERS if timed else [])
    headers += ["formula (MACs or ops)"]
    numeric = [False] * 4 + [True] * (4 if share else 3)
    numeric += ([True, True, True, False, True] if timed else []) + [False]
    return _grid(headers, rows, fmt, numeric)


def _training_only_note(a: Analysis, unit: str) -> str:
    return (f"Training only, not in the totals: {len(a.training_only)} layers, "
            f"{count(in_unit(a.training_only_macs, unit))} {unit_label(unit)}, "
            f"{count(a.training_only_params)} params.")


def _unsupported_note(a: Analysis) -> str:
    listed = "; ".join(f"{u.path}: {u.op} ({u.reason})" for u in a.unsupported)
    return f"Not counted (unsupported): {listed}"


def _notes(a: Analysis, unit: str) -> list[str]:
    notes = list(a.notes)
    if a.training_only:
        notes.append(_training_only_note(a, unit))
    if a.unsupported:
        notes.append(_unsupported_note(a))
    return notes


def comparison_text(c: Comparison, fmt: str = "table", per_layer: bool = False) -> str:
    """The side-by-side table (``fmt`` = table or md), with per-layer tables when asked."""
    same = _same_input(c)
    raw_rows = comparison_summary_rows(c)
    show_terms = any(raw[5] for raw in raw_rows)
    headers = (["target"] + ([] if same else ["input"]) + ["output", unit_label(c.unit)]
               + (["= sum of layers"] if show_terms else [])
               + ["params", "ops", "activations", "vs first"])
    rows = []
    for raw in raw_rows:
        name, input_text, batch, output, macs, terms, params, ops, activations, _, ratio = raw
        rows.append([name] + ([] if same else [f"{input_text} ×{batch}"]) + [output, count(macs)]
                    + ([terms] if show_terms else [])
                    + [count(params), count(ops), count(activations), ratio])
    numeric = ([False] + ([] if same else [False]) + [False, True] + ([True] if show_terms else [])
               + [True, True, True, False])
    if has_latency(c.targets):
        headers, rows, numeric = _with_latency_columns(c, headers, rows, numeric)
    first = c.targets[0]
    heading = (f"input {shape(first.input)}, batch {first.batch}, {first.dtype}" if same
               else f"inputs per target, {first.dtype}")
    parts = []
    if fmt == "md":
        parts.append(f"## costlab compare ({heading})")
    else:
        parts.append(f"costlab compare: {heading}")
    parts += ["", _grid(headers, rows, fmt, numeric), "", convention(c.unit)]
    for t in c.targets:
        for note in _notes(t, c.unit):
            parts.append(f"{t.name}: {note}")
    parts += latency_notes(c.targets)
    if per_layer:
        for t in c.targets:
            title = f"### {t.name}" if fmt == "md" else f"{t.name}"
            parts += ["", title, "", _layer_table(t, fmt, c.unit)]
    return "\n".join(parts) + "\n"


def comparison_csv(c: Comparison, per_layer: bool = False) -> str:
    """One row per target, or with ``per_layer`` one row per layer of every target."""
    unit = unit_label(c.unit).lower()
    if per_layer:
        headers = ["target", "layer", "type", "op", "output", unit, "params", "ops", "activations",
                   "formula"]
        rows = [[t.name, layer.name, layer.type, layer.op, shape(layer.output[1:]),
                 in_unit(layer.macs, c.unit), layer.params, layer.ops, layer.activations, layer.formula]
                for t in c.targets for layer in t.layers]
        if has_latency(c.targets):
            headers += LAYER_LATENCY_CSV
            rows = [row + layer_latency_csv(layer) for row, layer in
                    zip(rows, [layer for t in c.targets for layer in t.layers])]
        return _csv(headers, rows)
    headers = ["target", "input", "batch", "output", unit, "sum_of_layers", "params", "ops",
               "activations", "ratio", "vs_first"]
    ratio_column = headers.index("ratio")
    rows = [[("" if v is None else f"{v:.6g}") if i == ratio_column else v
             for i, v in enumerate(r)] for r in comparison_summary_rows(c)]
    if has_latency(c.targets):
        headers += TARGET_LATENCY_CSV
        rows = [row + target_latency_csv(t, ratio)
                for row, t, ratio in zip(rows, c.targets, c.latency_ratios or ())]
    return _csv(headers, rows)


def render_comparison(c: Comparison, fmt: str = "table", per_layer: bool = False) -> str:
    """``costlab compare`` output in one of FORMATS."""
    if fmt == "json":
        return json.dumps(c.to_dict(), indent=2) + "\n"
    if fmt == "csv":
        return comparison_csv(c, per_layer)
    return comparison_text(c, fmt, per_layer)


def comparison_markdown(c: Comparison, per_layer: bool = False) -> str:
    return comparison_text(c, "md", per_layer)


# --- one analysis --------------------------------------------------------------------

def analysis_text(a: Analysis, fmt: str = "table", depth: int | None = None, unit: str = "macs") -> str:
    """``costlab analyze`` output: a per-layer table (folded to ``depth``) with shares and a total."""
    head = (f"{a.name}: input {shape(a.input)}, batch {a.batch}, {a.dtype} → output {shape(a.output)}; "
            f"{count(in_unit(a.macs, unit))} {unit_label(unit)}, {count(a.params)} params, "
            f"{count(a.ops)} ops")
    parts = [f"## {head}" if fmt == "md" else head, "", _layer_table(a, fmt, unit, depth, share=True),
             "", convention(unit)]
    parts += _notes(a, unit)
    parts += latency_notes((a,))
    return "\n".join(parts) + "\n"


def analysis_csv(a: Analysis, depth: int | None = None, unit: str = "macs") -> str:
    headers = ["layer", "type", "op", "output", unit_label(unit).lower(), "params", "ops", "activations",
               "formula"]
    rows = [[r.name, r.type, r.op, shape(r.output[1:]), in_unit(r.macs, unit), r.params, r.ops,
             r.activations, r.formula] for r in a.rows(depth)]
    if has_latency((a,)):
        headers += LAYER_LATENCY_CSV
        rows = [row + row_latency_csv(a, r) for row, r in zip(rows, a.rows(depth))]
    return _csv(headers, rows)


def render_analysis(a: Analysis, fmt: str = "table", depth: int | None = None, unit: str = "macs") -> str:
    """``costlab analyze`` output in one of FORMATS (JSON is the compare object with one target)."""
    if fmt == "json":
        return json.dumps(Comparison((a,), unit).to_dict(), indent=2) + "\n"
    if fmt == "csv":
        return analysis_csv(a, depth, unit)
    return analysis_text(a, fmt, depth, unit)


def analysis_markdown(a: Analysis, depth: int | None = None, unit: str = "macs") -> str:
    return analysis_text(a, "md", depth, unit)



def preset_list(analyses: Sequence[Analysis], summaries: Sequence[str], fmt: str = "table") -> str:
    """``costlab list``: one line per preset with its default input, params and MACs."""
    headers = ["preset", "input", "params", "MACs", "description"]
    raw = [[a.name, shape(a.input), a.params, a.macs, summary] for a, summary in zip(analyses, summaries)]
    if fmt == "json":
        return json.dumps([dict(zip(["name", "input", "params", "macs", "description"],
                                    [a.name, list(a.input), a.params, a.macs, s]))
                           for a, s in zip(analyses, summaries)], indent=2) + "\n"
    if fmt == "csv":
        return _csv(["preset", "input", "params", "macs", "description"], raw)
    rows = [[name, inp, count(params), count(macs), summary] for name, inp, params, macs, summary in raw]
    return _grid(headers, rows, fmt, [False, False, True, True, False]) + "\n"


# --- latency and the roofline (with --latency) ------------------------------------------------

LAYER_LATENCY_HEADERS = ["ms ± IQR", "GFLOP/s", "FLOP/B", "bound", "roofline ms"]
LAYER_LATENCY_CSV = ["latency_ms", "latency_iqr_ms", "latency_noisy", "achieved_gflops", "intensity",
                     "bound", "roofline_ms"]
TARGET_LATENCY_CSV = ["latency_ms", "latency_iqr_ms", "latency_noisy", "latency_ratio", "roofline_ms",
                      "roofline_fraction"]
NOISY = "noisy"
#: A CPU target whose process got less than this share of its threads' time is called out.
CPU_SHARE_WARNING = 0.75


def threads_text(threads: int) -> str:
    """1 → '1 thread', 2 → '2 threads'."""
    return f"{threads} thread{'' if threads == 1 else 's'}"


def has_latency(analyses: Sequence[Analysis]) -> bool:
    """True when every target carries a latency measurement."""
    return bool(analyses) and all(a.latency is not None for a in analyses)


def milliseconds(value: float) -> str:
    """Milliseconds for a table: 0.0012, 0.079, 0.731, 2.68, 12.3, 1234."""
    if value >= 100:
        return f"{value:.0f}"
    if value >= 1:
        return f"{value:.3g}"
    return f"{value:.3f}" if value >= 0.01 else f"{value:.4f}"


def latency_text(latency: Any) -> str:
    """'0.731 ± 0.026', with ' noisy' appended when IQR/median is above the threshold."""
    text = f"{milliseconds(latency['median'])} ± {milliseconds(latency['iqr'])}"
    return f"{text} {NOISY}" if latency["noisy"] else text


def speed_ratio_text(ratio: float | None, first: bool) -> str:
    """3.09 → '3.09× faster' (first's median over this one's); the first target is the baseline."""
    if first:
        return "baseline"
    if not ratio:
        return "n/a"
    return f"{ratio:.2f}× faster" if ratio >= 1 else f"{1 / ratio:.2f}× slower"


def _members(a: Analysis, row: Row) -> list[Layer]:
    """The layers a row stands for: itself, or every layer under a folded block's name."""
    return [layer for layer in a.layers if layer.name == row.name or layer.name.startswith(row.name + ".")]


def row_latency_cells(a: Analysis, row: Row) -> list[str]:
    """ms ± IQR, GFLOP/s, FLOP/B, bound, roofline ms of a row; a folded block sums its layers."""
    members = [m for m in _members(a, row) if m.latency is not None and m.roofline is not None]
    if not members:
        return ["–"] * len(LAYER_LATENCY_HEADERS)
    if len(members) == 1 and members[0].name == row.name:
        latency, roof = members[0].latency, members[0].roofline
        intensity = roof["intensity"]  # type: ignore[index]
        return [latency_text(latency), f"{roof.get('achieved_gflops', 0):.1f}",  # type: ignore[union-attr]
                "–" if intensity is None else f"{intensity:.1f}", roof["bound"],  # type: ignore[index]
                milliseconds(roof["predicted_ms"])]  # type: ignore[index]
    measured = sum(m.latency["median"] for m in members)  # type: ignore[index]
    flops = sum(m.roofline["flops"] for m in members)  # type: ignore[index]
    moved = sum(m.roofline["bytes"] for m in members)  # type: ignore[index]
    kinds = {m.roofline["bound"] for m in members}  # type: ignore[index]
    noisy = any(m.latency["noisy"] for m in members)  # type: ignore[index]
    return [f"{milliseconds(measured)} (sum){' ' + NOISY if noisy else ''}",
            f"{flops / (measured * 1e-3) / 1e9:.1f}" if measured else "–",
            f"{flops / moved:.1f}" if moved else "–", kinds.pop() if len(kinds) == 1 else "mixed",
            milliseconds(sum(m.roofline["predicted_ms"] for m in members))]  # type: ignore[index]


def target_latency_cells(a: Analysis) -> list[str]:
    """The whole target measured as one module, for the total row of a per-layer table."""
    latency, roof = a.latency, a.roofline or {}
    intensity = roof.get("intensity")
    return [latency_text(latency), f"{roof.get('achieved_gflops', 0):.1f}",
            "–" if intensity is None else f"{intensity:.1f}", "",
            milliseconds(roof["predicted_ms"]) if "predicted_ms" in roof else "–"]


def _with_latency_columns(c: Comparison, headers: list[str], rows: list[list[str]],
                          numeric: list[bool]) -> tuple[list[str], list[list[str]], list[bool]]:
    """The summary table with measured latency, its ratio to the first, and the roofline's prediction."""
    ratios = c.latency_ratios or ()
    extra = [[latency_text(t.latency), speed_ratio_text(ratio, index == 0),
              milliseconds((t.roofline or {}).get("predicted_ms", 0.0)),
              f"{100 * (t.roofline or {}).get('fraction', 0.0):.0f} %"]
             for index, (t, ratio) in enumerate(zip(c.targets, ratios))]
    return (headers + ["latency ms ± IQR", "time vs first", "roofline ms", "of roofline"],
            [row + more for row, more in zip(rows, extra)], numeric + [True, False, True, True])


def latency_notes(analyses: Sequence[Analysis]) -> list[str]:
    """How latency was measured and the peaks of the roofline, once per report."""
    if not has_latency(analyses):
        return []
    first = analyses[0]
    latency, roof = first.latency, (first.roofline or {})
    peaks = roof.get("peaks", {})
    threads = f", {threads_text(latency['threads'])}" if latency["device"] == "cpu" else ""
    notes = [
        f"Latency: median ± IQR in ms on {latency['device']} ({latency.get('device_name', '?')}{threads}), "
        f"{latency.get('dtype', first.dtype)}, eval mode, inference mode, after warm-up; "
        f"'{NOISY}' marks IQR above {100 * latency['noise_threshold']:.0f} % of the median.",
    ]
    if peaks:
        notes.append(
            f"Roofline: bound = max(FLOPs / {peaks['gflops']:.1f} GFLOP/s, bytes / {peaks['gbps']:.1f} GB/s), "
            f"the peaks measured on this machine (ridge {peaks['ridge']:.1f} FLOP/B, calibrated "
            f"{peaks.get('measured_at', '?')}); a network's roofline ms is the sum of its layers'; "
            "'of roofline' = roofline ms / measured ms.")
    starved = [f"{a.name} ({100 * a.latency['cpu_share']:.0f} %)" for a in analyses
               if a.latency and (a.latency.get("cpu_share") or 1.0) < CPU_SHARE_WARNING]
    if starved:
        notes.append(f"Got less than {100 * CPU_SHARE_WARNING:.0f} % of its threads' CPU time while measured: "
                     f"{', '.join(starved)}: other work on the machine, or ops that used fewer threads than "
                     "given; measure again on a quiet machine before trusting it.")
    noisy = [a.name for a in analyses if a.latency and a.latency["noisy"]]
    noisy += [f"{a.name}: {layer.name}" for a in analyses for layer in a.layers
              if layer.latency is not None and layer.latency["noisy"]]
    if noisy:
        notes.append(f"Noisy measurements (IQR/median above the threshold): {', '.join(noisy)}.")
    return notes


def layer_latency_csv(layer: Layer) -> list[Any]:
    latency, roof = layer.latency or {}, layer.roofline or {}
    if not latency:
        return [""] * len(LAYER_LATENCY_CSV)
    return [f"{latency['median']:.6g}", f"{latency['iqr']:.6g}", latency["noisy"],
            f"{roof.get('achieved_gflops', 0):.6g}",
            "" if roof.get("intensity") is None else f"{roof['intensity']:.6g}", roof.get("bound", ""),
            f"{roof.get('predicted_ms', 0):.6g}"]


def row_latency_csv(a: Analysis, row: Row) -> list[Any]:
    """A row's latency columns: the layer's own, or a folded block's sums (IQR left empty)."""
    members = [m for m in _members(a, row) if m.latency is not None]
    if len(members) == 1 and members[0].name == row.name:
        return layer_latency_csv(members[0])
    if not members:
        return [""] * len(LAYER_LATENCY_CSV)
    measured = sum(m.latency["median"] for m in members)  # type: ignore[index]
    flops = sum(m.roofline["flops"] for m in members)  # type: ignore[index]
    moved = sum(m.roofline["bytes"] for m in members)  # type: ignore[index]
    kinds = {m.roofline["bound"] for m in members}  # type: ignore[index]
    return [f"{measured:.6g}", "", any(m.latency["noisy"] for m in members),  # type: ignore[index]
            f"{flops / (measured * 1e-3) / 1e9:.6g}" if measured else "",
            f"{flops / moved:.6g}" if moved else "", kinds.pop() if len(kinds) == 1 else "mixed",
            f"{sum(m.roofline['predicted_ms'] for m in members):.6g}"]  # type: ignore[index]


def target_latency_csv(t: Analysis, ratio: float | None) -> list[Any]:
    latency, roof = t.latency or {}, t.roofline or {}
    return [f"{latency['median']:.6g}", f"{latency['iqr']:.6g}", latency["noisy"],
            "" if ratio is None else f"{ratio:.6g}", f"{roof.get('predicted_ms', 0):.6g}",
            f"{roof.get('fraction', 0):.6g}"]


def render_peaks(peaks: Any, path: str, fmt: str = "table") -> str:
    """``costlab calibrate``: the measured peaks (a dict of roofline.Peaks), their ridge and the cache file."""
    if fmt == "json":
        return json.dumps({**peaks, "cache": path}, indent=2) + "\n"
    keys = ["device", "device_name", "threads", "dtype", "gflops", "gbps", "ridge", "matmul_size",
            "copy_bytes", "host", "torch_version", "measured_at"]
    if fmt == "csv":
        return _csv(keys + ["cache"], [[peaks.get(k, "") for k in keys] + [path]])
    threads = f", {threads_text(peaks['threads'])}" if peaks["device"] == "cpu" else ""
    rows = [
        ["peak arithmetic", f"{peaks['gflops']:.1f} GFLOP/s",
         f"{peaks['dtype']} {peaks['matmul_size']}×{peaks['matmul_size']} matrix product, 2n³ FLOPs, best sample"],
        ["peak bandwidth", f"{peaks['gbps']:.1f} GB/s",
         f"copy of {peaks['copy_bytes'] / 2**20:.0f} MiB, bytes read + written, best sample"],
        ["ridge point", f"{peaks['ridge']:.1f} FLOP/B", "layers above it are compute-bound, below memory-bound"],
    ]
    title = f"{peaks['device']} ({peaks['device_name']}{threads}) on {peaks['host']}, torch {peaks['torch_version']}"
    parts = [f"## Roofline peaks: {title}" if fmt == "md" else f"Roofline peaks: {title}", "",
             _grid(["", "measured", "how"], rows, fmt, [False, True, False]), "",
             f"Cached in {path} ({peaks['measured_at']})."]
    return "\n".join(parts) + "\n"
