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

from .analysis import FLOPS_PER_MAC, RENDERING, Analysis, Comparison, Layer, Row, fold
from .display import Column, binary_bytes, fitted, left_out_note, si, wrap
from .graph import DTYPE_BYTES

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
    from tabulate import tabulate  # imported only when a table is drawn (not for JSON or CSV)

    tablefmt = "github" if fmt == "md" else "simple"
    align = ["right" if n else "left" for n in numeric]
    return tabulate(list(rows), headers=list(headers), tablefmt=tablefmt, colalign=align,
                    disable_numparse=True)


class View:
    """How a report is drawn: its format, the terminal width a table must fit (None: every
    column, as ``--wide``) and whether counts stay exact (``--exact``; always in Markdown)."""

    __slots__ = ("fmt", "width", "exact")

    def __init__(self, fmt: str = "table", width: int | None = None, exact: bool = False) -> None:
        self.fmt = fmt
        self.width = width if fmt == "table" else None
        self.exact = exact or fmt not in ("table", "html")

    def count(self, value: float) -> str:
        """A count: SI-scaled in the terminal table ('4.09 G'), exact otherwise ('4,089,184,256')."""
        return _number(value, "macs") if self.exact else si(value)

    def bytes(self, value: int) -> str:
        """A size: binary-scaled in the terminal table ('97.5 MiB'), exact bytes otherwise."""
        return f"{value:,} B" if self.exact else binary_bytes(value)

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[bool],
              keeps: Sequence[int | None] | None = None, shrinks: Sequence[str | None] | None = None,
              min_widths: Sequence[int] | None = None) -> tuple[str, list[str]]:
        """The table fitted to the width (columns of lowest ``keep`` left out first, then
        ``shrink`` columns cut with '…' down to their ``min_widths``), and the headers left out."""
        columns = [Column(header, [str(row[index]) for row in rows], numeric[index],
                          keeps[index] if keeps else None, shrinks[index] if shrinks else None,
                          min_widths[index] if min_widths else 8)
                   for index, header in enumerate(headers)]
        return fitted(columns, self.width, self.fmt)

    def prose(self, lines: Sequence[str]) -> list[str]:
        """Lines of text wrapped at the width (the terminal table only)."""
        return wrap(lines, self.width)


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


# --- cross-checks (--check) ----------------------------------------------------------

CHECK_LABELS = {"fvcore": "fvcore", "torch": "torch ÷ 2"}
AGREEMENT_ORDER = ("exact", "explained", "unexplained")


def _number(value: float, unit: str) -> str:
    value = value * FLOPS_PER_MAC if unit == "flops" else value
    return count(int(value)) if float(value).is_integer() else f"{value:,.1f}"


def _short(convention: str) -> str:
    """'fvcore-batch-norm' → 'batch-norm'."""
    return convention.split("-", 1)[1] if convention.startswith(("fvcore-", "torch-")) else convention


def check_verdict(entry: dict[str, Any], unit: str = "macs") -> str:
    """A check's overall agreement: 'exact', 'explained: batch-norm +22,227,968', 'UNEXPLAINED (+5)',
    or 'skipped: …' / 'failed: …'."""
    if entry.get("status") != "ok":
        return f"{entry.get('status')}: {entry.get('reason', '')}"
    if entry["agreement"] == "unexplained":
        return f"UNEXPLAINED ({'+' if entry['difference'] >= 0 else '-'}{_number(abs(entry['difference']), unit)})"
    if entry["agreement"] == "explained":
        return "explained: " + ", ".join(f"{_short(name)} {'+' if share >= 0 else '-'}{_number(abs(share), unit)}"
                                         for name, share in entry["conventions"].items())
    return "exact"


def row_verdict(row: dict[str, Any], unit: str = "macs") -> str:
    """One check row's agreement: 'exact', 'explained (batch-norm)' or 'UNEXPLAINED (+5)'."""
    if row["agreement"] == "explained":
        return f"explained ({', '.join(_short(c) for c in row['conventions'])})"
    if row["agreement"] == "unexplained":
        sign = "+" if row["difference"] >= 0 else "-"
        return f"UNEXPLAINED ({sign}{_number(abs(row['difference']), unit)})"
    return "exact"


def _check_entries(a: Analysis) -> list[tuple[str, dict[str, Any]]]:
    return [(name, entry) for name, entry in a.checks.items() if isinstance(entry, dict)]


def check_rows(a: Analysis) -> list[tuple[str, int, dict[str, dict[str, Any]]]]:
    """(row name, costlab MACs, {check: its row}) for every call site any check lists, in order."""
    merged: dict[str, tuple[int, dict[str, dict[str, Any]]]] = {}
    for name, entry in _check_entries(a):
        for row in entry.get("layers", []):
            costlab, per_check = merged.setdefault(row["name"], (row["costlab"], {}))
            per_check[name] = row
    return [(row, costlab, per_check) for row, (costlab, per_check) in merged.items()]


