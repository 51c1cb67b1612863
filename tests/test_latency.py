"""The latency machinery on tiny inputs: statistics, the adaptive loop, threads, layers timed, JSON, CLI.

No assertion is about how long anything took: only that the measurement was taken, carried
and reported as documented.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import costlab  # noqa: E402
from costlab.app.cli import main  # noqa: E402
from costlab.core.errors import CostlabError, TargetError  # noqa: E402
from costlab.core.expressions import analyze_expression  # noqa: E402
from costlab.analyses.latency import Latency  # noqa: E402
from costlab.torch_bridge import roofline  # noqa: E402
from costlab.torch_bridge.latency import (LatencySettings, load_module, measure_latency,  # noqa: E402
                                          measurement_count)
from costlab.torch_bridge.timing import (Timing, TimingSettings, adaptive_samples, fixed_threads,  # noqa: E402
                                         quantile)

FAST = TimingSettings(min_samples=3, min_time_s=0.0, max_time_s=0.01, warmup_s=0.0, min_warmup_calls=1,
                      block_s=0.0005)
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(autouse=True)
def no_retaking(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine may be busy: no starved measurement is retaken in these tests (which are about what
    is measured and reported); tests/test_latency_honesty.py tests the retaking with a faked scheduler."""
    from costlab.torch_bridge import timing

    monkeypatch.setattr(timing, "DEFAULT_MIN_RUN_SHARE", 0.0)


def made_up_peaks(threads: int) -> roofline.Peaks:
    return roofline.Peaks(device="cpu", device_name="Test CPU", threads=threads, dtype="float32",
                          gflops=100.0, gbps=10.0, host="testhost")


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


# --- statistics and the adaptive loop (a fake clock) ------------------------------------------

def test_quantiles_interpolate_like_numpy() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert quantile(values, 0.5) == 2.5
    assert quantile(values, 0.25) == 1.75 and quantile(values, 0.75) == 3.25   # positions 0.75 and 2.25
    assert quantile([7.0], 0.25) == 7.0


def test_noisy_means_iqr_over_median_above_the_threshold() -> None:
    steady = Timing((1.0, 1.0, 1.0, 1.0, 2.0), 1, 1, "cpu", 2, "perf_counter", 0.10)
    assert (steady.median_s, steady.iqr_s, steady.noisy) == (1.0, 0.0, False)
    spread = Timing((1.0, 1.2, 1.4, 1.6, 1.8), 1, 1, "cpu", 2, "perf_counter", 0.10)
    assert spread.median_s == 1.4 and spread.iqr_s == pytest.approx(0.4)
    assert spread.spread == pytest.approx(0.4 / 1.4) and spread.noisy
    assert not Timing(spread.samples_s, 1, 1, "cpu", 2, "perf_counter", 0.30).noisy
    entry = spread.to_dict()
    assert entry["median"] == pytest.approx(1400.0) and entry["iqr"] == pytest.approx(400.0)
    assert entry["noisy"] is True and entry["threads"] == 2 and entry["samples"] == 5


def test_adaptive_loop_stops_once_settled() -> None:
    blocks: list[int] = []

    def sample(calls: int) -> float:
        blocks.append(calls)
        return 0.125 * calls  # a steady 0.125 s per call

    settings = TimingSettings(min_samples=7, min_time_s=0.5, max_time_s=100.0)
    samples = adaptive_samples(sample, 2, settings)
    assert samples == [0.125] * 7 and blocks == [2] * 7


def test_adaptive_loop_gives_up_at_the_time_limit_and_the_result_is_noisy() -> None:
    times = iter([0.25, 0.75] * 100)
    settings = TimingSettings(threshold=0.10, min_samples=3, min_time_s=0.0, max_time_s=5.0)
    samples = adaptive_samples(lambda calls: next(times), 1, settings)
    assert len(samples) == 10  # 5 s of sampled time, never settled
    assert Timing(tuple(samples), 1, 0, "cpu", 1, "fake", settings.threshold).noisy


