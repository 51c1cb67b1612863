"""torchvision's model table's rules (the published GFLOPS column)."""

from __future__ import annotations

from types import MappingProxyType
from .counts import attention_macs, conv_at_input, conv_at_output, linear_macs, matmul_exact, zero
from .kinds import LAYER_KINDS
from .language import Convention, Term, macs_term, zero_term


def convention() -> Convention:
    table: dict[str, tuple[Term, ...]] = {
        "conv": (macs_term("conv", conv_at_output, "convolution: N·∏out·prod(weight)"),),
        "conv-transposed": (macs_term("transposed conv", conv_at_input,
                                  "transposed convolution: N·∏in·prod(weight)"),),
        "linear": (macs_term("linear", linear_macs, "addmm / mm: prod(input)·out_features"),),
        "matmul": (macs_term("matmul", matmul_exact, "mm / bmm: ∏batch·n·k·m"),),
        "attention": (macs_term("attention", attention_macs, "the two matrix products of attention"),),
        "recurrent": (Term("recurrent (not counted)", zero, "missed", "no recurrent layer in its models",
                           primary=True),),
    }
    rest = zero_term("not counted", "the model table counts convolutions and matrix products only")
    for kind in LAYER_KINDS:
        table.setdefault(kind, (rest,))
    return Convention(
        "torchvision", "torchvision model table (weights.meta['_ops'])", "0.14+",
        "a dispatch-mode counter of convolutions and matrix products (vision PR #6936)",
        "GFLOPS column = 10⁹ multiply-adds, shown to 3 decimals",
        MappingProxyType(table), MappingProxyType(table),
        call="the _ops field of torchvision's weights metadata: conv, linear and matmul MACs.")
