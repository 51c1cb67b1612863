"""The profile feature (``--convention``): what a tool would report for an analysis, layer by layer,
with the difference from costlab's MACs broken down by rule."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar, Sequence
from ...core.features import Feature
from .kinds import CallForm, call_form, layer_kind
from .language import Convention, Term, Verdict
from .registry import find_convention
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the results are read, never built, here
    from ...core.analysis import Analysis, Layer


@dataclass(frozen=True)
class LayerCount:
    """What a tool counts for one layer: its terms' counts, beside costlab's MACs of the layer."""

    name: str
    kind: str
    form: CallForm
    terms: tuple[tuple[Term, Fraction], ...]  # exact: ptflops' per-sample counts may be fractions
    macs: Fraction  # costlab's MACs of the layer, on the tool's terms (per sample where it averages)

    @property
    def count(self) -> Fraction:
        return sum((n for _, n in self.terms), Fraction(0))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "form": self.form,
                "count": _number(self.count), "macs": _number(self.macs),
                "terms": [{"label": t.label, "count": _number(n), "verdict": t.verdict}
                          for t, n in self.terms]}


def _number(value: Fraction) -> int | float:
    """An exact count as an int, a fractional one (ptflops' per-sample averages) as a float."""
    return int(value) if value.denominator == 1 else float(value)


@dataclass(frozen=True)
class Difference:
    """One rule's share of (tool total − costlab MACs): what it counts minus the MACs it replaces."""

    label: str
    verdict: Verdict
    rule: str
    layers: int
    count: Fraction
    macs: Fraction

    @property
    def delta(self) -> Fraction:
        return self.count - self.macs

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "verdict": self.verdict, "rule": self.rule,
                "layers": self.layers, "count": _number(self.count), "macs": _number(self.macs),
                "delta": _number(self.delta)}


@dataclass(frozen=True)
class Profile(Feature):
    """What one tool would report for one analysed target, layer by layer (the feature of --convention)."""

    name: ClassVar[str] = "convention"

    convention: Convention
    target: str
    batch: int
    layers: tuple[LayerCount, ...]
    params: int

    @property
    def total(self) -> int:
        """The tool's total: the sum of its layer counts, truncated to an integer as the tools do."""
        return math.floor(sum((layer.count for layer in self.layers), Fraction(0)))

    @property
    def macs(self) -> int:
        """costlab's MACs on the tool's terms (per sample where the tool averages over the batch)."""
        return math.floor(sum((layer.macs for layer in self.layers), Fraction(0)))

    @property
    def delta(self) -> int:
        """Tool total − costlab's MACs."""
        return self.total - self.macs

    def differences(self) -> tuple[Difference, ...]:
        """The rules that make the tool's total differ from costlab's MACs, largest first.

        Each is what the rule counts minus the MACs of the layers it stands in for; they sum to
        :attr:`delta` (up to the truncation of a fractional total, ptflops at batch > 1). Rules
        that change nothing are left out.
        """
        grouped: dict[tuple[str, str], list[Any]] = {}
        for layer in self.layers:
            for term, n in layer.terms:
                key = (term.label, term.rule)
                entry = grouped.setdefault(key, [term, 0, Fraction(0), Fraction(0)])
                entry[1] += 1
                entry[2] += n
                entry[3] += layer.macs if term.primary else 0
        result = [Difference(term.label, term.verdict, term.rule, layers, count, macs)
                  for term, layers, count, macs in grouped.values() if count != macs]
        return tuple(sorted(result, key=lambda d: -abs(d.delta)))

    def explanation(self) -> str:
        """'+ batch norm 2/… (+101,376); + adaptive avg pool … (+512)' or 'the same as costlab's MACs'."""
        parts = [f"{d.label}{' [' + d.verdict + ']' if d.verdict in ('bug', 'missed') else ''} "
                 f"({_signed(d.delta)})" for d in self.differences()]
        return "; ".join(parts) if parts else "the same as costlab's MACs"

    def to_dict(self) -> dict[str, Any]:
        c = self.convention
        return {"name": c.name, "tool": c.tool, "version": c.version, "unit": c.unit, "call": c.call,
                "total": self.total, "params": self.params, "macs": self.macs, "delta": self.delta,
                "differences": [d.to_dict() for d in self.differences()],
                "layers": [layer.to_dict() for layer in self.layers]}

    # --- the feature ---

    def json_fields(self, unit: str) -> dict[str, Any]:
        return {"convention": self.to_dict()}


def profile(analysis: Analysis, name: str) -> Profile:
    """What the tool ``name`` would report for ``analysis`` (its inference layers, its batch)."""
    convention = find_convention(name)
    batch = analysis.batch
    counts = []
    params = 0
    containers = _container_scopes(analysis.layers)
    calls = _composite_calls(convention, analysis.layers)
    for layer in analysis.layers:
        in_leaf = layer.name.rpartition(".")[0] not in containers
        terms, form = convention.terms(layer, in_leaf)
        parts = calls.get(layer.name, {})
        counted = tuple((term, Fraction(term.counted(layer, parts), batch if term.per_sample else 1))
                        for term in terms)
        averaged = any(term.primary and term.per_sample for term in terms)
        counts.append(LayerCount(layer.name, layer_kind(layer), form, counted,
                                 Fraction(layer.macs, batch if averaged else 1)))
        if convention.counts_params(layer):
            params += layer.params
    return Profile(convention, analysis.name, batch, tuple(counts), params)


def with_convention(analysis: Analysis, name: str) -> Analysis:
    """A copy of ``analysis`` carrying what the tool ``name`` would report (``analysis.convention``)."""
    return analysis.with_feature(profile(analysis, name))


def _composite_calls(convention: Convention, layers: Sequence[Layer]) -> dict[str, dict[str, Layer]]:
    """Each layer of a module the tool prices as a composite → the layers of that module call
    (the layers under the same path), by part name."""
    calls: dict[str, dict[str, Layer]] = {}
    parts_of: dict[str, dict[str, Layer]] = {}
    for layer in layers:
        if call_form(layer) == "module" and layer.source in convention.composites:
            path, _, part = layer.name.rpartition(".")
            parts = calls.setdefault(path, {})
            parts[part] = layer
            parts_of[layer.name] = parts
    return parts_of


def _container_scopes(layers: Sequence[Layer]) -> set[str]:
    """Name scopes that hold module calls (modules with children, as far as a trace can tell);
    the root scope '' always is one. A function layer is named in the scope of the module that
    called it, so one outside these scopes was called by a leaf module."""
    scopes = {""}
    for layer in layers:
        if call_form(layer) == "module":
            parts = layer.name.split(".")
            scopes.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return scopes


def _signed(value: Fraction) -> str:
    return f"{_number(value):+,}" if value.denominator == 1 else f"{float(value):+,.1f}"