# --- threads ----------------------------------------------------------------------------------

def test_threads_are_restored_even_after_an_error() -> None:
    before = torch.get_num_threads()
    other = before + 1
    with fixed_threads(other) as used:
        assert used == other == torch.get_num_threads()
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError):
        with fixed_threads(other):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with pytest.raises(CostlabError):
        with fixed_threads(0):
            pass


def test_measurement_reports_and_restores_its_threads() -> None:
    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    analysis = analyze_expression("conv3x3:4 > relu", (2, 8, 8))
    timed = measure_latency(analysis, LatencySettings(threads=other, timing=FAST, target_timing=None),
                            peaks=made_up_peaks(other))
    assert torch.get_num_threads() == before
    assert timed.latency.threads == other
    assert all(layer.latency.threads == other for layer in timed.layers)


# --- what is measured -------------------------------------------------------------------------

@pytest.mark.parametrize("expression, functional", [
    ("conv3x3:4 > bn > relu > maxpool2x2", None),
    ("res(conv3x3:4 > bn) > relu", "add"),
    ("(conv1x1:2 | conv3x3:2) > gap > fc:3", "concat"),
])
def test_every_layer_is_timed_functional_ones_too(expression: str, functional: str | None) -> None:
    analysis = analyze_expression(expression, (4, 8, 8), batch=2)
    peaks = made_up_peaks(torch.get_num_threads())
    calls: list[str] = []
    timed = measure_latency(analysis, LatencySettings(timing=FAST, target_timing=None), peaks=peaks, progress=calls.append)
    assert len(calls) == measurement_count(analysis) == 1 + len(analysis.layers)
    assert calls[0] == analysis.name and calls[1:] == [f"{analysis.name}: {l.name}" for l in analysis.layers]
    # the counts are untouched
    assert [(l.name, l.macs, l.bytes) for l in timed.layers] == [(l.name, l.macs, l.bytes) for l in analysis.layers]
    if functional:
        assert any(layer.op == functional for layer in timed.layers)
    for layer in timed.layers:
        assert layer.latency.median > 0 and layer.latency.samples >= 1
        assert layer.latency.device == "cpu" and layer.latency.iqr >= 0
        expected = max(2 * layer.macs / 100e9, layer.bytes / 10e9) * 1e3
        assert layer.roofline.predicted_ms == pytest.approx(expected)
    assert timed.roofline.predicted_ms == pytest.approx(sum(l.roofline.predicted_ms for l in timed.layers))
    assert timed.latency.sum_of_layers == pytest.approx(sum(l.latency.median for l in timed.layers))


def test_json_carries_latency_and_roofline_per_target_and_per_layer() -> None:
    analysis = analyze_expression("dw3x3 > pw:4", (4, 6, 6))
    timed = measure_latency(analysis, LatencySettings(timing=FAST, target_timing=None), peaks=made_up_peaks(torch.get_num_threads()))
    entry = json.loads(json.dumps(timed.to_dict()))
    latency_fields = {"median", "iqr", "q1", "q3", "device", "device_name", "threads", "noisy", "spread",
                      "noise_threshold", "samples", "calls_per_sample", "timer", "dtype"}
    assert latency_fields | {"sum_of_layers"} <= set(entry["latency_ms"])
    assert {"flops", "bytes", "intensity", "predicted_ms", "achieved_gflops", "fraction", "peaks",
            "compute_bound_layers", "memory_bound_layers"} <= set(entry["roofline"])
    for layer in entry["layers"]:
        assert latency_fields <= set(layer["latency_ms"])
        assert {"flops", "bytes", "intensity", "ridge", "compute_ms", "memory_ms", "predicted_ms", "bound",
                "achieved_gflops", "achieved_gbps", "fraction"} <= set(layer["roofline"])
        assert layer["roofline"]["flops"] == 2 * layer["macs"] and layer["roofline"]["bytes"] == layer["bytes"]
    # the contract's fields are unchanged
    plain = analysis.to_dict()
    assert {k: entry[k] for k in plain if k != "layers"} == {k: plain[k] for k in plain if k != "layers"}


