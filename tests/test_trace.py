"""Counting any nn.Module: the traced analysis equals the analytic one, parameters are counted once,
functional ops are named and priced, unknown ops are listed, the fallback counts what fx cannot trace,
and the user's module comes back as it went in."""

from __future__ import annotations

import io

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import costlab  # noqa: E402
from costlab.app.cli import main  # noqa: E402
from costlab.core.errors import CostlabError, SpecError, TargetError  # noqa: E402
from costlab.core.expressions import analyze_expression  # noqa: E402
from costlab.torch_bridge.build import build_module  # noqa: E402
from costlab.torch_bridge.trace import analyze_callable, trace_module  # noqa: E402
from costlab.core.zoo import PRESETS, build_preset  # noqa: E402

import costlab_test_nets as nets  # noqa: E402


def _facts(analysis: costlab.Analysis) -> list[tuple]:
    return [(layer.name, layer.output, layer.macs, layer.params, layer.ops, layer.buffers, layer.inputs,
             layer.bytes, layer.formula) for layer in analysis.layers]


def _module_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _torch_macs(module: nn.Module, x: "torch.Tensor") -> int:
    """PyTorch's own counter, halved (it counts 2 FLOPs per multiply-add)."""
    with FlopCounterMode(display=False) as counter:
        module(x)
    flops = counter.get_total_flops()
    assert flops % 2 == 0
    return flops // 2


@pytest.mark.parametrize("method", ["fx", "meta"])
@pytest.mark.parametrize("name", list(PRESETS))
def test_traced_preset_equals_the_analytic_one_layer_by_layer(name: str, method: str) -> None:
    analytic = build_preset(name, batch=2)
    module = build_module(analytic, device="meta")
    trace = trace_module(module, analytic.input, batch=2, method=method)
    assert trace.method == method
    assert _facts(trace.analysis) == _facts(analytic)
    assert trace.analysis.unsupported == ()
    assert trace.analysis.params == _module_params(module) == analytic.params
    assert trace.analysis.output == analytic.output


