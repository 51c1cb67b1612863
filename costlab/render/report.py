"""Renderers: one result object in, one string out (terminal table, Markdown, CSV, JSON).

Renderers read their input and never change it; tabulate options are passed per call.
pandas is not needed here (CSV goes through the csv module), which keeps
``costlab compare`` fast as a whole process.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Callable, Iterable, Sequence

from ..core.analysis import RENDERING, Analysis, Comparison
from ..core.features import FEATURES, FLOPS_PER_MAC, in_unit, unit_label
from ..core.graph import DTYPE_BYTES
from .display import left_out_note
from .features import Presenter, presenter
from .features.latency import threads_text
from .formats import Format
from .numbers import Style, count, number
from .view import Heading, View

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


def bound_text(bound: tuple[str, float] | None) -> str:
    """What a bounded ratio says: ('<=', 3.2) → '≤ 3.20× fewer' (the target's MACs are a lower
    bound: it may have more), ('<=', 0.72) → '≥ 1.38× more'; ('>=', r) the other way round;
    None → 'unknown (counts incomplete)'."""
    if bound is None or bound[1] <= 0:
        return "unknown (counts incomplete)"
    kind, ratio = bound
    at_most = kind == "<="
    if ratio > 1:
        return f"{'≤' if at_most else '≥'} {ratio:.2f}× fewer"
    return f"{'≥' if at_most else '≤'} {1 / ratio:.2f}× more"


def macs_text(a: Analysis, value: float, shown: Callable[[float], str]) -> str:
    """A count of MACs as shown: '≥ 58.9 M' where the analysis is not complete (a lower bound)."""
    return ("" if a.complete else "≥ ") + shown(value)


def incomplete_warning(targets: Sequence[Analysis]) -> list[str]:
    """One line above a table for each target whose count misses an op that multiplies."""
    lines = []
    for t in targets:
        if not t.complete:
            missed = sorted({u.op for u in t.unsupported if u.multiplies})
            lines.append(f"warning: {t.name}: not priced: {', '.join(missed) or 'a generation call'} (multiplies); "
                         "its MACs are a lower bound (≥); a ratio with it is a bound or unknown")
    return lines


def ratio_text(ratio: float | None, first: bool) -> str:
    """9.677 → '9.68× fewer'; 0.5 → '2.00× more'; 1 → 'the same'; the first target is the baseline."""
    if first:
        return "baseline"
    if ratio is None:
        return "n/a (no MACs)"
    if ratio == 1:
        return "the same"
    if ratio >= 1:
        return f"{number(ratio, Style.TIMES)} fewer"
    return f"{number(1 / ratio, Style.TIMES)} more" if ratio > 0 else "n/a"


def grid(headers: Sequence[str], rows: Iterable[Sequence[Any]], fmt: str, numeric: Sequence[bool]) -> str:
    """A table of pre-formatted cells: 'md' gives GitHub Markdown, anything else a plain terminal grid."""
    from tabulate import tabulate  # imported only when a table is drawn (not for JSON or CSV)

    tablefmt = "github" if fmt == Format.MD else "simple"
    align = ["right" if n else "left" for n in numeric]
    return tabulate(list(rows), headers=list(headers), tablefmt=tablefmt, colalign=align,
                    disable_numparse=True)


def weight_bytes(a: Analysis) -> int:
    """Parameters × the element size of the analysis's dtype."""
    return a.params * DTYPE_BYTES[a.dtype]


def activation_bytes(a: Analysis, activations: int | None = None) -> int:
    """Output elements (of every layer, or ``activations``) × the element size."""
    return (a.activations if activations is None else activations) * DTYPE_BYTES[a.dtype]


