"""Build a real ``nn.Module`` from an :class:`~costlab.core.analysis.Analysis`, layer for layer.

The module tree mirrors the layer names: ``layer3.1.conv2`` becomes the submodule
``layer3`` → ``1`` → ``conv2``. Layers that are functions in PyTorch (the residual ``+``,
``torch.cat``, matmul, attention) run inside the container of their scope, so a trace of
the built module meets each of them where the analysis put it. Only inference layers are
built (training-only heads are not).
"""

from __future__ import annotations

import math
import operator
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..core.analysis import Analysis, Layer
from ..core.errors import CostlabError, SpecError
from ..core.registry import SpecRegistry
from ..core.specs import (ACTIVATIONS, ARITHMETIC, CONVS, NORMS, POOLS, AdaptivePool, Activation, Attention, Concat,
                          Conv, Dropout, Elementwise, Embedding, Flatten, Held, Linear, Matmul, Norm, Pad, Pool,
                          Recurrent, Reduce, Reshape, Shape, Spec, Upsample)

def _activation(kind: str) -> nn.Module:
    """The torch.nn module of an activation kind, made as the catalog says (costlab.core.specs.ACTIVATIONS)."""
    entry = ACTIVATIONS[kind]
    return getattr(nn, entry.module)(**dict(entry.module_kwargs))


def _norm_class(kind: str, rank: int) -> type[nn.Module]:
    """The torch.nn class of a norm kind at an input rank, as the catalog says (costlab.core.specs.NORMS)."""
    entry = NORMS[kind]
    by_rank = dict(entry.built_by_rank)
    if by_rank and rank not in by_rank:
        raise SpecError(f"cannot build a {kind} norm on a {rank}-d input")
    return getattr(nn, by_rank.get(rank, entry.modules[0]))


_ELEMENTWISE: dict[str, Callable[..., Any]] = {kind: getattr(operator, a.operator)
                                               for kind, a in ARITHMETIC.items()}  # from the catalog


@dataclass(frozen=True)
class Builder:
    """How the builder computes a spec: an ``nn.Module`` made from the spec and its input shapes
    (``module``), or a function of the spec (``function``: the specs that are functions in PyTorch)."""

    module: Callable[[Any, Sequence[Shape]], nn.Module] | None = None
    function: Callable[[Any], Callable[..., torch.Tensor]] | None = None


#: Spec type → its :class:`Builder`, or a NotApplicable entry saying why none is built.
BUILDERS: SpecRegistry[Builder] = SpecRegistry("builder")


def _module(*types: type) -> Callable[[Callable[[Any, Sequence[Shape]], nn.Module]], Any]:
    """Register the decorated ``(spec, input shapes) → nn.Module`` as the builder of ``types``."""
    def decorate(make: Callable[[Any, Sequence[Shape]], nn.Module]) -> Any:
        BUILDERS.register(*types)(Builder(module=make))
        return make
    return decorate


def _function(*types: type) -> Callable[[Callable[[Any], Callable[..., torch.Tensor]]], Any]:
    """Register the decorated ``spec → function`` as the builder of ``types``."""
    def decorate(make: Callable[[Any], Callable[..., torch.Tensor]]) -> Any:
        BUILDERS.register(*types)(Builder(function=make))
        return make
    return decorate


@_module(Conv)
def _conv(spec: Conv, inputs: Sequence[Shape]) -> nn.Module:
    cls = getattr(nn, CONVS[spec.kind].modules[spec.ndim - 1])
    kwargs: dict[str, Any] = dict(stride=spec.stride, padding=spec.padding, dilation=spec.dilation,
                                  groups=spec.groups, bias=spec.bias)
    if spec.transposed:
        kwargs["output_padding"] = spec.output_padding
    return cls(inputs[0][1], spec.out_channels, spec.kernel, **kwargs)


@_module(Linear)
def _linear(spec: Linear, inputs: Sequence[Shape]) -> nn.Module:
    return nn.Linear(inputs[0][-1], spec.out_features, bias=spec.bias)


@_module(Norm)
def _norm(spec: Norm, inputs: Sequence[Shape]) -> nn.Module:
    shape = inputs[0]
    cls = _norm_class(spec.kind, len(shape))
    if spec.kind == "layer":
        return cls(spec.normalized_shape or shape[-1:], elementwise_affine=spec.affine)
    if spec.kind == "group":
        return cls(spec.num_groups, shape[1], affine=spec.affine)
    return cls(shape[1], affine=spec.affine, track_running_stats=spec.track_running_stats)


@_module(Activation)
def _activation_module(spec: Activation, inputs: Sequence[Shape]) -> nn.Module:
    return _activation(spec.kind)


