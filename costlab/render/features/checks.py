"""How ``--check``'s results (costlab.analyses.checks.Checks, one Check per tool) are drawn: in tables a
section of their own per target (a line per tool and a per-call-site table), in CSV two columns per tool."""

from __future__ import annotations

from typing import Any, Sequence

from ...core.features import in_unit, unit_label
from ..formats import Format
from ..numbers import Style, number
from ..view import Heading, View
from .registry import Presenter, register

#: How a check's column is titled in tables.
CHECK_LABELS = {"fvcore": "fvcore", "torch": "torch ÷ 2"}


def in_unit_label(tool: str, unit: str) -> str:
    """A tool's name over its count shown in ``unit``: in MACs as given ('torch ÷ 2': PyTorch's FLOPs
    halved); in FLOPs = 2 × MACs, 'torch' (its own count) and '<tool> × 2' for the others."""
    if unit != "flops":
        return tool
    return tool[: -len(" ÷ 2")] if tool.endswith(" ÷ 2") else f"{tool} × 2"


def short_rule(convention: str) -> str:
    """'fvcore-batch-norm' → 'batch-norm'."""
    return convention.split("-", 1)[1] if convention.startswith(("fvcore-", "torch-")) else convention


def exact_number(value: float, unit: str = "macs") -> str:
    """A count in ``unit``, every digit: '12,443,648', or one decimal where it is not whole."""
    return number(in_unit(value, unit), Style.EXACT)


def _signed(value: float, unit: str) -> str:
    return f"{'+' if value >= 0 else '-'}{exact_number(abs(value), unit)}"


def row_verdict(row: Any, unit: str = "macs") -> str:
    """A call site's (a CheckRow's) agreement in words: 'exact', 'explained (batch-norm)' or 'UNEXPLAINED (+5)'."""
    if row.agreement == "explained":
        return f"explained ({', '.join(short_rule(c) for c in row.conventions)})"
    if row.agreement == "unexplained":
        return f"UNEXPLAINED ({_signed(row.difference, unit)})"
    return "exact"


def verdict(check: Any, unit: str = "macs") -> str:
    """A Check's agreement in words: 'exact', 'explained: batch-norm +22,227,968', 'UNEXPLAINED (+5)',
    or 'skipped: …' / 'failed: …'."""
    if not check.ok:
        return f"{check.status}: {check.reason}"
    if check.agreement == "unexplained":
        return f"UNEXPLAINED ({_signed(check.difference, unit)})"
    if check.agreement == "explained":
        return "explained: " + ", ".join(f"{short_rule(name)} {_signed(share, unit)}"
                                         for name, share in check.conventions.items())
    return "exact"


def _names(group: Sequence[Any]) -> list[str]:
    names: dict[str, None] = {}
    for checks in group:
        names.update((name, None) for name in checks or ())
    return list(names)


