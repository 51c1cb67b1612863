"""Rules at the aten level: what a dispatch-mode recorder sees, priced by the core's specs.

Where a call is opaque above the aten level — a torch function without a rule (``einsum``,
``addmm``, ``baddbmm``, a custom op), a leaf module without a rule — its aten ops are recorded
one by one, and each op below becomes the core spec that prices it:

- ``mm``, ``bmm``, ``matmul`` products, ``mv``, ``dot`` → :class:`Matmul` (``addmm`` with a
  parameter as its second matrix → :class:`Linear`; ``baddbmm``/``addmm`` otherwise add an
  element-wise add for their ``input``);
- ``convolution`` (transposed too) → :class:`Conv`;
- every scaled-dot-product-attention kernel (math, CPU flash, flash, efficient, cuDNN) →
  :class:`Attention`, with grouped-query keys and values counted at the query's head count;
- batch, layer and group norm kernels → :class:`Norm`; activations → :class:`Activation`;
  pooling → :class:`Pool` / :class:`AdaptivePool`; reductions → :class:`Reduce`; ``cat`` →
  :class:`Concat` (empty tensors dropped); ``embedding`` → :class:`Embedding`; padding and
  upsampling → :class:`Pad` / :class:`Upsample`;
- other pointwise ops (``torch.Tag.pointwise``) → :class:`Elementwise` of that name;
- views, copies, casts, indexing, gathers and tensor creation are free: no layer, no arithmetic.

Anything else is listed as unsupported with its aten name. :data:`MAC_OPS` names the aten ops
that perform multiply-accumulates, so that a test can insist none of them is ever unsupported.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch

from ..core.analysis import ATTENTION_KERNELS
from ..core.specs import (ACTIVATIONS, CONVS, NORMS, PADS, POOLS, REDUCTIONS, UPSAMPLES, AdaptivePool, Activation, Attention, Concat, Conv, Elementwise, Embedding, Linear,
                     Matmul, Norm, Pad, Reduce, Upsample)
from .rules import (Context, RuleError, TensorValue, adaptive_spec, arg, conv_spec, grouped_query, pool_spec,
                    tensor_arg)

aten = torch.ops.aten

AtenRule = Callable[[Context, tuple, dict], Any]


def _packet(name: str) -> Any:
    return getattr(aten, name, None)


def _matmul(ctx: Context, args: tuple, kwargs: dict) -> Any:
    a, b = tensor_arg(args, kwargs, 0, "self"), tensor_arg(args, kwargs, 1, "mat2")
    return ctx.layer(Matmul(), (a, b), sub="matmul")


def _addmm(ctx: Context, args: tuple, kwargs: dict) -> Any:
    """addmm(input, a, b, beta, alpha): a Linear when b is a parameter (F.linear's form), else a
    product and an add."""
    bias = tensor_arg(args, kwargs, 0, "self")
    a, b = tensor_arg(args, kwargs, 1, "mat1"), tensor_arg(args, kwargs, 2, "mat2")
    beta = arg(args, kwargs, 3, "beta", 1)
    if b.tensor is not None and len(a.shape) == 2 and len(b.shape) == 2 and beta == 1 \
            and bias.shape in ((b.shape[1],), (1, b.shape[1])):
        return ctx.layer(Linear(b.shape[1], True, b.shape[0]), (a,), sub="linear",
                         params=[t for t in (b.tensor, bias.tensor) if t is not None])
    product = ctx.layer(Matmul(), (a, b), sub="matmul")
    if beta == 0:
        return product
    return ctx.layer(Elementwise("add"), (product, bias), sub="add")


def _baddbmm(ctx: Context, args: tuple, kwargs: dict) -> Any:
    """baddbmm(input, b1, b2, beta, alpha) = beta·input + alpha·(b1 @ b2)."""
    base = tensor_arg(args, kwargs, 0, "self")
    product = ctx.layer(Matmul(), (tensor_arg(args, kwargs, 1, "batch1"), tensor_arg(args, kwargs, 2, "batch2")),
                        sub="matmul")
    if arg(args, kwargs, 3, "beta", 1) == 0:
        return product
    return ctx.layer(Elementwise("add"), (product, base), sub="add")


def _grouped_mm(ctx: Context, args: tuple, kwargs: dict) -> Any:
    """_grouped_mm(a, b, offs): G products, group g of a's rows (or batch g) times b's matrix g —
    how transformers runs a mixture of experts. Each row of a meets one K×N matrix, so the MACs
    are rows · K · N whatever ``offs`` routes where: a (M, K) · b (G, K, N) → M·K·N; a (G, M, K) ·
    b (G, K, N) → G·M·K·N; a (G, M, K) · b (K, N) → M·K·N. Priced as the product of the same
    MACs, b's weights on this row. The 2-D × 2-D form (groups along K, a weight gradient) is not
    priced here."""
    a, b = tensor_arg(args, kwargs, 0, "self"), tensor_arg(args, kwargs, 1, "mat2")
    if len(a.shape) == 2 and len(b.shape) == 3:
        a_shape, b_shape = a.shape, b.shape[1:]
    elif len(a.shape) == 3 and len(b.shape) == 3:
        a_shape, b_shape = a.shape, b.shape
    elif len(a.shape) == 3 and len(b.shape) == 2:
        a_shape, b_shape = a.shape[1:], b.shape
    else:
        raise RuleError(f"_grouped_mm of a {len(a.shape)}-D and a {len(b.shape)}-D tensor")
    if a_shape[-1] != b_shape[-2]:
        raise RuleError(f"_grouped_mm of {a.shape} and {b.shape}: inner sizes differ")
    return ctx.layer(Matmul(), (TensorValue(a_shape, a.producer, a.tensor), TensorValue(b_shape, b.producer, b.tensor)),
                     sub="grouped_mm", params=[t for t in (b.tensor,) if t is not None])


def _elementwise(name: str) -> AtenRule:
    """An element-wise op torch does not tag pointwise (floor_divide): one op per output element."""
    def rule(ctx: Context, args: tuple, kwargs: dict) -> Any:
        operands = [a for a in (*args, *kwargs.values()) if isinstance(a, TensorValue)]
        return ctx.layer(Elementwise(name), operands, sub=name)
    return rule


def _convolution(ctx: Context, args: tuple, kwargs: dict) -> Any:
    """convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups)."""
    x, w = tensor_arg(args, kwargs, 0, "input"), tensor_arg(args, kwargs, 1, "weight")
    bias = arg(args, kwargs, 2, "bias", None)
    stride, padding, dilation = (arg(args, kwargs, i, n) for i, n in ((3, "stride"), (4, "padding"), (5, "dilation")))
    transposed, output_padding, groups = (arg(args, kwargs, i, n) for i, n in
                                          ((6, "transposed"), (7, "output_padding"), (8, "groups")))
    ndim = len(w.shape) - 2
    if ndim < 1:
        raise RuleError("a convolution weight without spatial axes")
    out = w.shape[1] * groups if transposed else w.shape[0]
    spec = conv_spec(out, tuple(w.shape[2:]), list(stride), list(padding), list(dilation), groups,
                     bias is not None, bool(transposed), list(output_padding) if transposed else 0)
    if isinstance(spec, Conv) and len(x.shape) == ndim + 1:  # an unbatched input
        x = TensorValue((1,) + x.shape, x.producer, x.tensor)
    params = [t.tensor for t in (w, bias) if isinstance(t, TensorValue) and t.tensor is not None]
    return ctx.layer(spec, (x,), sub="conv", params=params)


def _attention(ctx: Context, args: tuple, kwargs: dict) -> Any:
    """Any SDPA kernel (q, k, v first): keys and values of fewer heads (grouped-query attention)
    are counted at the query's head count, as the kernel computes them."""
    q, k, v = (tensor_arg(args, kwargs, i, n) for i, n in enumerate(("query", "key", "value")))
    return ctx.layer(Attention(), grouped_query(q, k, v), sub="attention")


