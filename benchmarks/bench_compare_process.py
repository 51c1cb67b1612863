"""`costlab compare` as a whole process, beside `python -c "import torch"`, in the same run.

Target (design.md): under 0.5 s on a 2-core machine, where importing torch alone takes 2–3 s.
Run from the repository root:  python benchmarks/bench_compare_process.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 0.5

COMMANDS = {
    "costlab compare (default case)": [sys.executable, "-m", "costlab", "compare"],
    "costlab compare 3 expressions --per-layer": [
        sys.executable, "-m", "costlab", "compare", "conv5x5:32", "conv1x1:16 > conv5x5:32",
        "(conv1x1:64 | conv1x1:96 > conv3x3:128 | conv1x1:16 > conv5x5:32 | maxpool3x3,s1,same > pw:32)",
        "--input", "192x28x28", "--per-layer"],
    "costlab compare resnet50 mobilenet-v2 --format json": [
        sys.executable, "-m", "costlab", "compare", "resnet50", "mobilenet-v2", "--format", "json"],
    "python -c 'import torch'": [sys.executable, "-c", "import torch"],
    "python -c 'pass' (interpreter start)": [sys.executable, "-c", "pass"],
}


def wall_times(command: list[str], repeat: int) -> list[float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(command, cwd=ROOT, env=env, capture_output=True, check=True)  # warm the file cache
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    medians = {}
    print(f"{'command':55s} {'median s':>9s} {'min s':>7s} {'max s':>7s}")
    for label, command in COMMANDS.items():
        times = wall_times(command, args.repeat)
        medians[label] = statistics.median(times)
        print(f"{label:55s} {medians[label]:9.3f} {min(times):7.3f} {max(times):7.3f}")
    torch_time = medians["python -c 'import torch'"]
    print()
    for label in list(COMMANDS)[:3]:
        verdict = "meets" if medians[label] < TARGET_SECONDS else "MISSES"
        print(f"{label}: {medians[label]:.3f} s, {torch_time / medians[label]:.1f}× faster than importing "
              f"torch; {verdict} the {TARGET_SECONDS} s target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
