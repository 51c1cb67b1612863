"""--predict's plumbing: kernel families, the fit, a calibration on a tiny budget, the cache, the CLI,
the Python API, sweeps. Not its accuracy (that is benchmarks/bench_latency_prediction.py's): nothing
here asserts a time."""

from __future__ import annotations

import io
import json
import math
import random
from pathlib import Path

import pytest

import costlab
from costlab.app.cli import main
from costlab.core.analysis import Analysis
from costlab.core.errors import CostlabError
from costlab.analyses.prediction import (Calibration, FamilyModel, Kernel, Sample, fit_terms, layer_kernel, predict)
from costlab.core.roofline import Peaks
from costlab.core.specs import Conv

torch = pytest.importorskip("torch")

from costlab.torch_bridge import calibration as calibrating  # noqa: E402
from costlab.torch_bridge import roofline  # noqa: E402


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


# --- the core: kernels and the fit (no torch needed) ---------------------------------------------------

@pytest.mark.parametrize(("expression", "family"), [
    ("conv3x3:8", "conv2d-standard"), ("pw:8", "conv2d-pointwise"), ("dw3x3", "conv2d-depthwise"),
    ("conv3x3:8,g2", "conv2d-grouped"), ("fc:10", "linear"), ("bn", "norm-batch"), ("relu", "act-simple"),
    ("maxpool2x2", "pool-max"),
])
def test_each_layer_kernel_names_its_family(expression: str, family: str) -> None:
    layer = costlab.analyze(expression, input=(4, 8, 8) if expression != "fc:10" else (16,)).layers[0]
    k = layer_kernel(layer)
    assert k is not None and k.family == family
    if layer.macs:
        assert k.work == 2 * layer.macs  # FLOPs of a product family
    else:
        assert k.work == layer.ops
    assert k.bytes == layer.bytes


def test_depthwise_needs_groups_equal_to_input_channels() -> None:
    (grouped,) = costlab.analyze("conv3x3:8,g4", input=(8, 6, 6)).layers
    (depthwise,) = costlab.analyze("conv3x3:8,g8", input=(8, 6, 6)).layers
    assert isinstance(grouped.spec, Conv) and grouped.spec.groups == 4
    assert layer_kernel(grouped).family == "conv2d-grouped"  # type: ignore[union-attr]
    assert layer_kernel(depthwise).family == "conv2d-depthwise"  # type: ignore[union-attr]


def _exact_samples(family: str, overhead: float, per_work: float, per_byte: float, n: int = 12) -> list[Sample]:
    r = random.Random(family)
    samples = []
    for _ in range(n):
        work, moved = 10 ** r.uniform(3, 9), 10 ** r.uniform(3, 8)
        samples.append(Sample(family, work, moved, (math.log10(work), math.log10(moved)),
                              overhead + per_work * work + per_byte * moved))
    return samples


def test_the_fit_recovers_terms_that_made_the_times() -> None:
    overhead, per_work, per_byte = 8e-6, 1 / 50e9, 1 / 20e9
    fitted = fit_terms(_exact_samples("x", overhead, per_work, per_byte))
    assert fitted == pytest.approx((overhead, per_work, per_byte), rel=1e-6)


def test_the_fit_never_returns_a_negative_term() -> None:
    # times that fall with the work: an unconstrained fit would make 1/p negative
    samples = [Sample("x", w, 1000.0, (), t) for w, t in ((1e3, 3e-3), (1e6, 2e-3), (1e9, 1e-3))]
    assert all(term >= 0 for term in fit_terms(samples))


def test_the_local_correction_fades_far_from_every_sample() -> None:
    model = FamilyModel.fit("x", [Sample("x", 1e6, 1e6, (6.0, 6.0), 1e-3), Sample("x", 2e6, 1e6, (6.3, 6.0), 5e-3)])
    far = Kernel("x", 1e6, 1e6, (12.0, 12.0))
    assert model.correction(far.descriptor) == pytest.approx(1.0)
    assert model.correction((6.0, 6.0)) != pytest.approx(1.0)