def test_a_module_called_twice_and_shared_weights_count_their_parameters_once() -> None:
    class Shared(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(50, 16)
            self.block = nn.Linear(16, 16)
            self.act = nn.ReLU()
            self.out = nn.Linear(16, 50, bias=False)
            self.out.weight = self.embed.weight  # tied
            self.unused = nn.Linear(16, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.embed(x)
            y = self.act(self.block(y))
            y = self.act(self.block(y))  # same module again
            return self.out(y)

    module = Shared()
    a = costlab.analyze(module, input=(7,), batch=3)
    names = [layer.name for layer in a.layers]
    assert names[:6] == ["embed", "block", "act", "block_1", "act_1", "out"]
    assert a.params == _module_params(module) == 50 * 16 + 16 * 16 + 16 + 16 * 3 + 3
    assert a.layer("block").params == 16 * 16 + 16 and a.layer("block_1").params == 0
    assert a.layer("out").params == 0  # its weight is the embedding's
    assert a.layer("unused").params == 16 * 3 + 3 and a.layer("unused").source == "unused"
    assert a.layer("block_1").macs == a.layer("block").macs == 3 * 7 * 16 * 16
    assert a.macs == _torch_macs(module, torch.randint(0, 50, (3, 7)))
    from costlab.analyses.training import train_step

    held = next(step for step in train_step(a).layers if step.name == "unused")
    assert (held.trainable_params, held.weight_grad, held.backward_ops) == (16 * 3 + 3, False, 0)


def test_functional_ops_are_named_in_their_scope_and_priced() -> None:
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(8, 8, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = F.relu(self.conv(x))
            y = y + x
            y = y + x
            return torch.cat([y, x], 1)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.block = Block()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.block(x)
            return torch.flatten(y.mean((2, 3)), 1)

    module = Net()
    a = costlab.analyze(module, input=(8, 6, 6), batch=2)
    assert [layer.name for layer in a.layers] == ["block.conv", "block.relu", "block.add", "block.add_1",
                                                  "block.cat", "mean", "flatten"]
    elements = 2 * 8 * 6 * 6
    assert a.layer("block.add").ops == a.layer("block.add_1").ops == elements
    assert a.layer("block.add").inputs == ("block.relu", "input")
    assert a.layer("block.add_1").inputs == ("block.add", "input")
    assert a.layer("block.cat").output == (2, 16, 6, 6)
    assert a.layer("mean").output == (2, 16) and a.layer("mean").ops == 2 * 16 * 36
    assert a.layer("block.conv").macs == 2 * 8 * 36 * 8 * 9
    assert a.output == (16,)
    assert a.macs == _torch_macs(module, torch.randn(2, 8, 6, 6))


def test_multihead_attention_and_sdpa_match_pytorchs_counter() -> None:
    class Attend(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mha = nn.MultiheadAttention(32, 4, batch_first=True)
            self.norm = nn.LayerNorm(32)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y, _ = self.mha(x, x, x)
            y = self.norm(y + x)
            q = y.view(y.shape[0], y.shape[1], 4, 8).transpose(1, 2)
            z = F.scaled_dot_product_attention(q, q, q)
            return z.transpose(1, 2).reshape(y.shape)

    module = Attend().eval()
    a = costlab.analyze(module, input=(10, 32), batch=2)
    assert a.unsupported == ()
    assert a.params == _module_params(module)
    parts = [layer.name for layer in a.layers if layer.name.startswith("mha.")]
    assert parts == ["mha.q_proj", "mha.k_proj", "mha.v_proj", "mha.attention", "mha.out_proj"]
    # PyTorch's counter, on the meta device (its CPU flash kernel has no formula)
    meta = Attend().to("meta").eval()
    assert a.macs == _torch_macs(meta, torch.empty(2, 10, 32, device="meta"))


def test_unsupported_ops_are_listed_not_counted_as_zero() -> None:
    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.GRU(4, 4, batch_first=True)
            self.fc = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y, _ = self.rnn(x)
            y = torch.kthvalue(y, 2, dim=1, keepdim=True).values.expand_as(y)  # no rule at any level
            return self.fc(torch.sort(y, dim=1).values)  # sort multiplies nothing: free

    a = costlab.analyze(Odd(), input=(5, 4))
    listed = {(u.path, u.op) for u in a.unsupported}
    assert listed == {("(top level)", "aten.kthvalue")}
    assert a.layer("fc").macs == 5 * 4 * 2  # shapes flow on past what is not priced
    assert a.layer("rnn").macs == 5 * 3 * 4 * (4 + 4)  # T steps × 3 gates · H · (I + H)
    assert "unsupported" in a.to_dict()
    assert a.params == _module_params(Odd())
    out = io.StringIO()
    assert main(["analyze", "costlab_test_nets:tiny", "--input", "3x8x8"], stdout=out) == 0


def test_data_dependent_control_flow_goes_through_the_fallback_and_is_counted_right() -> None:
    module = nets.shape_dependent()
    trace = trace_module(module, (3, 32, 32), batch=2)
    assert trace.method == "meta"
    a = trace.analysis
    assert any("torch.fx could not trace it" in note for note in a.notes)
    assert [layer.name for layer in a.layers] == ["conv", "relu", "pool", "pool_1", "head", "mul"]
    # the same network written as an expression: conv 3×3 → relu → two 2×2 pools → 1×1 conv
    same = analyze_expression("conv3x3:8,bias > relu > maxpool2x2 > maxpool2x2 > conv1x1:4,bias",
                              (3, 32, 32), batch=2)
    assert a.macs == same.macs == _torch_macs(module, torch.randn(2, 3, 32, 32))
    assert a.params == same.params == _module_params(module)
    assert a.layer("mul").ops == 2 * 4 * 8 * 8
    assert a.output == (4, 8, 8)
    # at 16 wide it pools once: the count follows the input, as the real forward does
    small = costlab.analyze(module, input=(3, 16, 16))
    assert [layer.name for layer in small.layers] == ["conv", "relu", "pool", "head", "mul"]


def test_value_dependent_control_flow_is_counted_by_a_cpu_run_that_says_so() -> None:
    module = nets.value_dependent()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    trace = trace_module(module, (3, 8, 8), batch=2)
    assert trace.method == "cpu" and {layer.engine for layer in trace.analysis.layers} == {"cpu"}
    assert any("hold for these input values" in note for note in trace.analysis.notes)
    assert trace.analysis.macs == _torch_macs(module, torch.rand(2, 3, 8, 8))
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())
    with pytest.raises(TargetError) as caught:
        trace_module(module, (3, 8, 8), method="meta")
    assert "meta device" in str(caught.value) and "\n" not in str(caught.value)


def test_a_data_dependent_op_on_the_fx_walk_is_counted_by_a_run() -> None:
    """nonzero leaves the fx walk without the shapes that follow it: the ladder goes on to a meta
    run, which nonzero stops, and a CPU run on the given values counts the selected rows exactly."""
    module = nets.selected()
    x = torch.randn(6, 8)
    x[:4, 0] = torch.tensor([1.0, -1.0, 2.0, -3.0])
    trace = trace_module(module, inputs=(x,))
    assert trace.method == "cpu"
    assert any("lost the shapes after torch.nonzero" in note for note in trace.analysis.notes)
    assert trace.analysis.macs == _torch_macs(module, x) == int((x[:, 0] > 0).sum()) * 8 * 8
    fx_only = trace_module(module, inputs=(x,), method="fx").analysis
    assert fx_only.macs == 0  # fx alone: listed, not guessed
    assert any(u.op == "torch.nonzero" for u in fx_only.unsupported)


def test_mode_and_hooks_are_restored_on_success_and_on_error() -> None:
    module = nets.tiny()
    module.train()
    module.bn.eval()  # a mixed state must come back as it was
    calls: list[str] = []
    module.register_forward_hook(lambda *args: calls.append("root"))
    module.conv.register_forward_pre_hook(lambda *args: calls.append("conv"))
    before = {id(p): p.device for p in module.parameters()}

    costlab.analyze(module, input=(3, 8, 8))
    with pytest.raises(SpecError):
        costlab.analyze(module, input=(5, 8, 8))  # wrong channel count
    with pytest.raises(TargetError):
        trace_module(nets.value_dependent(), (3, 8, 8), method="meta")

    assert module.training and not module.bn.training and module.conv.training
    assert calls == []  # no hook ran during the analyses
    module(torch.randn(1, 3, 8, 8))
    assert calls == ["conv", "root"]
    assert {id(p): p.device for p in module.parameters()} == before


def test_fallback_leaves_the_users_module_alone() -> None:
    module = nets.shape_dependent()
    state = {k: v.clone() for k, v in module.state_dict().items()}
    trace_module(module, (3, 16, 16), method="meta")
    assert all(torch.equal(state[k], v) and v.device.type == "cpu" for k, v in module.state_dict().items())


def test_callable_targets_and_their_errors() -> None:
    a = analyze_callable("costlab_test_nets:tiny", (3, 8, 8), {"width": "4", "classes": "3"})
    assert a.name == "costlab_test_nets:tiny(width=4,classes=3)" and a.kind == "module"
    assert a.params == _module_params(nets.tiny(4, 3))
    bad = {
        "no_such_package_xyz:f": "cannot import",
        "costlab_test_nets:missing": "has no attribute",
        "costlab_test_nets:NOT_CALLABLE": "not a callable",
        "costlab_test_nets:raises": "raised RuntimeError: this factory always fails",
        "costlab_test_nets:not_a_module": "not an nn.Module",
    }
    for target, message in bad.items():
        with pytest.raises(CostlabError) as caught:
            analyze_callable(target, (3, 8, 8), {})
        assert message in str(caught.value) and "\n" not in str(caught.value)
    for argv in (["analyze", "costlab_test_nets:raises", "--input", "3x8x8"],
                 ["analyze", "costlab_test_nets:tiny", "--input", "4x8x8"]):
        out, err = io.StringIO(), io.StringIO()
        assert main(argv, stdout=out, stderr=err) == 2
        assert out.getvalue() == "" and err.getvalue().startswith("costlab: error: ")
        assert err.getvalue().count("\n") == 1


def test_torchvision_resnet50_matches_the_published_figures() -> None:
    pytest.importorskip("torchvision")
    out = io.StringIO()
    assert main(["analyze", "torchvision.models:resnet50", "--input", "3x224x224", "--format", "json"],
                stdout=out) == 0
    import json

    target = json.loads(out.getvalue())["targets"][0]
    assert (target["macs"], target["params"]) == (4_089_184_256, 25_557_032)  # reference.md
    assert "unsupported" not in target
