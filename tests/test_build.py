"""The builder: every preset becomes a real nn.Module with the analytic params and shapes, layer by layer."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from costlab.core.expressions import analyze_expression  # noqa: E402
from costlab.torch_bridge.build import build_module  # noqa: E402
from costlab.core.zoo import PRESETS, build_preset  # noqa: E402


@pytest.mark.parametrize("name", list(PRESETS))
def test_built_preset_matches_the_analysis(name: str) -> None:
    analysis = build_preset(name)
    module = build_module(analysis, device="meta")
    assert sum(p.numel() for p in module.parameters()) == analysis.params
    assert sum(b.numel() for b in module.buffers()) == analysis.buffers
    seen: dict[str, tuple[int, ...]] = {}
    handles = [m.register_forward_hook(lambda mod, args, out, path=path: seen.__setitem__(path, tuple(out.shape)))
               for path, m in module.named_modules() if path and not list(m.children())]
    out = module(torch.empty((1,) + analysis.input, device="meta"))
    for h in handles:
        h.remove()
    assert tuple(out.shape[1:]) == analysis.output
    for layer in analysis.layers:
        if layer.name in seen:
            assert seen[layer.name] == layer.output, layer.name
    assert len(seen) == sum(1 for layer in analysis.layers if layer.op not in ("add", "concat"))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(3, 12), st.integers(1, 5),
       st.integers(1, 3), st.integers(0, 2), st.integers(1, 2), st.booleans(), st.sampled_from(["max", "avg"]),
       st.integers(1, 3), st.booleans())
def test_analytic_shapes_equal_the_built_module(groups, in_per, out_per, size, k, stride, pad, dilation,
                                                bias, pool, pool_k, ceil) -> None:
    assume(dilation * (k - 1) + 1 <= size + 2 * pad)
    expression = (f"conv{k}x{k}:{groups * out_per},s{stride},p{pad},d{dilation},g{groups}"
                  f"{',bias' if bias else ''}")
    analysis = analyze_expression(expression, (groups * in_per, size, size))
    c, h, w = analysis.output
    assume(pool_k <= h)
    pooled = analyze_expression(f"{expression} > {pool}pool{pool_k}x{pool_k}{',ceil' if ceil else ''} "
                                f"> fc:7", (groups * in_per, size, size))
    for a in (analysis, pooled):
        module = build_module(a)
        out = module(torch.randn((2,) + a.input))
        assert tuple(out.shape[1:]) == a.output
        assert sum(p.numel() for p in module.parameters()) == a.params
