"""Small nn.Modules for the trace and cross-check tests, importable as ``costlab_test_nets:<factory>``."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class Tiny(nn.Module):
    """conv → BN → ReLU → global pool → flatten → linear, with a residual add and a concat."""

    def __init__(self, width: int = 8, classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        self.branch = nn.Conv2d(width, width, 1)
        self.fc = nn.Linear(2 * width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn(self.conv(x)))
        y = torch.cat([y, self.branch(y) + y], dim=1)
        y = F.adaptive_avg_pool2d(y, 1)
        return self.fc(torch.flatten(y, 1))


def tiny(width: int = 8, classes: int = 10) -> nn.Module:
    return Tiny(width, classes)


class ShapeDependent(nn.Module):
    """Control flow on the input's size: torch.fx cannot trace it, a meta-device run can."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.conv(x))
        while y.shape[-1] > 8:  # halve until 8 wide: the number of pools depends on the input size
            y = self.pool(y)
        return self.head(y) * 0.5


def shape_dependent() -> nn.Module:
    return ShapeDependent()


class ValueDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if y.sum() > 0:  # on tensor values: cannot run on the meta device
            y = y * 2
        return y


def value_dependent() -> nn.Module:
    return ValueDependent()


class Einsum(nn.Module):
    """An op with no function rule: priced through its aten decomposition (a batched matmul)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        return torch.einsum("bij,bkj->bik", y, y)


def einsum_net() -> nn.Module:
    return Einsum()


class GridSample(nn.Module):
    """An op fvcore counts and costlab has no rule for at any level: an unexplained difference."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        grid = torch.zeros(x.shape[0], 4, 4, 2, device=x.device)
        return F.grid_sample(y, grid, align_corners=False)


def grid_net() -> nn.Module:
    return GridSample()


def raises(**kwargs: object) -> nn.Module:
    raise RuntimeError("this factory always fails\nsecond line that must not show")


def not_a_module() -> object:
    return [1, 2, 3]


NOT_CALLABLE = 42


class LoopedList(nn.Module):
    """A ModuleList looped over in forward (never called itself), as FPNs and ASPP heads do."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.blocks = nn.ModuleList([nn.Conv2d(8, 8, 3, padding=1) for _ in range(3)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        return torch.cat([block(x) for block in self.blocks], 1)


def looped_list() -> nn.Module:
    return LoopedList()


class Chunked(nn.Module):
    """A projection split in three and reshaped into heads: its layers cannot be rebuilt one by one
    from the analysis (a chunk is a free op), so latency must time this module itself."""

    def __init__(self) -> None:
        super().__init__()
        self.q = nn.Linear(32, 96)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b, _ = self.q(x).chunk(3, -1)
        return a.reshape(x.shape[0], -1, 4, 8) + b.reshape(x.shape[0], -1, 4, 8)


def chunked() -> nn.Module:
    return Chunked()


class Selected(nn.Module):
    """The rows whose first feature is positive, through a linear layer: how many depends on the data
    (nonzero), so the fx walk cannot know the linear's input shape."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = torch.nonzero(x[:, 0] > 0).flatten()
        return self.fc(x[rows])


def selected() -> nn.Module:
    return Selected()