def _synthetic_calibration(terms: dict[str, tuple[float, float, float]]) -> Calibration:
    peaks = Peaks(device="cpu", device_name="Test CPU", threads=1, dtype="float32", gflops=100.0, gbps=10.0,
                  host="testhost")
    samples = [s for family, t in terms.items() for s in _exact_samples(family, *t)]
    return Calibration(peaks, tuple(samples), "2026-01-01T00:00:00+00:00")


def test_a_prediction_is_the_sum_of_each_layer_by_its_family_terms() -> None:
    terms = {"conv2d-standard": (20e-6, 1 / 80e9, 1 / 30e9), "conv2d-pointwise": (10e-6, 1 / 60e9, 1 / 25e9),
             "norm-batch": (5e-6, 1 / 5e9, 1 / 12e9), "act-simple": (3e-6, 1 / 8e9, 1 / 15e9)}
    calibration = _synthetic_calibration(terms)
    analysis = costlab.analyze("conv3x3:16 > bn > relu > pw:32", input=(8, 16, 16), predict="cpu",
                               calibration=calibration)
    prediction = analysis.prediction
    assert prediction is not None and prediction.fallback_layers == ()
    expected = {}
    for layer in analysis.layers:  # o + W/p + B/w by hand, W the FLOPs (2 per MAC) or the ops
        o, per_work, per_byte = terms[layer_kernel(layer).family]  # type: ignore[union-attr]
        work = 2 * layer.macs if layer.macs else layer.ops
        expected[layer.name] = 1e3 * (o + per_work * work + per_byte * layer.bytes)
    assert prediction.by_layer == pytest.approx(expected, rel=1e-6)
    assert prediction.total_ms == pytest.approx(sum(expected.values()), rel=1e-9)
    entry = analysis.to_dict()
    assert entry["predicted_latency_ms"] == prediction.total_ms
    assert [layer["predicted_latency_ms"] for layer in entry["layers"]] == pytest.approx(list(expected.values()))
    named = entry["prediction"]["calibration"]
    assert (named["host"], named["threads"], named["dtype"], named["measured_at"]) == (
        "testhost", 1, "float32", "2026-01-01T00:00:00+00:00")


def test_a_family_the_calibration_lacks_falls_back_to_the_roofline_and_is_named() -> None:
    calibration = _synthetic_calibration({"conv2d-standard": (20e-6, 1 / 80e9, 1 / 30e9)})
    analysis = costlab.analyze("conv3x3:16 > maxpool2x2", input=(8, 16, 16), predict="cpu", calibration=calibration)
    pool = analysis.layers[1]
    assert analysis.prediction.fallback_layers == (f"{pool.name} (pool-max)",)  # type: ignore[union-attr]
    bound_ms = 1e3 * max(pool.ops / 100e9, pool.bytes / 10e9)  # the synthetic peaks' roofline ...
    call_ms = 1e3 * 20e-6  # ... plus the cheapest call the calibration knows
    assert analysis.prediction.by_layer[pool.name] == pytest.approx(bound_ms + call_ms, rel=1e-6)  # type: ignore[union-attr]
    assert "fallback_layers" in analysis.to_dict()["prediction"]


def test_a_calibration_round_trips_through_its_dict() -> None:
    calibration = _synthetic_calibration({"linear": (4e-6, 1 / 40e9, 1 / 20e9)})
    again = Calibration.from_dict(json.loads(json.dumps(calibration.to_dict())))
    assert again.samples == calibration.samples and again.key == calibration.key
    k = Kernel("linear", 1e7, 1e6, (7.0, 6.0))
    assert again.predict_kernel(k) == calibration.predict_kernel(k)


def test_a_prediction_in_another_dtype_is_refused() -> None:
    calibration = _synthetic_calibration({"linear": (4e-6, 1 / 40e9, 1 / 20e9)})
    with pytest.raises(CostlabError, match="calibrate --dtype float16"):
        costlab.analyze("fc:10", input=(16,), dtype="float16", predict="cpu", calibration=calibration)


# --- a real calibration on a tiny budget ------------------------------------------------------------------

