"""How an hf: target's built class (costlab.analyses.generation.BuiltModel) and ``--generate``'s
result (costlab.analyses.generation.Generation) are drawn: a ``≥`` before every count of a call
whose count misses an op that multiplies."""

from __future__ import annotations

from typing import Any, Sequence

from ...core.features import in_unit, unit_label
from ..view import Heading, View, blank
from .registry import Presenter, register


def _bound(complete: bool) -> str:
    return "" if complete else "≥ "


@register("model")
class BuiltModelPresenter(Presenter):
    def headline(self, feature: Any, unit: str, view: View) -> str:
        why = "named by the config" if feature.head == "architectures" else f"head {feature.head}"
        return f"built {feature.cls} ({why})"


@register("generation")
class GenerationPresenter(Presenter):
    def headline(self, g: Any, unit: str, view: View) -> str:
        label = unit_label(unit)
        per_token = ("" if not g.steps else
                     f", decode {_bound(g.steps[0].complete)}{view.count(in_unit(g.steps[0].macs, unit))}"
                     f"…{view.count(in_unit(g.steps[-1].macs, unit))} {label}/token")
        return (f"generate {g.new_tokens}: prefill {_bound(g.prefill.complete)}"
                f"{view.count(in_unit(g.prefill.macs, unit))} {label}{per_token}, total "
                f"{_bound(g.complete)}{view.count(in_unit(g.macs, unit))}; KV cache "
                f"{view.bytes(g.kv_cache_bytes)}, weights {view.bytes(g.weights_bytes)}")

    def side_by_side(self, group: Sequence[Any], unit: str, view: View | None) -> tuple[list[Heading], list[list[Any]]]:
        if view is None:
            headings = [Heading(t) for t in ("prefill_macs", "decode_first_macs", "decode_last_macs", "decode_macs",
                                             "kv_cache_bytes")]
            return headings, [blank(headings) if g is None else
                              [in_unit(g.prefill.macs, unit),
                               in_unit(g.steps[0].macs, unit) if g.steps else "",
                               in_unit(g.steps[-1].macs, unit) if g.steps else "",
                               in_unit(g.decode_macs, unit), g.kv_cache_bytes] for g in group]
        headings = [Heading("prefill", True, 70), Heading("per token", True, 68), Heading("generate", True, 66),
                    Heading("KV cache", True, 64)]
        rows = []
        for g in group:
            if g is None:
                rows.append(blank(headings))
                continue
            per_token = ("–" if not g.steps else
                         f"{view.count(in_unit(g.steps[0].macs, unit))}…{view.count(in_unit(g.steps[-1].macs, unit))}")
            rows.append([_bound(g.prefill.complete) + view.count(in_unit(g.prefill.macs, unit)), per_token,
                         _bound(g.complete) + view.count(in_unit(g.macs, unit)), view.bytes(g.kv_cache_bytes)])
        return headings, rows

    def section(self, g: Any, analysis: Any, unit: str, view: View, compact: bool) -> list[str]:
        """A table of the phases: prefill, the first and last decode steps, all of decode, the total;
        then the cache and the weights."""
        rows = [["prefill", str(g.prompt), "0", _bound(g.prefill.complete) + view.count(in_unit(g.prefill.macs, unit))]]
        if g.steps:
            first, last = g.steps[0], g.steps[-1]
            rows.append(["decode, first step", "1", str(first.cached),
                         _bound(first.complete) + view.count(in_unit(first.macs, unit))])
            rows.append(["decode, last step", "1", str(last.cached),
                         _bound(last.complete) + view.count(in_unit(last.macs, unit))])
            rows.append([f"decode, {len(g.steps)} steps", str(len(g.steps)), "",
                         _bound(all(s.complete for s in g.steps)) + view.count(in_unit(g.decode_macs, unit))])
        rows.append([f"generate {g.new_tokens} tokens", "", "", _bound(g.complete) + view.count(in_unit(g.macs, unit))])
        table, _ = view.table(["phase", "tokens", "cached", unit_label(unit)], rows, [False, True, True, True])
        kinds = ", ".join(f"{layers} {kind} layer{'s' if layers != 1 else ''} {view.bytes(size)}"
                          for kind, layers, size in g.cache_layers)
        lines = [f"KV cache after the last step ({g.prompt + g.new_tokens - 1} positions, {g.dtype}, "
                 f"batch {g.batch}): {view.bytes(g.kv_cache_bytes)}" + (f" ({kinds})" if kinds else ""),
                 f"weights: {view.bytes(g.weights_bytes)}; params {view.count(g.params)}, active per token "
                 f"{view.count(g.active_params)}"]
        lines += list(g.notes)
        return ["", f"{analysis.name}: generate(max_new_tokens={g.new_tokens}) on {g.prompt} prompt tokens, "
                f"batch {g.batch}:", "", table] + view.prose(lines)
