"""The roofline's arithmetic, the peaks cache and the noisy flag: no timing, no torch needed."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from costlab.core.analysis import Analysis, Comparison
from costlab.core.errors import CostlabError
from costlab.analyses.latency import Latency, Roofline
from costlab.core.expressions import analyze_expression
from costlab.render.report import render_analysis, render_comparison
from costlab.core.roofline import Peaks, bound, machine_key, roofline_fields
from costlab.torch_bridge.roofline import cache_path, load_peaks, save_peaks


def made_up_peaks(gflops: float = 100.0, gbps: float = 10.0, threads: int = 2) -> Peaks:
    return Peaks(device="cpu", device_name="Test CPU", threads=threads, dtype="float32", gflops=gflops,
                 gbps=gbps, host="testhost", matmul_size=64, copy_bytes=1024, torch_version="x",
                 measured_at="2026-01-01T00:00:00+00:00")


# --- bound = max(flops / peak_flops, bytes / peak_bw) -------------------------------------------

def test_bound_is_the_larger_of_compute_and_memory_time() -> None:
    peaks = made_up_peaks(gflops=100, gbps=10)          # 1e11 FLOP/s, 1e10 B/s; ridge 10 FLOP/B
    assert peaks.ridge == 10
    compute = bound(2_000_000_000, 100_000_000, peaks)  # 0.02 s of arithmetic, 0.01 s of traffic
    assert compute.compute_s == pytest.approx(0.02) and compute.memory_s == pytest.approx(0.01)
    assert compute.seconds == pytest.approx(0.02) and compute.kind == "compute"
    assert compute.intensity == 20
    memory = bound(2_000_000_000, 400_000_000, peaks)   # 0.02 s against 0.04 s
    assert memory.seconds == pytest.approx(0.04) and memory.kind == "memory"
    assert memory.intensity == 5
    assert bound(0, 4_000, peaks).kind == "memory" and bound(10, 0, peaks).intensity is None


def test_roofline_fields_against_the_formula() -> None:
    peaks = made_up_peaks(gflops=250, gbps=20)
    entry = roofline_fields(3_000_000, 600_000, peaks, measured_ms=0.1)
    compute_ms, memory_ms = 3e6 / 250e9 * 1e3, 6e5 / 20e9 * 1e3    # 0.012 ms and 0.03 ms
    assert entry["compute_ms"] == pytest.approx(compute_ms) and entry["memory_ms"] == pytest.approx(memory_ms)
    assert entry["predicted_ms"] == pytest.approx(max(compute_ms, memory_ms)) and entry["bound"] == "memory"
    assert entry["achieved_gflops"] == pytest.approx(3e6 / 1e-4 / 1e9)  # 30 GFLOP/s
    assert entry["fraction"] == pytest.approx(0.03 / 0.1)
    assert entry["intensity"] == pytest.approx(5.0) and entry["ridge"] == pytest.approx(12.5)
    assert "achieved_gflops" not in roofline_fields(1, 1, peaks, None)


def test_a_real_layer_bound_derived_by_hand() -> None:
    """conv5x5:32 on 192×28×28 in float32, priced from its definition, not from costlab."""
    layer = analyze_expression("conv5x5:32", (192, 28, 28)).layers[0]
    flops = 2 * (5 * 5 * 192) * (28 * 28 * 32)
    moved = 4 * (192 * 28 * 28 + 5 * 5 * 192 * 32 + 32 * 28 * 28)
    peaks = made_up_peaks(gflops=400, gbps=30)
    entry = roofline_fields(2 * layer.macs, layer.bytes, peaks, None)
    assert (entry["flops"], entry["bytes"]) == (flops, moved)
    assert entry["predicted_ms"] == pytest.approx(max(flops / 400e9, moved / 30e9) * 1e3)
    assert entry["bound"] == "compute"  # 182.9 FLOP/B, far above a ridge of 13.3


def test_peaks_must_be_positive() -> None:
    with pytest.raises(CostlabError):
        made_up_peaks(gflops=0)


# --- the cache ---------------------------------------------------------------------------------

def test_cache_path_follows_the_environment(tmp_path: Path) -> None:
    assert cache_path({"COSTLAB_CACHE_DIR": str(tmp_path)}) == tmp_path / "peaks.json"
    assert cache_path({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "costlab" / "peaks.json"
    assert cache_path({}) == Path.home() / ".cache" / "costlab" / "peaks.json"


def test_cache_write_and_read(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "peaks.json"
    two, one = made_up_peaks(threads=2), made_up_peaks(gflops=55.5, threads=1)
    assert load_peaks(two.key, path) is None
    save_peaks(two, path)
    save_peaks(one, path)
    assert load_peaks(two.key, path) == two and load_peaks(one.key, path) == one
    assert two.key == machine_key("testhost", "cpu", "Test CPU", 2, "float32") != one.key
    data = json.loads(path.read_text())
    assert data["version"] == 1 and len(data["peaks"]) == 2
    assert data["peaks"][one.key]["gflops"] == 55.5 and data["peaks"][one.key]["ridge"] == pytest.approx(5.55)
    save_peaks(made_up_peaks(gflops=77, threads=2), path)  # replaces its own key only
    assert load_peaks(two.key, path).gflops == 77 and load_peaks(one.key, path) == one


def test_a_corrupt_cache_counts_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "peaks.json"
    path.write_text("{not json")
    peaks = made_up_peaks()
    assert load_peaks(peaks.key, path) is None
    save_peaks(peaks, path)  # and is replaced on the next write
    assert load_peaks(peaks.key, path) == peaks
    path.write_text(json.dumps({"version": 1, "peaks": {peaks.key: {"gflops": -1}}}))
    assert load_peaks(peaks.key, path) is None


# --- the noisy flag in every output format (renderers, no timing) ----------------------------------

def _timed(analysis: Analysis, noisy_layer: str | None, noisy_target: bool) -> Analysis:
    from dataclasses import replace

    peaks = made_up_peaks()

    def latency(median: float, noisy: bool, roof: Roofline) -> Latency:
        return Latency(median=median, iqr=median * (0.3 if noisy else 0.01), noisy=noisy, noise_threshold=0.1,
                       device="cpu", device_name="Test CPU", threads=2, dtype="float32", samples=7,
                       timer="perf_counter", roofline=roof)

    layers = tuple(replace(layer, latency=latency(0.5, layer.name == noisy_layer, Roofline.from_dict(
                               roofline_fields(2 * layer.macs, layer.bytes, peaks, 0.5))))
                   for layer in analysis.layers)
    target_roofline = roofline_fields(2 * analysis.macs, analysis.bytes, peaks, 1.0)
    target_roofline["predicted_ms"] = sum(layer.roofline.predicted_ms for layer in layers)
    target_roofline["peaks"] = peaks.to_dict()
    return replace(analysis, layers=layers).with_feature(latency(1.0, noisy_target, Roofline.from_dict(target_roofline)))


@pytest.mark.parametrize("fmt", ["table", "md", "csv", "json"])
def test_noisy_is_flagged_in_every_format(fmt: str) -> None:
    quiet = _timed(analyze_expression("conv3x3:8 > relu", (4, 8, 8), name="steady"), None, False)
    noisy = _timed(analyze_expression("dw3x3 > pw:8", (4, 8, 8), name="shaky"), "pw1", True)
    comparison = Comparison((quiet, noisy))
    for text in (render_comparison(comparison, fmt, per_layer=True), render_comparison(comparison, fmt),
                 render_analysis(noisy, fmt)):
        if fmt == "json":
            data = json.loads(text)
            for target in data["targets"]:
                assert target["latency_ms"]["noisy"] == (target["name"] == "shaky")
                assert [layer["latency_ms"]["noisy"] for layer in target["layers"]] == \
                       [layer["name"] == "pw1" and target["name"] == "shaky" for layer in target["layers"]]
        elif fmt == "csv":
            rows = list(csv.reader(io.StringIO(text)))
            column = rows[0].index("latency_noisy")
            flags = {row[column] for row in rows[1:]}
            assert "True" in flags and ("False" in flags or rows[0][0] == "layer")
        else:
            assert " noisy" in text.split("Latency:")[0]  # in the table itself
    quiet_only = render_analysis(quiet, fmt)
    if fmt in ("table", "md"):
        assert " noisy" not in quiet_only.split("Latency:")[0]


def test_quiet_comparison_has_latency_ratios_and_no_noise_note() -> None:
    a = _timed(analyze_expression("conv3x3:8", (4, 8, 8)), None, False)
    b = _timed(analyze_expression("dw3x3 > pw:8", (4, 8, 8)), None, False)
    data = Comparison((a, b)).to_dict()
    assert data["latency_ratios"] == [1.0, 1.0]
    assert "Noisy measurements" not in render_comparison(Comparison((a, b)))
    assert "latency_ratios" not in Comparison((analyze_expression("conv3x3:8", (4, 8, 8)),)).to_dict()
