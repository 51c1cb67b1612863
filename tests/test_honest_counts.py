"""A count that misses an op that multiplies is a lower bound everywhere it appears (issue 19, item 4)."""

from __future__ import annotations

import io
import json

import pytest

torch = pytest.importorskip("torch")

import costlab  # noqa: E402
from costlab.app.cli import main  # noqa: E402

import costlab_honest_nets as nets  # noqa: E402

BATCH = 8


def _missed_macs() -> int:
    """What the unpriced addbmm multiplies, by its own definition: 3 products of 8×8 by 8×8."""
    return 3 * 8 * 8 * 8


def test_an_unpriced_multiply_makes_the_count_a_lower_bound() -> None:
    a = costlab.analyze(nets.Unpriced(), input=(8,), batch=BATCH)
    assert [u.op for u in a.unsupported] == ["aten.addbmm"] and a.unsupported[0].multiplies
    assert not a.complete
    assert a.macs == BATCH * 8 * 8  # the Linear alone; the true count is that plus _missed_macs()
    from torch.utils.flop_counter import FlopCounterMode

    stacked = torch.rand(3, 8, 8)  # addbmm's products, as bmm (which FlopCounterMode counts; addbmm it misses)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        torch.bmm(stacked, stacked)
    assert counter.get_total_flops() // 2 == _missed_macs()
    entry = a.to_dict()
    assert entry["complete"] is False and entry["unsupported"][0]["multiplies"] is True


def test_ops_that_multiply_nothing_are_free() -> None:
    a = costlab.analyze(nets.Routed(), input=(8,), batch=BATCH)
    assert a.complete and not [u for u in a.unsupported if u.multiplies]


def test_a_comparison_never_states_a_ratio_from_a_lower_bound() -> None:
    c = costlab.compare([nets.Plain(), nets.Unpriced()], input=(8,), batch=BATCH)
    assert c.ratios == (1.0, None)
    assert c.ratio_bounds == (None, ("<=", 1.0))  # the second has at least the first's MACs
    document = c.to_dict()
    assert [t["complete"] for t in document["targets"]] == [True, False] and document["ratios"][1] is None
    assert document["ratio_bounds"][1] == {"bound": "<=", "ratio": 1.0}
    text = c.to_markdown()
    assert "≥ 512" in text and "≥ 1.00× more" in text
    reversed_ = costlab.compare([nets.Unpriced(), nets.Plain()], input=(8,), batch=BATCH)
    assert reversed_.ratios == (None, None) or reversed_.ratios[1] is None
    assert reversed_.ratio_bounds[1] == (">=", 1.0)


def test_the_cli_warns_above_the_table_and_strict_fails() -> None:
    argv = ["compare", "costlab_honest_nets:plain", "costlab_honest_nets:unpriced", "--input", "8",
            "--batch", str(BATCH)]
    out, err = io.StringIO(), io.StringIO()
    assert main(argv + ["--wide"], stdout=out, stderr=err) == 0, err.getvalue()
    text = out.getvalue()
    warning = text.index("warning: costlab_honest_nets:unpriced: not priced: aten.addbmm")
    assert warning < text.index("target")  # above the table
    assert "≥ 512" in text
    out = io.StringIO()
    assert main(argv + ["--format", "json"], stdout=out, stderr=err) == 0
    document = json.loads(out.getvalue())
    assert [t["complete"] for t in document["targets"]] == [True, False]
    assert main(argv + ["--strict"], stdout=io.StringIO(), stderr=io.StringIO()) == 1
    assert main(argv[:2] + argv[3:] + ["--strict"], stdout=io.StringIO(), stderr=io.StringIO()) == 0