def test_the_users_own_module_is_timed_and_its_mode_restored() -> None:
    analysis = analyze_expression("conv3x3:4 > relu", (2, 8, 8))
    names = [layer.name for layer in analysis.layers]
    module = torch.nn.Sequential()
    module.add_module(names[0], torch.nn.Conv2d(2, 4, 3, padding=1, bias=False))
    module.add_module(names[1], torch.nn.ReLU())
    calls = {name: 0 for name in names}
    for name in names:
        module.get_submodule(name).register_forward_hook(
            lambda m, i, o, name=name: calls.__setitem__(name, calls[name] + 1))
    module.train()
    measure_latency(analysis, LatencySettings(timing=FAST, target_timing=None), module=module,
                    peaks=made_up_peaks(torch.get_num_threads()))
    assert module.training
    assert all(n > 0 for n in calls.values())


def test_load_module() -> None:
    linear = load_module("torch.nn:Linear", {"in_features": "3", "out_features": "2", "bias": "False"})
    assert isinstance(linear, torch.nn.Linear) and linear.weight.shape == (2, 3) and linear.bias is None
    with pytest.raises(TargetError):
        load_module("collections:OrderedDict")
    with pytest.raises(TargetError):
        load_module("no_such_package_xyz:build")
    with pytest.raises(TargetError):
        load_module("torch.nn:NoSuchThing")


# --- the command line ---------------------------------------------------------------------------