def check_section(a: Analysis, fmt: str, unit: str, view: "View | None" = None) -> list[str]:
    """The cross-check part of a table or Markdown report: one line per check, a per-layer
    table with an agreement column per check, and the conventions that explain differences."""
    entries = _check_entries(a)
    if not entries:
        return []
    view = view or View(fmt)
    parts = ["", f"### {a.name}: cross-check" if fmt == "md" else f"Cross-check of {a.name}"]
    for name, entry in entries:
        if entry.get("status") != "ok":
            parts += view.prose([f"- {entry.get('tool', name)}: {check_verdict(entry, unit)}"])
            continue
        ran = f" (ran at batch {entry['batch']}, counts × {entry['scale']})" if entry.get("scale", 1) != 1 else ""
        parts += view.prose([f"- {entry['tool']}{ran}: {_number(entry['total'], unit)} vs costlab "
                             f"{_number(entry['costlab'], unit)}: {check_verdict(entry, unit)}"])
    # the per-call-site table: the tools that count per module (the others are compared in total)
    ok = [(name, entry) for name, entry in entries if entry.get("status") == "ok" and entry.get("layers")]
    if ok:
        headers = ["layer", f"costlab {unit_label(unit)}"]
        for name, _ in ok:
            headers += [CHECK_LABELS.get(name, name), "agreement"]
        rows = []
        for row_name, costlab, per_check in check_rows(a):
            cells = [row_name, view.count(in_unit(costlab, unit))]
            for name, _ in ok:
                row = per_check.get(name)
                verdict = row_verdict(row, unit) if row else "exact"
                if row and view.width is not None and row["agreement"] == "explained":
                    verdict = "explained"  # which rule explains it: the list under the table
                cells += ([view.count(row["reference"] * (FLOPS_PER_MAC if unit == "flops" else 1)),
                           verdict] if row else ["0", "exact"])
            rows.append(cells)
        footer = ["total", view.count(in_unit(a.macs, unit))]
        for _, entry in ok:
            footer += [view.count(entry["total"] * (FLOPS_PER_MAC if unit == "flops" else 1)), entry["agreement"]]
        rows.append(footer)
        numeric = [False, True] + [True, False] * len(ok)
        # Counts stay; a long agreement ('explained (batch-norm)') is cut first, its rules listed below.
        table, dropped = view.table(headers, rows, numeric, [None, None] + [None, None] * len(ok),
                                    ["tail", None] + [None, "head"] * len(ok), [24, 8] + [8, 9] * len(ok))
        parts += ["", table] + view.prose(left_out_note(dropped, view.width))
        used: dict[str, str] = {}
        for _, entry in ok:
            used.update(entry.get("explanations", {}))
            if entry.get("convention"):
                used["torch-flops"] = entry["convention"]
        if used:
            parts.append("")
            parts += view.prose([f"- {_short(name)}: {text}" for name, text in used.items()])
    return parts


def _check_summary(t: Analysis, name: str, unit: str) -> list[Any]:
    """(reference total, agreement) of one check of a target, or blanks."""
    entry = t.checks.get(name)
    if not isinstance(entry, dict):
        return ["", ""]
    if entry.get("status") != "ok":
        return ["", entry.get("status", "")]
    return [entry["total"] * (FLOPS_PER_MAC if unit == "flops" else 1), entry["agreement"]]


def _checks_in(c: Comparison) -> list[str]:
    names: dict[str, None] = {}
    for t in c.targets:
        names.update((name, None) for name, _ in _check_entries(t))
    return list(names)


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


def _has_training(c: Comparison) -> bool:
    return any(t.training is not None for t in c.targets)


def _training_cells(t: Analysis, unit: str) -> list[Any]:
    """trainable params, frozen params, train-step MACs of a target under --freeze (blank without)."""
    if t.training is None:
        return ["", "", ""]
    return [t.training.trainable_params, t.training.frozen_params,
            in_unit(t.training.train_step_macs, unit)]


def _row_training(a: Analysis, name: str, depth: int | None) -> tuple[int, int, int, str] | None:
    """Training fields of a per-layer row (a layer, or a folded block: the sums of its layers)."""
    if a.training is None:
        return None
    members = [t for t in a.training.layers if fold(t.name, depth) == name]
    grads = {t.grads for t in members}
    return (sum(t.trainable_params for t in members), sum(t.frozen_params for t in members),
            sum(t.train_step_macs for t in members), grads.pop() if len(grads) == 1 else "mixed")


# --- memory (--memory) --------------------------------------------------------------------

