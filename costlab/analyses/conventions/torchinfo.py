"""torchinfo's rules (summary): module hooks, "Mult-Adds" of parameterised layers."""

from __future__ import annotations

from types import MappingProxyType
from .counts import batch_of, conv_at_output, conv_bias, in_shape, linear_macs, zero
from .kinds import LAYER_KINDS
from .language import Convention, Term, macs_term, mha, zero_term
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the results are read, never built, here
    from ...core.analysis import Layer


def _recurrent_steps(layer: Layer) -> int:
    """N · T of a recurrent layer's input."""
    shape = in_shape(layer)
    if len(shape) == 2:
        return shape[0]
    return shape[0] * shape[1]


def convention() -> Convention:
    weight_out = "weight.numel()·N·∏out (torchinfo multiplies a Conv's parameters by the output positions)"
    modules: dict[str, tuple[Term, ...]] = {
        "conv": (macs_term("conv", conv_at_output, weight_out),
                 Term("conv bias adds", conv_bias, "convention",
                      "bias.numel()·N·∏out: one add per output element")),
        "conv-transposed": (Term("transposed conv at output positions", conv_at_output, "bug",
                                 "weight.numel()·N·∏out: a transposed conv's kernel is applied at "
                                 "its input positions (N·∏in), not at its output ones", primary=True),
                            Term("conv bias adds", conv_bias, "convention",
                                 "bias.numel()·N·∏out: one add per output element")),
        "linear": (macs_term("linear", linear_macs, "output_size[0]·weight.numel(): the MACs on a batch "
                         "of vectors"),
                   Term("linear middle axes not counted",
                        lambda l: batch_of(l) * in_shape(l)[-1] * l.spec.out_features - linear_macs(l), "bug",
                        "output_size[0]·weight.numel() multiplies by the batch size only: on inputs "
                        "with more than two axes (sequences, channels-last maps) the middle axes "
                        "are not counted"),
                   Term("linear bias × batch size",
                        lambda l: batch_of(l) * l.spec.out_features if l.spec.bias else 0, "convention",
                        "output_size[0]·bias.numel(): one add per output feature per sample")),
        **{kind: (Term("norm parameters × batch size", lambda l: batch_of(l) * l.params, "convention",
                       "output_size[0]·(weight + bias).numel(): 1 per affine parameter per sample"),)
           for kind in ("batch-norm", "layer-norm", "group-norm", "instance-norm")},
        "embedding": (Term("embedding table × batch size", lambda l: batch_of(l) * l.params, "bug",
                           "output_size[0]·weight.numel(): a table lookup priced as V·D "
                           "multiply-adds per sample"),),
        "matmul": (Term("matmul (no module)", zero, "missed", "not a module", primary=True),),
        "attention": (Term("attention (no module)", zero, "missed", "not a module", primary=True),),
        "recurrent": (Term("recurrent parameters × batch × steps", lambda l: _recurrent_steps(l) * l.params,
                           "bug", "parameters (biases too) × N·T: every weight priced as one multiply-add "
                           "per sample and step", primary=True),),
    }
    no_params = zero_term("no parameters", "torchinfo counts mult-adds only through parameters")
    for kind in LAYER_KINDS:
        modules.setdefault(kind, (no_params,))
    unseen = zero_term("functional op (not seen)",
                        "hooks on modules only: functions (the residual `+`, torch.matmul, "
                        "attention) are never counted", "missed")
    leaf = Term("leaf module parameters × batch size", lambda l: batch_of(l) * l.params, "convention",
                "a function called inside a leaf module that holds parameters (a LayerNorm2d "
                "calling F.layer_norm): torchinfo prices the module from its parameters, "
                "output_size[0]·numel")
    return Convention(
        "torchinfo", "torchinfo summary (Total mult-adds)", "1.8.0",
        "forward hooks on every module; leaf modules' mult-adds from their parameters",
        "1 per multiply-add", MappingProxyType(modules), MappingProxyType({}), unseen=unseen,
        leaf_function_params=leaf,
        call="summary(model, input_data=x).total_mult_adds",
        composites=mha(*(2 * ((zero_term("not a leaf module", "nn.MultiheadAttention has a child "
                                             "(out_proj), so it is no leaf and its mult-adds are not summed; "
                                             "out_proj is never called as a module: 0", "missed",
                                             primary=True),),))))
