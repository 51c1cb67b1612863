"""Training cost under transfer learning: freeze a leading part of a network, price one training step.

A *layer* here, for counting what to freeze, is a layer **with parameters**, in execution
order (the order of :attr:`Analysis.layers`); parameter-free layers (activations, pools,
adds, ...) are never frozen or counted, they only pass gradients on. ``--freeze`` takes

- a count ``N`` (digits only): the first N layers with parameters are frozen;
- a fraction ``F`` (a number with a decimal point, 0 ≤ F ≤ 1): the first ⌊F·P⌋ of the P
  layers with parameters are frozen;
- a layer name: every layer with parameters *before* the first layer called NAME, or
  inside the block NAME (``NAME.…``), is frozen; that layer and all that follow stay
  trainable (``--freeze fc`` is "retrain the last layer").

One training step is forward + backward (the loss and the optimiser update are left out).
Per layer with forward MACs F (conv, grouped and depthwise included, linear, matmul)::

    train-step MACs = F                      forward
                    + F · [input needs grad]  input gradient: the transposed product
                    + F · [weights trainable] weight gradient: input × output gradient

where a tensor *needs grad* exactly when it depends on a trainable parameter (autograd's
``requires_grad``): the network input does not, a layer's output does when the layer has
trainable parameters or one of its inputs needs grad. So a frozen prefix needs no
backward at all, and the first trainable layer computes only its weight gradient. A
matmul pays F once per operand that needs grad; attention (q·kᵀ, then weights·v) pays
per gradient it needs (see :func:`attention_backward_macs`).

Layers without MACs (norms, activations, pools, adds, ...) add ops, by rule: their
backward costs their forward ops again when their input needs grad, and trainable
parameters add their gradient's reductions (docs/cost-model.md, "Training cost and
freezing"). These ops are a stated estimate; the MACs are checked against autograd.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence

from ..core.errors import CostlabError
from ..core.features import FLOPS_PER_MAC, Feature, Heading, View, blank, in_unit, unit_label
from ..core.formulas import group, numel
from ..core.specs import Attention, Conv, Held, Linear, Matmul, Norm

if TYPE_CHECKING:
    from ..core.analysis import Analysis, Layer

_COUNT = re.compile(r"^\d{1,100}$", re.ASCII)  # at most 100 digits (costlab.core.sizes.MAX_SIZE_DIGITS)
_FRACTION = re.compile(r"^(\d{1,100}\.\d{0,100}|\.\d{1,100})$", re.ASCII)
_NAME = re.compile(r"^[A-Za-z_][\w.\-]*$")


class FreezeError(CostlabError):
    """A ``--freeze`` value that is not a count, a fraction or a layer name of the target."""


@dataclass(frozen=True)
class Freeze:
    """What to freeze: exactly one of a count, a fraction, name patterns, or the module's own
    ``requires_grad`` flags (``text`` as given)."""

    text: str
    count: int | None = None
    fraction: Fraction | None = None
    name: str | None = None  # the first pattern (kept for callers that read one name)
    patterns: tuple[str, ...] = ()
    #: with ``requires_grad``: trainable parameters per layer name, read from the module
    trainable: Mapping[str, int] | None = None
    requires_grad: bool = False

    def describe(self) -> str:
        if self.count is not None:
            return f"the first {self.count} layers with parameters"
        if self.fraction is not None:
            return f"the first {self.text} of the layers with parameters"
        if self.requires_grad:
            return "the parameters whose requires_grad is False"
        return f"everything before {' or '.join(self.patterns)}"


NOTHING = Freeze("0", count=0)
#: ``--freeze requires_grad``: the module's own flags decide (module targets only).
REQUIRES_GRAD = "requires_grad"
_PATTERN = re.compile(r"^[A-Za-z_*?\[][\w.\-*?\[\]!]*$")


def parse_freeze(value: "str | int | float | Fraction | Freeze") -> Freeze:
    """'40' → count, '0.9' → fraction, 'fc' or 'fc,classifier,head*' → name patterns,
    'requires_grad' → the module's own flags; ints and floats from the Python API too."""
    if isinstance(value, Freeze):
        return value
    if isinstance(value, bool):
        raise FreezeError(f"bad --freeze {value!r}: expected a count, a fraction or a layer name")
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, (float, Fraction)):
        text = repr(float(value)) if isinstance(value, float) else str(float(value))
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise FreezeError(f"bad --freeze {value!r}: expected a count, a fraction or a layer name")
    if _COUNT.match(text):
        return Freeze(text, count=int(text))
    if _FRACTION.match(text):
        fraction = Fraction(text)
        if fraction > 1:
            raise FreezeError(f"bad --freeze {text}: a fraction lies between 0 and 1 "
                              "(a count is written without a decimal point)")
        return Freeze(text, fraction=fraction)
    if text == REQUIRES_GRAD:
        return Freeze(text, requires_grad=True)
    patterns = tuple(part.strip() for part in text.split(","))
    if patterns and all(_PATTERN.match(p) and not p.endswith(".") for p in patterns):
        return Freeze(text, name=patterns[0], patterns=patterns)
    raise FreezeError(f"bad --freeze {text!r}: expected a count (40), a fraction (0.9), layer names or "
                      "patterns (fc, layer4, fc,classifier,head*) or requires_grad")