@pytest.fixture
def seeded_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A peaks cache holding made-up peaks for this machine, so that no calibration runs."""
    monkeypatch.setenv("COSTLAB_CACHE_DIR", str(tmp_path))
    key, kind, name, threads = roofline.identity("cpu", None, "float32")
    roofline.save_peaks(roofline.Peaks(device=kind, device_name=name, threads=threads, dtype="float32",
                                       gflops=100.0, gbps=10.0, host=key.split("|")[0]))
    return tmp_path


def test_compare_with_latency_as_json(seeded_cache: Path) -> None:
    code, out, err = run("compare", "conv3x3:4", "dw3x3 > pw:4", "--input", "4x8x8", "--latency", "cpu",
                         "--format", "json", "--quiet", "--per-layer")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert len(data["latency_ratios"]) == 2 and data["latency_ratios"][0] == 1.0
    for target in data["targets"]:
        assert target["latency_ms"]["device"] == "cpu" and target["latency_ms"]["median"] > 0
        assert target["latency_ms"]["threads"] == torch.get_num_threads()
        assert target["roofline"]["peaks"]["gflops"] == 100.0
        for layer in target["layers"]:
            assert layer["latency_ms"]["median"] > 0 and layer["roofline"]["bound"] in ("compute", "memory")


def test_compare_latency_times_whole_targets_unless_per_layer(seeded_cache: Path) -> None:
    code, out, err = run("compare", "conv3x3:4", "dw3x3 > pw:4", "--input", "4x8x8", "--latency", "cpu",
                         "--format", "json", "--quiet")
    assert (code, err) == (0, "")
    for target in json.loads(out)["targets"]:
        assert target["latency_ms"]["median"] > 0 and "sum_of_layers" not in target["latency_ms"]
        assert all("latency_ms" not in layer for layer in target["layers"])
        # the target's roofline is still the sum of its layers' bounds (seeded peaks: 100 GFLOP/s, 10 GB/s)
        bounds = [max(2 * layer["macs"] / 100e9, layer["bytes"] / 10e9) for layer in target["layers"]]
        assert target["roofline"]["predicted_ms"] == pytest.approx(1e3 * sum(bounds))
        assert "bound" not in target["roofline"]
    from costlab.torch_bridge.latency import measurement_count
    from costlab import analyze
    assert measurement_count(analyze("dw3x3 > pw:4", input=(4, 8, 8)), per_layer=False) == 1


def test_progress_bar_on_stderr_unless_quiet(seeded_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(roofline.MATMUL_SIZE, "cpu", 128)     # no peaks cached for 1 thread: calibrated
    monkeypatch.setitem(roofline.COPY_BYTES, "cpu", 2**20)    # on first use, small for a fast test
    monkeypatch.setitem(roofline.CALIBRATION_TIMING, "min_run_share", 0.0)  # cached even on a busy machine
    assert roofline.cached_peaks("cpu", 1, "float32") is None
    code, out, err = run("analyze", "conv3x3:4", "--input", "4x8x8", "--latency", "cpu", "--threads", "1")
    steps = roofline.CALIBRATION_STEPS + 2  # the peaks (matrix product, copy, cache copy) + 2 timings
    assert code == 0 and "latency on cpu" in err and "100%" in err and f"{steps}/{steps}" in err
    assert roofline.cached_peaks("cpu", 1, "float32").matmul_size == 128
    assert "ms ± IQR" in out and "roofline ms" in out and "1 thread)" in out
    code, out, err = run("compare", "conv3x3:4", "--input", "4x8x8", "--latency", "cpu", "--quiet",
                         "--format", "csv", "--per-layer")
    assert (code, err) == (0, "")
    assert out.splitlines()[0].endswith("latency_ms,latency_iqr_ms,latency_noisy,achieved_gflops,intensity,"
                                        "bound,roofline_ms")


def test_latency_refuses_what_it_cannot_run() -> None:
    code, out, err = run("compare", "conv3x3:4", "--input", "4x8x8", "--latency", "cpu", "--dtype", "int8")
    assert code == 2 and out == "" and err.startswith("costlab: error: latency is measured in a floating dtype")
    assert err.count("\n") == 1
    if not torch.cuda.is_available():
        code, out, err = run("compare", "conv3x3:4", "--input", "4x8x8", "--latency", "cuda")
        assert code == 2 and out == "" and err.startswith("costlab: error: --latency cuda: no CUDA device")
        assert err.count("\n") == 1


def test_calibrate_measures_and_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("COSTLAB_CACHE_DIR", raising=False)
    monkeypatch.setitem(roofline.MATMUL_SIZE, "cpu", 128)     # small, for a fast test
    monkeypatch.setitem(roofline.COPY_BYTES, "cpu", 2**20)
    monkeypatch.setitem(roofline.CALIBRATION_TIMING, "min_run_share", 0.0)  # cached even on a busy machine
    code, out, err = run("calibrate", "--format", "json", "--threads", "1", "--quiet", "--budget", "1")
    assert (code, err) == (0, "")
    data = json.loads(out)
    path = tmp_path / "costlab" / "peaks.json"
    assert data["cache"] == str(path) and data["threads"] == 1 and data["matmul_size"] == 128
    assert data["gflops"] > 0 and data["gbps"] > 0 and data["ridge"] == pytest.approx(data["gflops"] / data["gbps"])
    cached = roofline.cached_peaks("cpu", 1, "float32", path)
    assert cached is not None and cached.gflops == data["gflops"]
    code, out, _ = run("calibrate", "--threads", "1", "--quiet", "--budget", "1")
    assert code == 0 and "GFLOP/s" in out and "ridge point" in out and str(path) in out


@CUDA
def test_cuda_latency_is_timed_with_events() -> None:
    analysis = analyze_expression("conv3x3:8 > relu", (4, 16, 16))
    peaks = roofline.Peaks(device="cuda", device_name="card", threads=0, dtype="float32", gflops=1e4, gbps=1e3)
    timed = measure_latency(analysis, LatencySettings(device="cuda", timing=FAST, target_timing=None), peaks=peaks)
    assert timed.latency.device == "cuda" and timed.latency.timer == "cuda events"
    assert all(layer.latency.median > 0 for layer in timed.layers)


# --- the canonical reports ------------------------------------------------------------------------

def test_separable_report_states_mac_and_latency_ratios_from_the_same_run() -> None:
    import re

    from costlab.app.latency_report import LATENCY_CASES, case_markdown, measure_case

    case = LATENCY_CASES["separable"]
    assert case.input == (512, 14, 14)
    comparison = measure_case(case, peaks=made_up_peaks(torch.get_num_threads()), timing=FAST)
    base, cheap = comparison.targets
    mac_ratio = (9 * 512 * 512) / (9 * 512 + 512 * 512)  # 1 / (1/C_out + 1/k²), k = 3, C_out = 512
    assert base.macs / cheap.macs == pytest.approx(mac_ratio)
    text = case_markdown(case, comparison)
    latency_ratio = base.latency.median / cheap.latency.median
    stated = re.search(r"\*\*MAC ratio ([\d.]+)×, measured latency ratio ([\d.]+)×\*\*", text)
    assert stated is not None
    assert stated.group(1) == f"{mac_ratio:.2f}" and stated.group(2) == f"{latency_ratio:.2f}"
    assert f"on {base.latency.device_name}, CPU, " in text  # the machine is named
    assert "What the roofline says" in text
    for layer in cheap.layers:  # each layer with its bound
        assert f"| `dw3x3 > pw:512` | {layer.name} | {layer.type} |" in text
    for layer in cheap.layers:
        assert f"{layer.roofline.bound}-bound" in text


def test_unknown_latency_report() -> None:
    from costlab.app.latency_report import latency_report

    with pytest.raises(CostlabError):
        latency_report("nope")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the failure without CUDA")
def test_gpu_check_fails_cleanly_without_cuda(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, str(root / "benchmarks" / "gpu_check.py"), "--output-dir",
                             str(tmp_path / "out")], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(root)})
    assert result.returncode == 2
    assert "gpu_check: error: no CUDA device here" in result.stderr and "Traceback" not in result.stderr
    assert "4,089,184,256" in result.stdout  # the counts part ran: ResNet-50, analytic = PyTorch's counter
    assert not (tmp_path / "out").exists()


# --- real modules (traced targets) ----------------------------------------------------------------

def test_a_traced_module_target_is_timed_layer_by_layer(seeded_cache: Path) -> None:
    code, out, err = run("analyze", "costlab_test_nets:tiny", "--input", "3x8x8", "--kwarg", "width=4",
                         "--latency", "cpu", "--format", "json", "--quiet")
    assert (code, err) == (0, "")
    (target,) = json.loads(out)["targets"]
    assert target["kind"] == "module" and target["latency_ms"]["median"] > 0
    ops = {layer["op"] for layer in target["layers"]}
    assert {"add", "concat"} <= ops  # the functional ops between the modules are timed too
    assert all(layer["latency_ms"]["median"] > 0 for layer in target["layers"])


def test_layers_that_run_nothing_alone_are_listed_not_timed() -> None:
    from torch import nn
    from torch.nn import functional as F

    import costlab

    class PadMeanUnused(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.unused = nn.Linear(3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.pad(self.conv(x), (1, 1, 1, 1)).mean((2, 3))

    module = PadMeanUnused()
    analysis = costlab.analyze(module, input=(3, 8, 8))
    assert [layer.spec.__class__.__name__ for layer in analysis.layers] == ["Conv", "Pad", "Reduce", "Held"]
    timed = measure_latency(analysis, LatencySettings(timing=FAST, target_timing=None), module=module,
                            peaks=made_up_peaks(torch.get_num_threads()))
    by_name = {layer.name: layer for layer in timed.layers}
    assert all(by_name[name].latency.median > 0 for name in ("conv", "pad", "mean"))
    assert by_name["unused"].latency is None and by_name["unused"].roofline is None
    assert timed.latency.untimed_layers == ("unused",)
    assert any(note.startswith("Not timed alone") and "unused" in note for note in timed.notes)
    assert timed.latency.sum_of_layers == pytest.approx(sum(by_name[n].latency.median
                                                               for n in ("conv", "pad", "mean")))


def test_a_report_is_measured_again_while_other_work_holds_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from costlab.core.analysis import Comparison
    from costlab.app import latency_report as reports

    case = reports.LATENCY_CASES["inception"]
    shares = iter([0.5, 0.9, 1.0])
    calls: list[int] = []

    def fake_measure(*args: object, **kwargs: object) -> Comparison:
        calls.append(1)
        share = next(shares)
        return Comparison(tuple(analyze_expression(t, case.input).with_feature(
                                    Latency(median=1.0, iqr=0.0, cpu_share=share))
                                for t in case.targets))

    monkeypatch.setattr(reports, "measure_case", fake_measure)
    settled = reports.measure_case_settled(case, min_cpu_share=0.75, attempts=3)
    assert len(calls) == 2 and [t.latency.cpu_share for t in settled.targets] == [0.9, 0.9]
    shares, calls[:] = iter([0.5] * 10), []
    with pytest.raises(CostlabError, match="other work held the CPU in each of 3 attempts"):
        reports.measure_case_settled(case, min_cpu_share=0.75, attempts=3)
    assert len(calls) == 3
    assert reports.report_filename(case, "cpu") == "latency-inception.md"
    assert reports.report_filename(case, "cuda") == "latency-inception-cuda.md"


def fixed_timings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every timing the latency reports take is fixed: the callable runs once (what is timed is still
    what the user runs) and its five samples are 1 ms each. Returns one entry per timing taken."""
    import costlab.app.latency_augmentation
    import costlab.torch_bridge.latency
    from costlab.torch_bridge.timing import Timing

    taken: list[str] = []

    def fake(fn, device, threads, settings=None) -> Timing:  # noqa: ANN001 - time_callable's signature
        fn()
        taken.append(device.type)
        return Timing((1e-3,) * 5, 1, 1, device.type, threads, "fixed", cpu_share=1.0)

    monkeypatch.setattr(costlab.torch_bridge.latency, "time_callable", fake)
    monkeypatch.setattr(costlab.app.latency_augmentation, "time_callable", fake)
    return taken


