"""The features of an analysis share one interface that JSON and every renderer loop over: a new
feature is a data class (its name and JSON) and a presenter registered for its name, with no edit to
a renderer; latency's typed results write exactly the JSON its dicts did."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import pytest

import costlab
from costlab.core import analysis as analysis_module
from costlab.render import report
from costlab.render.features import registry
from costlab.render.features.registry import PRESENTERS, Presenter, UnpresentedFeature, presenter, register
from costlab.render.view import Heading, View
from costlab.core.analysis import Analysis, Comparison, fold
from costlab.analyses.checks import Checks
from costlab.analyses.conventions import Profile
from costlab.core.expressions import analyze_expression
from costlab.analyses.latency import Latency, Roofline
from costlab.core.features import FEATURES, Feature
from costlab.analyses.memory import Memory
from costlab.analyses.training import TrainingCost

JOULES_PER_MAC = 2.5e-12


@dataclass(frozen=True)
class Energy(Feature):
    """A toy feature: energy at a fixed cost per MAC, per layer and in total (data: name and JSON)."""

    joules_per_mac: float
    macs: int

    name: ClassVar[str] = "energy"

    def json_fields(self, unit: str) -> dict[str, Any]:
        return {"energy_j": self.macs * self.joules_per_mac}

    def layer_json(self, name: str) -> dict[str, Any]:
        return {"energy_layer": name}


class EnergyPresenter(Presenter):
    """How the toy feature is drawn (registered for 'energy' by the fixture below)."""

    def layer_columns(self, group: Sequence[Any], unit: str, view: View | None) -> list[Heading]:
        return [Heading("energy_j" if view is None else "energy J", True, 99)]

    def layer_cells(self, feature: Any, headings: Sequence[Heading], row: Any, members: Sequence[Any], unit: str,
                    view: View | None) -> list[Any]:
        return [f"{sum(m.macs for m in members) * feature.joules_per_mac:.6g}"]

    def total_cells(self, feature: Any, headings: Sequence[Heading], unit: str, view: View) -> list[str]:
        return [f"{feature.macs * feature.joules_per_mac:.6g}"]

    def side_by_side(self, group: Sequence[Any], unit: str, view: View | None) -> tuple[list[Heading], list[list[Any]]]:
        return [Heading("energy J", True, 99)], [["" if e is None else f"{e.macs * e.joules_per_mac:.6g}"]
                                                 for e in group]

    def table_notes(self, feature: Any, unit: str) -> list[str]:
        return [f"energy at {feature.joules_per_mac:g} J per MAC"]


@pytest.fixture
def registry_copy(monkeypatch: pytest.MonkeyPatch) -> dict[str, Presenter]:
    """The presenters' registry, restored after the test."""
    copy = dict(PRESENTERS)
    monkeypatch.setattr(registry, "PRESENTERS", copy)
    return copy


@pytest.fixture
def with_energy(monkeypatch: pytest.MonkeyPatch, registry_copy: dict[str, Presenter]) -> None:
    """Energy added as a feature: its name added to FEATURES and its presenter registered, nothing else."""
    names = FEATURES + ("energy",)
    monkeypatch.setattr(analysis_module, "FEATURES", names)
    monkeypatch.setattr(report, "FEATURES", names)
    register("energy")(EnergyPresenter)


def _energetic(expression: str, energy: bool = True) -> Analysis:
    a = analyze_expression(expression, (3, 16, 16))
    return a.with_feature(Energy(JOULES_PER_MAC, a.macs)) if energy else a


