"""The memory model without torch: liveness over the layer graph, gradients, optimizer state, the CLI."""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import costlab
from costlab.app.cli import main
from costlab.core.graph import Net
from costlab.analyses.memory import OPTIMIZERS, memory, param_tensors, parse_optimizer
from costlab.core.specs import Activation, Elementwise, conv2d

from conftest import ROOT

FLOAT32 = 4


def _chain_peak(analysis: costlab.Analysis) -> int:
    """weights + buffers + input + the largest pair of adjacent activations, by an explicit loop
    (the input stays alive: the caller holds it; the first layer pairs with it only once)."""
    sizes = [math.prod(layer.output) * FLOAT32 for layer in analysis.layers]
    best = sizes[0]
    for before, after in zip(sizes, sizes[1:]):
        best = max(best, before + after)
    constant = (analysis.params + analysis.buffers + math.prod((analysis.batch,) + analysis.input)) * FLOAT32
    return constant + best


chains = st.lists(st.tuples(st.sampled_from(["conv1x1", "conv3x3", "relu", "bn", "sigmoid"]),
                            st.integers(1, 12)), min_size=1, max_size=7)


@settings(max_examples=60, deadline=None)
@given(chains, st.integers(1, 3), st.integers(1, 4), st.integers(8, 16))
def test_a_chain_peaks_at_its_largest_adjacent_pair_plus_weights(plan: list[tuple[str, int]], batch: int,
                                                                  channels: int, size: int) -> None:
    text = " > ".join(f"{kind}:{width}" if kind.startswith("conv") else kind for kind, width in plan)
    a = costlab.analyze(text, input=(channels, size, size), batch=batch)
    assert memory(a).inference_peak == _chain_peak(a)


def test_a_residual_skip_stays_alive_until_the_add() -> None:
    net = Net((8, 10, 10))
    x = net.input
    y = net.add(conv2d(8, 3, padding=1), x, name="a")
    z = net.add(conv2d(8, 3, padding=1), y, name="b")
    w = net.add(conv2d(8, 3, padding=1), z, name="c")
    net.add(Elementwise("add"), w, y, name="add")
    a = net.analysis("skip")
    m = memory(a)
    tensor = 8 * 10 * 10 * FLOAT32
    weights = a.params * FLOAT32
    # at c: input, y (the skip), z (c's input) and w; at the add: input, y, w and the sum
    assert m.by_name()["c"].inference_live == weights + 4 * tensor
    assert m.by_name()["add"].inference_live == weights + 4 * tensor
    assert m.by_name()["b"].inference_live == weights + 3 * tensor
    assert m.inference_peak == weights + 4 * tensor


def test_in_place_activations_and_views_share_their_input() -> None:
    a = costlab.analyze("conv3x3:16 > relu > flatten", input=(3, 8, 8))
    out = 16 * 8 * 8 * FLOAT32
    base = (a.params + 3 * 8 * 8) * FLOAT32
    assert memory(a).inference_peak == base + 2 * out
    assert memory(a, inplace={"relu1"}).inference_peak == base + out
    assert memory(a).by_name()["flatten1"].shares_input


@pytest.mark.parametrize("target", ["resnet18", "mobilenet-v2", "conv3x3:8 > bn > relu > fc:4"])
def test_freezing_everything_leaves_no_gradient_and_no_optimizer_state(target: str) -> None:
    a = costlab.analyze(target, input=(3, 32, 32), freeze="1.0")
    m = memory(a, "adam")
    assert m.trainable == m.gradients == m.optimizer_state == 0
    assert m.saved == 0 and m.backward_peak <= m.forward_peak
    assert all(layer.grads == 0 and layer.saved == 0 for layer in m.layers)


@pytest.mark.parametrize("freeze", ["0", "0.5", "fc"])
def test_adam_holds_twice_the_trainable_parameters(freeze: str) -> None:
    a = costlab.analyze("resnet18", input=(3, 32, 32), freeze=freeze)
    frozen = set(a.training.frozen)
    trainable = sum(layer.params for layer in a.layers if layer.name not in frozen) * FLOAT32
    tensors = sum(param_tensors(layer) for layer in a.layers if layer.name not in frozen)
    adam = memory(a, "adam")
    assert adam.trainable == trainable == adam.gradients
    assert adam.optimizer_state == 2 * trainable + 4 * tensors  # exp_avg, exp_avg_sq, one step count each
    assert memory(a, "momentum").optimizer_state == trainable
    assert memory(a, "sgd").optimizer_state == 0
    assert memory(a, "adamw").optimizer_state == adam.optimizer_state


def test_the_step_holds_weights_state_gradients_and_the_update_temporaries() -> None:
    a = costlab.analyze("lenet5")
    m = memory(a, "adam")
    largest = max(layer.params - (layer.spec.out_features if hasattr(layer.spec, "out_features") else
                                  layer.spec.out_channels) for layer in a.layers if layer.params)
    assert m.step_peak == (m.weights + m.buffers + m.inputs + m.optimizer_state + m.gradients
                           + 2 * largest * FLOAT32)
    assert m.training_peak == max(m.forward_peak, m.backward_peak, m.step_peak)


def test_dtype_scales_every_byte() -> None:
    a32 = costlab.analyze("mobilenet-v2", dtype="float32")
    a16 = costlab.analyze("mobilenet-v2", dtype="float16")
    m32, m16 = memory(a32), memory(a16)
    assert m16.weights * 2 == m32.weights and m16.inference_peak * 2 == m32.inference_peak


