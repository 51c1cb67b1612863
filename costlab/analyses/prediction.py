"""Predicted latency: each layer's kernel, a model fitted per kernel family, a target's sum (no torch).

A layer's time is predicted from its spec and shapes alone, against a *calibration*: timings of
sampled layer configurations of each kernel family on one machine (``costlab calibrate``;
measured by :mod:`costlab.torch_bridge.calibration`, never a whole model). The model of a family
``f`` is the roofline with its ceilings fitted instead of assumed, plus a per-call cost:

    t_f(W, B) = o_f + W / p_f + B / w_f

``W`` the layer's arithmetic (FLOPs = 2 × MACs for convolutions, linear layers and products;
the counted ops for the rest), ``B`` the bytes it reads and writes, ``o_f`` the fixed cost of one
call (Python, dispatch, thread start), ``p_f`` and ``w_f`` the rates the family's kernels reach —
fitted by non-negative least squares on relative error. What a family's kernels do that the three
terms cannot say (a tile that fits the cache or does not, a small channel count a vector unit
half fills, a stride that breaks a fast path) is corrected locally: the measured / fitted ratios
of the calibration samples near the layer, in a log-scaled space of its shape (``descriptor``),
averaged with Gaussian weights (bandwidth :data:`BANDWIDTH` decades) and shrunk towards 1 where no
sample is near (:data:`PRIOR_WEIGHT`). A target's prediction is the sum over its layers: layers
run one after another, each call paying its own cost.

A family the calibration has no sample of is predicted by the roofline of the calibration's peaks
plus the per-call cost of the cheapest calls, and the layer is named (``fallback_layers``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, ClassVar, Mapping, Sequence

from ..core.errors import CostlabError, SpecError
from ..core.features import FLOPS_PER_MAC, Feature
from ..core.formulas import numel
from ..core.roofline import Peaks, bound
from ..core.specs import (Activation, AdaptivePool, Attention, Concat, Conv, Dropout, Elementwise, Embedding,
                    Flatten, Held, Linear, Matmul, Norm, Pad, Pool, Recurrent, Reduce, Reshape, Shape, Spec,
                    Upsample)

#: The calibration file's format; a calibration of another version is not read (it is a cache).
CALIBRATION_VERSION = 1
#: Width (in decades, log10 units) of the Gaussian weights of the local correction.
BANDWIDTH = 0.25
#: Weight of "no correction" in the local average: where no sample is near, the fit stands.
PRIOR_WEIGHT = 0.5

#: Activations whose kernel is one compare or clamp per element (the rest evaluate a transcendental).
CHEAP_ACTIVATIONS = frozenset(("identity", "relu", "relu6", "hardtanh", "leaky_relu"))


@dataclass(frozen=True)
class Kernel:
    """What a layer asks of the machine: its family, arithmetic (FLOPs or ops), bytes, and the
    log-scaled shape the local correction compares samples by."""

    family: str
    work: float
    bytes: float
    descriptor: tuple[float, ...]


KernelFn = Callable[[Spec, Sequence[Shape], Shape, int, int, int], Kernel]
#: Spec type → what its kernel is (one reader per spec type; a duplicate is refused).
KERNELS: dict[type, KernelFn] = {}


def kernel_of(*spec_types: type) -> Callable[[KernelFn], KernelFn]:
    """Register the kernel reader of ``spec_types`` (refusing a type that already has one)."""
    def register(fn: KernelFn) -> KernelFn:
        for spec_type in spec_types:
            if spec_type in KERNELS:
                raise ValueError(f"{spec_type.__name__} already has a kernel reader")
            KERNELS[spec_type] = fn
        return fn
    return register


def _log(value: float) -> float:
    return math.log10(max(value, 1.0))


def _base(work: float, moved: float) -> tuple[float, float]:
    return _log(work), _log(moved)


@kernel_of(Conv)
def _conv(spec: Spec, inputs: Sequence[Shape], output: Shape, macs: int, ops: int, moved: int) -> Kernel:
    assert isinstance(spec, Conv)
    channels = inputs[0][1]
    if spec.transposed:
        variant = "transposed"
    elif spec.groups > 1 and spec.groups == channels:
        variant = "depthwise"
    elif spec.groups > 1:
        variant = "grouped"
    elif all(k == 1 for k in spec.kernel):
        variant = "pointwise"
    else:
        variant = "standard"
    work = FLOPS_PER_MAC * macs
    return Kernel(f"conv{spec.ndim}d-{variant}", work, moved,
                  _base(work, moved) + (_log(channels // spec.groups), _log(math.prod(spec.kernel)),
                                        _log(math.prod(spec.stride)), _log(numel(output[2:]))))


@kernel_of(Linear, Matmul, Recurrent)
def _product(spec: Spec, inputs: Sequence[Shape], output: Shape, macs: int, ops: int, moved: int) -> Kernel:
    work = FLOPS_PER_MAC * macs
    if isinstance(spec, Matmul):
        a, b = inputs[0], inputs[1]
        rows, depth, columns = (a[-2] if len(a) > 1 else 1), a[-1], (b[-1] if len(b) > 1 else 1)
        batches = numel(output) // max(rows * columns, 1)
        family = "bmm" if batches > 1 else "matmul"
    else:
        depth = inputs[0][-1]
        columns = output[-1]
        rows, batches = numel(inputs[0]) // max(depth, 1), 1
        family = "linear"
    return Kernel(family, work, moved, _base(work, moved) + (_log(rows), _log(depth), _log(columns), _log(batches)))


@kernel_of(Attention)
def _attention(spec: Spec, inputs: Sequence[Shape], output: Shape, macs: int, ops: int, moved: int) -> Kernel:
    q, k = inputs[0], inputs[1]
    work = FLOPS_PER_MAC * macs + ops
    return Kernel("attention", work, moved,
                  _base(work, moved) + (_log(q[-2]), _log(k[-2]), _log(q[-1]), _log(numel(q[:-2]))))


@kernel_of(Norm)
def _norm(spec: Spec, inputs: Sequence[Shape], output: Shape, macs: int, ops: int, moved: int) -> Kernel:
    assert isinstance(spec, Norm)
    return Kernel(f"norm-{spec.kind}", ops, moved, _base(ops, moved) + (_log(inputs[0][1]) if len(inputs[0]) > 1 else 0.0,))


@kernel_of(Activation)
def _activation(spec: Spec, inputs: Sequence[Shape], output: Shape, macs: int, ops: int, moved: int) -> Kernel:
    assert isinstance(spec, Activation)
    if spec.kind in ("softmax", "log_softmax"):
        family = "softmax"
    elif spec.kind in CHEAP_ACTIVATIONS:
        family = "act-simple"
    else:
        family = f"act-{spec.kind}"
    return Kernel(family, ops, moved, _base(ops, moved))


@kernel_of(Elementwise)
def _elementwise(spec: Spec, inputs: Sequence[Shape], output: Shape, macs: int, ops: int, moved: int) -> Kernel:
    broadcast = any(tuple(shape) != tuple(output) for shape in inputs)
    return Kernel("elementwise-broadcast" if broadcast else "elementwise", ops, moved, _base(ops, moved))


@kernel_of(Pool, AdaptivePool, Reduce)
def _pool(spec: Spec, inputs: Sequence[Shape], output: Shape, macs: int, ops: int, moved: int) -> Kernel:
    if isinstance(spec, Pool):
        family = f"pool-{spec.mode}"
    elif isinstance(spec, AdaptivePool):
        family = f"pool-adaptive-{spec.mode}"
    else:
        family = "reduce"
    return Kernel(family, ops, moved, _base(ops, moved) + (_log(numel(inputs[0]) / max(numel(output), 1)),))


@kernel_of(Concat, Pad, Upsample, Embedding)
def _copy(spec: Spec, inputs: Sequence[Shape], output: Shape, macs: int, ops: int, moved: int) -> Kernel:
    family = {Concat: "concat", Pad: "pad", Upsample: "upsample", Embedding: "embedding"}[type(spec)]
    return Kernel(family, ops, moved, _base(ops, moved) + (_log(len(inputs)),))


@kernel_of(Flatten, Reshape, Dropout)
def _call(spec: Spec, inputs: Sequence[Shape], output: Shape, macs: int, ops: int, moved: int) -> Kernel:
    """A view or an identity in eval mode: nothing but the call itself."""
    return Kernel("call", 0.0, 0.0, ())


def kernel(spec: Spec, inputs: Sequence[Shape], output: Shape, macs: int, ops: int, moved: int) -> Kernel | None:
    """The kernel of a layer (None for one that runs nothing: parameters held but never used)."""
    if isinstance(spec, Held):
        return None
    try:
        reader = KERNELS[type(spec)]
    except KeyError:
        raise SpecError(f"no kernel reader for {type(spec).__name__}") from None
    return reader(spec, inputs, output, macs, ops, moved)


def layer_kernel(layer: Any) -> Kernel | None:
    """The kernel of a :class:`~costlab.core.analysis.Layer`."""
    return kernel(layer.spec, layer.input_shapes, layer.output, layer.macs, layer.ops, layer.bytes)


# --- the fit ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sample:
    """One calibration timing: a layer configuration's kernel and its measured median (seconds)."""

    family: str
    work: float
    bytes: float
    descriptor: tuple[float, ...]
    seconds: float
    label: str = ""
    #: starved of the CPU in every attempt (kept: the least starved attempt)
    starved: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "work": self.work, "bytes": self.bytes, "descriptor": list(self.descriptor),
                "seconds": self.seconds, "label": self.label, "starved": self.starved}

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any]) -> "Sample":
        return cls(str(entry["family"]), float(entry["work"]), float(entry["bytes"]),
                   tuple(float(x) for x in entry["descriptor"]), float(entry["seconds"]), str(entry.get("label", "")),
                   bool(entry.get("starved", False)))


