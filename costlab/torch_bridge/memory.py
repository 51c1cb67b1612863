"""Measure what a model holds, with PyTorch's ``MemTracker``, running the model's own forward.

``torch.distributed._tools.mem_tracker.MemTracker`` is a dispatch mode that follows every
tensor storage created under it (and those given to ``track_external``) and files each
under parameters, buffers, gradients, activations, temporaries and optimizer state; its
``"peak"`` snapshot is the largest total it saw after any op. On CPU a storage counts its
exact bytes (on CUDA it rounds to the allocator's 512-byte blocks). What it does not see:
memory an op uses inside its kernel without creating a tensor (a convolution's im2col or
oneDNN workspace, BLAS packing buffers), the allocator's caching and fragmentation, and
Python objects.

The measured run is the module's own forward, as a user runs it:

- inference: ``torch.no_grad()``, eval mode, one forward on a random input;
- training step (:func:`training_steps`): train mode,
  ``zero_grad(set_to_none=True)``, ``loss = <first floating output>.sum()``, ``loss.backward()``,
  ``optimizer.step()``, run twice so that the second step runs with the optimizer state already
  there (the steady state); frozen layers' parameters have ``requires_grad=False`` and stay out of
  the optimizer.

A preset or expression is measured on the module :func:`~costlab.torch_bridge.build.build_module`
builds, called as a plain ``module(x)`` (where a torchvision or timm module of the same architecture
exists, the benchmarks measure that instead). No runner frees tensors the way a prediction assumes.

The module is a copy when it is the user's (its flags, gradients and parameters are left
as they were).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Callable, Collection, Iterable

import torch
from torch import nn
from torch.utils._pytree import tree_flatten

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


def first_floating(output: Any) -> torch.Tensor:
    """The tensor a training step sums into its loss: the first floating-point tensor of the output
    (a ModelOutput's first field: logits or the last hidden state)."""
    values = output.to_tuple() if hasattr(output, "to_tuple") else output
    for leaf in tree_flatten(values)[0]:
        if isinstance(leaf, torch.Tensor) and leaf.is_floating_point():
            return leaf
    raise CostlabError("the module's output has no floating-point tensor to sum into a loss")


def training_steps(module: nn.Module, args: tuple, kwargs: dict, optimizer: torch.optim.Optimizer | None,
                   steps: int, between: Callable[[str], None] = lambda phase: None) -> None:
    """``steps`` training steps of ``module`` (train mode): zero_grad(set_to_none=True), loss = the first
    floating output's sum, backward, optimizer step; then zero_grad. ``between(phase)`` is called as each
    phase begins ('forward', 'backward', 'step'). Without an optimizer (everything frozen): forwards only."""
    for _ in range(steps):
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
        between("forward")
        loss = first_floating(module(*args, **kwargs)).sum()
        between("backward")
        if optimizer is not None and loss.requires_grad:
            loss.backward()
        del loss
        between("step")
        if optimizer is not None:
            optimizer.step()
    if optimizer is not None:
        optimizer.zero_grad(set_to_none=True)


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


class _NoHook:
    """Stands for the gradient hook MemTracker would register on a frozen parameter (it cannot)."""

    def remove(self) -> None:
        pass


def _arguments(inputs: Any, kwargs: dict | None) -> tuple[tuple, dict]:
    return (tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)), dict(kwargs or {})


