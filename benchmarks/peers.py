"""costlab side by side with the established counters: the same models, one run, one table.

On every preset (built with costlab's builder at its default input) and, when torchvision is
installed, on torchvision's own CNNs, this runs costlab and each peer — fvcore FlopCountAnalysis,
PyTorch's FlopCounterMode, ptflops, thop, torchinfo, torchprofile; each optional, skipped with a
note when absent — each counter in a process of its own, and records per model: the total
normalised to 1 per multiply-add by the peer's documented convention (PyTorch's counter counts
2 FLOPs per multiply-add), the params it reports, in-process wall time of the counting call
(median of --repeat calls after a warm-up model) and the peak memory that call added (VmHWM,
reset through /proc/self/clear_refs, minus the resident size before the call).

For every disagreement with costlab's MACs, the report names the rules — the tool's convention
or its bug — that explain it: costlab's profile of the tool (costlab/analyses/conventions/) is set
beside the tool's own total, and must equal it.

    python benchmarks/peers.py                      # presets; torchvision models if importable
    python benchmarks/peers.py --tv-python /work/venv-tv/bin/python   # torchvision elsewhere

Writes reports/peers.md and reports/peers.csv (--out DIR) and prints the speed ratios.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from costlab.analyses.conventions import CONVENTIONS, profile  # noqa: E402  (torch-free)
from costlab.core.tools import PEER_TOOLS as PEER_NAMES  # noqa: E402
from costlab.core.zoo import PRESETS, build_preset  # noqa: E402

PACKAGES = {name: name for name in PEER_NAMES}
COUNTERS = ("costlab",) + PEER_NAMES
SPEED_MODELS = ("resnet50", "mobilenet-v2", "vgg16")
#: torchvision CNNs: name → the preset that mirrors it (with options), or None (needs a trace)
TORCHVISION_CNNS: dict[str, tuple[str, dict[str, Any]] | None] = {
    "alexnet": ("alexnet", {}), "vgg11": ("vgg11", {}), "vgg13": ("vgg13", {}),
    "vgg16": ("vgg16", {}), "vgg19": ("vgg19", {}), "vgg16_bn": ("vgg16", {"batch_norm": True}),
    "resnet18": ("resnet18", {}), "resnet34": ("resnet34", {}), "resnet50": ("resnet50", {}),
    "resnet101": ("resnet101", {}), "resnet152": ("resnet152", {}),
    "googlenet": ("googlenet", {}), "mobilenet_v2": ("mobilenet-v2", {}),
    "resnext50_32x4d": None, "densenet121": None, "mobilenet_v3_large": None,
    "efficientnet_b0": None, "shufflenet_v2_x1_0": None, "squeezenet1_0": None, "convnext_tiny": None,
}
TV_INPUT = (3, 224, 224)
MIB = 1 << 20
VERDICT_WORDS = {"macs": "multiply-adds counted differently", "convention": "counts beside the MACs",
                 "bug": "bugs", "missed": "misses", "zero": "counts nothing for"}


# --- the worker: one counter, every model, in a process of its own -----------------------------

def _status_kib(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    return int(match.group(1)) if match else 0


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _measure(call, repeat: int) -> tuple[Any, list[float], float | None]:
    """(result, seconds of each of 1 + repeat calls, peak MiB the first call added)."""
    can_reset = _reset_peak()
    before = _status_kib("VmRSS")
    start = time.perf_counter()
    result = call()
    times = [time.perf_counter() - start]
    peak = (_status_kib("VmHWM") - before) * 1024 / MIB if can_reset else None
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return result, times, peak


def _zeroed(module):
    """Materialise a meta-device module on the CPU with zero weights (values do not change a count)."""
    import torch

    module = module.to_empty(device="cpu")
    with torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            tensor.zero_()
    return module.eval()


def _model(source: str, name: str):
    """(module, input shape per sample, costlab target or None)."""
    import torch

    if source == "preset":
        analysis = build_preset(name)
        from costlab.torch_bridge.build import build_module

        return _zeroed(build_module(analysis, device="meta")), analysis.input
    import torchvision

    try:
        with torch.device("meta"):  # no initialisation cost
            module = torchvision.models.get_model(name, weights=None)
    except (NotImplementedError, RuntimeError):  # a constructor that computes with tensors
        module = torchvision.models.get_model(name, weights=None).to("meta")
    return _zeroed(module), TV_INPUT


def _bridge() -> bool:
    return importlib.util.find_spec("costlab.torch_bridge.trace") is not None


def _costlab_runs(source: str, name: str, module, shape) -> list[tuple[str, Any]]:
    """costlab's ways of counting this model: from the module (the fx trace, when the bridge has
    it) and, for presets and torchvision models a preset mirrors, analytically from the preset."""
    import costlab

    runs: list[tuple[str, Any]] = []
    if _bridge():
        runs.append(("costlab (module)", lambda: costlab.analyze(module, input=shape)))
    mirror = (name, {}) if source == "preset" else TORCHVISION_CNNS.get(name)
    if mirror is not None:
        preset, options = mirror
        runs.append(("costlab (preset)", lambda: costlab.analyze(preset, input=shape, **options)))
    return runs


def _profile_summary(analysis, tool: str) -> dict[str, Any]:
    """What costlab's profile of ``tool`` says about this analysis (its total and why it differs)."""
    p = profile(analysis, tool)
    return {"total": p.total, "params": p.params, "macs": p.macs, "explanation": p.explanation(),
            "differences": [(d.label, d.verdict, float(d.delta)) for d in p.differences()]}


