"""Blocks: each is a named group of layers whose cost is the sum of its rows."""

from __future__ import annotations

import pytest

from costlab.core.blocks import (bottleneck, depthwise_separable, inception, inverted_residual,
                            residual_basic, residual_bottleneck)
from costlab.core.errors import SpecError
from costlab.core.graph import Net


def _net(shape=(192, 28, 28)) -> Net:
    return Net(shape)


def test_inception_without_reductions_stacks_to_256_channels() -> None:
    net = _net()
    y = inception(net, net.input, 64, 0, 128, 0, 32, 32, reductions=False, norm=False, name="m")
    assert y.shape == (1, 256, 28, 28)
    a = net.analysis("m", y)
    assert a.layer("m.branch3.0.conv").macs == 5 * 5 * 192 * 28 * 28 * 32


def test_inception_with_reductions_is_googlenet_3a() -> None:
    net = _net()
    y = inception(net, net.input, 64, 96, 128, 16, 32, 32, norm=False, name="inception3a")
    a = net.analysis("3a", y)
    assert y.shape == (1, 256, 28, 28)
    expected = 28 * 28 * (192 * 64 + 192 * 96 + 9 * 96 * 128 + 192 * 16 + 25 * 16 * 32 + 192 * 32)
    assert a.macs == expected


def test_bottleneck_block() -> None:
    net = _net()
    y = bottleneck(net, net.input, 16, 32, 5)
    a = net.analysis("b", y)
    assert [layer.name for layer in a.layers] == ["bottleneck.reduce.conv", "bottleneck.conv.conv"]
    assert a.macs == 192 * 16 * 784 + 25 * 16 * 32 * 784


def test_depthwise_separable_block_with_norm_and_activation() -> None:
    net = _net((32, 112, 112))
    y = depthwise_separable(net, net.input, 64, name="b")
    a = net.analysis("b", y)
    assert [layer.op for layer in a.layers] == ["conv", "norm", "act", "conv", "norm", "act"]
    assert a.macs == 9 * 32 * 112 * 112 + 32 * 64 * 112 * 112
    assert a.params == 9 * 32 + 2 * 32 + 32 * 64 + 2 * 64


@pytest.mark.parametrize("c_in, out, stride, projected", [(64, 64, 1, False), (64, 128, 2, True),
                                                          (64, 128, 1, True)])
def test_residual_basic_projects_only_when_the_shape_changes(c_in, out, stride, projected) -> None:
    net = _net((c_in, 56, 56))
    y = residual_basic(net, net.input, out, stride, name="blk")
    names = [layer.name for layer in net.analysis("r", y).layers]
    assert ("blk.downsample.0" in names) == projected
    assert y.shape == (1, out, 56 // stride, 56 // stride)


def test_residual_bottleneck_stride_placement() -> None:
    for stride_in_1x1, strided in [(False, "blk.conv2"), (True, "blk.conv1")]:
        net = _net((256, 56, 56))
        y = residual_bottleneck(net, net.input, 128, 2, stride_in_1x1=stride_in_1x1, name="blk")
        a = net.analysis("r", y)
        assert a.layer(strided).spec.stride == (2, 2)
        assert y.shape == (1, 512, 28, 28)


@pytest.mark.parametrize("c_in, out, stride, t, skip", [(16, 16, 1, 6, True), (16, 24, 1, 6, False),
                                                        (16, 16, 2, 6, False), (32, 16, 1, 1, False)])
def test_inverted_residual_skip_rule(c_in, out, stride, t, skip) -> None:
    net = _net((c_in, 14, 14))
    y = inverted_residual(net, net.input, out, stride, t, name="b")
    a = net.analysis("b", y)
    assert any(layer.op == "add" for layer in a.layers) == skip
    hidden = c_in * t
    expansion = c_in * hidden * 196 if t != 1 else 0
    size = 14 // stride
    assert a.macs == expansion + 9 * hidden * size * size + hidden * out * size * size


def test_inverted_residual_rejects_stride_3() -> None:
    net = _net((16, 14, 14))
    with pytest.raises(SpecError, match="stride must be 1 or 2"):
        inverted_residual(net, net.input, 16, 3, 6)


def test_block_rows_add_up() -> None:
    net = _net((64, 56, 56))
    y = residual_bottleneck(net, net.input, 64, name="blk")
    a = net.analysis("r", y)
    (row,) = a.rows(depth=1)
    assert (row.macs, row.params, row.ops) == (a.macs, a.params, a.ops)
    assert row.layers == len(a.layers)