@_module(Pool)
def _pool(spec: Pool, inputs: Sequence[Shape]) -> nn.Module:
    cls = getattr(nn, POOLS[spec.kind].modules[len(spec.kernel) - 1])
    if spec.mode == "max":
        return cls(spec.kernel, spec.stride, spec.padding, spec.dilation, ceil_mode=spec.ceil_mode)
    return cls(spec.kernel, spec.stride, spec.padding, ceil_mode=spec.ceil_mode,
               count_include_pad=spec.count_include_pad)


@_module(AdaptivePool)
def _adaptive_pool(spec: AdaptivePool, inputs: Sequence[Shape]) -> nn.Module:
    ndim = len(spec.output_size)
    size = spec.output_size[0] if ndim == 1 else spec.output_size
    return getattr(nn, POOLS[spec.kind].modules[ndim - 1])(size)


@_module(Dropout)
def _dropout(spec: Dropout, inputs: Sequence[Shape]) -> nn.Module:
    return nn.Dropout(spec.p)


@_module(Flatten)
def _flatten(spec: Flatten, inputs: Sequence[Shape]) -> nn.Module:
    return nn.Flatten(spec.start_dim, spec.end_dim)


@_module(Embedding)
def _embedding(spec: Embedding, inputs: Sequence[Shape]) -> nn.Module:
    return nn.Embedding(spec.num_embeddings, spec.embedding_dim)


@_module(Upsample)
def _upsample(spec: Upsample, inputs: Sequence[Shape]) -> nn.Module:
    return nn.Upsample(size=spec.size, mode=spec.mode)


@_function(Elementwise)
def _elementwise(spec: Elementwise) -> Callable[..., torch.Tensor]:
    if spec.kind not in _ELEMENTWISE:
        raise SpecError(f"cannot build element-wise {spec.kind!r}")
    return _ELEMENTWISE[spec.kind]


@_function(Concat)
def _concat(spec: Concat) -> Callable[..., torch.Tensor]:
    dim = spec.dim
    return lambda *xs: torch.cat(xs, dim)


@_function(Matmul)
def _matmul(spec: Matmul) -> Callable[..., torch.Tensor]:
    return lambda a, b: torch.matmul(a, b)  # looked up at call time, as a model's forward does


@_function(Attention)
def _attention(spec: Attention) -> Callable[..., torch.Tensor]:
    return lambda q, k, v: F.scaled_dot_product_attention(q, k, v)


@_function(Reshape)
def _reshape(spec: Reshape) -> Callable[..., torch.Tensor]:
    shape = spec.shape
    return lambda x: x.reshape(shape)


BUILDERS.not_applicable(Reduce, "a reduction is only ever traced; the latency engine runs it as "
                                "torch.<kind> (costlab.torch_bridge.latency)")
BUILDERS.not_applicable(Pad, "a pad is only ever traced; the latency engine runs it as F.pad "
                             "(costlab.torch_bridge.latency)")
BUILDERS.not_applicable(Held, "parameters a forward pass never uses run nothing")
BUILDERS.not_applicable(Recurrent, "an LSTM/GRU/RNN is only ever traced (its module returns the output "
                                   "and the state); the user's own module runs it")


def module_for(spec: Spec, inputs: Sequence[Shape]) -> nn.Module | None:
    """The ``nn.Module`` that computes ``spec`` on inputs of these shapes, or None for a function
    (and for a spec the builder does not build: :func:`function_for` says why)."""
    builder = BUILDERS.get(type(spec))
    return builder.module(spec, inputs) if builder is not None and builder.module is not None else None


def function_for(spec: Spec) -> Callable[..., torch.Tensor]:
    """The function that computes a spec that is not a module in PyTorch."""
    builder = BUILDERS[type(spec)]
    if builder.function is None:
        raise SpecError(f"{type(spec).__name__} is built as a module, not a function")
    return builder.function(spec)


class _Step:
    """One entry of a scope: a child (leaf module or sub-scope) or a function, with its wiring."""

    def __init__(self, key: str, inputs: tuple[str, ...], outputs: tuple[str, ...],
                 function: Callable[..., Any] | None = None) -> None:
        self.key, self.inputs, self.outputs, self.function = key, inputs, outputs, function


