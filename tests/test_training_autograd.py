"""Training cost under --freeze, checked against what autograd really runs on built modules.

The reference count comes from the aten ops autograd dispatches during a real forward +
backward (a TorchDispatchMode), each priced from its real tensor shapes by the rules of
:class:`AutogradMacs` below — written here, apart from costlab's formulas, with groups
entering only through the real weight's shape.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from costlab.core.expressions import analyze_expression
from costlab.core.graph import Net
from costlab.core.specs import Attention, Linear, Matmul, conv2d
from costlab.analyses.training import parametrised, train_step
from costlab.core.zoo import build_preset

# --- against autograd -------------------------------------------------------------------------

torch = pytest.importorskip("torch")
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

from costlab.torch_bridge.build import build_module, example_input  # noqa: E402

aten = torch.ops.aten
_MAC_WORDS = ("conv", "mm", "matmul", "linear", "dot", "mv", "einsum", "attention")


class AutogradMacs(TorchDispatchMode):
    """Counts the MACs of the aten ops actually dispatched, from the real tensors' shapes.

    - convolution: every output element is a dot product over one filter of the real weight:
      numel(out) · numel(weight) / C_out;
    - convolution_backward, grad input (output_mask[0]): every grad-output element is
      multiplied by every tap of its filter: numel(grad_out) · numel(weight) / C_out;
    - convolution_backward, grad weight (output_mask[1]): every weight element accumulates over
      all batch entries and output positions: numel(weight) · N · ∏ spatial(grad_out);
    - mm / addmm: n·k·m; bmm / baddbmm: b·n·k·m.
    Groups enter only through the real weight's shape.
    """

    def __init__(self) -> None:
        super().__init__()
        self.macs: Counter[str] = Counter()
        self.uncounted: set[str] = set()

    @property
    def total(self) -> int:
        return sum(self.macs.values())

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        packet = func.overloadpacket
        if packet is aten.convolution:
            weight, transposed = args[1], args[6]
            assert not transposed
            self.macs["conv forward"] += out.numel() * weight.numel() // weight.shape[0]
        elif packet is aten.convolution_backward:
            grad_out, weight, transposed, mask = args[0], args[2], args[7], args[10]
            assert not transposed
            if mask[0]:
                self.macs["conv grad input"] += grad_out.numel() * weight.numel() // weight.shape[0]
            if mask[1]:
                positions = grad_out.shape[0] * math.prod(grad_out.shape[2:])
                self.macs["conv grad weight"] += weight.numel() * positions
        elif packet in (aten.mm, aten.addmm):
            a, b = args[-2], args[-1]
            self.macs["mm"] += a.shape[0] * a.shape[1] * b.shape[1]
        elif packet in (aten.bmm, aten.baddbmm):
            a, b = args[-2], args[-1]
            self.macs["bmm"] += a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]
        elif any(word in packet.__name__ for word in _MAC_WORDS):
            self.uncounted.add(packet.__name__)
        return out


def autograd_count(analysis, frozen: tuple[str, ...], **build: Any) -> tuple[AutogradMacs, Any]:
    """Build the module, set requires_grad False on the frozen layers, run forward + backward."""
    module = build_module(analysis).train()
    for name in frozen:
        for p in module.get_submodule(name).parameters():
            p.requires_grad_(False)
    x = example_input(analysis)
    with AutogradMacs() as counter:
        out = module(x)
        if out.requires_grad:
            out.float().sum().backward()
    assert not counter.uncounted, f"ops with MACs left uncounted: {counter.uncounted}"
    return counter, module


@pytest.mark.parametrize("freeze", ["0", "fc", "layer3", "0.5", "1.0"])
def test_resnet18_train_step_equals_autograd(freeze: str) -> None:
    analysis = build_preset("resnet18", (3, 64, 64), batch=2)
    training = train_step(analysis, freeze)
    counter, module = autograd_count(analysis, training.frozen)
    assert counter.total == training.train_step_macs
    assert sum(p.numel() for p in module.parameters() if p.requires_grad) == training.trainable_params
    assert sum(p.numel() for p in module.parameters() if not p.requires_grad) == training.frozen_params
    conv = [t for t, layer in zip(training.layers, analysis.layers) if layer.op == "conv"]
    assert counter.macs["conv grad input"] == sum(t.input_grad_macs for t in conv)
    assert counter.macs["conv grad weight"] == sum(t.weight_grad_macs for t in conv)
    assert counter.macs["conv forward"] == sum(t.forward_macs for t in conv)


def test_unfrozen_resnet18_is_not_simply_three_forwards() -> None:
    analysis = build_preset("resnet18", (3, 64, 64), batch=2)
    counter, _ = autograd_count(analysis, ())
    assert counter.total == 3 * analysis.macs - analysis.layer("conv1").macs  # no image gradient


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.sampled_from([1, 3]),
       st.integers(1, 2), st.booleans(), st.integers(0, 6), st.integers(5, 9))
def test_grouped_and_depthwise_train_step_equals_autograd(groups, per_in, per_out, k, stride, bias,
                                                          freeze, size) -> None:
    channels = groups * per_in
    expression = (f"conv{k}x{k}:{groups * per_out},g{groups},s{stride}{',bias' if bias else ''} > bn "
                  f"> relu > dw3x3 > pw:{channels} > dw{k}x{k},s{stride} > gap > fc:5")
    analysis = analyze_expression(expression, (channels, size, size), batch=2)
    assume(freeze <= len(parametrised(analysis)))
    training = train_step(analysis, freeze)
    counter, _ = autograd_count(analysis, training.frozen)
    assert counter.total == training.train_step_macs


def test_pytorch_counter_overcounts_the_depthwise_weight_gradient() -> None:
    """FlopCounterMode prices convolution_backward's grad weight without the groups: C× too much
    for a depthwise conv. costlab and the dispatch count agree; PyTorch's counter does not."""
    from torch.utils.flop_counter import FlopCounterMode

    channels = 16
    analysis = analyze_expression("dw3x3 > pw:8", (channels, 10, 10), batch=2)
    depthwise = analysis.layers[0]
    training = train_step(analysis)
    counter, _ = autograd_count(analysis, ())
    assert counter.total == training.train_step_macs
    module = build_module(analysis).train()
    with FlopCounterMode(display=False) as flops:
        module(example_input(analysis)).sum().backward()
    pytorch_macs = flops.get_total_flops() // 2
    # the excess is exactly (C − 1) more depthwise weight gradients
    assert pytorch_macs - training.train_step_macs == (channels - 1) * depthwise.macs
    assert pytorch_macs > training.train_step_macs


