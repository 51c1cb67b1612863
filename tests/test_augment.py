"""Augmentation costs against explicit loops that do the work and count each arithmetic step."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costlab.core.augment import augmentation_costs, crop_cost, mirror_cost, pca_colour_cost
from costlab.core.errors import CostlabError


def pca_shift_by_hand(image: list[list[list[float]]], eigvecs: list[list[float]],
                      eigvals: list[float], alphas: list[float]) -> tuple[int, int]:
    """Shift every pixel by P·(α ⊙ λ), counting multiply-accumulates and other ops as they happen."""
    macs = ops = 0
    channels = len(image)
    scaled = []
    for a, lam in zip(alphas, eigvals):
        scaled.append(a * lam)
        ops += 1
    shift = [0.0] * channels
    for c in range(channels):
        for j in range(channels):
            shift[c] += eigvecs[c][j] * scaled[j]
            macs += 1
    for c in range(channels):
        for row in image[c]:
            for x in range(len(row)):
                row[x] += shift[c]
                ops += 1
    return macs, ops


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(1, 9), st.integers(1, 9))
def test_pca_colour_shift_counts(channels: int, height: int, width: int) -> None:
    rng = random.Random(0)
    image = [[[rng.random() for _ in range(width)] for _ in range(height)] for _ in range(channels)]
    eig = [[rng.random() for _ in range(channels)] for _ in range(channels)]
    macs, ops = pca_shift_by_hand(image, eig, [1.0] * channels, [0.1] * channels)
    cost = pca_colour_cost(channels, height, width)
    assert (cost.macs, cost.ops) == (macs, ops)


def test_mirror_and_crop_do_no_arithmetic_but_move_bytes() -> None:
    mirror, crop, _ = augmentation_costs(3, 256, 256, 224, itemsize=4)
    assert (mirror.macs, mirror.ops) == (0, 0) and mirror.bytes == 2 * 3 * 256 * 256 * 4
    assert (crop.macs, crop.ops) == (0, 0) and crop.bytes == 2 * 3 * 224 * 224 * 4
    assert mirror_cost(1, 2, 2, itemsize=2).bytes == 16


def test_crop_larger_than_the_image_is_refused() -> None:
    with pytest.raises(CostlabError, match="crop 300"):
        crop_cost(3, 256, 256, 300)
