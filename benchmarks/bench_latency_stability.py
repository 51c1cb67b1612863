"""How repeatable is a latency measurement? The same measurement, several times, and how far its medians spread.

    PYTHONPATH=$PWD python benchmarks/bench_latency_stability.py [--repeats 5] [--threads N] [--device cpu]
    PYTHONPATH=$PWD python benchmarks/bench_latency_stability.py --hog 2 --repeats 2   # under a CPU hog

Each round measures every target once (whole target, costlab's default timing settings), the
rounds interleaved so that a drift of the machine touches all targets alike. For each target it
prints the medians of the rounds and their spread, (max − min) / median of the medians; the
design's target is within 5 %. The 1-minute load average is printed before and after, and the
lowest CPU share of each target's rounds (process CPU time ÷ (wall × threads)): other work on the
machine is the usual cause of a wide spread.

Starved measurements: costlab itself takes a CPU measurement again while its run share (time its
threads ran ÷ time they were ready to run, from the scheduler) is below --min-cpu-share (75 %), up
to --attempts times, and marks the one it keeps noisy, with the reason, when every attempt was
starved. With --hog N, N processes spin on the CPU for the whole run (each stops by itself after
--hog-seconds at the latest), so that measurements are starved on purpose; the benchmark then
checks, for every measurement, that a starved one was redone or flagged, and prints the count of
each and of any starved measurement left unflagged (the target: none).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time

from tabulate import tabulate

from costlab.app.request import Request
from costlab.app.targets import analyze_target
from costlab.torch_bridge.latency import LatencySettings, current_threads, measure_latency
from costlab.torch_bridge.roofline import peaks_for
from costlab.torch_bridge.timing import TimingSettings, cpu_model

TARGETS = (
    ("conv5x5:32", (192, 28, 28)),
    ("conv1x1:16 > conv5x5:32", (192, 28, 28)),
    ("conv3x3:512", (512, 14, 14)),
    ("dw3x3 > pw:512", (512, 14, 14)),
    ("resnet18", (3, 224, 224)),
)
TARGET_SPREAD = 0.05


def _spin(deadline: float) -> None:
    """A CPU hog: busy until ``deadline`` (wall clock), then exits by itself."""
    while time.time() < deadline:
        pass


def start_hogs(count: int, seconds: float) -> list[multiprocessing.Process]:
    deadline = time.time() + seconds
    hogs = [multiprocessing.Process(target=_spin, args=(deadline,), daemon=True) for _ in range(count)]
    for hog in hogs:
        hog.start()
    return hogs


def stop_hogs(hogs: list[multiprocessing.Process]) -> None:
    for hog in hogs:
        hog.terminate()
    for hog in hogs:
        hog.join(timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--min-cpu-share", type=float, default=0.75,
                        help="a measurement is starved, and taken again (up to --attempts times), while its threads "
                             "ran less than this share of the time they were ready to run (0: never)")
    parser.add_argument("--attempts", type=int, default=3)
    parser.add_argument("--hog", type=int, default=0, metavar="N",
                        help="spin N processes on the CPU while measuring (a deliberate CPU hog)")
    parser.add_argument("--hog-seconds", type=float, default=600.0,
                        help="the hog processes stop by themselves after this long at the latest")
    parser.add_argument("--targets", type=int, default=len(TARGETS), help="measure only the first N targets")
    args = parser.parse_args(argv)
    threads = args.threads or current_threads()
    base = LatencySettings().target_timing or TimingSettings()
    target_timing = TimingSettings(**{**base.__dict__, "min_run_share": args.min_cpu_share,
                                      "attempts": args.attempts})
    settings = LatencySettings(device=args.device, threads=threads, per_layer=False, target_timing=target_timing)
    analyses = [analyze_target(Request.of(text, shape)) for text, shape in TARGETS[:args.targets]]
    peaks = peaks_for(args.device, threads, "float32")
    hogs = start_hogs(args.hog, args.hog_seconds) if args.hog else []
    try:
        return _measure(args, threads, settings, analyses, peaks)
    finally:
        stop_hogs(hogs)


def _measure(args: argparse.Namespace, threads: int, settings: LatencySettings, analyses: list, peaks: object) -> int:
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    medians: dict[str, list[float]] = {a.name: [] for a in analyses}
    noisy: dict[str, int] = {a.name: 0 for a in analyses}
    shares: dict[str, list[float]] = {a.name: [] for a in analyses}
    retries = 0
    measurements: list[dict] = []
    for round_ in range(args.repeats):
        for analysis in analyses:
            timed = measure_latency(analysis, settings, peaks=peaks)
            entry = timed.latency.to_dict()
            retries += entry["attempts"] - 1
            measurements.append(entry)
            medians[analysis.name].append(timed.latency.median)
            noisy[analysis.name] += bool(timed.latency.noisy)
            if timed.latency.cpu_share is not None:
                shares[analysis.name].append(timed.latency.cpu_share)
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
    hog = f", under a CPU hog of {args.hog} spinning process(es)" if args.hog else ""
    print(f"Latency stability on {args.device} ({cpu_model() if args.device == 'cpu' else args.device}), "
          f"{threads} thread(s), {args.repeats} rounds{hog}, {time.perf_counter() - started:.0f} s; "
          f"1-minute load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    print()
    print(tabulate(rows, headers=["target", "medians (ms)", "median", "spread (max−min)/median",
                                  "farthest from median",
                                  "stdev/mean", "noisy rounds", "lowest CPU share"], disable_numparse=True))
    print()
    verdict = "within" if worst <= TARGET_SPREAD else "OUTSIDE"
    print(f"widest spread {100 * worst:.1f} %: {verdict} the {100 * TARGET_SPREAD:.0f} % target")
    print(f"{retries} measurement(s) taken again because other work held the CPU (run share below "
          f"{100 * args.min_cpu_share:.0f} %)")
    starved_first = [m for m in measurements if m["attempts"] > 1 or m.get("noisy_reason", "") and
                     "starved" in (m.get("noisy_reason") or "")]
    redone_settled = [m for m in starved_first if "starved" not in (m.get("noisy_reason") or "")]
    flagged = [m for m in measurements if m["noisy"] and "starved" in (m.get("noisy_reason") or "")]
    unflagged = [m for m in measurements if m.get("run_share") is not None and m["run_share"] < args.min_cpu_share
                 and not m["noisy"]]
    unknown = [m for m in measurements if m.get("run_share") is None]
    shares_text = " ".join(f"{100 * m['run_share']:.0f}%" for m in measurements if m.get("run_share") is not None)
    print(f"{len(measurements)} measurements; run shares kept: {shares_text or 'not known here'}")
    print(f"starved at first: {len(starved_first)}; redone until not starved: {len(redone_settled)}; "
          f"starved in every attempt and flagged noisy with the reason: {len(flagged)}; "
          f"starved and NOT flagged: {len(unflagged)} (target 0)"
          + (f"; {len(unknown)} without a run share (no schedstat here)" if unknown else ""))
    if flagged:
        print(f"a flagged one: {flagged[0]['noisy_reason']}")
    lowest = min((v for values in shares.values() for v in values), default=1.0)
    if lowest < 0.75:
        print(f"lowest CPU share {100 * lowest:.0f} %: other work ran on the machine during some rounds; "
              "their medians measure that, not the module")
    return 1 if unflagged else 0


if __name__ == "__main__":
    sys.exit(main())
