"""Measured latency beside the counts: the whole target and each of its layers, with their roofline.

:func:`measure_latency` takes an :class:`~costlab.core.analysis.Analysis` and returns a new one
whose ``latency`` (JSON ``latency_ms``) and ``roofline`` are filled in, for the target and
for every inference layer:

- the whole target runs as a real module: the user's own ``nn.Module`` when one is given
  (a ``package.module:callable`` target or the Python API), else the module
  :func:`~costlab.torch_bridge.build.build_module` builds from the analysis;
- each layer runs alone on random inputs of its recorded shapes: the user's submodule of
  that name when there is one, else the module or function its spec builds to — so the
  functional layers (residual add, concatenation, matmul) are timed too;
- everything in eval mode, under ``torch.inference_mode``, with a fixed thread count that is
  restored afterwards, timed by :func:`~costlab.torch_bridge.timing.time_callable`
  (warm-up, adaptive repetition, median and IQR, CUDA events on the GPU).

Caches are warm: a layer's input and weights are reused from call to call, as they would be
for a layer inside a network only when they fit in cache.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..core.analysis import FLOPS_PER_MAC, Analysis, Layer
from ..core.errors import CostlabError, SpecError
from ..analyses.latency import Latency, Roofline
from ..core.specs import Embedding, Held, Pad, Reduce, Spec
from .build import build_module, function_for, module_for
from ..core.roofline import Peaks, bound, roofline_fields
from .roofline import peaks_for
from .timing import torch_dtype
from .timing import Timing, TimingSettings, check_device, device_name, fixed_threads, time_callable

Progress = Callable[[str], None]

@dataclass(frozen=True)
class LatencySettings:
    """What to measure and how: device, CPU threads, per-layer or whole target only, timing care."""

    device: str = "cpu"
    threads: int | None = None
    per_layer: bool = True
    #: how each layer is timed
    timing: TimingSettings = field(default_factory=TimingSettings)
    #: how the whole target is timed: the headline figure, so sampled longer (None: as the layers)
    target_timing: TimingSettings | None = field(
        default_factory=lambda: TimingSettings(min_time_s=0.3, max_time_s=2.0, warmup_s=0.3, min_warmup_calls=5))


def measurement_count(analysis: Analysis, per_layer: bool = True) -> int:
    """How many timings :func:`measure_latency` takes (for a progress bar): the target and its layers."""
    return 1 + (len(analysis.layers) if per_layer else 0)


def current_threads() -> int:
    """torch's intra-op thread count now."""
    return torch.get_num_threads()


# --- what runs ---------------------------------------------------------------------------------

def layer_inputs(layer: Layer, device: torch.device, dtype: torch.dtype) -> list[torch.Tensor]:
    """Random inputs of the layer's recorded shapes (indices for an embedding)."""
    if isinstance(layer.spec, Embedding):
        return [torch.randint(layer.spec.num_embeddings, shape, device=device)
                for shape in layer.input_shapes]
    return [torch.randn(shape, device=device, dtype=dtype) for shape in layer.input_shapes]


def _leaf_submodule(root: nn.Module | None, name: str) -> nn.Module | None:
    if root is None:
        return None
    try:
        found = root.get_submodule(name)
    except AttributeError:
        return None
    return None if list(found.children()) else found


def _traced_function(spec: Spec) -> Callable[..., torch.Tensor] | None:
    """Functions for the specs a trace records that the builder does not build (a reduction, a pad)."""
    if isinstance(spec, Reduce):
        reduce, dims, keepdim = getattr(torch, spec.kind), spec.dims, spec.keepdim
        return (lambda x: reduce(x, dims, keepdim)) if dims else (lambda x: reduce(x))
    if isinstance(spec, Pad):
        pads, mode = list(spec.pads), spec.mode
        return lambda x: F.pad(x, pads, mode)
    return None


def layer_callable(layer: Layer, device: torch.device, dtype: torch.dtype,
                   root: nn.Module | None = None) -> Callable[..., Any]:
    """What computes this layer alone: the root's submodule of that name, else what its spec builds.

    Raises SpecError for a layer that runs nothing by itself (parameters a module holds but never
    uses) or that nothing here can run alone.
    """
    if isinstance(layer.spec, Held):
        raise SpecError("holds parameters its forward pass never uses: nothing runs")
    own = _leaf_submodule(root, layer.name)
    if own is not None:
        return own
    traced = _traced_function(layer.spec)
    if traced is not None:
        return traced
    with torch.device(device):
        built = module_for(layer.spec, layer.input_shapes)
    if built is not None:
        return built.to(dtype=dtype).eval()  # casts floating parameters only
    return function_for(layer.spec)


