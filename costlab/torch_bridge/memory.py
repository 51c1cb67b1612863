"""Measure what a model holds, with PyTorch's ``MemTracker``, beside costlab's prediction.

``torch.distributed._tools.mem_tracker.MemTracker`` is a dispatch mode that follows every
tensor storage created under it (and those given to ``track_external``) and files each
under parameters, buffers, gradients, activations, temporaries and optimizer state; its
``"peak"`` snapshot is the largest total it saw after any op. On CPU a storage counts its
exact bytes (on CUDA it rounds to the allocator's 512-byte blocks). What it does not see:
memory an op uses inside its kernel without creating a tensor (a convolution's im2col or
oneDNN workspace, BLAS packing buffers), the allocator's caching and fragmentation, and
Python objects.

The measured run is the one :mod:`costlab.analyses.memory` prices:

- inference: ``torch.no_grad()``, eval mode, one forward on a random input;
- training step: train mode, ``zero_grad(set_to_none=True)``, ``loss = model(x).sum()``,
  ``loss.backward()``, ``optimizer.step()``, run twice so that the second step runs with the
  optimizer state already there (the steady state); frozen layers' parameters have
  ``requires_grad=False`` and stay out of the optimizer.

A preset or expression runs layer by layer from its analysis (:func:`run_layers`, each
tensor dropped after its last use, as the prediction assumes) on the modules
:func:`~costlab.torch_bridge.build.build_module` builds: the built module's own forward keeps
a block's tensors until the block returns. A traced module runs its own ``forward``, so its
Python code decides how long a tensor lives (a block's argument stays alive until the block
returns even when the graph no longer needs it; costlab does not see that).

The module is a copy when it is the user's (its flags, gradients and parameters are left
as they were).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Collection, Iterable

import torch
from torch import nn

from ..core.analysis import Analysis
from ..core.errors import CostlabError
from ..analyses.memory import parse_optimizer
from ..core.specs import Activation, Dropout

#: learning rate of the measured step (its value does not change the memory)
_LR = 1e-3


@dataclass(frozen=True)
class MeasuredMemory:
    """MemTracker's peak totals (bytes) and the breakdown at each peak."""

    inference_peak: int
    training_peak: int
    inference_breakdown: dict[str, int]
    training_breakdown: dict[str, int]
    optimizer: str


def make_optimizer(parameters: Iterable[nn.Parameter], optimizer: str) -> torch.optim.Optimizer:
    """The optimizer ``--optimizer`` names, on these parameters."""
    optimizer = parse_optimizer(optimizer)
    params = list(parameters)
    if optimizer == "sgd":
        return torch.optim.SGD(params, lr=_LR)
    if optimizer == "momentum":
        return torch.optim.SGD(params, lr=_LR, momentum=0.9)
    if optimizer == "adamw":
        return torch.optim.AdamW(params, lr=_LR)
    return torch.optim.Adam(params, lr=_LR)


def _layer_module_path(layer_name: str, paths: Collection[str]) -> str | None:
    """The module path a layer name was read from: itself, or itself less a ``_N`` repeat suffix."""
    if layer_name in paths:
        return layer_name
    match = re.fullmatch(r"(.+)_\d+", layer_name)
    if match and match.group(1) in paths:
        return match.group(1)
    return None


def inplace_layers(module: nn.Module, analysis: Analysis) -> tuple[str, ...]:
    """Names of the analysis' activation layers computed by a leaf module with ``inplace=True``."""
    paths = {name for name, child in module.named_modules() if getattr(child, "inplace", False) is True}
    return tuple(layer.name for layer in analysis.layers
                 if isinstance(layer.spec, (Activation, Dropout)) and _layer_module_path(layer.name, paths))


def frozen_parameters(module: nn.Module, analysis: Analysis) -> list[nn.Parameter]:
    """The parameters of the layers ``analysis.training`` freezes (by module path)."""
    if analysis.training is None or not analysis.training.frozen:
        return []
    modules = dict(module.named_modules())
    frozen: list[nn.Parameter] = []
    for name in analysis.training.frozen:
        path = _layer_module_path(name, modules)
        if path is None:
            raise CostlabError(f"cannot freeze {name}: no module {name!r} in the measured model")
        frozen.extend(modules[path].parameters(recurse=False))
    return frozen


def _total(snapshot: dict[Any, dict[str, int]], device: torch.device) -> tuple[int, dict[str, int]]:
    for dev, values in snapshot.items():
        if torch.device(dev).type == device.type:
            return int(values["Total"]), {str(getattr(k, "value", k)): int(v) for k, v in values.items()}
    return 0, {}