def _solve(rows: Sequence[Sequence[float]], targets: Sequence[float]) -> list[float] | None:
    """Least squares by the normal equations (Gaussian elimination); None when singular."""
    n = len(rows[0])
    a = [[sum(r[i] * r[j] for r in rows) for j in range(n)] + [sum(r[i] * t for r, t in zip(rows, targets))]
         for i in range(n)]
    for column in range(n):
        pivot = max(range(column, n), key=lambda r: abs(a[r][column]))
        if abs(a[pivot][column]) < 1e-12:
            return None
        a[column], a[pivot] = a[pivot], a[column]
        for r in range(n):
            if r != column:
                factor = a[r][column] / a[column][column]
                a[r] = [x - factor * y for x, y in zip(a[r], a[column])]
    return [a[i][n] / a[i][i] for i in range(n)]


def fit_terms(samples: Sequence[Sample]) -> tuple[float, float, float]:
    """(o, 1/p, 1/w) ≥ 0 minimising Σ ((o + W/p + B/w − t) / t)²: non-negative least squares over
    the subsets of the three terms (the best feasible one)."""
    columns = [lambda s: 1.0, lambda s: s.work, lambda s: s.bytes]
    best: tuple[float, tuple[float, float, float]] = (math.inf, (min(s.seconds for s in samples), 0.0, 0.0))
    for mask in range(1, 8):
        chosen = [i for i in range(3) if mask >> i & 1]
        if any(all(columns[i](s) == 0 for s in samples) for i in chosen):
            continue
        rows = [[columns[i](s) / s.seconds for i in chosen] for s in samples]
        solution = _solve(rows, [1.0] * len(samples))
        if solution is None or any(x < 0 for x in solution):
            continue
        coefficients = [0.0, 0.0, 0.0]
        for i, x in zip(chosen, solution):
            coefficients[i] = x
        error = sum(((coefficients[0] + coefficients[1] * s.work + coefficients[2] * s.bytes) / s.seconds - 1) ** 2
                    for s in samples)
        if error < best[0]:
            best = (error, (coefficients[0], coefficients[1], coefficients[2]))
    return best[1]


