"""Layer specs: frozen dataclasses, validated on construction, that know nothing of torch.

A spec holds a layer's hyper-parameters only. What it costs on a given input lives in
:mod:`costlab.core.formulas`, one pure function per spec type. Shapes everywhere are tuples
of ints *with* the batch dimension first, e.g. ``(1, 192, 28, 28)``.

Padding follows PyTorch: per-axis symmetric integers, or ``"same"`` (only at stride 1,
where an even kernel pads one more on the right). The factories (:func:`conv2d`,
:func:`max_pool2d`, ...) accept ``"same"``/``"valid"`` and resolve ``"same"`` to
symmetric integers whenever the kernel allows it, so that ``"same"`` also works at
stride 2 for odd kernels (output ⌈n/s⌉).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Literal, Mapping, Union

from .errors import SpecError

Shape = tuple[int, ...]
Padding = Union[tuple[int, ...], Literal["same"]]
PaddingArg = Union[int, tuple[int, ...], str]

#: The op categories of the JSON contract.
OP_CATEGORIES = ("conv", "linear", "matmul", "norm", "act", "pool", "add", "mul",
                 "concat", "reshape", "dropout", "other")


def _positive(owner: str, what: str, value: int) -> None:
    if type(value) is int and value > 0:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise SpecError(f"{owner}: {what} must be a positive integer, got {value!r}")


def _non_negative(owner: str, what: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise SpecError(f"{owner}: {what} must be a non-negative integer, got {value!r}")


def as_tuple(value: int | tuple[int, ...] | list[int], ndim: int, owner: str, what: str) -> tuple[int, ...]:
    """Expand an int to ``ndim`` copies; check a tuple has ``ndim`` entries."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * ndim
    values = tuple(value)
    if len(values) != ndim:
        raise SpecError(f"{owner}: {what} needs {ndim} value(s), got {values!r}")
    return values


def resolve_padding(padding: PaddingArg, kernel: tuple[int, ...], dilation: tuple[int, ...],
                    owner: str) -> Padding:
    """``"valid"`` → zeros; ``"same"`` → symmetric d·(k−1)/2 where that is whole, else ``"same"``."""
    ndim = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return (0,) * ndim
        if padding == "same":
            totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
            if all(t % 2 == 0 for t in totals):
                return tuple(t // 2 for t in totals)
            return "same"
        raise SpecError(f"{owner}: padding must be an integer, 'same' or 'valid', got {padding!r}")
    return as_tuple(padding, ndim, owner, "padding")


@dataclass(frozen=True)
class ConvKind:
    """One convolution family, stated once: whether it is transposed and its PyTorch names by rank
    (1-d, 2-d, 3-d) — the torch bridge's rules, the builder and the conventions' layer kinds derive
    theirs from this one."""

    transposed: bool
    modules: tuple[str, str, str]  # the torch.nn class of each rank
    functions: tuple[str, str, str]  # the torch.nn.functional name of each rank
    aten: tuple[str, ...] = ()  # aten op names (one op for both: its ``transposed`` argument says)


#: The convolution catalog: kind (the conventions' layer kind) → its names.
CONVS: Mapping[str, ConvKind] = MappingProxyType({
    "conv": ConvKind(False, ("Conv1d", "Conv2d", "Conv3d"), ("conv1d", "conv2d", "conv3d"),
                     ("convolution", "_convolution")),
    "conv-transposed": ConvKind(True, ("ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"),
                                ("conv_transpose1d", "conv_transpose2d", "conv_transpose3d"),
                                ("convolution", "_convolution")),
})

#: The catalog's kind of a convolution, by whether it is transposed.
_CONV_KIND_OF: Mapping[bool, str] = MappingProxyType({c.transposed: kind for kind, c in CONVS.items()})


@dataclass(frozen=True)
class Conv:
    """N-d convolution (len(kernel) = 1, 2 or 3), grouped, depthwise or pointwise; optionally transposed.

    Depthwise is the case groups = C_in; pointwise is the 1×1 case. Bias adds are ops, not MACs.
    """

    op: ClassVar[str] = "conv"
    default_name: ClassVar[str] = "conv"

    out_channels: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...] = ()
    padding: Padding = ()
    dilation: tuple[int, ...] = ()
    groups: int = 1
    bias: bool = False
    transposed: bool = False
    output_padding: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        owner = "conv"
        _positive(owner, "output channels", self.out_channels)
        if not isinstance(self.kernel, tuple) or not 1 <= len(self.kernel) <= 3:
            raise SpecError(f"{owner}: kernel must be a tuple of 1 to 3 sizes, got {self.kernel!r}")
        ndim = len(self.kernel)
        for k in self.kernel:
            _positive(owner, "kernel size", k)
        defaults = {"stride": (1,) * ndim, "padding": (0,) * ndim, "dilation": (1,) * ndim,
                    "output_padding": (0,) * ndim}
        for name, default in defaults.items():
            if getattr(self, name) == ():
                object.__setattr__(self, name, default)
        object.__setattr__(self, "stride", as_tuple(self.stride, ndim, owner, "stride"))
        object.__setattr__(self, "dilation", as_tuple(self.dilation, ndim, owner, "dilation"))
        object.__setattr__(self, "output_padding",
                           as_tuple(self.output_padding, ndim, owner, "output padding"))
        for s in self.stride:
            _positive(owner, "stride", s)
        for d in self.dilation:
            _positive(owner, "dilation", d)
        _positive(owner, "groups", self.groups)
        if self.out_channels % self.groups:
            raise SpecError(f"{owner}: groups {self.groups} do not divide the {self.out_channels} "
                            "output channels")
        if self.padding == "same":
            if self.transposed:
                raise SpecError(f"{owner}: 'same' padding is not defined for a transposed convolution")
            if any(s != 1 for s in self.stride):
                raise SpecError(f"{owner}: 'same' padding with an even kernel needs stride 1 "
                                "(PyTorch's rule); give the padding as an integer")
        else:
            object.__setattr__(self, "padding", as_tuple(self.padding, ndim, owner, "padding"))
            for p in self.padding:
                _non_negative(owner, "padding", p)
        if any(self.output_padding) and not self.transposed:
            raise SpecError(f"{owner}: output padding applies to transposed convolutions only")
        for p, s, d in zip(self.output_padding, self.stride, self.dilation):
            _non_negative(owner, "output padding", p)
            if p and p >= max(s, d):
                raise SpecError(f"{owner}: output padding {p} must be smaller than the stride or the dilation")

    @property
    def ndim(self) -> int:
        return len(self.kernel)

    @property
    def kind(self) -> str:
        """Its kind in :data:`CONVS` (``conv``, ``conv-transposed``)."""
        return _CONV_KIND_OF[self.transposed]

    def label(self) -> str:
        """Short human label, e.g. ``conv5x5``, ``conv3x3/2``, ``convT4x4/2``."""
        base = ("convT" if self.transposed else "conv") + "x".join(map(str, self.kernel))
        if any(s != 1 for s in self.stride):
            base += "/" + "x".join(map(str, sorted(set(self.stride))))
        return base


