"""The reports' pictures (costlab.app.plots): the numbers each draws, from independent arithmetic, and the
PNGs themselves (skipped without matplotlib, the [plot] extra; CI's `.[test]` does not install it)."""

from __future__ import annotations

import importlib.util
import re
import struct
from pathlib import Path

import pytest

from costlab.app import plots

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports"
needs_matplotlib = pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None,
                                      reason="needs the [plot] extra: matplotlib is not installed")


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_reference_peaks_are_those_the_measured_latency_report_states() -> None:
    text = (REPORTS / "latency-inception.md").read_text(encoding="utf-8")
    stated = re.search(r"Peaks measured on this machine: ([\d.]+) GFLOP/s .*? and ([\d.]+) GB/s", text)
    assert stated, "reports/latency-inception.md no longer states its peaks"
    assert (plots.REFERENCE_PEAKS.gflops, plots.REFERENCE_PEAKS.gbps) == (float(stated[1]), float(stated[2]))


def test_roofline_points_from_explicit_arithmetic() -> None:
    roofline = plots.roofline_of(plots.INCEPTION_TITLE, plots.inception_targets())
    plain = roofline.points[0]
    flops = 2 * (5 * 5 * 192) * (28 * 28 * 32)        # FLOPs = 2 × MACs
    bytes_moved = 4 * (192 * 28 * 28 + 5 * 5 * 192 * 32 + 32 * 28 * 28)  # input, weights, output at float32
    assert (plain.flops, plain.bytes) == (flops, bytes_moved)
    peaks = roofline.peaks
    assert plain.attainable_gflops(peaks) == pytest.approx(min(peaks.gflops, flops / bytes_moved * peaks.gbps))
    reduce = roofline.points[1]  # the 1×1 to 16 channels: under the ridge, bound by bandwidth
    intensity = 2 * 192 * 784 * 16 / (4 * (192 * 784 + 192 * 16 + 16 * 784))
    assert reduce.intensity == pytest.approx(intensity) and intensity < peaks.ridge
    assert reduce.attainable_gflops(peaks) == pytest.approx(intensity * peaks.gbps)
    separable = plots.roofline_of(plots.SEPARABLE_TITLE, plots.separable_targets())
    assert [p.layer.split()[1] for p in separable.points] == ["(conv3x3)", "(dw3x3)", "(conv1x1)"]


def test_break_even_width_from_the_formula() -> None:
    """784·w·(192 + 25·32) MACs against 784·32·25·192: equal at w = 25·32·192 / 992."""
    (width,) = plots.sweep_break_even(plots.bottleneck_sweep())
    assert width == pytest.approx(25 * 32 * 192 / (192 + 25 * 32))
    assert 152 < width < 156


def test_projection_memory_from_explicit_bytes() -> None:
    with_projection, without = plots.projection_memory()
    c, n, t = 24, 56, 6
    expanded, block_input = 4 * c * t * n * n, 4 * c * n * n
    params = {True: c * c * t + 2 * c * t + c * t * 9 + 2 * c * t + c * t * c + 2 * c,   # expand, bn, dw, bn, project, bn
              False: c * c * t + 2 * c * t + c * t * 9 + 2 * c * t}
    for design, projection in ((with_projection, True), (without, False)):
        # the peak, in the depthwise stage: the caller's input, every weight, the expansion's output (the
        # depthwise block's argument, held by its caller until the block returns) and the depthwise
        # conv's and its norm's outputs
        running_stats = 4 * 2 * (c * t + c * t + (c if projection else 0))
        rest = design.peak - (block_input + 4 * params[projection] + 3 * expanded)
        assert running_stats <= rest <= running_stats + 8 * 3, (design.name, rest)  # + num_batches_tracked
        assert design.peak == max(design.live)
    assert (with_projection.handed_on, without.handed_on) == (block_input, expanded)


def test_every_picture_is_shown_by_a_committed_report() -> None:
    markdown = "".join(p.read_text(encoding="utf-8") for p in REPORTS.glob("*.md"))
    for name in plots.PICTURES:
        assert f"]({name})" in markdown, name
    assert not re.search(r"(/work/|/home/|/tmp/|/Users/)", markdown), "a machine path in a report"


@needs_matplotlib
def test_pictures_are_small_pngs() -> None:
    pictures = plots.build_pictures()
    assert set(pictures) == set(plots.PICTURES)
    for name, data in pictures.items():
        width, height = png_size(data)
        assert (width, height) == (750, 450), name   # 7.5 × 4.5 in at 100 dpi
        assert len(data) < 150_000, name
