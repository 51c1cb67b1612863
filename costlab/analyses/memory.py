"""Memory: what a design holds at inference and in a training step, from liveness over its layers.

Everything here reads only :attr:`Analysis.layers` (each layer's name, the names of the
layers it reads, its output shape and its spec), so presets, expressions and traced
modules are priced alike. No torch. Bytes are elements × the analysis' dtype size
(``DTYPE_BYTES``); indices (max pooling) are int64.

**Storage.** Every layer allocates its output, except those that share their input's
storage: views (flatten, reshape), dropout at inference, identity, and the layers named
in ``inplace`` (activations the model computes in place: ``nn.ReLU(inplace=True)``).
Presets and expressions build every op out of place (as :mod:`costlab.torch_bridge.build`
builds them); for a traced module, the torch bridge names the leaf modules whose
``inplace`` flag is set. Functional in-place ops (``x += y``, ``F.relu_``) are priced
out of place.

**Inference peak** (one forward pass without gradients)::

    live(i) = weights + buffers + inputs + Σ bytes of the storages alive once layer i has
              written its output
    inference peak = max over i of live(i)

A storage is alive from the layer that writes it until the last layer that reads it (or
one of its views) has run, or until the outermost block (a dotted name prefix: a module)
that takes it as an argument has returned, since the block's caller holds its arguments
until then; the network's inputs (the caller holds them) and its output stay alive to the end. Concatenation and the skip of a residual block keep their inputs
alive by this rule alone. For a chain this is weights + inputs + the largest pair of
adjacent activations.

**Training step** (``zero_grad(set_to_none=True)``, forward in train mode, ``loss =
output.sum()``, backward, optimizer step; the steady state, where the optimizer state
already exists)::

    state      = k · trainable bytes   (k = 0 sgd, 1 momentum, 2 adam/adamw; adam adds a
                                        4-byte step count per parameter tensor)
    forward    : weights + buffers + state + inputs + live activations, where a storage an
                 op saves for its backward stays alive until that backward has run
    backward   : the same, walking the layers in reverse: each layer receives the gradient
                 of its output, allocates the gradients of its inputs that need one and of
                 its trainable parameters (kept in .grad), then frees what it saved
    step       : weights + buffers + state + gradients + the update's temporaries
                 (single-tensor Adam, PyTorch's CPU default: 2 × the largest trainable tensor;
                 SGD and momentum: none)
    training peak = the largest of the three

What an op saves for backward is what autograd saves (held in a test with
``torch.autograd.graph.saved_tensors_hooks``): :func:`saved_by`. A layer is in the graph
when its output needs a gradient (costlab.analyses.training: it has trainable parameters or reads
a tensor that needs one); a frozen prefix saves nothing and gets no gradient.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Collection, Sequence

from ..core.errors import CostlabError
from ..core.features import Feature
from ..core.formulas import group, numel
from ..core.graph import DTYPE_BYTES
from ..core.registry import SpecRegistry
from ..core.specs import (ACTIVATIONS, AdaptivePool, Activation, Attention, Concat, Conv, Dropout, Elementwise,
                          Embedding, Flatten, Held, Linear, Matmul, Norm, Pad, Pool, Recurrent, Reduce, Reshape,
                          Upsample)

if TYPE_CHECKING:
    from ..core.analysis import Analysis, Layer
    from .training import Freeze

#: Optimizer state tensors per trainable parameter element (and the aliases the CLI takes).
OPTIMIZERS: dict[str, int] = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}
#: Bytes of Adam's per-tensor step count (a float32 scalar on CPU).
ADAM_STEP_BYTES = 4
INDEX_BYTES = 8  # int64: max-pooling indices
#: Activations whose backward reads their output (the rest read their input).
SAVES_OUTPUT = frozenset(kind for kind, a in ACTIVATIONS.items() if a.saves_output)  # from the catalog
#: Optimizer implementations: single-tensor (CPU default) or foreach (CUDA default).
IMPLEMENTATIONS = ("single", "foreach")


class MemoryModelError(CostlabError):
    """An optimizer or option the memory model does not know."""


def parse_optimizer(name: str) -> str:
    """'sgd', 'momentum', 'adam' or 'adamw' (case-insensitive) → its canonical name."""
    key = str(name).strip().lower()
    if key not in OPTIMIZERS:
        raise MemoryModelError(f"bad --optimizer {name!r}: expected one of {', '.join(OPTIMIZERS)}")
    return key


@dataclass(frozen=True)
class LayerMemory:
    """One layer's share of memory, in bytes (whole batch).

    ``inference_live``: everything alive once the layer has written its output at inference
    (weights included); ``train_live``: the same in the training forward (saved activations
    and optimizer state included); ``saved``: bytes its backward keeps that no other tensor
    holds (new storages: its output when no one else keeps it, pooling indices, norm
    statistics, dropout masks); a storage kept for backward counts at the layer that wrote it.
    """

    name: str
    output_bytes: int
    shares_input: bool
    inference_live: int
    train_live: int
    saved: int
    grads: int

    def to_dict(self) -> dict[str, Any]:
        return {"live_bytes": self.inference_live, "train_live_bytes": self.train_live,
                "saved_bytes": self.saved, "grad_bytes": self.grads}


@dataclass(frozen=True)
class Memory(Feature):
    """What a design holds, in bytes: weights, the inference peak, the training-step peak (the
    feature of --memory)."""

    name: ClassVar[str] = "memory"

    dtype: str
    optimizer: str
    implementation: str
    weights: int              # parameters
    buffers: int
    inputs: int               # the network's inputs (held by the caller)
    inference_peak: int
    inference_peak_at: str    # the layer at which the inference peak occurs
    trainable: int            # bytes of trainable parameters
    gradients: int            # = trainable
    optimizer_state: int
    saved: int                # activations saved for backward at the end of the forward pass
    forward_peak: int
    backward_peak: int
    step_peak: int
    training_peak: int
    training_peak_at: str     # "forward <layer>", "backward <layer>" or "optimizer step"
    layers: tuple[LayerMemory, ...]
    inplace: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    formulas: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    def by_name(self) -> dict[str, LayerMemory]:
        return {layer.name: layer for layer in self.layers}

    def to_dict(self) -> dict[str, Any]:
        """The target's ``memory`` entry of the JSON contract (bytes)."""
        entry: dict[str, Any] = {
            "dtype": self.dtype, "optimizer": self.optimizer, "implementation": self.implementation,
            "weights": self.weights, "buffers": self.buffers, "inputs": self.inputs,
            "inference_peak": self.inference_peak, "inference_peak_at": self.inference_peak_at,
            "trainable": self.trainable, "gradients": self.gradients,
            "optimizer_state": self.optimizer_state, "saved_activations": self.saved,
            "forward_peak": self.forward_peak, "backward_peak": self.backward_peak,
            "step_peak": self.step_peak, "training_peak": self.training_peak,
            "training_peak_at": self.training_peak_at, "formulas": dict(self.formulas),
        }
        if self.inplace:
            entry["inplace"] = list(self.inplace)
        if self.notes:
            entry["notes"] = list(self.notes)
        return entry

    # --- the feature ---

    def json_fields(self, unit: str) -> dict[str, Any]:
        return {"memory": self.to_dict()}

    def layer_json(self, name: str) -> dict[str, Any]:
        layer = self.by_name().get(name)
        return layer.to_dict() if layer is not None else {}