def conv2d(out_channels: int, kernel: int | tuple[int, int], stride: int | tuple[int, int] = 1,
           padding: PaddingArg = 0, dilation: int | tuple[int, int] = 1, groups: int = 1,
           bias: bool = False) -> Conv:
    """A 2-d :class:`Conv`, with ``"same"``/``"valid"`` padding resolved as PyTorch would take it."""
    kernel_t = as_tuple(kernel, 2, "conv", "kernel")
    dilation_t = as_tuple(dilation, 2, "conv", "dilation")
    pad = resolve_padding(padding, kernel_t, dilation_t, "conv")
    return Conv(out_channels, kernel_t, as_tuple(stride, 2, "conv", "stride"), pad, dilation_t,
                groups, bias)


@dataclass(frozen=True)
class Linear:
    """Fully connected layer on the last axis: y = x·Wᵀ + b."""

    op: ClassVar[str] = "linear"
    default_name: ClassVar[str] = "fc"

    out_features: int
    bias: bool = True
    in_features: int | None = None  # checked against the input when given

    def __post_init__(self) -> None:
        _positive("linear", "output features", self.out_features)
        if self.in_features is not None:
            _positive("linear", "input features", self.in_features)

    def label(self) -> str:
        return f"fc{self.out_features}"


@dataclass(frozen=True)
class Matmul:
    """Matrix product of two inputs, with PyTorch's broadcasting of the batch axes (``a @ b``)."""

    op: ClassVar[str] = "matmul"
    default_name: ClassVar[str] = "matmul"

    def label(self) -> str:
        return "matmul"


#: The additive masks of an attention, by the shape PyTorch broadcasts each from (N·heads, L, S).
ATTENTION_MASKS = ("key_padding", "attn_2d", "attn_3d")


