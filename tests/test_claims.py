"""`costlab claims`: every claim of the source text computed, judged by its written rule, and reported.

The expected values here are derived independently of costlab: explicit loops over the
small examples, the closed forms of the papers' tables restated below, and the reference
figures (../shared/reference.md), whose claims table is parsed when the file is found.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from costlab.app.claims import (APPROXIMATELY, CLAIMS, FAILS, HOLDS, MEMORY_CLAIMS, Claim, Computed, Computation,
                            Figure, check, check_claims, judge, render_claims)
from costlab.app.cli import main
from conftest import find_reference
from costlab.core.errors import CostlabError

ROOT = Path(__file__).resolve().parent.parent

# reference.md, "The source text's numeric claims": the ids, in order.
CLAIM_IDS = ["lenet5-params", "alexnet-params", "vgg16-params", "classic-200m", "onebyone-shape",
             "inception-stack", "inception-5x5", "bottleneck-reduce", "bottleneck-5x5", "bottleneck-total",
             "dsc-standard", "dsc-depthwise", "dsc-pointwise", "dsc-total", "dsc-tenfold",
             "mobilenet-v1-layers", "mobilenet-v2-blocks", "mobilenet-v2-example"]
# the course notes' memory claims (issue 14), after them
MEMORY_CLAIM_IDS = ["mobilenet-ram", "mobilenet-v2-projection"]


@pytest.fixture(scope="module")
def results() -> dict:
    return {r.id: r for r in check_claims()}


def figure(results: dict, claim_id: str, quantity: str):
    (found,) = [c for c in results[claim_id].checks if c.figure.quantity == quantity]
    return found


def test_every_claim_of_reference_md_is_checked() -> None:
    assert [c.id for c in CLAIMS] == CLAIM_IDS
    path = find_reference()
    if path is None:
        pytest.skip("shared/reference.md is not beside this checkout")
    section = path.read_text(encoding="utf-8").split("## The source text's numeric claims", 1)[1]
    section = section.split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] not in ("id", "---"):
            rows.append(tuple(cells))
    assert rows == [(c.id, c.text) for c in CLAIMS]


# --- the rule each written figure implies ------------------------------------------------------

def test_tolerance_is_half_a_unit_of_the_last_significant_digit() -> None:
    assert Figure("p", "about 60,000").tolerance == 5_000
    assert Figure("p", "about 138 million").tolerance == 500_000
    assert Figure("p", "about 12.4 million").tolerance == 50_000
    assert Figure("p", "about 1,000 times").tolerance == 500
    share = Figure("s", "about 20 %")
    assert (share.value, share.tolerance, share.unit) == (Fraction(1, 5), Fraction(1, 20), "%")
    assert (Figure("m", "2,196").rule, Figure("m", "2,196").tolerance) == ("exact", 0)
    assert Figure("p", "around 200 million or more").rule == "at least"
    assert (Figure("v", "n×n×18").unit, Figure("v", "n×n×18").value) == ("volume", "n×n×18")
    with pytest.raises(CostlabError):
        Figure("x", "roughly a lot")


@pytest.mark.parametrize("stated, computed, verdict", [
    ("about 60,000", 60_000, HOLDS), ("about 60,000", 65_000, APPROXIMATELY), ("about 60,000", 65_001, FAILS),
    ("about 60,000", 54_999, FAILS), ("2,196", 2_196, HOLDS), ("2,196", 2_160, FAILS),
    ("around 200 million or more", 250_000_000, HOLDS), ("around 200 million or more", 150_000_000, APPROXIMATELY),
    ("around 200 million or more", 149_999_999, FAILS), ("about 10 %", Fraction(1, 9), APPROXIMATELY),
    ("28×28×32", "28×28×32", HOLDS), ("28×28×32", "28×28×192", FAILS),
])
def test_judge(stated: str, computed, verdict: str) -> None:
    value = computed if isinstance(computed, str) else Fraction(computed)
    assert judge(Figure("q", stated), value) == verdict


def test_computed_values_do_not_come_from_the_claim_data() -> None:
    """The same computation against a different stated figure: the computed value stays, the verdict moves."""
    source = next(c for c in CLAIMS if c.id == "dsc-standard")
    corrected = Claim("corrected", source.text, tuple(Figure(f.quantity, "2,160" if f.quantity == "multiplies"
                                                             else f.stated) for f in source.figures),
                      source.compute)
    before, after = check(source), check(corrected)
    assert before.computed == after.computed
    assert (before.verdict, after.verdict) == (FAILS, HOLDS)


def test_a_missing_computation_is_an_error() -> None:
    claim = Claim("x", "x", (Figure("a", "1"),), lambda: Computation({"b": Computed(Fraction(1), "")}))
    with pytest.raises(KeyError, match="nothing computed for a"):
        check(claim)


# --- the claims, against independent derivations -------------------------------------------------

def brute_force_conv_multiplies(c_in: int, size: int, filters: int, kernel: int, groups: int = 1) -> int:
    """Count the multiplies of a valid, stride-1 convolution one by one."""
    out = size - kernel + 1
    count = 0
    for f in range(filters):
        group = f * groups // filters
        for _y in range(out):
            for _x in range(out):
                for c in range(c_in):
                    if c * groups // c_in == group:
                        count += kernel * kernel
    return count


def test_dsc_example_arithmetic(results: dict) -> None:
    standard = brute_force_conv_multiplies(3, 6, 5, 3)
    depthwise = brute_force_conv_multiplies(3, 6, 3, 3, groups=3)
    pointwise = brute_force_conv_multiplies(3, 4, 5, 1)
    assert (standard, depthwise, pointwise) == (3 * 3 * 3 * 16 * 5, 9 * 16 * 3, 3 * 16 * 5)
    c = figure(results, "dsc-standard", "multiplies")
    assert (c.computed.value, c.verdict) == (standard, FAILS)
    assert results["dsc-standard"].verdict == FAILS
    assert f"{standard:,}" in results["dsc-standard"].note and "2,196" in results["dsc-standard"].note
    assert c.relative_error == pytest.approx(abs(standard - 2196) / 2196)
    assert figure(results, "dsc-standard", "parameters per filter").computed.value == 27
    assert figure(results, "dsc-depthwise", "multiplies").computed.value == depthwise
    assert figure(results, "dsc-depthwise", "share of the standard cost").computed.value == Fraction(depthwise, standard)
    assert results["dsc-depthwise"].verdict == HOLDS  # 432 / 2,160 is exactly 20 %
    assert figure(results, "dsc-pointwise", "multiplies").computed.value == pointwise
    assert results["dsc-pointwise"].verdict == APPROXIMATELY  # 11.1 %, "about 10 %"
    total = results["dsc-total"]
    assert total.computed == [depthwise + pointwise, standard] and total.verdict == FAILS


def test_inception_and_bottleneck_arithmetic(results: dict) -> None:
    assert results["inception-5x5"].computed == [5 * 5 * 192, 28 * 28 * 32, 5 * 5 * 192 * 28 * 28 * 32,
                                                 5 * 5 * 192 * 28 * 28 * 32]
    assert results["bottleneck-reduce"].computed == ["28×28×16", 192, 192 * 28 * 28 * 16]
    assert results["bottleneck-5x5"].computed == ["28×28×32", 5 * 5 * 16, 5 * 5 * 16 * 28 * 28 * 32]
    assert results["bottleneck-total"].computed == [192 * 28 * 28 * 16 + 5 * 5 * 16 * 28 * 28 * 32,
                                                    5 * 5 * 192 * 28 * 28 * 32]
    assert results["bottleneck-total"].verdict == APPROXIMATELY
    assert results["onebyone-shape"].verdict == HOLDS
    stack = results["inception-stack"]
    assert figure(results, "inception-stack", "max-pool branch").computed.value == "28×28×192"
    assert figure(results, "inception-stack", "stacked output").verdict == HOLDS
    assert stack.verdict == FAILS and f"28×28×{64 + 128 + 32 + 192}" in stack.note


def test_parameter_claims(results: dict) -> None:
    # reference.md: LeNet-5 61,706; AlexNet 61,100,840; VGG-16 138,357,544
    lenet = figure(results, "lenet5-params", "parameters")
    assert (lenet.computed.value, lenet.verdict) == (61_706, APPROXIMATELY)
    assert lenet.relative_error == pytest.approx(1_706 / 60_000)
    assert results["lenet5-params"].computed[1:] == ["5×5×16", 120, 84, 10]
    assert results["alexnet-params"].computed == [61_100_840, pytest.approx(61_100_840 / 61_706)]
    assert results["alexnet-params"].verdict == APPROXIMATELY
    assert results["vgg16-params"].computed == [138_357_544]
    classic = results["classic-200m"]
    assert classic.verdict == FAILS and 138_357_544 <= classic.computed[0] < 150_000_000


# MobileNet v1's Table 1, restated: (M, N, output side at 224) of the 13 depthwise-separable layers.
MOBILENET_V1_TABLE = ([(32, 64, 112), (64, 128, 56), (128, 128, 56), (128, 256, 28), (256, 256, 28),
                       (256, 512, 14)] + [(512, 512, 14)] * 5 + [(512, 1024, 7), (1024, 1024, 7)])


def test_tenfold_is_mobilenet_v1s_saving(results: dict) -> None:
    standard = sum(9 * m * n * d * d for m, n, d in MOBILENET_V1_TABLE)
    separable = sum(9 * m * d * d + m * n * d * d for m, n, d in MOBILENET_V1_TABLE)
    (computed,) = results["dsc-tenfold"].computed
    assert computed == pytest.approx(standard / separable, rel=1e-12)
    assert results["dsc-tenfold"].verdict == APPROXIMATELY  # 8.7×: within "around 10" (±5) but below 9
    assert "below k² = 9" in results["dsc-tenfold"].note


def test_mobilenet_structure_claims(results: dict) -> None:
    assert results["mobilenet-v1-layers"].computed == [len(MOBILENET_V1_TABLE)]
    assert results["mobilenet-v2-blocks"].computed == [1 + 2 + 3 + 4 + 3 + 3 + 1]
    assert "16 of them have all three" in results["mobilenet-v2-blocks"].note
    example = results["mobilenet-v2-example"]
    assert example.computed == ["n×n×18", "n×n×18", "n×n×3"] and example.verdict == HOLDS
    assert f"{3 * 18 + 9 * 18 + 18 * 3}·n² MACs" in example.note


# --- the command -----------------------------------------------------------------------------------

def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_json_is_a_list_of_claim_objects() -> None:
    code, out, err = run("claims", "--format", "json")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert [item["id"] for item in data] == CLAIM_IDS + MEMORY_CLAIM_IDS
    for item in data:
        assert {"id", "claim", "claimed", "computed", "verdict", "relative_error", "note", "figures"} <= set(item)
        assert item["verdict"] in (HOLDS, APPROXIMATELY, FAILS)
        assert len(item["claimed"]) == len(item["computed"]) == len(item["figures"])
    dsc = next(item for item in data if item["id"] == "dsc-standard")
    assert dsc["claimed"][-1] == 2196 and dsc["computed"][-1] == 2160 and dsc["verdict"] == FAILS


def test_table_csv_and_output(tmp_path: Path) -> None:
    code, out, _ = run("claims")
    assert code == 0 and "does not hold" in out and "dsc-standard" in out
    _, out, _ = run("claims", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["id"] for r in rows} == set(CLAIM_IDS + MEMORY_CLAIM_IDS)
    assert sum(len(c.figures) for c in CLAIMS + MEMORY_CLAIMS) == len(rows)
    target = tmp_path / "claims.md"
    code, out, _ = run("claims", "--format", "md", "--output", str(target))
    assert (code, out) == (0, "") and os.listdir(tmp_path) == ["claims.md"]
    assert target.read_text(encoding="utf-8") == render_claims(check_claims(), "md")
    code, _, err = run("claims", "--format", "xml")
    assert code == 2 and err.startswith("costlab: error: ") and err.count("\n") == 1
    with pytest.raises(CostlabError):
        render_claims(check_claims(), "xml")


def test_claims_import_no_torch() -> None:
    script = ("import sys, io; from costlab.app.cli import main; "
              "assert main(['claims', '--format', 'json'], stdout=io.StringIO()) == 0; "
              "assert 'torch' not in sys.modules and 'pandas' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr


def test_memory_claims_against_the_chain_rule(results: dict) -> None:
    """MobileNet v1 is a chain of blocks: its inference peak is weights + buffers + input + the most
    activations alive at one layer (float32), computed here by an explicit loop: at a layer, its input
    and its output are alive, and so is the argument of every block around it (the block's caller
    holds it until the block returns; issue 21: what MemTracker measures on the real forward)."""
    import math

    from costlab.core.zoo import build_preset

    a = build_preset("mobilenet-v1")
    size = {layer.name: math.prod(layer.output) * 4 for layer in a.layers}
    argument: dict[str, str] = {}  # each block's argument: the input of its first layer
    for layer in a.layers:
        parts = layer.name.split(".")
        for depth in range(1, len(parts)):
            argument.setdefault(".".join(parts[:depth]), layer.inputs[0])
    most = 0
    for layer in a.layers:
        parts = layer.name.split(".")
        alive = {argument[".".join(parts[:depth])] for depth in range(1, len(parts))}
        alive |= set(layer.inputs) | {layer.name}
        most = max(most, sum(size[name] for name in alive if name in size))  # the input is counted apart
    peak = (a.params + a.buffers + math.prod(a.input)) * 4 + most
    found = figure(results, "mobilenet-ram", "mobilenet-v1 inference peak, GB")
    assert found.computed.value == Fraction(peak, 10**9) and found.verdict == HOLDS
    assert judge(Figure("x", "below 10"), Fraction(10)) == FAILS
    assert judge(Figure("x", "below 100 %"), Fraction(99, 100)) == HOLDS
    assert results["mobilenet-v2-projection"].verdict == HOLDS