def _speed_model(source: str, name: str) -> bool:
    """The models timed over several calls (the others once): ResNet-50, MobileNet v2, VGG-16."""
    return name in SPEED_MODELS or name.replace("_", "-") in SPEED_MODELS


def worker(counter: str, models: list[tuple[str, str]], repeat: int,
           threads: int = 0) -> list[dict[str, Any]]:
    """Count every model with one counter; one dict per (model, counter variant)."""
    package = "costlab" if counter == "costlab" else PACKAGES[counter]
    if importlib.util.find_spec(package) is None:  # before importing torch: a quick skip
        return [{"counter": counter, "note": f"{package} is not installed"}]
    import torch

    torch.manual_seed(0)
    if threads:
        torch.set_num_threads(threads)
    from costlab.torch_bridge import peers

    rows = []
    warmed = False
    for source, name in models:
        try:
            module, shape = _model(source, name)
        except Exception as error:  # torchvision missing or a model it cannot build
            rows.append({"source": source, "model": name, "counter": counter,
                         "note": f"cannot build: {type(error).__name__}: {error}"})
            continue
        x = torch.randn((1,) + tuple(shape))
        if counter == "costlab":
            calls = _costlab_runs(source, name, module, shape)
            if not calls:
                rows.append({"source": source, "model": name, "counter": counter,
                             "note": "no preset mirrors it and costlab.torch_bridge.trace is not "
                                     "available to analyse the module"})
        else:
            calls = [(counter, lambda module=module, x=x: peers.count(counter, module, x))]
        for label, call in calls:
            if not warmed:  # imports and first-call set-up, outside any measurement
                call()
                warmed = True
            timed = repeat if _speed_model(source, name) else 0
            try:
                result, times, peak = _measure(call, timed)
            except Exception as error:
                rows.append({"source": source, "model": name, "counter": label,
                             "note": f"failed: {type(error).__name__}: {str(error)[:200]}"})
                continue
            row = {"source": source, "model": name, "counter": label, "input": list(shape),
                   "seconds": min(times), "median_seconds": statistics.median(times),
                   "calls": len(times), "peak_mib": peak}
            if counter == "costlab":
                row.update(macs=result.macs, raw=result.macs, params=result.params,
                           kind=result.kind, unsupported=len(result.unsupported),
                           profiles={tool: _profile_summary(result, tool) for tool in CONVENTIONS})
            else:
                row.update(macs=result.macs, raw=result.raw, params=result.params)
            rows.append(row)
        del module
    return rows


# --- the driver --------------------------------------------------------------------------------

def _versions(python: str, extra_path: str = "") -> dict[str, str]:
    packages = list(dict.fromkeys(("torch", "torchvision") + PEER_NAMES))
    code = ("import importlib.metadata as m, json\nout = {}\n"
            f"for p in {packages!r}:\n"
            "    try: out[p] = m.version(p)\n    except m.PackageNotFoundError: pass\n"
            "print(json.dumps(out))")
    env = {**os.environ, "PYTHONPATH": extra_path} if extra_path else None
    result = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env)
    return json.loads(result.stdout) if result.returncode == 0 else {}


def _has_torchvision(python: str) -> bool:
    return subprocess.run([python, "-c", "import torchvision"], capture_output=True).returncode == 0