def _layer_norm(ctx: Context, args: tuple, kwargs: dict) -> Any:
    x = tensor_arg(args, kwargs, 0, "input")
    shape = tuple(arg(args, kwargs, 1, "normalized_shape"))
    weight = arg(args, kwargs, 2, "weight", None)
    return ctx.layer(Norm("layer", weight is not None, False, normalized_shape=shape), (x,), sub="layer_norm")


def _batch_norm(weight_at: int, stats_at: int) -> AtenRule:
    def rule(ctx: Context, args: tuple, kwargs: dict) -> Any:
        x = tensor_arg(args, kwargs, 0, "input")
        weight = arg(args, kwargs, weight_at, "weight", None)
        mean = arg(args, kwargs, stats_at, "running_mean", None)
        extra = [t.tensor for t in (arg(args, kwargs, stats_at, "running_mean", None),
                                    arg(args, kwargs, stats_at + 1, "running_var", None))
                 if isinstance(t, TensorValue) and t.tensor is not None]
        return ctx.layer(Norm("batch", weight is not None, mean is not None), (x,), sub="batch_norm", params=extra)
    return rule


def _group_norm(ctx: Context, args: tuple, kwargs: dict) -> Any:
    x = tensor_arg(args, kwargs, 0, "input")
    weight = arg(args, kwargs, 1, "weight", None)
    groups = arg(args, kwargs, 6, "group")
    return ctx.layer(Norm("group", weight is not None, False, num_groups=groups), (x,), sub="group_norm")