# --- per-op rules ----------------------------------------------------------------------------

def shares_input(layer: "Layer", inplace: Collection[str], training: bool) -> bool:
    """Whether the layer's output is its first input's storage (a view, identity or in place)."""
    spec = layer.spec
    if not layer.inputs or isinstance(spec, Held):
        return False
    if isinstance(spec, (Flatten, Reshape)):
        return True
    if isinstance(spec, Dropout):
        return not training or spec.p == 0
    if isinstance(spec, Activation):
        return spec.kind == "identity" or layer.name in inplace
    return False


def param_tensors(layer: "Layer") -> int:
    """How many parameter tensors the layer holds (Adam keeps a step count for each)."""
    spec = layer.spec
    if not layer.params:
        return 0
    if isinstance(spec, (Conv, Linear)):
        return 1 + int(spec.bias)
    if isinstance(spec, Norm):
        return 2
    return 1


#: What one layer saves for its backward: (indices of inputs it keeps, whether it keeps its
#: output, bytes of new tensors it saves).
Saved = tuple[tuple[int, ...], bool, int]
#: ``(layer, which inputs need grad, item size, cuda) → Saved``.
SavedRule = Callable[["Layer", Sequence[bool], int, bool], Saved]

#: Spec type → what autograd saves for its backward; one ``@SAVED_RULES.register`` per spec type,
#: a duplicate refused.
SAVED_RULES: SpecRegistry[SavedRule] = SpecRegistry("saved-tensor rule")