def network_input(analysis: Analysis, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A random input of the analysis's batch and shape (indices when an embedding reads it)."""
    shape = (analysis.batch,) + tuple(analysis.input)
    for layer in analysis.layers:
        if "input" in layer.inputs and isinstance(layer.spec, Embedding):
            return torch.randint(layer.spec.num_embeddings, shape, device=device)
    return torch.randn(shape, device=device, dtype=dtype)


def _module_on(module: nn.Module, device: torch.device, dtype: torch.dtype) -> nn.Module:
    """The module itself when its tensors already have this device and dtype, else a moved copy."""
    tensors = list(module.parameters()) + list(module.buffers())
    floating = [t for t in tensors if t.is_floating_point()]
    if all(t.device == device for t in tensors) and all(t.dtype == dtype for t in floating):
        return module
    return copy.deepcopy(module).to(device=device, dtype=dtype)


def _load_average() -> float | None:
    """The 1-minute load average of the machine (None where the OS does not give one)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def available_memory(device: torch.device) -> int | None:
    """Bytes that can be allocated now: the CUDA device's free memory, or the OS's MemAvailable
    (None where neither can be read)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def memory_needed(analysis: Analysis, element_bytes: int) -> int:
    """Bytes measuring ``analysis`` allocates at least, from its own counts: every parameter and buffer
    (params + buffers) × element size, plus the largest layer's inputs, weights and output (its
    ``bytes``), which exist together while it runs."""
    weights = sum(layer.params + layer.buffers for layer in analysis.layers) * element_bytes
    return weights + max(layer.bytes for layer in analysis.layers)


def check_memory(analysis: Analysis, device: torch.device, dtype: torch.dtype) -> None:
    """A CostlabError, before anything is allocated, when measuring cannot fit in the memory available."""
    from .build import check_torch_sizes

    check_torch_sizes(analysis)
    needed = memory_needed(analysis, torch.empty((), dtype=dtype).element_size())
    available = available_memory(device)
    if available is not None and needed > available:
        raise CostlabError(f"{analysis.name}: measuring latency needs at least {_bytes_text(needed)} "
                           f"(weights and the largest layer's tensors, from the counts), but {device.type} has "
                           f"{_bytes_text(available)} available; use a smaller --input or --batch")


def _bytes_text(count: int) -> str:
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6)):
        if count >= size:
            return f"{count / size:,.1f} {unit}"
    return f"{count:,} bytes"


# --- measuring -----------------------------------------------------------------------------

def _latency_entry(timing: Timing, name: str, dtype: str) -> dict[str, Any]:
    """A timing's ``latency_ms`` fields with the device's name and the dtype."""
    entry = timing.to_dict()
    entry["device_name"] = name
    entry["dtype"] = dtype
    return entry