def _activation(kind: str) -> AtenRule:
    def rule(ctx: Context, args: tuple, kwargs: dict) -> Any:
        return ctx.layer(Activation(kind), (tensor_arg(args, kwargs, 0, "self"),), sub=kind)
    return rule


def _pool(mode: str, ndim: int) -> AtenRule:
    def rule(ctx: Context, args: tuple, kwargs: dict) -> Any:
        x = tensor_arg(args, kwargs, 0, "self")
        kernel = arg(args, kwargs, 1, "kernel_size")
        stride = arg(args, kwargs, 2, "stride", None)
        padding = arg(args, kwargs, 3, "padding", 0)
        if mode == "max":
            dilation, ceil = arg(args, kwargs, 4, "dilation", 1), arg(args, kwargs, 5, "ceil_mode", False)
            include = True
        else:
            dilation, ceil = 1, arg(args, kwargs, 4, "ceil_mode", False)
            include = arg(args, kwargs, 5, "count_include_pad", True)
        if len(x.shape) == ndim + 1:
            x = TensorValue((1,) + x.shape, x.producer, x.tensor)
        spec = pool_spec(mode, ndim, list(kernel), list(stride) if stride else None, list(padding)
                         if isinstance(padding, (list, tuple)) else padding, list(dilation)
                         if isinstance(dilation, (list, tuple)) else dilation, ceil, include)
        return ctx.layer(spec, (x,), sub=f"{mode}_pool")
    return rule


def _adaptive(mode: str, ndim: int) -> AtenRule:
    def rule(ctx: Context, args: tuple, kwargs: dict) -> Any:
        x = tensor_arg(args, kwargs, 0, "self")
        size = arg(args, kwargs, 1, "output_size")
        if len(x.shape) == ndim + 1:
            x = TensorValue((1,) + x.shape, x.producer, x.tensor)
        spec: AdaptivePool = adaptive_spec(mode, ndim, list(size))
        return ctx.layer(spec, (x,), sub=f"adaptive_{mode}_pool")
    return rule


def _reduce(kind: str) -> AtenRule:
    def rule(ctx: Context, args: tuple, kwargs: dict) -> Any:
        x = tensor_arg(args, kwargs, 0, "self")
        dim = arg(args, kwargs, 1, "dim", None)
        keepdim = bool(arg(args, kwargs, 2, "keepdim", False))
        dims = () if dim is None else ((dim,) if isinstance(dim, int) else tuple(dim))
        return ctx.layer(Reduce(kind, dims, keepdim), (x,), sub=kind)
    return rule