def saved_by(layer: "Layer", needs: Sequence[bool], itemsize: int,
             cuda: bool = False) -> Saved:
    """What autograd saves for this layer's backward: (indices of inputs it keeps, whether it
    keeps its output, bytes of new tensors it saves), by the rule of its spec type.

    conv, linear: the input (the weight is a parameter); matmul: each operand; attention
    (CPU flash kernel): q, k, v, the output and the log-sum-exp (one value per query row);
    batch norm: the input and mean and 1/σ per channel; layer/group/instance norm: the input
    and mean and 1/σ per normalised group; ReLU, sigmoid, tanh, softmax: the output; other
    activations: the input; max pooling: the input and int64 indices of its output;
    average pooling: the input (none for a global average, computed as a mean); add, sub,
    concat, views, pad, upsample, sum and mean: nothing; mul/div: each tensor operand;
    amax/amin: input and output; dropout in training: its mask (the dtype on CPU, one byte
    on CUDA); embedding: its indices; LSTM/GRU/RNN: the input (a lower bound, see
    :func:`_recurrent_saves`).
    """
    return SAVED_RULES[type(layer.spec)](layer, needs, itemsize, cuda)


@SAVED_RULES.register(Conv, Linear, Embedding)
def _saves_input(layer: "Layer", needs: Sequence[bool], itemsize: int, cuda: bool) -> Saved:
    return (0,), False, 0


@SAVED_RULES.register(Matmul)
def _matmul_saves(layer: "Layer", needs: Sequence[bool], itemsize: int, cuda: bool) -> Saved:
    return tuple(range(len(layer.input_shapes))), False, 0


@SAVED_RULES.register(Attention)
def _attention_saves(layer: "Layer", needs: Sequence[bool], itemsize: int, cuda: bool) -> Saved:
    return (0, 1, 2), True, numel(layer.input_shapes[0][:-1]) * itemsize


@SAVED_RULES.register(Norm)
def _norm_saves(layer: "Layer", needs: Sequence[bool], itemsize: int, cuda: bool) -> Saved:
    spec, shapes = layer.spec, layer.input_shapes
    if spec.kind == "batch":
        return (0,), False, 2 * shapes[0][1] * itemsize
    if spec.kind == "layer":
        width = len(spec.normalized_shape) or 1
        return (0,), False, 2 * numel(shapes[0][:-width]) * itemsize
    groups = spec.num_groups if spec.kind == "group" else shapes[0][1]
    return (0,), False, 2 * shapes[0][0] * groups * itemsize


@SAVED_RULES.register(Activation)
def _activation_saves(layer: "Layer", needs: Sequence[bool], itemsize: int, cuda: bool) -> Saved:
    if layer.spec.kind == "identity":
        return (), False, 0
    return ((), True, 0) if layer.spec.kind in SAVES_OUTPUT else ((0,), False, 0)


@SAVED_RULES.register(Pool)
def _pool_saves(layer: "Layer", needs: Sequence[bool], itemsize: int, cuda: bool) -> Saved:
    return (0,), False, (numel(layer.output) * INDEX_BYTES if layer.spec.mode == "max" else 0)


@SAVED_RULES.register(AdaptivePool)
def _adaptive_pool_saves(layer: "Layer", needs: Sequence[bool], itemsize: int, cuda: bool) -> Saved:
    spec = layer.spec
    if spec.mode == "avg":
        return ((), False, 0) if all(o == 1 for o in spec.output_size) else ((0,), False, 0)
    return (0,), False, numel(layer.output) * INDEX_BYTES


@SAVED_RULES.register(Elementwise)
def _elementwise_saves(layer: "Layer", needs: Sequence[bool], itemsize: int, cuda: bool) -> Saved:
    spec, shapes = layer.spec, layer.input_shapes
    if spec.kind in ("mul", "div") and len(shapes) > 1:
        return tuple(i for i in range(len(shapes)) if any(needs[j] for j in range(len(shapes)) if j != i)
                     or spec.kind == "div"), spec.kind == "div", 0
    return (), False, 0