def test_matmul_pays_one_product_per_operand_that_needs_grad() -> None:
    net = Net((4, 6, 6), batch=2)
    a = net.add(conv2d(4, 3, padding="same"), net.input, name="left")
    b = net.add(conv2d(4, 3, padding="same"), net.input, name="right")
    m = net.add(Matmul(), a, b, name="product")
    y = net.add(Linear(3), m, name="head")
    analysis = net.analysis("matmul", y)
    product = analysis.layer("product")
    for freeze in (0, 1, 2, 3):
        training = train_step(analysis, freeze)
        counter, _ = autograd_count(analysis, training.frozen)
        assert counter.total == training.train_step_macs
    # left frozen: only the right operand needs its gradient
    one_side = train_step(analysis, 1).by_name()["product"]
    assert one_side.input_grad_macs == product.macs


def test_attention_backward_equals_autograd_on_the_math_path() -> None:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    net = Net((6, 8), batch=2)
    q = net.add(Linear(8), net.input, name="q")
    k = net.add(Linear(8), net.input, name="k")
    v = net.add(Linear(4), net.input, name="v")
    o = net.add(Attention(), q, k, v, name="attention")
    y = net.add(Linear(3), o, name="out")
    analysis = net.analysis("attention", y)
    with sdpa_kernel(SDPBackend.MATH):
        for freeze in (0, 1, 2, 3, 4):
            training = train_step(analysis, freeze)
            counter, _ = autograd_count(analysis, training.frozen)
            assert counter.total == training.train_step_macs, freeze


def test_torchvision_resnet18_with_costlab_names() -> None:
    """The same check on torchvision's own module: costlab's layer names are its module paths."""
    models = pytest.importorskip("torchvision.models")
    analysis = build_preset("resnet18", (3, 64, 64), batch=2)
    for freeze in ("0", "layer4"):
        training = train_step(analysis, freeze)
        module = models.resnet18().train()
        for name in training.frozen:
            for p in module.get_submodule(name).parameters():
                p.requires_grad_(False)
        with AutogradMacs() as counter:
            module(example_input(analysis)).sum().backward()
        assert not counter.uncounted
        assert counter.total == training.train_step_macs
