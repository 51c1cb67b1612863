"""The GPU check in one short call: counts, peaks, latency and the roofline on a CUDA card.

    PYTHONPATH=$PWD python benchmarks/gpu_check.py [--output-dir DIR] [--budget-s 150]

Parts, in order (each timed; the whole is meant to take well under 3 minutes):
1. counts: costlab's analytic MACs against ``torch.utils.flop_counter`` ÷ 2 on the built modules of the
   canonical cases and of ResNet-50 and MobileNet v2 — on the meta device (needs no GPU), then on the card;
2. the card's roofline peaks (matrix product and copy), as ``costlab calibrate --device cuda`` measures them;
3. the two canonical latency reports (inception bottleneck, depthwise-separable 512 → 512 at 14×14) on
   the card at batch 1, and both cases again at batch 32 (where a GPU is busy enough to approach its roofline);
4. whole-model latency of ResNet-50 and MobileNet v2 at batch 1 and 32, and ResNet-50 per layer at batch 32
   (skipped when the time budget is spent);
5. memory: costlab's predicted inference and Adam training-step peaks — the layer graph's liveness
   (foreach Adam, CUDA's default) and the built module's forward followed on the meta device — against
   ``torch.cuda.max_memory_allocated`` of that module's own forward for ResNet-50 and MobileNet v2 at
   batch 1 and 32 (the dry run measures batch 1 with MemTracker on the CPU instead);
6. ``--predict cuda``: a kernel calibration of the card (``costlab calibrate --device cuda``'s, within
   ``--predict-budget-s``), then ``benchmarks/bench_latency_prediction.py``'s models predicted and
   measured on the card at batch 1 and 8: the share within ±10 % and ±25 %, the median error, the rank
   correlation (``--predict-models N`` takes the first N; the dry run: 4 models at batch 1, a 10 s
   calibration). Its figures go to ``gpu-check.md``, every point to ``latency-prediction-cuda.json``.

It writes to DIR (default: $OUT when that is set, else reports/gpu/), every file naming the card:
``gpu-check.md`` (summary), ``gpu-check.json`` (everything, the JSON contract per comparison),
``latency-inception-cuda.md`` and ``latency-separable-cuda.md``. ``--cpu-dry-run`` runs every part on
the CPU (batches 1 and 2) to try the script without a GPU; its files say so in their title.

Without CUDA it runs part 1 on the meta device, prints it, says plainly that the GPU parts need a CUDA
device, writes nothing and exits 2. Exit 1 when a count disagrees; 0 when all is done.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from tabulate import tabulate  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from costlab.core.analysis import Analysis, Comparison  # noqa: E402
from costlab.app.request import Request  # noqa: E402
from costlab.app.targets import analyze_target  # noqa: E402
from costlab.torch_bridge.build import build_module  # noqa: E402

COUNT_TARGETS = (("conv5x5:32", (192, 28, 28)), ("conv1x1:16 > conv5x5:32", (192, 28, 28)),
                 ("conv3x3:512", (512, 14, 14)), ("dw3x3 > pw:512", (512, 14, 14)),
                 ("resnet50", (3, 224, 224)), ("mobilenet-v2", (3, 224, 224)))
MODELS = ("resnet50", "mobilenet-v2")
BATCHES = (1, 32)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def torch_macs(analysis: Analysis, device: str) -> int:
    """MACs by PyTorch's own counter (FLOPs ÷ 2) on the module built from the analysis."""
    module = build_module(analysis, device)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        module(torch.empty((analysis.batch,) + tuple(analysis.input), device=device))
    return counter.get_total_flops() // 2


def counts_part(devices: list[str]) -> tuple[list[dict[str, Any]], bool]:
    rows, agree = [], True
    for text, shape in COUNT_TARGETS:
        analysis = analyze_target(Request.of(text, shape))
        row: dict[str, Any] = {"target": text, "input": list(shape), "costlab_macs": analysis.macs}
        for device in devices:
            row[f"torch_macs_{device}"] = torch_macs(analysis, device)
            agree &= row[f"torch_macs_{device}"] == analysis.macs
        rows.append(row)
    return rows, agree