@dataclass(frozen=True)
class Attention:
    """Scaled dot-product attention softmax(q·kᵀ/√E)·v on inputs q (…, L, E), k (…, S, E), v (…, S, Ev).

    ``causal``: a causal mask; every score is still counted (the kernels compute them all, then
    mask), so the MACs are those of full attention; the formula says how many scores survive.
    ``kernel``: how PyTorch computes it — ``sdpa`` (one scaled_dot_product_attention call), ``bmm``
    (two batched products: nn.MultiheadAttention returning its weights) or ``baddbmm`` (the same
    with a mask added to the scores); the MACs are the same, other tools' rules are not.
    ``masks``: the additive masks nn.MultiheadAttention was given, which its ``baddbmm`` adds to the
    scores, merged: ``key_padding`` (N·heads, 1, S), ``attn_2d`` (1, L, S), ``attn_3d`` (N·heads, L, S);
    () where none is recorded. ``appended``: the keys (and values) nn.MultiheadAttention appends to
    its inputs, counted in S: ``bias_kv`` (add_bias_kv) and ``zero_attn`` (add_zero_attn). Like the
    masks, they change no MAC of costlab's, only what other tools count.
    """

    op: ClassVar[str] = "matmul"
    default_name: ClassVar[str] = "attention"

    causal: bool = False
    kernel: str = "sdpa"
    masks: tuple[str, ...] = ()
    appended: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kernel not in ("sdpa", "bmm", "baddbmm"):
            raise SpecError(f"attention: kernel must be sdpa, bmm or baddbmm, got {self.kernel!r}")
        if not isinstance(self.masks, tuple) or not set(self.masks) <= set(ATTENTION_MASKS):
            raise SpecError(f"attention: masks must be a tuple of {', '.join(ATTENTION_MASKS)}, got {self.masks!r}")
        if not isinstance(self.appended, tuple) or not set(self.appended) <= {"bias_kv", "zero_attn"}:
            raise SpecError(f"attention: appended must be a tuple of bias_kv, zero_attn, got {self.appended!r}")

    def label(self) -> str:
        return "attention"


@dataclass(frozen=True)
class NormKind:
    """One normalisation, stated once: its default layer name and the names it goes by in
    PyTorch — the torch bridge's module, function and aten rules, the builder and the conventions'
    layer kinds (``<kind>-norm``) derive theirs from this one. Its cost is :func:`formulas.norm_cost`."""

    short: str  # default layer name
    modules: tuple[str, ...]  # the torch.nn classes the bridge prices as this norm
    functions: tuple[str, ...] = ()  # torch.nn.functional names
    aten: tuple[str, ...] = ()  # aten op names (instance norm runs as batch norm there)
    #: input rank → the torch.nn class costlab's builder makes; empty: ``modules[0]`` at every rank
    built_by_rank: tuple[tuple[int, str], ...] = ()


#: The normalisation catalog: kind → its names.
NORMS: Mapping[str, NormKind] = MappingProxyType({
    "batch": NormKind("bn", ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm"), ("batch_norm",),
                      ("native_batch_norm", "_native_batch_norm_legit_no_training", "_native_batch_norm_legit"),
                      ((2, "BatchNorm1d"), (3, "BatchNorm1d"), (4, "BatchNorm2d"), (5, "BatchNorm3d"))),
    "layer": NormKind("ln", ("LayerNorm",), ("layer_norm",), ("native_layer_norm",)),
    "group": NormKind("gn", ("GroupNorm",), ("group_norm",), ("native_group_norm",)),
    "instance": NormKind("in", ("InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"), ("instance_norm",), (),
                         ((3, "InstanceNorm1d"), (4, "InstanceNorm2d"), (5, "InstanceNorm3d"))),
})


@dataclass(frozen=True)
class Norm:
    """Normalisation of a kind in :data:`NORMS`: ``batch`` (inference, running statistics),
    ``layer``, ``group``, ``instance``.

    ``num_features`` (channels for batch/group/instance norm) and ``normalized_shape`` (layer norm)
    are checked against the input when given.
    """

    op: ClassVar[str] = "norm"

    kind: str = "batch"
    affine: bool = True
    track_running_stats: bool = True
    num_features: int | None = None
    num_groups: int = 1
    normalized_shape: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in NORMS:
            raise SpecError(f"norm: unknown kind {self.kind!r}")
        if self.num_features is not None:
            _positive(f"{self.kind} norm", "number of features", self.num_features)
        _positive(f"{self.kind} norm", "number of groups", self.num_groups)
        for n in self.normalized_shape:
            _positive("layer norm", "normalised size", n)

    @property
    def default_name(self) -> str:  # type: ignore[override]
        return NORMS[self.kind].short

    def label(self) -> str:
        return self.default_name


@dataclass(frozen=True)
class ActivationKind:
    """One activation, stated once: its ops per element (the documented rule, docs/cost-model.md)
    and the names it goes by in PyTorch — every other table (the torch bridge's rules, the builder,
    the aten rules, the conventions) derives from this one."""

    ops: int
    module: str  # the torch.nn class
    functions: tuple[str, ...] = ()  # torch.nn.functional names
    torch_functions: tuple[str, ...] = ()  # torch names
    methods: tuple[str, ...] = ()  # Tensor method names
    aten: tuple[str, ...] = ()  # aten op names
    module_kwargs: tuple[tuple[str, Any], ...] = ()  # how costlab's builder makes the module
    saves_output: bool = False  # its backward reads its output (else its input): costlab.analyses.memory