def _vector_norm(ctx: Context, args: tuple, kwargs: dict) -> Any:
    """linalg_vector_norm(x, ord, dim, keepdim): |x|^ord per element (1 op), then a sum over dim
    (Reduce: n − 1 per output); the root per output is not counted."""
    x = tensor_arg(args, kwargs, 0, "self")
    dim = arg(args, kwargs, 2, "dim", None)
    keepdim = bool(arg(args, kwargs, 3, "keepdim", False))
    dims = () if dim is None else ((dim,) if isinstance(dim, int) else tuple(dim))
    powered = ctx.layer(Elementwise("pow"), (x,), sub="pow")
    return ctx.layer(Reduce("sum", dims, keepdim), (powered,), sub="sum")


def _cat(ctx: Context, args: tuple, kwargs: dict) -> Any:
    """cat(tensors, dim): empty 1-d tensors are skipped, as torch.cat skips them."""
    tensors = [t for t in arg(args, kwargs, 0, "tensors") if isinstance(t, TensorValue)
               and not (len(t.shape) == 1 and t.shape[0] == 0)]
    if len(tensors) < 2:
        raise _Free()
    return ctx.layer(Concat(arg(args, kwargs, 1, "dim", 0)), tensors, sub="cat")


def _stack(ctx: Context, args: tuple, kwargs: dict) -> Any:
    tensors = [t for t in arg(args, kwargs, 0, "tensors") if isinstance(t, TensorValue)]
    dim = arg(args, kwargs, 1, "dim", 0)
    if len(tensors) < 2:
        raise _Free()
    rank = len(tensors[0].shape) + 1
    axis = dim % rank
    lifted = [TensorValue(t.shape[:axis] + (1,) + t.shape[axis:], t.producer, t.tensor) for t in tensors]
    return ctx.layer(Concat(axis), lifted, sub="stack")


def _scan(kind: str) -> AtenRule:
    """cumsum / cumprod: one add or multiply per element."""
    def rule(ctx: Context, args: tuple, kwargs: dict) -> Any:
        return ctx.layer(Elementwise(kind), (tensor_arg(args, kwargs, 0, "self"),), sub=kind)
    return rule


def _embedding(ctx: Context, args: tuple, kwargs: dict) -> Any:
    w, x = tensor_arg(args, kwargs, 0, "weight"), tensor_arg(args, kwargs, 1, "indices")
    return ctx.layer(Embedding(w.shape[0], w.shape[1]), (x,), sub="embedding",
                     params=[w.tensor] if w.tensor is not None else [])


def _pad(mode: str) -> AtenRule:
    def rule(ctx: Context, args: tuple, kwargs: dict) -> Any:
        x = tensor_arg(args, kwargs, 0, "self")
        return ctx.layer(Pad(tuple(arg(args, kwargs, 1, "pad" if mode == "constant" else "padding")), mode),
                         (x,), sub="pad")
    return rule


def _upsample(mode: str) -> AtenRule:
    def rule(ctx: Context, args: tuple, kwargs: dict) -> Any:
        x = tensor_arg(args, kwargs, 0, "self")
        size = arg(args, kwargs, 1, "output_size", None)
        if size is None:
            raise RuleError("upsampling by scale factors at the aten level")
        return ctx.layer(Upsample(tuple(size), mode), (x,), sub=f"upsample_{mode}")
    return rule


class _Free(Exception):
    """Raised by a rule that finds nothing to price (a cat of one tensor): the op is free."""


#: How each norm kind's aten kernel is read (its names: costlab.core.specs.NORMS).
_NORM_RULES: Mapping[str, AtenRule] = {"batch": _batch_norm(1, 3), "layer": _layer_norm, "group": _group_norm}

_ACTIVATIONS = {name: kind for kind, a in ACTIVATIONS.items() for name in a.aten}  # from the catalog

_ATTENTION_KERNELS = ATTENTION_KERNELS  # from the core, which names the ops that multiply


