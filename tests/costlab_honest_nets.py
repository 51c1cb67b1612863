"""Modules for tests/test_honest_counts.py: one whose count misses an op that multiplies."""

import torch
from torch import nn


class Plain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class Unpriced(Plain):
    """fc, then torch.addbmm (3 products of 8×8 by 8×8, summed; no cost rule): 3·8·8·8 MACs missed."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        stacked = y.unsqueeze(0).expand(3, 8, 8).contiguous()
        return torch.addbmm(y, stacked, stacked)


class Routed(Plain):
    """fc, then a choice among its outputs (topk, sort): ops that multiply nothing."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        values, _ = torch.topk(y, 4, dim=-1)
        return torch.sort(values, dim=-1).values


def plain() -> nn.Module:
    return Plain()


def unpriced() -> nn.Module:
    return Unpriced()
