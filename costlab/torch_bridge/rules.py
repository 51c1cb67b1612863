"""How torch modules and functions become costlab layers: explicit tables, no name matching.

A *rule* reads the hyper-parameters of a module or the arguments of a function call, builds
the costlab spec, and asks its context to record the layer; the core's formula
(:func:`costlab.core.formulas.cost_of`) prices it. Rules see shapes only (:class:`TensorValue`),
never tensor data, so the same rules serve the torch.fx walk and the meta-device fallback.

- :data:`MODULE_RULES`: leaf module type → rule. A subclass that keeps its base's ``forward``
  uses the base's rule; one that overrides ``forward`` is traced through instead.
- :data:`FUNCTION_RULES` (callables) and :data:`METHOD_RULES` (``Tensor`` method names):
  the functional ops between modules. Layout ops (view, permute, getitem, size, …) have
  shape rules and either a zero-cost reshape layer or no layer at all.

A rule raises :class:`RuleError` for a case it cannot price; the caller lists it as
unsupported. Nothing unknown is priced as zero.
"""

from __future__ import annotations

import builtins
import math
import operator
import sys
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping, Protocol, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..core.analysis import CallSite
from ..core.errors import SpecError
from ..core.formulas import broadcast, numel
from ..core.specs import (ACTIVATIONS, ARITHMETIC, CONVS, NORMS, PAD_MODES, PADS, POOLS, RECURRENTS, REDUCTIONS, UPSAMPLE_OPS, AdaptivePool, Activation, Attention, Concat, Conv,
                     ConvKind, Dropout, Elementwise, Embedding, Flatten, Linear, Matmul, Norm, Pad, Pool, PoolKind, Reduce,
                     Recurrent, Reshape, Shape, Spec, Upsample, as_tuple, resolve_padding)


@dataclass(frozen=True)
class TensorValue:
    """A tensor as a trace sees it: its shape (batch axis first) and the layer that produced it.

    ``tensor`` is the parameter or buffer object when the value is a module attribute (so that
    its elements are counted once, by identity); ``producer`` is then the attribute's name.
    """

    shape: Shape
    producer: str = ""
    tensor: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Unknown:
    """A value whose shape the trace could not determine (it follows an unsupported op)."""

    origin: str


class RuleError(Exception):
    """A call a rule cannot price; the trace lists it as unsupported."""


class Context(Protocol):
    """What a rule records into: one call of a module or function."""

    def layer(self, spec: Spec, inputs: Sequence[TensorValue], sub: str | None = None,
              params: Sequence[Any] = ()) -> TensorValue:
        """Record ``spec`` applied to ``inputs`` (named ``<call>.<sub>`` when ``sub`` is given).

        Inputs that are module attributes are counted as consumed parameters/buffers;
        ``params`` adds others a functional op consumes (F.linear's weight and bias, …)."""


ModuleRule = Callable[[Context, nn.Module, tuple, dict], Any]
FunctionRule = Callable[[Context, tuple, dict], Any]

_MISSING = object()


def arg(args: Sequence[Any], kwargs: Mapping[str, Any], index: int, name: str,
        default: Any = _MISSING) -> Any:
    """Positional argument ``index`` or keyword ``name`` of a call, else ``default`` (the aten rules'
    reader, whose schemas fix the positions; the rules below bind through :func:`binds`)."""
    if len(args) > index:
        return args[index]
    if name in kwargs:
        return kwargs[name]
    if default is _MISSING:
        raise RuleError(f"missing argument {name!r}")
    return default


def tensor_arg(args: Sequence[Any], kwargs: Mapping[str, Any], index: int = 0,
               name: str = "input") -> TensorValue:
    value = arg(args, kwargs, index, name)
    if not isinstance(value, TensorValue):
        raise RuleError(f"argument {name!r} is not a tensor")
    return value


@dataclass(frozen=True)
class Bound:
    """A call's arguments bound to its signature's parameter names, once: a rule reads them by name.

    ``names``: the signature's parameters in order (the first is the tensor a rule transforms);
    ``rest``: positional arguments past them, where the signature ends in ``*sizes`` (``view(2, 3)``)."""

    names: tuple[str, ...]
    values: Mapping[str, Any]
    rest: tuple[Any, ...] = ()

    def __getitem__(self, name: str) -> Any:
        if name not in self.values:
            raise RuleError(f"missing argument {name!r}")
        return self.values[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self.values

    def tensor(self, name: str | None = None) -> TensorValue:
        """The tensor ``name`` (default: the first parameter); a RuleError when it is missing or not a tensor."""
        name = name or self.names[0]
        value = self[name]
        if not isinstance(value, TensorValue):
            raise RuleError(f"argument {name!r} is not a tensor")
        return value

    def optional_tensor(self, name: str) -> TensorValue | None:
        value = self.get(name)
        if value is not None and not isinstance(value, TensorValue):
            raise RuleError(f"argument {name!r} is not a tensor")
        return value

    def sizes(self, name: str) -> tuple[Any, ...]:
        """``view(2, 3)``, ``view((2, 3))`` and ``view(shape=(2, 3))`` alike: the sizes of a ``*sizes`` signature."""
        return _shape_args(self.rest) if self.rest else tuple(self[name])


def bind(names: Sequence[str], args: Sequence[Any], kwargs: Mapping[str, Any], variadic: bool = False) -> Bound:
    """Positional arguments to ``names`` in order, keywords by name; more positional arguments than
    names (without ``variadic``) or one argument given twice is a call the rule cannot read."""
    names = tuple(names)
    if len(args) > len(names) and not variadic:
        raise RuleError(f"{len(args)} positional arguments to a signature of {len(names)} ({', '.join(names)})")
    values = dict(zip(names, args))
    for name, value in kwargs.items():
        if name in values:
            raise RuleError(f"argument {name!r} given twice")
        values[name] = value
    return Bound(names, MappingProxyType(values), tuple(args[len(names):]))


BoundFunctionRule = Callable[["Context", Bound], Any]
BoundModuleRule = Callable[["Context", nn.Module, Bound], Any]


def binds(*names: str, variadic: bool = False) -> Callable[[BoundFunctionRule], FunctionRule]:
    """A function rule that reads its call's arguments by name: ``names`` are the torch signature's
    parameters in order (``rule.signature``), bound once per call (:func:`bind`)."""

    def wrap(rule: BoundFunctionRule) -> FunctionRule:
        def bound_rule(ctx: Context, args: tuple, kwargs: dict) -> Any:
            return rule(ctx, bind(names, args, kwargs, variadic))

        bound_rule.signature = names  # type: ignore[attr-defined]
        bound_rule.__doc__, bound_rule.__wrapped__ = rule.__doc__, rule  # type: ignore[attr-defined]
        return bound_rule

    return wrap


def forward_parameters(cls: type) -> tuple[tuple[str, ...], bool]:
    """The parameter names of ``cls.forward`` after ``self`` (inspect.signature, once per class), and
    whether it takes ``*args``."""
    if cls not in _FORWARD_PARAMETERS:
        import inspect

        parameters = list(inspect.signature(cls.forward).parameters.values())[1:]
        _FORWARD_PARAMETERS[cls] = (
            tuple(p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)),
            any(p.kind is p.VAR_POSITIONAL for p in parameters))
    return _FORWARD_PARAMETERS[cls]


_FORWARD_PARAMETERS: dict[type, tuple[tuple[str, ...], bool]] = {}


def binds_forward(rule: BoundModuleRule) -> ModuleRule:
    """A module rule that reads the call's arguments by the names of the module's own ``forward``
    (the class whose forward it runs: :func:`module_rule` gives no rule to a subclass with its own)."""

    def bound_rule(ctx: Context, m: nn.Module, args: tuple, kwargs: dict) -> Any:
        names, variadic = forward_parameters(type(m))
        return rule(ctx, m, bind(names, args, kwargs, variadic))

    bound_rule.__doc__, bound_rule.__wrapped__ = rule.__doc__, rule  # type: ignore[attr-defined]
    return bound_rule