def with_flags(freeze: Freeze, trainable: Mapping[str, int]) -> Freeze:
    """``--freeze requires_grad`` resolved for one module: its trainable parameters per layer."""
    return Freeze(freeze.text, requires_grad=True, trainable=dict(trainable))


def parametrised(analysis: "Analysis") -> tuple["Layer", ...]:
    """The layers that count for ``--freeze``: those with parameters, in execution order."""
    return tuple(layer for layer in analysis.layers if layer.params)


def _in_block(layer_name: str, name: str) -> bool:
    return layer_name == name or layer_name.startswith(name + ".")


def matches(layer_name: str, pattern: str) -> bool:
    """True when the layer, or a block it is in, matches the glob ``pattern``: 'head' matches
    'head.fc', 'layer4' matches 'layer4.0.conv1' (not 'layer40'), 'head*' matches 'head_drop'."""
    if not any(char in pattern for char in "*?["):
        return _in_block(layer_name, pattern)
    from fnmatch import fnmatchcase

    parts = layer_name.split(".")
    return any(fnmatchcase(".".join(parts[:depth]), pattern) for depth in range(1, len(parts) + 1))


def _block_names(analysis: "Analysis") -> list[str]:
    names: dict[str, None] = {}
    for layer in analysis.layers:
        parts = layer.name.split(".")
        for depth in range(1, len(parts) + 1):
            names[".".join(parts[:depth])] = None
    return list(names)


def frozen_layers(analysis: "Analysis", freeze: Freeze) -> tuple[str, ...]:
    """Names of the layers ``freeze`` freezes in ``analysis`` (a prefix of :func:`parametrised`)."""
    candidates = parametrised(analysis)
    total = len(candidates)
    if freeze.count is not None:
        if freeze.count > total:
            raise FreezeError(f"--freeze {freeze.count}: {analysis.name} has only {total} layers "
                              "with parameters")
        return tuple(layer.name for layer in candidates[:freeze.count])
    if freeze.fraction is not None:
        return tuple(layer.name for layer in candidates[:math.floor(freeze.fraction * total)])
    if freeze.requires_grad:
        if freeze.trainable is None:
            raise FreezeError(f"--freeze {REQUIRES_GRAD}: {analysis.name} is not a module with requires_grad "
                              "flags (a package.module:callable target or an nn.Module)")
        return tuple(layer.name for layer in candidates if freeze.trainable.get(layer.name, layer.params) == 0)
    for index, layer in enumerate(analysis.layers):
        if any(matches(layer.name, pattern) for pattern in freeze.patterns):
            return tuple(before.name for before in analysis.layers[:index] if before.params)
    close = [name for pattern in freeze.patterns
             for name in difflib.get_close_matches(pattern, _block_names(analysis), n=3)]
    hint = f"; did you mean {' or '.join(dict.fromkeys(close))}?" if close else ""
    what = f"called {freeze.patterns[0]!r}" if len(freeze.patterns) == 1 else \
        f"matching any of {', '.join(freeze.patterns)}"
    raise FreezeError(f"--freeze {freeze.text}: {analysis.name} has no layer or block {what}{hint}")


@dataclass(frozen=True)
class LayerTraining:
    """One layer's share of a training step (whole batch)."""

    name: str
    trainable_params: int
    frozen_params: int
    forward_macs: int
    input_grad_macs: int
    weight_grad_macs: int
    forward_ops: int
    backward_ops: int
    input_grad: bool     # computes the gradient of (some of) its inputs
    weight_grad: bool    # computes the gradient of its parameters
    formula: str

    @property
    def train_step_macs(self) -> int:
        return self.forward_macs + self.input_grad_macs + self.weight_grad_macs

    @property
    def train_step_ops(self) -> int:
        return self.forward_ops + self.backward_ops

    @property
    def frozen(self) -> bool:
        return self.frozen_params > 0

    @property
    def grads(self) -> str:
        """Which gradients the layer computes: 'input+weight', 'input', 'weight' or 'none'."""
        parts = [part for part, on in (("input", self.input_grad), ("weight", self.weight_grad)) if on]
        return "+".join(parts) or "none"

    def to_dict(self) -> dict[str, Any]:
        return {"trainable_params": self.trainable_params, "frozen_params": self.frozen_params,
                "train_step_macs": self.train_step_macs, "train_step_ops": self.train_step_ops,
                "grads": self.grads, "train_formula": self.formula}


