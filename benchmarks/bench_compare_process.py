"""`costlab compare` as a whole process, beside its floors, in the same run.

Targets: under 0.5 s on a 2-core machine, where importing torch alone takes 2–3 s (design.md);
and within 1.5× of the floor of any Python CLI that renders a table,
`python -c "import json, argparse, tabulate"` (issue 13), on expressions; design.md asks for 1.2×,
on expressions and presets. The commands are run interleaved, round after round, so that load on
the machine falls on all of them alike, and each is timed twice: by the wall clock and by the CPU
time it took (user + system, from the OS), which load on other cores disturbs less.

Every process reads its modules from their bytecode caches, as an installed package does (pip
compiles them at install; an editable install writes __pycache__ on its first run): the warm-up run
writes them, even where PYTHONDONTWRITEBYTECODE is set in the environment. Under that variable
with no cache yet, every costlab module is compiled from source on every run while the floor's
tabulate loads from site-packages' cache; ``--no-bytecode-cache`` measures that way (costlab's
caches only are left unwritten; an existing one is still read).
Run from the repository root:  python benchmarks/bench_compare_process.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 0.5
TARGET_FLOOR_RATIO = 1.2
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


def child_environment(bytecode_cache: bool) -> dict[str, str]:
    """The benchmark's environment: the checkout on PYTHONPATH; bytecode caches written (or not)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if bytecode_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system) of one run of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, capture_output=True, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def timings(commands: dict[str, list[str]], repeat: int, bytecode_cache: bool = True
            ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Each command ``repeat`` times, interleaved (one of each per round), after one warm-up run each
    (which fills the file cache and writes the bytecode caches): wall and CPU seconds per command."""
    env = child_environment(bytecode_cache)
    for command in commands.values():
        subprocess.run(command, cwd=ROOT, env=env, capture_output=True, check=True)
    wall: dict[str, list[float]] = {label: [] for label in commands}
    cpu: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(repeat):
        for label, command in commands.items():
            seconds, cpu_seconds = run_timed(command, env)
            wall[label].append(seconds)
            cpu[label].append(cpu_seconds)
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="compile costlab's modules from source on every run (PYTHONDONTWRITEBYTECODE=1)")
    args = parser.parse_args()
    wall, cpu = timings(COMMANDS, args.repeat, bytecode_cache=not args.no_bytecode_cache)
    print(f"bytecode caches: {'not written (--no-bytecode-cache)' if args.no_bytecode_cache else 'written and read'}; "
          f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"{'command':62s} {'median s':>9s} {'min s':>7s} {'max s':>7s} {'CPU s':>7s}")
    for label, values in wall.items():
        print(f"{label:62s} {statistics.median(values):9.3f} {min(values):7.3f} {max(values):7.3f} "
              f"{statistics.median(cpu[label]):7.3f}")
    medians = {label: statistics.median(values) for label, values in wall.items()}
    cpu_medians = {label: statistics.median(values) for label, values in cpu.items()}
    torch_time = medians["python -c 'import torch'"]
    floor, cpu_floor = medians[FLOOR], cpu_medians[FLOOR]
    print()
    for label in [label for label in COMMANDS if label.startswith("costlab")]:
        verdict = "meets" if medians[label] < TARGET_SECONDS else "MISSES"
        ratio, cpu_ratio = medians[label] / floor, cpu_medians[label] / cpu_floor
        floor_verdict = "meets" if max(ratio, cpu_ratio) <= TARGET_FLOOR_RATIO else "MISSES"
        print(f"{label}: {medians[label]:.3f} s, {torch_time / medians[label]:.1f}× faster than importing "
              f"torch ({verdict} the {TARGET_SECONDS} s target); {ratio:.2f}× the table-CLI floor by the wall "
              f"clock, {cpu_ratio:.2f}× by CPU time ({floor_verdict} the {TARGET_FLOOR_RATIO}× target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
