"""How ``--memory``'s result (costlab.analyses.memory.Memory) is drawn."""

from __future__ import annotations

from typing import Any, Sequence

from ..numbers import Style, number
from ..view import Heading, View, blank
from .registry import Presenter, register


@register("memory")
class MemoryPresenter(Presenter):
    """Per layer the live and saved bytes; side by side the peaks; the summary and its closed forms
    under the table."""

    def layer_columns(self, group: Sequence[Any], unit: str, view: View | None) -> list[Heading]:
        if view is None:
            return [Heading("live_bytes"), Heading("saved_bytes")]
        return [Heading("live", True, 65), Heading("saved", True, 60)]

    def layer_cells(self, feature: Any, headings: Sequence[Heading], row: Any, members: Sequence[Any],
                    unit: str, view: View | None) -> list[Any]:
        """The largest live bytes at inference among the row's layers, and the bytes they save for backward."""
        per_name = feature.by_name()
        found = [per_name[m.name] for m in members if m.name in per_name]
        if not found:
            return blank(headings)
        cells = [max(m.inference_live for m in found), sum(m.saved for m in found)]
        return cells if view is None else [view.bytes(v) for v in cells]

    def total_cells(self, feature: Any, headings: Sequence[Heading], unit: str, view: View) -> list[str]:
        return [view.bytes(feature.inference_peak), view.bytes(feature.saved)]

    def side_by_side(self, group: Sequence[Any], unit: str, view: View | None) -> tuple[list[Heading], list[list[Any]]]:
        """In a table the peaks (its own 'weights' column shows the weights); in CSV the optimizer too."""
        if view is None:
            headings = [Heading(t) for t in ("optimizer", "weights_bytes", "inference_peak_bytes",
                                             "training_peak_bytes")]
            return headings, [blank(headings) if m is None else
                              [m.optimizer, m.weights, m.inference_peak, m.training_peak] for m in group]
        headings = [Heading("inference peak", True, 62), Heading("training peak", True, 58)]
        return headings, [blank(headings) if m is None else
                          [view.bytes(m.inference_peak), view.bytes(m.training_peak)] for m in group]

    def headline(self, feature: Any, unit: str, view: View) -> str:
        return (f"weights {view.bytes(feature.weights)}, inference peak {view.bytes(feature.inference_peak)}, "
                f"training peak {view.bytes(feature.training_peak)} ({feature.optimizer})")

    def table_notes(self, feature: Any, unit: str) -> list[str]:
        """The summary with its closed forms."""
        m = feature

        def size(n: int) -> str:
            return number(n, Style.BYTES_2DP)
        lines = [f"memory ({m.dtype}, {m.optimizer}): weights {size(m.weights)}, inference peak "
                 f"{size(m.inference_peak)} at {m.inference_peak_at}, training-step peak "
                 f"{size(m.training_peak)} ({m.training_peak_at}); saved for backward "
                 f"{size(m.saved)}, optimizer state {size(m.optimizer_state)}"]
        lines += [f"  {key}: {text}" for key, text in m.formulas.items()]
        lines += [f"  {note}" for note in m.notes]
        return lines