def counts_table(rows: list[dict[str, Any]]) -> str:
    headers = list(rows[0])
    return tabulate([[f"{v:,}" if isinstance(v, int) else str(v) for v in row.values()] for row in rows],
                    headers=headers, tablefmt="github", disable_numparse=True)


MEMORY_HEADERS = ["model@batch", "prediction", "inference predicted", "measured", "ratio", "training predicted (Adam)",
                  "measured", "ratio"]


def memory_part(device: str, batches: tuple[int, ...]) -> list[list[str]]:
    """Predicted against measured peaks of each preset's built module, called as a plain module(x):
    max_memory_allocated on CUDA, MemTracker on the CPU. Two predictions: the layer graph's liveness
    (foreach Adam on CUDA), and the module's forward followed on the meta device (CPU kernels and the
    single-tensor Adam: on a card a lower bound by the foreach temporaries and workspaces)."""
    from costlab.analyses.memory import memory
    from costlab.torch_bridge.build import build_module, example_input
    from costlab.torch_bridge.lifetimes import follow_memory
    from costlab.torch_bridge.memory import measure_analysis, measure_cuda_allocated

    rows = []
    for name in MODELS:
        for batch in batches:
            analysis = analyze_target(Request.of(name, batch=batch))
            if device == "cuda":
                liveness = memory(analysis, "adam", implementation="foreach")
                measured = measure_cuda_allocated(analysis, "adam")
            else:
                liveness = memory(analysis, "adam")
                measured = measure_analysis(analysis, "adam")
            followed = follow_memory(build_module(analysis, device="meta"),
                                     (example_input(analysis, device="meta"),), {}, "adam")
            for label, inference, training in (("liveness", liveness.inference_peak, liveness.training_peak),
                                               ("followed", followed.inference_peak, followed.training_peak)):
                rows.append([f"{name}@{batch}", label, f"{inference:,}", f"{measured.inference_peak:,}",
                             f"{inference / measured.inference_peak:.3f}", f"{training:,}",
                             f"{measured.training_peak:,}", f"{training / measured.training_peak:.3f}"])
                log("  " + "  ".join(rows[-1]))
    return rows


def predict_part(device: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Part 6: calibrate the kernel families on ``device``, then predict and measure the hit-rate
    benchmark's models there (benchmarks/bench_latency_prediction.py's functions)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_latency_prediction as bench
    from costlab.torch_bridge.calibration import measure_calibration

    dry = device == "cpu"
    budget = args.predict_budget_s or (10.0 if dry else 60.0)
    calibration = measure_calibration(device, None, "float32", budget)
    specs = bench.model_specs(quick=dry)
    limit = args.predict_models or (4 if dry else None)
    specs = specs[:limit] if limit else specs
    batches = (1,) if dry else (1, 8)
    points, failed = [], []
    threads = torch.get_num_threads()
    for name, kind, make, shape in specs:
        try:
            made = make()
            for batch in batches:
                point = bench.measure_point(name, made, shape, batch, calibration, threads, 0.2, device)
                point["kind"] = kind
                points.append(point)
        except Exception as error:  # reported, never hidden
            failed.append((name, f"{type(error).__name__}: {' '.join(str(error).split())[:200]}"))
    result = {"calibration": calibration.identity(), "budget_s": budget, "points": points, "failed": failed,
              "figures": [bench.figures(points, "costlab"), bench.figures(points, "torch_benchmark")]}
    (out / f"latency-prediction-{device}.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    lines = [f"Calibration: {len(calibration.samples)} layers of {len(calibration.models)} kernel families in "
             f"{calibration.seconds:.0f} s; {len({p['model'] for p in points})} models at batch "
             f"{', '.join(map(str, batches))}."]
    lines += [f"- {line}" for line in bench.summary_lines(result)]
    if failed:
        lines.append("Not measured: " + "; ".join(f"{m} ({e})" for m, e in failed))
    return {"text": "\n".join(lines), "figures": result["figures"]}