MEMORY_HEADERS = ["weights", "inference peak", "training peak"]
MEMORY_CSV = ["optimizer", "weights_bytes", "inference_peak_bytes", "training_peak_bytes"]
LAYER_MEMORY_HEADERS = ["live", "saved"]
LAYER_MEMORY_CSV = ["live_bytes", "saved_bytes"]


def mebibytes(n: int) -> str:
    """Bytes in binary units with two decimals: 102,228,128 → '97.49 MiB', 6,088 → '5.95 KiB'."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:,.2f} {unit}"
    return f"{n} B"


def _has_memory(targets: Sequence[Analysis]) -> bool:
    return any(t.memory is not None for t in targets)


def _memory_cells(t: Analysis) -> list[Any]:
    """weights, inference peak, training peak of a target in bytes (blank without --memory)."""
    m = t.memory
    return ["", "", ""] if m is None else [m.weights, m.inference_peak, m.training_peak]


def _row_memory(a: Analysis, name: str, depth: int | None) -> tuple[int, int] | None:
    """(largest live bytes at inference, bytes saved for backward) of a row: a layer or a folded block."""
    if a.memory is None:
        return None
    members = [m for m in a.memory.layers if fold(m.name, depth) == name]
    if not members:
        return None
    return max(m.inference_live for m in members), sum(m.saved for m in members)


def memory_notes(a: Analysis) -> list[str]:
    """The memory summary of a target under --memory, with its closed forms."""
    m = a.memory
    if m is None:
        return []
    lines = [f"memory ({m.dtype}, {m.optimizer}): weights {mebibytes(m.weights)}, inference peak "
             f"{mebibytes(m.inference_peak)} at {m.inference_peak_at}, training-step peak "
             f"{mebibytes(m.training_peak)} ({m.training_peak_at}); saved for backward "
             f"{mebibytes(m.saved)}, optimizer state {mebibytes(m.optimizer_state)}"]
    lines += [f"  {key}: {text}" for key, text in m.formulas.items()]
    lines += [f"  {note}" for note in m.notes]
    return lines


def comparison_summary_rows(c: Comparison) -> list[list[Any]]:
    """Raw rows (numbers as numbers) of the side-by-side table."""
    rows = []
    for index, (t, ratio) in enumerate(zip(c.targets, c.ratios)):
        rows.append([t.name, shape(t.input), t.batch, shape(t.output), in_unit(t.macs, c.unit),
                     mac_terms(t, c.unit), t.params, t.ops, t.activations, ratio,
                     ratio_text(ratio, index == 0)])
    return rows


def _layer_table(a: Analysis, fmt: str, unit: str, depth: int | None = None, share: bool = False,
                 view: View | None = None) -> str:
    """The per-layer table (with a total row); in the terminal fitted to ``view.width``, with a
    line naming the columns left out."""
    view = view or View(fmt)
    n = view.count
    rows: list[list[str]] = []
    total = a.macs
    training = a.training
    profile = a.convention
    timed = has_latency((a,))
    itemsize = DTYPE_BYTES[a.dtype]
    for row in a.rows(depth):
        cells = [row.name, row.type, row.op, shape(row.output[1:]), n(in_unit(row.macs, unit)),
                 n(row.params), n(row.ops)]
        if share:
            cells.append(f"{100 * row.macs / total:.1f} %" if total else "–")
        fields = _row_training(a, row.name, depth)
        if fields is not None:
            cells += [fields[3], n(in_unit(fields[2], unit))]
        if a.memory is not None:
            held = _row_memory(a, row.name, depth)
            cells += [view.bytes(held[0]), view.bytes(held[1])] if held is not None else ["", ""]
        if profile is not None:
            cells.append(convention_count_text(profile, row.name, view, depth))
        if timed:
            cells += row_latency_cells(a, row)
        cells += [view.bytes(row.params * itemsize), view.bytes(row.activations * itemsize)]
        cells.append(formula_in_unit(row.formula, unit))
        rows.append(cells)
    footer = ["total", "", "", shape(a.output), n(in_unit(a.macs, unit)), n(a.params),
              n(a.ops)] + (["100.0 %" if total else "–"] if share else [])
    if training is not None:
        footer += ["", n(in_unit(training.train_step_macs, unit))]
    if a.memory is not None:
        footer += [view.bytes(a.memory.inference_peak), view.bytes(a.memory.saved)]
    footer += [n(profile.total)] if profile is not None else []
    footer += target_latency_cells(a) if timed else []
    footer += [view.bytes(weight_bytes(a)), view.bytes(activation_bytes(a))]
    rows.append(footer + [""])
    headers = ["layer", "type", "op", "output", unit_label(unit), "params", "ops"]
    headers += (["share"] if share else [])
    headers += (["grads", f"train-step {unit_label(unit)}"] if training is not None else [])
    headers += LAYER_MEMORY_HEADERS if a.memory is not None else []
    headers += [profile.convention.name] if profile is not None else []
    headers += LAYER_LATENCY_HEADERS if timed else []
    headers += ["weights", "act. memory", f"formula ({unit_label(unit)} or ops)"]
    numeric = ([False] * 4 + [True] * (4 if share else 3)
               + ([False, True] if training is not None else [])
               + ([True, True] if a.memory is not None else [])
               + ([True] if profile is not None else [])
               + ([True, True, True, False, True] if timed else []) + [True, True, False])
    # What stays when the terminal is narrow: name and count first, the formula last.
    keeps: list[int | None] = ([None, 45, 8, 50, None, 80, 10] + ([85] if share else [])
                               + ([40, 75] if training is not None else [])
                               + ([65, 60] if a.memory is not None else [])
                               + ([70] if profile is not None else [])
                               + ([90, 25, 22, 28, 35] if timed else []) + [30, 20, 5])
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
    notes += memory_notes(a)
    return notes


# --- other tools' conventions (--convention) ----------------------------------------------

def convention_count_text(profile: "Profile", row_name: str, view: "View | None" = None,
                          depth: int | None = None) -> str:
    """The tool's count for a layer, or for all layers of a folded row."""
    from fractions import Fraction

    members = [layer.count for layer in profile.layers if fold(layer.name, depth) == row_name]
    value = sum(members, Fraction(0))
    if view is not None and not view.exact:
        return view.count(float(value))
    return count(int(value)) if value.denominator == 1 else f"{float(value):,.1f}"


