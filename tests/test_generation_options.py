"""--generate and --head apply to hf: targets only: refused in one line for any other (issue 19).
The counts themselves are held against transformers' generate in tests/test_generation_zoo.py."""

from __future__ import annotations

import io

import pytest

import costlab
from costlab.app.cli import main


@pytest.mark.parametrize("argv", [
    ["analyze", "resnet18", "--generate", "4"],
    ["compare", "conv3x3:8", "--input", "3x8x8", "--head", "none"],
    ["analyze", "conv3x3:8", "--input", "3x8x8", "--generate", "0"],
    ["analyze", "conv3x3:8", "--input", "3x8x8", "--head", "no-such-head"],
])
def test_options_of_hf_targets_are_refused_elsewhere(argv: list[str]) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(argv, stdout=out, stderr=err) == 2
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("costlab: error:"), lines
    assert ("--generate" in lines[0]) == ("--generate" in argv) and ("--head" in lines[0]) == ("--head" in argv)
    assert out.getvalue() == ""


def test_the_api_refuses_them_too() -> None:
    with pytest.raises(costlab.CostlabError, match="--generate applies to hf: models"):
        costlab.analyze("conv3x3:8", input=(3, 8, 8), generate=4)
    with pytest.raises(costlab.CostlabError, match="--head applies to hf: models"):
        costlab.analyze("resnet18", head="causal-lm")
