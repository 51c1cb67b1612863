"""Predicted against measured memory: costlab.analyses.memory beside PyTorch's MemTracker on CPU.

For every preset at batch 1 and 8 (default input) and the cases of reports/memory.md (MobileNet v2's
projection, MobileNet v1 / v2 / ResNet-50 at batch 1 and 32), it prints the predicted and the
measured inference peak and Adam training-step peak, in bytes, and the ratio predicted ÷ measured.
The measured run is costlab.torch_bridge.memory's: one forward under no_grad, then two training steps
(zero_grad, forward, sum, backward, Adam step) in MemTracker. MemTracker counts storage bytes exactly,
so the figures do not vary from run to run with the same torch.

    python benchmarks/bench_memory_model.py                # presets at batch 1 and 8, then the report cases
    python benchmarks/bench_memory_model.py --only lenet5,mobilenet-v2
    python benchmarks/bench_memory_model.py --report       # also write reports/memory-measured.md

It needs several GiB of memory for VGG at batch 8 with Adam (about 3 GiB) and minutes of CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from costlab.analyses.memory import memory  # noqa: E402
from costlab.render.report import grid  # noqa: E402
from costlab.app.reports import MEASURED_MEMORY_REPORT, memory_cases  # noqa: E402
from costlab.torch_bridge.memory import measure_analysis  # noqa: E402
from costlab.core.zoo import PRESETS, build_preset  # noqa: E402

HEADERS = ["case", "inference predicted", "measured", "ratio", "training predicted (Adam)", "measured",
           "ratio", "seconds"]


def row(label: str, analysis) -> list[str]:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    start = time.perf_counter()
    predicted = memory(analysis, "adam")
    measured = measure_analysis(analysis, "adam")
    seconds = time.perf_counter() - start
    return [label, f"{predicted.inference_peak:,}", f"{measured.inference_peak:,}",
            f"{predicted.inference_peak / measured.inference_peak:.4f}", f"{predicted.training_peak:,}",
            f"{measured.training_peak:,}", f"{predicted.training_peak / measured.training_peak:.4f}",
            f"{seconds:.1f}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated presets (default: every preset)")
    parser.add_argument("--report", action="store_true", help=f"write reports/{MEASURED_MEMORY_REPORT}")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(PRESETS)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; bytes; ratio = predicted ÷ measured")
    rows = []
    for name in names:
        for batch in (1, 8):
            rows.append(row(f"{name}, batch {batch}", build_preset(name, batch=batch)))
            print("  ".join(rows[-1]), flush=True)
    report_rows = []
    for label, analysis in memory_cases():
        report_rows.append(row(label, analysis))
        print("  ".join(report_rows[-1]), flush=True)
    numeric = [False] + [True] * 7
    print()
    print(grid(HEADERS, rows + report_rows, "table", numeric))
    worst = max(abs(float(r[i]) - 1) for r in rows + report_rows for i in (3, 6))
    print(f"\nlargest deviation from the measurement: {100 * worst:.2f} % (the tests allow 10 %)")
    if args.report:
        text = "\n".join([
            "# Memory, predicted and measured", "",
            "The cases of [memory.md](memory.md), predicted by `costlab.analyses.memory` and measured by PyTorch's "
            "`MemTracker` (torch.distributed._tools.mem_tracker) on CPU: its peak total of one forward "
            "pass under `no_grad`, and of two Adam training steps (the second runs with the optimizer "
            "state already there). Bytes; ratio = predicted ÷ measured. MemTracker sees every tensor "
            "storage, exactly; it does not see kernel workspaces, the allocator's caching or Python "
            f"objects (docs/cost-model.md, \"Memory\"). Measured with torch {torch.__version__}.", "",
            grid(HEADERS[:-1], [r[:-1] for r in report_rows], "md", numeric[:-1]), "",
            f"Regenerate with `python benchmarks/bench_memory_model.py --report` (every preset at batch 1 "
            "and 8 is printed beside it).", ""])
        (ROOT / "reports" / MEASURED_MEMORY_REPORT).write_text(text, encoding="utf-8")
        print(f"wrote reports/{MEASURED_MEMORY_REPORT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
