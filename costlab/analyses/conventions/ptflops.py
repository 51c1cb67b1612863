"""ptflops' rules (get_model_complexity_info, pytorch backend): module hooks and patched functionals."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import Callable, Mapping
from ...core.formulas import numel
from ...core.specs import RECURRENT_GATES
from .counts import CountFn, affine, attention_macs, batch_of, bmm_kernel, conv_at_input, conv_at_output, conv_bias, in_shape, in_numel, lead_product, linear_macs, matmul_prod_a_times_m, out_numel, recurrent_cells, zero
from .kinds import ACTIVATION_KINDS, ARITHMETIC_KINDS, REDUCE_KINDS, UPSAMPLE_KINDS
from .language import Composite, Convention, Term, Verdict, HELD, LAYOUT, MHA_KERNELS, NO_ARITHMETIC, for_all, macs_term, zero_term
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the results are read, never built, here
    from ...core.analysis import Layer


def _linear_bias(layer: Layer) -> int:
    return out_numel(layer) if layer.spec.bias else 0


def _rows(layer: Layer) -> int:
    """The rows a linear layer multiplies: its input's elements over its input features."""
    return in_numel(layer) // in_shape(layer)[-1]


def _value_dim(parts: Mapping[str, Layer]) -> int:
    """nn.MultiheadAttention's vdim: the value's input size, read from its call's v_proj (the bridge
    records every part of a call, or none)."""
    return parts["v_proj"].input_shapes[0][-1]


def _baddbmm_mask(layer: Layer) -> int:
    """The elements of the mask a baddbmm attention adds to its scores: the masks it was given
    broadcast together — key_padding (N·heads, 1, S), attn_2d (1, L, S), attn_3d (N·heads, L, S);
    a 2-d one (L·S) where none is recorded."""
    if layer.spec.kernel != "baddbmm":
        return 0
    q, k = layer.input_shapes[:2]
    batch_heads, length, source = numel(q[:-2]), q[-2], k[-2]
    shapes = {"key_padding": (batch_heads, 1), "attn_2d": (1, length), "attn_3d": (batch_heads, length)}
    given = [shapes[mask] for mask in layer.spec.masks] or [shapes["attn_2d"]]
    return max(lead for lead, _ in given) * max(rows for _, rows in given) * source


def _in_call(term: Term, count: Callable[[Layer, Mapping[str, Layer]], int]) -> Term:
    """``term`` counted by ``count``, which also reads the other parts of the layer's module call."""
    return replace(term, in_call=count)


def _ptflops_recurrent_elementwise(layer: Layer) -> int:
    """ptflops' rnn_flops extras per cell and step: 10·H LSTM, 7·H GRU, H RNN, + 2·G·H bias adds."""
    spec = layer.spec
    g, h = RECURRENT_GATES[spec.mode], spec.hidden_size
    per_cell = {"lstm": 10, "gru": 7}.get(spec.mode, 1) * h + (2 * g * h if spec.bias else 0)
    return lead_product(layer) * recurrent_cells(layer) * per_cell


def _recurrent_projection(layer: Layer) -> int:
    """The projection products of an LSTM with proj_size P: N·T·L·D·P·H (0 without one)."""
    spec = layer.spec
    return lead_product(layer) * recurrent_cells(layer) * spec.proj_size * spec.hidden_size


def _scores(layer: Layer) -> int:
    """Attention scores ∏batch·L·S of an attention layer (q (…, L, E), k (…, S, E))."""
    return numel(layer.output[:-1]) * layer.input_shapes[1][-2]


_PTFLOPS_FUNCTIONAL_ACT = {"relu": "relu", "elu": "elu", "gelu": "gelu"}


