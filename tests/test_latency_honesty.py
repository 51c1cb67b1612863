"""Measured latency is never silently wrong (issue 12): a starved measurement is taken again, then
kept marked noisy with its reason; a contended calibration is not cached; layers that fit in the
last-level cache are bounded by its bandwidth; the user's submodules keep their own modes.

The scheduler is faked where starvation is the point: no assertion depends on how busy this
machine is, or on how long anything took.
"""

from __future__ import annotations

import io
import itertools
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from costlab.app.cli import _progress_bar, main  # noqa: E402
from costlab.core.expressions import analyze_expression  # noqa: E402
from costlab.core import roofline as arithmetic  # noqa: E402
from costlab.torch_bridge import roofline, timing  # noqa: E402
from costlab.torch_bridge.latency import LatencySettings, measure_latency, memory_needed  # noqa: E402
from costlab.torch_bridge.timing import TimingSettings, run_share, time_callable  # noqa: E402

FAST = TimingSettings(min_samples=3, min_time_s=0.0, max_time_s=0.01, warmup_s=0.0, min_warmup_calls=1,
                      block_s=0.0005, min_run_share=timing.DEFAULT_MIN_RUN_SHARE)
CPU = torch.device("cpu")


def fake_scheduler(monkeypatch: pytest.MonkeyPatch, shares: list[float]) -> list[float]:
    """scheduler_times() as if each successive measurement ran the given share of its ready time."""
    clock = itertools.count()
    pending = list(shares)
    state = {"running": 0, "waiting": 0, "start": True}

    def scheduler_times() -> tuple[int, int]:
        next(clock)
        if not state["start"]:
            share = pending.pop(0) if pending else 1.0
            state["running"] += int(1e9 * share)
            state["waiting"] += int(1e9 * (1 - share))
        state["start"] = not state["start"]
        return state["running"], state["waiting"]

    monkeypatch.setattr(timing, "scheduler_times", scheduler_times)
    return pending


def test_run_share_is_running_over_ready_time() -> None:
    assert run_share((100, 50), (400, 150)) == pytest.approx(300 / 400)
    assert run_share(None, (1, 1)) is None and run_share((5, 5), (5, 5)) is None


def test_a_starved_measurement_is_taken_again_and_kept_when_it_settles(monkeypatch: pytest.MonkeyPatch) -> None:
    pending = fake_scheduler(monkeypatch, [0.32, 0.95])
    measured = time_callable(lambda: None, CPU, 1, FAST)
    assert not pending                                     # two measurements were taken
    assert measured.attempts == 2 and measured.run_share == pytest.approx(0.95)
    assert not measured.starved and measured.to_dict()["noisy_reason"] in (None, measured.noisy_reason)


def test_a_measurement_starved_every_time_is_flagged_noisy_with_its_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_scheduler(monkeypatch, [0.32, 0.40, 0.35])
    measured = time_callable(lambda: None, CPU, 1, FAST)
    assert measured.attempts == FAST.attempts == 3
    assert measured.run_share == pytest.approx(0.40)       # the least starved attempt is kept
    assert measured.starved and measured.noisy
    entry = measured.to_dict()
    assert entry["noisy"] is True and entry["min_run_share"] == timing.DEFAULT_MIN_RUN_SHARE
    assert "starved" in entry["noisy_reason"] and "40 %" in entry["noisy_reason"] and "3 attempts" in entry["noisy_reason"]


def test_every_starved_layer_and_target_is_flagged_in_the_output(monkeypatch: pytest.MonkeyPatch) -> None:
    from costlab.render.report import render_analysis

    fake_scheduler(monkeypatch, [0.3] * 100)
    analysis = analyze_expression("conv3x3:4 > relu", (3, 8, 8))
    peaks = roofline.Peaks(device="cpu", device_name="Test CPU", threads=1, dtype="float32", gflops=100.0, gbps=10.0)
    timed = measure_latency(analysis, LatencySettings(threads=1, timing=FAST, target_timing=None), peaks=peaks)
    entries = [timed.latency] + [layer.latency for layer in timed.layers]
    assert all(e.noisy and "starved" in e.noisy_reason and e.attempts == 3 for e in entries)
    table = render_analysis(timed, "table", None, "macs")
    assert "Starved in every attempt" in table and "conv3x3:4 > relu (30 %), 2 layers" in table  # layers as a count


def test_a_contended_calibration_is_used_but_not_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COSTLAB_CACHE_DIR", str(tmp_path))
    monkeypatch.setitem(roofline.MATMUL_SIZE, "cpu", 64)
    monkeypatch.setitem(roofline.COPY_BYTES, "cpu", 2**16)
    monkeypatch.setattr(roofline, "last_level_cache_bytes", lambda: 2**16)
    monkeypatch.setattr(roofline, "CALIBRATION_TIMING", {"min_samples": 3, "min_time_s": 0.0, "max_time_s": 0.01,
                                                         "warmup_s": 0.0, "min_warmup_calls": 1,
                                                         "min_run_share": timing.DEFAULT_MIN_RUN_SHARE})
    fake_scheduler(monkeypatch, [0.3] * 100)
    peaks, path = roofline.calibrate("cpu", 1, "float32")
    assert path is None and peaks.contended and peaks.run_share == pytest.approx(0.3)
    assert not (tmp_path / roofline.CACHE_FILE).exists()
    out, err = io.StringIO(), io.StringIO()
    assert main(["calibrate", "--threads", "1", "--quiet", "--budget", "1"], stdout=out, stderr=err) == 0
    assert "Not cached: other work held the CPU" in out.getvalue()
    assert not (tmp_path / roofline.CACHE_FILE).exists()
    fake_scheduler(monkeypatch, [0.99] * 100)                # quiet again: measured and cached
    out = io.StringIO()
    assert main(["calibrate", "--threads", "1", "--quiet", "--format", "json", "--budget", "1"], stdout=out, stderr=err) == 0
    data = json.loads(out.getvalue())
    assert data["cache"] == str(tmp_path / roofline.CACHE_FILE) and data["contended"] is False
    assert roofline.cached_peaks("cpu", 1, "float32", tmp_path / roofline.CACHE_FILE).run_share == pytest.approx(0.99)