def _table() -> dict[Any, AtenRule]:
    named: dict[str, AtenRule] = {
        "mm": _matmul, "bmm": _matmul, "matmul": _matmul, "mv": _matmul, "dot": _matmul, "vdot": _matmul,
        "addmm": _addmm, "baddbmm": _baddbmm, "_grouped_mm": _grouped_mm, "grouped_mm": _grouped_mm,
        **{name: _convolution for c in CONVS.values() for name in c.aten},  # from the catalog
        **{name: _NORM_RULES[kind] for kind, n in NORMS.items() for name in n.aten},  # from the catalog
        **{name: (_adaptive if p.adaptive else _pool)(p.mode, rank)  # from the catalog
           for p in POOLS.values() for rank, names in enumerate(p.aten, 1) for name in names},
        **{kind: _reduce(kind) for kind in REDUCTIONS},  # torch, Tensor and aten share the kind's name
        "linalg_vector_norm": _vector_norm, "cat": _cat, "stack": _stack, "embedding": _embedding, "cumsum": _scan("cumsum"),
        "cumprod": _scan("cumprod"), "floor_divide": _elementwise("floor_divide"),
        **{name: _pad(mode) for mode, p in PADS.items() for name in p.aten},  # from the catalog
        **{name: _upsample(mode) for mode, u in UPSAMPLES.items() for name in u.aten},  # from the catalog
        **{name: _activation(kind) for name, kind in _ACTIVATIONS.items()},
        **{name: _attention for name in _ATTENTION_KERNELS},
    }
    return {packet: rule for name, rule in named.items() if (packet := _packet(name)) is not None}


#: aten overload packet → rule.
ATEN_RULES: Mapping[Any, AtenRule] = _table()


#: Free ops by name: views, copies and casts, indexing and gathers, tensor creation and fills,
#: and reading metadata. No layer, no arithmetic; their output keeps the producer of their input.
FREE_OPS: frozenset[str] = frozenset({
    "view", "_unsafe_view", "reshape", "_reshape_alias", "t", "transpose", "permute", "expand", "expand_as",
    "squeeze", "unsqueeze", "slice", "select", "split", "split_with_sizes", "unbind", "chunk", "narrow",
    "alias", "as_strided", "diagonal", "detach", "lift_fresh", "lift_fresh_copy", "view_as", "unfold",
    "movedim", "swapaxes", "flatten", "unflatten", "tensor_split", "reshape_as", "_to_copy", "copy_",
    "clone", "contiguous", "to", "_copy_from", "_copy_from_and_resize", "index", "index_select", "gather",
    "take", "take_along_dim", "empty", "empty_like", "empty_strided", "zeros", "zeros_like", "ones",
    "ones_like", "full", "full_like", "arange", "linspace", "scalar_tensor", "fill", "fill_", "zero_",
    "new_zeros", "new_ones", "new_empty", "new_full", "new_empty_strided", "rand", "randn", "rand_like",
    "randn_like", "uniform_", "normal_", "repeat", "repeat_interleave", "roll", "flip", "tril", "triu",
    "_unsafe_index", "index_put", "index_put_", "tile",
    "set_", "resize_", "_pin_memory", "view_as_real", "view_as_complex", "_conj", "conj", "resolve_conj",
    "resolve_neg", "sym_size", "sym_stride", "sym_numel", "sym_storage_offset", "dim", "size", "stride",
    "is_same_size", "_has_compatible_shallow_copy_type", "result_type", "dropout", "native_dropout",
    "feature_dropout", "alpha_dropout", "bernoulli_", "bernoulli", "eye", "pixel_shuffle", "pixel_unshuffle",
    "channel_shuffle", "native_channel_shuffle", "split_copy", "unbind_copy", "view_copy", "permute_copy",
    "transpose_copy", "expand_copy", "slice_copy", "select_copy", "_assert_async", "_assert_tensor_metadata",
    "unsafe_split", "unsafe_split_with_sizes", "unsafe_chunk", "_unsafe_view",
    "_functional_assert_async", "im2col",
    # routing a mixture of experts: choosing and ordering, no arithmetic on the values
    "topk", "sort", "argsort", "histc", "bincount", "searchsorted", "any", "all", "unique", "_unique2",
})
