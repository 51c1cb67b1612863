"""Predicted against measured memory, on the forward each model really runs.

Measured: PyTorch's MemTracker (torch.distributed._tools.mem_tracker) on the CPU, around the module's
own forward: one inference under no_grad, one SGD training step (SGD keeps no state) and two Adam
steps (the second runs with the state there). Predicted: costlab's --memory for that target.

1. Real modules (tests/costlab_memory_zoo.py: torchvision, timm, transformers with and without a KV
   cache) at batch 1 and 8: the prediction follows the module's forward on the meta device
   (costlab.torch_bridge.lifetimes). Needs the zoo venv.
2. Presets beside the torchvision module of the same architecture, and beside their own built module
   called as a plain module(x): the preset's prediction is the layer graph's liveness
   (costlab.analyses.memory, torch-free).

MemTracker counts storage bytes exactly, so the figures do not vary from run to run with the same torch.

    PYTHONPATH=$PWD /work/zoo/bin/python benchmarks/bench_memory_model.py            # everything
    PYTHONPATH=$PWD /work/zoo/bin/python benchmarks/bench_memory_model.py --only resnet,gpt2
    PYTHONPATH=$PWD /work/zoo/bin/python benchmarks/bench_memory_model.py --report   # also write reports/memory-measured.md
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import torch  # noqa: E402

import costlab  # noqa: E402
from costlab.app.reports import MEASURED_MEMORY_REPORT  # noqa: E402
from costlab.render.report import grid  # noqa: E402
from costlab.torch_bridge.lifetimes import follow_module  # noqa: E402
from costlab.torch_bridge.memory import measure_analysis, measure_memory  # noqa: E402

MODULE_HEADERS = ["module", "batch", "inference predicted", "measured", "ratio", "SGD step predicted", "measured",
                  "ratio", "Adam step predicted", "measured", "ratio"]
PRESET_HEADERS = ["preset (input)", "batch", "against", "inference predicted", "measured", "ratio",
                  "Adam step predicted", "measured", "ratio"]
#: presets and the torchvision module of the same architecture
TORCHVISION_TWINS = {"resnet18": "resnet18", "mobilenet-v2": "mobilenet_v2"}
PRESET_INPUT = (3, 64, 64)


def ratio(predicted: int, measured: int) -> str:
    return f"{predicted / measured:.4f}" if measured else "n/a"


def module_row(real, batch: int) -> tuple[list[str], list[float]]:  # type: ignore[no-untyped-def]
    module = real.build()
    args, kwargs = real.arguments(batch)
    cells = [real.label, str(batch)]
    ratios = []
    for optimizer, steps in (("adam", 2), ("sgd", 1)):
        followed, _ = follow_module(module, args, kwargs, optimizer, steps=steps)
        measured = measure_memory(module, args, optimizer, kwargs=kwargs, steps=steps, inference=optimizer == "adam")
        if optimizer == "adam":
            inference = (followed.inference_peak, measured.inference_peak)
            adam = (followed.training_peak, measured.training_peak)
        else:
            sgd = (followed.training_peak, measured.training_peak)
    for predicted, measured in (inference, sgd, adam):
        cells += [f"{predicted:,}", f"{measured:,}", ratio(predicted, measured)]
        ratios.append(predicted / measured)
    return cells, ratios


def preset_rows(name: str, batch: int) -> list[tuple[list[str], list[float]]]:
    import torchvision

    analysis = costlab.analyze(name, input=PRESET_INPUT, batch=batch, memory=True, optimizer="adam")
    predicted = analysis.memory
    rows = []
    torch.manual_seed(0)
    twin = getattr(torchvision.models, TORCHVISION_TWINS[name])(weights=None)
    against = [(f"torchvision {TORCHVISION_TWINS[name]}", measure_memory(twin, torch.randn(batch, *PRESET_INPUT))),
               ("its built module", measure_analysis(analysis, "adam"))]
    for label, measured in against:
        cells = [f"{name} ({'×'.join(map(str, PRESET_INPUT))})", str(batch), label]
        ratios = []
        for p, m in ((predicted.inference_peak, measured.inference_peak), (predicted.training_peak,
                                                                           measured.training_peak)):
            cells += [f"{p:,}", f"{m:,}", ratio(p, m)]
            ratios.append(p / m)
        rows.append((cells, ratios))
    return rows


def write_report(modules: list, presets: list, partial: bool) -> None:  # type: ignore[type-arg]
    """reports/memory-measured.md from the rows so far (``partial``: the run has not finished yet)."""
    module_table = grid(MODULE_HEADERS, [c for c, _ in modules], "md", [False] + [True] * 10)
    preset_table = grid(PRESET_HEADERS, [c for c, _ in presets], "md", [False, True, False] + [True] * 6)
    text = "\n".join([
        "# Memory, predicted and measured on the forward each model runs", "",
        "Measured by PyTorch's `MemTracker` (torch.distributed._tools.mem_tracker) on the CPU around the "
        "module's own forward: its peak total of one inference under `no_grad`, of one SGD training step "
        "(`zero_grad`, forward, `sum` of the first output, backward, step; SGD keeps no state) and of two Adam "
        "steps (the second runs with the optimizer state there). MemTracker sees every tensor storage, "
        "exactly; it does not see kernel workspaces, the allocator's caching or Python objects "
        "(docs/cost-model.md, \"Memory\"). Bytes; ratio = predicted ÷ measured. "
        f"Measured with torch {torch.__version__}."
        + (" **Partial: the run that wrote this file stopped before the end of the catalog.**" if partial else ""),
        "", "## Real modules", "",
        "As their libraries build them (no weights), on small inputs (64×64 images; 16 tokens of narrow "
        "transformers configs, with and without the KV cache). Predicted by `costlab analyze MODULE "
        "--memory`: the module's forward followed on the meta device (storage lifetimes, "
        "`costlab.torch_bridge.lifetimes`).", "",
        module_table, "",
        "## Presets", "",
        "A preset's prediction is the layer graph's liveness (`costlab.analyses.memory`, no torch), held "
        "against the torchvision module of the same architecture and against the preset's own built module "
        "called as a plain `module(x)`. The preset builds its activations out of place where torchvision runs "
        "them in place, so the two modules are not the same program.", "",
        preset_table if presets else "(not measured in this run)", "",
        "Regenerate with `PYTHONPATH=$PWD /work/zoo/bin/python benchmarks/bench_memory_model.py --report` "
        "(needs torchvision, timm and transformers).", ""])
    (ROOT / "reports" / MEASURED_MEMORY_REPORT).write_text(text, encoding="utf-8")


def main() -> int:
    from costlab_memory_zoo import MODULES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated substrings of module labels / preset names")
    parser.add_argument("--report", action="store_true", help=f"write reports/{MEASURED_MEMORY_REPORT}")
    args = parser.parse_args()
    wanted = args.only.split(",") if args.only else None

    def chosen(label: str) -> bool:
        return wanted is None or any(w in label for w in wanted)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; bytes; ratio = predicted ÷ measured",
          flush=True)
    start = time.perf_counter()
    modules, presets = [], []
    for name in TORCHVISION_TWINS:
        if chosen(name):
            for batch in (1, 8):
                presets += preset_rows(name, batch)
                print("\n".join("  ".join(cells) for cells, _ in presets[-2:]), flush=True)
    for real in MODULES:
        if chosen(real.label):
            for batch in (1, 8):
                modules.append(module_row(real, batch))
                print("  ".join(modules[-1][0]), flush=True)
            if args.report:
                write_report(modules, presets, partial=True)
    if args.report:
        write_report(modules, presets, partial=False)
    module_table = grid(MODULE_HEADERS, [c for c, _ in modules], "md", [False] + [True] * 10)
    preset_table = grid(PRESET_HEADERS, [c for c, _ in presets], "md", [False, True, False] + [True] * 6)
    print()
    print(module_table)
    print()
    print(preset_table)
    ratios = [r for _, rs in modules for r in rs]
    if ratios:
        worst = max(ratios, key=lambda r: abs(r - 1))
        print(f"\nreal modules: {len(ratios)} peaks, largest deviation {100 * (worst - 1):+.2f} %, "
              f"{sum(abs(r - 1) <= 0.03 for r in ratios)}/{len(ratios)} within ±3 %")
    print(f"{time.perf_counter() - start:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
