"""torchprofile's rules (profile_macs): a handle per traced op."""

from __future__ import annotations

from types import MappingProxyType
from ...core.formulas import numel
from .counts import affine, attention_macs, bmm_kernel, conv_weight, in_shape, matmul_exact, out_numel, recurrent_directions, spatial_rank
from .kinds import ACTIVATION_KINDS, REDUCE_KINDS, UPSAMPLE_KINDS, function_name
from .language import Convention, Term, HELD, LAYOUT, MHA_KERNELS, NO_ARITHMETIC, for_all, macs_term, mha, zero_term
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the results are read, never built, here
    from ...core.analysis import Layer


def _torchprofile_conv(layer: Layer) -> int:
    """torchprofile: numel(output) · c · ∏k, c = weight axis 1 when weight axis 0 is C_out, else axis 0."""
    weight = conv_weight(layer)
    channels = weight[1] if layer.output[1] == weight[0] else weight[0]
    return out_numel(layer) * channels * numel(layer.spec.kernel)


def _torchprofile_lstm(layer: Layer) -> int:
    """torchprofile's aten::lstm: out[0]·out[1] · D · Σ_l 4·R·(I_l + R), R read from h_n (P with a
    projection, else H), I_l = D·R after the first layer; the projection's own products ignored."""
    spec, d = layer.spec, recurrent_directions(layer)
    r = spec.proj_size or spec.hidden_size
    per_step = sum(4 * r * ((spec.input_size if i == 0 else d * r) + r) for i in range(spec.num_layers))
    return numel(layer.output[:2]) * d * per_step


_MM = frozenset({"torch.mm", "torch.Tensor.mm"})


def convention() -> Convention:
    affine_norm = Term("norm 1/element (affine)", lambda l: out_numel(l) if affine(l) else 0, "convention",
                       "aten::*_norm: 1 per output element when affine, else 0")
    pooled = Term("average pool 1/output element", out_numel, "convention",
                  "aten::avg_pool*d / adaptive_avg_pool*d: 1 per output element")
    skipped = zero_term("not counted", "zero-cost op, or no handler (skipped with a warning)")
    table: dict[str, tuple[Term, ...]] = {
        "conv": (macs_term("conv", _torchprofile_conv, "aten::_convolution: numel(output)·c·∏k"),),
        "conv-transposed": (Term("transposed conv at output positions", _torchprofile_conv, "bug",
                                 "aten::_convolution prices a transposed conv at its output "
                                 "positions: numel(output)·c·∏k, c = C_out/g when C_in = C_out, "
                                 "else C_in", primary=True),),
        "linear": (macs_term("linear", lambda l: numel(l.output[:-1]) * in_shape(l)[-1] * l.spec.out_features,
                         "aten::linear: ∏leading·in·out, bias ignored"),),
        "matmul": (macs_term("matmul", matmul_exact, "aten::matmul / bmm: ∏batch·n·k·m"),
                   Term("mm (no handler)", lambda l: -matmul_exact(l) if function_name(l) in _MM else 0,
                        "missed", "torch.mm / Tensor.mm trace as aten::mm, which has no handler: skipped "
                        "with a warning")),
        "attention": (macs_term("attention", attention_macs,
                            "aten::scaled_dot_product_attention: ∏batch·L·S·(E + Ev)"),),
        "batch-norm": (affine_norm,), "layer-norm": (affine_norm,), "group-norm": (affine_norm,),
        "instance-norm": (affine_norm,),
        **for_all(skipped, ACTIVATION_KINDS),
        "leaky_relu": (Term("leaky relu 1/element", out_numel, "convention",
                            "aten::leaky_relu: 1 per output element"),),
        "max-pool": (skipped,), "adaptive-max-pool": (skipped,),
        "avg-pool": (pooled,), "adaptive-avg-pool": (pooled,),
        "add": (skipped,), "sub": (skipped,), "div": (skipped,), "elementwise": (skipped,),
        "mul": (Term("multiply 1/element", out_numel, "convention", "aten::mul: 1 per output element"),),
        **for_all(skipped, UPSAMPLE_KINDS),
        "upsample-bilinear": (Term("upsample 4/output element", lambda l: 4 * out_numel(l) if spatial_rank(l) == 2
                                   else 0, "convention",
                                   "aten::upsample_bilinear2d: 4 per output element"),),
        **for_all(NO_ARITHMETIC, LAYOUT),
        "embedding": (skipped,),
        **for_all(skipped, REDUCE_KINDS),
        "reduce-mean": (Term("mean 1/output element", out_numel, "convention",
                             "aten::mean: 1 per output element"),),
        "held": (HELD,),
        "recurrent": (macs_term("recurrent", lambda l: l.macs,
                            "aten::lstm: out[0]·out[1]·D·Σ_l 4·H·(I_l + H), the gate products of every "
                            "cell and step"),
                      Term("GRU and RNN (no handler)", lambda l: -l.macs if l.spec.mode != "lstm" else 0,
                           "missed", "aten::gru / rnn_tanh / rnn_relu have no handler: skipped with a warning"),
                      Term("LSTM projection misread", lambda l: _torchprofile_lstm(l) - l.macs
                           if l.spec.mode == "lstm" else 0, "bug",
                           "with proj_size P the hidden size is read from h_n (P, not H) and the projection's "
                           "own products are left out: 4·P·(I_l + P) per cell and step")),
    }
    shape_arithmetic = Term("traced shape arithmetic",
                            lambda l: 4 + sum(mask in ("key_padding", "attn_3d") for mask in l.spec.masks)
                            + ("zero_attn" in l.spec.appended), "bug",
                            "the traced bsz·num_heads of the q, k, v views and tgt_len·bsz of the output "
                            "are aten::mul on 0-d tensors: 1 each, 4 per call; one more for a 3-d attn_mask "
                            "(its shape check), for a key_padding_mask (its reshape) and for add_zero_attn "
                            "(the zeros' shape)")
    return Convention(
        "torchprofile", "torchprofile profile_macs", "0.1.0",
        "torch.jit trace of the forward pass; a handler per aten op", "1 per multiply-add (MACs)",
        MappingProxyType(table), MappingProxyType(table),
        call="profile_macs(model, x)",
        composites=mha(table["linear"], (
            macs_term("attention", attention_macs, f"{MHA_KERNELS}: aten::bmm, baddbmm and "
                  "scaled_dot_product_attention, each ∏batch·L·S·(E + Ev) in all"),
            Term("q scaling 1/element", lambda l: numel(l.input_shapes[0]) if bmm_kernel(l) else 0, "convention",
                 "on bmm and baddbmm, aten::mul of q by √(1/E): 1 per element of q"),
            shape_arithmetic)))
