"""The rule tables as Markdown (docs/cost-model.md, "Other tools' conventions", is generated from this)."""

from __future__ import annotations

from .kinds import LAYER_KINDS
from .language import FUNCTIONAL_BUILTINS, OPERATOR_METHODS, Term, UNREGISTERED
from .registry import CONVENTIONS


def rules_markdown() -> str:
    """The rule tables as Markdown, for docs/cost-model.md (a test holds the doc equal to this)."""
    lines: list[str] = []
    for c in CONVENTIONS.values():
        lines += [f"#### `{c.name}`: {c.tool} {c.version}", "",
                  f"Reads the model by {c.mechanism}; counts {c.unit}. Call reproduced: `{c.call}`", ""]
        lines += ["| layer kinds | what it counts | verdict |", "|---|---|---|"]
        groups: dict[tuple[Term, ...], list[str]] = {}
        for kind in LAYER_KINDS:
            groups.setdefault(c.modules[kind], []).append(kind)
        for terms, kinds in groups.items():
            counted = "<br>".join(f"**{t.label}**: {t.rule}" + (" (÷ batch)" if t.per_sample else "")
                                  for t in terms)
            verdicts = ", ".join(dict.fromkeys(t.verdict for t in terms))
            lines.append(f"| {', '.join(kinds)} | {counted} | {verdicts} |")
        if c.by_function:
            by_terms: dict[tuple[Term, ...], list[str]] = {}
            for name, terms in c.functions.items():
                by_terms.setdefault(terms, []).append(name.replace("torch.nn.functional.", "F."))
            lines += ["", "Layers called as functions, by function:", ""]
            for terms, names in by_terms.items():
                lines.append(f"- {', '.join(f'`{n}`' for n in names)}: "
                             + "; ".join(f"**{t.label}**: {t.rule}" for t in terms))
            lines.append("- " + ", ".join(f"`{n}`" for n in FUNCTIONAL_BUILTINS)
                         + ": read as the F function of that name (C builtins of torch.nn.functional, "
                           "named by their module; the last three are also torch's own attributes)")
        if c.unseen is not None:
            lines.append(("- any other function" if c.by_function else "\nLayers called as functions")
                         + f": **{c.unseen.label}**: {c.unseen.rule}")
        if c.leaf_function_params is not None:
            t = c.leaf_function_params
            lines.append(f"- a function with parameters inside a leaf module: **{t.label}**: {t.rule}")
        if c.exact_types:
            lines.append(f"- a module of a class that is not torch.nn's own: **{UNREGISTERED.label}**: "
                         f"{UNREGISTERED.rule}")
        if c.operators_as_methods:
            lines.append("- a layer a run (engine meta, cpu or fx+meta) recorded as "
                         + ", ".join(f"`{n.replace('torch.', '')}`" for n in OPERATOR_METHODS)
                         + ": read as the operator (`+`, `-`, `*`, `/`, `@`), which a run cannot tell "
                           "from the method call and this tool does")
        for source, composite in c.composites.items():
            lines += ["", f"`{source}`, priced as its parts"
                      + ("" if composite.params else " (its params not counted)") + ":", ""]
            by_part: dict[tuple[Term, ...], list[str]] = {}
            for part, terms in composite.terms.items():
                by_part.setdefault(terms, []).append(part)
            for terms, parts in by_part.items():
                counted = "; ".join(f"**{t.label}**: {t.rule}" + (" (÷ batch)" if t.per_sample else "")
                                    for t in terms)
                lines.append(f"- {', '.join(parts)}: {counted}")
        if c.params_missed or c.hooked_params_only:
            missed = ", ".join(sorted(c.params_missed))
            lines += ["", "Params: " + ("only those of module calls it has a rule for" if c.hooked_params_only
                                        else "all") + (f"; never those of {missed} layers" if missed else "")
                      + "."]
        lines.append("")
    return "\n".join(lines)
