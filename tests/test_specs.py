"""Invalid specs, and valid specs on inputs they cannot take, raise costlab's own error naming the rule."""

from __future__ import annotations

import pytest

from costlab.core.errors import CostlabError, SpecError
from costlab.core.graph import Net, Value
from costlab.core.specs import (Concat, Conv, Dropout, Elementwise, Linear, Norm, Pool, conv2d, max_pool2d)


@pytest.mark.parametrize("make, rule", [
    (lambda: conv2d(0, 3), "output channels must be a positive integer"),
    (lambda: conv2d(-4, 3), "output channels must be a positive integer"),
    (lambda: conv2d(8, 0), "kernel size must be a positive integer"),
    (lambda: conv2d(8, 3, stride=0), "stride must be a positive integer"),
    (lambda: conv2d(8, 3, dilation=0), "dilation must be a positive integer"),
    (lambda: conv2d(8, 3, padding=-1), "padding must be a non-negative integer"),
    (lambda: conv2d(8, 3, padding="full"), "padding must be an integer, 'same' or 'valid'"),
    (lambda: conv2d(8, 3, groups=3), "groups 3 do not divide the 8 output channels"),
    (lambda: conv2d(8, 2, stride=2, padding="same"), "'same' padding with an even kernel needs stride 1"),
    (lambda: Linear(0), "output features must be a positive integer"),
    (lambda: max_pool2d(3, 0), "stride must be a positive integer"),
    (lambda: max_pool2d(2, padding=2), "more than half the kernel"),
    (lambda: Dropout(1.5), "probability must lie in"),
    (lambda: Norm("weird"), "unknown kind"),  # type: ignore[arg-type]
    (lambda: Conv(4, (3, 3), output_padding=(1, 1)), "output padding applies to transposed"),
])
def test_invalid_spec_is_refused(make, rule: str) -> None:
    with pytest.raises(SpecError, match=rule):
        make()


@pytest.mark.parametrize("spec, inputs, rule", [
    (conv2d(8, 3, groups=2), [(1, 3, 8, 8)], "groups 2 do not divide the 3 input channels"),
    (conv2d(8, 7, padding=1), [(1, 3, 4, 4)], "kernel 7 is larger than the padded input 6"),
    (conv2d(8, 3, dilation=3), [(1, 3, 6, 6)], "dilated span 7"),
    (conv2d(8, 3), [(1, 3, 8)], "expects a C×H×W input"),
    (max_pool2d(5), [(1, 3, 4, 4)], "kernel 5 is larger than the padded input 4"),
    (Elementwise("add"), [(1, 64, 56, 56), (1, 128, 28, 28)], "do not match"),
    (Concat(1), [(1, 64, 28, 28), (1, 32, 27, 27)], "mismatched sizes"),
    (Linear(10, in_features=20), [(1, 30)], "expects 20 input features, got 30"),
    (Norm("batch", num_features=4), [(1, 3, 2, 2)], "expects 4 channels, got 3"),
])
def test_spec_on_an_input_it_cannot_take(spec, inputs, rule: str) -> None:
    net = Net(inputs[0][1:])
    values = [Value(f"x{i}", shape) for i, shape in enumerate(inputs)]
    with pytest.raises(SpecError, match=rule) as caught:
        net.add(spec, *values, name="bad")
    assert "layer 'bad'" in str(caught.value)  # names the layer
    assert isinstance(caught.value, CostlabError)


def test_bad_net_input_is_refused() -> None:
    for shape in [(), (0, 4, 4), (3, -1, 4)]:
        with pytest.raises(SpecError, match="input sizes must be positive"):
            Net(shape)
    with pytest.raises(SpecError, match="batch must be a positive integer"):
        Net((3, 8, 8), batch=0)


def test_same_padding_resolves_like_pytorch() -> None:
    assert conv2d(8, 3, padding="same").padding == (1, 1)
    assert conv2d(8, 3, 2, padding="same").padding == (1, 1)  # odd kernel: fine at stride 2
    assert conv2d(8, 4, padding="same").padding == "same"  # even kernel: asymmetric, stride 1 only
    assert conv2d(8, 3, dilation=2, padding="same").padding == (2, 2)
    assert conv2d(8, 3, padding="valid").padding == (0, 0)
    assert Pool("max", (3, 3)).stride == (3, 3)  # PyTorch's default stride = kernel