@dataclass(frozen=True)
class TrainingCost(Feature):
    """A training step of one analysis under one freeze: per layer and in total (the feature of --freeze)."""

    name: ClassVar[str] = "training"

    freeze: Freeze
    frozen: tuple[str, ...]            # names of the frozen layers
    param_layers: int                  # how many layers have parameters
    layers: tuple[LayerTraining, ...]  # one per inference layer, in order

    @property
    def trainable_params(self) -> int:
        return sum(layer.trainable_params for layer in self.layers)

    @property
    def frozen_params(self) -> int:
        return sum(layer.frozen_params for layer in self.layers)

    @property
    def train_step_macs(self) -> int:
        return sum(layer.train_step_macs for layer in self.layers)

    @property
    def train_step_ops(self) -> int:
        return sum(layer.train_step_ops for layer in self.layers)

    @property
    def backward_macs(self) -> int:
        return sum(layer.input_grad_macs + layer.weight_grad_macs for layer in self.layers)

    def by_name(self) -> Mapping[str, LayerTraining]:
        return {layer.name: layer for layer in self.layers}

    def first_trainable(self) -> str | None:
        """The first layer with trainable parameters, or None when everything is frozen."""
        return next((layer.name for layer in self.layers if layer.trainable_params), None)

    def summary(self) -> str:
        """'frozen: 36 of 41 layers with parameters (0.9), conv1 … layer4.0.bn2; trainable from …'."""
        count = len(self.frozen)
        text = f"--freeze {self.freeze.text}: {count} of {self.param_layers} layers with parameters frozen"
        if count:
            text += f" ({self.frozen[0]}" + (f" … {self.frozen[-1]})" if count > 1 else ")")
        first = self.first_trainable()
        text += f"; trainable from {first}" if first else "; nothing trainable (forward only)"
        return text + ". Train step = forward + backward, loss and optimiser update not included."

    def to_dict(self) -> dict[str, Any]:
        """The target-level fields of the JSON contract (``freeze`` describes what was frozen)."""
        return {"trainable_params": self.trainable_params, "frozen_params": self.frozen_params,
                "train_step_macs": self.train_step_macs, "train_step_ops": self.train_step_ops,
                "freeze": {"spec": self.freeze.text, "frozen_layers": len(self.frozen),
                           "param_layers": self.param_layers,
                           "first_trainable": self.first_trainable()}}

    # --- the feature ---

    def json_fields(self, unit: str) -> dict[str, Any]:
        entry = self.to_dict()
        if unit == "flops":
            entry["train_step_flops"] = FLOPS_PER_MAC * self.train_step_macs
        return entry

    def layer_json(self, name: str) -> dict[str, Any]:
        layer = self.by_name().get(name)
        return layer.to_dict() if layer is not None else {}

    @classmethod
    def layer_columns(cls, group: Sequence[Any], unit: str, view: View | None) -> list[Heading]:
        if view is None:
            return [Heading(t) for t in ("trainable_params", "frozen_params",
                                         f"train_step_{unit_label(unit).lower()}", "grads")]
        return [Heading("grads", False, 40), Heading(f"train-step {unit_label(unit)}", True, 75)]

    def layer_cells(self, headings: Sequence[Heading], row: Any, members: Sequence[Any], unit: str,
                    view: View | None) -> list[Any]:
        """Which gradients the row's layers compute ('mixed' when they differ), their train-step
        MACs (and in CSV their trainable and frozen params)."""
        per_name = self.by_name()
        found = [per_name[m.name] for m in members if m.name in per_name]
        if not found:
            return blank(headings)
        grads = {t.grads for t in found}
        kind = grads.pop() if len(grads) == 1 else "mixed"
        step = in_unit(sum(t.train_step_macs for t in found), unit)
        if view is None:
            return [sum(t.trainable_params for t in found), sum(t.frozen_params for t in found), step, kind]
        return [kind, view.count(step)]

    def total_cells(self, headings: Sequence[Heading], unit: str, view: View) -> list[str]:
        return ["", view.count(in_unit(self.train_step_macs, unit))]

    @classmethod
    def side_by_side(cls, group: Sequence[Any], unit: str, view: View | None) -> tuple[list[Heading], list[list[Any]]]:
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

    def headline(self, unit: str, view: View) -> str:
        return (f"train step {view.count(in_unit(self.train_step_macs, unit))} {unit_label(unit)}, "
                f"{view.count(self.trainable_params)} trainable and {view.count(self.frozen_params)} frozen params")

    def table_notes(self, unit: str) -> list[str]:
        return [self.summary()]