#: The activation catalog: kind → its rule and names.
ACTIVATIONS: Mapping[str, ActivationKind] = MappingProxyType({
    "identity": ActivationKind(0, "Identity"),
    "relu": ActivationKind(1, "ReLU", ("relu", "relu_"), ("relu", "relu_"), ("relu", "relu_"),
                           ("relu", "relu_"), saves_output=True),  # max(x, 0)
    "relu6": ActivationKind(2, "ReLU6", ("relu6",), (), (), ("relu6",)),  # min(max(x, 0), 6)
    "hardtanh": ActivationKind(2, "Hardtanh", ("hardtanh",), (), (), ("hardtanh", "hardtanh_")),  # clamp
    "leaky_relu": ActivationKind(2, "LeakyReLU", ("leaky_relu",), (), (), ("leaky_relu", "leaky_relu_")),
    "elu": ActivationKind(3, "ELU", ("elu",), (), (), ("elu", "elu_")),  # compare, exp, multiply-subtract
    "sigmoid": ActivationKind(3, "Sigmoid", ("sigmoid",), ("sigmoid",), ("sigmoid", "sigmoid_"),
                              ("sigmoid", "sigmoid_"), saves_output=True),  # exp, add, divide
    "tanh": ActivationKind(5, "Tanh", ("tanh",), ("tanh",), ("tanh", "tanh_"),
                           ("tanh", "tanh_"), saves_output=True),  # two exps, add, subtract, divide
    "hardsigmoid": ActivationKind(3, "Hardsigmoid", ("hardsigmoid",), (), (),
                                  ("hardsigmoid", "hardsigmoid_")),  # add, divide, clamp
    "hardswish": ActivationKind(4, "Hardswish", ("hardswish",), (), (), ("hardswish", "hardswish_")),
    "silu": ActivationKind(4, "SiLU", ("silu",), (), (), ("silu", "silu_")),  # sigmoid, multiply
    # tanh approximation: polynomial (4), tanh (via exp), multiply-add
    "gelu": ActivationKind(8, "GELU", ("gelu",), (), (), ("gelu", "gelu_"), (("approximate", "tanh"),)),
    "softplus": ActivationKind(3, "Softplus", ("softplus",), (), (), ("softplus",)),  # exp, add, log
    "mish": ActivationKind(7, "Mish", ("mish",), (), (), ("mish", "mish_")),  # softplus, tanh, multiply
    "softmax": ActivationKind(3, "Softmax", ("softmax",), ("softmax",), ("softmax",),
                              ("_softmax", "_safe_softmax"), (("dim", -1),), True),  # exp, sum, divide
    "log_softmax": ActivationKind(3, "LogSoftmax", ("log_softmax",), ("log_softmax",), ("log_softmax",),
                                  ("_log_softmax",), (("dim", -1),), True),  # exp, sum, log-subtract
})

#: Ops per element of each activation (from the catalog).
ACTIVATION_OPS: Mapping[str, int] = MappingProxyType({kind: a.ops for kind, a in ACTIVATIONS.items()})


@dataclass(frozen=True)
class Activation:
    """Element-wise activation (and softmax); ops = ``ACTIVATION_OPS[kind]`` per element."""

    op: ClassVar[str] = "act"

    kind: str = "relu"

    def __post_init__(self) -> None:
        if self.kind not in ACTIVATION_OPS:
            raise SpecError(f"activation: unknown kind {self.kind!r} "
                            f"(known: {', '.join(sorted(ACTIVATION_OPS))})")

    @property
    def default_name(self) -> str:  # type: ignore[override]
        return self.kind

    def label(self) -> str:
        return self.kind


@dataclass(frozen=True)
class PoolKind:
    """One pooling family, stated once: the spec it is (:class:`Pool`, a window, or
    :class:`AdaptivePool`, a fixed output size), its mode, and its PyTorch names by rank (1-d, 2-d,
    3-d) — the torch bridge's module, function and aten rules, the builder and the conventions'
    layer kinds (``<kind>-pool``) derive theirs from this one."""

    mode: Literal["max", "avg"]
    adaptive: bool
    modules: tuple[str, str, str]  # the torch.nn class of each rank
    functions: tuple[str, str, str]  # the torch.nn.functional name of each rank
    torch_functions: tuple[str, ...] = ()  # torch names of the first ranks ('' where torch has none)
    aten: tuple[tuple[str, ...], ...] = ()  # aten op names of each rank


