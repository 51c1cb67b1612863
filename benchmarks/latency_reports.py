"""Regenerate reports/latency-inception.md and reports/latency-separable.md (measured latency).

    PYTHONPATH=$PWD python benchmarks/latency_reports.py [--device cpu|cuda] [--threads N] [--output-dir reports]

Both targets of a report are counted and timed in the same run; the machine is named in it. On the CPU a
report is measured again (up to --attempts times) while a target got less than --min-cpu-share of its
threads' CPU time — other work on the machine — and nothing is written if it never does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from costlab.core.errors import CostlabError
from costlab.app.latency_report import LATENCY_CASES, case_measurement_count, latency_report, report_filename
from costlab.torch_bridge.roofline import peaks_for

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--output-dir", type=Path, default=ROOT / "reports")
    parser.add_argument("--cases", nargs="*", default=list(LATENCY_CASES), choices=list(LATENCY_CASES))
    parser.add_argument("--recalibrate", action="store_true", help="measure the peaks afresh first")
    parser.add_argument("--min-cpu-share", type=float, default=0.75,
                        help="on the CPU, measure a report again (up to --attempts times) while a target's "
                             "process got less than this share of its threads' time: other work was running")
    parser.add_argument("--attempts", type=int, default=3)
    args = parser.parse_args(argv)
    command = "PYTHONPATH=$PWD python benchmarks/latency_reports.py --device " + args.device
    if args.threads:
        command += f" --threads {args.threads}"
    try:
        if args.recalibrate:
            from costlab.torch_bridge.roofline import calibrate

            peaks = calibrate(args.device, args.threads)[0]
        else:
            peaks = peaks_for(args.device, args.threads, "float32")
        from costlab.torch_bridge.calibration import cached_calibration

        calibration = cached_calibration(args.device, args.threads, "float32")  # the predicted ratio, if cached
        total = sum(case_measurement_count(LATENCY_CASES[name]) for name in args.cases)
        with tqdm(total=total, desc=f"latency reports on {args.device}", file=sys.stderr, leave=False) as bar:
            def advance(label: str) -> None:
                bar.set_postfix_str(label, refresh=False)
                bar.update(1)
            texts = {report_filename(LATENCY_CASES[name], args.device):
                     latency_report(name, args.device, args.threads, peaks=peaks, progress=advance,
                                    command=command, min_cpu_share=args.min_cpu_share, attempts=args.attempts,
                                    calibration=calibration)
                     for name in args.cases}
    except CostlabError as error:
        print(f"latency_reports: error: {error}", file=sys.stderr)
        return 2
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for filename, text in texts.items():
        path = args.output_dir / filename
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