def _ints(value: Any, ndim: int, what: str) -> tuple[int, ...]:
    if type(value) is tuple and len(value) == ndim and all(type(v) is int for v in value):
        return value  # what a module's hyper-parameters are: nothing to convert
    if isinstance(value, (list, tuple, torch.Size)):
        value = tuple(value)
        if not all(isinstance(v, int) for v in value):
            raise RuleError(f"{what} {value!r} is not a tuple of integers")
    elif not isinstance(value, int):
        raise RuleError(f"{what} {value!r} is not an integer")
    try:
        return as_tuple(value, ndim, "rule", what)
    except Exception:  # noqa: BLE001 - wrong arity: not something a rule can price
        raise RuleError(f"{what} {value!r} does not fit {ndim} axes") from None


def _spatial_dims(shape: Shape, ndim: int, owner: str) -> None:
    if len(shape) != ndim + 2:
        raise RuleError(f"{owner} on a {len(shape)}-d input (batched {ndim + 2}-d expected)")


# --- modules ------------------------------------------------------------------------------

def conv_spec(out_channels: int, kernel: tuple[int, ...], stride: Any, padding: Any, dilation: Any,
              groups: int, bias: bool, transposed: bool = False, output_padding: Any = 0) -> Conv:
    """The Conv spec of a torch convolution's hyper-parameters (padding int, tuple, 'same', 'valid')."""
    ndim = len(kernel)
    stride_t, dilation_t = _ints(stride, ndim, "stride"), _ints(dilation, ndim, "dilation")
    if isinstance(padding, str):
        pad: Any = resolve_padding(padding, kernel, dilation_t, "conv")
    else:
        pad = _ints(padding, ndim, "padding")
    if transposed:
        return Conv(out_channels, kernel, stride_t, pad, dilation_t, groups, bias, True,
                    _ints(output_padding, ndim, "output padding"))
    return Conv(out_channels, kernel, stride_t, pad, dilation_t, groups, bias)


def _check_channels(x: TensorValue, expected: int, owner: str) -> None:
    """The module was built for ``expected`` input channels: another count is the user's error."""
    if len(x.shape) < 2 or x.shape[1] != expected:
        got = x.shape[1] if len(x.shape) > 1 else "no channel axis"
        raise SpecError(f"{owner} expects {expected} input channels, got {got}")


#: Convolution module type → its catalog entry (from the catalog, costlab.core.specs.CONVS).
CONV_MODULES: Mapping[type, ConvKind] = {getattr(nn, name): c for c in CONVS.values() for name in c.modules}


@binds_forward
def _conv_module(ctx: Context, m: nn.Module, a: Bound) -> Any:
    x = a.tensor()
    _check_channels(x, m.in_channels, type(m).__name__)
    transposed = next(CONV_MODULES[c] for c in type(m).__mro__ if c in CONV_MODULES).transposed
    if transposed and a.get("output_size") is not None:
        raise RuleError("a transposed convolution with an explicit output_size")
    spec = conv_spec(m.out_channels, tuple(m.kernel_size), m.stride, m.padding, m.dilation, m.groups,
                     m.bias is not None, transposed, m.output_padding)
    return ctx.layer(spec, (x,))


@binds_forward
def _linear_module(ctx: Context, m: nn.Module, a: Bound) -> Any:
    x = a.tensor()
    return ctx.layer(Linear(m.out_features, m.bias is not None, m.in_features), (x,))


def _norm_spec(kind: str, m: nn.Module) -> Norm:
    """The Norm spec of a torch norm module of a kind in the catalog (costlab.core.specs.NORMS)."""
    if kind in ("batch", "instance"):
        return Norm(kind, m.affine, m.track_running_stats, m.num_features)
    if kind == "group":
        return Norm("group", m.affine, False, m.num_channels, m.num_groups)
    if kind == "layer":
        return Norm("layer", m.elementwise_affine, False, normalized_shape=tuple(m.normalized_shape))
    raise RuleError(f"no norm rule for {type(m).__name__}")  # pragma: no cover - a kind without a reader


#: Norm module type → costlab norm kind (from the catalog, costlab.core.specs.NORMS).
NORM_MODULES: Mapping[type, str] = {getattr(nn, name): kind for kind, n in NORMS.items() for name in n.modules}


@binds_forward
def _norm_module(ctx: Context, m: nn.Module, a: Bound) -> Any:
    x = a.tensor()
    kind = next(NORM_MODULES[c] for c in type(m).__mro__ if c in NORM_MODULES)
    return ctx.layer(_norm_spec(kind, m), (x,))


#: Activation module type → costlab activation kind (from the catalog, costlab.core.specs.ACTIVATIONS).
ACTIVATION_MODULES: Mapping[type, str] = {getattr(nn, a.module): kind for kind, a in ACTIVATIONS.items()}


@binds_forward
def _activation_module(ctx: Context, m: nn.Module, a: Bound) -> Any:
    x = a.tensor()
    kind = next(ACTIVATION_MODULES[c] for c in type(m).__mro__ if c in ACTIVATION_MODULES)
    return ctx.layer(Activation(kind), (x,))


#: Pool module type → (its catalog entry, its rank) (from the catalog, costlab.core.specs.POOLS).
POOL_MODULES: Mapping[type, tuple[PoolKind, int]] = {
    getattr(nn, name): (p, rank) for p in POOLS.values() for rank, name in enumerate(p.modules, 1)}


def pool_spec(mode: str, ndim: int, kernel: Any, stride: Any, padding: Any, dilation: Any,
              ceil_mode: bool, count_include_pad: bool = True) -> Pool:
    kernel_t = _ints(kernel, ndim, "kernel")
    stride_t = kernel_t if stride is None or stride == [] or stride == () else _ints(stride, ndim, "stride")
    return Pool(mode, kernel_t, stride_t, _ints(padding, ndim, "padding"),  # type: ignore[arg-type]
                _ints(dilation, ndim, "dilation"), bool(ceil_mode), bool(count_include_pad))


@binds_forward
def _pool_module(ctx: Context, m: nn.Module, a: Bound) -> Any:
    x = a.tensor()
    entry, ndim = next(POOL_MODULES[c] for c in type(m).__mro__ if c in POOL_MODULES)
    mode = entry.mode
    _spatial_dims(x.shape, ndim, type(m).__name__)
    if getattr(m, "return_indices", False):
        raise RuleError("max pooling that returns indices")
    spec = pool_spec(mode, ndim, m.kernel_size, m.stride, m.padding, getattr(m, "dilation", 1),
                     m.ceil_mode, getattr(m, "count_include_pad", True))
    return ctx.layer(spec, (x,))


def adaptive_spec(mode: str, ndim: int, output_size: Any) -> AdaptivePool:
    if isinstance(output_size, (list, tuple, torch.Size)):
        size = tuple(output_size)
        if len(size) != ndim or not all(s is None or isinstance(s, int) for s in size):
            raise RuleError(f"adaptive pool output size {output_size!r}")
    elif isinstance(output_size, int):
        size = (output_size,) * ndim
    else:
        raise RuleError(f"adaptive pool output size {output_size!r}")
    return AdaptivePool(mode, size)  # type: ignore[arg-type]


@binds_forward
def _adaptive_module(ctx: Context, m: nn.Module, a: Bound) -> Any:
    x = a.tensor()
    entry, ndim = next(POOL_MODULES[c] for c in type(m).__mro__ if c in POOL_MODULES)
    mode = entry.mode
    _spatial_dims(x.shape, ndim, type(m).__name__)
    if getattr(m, "return_indices", False):
        raise RuleError("adaptive max pooling that returns indices")
    return ctx.layer(adaptive_spec(mode, ndim, m.output_size), (x,))


@binds_forward
def _dropout_module(ctx: Context, m: nn.Module, a: Bound) -> Any:
    return ctx.layer(Dropout(float(m.p)), (a.tensor(),))


@binds_forward
def _flatten_module(ctx: Context, m: nn.Module, a: Bound) -> Any:
    return ctx.layer(Flatten(m.start_dim, m.end_dim), (a.tensor(),))


@binds_forward
def _unflatten_module(ctx: Context, m: nn.Module, a: Bound) -> Any:
    x = a.tensor()
    return _reshape_layer(ctx, x, unflatten_shape(x.shape, m.dim, tuple(m.unflattened_size)), "unflatten")


