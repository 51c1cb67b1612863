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
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping

from ..core.errors import CostlabError
from ..core.features import FLOPS_PER_MAC, Feature
from ..core.formulas import group, numel, recurrent_batch_steps
from ..core.registry import SpecRegistry
from ..core.specs import (RECURRENT_GATES, AdaptivePool, Activation, Attention, Concat, Conv, Dropout, Elementwise,
                          Embedding, Flatten, Held, Linear, Matmul, Norm, Pad, Pool, Recurrent, Reduce, Reshape,
                          Upsample)

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


@dataclass(frozen=True)
class Backward:
    """A layer's backward: MACs of its input and weight gradients, its other ops, and whether it
    computes its weight gradient."""

    input_macs: int = 0
    weight_macs: int = 0
    ops: int = 0
    weight_grad: bool = False


#: ``(layer, trainable parameters, which inputs need grad) → Backward``.
TrainingRule = Callable[["Layer", int, tuple[bool, ...]], Backward]

#: Spec type → its training rule; one ``@TRAINING_RULES.register`` per spec type, a duplicate refused.
TRAINING_RULES: SpecRegistry[TrainingRule] = SpecRegistry("training rule")


@TRAINING_RULES.register(Conv, Linear)
def _dense_backward(layer: "Layer", trainable: int, needs: tuple[bool, ...]) -> Backward:
    """Input gradient F (the transposed product) when the input needs grad, weight gradient F
    when trainable; a trainable bias adds dβ, one add per output element."""
    weight_grad = trainable > 0
    bias = weight_grad and layer.spec.bias  # type: ignore[union-attr]
    return Backward(layer.macs if any(needs) else 0, layer.macs if weight_grad else 0,
                    layer.activations if bias else 0, weight_grad)


@TRAINING_RULES.register(Matmul)
def _matmul_backward(layer: "Layer", trainable: int, needs: tuple[bool, ...]) -> Backward:
    """F once per operand that needs grad."""
    return Backward(layer.macs * sum(needs), 0, 0, trainable > 0)


@TRAINING_RULES.register(Attention)
def _attention_backward(layer: "Layer", trainable: int, needs: tuple[bool, ...]) -> Backward:
    """The products of :func:`attention_backward_macs`; the softmax's ops again when an input needs grad."""
    q, k, v = layer.input_shapes
    return Backward(attention_backward_macs(q, k, v, (needs[0], needs[1], needs[2])), 0,
                    layer.ops if any(needs) else 0, trainable > 0)


@TRAINING_RULES.register(Norm)
def _norm_backward(layer: "Layer", trainable: int, needs: tuple[bool, ...]) -> Backward:
    """The forward ops again when the input needs grad; dγ += g·x̂, dβ += g when trainable."""
    weight_grad = trainable > 0
    return Backward(0, 0, (layer.ops if any(needs) else 0)
                    + (2 * numel(layer.input_shapes[0]) if weight_grad else 0), weight_grad)


@TRAINING_RULES.register(Activation, Pool, AdaptivePool, Elementwise, Upsample, Concat, Flatten, Reshape,
                         Dropout, Embedding, Reduce, Pad)
def _ops_backward(layer: "Layer", trainable: int, needs: tuple[bool, ...]) -> Backward:
    """No products: the forward ops again when an input needs grad; a trainable parameter
    (PReLU's slope, an embedding's table) one add per element."""
    weight_grad = trainable > 0
    return Backward(0, 0, (layer.ops if any(needs) else 0) + (layer.params if weight_grad else 0), weight_grad)


@TRAINING_RULES.register(Held)
def _held_backward(layer: "Layer", trainable: int, needs: tuple[bool, ...]) -> Backward:
    """Parameters the forward pass never uses get no gradient; nothing runs."""
    return Backward()


def recurrent_backward_macs(spec: Recurrent, shape: tuple[int, ...], input_grad: bool,
                            weight_grad: bool) -> tuple[int, int]:
    """(input-gradient MACs, weight-gradient MACs) of an LSTM/GRU/RNN stack on input ``shape``.

    Per batch entry, layer l and direction, over T steps, with the products of the forward
    (costlab.core.formulas.recurrent_cost) A_x = G·H·I_l (input), A_h = G·H·R (hidden state),
    A_p = P·H (LSTM projection)::

        weight grad = T·(A_x + A_h + A_p)                     when the weights are trainable
        input grad  = T·A_x · [x_l needs grad]                 dx_l = Wᵢᵀ·dgates
                    + ((T − 1)·A_h + T·A_p) · [state active]   dh_(t−1) = W_hᵀ·dgates for t ≥ 1,
                                                               d(o·tanh c) = W_rᵀ·dh each step

    The state is active (its gradient flows) when the weights are trainable or x_l needs grad; the
    initial state h₀ is zeros and gets none. x_0 is the layer's input; a deeper layer's input needs
    grad when the state of the layer below is active.
    """
    batch, steps = recurrent_batch_steps(spec, shape)
    g, h, p = RECURRENT_GATES[spec.mode], spec.hidden_size, spec.proj_size
    r = p or h
    d = 2 if spec.bidirectional else 1
    input_macs = weight_macs = 0
    needs = input_grad
    for layer in range(spec.num_layers):
        size = spec.input_size if layer == 0 else d * r
        a_x, a_h, a_p = g * h * size, g * h * r, p * h
        active = weight_grad or needs
        if weight_grad:
            weight_macs += d * steps * (a_x + a_h + a_p)
        input_macs += d * ((steps * a_x if needs else 0) + ((steps - 1) * a_h + steps * a_p if active else 0))
        needs = active
    return batch * input_macs, batch * weight_macs


@TRAINING_RULES.register(Recurrent)
def _recurrent_backward(layer: "Layer", trainable: int, needs: tuple[bool, ...]) -> Backward:
    """:func:`recurrent_backward_macs`; the cells' element-wise ops (gates, state update, bias adds,
    whose gradients are the bias gradients' sums) again when the state is active."""
    weight_grad = trainable > 0
    input_macs, weight_macs = recurrent_backward_macs(layer.spec, layer.input_shapes[0],  # type: ignore[arg-type]
                                                      any(needs), weight_grad)
    return Backward(input_macs, weight_macs, layer.ops if weight_grad or any(needs) else 0, weight_grad)


def _layer_training(layer: "Layer", trainable: int, needs: tuple[bool, ...]) -> LayerTraining:
    """A layer's training step with ``trainable`` of its parameters trainable (a layer with some
    parameters trainable computes its weight gradient), by its spec type's training rule."""
    forward = layer.macs
    backward = TRAINING_RULES[type(layer.spec)](layer, trainable, needs)
    input_macs, weight_macs, backward_ops = backward.input_macs, backward.weight_macs, backward.ops
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
                         weight_macs, layer.ops, backward_ops, any(needs), backward.weight_grad, formula)


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