@SAVED_RULES.register(Reduce)
def _reduce_saves(layer: "Layer", needs: Sequence[bool], itemsize: int, cuda: bool) -> Saved:
    return ((0,), True, 0) if layer.spec.kind in ("amax", "amin") else ((), False, 0)


@SAVED_RULES.register(Dropout)
def _dropout_saves(layer: "Layer", needs: Sequence[bool], itemsize: int, cuda: bool) -> Saved:
    return (), False, (numel(layer.output) * (1 if cuda else itemsize) if layer.spec.p > 0 else 0)


@SAVED_RULES.register(Concat, Flatten, Reshape, Pad, Upsample)
def _saves_nothing(layer: "Layer", needs: Sequence[bool], itemsize: int, cuda: bool) -> Saved:
    """Copies, views and interpolation: their backward needs only shapes."""
    return (), False, 0


SAVED_RULES.not_applicable(Held, "parameters a forward pass never uses are not in the graph "
                                 "(memory drops held layers before its walk)")


@SAVED_RULES.register(Recurrent)
def _recurrent_saves(layer: "Layer", needs: Sequence[bool], itemsize: int, cuda: bool) -> Saved:
    """The input, which every LSTM/GRU/RNN kernel keeps for its weight gradient (held by
    saved_tensors_hooks). The per-step gates and states the kernels keep besides (PyTorch's CPU
    LSTM keeps a oneDNN workspace, GRU and RNN their cells' tensors) depend on the kernel and are not
    priced: the saved bytes of a recurrent layer are a lower bound."""
    return (0,), False, 0


def _grad_is_view(layer: "Layer") -> bool:
    """Backward passes the output gradient on without allocating (views, add, concat, identity)."""
    spec = layer.spec
    if isinstance(spec, (Flatten, Reshape, Concat)):
        return True
    if isinstance(spec, Activation) and spec.kind == "identity":
        return True
    return isinstance(spec, Elementwise) and spec.kind == "add"


# --- the model ---------------------------------------------------------------------------------

def _lifetimes(layers: Sequence["Layer"]) -> dict[str, int]:
    """The index of the last layer during which each tensor is held: its last reader, or the end of the
    outermost block (a dotted name prefix) that takes it from outside, whose caller holds its
    arguments until it returns."""
    last: dict[str, int] = {}
    block_end: dict[str, int] = {}
    for index, layer in enumerate(layers):
        parts = layer.name.split(".")
        for depth in range(1, len(parts)):
            block_end[".".join(parts[:depth])] = index
    for index, layer in enumerate(layers):
        last.setdefault(layer.name, index)
        parts = layer.name.split(".")
        for name in layer.inputs:
            end = index
            for depth in range(1, len(parts)):
                block = ".".join(parts[:depth])
                if not name.startswith(block + "."):  # the block takes it from outside
                    end = max(end, block_end[block])
                    break
            last[name] = max(last.get(name, index), end)
    if layers:
        last[layers[-1].name] = len(layers)  # the output is returned: alive to the end
    return last


