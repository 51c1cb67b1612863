"""thop's rules (profile): module hooks on torch.nn's own classes."""

from __future__ import annotations

from types import MappingProxyType
from ...core.formulas import numel
from ...core.specs import RECURRENT_GATES
from .counts import affine, in_shape, in_numel, lead_product, out_numel, recurrent_cells, recurrent_directions, zero, times
from .kinds import ACTIVATION_KINDS, ARITHMETIC_KINDS, REDUCE_KINDS, UPSAMPLE_KINDS
from .language import Convention, Term, for_all, macs_term, mha, zero_term
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the results are read, never built, here
    from ...core.analysis import Layer


def _thop_conv(layer: Layer) -> int:
    """thop: numel(output) · (C_in/g) · ∏k, for both directions."""
    spec = layer.spec
    return out_numel(layer) * (in_shape(layer)[1] // spec.groups) * numel(spec.kernel)


def _adaptive_thop(layer: Layer) -> int:
    """thop: int((∏ in/out, as floats, + 1) · numel(output))."""
    window = 1.0
    for n, o in zip(in_shape(layer)[2:], layer.output[2:]):
        window *= n / o
    return int((window + 1) * out_numel(layer))


def _softmax_thop(layer: Layer) -> int:
    """thop: per softmax row of n values, n exps + (n − 1) adds + n divides."""
    n = in_shape(layer)[-1]
    return (in_numel(layer) // n) * (3 * n - 1)


def _thop_recurrent_products(layer: Layer) -> int:
    """thop's gate products: N·T·Σ_l D·G·H·(I_l + H), I_0 = input size, I_l = D·H after the first
    layer (the projection of an LSTM with proj_size is ignored and H used for P)."""
    spec, d = layer.spec, recurrent_directions(layer)
    g, h = RECURRENT_GATES[spec.mode], spec.hidden_size
    per_step = sum(d * g * h * ((spec.input_size if i == 0 else d * h) + h) for i in range(spec.num_layers))
    return lead_product(layer) * per_step


def _thop_recurrent_elementwise(layer: Layer) -> int:
    """thop's other ops per cell and step: (8 + 8·bias)·H LSTM, (7 + 6·bias)·H GRU, (1 + 2·bias)·H RNN."""
    spec = layer.spec
    base, with_bias = {"lstm": (8, 8), "gru": (7, 6)}.get(spec.mode, (1, 2))
    per_cell = (base + (with_bias if spec.bias else 0)) * spec.hidden_size
    return lead_product(layer) * recurrent_cells(layer) * per_cell


def convention() -> Convention:
    norm = Term("norm 4/element (doubled twice)", lambda l: in_numel(l) * (4 if affine(l) else 2), "bug",
                "count_normalization: 2 per input element ('fused at inference'), doubled again "
                "when affine: 4 per element")
    zero_rule = zero_term("zero rule", "a registered zero_ops rule")
    no_rule = zero_term("no rule", "no rule for the module type: zero ops, zero params", "zero")
    upsample = {"upsample-nearest": 1, "upsample-linear": 5, "upsample-bilinear": 11,
                "upsample-bicubic": 259}
    modules: dict[str, tuple[Term, ...]] = {
        "conv": (macs_term("conv", _thop_conv, "count_convNd: numel(output)·(C_in/g)·∏k, bias ignored"),),
        "conv-transposed": (Term("transposed conv at output positions", _thop_conv, "bug",
                                 "count_convNd prices a transposed conv like a forward one: "
                                 "numel(output)·(C_in/g)·∏k instead of N·∏in·C_in·(C_out/g)·∏k",
                                 primary=True),),
        "linear": (macs_term("linear", lambda l: in_shape(l)[-1] * out_numel(l),
                         "count_linear: in_features·numel(output), bias ignored"),),
        "batch-norm": (norm,), "layer-norm": (norm,), "instance-norm": (norm,),
        "group-norm": (Term("group norm (no rule)", zero, "missed",
                            "nn.GroupNorm has no rule: zero ops and its params not counted"),),
        **for_all(no_rule, ACTIVATION_KINDS),
        "relu": (zero_rule,), "relu6": (zero_rule,), "leaky_relu": (zero_rule,),
        "softmax": (Term("softmax 3n−1/row", _softmax_thop, "convention",
                         "count_softmax: (3n − 1) per row of n values"),),
        "max-pool": (zero_rule,), "adaptive-max-pool": (zero_rule,),
        "avg-pool": (Term("avg pool 1/output element", out_numel, "convention",
                           "count_avgpool: 1 per output element"),),
        "adaptive-avg-pool": (Term("adaptive avg pool (window + 1)/output element", _adaptive_thop,
                                   "convention",
                                   "count_adap_avgpool: (∏ in/out + 1) per output element, "
                                   "the window size taken as a float"),),
        **{kind: (Term(f"upsample {upsample[kind]}/output element", times(upsample[kind], out_numel),
                       "convention",
                       "count_upsample: 1 (nearest), 5 (linear), 11 (bilinear), 259 (bicubic) per "
                       "output element"),) if kind in upsample
           else (zero_term("upsample (not counted)", "count_upsample: mode not implemented, "
                            "zero with a warning"),) for kind in UPSAMPLE_KINDS},
        "dropout": (zero_rule,), "concat": (no_rule,), "flatten": (no_rule,), "reshape": (no_rule,),
        "embedding": (Term("embedding (no rule)", zero, "zero",
                           "nn.Embedding has no rule: its params are not counted"),),
        **for_all(no_rule, REDUCE_KINDS),
        "pad": (zero_term("zero rule", "nn.ZeroPad2d: a registered zero_ops rule (other pads: no "
                           "rule); no arithmetic either way"),),
        "held": (Term("held parameters", zero, "zero", "parameters of modules that never run: "
                      "no hook fires, so their params are not counted"),),
        "recurrent": (macs_term("recurrent", lambda l: l.macs, "count_lstm / count_gru / count_rnn: "
                            "x.size(0)·x.size(1)·Σ_l D·G·H·(I_l + H), the gate products of every cell and step"),
                      Term("LSTM projection ignored", lambda l: _thop_recurrent_products(l) - l.macs, "bug",
                           "proj_size is ignored: H is used for P in the recurrent products and the next "
                           "layer's input, and the projection itself is not counted"),
                      Term("recurrent element-wise ops", _thop_recurrent_elementwise, "convention",
                           "per cell and step: (8 + 8·bias)·H (LSTM), (7 + 6·bias)·H (GRU), (1 + 2·bias)·H "
                           "(RNN) for the gate sums, bias adds and state update")),
        "matmul": (Term("matmul (no module)", zero, "missed", "not a module", primary=True),),
        "attention": (Term("attention (no module)", zero, "missed", "not a module", primary=True),),
        **for_all(no_rule, (*ARITHMETIC_KINDS, "elementwise")),
    }
    unseen = zero_term("functional op (not seen)",
                        "forward hooks on modules only: functions (the residual `+`, torch.cat, "
                        "torch.matmul, F.scaled_dot_product_attention) are never counted", "missed")
    return Convention(
        "thop", "thop profile", "0.1.1.post2209072238",
        "forward hooks on leaf modules of registered types", "1 per multiply-add (MACs)",
        MappingProxyType(modules), MappingProxyType({}), unseen=unseen,
        params_missed=frozenset({"group-norm", "embedding", "held"}), exact_types=True,
        hooked_params_only=True,
        call="thop.profile(model, (x,)) → (ops, params); params only of modules with a rule.",
        composites=mha(*(2 * ((zero_term("no rule", "nn.MultiheadAttention has no rule: zero ops, its "
                                             "params not counted", "missed", primary=True),),)), params=False))
