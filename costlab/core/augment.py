"""Cost per image of the data augmentations the course notes name, beside a forward pass.

- **mirroring** (horizontal flip): no arithmetic; reads and writes the image once.
- **random cropping** of a c×c window from an H×W image: no arithmetic; reads and writes the crop.
- **PCA colour shift** (AlexNet, Krizhevsky et al. 2012): per image draw α_i ~ N(0, σ²) for the
  three principal components of the RGB pixel covariance and add s = P·(α ⊙ λ) to every pixel.
  Per image: 3·3 MACs for P·(α ⊙ λ) and 3 multiplies for α ⊙ λ (ops), then one add per element
  (C·H·W ops). The eigen-decomposition of the covariance is done once per data set, not per image.

All counts are per image at a given element size; nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import CostlabError


@dataclass(frozen=True)
class AugmentationCost:
    """What one augmentation costs on one image."""

    name: str
    macs: int
    ops: int
    bytes: int
    formula: str


def mirror_cost(channels: int, height: int, width: int, itemsize: int = 4) -> AugmentationCost:
    """Horizontal flip: 0 MACs, 0 ops; reads and writes C·H·W elements."""
    elements = channels * height * width
    return AugmentationCost("mirroring", 0, 0, 2 * elements * itemsize,
                            f"no arithmetic; bytes: 2 × {channels}·{height}·{width} × {itemsize}")


def crop_cost(channels: int, height: int, width: int, crop: int, itemsize: int = 4) -> AugmentationCost:
    """Random c×c crop: 0 MACs, 0 ops; reads and writes C·c·c elements."""
    if not 0 < crop <= min(height, width):
        raise CostlabError(f"crop {crop} must lie between 1 and the image size {height}×{width}")
    elements = channels * crop * crop
    return AugmentationCost("random cropping", 0, 0, 2 * elements * itemsize,
                            f"no arithmetic; bytes: 2 × {channels}·{crop}·{crop} × {itemsize}")


def pca_colour_cost(channels: int, height: int, width: int, itemsize: int = 4) -> AugmentationCost:
    """PCA colour shift: C·C MACs and C ops per image for the shift, + C·H·W adds."""
    macs = channels * channels
    ops = channels + channels * height * width
    elements = channels * height * width
    return AugmentationCost(
        "PCA colour shift", macs, ops, (2 * elements + channels * channels + channels) * itemsize,
        f"MACs: {channels}·{channels} = {macs}; ops: {channels} + {channels}·{height}·{width} = {ops:,}")


def augmentation_costs(channels: int = 3, height: int = 256, width: int = 256, crop: int = 224,
                       itemsize: int = 4) -> tuple[AugmentationCost, ...]:
    """The three augmentations of the course notes on one C×H×W image (AlexNet's 256 → 224 crop)."""
    return (mirror_cost(channels, height, width, itemsize),
            crop_cost(channels, height, width, crop, itemsize),
            pca_colour_cost(channels, height, width, itemsize))