def memory(analysis: "Analysis", optimizer: str = "adam", freeze: "Freeze | str | int | float | None" = None,
           inplace: Collection[str] = (), implementation: str = "single") -> Memory:
    """Weights, inference peak and training-step peak of ``analysis`` (bytes), per layer and in total.

    ``optimizer``: sgd, momentum, adam or adamw; ``freeze`` as ``--freeze`` (default: the
    analysis' own training freeze, else nothing); ``inplace``: names of layers computed in
    place; ``implementation``: 'single' (PyTorch's CPU defaults: single-tensor optimizers) or
    'foreach' (its CUDA defaults: foreach optimizers, one-byte dropout masks).
    """
    from .training import NOTHING, train_step

    optimizer = parse_optimizer(optimizer)
    if implementation not in IMPLEMENTATIONS:
        raise MemoryModelError(f"unknown optimizer implementation {implementation!r}")
    itemsize = DTYPE_BYTES[analysis.dtype]
    layers = tuple(layer for layer in analysis.layers if not isinstance(layer.spec, Held))
    inplace = frozenset(inplace)
    produced = {layer.name for layer in analysis.layers}

    weights = analysis.params * itemsize
    buffers = analysis.buffers * itemsize
    external: dict[str, int] = {}
    for layer in layers:
        for name, shape in zip(layer.inputs, layer.input_shapes):
            if name not in produced:
                external.setdefault(name, numel(shape) * itemsize)
    inputs = sum(external.values())

    # --- inference ---
    inference_live, inference_peak, inference_at = _forward(layers, inplace, itemsize,
                                                            weights + buffers + inputs)
    if analysis.training is not None and freeze is None:
        cost = analysis.training
    else:
        cost = train_step(analysis, freeze if freeze is not None else NOTHING)
    per_layer = cost.by_name()
    needs: dict[str, bool] = {}
    for layer in analysis.layers:
        t = per_layer[layer.name]
        needs[layer.name] = t.trainable_params > 0 and not isinstance(layer.spec, Held) or \
            any(needs.get(name, False) for name in layer.inputs)

    trainable_layers = [(layer, per_layer[layer.name].trainable_params) for layer in analysis.layers
                        if per_layer[layer.name].trainable_params]
    trainable = sum(params for _, params in trainable_layers) * itemsize
    state = OPTIMIZERS[optimizer] * trainable
    if optimizer in ("adam", "adamw"):
        state += ADAM_STEP_BYTES * sum(param_tensors(layer) for layer, _ in trainable_layers)
    base = weights + buffers + inputs + state

    # --- training forward: what each layer saves ---
    saves: Saves = {}
    for layer in layers:
        if needs[layer.name]:
            saves[layer.name] = saved_by(layer, [needs.get(n, False) for n in layer.inputs], itemsize,
                                         cuda=implementation == "foreach")
    train_live, forward_peak, forward_at, storage, saved_extra, keep = _train_forward(
        layers, inplace, itemsize, base, saves)
    saved_total = sum(saved_extra.values()) + sum(storage[s][1] for s in keep)

    # --- backward ---
    grads_of = {layer.name: per_layer[layer.name].trainable_params * itemsize for layer in layers}
    backward_peak, backward_at = _backward(layers, needs, itemsize, base, saves, storage, keep,
                                           saved_extra, grads_of)
    if optimizer in ("adam", "adamw"):
        largest = max((_largest_tensor(layer, params) for layer, params in trainable_layers), default=0)
        temporaries = (trainable if implementation == "foreach" else 2 * largest * itemsize)
    else:
        temporaries = 0
    step_peak = base + trainable + temporaries if trainable else base
    candidates = [(forward_peak, f"forward {forward_at}"), (backward_peak, f"backward {backward_at}"),
                  (step_peak, "optimizer step")]
    training_peak, training_at = max(candidates, key=lambda c: c[0])

    layer_entries = []
    for layer in layers:
        s = storage.get(layer.name)
        layer_entries.append(LayerMemory(
            layer.name, numel(layer.output) * itemsize, shares_input(layer, inplace, False),
            inference_live[layer.name], train_live[layer.name],
            saved_extra.get(layer.name, 0) + (s[1] if s is not None and s[0] == layer.name and layer.name in keep
                                              else 0),
            grads_of[layer.name]))
    notes = []
    if analysis.unsupported:
        notes.append(f"{len(analysis.unsupported)} ops were not priced; their tensors are missing "
                     "from the liveness (the peaks are a lower bound)")
    formulas = {
        "weights": f"{group(analysis.params)} params × {itemsize} B = {group(weights)} B",
        "inference_peak": (f"at {inference_at}: {group(weights)} weights + {group(buffers)} buffers + "
                           f"{group(inputs)} input + {group(inference_peak - weights - buffers - inputs)} "
                           f"live activations = {group(inference_peak)} B"),
        "optimizer_state": (f"{OPTIMIZERS[optimizer]} × {group(trainable)} trainable B"
                            + (f" + {ADAM_STEP_BYTES} B × {sum(param_tensors(l) for l, _ in trainable_layers)}"
                               " step counts" if optimizer in ("adam", "adamw") else "")
                            + f" = {group(state)} B"),
        "step_peak": (f"{group(weights)} weights + {group(buffers)} buffers + {group(inputs)} input + "
                      f"{group(state)} state + {group(trainable)} grads + {group(temporaries)} update "
                      f"temporaries = {group(step_peak)} B"),
        "training_peak": f"max(forward {group(forward_peak)}, backward {group(backward_peak)}, "
                         f"step {group(step_peak)}) = {group(training_peak)} B ({training_at})",
    }
    return Memory(analysis.dtype, optimizer, implementation, weights, buffers, inputs, inference_peak,
                  inference_at, trainable, trainable, state, saved_total, forward_peak, backward_peak,
                  step_peak, training_peak, training_at, tuple(layer_entries),
                  tuple(sorted(inplace & produced)), tuple(notes), formulas)


