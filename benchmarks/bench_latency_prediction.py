"""The hit rate of --predict: whole models predicted from a kernel calibration against measured.

    PYTHONPATH=$PWD /work/zoo/bin/python benchmarks/bench_latency_prediction.py [--quick] [--models N]
        [--budget SECONDS] [--cached] [--batches 1,8] [--json PATH] [--report reports/latency-prediction.md]

1. Calibrates this machine (``costlab calibrate``'s measurement, ``--budget`` seconds, default its own
   default; ``--cached`` reads the cached calibration instead) and prints how long it took. The
   calibration times sampled layers of each kernel family, never a whole model.
2. For each model — torchvision and timm CNNs and vision transformers (when the zoo is installed),
   costlab's presets, the course notes' canonical comparisons — at each batch (default 1 and 8):
   predicts its latency from its counts and the calibration (``costlab.analyze(..., predict='cpu',
   calibration=...)``: nothing runs), then measures the module's own forward twice, independently:
   with costlab's timing (``--latency``'s, the whole target) and with ``torch.utils.benchmark``
   (``Timer.blocked_autorange``), both in eval and inference mode at the same thread count.
3. Prints, against each measurement: the share of predictions within ±10 % and ±25 %, the median
   |error|, Spearman's rank correlation of predicted against measured, and the count of
   measurements left out because they were starved (other work held the CPU: the threads ran less
   than 75 % of the time they were ready to run, ``costlab.torch_bridge.timing``'s rule).

Nobody tuned the predictor on these models: the calibration never times a model, and the fitting
reads the calibration alone. The machine's load average is printed before and after.
``--report`` writes the Markdown report with a log-log scatter plot (matplotlib: the ``plot`` extra)
beside it (same name, ``.png``). ``--quick``: 12 models, batch 1, a 60-second calibration.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch.utils import benchmark as torch_benchmark  # noqa: E402

import costlab  # noqa: E402
from costlab.analyses.prediction import Calibration  # noqa: E402
from costlab.torch_bridge import calibration as calibrating  # noqa: E402
from costlab.torch_bridge.latency import LatencySettings, measure_latency  # noqa: E402
from costlab.torch_bridge.timing import DEFAULT_MIN_RUN_SHARE, fixed_threads, run_share, scheduler_times  # noqa: E402

#: The course notes' comparisons (both designs of each).
CANONICAL = (("conv5x5:32", (192, 28, 28)), ("conv1x1:16 > conv5x5:32", (192, 28, 28)),
             ("conv3x3:5,valid", (3, 6, 6)), ("dw3x3,valid > pw:5", (3, 6, 6)),
             ("conv3x3:512", (512, 14, 14)), ("dw3x3 > pw:512", (512, 14, 14)))
PRESETS = ("lenet5", "alexnet", "resnet18", "resnet34", "resnet50", "googlenet", "mobilenet-v1", "mobilenet-v2")
TORCHVISION = ("resnet18", "resnet34", "resnet50", "resnext50_32x4d", "mobilenet_v2", "mobilenet_v3_small",
               "mobilenet_v3_large", "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "shufflenet_v2_x1_5",
               "squeezenet1_0", "squeezenet1_1", "densenet121", "efficientnet_b0", "efficientnet_b1",
               "mnasnet0_5", "mnasnet1_0", "regnet_x_400mf", "regnet_y_400mf", "regnet_x_800mf",
               "regnet_y_800mf", "googlenet", "alexnet", "convnext_tiny", "swin_t")
TIMM = ("vit_tiny_patch16_224", "deit_tiny_patch16_224", "vit_small_patch16_224", "pit_ti_224",
        "resnet10t", "efficientnet_lite0", "mixnet_s", "ghostnet_100", "lcnet_050", "mobilevit_xxs",
        "levit_128s", "convnext_atto")
QUICK = ("canonical", "preset:resnet18", "preset:mobilenet-v2", "tv:mobilenet_v3_small", "tv:shufflenet_v2_x1_0",
         "tv:squeezenet1_1", "tv:efficientnet_b0", "tv:regnet_y_400mf", "timm:vit_tiny_patch16_224",
         "timm:resnet10t")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} ({os.cpu_count()} CPUs)"


# --- the models -----------------------------------------------------------------------------------

def model_specs(quick: bool) -> list[tuple[str, str, Callable[[], Any], tuple[int, ...]]]:
    """(name, kind, make → an nn.Module or a costlab target text, per-sample input) of each model here."""
    specs: list[tuple[str, str, Callable[[], Any], tuple[int, ...]]] = []
    for text, shape in CANONICAL:
        specs.append((text, "canonical", lambda text=text: text, shape))
    for name in PRESETS:
        specs.append((f"preset:{name}", "preset", lambda name=name: name,
                      (1, 32, 32) if name == "lenet5" else (3, 224, 224)))
    try:
        import torchvision

        for name in TORCHVISION:
            def make(name: str = name) -> Any:
                kwargs = {"aux_logits": False, "init_weights": False} if name == "googlenet" else {}
                return getattr(torchvision.models, name)(weights=None, **kwargs)
            specs.append((f"tv:{name}", "torchvision", make, (3, 224, 224)))
    except ImportError:
        log("torchvision is not installed: its models are left out")
    try:
        import timm

        for name in TIMM:
            specs.append((f"timm:{name}", "timm", lambda name=name: timm.create_model(name, pretrained=False),
                          (3, 224, 224)))
    except ImportError:
        log("timm is not installed: its models are left out")
    if quick:
        specs = [s for s in specs if s[0] in QUICK or (s[1] == "canonical" and "canonical" in QUICK)]
    return specs


# --- measuring ----------------------------------------------------------------------------------------

def torch_benchmark_ms(module: Any, x: torch.Tensor, threads: int, min_run_time: float) -> tuple[float, float | None]:
    """torch.utils.benchmark's median (ms) of the module's forward in inference mode (it synchronises
    CUDA itself), and the run share of this process's threads meanwhile (None on CUDA: not starved)."""
    timer = torch_benchmark.Timer(stmt="with torch.inference_mode():\n    module(x)",
                                  globals={"module": module, "x": x, "torch": torch}, num_threads=threads)
    with torch.inference_mode():
        module(x)
    before = scheduler_times()
    measurement = timer.blocked_autorange(min_run_time=min_run_time)
    share = run_share(before, scheduler_times()) if x.device.type == "cpu" else None
    return measurement.median * 1e3, share


