"""Modules parametrized with torch.nn.utils.parametrize (issue 18): the parametrization rebuilds the
weight on every access of it. The fx path prices each parametrization alone at the aten level (its
layers named <module>.parametrizations.<tensor>.<op>), held against PyTorch's FlopCounterMode ÷ 2
on the real module; the meta and CPU runs, which see the leaf as one call, list it as unsupported
(a lower bound), held against the count of a twin without the parametrizations."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn.utils import parametrize  # noqa: E402
from torch.nn.utils.parametrizations import orthogonal, weight_norm  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from costlab.torch_bridge.trace import trace_module  # noqa: E402


class Symmetric(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.triu() + x.triu(1).transpose(-1, -2)


class Gram(nn.Module):
    """A parametrization that multiplies: W = X·Xᵀ·X."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ x.t() @ x


def _net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10),
                        nn.Conv1d(1, 4, 3))
    orthogonal(net[0])
    parametrize.register_parametrization(net[2], "weight", Symmetric())
    parametrize.register_parametrization(net[4], "weight", Gram())
    weight_norm(net[5])
    return net


def _macs(module: nn.Module, x: torch.Tensor) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(x)
    return counter.get_total_flops() // 2


class Reshaped(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net[5](self.net[:5](x).unsqueeze(1))


def test_the_fx_path_prices_the_parametrizations_as_the_real_module_runs_them() -> None:
    model = _net()[:5]
    x = torch.randn(2, 64)
    before = {name: t.clone() for name, t in model.state_dict().items()}
    trace = trace_module(model, inputs=x)
    assert trace.method == "fx"
    assert trace.analysis.macs == _macs(model, x)  # orthogonal's and X·Xᵀ·X's products included
    assert sum(layer.macs for layer in trace.analysis.layers if ".parametrizations." in layer.name) > 0
    assert trace.analysis.params == sum(p.numel() for p in model.parameters())
    # the matrix exponential (orthogonal's default map) has no rule here, nor a formula in the counter
    assert {(u.path, u.op) for u in trace.analysis.unsupported} == {("0", "aten.linalg_matrix_exp")}
    assert all(torch.equal(before[name], t) for name, t in model.state_dict().items())  # left as it was


def test_parametrizations_are_listed_and_the_rest_equals_the_real_count() -> None:
    model = Reshaped(_net())
    x = torch.randn(2, 64)
    before = {name: t.clone() for name, t in model.state_dict().items()}
    trace = trace_module(model, inputs=x)
    listed = {u.path: u.op for u in trace.analysis.unsupported}
    assert trace.method != "fx"
    assert listed == {"net.0.parametrizations.weight": "_Orthogonal",
                      "net.2.parametrizations.weight": "Symmetric",
                      "net.4.parametrizations.weight": "Gram",
                      "net.5.parametrizations.weight": "_WeightNorm"}
    assert all(torch.equal(before[name], t) for name, t in model.state_dict().items())  # left as it was
    assert parametrize.is_parametrized(model.net[0])
    # what costlab prices is exactly the real count without the parametrizations' arithmetic ...
    plain = Reshaped(_net())  # a twin (a deep copy would share the parametrized classes)
    for index in (0, 2, 4, 5):
        parametrize.remove_parametrizations(plain.net[index], "weight")
    assert trace.analysis.macs == _macs(plain, x)
    # ... which the real module exceeds (orthogonal and X·Xᵀ·X multiply): hence listed, a lower bound
    assert _macs(model, x) > trace.analysis.macs
