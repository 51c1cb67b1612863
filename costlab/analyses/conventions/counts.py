"""Shape helpers of the rules: every count a rule makes is a pure function of a layer's spec and shapes."""

from __future__ import annotations

from typing import Callable
from ...core.formulas import numel
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the results are read, never built, here
    from ...core.analysis import Layer


CountFn = Callable[["Layer"], int]


def in_shape(layer: Layer) -> tuple[int, ...]:
    return layer.input_shapes[0]


def batch_of(layer: Layer) -> int:
    return in_shape(layer)[0]


def in_numel(layer: Layer) -> int:
    return numel(in_shape(layer))


def out_numel(layer: Layer) -> int:
    return numel(layer.output)


def conv_weight(layer: Layer) -> tuple[int, ...]:
    """PyTorch's weight shape: (C_out, C_in/g, *k), transposed (C_in, C_out/g, *k)."""
    spec = layer.spec
    c_in = in_shape(layer)[1]
    if spec.transposed:
        return (c_in, spec.out_channels // spec.groups) + spec.kernel
    return (spec.out_channels, c_in // spec.groups) + spec.kernel


def _positions_out(layer: Layer) -> int:
    """N · ∏ output spatial sizes."""
    return layer.output[0] * numel(layer.output[2:])


def _positions_in(layer: Layer) -> int:
    """N · ∏ input spatial sizes."""
    return in_shape(layer)[0] * numel(in_shape(layer)[2:])


def conv_bias(layer: Layer) -> int:
    """One add per output element: N · C_out · ∏out."""
    return out_numel(layer) if layer.spec.bias else 0


def conv_at_output(layer: Layer) -> int:
    """N · ∏out · prod(weight): right for a convolution, wrong (output positions) for a transposed one."""
    return _positions_out(layer) * numel(conv_weight(layer))


def conv_at_input(layer: Layer) -> int:
    """N · ∏in · prod(weight): the MACs of a transposed convolution (each input scatters its kernel)."""
    return _positions_in(layer) * numel(conv_weight(layer))


def linear_macs(layer: Layer) -> int:
    """prod(input) · out_features."""
    return in_numel(layer) * layer.spec.out_features


def matmul_prod_a_times_m(layer: Layer) -> int:
    """prod(a.shape) · b.shape[-1] (fvcore's and ptflops' matmul)."""
    a, b = layer.input_shapes[:2]
    return numel(a) * b[-1]


def matmul_exact(layer: Layer) -> int:
    """∏batch · n · k · m from the operand and output shapes (torchprofile's matmul)."""
    a, b = layer.input_shapes[:2]
    if len(a) == 1 and len(b) == 1:
        return a[0]
    if len(b) == 1:
        return numel(a)
    if len(a) == 1:
        return numel(b)
    return numel(layer.output[:-1]) * a[-1] * b[-1] if len(layer.output) >= 2 else 0


def attention_macs(layer: Layer) -> int:
    """∏batch · L · S · (E + Ev) for q (…, L, E), k (…, S, E), v (…, S, Ev)."""
    q, k, v = layer.input_shapes[:3]
    return numel(layer.output[:-2]) * q[-2] * k[-2] * (q[-1] + v[-1])


def affine(layer: Layer) -> bool:
    return bool(layer.spec.affine)


def spatial_rank(layer: Layer) -> int:
    return len(in_shape(layer)) - 2


def zero(layer: Layer) -> int:
    return 0


def recurrent_directions(layer: Layer) -> int:
    return 2 if layer.spec.bidirectional else 1


def recurrent_cells(layer: Layer) -> int:
    """Layers × directions: the cells run at every step."""
    return layer.spec.num_layers * recurrent_directions(layer)


def lead_product(layer: Layer) -> int:
    """input.shape[0]·input.shape[1] of a recurrent layer: N·T batched (either layout), T·I unbatched
    (ptflops' and thop's batch × steps, read from the input without its layout)."""
    return numel(in_shape(layer)[:2])


def bmm_kernel(layer: Layer) -> bool:
    """nn.MultiheadAttention's attention computed by torch.bmm / torch.baddbmm (need_weights=True)."""
    return layer.spec.kernel != "sdpa"


def times(k: int, of: CountFn) -> CountFn:
    """A count function k × ``of``."""
    return lambda layer: k * of(layer)
