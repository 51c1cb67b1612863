"""How ``--predict``'s result (costlab.analyses.prediction.Prediction) is drawn."""

from __future__ import annotations

from typing import Any, Sequence

from ..numbers import Style, number
from ..view import Heading, View, blank
from .registry import Presenter, register


def _signed(fraction: float) -> str:
    return f"{100 * fraction:+.0f} %"


@register("prediction")
class PredictionPresenter(Presenter):
    """Per layer and per target the predicted ms, with the error beside a measurement; which
    calibration the predictions came from, once per report."""

    def layer_columns(self, group: Sequence[Any], unit: str, view: View | None) -> list[Heading]:
        if not group or any(p is None for p in group):
            return []
        measured = any(p.measured_ms is not None for p in group)
        if view is None:
            return [Heading("predicted_ms")] + ([Heading("prediction_error")] if measured else [])
        return [Heading("predicted ms", True, 60)] + ([Heading("error", True, 55)] if measured else [])

    def layer_cells(self, feature: Any, headings: Sequence[Heading], row: Any, members: Sequence[Any],
                    unit: str, view: View | None) -> list[Any]:
        by_layer = feature.by_layer
        values = [by_layer[m.name] for m in members if m.name in by_layer]
        if not values:
            return blank(headings)
        predicted = sum(values)
        cells: list[Any] = [f"{predicted:.6g}" if view is None else number(predicted, Style.MS)]
        if len(headings) > 1:
            latencies = [m.latency for m in members if m.name in by_layer]
            measured = [t.median for t in latencies if t is not None]
            if len(measured) == len(values) and sum(measured) > 0:
                e = predicted / sum(measured) - 1
                cells.append(f"{e:.6g}" if view is None else _signed(e))
            else:
                cells.append("")
        return cells

    def total_cells(self, feature: Any, headings: Sequence[Heading], unit: str, view: View) -> list[str]:
        cells = [number(feature.total_ms, Style.MS)]
        if len(headings) > 1:
            cells.append(_signed(feature.error) if feature.error is not None else "")
        return cells

    def side_by_side(self, group: Sequence[Any], unit: str, view: View | None) -> tuple[list[Heading], list[list[Any]]]:
        if not group or any(p is None for p in group):
            return [], []
        first = group[0].total_ms
        measured = all(p.measured_ms is not None for p in group)
        if view is None:
            headings = [Heading("predicted_ms"), Heading("predicted_ratio")] + (
                [Heading("prediction_error")] if measured else [])
            return headings, [[f"{p.total_ms:.6g}", f"{first / p.total_ms:.6g}" if p.total_ms else ""]
                              + ([f"{p.error:.6g}"] if measured else []) for p in group]
        headings = [Heading("predicted ms", True, 80), Heading("predicted vs first", False, 75)] + (
            [Heading("error", True, 70)] if measured else [])
        rows = []
        for index, p in enumerate(group):
            ratio = first / p.total_ms if p.total_ms else None
            speed = ("–" if index == 0 or ratio is None else
                     f"{number(ratio, Style.TIMES)} faster" if ratio >= 1 else f"{number(1 / ratio, Style.TIMES)} slower")
            rows.append([number(p.total_ms, Style.MS), speed] + ([_signed(p.error)] if measured else []))
        return headings, rows

    def headline(self, feature: Any, unit: str, view: View) -> str:
        return f"predicted {number(feature.total_ms, Style.MS)} ms"

    def table_notes(self, feature: Any, unit: str) -> list[str]:
        if not feature.fallback_layers:
            return []
        return [f"No calibrated kernel family, predicted by the roofline plus one call: "
                f"{', '.join(feature.fallback_layers)}."]

    def report_section(self, analyses: Sequence[Any], unit: str, view: View) -> list[str]:
        """Which calibration the predictions came from, once per report."""
        described = sorted({p.described for p in (a.feature("prediction") for a in analyses) if p is not None})
        if not described:
            return []
        return view.prose([f"Predicted latency (ms): the sum of each layer's, from its kernel family's model fitted "
                           f"to the {' and the '.join(described)}; nothing was run (docs/cost-model.md)."])