def measure_point(name: str, made: Any, shape: tuple[int, ...], batch: int, calibration: Calibration,
                  threads: int, min_run_time: float, device: str = "cpu") -> dict[str, Any]:
    """One model at one batch on ``device``: predicted, and measured twice."""
    module = made if isinstance(made, torch.nn.Module) else None
    target = module if module is not None else made
    started = time.perf_counter()
    analysis = costlab.analyze(target, input=shape, batch=batch, predict=device, calibration=calibration,
                               threads=threads if device == "cpu" else None)
    predict_s = time.perf_counter() - started
    assert analysis.prediction is not None
    if module is None:  # a preset or an expression: the module costlab builds from it is what runs
        from costlab.torch_bridge.build import build_module

        module = build_module(analysis, torch.device("cpu"))
    module = module.to(device).eval()
    timed = measure_latency(analysis, LatencySettings(device=device, threads=threads if device == "cpu" else None,
                                                      per_layer=False), module=module, peaks=calibration.peaks)
    latency = timed.latency
    assert latency is not None
    x = torch.randn((batch,) + tuple(shape), device=device)
    bench_ms, bench_share = torch_benchmark_ms(module, x, threads, min_run_time)
    min_share = DEFAULT_MIN_RUN_SHARE
    return {"model": name, "batch": batch, "macs": analysis.macs, "layers": len(analysis.layers),
            "predicted_ms": analysis.prediction.total_ms, "fallback_layers": len(analysis.prediction.fallback_layers),
            "predict_s": predict_s,
            "costlab_ms": latency.median, "costlab_iqr_ms": latency.iqr, "costlab_run_share": latency.run_share,
            "costlab_starved": bool(latency.starved),
            "torch_benchmark_ms": bench_ms, "torch_benchmark_run_share": bench_share,
            "torch_benchmark_starved": bench_share is not None and bench_share < min_share}


# --- the figures --------------------------------------------------------------------------------------

def ranks(values: list[float]) -> list[float]:
    """Ranks 1..n, ties sharing their mean rank."""
    order = sorted(range(len(values)), key=values.__getitem__)
    result = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            result[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return result


def spearman(a: list[float], b: list[float]) -> float | None:
    """Pearson's correlation of the ranks."""
    if len(a) < 3:
        return None
    ra, rb = ranks(a), ranks(b)
    ma, mb = statistics.fmean(ra), statistics.fmean(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    var = math.sqrt(sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb))
    return cov / var if var else None


def figures(points: list[dict[str, Any]], measured: str) -> dict[str, Any]:
    """Hit rates, median error and rank correlation against one measurement (starved ones left out)."""
    starved_key = f"{measured}_starved"
    kept = [p for p in points if not p[starved_key]]
    errors = [p["predicted_ms"] / p[f"{measured}_ms"] - 1 for p in kept]
    absolute = [abs(e) for e in errors]
    return {"measurement": measured, "points": len(kept), "starved_left_out": len(points) - len(kept),
            "within_10": sum(e <= 0.10 for e in absolute) / len(kept) if kept else None,
            "within_25": sum(e <= 0.25 for e in absolute) / len(kept) if kept else None,
            "median_abs_error": statistics.median(absolute) if kept else None,
            "median_signed_error": statistics.median(errors) if kept else None,
            "spearman": spearman([p["predicted_ms"] for p in kept], [p[f"{measured}_ms"] for p in kept])}


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f} %"