@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Peaks and kernel timings made small and never retaken as starved (a busy CI machine), cached in tmp."""
    monkeypatch.setenv("COSTLAB_CACHE_DIR", str(tmp_path))
    monkeypatch.setitem(roofline.MATMUL_SIZE, "cpu", 128)
    monkeypatch.setitem(roofline.COPY_BYTES, "cpu", 2**20)
    monkeypatch.setattr(roofline, "last_level_cache_bytes", lambda: 2**16)
    monkeypatch.setitem(roofline.CALIBRATION_TIMING, "min_run_share", 0.0)
    monkeypatch.setitem(roofline.CALIBRATION_TIMING, "min_time_s", 0.01)
    monkeypatch.setitem(roofline.CALIBRATION_TIMING, "warmup_s", 0.0)
    monkeypatch.setitem(roofline.CALIBRATION_TIMING, "max_time_s", 0.05)
    monkeypatch.setitem(calibrating.SAMPLE_TIMING, "min_run_share", 0.0)
    monkeypatch.setitem(calibrating.SAMPLE_TIMING, "min_time_s", 0.0)
    monkeypatch.setitem(calibrating.SAMPLE_TIMING, "max_time_s", 0.01)
    monkeypatch.setattr(calibrating, "MAX_SAMPLE_BOUND_S", 2e-4)  # small layers only
    return tmp_path


def test_calibrate_on_a_tiny_budget_caches_kernels_beside_the_peaks(tiny: Path) -> None:
    code, out, err = run("calibrate", "--budget", "3", "--threads", "1", "--format", "json", "--quiet")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert data["cache"] == str(tiny / "peaks.json")
    entry = data["calibration"]
    assert entry["cache"] == str(tiny / "calibration.json") and entry["threads"] == 1
    assert entry["samples"] > 0 and entry["samples"] == sum(row["samples"] for row in entry["families"])
    cached = calibrating.cached_calibration("cpu", 1, "float32")
    assert cached is not None and cached.key == roofline.identity("cpu", 1, "float32")[0]
    assert len(cached.samples) == entry["samples"]
    assert json.loads((tiny / "calibration.json").read_text())["calibrations"].keys() == {cached.key}
    code, out, _ = run("calibrate", "--budget", "2", "--threads", "1", "--quiet")
    assert code == 0 and "Kernel calibration:" in out and str(tiny / "calibration.json") in out


def test_measure_calibration_samples_the_families_in_turn(tiny: Path) -> None:
    calibration = calibrating.measure_calibration("cpu", 1, "float32", budget_s=3.0)
    families = [s.family for s in calibration.samples]
    assert len(set(families)) >= min(5, len(families))  # a short budget still reaches several families
    assert calibration.seconds >= 3.0 - 1e-9 and calibration.budget_s == 3.0
    assert all(s.seconds > 0 for s in calibration.samples)


def test_configurations_are_the_same_for_the_same_seed() -> None:
    import itertools

    first = [label for label, _, _ in itertools.islice(calibrating.configurations(), 60)]
    again = [label for label, _, _ in itertools.islice(calibrating.configurations(), 60)]
    assert first == again and len(set(first)) > 30


def test_a_contended_calibration_is_used_but_not_cached(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_latency_honesty import fake_scheduler

    monkeypatch.setitem(calibrating.SAMPLE_TIMING, "min_run_share", 0.75)
    monkeypatch.setitem(calibrating.SAMPLE_TIMING, "attempts", 1)
    fake_scheduler(monkeypatch, [0.99] * 3 + [0.3] * 10_000)  # the three peaks quiet, every kernel starved
    calibration, peaks_path, path = calibrating.calibrate_kernels("cpu", 1, "float32", budget_s=2.0)
    assert calibration.contended and calibration.starved == len(calibration.samples) > 0, calibration.starved
    assert path is None and not (tiny / "calibration.json").exists()
    assert peaks_path == tiny / "peaks.json"  # the peaks were not starved: cached as before
    k = layer_kernel(calibrating.priced_layer("x", Conv(4, (3, 3), padding=(1, 1)), [(1, 4, 8, 8)], "float32"))
    assert calibration.predict_kernel(k)[0] > 0  # used for the run that made it


# --- the command line and the API --------------------------------------------------------------------

@pytest.fixture
def seeded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Calibration:
    """A synthetic calibration cached for this machine at torch's thread count (nothing measured)."""
    monkeypatch.setenv("COSTLAB_CACHE_DIR", str(tmp_path))
    key, kind, name, threads = roofline.identity("cpu", None, "float32")
    peaks = Peaks(device=kind, device_name=name, threads=threads, dtype="float32", gflops=100.0, gbps=10.0,
                  host=key.split("|")[0])
    families = ("conv2d-standard", "conv2d-pointwise", "conv2d-depthwise", "norm-batch", "act-simple", "linear",
                "pool-max", "pool-adaptive-avg", "elementwise", "call", "attention", "norm-layer", "act-gelu",
                "softmax", "bmm", "matmul")
    samples = tuple(s for family in families for s in _exact_samples(family, 5e-6, 1 / 50e9, 1 / 20e9))
    calibration = Calibration(peaks, samples, "2026-01-01T00:00:00+00:00")
    calibrating.save_calibration(calibration)
    roofline.save_peaks(peaks)
    return calibration