#: The pooling catalog: kind → its spec, mode and names by rank.
POOLS: Mapping[str, PoolKind] = MappingProxyType({
    "max": PoolKind("max", False, ("MaxPool1d", "MaxPool2d", "MaxPool3d"),
                    ("max_pool1d", "max_pool2d", "max_pool3d"), ("max_pool1d", "max_pool2d", "max_pool3d"),
                    (("max_pool1d",), ("max_pool2d_with_indices", "max_pool2d"), ("max_pool3d_with_indices",))),
    "avg": PoolKind("avg", False, ("AvgPool1d", "AvgPool2d", "AvgPool3d"),
                    ("avg_pool1d", "avg_pool2d", "avg_pool3d"), ("avg_pool1d",),
                    (("avg_pool1d",), ("avg_pool2d",), ("avg_pool3d",))),
    "adaptive-max": PoolKind("max", True, ("AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d"),
                             ("adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d"), (),
                             ((), ("adaptive_max_pool2d",), ("adaptive_max_pool3d",))),
    "adaptive-avg": PoolKind("avg", True, ("AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d"),
                             ("adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d"), (),
                             (("adaptive_avg_pool1d",), ("_adaptive_avg_pool2d",), ("_adaptive_avg_pool3d",))),
})

#: The catalog's kind of each (adaptive, mode).
_POOL_KIND_OF: Mapping[tuple[bool, str], str] = MappingProxyType(
    {(p.adaptive, p.mode): kind for kind, p in POOLS.items()})


@dataclass(frozen=True)
class Pool:
    """Max or average pooling (1-d to 3-d). Default stride = kernel, as in PyTorch."""

    op: ClassVar[str] = "pool"

    mode: Literal["max", "avg"]
    kernel: tuple[int, ...]
    stride: tuple[int, ...] = ()
    padding: tuple[int, ...] = ()
    dilation: tuple[int, ...] = ()
    ceil_mode: bool = False
    count_include_pad: bool = True

    def __post_init__(self) -> None:
        owner = f"{self.mode}pool"
        if (False, self.mode) not in _POOL_KIND_OF:
            raise SpecError(f"pool: mode must be 'max' or 'avg', got {self.mode!r}")
        if not isinstance(self.kernel, tuple) or not 1 <= len(self.kernel) <= 3:
            raise SpecError(f"{owner}: kernel must be a tuple of 1 to 3 sizes, got {self.kernel!r}")
        ndim = len(self.kernel)
        for k in self.kernel:
            _positive(owner, "kernel size", k)
        if self.stride == ():
            object.__setattr__(self, "stride", self.kernel)
        if self.padding == ():
            object.__setattr__(self, "padding", (0,) * ndim)
        if self.dilation == ():
            object.__setattr__(self, "dilation", (1,) * ndim)
        object.__setattr__(self, "stride", as_tuple(self.stride, ndim, owner, "stride"))
        object.__setattr__(self, "padding", as_tuple(self.padding, ndim, owner, "padding"))
        object.__setattr__(self, "dilation", as_tuple(self.dilation, ndim, owner, "dilation"))
        for s in self.stride:
            _positive(owner, "stride", s)
        for d in self.dilation:
            _positive(owner, "dilation", d)
        if self.mode == "avg" and any(d != 1 for d in self.dilation):
            raise SpecError(f"{owner}: average pooling has no dilation")
        for p, k in zip(self.padding, self.kernel):
            _non_negative(owner, "padding", p)
            if 2 * p > k:
                raise SpecError(f"{owner}: padding {p} is more than half the kernel {k} (PyTorch's rule)")

    @property
    def kind(self) -> str:
        """Its kind in :data:`POOLS` (``max``, ``avg``)."""
        return _POOL_KIND_OF[False, self.mode]

    @property
    def default_name(self) -> str:  # type: ignore[override]
        return f"{self.mode}pool"

    def label(self) -> str:
        base = f"{self.mode}pool" + "x".join(map(str, self.kernel))
        if self.stride != self.kernel:
            base += "/" + "x".join(map(str, sorted(set(self.stride))))
        return base


def max_pool2d(kernel: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
               padding: PaddingArg = 0, ceil_mode: bool = False) -> Pool:
    """2-d max pooling; ``"same"`` padding resolves to k//2 for odd kernels."""
    return _pool2d("max", kernel, stride, padding, ceil_mode)


def avg_pool2d(kernel: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
               padding: PaddingArg = 0, ceil_mode: bool = False) -> Pool:
    """2-d average pooling; ``"same"`` padding resolves to k//2 for odd kernels."""
    return _pool2d("avg", kernel, stride, padding, ceil_mode)