def measure_latency(analysis: Analysis, settings: LatencySettings | None = None, *,
                    module: nn.Module | None = None, peaks: Peaks | None = None,
                    progress: Progress | None = None) -> Analysis:
    """A copy of ``analysis`` with measured latency and roofline, for the target and each layer.

    ``module``: the user's ``nn.Module`` to time (it is put in eval mode and its mode restored;
    a copy is moved when it is on another device or dtype); default: the module built from the
    analysis. ``peaks``: the machine's ceilings (default: cached, else calibrated now).
    ``progress`` is called with a label after each timing.
    """
    settings = settings or LatencySettings()
    device = check_device(settings.device)
    dtype = torch_dtype(analysis.dtype)
    if not analysis.layers:
        raise CostlabError(f"{analysis.name}: no layers to time")
    check_memory(analysis, device, dtype)
    name = device_name(device)
    load = _load_average()
    with fixed_threads(settings.threads) as threads:
        if peaks is None:
            peaks = peaks_for(device.type, threads, analysis.dtype)
        if module is not None:
            root = _module_on(module, device, dtype)
        else:
            with torch.device(device):
                root = build_module(analysis, device).to(dtype=dtype)
        modes = [(submodule, submodule.training) for submodule in root.modules()]  # each its own mode
        root.eval()
        try:
            x = network_input(analysis, device, dtype)
            whole = time_callable(lambda: root(x), device, threads, settings.target_timing or settings.timing)
            if progress:
                progress(f"{analysis.name}")
            layers = list(analysis.layers)
            untimed: list[str] = []
            if settings.per_layer:
                for index, layer in enumerate(layers):
                    try:
                        fn = layer_callable(layer, device, dtype, root)
                    except SpecError as error:
                        untimed.append(f"{layer.name} ({error})")
                        if progress:
                            progress(f"{analysis.name}: {layer.name} (not timed)")
                        continue
                    inputs = layer_inputs(layer, device, dtype)
                    timing = time_callable(lambda fn=fn, inputs=inputs: fn(*inputs), device, threads,
                                           settings.timing)
                    median_ms = timing.median_s * 1e3
                    roofline = roofline_fields(FLOPS_PER_MAC * layer.macs, layer.bytes, peaks, median_ms)
                    layers[index] = replace(layer, latency=Latency.from_dict(
                        _latency_entry(timing, name, analysis.dtype), Roofline.from_dict(roofline)))
                    if progress:
                        progress(f"{analysis.name}: {layer.name}")
        finally:
            for submodule, training in modes:
                submodule.training = training
    target_latency = _latency_entry(whole, name, analysis.dtype)
    if load is not None:
        target_latency["load_1min"] = load  # other work on the machine when the measurement began
    target_roofline = roofline_fields(FLOPS_PER_MAC * analysis.macs, analysis.bytes, peaks,
                                      whole.median_s * 1e3)
    notes = analysis.notes
    if settings.per_layer:
        timed = [layer.latency for layer in layers if layer.latency is not None and layer.latency.roofline is not None]
        target_latency["sum_of_layers"] = sum(latency.median for latency in timed)
        # Layers run one after another: the target's bound is the sum of its layers' bounds.
        target_roofline["predicted_ms"] = sum(latency.roofline.predicted_ms for latency in timed)  # type: ignore[union-attr]
        target_roofline["fraction"] = target_roofline["predicted_ms"] / target_latency["median"]
        target_roofline["compute_bound_layers"] = sum(latency.roofline.bound == "compute" for latency in timed)  # type: ignore[union-attr]
        target_roofline["memory_bound_layers"] = sum(latency.roofline.bound == "memory" for latency in timed)  # type: ignore[union-attr]
        del target_roofline["bound"]  # a network is not one roofline point
        if untimed:
            target_latency["untimed_layers"] = [entry.split(" (", 1)[0] for entry in untimed]
            notes = notes + (f"Not timed alone (no latency, not in sum_of_layers or the roofline sum): "
                             f"{'; '.join(untimed)}.",)
    else:
        # Whole targets only (compare without --per-layer): the target's bound is still the sum of
        # its layers' bounds, computed from their counts (no layer is timed for it).
        points = [bound(FLOPS_PER_MAC * layer.macs, layer.bytes, peaks) for layer in layers]
        target_roofline["predicted_ms"] = sum(point.seconds for point in points) * 1e3
        target_roofline["fraction"] = target_roofline["predicted_ms"] / target_latency["median"]
        target_roofline["compute_bound_layers"] = sum(point.kind == "compute" for point in points)
        target_roofline["memory_bound_layers"] = sum(point.kind == "memory" for point in points)
        del target_roofline["bound"]  # a network is not one roofline point
    target_roofline["peaks"] = peaks.to_dict()
    return replace(analysis, layers=tuple(layers), notes=notes).with_feature(
        Latency.from_dict(target_latency, Roofline.from_dict(target_roofline)))


def measure_all(analyses: Sequence[Analysis], settings: LatencySettings | None = None, *,
                modules: Mapping[int, nn.Module] | None = None, peaks: Peaks | None = None,
                progress: Progress | None = None) -> list[Analysis]:
    """:func:`measure_latency` for each analysis (``modules``: the user's module by position)."""
    modules = modules or {}
    return [measure_latency(a, settings, module=modules.get(i), peaks=peaks, progress=progress)
            for i, a in enumerate(analyses)]


# --- the user's module for a package.module:callable target ----------------------------------

def load_module(target: str, options: Mapping[str, Any] | None = None) -> nn.Module:
    """The ``nn.Module`` that ``package.module:callable`` returns, loaded as the trace loads it
    (:func:`costlab.torch_bridge.trace.load_callable`: option values read as Python literals)."""
    from .trace import load_callable

    return load_callable(target, options)