def convention_rows(analyses: Sequence[Analysis]) -> list[list[Any]]:
    """Raw rows (numbers as numbers): target, tool total, costlab MACs, difference, tool params, why."""
    return [[a.name, a.convention.total, a.convention.macs, a.convention.delta, a.convention.params,
             a.convention.explanation()] for a in analyses if a.convention is not None]


def convention_section(analyses: Sequence[Analysis], fmt: str, view: "View | None" = None) -> list[str]:
    """Lines that set each target's total as another tool would report it beside costlab's MACs.

    In a terminal too narrow for the explanations, they follow the table, one line per target."""
    profiled = [a for a in analyses if a.convention is not None]
    if not profiled:
        return []
    view = view or View(fmt)
    n = view.count
    convention = profiled[0].convention.convention  # type: ignore[union-attr]
    name = convention.name
    title = (f"As {convention.tool} {convention.version} would report it ({convention.unit}; "
             f"{convention.mechanism}):")
    headers = ["target", f"{name} total", "costlab MACs", "difference", f"{name} params",
               "explained by (rule: its count − the MACs it stands for)"]
    raw = convention_rows(profiled)
    rows = [[target, n(total), n(macs), f"{delta:+,}" if view.exact else ("+" if delta > 0 else "") + si(delta),
             n(params), why] for target, total, macs, delta, params, why in raw]
    table, dropped = view.table(headers, rows, [False, True, True, True, True, False],
                                [None, None, None, 60, 50, 10], ["head", None, None, None, None, None])
    lines = ["", f"### {title}"] if fmt == "md" else [""] + view.prose([title])
    lines += ["", table]
    if headers[-1] in dropped:
        dropped.remove(headers[-1])
        lines += view.prose([f"{target}: {why}" for target, *_, why in raw])
    lines += view.prose(left_out_note(dropped, view.width))
    notes = []
    if any(term.per_sample for a in profiled for layer in a.convention.layers  # type: ignore[union-attr]
           for term, _ in layer.terms) and any(a.batch != 1 for a in profiled):
        notes.append(f"{name} divides its module-hook counts by the batch size (per sample); "
                     "costlab's MACs are shown on the same terms.")
    for a in profiled:
        if a.unsupported:
            notes.append(f"{a.name}: the {len(a.unsupported)} op(s) costlab could not price are left "
                         f"out of the {name} profile too.")
    return lines + view.prose(notes)