def _pool2d(mode: Literal["max", "avg"], kernel: int | tuple[int, int],
            stride: int | tuple[int, int] | None, padding: PaddingArg, ceil_mode: bool) -> Pool:
    owner = f"{mode}pool"
    kernel_t = as_tuple(kernel, 2, owner, "kernel")
    stride_t = kernel_t if stride is None else as_tuple(stride, 2, owner, "stride")
    pad = resolve_padding(padding, kernel_t, (1, 1), owner)
    if pad == "same":
        raise SpecError(f"{owner}: 'same' padding needs an odd kernel for pooling; give the padding "
                        "as an integer")
    return Pool(mode, kernel_t, stride_t, pad, (1, 1), ceil_mode)


@dataclass(frozen=True)
class AdaptivePool:
    """Adaptive max/avg pooling to a fixed output size; each output reads ⌊i·n/o⌋ … ⌈(i+1)·n/o⌉."""

    op: ClassVar[str] = "pool"

    mode: Literal["max", "avg"]
    output_size: tuple[int | None, ...]

    def __post_init__(self) -> None:
        owner = f"adaptive {self.mode}pool"
        if (True, self.mode) not in _POOL_KIND_OF:
            raise SpecError(f"adaptive pool: mode must be 'max' or 'avg', got {self.mode!r}")
        if not isinstance(self.output_size, tuple) or not 1 <= len(self.output_size) <= 3:
            raise SpecError(f"{owner}: output size must be a tuple of 1 to 3 sizes")
        for o in self.output_size:
            if o is not None:
                _positive(owner, "output size", o)

    @property
    def kind(self) -> str:
        """Its kind in :data:`POOLS` (``adaptive-max``, ``adaptive-avg``)."""
        return _POOL_KIND_OF[True, self.mode]

    @property
    def default_name(self) -> str:  # type: ignore[override]
        return "gap" if self.mode == "avg" and all(o == 1 for o in self.output_size) else f"adaptive{self.mode}pool"

    def label(self) -> str:
        return self.default_name


@dataclass(frozen=True)
class ArithmeticKind:
    """One binary arithmetic op, stated once: its JSON category and the names it goes by in Python
    and PyTorch; the bridge's rules, the builder and the conventions derive theirs from it."""

    category: str  # JSON op category
    operator: str  # the operator module's function (and operator.i<name> in place)
    torch_functions: tuple[str, ...]
    methods: tuple[str, ...]  # Tensor methods and dunders, reflected one last
    reflected: str


#: The binary arithmetic catalog: kind → its category and names.
ARITHMETIC: Mapping[str, ArithmeticKind] = MappingProxyType({
    "add": ArithmeticKind("add", "add", ("add",), ("add", "add_", "__add__", "__iadd__"), "__radd__"),
    "sub": ArithmeticKind("add", "sub", ("sub", "subtract"), ("sub", "sub_", "__sub__", "__isub__"), "__rsub__"),
    "mul": ArithmeticKind("mul", "mul", ("mul", "multiply"), ("mul", "mul_", "__mul__", "__imul__"), "__rmul__"),
    "div": ArithmeticKind("mul", "truediv", ("div", "divide", "true_divide"),
                          ("div", "div_", "__truediv__", "__itruediv__", "__div__"), "__rtruediv__"),
})

#: JSON category of each arithmetic kind (from the catalog); other element-wise kinds are 'other'.
ELEMENTWISE_CATEGORY: Mapping[str, str] = MappingProxyType({k: a.category for k, a in ARITHMETIC.items()})


@dataclass(frozen=True)
class Elementwise:
    """Element-wise op of tensors broadcast together (a residual ``+``, a gating ``*``, ...).

    ops = ``ops_per_element`` × output elements; for ``arity`` operands of a binary op that is
    arity − 1 (scalar operands count).
    """

    kind: str = "add"
    ops_per_element: int = 1

    def __post_init__(self) -> None:
        if not self.kind or not isinstance(self.kind, str):
            raise SpecError("elementwise: kind must be a name such as 'add'")
        _non_negative(f"elementwise {self.kind}", "ops per element", self.ops_per_element)

    @property
    def op(self) -> str:  # type: ignore[override]
        return ELEMENTWISE_CATEGORY.get(self.kind, "other")

    @property
    def default_name(self) -> str:  # type: ignore[override]
        return self.kind

    def label(self) -> str:
        return self.kind


@dataclass(frozen=True)
class Concat:
    """Concatenation along ``dim`` (channels by default); every other axis must match."""

    op: ClassVar[str] = "concat"
    default_name: ClassVar[str] = "cat"

    dim: int = 1

    def label(self) -> str:
        return "concat"


@dataclass(frozen=True)
class Flatten:
    """Flatten axes ``start_dim`` … ``end_dim`` into one (PyTorch's default keeps the batch axis)."""

    op: ClassVar[str] = "reshape"
    default_name: ClassVar[str] = "flatten"

    start_dim: int = 1
    end_dim: int = -1

    def label(self) -> str:
        return "flatten"


