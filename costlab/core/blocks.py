"""Blocks: functions that add a named group of layers to a :class:`~costlab.core.graph.Net`.

A block's cost is the sum of its rows; nothing here computes a count of its own. Layer
names inside blocks follow torchvision's module names where torchvision has the block
(``conv1``, ``bn1``, ``downsample.0``, ``branch2.1.conv``, ``conv.0.0`` ...), and a module
applied a second time gets fx's suffix (``relu_1``).
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Callable, ContextManager, Sequence

from .errors import SpecError
from .graph import Net, Value
from .specs import (Activation, Concat, Elementwise, Norm, PaddingArg, conv2d, max_pool2d)


def _scope(net: Net, name: str | None) -> ContextManager[None]:
    return net.scope(name) if name else nullcontext()


def conv_bn_act(net: Net, x: Value, out: int, kernel: int, stride: int = 1, *, groups: int = 1,
                padding: PaddingArg = "same", bias: bool = False, norm: bool = True,
                act: str | None = "relu", names: Sequence[str] = ("conv", "bn", "relu"),
                name: str | None = None) -> Value:
    """conv k×k → [batch norm] → [activation], each optional part named by ``names``."""
    with _scope(net, name):
        y = net.add(conv2d(out, kernel, stride, padding, groups=groups, bias=bias), x, name=names[0])
        if norm:
            y = net.add(Norm("batch"), y, name=names[1])
        if act:
            y = net.add(Activation(act), y, name=names[2])
    return y


def bottleneck(net: Net, x: Value, reduce_to: int, out: int, kernel: int, *, stride: int = 1,
               norm: bool = False, act: str | None = None, name: str | None = "bottleneck") -> Value:
    """1×1 reduction to ``reduce_to`` channels, then the k×k convolution to ``out``.

    MACs = H·W·C_in·r + H'·W'·k²·r·C_out, against H'·W'·k²·C_in·C_out without the reduction.
    """
    with _scope(net, name):
        y = conv_bn_act(net, x, reduce_to, 1, norm=norm, act=act, name="reduce")
        return conv_bn_act(net, y, out, kernel, stride, norm=norm, act=act, name="conv")


def depthwise_separable(net: Net, x: Value, out: int, kernel: int = 3, stride: int = 1, *,
                        norm: bool = True, act: str | None = "relu",
                        name: str | None = None) -> Value:
    """k×k depthwise (groups = C_in) then 1×1 pointwise to ``out``, each with optional BN and activation.

    MACs / standard conv MACs = 1/C_out + 1/k² (stride 1, same padding).
    """
    with _scope(net, name):
        y = conv_bn_act(net, x, x.channels, kernel, stride, groups=x.channels, norm=norm, act=act,
                        name="dw")
        return conv_bn_act(net, y, out, 1, norm=norm, act=act, name="pw")


def inception(net: Net, x: Value, c1: int, c3_reduce: int, c3: int, c5_reduce: int, c5: int,
              pool_proj: int | None, *, reductions: bool = True, norm: bool = True,
              act: str = "relu", branch3_kernel: int = 5, pool_ceil_mode: bool = False,
              name: str | None = None) -> Value:
    """Four branches on the same input, concatenated on channels (GoogLeNet's module).

    branch1: 1×1 → c1; branch2: [1×1 → c3_reduce] → 3×3 → c3; branch3: [1×1 → c5_reduce] →
    k×k → c5 (k = ``branch3_kernel``; torchvision's GoogLeNet uses 3); branch4: 3×3 max-pool,
    stride 1, same padding → [1×1 → pool_proj]. Without ``reductions`` the bracketed 1×1
    reductions before the 3×3 and k×k are left out (the "naive" module); ``pool_proj=None``
    passes the pooled input through.
    """
    names = ("conv", "bn", "relu")

    def unit(y: Value, out: int, kernel: int, scope: str) -> Value:
        # torchvision's BasicConv2d: conv (no bias with BN) → BN → ReLU
        return conv_bn_act(net, y, out, kernel, bias=not norm, norm=norm, act=act, names=names,
                           name=scope)

    with _scope(net, name):
        branch1 = unit(x, c1, 1, "branch1")
        with net.scope("branch2"):
            y = unit(x, c3_reduce, 1, "0") if reductions else x
            branch2 = unit(y, c3, 3, "1" if reductions else "0")
        with net.scope("branch3"):
            y = unit(x, c5_reduce, 1, "0") if reductions else x
            branch3 = unit(y, c5, branch3_kernel, "1" if reductions else "0")
        with net.scope("branch4"):
            branch4 = net.add(max_pool2d(3, 1, "same", ceil_mode=pool_ceil_mode), x, name="0")
            if pool_proj is not None:
                branch4 = unit(branch4, pool_proj, 1, "1")
        return net.add(Concat(1), branch1, branch2, branch3, branch4, name="cat")


def _shortcut(net: Net, x: Value, out: int, stride: int) -> Value:
    """Identity when the shape is kept, else torchvision's projection: 1×1 conv (stride) → BN."""
    if stride == 1 and x.channels == out:
        return x
    with net.scope("downsample"):
        y = net.add(conv2d(out, 1, stride), x, name="0")
        return net.add(Norm("batch"), y, name="1")


def residual_basic(net: Net, x: Value, out: int, stride: int = 1, *, name: str | None = None) -> Value:
    """ResNet's basic block: 3×3 (stride) → BN → ReLU → 3×3 → BN, + shortcut, → ReLU."""
    with _scope(net, name):
        y = conv_bn_act(net, x, out, 3, stride, names=("conv1", "bn1", "relu"))
        y = conv_bn_act(net, y, out, 3, act=None, names=("conv2", "bn2", ""))
        shortcut = _shortcut(net, x, out, stride)
        y = net.add(Elementwise("add"), y, shortcut, name="add")
        return net.add(Activation("relu"), y, name="relu_1")


def residual_bottleneck(net: Net, x: Value, width: int, stride: int = 1, *, expansion: int = 4,
                        stride_in_1x1: bool = False, name: str | None = None) -> Value:
    """ResNet's bottleneck: 1×1 → width, 3×3, 1×1 → width·expansion, + shortcut, each conv with BN.

    v1.5 (torchvision) strides in the 3×3; ``stride_in_1x1`` puts the stride in the first 1×1
    as in the original paper.
    """
    out = width * expansion
    s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
    with _scope(net, name):
        y = conv_bn_act(net, x, width, 1, s1, names=("conv1", "bn1", "relu"))
        y = conv_bn_act(net, y, width, 3, s3, names=("conv2", "bn2", "relu_1"))
        y = conv_bn_act(net, y, out, 1, act=None, names=("conv3", "bn3", ""))
        shortcut = _shortcut(net, x, out, stride)
        y = net.add(Elementwise("add"), y, shortcut, name="add")
        return net.add(Activation("relu"), y, name="relu_2")


def inverted_residual(net: Net, x: Value, out: int, stride: int, expand_ratio: int, *,
                      name: str | None = None) -> Value:
    """MobileNet v2's block: 1×1 expansion (×t) → 3×3 depthwise (stride) → 1×1 linear projection.

    BN after each conv, ReLU6 after the first two; the skip (+ input) only when stride is 1 and
    the channel count is kept. With t = 1 the expansion is left out.
    """
    if stride not in (1, 2):
        raise SpecError(f"inverted residual: stride must be 1 or 2, got {stride}")
    hidden = round(x.channels * expand_ratio)
    numbered = ("0", "1", "2")
    with _scope(net, name):
        with net.scope("conv"):
            index = 0
            y = x
            if expand_ratio != 1:
                y = conv_bn_act(net, y, hidden, 1, act="relu6", names=numbered, name=str(index))
                index += 1
            y = conv_bn_act(net, y, hidden, 3, stride, groups=hidden, act="relu6", names=numbered,
                            name=str(index))
            y = net.add(conv2d(out, 1), y, name=str(index + 1))
            y = net.add(Norm("batch"), y, name=str(index + 2))
        if stride == 1 and x.channels == out:
            y = net.add(Elementwise("add"), x, y, name="add")
        return y


def residual(net: Net, x: Value, body: Callable[[Net, Value], Value], *,
             name: str | None = None) -> Value:
    """``body(x) + shortcut(x)``: identity when shapes match, else a 1×1 projection with the stride
    that maps the input's spatial size onto the body's."""
    with _scope(net, name):
        y = body(net, x)
        if len(y.shape) != 4 or len(x.shape) != 4:
            if y.shape != x.shape:
                raise SpecError(f"residual: cannot add shapes {x.shape[1:]} and {y.shape[1:]}")
            shortcut = x
        else:
            (h, w), (h2, w2) = x.shape[2:], y.shape[2:]
            if h % h2 or w % w2 or h // h2 != w // w2:
                raise SpecError(f"residual: no strided 1×1 projection maps {h}×{w} onto {h2}×{w2}")
            shortcut = _shortcut(net, x, y.channels, h // h2)
        return net.add(Elementwise("add"), y, shortcut, name="add")
