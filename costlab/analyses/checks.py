"""``--check``: each other tool's count set beside costlab's, as a typed result (:class:`Checks`, one
:class:`Check` per tool) that an analysis carries. The tools are run by the torch bridge
(costlab.torch_bridge.crosscheck); nothing here imports torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Mapping, Sequence

from ..core.features import Feature, Heading, Number, View, exact_number, in_unit, unit_label

if TYPE_CHECKING:
    from ..core.analysis import Analysis, Layer, Row

#: How a check's column is titled in tables.
CHECK_LABELS = {"fvcore": "fvcore", "torch": "torch ÷ 2"}


def in_unit_label(tool: str, unit: str) -> str:
    """A tool's name over its count shown in ``unit``: in MACs as given ('torch ÷ 2': PyTorch's FLOPs
    halved); in FLOPs = 2 × MACs, 'torch' (its own count) and '<tool> × 2' for the others."""
    if unit != "flops":
        return tool
    return tool[: -len(" ÷ 2")] if tool.endswith(" ÷ 2") else f"{tool} × 2"
#: Agreement from best to worst; a folded row takes the worst of its layers'.
AGREEMENT_ORDER = ("exact", "explained", "unexplained")


def short_rule(convention: str) -> str:
    """'fvcore-batch-norm' → 'batch-norm'."""
    return convention.split("-", 1)[1] if convention.startswith(("fvcore-", "torch-")) else convention


def _signed(value: float, unit: str) -> str:
    return f"{'+' if value >= 0 else '-'}{exact_number(abs(value), unit)}"


@dataclass(frozen=True)
class CheckRow:
    """One call site of a check that counts per module (fvcore, PyTorch's counter): a leaf module's
    layers, or the functional ops a container runs itself; counts in multiply-adds."""

    name: str
    module: str
    layers: tuple[str, ...]
    costlab: int
    reference: Number
    expected: Number
    difference: Number
    agreement: str  # exact, explained or unexplained
    conventions: tuple[str, ...] = ()  # the rules that explain it, when explained
    note: str = ""
    operators: Mapping[str, Number] | None = None  # fvcore's own count per operator

    def to_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": self.name, "module": self.module, "layers": list(self.layers),
                                 "costlab": self.costlab, "reference": self.reference, "expected": self.expected,
                                 "difference": self.difference, "agreement": self.agreement,
                                 "conventions": list(self.conventions)}
        if self.note:
            entry["note"] = self.note
        if self.operators:
            entry["operators"] = dict(self.operators)
        return entry

    def verdict(self, unit: str = "macs") -> str:
        """'exact', 'explained (batch-norm)' or 'UNEXPLAINED (+5)'."""
        if self.agreement == "explained":
            return f"explained ({', '.join(short_rule(c) for c in self.conventions)})"
        if self.agreement == "unexplained":
            return f"UNEXPLAINED ({_signed(self.difference, unit)})"
        return "exact"


@dataclass(frozen=True)
class ParamCheck:
    """Parameters as a tool reports them, beside costlab's and the tool's profile."""

    tool: int
    expected: int
    costlab: int
    agreement: str

    def to_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "expected": self.expected, "costlab": self.costlab, "agreement": self.agreement}


@dataclass(frozen=True)
class Check:
    """One tool's count set beside costlab's MACs and beside what its own rules (its convention
    profile) predict. ``status`` is ok, skipped or failed (with ``reason``); the rest is set when ok."""

    tool: str
    status: str = "ok"
    reason: str = ""
    batch: int = 1
    scale: int = 1  # the tool ran at ``batch`` and its counts were multiplied by this
    total: Number = 0
    costlab: int = 0
    expected: Number = 0
    difference: Number = 0
    agreement: str = "exact"
    conventions: Mapping[str, Number] = field(default_factory=dict)  # each rule's share of the difference
    layers: tuple[CheckRow, ...] = ()
    explanations: Mapping[str, str] = field(default_factory=dict)  # each rule in words
    params: ParamCheck | None = None
    note: str = ""  # how the tool's unit relates to a MAC (JSON "convention")
    flops: Number | None = None  # PyTorch's counter's own FLOPs
    skipped_ops: Mapping[str, int] | None = None  # fvcore's

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """The check's entry of the JSON contract (``checks`` of a target)."""
        if not self.ok:
            return {"tool": self.tool, "status": self.status, "reason": self.reason}
        entry: dict[str, Any] = {
            "tool": self.tool, "status": self.status, "batch": self.batch, "scale": self.scale,
            "total": self.total, "costlab": self.costlab, "expected": self.expected,
            "difference": self.difference, "agreement": self.agreement, "conventions": dict(self.conventions),
            "layers": [row.to_dict() for row in self.layers], "explanations": dict(self.explanations),
        }
        if self.params is not None:
            entry["params"] = self.params.to_dict()
        if self.note:
            entry["convention"] = self.note
        if self.flops is not None:
            entry["flops"] = self.flops
        if self.skipped_ops is not None:
            entry["skipped_ops"] = dict(self.skipped_ops)
        return entry

    def verdict(self, unit: str = "macs") -> str:
        """'exact', 'explained: batch-norm +22,227,968', 'UNEXPLAINED (+5)', or 'skipped: …' / 'failed: …'."""
        if not self.ok:
            return f"{self.status}: {self.reason}"
        if self.agreement == "unexplained":
            return f"UNEXPLAINED ({_signed(self.difference, unit)})"
        if self.agreement == "explained":
            return "explained: " + ", ".join(f"{short_rule(name)} {_signed(share, unit)}"
                                             for name, share in self.conventions.items())
        return "exact"

    @cached_property
    def by_first_layer(self) -> Mapping[str, CheckRow]:
        """Each row by its first layer: a row that covers several layers (a module called twice, a
        container's functional ops) is counted on its first."""
        return {row.layers[0]: row for row in self.layers if row.layers}


@dataclass(frozen=True)
class Checks(Feature, Mapping[str, Check]):
    """``--check``: one :class:`Check` per tool, by its name (fvcore, torch, ptflops, …).

    In tables, a target's checks are a section of their own (a line per tool and a per-call-site
    table); in CSV, two columns per tool; in JSON, the target's ``checks``."""

    entries: Mapping[str, Check] = field(default_factory=dict)

    name: ClassVar[str] = "checks"
    from_run: ClassVar[bool] = True

    def __getitem__(self, name: str) -> Check:
        return self.entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def with_check(self, name: str, check: Check) -> "Checks":
        return Checks({**self.entries, name: check})

    def to_dict(self) -> dict[str, Any]:
        return {name: check.to_dict() for name, check in self.entries.items()}

    def unexplained(self) -> list[str]:
        """The tools that found a difference no rule of theirs explains."""
        return [name for name, check in self.entries.items() if check.ok and check.agreement == "unexplained"]

    def json_fields(self, unit: str) -> dict[str, Any]:
        return {"checks": self.to_dict()}

    @staticmethod
    def _names(group: Sequence["Checks | None"]) -> list[str]:
        names: dict[str, None] = {}
        for checks in group:
            names.update((name, None) for name in checks or ())
        return list(names)

    @classmethod
    def layer_columns(cls, group: Sequence[Any], unit: str, view: View | None) -> list[Heading]:
        if view is not None:  # tables show the checks in a section of their own
            return []
        label = unit_label(unit).lower()
        return [Heading(title, key=name) for name in cls._names(group)
                for title in (f"{name}_{label}", f"{name}_agreement")]

    def layer_cells(self, headings: Sequence[Heading], row: "Row", members: Sequence["Layer"], unit: str,
                    view: View | None) -> list[Any]:
        """Per check: the tool's count of the row's layers and their worst agreement."""
        cells: list[Any] = []
        for heading in headings[::2]:
            check = self.entries.get(heading.key)
            if check is None or not check.ok:
                cells += ["", ""]
                continue
            found = [check.by_first_layer[m.name] for m in members if m.name in check.by_first_layer]
            total = in_unit(sum(r.reference for r in found), unit)
            worst = max((r.agreement for r in found), key=AGREEMENT_ORDER.index, default="exact")
            cells += [exact_number(total).replace(",", ""), worst]
        return cells

    @classmethod
    def side_by_side(cls, group: Sequence[Any], unit: str, view: View | None) -> tuple[list[Heading], list[list[Any]]]:
        names = cls._names(group)
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

    def section(self, analysis: "Analysis", unit: str, view: View, compact: bool) -> list[str]:
        if compact:
            return view.prose([f"{analysis.name}, {check.tool}: {check.verdict(unit)}" for check in self.values()])
        return self._section(analysis, unit, view)

    def rows(self) -> list[tuple[str, int, dict[str, CheckRow]]]:
        """(row name, costlab MACs, {check: its row}) for every call site any check lists, in order."""
        merged: dict[str, tuple[int, dict[str, CheckRow]]] = {}
        for name, check in self.entries.items():
            for row in check.layers:
                costlab, per_check = merged.setdefault(row.name, (row.costlab, {}))
                per_check[name] = row
        return [(row, costlab, per_check) for row, (costlab, per_check) in merged.items()]

    def _section(self, a: "Analysis", unit: str, view: View) -> list[str]:
        """One line per check, a per-layer table with an agreement column per check, and the
        conventions that explain differences."""
        parts = ["", f"### {a.name}: cross-check" if view.fmt == "md" else f"Cross-check of {a.name}"]
        for check in self.values():
            if not check.ok:
                parts += view.prose([f"- {in_unit_label(check.tool, unit)}: {check.verdict(unit)}"])
                continue
            ran = f" (ran at batch {check.batch}, counts × {check.scale})" if check.scale != 1 else ""
            parts += view.prose([f"- {in_unit_label(check.tool, unit)}{ran}: {exact_number(check.total, unit)} vs costlab "
                                 f"{exact_number(check.costlab, unit)}: {check.verdict(unit)}"])
        # the per-call-site table: the tools that count per module (the others are compared in total)
        ok = [(name, check) for name, check in self.items() if check.ok and check.layers]
        if not ok:
            return parts
        headers = ["layer", f"costlab {unit_label(unit)}"]
        for name, _ in ok:
            headers += [in_unit_label(CHECK_LABELS.get(name, name), unit), "agreement"]
        rows = []
        for row_name, costlab, per_check in self.rows():
            cells = [row_name, view.count(in_unit(costlab, unit))]
            for name, _ in ok:
                row = per_check.get(name)
                if row is None:
                    cells += ["0", "exact"]
                    continue
                verdict = row.verdict(unit)
                if view.width is not None and row.agreement == "explained":
                    verdict = "explained"  # which rule explains it: the list under the table
                cells += [view.count(in_unit(row.reference, unit)), verdict]
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


