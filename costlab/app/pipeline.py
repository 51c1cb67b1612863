"""One pipeline: a target priced, then each feature that was asked for, in one order.

``costlab.analyze`` in Python, the command line and ``costlab sweep`` each make a
:class:`~costlab.app.request.Request` and hand it to :func:`price`: count the target
(:func:`costlab.app.targets.analyze_target`), then price a training step (``freeze``), cross-check it against the real tools (``check``), add another tool's profile
(``convention``), the bytes it holds (``memory``), predict its latency from a kernel calibration
(``predict``: nothing runs) and measure it (``measure``; the prediction then carries the error). A
``package.module:callable`` target is built once per run: on the meta device when only counts
(and memory, which reads its modules' in-place flags) are asked for, with real weights on the
CPU when a check, a latency measurement or its own ``requires_grad`` flags need them — and that
one module serves every step.
"""

from __future__ import annotations

from typing import Any

from ..core.analysis import Analysis
from .request import Measure, Predict, Request, Steps, TargetKind
from .targets import analyze_target, module_target

__all__ = ["Measure", "Predict", "Request", "Steps", "latency_step", "prediction_step", "prepare", "price",
           "with_measured_prediction"]


def latency_step(device: str, threads: int | None = None, per_layer: bool = True) -> Measure:
    """The latency step of ``--latency DEVICE``: time the target (and each layer) on ``device``
    against the machine's peaks (cached, else measured now); torch is imported when it runs."""
    def measure(analysis: Analysis, module: Any) -> Analysis:
        from ..torch_bridge.latency import LatencySettings, measure_latency

        return measure_latency(analysis, LatencySettings(device=device, threads=threads, per_layer=per_layer),
                               module=module)
    return measure


def prediction_step(device: str, threads: int | None = None, calibration: Any = None) -> Predict:
    """The prediction step of ``--predict DEVICE``: each analysis's latency predicted from its layers
    and ``calibration`` (default: this machine's cached one for ``device``, ``threads`` and the
    analysis's dtype; a CostlabError saying to run ``costlab calibrate`` when there is none)."""
    loaded: dict[str, Any] = {}

    def predict(analysis: Analysis) -> Analysis:
        from ..analyses.prediction import predict as predicted

        found = calibration if calibration is not None else loaded.get(analysis.dtype)
        if found is None:
            from ..torch_bridge.calibration import calibration_for

            found = loaded[analysis.dtype] = calibration_for(device, threads, analysis.dtype)
        return analysis.with_feature(predicted(analysis, found))
    return predict


def with_measured_prediction(analysis: Analysis) -> Analysis:
    """The analysis with its measured median beside its prediction (the error), when it has both."""
    from ..analyses.prediction import with_measured

    prediction, latency = analysis.feature("prediction"), analysis.feature("latency")
    if prediction is None or latency is None:
        return analysis
    return analysis.with_feature(with_measured(prediction, latency.median))  # type: ignore[arg-type]


def _freeze(value: Any) -> Any:
    from ..analyses.training import parse_freeze

    return parse_freeze(value) if isinstance(value, str) else value


def price(request: Request) -> Analysis:
    """The analysis of one request with every one of its steps applied (see the module docstring)."""
    analysis, module = prepare(request)
    measure = request.steps.measure
    return with_measured_prediction(measure(analysis, module)) if measure is not None else analysis


def prepare(request: Request) -> tuple[Analysis, Any]:
    """Every step but the latency measurement, and the real module the steps used (None when none
    was needed): a caller that measures several targets under one progress bar measures them next."""
    steps = request.steps
    freeze = _freeze(steps.freeze) if steps.freeze is not None else None
    requires_grad = bool(getattr(freeze, "requires_grad", False))
    module = None
    if request.kind is TargetKind.CALLABLE and (steps.needs_real_module(requires_grad) or steps.memory):
        from ..torch_bridge.trace import callable_label, load_callable, trace_module

        text, opts = module_target(request.target, request.options)
        real = steps.needs_real_module(requires_grad)
        # built once for every step below: with real weights when a step runs it, else on meta
        module = load_callable(text, opts, device="cpu" if real else "meta")
        analysis = trace_module(module, request.input, batch=request.batch, dtype=request.dtype,
                                name=request.name or callable_label(text, opts), inputs=request.inputs,
                                rebuild=None if real else (lambda: load_callable(text, opts))).analysis
    else:
        if request.kind is TargetKind.MODULE:
            module = request.target
        analysis = analyze_target(request)
    if freeze is not None:
        from ..analyses.training import with_training

        if requires_grad:
            if module is None:
                from ..analyses.training import FreezeError

                raise FreezeError(f"--freeze requires_grad: {analysis.name} is not a module with requires_grad "
                                  "flags (a package.module:callable target)")
            from ..torch_bridge.flags import freeze_from_module

            freeze = freeze_from_module(analysis, module)
        analysis = with_training(analysis, freeze)
    if steps.check:
        from ..torch_bridge.crosscheck import cross_check

        analysis = cross_check(analysis, module, steps.check)
    if steps.convention:
        from ..analyses.conventions import with_convention

        analysis = with_convention(analysis, steps.convention)
    if steps.memory:
        if module is not None and request.kind.builds_module:
            from ..torch_bridge.lifetimes import predict_memory
            from ..torch_bridge.memory import inplace_layers

            # a module's peaks follow its own forward (a meta run); its in-place flags for the per-layer view
            analysis = analysis.with_feature(predict_memory(analysis, module, steps.memory, request.inputs,
                                                            inplace_layers(module, analysis)))
        else:
            from ..analyses.memory import with_memory

            analysis = with_memory(analysis, steps.memory)
    if steps.predict is not None:
        analysis = steps.predict(analysis)
    return analysis, module