@dataclass(frozen=True)
class Reshape:
    """Any layout change with a known output shape (view, permute, transpose, squeeze, ...)."""

    op: ClassVar[str] = "reshape"
    default_name: ClassVar[str] = "reshape"

    shape: tuple[int, ...] = field(default=())
    kind: str = "reshape"

    def __post_init__(self) -> None:
        for n in self.shape:
            _non_negative("reshape", "size", n)

    def label(self) -> str:
        return self.kind


@dataclass(frozen=True)
class Dropout:
    """Dropout: identity at inference, no arithmetic."""

    op: ClassVar[str] = "dropout"
    default_name: ClassVar[str] = "dropout"

    p: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.p <= 1.0:
            raise SpecError(f"dropout: probability must lie in [0, 1], got {self.p!r}")

    def label(self) -> str:
        return "dropout"


@dataclass(frozen=True)
class Embedding:
    """Table lookup: V×D parameters, no arithmetic; output appends D to the index shape."""

    op: ClassVar[str] = "other"
    default_name: ClassVar[str] = "embedding"

    num_embeddings: int
    embedding_dim: int

    def __post_init__(self) -> None:
        _positive("embedding", "number of embeddings", self.num_embeddings)
        _positive("embedding", "embedding size", self.embedding_dim)

    def label(self) -> str:
        return "embedding"


@dataclass(frozen=True)
class RecurrentKind:
    """One recurrent cell, stated once: its gates (its weight matrices are gates·H rows tall) and
    the torch.nn class (with the ``nonlinearity`` it is built with, for nn.RNN) that runs it."""

    gates: int
    module: str
    nonlinearity: str = ""


#: The recurrent catalog: mode → its gates and module.
RECURRENTS: Mapping[str, RecurrentKind] = MappingProxyType({
    "lstm": RecurrentKind(4, "LSTM"), "gru": RecurrentKind(3, "GRU"),
    "rnn_tanh": RecurrentKind(1, "RNN", "tanh"), "rnn_relu": RecurrentKind(1, "RNN", "relu"),
})

#: Gates of each recurrent cell (from the catalog).
RECURRENT_GATES: Mapping[str, int] = MappingProxyType({mode: r.gates for mode, r in RECURRENTS.items()})


@dataclass(frozen=True)
class Recurrent:
    """A recurrent layer stack (``nn.LSTM``, ``nn.GRU``, ``nn.RNN``): ``num_layers`` layers, each in
    one or two directions, each running its cell once per time step.

    Input (N, T, I) with ``batch_first``, else (T, N, I); (T, I) unbatched. ``proj_size`` P > 0
    (LSTM only) projects each hidden state to P features.
    """

    op: ClassVar[str] = "linear"

    mode: str
    input_size: int
    hidden_size: int
    num_layers: int = 1
    bias: bool = True
    batch_first: bool = False
    bidirectional: bool = False
    proj_size: int = 0

    def __post_init__(self) -> None:
        if self.mode not in RECURRENT_GATES:
            raise SpecError(f"recurrent: mode must be one of {', '.join(RECURRENT_GATES)}, got {self.mode!r}")
        _positive("recurrent", "input size", self.input_size)
        _positive("recurrent", "hidden size", self.hidden_size)
        _positive("recurrent", "number of layers", self.num_layers)
        _non_negative("recurrent", "projection size", self.proj_size)
        if self.proj_size and (self.mode != "lstm" or self.proj_size >= self.hidden_size):
            raise SpecError("recurrent: a projection needs an LSTM and proj_size < hidden_size")

    @property
    def default_name(self) -> str:  # type: ignore[override]
        return self.mode.split("_")[0]

    def label(self) -> str:
        return f"{self.default_name}{self.hidden_size}"


@dataclass(frozen=True)
class UpsampleMode:
    """One interpolation mode, stated once: its ops per output element (docs/cost-model.md) and the
    aten ops that run it; the bridge's rules and the conventions' layer kinds derive from it."""

    ops: int
    aten: tuple[str, ...] = ()


#: The interpolation catalog: mode (F.interpolate's and nn.Upsample's name) → its rule and aten ops.
UPSAMPLES: Mapping[str, UpsampleMode] = MappingProxyType({
    "nearest": UpsampleMode(0, ("upsample_nearest1d", "upsample_nearest2d")),
    "nearest-exact": UpsampleMode(0),
    "linear": UpsampleMode(3, ("upsample_linear1d",)),
    "bilinear": UpsampleMode(7, ("upsample_bilinear2d",)),
    "bicubic": UpsampleMode(31, ("upsample_bicubic2d",)),
    "trilinear": UpsampleMode(15, ("upsample_trilinear3d",)),
})