@binds_forward
def _embedding_module(ctx: Context, m: nn.Module, a: Bound) -> Any:
    return ctx.layer(Embedding(m.num_embeddings, m.embedding_dim), (a.tensor(),))


def upsample_spec(x: TensorValue, size: Any, scale_factor: Any, mode: str) -> Any:
    """Output size: ``size``, or ⌊n·s⌋ per spatial axis (PyTorch's rule without recomputed scales)."""
    ndim = len(x.shape) - 2
    if ndim < 1:
        raise RuleError("interpolation of an input without spatial axes")
    if mode not in UPSAMPLE_OPS:
        raise RuleError(f"interpolation mode {mode!r}")
    if size is not None:
        out = _ints(size, ndim, "size")
    elif scale_factor is not None:
        scales = tuple(scale_factor) if isinstance(scale_factor, (list, tuple)) else (scale_factor,) * ndim
        if len(scales) != ndim:
            raise RuleError(f"scale factor {scale_factor!r}")
        out = tuple(math.floor(n * float(s)) for n, s in zip(x.shape[2:], scales))
    else:
        raise RuleError("interpolation without size or scale factor")
    return Upsample(out, mode)


@binds_forward
def _upsample_module(ctx: Context, m: nn.Module, a: Bound) -> Any:
    x = a.tensor()
    return ctx.layer(upsample_spec(x, m.size, m.scale_factor, m.mode), (x,))