def attention_backward_macs(q: tuple[int, ...], k: tuple[int, ...], v: tuple[int, ...],
                            need: tuple[bool, bool, bool]) -> int:
    """Backward MACs of softmax(q·kᵀ)·v with B batch entries, L queries, S keys, widths E and Ev:

    dV = Pᵀ·dO: B·S·L·Ev [v]; dP = dO·Vᵀ: B·L·Ev·S [q or k]; dQ = dS·K: B·L·S·E [q];
    dK = dSᵀ·Q: B·S·L·E [k].
    """
    from ..core.formulas import broadcast

    batch = numel(broadcast([q[:-2], k[:-2], v[:-2]], "attention"))
    length, source, e, ev = q[-2], k[-2], q[-1], v[-1]
    scores = batch * length * source
    need_q, need_k, need_v = need
    return (scores * ev * need_v + scores * ev * (need_q or need_k)
            + scores * e * need_q + scores * e * need_k)


def _layer_training(layer: "Layer", trainable: int, needs: tuple[bool, ...]) -> LayerTraining:
    """A layer's training step with ``trainable`` of its parameters trainable (a layer with some
    parameters trainable computes its weight gradient)."""
    spec, forward = layer.spec, layer.macs
    weight_grad = trainable > 0 and not isinstance(spec, Held)  # held parameters get no gradient
    input_grad = any(needs)
    input_macs = weight_macs = 0
    backward_ops = 0
    if isinstance(spec, (Conv, Linear)):
        input_macs = forward if input_grad else 0
        weight_macs = forward if weight_grad else 0
        if weight_grad and spec.bias:
            backward_ops = layer.activations  # dβ: one add per output element
    elif isinstance(spec, Matmul):
        input_macs = forward * sum(needs)
    elif isinstance(spec, Attention):
        q, k, v = layer.input_shapes
        input_macs = attention_backward_macs(q, k, v, (needs[0], needs[1], needs[2]))
        backward_ops = layer.ops if input_grad else 0
    else:
        backward_ops = layer.ops if input_grad else 0
        if weight_grad and isinstance(spec, Norm):
            backward_ops += 2 * numel(layer.input_shapes[0])  # dγ += g·x̂, dβ += g
        elif weight_grad:
            backward_ops += layer.params  # a parameter of another layer type: one add per element
    terms = [("forward", forward)]
    if input_macs:
        terms.append(("input grad", input_macs))
    if weight_macs:
        terms.append(("weight grad", weight_macs))
    total = forward + input_macs + weight_macs
    if not forward:
        formula = f"ops: {group(layer.ops)} forward + {group(backward_ops)} backward"
    elif all(value == forward for _, value in terms) and len(terms) > 1:
        formula = (f"{len(terms)} × {group(forward)} = {group(total)} "
                   f"({', '.join(label for label, _ in terms)})")
    else:
        formula = " + ".join(f"{group(value)} {label}" for label, value in terms)
        formula += f" = {group(total)}" if len(terms) > 1 else ""
    return LayerTraining(layer.name, trainable, layer.params - trainable, forward, input_macs,
                         weight_macs, layer.ops, backward_ops, input_grad, weight_grad, formula)


def train_step(analysis: "Analysis", freeze: "Freeze | str | int | float" = NOTHING) -> TrainingCost:
    """Price one training step of ``analysis`` with ``freeze`` applied (default: nothing frozen).

    Training-only layers (GoogLeNet's auxiliary heads) are not part of the step.
    """
    freeze = parse_freeze(freeze)
    frozen = frozen_layers(analysis, freeze)
    frozen_set = set(frozen)
    requires_grad: dict[str, bool] = {}
    priced = []
    flags = freeze.trainable if freeze.requires_grad else None
    for layer in analysis.layers:
        needs = tuple(requires_grad.get(name, False) for name in layer.inputs)
        if flags is not None:
            trainable = flags.get(layer.name, layer.params)
        else:
            trainable = 0 if layer.name in frozen_set else layer.params
        priced.append(_layer_training(layer, trainable, needs))
        requires_grad[layer.name] = trainable > 0 or any(needs)
    return TrainingCost(freeze, frozen, len(parametrised(analysis)), tuple(priced))


def with_training(analysis: "Analysis", freeze: "Freeze | str | int | float") -> "Analysis":
    """A copy of ``analysis`` that carries its training step under ``freeze`` (JSON, tables)."""
    return analysis.with_feature(train_step(analysis, freeze))
