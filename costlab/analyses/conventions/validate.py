"""Consistency checks of the tables (every kind covered, every composite part known)."""

from __future__ import annotations

from .kinds import LAYER_KINDS
from .language import MHA_PARTS
from .registry import CONVENTIONS


def check_tables() -> list[str]:
    """Problems with the tables (a tool whose module states another's rules, a kind without rule, a MAC layer kind or a composite's part without
    one primary term, a composite missing a part)."""
    problems = []
    for name, convention in CONVENTIONS.items():
        if convention.name != name:
            problems.append(f"{name}: its module states the rules of {convention.name}")
        for kind in LAYER_KINDS:
            terms = convention.modules.get(kind)
            if terms is None:
                problems.append(f"{convention.name}: no rule for {kind}")
                continue
            primaries = sum(t.primary for t in terms)
            wanted = 1 if kind in ("conv", "conv-transposed", "linear", "matmul", "attention", "recurrent") else 0
            if primaries != wanted:
                problems.append(f"{convention.name}: {kind} has {primaries} primary terms")
        for source, composite in convention.composites.items():
            if source == "nn.MultiheadAttention" and set(composite.terms) != set(MHA_PARTS):
                problems.append(f"{convention.name}: {source} parts {sorted(composite.terms)}")
            for part, terms in composite.terms.items():
                if sum(t.primary for t in terms) != 1:  # every part has MACs: one term stands in for them
                    problems.append(f"{convention.name}: {source} {part} has "
                                    f"{sum(t.primary for t in terms)} primary terms")
    return problems