def _comparison_table(c: Comparison, view: View) -> tuple[str, list[str]]:
    """The side-by-side table in ``view`` and the headers it left out."""
    n = view.count
    same = _same_input(c)
    raw_rows = comparison_summary_rows(c)
    show_terms = any(raw[5] for raw in raw_rows)
    training = _has_training(c)
    headers = (["target"] + ([] if same else ["input"]) + ["output", unit_label(c.unit)]
               + (["= sum of layers"] if show_terms else [])
               + ["params", "ops", "activations", "weights", "act. memory"]
               + (["trainable", "frozen", f"train-step {unit_label(c.unit)}"] if training else [])
               + (MEMORY_HEADERS[1:] if _has_memory(c.targets) else [])
               + ["vs first"])
    memory = _has_memory(c.targets)
    keeps: list[int | None] = ([None] + ([60] if not same else []) + [50, None] + ([45] if show_terms else [])
                               + [80, 10, 20, 40, 30] + ([70, 55, 75] if training else [])
                               + ([62, 58] if memory else []) + [None])
    keeps[headers.index("output")] = 35  # the same for most comparisons: it goes before the memory
    rows = []
    for t, raw in zip(c.targets, raw_rows):
        name, input_text, batch, output, macs, terms, params, ops, activations, _, ratio = raw
        extra = [v if v == "" else n(v) for v in _training_cells(t, c.unit)] if training else []
        if memory:  # the weights' bytes are the table's own 'weights' column
            extra += [v if v == "" else view.bytes(v) for v in _memory_cells(t)[1:]]
        rows.append([name] + ([] if same else [f"{input_text} ×{batch}"]) + [output, n(macs)]
                    + ([mac_terms(t, c.unit, view)] if show_terms else [])
                    + [n(params), n(ops), n(activations), view.bytes(weight_bytes(t)),
                       view.bytes(activation_bytes(t))] + extra + [ratio])
    numeric = ([False] + ([] if same else [False]) + [False, True] + ([True] if show_terms else [])
               + [True] * 5 + ([True] * 3 if training else []) + ([True] * 2 if memory else []) + [False])
    for check in _checks_in(c):
        headers += [CHECK_LABELS.get(check, check), "agreement"]
        numeric += [True, False]
        keeps += [65, 68]
        for t, cells in zip(c.targets, rows):
            total, agreement = _check_summary(t, check, c.unit)
            cells += [n(total) if total != "" else "", agreement]
    if has_latency(c.targets):
        headers, rows, numeric = _with_latency_columns(c, headers, rows, numeric)
        keeps += [90, 85, 35, 33]
    return view.table(headers, rows, numeric, keeps, ["head"] + [None] * (len(headers) - 1))


def _comparison_heading(c: Comparison) -> str:
    first = c.targets[0]
    return (f"input {shape(first.input)}, batch {first.batch}, {first.dtype}" if _same_input(c)
            else f"inputs per target, {first.dtype}")


def comparison_text(c: Comparison, fmt: str = "table", per_layer: bool = False,
                    view: View | None = None) -> str:
    """The side-by-side table (``fmt`` = table or md), with per-layer tables when asked.

    In the terminal (``view``) counts are SI-scaled and the table fits ``view.width``: the
    least important columns are left out first and named under the table."""
    view = view or View(fmt)
    heading = _comparison_heading(c)
    parts = []
    if fmt == "md":
        parts.append(f"## costlab compare ({heading})")
    else:
        parts.append(f"costlab compare: {heading}")
    table, dropped = _comparison_table(c, view)
    parts += ["", table]
    notes = [""] + left_out_note(dropped, view.width) + [convention(c.unit)]
    for t in c.targets:
        for note in _notes(t, c.unit):
            notes.append(f"{t.name}: {note}")
    parts += view.prose(notes)
    parts += convention_section(c.targets, fmt, view)
    parts += view.prose(latency_notes(c.targets))
    if per_layer:
        for t in c.targets:
            title = f"### {t.name}" if fmt == "md" else f"{t.name}"
            parts += ["", title, "", _layer_table(t, fmt, c.unit, view=view)]
            parts += check_section(t, fmt, c.unit, view)
    elif _checks_in(c):
        parts += view.prose([f"{t.name}, {t.checks[name].get('tool', name)}: "
                             f"{check_verdict(t.checks[name], c.unit)}"
                             for t in c.targets for name, _ in _check_entries(t)])
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
        if _has_memory(c.targets):
            headers[-1:-1] = LAYER_MEMORY_CSV
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
                if _has_memory(c.targets):
                    held = t.memory.by_name().get(layer.name) if t.memory is not None else None
                    row += [held.inference_live, held.saved] if held is not None else ["", ""]
                rows.append(row + [formula_in_unit(layer.formula, c.unit)])
        checks = _checks_in(c)
        if checks:
            headers += [column for name in checks for column in (f"{name}_{unit}", f"{name}_agreement")]
            rows_of = iter(rows)
            for t in c.targets:
                ran = [name for name in checks if t.checks.get(name, {}).get("status") == "ok"]
                for extra in _layer_check_cells(t, ran, None, c.unit):
                    found = dict(zip(ran, zip(extra[::2], extra[1::2])))
                    next(rows_of).extend(value for name in checks for value in found.get(name, ("", "")))
        if has_latency(c.targets):
            headers += LAYER_LATENCY_CSV
            for row, layer in zip(rows, [layer for t in c.targets for layer in t.layers]):
                row += layer_latency_csv(layer)
        return csv_text(headers, rows)
    headers = ["target", "input", "batch", "output", unit, "sum_of_layers", "params", "ops",
               "activations", "ratio", "vs_first"]
    ratio_column = headers.index("ratio")
    rows = [[("" if v is None else f"{v:.6g}") if i == ratio_column else v for i, v in enumerate(r)]
            for r in comparison_summary_rows(c)]
    headers += ["weight_bytes", "activation_bytes"]
    rows = [row + [weight_bytes(t), activation_bytes(t)] for row, t in zip(rows, c.targets)]
    if training:
        headers += training_headers
        rows = [row + _training_cells(t, c.unit) for row, t in zip(rows, c.targets)]
    if _has_memory(c.targets):
        headers += MEMORY_CSV
        rows = [row + [t.memory.optimizer if t.memory is not None else ""] + _memory_cells(t)
                for row, t in zip(rows, c.targets)]
    for check in _checks_in(c):
        headers += [f"{check}_{unit}", f"{check}_agreement"]
        for t, row in zip(c.targets, rows):
            row += _check_summary(t, check, c.unit)
    if any(t.convention is not None for t in c.targets):
        headers += ["convention", "convention_total", "convention_params", "convention_explained_by"]
        for row, t in zip(rows, c.targets):
            p = t.convention
            row += ([p.convention.name, p.total, p.params, p.explanation()] if p is not None
                    else ["", "", "", ""])
    if has_latency(c.targets):
        headers += TARGET_LATENCY_CSV
        rows = [row + target_latency_csv(t, ratio)
                for row, t, ratio in zip(rows, c.targets, c.latency_ratios or ())]
    return csv_text(headers, rows)


