"""The cost model: one pure function per spec type, from input shapes to a :class:`Cost`.

Each function takes a spec and the shapes of its inputs (batch axis first) and returns
the output shape, the MACs (conv, linear, matmul only), parameters, buffers, the other
arithmetic (``ops``) by the rule its docstring states, and the MAC formula with its
numbers substituted. No function here imports torch or allocates a tensor.

:data:`FORMULAS` maps each spec type to its function (each registered by ``@FORMULAS.register``,
a duplicate refused); :func:`cost_of` dispatches on it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable, Sequence

from .errors import SpecError
from .registry import SpecRegistry
from .specs import (ACTIVATION_OPS, RECURRENT_GATES, UPSAMPLE_OPS, AdaptivePool, Activation, Attention, Concat,
                    Conv, Dropout, Elementwise, Embedding, Flatten, Held, Linear, Matmul, Norm, Recurrent,
                    Pad, Pool, Reduce, Reshape, Shape, Spec, Upsample)


FormulaFn = Callable[[Spec, Sequence[Shape]], "Cost"]

#: Spec type → its formula: a new layer type is a new ``@FORMULAS.register(SpecType)`` function.
FORMULAS: SpecRegistry[FormulaFn] = SpecRegistry("formula")


@dataclass(frozen=True)
class Cost:
    """What one layer costs on one input: counts for the whole batch."""

    output: Shape
    macs: int = 0
    params: int = 0
    buffers: int = 0
    ops: int = 0
    formula: str = ""


def numel(shape: Sequence[int]) -> int:
    """Number of elements of a shape (1 for a scalar)."""
    return math.prod(shape)


def group(n: int) -> str:
    """12443648 → '12,443,648'."""
    return f"{n:,}"


def dot(factors: Sequence[int]) -> str:
    """(5, 5, 192) → '5·5·192'."""
    return "·".join(str(f) for f in factors) if factors else "1"


def shape_text(shape: Sequence[int]) -> str:
    """A per-sample shape for messages: (1, 64, 56, 56) → '64×56×56'."""
    body = shape[1:] if len(shape) > 1 else shape
    return "×".join(str(n) for n in body) or "scalar"


def _batch_prefix(batch: int) -> str:
    return f"{batch} × " if batch != 1 else ""


def _one_input(name: str, inputs: Sequence[Shape]) -> Shape:
    if len(inputs) != 1:
        raise SpecError(f"{name}: takes one input, got {len(inputs)}")
    return inputs[0]


def _elementwise_ops(per_element: int, shape: Shape, what: str) -> tuple[int, str]:
    """ops = per_element × elements, with its formula: 'ops: 2 × 64·112·112 = 1,605,632'."""
    ops = per_element * numel(shape)
    body = shape[1:] if len(shape) > 1 else shape
    batch = shape[0] if len(shape) > 1 else 1
    return ops, f"{what}: {_batch_prefix(batch)}{per_element} × {dot(body)} = {group(ops)}"


# --- convolution and pooling geometry ------------------------------------------------

def window_output(size: int, kernel: int, stride: int, pad_total: int, dilation: int,
                  ceil_mode: bool, owner: str, axis_pad_left: int) -> int:
    """Outputs along one axis: ⌊(n + pad − d(k−1) − 1) / s⌋ + 1 (⌈…⌉ with ceil mode).

    With ceil mode the last window must start inside the input or its left padding,
    as in PyTorch.
    """
    span = dilation * (kernel - 1) + 1
    padded = size + pad_total
    if span > padded:
        raise SpecError(f"{owner}: kernel {kernel}"
                        + (f" (dilated span {span})" if dilation != 1 else "")
                        + f" is larger than the padded input {padded} ({size} + {pad_total})")
    if ceil_mode:
        out = -(-(padded - span) // stride) + 1
        if (out - 1) * stride >= size + axis_pad_left:
            out -= 1
        return out
    return (padded - span) // stride + 1


def _spatial(shape: Shape, ndim: int, owner: str) -> tuple[int, int, tuple[int, ...]]:
    if len(shape) != ndim + 2:
        axes = "×".join(["C"] + ["L", "H×W", "D×H×W"][ndim - 1].split("×"))
        raise SpecError(f"{owner}: expects a {axes} input, got {shape_text(shape)}")
    for n in shape:
        if n <= 0:
            raise SpecError(f"{owner}: input sizes must be positive, got {shape_text(shape)}")
    return shape[0], shape[1], tuple(shape[2:])


@FORMULAS.register(Conv)
def conv_cost(spec: Conv, inputs: Sequence[Shape]) -> Cost:
    """MACs = N · C_out · ∏out · (C_in/g) · ∏k  (transposed: N · C_in · ∏in · (C_out/g) · ∏k).

    params = C_out · (C_in/g) · ∏k (+ C_out bias); ops = one bias add per output element.
    """
    owner = spec.label()
    batch, c_in, spatial = _spatial(_one_input(owner, inputs), spec.ndim, owner)
    if c_in % spec.groups:
        raise SpecError(f"{owner}: groups {spec.groups} do not divide the {c_in} input channels")
    c_out, groups, taps = spec.out_channels, spec.groups, numel(spec.kernel)
    if spec.transposed:
        out = tuple((n - 1) * s - 2 * p + d * (k - 1) + op + 1
                    for n, k, s, p, d, op in zip(spatial, spec.kernel, spec.stride, spec.padding,
                                                 spec.dilation, spec.output_padding))
        if any(o <= 0 for o in out):
            raise SpecError(f"{owner}: padding {spec.padding} leaves no output on a "
                            f"{shape_text(inputs[0])} input")
        per_input = c_out // groups * taps
        macs = batch * c_in * numel(spatial) * per_input
        formula = (f"{_batch_prefix(batch)}{dot(spec.kernel + (c_out // groups,))} × "
                   f"{dot(spatial + (c_in,))} = {group(macs)}")
        params = c_in * per_input
    else:
        if spec.padding == "same":
            out = spatial
            for n, k, d in zip(spatial, spec.kernel, spec.dilation):
                window_output(n, k, 1, d * (k - 1), d, False, owner, 0)
        else:
            out = tuple(window_output(n, k, s, 2 * p, d, False, owner, p)
                        for n, k, s, p, d in zip(spatial, spec.kernel, spec.stride, spec.padding,
                                                 spec.dilation))
        per_output = c_in // groups * taps
        macs = batch * c_out * numel(out) * per_output
        formula = (f"{_batch_prefix(batch)}{dot(spec.kernel + (c_in // groups,))} × "
                   f"{dot(out + (c_out,))} = {group(macs)}")
        params = c_out * per_output
    output = (batch, c_out) + out
    bias_ops = numel(output) if spec.bias else 0
    return Cost(output, macs, params + (c_out if spec.bias else 0), 0, bias_ops, formula)


@FORMULAS.register(Pool)
def pool_cost(spec: Pool, inputs: Sequence[Shape]) -> Cost:
    """ops = (∏k − 1) comparisons per output (max) or ∏k adds-and-divide per output (avg)."""
    owner = spec.label()
    batch, channels, spatial = _spatial(_one_input(owner, inputs), len(spec.kernel), owner)
    out = tuple(window_output(n, k, s, 2 * p, d, spec.ceil_mode, owner, p)
                for n, k, s, p, d in zip(spatial, spec.kernel, spec.stride, spec.padding,
                                         spec.dilation))
    output = (batch, channels) + out
    taps = numel(spec.kernel)
    per_output = taps - 1 if spec.mode == "max" else taps
    ops, formula = _elementwise_ops(per_output, output, "ops")
    return Cost(output, ops=ops, formula=formula)


def adaptive_regions(size: int, out: int) -> list[int]:
    """Lengths of the windows adaptive pooling reads: [⌊i·n/o⌋, ⌈(i+1)·n/o⌉) for i < o."""
    return [-(-((i + 1) * size) // out) - (i * size) // out for i in range(out)]


@FORMULAS.register(AdaptivePool)
def adaptive_pool_cost(spec: AdaptivePool, inputs: Sequence[Shape]) -> Cost:
    """ops: avg sums each window and divides (its length per output); max compares (length − 1)."""
    owner = spec.label()
    batch, channels, spatial = _spatial(_one_input(owner, inputs), len(spec.output_size), owner)
    out = tuple(n if o is None else o for n, o in zip(spatial, spec.output_size))
    read = numel([sum(adaptive_regions(n, o)) for n, o in zip(spatial, out)])
    outputs = numel(out)
    per_channel = read if spec.mode == "avg" else read - outputs
    ops = batch * channels * per_channel
    return Cost((batch, channels) + out, ops=ops,
                formula=f"ops: {per_channel:,} per channel × {batch * channels:,} = {group(ops)}")


# --- dense products ------------------------------------------------------------------

@FORMULAS.register(Linear)
def linear_cost(spec: Linear, inputs: Sequence[Shape]) -> Cost:
    """MACs = rows · in · out, rows = ∏ leading axes; params = in·out (+ out bias)."""
    owner = spec.label()
    shape = _one_input(owner, inputs)
    if len(shape) < 2:
        raise SpecError(f"{owner}: expects a batch of vectors, got a {len(shape)}-d input")
    in_features = shape[-1]
    if spec.in_features is not None and spec.in_features != in_features:
        raise SpecError(f"{owner}: expects {spec.in_features} input features, got {in_features}")
    batch, middle = shape[0], shape[1:-1]
    macs = numel(shape[:-1]) * in_features * spec.out_features
    output = shape[:-1] + (spec.out_features,)
    formula = f"{_batch_prefix(batch)}{in_features} × {dot(middle + (spec.out_features,))} = {group(macs)}"
    bias_ops = numel(output) if spec.bias else 0
    return Cost(output, macs, in_features * spec.out_features + (spec.out_features if spec.bias else 0),
                0, bias_ops, formula)


def broadcast(shapes: Sequence[Shape], owner: str) -> Shape:
    """PyTorch's broadcasting of shapes (aligned on the right)."""
    rank = max(len(s) for s in shapes)
    result = []
    for axis in range(-rank, 0):
        sizes = {s[axis] for s in shapes if len(s) >= -axis} - {1}
        if len(sizes) > 1:
            raise SpecError(f"{owner}: shapes {' and '.join(shape_text(s) for s in shapes)} "
                            "do not match")
        result.append(sizes.pop() if sizes else 1)
    return tuple(result)