def test_compare_predict_as_json(seeded: Calibration) -> None:
    code, out, err = run("compare", "conv5x5:32", "conv1x1:16 > conv5x5:32", "--input", "192x28x28",
                         "--predict", "cpu", "--format", "json")
    assert (code, err) == (0, "")
    for target in json.loads(out)["targets"]:
        layers = [layer["predicted_latency_ms"] for layer in target["layers"]]
        assert all(ms > 0 for ms in layers)
        assert target["predicted_latency_ms"] == pytest.approx(sum(layers))
        assert target["prediction"]["calibration"]["measured_at"] == "2026-01-01T00:00:00+00:00"


def test_predict_on_a_table_names_its_calibration(seeded: Calibration) -> None:
    code, out, err = run("compare", "conv5x5:32", "conv1x1:16 > conv5x5:32", "--input", "192x28x28",
                         "--predict", "cpu", "--wide")
    assert (code, err) == (0, "")
    assert "predicted ms" in out and "calibration of" in " ".join(out.split()) and "2026-01-01" in out


def test_predict_without_a_calibration_says_to_run_calibrate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COSTLAB_CACHE_DIR", str(tmp_path))
    code, out, err = run("analyze", "resnet18", "--predict", "cpu")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("costlab: error: no latency calibration") and "costlab calibrate" in err


def test_predict_and_latency_on_different_devices_are_refused(seeded: Calibration) -> None:
    code, _, err = run("analyze", "relu", "--input", "4x8x8", "--predict", "cuda", "--latency", "cpu")
    assert code == 2 and "same device" in err


def test_latency_shows_measured_predicted_and_error(seeded: Calibration) -> None:
    code, out, err = run("compare", "conv3x3:4", "dw3x3 > pw:4", "--input", "4x8x8", "--latency", "cpu",
                         "--per-layer", "--format", "json", "--quiet")
    assert (code, err) == (0, "")
    for target in json.loads(out)["targets"]:
        measured, predicted = target["latency_ms"]["median"], target["predicted_latency_ms"]
        assert target["prediction"]["measured_ms"] == measured
        assert target["prediction"]["error"] == pytest.approx((predicted - measured) / measured)
        for layer in target["layers"]:
            assert "latency_ms" in layer and "predicted_latency_ms" in layer
    code, out, _ = run("analyze", "dw3x3 > pw:4", "--input", "4x8x8", "--latency", "cpu", "--quiet", "--wide")
    assert code == 0 and "predicted ms" in out and "error" in out


