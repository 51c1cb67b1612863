"""How repeatable is a latency measurement? The same measurement, several times, and how far its medians spread.

    PYTHONPATH=$PWD python benchmarks/bench_latency_stability.py [--repeats 5] [--threads N] [--device cpu]

Each round measures every target once (whole target, costlab's default timing settings), the
rounds interleaved so that a drift of the machine touches all targets alike. For each target it
prints the medians of the rounds and their spread, (max − min) / median of the medians; the
design's target is within 5 %. The 1-minute load average is printed before and after, and the
lowest CPU share of each target's rounds (process CPU time ÷ (wall × threads)): other work on the
machine is the usual cause of a wide spread. A round whose CPU share is below --min-cpu-share (75 %)
is measured again, up to --attempts times, and the count of such re-measurements is printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from tabulate import tabulate

from costlab.targets import analyze_target
from costlab.torch_bridge.latency import LatencySettings, current_threads, measure_latency
from costlab.torch_bridge.roofline import peaks_for
from costlab.torch_bridge.timing import cpu_model

TARGETS = (
    ("conv5x5:32", (192, 28, 28)),
    ("conv1x1:16 > conv5x5:32", (192, 28, 28)),
    ("conv3x3:512", (512, 14, 14)),
    ("dw3x3 > pw:512", (512, 14, 14)),
    ("resnet18", (3, 224, 224)),
)
TARGET_SPREAD = 0.05


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--min-cpu-share", type=float, default=0.75,
                        help="measure a round again (up to --attempts times) while the process got less than "
                             "this share of its threads' CPU time (0 to keep every round as measured)")
    parser.add_argument("--attempts", type=int, default=5)
    args = parser.parse_args(argv)
    threads = args.threads or current_threads()
    settings = LatencySettings(device=args.device, threads=threads, per_layer=False)
    analyses = [analyze_target(text, shape) for text, shape in TARGETS]
    peaks = peaks_for(args.device, threads, "float32")
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    medians: dict[str, list[float]] = {a.name: [] for a in analyses}
    noisy: dict[str, int] = {a.name: 0 for a in analyses}
    shares: dict[str, list[float]] = {a.name: [] for a in analyses}
    retries = 0
    for round_ in range(args.repeats):
        for analysis in analyses:
            for _ in range(args.attempts):
                timed = measure_latency(analysis, settings, peaks=peaks)
                if (timed.latency.get("cpu_share") or 1.0) >= args.min_cpu_share:
                    break
                retries += 1
            medians[analysis.name].append(timed.latency["median"])
            noisy[analysis.name] += bool(timed.latency["noisy"])
            if timed.latency.get("cpu_share") is not None:
                shares[analysis.name].append(timed.latency["cpu_share"])
        print(f"round {round_ + 1}/{args.repeats} done", file=sys.stderr)
    rows, worst = [], 0.0
    for name, values in medians.items():
        centre = statistics.median(values)
        spread = (max(values) - min(values)) / centre
        deviation = max(abs(v - centre) for v in values) / centre
        worst = max(worst, spread)
        rows.append([name, " ".join(f"{v:.3f}" for v in values), f"{centre:.3f}", f"{100 * spread:.1f} %",
                     f"{100 * deviation:.1f} %",
                     f"{100 * statistics.pstdev(values) / statistics.mean(values):.1f} %", noisy[name],
                     f"{100 * min(shares[name]):.0f} %" if shares[name] else "–"])
    print(f"Latency stability on {args.device} ({cpu_model() if args.device == 'cpu' else args.device}), "
          f"{threads} thread(s), {args.repeats} rounds, {time.perf_counter() - started:.0f} s; "
          f"1-minute load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    print()
    print(tabulate(rows, headers=["target", "medians (ms)", "median", "spread (max−min)/median",
                                  "farthest from median",
                                  "stdev/mean", "noisy rounds", "lowest CPU share"], disable_numparse=True))
    print()
    verdict = "within" if worst <= TARGET_SPREAD else "OUTSIDE"
    print(f"widest spread {100 * worst:.1f} %: {verdict} the {100 * TARGET_SPREAD:.0f} % target")
    print(f"{retries} measurement(s) taken again because other work held the CPU (CPU share below "
          f"{100 * args.min_cpu_share:.0f} %)")
    lowest = min((v for values in shares.values() for v in values), default=1.0)
    if lowest < 0.75:
        print(f"lowest CPU share {100 * lowest:.0f} %: other work ran on the machine during some rounds; "
              "their medians measure that, not the module")
    return 0


if __name__ == "__main__":
    sys.exit(main())