@FORMULAS.register(Matmul)
def matmul_cost(spec: Matmul, inputs: Sequence[Shape]) -> Cost:
    """MACs = ∏batch · n · k · m for (…, n, k) @ (…, k, m); 1-d operands as in torch.matmul."""
    if len(inputs) != 2:
        raise SpecError(f"matmul: takes two inputs, got {len(inputs)}")
    a, b = inputs
    if not a or not b:
        raise SpecError("matmul: operands must have at least one axis")
    a2 = (1,) + a if len(a) == 1 else a
    b2 = b + (1,) if len(b) == 1 else b
    if a2[-1] != b2[-2]:
        raise SpecError(f"matmul: inner sizes differ ({a2[-1]} and {b2[-2]})")
    batch = broadcast([a2[:-2], b2[:-2]], "matmul") if len(a2) > 2 or len(b2) > 2 else ()
    n, k, m = a2[-2], a2[-1], b2[-1]
    macs = numel(batch) * n * k * m
    output = batch + ((n,) if len(a) > 1 else ()) + ((m,) if len(b) > 1 else ())
    return Cost(output, macs, formula=f"{dot(batch) + ' × ' if batch else ''}{n}·{k}·{m} = {group(macs)}")


@FORMULAS.register(Attention)
def attention_cost(spec: Attention, inputs: Sequence[Shape]) -> Cost:
    """MACs = ∏batch · L · S · (E + Ev): q·kᵀ then weights·v; ops: scale and softmax, 4 per score."""
    if len(inputs) != 3:
        raise SpecError(f"attention: takes q, k and v, got {len(inputs)} inputs")
    q, k, v = inputs
    if min(len(q), len(k), len(v)) < 2:
        raise SpecError("attention: q, k and v need at least two axes")
    if q[-1] != k[-1] or k[-2] != v[-2]:
        raise SpecError(f"attention: q {q}, k {k} and v {v} do not fit together")
    batch = broadcast([q[:-2], k[:-2], v[:-2]], "attention")
    length, source, e, ev = q[-2], k[-2], q[-1], v[-1]
    scores = numel(batch) * length * source
    macs = scores * (e + ev)
    formula = f"{dot(batch)} × {length}·{source}·({e} + {ev}) = {group(macs)}"
    if spec.causal:  # PyTorch's mask keeps score (i, j) for j ≤ i: Σ_i min(S, i + 1) per head
        m = min(length, source)
        kept = numel(batch) * (m * (m + 1) // 2 + (length - m) * source)
        formula += f" (causal, counted in full; {group(kept)} of {group(scores)} scores unmasked)"
    return Cost(batch + (length, ev), macs, ops=4 * scores, formula=formula)


# --- normalisation, activation, element-wise ----------------------------------------

@FORMULAS.register(Norm)
def norm_cost(spec: Norm, inputs: Sequence[Shape]) -> Cost:
    """Batch norm at inference folds to x·a + b: 2 ops per element.

    Layer/group/instance norm compute statistics at run time: 4 ops per element
    (sum, sum of squares, subtract mean, scale) + 2 for the affine transform.
    params: 2 per channel (per normalised element for layer norm) if affine;
    buffers (batch norm): running mean and variance per channel + the batch counter.
    """
    owner = spec.label()
    shape = _one_input(owner, inputs)
    if spec.kind == "layer":
        norm_shape = spec.normalized_shape or shape[-1:]
        if tuple(shape[-len(norm_shape):]) != tuple(norm_shape):
            raise SpecError(f"{owner}: normalised shape {norm_shape} does not end the input "
                            f"{shape_text(shape)}")
        affine_size = numel(norm_shape)
    else:
        if len(shape) < 2:
            raise SpecError(f"{owner}: expects an input with a channel axis")
        channels = shape[1]
        if spec.num_features is not None and spec.num_features != channels:
            raise SpecError(f"{owner}: expects {spec.num_features} channels, got {channels}")
        if spec.kind == "group" and channels % spec.num_groups:
            raise SpecError(f"{owner}: {spec.num_groups} groups do not divide {channels} channels")
        affine_size = channels
    params = 2 * affine_size if spec.affine else 0
    buffers = 0
    if spec.kind == "batch":
        per_element = 2
        buffers = 2 * affine_size + 1 if spec.track_running_stats else 0
    else:
        per_element = 4 + (2 if spec.affine else 0)
        if spec.kind == "instance" and spec.track_running_stats:
            buffers = 2 * affine_size + 1
    ops, formula = _elementwise_ops(per_element, shape, "ops")
    return Cost(shape, 0, params, buffers, ops, formula)


@FORMULAS.register(Activation)
def activation_cost(spec: Activation, inputs: Sequence[Shape]) -> Cost:
    """ops = ACTIVATION_OPS[kind] per element; shape unchanged."""
    shape = _one_input(spec.kind, inputs)
    ops, formula = _elementwise_ops(ACTIVATION_OPS[spec.kind], shape, "ops")
    return Cost(shape, ops=ops, formula=formula)


@FORMULAS.register(Elementwise)
def elementwise_cost(spec: Elementwise, inputs: Sequence[Shape]) -> Cost:
    """ops = ops_per_element × output elements, on the broadcast shape of the inputs."""
    if not inputs:
        raise SpecError(f"{spec.kind}: takes at least one input")
    shape = broadcast(inputs, spec.kind)
    ops, formula = _elementwise_ops(spec.ops_per_element, shape, "ops")
    return Cost(shape, ops=ops, formula=formula)


@FORMULAS.register(Upsample)
def upsample_cost(spec: Upsample, inputs: Sequence[Shape]) -> Cost:
    """ops = UPSAMPLE_OPS[mode] per output element (interpolation weights)."""
    owner = spec.label()
    batch, channels, _ = _spatial(_one_input(owner, inputs), len(spec.size), owner)
    output = (batch, channels) + spec.size
    ops, formula = _elementwise_ops(UPSAMPLE_OPS[spec.mode], output, "ops")
    return Cost(output, ops=ops, formula=formula)


# --- layout --------------------------------------------------------------------------

def _axis(dim: int, rank: int, owner: str) -> int:
    if not -rank <= dim < rank:
        raise SpecError(f"{owner}: axis {dim} is out of range for a {rank}-d input")
    return dim % rank


@FORMULAS.register(Concat)
def concat_cost(spec: Concat, inputs: Sequence[Shape]) -> Cost:
    """No arithmetic; every axis but ``dim`` must match, the output sums ``dim``."""
    if not inputs:
        raise SpecError("concat: takes at least one input")
    rank = len(inputs[0])
    if any(len(s) != rank for s in inputs):
        raise SpecError("concat: inputs have different numbers of axes")
    axis = _axis(spec.dim, rank, "concat")
    for s in inputs[1:]:
        if any(a != b for i, (a, b) in enumerate(zip(s, inputs[0])) if i != axis):
            raise SpecError("concat: mismatched sizes "
                            f"{' and '.join(shape_text(t) for t in inputs)} off axis {axis}")
    output = tuple(sum(s[axis] for s in inputs) if i == axis else n for i, n in enumerate(inputs[0]))
    return Cost(output, formula="no arithmetic")


@FORMULAS.register(Flatten)
def flatten_cost(spec: Flatten, inputs: Sequence[Shape]) -> Cost:
    """No arithmetic; axes start…end become one."""
    shape = _one_input("flatten", inputs)
    if not shape:
        return Cost((1,), formula="no arithmetic")
    start = _axis(spec.start_dim, len(shape), "flatten")
    end = _axis(spec.end_dim, len(shape), "flatten")
    if start > end:
        raise SpecError(f"flatten: start axis {spec.start_dim} comes after end axis {spec.end_dim}")
    output = shape[:start] + (numel(shape[start:end + 1]),) + shape[end + 1:]
    return Cost(output, formula="no arithmetic")


@FORMULAS.register(Reshape)
def reshape_cost(spec: Reshape, inputs: Sequence[Shape]) -> Cost:
    """No arithmetic; the element count must be kept."""
    shape = _one_input(spec.kind, inputs)
    if numel(spec.shape) != numel(shape):
        raise SpecError(f"{spec.kind}: cannot turn {numel(shape):,} elements into shape {spec.shape}")
    return Cost(tuple(spec.shape), formula="no arithmetic")


@FORMULAS.register(Dropout)
def dropout_cost(spec: Dropout, inputs: Sequence[Shape]) -> Cost:
    """Identity at inference: no arithmetic."""
    return Cost(_one_input("dropout", inputs), formula="identity at inference")


@FORMULAS.register(Embedding)
def embedding_cost(spec: Embedding, inputs: Sequence[Shape]) -> Cost:
    """A lookup: V·D parameters, no arithmetic."""
    shape = _one_input("embedding", inputs)
    return Cost(shape + (spec.embedding_dim,), params=spec.num_embeddings * spec.embedding_dim,
                formula="lookup, no arithmetic")


@FORMULAS.register(Reduce)
def reduce_cost(spec: Reduce, inputs: Sequence[Shape]) -> Cost:
    """ops: sum, amax, amin: (n − 1) per output, n = elements reduced into it; mean: n per output."""
    shape = _one_input(spec.kind, inputs)
    axes = {_axis(d, len(shape), spec.kind) for d in spec.dims} if spec.dims else set(range(len(shape)))
    output = tuple((1 if i in axes else n) for i, n in enumerate(shape) if spec.keepdim or i not in axes)
    per_output = numel([shape[i] for i in axes])
    outputs = numel(shape) // per_output if per_output else 0
    each = per_output if spec.kind == "mean" else per_output - 1
    ops = outputs * each
    return Cost(output, ops=ops, formula=f"ops: {outputs:,} outputs × {each:,} = {group(ops)}")


@FORMULAS.register(Pad)
def pad_cost(spec: Pad, inputs: Sequence[Shape]) -> Cost:
    """No arithmetic; axis −1−i grows by pads[2i] + pads[2i+1] (negative pads crop)."""
    shape = _one_input("pad", inputs)
    pairs = len(spec.pads) // 2
    if pairs > len(shape):
        raise SpecError(f"pad: {pairs} padded axes for a {len(shape)}-d input")
    output = list(shape)
    for i in range(pairs):
        output[-1 - i] += spec.pads[2 * i] + spec.pads[2 * i + 1]
        if output[-1 - i] <= 0:
            raise SpecError(f"pad: pads {spec.pads} leave no elements on a {shape_text(shape)} input")
    return Cost(tuple(output), formula="no arithmetic")


@FORMULAS.register(Held)
def held_cost(spec: Held, inputs: Sequence[Shape]) -> Cost:
    """Parameters a module holds but never uses: counted in params/buffers; no input, no arithmetic."""
    if inputs:
        raise SpecError("held parameters take no input")
    return Cost((), params=spec.params, buffers=spec.buffers, formula="held, not used by the forward pass")


def recurrent_cell_ops(mode: str) -> int:
    """Ops per hidden element per step beyond the products: the gate non-linearities (their
    ACTIVATION_OPS) and the state update. LSTM: 3 sigmoid + 2 tanh + 4 (f·c + i·g, o·tanh c);
    GRU: 2 sigmoid + tanh + 5 (r·(W_hn h), (1 − z)·n + z·h); RNN: its tanh or relu."""
    if mode == "lstm":
        return 3 * ACTIVATION_OPS["sigmoid"] + 2 * ACTIVATION_OPS["tanh"] + 4
    if mode == "gru":
        return 2 * ACTIVATION_OPS["sigmoid"] + ACTIVATION_OPS["tanh"] + 5
    return ACTIVATION_OPS[mode.split("_")[1]]


def recurrent_batch_steps(spec: Recurrent, shape: Shape) -> tuple[int, int]:
    """(N, T) of a recurrent input: (N, T, I) with batch_first, else (T, N, I); (T, I) unbatched."""
    if len(shape) not in (2, 3) or shape[-1] != spec.input_size:
        raise SpecError(f"{spec.label()}: expects (N, T, {spec.input_size}) or (T, N, {spec.input_size}), "
                        f"got {shape_text(shape)}")
    if len(shape) == 2:
        return 1, shape[0]
    return (shape[0], shape[1]) if spec.batch_first else (shape[1], shape[0])


@FORMULAS.register(Recurrent)
def recurrent_cost(spec: Recurrent, inputs: Sequence[Shape]) -> Cost:
    """Per step, layer and direction: MACs = G·H·(I_l + R) + P·H, R = P or H (the recurrent input),
    I_0 = input size, I_l = D·R after the first layer (D directions); G gates (4 LSTM, 3 GRU, 1 RNN).
    Total = N·T·Σ_l D·(per step). params per layer and direction: G·H·(I_l + R) + 2·G·H (bias) + P·H.
    ops per step: G·H (input and hidden sums) + 2·G·H (biases) + H·cell ops (recurrent_cell_ops)."""
    shape = _one_input(spec.label(), inputs)
    batch, steps = recurrent_batch_steps(spec, shape)
    g, h, p = RECURRENT_GATES[spec.mode], spec.hidden_size, spec.proj_size
    r = p or h
    d = 2 if spec.bidirectional else 1
    per_step = params = 0
    sizes = []
    for layer in range(spec.num_layers):
        i = spec.input_size if layer == 0 else d * r
        sizes.append(i)
        per_step += d * (g * h * (i + r) + p * h)
        params += d * (g * h * (i + r) + (2 * g * h if spec.bias else 0) + p * h)
    macs = batch * steps * per_step
    ops_per_step = spec.num_layers * d * (g * h + (2 * g * h if spec.bias else 0) + h * recurrent_cell_ops(spec.mode))
    ops = batch * steps * ops_per_step
    output = shape[:-1] + (d * r,)
    inner = " + ".join(f"{g}·{h}·({i} + {r})" + (f" + {p}·{h}" if p else "") for i in sizes)
    formula = f"{batch}·{steps} steps × {d} × ({inner}) = {group(macs)}" if d > 1 else \
        f"{batch}·{steps} steps × ({inner}) = {group(macs)}"
    return Cost(output, macs, params, 0, ops, formula)


def cost_of(spec: Spec, inputs: Sequence[Shape]) -> Cost:
    """The cost of ``spec`` applied to inputs of the given shapes (batch axis first).

    A pure function of its arguments (specs and costs are immutable), so repeated layers — a
    network's identical blocks, a sweep's shared prefix — are priced once and remembered."""
    if type(inputs) is not tuple or any(type(s) is not tuple for s in inputs):
        inputs = tuple(tuple(s) for s in inputs)
    try:
        return _remembered_cost(spec, inputs)
    except TypeError:  # a spec holding an unhashable value: priced without the memo
        return _cost(spec, inputs)


def _cost(spec: Spec, inputs: tuple[Shape, ...]) -> Cost:
    return FORMULAS[type(spec)](spec, inputs)


_remembered_cost = functools.lru_cache(maxsize=8192)(_cost)