def test_a_new_feature_is_one_class_every_renderer_loops_over(with_energy: None) -> None:
    a = _energetic("conv3x3:8 > relu > conv3x3:4 > fc:10")
    assert [type(f) for f in a.features] == [Energy]
    # JSON: the target's and each layer's fields
    entry = a.to_dict()
    assert entry["energy_j"] == pytest.approx(sum(layer.macs for layer in a.layers) * JOULES_PER_MAC)
    assert [layer["energy_layer"] for layer in entry["layers"]] == [layer.name for layer in a.layers]
    # the per-layer table in the terminal and Markdown: a column, cells per row, the total, the notes
    for fmt in ("table", "md"):
        text = report.render_analysis(a, fmt, width=None)
        assert "energy J" in text and "energy at 2.5e-12 J per MAC" in text
        for layer in a.layers:
            assert f"{layer.macs * JOULES_PER_MAC:.6g}" in text
    # CSV: the column before the formula, a value per row from the row's own layers
    rows = list(csv.DictReader(io.StringIO(report.render_analysis(a, "csv"))))
    assert list(rows[0])[-2:] == ["energy_j", "formula"]
    assert [float(r["energy_j"]) for r in rows] == pytest.approx([layer.macs * JOULES_PER_MAC for layer in a.layers])
    # a comparison: the one-row-per-target table and the per-layer CSV, blank for a target without it
    plain = _energetic("conv3x3:8", energy=False)
    both = Comparison((a, plain))
    table = report.render_comparison(both, "md").splitlines()
    header = next(line for line in table if line.startswith("| target"))
    cells = [c.strip() for c in next(line for line in table if line.startswith(f"| {a.name} ")).split("|")]
    column = [c.strip() for c in header.split("|")].index("energy J")
    assert cells[column] == f"{a.macs * JOULES_PER_MAC:.6g}"
    assert [c.strip() for c in header.split("|")][column + 1] == "vs first"  # counted features: before the ratio
    summary = list(csv.DictReader(io.StringIO(report.render_comparison(both, "csv"))))
    assert [s["energy J"] for s in summary] == [f"{a.macs * JOULES_PER_MAC:.6g}", ""]
    per_layer = list(csv.DictReader(io.StringIO(report.render_comparison(both, "csv", per_layer=True))))
    assert [r["energy_j"] for r in per_layer if r["target"] == plain.name] == [""] * len(plain.layers)


def test_a_features_cells_fold_by_the_one_rule(with_energy: None) -> None:
    a = _energetic("res(conv3x3:8 > bn > relu) > conv3x3:4 > fc:10")
    for depth in (None, 1):
        rows = list(csv.DictReader(io.StringIO(report.render_analysis(a, "csv", depth=depth))))
        expected: dict[str, int] = {}
        for layer in a.layers:
            key = fold(layer.name, depth)
            expected[key] = expected.get(key, 0) + layer.macs
        assert [r["layer"] for r in rows] == list(expected)
        assert [float(r["energy_j"]) for r in rows] == pytest.approx([m * JOULES_PER_MAC for m in expected.values()])


def test_features_come_in_one_fixed_order_and_only_when_carried() -> None:
    plain = costlab.analyze("lenet5")
    assert plain.features == () and not plain.checks and plain.latency is None and plain.roofline is None
    full = costlab.analyze("lenet5", freeze=2, memory=True, convention="fvcore")
    assert [type(f) for f in full.features] == [TrainingCost, Memory, Profile]
    assert [name for name in FEATURES if full.feature(name) is not None] == ["training", "memory", "convention"]