@binds_forward
def _shuffle_module(ctx: Context, m: nn.Module, a: Bound) -> Any:
    """Channel/pixel shuffles: a permutation of elements, priced as a zero-cost reshape."""
    x = a.tensor()
    if len(x.shape) < 3:
        raise RuleError("a shuffle needs a channel axis")
    n, c, rest = x.shape[0], x.shape[1], x.shape[2:]
    if isinstance(m, nn.PixelShuffle):
        r = m.upscale_factor
        if c % (r * r) or len(rest) != 2:
            raise RuleError("pixel shuffle of an incompatible shape")
        shape = (n, c // (r * r), rest[0] * r, rest[1] * r)
    elif isinstance(m, nn.PixelUnshuffle):
        r = m.downscale_factor
        if len(rest) != 2 or rest[0] % r or rest[1] % r:
            raise RuleError("pixel unshuffle of an incompatible shape")
        shape = (n, c * r * r, rest[0] // r, rest[1] // r)
    else:
        shape = x.shape
    return _reshape_layer(ctx, x, shape, type(m).__name__.lower())


#: Padding module base type → its mode (from the catalog, costlab.core.specs.PADS; where torch has it).
_PAD_MODULES: Mapping[type, str] = {getattr(nn.modules.padding, p.module_base): mode for mode, p in PADS.items()
                                    if hasattr(nn.modules.padding, p.module_base)}


@binds_forward
def _pad_module(ctx: Context, m: nn.Module, a: Bound) -> Any:
    x = a.tensor()
    mode = next(_PAD_MODULES[c] for c in type(m).__mro__ if c in _PAD_MODULES)
    return ctx.layer(Pad(tuple(m.padding), mode), (x,))


def _attention_masks(padding: Any, given: Any) -> tuple[str, ...]:
    """The masks nn.MultiheadAttention was given (costlab.core.specs.ATTENTION_MASKS)."""
    masks = ("key_padding",) if isinstance(padding, TensorValue) else ()
    if isinstance(given, TensorValue):
        masks += ("attn_2d" if len(given.shape) == 2 else "attn_3d",)
    return masks


@binds_forward
def _multihead_attention(ctx: Context, m: nn.Module, a: Bound) -> Any:
    """nn.MultiheadAttention as its parts: q/k/v projections, attention over heads, output projection.

    MACs = L·N·E·E + S·N·(kdim + vdim)·E (projections) + N·L·S·2E (scores and weighted sum)
    + L·N·E·E (output projection); the head-averaged weights it can also return are not priced.
    """
    query, key, value = a.tensor("query"), a.tensor("key"), a.tensor("value")
    need_weights = a.get("need_weights", True)
    average = a.get("average_attn_weights", True)
    if a.get("key_padding_mask") is not None and m.add_zero_attn:
        raise RuleError("zero attention with a key padding mask")
    e, heads = m.embed_dim, m.num_heads
    head_dim = e // heads
    batched = len(query.shape) == 3
    if len(query.shape) not in (2, 3):
        raise RuleError(f"multi-head attention on a {len(query.shape)}-d query")
    if batched and m.batch_first:
        n, length, source = query.shape[0], query.shape[1], key.shape[1]
    elif batched:
        length, n, source = query.shape[0], query.shape[1], key.shape[0]
    else:
        n, length, source = 1, query.shape[0], key.shape[0]
    source += (1 if m.bias_k is not None else 0) + (1 if m.add_zero_attn else 0)
    bias = m.in_proj_bias is not None
    q = ctx.layer(Linear(e, bias, e), (query,), "q_proj")
    k = ctx.layer(Linear(e, bias, m.kdim), (key,), "k_proj")
    v = ctx.layer(Linear(e, bias, m.vdim), (value,), "v_proj")
    lead = (n, heads) if batched else (heads,)
    padding, given = a.get("key_padding_mask"), a.get("attn_mask")
    kernel = ("baddbmm" if padding is not None or given is not None else "bmm") if need_weights else "sdpa"
    causal = bool(a.get("is_causal", False)) and not need_weights
    masks = _attention_masks(padding, given) if kernel == "baddbmm" else ()
    appended = (("bias_kv",) if m.bias_k is not None else ()) + (("zero_attn",) if m.add_zero_attn else ())
    attended = ctx.layer(Attention(causal=causal, kernel=kernel, masks=masks, appended=appended),
                         (TensorValue(lead + (length, head_dim), q.producer),
                          TensorValue(lead + (source, head_dim), k.producer),
                          TensorValue(lead + (source, head_dim), v.producer)), "attention")
    merged = TensorValue(query.shape[:-1] + (e,), attended.producer)
    out = ctx.layer(Linear(e, m.out_proj.bias is not None, e), (merged,), "out_proj")
    weights = None
    if need_weights:
        shape = ((n,) if batched else ()) + (() if average else (heads,)) + (length, source)
        weights = TensorValue(shape, attended.producer)
    return out, weights


#: Recurrent module type → {its nonlinearity ('' for none): mode} (from the catalog, costlab.core.specs.RECURRENTS).
RECURRENT_MODULES: Mapping[type, Mapping[str, str]] = {
    cls: {r.nonlinearity: mode for mode, r in RECURRENTS.items() if getattr(nn, r.module) is cls}
    for cls in dict.fromkeys(getattr(nn, r.module) for r in RECURRENTS.values())}


@binds_forward
def _recurrent_module(ctx: Context, m: nn.Module, a: Bound) -> Any:
    """nn.LSTM / nn.GRU / nn.RNN: one Recurrent layer; returns (output, h_n) or (output, (h_n, c_n))."""
    x = a.tensor()
    modes = next(RECURRENT_MODULES[c] for c in type(m).__mro__ if c in RECURRENT_MODULES)
    mode = modes.get(getattr(m, "nonlinearity", ""))
    if mode is None:
        raise RuleError(f"a recurrent layer with nonlinearity {getattr(m, 'nonlinearity', '')!r}")
    spec = Recurrent(mode, m.input_size, m.hidden_size, m.num_layers, bool(m.bias), bool(m.batch_first),
                     bool(m.bidirectional), int(getattr(m, "proj_size", 0)))
    out = ctx.layer(spec, (x,))
    d = 2 if m.bidirectional else 1
    lead = (d * m.num_layers,) + ((x.shape[0 if m.batch_first else 1],) if len(x.shape) == 3 else ())
    h = TensorValue(lead + (spec.proj_size or spec.hidden_size,), out.producer)
    if mode == "lstm":
        return out, (h, TensorValue(lead + (spec.hidden_size,), out.producer))
    return out, h


#: Leaf module type → rule (looked up along the type's MRO).
MODULE_RULES: Mapping[type, ModuleRule] = {
    **{cls: _conv_module for cls in CONV_MODULES},
    nn.Linear: _linear_module,
    **{cls: _norm_module for cls in NORM_MODULES},
    **{cls: _activation_module for cls in ACTIVATION_MODULES},
    **{cls: _adaptive_module if entry.adaptive else _pool_module for cls, (entry, _) in POOL_MODULES.items()},
    **{cls: _dropout_module for cls in (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d,
                                        nn.AlphaDropout, nn.FeatureAlphaDropout)},
    nn.Flatten: _flatten_module,
    nn.Unflatten: _unflatten_module,
    nn.Embedding: _embedding_module,
    nn.Upsample: _upsample_module,
    **{cls: _shuffle_module for cls in (nn.ChannelShuffle, nn.PixelShuffle, nn.PixelUnshuffle)},
    nn.MultiheadAttention: _multihead_attention,
    **{cls: _pad_module for cls in _PAD_MODULES},
    **{cls: _recurrent_module for cls in RECURRENT_MODULES},
}


def module_rule(module: nn.Module) -> ModuleRule | None:
    """The rule of ``module``'s type: the nearest class in its MRO that the table lists, provided
    the module still runs that class's ``forward`` (a subclass with its own forward gets none)."""
    for cls in type(module).__mro__:
        if cls in MODULE_RULES:
            return MODULE_RULES[cls] if type(module).forward is cls.forward else None
    return None


_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def is_leaf(module: nn.Module) -> bool:
    """A module the trace prices as a whole: one the table knows, or a torch.nn module without
    children that the table does not know (listed as unsupported rather than traced into)."""
    if module_rule(module) is not None:
        return True
    if isinstance(module, _CONTAINERS):
        return False
    origin = type(module).__module__
    from_torch = origin.startswith("torch.nn.") or origin.startswith("torch.ao.nn.")
    return from_torch and next(module.children(), None) is None


def leaf_modules(root: nn.Module) -> dict[str, nn.Module]:
    """Path → module for the leaves of ``root``, not descending into a leaf (a leaf root: {'': root})."""
    leaves: dict[str, nn.Module] = {}

    def visit(module: nn.Module, path: str) -> None:
        if is_leaf(module):
            leaves.setdefault(path, module)
            return
        for name, child in module.named_children():
            visit(child, f"{path}.{name}" if path else name)

    visit(root, "")
    return leaves


# --- functions: arithmetic ----------------------------------------------------------------

def _tensors_in(values: Sequence[Any]) -> list[TensorValue]:
    return [v for v in values if isinstance(v, TensorValue)]


def _attribute_tensors(values: Sequence[Any]) -> list[Any]:
    return [v.tensor for v in values if isinstance(v, TensorValue) and v.tensor is not None]


_PYTHON_BINARY: Mapping[str, Callable[[Any, Any], Any]] = {
    kind: getattr(operator, a.operator) for kind, a in ARITHMETIC.items()}


def _elementwise(kind: str, reflected: bool = False, names: tuple[str, str] = ("input", "other")) -> FunctionRule:
    """``a ∘ b``: Elementwise(kind), 1 op per output element; Python numbers only → Python.
    ``names``: the function's names of a and b (torch.true_divide's dividend and divisor)."""

    @binds(*names, "alpha")
    def rule(ctx: Context, call: Bound) -> Any:
        a, b = call[names[0]], call[names[1]]
        if reflected:
            a, b = b, a
        operands = _tensors_in((a, b))
        if not operands:
            return _PYTHON_BINARY[kind](a, b)
        if call.get("alpha", 1) != 1:
            raise RuleError(f"{kind} with a scale factor alpha")
        return ctx.layer(Elementwise(kind), operands, params=_attribute_tensors(operands))

    return rule


def _unary_elementwise(kind: str, python: Callable[[Any], Any]) -> FunctionRule:
    @binds("input")
    def rule(ctx: Context, call: Bound) -> Any:
        x = call["input"]
        if not isinstance(x, TensorValue):
            return python(x)
        return ctx.layer(Elementwise(kind), (x,), params=_attribute_tensors((x,)))

    return rule


_PYTHON_COMPARISONS: Mapping[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le, "gt": operator.gt,
    "ge": operator.ge,
}


def _comparison(name: str) -> FunctionRule:
    """``a == b`` and friends on tensors: Elementwise('compare'), 1 op per element."""

    @binds("input", "other")
    def rule(ctx: Context, call: Bound) -> Any:
        a, b = call["input"], call["other"]
        operands = _tensors_in((a, b))
        if not operands:
            return _PYTHON_COMPARISONS[name](a, b)
        return ctx.layer(Elementwise("compare"), operands)

    return rule


@binds("input", "mask", "value")
def _masked_fill(ctx: Context, call: Bound) -> Any:
    x, mask = call.tensor(), call.tensor("mask")
    return ctx.layer(Elementwise("masked_fill"), (x, mask))


@binds("condition", "input", "other")
def _where(ctx: Context, call: Bound) -> Any:
    operands = _tensors_in([call[name] for name in call.names])
    if not operands:
        raise RuleError("torch.where without tensors")
    return ctx.layer(Elementwise("where"), operands)


@binds("input", "shifts", "dims")
def _roll(ctx: Context, call: Bound) -> Any:
    x = call.tensor()
    return _reshape_layer(ctx, x, x.shape, "roll")


@binds("input", "pad", "mode", "value")
def _pad(ctx: Context, call: Bound) -> Any:
    x = call.tensor()
    pads = call["pad"]
    mode = call.get("mode", "constant")
    if mode not in PAD_MODES:
        raise RuleError(f"padding mode {mode!r}")
    return ctx.layer(Pad(_ints(pads, len(tuple(pads)), "pad"), mode), (x,))


def _reduction(kind: str) -> FunctionRule:
    """x.mean(dim, keepdim), torch.sum(x, dim), x.amax(dim): Reduce(kind, dims, keepdim)."""

    @binds("input", "dim", "keepdim")
    def rule(ctx: Context, call: Bound) -> Any:
        x = call.tensor()
        unknown = set(call.values) - {"input", "dim", "axis", "keepdim", "dtype"}
        if unknown:
            raise RuleError(f"{kind} with {', '.join(sorted(unknown))}")
        dim = call.get("dim", call.get("axis"))  # axis=: NumPy's name, which torch takes too
        keepdim = call.get("keepdim", False)
        if dim is None or dim == ():
            dims: tuple[int, ...] = ()
        elif isinstance(dim, int):
            dims = (dim,)
        elif isinstance(dim, (tuple, list)) and all(isinstance(d, int) for d in dim):
            dims = tuple(dim)
        else:
            raise RuleError(f"{kind} over {dim!r}")
        if not isinstance(keepdim, bool):
            raise RuleError(f"{kind} with keepdim {keepdim!r}")
        return ctx.layer(Reduce(kind, dims, keepdim), (x,))

    return rule


@binds("input", "p", "mode", "training")
def _stochastic_depth(ctx: Context, call: Bound) -> Any:
    """torchvision's stochastic depth: identity at inference, like dropout."""
    return ctx.layer(Dropout(float(call["p"])), (call.tensor(),))


def _matmul(second: str = "other", reflected: bool = False) -> FunctionRule:
    """``a @ b``, torch.matmul(input, other), torch.mm / bmm(input, mat2): Matmul; ``__rmatmul__`` reflected."""

    @binds("input", second)
    def rule(ctx: Context, call: Bound) -> Any:
        a, b = call.tensor(), call.tensor(second)
        if reflected:
            a, b = b, a
        return ctx.layer(Matmul(), (a, b), params=_attribute_tensors((a, b)))

    return rule


@binds("input", "weight", "bias")
def _linear(ctx: Context, call: Bound) -> Any:
    x, w = call.tensor(), call.tensor("weight")
    b = call.optional_tensor("bias")
    if len(w.shape) != 2:
        raise RuleError("F.linear with a weight that is not a matrix")
    spec = Linear(w.shape[0], b is not None, w.shape[1])
    return ctx.layer(spec, (x,), params=[t for t in (w.tensor, b.tensor if b else None) if t is not None])


def _conv(ndim: int, transposed: bool = False) -> FunctionRule:
    """F.conv{n}d(x, w, b, stride, padding, dilation, groups) / F.conv_transpose{n}d(x, w, b,
    stride, padding, output_padding, groups, dilation)."""

    @binds(*(("input", "weight", "bias", "stride", "padding", "output_padding", "groups", "dilation")
              if transposed else ("input", "weight", "bias", "stride", "padding", "dilation", "groups")))
    def rule(ctx: Context, call: Bound) -> Any:
        x, w = call.tensor(), call.tensor("weight")
        b = call.optional_tensor("bias")
        if len(w.shape) != ndim + 2:
            raise RuleError("a convolution weight of the wrong rank")
        stride, padding = call.get("stride", 1), call.get("padding", 0)
        dilation, groups = call.get("dilation", 1), call.get("groups", 1)
        output_padding = call.get("output_padding", 0) if transposed else 0
        if transposed:
            out, channels = w.shape[1] * groups, w.shape[0]
        else:
            out, channels = w.shape[0], w.shape[1] * groups
        _check_channels(x, channels, f"conv{ndim}d")
        spec = conv_spec(out, tuple(w.shape[2:]), stride, padding, dilation, groups, b is not None,
                         transposed, output_padding)
        return ctx.layer(spec, (x,), params=[t for t in (w.tensor, b.tensor if b else None) if t is not None])

    return rule


def grouped_query(q: TensorValue, k: TensorValue, v: TensorValue) -> tuple[TensorValue, ...]:
    """k and v broadcast to q's head axis (-3) when they have fewer heads that divide q's."""
    if len(q.shape) >= 3 and len(k.shape) == len(q.shape) and k.shape[-3] != q.shape[-3] \
            and k.shape[-3] and q.shape[-3] % k.shape[-3] == 0:
        heads = q.shape[-3]
        k = TensorValue(k.shape[:-3] + (heads,) + k.shape[-2:], k.producer, k.tensor)
        v = TensorValue(v.shape[:-3] + (heads,) + v.shape[-2:], v.producer, v.tensor)
    return q, k, v


@binds("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")
def _attention(ctx: Context, call: Bound) -> Any:
    """F.scaled_dot_product_attention: Attention on q, k, v. ``is_causal`` is counted in full (the
    kernels compute every score, then mask); ``enable_gqa`` counts keys and values at the query's
    head count, as the kernel repeats them."""
    q, k, v = call.tensor("query"), call.tensor("key"), call.tensor("value")
    causal = bool(call.get("is_causal", False))
    if call.get("enable_gqa", False):
        q, k, v = grouped_query(q, k, v)
    return ctx.layer(Attention(causal=causal), (q, k, v))


@binds("input", "weight", "padding_idx", "max_norm", "norm_type", "scale_grad_by_freq", "sparse")
def _embedding(ctx: Context, call: Bound) -> Any:
    x, w = call.tensor(), call.tensor("weight")
    return ctx.layer(Embedding(w.shape[0], w.shape[1]), (x,), params=[w.tensor] if w.tensor is not None else [])


#: The parameters of each norm kind's functional form (F.batch_norm, F.instance_norm, F.layer_norm, F.group_norm).
_NORM_SIGNATURES: Mapping[str, tuple[str, ...]] = {
    "batch": ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps"),
    "instance": ("input", "running_mean", "running_var", "weight", "bias", "use_input_stats", "momentum", "eps"),
    "layer": ("input", "normalized_shape", "weight", "bias", "eps"),
    "group": ("input", "num_groups", "weight", "bias", "eps"),
}


def _norm_function(kind: str) -> FunctionRule:
    """F.batch_norm(x, mean, var, w, b, …), F.layer_norm(x, shape, w, b), F.group_norm(x, g, w, b),
    F.instance_norm(x, mean, var, w, b, …)."""

    @binds(*_NORM_SIGNATURES[kind])
    def rule(ctx: Context, call: Bound) -> Any:
        x = call.tensor()
        w, b = call.optional_tensor("weight"), call.optional_tensor("bias")
        if kind in ("batch", "instance"):
            mean, var = call.optional_tensor("running_mean"), call.optional_tensor("running_var")
            spec = Norm(kind, w is not None, mean is not None)  # type: ignore[arg-type]
            extra = [mean, var]
        elif kind == "layer":
            shape = call["normalized_shape"]
            dims = tuple(shape) if isinstance(shape, (tuple, list, torch.Size)) else (shape,)
            spec = Norm("layer", w is not None, False, normalized_shape=_ints(dims, len(dims), "normalized shape"))
            extra = []
        else:
            groups = call["num_groups"]
            spec = Norm("group", w is not None, False, num_groups=groups)
            extra = []
        consumed = [v.tensor for v in (w, b, *extra) if v is not None and v.tensor is not None]
        return ctx.layer(spec, (x,), params=consumed)

    return rule


def _activation_function(kind: str) -> FunctionRule:
    """F.relu(input, inplace), F.softmax(input, dim, ...), x.sigmoid(), …: the input's elements (the
    other parameters change no count)."""

    @binds("input", variadic=True)
    def rule(ctx: Context, call: Bound) -> Any:
        return ctx.layer(Activation(kind), (call.tensor(),))

    return rule


def _pool_function(mode: str, ndim: int) -> FunctionRule:
    @binds(*(("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices") if mode == "max"
             else ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")))
    def rule(ctx: Context, call: Bound) -> Any:
        x = call.tensor()
        _spatial_dims(x.shape, ndim, f"{mode}_pool{ndim}d")
        kernel, stride, padding = call["kernel_size"], call.get("stride"), call.get("padding", 0)
        ceil_mode = call.get("ceil_mode", False)
        if mode == "max":
            if call.get("return_indices", False):
                raise RuleError("max pooling that returns indices")
            spec = pool_spec("max", ndim, kernel, stride, padding, call.get("dilation", 1), ceil_mode)
        else:
            include = call.get("count_include_pad", True)
            spec = pool_spec("avg", ndim, kernel, stride, padding, 1, ceil_mode, include)
        return ctx.layer(spec, (x,))

    return rule


def _adaptive_function(mode: str, ndim: int) -> FunctionRule:
    @binds(*(("input", "output_size", "return_indices") if mode == "max" else ("input", "output_size")))
    def rule(ctx: Context, call: Bound) -> Any:
        x = call.tensor()
        _spatial_dims(x.shape, ndim, f"adaptive_{mode}_pool{ndim}d")
        if call.get("return_indices", False):
            raise RuleError("adaptive max pooling that returns indices")
        return ctx.layer(adaptive_spec(mode, ndim, call["output_size"]), (x,))

    return rule


@binds("input", "p", "training", "inplace")
def _dropout_function(ctx: Context, call: Bound) -> Any:
    return ctx.layer(Dropout(float(call.get("p", 0.5))), (call.tensor(),))


@binds("input", "size", "scale_factor", "mode", "align_corners", "recompute_scale_factor", "antialias")
def _interpolate(ctx: Context, call: Bound) -> Any:
    x = call.tensor()
    spec = upsample_spec(x, call.get("size"), call.get("scale_factor"), call.get("mode", "nearest"))
    return ctx.layer(spec, (x,))


# --- functions: layout (shape rules, no arithmetic) --------------------------------------

def _axis(dim: Any, rank: int) -> int:
    if not isinstance(dim, int) or not -max(rank, 1) <= dim < max(rank, 1):
        raise RuleError(f"axis {dim!r} of a {rank}-d tensor")
    return dim % max(rank, 1)


def _reshape_layer(ctx: Context, x: TensorValue, shape: Shape, kind: str) -> TensorValue:
    return ctx.layer(Reshape(tuple(shape), kind), (x,))


def resolve_shape(shape: Sequence[Any], elements: int) -> Shape:
    """A view/reshape target with at most one -1, resolved against the element count."""
    sizes = list(shape)
    if not all(isinstance(s, int) for s in sizes) or sizes.count(-1) > 1:
        raise RuleError(f"reshape to {tuple(shape)!r}")
    if -1 in sizes:
        known = numel([s for s in sizes if s != -1])
        if known == 0 or elements % known:
            raise RuleError(f"reshape of {elements} elements to {tuple(shape)!r}")
        sizes[sizes.index(-1)] = elements // known
    return tuple(sizes)


def _shape_args(args: Sequence[Any]) -> tuple[Any, ...]:
    """``view(2, 3)`` and ``view((2, 3))`` alike."""
    if len(args) == 1 and isinstance(args[0], (tuple, list, torch.Size)):
        return tuple(args[0])
    return tuple(args)


def _view(kind: str) -> FunctionRule:
    """x.view(*shape), x.reshape(*shape), torch.reshape(input, shape)."""

    @binds("input", variadic=True)
    def rule(ctx: Context, call: Bound) -> Any:
        x = call.tensor()
        target = call.sizes("shape")
        return _reshape_layer(ctx, x, resolve_shape(target, numel(x.shape)), kind)

    return rule


@binds("input", "start_dim", "end_dim")
def _flatten(ctx: Context, call: Bound) -> Any:
    return ctx.layer(Flatten(call.get("start_dim", 0), call.get("end_dim", -1)), (call.tensor(),))


def unflatten_shape(shape: Shape, dim: int, sizes: Sequence[int]) -> Shape:
    axis = _axis(dim, len(shape))
    return shape[:axis] + resolve_shape(tuple(sizes), shape[axis]) + shape[axis + 1:]


@binds("input", "dim", "sizes")
def _unflatten(ctx: Context, call: Bound) -> Any:
    x = call.tensor()
    shape = unflatten_shape(x.shape, call["dim"], tuple(call["sizes"]))
    return _reshape_layer(ctx, x, shape, "unflatten")


@binds("input", variadic=True)
def _permute(ctx: Context, call: Bound) -> Any:
    """x.permute(*dims), torch.permute(input, dims)."""
    x = call.tensor()
    dims = call.sizes("dims")
    axes = [_axis(d, len(x.shape)) for d in dims]
    if sorted(axes) != list(range(len(x.shape))):
        raise RuleError(f"permutation {dims!r}")
    return _reshape_layer(ctx, x, tuple(x.shape[a] for a in axes), "permute")


def _transpose(first: str = "dim0", second: str = "dim1") -> FunctionRule:
    """transpose(input, dim0, dim1), swapaxes(input, axis0, axis1): a zero-cost reshape."""

    @binds("input", first, second)
    def rule(ctx: Context, call: Bound) -> Any:
        x = call.tensor()
        return _reshape_layer(ctx, x, swapped(x.shape, call[first], call[second]), "transpose")

    return rule


def swapped(shape: Shape, first: Any, second: Any) -> Shape:
    """``shape`` with axes ``first`` and ``second`` exchanged."""
    a, b = _axis(first, len(shape)), _axis(second, len(shape))
    sizes = list(shape)
    sizes[a], sizes[b] = sizes[b], sizes[a]
    return tuple(sizes)


@binds("input")
def _t(ctx: Context, call: Bound) -> Any:
    x = call.tensor()
    if len(x.shape) > 2:
        raise RuleError("t() of a tensor with more than two axes")
    return _reshape_layer(ctx, x, tuple(reversed(x.shape)), "transpose")


@binds("input", "dim")
def _squeeze(ctx: Context, call: Bound) -> Any:
    x = call.tensor()
    dim = call.get("dim")
    if dim is None:
        shape = tuple(n for n in x.shape if n != 1)
    else:
        dims = {_axis(d, len(x.shape)) for d in (dim if isinstance(dim, (tuple, list)) else (dim,))}
        shape = tuple(n for i, n in enumerate(x.shape) if not (i in dims and n == 1))
    return _reshape_layer(ctx, x, shape, "squeeze")


@binds("input", "dim")
def _unsqueeze(ctx: Context, call: Bound) -> Any:
    x = call.tensor()
    axis = _axis(call["dim"], len(x.shape) + 1)
    return _reshape_layer(ctx, x, x.shape[:axis] + (1,) + x.shape[axis:], "unsqueeze")


def _tensor_list(value: Any, what: str) -> list[TensorValue]:
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(t, TensorValue) for t in value):
        raise RuleError(f"{what} of something other than a list of tensors")
    return list(value)


def is_empty_vector(value: TensorValue) -> bool:
    """A 1-d tensor of no elements: torch.cat skips it whatever the other shapes (a fresh KV cache)."""
    return len(value.shape) == 1 and value.shape[0] == 0


def _concat(axis: str = "dim") -> FunctionRule:
    """torch.cat(tensors, dim), torch.concatenate(tensors, axis): Concat of the inputs along the axis,
    empty 1-d tensors skipped; one input left is returned as it is (no copy counted)."""

    @binds("tensors", axis)
    def rule(ctx: Context, call: Bound) -> Any:
        given = _tensor_list(call["tensors"], "torch.cat")
        tensors = [t for t in given if not is_empty_vector(t)]
        if len(tensors) <= 1:
            return tensors[0] if tensors else given[0]
        return ctx.layer(Concat(call.get(axis, 0)), tuple(tensors), params=_attribute_tensors(tensors))

    return rule


@binds("tensors", "dim")
def _stack(ctx: Context, call: Bound) -> Any:
    """torch.stack: a concatenation of the inputs, each with a new axis ``dim``."""
    tensors = _tensor_list(call["tensors"], "torch.stack")
    axis = _axis(call.get("dim", 0), len(tensors[0].shape) + 1)
    lifted = tuple(TensorValue(t.shape[:axis] + (1,) + t.shape[axis:], t.producer, t.tensor) for t in tensors)
    return ctx.layer(Concat(axis), lifted, params=_attribute_tensors(tensors))


@binds("input", variadic=True)
def _same(ctx: Context, call: Bound) -> Any:
    """contiguous, to, float, detach, clone, …: the same shape, no layer (whatever else they are given)."""
    return call.tensor()


@binds("input", "index", "value")
def _setitem(ctx: Context, call: Bound) -> Any:
    """x[index] = value: a write in place, no arithmetic, no layer (aten's fill_, copy_, index_put_);
    into a Python container, the write itself."""
    container, index, value = call["input"], call["index"], call["value"]
    if not isinstance(container, TensorValue):
        container[index] = value
    return None


@binds("input", "other")
def _reshape_as(ctx: Context, call: Bound) -> Any:
    """x.reshape_as(other) / x.view_as(other): other's shape, no layer."""
    x, other = call.tensor(), call.tensor("other")
    if numel(x.shape) != numel(other.shape):
        raise RuleError(f"reshape_as from {x.shape} to {other.shape}")
    return TensorValue(other.shape, x.producer, x.tensor)


@binds("input", "indices_or_sections", "dim")
def _tensor_split(ctx: Context, call: Bound) -> Any:
    """torch.tensor_split(x, sections or indices, dim): views, no layer."""
    x = call.tensor()
    where = call.get("indices_or_sections")
    if where is None:
        where = call.get("indices", call.get("sections"))
    axis = _axis(call.get("dim", 0), len(x.shape))
    length = x.shape[axis]
    if isinstance(where, int):
        if where <= 0:
            raise RuleError(f"tensor_split into {where} sections")
        base, extra = divmod(length, where)
        sizes = [base + (1 if i < extra else 0) for i in range(where)]
    elif isinstance(where, (list, tuple)) and all(isinstance(i, int) for i in where):
        bounds = [0, *(max(0, min(length, i if i >= 0 else length + i)) for i in where), length]
        sizes = [max(0, b - a) for a, b in zip(bounds, bounds[1:])]
    else:
        raise RuleError(f"tensor_split at {where!r}")
    return tuple(TensorValue(x.shape[:axis] + (n,) + x.shape[axis + 1:], x.producer, x.tensor) for n in sizes)


@binds("input", variadic=True)
def _expand(ctx: Context, call: Bound) -> Any:
    """x.expand(*sizes): a broadcast view, no copy, no layer."""
    x = call.tensor()
    sizes = call.sizes("size")
    if len(sizes) < len(x.shape):
        raise RuleError(f"expand to {sizes!r}")
    padded = (1,) * (len(sizes) - len(x.shape)) + x.shape
    return TensorValue(tuple(n if s == -1 else s for s, n in zip(sizes, padded)), x.producer, x.tensor)


@binds("input", "other")
def _expand_as(ctx: Context, call: Bound) -> Any:
    x, other = call.tensor(), call.tensor("other")
    return TensorValue(broadcast([x.shape, other.shape], "expand_as"), x.producer, x.tensor)


def _split_sizes(length: int, size: Any, chunks: bool) -> list[int]:
    if chunks:
        if not isinstance(size, int) or size <= 0:
            raise RuleError(f"chunk count {size!r}")
        step = -(-length // size)
        return [min(step, length - i) for i in range(0, length, step)] if length else [0]
    if isinstance(size, int):
        if size <= 0:
            raise RuleError(f"split size {size!r}")
        return [min(size, length - i) for i in range(0, length, size)]
    sizes = list(size)
    if sum(sizes) != length:
        raise RuleError(f"split sizes {sizes!r} of an axis of {length}")
    return sizes


def _splitter(chunks: bool, names: tuple[str, str] = ("input", "split_size_or_sections")) -> FunctionRule:
    """chunk(input, chunks, dim) / split: views along one axis, no layer; ``names``: a split's tensor
    and sizes (torch.split's tensor, split_size_or_sections; Tensor.split's split_size)."""

    @binds(*(("input", "chunks") if chunks else names), "dim")
    def rule(ctx: Context, call: Bound) -> Any:
        x = call.tensor()
        size = call[call.names[1]]
        axis = _axis(call.get("dim", 0), len(x.shape))
        return tuple(TensorValue(x.shape[:axis] + (n,) + x.shape[axis + 1:], x.producer, x.tensor)
                     for n in _split_sizes(x.shape[axis], size, chunks))

    return rule


@binds("input", "dim")
def _unbind(ctx: Context, call: Bound) -> Any:
    x = call.tensor()
    axis = _axis(call.get("dim", 0), len(x.shape))
    return tuple(TensorValue(x.shape[:axis] + x.shape[axis + 1:], x.producer, x.tensor)
                 for _ in range(x.shape[axis]))


def index_shape(shape: Shape, index: Any) -> Shape:
    """Shape of ``x[index]``: integers, slices, None, Ellipsis, and at most one integer tensor
    index (its shape replaces the axis it indexes)."""
    items = list(index) if isinstance(index, tuple) else [index]
    tensors = [i for i in items if isinstance(i, TensorValue)]
    if any(not (isinstance(i, (int, slice, TensorValue)) or i is None or i is Ellipsis) for i in items):
        raise RuleError("indexing with lists or other objects")
    if len(tensors) > 1 or (tensors and any(isinstance(i, int) for i in items)):
        raise RuleError("advanced indexing with several index tensors")
    if items.count(Ellipsis) > 1:
        raise RuleError("indexing with two ellipses")
    consuming = sum(1 for i in items if i is not None and i is not Ellipsis)
    if consuming > len(shape):
        raise RuleError(f"{consuming} indices into a {len(shape)}-d tensor")
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items[at:at + 1] = [slice(None)] * (len(shape) - consuming)
    items += [slice(None)] * (len(shape) - sum(1 for i in items if i is not None))
    out: list[int] = []
    axis = 0
    for item in items:
        if item is None:
            out.append(1)
            continue
        size = shape[axis]
        axis += 1
        if isinstance(item, TensorValue):
            out.extend(item.shape)
        elif isinstance(item, slice):
            out.append(len(range(*item.indices(size))))
        elif not -size <= item < size:
            raise RuleError(f"index {item} out of range for an axis of {size}")
    return tuple(out)


@binds("input", "index")
def _getitem(ctx: Context, call: Bound) -> Any:
    container, index = call["input"], call["index"]
    if isinstance(container, TensorValue):
        return TensorValue(index_shape(container.shape, index), container.producer, container.tensor)
    if isinstance(index, TensorValue):
        raise RuleError("indexing a Python object with a tensor")
    return container[index]


@binds("input", "dim")
def _size(ctx: Context, call: Bound) -> Any:
    x = call.tensor()
    dim = call.get("dim")
    return torch.Size(x.shape) if dim is None else x.shape[_axis(dim, len(x.shape))]


@binds("input")
def _dim(ctx: Context, call: Bound) -> Any:
    return len(call.tensor().shape)


@binds("input")
def _numel(ctx: Context, call: Bound) -> Any:
    return numel(call.tensor().shape)


@binds("obj")
def _len(ctx: Context, call: Bound) -> Any:
    return call.tensor().shape[0]


#: Attributes of a tensor the trace can answer from its shape alone.
_TENSOR_ATTRIBUTES: Mapping[str, Callable[[TensorValue], Any]] = {
    "shape": lambda x: torch.Size(x.shape), "ndim": lambda x: len(x.shape),
    # metadata read without arithmetic: an attribute tensor's own, else what a traced input is
    "dtype": lambda x: x.tensor.dtype if isinstance(x.tensor, torch.Tensor) else torch.float32,
    "device": lambda x: x.tensor.device if isinstance(x.tensor, torch.Tensor) else torch.device("cpu"),
    "is_cuda": lambda x: bool(isinstance(x.tensor, torch.Tensor) and x.tensor.is_cuda),
    "requires_grad": lambda x: bool(isinstance(x.tensor, torch.Tensor) and x.tensor.requires_grad),
}


@binds("obj", "name", variadic=True)
def _getattr(ctx: Context, call: Bound) -> Any:
    obj, name = call["obj"], call["name"]
    if isinstance(obj, TensorValue):
        if name == "T":
            return _reshape_layer(ctx, obj, tuple(reversed(obj.shape)), "transpose")
        if name not in _TENSOR_ATTRIBUTES:
            raise RuleError(f"the tensor attribute {name!r}")
        return _TENSOR_ATTRIBUTES[name](obj)
    return getattr(obj, name, *call.rest)


#: Functions of plain Python values a trace may evaluate (the graph's own size arithmetic).
PYTHON_MODULES = (operator, builtins, math)
PYTHON_FUNCTIONS: frozenset[Any] = frozenset({torch._assert})

# --- the tables ---------------------------------------------------------------------------

#: Activation functions and Tensor methods → kind (from the catalog).
_ACTIVATION_FUNCTIONS: Mapping[Any, str] = {
    **{getattr(F, name): kind for kind, a in ACTIVATIONS.items() for name in a.functions},
    **{getattr(torch, name): kind for kind, a in ACTIVATIONS.items() for name in a.torch_functions},
}
_ACTIVATION_METHODS = {name: kind for kind, a in ACTIVATIONS.items() for name in a.methods}


def _named(name: str, rule: FunctionRule) -> tuple[str, FunctionRule]:
    return name, rule


#: Operand names of the arithmetic functions that do not call them input and other.
_OPERANDS: Mapping[Any, tuple[str, str]] = {torch.true_divide: ("dividend", "divisor")}

#: Callable → (op name for layer names, rule). Several objects may name the same op.
FUNCTION_RULES: Mapping[Any, tuple[str, FunctionRule]] = {
    **{fn: _named(kind, _elementwise(kind, names=_OPERANDS.get(fn, ("input", "other"))))
       for kind, a in ARITHMETIC.items()
       for fn in (getattr(operator, a.operator), getattr(operator, f"i{a.operator}"),
                  *(getattr(torch, name) for name in a.torch_functions))},
    operator.neg: _named("neg", _unary_elementwise("neg", operator.neg)),
    torch.neg: _named("neg", _unary_elementwise("neg", operator.neg)),
    **{fn: _named("matmul", _matmul()) for fn in (operator.matmul, torch.matmul)},
    **{fn: _named("matmul", _matmul("mat2")) for fn in (torch.mm, torch.bmm)},
    F.linear: _named("linear", _linear),
    **{getattr(F, name): _named(name, _conv(rank, c.transposed))
       for c in CONVS.values() for rank, name in enumerate(c.functions, 1)},
    F.scaled_dot_product_attention: _named("scaled_dot_product_attention", _attention),
    F.embedding: _named("embedding", _embedding),
    **{getattr(F, name): _named(name, _norm_function(kind)) for kind, n in NORMS.items() for name in n.functions},
    **{fn: _named(kind, _activation_function(kind)) for fn, kind in _ACTIVATION_FUNCTIONS.items()},
    **{fn: _named(name, (_adaptive_function if p.adaptive else _pool_function)(p.mode, rank))
       for p in POOLS.values() for names, namespace in ((p.functions, F), (p.torch_functions, torch))
       for rank, name in enumerate(names, 1) if (fn := getattr(namespace, name, None)) is not None},
    **{fn: _named("dropout", _dropout_function) for fn in (F.dropout, F.dropout1d, F.dropout2d, F.dropout3d,
                                                            F.alpha_dropout, F.feature_alpha_dropout)},
    F.interpolate: _named("interpolate", _interpolate),
    **{fn: _named("cat", _concat()) for fn in (torch.cat, torch.concat)},
    torch.concatenate: _named("cat", _concat("axis")),
    torch.stack: _named("stack", _stack),
    torch.flatten: _named("flatten", _flatten),
    torch.reshape: _named("reshape", _view("reshape")),
    torch.permute: _named("permute", _permute),
    torch.transpose: _named("transpose", _transpose()),
    torch.swapaxes: _named("transpose", _transpose("axis0", "axis1")),
    torch.t: _named("transpose", _t),
    torch.squeeze: _named("squeeze", _squeeze),
    torch.unsqueeze: _named("unsqueeze", _unsqueeze),
    torch.unflatten: _named("unflatten", _unflatten),
    torch.chunk: _named("chunk", _splitter(True)),
    torch.split: _named("split", _splitter(False, ("tensor", "split_size_or_sections"))),
    torch.unbind: _named("unbind", _unbind),
    torch.tensor_split: _named("tensor_split", _tensor_split),
    operator.getitem: _named("getitem", _getitem), operator.setitem: _named("setitem", _setitem),
    builtins.getattr: _named("getattr", _getattr),
    torch.numel: _named("numel", _numel),
    builtins.len: _named("len", _len),
    **{fn: _named("compare", _comparison(name)) for name in _PYTHON_COMPARISONS
       for fn in (getattr(operator, name), getattr(torch, name))},
    torch.masked_fill: _named("masked_fill", _masked_fill),
    torch.where: _named("where", _where),
    torch.roll: _named("roll", _roll),
    F.pad: _named("pad", _pad),
    **{getattr(torch, kind): _named(kind, _reduction(kind)) for kind in REDUCTIONS},
}

#: ``Tensor`` method name (fx ``call_method`` targets, and the methods a dispatch mode sees).
METHOD_RULES: Mapping[str, tuple[str, FunctionRule]] = {
    **{name: _named(kind, _elementwise(kind)) for kind, a in ARITHMETIC.items() for name in a.methods},
    **{a.reflected: _named(kind, _elementwise(kind, reflected=True)) for kind, a in ARITHMETIC.items()},
    "neg": _named("neg", _unary_elementwise("neg", operator.neg)),
    "__neg__": _named("neg", _unary_elementwise("neg", operator.neg)),
    **{name: _named("matmul", _matmul()) for name in ("matmul", "__matmul__")},
    **{name: _named("matmul", _matmul("mat2")) for name in ("mm", "bmm")},
    "__rmatmul__": _named("matmul", _matmul(reflected=True)),
    **{name: _named(kind, _activation_function(kind)) for name, kind in _ACTIVATION_METHODS.items()},
    "view": _named("view", _view("view")), "reshape": _named("reshape", _view("reshape")),
    "flatten": _named("flatten", _flatten), "unflatten": _named("unflatten", _unflatten),
    "permute": _named("permute", _permute), "transpose": _named("transpose", _transpose()),
    "swapaxes": _named("transpose", _transpose("axis0", "axis1")), "t": _named("transpose", _t),
    "squeeze": _named("squeeze", _squeeze), "unsqueeze": _named("unsqueeze", _unsqueeze),
    **{name: _named(name, _same) for name in ("contiguous", "to", "float", "double", "half", "bfloat16",
                                               "type", "type_as", "detach", "clone", "cpu", "cuda",
                                               "requires_grad_", "long", "int", "bool", "short", "byte",
                                               "char", "detach_", "pin_memory")},
    "reshape_as": _named("reshape_as", _reshape_as), "view_as": _named("view_as", _reshape_as),
    "tensor_split": _named("tensor_split", _tensor_split),
    "expand": _named("expand", _expand), "expand_as": _named("expand_as", _expand_as),
    "chunk": _named("chunk", _splitter(True)), "split": _named("split", _splitter(False, ("input", "split_size"))),
    "unbind": _named("unbind", _unbind),
    "__getitem__": _named("getitem", _getitem), "__setitem__": _named("setitem", _setitem),
    "size": _named("size", _size), "dim": _named("dim", _dim), "numel": _named("numel", _numel),
    **{method: _named("compare", _comparison(name)) for name in _PYTHON_COMPARISONS
       for method in (name, f"__{name}__")},
    "masked_fill": _named("masked_fill", _masked_fill), "masked_fill_": _named("masked_fill", _masked_fill),
    "roll": _named("roll", _roll),
    **{kind: _named(kind, _reduction(kind)) for kind in REDUCTIONS},
}

#: Functions of optional packages, found by identity once their module is imported:
#: (module, attribute) → (op name, rule).
OPTIONAL_FUNCTION_RULES: Mapping[tuple[str, str], tuple[str, FunctionRule]] = {
    ("torchvision.ops.stochastic_depth", "stochastic_depth"): _named("stochastic_depth", _stochastic_depth),
}

#: Creation functions: a new tensor from Python values, no arithmetic on the input (shape by a meta run).
CREATION_FUNCTIONS: frozenset[Any] = frozenset({
    torch.zeros, torch.ones, torch.empty, torch.full, torch.arange, torch.rand, torch.randn,
    torch.zeros_like, torch.ones_like, torch.empty_like, torch.full_like, torch.rand_like,
    torch.randn_like, torch.tensor, torch.linspace, torch.eye, torch.as_tensor, torch.randint,
    torch.randperm, torch.empty_strided, torch.scalar_tensor, torch.logspace,
})
CREATION_METHODS = frozenset({"new_zeros", "new_ones", "new_empty", "new_full", "new_tensor"})


def function_rule(target: Any) -> tuple[str, FunctionRule] | None:
    """The (op name, rule) of a callable or ``Tensor`` method name, or None."""
    if isinstance(target, str):
        return METHOD_RULES.get(target)
    try:
        found = FUNCTION_RULES.get(target)
    except TypeError:  # an unhashable callable
        return None
    if found is None:
        for (module_name, attribute), entry in OPTIONAL_FUNCTION_RULES.items():
            module = sys.modules.get(module_name)
            if module is not None and getattr(module, attribute, None) is target:
                return entry
    return found


def tensor_method_name(func: Any) -> str | None:
    """``Tensor.view`` → 'view' (for what a torch-function mode sees); None for anything else."""
    name = getattr(func, "__name__", None)
    if name is None:
        return None
    if getattr(torch.Tensor, name, None) is func:
        return name
    qualname = getattr(func, "__qualname__", "")
    if qualname.startswith(("Tensor.", "TensorBase.", "_TensorBase.")):
        return name
    return None


def qualified_name(target: Any) -> str:
    """The qualified name of a callable or Tensor method: 'torch.nn.functional.relu', 'torch.cat',
    'torch.Tensor.view', 'operator.add', a builtin's bare name."""
    if isinstance(target, str):
        return f"torch.Tensor.{target}"
    name = getattr(target, "__name__", repr(target))
    module = getattr(target, "__module__", None) or ""
    if module == "torch.nn.functional":
        return f"torch.nn.functional.{name}"
    if module == "torch" or module.startswith("torch."):
        return f"torch.{name}"
    if module in ("_operator", "operator"):
        return f"operator.{name}"
    if module == "builtins":
        return name
    return f"{module}.{name}" if module else name


def op_name(target: Any) -> str:
    """A readable name of a callable or method for reports: 'torch.cat', 'F.relu', 'Tensor.view'
    (the short form of :func:`qualified_name`)."""
    return CallSite("function", qualified_name(target)).short