@dataclass(frozen=True)
class FamilyModel:
    """One kernel family's fitted terms and the samples its local correction reads."""

    family: str
    overhead_s: float
    seconds_per_work: float
    seconds_per_byte: float
    samples: tuple[Sample, ...]
    #: log(measured / fitted) of each sample
    residuals: tuple[float, ...] = ()

    def base(self, work: float, moved: float) -> float:
        return self.overhead_s + self.seconds_per_work * work + self.seconds_per_byte * moved

    def correction(self, descriptor: Sequence[float], skip: int | None = None) -> float:
        """exp of the Gaussian-weighted mean of nearby samples' log residuals, shrunk towards 0."""
        total = weight_sum = 0.0
        for index, (sample, residual) in enumerate(zip(self.samples, self.residuals)):
            if index == skip or len(sample.descriptor) != len(descriptor):
                continue
            distance = sum((a - b) ** 2 for a, b in zip(sample.descriptor, descriptor))
            weight = math.exp(-distance / (2 * BANDWIDTH ** 2))
            total += weight * residual
            weight_sum += weight
        return math.exp(total / (weight_sum + PRIOR_WEIGHT))

    def predict(self, k: Kernel, skip: int | None = None) -> float:
        """Seconds of one call of kernel ``k``."""
        return self.base(k.work, k.bytes) * self.correction(k.descriptor, skip)

    @classmethod
    def fit(cls, family: str, samples: Sequence[Sample]) -> "FamilyModel":
        overhead, per_work, per_byte = fit_terms(samples)
        model = cls(family, overhead, per_work, per_byte, tuple(samples))
        residuals = tuple(math.log(s.seconds / max(model.base(s.work, s.bytes), 1e-12)) for s in samples)
        return cls(family, overhead, per_work, per_byte, tuple(samples), residuals)

    def held_out_errors(self) -> list[float]:
        """Each sample predicted without itself: |predicted − measured| / measured (leave-one-out)."""
        errors = []
        for index, sample in enumerate(self.samples):
            k = Kernel(sample.family, sample.work, sample.bytes, sample.descriptor)
            errors.append(abs(self.predict(k, skip=index) / sample.seconds - 1))
        return errors


