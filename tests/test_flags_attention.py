"""`--freeze requires_grad` on modules with nn.MultiheadAttention, whose q/k/v projections share packed
tensors (in_proj_weight, in_proj_bias): trainable counts equal the module's own requires_grad flags."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import costlab  # noqa: E402
from costlab.torch_bridge.flags import trainable_by_layer  # noqa: E402


class Attending(nn.Module):
    def __init__(self, kdim: int | None = None) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True, kdim=kdim, vdim=kdim)
        self.fc = nn.Linear(16, 4)

    def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        return self.fc(self.attn(q, kv, kv)[0])


@pytest.mark.parametrize("kdim", [None, 8])
@pytest.mark.parametrize("frozen", [(), ("attn.out_proj.weight",), ("attn.in_proj_weight", "attn.q_proj_weight"),
                                    ("attn.in_proj_bias", "fc.bias")])
def test_trainable_equals_the_flags(kdim: int | None, frozen: tuple[str, ...]) -> None:
    module = Attending(kdim)
    for name, parameter in module.named_parameters():
        if name in frozen:
            parameter.requires_grad_(False)
    before = {name: p.requires_grad for name, p in module.named_parameters()}
    inputs = (torch.zeros(1, 5, 16), torch.zeros(1, 7, kdim or 16))
    analysis = costlab.analyze(module, inputs=inputs)
    trainable = trainable_by_layer(analysis, module)
    assert sum(trainable.values()) == sum(p.numel() for p in module.parameters() if p.requires_grad)
    assert sum(p.numel() for p in module.parameters()) == analysis.params
    assert {name: p.requires_grad for name, p in module.named_parameters()} == before  # left as it was