#: Ops per output element of each interpolation mode (from the catalog).
UPSAMPLE_OPS: Mapping[str, int] = MappingProxyType({mode: u.ops for mode, u in UPSAMPLES.items()})


@dataclass(frozen=True)
class Upsample:
    """Resize the spatial axes to ``size``; ops = ``UPSAMPLE_OPS[mode]`` per output element."""

    op: ClassVar[str] = "other"
    default_name: ClassVar[str] = "upsample"

    size: tuple[int, ...]
    mode: str = "nearest"

    def __post_init__(self) -> None:
        if self.mode not in UPSAMPLE_OPS:
            raise SpecError(f"upsample: unknown mode {self.mode!r}")
        for n in self.size:
            _positive("upsample", "output size", n)

    def label(self) -> str:
        return f"upsample-{self.mode}"


#: The reduction catalog: each kind is also its name as a torch function, a Tensor method and an aten op.
REDUCTIONS = ("sum", "mean", "amax", "amin")


@dataclass(frozen=True)
class Reduce:
    """A reduction over axes (``x.mean((2, 3))``, ``x.sum(-1)``, ``x.amax(1)``); no axes = all.

    ops: sum and amax/amin combine n inputs into one output with n − 1 adds or compares;
    mean adds one divide per output, so n ops per output.
    """

    op: ClassVar[str] = "pool"

    kind: str = "mean"
    dims: tuple[int, ...] = ()
    keepdim: bool = False

    def __post_init__(self) -> None:
        if self.kind not in REDUCTIONS:
            raise SpecError(f"reduce: kind must be one of {', '.join(REDUCTIONS)}, got {self.kind!r}")

    @property
    def default_name(self) -> str:  # type: ignore[override]
        return self.kind

    def label(self) -> str:
        return self.kind


@dataclass(frozen=True)
class PadMode:
    """One padding mode, stated once: the torch.nn.modules.padding base class of its modules
    (``ZeroPad2d``, ``ReflectionPad1d``, …) and its aten ops; the bridge's rules derive from it."""

    module_base: str
    aten: tuple[str, ...] = ()


#: The padding catalog: mode (F.pad's name) → its names.
PADS: Mapping[str, PadMode] = MappingProxyType({
    "constant": PadMode("_ConstantPadNd", ("constant_pad_nd",)),
    "reflect": PadMode("_ReflectionPadNd", ("reflection_pad1d", "reflection_pad2d")),
    "replicate": PadMode("_ReplicationPadNd", ("replication_pad2d",)),
    "circular": PadMode("_CircularPadNd"),
})
PAD_MODES = tuple(PADS)


@dataclass(frozen=True)
class Pad:
    """Padding (``F.pad``, ``nn.ZeroPad2d``, …): ``pads`` as PyTorch gives them, (left, right)
    pairs from the last axis backwards; no arithmetic, only copies."""

    op: ClassVar[str] = "reshape"
    default_name: ClassVar[str] = "pad"

    pads: tuple[int, ...]
    mode: str = "constant"

    def __post_init__(self) -> None:
        if self.mode not in PAD_MODES:
            raise SpecError(f"pad: mode must be one of {', '.join(PAD_MODES)}, got {self.mode!r}")
        if not isinstance(self.pads, tuple) or len(self.pads) % 2 or not self.pads:
            raise SpecError(f"pad: pads must be (left, right) pairs, got {self.pads!r}")
        for n in self.pads:
            if not isinstance(n, int) or isinstance(n, bool):
                raise SpecError(f"pad: pad sizes must be integers, got {n!r}")

    def label(self) -> str:
        return "pad" if self.mode == "constant" else f"pad-{self.mode}"


@dataclass(frozen=True)
class Held:
    """Parameters and buffers a module holds that its forward pass never uses (a trace found them).

    Counted in params/buffers so that a traced module's params equal
    ``sum(p.numel() for p in module.parameters())``; no input, no output, no arithmetic.
    """

    op: ClassVar[str] = "other"
    default_name: ClassVar[str] = "held"

    params: int = 0
    buffers: int = 0
    #: 'unused' (the forward pass never reads them) or 'unpriced' (only views, indexing or
    #: unsupported ops read them); '' when not said
    why: str = ""

    def __post_init__(self) -> None:
        _non_negative("held", "parameter count", self.params)
        _non_negative("held", "buffer count", self.buffers)
        if self.why not in ("", "unused", "unpriced"):
            raise SpecError(f"held: why must be 'unused' or 'unpriced', got {self.why!r}")

    def label(self) -> str:
        return "unused"


Spec = Union[Conv, Linear, Matmul, Attention, Norm, Activation, Pool, AdaptivePool, Elementwise,
             Concat, Flatten, Reshape, Dropout, Embedding, Upsample, Reduce, Pad, Held, Recurrent]