def test_latency_and_roofline_write_the_json_their_dicts_did() -> None:
    pytest.importorskip("torch")
    from costlab.core.roofline import Peaks, roofline_fields
    from costlab.torch_bridge.timing import Timing

    timing = Timing(samples_s=(0.002, 0.001, 0.003, 0.0015), calls_per_sample=4, warmup_calls=2, device="cpu",
                    threads=2, timer="perf_counter", noise_threshold=0.1)
    entry = {**timing.to_dict(), "device_name": "Test CPU", "dtype": "float32", "load_1min": 0.5,
             "sum_of_layers": 1.25, "untimed_layers": ["unused"]}
    latency = Latency.from_dict(entry)
    assert latency.to_dict() == entry and list(latency.to_dict()) == list(entry)  # same keys, same order
    assert latency.median == pytest.approx(1e3 * timing.median_s) and latency.iqr == pytest.approx(1e3 * timing.iqr_s)
    assert latency.untimed_layers == ("unused",) and latency.roofline is None
    peaks = Peaks(device="cpu", device_name="Test CPU", threads=2, dtype="float32", gflops=100.0, gbps=10.0)
    layer = roofline_fields(2 * 1000, 400, peaks, 0.5)
    assert list(Roofline.from_dict(layer).to_dict().items()) == list(layer.items())
    target = roofline_fields(2 * 5000, 4000, peaks, 1.0)
    target.update(predicted_ms=0.4, fraction=0.4, compute_bound_layers=1, memory_bound_layers=2)
    del target["bound"]
    target["peaks"] = peaks.to_dict()
    assert list(Roofline.from_dict(target).to_dict().items()) == list(target.items())
    a = analyze_expression("conv3x3:4", (3, 8, 8)).with_feature(Latency.from_dict(entry, Roofline.from_dict(target)))
    assert a.roofline is a.latency.roofline  # type: ignore[union-attr]
    assert a.to_dict()["latency_ms"] == entry and a.to_dict()["roofline"] == target


def test_the_per_layer_csv_of_a_comparison_has_each_features_columns_as_analyze_does() -> None:
    targets = ["lenet5", "conv3x3:8 > relu > fc:10"]
    c = costlab.compare(targets, input=(1, 32, 32), freeze=1, memory=True, convention="ptflops")
    rows = list(csv.DictReader(io.StringIO(report.render_comparison(c, "csv", per_layer=True))))
    for t in c.targets:
        alone = list(csv.DictReader(io.StringIO(report.render_analysis(t, "csv"))))
        mine = [r for r in rows if r["target"] == t.name]
        assert [r["layer"] for r in mine] == [r["layer"] for r in alone] == [layer.name for layer in t.layers]
        for column in ("trainable_params", "train_step_macs", "grads", "live_bytes", "saved_bytes", "ptflops"):
            assert [r[column] for r in mine] == [r[column] for r in alone], column
        # the tool's count per layer, from its profile's own layer counts
        assert [int(r["ptflops"]) for r in mine] == [int(layer.count) for layer in t.convention.layers]  # type: ignore[union-attr]


def test_every_feature_has_one_presenter_and_the_features_carry_no_presentation() -> None:
    assert sorted(PRESENTERS) == sorted(FEATURES)
    for name in FEATURES:
        assert presenter(name).name == name
    # the data classes keep their name and JSON; every drawing method is the presenter's
    drawing = {m for m in vars(Presenter) if not m.startswith("_")} - {"name"}
    for cls in (TrainingCost, Memory, Profile, Checks, Latency):
        assert cls.name in FEATURES
        assert sorted(m for m in drawing if hasattr(cls, m)) == [], cls.__name__


def test_a_second_presenter_for_a_feature_is_refused(registry_copy: dict[str, Presenter]) -> None:
    with pytest.raises(RuntimeError, match="'memory' is already registered"):
        register("memory")(EnergyPresenter)
    assert type(registry_copy["memory"]).__name__ == "MemoryPresenter"


def test_a_feature_without_a_presenter_is_named_never_skipped(monkeypatch: pytest.MonkeyPatch,
                                                             registry_copy: dict[str, Presenter]) -> None:
    names = FEATURES + ("energy",)
    monkeypatch.setattr(analysis_module, "FEATURES", names)
    monkeypatch.setattr(report, "FEATURES", names)
    a = _energetic("conv3x3:8 > fc:10")
    for fmt in ("table", "md", "csv"):
        with pytest.raises(UnpresentedFeature, match="'energy'"):
            report.render_analysis(a, fmt)
    assert a.to_dict()["energy_j"] == pytest.approx(a.macs * JOULES_PER_MAC)  # the JSON needs no presenter