def convention() -> Convention:
    def hook(label: str, count: CountFn, verdict: Verdict, rule: str, primary: bool = False) -> Term:
        """A module hook's count: ptflops divides these by the batch size."""
        return Term(label, count, verdict, rule, primary, per_sample=True)

    bias = hook("conv bias adds", conv_bias, "convention",
                "conv hook: + one add per output element when the conv has a bias")
    linear_bias = hook("linear bias adds", _linear_bias, "convention",
                       "linear hook: + one add per output element when the layer has a bias")
    norm = hook("norm 1/element, 2 with affine", lambda l: in_numel(l) * (2 if affine(l) else 1), "convention",
                "norm hook: 1 per input element, 2 with an affine transform (module.affine)")
    layer_norm = hook("layer norm 1/element (affine missed)", in_numel, "bug",
                      "the norm hook reads module.affine, which LayerNorm does not have "
                      "(elementwise_affine): 1 per input element, its affine transform never counted")
    activation = hook("activation hook 1/element", out_numel, "convention",
                      "activation hook: 1 per output element")
    activation_again = Term("activation counted again (patched F.*)", in_numel, "bug",
                            "the forward of nn.ReLU / ELU / GELU calls F.relu / F.elu / F.gelu, which "
                            "ptflops patches: the elements its hook counted are counted a second "
                            "time (and not divided by the batch)")
    via_functional = Term("activation via patched F.* 1/element", in_numel, "convention",
                          "no module hook; the forward's patched F.silu / F.softmax counts 1 per "
                          "input element (not divided by the batch)")
    pool = hook("pool hook 1/input element", in_numel, "convention", "pool hook: 1 per input element")
    pool_again = Term("pool counted again (patched F.*pool*)", in_numel, "bug",
                      "the pool's forward calls the patched F.*_pool*d: its input elements are "
                      "counted a second time (and not divided by the batch)")
    upsample = hook("upsample hook (first sample only)", lambda l: out_numel(l) // batch_of(l), "convention",
                    "Upsample hook: 1 per output element of output[0] — the first sample only, "
                    "then divided by the batch like every hook count")
    upsample_again = Term("upsample counted again (patched F.interpolate)", out_numel, "bug",
                          "nn.Upsample's forward calls the patched F.interpolate: its output "
                          "elements are counted a second time (and not divided by the batch)")
    not_hooked = zero_term("not counted", "no module hook and the forward calls no patched function")
    modules: dict[str, tuple[Term, ...]] = {
        "conv": (hook("conv", conv_at_output, "macs", "conv hook: ∏k·C_in·(C_out/g)·N·∏out",
                      primary=True), bias),
        "conv-transposed": (hook("transposed conv", conv_at_input, "macs",
                                 "conv hook (transposed): ∏k·C_in·(C_out/g)·N·∏in", primary=True),
                            bias),
        "linear": (hook("linear", linear_macs, "macs", "linear hook: in·out·∏leading axes",
                        primary=True), linear_bias),
        "batch-norm": (norm,), "group-norm": (norm,), "instance-norm": (norm,),
        "layer-norm": (layer_norm,),
        **for_all(not_hooked, ACTIVATION_KINDS),
        **{kind: (activation, activation_again) for kind in ("relu", "elu", "gelu")},
        "relu6": (activation,), "leaky_relu": (activation,),
        "silu": (via_functional,), "softmax": (via_functional,),
        **{kind: (pool, pool_again)
           for kind in ("max-pool", "avg-pool", "adaptive-max-pool", "adaptive-avg-pool")},
        **{kind: (upsample, upsample_again) for kind in UPSAMPLE_KINDS},
        **for_all(NO_ARITHMETIC, LAYOUT),
        "embedding": (not_hooked,),
        **for_all(not_hooked, REDUCE_KINDS),
        "held": (HELD,),
        "recurrent": (hook("recurrent", lambda l: l.macs, "macs",
                           "rnn_flops_counter_hook: x.shape[0]·x.shape[1]·D·Σ_l (w_ih.numel() + w_hh.numel()), "
                           "the gate products of every cell and step", primary=True),
                      hook("LSTM projection not counted", lambda l: -_recurrent_projection(l), "bug",
                           "the projection weights (weight_hr_l*) of an LSTM with proj_size are not read: "
                           "its P·H products per cell and step are missing"),
                      hook("recurrent element-wise ops", _ptflops_recurrent_elementwise, "convention",
                           "per cell and step: 10·H (LSTM), 7·H (GRU), H (RNN), + 2·G·H bias adds")),
        # never modules in PyTorch; listed so that the table covers every kind
        "matmul": (Term("matmul (no module)", zero, "missed", "not a module", primary=True),),
        "attention": (Term("attention (no module)", zero, "missed", "not a module", primary=True),),
        **for_all(not_hooked, (*ARITHMETIC_KINDS, "elementwise")),
    }
    numel_in = Term("patched functional op 1/input element", in_numel, "convention",
                    "patched torch.nn.functional op: 1 per input element")
    elementwise = Term("patched torch.add / torch.mul 1/element", out_numel, "convention",
                       "patched torch.add / torch.mul: 1 per broadcast output element")
    matmul = macs_term("matmul", matmul_prod_a_times_m, "patched torch.matmul: prod(a)·b[-1]")
    functions: dict[str, tuple[Term, ...]] = {
        **{f"torch.nn.functional.{name}": (numel_in,) for name in (
            "relu", "prelu", "elu", "relu6", "gelu", "silu", "softmax",
            "avg_pool1d", "avg_pool2d", "avg_pool3d", "max_pool1d", "max_pool2d", "max_pool3d",
            "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
            "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d")},
        "torch.nn.functional.interpolate": (Term("patched F.interpolate 1/output element", out_numel, "convention",
                                                 "patched F.interpolate: 1 per output element"),),
        **{name: (matmul,) for name in ("torch.matmul", "torch.Tensor.matmul", "torch.mm",
                                        "torch.Tensor.mm", "torch.bmm", "torch.Tensor.bmm")},
        **{name: (elementwise,) for name in ("torch.add", "torch.Tensor.add", "torch.mul",
                                             "torch.Tensor.mul")},
    }
    in_proj = (hook("MHA hook: projection", linear_macs, "macs",
                    "multihead_attention_counter_hook: L·E·E (q), S·kdim·kdim (k), S·vdim·vdim (v) per sample",
                    primary=True),
               hook("MHA hook: projection at kdim²", lambda l: in_numel(l) * in_shape(l)[-1] - linear_macs(l), "bug",
                    "the k and v projections are priced kdim·kdim and vdim·vdim, not E·kdim and E·vdim "
                    "(0 when kdim = vdim = E)"),
               hook("MHA hook: in-projection bias", lambda l: out_numel(l) if l.spec.bias else 0, "convention",
                    "(L + 2·S)·E bias adds when in_proj_bias is set"))
    out_proj = (hook("MHA hook: output projection", linear_macs, "macs",
                     "L·vdim·vdim per sample, vdim the value's size: L·E·E here, E = embed_dim",
                     primary=True),
                _in_call(hook("MHA hook: output projection at vdim²", zero, "bug",
                              "the output projection is priced vdim·vdim, vdim the value's input size, not "
                              "E·E (0 when vdim = E)"),
                         lambda l, parts: _rows(l) * (_value_dim(parts) ** 2 - in_shape(l)[-1] ** 2)),
                _in_call(hook("MHA hook: output bias", zero, "convention", "L·vdim bias adds"),
                         lambda l, parts: _rows(l) * _value_dim(parts) if l.spec.bias else 0),
                _in_call(hook("MHA hook: output bias without a bias", zero, "bug",
                              "L·vdim bias adds counted even when out_proj has no bias ('bias is always "
                              "enabled')"),
                         lambda l, parts: 0 if l.spec.bias else _rows(l) * _value_dim(parts)))
    mha_attention = (hook("MHA hook: heads", attention_macs, "macs", "num_heads·(L·S·E_h + L·S·Ev_h) per sample, "
                          "Ev_h = vdim // num_heads: here E_h",
                          primary=True),
                     _in_call(hook("MHA hook: weighted sum at vdim", zero, "bug",
                                   "the weighted sum is priced at vdim // num_heads per head, vdim the value's "
                                   "input size, not E_h (0 when vdim = E)"),
                              lambda l, parts: numel(l.output[:-2]) * l.input_shapes[0][-2] * l.input_shapes[1][-2]
                              * (_value_dim(parts) // l.input_shapes[0][-3] - l.input_shapes[2][-1])),
                     hook("MHA hook: q scaling and softmax", lambda l: numel(l.input_shapes[0]) + _scores(l),
                          "convention", "L·E for the scaling of q, num_heads·L·S for the softmax"),
                     _in_call(hook("MHA hook: added keys not seen", zero, "missed",
                                   "the key length is read from the key input: the keys add_bias_kv and "
                                   "add_zero_attn append are left out of q·kᵀ, the softmax and the weighted sum"),
                              lambda l, parts: -len(l.spec.appended) * numel(l.output[:-2]) * l.input_shapes[0][-2]
                              * (l.input_shapes[0][-1] + _value_dim(parts) // l.input_shapes[0][-3] + 1)),
                     Term("patched F.softmax 1/score", lambda l: _scores(l) if bmm_kernel(l) else 0,
                          "convention", f"{MHA_KERNELS}. On bmm and baddbmm its softmax calls the patched "
                          "F.softmax: 1 per score (not divided by the batch)"),
                     Term("heads counted again (patched torch.bmm)", lambda l: attention_macs(l)
                          if bmm_kernel(l) else 0, "bug",
                          "on bmm and baddbmm the patched torch.bmm / torch.baddbmm count the products the "
                          "module hook counted a second time (and not divided by the batch)"),
                     Term("patched torch.baddbmm adds the mask", _baddbmm_mask, "convention",
                          "+ numel of the mask baddbmm adds: L·S for a 2-d attn_mask, N·heads·S for a "
                          "key_padding_mask, N·heads·L·S for both or a 3-d attn_mask"))
    mha = MappingProxyType({"nn.MultiheadAttention": Composite(MappingProxyType({
        "q_proj": in_proj, "k_proj": in_proj, "v_proj": in_proj, "attention": mha_attention,
        "out_proj": out_proj}))})
    unseen = zero_term("functional op (not seen)",
                        "a function ptflops does not patch (the `+` of a residual is "
                        "Tensor.__add__, not torch.add): no hook sees it", "missed")
    return Convention(
        "ptflops", "ptflops get_model_complexity_info (pytorch backend)", "0.7.5",
        "forward hooks on leaf modules of known types, plus patched torch.nn.functional and "
        "tensor functions", "1 per multiply-add (MACs)",
        MappingProxyType(modules), MappingProxyType(functions), by_function=True, unseen=unseen,
        exact_types=True,
        call="get_model_complexity_info(model, (C, H, W), as_strings=False): hook counts are "
            "divided by the batch size (MACs per sample), counts of patched functions are not.",
        composites=mha, operators_as_methods=True)
