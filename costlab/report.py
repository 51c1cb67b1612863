"""Renderers: one result object in, one string out (terminal table, Markdown, CSV, JSON).

Renderers read their input and never change it; tabulate options are passed per call.
pandas is not needed here (CSV goes through the csv module), which keeps
``costlab compare`` fast as a whole process.
"""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from tabulate import tabulate

from .analysis import FLOPS_PER_MAC, Analysis, Comparison

if TYPE_CHECKING:
    from .conventions import Profile

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


def grid(headers: Sequence[str], rows: Iterable[Sequence[Any]], fmt: str, numeric: Sequence[bool]) -> str:
    """A table of pre-formatted cells: 'md' gives GitHub Markdown, anything else a plain terminal grid."""
    tablefmt = "github" if fmt == "md" else "simple"
    align = ["right" if n else "left" for n in numeric]
    return tabulate(list(rows), headers=list(headers), tablefmt=tablefmt, colalign=align,
                    disable_numparse=True)


def csv_text(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Rows as CSV text with a header line (the csv module: no pandas needed)."""
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


def _has_training(c: Comparison) -> bool:
    return any(t.training is not None for t in c.targets)


def _training_cells(t: Analysis, unit: str) -> list[Any]:
    """trainable params, frozen params, train-step MACs of a target under --freeze (blank without)."""
    if t.training is None:
        return ["", "", ""]
    return [t.training.trainable_params, t.training.frozen_params,
            in_unit(t.training.train_step_macs, unit)]


def _row_training(a: Analysis, name: str) -> tuple[int, int, int, str] | None:
    """Training fields of a per-layer row (a layer, or a folded block: the sums of its layers)."""
    if a.training is None:
        return None
    members = [t for t in a.training.layers if t.name == name or t.name.startswith(name + ".")]
    grads = {t.grads for t in members}
    return (sum(t.trainable_params for t in members), sum(t.frozen_params for t in members),
            sum(t.train_step_macs for t in members), grads.pop() if len(grads) == 1 else "mixed")


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
    training = a.training
    profile = a.convention
    for row in a.rows(depth):
        cells = [row.name, row.type, row.op, shape(row.output[1:]), count(in_unit(row.macs, unit)),
                 count(row.params), count(row.ops)]
        if share:
            cells.append(f"{100 * row.macs / total:.1f} %" if total else "–")
        fields = _row_training(a, row.name)
        if fields is not None:
            cells += [fields[3], count(in_unit(fields[2], unit))]
        if profile is not None:
            cells.append(convention_count_text(profile, row.name))
        cells.append(row.formula)
        rows.append(cells)
    footer = ["total", "", "", shape(a.output), count(in_unit(a.macs, unit)), count(a.params),
              count(a.ops)] + (["100.0 %" if total else "–"] if share else [])
    if training is not None:
        footer += ["", count(in_unit(training.train_step_macs, unit))]
    footer += [count(profile.total)] if profile is not None else []
    rows.append(footer + [""])
    headers = ["layer", "type", "op", "output", unit_label(unit), "params", "ops"]
    headers += (["share"] if share else [])
    headers += (["grads", f"train-step {unit_label(unit)}"] if training is not None else [])
    headers += [profile.convention.name] if profile is not None else []
    headers += ["formula (MACs or ops)"]
    numeric = ([False] * 4 + [True] * (4 if share else 3)
               + ([False, True] if training is not None else [])
               + ([True] if profile is not None else []) + [False])
    return grid(headers, rows, fmt, numeric)


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
    if a.training is not None:
        notes.append(a.training.summary())
    return notes


# --- other tools' conventions (--convention) ----------------------------------------------

def convention_count_text(profile: "Profile", row_name: str) -> str:
    """The tool's count for a layer, or for all layers of a folded row (name prefix)."""
    from fractions import Fraction

    members = [layer.count for layer in profile.layers
               if layer.name == row_name or layer.name.startswith(row_name + ".")]
    value = sum(members, Fraction(0))
    return count(int(value)) if value.denominator == 1 else f"{float(value):,.1f}"


def convention_rows(analyses: Sequence[Analysis]) -> list[list[Any]]:
    """Raw rows (numbers as numbers): target, tool total, costlab MACs, difference, tool params, why."""
    return [[a.name, a.convention.total, a.convention.macs, a.convention.delta, a.convention.params,
             a.convention.explanation()] for a in analyses if a.convention is not None]


def convention_section(analyses: Sequence[Analysis], fmt: str) -> list[str]:
    """Lines that set each target's total as another tool would report it beside costlab's MACs."""
    profiled = [a for a in analyses if a.convention is not None]
    if not profiled:
        return []
    convention = profiled[0].convention.convention  # type: ignore[union-attr]
    name = convention.name
    title = (f"As {convention.tool} {convention.version} would report it ({convention.unit}; "
             f"{convention.mechanism}):")
    headers = ["target", f"{name} total", "costlab MACs", "difference", f"{name} params",
               "explained by (rule: its count − the MACs it stands for)"]
    rows = [[target, count(total), count(macs), f"{delta:+,}", count(params), why]
            for target, total, macs, delta, params, why in convention_rows(profiled)]
    lines = ["", f"### {title}" if fmt == "md" else title, "",
             grid(headers, rows, fmt, [False, True, True, True, True, False])]
    if any(term.per_sample for a in profiled for layer in a.convention.layers  # type: ignore[union-attr]
           for term, _ in layer.terms) and any(a.batch != 1 for a in profiled):
        lines.append(f"{name} divides its module-hook counts by the batch size (per sample); "
                     "costlab's MACs are shown on the same terms.")
    return lines


def comparison_text(c: Comparison, fmt: str = "table", per_layer: bool = False) -> str:
    """The side-by-side table (``fmt`` = table or md), with per-layer tables when asked."""
    same = _same_input(c)
    raw_rows = comparison_summary_rows(c)
    show_terms = any(raw[5] for raw in raw_rows)
    training = _has_training(c)
    headers = (["target"] + ([] if same else ["input"]) + ["output", unit_label(c.unit)]
               + (["= sum of layers"] if show_terms else [])
               + ["params", "ops", "activations"]
               + (["trainable", "frozen", f"train-step {unit_label(c.unit)}"] if training else [])
               + ["vs first"])
    rows = []
    for t, raw in zip(c.targets, raw_rows):
        name, input_text, batch, output, macs, terms, params, ops, activations, _, ratio = raw
        extra = [v if v == "" else count(v) for v in _training_cells(t, c.unit)] if training else []
        rows.append([name] + ([] if same else [f"{input_text} ×{batch}"]) + [output, count(macs)]
                    + ([terms] if show_terms else [])
                    + [count(params), count(ops), count(activations)] + extra + [ratio])
    numeric = ([False] + ([] if same else [False]) + [False, True] + ([True] if show_terms else [])
               + [True, True, True] + ([True] * 3 if training else []) + [False])
    first = c.targets[0]
    heading = (f"input {shape(first.input)}, batch {first.batch}, {first.dtype}" if same
               else f"inputs per target, {first.dtype}")
    parts = []
    if fmt == "md":
        parts.append(f"## costlab compare ({heading})")
    else:
        parts.append(f"costlab compare: {heading}")
    parts += ["", grid(headers, rows, fmt, numeric), "", convention(c.unit)]
    for t in c.targets:
        for note in _notes(t, c.unit):
            parts.append(f"{t.name}: {note}")
    parts += convention_section(c.targets, fmt)
    if per_layer:
        for t in c.targets:
            title = f"### {t.name}" if fmt == "md" else f"{t.name}"
            parts += ["", title, "", _layer_table(t, fmt, c.unit)]
    return "\n".join(parts) + "\n"


def comparison_csv(c: Comparison, per_layer: bool = False) -> str:
    """One row per target, or with ``per_layer`` one row per layer of every target."""
    unit = unit_label(c.unit).lower()
    training = _has_training(c)
    training_headers = ["trainable_params", "frozen_params", f"train_step_{unit}"]
    if per_layer:
        headers = ["target", "layer", "type", "op", "output", unit, "params", "ops", "activations",
                   "formula"]
        if training:
            headers[-1:-1] = training_headers + ["grads"]
        rows = []
        for t in c.targets:
            per_name = t.training.by_name() if t.training is not None else {}
            for layer in t.layers:
                row = [t.name, layer.name, layer.type, layer.op, shape(layer.output[1:]),
                       in_unit(layer.macs, c.unit), layer.params, layer.ops, layer.activations]
                if training:
                    step = per_name.get(layer.name)
                    row += ([step.trainable_params, step.frozen_params,
                             in_unit(step.train_step_macs, c.unit), step.grads] if step else [""] * 4)
                rows.append(row + [layer.formula])
        return csv_text(headers, rows)
    headers = ["target", "input", "batch", "output", unit, "sum_of_layers", "params", "ops",
               "activations", "ratio", "vs_first"]
    ratio_column = headers.index("ratio")
    rows = [[("" if v is None else f"{v:.6g}") if i == ratio_column else v for i, v in enumerate(r)]
            for r in comparison_summary_rows(c)]
    if training:
        headers += training_headers
        rows = [row + _training_cells(t, c.unit) for row, t in zip(rows, c.targets)]
    if any(t.convention is not None for t in c.targets):
        headers += ["convention", "convention_total", "convention_params", "convention_explained_by"]
        for row, t in zip(rows, c.targets):
            p = t.convention
            row += ([p.convention.name, p.total, p.params, p.explanation()] if p is not None
                    else ["", "", "", ""])
    return csv_text(headers, rows)


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
    if a.training is not None:
        head += (f"; train step {count(in_unit(a.training.train_step_macs, unit))} {unit_label(unit)}, "
                 f"{count(a.training.trainable_params)} trainable and "
                 f"{count(a.training.frozen_params)} frozen params")
    parts = [f"## {head}" if fmt == "md" else head, "", _layer_table(a, fmt, unit, depth, share=True),
             "", convention(unit)]
    parts += _notes(a, unit)
    parts += convention_section([a], fmt)
    return "\n".join(parts) + "\n"


def analysis_csv(a: Analysis, depth: int | None = None, unit: str = "macs") -> str:
    unit_name = unit_label(unit).lower()
    headers = ["layer", "type", "op", "output", unit_name, "params", "ops", "activations", "formula"]
    rows = []
    for r in a.rows(depth):
        row: list[Any] = [r.name, r.type, r.op, shape(r.output[1:]), in_unit(r.macs, unit), r.params,
                          r.ops, r.activations]
        fields = _row_training(a, r.name)
        if fields is not None:
            trainable, frozen, step, grads = fields
            row += [trainable, frozen, in_unit(step, unit), grads]
        if a.convention is not None:
            row.append(convention_count_text(a.convention, r.name).replace(",", ""))
        rows.append(row + [r.formula])
    if a.training is not None:
        headers[-1:-1] = ["trainable_params", "frozen_params", f"train_step_{unit_name}", "grads"]
    if a.convention is not None:
        headers[-1:-1] = [a.convention.convention.name]
    return csv_text(headers, rows)


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
        return csv_text(["preset", "input", "params", "macs", "description"], raw)
    rows = [[name, inp, count(params), count(macs), summary] for name, inp, params, macs, summary in raw]
    return grid(headers, rows, fmt, [False, False, True, True, False]) + "\n"