@register("checks")
class ChecksPresenter(Presenter):
    from_run = True

    def layer_columns(self, group: Sequence[Any], unit: str, view: View | None) -> list[Heading]:
        if view is not None:  # tables show the checks in a section of their own
            return []
        label = unit_label(unit).lower()
        return [Heading(title, key=name) for name in _names(group)
                for title in (f"{name}_{label}", f"{name}_agreement")]

    def layer_cells(self, feature: Any, headings: Sequence[Heading], row: Any, members: Sequence[Any],
                    unit: str, view: View | None) -> list[Any]:
        """Per check: the tool's count of the row's layers and their worst agreement."""
        from ...analyses.checks import AGREEMENT_ORDER  # not on `costlab compare`'s path
        cells: list[Any] = []
        for heading in headings[::2]:
            check = feature.entries.get(heading.key)
            if check is None or not check.ok:
                cells += ["", ""]
                continue
            found = [check.by_first_layer[m.name] for m in members if m.name in check.by_first_layer]
            total = in_unit(sum(r.reference for r in found), unit)
            worst = max((r.agreement for r in found), key=AGREEMENT_ORDER.index, default="exact")
            cells += [exact_number(total).replace(",", ""), worst]
        return cells

    def side_by_side(self, group: Sequence[Any], unit: str, view: View | None) -> tuple[list[Heading], list[list[Any]]]:
        names = _names(group)
        if view is None:
            label = unit_label(unit).lower()
            headings = [Heading(t, key=n) for n in names for t in (f"{n}_{label}", f"{n}_agreement")]
        else:
            headings = [Heading(t, numeric, keep, key=n) for n in names
                        # an agreement goes before its tool's count: never an agreement without its tool
                        for t, numeric, keep in ((in_unit_label(CHECK_LABELS.get(n, n), unit), True, 68),
                                                 ("agreement", False, 65))]
        rows = []
        for checks in group:
            cells: list[Any] = []
            for name in names:
                check = (checks or {}).get(name)
                if check is None:
                    cells += ["", ""]
                elif not check.ok:
                    cells += ["", check.status]
                else:
                    total = in_unit(check.total, unit)
                    cells += [total if view is None else view.count(total), check.agreement]
            rows.append(cells)
        return headings, rows

    def section(self, feature: Any, analysis: Any, unit: str, view: View, compact: bool) -> list[str]:
        if compact:
            return view.prose([f"{analysis.name}, {check.tool}: {verdict(check, unit)}"
                               for check in feature.values()])
        return _section(feature, analysis, unit, view)


def _section(checks: Any, a: Any, unit: str, view: View) -> list[str]:
    """One line per check, a per-layer table with an agreement column per check, and the
    conventions that explain differences."""
    parts = ["", f"### {a.name}: cross-check" if view.fmt is Format.MD else f"Cross-check of {a.name}"]
    for check in checks.values():
        if not check.ok:
            parts += view.prose([f"- {in_unit_label(check.tool, unit)}: {verdict(check, unit)}"])
            continue
        ran = f" (ran at batch {check.batch}, counts × {check.scale})" if check.scale != 1 else ""
        parts += view.prose([f"- {in_unit_label(check.tool, unit)}{ran}: {exact_number(check.total, unit)} vs costlab "
                             f"{exact_number(check.costlab, unit)}: {verdict(check, unit)}"])
    # the per-call-site table: the tools that count per module (the others are compared in total)
    ok = [(name, check) for name, check in checks.items() if check.ok and check.layers]
    if not ok:
        return parts
    headers = ["layer", f"costlab {unit_label(unit)}"]
    for name, _ in ok:
        headers += [in_unit_label(CHECK_LABELS.get(name, name), unit), "agreement"]
    rows = []
    for row_name, costlab, per_check in checks.rows():
        cells = [row_name, view.count(in_unit(costlab, unit))]
        for name, _ in ok:
            row = per_check.get(name)
            if row is None:
                cells += ["0", "exact"]
                continue
            text = row_verdict(row, unit)
            if view.width is not None and row.agreement == "explained":
                text = "explained"  # which rule explains it: the list under the table
            cells += [view.count(in_unit(row.reference, unit)), text]
        rows.append(cells)
    footer = ["total", view.count(in_unit(a.macs, unit))]
    for _, check in ok:
        footer += [view.count(in_unit(check.total, unit)), check.agreement]
    rows.append(footer)
    numeric = [False, True] + [True, False] * len(ok)
    # Counts stay; a long agreement ('explained (batch-norm)') is cut first, its rules listed below.
    table, dropped = view.table(headers, rows, numeric, [None, None] + [None, None] * len(ok),
                                ["tail", None] + [None, "head"] * len(ok), [24, 8] + [8, 9] * len(ok))
    parts += ["", table] + view.left_out(dropped)
    used: dict[str, str] = {}
    for _, check in ok:
        used.update(check.explanations)
        if check.note:
            used["torch-flops"] = check.note if unit != "flops" else \
                "PyTorch's counter counts 2 FLOPs per MAC (shown as it counts them here)"
    if used:
        parts.append("")
        parts += view.prose([f"- {short_rule(name)}: {text}" for name, text in used.items()])
    return parts
