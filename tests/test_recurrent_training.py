"""The LSTM/GRU/RNN training step (costlab.analyses.training.recurrent_backward_macs) against autograd
on the unrolled cells, counted by PyTorch's FlopCounterMode ÷ 2 (issue 18).

FlopCounterMode has no formula for the fused recurrent kernels (PyTorch's CPU LSTM runs oneDNN), so
the reference unrolls each stack here, step by step, with the real module's own weights and torch's
matmuls: per layer and direction, gates = x·W_ihᵀ + h·W_hhᵀ (+ biases), the cell's update, and an
LSTM's projection h = (o·tanh c)·W_hrᵀ. Nothing of costlab's rule enters the reference.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from costlab.analyses.training import parse_freeze, train_step, with_flags  # noqa: E402
from costlab.torch_bridge.trace import analyze_module  # noqa: E402


def _cell(mode: str, x: torch.Tensor, state: tuple, w_ih, w_hh, b_ih, b_hh, w_hr) -> tuple:
    """One step of one direction, as torch.nn documents the cell."""
    h, c = state
    gi = x @ w_ih.t() + (b_ih if b_ih is not None else 0)
    gh = h @ w_hh.t() + (b_hh if b_hh is not None else 0)
    if mode == "lstm":
        i, f, g, o = (gi + gh).chunk(4, -1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        if w_hr is not None:
            h = h @ w_hr.t()
        return h, (h, c)
    if mode == "gru":
        ir, iz, in_ = gi.chunk(3, -1)
        hr, hz, hn = gh.chunk(3, -1)
        r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
        n = torch.tanh(in_ + r * hn)
        h = (1 - z) * n + z * h
        return h, (h, c)
    act = torch.tanh if mode == "rnn_tanh" else torch.relu
    h = act(gi + gh)
    return h, (h, c)


def unrolled(module: nn.RNNBase, x: torch.Tensor) -> torch.Tensor:
    """The module's forward (time-major input (T, N, I)), one step at a time from h₀ = c₀ = zeros
    (multiplied as the real kernels do; a zero state needs no gradient)."""
    mode = module.mode.lower()
    mode = {"rnn_tanh": "rnn_tanh", "rnn_relu": "rnn_relu"}.get(mode, mode)
    directions = 2 if module.bidirectional else 1
    for layer in range(module.num_layers):
        outputs = []
        for direction in range(directions):
            suffix = f"_l{layer}" + ("_reverse" if direction else "")
            weights = [getattr(module, f"{name}{suffix}", None)
                       for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")]
            steps = range(x.shape[0] - 1, -1, -1) if direction else range(x.shape[0])
            hidden = module.proj_size or module.hidden_size
            state: tuple = (x.new_zeros(x.shape[1], hidden), x.new_zeros(x.shape[1], module.hidden_size))
            out = [None] * x.shape[0]
            for t in steps:
                out[t], state = _cell(mode, x[t], state, *weights)
            outputs.append(torch.stack(out))
        x = torch.cat(outputs, -1)
    return x


class Fed(nn.Module):
    """A linear layer feeding a recurrent stack (so that its input can need a gradient)."""

    def __init__(self, rnn: nn.RNNBase, features: int) -> None:
        super().__init__()
        self.proj = nn.Linear(features, rnn.input_size)
        self.rnn = rnn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(self.proj(x))[0]


def autograd_macs(model: Fed, x: torch.Tensor, frozen: set[str]) -> int:
    """FlopCounterMode ÷ 2 over forward + backward of the unrolled model, with ``frozen`` parameters frozen."""
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name.split(".")[0] not in frozen)
    counter = FlopCounterMode(display=False)
    with counter:
        out = unrolled(model.rnn, model.proj(x))
        if out.requires_grad:
            out.sum().backward()
    assert counter.get_total_flops() % 2 == 0
    return counter.get_total_flops() // 2


CASES = [
    ("lstm", {}), ("gru", {}), ("rnn_tanh", {}), ("rnn_relu", {"nonlinearity": "relu"}),
    ("lstm", {"num_layers": 2, "bidirectional": True}), ("gru", {"num_layers": 3, "bias": False}),
    ("lstm", {"proj_size": 5, "num_layers": 2}), ("rnn_tanh", {"bidirectional": True}),
]
MODULES = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn_tanh": nn.RNN, "rnn_relu": nn.RNN}


@pytest.mark.parametrize("mode,kwargs", CASES)
@pytest.mark.parametrize("frozen", [set(), {"proj"}, {"rnn"}, {"proj", "rnn"}])
def test_recurrent_train_step_equals_autograd_on_the_unrolled_cells(mode, kwargs, frozen) -> None:
    torch.manual_seed(0)
    steps, batch, features = 7, 3, 6
    model = Fed(MODULES[mode](8, 10, **kwargs), features)
    x = torch.randn(steps, batch, features)
    reference = autograd_macs(model, x, frozen)
    analysis = analyze_module(model, inputs=x)
    params = {layer.name: layer.params for layer in analysis.layers}
    freeze = with_flags(parse_freeze("requires_grad"),
                        {name: 0 if name in frozen else count for name, count in params.items()})
    assert train_step(analysis, freeze).train_step_macs == reference


def test_the_issue_lstm_over_16_steps() -> None:
    """Issue 18: nn.LSTM(32, 64) over 16 steps, nothing frozen, was priced at its forward + weight
    gradient only (393,216 MACs forward); autograd on the unrolled cell does more."""
    torch.manual_seed(0)
    lstm = nn.LSTM(32, 64)
    x = torch.randn(16, 1, 32)
    counter = FlopCounterMode(display=False)
    with counter:
        unrolled(lstm, x).sum().backward()
    cost = train_step(analyze_module(lstm, inputs=x))
    assert cost.train_step_macs == counter.get_total_flops() // 2
    assert cost.layers[0].forward_macs < cost.train_step_macs - cost.layers[0].weight_grad_macs