def run_worker(python: str, counter: str, models: list[tuple[str, str]], repeat: int,
               threads: int, extra_path: str = "") -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        command = [python, str(Path(__file__).resolve()), "--worker", counter, "--repeat", str(repeat),
                   "--threads", str(threads), "--models", json.dumps(models), "--rows", str(out)]
        paths = [str(ROOT)] + ([extra_path] if extra_path else [])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
        result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
        if result.returncode != 0 or not out.exists():
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            return [{"counter": counter, "note": f"worker failed: {tail[0][:200]}"}]
        return json.loads(out.read_text())


def _int(n: float) -> float | int:
    """300774272.0 → 300774272 (tools return floats for whole counts)."""
    return int(n) if float(n).is_integer() else n


def _fmt(n: float | None, digits: int = 0) -> str:
    if n is None:
        return "–"
    return f"{n:,.{digits}f}"


def _default_threads() -> int:
    result = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
                            capture_output=True, text=True)
    return int(result.stdout) if result.returncode == 0 else 0


def build_report(rows: list[dict], notes: list[str], versions: dict[str, dict[str, str]],
                 command: str, threads: int) -> tuple[str, str]:
    """(Markdown, CSV) from the measured rows."""
    measured = [r for r in rows if "seconds" in r]
    by_model: dict[tuple[str, str], dict[str, dict]] = {}
    for r in measured:
        by_model.setdefault((r["source"], r["model"]), {})[r["counter"]] = r
    costlab_label = "costlab (module)" if any(r["counter"] == "costlab (module)" for r in measured) \
        else "costlab (preset)"
    counters = [c for c in ("costlab (module)", "costlab (preset)") + PEER_NAMES
                if any(r["counter"] == c for r in measured)]

    csv_rows: list[list[Any]] = []
    accuracy: list[list[str]] = []
    disagreements: list[list[str]] = []
    speed: list[list[str]] = []
    memory: list[list[str]] = []
    params_rows: list[list[str]] = []
    unexplained = 0
    torch_mismatch = []
    verdicts: dict[str, dict[tuple[str, str], int]] = {}
    for (source, model), counts in by_model.items():
        reference = counts.get(costlab_label) or counts.get("costlab (preset)")
        profiles = reference["profiles"] if reference else {}
        label = model if source == "preset" else f"torchvision {model}"
        ours = reference["macs"] if reference else None
        torch_row = counts.get("torch")
        if ours is not None and torch_row is not None and torch_row["macs"] != ours:
            torch_mismatch.append(label)
        agrees = ("–" if torch_row is None or ours is None
                  else "yes" if ours == torch_row["macs"] else "**no**")
        accuracy.append([label, "×".join(map(str, next(iter(counts.values()))["input"]))]
                        + [_fmt(counts[c]["macs"]) if c in counts else "–" for c in counters]
                        + [agrees])
        params_rows.append([label] + [_fmt(counts[c]["params"]) if c in counts and counts[c]["params"]
                                      is not None else "–" for c in counters])
        fastest = min((r["seconds"] for r in counts.values()), default=None)
        speed.append([label] + [f"{1000 * counts[c]['seconds']:,.1f}" + (" ◀" if counts[c]["seconds"] == fastest
                                                                          else "") if c in counts else "–"
                                for c in counters])
        memory.append([label] + [_fmt(counts[c]["peak_mib"], 1) if c in counts else "–" for c in counters])
        for counter, r in counts.items():
            explanation, reproduced, profile_total = "", "", None
            if counter in profiles:
                p = profiles[counter]
                profile_total = p["total"]
                reproduced = "yes" if p["total"] == r["raw"] else "no"
                explanation = p["explanation"]
                if ours is not None and r["macs"] != ours:
                    for rule, verdict, _ in p["differences"]:
                        verdicts.setdefault(counter, {}).setdefault((rule, verdict), 0)
                        verdicts[counter][(rule, verdict)] += 1
                    note = ""
                    if reproduced != "yes":
                        unexplained += 1
                        note = f" — **not reproduced** (costlab's {counter} profile: {p['total']:,})"
                    disagreements.append([label, counter, _fmt(r["macs"]), f"{r['macs'] - ours:+,.0f}",
                                          explanation + note])
            csv_rows.append([source, model, "x".join(map(str, r["input"])), counter, _int(r["raw"]),
                             _int(r["macs"]),
                             r["params"], f"{1000 * r['seconds']:.3f}",
                             f"{1000 * r['median_seconds']:.3f}", r["calls"],
                             "" if r["peak_mib"] is None else f"{r['peak_mib']:.1f}", ours,
                             reference["params"] if reference else "", profile_total, reproduced,
                             "" if ours is None else _int(r["macs"] - ours), explanation])

    ratio_lines = []
    for (source, model), counts in by_model.items():
        if not _speed_model(source, model):
            continue
        ours = counts.get(costlab_label) or counts.get("costlab (preset)")
        if ours is None:
            continue
        parts = [f"{c} {counts[c]['seconds'] / ours['seconds']:,.1f}×" for c in PEER_NAMES if c in counts]
        fastest = all(counts[c]["seconds"] > ours["seconds"] for c in PEER_NAMES if c in counts)
        label = model if source == "preset" else f"torchvision {model}"
        ratio_lines.append(f"- **{label}**: {ours['counter']} {1000 * ours['seconds']:.1f} ms; each peer "
                           f"takes {', '.join(parts)} as long — costlab is "
                           f"{'the fastest' if fastest else '**not** the fastest'}")

    def table(headers: list[str], body: list[list[str]]) -> str:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in body])

    env = "; ".join(f"{python}: " + ", ".join(f"{k} {v}" for k, v in vs.items())
                    for python, vs in versions.items())
    md = [
        "# costlab beside the established counters", "",
        f"Measured by `{command}` on {platform.machine()}, {os.cpu_count()} CPU(s), Python "
        f"{platform.python_version()}, {threads} torch thread(s) — {env}. Regenerate with that command; "
        "timings vary from run to run, the counts do not.", "",
        "Every counter runs in a process of its own on the same models: the presets built by "
        "costlab's builder (costlab/torch_bridge/build.py) at their default input, and torchvision's "
        "own CNNs where torchvision is installed. MACs are normalised to 1 per multiply-add by each "
        "tool's documented convention (PyTorch's counter reports 2 FLOPs per multiply-add: halved "
        "here). costlab's MACs are those of conv, linear and matmul layers (docs/cost-model.md).", "",
        "Two costlab columns: **costlab (module)** is `costlab.analyze(module, input=(C, H, W))` on the "
        "same module the peers get — an fx trace priced by the formulas, no forward pass; "
        "**costlab (preset)** is the analytic path, `costlab.analyze(\"resnet50\")`, for the models a "
        "preset mirrors (no module at all). The speed ratios below compare costlab (module) with the "
        "peers.", "",
    ]
    if costlab_label == "costlab (preset)":
        md += ["**costlab here is the analytic path**: it prices the preset by name "
               "(`costlab.analyze(\"resnet50\")`), which is what it does without a module; "
               "`costlab.analyze(module, input=...)` needs costlab.torch_bridge.trace, not available "
               "in this run. Its time is that of the analysis, not of reading a module.", ""]
    md += ["## Speed", "",
           "In-process wall time of one counting call, in ms (◀ the fastest). Each counter is warmed "
           "up on the first model of its process (imports, first-call set-up); then ResNet-50, "
           "MobileNet v2 and VGG-16 are counted 1 + `--repeat` times and the fastest call is shown "
           "(the machine may be shared; the CSV has the median too), the other models once.", "",
           table(["model"] + counters, speed), "", "Ratios measured in this run:", ""] + ratio_lines
    md += ["", "Peak memory the first counting call added, in MiB (VmHWM − resident size before):", "",
           table(["model"] + counters, memory)]
    md += ["", "## MACs", "",
           f"Total MACs each counter reports. Last column: costlab's MACs equal PyTorch's counter ÷ 2 "
           f"({'on every model' if not torch_mismatch else 'NOT on ' + ', '.join(torch_mismatch)}).", "",
           table(["model", "input"] + counters + ["costlab = torch ÷ 2"], accuracy)]
    md += ["", "## Why the others differ", "",
           "Every total that differs from costlab's MACs, with the rules that explain it: costlab's "
           "profile of the tool (`--convention TOOL`; rules in docs/cost-model.md, \"Other tools' "
           "conventions\") sets each rule's count against the MACs it stands for. "
           + ("Each profile total equals the tool's own total exactly."
              if not unexplained else f"{unexplained} total(s) are not reproduced."), "",
           "In short, on these models:", ""]
    for tool, seen in verdicts.items():
        kinds = {}
        for (rule, verdict), models in seen.items():
            kinds.setdefault(verdict, []).append(f"{rule} ({models} model{'s' if models != 1 else ''})")
        parts = [f"{VERDICT_WORDS[v]}: {'; '.join(rules)}" for v, rules in kinds.items()]
        md.append(f"- **{tool}** — " + ". ".join(parts) + ".")
    md += ["", table(["model", "tool", "tool's MACs", "− costlab's MACs", "explained by"], disagreements)]
    md += ["", "## Params", "", table(["model"] + counters, params_rows)]
    if notes:
        md += ["", "## Notes", ""] + [f"- {note}" for note in notes]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["source", "model", "input", "counter", "raw", "macs", "params", "ms", "median_ms",
                     "calls", "peak_mib",
                     "costlab_macs", "costlab_params", "profile_total", "reproduced", "macs_minus_costlab",
                     "explained_by"])
    writer.writerows(csv_rows)
    return "\n".join(md) + "\n", buffer.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=4,
                        help="calls after the first on ResNet-50, MobileNet v2 and VGG-16 (default 4)")
    parser.add_argument("--presets", default=",".join(PRESETS), help="comma-separated presets")
    parser.add_argument("--torchvision", default=",".join(TORCHVISION_CNNS),
                        help="comma-separated torchvision models ('' for none)")
    parser.add_argument("--tv-python", metavar="PYTHON",
                        help="interpreter with torchvision for its models (default: this one)")
    parser.add_argument("--tv-path", metavar="DIR", default="",
                        help="a directory added to the torchvision interpreter's path (peers installed "
                             "there with pip install --target)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch.set_num_threads in every worker (default 0: torch's own default)")
    parser.add_argument("--out", default=str(ROOT / "reports"), metavar="DIR")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--models", help=argparse.SUPPRESS)
    parser.add_argument("--rows", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        rows = worker(args.worker, [tuple(m) for m in json.loads(args.models)], args.repeat, args.threads)
        Path(args.rows).write_text(json.dumps(rows))
        return 0

    started = time.perf_counter()
    presets = [("preset", name) for name in args.presets.split(",") if name]
    tv_models = [("torchvision", name) for name in args.torchvision.split(",") if name]
    tv_python = args.tv_python or sys.executable
    notes: list[str] = []
    jobs = [(sys.executable, presets, "")]
    if tv_models:
        if _has_torchvision(tv_python):
            jobs.append((tv_python, tv_models, args.tv_path))
        else:
            notes.append(f"torchvision is not installed for {tv_python}: its models are skipped "
                         "(pass --tv-python an interpreter that has it)")
    rows: list[dict] = []
    for python, models, extra_path in jobs:
        for counter in COUNTERS:
            print(f"{counter:12s} on {len(models)} models ({python})", file=sys.stderr, flush=True)
            for row in run_worker(python, counter, models, args.repeat, args.threads, extra_path):
                if "seconds" in row:
                    rows.append(row)
                else:
                    where = f"{row['model']}: " if "model" in row else ""
                    notes.append(f"{row['counter']} ({python}): {where}{row['note']}")
    if args.tv_path:
        notes.append(f"the peers for {tv_python} come from {args.tv_path}, made with `pip install "
                     "--no-deps --target DIR ptflops thop torchinfo torchprofile` (versions above)")
    versions = {python: _versions(python, extra_path) for python, _, extra_path in jobs}
    command = "python benchmarks/peers.py" + (" --tv-python TV_PYTHON" if args.tv_python else "")
    command += " --tv-path DIR" if args.tv_path else ""
    command += f" --threads {args.threads}" if args.threads else ""
    threads = args.threads or _default_threads()
    markdown, csv_text = build_report(rows, sorted(set(notes)), versions, command, threads)
    # no machine's paths in a report: the interpreters and the peers' directory by their role
    for path, role in ((args.tv_path, "DIR"), (tv_python if args.tv_python else None, "TV_PYTHON"),
                       (sys.executable, "python")):
        if path:
            markdown, csv_text = markdown.replace(path, role), csv_text.replace(path, role)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "peers.md").write_text(markdown, encoding="utf-8")
    (out / "peers.csv").write_text(csv_text, encoding="utf-8")
    speed = markdown.split("Ratios measured in this run:\n\n", 1)[1].split("\n\n", 1)[0]
    print(speed)
    print(f"wrote {out / 'peers.md'} and {out / 'peers.csv'} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