class Scope(nn.Module):
    """A container that runs its steps in order; takes its external inputs, returns its outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[_Step] = []
        self.input_names: tuple[str, ...] = ()
        self.output_names: tuple[str, ...] = ()

    def forward(self, *inputs: torch.Tensor) -> Any:
        return self.run(inputs)

    def run(self, inputs: Sequence[torch.Tensor]) -> Any:
        """The steps in order; a value's name is dropped after the last step that reads it (as a forward
        rebinds its locals), so a tensor lives while a step reads it or a caller still holds it."""
        env = dict(zip(self.input_names, inputs))
        del inputs
        kept = set(self.output_names)
        last = {name: index for index, step in enumerate(self.steps) for name in step.inputs}
        for index, step in enumerate(self.steps):
            args = [env[name] for name in step.inputs]
            for name in dict.fromkeys(step.inputs):
                if last[name] == index and name not in kept:
                    del env[name]
            fn = step.function if step.function is not None else getattr(self, step.key)
            result = fn(*args)
            del args
            if len(step.outputs) == 1:
                env[step.outputs[0]] = result
            else:
                env.update(zip(step.outputs, result))
        if len(self.output_names) == 1:
            return env[self.output_names[0]]
        return tuple(env[name] for name in self.output_names)


class Network(Scope):
    """The root scope: one input tensor (``forward(x)``, so that fx sees a single placeholder)."""

    def forward(self, x: torch.Tensor) -> Any:  # type: ignore[override]
        return self.run((x,))


def _layers_under(layers: Sequence[Layer], prefix: str) -> list[Layer]:
    return [layer for layer in layers if layer.name.startswith(prefix)]


def _build_scope(layers: Sequence[Layer], prefix: str, inputs: tuple[str, ...],
                 outputs: tuple[str, ...], root: bool = False) -> Scope:
    """A Scope for the layers whose names start with ``prefix`` (contiguous in execution order)."""
    scope = Network() if root else Scope()
    scope.input_names, scope.output_names = inputs, outputs
    index = 0
    while index < len(layers):
        layer = layers[index]
        key, _, rest = layer.name[len(prefix):].partition(".")
        if not rest:  # a layer directly in this scope
            module = module_for(layer.spec, layer.input_shapes)
            if module is None:
                scope.steps.append(_Step(f"fn:{key}", layer.inputs, (layer.name,), function_for(layer.spec)))
            else:
                scope.add_module(key, module)
                scope.steps.append(_Step(key, layer.inputs, (layer.name,)))
            index += 1
            continue
        child_prefix = f"{prefix}{key}."
        end = index
        while end < len(layers) and layers[end].name.startswith(child_prefix):
            end += 1
        members = layers[index:end]
        if len(_layers_under(layers, child_prefix)) != len(members):
            raise SpecError(f"cannot build: the layers of {child_prefix[:-1]!r} are not contiguous")
        produced = {m.name for m in members}
        external = tuple(dict.fromkeys(i for m in members for i in m.inputs if i not in produced))
        later = layers[end:]
        used_later = {i for m in later for i in m.inputs} | set(outputs)
        child_outputs = tuple(m.name for m in members if m.name in used_later)
        scope.add_module(key, _build_scope(members, child_prefix, external, child_outputs))
        scope.steps.append(_Step(key, external, child_outputs))
        index = end
    return scope


#: torch sizes and element counts are signed 64-bit integers.
TORCH_SIZE_LIMIT = 2**63 - 1


def check_torch_sizes(analysis: Analysis) -> None:
    """A CostlabError, before torch sees them, when a layer's sizes do not fit torch's 64-bit sizes:
    any dimension or element count of its inputs and output, or its parameter count (costlab's own
    counts are exact Python integers and need no such limit)."""
    for layer in analysis.layers:
        shapes = (*layer.input_shapes, layer.output)
        largest = max([layer.params, layer.buffers] + [math.prod(shape) for shape in shapes]
                      + [size for shape in shapes for size in shape])
        if largest > TORCH_SIZE_LIMIT:
            raise CostlabError(f"{analysis.name}: layer {layer.name} has sizes past torch's limit of 2^63 − 1 "
                               f"({_magnitude(largest)}); its counts are exact, but torch cannot build it "
                               "(drop --check and --latency)")


def _magnitude(number: int) -> str:
    """'9.2e+30'-style text for an integer of any size (no conversion of all its digits)."""
    digits = number.bit_length() * 0.30103
    return f"about 10^{int(digits)}" if digits > 300 else f"{float(number):.1e}"


def build_module(analysis: Analysis, device: str | torch.device | None = None) -> nn.Module:
    """An ``nn.Module`` that computes ``analysis``'s inference layers, in eval mode.

    ``device="meta"`` builds it without allocating any parameter memory.
    """
    if not analysis.layers:
        raise SpecError(f"{analysis.name}: nothing to build")
    check_torch_sizes(analysis)
    output = analysis.layers[-1].name
    with torch.device(device) if device is not None else nullcontext():
        root = _build_scope(analysis.layers, "", ("input",), (output,), root=True)
    return root.eval()


def example_input(analysis: Analysis, device: str | torch.device = "cpu",
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A random input of the analysis's batch and input shape."""
    return torch.randn((analysis.batch,) + tuple(analysis.input), device=device, dtype=dtype)