def test_report_latency_writes_both_canonical_reports(seeded_cache: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """`costlab report --latency cpu` end to end, on fixed timings: what is asserted is the text the
    reports build around their measurements, not the measurements (tests marked `measures` time for
    real, with quick settings)."""
    import costlab.app.reports

    taken = fixed_timings(monkeypatch)
    # the count reports are held by tests/test_reports.py; here the command writes the latency ones only
    monkeypatch.setattr(costlab.app.reports, "build_reports", lambda *args, **kwargs: [])
    out_dir = tmp_path / "reports"
    out_dir.mkdir()
    code, out, err = run("report", "--output-dir", str(out_dir), "--latency", "cpu", "--quiet")
    assert (code, err) == (0, "")
    from costlab.app.latency_augmentation import AUGMENTATION_MEASUREMENTS
    from costlab.app.latency_report import LATENCY_CASES, case_measurement_count

    assert len(taken) == sum(map(case_measurement_count, LATENCY_CASES.values())) + AUGMENTATION_MEASUREMENTS
    for name in ("latency-inception.md", "latency-separable.md"):
        assert f"wrote {out_dir / name}" in out
        text = (out_dir / name).read_text()
        assert "Regenerate with `costlab report --latency cpu`" in text
        # both targets take 1 ms: the measured ratio is 1.00×, whatever their MACs
        assert "measured latency ratio 1.00×**" in text
    inception_ratio = (32 * 25 * 192) / (16 * 192 + 32 * 25 * 16)  # per output pixel: 5×5×192 vs 1×1×192 + 5×5×16
    separable_ratio = (9 * 512 * 512) / (9 * 512 + 512 * 512)      # 1 / (1/C_out + 1/k²), k = 3, C_out = 512
    assert f"MAC ratio {inception_ratio:.2f}×" == "MAC ratio 9.68×"
    assert f"**MAC ratio {inception_ratio:.2f}×" in (out_dir / "latency-inception.md").read_text()
    assert f"**MAC ratio {separable_ratio:.2f}×" in (out_dir / "latency-separable.md").read_text()
    augmentation = (out_dir / "latency-augmentation.md").read_text()
    for step in ("mirroring", "random cropping", "PCA colour shift", "one alexnet forward pass"):
        assert f"| {step}" in augmentation
    assert "714,188,480" in augmentation and "ms ± IQR" in augmentation


def test_sweep_measures_latency_at_every_point(seeded_cache: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    plot = tmp_path / "sweep.png"
    code, out, err = run("sweep", "conv3x3:8", "conv1x1:{w} > conv3x3:8", "--param", "w=2,4", "--input",
                         "8x8x8", "--latency", "cpu", "--quiet", "--format", "json", "--plot", str(plot),
                         "--y", "latency_ms")
    assert (code, err) == (0, "")
    points = json.loads(out)["points"]
    assert len(points) == 4
    for point in points:
        assert point["latency_ms"] > 0 and point["latency_iqr_ms"] >= 0
        assert isinstance(point["latency_noisy"], bool)
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_analyze_with_latency_in_python_measures_what_the_cli_does(seeded_cache: Path) -> None:
    """costlab.analyze(..., latency="cpu") goes through the pipeline's latency step: the same fields,
    the same timed layers and the same peaks as `costlab analyze --latency cpu`."""
    expression = "conv3x3:4 > relu > pw:2"
    a = costlab.analyze(expression, input=(4, 8, 8), latency="cpu", threads=1)
    code, out, err = run("analyze", expression, "--input", "4x8x8", "--latency", "cpu", "--threads", "1",
                         "--format", "json", "--quiet")
    assert (code, err) == (0, "")
    cli, ours = json.loads(out)["targets"][0], a.to_dict()
    assert a.latency is not None and a.latency.median > 0 and ours["latency_ms"]["threads"] == 1
    assert set(ours["latency_ms"]) == set(cli["latency_ms"]) and set(ours["roofline"]) == set(cli["roofline"])
    assert ours["roofline"]["peaks"] == cli["roofline"]["peaks"]  # the seeded cache's, not a calibration
    assert [layer["name"] for layer in ours["layers"] if "latency_ms" in layer] == \
        [layer["name"] for layer in cli["layers"] if "latency_ms" in layer] == [layer.name for layer in a.layers]
    assert ours["latency_ms"]["sum_of_layers"] == pytest.approx(sum(layer.latency.median for layer in a.layers))
    with pytest.raises(CostlabError, match="latency must be"):
        costlab.analyze(expression, input=(4, 8, 8), latency="tpu")
    with pytest.raises(CostlabError, match="threads= needs latency="):
        costlab.analyze(expression, input=(4, 8, 8), threads=2)


@pytest.mark.parametrize("extra", [[], ["--memory"]])
def test_latency_times_a_module_target_itself(seeded_cache: Path, extra: list[str]) -> None:
    """compare/sweep --latency on package.module:callable time the module the pipeline built (with
    real weights, also beside --memory), not a network rebuilt from the analysis — which this one,
    a projection chunked into heads, would not be."""
    code, out, err = run("compare", "costlab_test_nets:chunked", "--input", "10x32", "--latency", "cpu",
                         "--threads", "1", "--format", "json", "--quiet", *extra)
    assert (code, err) == (0, "")
    target = json.loads(out)["targets"][0]
    assert target["latency_ms"]["median"] > 0 and target["macs"] == 10 * 32 * 96
    code, out, err = run("sweep", "costlab_test_nets:chunked", "--param", "batch=1,2", "--input", "10x32",
                         "--latency", "cpu", "--threads", "1", "--quiet", "--format", "json")
    assert (code, err) == (0, "")
    assert all(point["latency_ms"] > 0 for point in json.loads(out)["points"])
