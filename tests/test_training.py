"""Training cost under --freeze: parsing, what gets frozen, the step's MACs, JSON and tables.

The check against autograd on real modules is in test_training_autograd.py.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costlab import analyze
from costlab.app.cli import main
from costlab.core.expressions import analyze_expression
from costlab.analyses.training import (FreezeError, frozen_layers, parametrised, parse_freeze, train_step,
                              with_training)
from costlab.core.zoo import build_preset


# --- the analytic side (no torch) ---------------------------------------------------------

def test_parse_freeze() -> None:
    assert parse_freeze("40").count == 40
    assert parse_freeze(7).count == 7
    assert parse_freeze("0.9").fraction == parse_freeze(0.9).fraction == Fraction(9, 10)
    assert parse_freeze("1.0").fraction == 1
    assert parse_freeze("fc").name == "fc"
    assert parse_freeze(" layer4.1 ").name == "layer4.1"
    for bad in ("1.5", "-3", "", "fc.", "a b", "3x", True, None):
        with pytest.raises(FreezeError):
            parse_freeze(bad)  # type: ignore[arg-type]


def test_counted_layers_are_those_with_parameters_in_execution_order() -> None:
    resnet = build_preset("resnet18", (3, 64, 64))
    counted = parametrised(resnet)
    convs = [layer for layer in resnet.layers if layer.op == "conv"]
    norms = [layer for layer in resnet.layers if layer.op == "norm"]
    assert len(counted) == len(convs) + len(norms) + 1  # + fc
    assert [layer.name for layer in counted] == [layer.name for layer in resnet.layers if layer.params]
    assert frozen_layers(resnet, parse_freeze("3")) == ("conv1", "bn1", "layer1.0.conv1")
    # a fraction freezes ⌊F·P⌋ of the P counted layers, computed exactly (0.29·100 is 29, not 28)
    assert len(frozen_layers(resnet, parse_freeze("0.9"))) == math.floor(9 * len(counted) / 10)
    assert frozen_layers(resnet, parse_freeze("0")) == ()
    assert len(frozen_layers(resnet, parse_freeze("1.0"))) == len(counted)


def test_a_name_freezes_everything_before_that_layer_or_block() -> None:
    resnet = build_preset("resnet18", (3, 64, 64))
    names = [layer.name for layer in parametrised(resnet)]
    assert frozen_layers(resnet, parse_freeze("fc")) == tuple(names[:-1])
    by_block = frozen_layers(resnet, parse_freeze("layer4"))
    assert by_block == tuple(n for n in names if not n.startswith(("layer4.", "fc")))
    # a parameter-free boundary works too: everything before the pool is frozen
    assert frozen_layers(resnet, parse_freeze("avgpool")) == tuple(names[:-1])
    with pytest.raises(FreezeError, match="no layer or block called 'layer9'; did you mean"):
        frozen_layers(resnet, parse_freeze("layer9"))
    with pytest.raises(FreezeError, match="only 41 layers with parameters"):
        frozen_layers(resnet, parse_freeze("42"))


def test_retraining_the_last_layer_of_resnet18() -> None:
    resnet = analyze("resnet18", input=(3, 64, 64), freeze="fc")
    fc = resnet.layer("fc")
    training = resnet.training
    assert training is not None
    assert training.trainable_params == fc.params == 512 * 1000 + 1000
    assert training.frozen_params == resnet.params - fc.params
    # the frozen prefix needs no backward; fc computes its weight gradient only
    assert training.train_step_macs == resnet.macs + fc.macs


def test_a_chain_costs_three_forwards_but_the_first_input_gradient() -> None:
    a = analyze_expression("conv3x3:16 > relu > dw3x3 > pw:32 > gap > fc:10", (8, 12, 12))
    full = train_step(a)
    first = a.layers[0].macs
    assert full.train_step_macs == 3 * a.macs - first
    assert full.trainable_params == a.params and full.frozen_params == 0
    everything = train_step(a, "1.0")
    assert everything.train_step_macs == a.macs and everything.trainable_params == 0


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 6), st.integers(1, 4))
def test_freezing_more_never_costs_more(k: int, step: int) -> None:
    a = build_preset("mobilenet-v2", (3, 32, 32))
    less, more = train_step(a, k), train_step(a, k + step)
    assert more.train_step_macs <= less.train_step_macs
    assert more.trainable_params + more.frozen_params == a.params


def test_json_and_tables_carry_the_training_step(tmp_path) -> None:
    import io

    def run(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        return main(list(argv), stdout=out, stderr=err), out.getvalue(), err.getvalue()

    code, out, _ = run("compare", "resnet18", "mobilenet-v2", "--input", "3x64x64", "--freeze", "0.5",
                       "--format", "json")
    assert code == 0
    for target in json.loads(out)["targets"]:
        a = with_training(build_preset(target["name"], (3, 64, 64)), "0.5")
        assert target["train_step_macs"] == a.training.train_step_macs
        assert target["trainable_params"] + target["frozen_params"] == target["params"]
        assert sum(layer["train_step_macs"] for layer in target["layers"]) == target["train_step_macs"]
        assert target["freeze"]["frozen_layers"] == len(parametrised(a)) // 2
    code, out, _ = run("analyze", "resnet18", "--freeze", "fc", "--format", "csv", "--depth", "1")
    header, *rows = [line.split(",") for line in out.splitlines()]
    column = header.index("train_step_macs")
    a = analyze("resnet18", freeze="fc")
    assert sum(int(r[column]) for r in rows) == a.training.train_step_macs
    code, out, _ = run("compare", "resnet18", "--freeze", "fc", "--unit", "flops", "--exact", "--wide")
    assert f"{2 * a.training.train_step_macs:,}" in out and "--freeze fc" in out
    code, out, _ = run("analyze", "resnet18", "--freeze", "fc", "--format", "md")
    assert "train-step MACs" in out and f"{a.training.train_step_macs:,}" in out
    code, _, err = run("compare", "resnet18", "--freeze", "fc9")
    assert code == 2 and err.startswith("costlab: error: --freeze fc9") and err.count("\n") == 1
