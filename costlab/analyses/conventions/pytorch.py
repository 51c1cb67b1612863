"""PyTorch's own counter's rules (torch.utils.flop_counter.FlopCounterMode): 2 FLOPs per multiply-add."""

from __future__ import annotations

from types import MappingProxyType
from .counts import CountFn, attention_macs, conv_at_input, conv_at_output, linear_macs, matmul_exact, times
from .kinds import LAYER_KINDS
from .language import Convention, Term, zero_term
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the results are read, never built, here
    from ...core.analysis import Layer


def _cpu_flash(layer: Layer) -> bool:
    """Whether CPU attention runs as aten._scaled_dot_product_flash_attention_for_cpu (PyTorch 2.13):
    scaled_dot_product_attention on 4-d q, k, v with one head size; else the math path (bmm)."""
    q, k, v = layer.input_shapes[:3]
    return layer.spec.kernel == "sdpa" and len(q) == len(k) == len(v) == 4 and q[-1] == k[-1] == v[-1]


def convention() -> Convention:
    def twice(label: str, count: CountFn, rule: str) -> Term:
        return Term(label, times(2, count), "macs", rule, primary=True)

    table: dict[str, tuple[Term, ...]] = {
        "conv": (twice("conv at 2 FLOPs per MAC", conv_at_output,
                       "aten.convolution: 2·N·∏out·prod(weight)"),),
        "conv-transposed": (twice("transposed conv at 2 FLOPs per MAC", conv_at_input,
                                  "aten.convolution (transposed): 2·N·∏in·prod(weight)"),),
        "linear": (twice("linear at 2 FLOPs per MAC", linear_macs,
                         "aten.addmm / mm: 2·m·n·k, bias ignored"),),
        "matmul": (twice("matmul at 2 FLOPs per MAC", matmul_exact, "aten.mm / bmm: 2·∏batch·n·k·m"),),
        "attention": (twice("attention at 2 FLOPs per MAC", attention_macs,
                            "scaled dot-product attention on the math path, and nn.MultiheadAttention's "
                            "bmm / baddbmm: 2·∏batch·L·S·(E + Ev)"),
                      Term("CPU flash attention not counted", lambda l: -2 * attention_macs(l) if _cpu_flash(l)
                           else 0, "bug", "scaled_dot_product_attention on 4-d q, k, v with one head size (and "
                           "nn.MultiheadAttention with need_weights=False) runs on the CPU as "
                           "aten._scaled_dot_product_flash_attention_for_cpu, which has no formula (the CUDA "
                           "flash kernel has one): 0")),
        "recurrent": (twice("recurrent at 2 FLOPs per MAC", lambda l: l.macs,
                            "on the CPU aten.gru / rnn_tanh / rnn_relu, and aten.lstm with proj_size, run as the "
                            "matrix products it counts (mm, addmm)"),
                      Term("oneDNN LSTM not counted", lambda l: -2 * l.macs if l.spec.mode == "lstm" and
                           not l.spec.proj_size else 0, "missed",
                           "on the CPU an LSTM without projection runs as aten.mkldnn_rnn_layer, which has no "
                           "formula: 0")),
    }
    rest = zero_term("not counted", "only matrix products and convolutions have a formula")
    for kind in LAYER_KINDS:
        table.setdefault(kind, (rest,))
    return Convention(
        "torch", "torch.utils.flop_counter.FlopCounterMode", "2.13",
        "a dispatch mode that sees every aten op", "FLOPs: 2 per multiply-add",
        MappingProxyType(table), MappingProxyType(table),
        call="FlopCounterMode().get_total_flops() around model(x), grad enabled: convolutions and matrix "
             "products only, 2 per MAC.")