# --- notebooks: one-line summaries and HTML ---------------------------------------------------

def analysis_summary(a: Analysis) -> str:
    """'resnet50: 3×224×224 → 1000, 4.09 G MACs, 25.6 M params, 39.1 M ops, 177 layers'."""
    return (f"{a.name}: {shape(a.input)} → {shape(a.output)}" + (f" (batch {a.batch})" if a.batch != 1 else "")
            + f", {si(a.macs)} MACs, {si(a.params)} params, {si(a.ops)} ops, {len(a.layers)} layers")


def comparison_summary(c: Comparison) -> str:
    """'resnet50 4.09 G MACs, mobilenet-v2 301 M (13.60× fewer)'."""
    parts = [f"{c.targets[0].name} {si(in_unit(c.targets[0].macs, c.unit))} {unit_label(c.unit)}"]
    parts += [f"{t.name} {si(in_unit(t.macs, c.unit))} ({ratio_text(r, False)})"
              for t, r in zip(c.targets[1:], c.ratios[1:])]
    return ", ".join(parts)


def _html_paragraphs(lines: Sequence[str]) -> list[str]:
    from html import escape

    return [f"<p>{escape(line)}</p>" for line in lines if line.strip()]


def analysis_html(a: Analysis, depth: int | None = None, unit: str = "macs") -> str:
    """An HTML view for notebooks: the summary, the per-layer table (every column, SI-scaled
    counts, exact ones on hover) and the notes."""
    view = View("html")
    return "\n".join(["<div>"] + _html_paragraphs([analysis_summary(a)])
                     + [_layer_table(a, "html", unit, depth, share=True, view=view)]
                     + _html_paragraphs([convention(unit)] + _notes(a, unit)) + ["</div>"])


def comparison_html(c: Comparison) -> str:
    """An HTML view for notebooks: the side-by-side table (every column) and the notes."""
    table, _ = _comparison_table(c, View("html"))
    notes = [convention(c.unit)] + [f"{t.name}: {note}" for t in c.targets for note in _notes(t, c.unit)]
    return "\n".join(["<div>"] + _html_paragraphs([f"costlab compare: {_comparison_heading(c)}"]) + [table]
                     + _html_paragraphs(notes) + ["</div>"])


def render_comparison(c: Comparison, fmt: str = "table", per_layer: bool = False,
                      width: int | None = None, exact: bool = False) -> str:
    """``costlab compare`` output in one of FORMATS; the terminal table fits ``width`` columns
    (None: every column) with SI-scaled counts unless ``exact``."""
    if fmt == "json":
        return json.dumps(c.to_dict(), indent=2) + "\n"
    if fmt == "csv":
        return comparison_csv(c, per_layer)
    return comparison_text(c, fmt, per_layer, View(fmt, width, exact))


def comparison_markdown(c: Comparison, per_layer: bool = False) -> str:
    return comparison_text(c, "md", per_layer)


# --- one analysis --------------------------------------------------------------------