def _largest_tensor(layer: "Layer", params: int) -> int:
    """Elements of the largest parameter tensor of a layer with ``params`` trainable elements."""
    spec = layer.spec
    if isinstance(spec, (Conv, Linear)) and spec.bias:
        out = spec.out_channels if isinstance(spec, Conv) else spec.out_features
        return params - out
    if isinstance(spec, Norm):
        return params // 2
    return params


def _forward(layers: Sequence["Layer"], inplace: Collection[str], itemsize: int,
             base: int) -> tuple[dict[str, int], int, str]:
    """Inference: live bytes once each layer has written its output; the peak and where it is.
    (A view of the network's input shares the input's storage, already in ``base``.)"""
    last = _lifetimes(layers)
    owner: dict[str, str] = {}
    ends: dict[str, int] = {}
    sizes: dict[str, int] = {}
    for index, layer in enumerate(layers):
        if shares_input(layer, inplace, False) and layer.inputs[0] in owner:
            owner[layer.name] = owner[layer.inputs[0]]
        else:
            owner[layer.name] = layer.name
            sizes[layer.name] = 0 if shares_input(layer, inplace, False) else numel(layer.output) * itemsize
        root = owner[layer.name]
        ends[root] = max(ends.get(root, index), last.get(layer.name, index))
    per_layer: dict[str, int] = {}
    peak, at = base, "input"
    alive: dict[str, int] = {}
    for index, layer in enumerate(layers):
        root = owner[layer.name]
        if root == layer.name:
            alive[root] = sizes[root]
        total = base + sum(alive.values())
        per_layer[layer.name] = total
        if total > peak:
            peak, at = total, layer.name
        for name in [r for r in alive if ends[r] <= index]:
            del alive[name]
    return per_layer, peak, at


Saves = dict[str, tuple[tuple[int, ...], bool, int]]  # layer → what saved_by returns for it


def _train_forward(layers: Sequence["Layer"], inplace: Collection[str], itemsize: int, base: int,
                   saves: Saves) -> tuple[dict[str, int], int, str, dict[str, tuple[str, int]],
                                          dict[str, int], set[str]]:
    """The training forward: storages a backward saves stay alive past their last forward use.

    Returns (live per layer, peak, where, storage {tensor: (root, bytes)}, new saved bytes per
    layer, the set of roots kept for backward)."""
    last = _lifetimes(layers)
    storage: dict[str, tuple[str, int]] = {}
    ends: dict[str, int] = {}
    for index, layer in enumerate(layers):
        if shares_input(layer, inplace, True) and layer.inputs[0] in storage:
            storage[layer.name] = storage[layer.inputs[0]]
        else:
            shared = shares_input(layer, inplace, True)  # a view of the network's input: no new bytes
            storage[layer.name] = (layer.name, 0 if shared else numel(layer.output) * itemsize)
        root = storage[layer.name][0]
        ends[root] = max(ends.get(root, index), last.get(layer.name, index))
    keep: set[str] = set()
    for layer in layers:
        if layer.name in saves:
            keep.update(_kept_roots(layer, saves, storage))
    alive: dict[str, int] = {}
    extra = 0
    saved_extra: dict[str, int] = {}
    per_layer: dict[str, int] = {}
    peak, at = base, "input"
    for index, layer in enumerate(layers):
        root, size = storage[layer.name]
        if root == layer.name:
            alive[root] = size
        if layer.name in saves and saves[layer.name][2]:
            saved_extra[layer.name] = saves[layer.name][2]
            extra += saves[layer.name][2]
        total = base + sum(alive.values()) + extra
        per_layer[layer.name] = total
        if total > peak:
            peak, at = total, layer.name
        for name in [r for r in alive if ends[r] <= index and r not in keep]:
            del alive[name]
    return per_layer, peak, at, storage, saved_extra, keep