def default_output_dir() -> Path:
    return Path(os.environ["OUT"]) if os.environ.get("OUT") else ROOT / "reports" / "gpu"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=None)
    parser.add_argument("--budget-s", type=float, default=150.0,
                        help="skip the optional last part once this many seconds have passed")
    parser.add_argument("--predict-budget-s", type=float, default=None,
                        help="part 6: the kernel calibration's budget (default 60 on a card, 10 in the dry run)")
    parser.add_argument("--predict-models", type=int, default=None,
                        help="part 6: only the first N models (default all on a card, 4 in the dry run)")
    parser.add_argument("--cpu-dry-run", action="store_true",
                        help="run every part on the CPU instead (batches 1 and 2) to try the script "
                             "where there is no GPU; its files say so and hold no GPU figure")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    device = "cpu" if args.cpu_dry_run else "cuda"
    batches = (1, 2) if args.cpu_dry_run else BATCHES

    log("part 1: counts on the meta device (no GPU needed)")
    rows, agree = counts_part(["meta"])
    if device == "cuda" and not torch.cuda.is_available():
        print(counts_table(rows))
        print(f"\ncounts {'agree' if agree else 'DISAGREE'}: costlab's analytic MACs against "
              "torch.utils.flop_counter ÷ 2 on the meta device")
        built = "built without CUDA" if torch.version.cuda is None else "no GPU visible"
        print(f"gpu_check: error: no CUDA device here (torch {torch.__version__}, {built}); the GPU parts "
              "(peaks, latency and roofline on the card) need one. Nothing written.", file=sys.stderr)
        return 2

    from costlab.torch_bridge.latency import LatencySettings, measure_latency
    from costlab.app.latency_report import LATENCY_CASES, case_markdown, measure_case
    from costlab.torch_bridge.roofline import calibrate

    card = torch.cuda.get_device_name() if device == "cuda" else "CPU DRY RUN, not a GPU result"
    out = args.output_dir or default_output_dir()
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(tempfile.mkdtemp(prefix="costlab-gpu-check-")) / "peaks.json"  # not the user's cache
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        timings[name] = time.perf_counter() - since
        log(f"  {name}: {timings[name]:.1f} s")
        return time.perf_counter()

    t = time.perf_counter()
    log(f"part 1b: counts on the card ({card})")
    rows, agree = counts_part(["meta", device])
    t = lap("counts", t)

    log("part 2: peaks")
    peaks, _ = calibrate(device, None, "float32", path=cache)
    t = lap("peaks", t)

    log("part 3: the canonical cases")
    reports: dict[str, Comparison] = {}
    for name, case in LATENCY_CASES.items():
        for batch in batches:
            reports[f"{name}@{batch}"] = measure_case(case, device, batch=batch, peaks=peaks)
        text = case_markdown(case, reports[f"{name}@1"],
                             "python benchmarks/gpu_check.py (on a CUDA machine)")
        (out / case.filename.replace(".md", f"-{device}.md")).write_text(text, encoding="utf-8")
    t = lap("canonical cases", t)

    log("part 4: whole models")
    models: dict[str, Analysis] = {}
    for name in MODELS:
        for batch in batches:
            analysis = analyze_target(Request.of(name, batch=batch))
            models[f"{name}@{batch}"] = measure_latency(
                analysis, LatencySettings(device=device, per_layer=False), peaks=peaks)
    t = lap("whole models", t)
    if time.perf_counter() - started < args.budget_s:
        big = batches[-1]
        models[f"resnet50@{big} per layer"] = measure_latency(analyze_target(Request.of("resnet50", batch=big)),
                                                              LatencySettings(device=device), peaks=peaks)
        t = lap("resnet50 per layer", t)
    else:
        log("  resnet50 per layer: skipped (budget spent)")

    log("part 5: memory, predicted against measured")
    memory_rows = memory_part(device, batches if device == "cuda" else batches[:1])  # MemTracker on CPU is slow
    t = lap("memory", t)

    log(f"part 6: --predict {device}: a kernel calibration, then predicted against measured")
    prediction = predict_part(device, args, out)
    t = lap("prediction", t)

    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    versions = (f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}; "
                f"{peaks.notes or 'TF32 not applicable'}")
    case_rows = []
    for key, comparison in reports.items():
        base, cheap = comparison.targets
        case_rows.append([key, f"{base.macs / cheap.macs:.2f}×",
                          f"{base.latency.median / cheap.latency.median:.2f}×",
                          f"{base.roofline.predicted_ms / cheap.roofline.predicted_ms:.2f}×",
                          f"{base.latency.median:.4f} / {cheap.latency.median:.4f}",
                          f"{100 * base.roofline.fraction:.0f} % / {100 * cheap.roofline.fraction:.0f} %",
                          "yes" if base.latency.noisy or cheap.latency.noisy else "no"])
    model_rows = [[key, f"{a.macs:,}", f"{a.latency.median:.3f} ± {a.latency.iqr:.3f}",
                   f"{a.roofline.achieved_gflops:.0f}", "yes" if a.latency.noisy else "no"]
                  for key, a in models.items()]
    summary = [
        f"# GPU check: {card}", "",
        f"Measured {when}; {versions}. Run: `python benchmarks/gpu_check.py"
        f"{' --cpu-dry-run' if args.cpu_dry_run else ''}`, {time.perf_counter() - started:.0f} s.",
        "", "## Counts: costlab's analytic MACs against torch.utils.flop_counter ÷ 2", "", counts_table(rows), "",
        f"All agree: {'yes' if agree else 'NO'}.",
        "", "## Roofline peaks of the card", "",
        f"{peaks.gflops:,.0f} GFLOP/s (float32 {peaks.matmul_size}² matrix product), {peaks.gbps:,.0f} GB/s "
        f"(copy of {peaks.copy_bytes / 2**20:.0f} MiB, read + write); ridge {peaks.ridge:.1f} FLOP/B.",
        "", "## The canonical cases (MAC ratio beside measured latency ratio, same run)", "",
        tabulate(case_rows, headers=["case@batch", "MAC ratio", "latency ratio", "roofline ratio",
                                     "ms (baseline / cheaper)", "of roofline", "noisy"],
                 tablefmt="github", disable_numparse=True),
        "", "## Whole models", "",
        tabulate(model_rows, headers=["model@batch", "MACs", "ms (median ± IQR)", "achieved GFLOP/s", "noisy"],
                 tablefmt="github", disable_numparse=True),
        "", "## Memory: predicted against measured (bytes; ratio = predicted ÷ measured)", "",
        ("Measured by `torch.cuda.max_memory_allocated` (tensors rounded to 512-byte blocks, cuDNN "
         "workspaces included); predicted for the foreach Adam and 1-byte dropout masks."
         if device == "cuda" else "CPU dry run: measured by MemTracker on the CPU."), "",
        tabulate(memory_rows, headers=MEMORY_HEADERS, tablefmt="github", disable_numparse=True),
        "", f"## Predicted latency (`--predict {device}`): whole models against measured", "",
        prediction["text"],
        "", "Per-part time: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()) + ".",
    ]
    (out / "gpu-check.md").write_text("\n".join(summary) + "\n", encoding="utf-8")
    payload = {"card": card, "measured_at": when, "versions": versions, "counts": rows, "counts_agree": agree,
               "peaks": peaks.to_dict(), "timings_s": timings,
               "cases": {k: c.to_dict() for k, c in reports.items()},
               "models": {k: a.to_dict() for k, a in models.items()},
               "memory": [dict(zip(MEMORY_HEADERS, row)) for row in memory_rows],
               "prediction": prediction["figures"]}
    (out / "gpu-check.json").write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    print("\n".join(summary))
    log(f"wrote {out}/gpu-check.md, gpu-check.json and the two latency-*-{device}.md reports")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
