"""fvcore's rules (FlopCountAnalysis): a handle per aten op, 1 per multiply-add."""

from __future__ import annotations

from types import MappingProxyType
from ...core.formulas import numel
from .counts import affine, attention_macs, conv_at_input, conv_at_output, in_numel, linear_macs, matmul_prod_a_times_m, out_numel, spatial_rank, zero, times
from .kinds import ACTIVATION_KINDS, ARITHMETIC_KINDS, REDUCE_KINDS, UPSAMPLE_KINDS
from .language import Convention, Term, HELD, LAYOUT, NO_ARITHMETIC, for_all, macs_term, zero_term
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the results are read, never built, here
    from ...core.analysis import Layer


def _fvcore_attention(layer: Layer) -> int:
    """fvcore: SDPA 0; bmm + bmm all; baddbmm (no handle) + bmm: the weighted sum ∏batch·L·S·Ev."""
    kernel = layer.spec.kernel
    if kernel == "bmm":
        return attention_macs(layer)
    if kernel == "baddbmm":
        q, k, v = layer.input_shapes[:3]
        return numel(layer.output[:-2]) * q[-2] * k[-2] * v[-1]
    return 0


def convention() -> Convention:
    conv = macs_term("conv", conv_at_output, "aten::_convolution: N·∏out·prod(weight), bias ignored")
    conv_t = macs_term("transposed conv", conv_at_input,
                   "aten::_convolution (transposed): N·∏in·prod(weight), bias ignored")
    linear = macs_term("linear", linear_macs, "aten::linear: prod(input)·out_features, bias ignored")
    matmul = macs_term("matmul", matmul_prod_a_times_m, "aten::matmul: prod(a)·b[-1]")
    attention = Term("attention by its kernel", _fvcore_attention, "missed",
                     "scaled_dot_product_attention has no handle (0); nn.MultiheadAttention returning its "
                     "weights runs aten::bmm twice (counted in full), with a mask aten::baddbmm (no "
                     "handle) for q·kᵀ and aten::bmm for the weighted sum", primary=True)

    def bn(layer: Layer) -> int:
        if layer.spec.track_running_stats:  # eval: running statistics, folded scale-and-shift
            return in_numel(layer) * (2 if affine(layer) else 1)
        return in_numel(layer) * (5 if affine(layer) else 4)

    norm_stats = Term("norm 5/element", lambda l: in_numel(l) * (5 if affine(l) else 4), "convention",
                      "aten::group_norm / layer_norm / instance_norm: 5 per input element with "
                      "affine, 4 without")
    skipped = zero_term("not counted", "no handle (relu is ignored; other activations, max and "
                         "average pooling and element-wise ops are skipped with a warning)")
    table: dict[str, tuple[Term, ...]] = {
        "conv": (conv,), "conv-transposed": (conv_t,), "linear": (linear,), "matmul": (matmul,),
        "attention": (attention,),
        "batch-norm": (Term("batch norm 2/element", bn, "convention",
                            "aten::batch_norm at inference: 2 per input element with affine, 1 "
                            "without (5 / 4 when it normalises by batch statistics)"),),
        "layer-norm": (norm_stats,), "group-norm": (norm_stats,), "instance-norm": (norm_stats,),
        **for_all(skipped, ACTIVATION_KINDS),
        "max-pool": (skipped,), "avg-pool": (skipped,), "adaptive-max-pool": (skipped,),
        "adaptive-avg-pool": (Term("adaptive avg pool 1/input element",
                                   lambda l: in_numel(l) if spatial_rank(l) == 2 else 0,
                                   "convention", "aten::adaptive_avg_pool2d: 1 per input element "
                                   "(the 1-d and 3-d ops have no handle)"),),
        **for_all(skipped, (*ARITHMETIC_KINDS, "elementwise")),
        **for_all(skipped, UPSAMPLE_KINDS),
        "upsample-nearest": (Term("upsample 1/output element",
                                  lambda l: out_numel(l) if spatial_rank(l) == 2 else 0,
                                  "convention", "aten::upsample_nearest2d: 1 per output element "
                                  "(1-d and 3-d have no handle)"),),
        "upsample-bilinear": (Term("upsample 4/output element", times(4, out_numel), "convention",
                                   "aten::upsample_bilinear2d: 4 per output element"),),
        **for_all(NO_ARITHMETIC, LAYOUT),
        "embedding": (zero_term("not counted", "aten::embedding has no handle"),),
        **for_all(zero_term("not counted", "aten::mean / sum / amax / amin have no handle"),
               REDUCE_KINDS),
        "held": (HELD,),
        "recurrent": (Term("recurrent (not counted)", zero, "missed", "aten::lstm / gru / rnn_tanh have "
                           "no handle: skipped with a warning", primary=True),),
    }
    return Convention(
        "fvcore", "fvcore FlopCountAnalysis", "0.1.5.post20221221",
        "torch.jit.trace of the forward pass; a handle per aten op", "1 per multiply-add",
        MappingProxyType(table), MappingProxyType(table),
        call="FlopCountAnalysis(model, inputs).total(); traces the model in its current mode.")