def test_layers_that_fit_in_the_last_level_cache_are_bounded_by_its_bandwidth() -> None:
    peaks = roofline.Peaks(device="cpu", device_name="Test CPU", threads=1, dtype="float32", gflops=100.0,
                           gbps=10.0, cache_gbps=40.0, cache_bytes=1_000_000)
    small, large = arithmetic.bound(0, 1_000_000, peaks), arithmetic.bound(0, 1_000_001, peaks)
    assert small.memory_s == pytest.approx(1_000_000 / 40e9) and large.memory_s == pytest.approx(1_000_001 / 10e9)
    assert arithmetic.roofline_fields(0, 1_000_000, peaks, None)["bandwidth"] == "cache"
    assert arithmetic.roofline_fields(0, 1_000_001, peaks, None)["bandwidth"] == "dram"
    no_cache = roofline.Peaks(device="cpu", device_name="Test CPU", threads=1, dtype="float32", gflops=100.0, gbps=10.0)
    assert arithmetic.bound(0, 10, no_cache).memory_s == pytest.approx(10 / 10e9)  # older cache entries: DRAM


def test_submodules_come_back_in_their_own_modes() -> None:
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU())
    module.train()
    module[1].eval()                                          # a frozen BatchNorm inside a training model
    before = [m.training for m in module.modules()]
    from costlab.torch_bridge.trace import analyze_module

    analysis = analyze_module(module, (3, 8, 8))
    peaks = roofline.Peaks(device="cpu", device_name="Test CPU", threads=1, dtype="float32", gflops=100.0, gbps=10.0)
    measure_latency(analysis, LatencySettings(threads=1, timing=FAST, target_timing=None), module=module, peaks=peaks)
    assert [m.training for m in module.modules()] == before == [True, True, False, True]


def test_the_memory_a_measurement_needs_comes_from_the_counts() -> None:
    analysis = analyze_expression("conv3x3:8 > relu", (3, 16, 16))
    conv, relu = analysis.layers
    assert conv.bytes == 4 * (3 * 16 * 16 + 8 * 3 * 9 + 8 * 16 * 16)  # input + weights + output, float32
    assert memory_needed(analysis, 4) == 4 * (8 * 3 * 9) + max(conv.bytes, relu.bytes)


def test_the_progress_bar_grows_when_timings_are_taken_again() -> None:
    import argparse

    stream = io.StringIO()
    bar, advance = _progress_bar(argparse.Namespace(progress_stream=stream, quiet=False), 2, "test")
    for label in ("a", "b", "a again"):
        advance(label)
    assert (bar.n, bar.total) == (3, 3)
    bar.close()


def test_report_latency_progress_counts_each_timing_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """report --latency plans as many timings as it takes (14 with cached peaks: 5 + 5 for the two cases,
    4 for the augmentations); timings are faked here, so nothing is really measured."""
    import argparse

    from costlab.app import cli
    from costlab.app import latency_augmentation as augment_timing
    from costlab.torch_bridge import latency

    def instant(fn, device, threads, settings=None):  # type: ignore[no-untyped-def]
        return timing.Timing((1e-4,) * 7, 1, 1, device.type, threads, "fake", 0.1, 1.0, 1.0, 0.75)

    monkeypatch.setattr(latency, "time_callable", instant)
    monkeypatch.setattr(augment_timing, "time_callable", instant)
    monkeypatch.setenv("COSTLAB_CACHE_DIR", str(tmp_path))
    key, kind, name, threads = roofline.identity("cpu", None, "float32")
    roofline.save_peaks(roofline.Peaks(device=kind, device_name=name, threads=threads, dtype="float32",
                                       gflops=100.0, gbps=10.0, host=key.split("|")[0]))
    planned, taken = [], []
    real_bar = cli._progress_bar

    def counting_bar(args, total, description):  # type: ignore[no-untyped-def]
        bar, advance = real_bar(args, total, description)
        planned.append(total)
        return bar, lambda label: (taken.append(label), advance(label))

    monkeypatch.setattr(cli, "_progress_bar", counting_bar)
    args = argparse.Namespace(latency="cpu", threads=None, quiet=True, progress_stream=io.StringIO())
    texts = cli._latency_reports(args, str(tmp_path))
    assert len(texts) == 3 and planned == [len(taken)] == [14]
    assert not any(path.suffix == ".md" for path in tmp_path.iterdir())  # made, not written: run_report writes