def test_presets_module_targets_and_sweeps_are_predicted(seeded: Calibration) -> None:
    code, out, err = run("analyze", "mobilenet-v2", "--predict", "cpu", "--format", "json")
    assert (code, err) == (0, "") and json.loads(out)["targets"][0]["predicted_latency_ms"] > 0
    code, out, err = run("analyze", "costlab_test_nets:tiny", "--input", "3x16x16", "--predict", "cpu",
                         "--format", "json")
    assert (code, err) == (0, "")
    entry = json.loads(out)["targets"][0]
    assert entry["predicted_latency_ms"] == pytest.approx(
        sum(layer.get("predicted_latency_ms", 0.0) for layer in entry["layers"]))
    code, out, err = run("sweep", "conv1x1:{w} > conv5x5:32", "--param", "w=4,16", "--input", "192x28x28",
                         "--predict", "cpu")
    assert (code, err) == (0, "")
    header, *rows = out.strip().splitlines()
    assert "predicted_latency_ms" in header.split(",") and len(rows) == 2
    column = header.split(",").index("predicted_latency_ms")
    predicted = [float(row.split(",")[column]) for row in rows]
    direct = [costlab.analyze(f"conv1x1:{w} > conv5x5:32", input=(192, 28, 28), predict="cpu").prediction.total_ms
              for w in (4, 16)]
    assert predicted == pytest.approx(direct, rel=1e-5)  # the CSV keeps 6 significant digits


def test_python_predict_reads_the_cache_and_refuses_what_it_cannot_do(seeded: Calibration) -> None:
    analysis = costlab.analyze("resnet18", predict="cpu")
    assert isinstance(analysis, Analysis) and analysis.prediction is not None
    assert analysis.prediction.calibration["samples"] == len(seeded.samples)
    comparison = costlab.compare(["conv5x5:32", "conv1x1:16 > conv5x5:32"], input=(192, 28, 28), predict="cpu")
    assert all(t.prediction is not None for t in comparison.targets)
    with pytest.raises(CostlabError, match="predict must be"):
        costlab.analyze("relu", input=(4, 8, 8), predict="tpu")
    with pytest.raises(CostlabError, match="calibration= needs predict="):
        costlab.analyze("relu", input=(4, 8, 8), calibration=seeded)
    assert predict(analysis, seeded).total_ms == analysis.prediction.total_ms


def test_an_hf_model_built_on_meta_is_predicted(seeded: Calibration, tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=128, vocab_size=500, max_position_embeddings=64)
    config.save_pretrained(tmp_path / "bert")
    code, out, err = run("analyze", f"hf:{tmp_path / 'bert'}", "--seq", "16", "--predict", "cpu", "--format", "json")
    assert (code, err) == (0, "")
    entry = json.loads(out)["targets"][0]
    assert entry["predicted_latency_ms"] == pytest.approx(
        sum(layer.get("predicted_latency_ms", 0.0) for layer in entry["layers"]))
    assert any(layer["op"] == "linear" and layer["predicted_latency_ms"] > 0 for layer in entry["layers"])


def test_a_latency_report_puts_the_predicted_ratio_beside_the_others(seeded: Calibration) -> None:
    from costlab.app.latency_report import latency_report
    from costlab.torch_bridge.timing import TimingSettings

    fast = TimingSettings(min_samples=3, min_time_s=0.0, max_time_s=0.01, warmup_s=0.0, min_warmup_calls=1,
                          min_run_share=0.0)
    text = latency_report("inception", calibration=seeded, timing=fast, peaks=seeded.peaks)
    base, cheap = (costlab.analyze(t, input=(192, 28, 28), predict="cpu", calibration=seeded).prediction
                   for t in ("conv5x5:32", "conv1x1:16 > conv5x5:32"))
    ratio = base.total_ms / cheap.total_ms  # type: ignore[union-attr]
    assert f"predicted ratio {ratio:.2f}×" in text and "| predicted ms | predicted ratio | prediction error |" in text
    assert "What the calibrated prediction says" in text and "calibration of" in text
    assert "No kernel calibration" in latency_report("inception", timing=fast, peaks=seeded.peaks)


def test_the_command_line_states_the_calibration_budget_of_the_library() -> None:
    from costlab.app import cli

    assert cli.CALIBRATION_BUDGET_S == calibrating.DEFAULT_BUDGET_S <= 180  # within the 3 minutes promised
