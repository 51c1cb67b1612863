"""Predicted memory held against MemTracker on real modules' own forwards (the zoo venv only).

Every module of costlab_memory_zoo (torchvision, timm, transformers with and without a KV cache) at
batch 1 and 8: the inference peak (one forward under no_grad) and the training-step peak with SGD
(one step: SGD keeps no state) and Adam (the second step, with its state there), predicted by
following the module's forward on the meta device (costlab.torch_bridge.lifetimes) and measured by
MemTracker on the real module on the CPU: within ±3 %, never under by more than 3 %. --freeze goes
end to end through costlab.analyze(..., freeze=..., memory=True) on three of them.

Skipped where torchvision, timm or transformers is missing (CI's torch 2.13.0 venv)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torch.distributed._tools.mem_tracker")
pytest.importorskip("torchvision")
pytest.importorskip("timm")
pytest.importorskip("transformers")

import costlab  # noqa: E402
from costlab.torch_bridge.lifetimes import follow_module  # noqa: E402
from costlab.torch_bridge.memory import measure_analysis, measure_memory  # noqa: E402

from costlab_memory_zoo import MODULES, by_label  # noqa: E402

TOLERANCE = 0.03


def _close(predicted: int, measured: int) -> bool:
    """Within ±3 % of the measurement (so never under it by more than 3 %)."""
    return measured > 0 and abs(predicted - measured) <= TOLERANCE * measured


@pytest.mark.parametrize("batch", [1, 8])
@pytest.mark.parametrize("label", [m.label for m in MODULES])
def test_prediction_holds_against_the_modules_own_forward(label: str, batch: int) -> None:
    real = by_label(label)
    module = real.build()
    args, kwargs = real.arguments(batch)
    results = []
    for optimizer, steps in (("adam", 2), ("sgd", 1)):
        followed, _ = follow_module(module, args, kwargs, optimizer, steps=steps)
        measured = measure_memory(module, args, optimizer, kwargs=kwargs, steps=steps,
                                  inference=optimizer == "adam")
        if optimizer == "adam":
            results.append(("inference", followed.inference_peak, measured.inference_peak))
        results.append((f"training ({optimizer})", followed.training_peak, measured.training_peak))
    wrong = [(what, p, m, f"{p / m:.4f}") for what, p, m in results if not _close(p, m)]
    assert not wrong, wrong


@pytest.mark.parametrize("label, freeze", [("torchvision resnet18", "0.5"), ("torchvision mobilenet_v2", "features"),
                                           ("timm efficientnet_b0", "10")])
def test_freezing_end_to_end(label: str, freeze: str) -> None:
    real = by_label(label)
    module = real.build()
    args, kwargs = real.arguments(8)
    analysis = costlab.analyze(module, inputs=args[0], freeze=freeze, memory=True, optimizer="adam")
    assert analysis.training is not None and analysis.training.frozen
    predicted = analysis.memory
    measured = measure_analysis(analysis, "adam", module=module, inputs=args[0])
    assert measured.training_breakdown.get("Gradient", 0) < sum(p.numel() * 4 for p in module.parameters())
    assert _close(predicted.inference_peak, measured.inference_peak), (predicted.inference_peak, measured)
    assert _close(predicted.training_peak, measured.training_peak), (predicted.training_peak, measured)
    assert predicted.trainable < sum(p.numel() * 4 for p in module.parameters())