def measure_memory(module: nn.Module, inputs: Any, optimizer: str = "adam",
                   frozen: Iterable[nn.Parameter] = (), steps: int = 2,
                   copy_module: bool = True, kwargs: dict | None = None,
                   inference: bool = True) -> MeasuredMemory:
    """MemTracker's peak of one inference and of ``steps`` training steps of ``module``'s own forward
    on ``inputs`` (a tensor or a tuple of positional arguments; ``kwargs`` the keyword ones).
    ``inference=False`` skips the inference run (its peak is then 0)."""
    from torch.distributed._tools.mem_tracker import MemTracker

    args, kwargs = _arguments(inputs, kwargs)
    tensors = [t for t in (*args, *kwargs.values()) if isinstance(t, torch.Tensor)]
    if copy_module:
        frozen_ids = {id(p) for p in frozen}
        names = [name for name, p in module.named_parameters() if id(p) in frozen_ids]
        module = copy.deepcopy(module)
        parameters = dict(module.named_parameters())
        frozen = [parameters[name] for name in names]
    device = tensors[0].device if tensors else torch.device("cpu")
    for parameter in module.parameters():
        parameter.grad = None
        parameter.requires_grad_(True)

    inference_peak, inference_parts = 0, {}
    if inference:
        module.eval()
        tracker = MemTracker()
        tracker.track_external(module, *tensors)
        with torch.no_grad(), tracker:
            output = module(*args, **kwargs)
            del output
        inference_peak, inference_parts = _total(tracker.get_tracker_snapshot("peak"), device)

    module.train()
    for parameter in frozen:
        parameter.requires_grad_(False)
    trainable = [p for p in module.parameters() if p.requires_grad]
    opt = make_optimizer(trainable, optimizer) if trainable else None  # all frozen: forward only
    tracker = MemTracker()
    for parameter in frozen:  # MemTracker hooks every parameter's gradient; a frozen one has none
        tracker._param_to_grad_hook_handles[parameter] = (_NoHook(), _NoHook())
    tracker.track_external(module, opt, *tensors)
    with tracker:
        training_steps(module, args, kwargs, opt, steps,
                       lambda phase: tracker.reset_mod_stats() if phase == "forward" else None)
    training, training_parts = _total(tracker.get_tracker_snapshot("peak"), device)
    return MeasuredMemory(inference_peak, training, inference_parts, training_parts, parse_optimizer(optimizer))


def measure_analysis(analysis: Analysis, optimizer: str = "adam", module: nn.Module | None = None,
                     inputs: torch.Tensor | None = None, device: str = "cpu",
                     inplace: Collection[str] | None = None) -> MeasuredMemory:
    """Measure the model ``analysis`` describes by its own forward: ``module`` when given (a traced
    module; a copy is measured), else the module :func:`~costlab.torch_bridge.build.build_module`
    builds, called as a plain ``module(x)``; a random input of its shape.

    ``inplace`` (preset/expression modules only): names of activation layers to run in place,
    matching what the prediction was told.
    """
    from .build import build_module, example_input

    own = module is None
    if module is None:
        module = build_module(analysis, device=device)
        modules = dict(module.named_modules())
        for name in inplace or ():
            if name in modules and hasattr(modules[name], "inplace"):
                modules[name].inplace = True
    frozen = frozen_parameters(module, analysis)
    if inputs is None:
        inputs = example_input(analysis, device=device)
    return measure_memory(module, inputs, optimizer, frozen, copy_module=not own)


def measure_cuda_allocated(analysis: Analysis, optimizer: str = "adam", steps: int = 2,
                           module: nn.Module | None = None, inputs: Any = None,
                           kwargs: dict | None = None) -> MeasuredMemory:
    """The same inference and training steps on CUDA, of ``module``'s own forward (moved to the card; else
    the built module of ``analysis``), measured by ``torch.cuda.max_memory_allocated`` minus what was
    allocated before the model was there. It counts what the caching allocator handed out: every tensor
    rounded up to 512-byte blocks, and workspaces made as tensors (cuDNN's, cuBLAS's)."""
    from .build import build_module, example_input
    if not torch.cuda.is_available():
        raise CostlabError("measuring CUDA memory needs a CUDA device")
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    if module is None:
        module = build_module(analysis, device="cuda")
    else:
        module = copy.deepcopy(module).to("cuda")
    frozen = frozen_parameters(module, analysis)
    if inputs is None:
        inputs = example_input(analysis, device="cuda")
    args, kwargs = _arguments(inputs, kwargs)
    args = tuple(a.to("cuda") if isinstance(a, torch.Tensor) else a for a in args)
    kwargs = {k: v.to("cuda") if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
    torch.cuda.reset_peak_memory_stats()
    module.eval()
    with torch.no_grad():
        output = module(*args, **kwargs)
        del output
    torch.cuda.synchronize()
    inference = torch.cuda.max_memory_allocated() - before
    module.train()
    for parameter in frozen:
        parameter.requires_grad_(False)
    trainable = [p for p in module.parameters() if p.requires_grad]
    opt = make_optimizer(trainable, optimizer) if trainable else None
    torch.cuda.reset_peak_memory_stats()
    training_steps(module, args, kwargs, opt, steps)
    torch.cuda.synchronize()
    training = torch.cuda.max_memory_allocated() - before
    return MeasuredMemory(inference, training, {}, {}, parse_optimizer(optimizer))