def summary_lines(summary: dict[str, Any]) -> list[str]:
    lines = []
    for f in summary["figures"]:
        rho = "–" if f["spearman"] is None else f"{f['spearman']:.3f}"
        lines.append(f"against {f['measurement']}: {f['points']} measurements ({f['starved_left_out']} starved, left "
                     f"out): within ±10 % {percent(f['within_10'])}, within ±25 % {percent(f['within_25'])}, median "
                     f"|error| {percent(f['median_abs_error'])} (signed {percent(f['median_signed_error'])}), "
                     f"Spearman {rho}")
    return lines


# --- the report -----------------------------------------------------------------------------------

def scatter(points: list[dict[str, Any]], path: Path, title: str) -> None:
    """Predicted against measured (costlab's timing), log-log, with y = x and the ±10 % band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kept = [p for p in points if not p["costlab_starved"]]
    starved = [p for p in points if p["costlab_starved"]]
    fig, ax = plt.subplots(figsize=(6.4, 6.0), dpi=110)
    values = [v for p in points for v in (p["costlab_ms"], p["predicted_ms"]) if v > 0]
    low, high = min(values) / 1.5, max(values) * 1.5
    line = [low, high]
    ax.fill_between(line, [v * 0.9 for v in line], [v * 1.1 for v in line], color="tab:green", alpha=0.2,
                    label="±10 %")
    ax.plot(line, [v * 0.75 for v in line], color="tab:orange", lw=0.8, ls="--", label="±25 %")
    ax.plot(line, [v * 1.25 for v in line], color="tab:orange", lw=0.8, ls="--")
    ax.plot(line, line, color="black", lw=0.8)
    for batch, marker in ((1, "o"), (8, "s")):
        chosen = [p for p in kept if p["batch"] == batch]
        if chosen:
            ax.scatter([p["costlab_ms"] for p in chosen], [p["predicted_ms"] for p in chosen], s=18, marker=marker,
                       label=f"batch {batch}", alpha=0.8)
    others = [p for p in kept if p["batch"] not in (1, 8)]
    if others:
        ax.scatter([p["costlab_ms"] for p in others], [p["predicted_ms"] for p in others], s=18, label="other batch")
    if starved:
        ax.scatter([p["costlab_ms"] for p in starved], [max(p["predicted_ms"], low) for p in starved], s=14,
                   marker="x", color="grey", label="starved (left out of the figures)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_xlabel("measured latency (ms, median, costlab's timing)")
    ax.set_ylabel("predicted latency (ms)")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(True, which="both", lw=0.3, alpha=0.5)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def report_markdown(result: dict[str, Any], png_name: str | None) -> str:
    cal = result["calibration"]
    lines = ["# Predicted latency against measured (the hit rate of `--predict`)", "",
             f"Measured {result['finished_at']} on {cal['device_name']} ({cal['device']}, {cal['threads']} threads), "
             f"torch {result['torch_version']}, float32; host {cal['host']}. Machine load before: "
             f"{result['load_before']}; after: {result['load_after']}.", "",
             f"Regenerate with `{result['command']}`.", "",
             f"Calibration: {cal['samples']} layers of {cal['families']} kernel families timed in "
             f"{cal['seconds']:.0f} s (budget {result['budget_s']:.0f} s), {cal['starved']} starved; no model was "
             "timed by it, and no model below was used to tune the predictor.", "",
             "## Figures", ""]
    lines += [f"- {line}" for line in summary_lines(result)]
    lines += ["", "Goal (issue 20): at least 90 % within ±10 % and 98 % within ±25 % of the measured median.", ""]
    if png_name:
        lines += [f"![predicted against measured, log-log, with the ±10 % band]({png_name})", ""]
    lines += ["## Every measurement", "",
              "| model | batch | MACs | predicted ms | costlab ms | error | torch.utils.benchmark ms | error | starved |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for p in result["points"]:
        starved = ", ".join(k for k, key in (("costlab", "costlab_starved"), ("torch", "torch_benchmark_starved"))
                            if p[key]) or ""
        lines.append(f"| `{p['model']}` | {p['batch']} | {p['macs']:,} | {p['predicted_ms']:.3g} | "
                     f"{p['costlab_ms']:.3g} | {100 * (p['predicted_ms'] / p['costlab_ms'] - 1):+.0f} % | "
                     f"{p['torch_benchmark_ms']:.3g} | "
                     f"{100 * (p['predicted_ms'] / p['torch_benchmark_ms'] - 1):+.0f} % | {starved} |")
    failed = result.get("failed") or []
    if failed:
        lines += ["", "Not measured (the error each raised): " + "; ".join(f"`{m}`: {e}" for m, e in failed) + "."]
    return "\n".join(lines) + "\n"


# --- main -----------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="12 models, batch 1, a 60-second calibration")
    parser.add_argument("--models", type=int, help="only the first N models")
    parser.add_argument("--batches", default=None, help="comma-separated batch sizes (default 1,8; --quick 1)")
    parser.add_argument("--budget", type=float, help="calibration budget in seconds (default costlab's)")
    parser.add_argument("--cached", action="store_true", help="use the cached calibration instead of calibrating")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default torch's)")
    parser.add_argument("--min-run-time", type=float, default=0.5, help="torch.utils.benchmark's min_run_time (s)")
    parser.add_argument("--json", type=Path, help="write every figure and measurement here")
    parser.add_argument("--report", type=Path, help="write the Markdown report here (and its plot beside it)")
    parser.add_argument("--from-json", type=Path, help="measure nothing: write --report from a --json of a run "
                                                       "(the zoo venv may lack matplotlib)")
    args = parser.parse_args(argv)
    if args.from_json:
        if not args.report:
            parser.error("--from-json needs --report")
        write_report(json.loads(args.from_json.read_text(encoding="utf-8")), args.report)
        return 0
    batches = [int(b) for b in (args.batches or ("1" if args.quick else "1,8")).split(",")]
    budget = args.budget or (60.0 if args.quick else calibrating.DEFAULT_BUDGET_S)
    threads = args.threads or torch.get_num_threads()
    load_before = load()
    log(f"before: {load_before}")
    if args.cached:
        calibration = calibrating.calibration_for("cpu", threads, "float32")
    else:
        log(f"calibrating ({budget:.0f} s budget) ...")
        calibration = calibrating.measure_calibration("cpu", threads, "float32", budget)
    log(f"calibration: {len(calibration.samples)} layers, {len(calibration.models)} families, "
        f"{calibration.seconds:.0f} s, {calibration.starved} starved")
    specs = model_specs(args.quick)
    if args.models:
        specs = specs[:args.models]
    points: list[dict[str, Any]] = []
    failed: list[tuple[str, str]] = []
    with fixed_threads(threads):
        for name, kind, make, shape in specs:
            try:
                made = make()
            except Exception as error:  # a model this version cannot build
                failed.append((name, f"{type(error).__name__}: {error}"))
                continue
            for batch in batches:
                try:
                    point = measure_point(name, made, shape, batch, calibration, threads, args.min_run_time)
                except Exception as error:  # reported, never hidden
                    failed.append((f"{name} ×{batch}", f"{type(error).__name__}: {' '.join(str(error).split())[:200]}"))
                    continue
                point["kind"] = kind
                points.append(point)
                log(f"{name:40s} ×{batch}: predicted {point['predicted_ms']:9.3f} ms, costlab {point['costlab_ms']:9.3f}"
                    f" ({100 * (point['predicted_ms'] / point['costlab_ms'] - 1):+4.0f} %), torch.utils.benchmark "
                    f"{point['torch_benchmark_ms']:9.3f} ms{' STARVED' if point['costlab_starved'] else ''}")
    load_after = load()
    models = len({p["model"] for p in points})
    command = "PYTHONPATH=$PWD /work/zoo/bin/python benchmarks/bench_latency_prediction.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    result: dict[str, Any] = {
        "command": command.strip(), "finished_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "torch_version": torch.__version__, "load_before": load_before, "load_after": load_after,
        "budget_s": budget, "calibration": calibration.identity(), "models": models, "batches": batches,
        "figures": [figures(points, "costlab"), figures(points, "torch_benchmark")],
        "points": points, "failed": failed}
    print(f"{models} models at batch {', '.join(map(str, batches))}: {len(points)} measurements; "
          f"calibration {calibration.seconds:.0f} s ({len(calibration.samples)} layers, {calibration.starved} starved)")
    print(f"load: before {load_before}; after {load_after}")
    for line in summary_lines(result):
        print(line)
    if failed:
        print(f"not measured: {len(failed)} ({'; '.join(m for m, _ in failed)})")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.report:
        write_report(result, args.report)
    return 0


def write_report(result: dict[str, Any], path: Path) -> None:
    """The Markdown report and, matplotlib permitting, its scatter plot beside it (.png)."""
    png = path.with_suffix(".png")
    png_name: str | None = png.name
    try:
        scatter(result["points"], png, f"{result['models']} models, batch "
                f"{', '.join(map(str, result['batches']))}: predicted against measured")
    except ImportError:
        png_name = None
        log("matplotlib is not installed (pip install costlab[plot]): the report has no plot; "
            "write it from --json with --from-json in a venv that has it")
    path.write_text(report_markdown(result, png_name), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
