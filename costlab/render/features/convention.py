"""How ``--convention``'s profile (costlab.analyses.conventions.Profile) is drawn."""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Sequence

from ..formats import Format
from ..numbers import count as exact_count
from ..view import Heading, View, blank
from .registry import Presenter, register


def count_text(profile: Any, names: Sequence[str], view: View | None = None) -> str:
    """The tool's count for the layers called ``names`` (a row, or all layers of a folded block)."""
    wanted = set(names)
    value = sum((layer.count for layer in profile.layers if layer.name in wanted), Fraction(0))
    if view is not None and not view.exact:
        return view.count(float(value))
    return exact_count(int(value)) if value.denominator == 1 else f"{float(value):,.1f}"


@register("convention")
class ConventionPresenter(Presenter):
    """Per layer the tool's count; once per report a table of each target's total as the tool would
    report it beside costlab's MACs (in CSV, side by side: the tool, its total, params and explanation)."""

    def layer_columns(self, group: Sequence[Any], unit: str, view: View | None) -> list[Heading]:
        first = next(p for p in group if p is not None)
        return [Heading(first.convention.name, True, 70)]

    def layer_cells(self, feature: Any, headings: Sequence[Heading], row: Any, members: Sequence[Any],
                    unit: str, view: View | None) -> list[Any]:
        text = count_text(feature, [m.name for m in members], view)
        return [text if view is not None else text.replace(",", "")]

    def total_cells(self, feature: Any, headings: Sequence[Heading], unit: str, view: View) -> list[str]:
        return [view.count(feature.total)]

    def side_by_side(self, group: Sequence[Any], unit: str, view: View | None) -> tuple[list[Heading], list[list[Any]]]:
        """In CSV the tool, its total and params and what explains them (a table has its own section)."""
        if view is not None:
            return [], []
        headings = [Heading(t) for t in ("convention", "convention_total", "convention_params",
                                         "convention_explained_by")]
        return headings, [blank(headings) if p is None else
                          [p.convention.name, p.total, p.params, p.explanation()] for p in group]

    def report_section(self, analyses: Sequence[Any], unit: str, view: View) -> list[str]:
        """Each target's total as the tool would report it beside costlab's MACs, with the rules that
        explain the difference. In a terminal too narrow for the explanations, they follow the table."""
        profiled = [a for a in analyses if a.convention is not None]
        if not profiled:
            return []
        convention = profiled[0].convention.convention
        name = convention.name
        title = (f"As {convention.tool} {convention.version} would report it ({convention.unit}; "
                 f"{convention.mechanism}):")
        headers = ["target", f"{name} total", "costlab MACs", "difference", f"{name} params",
                   "explained by (rule: its count − the MACs it stands for)"]
        raw = [[a.name, a.convention.total, a.convention.macs, a.convention.delta, a.convention.params,
                a.convention.explanation()] for a in profiled]
        n = view.count
        rows = [[target, n(total), n(macs), f"{delta:+,}" if view.exact else ("+" if delta > 0 else "") + n(delta),
                 n(params), why] for target, total, macs, delta, params, why in raw]
        table, dropped = view.table(headers, rows, [False, True, True, True, True, False],
                                    [None, None, None, 60, 50, 10], ["head", None, None, None, None, None])
        lines = ["", f"### {title}"] if view.fmt is Format.MD else [""] + view.prose([title])
        lines += ["", table]
        if headers[-1] in dropped:
            dropped.remove(headers[-1])
            lines += view.prose([f"{target}: {why}" for target, *_, why in raw])
        lines += view.left_out(dropped)
        notes = []
        if any(term.per_sample for a in profiled for layer in a.convention.layers
               for term, _ in layer.terms) and any(a.batch != 1 for a in profiled):
            notes.append(f"{name} divides its module-hook counts by the batch size (per sample); "
                         "costlab's MACs are shown on the same terms.")
        for a in profiled:
            if a.unsupported:
                notes.append(f"{a.name}: the {len(a.unsupported)} op(s) costlab could not price are left "
                             f"out of the {name} profile too.")
        return lines + view.prose(notes)
