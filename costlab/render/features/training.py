"""How ``--freeze``'s training step (costlab.analyses.training.TrainingCost) is drawn."""

from __future__ import annotations

from typing import Any, Sequence

from ...core.features import in_unit, unit_label
from ..view import Heading, View, blank
from .registry import Presenter, register


def freeze_summary(cost: Any) -> str:
    """'--freeze 0.9: 36 of 41 layers with parameters frozen (conv1 … layer4.0.bn2); trainable from …'."""
    count = len(cost.frozen)
    text = f"--freeze {cost.freeze.text}: {count} of {cost.param_layers} layers with parameters frozen"
    if count:
        text += f" ({cost.frozen[0]}" + (f" … {cost.frozen[-1]})" if count > 1 else ")")
    first = cost.first_trainable()
    text += f"; trainable from {first}" if first else "; nothing trainable (forward only)"
    return text + ". Train step = forward + backward, loss and optimiser update not included."


@register("training")
class TrainingPresenter(Presenter):
    """Per layer which gradients it computes and its train-step MACs; side by side the trainable
    and frozen params and the train step; the freeze's summary under the table."""

    def layer_columns(self, group: Sequence[Any], unit: str, view: View | None) -> list[Heading]:
        if view is None:
            return [Heading(t) for t in ("trainable_params", "frozen_params",
                                         f"train_step_{unit_label(unit).lower()}", "grads")]
        return [Heading("grads", False, 40), Heading(f"train-step {unit_label(unit)}", True, 75)]

    def layer_cells(self, feature: Any, headings: Sequence[Heading], row: Any, members: Sequence[Any],
                    unit: str, view: View | None) -> list[Any]:
        """Which gradients the row's layers compute ('mixed' when they differ), their train-step
        MACs (and in CSV their trainable and frozen params)."""
        per_name = feature.by_name()
        found = [per_name[m.name] for m in members if m.name in per_name]
        if not found:
            return blank(headings)
        grads = {t.grads for t in found}
        kind = grads.pop() if len(grads) == 1 else "mixed"
        step = in_unit(sum(t.train_step_macs for t in found), unit)
        if view is None:
            return [sum(t.trainable_params for t in found), sum(t.frozen_params for t in found), step, kind]
        return [kind, view.count(step)]

    def total_cells(self, feature: Any, headings: Sequence[Heading], unit: str, view: View) -> list[str]:
        return ["", view.count(in_unit(feature.train_step_macs, unit))]

    def side_by_side(self, group: Sequence[Any], unit: str, view: View | None) -> tuple[list[Heading], list[list[Any]]]:
        if view is None:
            headings = [Heading(t) for t in ("trainable_params", "frozen_params",
                                             f"train_step_{unit_label(unit).lower()}")]
        else:
            headings = [Heading("trainable", True, 70), Heading("frozen", True, 55),
                        Heading(f"train-step {unit_label(unit)}", True, 75)]
        rows = []
        for cost in group:
            if cost is None:
                rows.append(blank(headings))
                continue
            cells = [cost.trainable_params, cost.frozen_params, in_unit(cost.train_step_macs, unit)]
            rows.append(cells if view is None else [view.count(v) for v in cells])
        return headings, rows

    def headline(self, feature: Any, unit: str, view: View) -> str:
        return (f"train step {view.count(in_unit(feature.train_step_macs, unit))} {unit_label(unit)}, "
                f"{view.count(feature.trainable_params)} trainable and {view.count(feature.frozen_params)} frozen params")

    def table_notes(self, feature: Any, unit: str) -> list[str]:
        return [freeze_summary(feature)]