def analysis_text(a: Analysis, fmt: str = "table", depth: int | None = None, unit: str = "macs",
                  view: View | None = None) -> str:
    """``costlab analyze`` output: a per-layer table (folded to ``depth``) with shares and a total."""
    view = view or View(fmt)
    n = view.count
    head = (f"{a.name}: input {shape(a.input)}, batch {a.batch}, {a.dtype} → output {shape(a.output)}; "
            f"{n(in_unit(a.macs, unit))} {unit_label(unit)}, {n(a.params)} params, "
            f"{n(a.ops)} ops")
    if a.training is not None:
        head += (f"; train step {n(in_unit(a.training.train_step_macs, unit))} {unit_label(unit)}, "
                 f"{n(a.training.trainable_params)} trainable and "
                 f"{n(a.training.frozen_params)} frozen params")
    if a.memory is not None:
        head += (f"; weights {view.bytes(a.memory.weights)}, inference peak {view.bytes(a.memory.inference_peak)}, "
                 f"training peak {view.bytes(a.memory.training_peak)} ({a.memory.optimizer})")
    parts = ([f"## {head}"] if fmt == "md" else view.prose([head]))
    parts += ["", _layer_table(a, fmt, unit, depth, share=True, view=view)]
    parts += view.prose(([] if view.width is not None and "Not shown at" in parts[-1] else [""])
                        + [convention(unit)] + _notes(a, unit))
    parts += check_section(a, fmt, unit, view)
    parts += convention_section([a], fmt, view)
    parts += view.prose(latency_notes((a,)))
    return "\n".join(parts) + "\n"


def analysis_csv(a: Analysis, depth: int | None = None, unit: str = "macs") -> str:
    unit_name = unit_label(unit).lower()
    headers = ["layer", "type", "op", "output", unit_name, "params", "ops", "activations", "weight_bytes",
               "activation_bytes"]
    if a.training is not None:
        headers += ["trainable_params", "frozen_params", f"train_step_{unit_name}", "grads"]
    if a.memory is not None:
        headers += LAYER_MEMORY_CSV
    if a.convention is not None:
        headers.append(a.convention.convention.name)
    headers.append("formula")
    rows = []
    for r in a.rows(depth):
        row: list[Any] = [r.name, r.type, r.op, shape(r.output[1:]), in_unit(r.macs, unit), r.params,
                          r.ops, r.activations, r.params * DTYPE_BYTES[a.dtype],
                          r.activations * DTYPE_BYTES[a.dtype]]
        fields = _row_training(a, r.name, depth)
        if fields is not None:
            trainable, frozen, step, grads = fields
            row += [trainable, frozen, in_unit(step, unit), grads]
        if a.memory is not None:
            held = _row_memory(a, r.name, depth)
            row += list(held) if held is not None else ["", ""]
        if a.convention is not None:
            row.append(convention_count_text(a.convention, r.name, depth=depth).replace(",", ""))
        rows.append(row + [formula_in_unit(r.formula, unit)])
    checks = [name for name, entry in _check_entries(a) if entry.get("status") == "ok"]
    if checks:
        headers += [column for name in checks for column in (f"{name}_{unit_name}", f"{name}_agreement")]
        for row, extra in zip(rows, _layer_check_cells(a, checks, depth, unit)):
            row += extra
    if has_latency((a,)):
        headers += LAYER_LATENCY_CSV
        for row, r in zip(rows, a.rows(depth)):
            row += row_latency_csv(a, r)
    return csv_text(headers, rows)


def _layer_check_cells(a: Analysis, checks: Sequence[str], depth: int | None, unit: str) -> list[list[Any]]:
    """Per row of ``a.rows(depth)``: each check's reference count and agreement.

    A check row that covers several layers (a module called twice, a container's functional
    ops) is counted on its first layer; a folded row sums its layers and takes the worst
    agreement among them.
    """
    per_layer: dict[str, dict[str, tuple[float, str]]] = {}
    for name in checks:
        for row in a.checks[name].get("layers", []):
            if row["layers"]:
                per_layer.setdefault(row["layers"][0], {})[name] = (row["reference"], row["agreement"])
    groups: dict[str, list[str]] = {}
    for layer in a.layers:
        groups.setdefault(fold(layer.name, depth), []).append(layer.name)
    cells = []
    for members in groups.values():
        extra: list[Any] = []
        for name in checks:
            found = [per_layer[m][name] for m in members if name in per_layer.get(m, {})]
            total = sum(value for value, _ in found) * (FLOPS_PER_MAC if unit == "flops" else 1)
            worst = max((agreement for _, agreement in found), key=AGREEMENT_ORDER.index, default="exact")
            extra += [_number(total, "macs").replace(",", ""), worst]
        cells.append(extra)
    return cells