@dataclass(frozen=True)
class Calibration:
    """A machine's kernel timings and the models fitted to them, keyed as the peaks are."""

    peaks: Peaks
    samples: tuple[Sample, ...]
    measured_at: str = ""
    #: seconds the calibration took, and the budget it had
    seconds: float = 0.0
    budget_s: float = 0.0
    #: samples starved of the CPU in every attempt (kept in the fit, counted here)
    starved: int = 0
    #: true when too many samples were starved (then used for the run that made it, never cached)
    contended: bool = False
    torch_version: str = ""
    version: int = CALIBRATION_VERSION
    models: Mapping[str, FamilyModel] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.models:
            families: dict[str, list[Sample]] = {}
            for sample in self.samples:
                if sample.seconds > 0:
                    families.setdefault(sample.family, []).append(sample)
            object.__setattr__(self, "models", MappingProxyType(
                {family: FamilyModel.fit(family, members) for family, members in sorted(families.items())}))

    @property
    def key(self) -> str:
        return self.peaks.key

    @property
    def call_s(self) -> float:
        """The cost of one call that does nothing (the ``call`` family), else the smallest fitted overhead."""
        if "call" in self.models:
            return self.models["call"].overhead_s
        overheads = [m.overhead_s for m in self.models.values() if m.overhead_s > 0]
        return min(overheads) if overheads else 0.0

    def identity(self) -> dict[str, Any]:
        """What names this calibration in every prediction: machine, device, threads, dtype, date."""
        return {"host": self.peaks.host, "device": self.peaks.device, "device_name": self.peaks.device_name,
                "threads": self.peaks.threads, "dtype": self.peaks.dtype, "measured_at": self.measured_at,
                "samples": len(self.samples), "families": len(self.models), "seconds": round(self.seconds, 1),
                "starved": self.starved, "contended": self.contended, "torch_version": self.torch_version}

    def describe(self) -> str:
        """'calibration of host (AMD EPYC, cpu, 2 threads, float32) at 2026-12-07T23:50:00+00:00'."""
        p = self.peaks
        threads = f", {p.threads} thread{'s' if p.threads != 1 else ''}" if p.device == "cpu" else ""
        return (f"calibration of {p.host} ({p.device_name}, {p.device}{threads}, {p.dtype}) at "
                f"{self.measured_at or '?'}")

    def predict_kernel(self, k: Kernel) -> tuple[float, bool]:
        """(seconds, fitted): the family's model, else the roofline of the peaks plus one call's cost."""
        model = self.models.get(k.family)
        if model is not None:
            return model.predict(k), True
        if k.family == "call":
            return self.call_s, False
        return bound(int(k.work), int(k.bytes), self.peaks).seconds + self.call_s, False

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "peaks": self.peaks.to_dict(), "measured_at": self.measured_at,
                "seconds": self.seconds, "budget_s": self.budget_s, "starved": self.starved,
                "contended": self.contended, "torch_version": self.torch_version,
                "samples": [s.to_dict() for s in self.samples]}

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any]) -> "Calibration":
        if entry.get("version") != CALIBRATION_VERSION:
            raise CostlabError(f"calibration format {entry.get('version')!r}, not {CALIBRATION_VERSION}")
        return cls(Peaks.from_dict(entry["peaks"]), tuple(Sample.from_dict(s) for s in entry["samples"]),
                   str(entry.get("measured_at", "")), float(entry.get("seconds", 0.0)),
                   float(entry.get("budget_s", 0.0)), int(entry.get("starved", 0)),
                   bool(entry.get("contended", False)), str(entry.get("torch_version", "")))

    def fit_summary(self) -> list[dict[str, Any]]:
        """Per family: samples, fitted terms and the median leave-one-out error of its samples."""
        rows = []
        for family, model in self.models.items():
            errors = sorted(model.held_out_errors())
            rows.append({"family": family, "samples": len(model.samples), "overhead_us": model.overhead_s * 1e6,
                         "gflops": (1e-9 / model.seconds_per_work) if model.seconds_per_work else None,
                         "gbps": (1e-9 / model.seconds_per_byte) if model.seconds_per_byte else None,
                         "median_held_out_error": errors[len(errors) // 2] if errors else None})
        return rows


# --- predicting an analysis ----------------------------------------------------------------------

def predict_layers(layers: Sequence[Any], calibration: Calibration) -> tuple[tuple[tuple[str, float], ...], tuple[str, ...]]:
    """((layer name, predicted ms), ...) and the layers predicted by the roofline fallback."""
    predicted: list[tuple[str, float]] = []
    fallback: list[str] = []
    for layer in layers:
        k = layer_kernel(layer)
        if k is None:
            continue
        seconds, fitted = calibration.predict_kernel(k)
        predicted.append((layer.name, seconds * 1e3))
        if not fitted:
            fallback.append(f"{layer.name} ({k.family})")
    return tuple(predicted), tuple(fallback)


def predict(analysis: Any, calibration: Calibration) -> "Prediction":
    """The analysis's predicted latency: each layer's, and their sum (layers run one after another)."""
    if analysis.dtype != calibration.peaks.dtype:
        raise CostlabError(f"{analysis.name} is in {analysis.dtype}, the calibration in {calibration.peaks.dtype}: "
                           f"run costlab calibrate --dtype {analysis.dtype}")
    layers, fallback = predict_layers(analysis.layers, calibration)
    return Prediction(sum(ms for _, ms in layers), layers, calibration.identity(), calibration.describe(), fallback)


def error(predicted: float, measured: float) -> float:
    """(predicted − measured) / measured."""
    return (predicted - measured) / measured


@dataclass(frozen=True)
class Prediction(Feature):
    """A target's predicted latency (ms; JSON ``predicted_latency_ms``), each layer's, and the
    calibration it came from (JSON ``prediction``); with a measurement beside it, the error. How it
    is drawn is costlab.render.features.prediction's."""

    total_ms: float
    layers: tuple[tuple[str, float], ...]
    calibration: Mapping[str, Any]
    described: str
    fallback_layers: tuple[str, ...] = ()
    #: the target's measured median (ms) when --latency ran too
    measured_ms: float | None = None

    name: ClassVar[str] = "prediction"

    @property
    def by_layer(self) -> dict[str, float]:
        return dict(self.layers)

    @property
    def error(self) -> float | None:
        return error(self.total_ms, self.measured_ms) if self.measured_ms else None

    def json_fields(self, unit: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"calibration": dict(self.calibration),
                                 "model": "per kernel family: o + W/p + B/w, locally corrected (docs/cost-model.md)"}
        if self.fallback_layers:
            entry["fallback_layers"] = list(self.fallback_layers)
        if self.error is not None:
            entry["measured_ms"] = self.measured_ms
            entry["error"] = self.error
        return {"predicted_latency_ms": self.total_ms, "prediction": entry}

    def layer_json(self, name: str) -> dict[str, Any]:
        value = self.by_layer.get(name)
        return {} if value is None else {"predicted_latency_ms": value}


def with_measured(prediction: Prediction | None, measured_ms: float | None) -> Prediction | None:
    """The prediction with the measured median beside it (for the error columns)."""
    if prediction is None or measured_ms is None:
        return prediction
    from dataclasses import replace

    return replace(prediction, measured_ms=measured_ms)
