"""`costlab compare` as a whole process, beside its floors, in the same run.

Targets: under 0.5 s on a 2-core machine, where importing torch alone takes 2–3 s (design.md);
and within 1.5× of the floor of any Python CLI that renders a table,
`python -c "import json, argparse, tabulate"` (issue 13), on expressions. The commands are run
interleaved, round after round, so that load on the machine falls on all of them alike.
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
TARGET_FLOOR_RATIO = 1.5
FLOOR = "python -c 'import json, argparse, tabulate' (table CLI floor)"

COMMANDS = {
    "costlab compare (default case)": [sys.executable, "-m", "costlab", "compare"],
    "costlab compare 3 expressions --per-layer": [
        sys.executable, "-m", "costlab", "compare", "conv5x5:32", "conv1x1:16 > conv5x5:32",
        "(conv1x1:64 | conv1x1:96 > conv3x3:128 | conv1x1:16 > conv5x5:32 | maxpool3x3,s1,same > pw:32)",
        "--input", "192x28x28", "--per-layer"],
    "costlab compare resnet50 mobilenet-v2 --format json": [
        sys.executable, "-m", "costlab", "compare", "resnet50", "mobilenet-v2", "--format", "json"],
    "costlab compare 2 expressions --format json": [
        sys.executable, "-m", "costlab", "compare", "conv5x5:32", "conv1x1:16 > conv5x5:32", "--input",
        "192x28x28", "--format", "json"],
    FLOOR: [sys.executable, "-c", "import json, argparse, tabulate"],
    "python -c 'import torch'": [sys.executable, "-c", "import torch"],
    "python -c 'pass' (interpreter start)": [sys.executable, "-c", "pass"],
}


def wall_times(commands: dict[str, list[str]], repeat: int) -> dict[str, list[float]]:
    """Each command ``repeat`` times, interleaved (one of each per round), after one warm-up run each."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for command in commands.values():
        subprocess.run(command, cwd=ROOT, env=env, capture_output=True, check=True)  # warm the file cache
    times: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(repeat):
        for label, command in commands.items():
            start = time.perf_counter()
            subprocess.run(command, cwd=ROOT, env=env, capture_output=True, check=True)
            times[label].append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    times = wall_times(COMMANDS, args.repeat)
    medians = {label: statistics.median(values) for label, values in times.items()}
    print(f"{'command':62s} {'median s':>9s} {'min s':>7s} {'max s':>7s}")
    for label, values in times.items():
        print(f"{label:62s} {medians[label]:9.3f} {min(values):7.3f} {max(values):7.3f}")
    torch_time = medians["python -c 'import torch'"]
    floor = medians[FLOOR]
    print()
    for label in [label for label in COMMANDS if label.startswith("costlab")]:
        verdict = "meets" if medians[label] < TARGET_SECONDS else "MISSES"
        ratio = medians[label] / floor
        floor_verdict = "meets" if ratio <= TARGET_FLOOR_RATIO else "MISSES"
        print(f"{label}: {medians[label]:.3f} s, {torch_time / medians[label]:.1f}× faster than importing "
              f"torch ({verdict} the {TARGET_SECONDS} s target); {ratio:.2f}× the table-CLI floor "
              f"({floor_verdict} the {TARGET_FLOOR_RATIO}× target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
