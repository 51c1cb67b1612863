"""costlab: what will this layer design cost?

MACs, parameters, other arithmetic, activations and memory of CNN layers, blocks and
architectures from closed-form formulas (no torch needed), checked against fvcore and
PyTorch's own counter on real modules.

    >>> import costlab
    >>> a = costlab.analyze("conv1x1:16 > conv5x5:32", input=(192, 28, 28))
    >>> a.macs
    12443648
    >>> costlab.compare(["conv5x5:32", "conv1x1:16 > conv5x5:32"], input=(192, 28, 28)).ratios[1]
    9.677...

Importing costlab does not import torch; analysing an ``nn.Module`` does.
"""

from __future__ import annotations

from typing import Any, Sequence

from .render import report as _report  # installs the results' own rendering (costlab.core.analysis.RENDERING)
from .core.analysis import Analysis, Comparison, Layer, Row, Unsupported
from .core.errors import CostlabError, ExpressionError, SpecError, TargetError
from .core.graph import Net, Value
from .core.specs import Shape
from .core.tools import CONVENTION_TOOLS, PEER_TOOLS
from .core.zoo import PRESETS

__all__ = ["analyze", "compare", "Analysis", "Comparison", "Layer", "Row", "Unsupported", "Net",
           "Value", "PRESETS", "CostlabError", "ExpressionError", "SpecError", "TargetError"]
__version__ = "0.1.0"


def _tool_names(check: Any) -> tuple[str, ...]:
    """``check=``: a tool name or a list of them (as ``--check``)."""
    if check is None or check == () or check == []:
        return ()
    if isinstance(check, str):
        return (check,)
    if isinstance(check, (list, tuple)) and all(isinstance(name, str) for name in check):
        return tuple(check)
    raise CostlabError(f"check must be a tool name or a list of tool names ({', '.join(PEER_TOOLS)}), "
                       f"got {type(check).__name__} {str(check)[:60]}")


def analyze(target: Any, input: Shape | None = None, batch: int = 1, dtype: str = "float32",
            name: str | None = None, freeze: Any = None, convention: str | None = None,
            inputs: Any = None, seq: int | None = None, check: Any = None, memory: bool = False,
            optimizer: str | None = None, latency: str | None = None, threads: int | None = None,
            head: str | None = None, generate: int | None = None, predict: str | None = None,
            calibration: Any = None, **options: Any) -> Analysis:
    """Cost of one target: a preset name, a layer-stack expression, a spec file,
    ``"package.module:callable"``, ``"hf:PATH"`` or an ``nn.Module``. ``options`` go to the preset
    or callable.

    A module is fed one float tensor of ``input`` shape with ``batch`` in front, or ``inputs``: a
    tensor (batch axis included, used as given), a tuple of positional arguments or a dict of
    keyword arguments, whose values may be tensors of any dtype and device, lists, tuples and
    dicts of them, or plain Python values (:mod:`costlab.core.inputs`). ``seq``: tokens per sample of
    an ``hf:`` text model (default 128). ``check`` (a tool name or a list: fvcore, torch, ptflops,
    thop, torchinfo, torchprofile) fills ``analysis.checks`` as ``--check`` does.

    ``freeze`` (a count, a fraction or a layer name, as ``--freeze``) adds the cost of one
    training step with that leading part frozen (``analysis.training``); ``convention``
    (fvcore, ptflops, thop, torchinfo, torchvision, ...) adds what that tool would report
    (``analysis.convention``); ``memory=True`` (or an ``optimizer``: sgd, momentum, adam, adamw;
    default adam) adds the bytes held at inference and in a training step (``analysis.memory``);
    ``latency`` ('cpu' or 'cuda') measures the target and each of its layers there, with their
    roofline (``analysis.latency``, ``layer.latency``; ``threads``: CPU threads, default torch's),
    as ``--latency`` does: the peaks are the cached ones, else measured first.

    ``hf:`` targets: ``head`` (none, causal-lm, masked-lm, seq2seq-lm, …) chooses the model built
    (default: the one the config names, else its causal LM); ``generate=N`` prices
    ``generate(max_new_tokens=N)`` on ``seq`` prompt tokens (``analysis.generation``: prefill, each
    decode step, the KV cache's bytes). ``predict`` ('cpu' or
    'cuda') predicts the latency of the target and each layer from the counts, running nothing
    (``analysis.prediction``), as ``--predict`` does: from ``calibration`` (a
    ``costlab.analyses.prediction.Calibration``, such as ``costlab calibrate`` or
    ``costlab.torch_bridge.calibration.measure_calibration`` makes) or else this machine's cached one;
    with ``latency`` too, the prediction carries its error against the measurement."""
    from .app.pipeline import price
    from .app.request import Request, Steps

    checks = _tool_names(check)
    if convention is not None and not isinstance(convention, str):
        raise CostlabError(f"convention must be a tool name ({', '.join(CONVENTION_TOOLS)}), "
                           f"got {type(convention).__name__}")
    if threads is not None and latency is None and predict is None:
        raise CostlabError("threads= needs latency= or predict=")
    if calibration is not None and predict is None:
        raise CostlabError("calibration= needs predict=")
    prediction = None
    if predict is not None:
        from .app.pipeline import prediction_step
        if predict not in ("cpu", "cuda"):
            raise CostlabError(f"predict must be 'cpu' or 'cuda', got {predict!r}")
        if latency is not None and latency != predict:
            raise CostlabError(f"predict={predict!r} and latency={latency!r}: a prediction is compared with a "
                               "measurement on the same device")
        prediction = prediction_step(predict, threads, calibration)
    measure = None
    if latency is not None:
        from .app.pipeline import latency_step

        if latency not in ("cpu", "cuda"):
            raise CostlabError(f"latency must be 'cpu' or 'cuda', got {latency!r}")

        measure = latency_step(latency, threads)
    return price(Request.of(target, _shape(input), inputs=inputs, batch=batch, dtype=dtype, seq=seq,
                            options=options, name=name,
                            steps=Steps(freeze=freeze, check=checks, convention=convention,
                                        memory=(optimizer or "adam") if memory or optimizer is not None else None,
                                        measure=measure, predict=prediction),
                            head=head, generate=generate))


def compare(targets: Sequence[Any], input: Shape | None = None, batch: int = 1,
            dtype: str = "float32", unit: str = "macs", freeze: Any = None,
            convention: str | None = None, memory: bool = False, optimizer: str | None = None,
            predict: str | None = None, calibration: Any = None, threads: int | None = None,
            **options: Any) -> Comparison:
    """Several targets side by side; ``ratios`` are MACs of the first over MACs of each. ``predict``,
    ``calibration`` and ``threads``: each target's predicted latency, as :func:`analyze`."""
    if isinstance(targets, str):
        raise CostlabError("compare() takes a list of targets")
    if unit not in ("macs", "flops"):
        raise CostlabError(f"unit must be 'macs' or 'flops', got {unit!r}")
    if not targets:
        raise CostlabError("compare() needs at least one target")
    return Comparison(tuple(analyze(t, input, batch, dtype, freeze=freeze, convention=convention,
                                    memory=memory, optimizer=optimizer, predict=predict,
                                    calibration=calibration, threads=threads, **options)
                            for t in targets), unit)


def _shape(input: Any) -> Shape | None:
    """``input=`` as a tuple of sizes; a CostlabError for what is not a sequence (``input=32``)."""
    if input is None:
        return None
    if isinstance(input, (str, bytes)) or not hasattr(input, "__iter__"):
        raise CostlabError(f"input is a shape such as (3, 224, 224), got {input!r}")
    return tuple(input)
