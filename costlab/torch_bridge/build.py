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
from typing import Any, Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..core.analysis import Analysis, Layer
from ..core.errors import CostlabError, SpecError
from ..core.specs import (ACTIVATIONS, ARITHMETIC, CONVS, NORMS, POOLS, AdaptivePool, Activation, Attention, Concat, Conv, Dropout, Elementwise,
                     Embedding, Flatten, Linear, Matmul, Norm, Pool, Reshape, Shape, Spec, Upsample)

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


def module_for(spec: Spec, inputs: Sequence[Shape]) -> nn.Module | None:
    """The ``nn.Module`` that computes ``spec`` on inputs of these shapes, or None for a function."""
    shape = inputs[0]
    if isinstance(spec, Conv):
        cls = getattr(nn, CONVS[spec.kind].modules[spec.ndim - 1])
        kwargs: dict[str, Any] = dict(stride=spec.stride, padding=spec.padding, dilation=spec.dilation,
                                      groups=spec.groups, bias=spec.bias)
        if spec.transposed:
            kwargs["output_padding"] = spec.output_padding
        return cls(shape[1], spec.out_channels, spec.kernel, **kwargs)
    if isinstance(spec, Linear):
        return nn.Linear(shape[-1], spec.out_features, bias=spec.bias)
    if isinstance(spec, Norm):
        cls = _norm_class(spec.kind, len(shape))
        if spec.kind == "layer":
            return cls(spec.normalized_shape or shape[-1:], elementwise_affine=spec.affine)
        if spec.kind == "group":
            return cls(spec.num_groups, shape[1], affine=spec.affine)
        return cls(shape[1], affine=spec.affine, track_running_stats=spec.track_running_stats)
    if isinstance(spec, Activation):
        return _activation(spec.kind)
    if isinstance(spec, Pool):
        cls = getattr(nn, POOLS[spec.kind].modules[len(spec.kernel) - 1])
        if spec.mode == "max":
            return cls(spec.kernel, spec.stride, spec.padding, spec.dilation, ceil_mode=spec.ceil_mode)
        return cls(spec.kernel, spec.stride, spec.padding, ceil_mode=spec.ceil_mode,
                   count_include_pad=spec.count_include_pad)
    if isinstance(spec, AdaptivePool):
        ndim = len(spec.output_size)
        size = spec.output_size[0] if ndim == 1 else spec.output_size
        return getattr(nn, POOLS[spec.kind].modules[ndim - 1])(size)
    if isinstance(spec, Dropout):
        return nn.Dropout(spec.p)
    if isinstance(spec, Flatten):
        return nn.Flatten(spec.start_dim, spec.end_dim)
    if isinstance(spec, Embedding):
        return nn.Embedding(spec.num_embeddings, spec.embedding_dim)
    if isinstance(spec, Upsample):
        return nn.Upsample(size=spec.size, mode=spec.mode)
    return None


def function_for(spec: Spec) -> Callable[..., torch.Tensor]:
    """The function that computes a spec that is not a module in PyTorch."""
    if isinstance(spec, Elementwise):
        if spec.kind not in _ELEMENTWISE:
            raise SpecError(f"cannot build element-wise {spec.kind!r}")
        return _ELEMENTWISE[spec.kind]
    if isinstance(spec, Concat):
        dim = spec.dim
        return lambda *xs: torch.cat(xs, dim)
    if isinstance(spec, Matmul):  # looked up at call time, as a model's forward does
        return lambda a, b: torch.matmul(a, b)
    if isinstance(spec, Attention):
        return lambda q, k, v: F.scaled_dot_product_attention(q, k, v)
    if isinstance(spec, Reshape):
        shape = spec.shape
        return lambda x: x.reshape(shape)
    raise SpecError(f"cannot build {type(spec).__name__}")


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
