"""Analysing a real ResNet-50 module in-process: costlab's trace beside fvcore's FlopCountAnalysis.

Both count the same module (built by costlab's builder, real float32 weights on the CPU) on the
same 1×3×224×224 input, measured side by side in this run. costlab traces the module with
torch.fx and prices the graph with its formulas (no forward pass); fvcore traces with torch.jit,
which runs a real forward pass. Target (design.md): costlab at least 10× faster.

Also shown, for information: costlab's meta-device fallback on the same module.
Run from the repository root:  python benchmarks/bench_trace_speed.py [--repeat N]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from fvcore.nn import FlopCountAnalysis  # noqa: E402

import costlab  # noqa: E402
from costlab.torch_bridge.build import build_module  # noqa: E402
from costlab.torch_bridge.trace import trace_module  # noqa: E402
from costlab.core.zoo import build_preset  # noqa: E402

TARGET_RATIO = 10.0


def seconds(run: Callable[[], object], repeat: int) -> list[float]:
    run()  # warm-up: first-call costs (lazy imports, kernel selection) are not what is compared
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def fvcore_total(module: torch.nn.Module, x: torch.Tensor) -> int:
    counter = FlopCountAnalysis(module, x)
    counter.unsupported_ops_warnings(False)
    counter.uncalled_modules_warnings(False)
    return int(counter.total())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    torch.set_num_threads(max(1, torch.get_num_threads()))

    module = build_module(build_preset("resnet50"), device="cpu").eval()
    x = torch.randn(1, 3, 224, 224)
    analysis = costlab.analyze(module, input=(3, 224, 224))
    reference = fvcore_total(module, x)
    print(f"ResNet-50 (costlab's builder), input 1×3×224×224, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}")
    print(f"  costlab MACs {analysis.macs:,}; fvcore {reference:,} (fvcore adds batch norm and the "
          "adaptive pool; `costlab analyze resnet50 --check fvcore` explains the difference)")

    timings = {
        "costlab.analyze (torch.fx trace)": seconds(lambda: costlab.analyze(module, input=(3, 224, 224)), args.repeat),
        "costlab meta-device fallback": seconds(lambda: trace_module(module, (3, 224, 224), method="meta"),
                                                args.repeat),
        "fvcore FlopCountAnalysis(...).total()": seconds(lambda: fvcore_total(module, x), args.repeat),
    }
    print(f"\n  {'':40s} {'median':>10s} {'min':>10s}   ({args.repeat} runs after a warm-up)")
    for name, times in timings.items():
        print(f"  {name:40s} {1000 * statistics.median(times):8.1f} ms {1000 * min(times):8.1f} ms")
    fx = statistics.median(timings["costlab.analyze (torch.fx trace)"])
    fv = statistics.median(timings["fvcore FlopCountAnalysis(...).total()"])
    ratio = fv / fx
    print(f"\n  fvcore / costlab (medians): {ratio:.1f}× (target ≥ {TARGET_RATIO:.0f}×): "
          f"{'PASS' if ratio >= TARGET_RATIO else 'FAIL'}")
    meta = statistics.median(timings["costlab meta-device fallback"])
    print(f"  fvcore / costlab meta fallback: {fv / meta:.1f}×")


if __name__ == "__main__":
    main()