def test_bad_optimizer_is_one_costlab_error() -> None:
    assert parse_optimizer("Adam") == "adam" and set(OPTIMIZERS) == {"sgd", "momentum", "adam", "adamw"}
    with pytest.raises(costlab.CostlabError):
        parse_optimizer("lion")


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_json_carries_memory_per_target_and_per_layer() -> None:
    code, out, err = run("compare", "lenet5", "conv3x3:4 > relu > gap > fc:10", "--input", "1x32x32",
                         "--memory", "--optimizer", "momentum", "--format", "json")
    assert code == 0, err
    for target in json.loads(out)["targets"]:
        analysis = costlab.analyze(target["name"], input=(1, 32, 32))
        expected = memory(analysis, "momentum")
        entry = target["memory"]
        assert entry["weights"] == target["params"] * FLOAT32
        assert (entry["inference_peak"], entry["training_peak"]) == (expected.inference_peak,
                                                                     expected.training_peak)
        assert entry["optimizer"] == "momentum" and entry["optimizer_state"] == entry["trainable"]
        assert max(layer["live_bytes"] for layer in target["layers"]) == entry["inference_peak"]


@pytest.mark.parametrize("fmt", ["table", "md", "csv"])
def test_memory_columns_in_every_format(fmt: str) -> None:
    code, out, _ = run("compare", "resnet50", "mobilenet-v2", "--memory", "--format", fmt)
    assert code == 0 and "inference" in out and "training" in out
    code, out, _ = run("analyze", "lenet5", "--memory", "--format", fmt)
    assert code == 0 and "live" in out and "saved" in out


def test_optimizer_needs_memory_and_names_a_known_one() -> None:
    code, _, err = run("compare", "lenet5", "--optimizer", "adam")
    assert code == 2 and err.startswith("costlab: error: --optimizer needs --memory")
    code, _, err = run("compare", "lenet5", "--memory", "--optimizer", "lion")
    assert code == 2 and err.count("\n") == 1 and err.startswith("costlab: error:")


def test_memory_on_presets_does_not_import_torch() -> None:
    script = ("import sys, io; from costlab.app.cli import main; "
              "assert main(['compare', 'resnet50', 'mobilenet-v2', '--memory'], stdout=io.StringIO()) == 0; "
              "import costlab; assert costlab.analyze('lenet5', memory=True).memory.weights > 0; "
              "assert 'torch' not in sys.modules, 'torch was imported'")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr


def test_python_api_returns_a_typed_memory() -> None:
    a = costlab.analyze("mobilenet-v1", memory=True, optimizer="sgd", freeze="fc")
    assert type(a.memory).__name__ == "Memory" and a.memory.optimizer == "sgd"
    assert a.memory.trainable == a.layer("fc").params * FLOAT32
    c = costlab.compare(["lenet5", "alexnet"], memory=True)
    assert all(t.memory is not None for t in c.targets)


def test_memory_report_headlines_from_first_principles() -> None:
    """The block's inference peak is in the depthwise stage (a conv-BN-ReLU block of its own): the
    input, the expansion's output (the depthwise block's argument, which its caller holds until the
    block returns) and the depthwise conv's and its norm's outputs alive together, plus weights and
    buffers (float32, batch 1)."""
    from costlab.app.reports import PROJECTION_BLOCK, memory_cases

    c, n, t = PROJECTION_BLOCK["channels"], PROJECTION_BLOCK["size"], PROJECTION_BLOCK["expansion"]
    cases = dict(memory_cases())
    for projection in ("with", "without"):
        a = cases[f"inverted residual {projection} projection, batch 1"]
        expected = (a.params + a.buffers + c * n * n + 3 * c * t * n * n) * FLOAT32
        assert memory(a).inference_peak == expected
    with_, without = cases["mobilenet-v2, batch 1"], cases["mobilenet-v2 without projections, batch 1"]
    assert without.params > with_.params and memory(with_).inference_peak < memory(without).inference_peak


def test_committed_measured_report_holds_its_goal() -> None:
    """reports/memory-measured.md (MemTracker on each model's own forward, committed): every ratio of a
    real module is predicted ÷ measured recomputed from its cells and lies within ±3 %; each preset's
    predicted columns are today's torch-free prediction. (The coverage — 28 modules at batch 1 and 8 —
    is tests/test_memory_zoo.py's, in the zoo venv.)"""
    from costlab.app.reports import MEASURED_MEMORY_REPORT

    text = (ROOT / "reports" / MEASURED_MEMORY_REPORT).read_text(encoding="utf-8")
    modules: dict[tuple[str, int], list[int]] = {}
    presets: list[list[str]] = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 11 and cells[1].isdigit():
            numbers = [int(cells[i].replace(",", "")) for i in (2, 3, 5, 6, 8, 9)]
            for (predicted, measured), shown in zip(zip(numbers[::2], numbers[1::2]), (cells[4], cells[7], cells[10])):
                assert f"{predicted / measured:.4f}" == shown
                assert abs(predicted / measured - 1) <= 0.03, cells
            modules[(cells[0], int(cells[1]))] = numbers
        elif len(cells) == 9 and cells[1].isdigit():
            presets.append(cells)
    assert modules and presets
    for cells in presets:
        name, shape = cells[0].split(" (")
        size = tuple(int(n) for n in shape.rstrip(")").split("×"))
        m = costlab.analyze(name, input=size, batch=int(cells[1]), memory=True).memory
        assert (int(cells[3].replace(",", "")), int(cells[6].replace(",", ""))) == (m.inference_peak,
                                                                                     m.training_peak), cells