class LayerRunner(nn.Module):
    """Runs an analysis' layers one by one on a built module's leaves, dropping each tensor after
    its last use (the liveness :mod:`costlab.analyses.memory` prices)."""

    def __init__(self, built: nn.Module, analysis: Analysis) -> None:
        super().__init__()
        from .build import function_for

        self.built = built
        modules = dict(built.named_modules())
        self.layers = [layer for layer in analysis.layers if layer.inputs]
        self.calls = [modules[layer.name] if layer.name in modules and layer.name else function_for(layer.spec)
                      for layer in self.layers]
        last: dict[str, int] = {}
        for index, layer in enumerate(self.layers):
            for name in layer.inputs:
                last[name] = index
        output = self.layers[-1].name
        self.release = [tuple(dict.fromkeys(n for n in layer.inputs if last[n] == index and n != output))
                        for index, layer in enumerate(self.layers)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        env: dict[str, torch.Tensor] = {"input": x}
        del x  # the caller holds the input
        for layer, call, release in zip(self.layers, self.calls, self.release):
            env[layer.name] = call(*[env[name] for name in layer.inputs])
            for name in release:
                if name != "input":
                    del env[name]
        return env[self.layers[-1].name]


class _NoHook:
    """Stands for the gradient hook MemTracker would register on a frozen parameter (it cannot)."""

    def remove(self) -> None:
        pass


def measure_memory(module: nn.Module, inputs: torch.Tensor, optimizer: str = "adam",
                   frozen: Iterable[nn.Parameter] = (), steps: int = 2,
                   copy_module: bool = True) -> MeasuredMemory:
    """MemTracker's peak of one inference and of ``steps`` training steps of ``module`` on ``inputs``."""
    from torch.distributed._tools.mem_tracker import MemTracker

    if copy_module:
        frozen_ids = {id(p) for p in frozen}
        names = [name for name, p in module.named_parameters() if id(p) in frozen_ids]
        module = copy.deepcopy(module)
        parameters = dict(module.named_parameters())
        frozen = [parameters[name] for name in names]
    device = inputs.device
    for parameter in module.parameters():
        parameter.grad = None
        parameter.requires_grad_(True)

    module.eval()
    tracker = MemTracker()
    tracker.track_external(module, inputs)
    with torch.no_grad(), tracker:
        output = module(inputs)
        del output
    inference, inference_parts = _total(tracker.get_tracker_snapshot("peak"), device)

    module.train()
    for parameter in frozen:
        parameter.requires_grad_(False)
    trainable = [p for p in module.parameters() if p.requires_grad]
    opt = make_optimizer(trainable, optimizer) if trainable else None  # all frozen: forward only
    tracker = MemTracker()
    for parameter in frozen:  # MemTracker hooks every parameter's gradient; a frozen one has none
        tracker._param_to_grad_hook_handles[parameter] = (_NoHook(), _NoHook())
    tracker.track_external(module, opt, inputs)
    with tracker:
        for _ in range(steps):
            tracker.reset_mod_stats()  # per-module statistics only; the global peak stays
            if opt is not None:
                opt.zero_grad(set_to_none=True)
            loss = module(inputs).sum()
            if opt is not None:
                loss.backward()
            del loss
            if opt is not None:
                opt.step()
        if opt is not None:
            opt.zero_grad(set_to_none=True)
    training, training_parts = _total(tracker.get_tracker_snapshot("peak"), device)
    return MeasuredMemory(inference, training, inference_parts, training_parts, parse_optimizer(optimizer))


def measure_analysis(analysis: Analysis, optimizer: str = "adam", module: nn.Module | None = None,
                     inputs: torch.Tensor | None = None, device: str = "cpu",
                     inplace: Collection[str] | None = None) -> MeasuredMemory:
    """Measure the model ``analysis`` describes: ``module`` when given (a traced module), else the
    module :func:`~costlab.torch_bridge.build.build_module` builds; a random input of its shape.

    ``inplace`` (preset/expression modules only): names of activation layers to run in place,
    matching what the prediction was told.
    """
    from .build import build_module, example_input

    own = module is None
    if module is None:
        built = build_module(analysis, device=device)
        modules = dict(built.named_modules())
        for name in inplace or ():
            if name in modules and hasattr(modules[name], "inplace"):
                modules[name].inplace = True
        frozen = frozen_parameters(built, analysis)
        module = LayerRunner(built, analysis)
    else:
        frozen = frozen_parameters(module, analysis)
    if inputs is None:
        inputs = example_input(analysis, device=device)
    return measure_memory(module, inputs, optimizer, frozen, copy_module=not own)


def measure_cuda_allocated(analysis: Analysis, optimizer: str = "adam", steps: int = 2) -> MeasuredMemory:
    """The same inference and training steps on CUDA, measured by ``torch.cuda.max_memory_allocated``
    (minus what was allocated before the model was built). It counts what the caching allocator handed
    out: every tensor rounded up to 512-byte blocks, and workspaces made as tensors (cuDNN's)."""
    from .build import build_module, example_input

    if not torch.cuda.is_available():
        raise CostlabError("measuring CUDA memory needs a CUDA device")
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    built = build_module(analysis, device="cuda")
    runner = LayerRunner(built, analysis)
    frozen = frozen_parameters(built, analysis)
    inputs = example_input(analysis, device="cuda")
    torch.cuda.reset_peak_memory_stats()
    runner.eval()
    with torch.no_grad():
        output = runner(inputs)
        del output
    torch.cuda.synchronize()
    inference = torch.cuda.max_memory_allocated() - before
    runner.train()
    for parameter in frozen:
        parameter.requires_grad_(False)
    trainable = [p for p in runner.parameters() if p.requires_grad]
    opt = make_optimizer(trainable, optimizer) if trainable else None
    torch.cuda.reset_peak_memory_stats()
    for _ in range(steps):
        if opt is not None:
            opt.zero_grad(set_to_none=True)
        loss = runner(inputs).sum()
        if opt is not None:
            loss.backward()
            opt.step()
        del loss
    torch.cuda.synchronize()
    training = torch.cuda.max_memory_allocated() - before
    return MeasuredMemory(inference, training, {}, {}, parse_optimizer(optimizer))
