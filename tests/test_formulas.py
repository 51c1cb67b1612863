"""The formulas against brute-force counting over explicit loops, and their algebraic properties."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from costlab.core.errors import SpecError
from costlab.core.formulas import adaptive_regions, cost_of
from costlab.core.specs import AdaptivePool, Conv, Linear, Pool, conv2d


def brute_force_conv(c_in: int, size: tuple[int, int], c_out: int, kernel: tuple[int, int],
                     stride: int, pad: int, dilation: int, groups: int) -> tuple[tuple[int, int], int]:
    """Slide the window over the zero-padded input and count every multiply, one by one.

    Knows nothing of the output-size formula: a window position is valid while its last
    tap still falls inside the padded input.
    """
    def positions(n: int, k: int) -> list[int]:
        starts, start = [], 0
        while start + dilation * (k - 1) <= n + 2 * pad - 1:
            starts.append(start)
            start += stride
        return starts

    rows, cols = positions(size[0], kernel[0]), positions(size[1], kernel[1])
    in_per_group, out_per_group = c_in // groups, c_out // groups
    multiplies = 0
    for _y, _x in itertools.product(rows, cols):
        for oc in range(c_out):
            g = oc // out_per_group
            for ic in range(g * in_per_group, (g + 1) * in_per_group):
                for _ky, _kx in itertools.product(range(kernel[0]), range(kernel[1])):
                    multiplies += 1
    return (len(rows), len(cols)), multiplies


conv_configs = st.fixed_dictionaries({
    "groups": st.integers(1, 3),
    "in_per_group": st.integers(1, 3),
    "out_per_group": st.integers(1, 3),
    "h": st.integers(1, 9), "w": st.integers(1, 9),
    "kh": st.integers(1, 4), "kw": st.integers(1, 4),
    "stride": st.integers(1, 3), "pad": st.integers(0, 2), "dilation": st.integers(1, 2),
    "batch": st.integers(1, 3),
})


@settings(max_examples=150, deadline=None)
@given(conv_configs)
def test_conv_formula_equals_brute_force(cfg: dict) -> None:
    c_in, c_out = cfg["groups"] * cfg["in_per_group"], cfg["groups"] * cfg["out_per_group"]
    kernel = (cfg["kh"], cfg["kw"])
    span = [cfg["dilation"] * (k - 1) + 1 for k in kernel]
    assume(span[0] <= cfg["h"] + 2 * cfg["pad"] and span[1] <= cfg["w"] + 2 * cfg["pad"])
    spec = conv2d(c_out, kernel, cfg["stride"], cfg["pad"], cfg["dilation"], cfg["groups"])
    cost = cost_of(spec, [(cfg["batch"], c_in, cfg["h"], cfg["w"])])
    out, per_sample = brute_force_conv(c_in, (cfg["h"], cfg["w"]), c_out, kernel, cfg["stride"],
                                       cfg["pad"], cfg["dilation"], cfg["groups"])
    assert cost.output == (cfg["batch"], c_out) + out
    assert cost.macs == cfg["batch"] * per_sample
    assert cost.params == c_out * (c_in // cfg["groups"]) * kernel[0] * kernel[1]


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 9), st.integers(0, 2), st.integers(1, 3), st.integers(1, 2), st.integers(1, 3))
def test_kernel_larger_than_padded_input_is_refused(size: int, pad: int, extra: int, dilation: int,
                                                   stride: int) -> None:
    kernel = -(-(size + 2 * pad) // dilation) + extra  # dilation·(k − 1) ≥ size + 2·pad
    spec = conv2d(2, kernel, stride, pad, dilation)
    with pytest.raises(SpecError, match="larger than the padded input"):
        cost_of(spec, [(1, 2, size, size)])


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 64), st.integers(1, 64), st.sampled_from([1, 3, 5, 7]), st.integers(1, 20))
def test_depthwise_separable_ratio(c_in: int, c_out: int, k: int, size: int) -> None:
    """(depthwise + pointwise) / standard = 1/C_out + 1/k² at stride 1 with same padding."""
    shape = (1, c_in, size, size)
    standard = cost_of(conv2d(c_out, k, padding="same"), [shape]).macs
    depthwise = cost_of(conv2d(c_in, k, padding="same", groups=c_in), [shape])
    pointwise = cost_of(conv2d(c_out, 1), [depthwise.output]).macs
    assert Fraction(depthwise.macs + pointwise, standard) == Fraction(1, c_out) + Fraction(1, k * k)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4), st.integers(1, 3),
       st.integers(3, 12), st.integers(1, 2))
def test_grouped_conv_is_the_sum_of_its_groups(groups: int, in_per: int, out_per: int, k: int,
                                              size: int, stride: int) -> None:
    grouped = cost_of(conv2d(groups * out_per, k, stride, "same" if k % 2 else 0, groups=groups),
                      [(1, groups * in_per, size, size)])
    single = cost_of(conv2d(out_per, k, stride, "same" if k % 2 else 0), [(1, in_per, size, size)])
    assert grouped.macs == groups * single.macs
    assert grouped.params == groups * single.params
    assert grouped.output[2:] == single.output[2:]


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 5), st.integers(1, 4), st.integers(1, 30), st.integers(1, 30), st.booleans())
def test_linear_equals_brute_force(batch: int, rows: int, in_features: int, out_features: int,
                                   bias: bool) -> None:
    cost = cost_of(Linear(out_features, bias), [(batch, rows, in_features)])
    multiplies = sum(1 for _ in itertools.product(range(batch * rows), range(out_features),
                                                  range(in_features)))
    assert cost.macs == multiplies
    assert cost.params == in_features * out_features + (out_features if bias else 0)
    assert cost.ops == (batch * rows * out_features if bias else 0)  # bias adds are ops, not MACs


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["max", "avg"]), st.integers(1, 12), st.integers(1, 4), st.integers(1, 3),
       st.integers(0, 2))
def test_pool_windows_equal_brute_force(mode: str, size: int, k: int, stride: int, pad: int) -> None:
    assume(2 * pad <= k and k <= size + 2 * pad)
    cost = cost_of(Pool(mode, (k, k), (stride, stride), (pad, pad)), [(1, 2, size, size)])  # type: ignore[arg-type]
    starts = [s for s in range(0, size + 2 * pad) if s % stride == 0 and s + k <= size + 2 * pad]
    assert cost.output == (1, 2, len(starts), len(starts))
    per_window = k * k - 1 if mode == "max" else k * k
    assert cost.ops == 2 * len(starts) ** 2 * per_window


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 40), st.integers(1, 12))
def test_adaptive_regions_cover_the_input(size: int, out: int) -> None:
    """Each adaptive window is [⌊i·n/o⌋, ⌈(i+1)·n/o⌉): the windows cover every input index."""
    regions = adaptive_regions(size, out)
    covered = set()
    for i, length in enumerate(regions):
        start = (i * size) // out
        covered.update(range(start, start + length))
        assert length >= 1
    assert covered == set(range(size))


def test_global_average_pool_reads_every_element_once() -> None:
    cost = cost_of(AdaptivePool("avg", (1, 1)), [(2, 512, 7, 7)])
    assert cost.output == (2, 512, 1, 1)
    assert cost.ops == 2 * 512 * 49


def test_transposed_conv_scatters_each_input() -> None:
    spec = Conv(8, (4, 4), (2, 2), (1, 1), transposed=True)
    cost = cost_of(spec, [(1, 3, 5, 5)])
    assert cost.output == (1, 8, 10, 10)  # (5 − 1)·2 − 2 + 3 + 1
    # brute force: every input element times every tap times every output channel
    assert cost.macs == sum(1 for _ in itertools.product(range(3 * 25), range(16), range(8)))
