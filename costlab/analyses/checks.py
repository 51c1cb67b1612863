"""``--check``: each other tool's count set beside costlab's, as a typed result (:class:`Checks`, one
:class:`Check` per tool) that an analysis carries. The tools are run by the torch bridge
(costlab.torch_bridge.crosscheck); nothing here imports torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, Iterator, Mapping

from ..core.features import Feature, Number

#: Agreement from best to worst; a folded row takes the worst of its layers'.
AGREEMENT_ORDER = ("exact", "explained", "unexplained")


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

    @cached_property
    def by_first_layer(self) -> Mapping[str, CheckRow]:
        """Each row by its first layer: a row that covers several layers (a module called twice, a
        container's functional ops) is counted on its first."""
        return {row.layers[0]: row for row in self.layers if row.layers}


@dataclass(frozen=True)
class Checks(Feature, Mapping[str, Check]):
    """``--check``: one :class:`Check` per tool, by its name (fvcore, torch, ptflops, …).

    In JSON, the target's ``checks``; costlab.render.features.checks draws them."""

    entries: Mapping[str, Check] = field(default_factory=dict)

    name: ClassVar[str] = "checks"

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

    def rows(self) -> list[tuple[str, int, dict[str, CheckRow]]]:
        """(row name, costlab MACs, {check: its row}) for every call site any check lists, in order."""
        merged: dict[str, tuple[int, dict[str, CheckRow]]] = {}
        for name, check in self.entries.items():
            for row in check.layers:
                costlab, per_check = merged.setdefault(row.name, (row.costlab, {}))
                per_check[name] = row
        return [(row, costlab, per_check) for row, (costlab, per_check) in merged.items()]