def csv_text(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Rows as CSV text with a header line (the csv module: no pandas needed)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows(rows)
    return buffer.getvalue()


# --- the features (--freeze, --memory, --convention, --check, --latency) ----------------------

def feature_groups(targets: Sequence[Analysis]) -> list[tuple[str, Presenter, list[Any]]]:
    """Each feature any of ``targets`` carries, in the order of FEATURES: its name, its presenter and
    one per target (None where a target has none)."""
    found = []
    for name in FEATURES:
        group = [t.feature(name) for t in targets]
        if any(f is not None for f in group):
            found.append((name, presenter(name), group))
    return found


def presented(a: Analysis) -> list[tuple[Any, Presenter]]:
    """Each feature ``a`` carries, in the order of FEATURES, with its presenter."""
    return [(feature, presenter(feature.name)) for feature in a.features]


def _titles(columns: Sequence[tuple[Any, Presenter, Sequence[Heading]]]) -> list[str]:
    return [h.title for _, _, headings in columns for h in headings]


def _feature_cells(shown: Presenter, feature: Any, headings: Sequence[Heading], row: Any, members: Sequence[Any],
                   unit: str, view: "View | None") -> list[Any]:
    if not headings:
        return []
    return (shown.layer_cells(feature, headings, row, members, unit, view) if feature is not None
            else [""] * len(headings))


# --- comparison ----------------------------------------------------------------------

def _same_input(c: Comparison) -> bool:
    return len({(t.input, t.batch) for t in c.targets}) == 1


MAX_TERMS = 4


def mac_terms(a: Analysis, unit: str, view: "View | None" = None) -> str:
    """'2,408,448 + 10,035,200' (in the terminal '2.41 M + 10.0 M') when two to MAX_TERMS layers
    carry the MACs, else ''."""
    terms = [in_unit(layer.macs, unit) for layer in a.layers if layer.macs]
    shown = view.count if view is not None else count
    return " + ".join(shown(t) for t in terms) if 1 < len(terms) <= MAX_TERMS else ""


def comparison_summary_rows(c: Comparison) -> list[list[Any]]:
    """Raw rows (numbers as numbers) of the side-by-side table; the ratio text says where a count
    is incomplete (:func:`bound_text`)."""
    rows = []
    first_complete = c.targets[0].complete
    for index, (t, ratio, bound) in enumerate(zip(c.targets, c.ratios, c.ratio_bounds)):
        text = ratio_text(ratio, index == 0) if index == 0 or (t.complete and first_complete) \
            else bound_text(bound)
        rows.append([t.name, shape(t.input), t.batch, shape(t.output), in_unit(t.macs, c.unit),
                     mac_terms(t, c.unit), t.params, t.ops, t.activations, ratio, text])
    return rows


def _layer_table(a: Analysis, fmt: str, unit: str, depth: int | None = None, share: bool = False, by_module: bool = False,
                 view: View | None = None) -> str:
    """The per-layer table (with a total row): each feature adds its columns; in the terminal
    fitted to ``view.width``, with a line naming the columns left out."""
    view = view or View(fmt)
    n = view.count
    rows: list[list[str]] = []
    total = a.macs
    itemsize = DTYPE_BYTES[a.dtype]
    columns = [(f, shown, shown.layer_columns([f], unit, view)) for f, shown in presented(a)]
    for row, members in a.folded(depth, by_module):
        cells = [row.name, row.type, row.op, shape(row.output[1:]), n(in_unit(row.macs, unit)),
                 n(row.params), n(row.ops)]
        if share:
            cells.append(f"{100 * row.macs / total:.1f} %" if total else "–")
        for feature, shown, headings in columns:
            cells += _feature_cells(shown, feature, headings, row, members, unit, view)
        cells += [view.bytes(row.params * itemsize), view.bytes(row.activations * itemsize)]
        cells.append(formula_in_unit(row.formula, unit))
        rows.append(cells)
    footer = ["total", "", "", shape(a.output), macs_text(a, in_unit(a.macs, unit), n), n(a.params),
              n(a.ops)] + (["100.0 %" if total else "–"] if share else [])
    for feature, shown, headings in columns:
        footer += shown.total_cells(feature, headings, unit, view) if headings else []
    footer += [view.bytes(weight_bytes(a)), view.bytes(activation_bytes(a))]
    rows.append(footer + [""])
    added = [h for _, _, headings in columns for h in headings]
    headers = ["layer", "type", "op", "output", unit_label(unit), "params", "ops"]
    headers += (["share"] if share else [])
    headers += [h.title for h in added]
    headers += ["weights", "act. memory", f"formula ({unit_label(unit)} or ops)"]
    numeric = [False] * 4 + [True] * (4 if share else 3) + [h.numeric for h in added] + [True, True, False]
    # What stays when the terminal is narrow: name and count first, the formula last.
    keeps: list[int | None] = ([None, 45, 8, 50, None, 80, 10] + ([85] if share else [])
                               + [h.keep for h in added] + [30, 20, 5])
    shrinks: list[str | None] = ["tail"] + [None] * (len(headers) - 1)
    table, dropped = view.table(headers, rows, numeric, keeps, shrinks)
    return "\n".join([table] + (view.prose([""] + left_out_note(dropped, view.width)) if dropped else []))


def formula_in_unit(formula: str, unit: str) -> str:
    """A MAC formula in FLOPs with ``--unit flops``: '2 × (7·7·3 × 112·112·64) = 236,027,904';
    formulas of ops (and blocks) are left as they are."""
    if unit != "flops" or formula.startswith("ops") or " = " not in formula:
        return formula
    expression, _, result = formula.rpartition(" = ")
    try:
        macs = int(result.replace(",", ""))
    except ValueError:
        return formula
    return f"2 × ({expression}) = {count(FLOPS_PER_MAC * macs)}"


def _training_only_note(a: Analysis, unit: str) -> str:
    return (f"Training only, not in the totals: {len(a.training_only)} layers, "
            f"{count(in_unit(a.training_only_macs, unit))} {unit_label(unit)}, "
            f"{count(a.training_only_params)} params.")


def _unsupported_notes(a: Analysis) -> list[str]:
    """The ops not priced: those that multiply (the count is a lower bound) apart from those that
    do not (named once each: they cost no MAC)."""
    notes = []
    multiplying = [u for u in a.unsupported if u.multiplies]
    if multiplying:
        listed = "; ".join(f"{u.path}: {u.op} ({u.reason})" for u in multiplying)
        notes.append(f"Not counted (unsupported, multiplies: MACs are a lower bound): {listed}")
    free = sorted({u.op for u in a.unsupported if not u.multiplies})
    if free:
        notes.append(f"Not priced, no multiplication (no MACs missed; ops not counted): {', '.join(free)}")
    return notes


def _notes(a: Analysis, unit: str) -> list[str]:
    notes = list(a.notes)
    if a.training_only:
        notes.append(_training_only_note(a, unit))
    notes += _unsupported_notes(a)
    for feature, shown in presented(a):
        notes += shown.table_notes(feature, unit)
    return notes


def _comparison_table(c: Comparison, view: View) -> tuple[str, list[str]]:
    """The side-by-side table in ``view`` and the headers it left out: each feature adds its
    columns, those of a run (checks, latency) after the ratio."""
    n = view.count
    same = _same_input(c)
    raw_rows = comparison_summary_rows(c)
    show_terms = any(raw[5] for raw in raw_rows)
    summaries = [(shown, headings, cells) for shown, headings, cells in
                 ((shown, *shown.side_by_side(group, c.unit, view)) for _, shown, group in feature_groups(c.targets))
                 if headings]
    counted = [(headings, cells) for shown, headings, cells in summaries if not shown.from_run]
    ran = [(headings, cells) for shown, headings, cells in summaries if shown.from_run]
    before = [h for headings, _ in counted for h in headings]
    after = [h for headings, _ in ran for h in headings]
    headers = (["target"] + ([] if same else ["input"]) + ["output", unit_label(c.unit)]
               + (["= sum of layers"] if show_terms else [])
               + ["params", "ops", "activations", "weights", "act. memory"]
               + [h.title for h in before] + ["vs first"] + [h.title for h in after])
    keeps: list[int | None] = ([None] + ([60] if not same else []) + [50, None] + ([45] if show_terms else [])
                               + [80, 10, 20, 40, 30] + [h.keep for h in before] + [None] + [h.keep for h in after])
    keeps[headers.index("output")] = 35  # the same for most comparisons: it goes before the memory
    rows = []
    for index, (t, raw) in enumerate(zip(c.targets, raw_rows)):
        name, input_text, batch, output, macs, terms, params, ops, activations, _, ratio = raw
        rows.append([name] + ([] if same else [f"{input_text} ×{batch}"]) + [output, macs_text(t, macs, n)]
                    + ([mac_terms(t, c.unit, view)] if show_terms else [])
                    + [n(params), n(ops), n(activations), view.bytes(weight_bytes(t)),
                       view.bytes(activation_bytes(t))]
                    + [cell for _, cells in counted for cell in cells[index]] + [ratio]
                    + [cell for _, cells in ran for cell in cells[index]])
    numeric = ([False] + ([] if same else [False]) + [False, True] + ([True] if show_terms else [])
               + [True] * 5 + [h.numeric for h in before] + [False] + [h.numeric for h in after])
    return view.table(headers, rows, numeric, keeps, ["head"] + [None] * (len(headers) - 1))


def _comparison_heading(c: Comparison) -> str:
    first = c.targets[0]
    return (f"input {shape(first.input)}, batch {first.batch}, {first.dtype}" if _same_input(c)
            else f"inputs per target, {first.dtype}")


def comparison_text(c: Comparison, fmt: str = Format.TABLE, per_layer: bool = False,
                    view: View | None = None) -> str:
    """The side-by-side table (``fmt`` = table or md), with per-layer tables when asked.

    In the terminal (``view``) counts are SI-scaled and the table fits ``view.width``: the
    least important columns are left out first and named under the table."""
    view = view or View(fmt)
    heading = _comparison_heading(c)
    parts = []
    if fmt == Format.MD:
        parts.append(f"## costlab compare ({heading})")
    else:
        parts.append(f"costlab compare: {heading}")
    table, dropped = _comparison_table(c, view)
    warnings = incomplete_warning(c.targets)
    parts += view.prose([""] + warnings) if warnings else []
    parts += ["", table]
    notes = [""] + left_out_note(dropped, view.width) + [convention(c.unit)]
    for t in c.targets:
        for note in _notes(t, c.unit):
            notes.append(f"{t.name}: {note}")
    parts += view.prose(notes)
    for _, shown, _ in feature_groups(c.targets):
        parts += shown.report_section(c.targets, c.unit, view)
    for t in c.targets:
        if per_layer:
            title = f"### {t.name}" if fmt == Format.MD else f"{t.name}"
            parts += ["", title, "", _layer_table(t, fmt, c.unit, view=view)]
        for feature, shown in presented(t):
            parts += shown.section(feature, t, c.unit, view, compact=not per_layer)
    return "\n".join(parts) + "\n"


def comparison_csv(c: Comparison, per_layer: bool = False) -> str:
    """One row per target, or with ``per_layer`` one row per layer of every target; each feature
    adds its columns (per layer, those of a run after the formula)."""
    unit = unit_label(c.unit).lower()
    groups = feature_groups(c.targets)
    if per_layer:
        columns = [(name, shown, shown.layer_columns(group, c.unit, None)) for name, shown, group in groups]
        counted = [(name, shown, headings) for name, shown, headings in columns if not shown.from_run]
        ran = [(name, shown, headings) for name, shown, headings in columns if shown.from_run]
        headers = (["target", "layer", "type", "op", "output", unit, "params", "ops", "activations"]
                   + _titles(counted) + ["formula"] + _titles(ran))
        rows = []
        for t in c.targets:
            for row, members in t.folded(None):
                cells = [t.name, row.name, row.type, row.op, shape(row.output[1:]), in_unit(row.macs, c.unit),
                         row.params, row.ops, row.activations]
                for name, shown, headings in counted:
                    cells += _feature_cells(shown, t.feature(name), headings, row, members, c.unit, None)
                cells.append(formula_in_unit(row.formula, c.unit))
                for name, shown, headings in ran:
                    cells += _feature_cells(shown, t.feature(name), headings, row, members, c.unit, None)
                rows.append(cells)
        return csv_text(headers, rows)
    headers = ["target", "input", "batch", "output", unit, "sum_of_layers", "params", "ops",
               "activations", "ratio", "vs_first"]
    ratio_column = headers.index("ratio")
    rows = [[("" if v is None else f"{v:.6g}") if i == ratio_column else v for i, v in enumerate(r)]
            for r in comparison_summary_rows(c)]
    headers += ["weight_bytes", "activation_bytes"]
    rows = [row + [weight_bytes(t), activation_bytes(t)] for row, t in zip(rows, c.targets)]
    for _, shown, group in groups:
        headings, cells = shown.side_by_side(group, c.unit, None)
        if headings:
            headers += [h.title for h in headings]
            rows = [row + more for row, more in zip(rows, cells)]
    return csv_text(headers, rows)


# --- notebooks: one-line summaries and HTML ---------------------------------------------------

def analysis_summary(a: Analysis) -> str:
    """'resnet50: 3×224×224 → 1000, 4.09 G MACs, 25.6 M params, 39.1 M ops, 177 layers'."""
    return (f"{a.name}: {shape(a.input)} → {shape(a.output)}" + (f" (batch {a.batch})" if a.batch != 1 else "")
            + f", {number(a.macs)} MACs, {number(a.params)} params, {number(a.ops)} ops, {len(a.layers)} layers")


def comparison_summary(c: Comparison) -> str:
    """'resnet50 4.09 G MACs, mobilenet-v2 301 M (13.60× fewer)'."""
    rows = comparison_summary_rows(c)
    parts = [f"{c.targets[0].name} {macs_text(c.targets[0], in_unit(c.targets[0].macs, c.unit), number)} "
             f"{unit_label(c.unit)}"]
    parts += [f"{t.name} {macs_text(t, in_unit(t.macs, c.unit), number)} ({row[-1]})"
              for t, row in zip(c.targets[1:], rows[1:])]
    return ", ".join(parts)


def _html_paragraphs(lines: Sequence[str]) -> list[str]:
    from html import escape

    return [f"<p>{escape(line)}</p>" for line in lines if line.strip()]


def analysis_html(a: Analysis, depth: int | None = None, unit: str = "macs") -> str:
    """An HTML view for notebooks: the summary, the per-layer table (every column, SI-scaled
    counts, exact ones on hover) and the notes."""
    view = View(Format.HTML)
    return "\n".join(["<div>"] + _html_paragraphs([analysis_summary(a)])
                     + [_layer_table(a, Format.HTML, unit, depth, share=True, view=view)]
                     + _html_paragraphs([convention(unit)] + _notes(a, unit)) + ["</div>"])


def comparison_html(c: Comparison) -> str:
    """An HTML view for notebooks: the side-by-side table (every column) and the notes."""
    table, _ = _comparison_table(c, View(Format.HTML))
    notes = [convention(c.unit)] + [f"{t.name}: {note}" for t in c.targets for note in _notes(t, c.unit)]
    return "\n".join(["<div>"] + _html_paragraphs([f"costlab compare: {_comparison_heading(c)}"]) + [table]
                     + _html_paragraphs(notes) + ["</div>"])


def render_comparison(c: Comparison, fmt: str = Format.TABLE, per_layer: bool = False,
                      width: int | None = None, exact: bool = False) -> str:
    """``costlab compare`` output in one of the formats (costlab.render.formats.Format); the terminal table fits ``width`` columns
    (None: every column) with SI-scaled counts unless ``exact``."""
    if fmt == Format.JSON:
        return json.dumps(c.to_dict(), indent=2) + "\n"
    if fmt == Format.CSV:
        return comparison_csv(c, per_layer)
    return comparison_text(c, fmt, per_layer, View(fmt, width, exact))


def comparison_markdown(c: Comparison, per_layer: bool = False) -> str:
    return comparison_text(c, Format.MD, per_layer)


# --- one analysis --------------------------------------------------------------------

def analysis_text(a: Analysis, fmt: str = Format.TABLE, depth: int | None = None, unit: str = "macs",
                  view: View | None = None) -> str:
    """``costlab analyze`` output: a per-layer table (folded to ``depth``) with shares and a total."""
    view = view or View(fmt)
    n = view.count
    head = (f"{a.name}: input {shape(a.input)}, batch {a.batch}, {a.dtype} → output {shape(a.output)}; "
            f"{macs_text(a, in_unit(a.macs, unit), n)} {unit_label(unit)}, {n(a.params)} params, "
            f"{n(a.ops)} ops")
    for feature, shown in presented(a):
        extra = shown.headline(feature, unit, view)
        head += f"; {extra}" if extra else ""
    parts = ([f"## {head}"] if fmt == Format.MD else view.prose([head]))
    warnings = incomplete_warning([a])
    parts += view.prose([""] + warnings) if warnings else []
    parts += ["", _layer_table(a, fmt, unit, depth, share=True, view=view, by_module=True)]
    folding = ([f"Rows follow the model's modules ({len(a.folded(None, True))} rows for {len(a.layers)} layers: "
                "each block's views, products and norms inside it); --depth N or --format json give every op."]
               if a.rows_at and depth is None else [])
    parts += view.prose(([] if view.width is not None and "Not shown at" in parts[-1] else [""])
                        + [convention(unit)] + folding + _notes(a, unit))
    for feature, shown in presented(a):
        parts += shown.section(feature, a, unit, view, compact=False)
    for _, shown in presented(a):
        parts += shown.report_section([a], unit, view)
    return "\n".join(parts) + "\n"


def analysis_csv(a: Analysis, depth: int | None = None, unit: str = "macs") -> str:
    """One row per per-layer row (folded to ``depth``); each feature adds its columns (those of a run
    after the formula)."""
    unit_name = unit_label(unit).lower()
    columns = [(f, shown, shown.layer_columns([f], unit, None)) for f, shown in presented(a)]
    counted = [(f, shown, headings) for f, shown, headings in columns if not shown.from_run]
    ran = [(f, shown, headings) for f, shown, headings in columns if shown.from_run]
    headers = (["layer", "type", "op", "output", unit_name, "params", "ops", "activations", "weight_bytes",
                "activation_bytes"] + _titles(counted) + ["formula"] + _titles(ran))
    rows = []
    for r, members in a.folded(depth):
        row: list[Any] = [r.name, r.type, r.op, shape(r.output[1:]), in_unit(r.macs, unit), r.params,
                          r.ops, r.activations, r.params * DTYPE_BYTES[a.dtype],
                          r.activations * DTYPE_BYTES[a.dtype]]
        for feature, shown, headings in counted:
            row += _feature_cells(shown, feature, headings, r, members, unit, None)
        row.append(formula_in_unit(r.formula, unit))
        for feature, shown, headings in ran:
            row += _feature_cells(shown, feature, headings, r, members, unit, None)
        rows.append(row)
    return csv_text(headers, rows)


def render_analysis(a: Analysis, fmt: str = Format.TABLE, depth: int | None = None, unit: str = "macs",
                    width: int | None = None, exact: bool = False) -> str:
    """``costlab analyze`` output in one of the formats (JSON is the compare object with one target);
    the terminal table fits ``width`` with SI-scaled counts unless ``exact``."""
    if fmt == Format.JSON:
        return json.dumps(Comparison((a,), unit).to_dict(), indent=2) + "\n"
    if fmt == Format.CSV:
        return analysis_csv(a, depth, unit)
    return analysis_text(a, fmt, depth, unit, View(fmt, width, exact))


def analysis_markdown(a: Analysis, depth: int | None = None, unit: str = "macs") -> str:
    return analysis_text(a, Format.MD, depth, unit)



def preset_list(analyses: Sequence[Analysis], summaries: Sequence[str], fmt: str = Format.TABLE,
                width: int | None = None, exact: bool = False) -> str:
    """``costlab list``: one line per preset with its default input, params and MACs."""
    headers = ["preset", "input", "params", "MACs", "description"]
    raw = [[a.name, shape(a.input), a.params, a.macs, summary] for a, summary in zip(analyses, summaries)]
    if fmt == Format.JSON:
        return json.dumps([dict(zip(["name", "input", "params", "macs", "description"],
                                    [a.name, list(a.input), a.params, a.macs, s]))
                           for a, s in zip(analyses, summaries)], indent=2) + "\n"
    if fmt == Format.CSV:
        return csv_text(["preset", "input", "params", "macs", "description"], raw)
    view = View(fmt, width, exact)
    rows = [[name, inp, view.count(params), view.count(macs), summary] for name, inp, params, macs, summary in raw]
    table, dropped = view.table(headers, rows, [False, False, True, True, False], [None, None, None, None, None],
                                [None, None, None, None, "head"])
    return "\n".join([table] + view.prose(left_out_note(dropped, view.width))) + "\n"


def _csv_value(value: Any) -> Any:
    return "" if value is None else value


def render_peaks(peaks: Any, path: str | None, fmt: str = Format.TABLE, calibration: Any = None,
                 calibration_path: str | None = None) -> str:
    """``costlab calibrate``: the measured peaks (a dict of roofline.Peaks), their ridge and the cache
    file (None: a contended calibration, not cached); with ``calibration`` (a
    costlab.analyses.prediction.Calibration), its kernel families and their fit after them."""
    if fmt == Format.JSON:
        entry = {**peaks, "cache": path}
        if calibration is not None:
            entry["calibration"] = {**calibration.identity(), "budget_s": calibration.budget_s,
                                    "cache": calibration_path, "families": calibration.fit_summary()}
        return json.dumps(entry, indent=2) + "\n"
    keys = ["device", "device_name", "threads", "dtype", "gflops", "gbps", "ridge", "matmul_size",
            "copy_bytes", "cache_gbps", "cache_bytes", "run_share", "contended", "host", "torch_version",
            "measured_at"]
    if fmt == Format.CSV:
        return csv_text(keys + ["cache"], [[_csv_value(peaks.get(k)) for k in keys] + [path or ""]])
    threads = f", {threads_text(peaks['threads'])}" if peaks["device"] == "cpu" else ""
    rows = [
        ["peak arithmetic", f"{peaks['gflops']:.1f} GFLOP/s",
         f"{peaks['dtype']} {peaks['matmul_size']}×{peaks['matmul_size']} matrix product, 2n³ FLOPs, best sample"],
        ["peak bandwidth", f"{peaks['gbps']:.1f} GB/s",
         f"copy of {peaks['copy_bytes'] / 2**20:.0f} MiB, bytes read + written, best sample"],
        ["ridge point", f"{peaks['ridge']:.1f} FLOP/B", "layers above it are compute-bound, below memory-bound"],
    ]
    if peaks.get("cache_gbps"):
        rows.insert(2, ["cache bandwidth", f"{peaks['cache_gbps']:.1f} GB/s",
                        f"copy within the {peaks['cache_bytes'] / 2**20:.0f} MiB last-level cache: bounds the "
                        "layers whose bytes fit in it"])
    share = peaks.get("run_share")
    conditions = ("" if share is None else
                  f" Its threads ran {100 * share:.0f} % of the time they were ready to run (lowest timing).")
    if path is None:
        cached = (f"Not cached: other work held the CPU in every attempt (contended).{conditions} "
                  "Calibrate again on a quiet machine.")
    else:
        cached = f"Cached in {path} ({peaks['measured_at']}).{conditions}"
    title = f"{peaks['device']} ({peaks['device_name']}{threads}) on {peaks['host']}, torch {peaks['torch_version']}"
    parts = [f"## Roofline peaks: {title}" if fmt == Format.MD else f"Roofline peaks: {title}", "",
             grid(["", "measured", "how"], rows, fmt, [False, True, False]), "", cached]
    if calibration is not None:
        parts += [""] + _calibration_lines(calibration, calibration_path, fmt)
    return "\n".join(parts) + "\n"


def _calibration_lines(calibration: Any, path: str | None, fmt: str) -> list[str]:
    """The kernel families of a calibration: samples, fitted terms, held-out error; where it is cached."""
    def number(value: Any, digits: str) -> str:
        return "–" if value is None else format(value, digits)

    rows = [[row["family"], str(row["samples"]), number(row["overhead_us"], ".1f"), number(row["gflops"], ".1f"),
             number(row["gbps"], ".1f"), number(None if row["median_held_out_error"] is None
                                                else 100 * row["median_held_out_error"], ".0f")]
            for row in calibration.fit_summary()]
    title = (f"Kernel calibration: {len(calibration.samples)} layers of {len(calibration.models)} families timed "
             f"in {calibration.seconds:.0f} s (budget {calibration.budget_s:.0f} s)")
    starved = (f" {calibration.starved} of them starved of the CPU in every attempt." if calibration.starved else "")
    if path is None:
        cached = (f"Not cached: contended (more than a fifth of the layers starved, or the peaks were).{starved} "
                  "It was used for nothing else; calibrate again on a quiet machine.")
    else:
        cached = f"Cached in {path} ({calibration.measured_at}); --predict reads it.{starved}"
    table = grid(["family", "layers", "call µs", "GFLOP/s", "GB/s", "held-out error %"], rows, fmt,
                 [False, True, True, True, True, True])
    return [f"## {title}" if fmt == Format.MD else title, "", table, "", cached,
            "Each family: t = call + work / GFLOP/s + bytes / GB/s, corrected by its nearest layers "
            "(docs/cost-model.md); held-out error: each layer predicted without itself, the median."]


# the results' own rendering (Analysis.to_markdown, repr/str, the notebook view) calls these
RENDERING.update({"analysis_markdown": analysis_markdown, "analysis_summary": analysis_summary,
                  "analysis_html": analysis_html, "comparison_markdown": comparison_markdown,
                  "comparison_summary": comparison_summary, "comparison_html": comparison_html})