def render_analysis(a: Analysis, fmt: str = "table", depth: int | None = None, unit: str = "macs",
                    width: int | None = None, exact: bool = False) -> str:
    """``costlab analyze`` output in one of FORMATS (JSON is the compare object with one target);
    the terminal table fits ``width`` with SI-scaled counts unless ``exact``."""
    if fmt == "json":
        return json.dumps(Comparison((a,), unit).to_dict(), indent=2) + "\n"
    if fmt == "csv":
        return analysis_csv(a, depth, unit)
    return analysis_text(a, fmt, depth, unit, View(fmt, width, exact))


def analysis_markdown(a: Analysis, depth: int | None = None, unit: str = "macs") -> str:
    return analysis_text(a, "md", depth, unit)



def preset_list(analyses: Sequence[Analysis], summaries: Sequence[str], fmt: str = "table",
                width: int | None = None, exact: bool = False) -> str:
    """``costlab list``: one line per preset with its default input, params and MACs."""
    headers = ["preset", "input", "params", "MACs", "description"]
    raw = [[a.name, shape(a.input), a.params, a.macs, summary] for a, summary in zip(analyses, summaries)]
    if fmt == "json":
        return json.dumps([dict(zip(["name", "input", "params", "macs", "description"],
                                    [a.name, list(a.input), a.params, a.macs, s]))
                           for a, s in zip(analyses, summaries)], indent=2) + "\n"
    if fmt == "csv":
        return csv_text(["preset", "input", "params", "macs", "description"], raw)
    view = View(fmt, width, exact)
    rows = [[name, inp, view.count(params), view.count(macs), summary] for name, inp, params, macs, summary in raw]
    table, dropped = view.table(headers, rows, [False, False, True, True, False], [None, None, None, None, None],
                                [None, None, None, None, "head"])
    return "\n".join([table] + view.prose(left_out_note(dropped, view.width))) + "\n"


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
               if a.latency and a.latency.get("run_share") is None
               and (a.latency.get("cpu_share") or 1.0) < CPU_SHARE_WARNING]
    if starved:
        notes.append(f"Got less than {100 * CPU_SHARE_WARNING:.0f} % of its threads' CPU time while measured: "
                     f"{', '.join(starved)}: other work on the machine, or ops that used fewer threads than "
                     "given; measure again on a quiet machine before trusting it.")
    targets = [a.name for a in analyses if a.latency and a.latency["noisy"]]
    layers = sum(1 for a in analyses for layer in a.layers if layer.latency is not None and layer.latency["noisy"])
    if targets or layers:
        parts = ([f"target{'s' if len(targets) > 1 else ''} {', '.join(targets)}"] if targets else [])
        parts += [f"{layers} layer{'s' if layers != 1 else ''}"] if layers else []
        notes.append(f"Noisy measurements (IQR/median above the threshold, or starved of CPU in every attempt): "
                     f"{' and '.join(parts)}; 'noisy' marks them in the tables, \"noisy\": true in JSON.")
    starved = [f"{a.name} ({100 * a.latency['run_share']:.0f} %)" for a in analyses
               if a.latency and a.latency["noisy"] and "starved" in (a.latency.get("noisy_reason") or "")]
    starved_layers = sum(1 for a in analyses for layer in a.layers if layer.latency is not None
                         and layer.latency["noisy"] and "starved" in (layer.latency.get("noisy_reason") or ""))
    if starved or starved_layers:
        parts = starved + ([f"{starved_layers} layer{'s' if starved_layers != 1 else ''}"] if starved_layers else [])
        notes.append(f"Starved in every attempt (other work held the CPU; in parentheses the share of the time "
                     f"ready to run that its threads ran): {', '.join(parts)}; measure again on a quiet machine "
                     "before trusting them.")
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


def _csv_value(value: Any) -> Any:
    return "" if value is None else value


def render_peaks(peaks: Any, path: str | None, fmt: str = "table") -> str:
    """``costlab calibrate``: the measured peaks (a dict of roofline.Peaks), their ridge and the cache
    file (None: a contended calibration, not cached)."""
    if fmt == "json":
        return json.dumps({**peaks, "cache": path}, indent=2) + "\n"
    keys = ["device", "device_name", "threads", "dtype", "gflops", "gbps", "ridge", "matmul_size",
            "copy_bytes", "cache_gbps", "cache_bytes", "run_share", "contended", "host", "torch_version",
            "measured_at"]
    if fmt == "csv":
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
    parts = [f"## Roofline peaks: {title}" if fmt == "md" else f"Roofline peaks: {title}", "",
             grid(["", "measured", "how"], rows, fmt, [False, True, False]), "", cached]
    return "\n".join(parts) + "\n"


# the results' own rendering (Analysis.to_markdown, repr/str, the notebook view) calls these
RENDERING.update({"analysis_markdown": analysis_markdown, "analysis_summary": analysis_summary,
                  "analysis_html": analysis_html, "comparison_markdown": comparison_markdown,
                  "comparison_summary": comparison_summary, "comparison_html": comparison_html})