def _kept_roots(layer: "Layer", saves: Saves, storage: dict[str, tuple[str, int]]) -> list[str]:
    """The storages a layer's saved tensors hold for its backward: its kept inputs', its output's."""
    kept_inputs, keeps_output, _ = saves[layer.name]
    roots = [storage[layer.inputs[i]][0] for i in kept_inputs if layer.inputs[i] in storage]
    return roots + ([storage[layer.name][0]] if keeps_output else [])


def _backward(layers: Sequence["Layer"], needs: dict[str, bool], itemsize: int, base: int,
              saves: Saves, storage: dict[str, tuple[str, int]], keep: set[str],
              saved_extra: dict[str, int], grads_of: dict[str, int]) -> tuple[int, str]:
    """Walk the layers in reverse; the peak of live bytes and the layer where it is."""
    # which layers (in backward order) still hold each kept storage
    holders: dict[str, set[str]] = {root: set() for root in keep}
    for layer in layers:
        if layer.name in saves:
            for root in _kept_roots(layer, saves, storage):
                holders[root].add(layer.name)
    kept = {root: storage[root][1] if root in storage else 0 for root in keep}
    # the output (the loss reads it) is freed after the sum unless saved
    extra = sum(saved_extra.values())
    param_grads = 0
    pending: dict[str, str] = {}  # tensor → the key of its gradient so far
    grad_storage: dict[str, int] = {}  # live gradient tensors: key → bytes
    peak, at = base + sum(kept.values()) + extra, "loss"
    sizes: dict[str, int] = {}
    fresh: set[str] = set()  # gradient tensors that own their storage alone (can be added into)
    key_counter = 0
    for layer in reversed(layers):
        if not needs.get(layer.name, False):
            continue
        incoming = pending.pop(layer.name, None)  # grad of the output: a key in grad_storage
        new_keys: list[tuple[str, str]] = []
        for name, shape in zip(layer.inputs, layer.input_shapes):
            sizes[name] = numel(shape) * itemsize
            if not needs.get(name, False) or any(name == seen for seen, _ in new_keys):
                continue
            if _grad_is_view(layer) and incoming is not None:
                key = incoming  # passed on as it is, or as views of it: no longer one owner's
                fresh.discard(key)
            else:
                key_counter += 1
                key = f"g{key_counter}"
                grad_storage[key] = sizes[name]
                fresh.add(key)
            new_keys.append((name, key))
        param_grads += grads_of[layer.name]
        total = (base + sum(kept.values()) + extra + param_grads
                 + sum(grad_storage.values()))
        if total > peak:
            peak, at = total, layer.name
        # accumulate into the buffers of the inputs
        for name, key in new_keys:
            if name in pending:
                # a second gradient for a tensor read twice (autograd's InputBuffer): added in place
                # into whichever of the two is a fresh tensor no one else holds, else summed anew
                previous = pending[name]
                users = list(pending.values())
                if previous in fresh and users.count(previous) == 1:
                    pending[name] = previous
                elif key in fresh and key not in users and key != incoming:
                    pending[name] = key
                else:
                    key_counter += 1
                    summed = f"g{key_counter}"
                    grad_storage[summed] = sizes[name]
                    fresh.add(summed)
                    total = base + sum(kept.values()) + extra + param_grads + sum(grad_storage.values())
                    if total > peak:
                        peak, at = total, layer.name
                    pending[name] = summed
                _release(grad_storage, pending, previous, incoming)
                _release(grad_storage, pending, key, incoming)
            else:
                pending[name] = key
        # free what this layer saved and its output gradient
        extra -= saved_extra.get(layer.name, 0)
        for root, names in holders.items():
            names.discard(layer.name)
        for root in [r for r, names in holders.items() if not names and r in kept]:
            del kept[root]
        if incoming is not None and incoming not in pending.values():
            grad_storage.pop(incoming, None)
    return peak, at


def _release(grad_storage: dict[str, int], pending: dict[str, str], key: str, incoming: str | None) -> None:
    if key not in pending.values() and key != incoming:
        grad_storage.pop(key, None)


def with_memory(analysis: "Analysis", optimizer: str = "adam", inplace: Collection[str] = (),
                implementation: str = "single") -> "Analysis":
    """A copy of ``analysis`` carrying its memory (``analysis.memory``)."""
    return analysis.with_feature(memory(analysis, optimizer, inplace=inplace, implementation=implementation))
