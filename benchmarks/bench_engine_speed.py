"""The engine's speed against the floors it is held to, measured side by side in one run.

- **fx path** (ResNet-50, MobileNet v2): ``costlab.analyze(model, input=(3, 224, 224))`` against
  ``torch.fx.symbolic_trace(model)`` alone on the same module — the floor of any fx-based counter.
  Target: ≤ 1× (issue 10).
- **fx path with calls priced alone** (torchvision swin_t, whose ``shifted_window_attention`` is an
  fx-wrapped function): the same ratio. Target: ≤ 1.5×.
- **aten-level meta path** (efficientnet_b0, forced with ``trace_module(..., method="meta")``)
  against PyTorch's ``FlopCounterMode`` over a forward of a meta copy of the model (the copy made
  beforehand, so the floor is the counted forward alone). Target: ≤ 1×.
- **CLI target build**: ``load_callable("torchvision.models:resnet50", device="meta")`` (what
  ``costlab analyze torchvision.models:resnet50`` does) against ``device="cpu"`` (real, randomly
  initialised weights), and the same for vgg16. For information: the meta build should be a small
  fraction of the CPU one.

Each pair is timed alternately (a, b, a, b, ...) after a warm-up, so that load from other processes
falls on both alike; the table shows medians of this process's CPU time (judged against the
targets: on a shared machine other processes inflate wall time, not CPU time) and of wall time. Run from the repository root with torchvision
installed:  python benchmarks/bench_engine_speed.py [--repeat N]
"""

from __future__ import annotations

import argparse
import copy
import gc
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torchvision  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import costlab  # noqa: E402
from costlab.torch_bridge.trace import load_callable, trace_module  # noqa: E402


@dataclass(frozen=True)
class Timing:
    """Medians of one side of a pair: CPU seconds of this process (all its threads) and wall seconds."""

    cpu: float
    wall: float


def paired(first: Callable[[], object], second: Callable[[], object], repeat: int) -> tuple[Timing, Timing]:
    """Medians of each, timed alternately after one warm-up call of each, garbage collection off
    during a run (as timeit does)."""
    first()
    second()
    samples: tuple[list[tuple[float, float]], list[tuple[float, float]]] = ([], [])
    for _ in range(repeat):
        for run, times in zip((first, second), samples):
            gc.collect()
            gc.disable()
            try:
                cpu, wall = time.process_time(), time.perf_counter()
                run()
                times.append((time.process_time() - cpu, time.perf_counter() - wall))
            finally:
                gc.enable()
    return tuple(Timing(statistics.median(c for c, _ in times), statistics.median(w for _, w in times))
                 for times in samples)  # type: ignore[return-value]


def meta_model(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` with meta parameters and buffers (no data), in eval mode."""
    memo = {id(t): (torch.nn.Parameter(torch.empty_like(t, device="meta"), t.requires_grad)
                    if isinstance(t, torch.nn.Parameter) else torch.empty_like(t, device="meta"))
            for t in (*model.parameters(), *model.buffers())}
    return copy.deepcopy(model, memo).eval()


def counter_forward(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], int]:
    def run() -> int:
        with FlopCounterMode(display=False) as counter:
            model(x)
        return counter.get_total_flops()
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    repeat = args.repeat
    shape = (3, 224, 224)
    rows: list[tuple[str, str, Timing, str, Timing, float | None]] = []

    def row(what: str, ours_name: str, ours: Timing, floor_name: str, floor: Timing,
            target: float | None) -> None:
        rows.append((what, ours_name, ours, floor_name, floor, target))

    tvm = torchvision.models
    for name in ("resnet50", "mobilenet_v2", "swin_t"):
        model = tvm.get_model(name, weights=None).eval()
        analysis = costlab.analyze(model, input=shape)
        ours, floor = paired(lambda: costlab.analyze(model, input=shape),
                             lambda: torch.fx.symbolic_trace(model), repeat)
        row(f"{name} (engine {analysis.engine}, {analysis.macs / 1e9:.3f} GMACs)", "costlab.analyze", ours,
            "fx.symbolic_trace", floor, 1.5 if name == "swin_t" else 1.0)

    model = tvm.efficientnet_b0(weights=None).eval()
    meta = meta_model(model)
    x = torch.empty(1, *shape, device="meta")
    forced = trace_module(model, shape, method="meta").analysis
    check = counter_forward(meta, x)() // 2
    ours, floor = paired(lambda: trace_module(model, shape, method="meta"), counter_forward(meta, x), repeat)
    same = "same MACs" if forced.macs == check else f"MACs differ: {forced.macs:,} vs {check:,}"
    row(f"efficientnet_b0 meta path ({same})", "trace_module(meta)", ours, "FlopCounterMode(meta)", floor, 1.0)

    for name in ("resnet50", "vgg16"):
        target = f"torchvision.models:{name}"
        ours, floor = paired(lambda: load_callable(target, device="meta"),
                             lambda: load_callable(target, device="cpu"), max(3, repeat // 2))
        row(f"build {name} for the CLI", "load_callable(meta)", ours, "load_callable(cpu)", floor, None)

    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, {torch.get_num_threads()} threads; "
          f"medians of {repeat} alternating runs after a warm-up (builds: {max(3, repeat // 2)}).")
    print("CPU = this process's CPU time (what the target is judged on: other processes' load inflates "
          "wall time, not CPU time); wall for information.")
    print(f"\n{'case':54s} {'costlab':>20s} {'CPU ms':>8s} {'wall ms':>8s} {'floor':>22s} {'CPU ms':>8s} "
          f"{'wall ms':>8s} {'CPU ×':>6s} {'wall ×':>6s}  target")
    for what, ours_name, ours, floor_name, floor, target in rows:
        ratio = ours.cpu / floor.cpu
        verdict = "" if target is None else f"≤ {target:g}×: {'PASS' if ratio <= target else 'FAIL'}"
        print(f"{what:54s} {ours_name:>20s} {1000 * ours.cpu:8.1f} {1000 * ours.wall:8.1f} {floor_name:>22s} "
              f"{1000 * floor.cpu:8.1f} {1000 * floor.wall:8.1f} {ratio:6.2f} {ours.wall / floor.wall:6.2f}  "
              f"{verdict}")

if __name__ == "__main__":
    main()
