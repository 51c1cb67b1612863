"""Predict what a module holds by following its own forward on the meta device: storage lifetimes.

The module is copied onto the meta device (no bytes allocated: parameters and buffers become meta
tensors of the same shapes and dtypes) and run the way :mod:`costlab.torch_bridge.memory` measures it:

- inference: eval mode, ``torch.no_grad()``, one forward;
- training step (:func:`costlab.torch_bridge.memory.training_steps`): train mode, ``zero_grad(set_to_none=True)``, ``loss = <first floating output>.sum()``,
  ``loss.backward()``, ``optimizer.step()``, twice (the second step runs with the optimizer state
  already there: the steady state); frozen parameters have ``requires_grad=False`` and stay out of the
  optimizer.

Under a ``TorchDispatchMode`` (:class:`StorageLifetimes`) every storage an op creates is counted at
its ``nbytes`` when it appears, and uncounted by a ``weakref`` callback when Python drops its last
reference: the frees happen when the module's own code lets go of a tensor (a residual ``identity``
held to the end of a block, a ``Sequential``'s argument held by its caller, an in-place activation
writing into its input's storage), when autograd releases what it saved for an op's backward, when a
gradient has been accumulated, and when the optimizer's temporaries go. The peak is the largest total
after any op. This is what ``MemTracker`` does on real tensors, so the prediction is exact by
construction wherever the meta kernels create the tensors the CPU kernels create; it cannot see what no
tensor holds (a kernel's workspace, the allocator's caching and rounding, Python objects).

A forward that cannot run on meta tensors (an op that reads data: ``nonzero``, ``.item()``) has no
followed peaks: :func:`predict_memory` says so and keeps the layer graph's liveness
(:mod:`costlab.analyses.memory`).
"""

from __future__ import annotations

import copy
import weakref
from dataclasses import dataclass, replace
from typing import Any, Callable, Collection, Iterable

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.attention import SDPBackend
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes
from torch.utils._pytree import tree_flatten

from ..analyses.memory import Memory, memory
from ..core.analysis import Analysis
from ..core.errors import CostlabError
from ..core.formulas import group
from .memory import frozen_parameters, make_optimizer, training_steps


class StorageLifetimes(TorchDispatchMode):
    """Bytes of the storages alive at each moment, and the peak: each storage counted once (views and
    in-place results share it), from the op that creates it until its last reference goes."""

    def __init__(self, where: Callable[[], str] = lambda: "") -> None:
        super().__init__()
        self._alive: dict[int, weakref.ref] = {}
        self.live = 0
        self.peak = 0
        self.peak_at = ""
        self._where = where

    def hold(self, tensors: Iterable[Any]) -> None:
        """Count the storages of ``tensors`` (those made before the run: weights, inputs, state)."""
        for tensor in tensors:
            self._count(tensor)
        self._note_peak()

    def _count(self, tensor: Any) -> None:
        if not isinstance(tensor, torch.Tensor) or tensor.layout != torch.strided:
            return
        storage = tensor.untyped_storage()
        key = id(storage)
        if key in self._alive:
            return
        size = storage.nbytes()

        def gone(_ref: weakref.ref, key: int = key, size: int = size) -> None:
            if self._alive.pop(key, None) is not None:
                self.live -= size

        self._alive[key] = weakref.ref(storage, gone)
        self.live += size

    def _note_peak(self) -> None:
        if self.live > self.peak:
            self.peak, self.peak_at = self.live, self._where()

    def restart_peak(self) -> None:
        """Begin a new phase: its peak starts from what is alive now."""
        self.peak, self.peak_at = self.live, self._where()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(out)[0]:
            self._count(tensor)
        self._note_peak()
        return out


_SDP_CHOICE = torch.ops.aten._fused_sdp_choice.default
_CPU_FLASH = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu.default


def _stand_in(value: Any) -> Any:
    """A CPU tensor with ``value``'s shape, dtype and a unit last stride, holding one row (strides 0)."""
    if not isinstance(value, torch.Tensor):
        return value
    row = torch.empty(max(value.shape[-1], 1) if value.dim() else 1, dtype=value.dtype)
    return row.as_strided(value.shape, [0] * (value.dim() - 1) + [1] if value.dim() else [])


class CpuAttention(TorchFunctionMode):
    """``scaled_dot_product_attention`` on meta tensors takes the kernel the CPU would take.

    On the meta device the backend choice falls to the math path, which holds the whole attention
    matrix; the CPU's flash kernel holds only its output and one log-sum-exp per query row. The CPU's
    own chooser is asked (on stand-ins of the same shapes and dtypes, one row each) and, where it picks
    the flash kernel, that kernel is called as ATen's composite calls it (a boolean mask converted to
    an additive one first; grouped-query attention's shared keys and values passed as they are, which
    the CPU kernel reads without repeating them)."""

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func is not F.scaled_dot_product_attention or not (args and isinstance(args[0], torch.Tensor)
                                                               and args[0].is_meta):
            return func(*args, **kwargs)
        names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")
        call = {**dict(zip(names, args)), **kwargs}
        call.setdefault("attn_mask", None)
        call.setdefault("dropout_p", 0.0)
        call.setdefault("is_causal", False)
        positional = [call[n] for n in names[:6]]
        options = {n: call[n] for n in ("scale", "enable_gqa") if n in call}
        with _disable_current_modes():  # the stand-ins are not the model's tensors
            choice = _SDP_CHOICE(*[_stand_in(a) for a in positional], **options)
        if choice != SDPBackend.FLASH_ATTENTION.value:
            return func(*args, **kwargs)
        mask = call["attn_mask"]
        if mask is not None and mask.dtype == torch.bool:
            mask = torch.where(mask.logical_not(), float("-inf"), 0.0).to(call["query"].dtype)
        return _CPU_FLASH(call["query"], call["key"], call["value"], call["dropout_p"], call["is_causal"],
                          attn_mask=mask, scale=call.get("scale"))[0]


def meta_copy(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` whose parameters and buffers are meta tensors of the same shapes,
    dtypes and ``requires_grad`` (tied weights stay tied); the module itself is left as it was."""
    memo: dict[int, Any] = {}
    for parameter in module.parameters():
        memo[id(parameter)] = nn.Parameter(torch.empty_like(parameter, device="meta"),
                                           requires_grad=parameter.requires_grad)
    for buffer in module.buffers():
        memo[id(buffer)] = torch.empty_like(buffer, device="meta")
    return copy.deepcopy(module, memo)


@dataclass(frozen=True)
class FollowedPeaks:
    """What the followed run held (bytes): the inference peak, and the training step's peaks by phase."""

    weights: int
    buffers: int
    inputs: int
    trainable: int
    optimizer_state: int
    saved: int               # held by the training forward's end beyond what was alive before it
    inference_peak: int
    inference_peak_at: str
    forward_peak: int
    forward_peak_at: str
    backward_peak: int
    step_peak: int

    @property
    def training_peak(self) -> int:
        return max(self.forward_peak, self.backward_peak, self.step_peak)

    @property
    def training_peak_at(self) -> str:
        return max((self.forward_peak, f"forward {self.forward_peak_at}"), (self.backward_peak, "backward"),
                   (self.step_peak, "optimizer step"), key=lambda c: c[0])[1]


def _unique_bytes(tensors: Iterable[torch.Tensor]) -> int:
    seen: dict[int, int] = {}
    for tensor in tensors:
        storage = tensor.untyped_storage()
        seen[id(storage)] = storage.nbytes()
    return sum(seen.values())


class _Location:
    """The module path the forward is in (forward pre/post hooks on the copy's modules)."""

    def __init__(self, module: nn.Module) -> None:
        self.stack: list[str] = []
        self.handles = []
        for name, child in module.named_modules():
            self.handles.append(child.register_forward_pre_hook(self._enter(name or "(root)")))
            self.handles.append(child.register_forward_hook(self._leave))

    def _enter(self, name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any) -> None:
            self.stack.append(name)
        return hook

    def _leave(self, module: nn.Module, args: Any, output: Any) -> None:
        if self.stack:
            self.stack.pop()

    def __call__(self) -> str:
        return self.stack[-1] if self.stack else "input"

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def follow_memory(module: nn.Module, args: tuple, kwargs: dict | None = None, optimizer: str = "adam",
                  frozen: Collection[str] = (), steps: int = 2, device: str = "meta") -> FollowedPeaks:
    """Follow ``module``'s own forward (a meta copy) at inference and over ``steps`` training steps.

    ``args``/``kwargs``: the forward's arguments (any device: copies are made); ``frozen``: names of
    parameters (``named_parameters``) to freeze for the training step. ``device='cpu'`` follows a CPU
    copy instead (it allocates: for a forward that reads its data). The module is left as it was."""

    kwargs = kwargs or {}
    copied = meta_copy(module) if device == "meta" else copy.deepcopy(module)
    for name, parameter in copied.named_parameters():
        parameter.requires_grad_(name not in frozen)
    meta_args, meta_kwargs = _to_meta((args, kwargs)) if device == "meta" else _cloned((args, kwargs))
    inputs = [t for t in tree_flatten((meta_args, meta_kwargs))[0] if isinstance(t, torch.Tensor)]
    parameters = list(copied.parameters())
    weights = _unique_bytes(parameters)
    buffers = _unique_bytes(copied.buffers())
    where = _Location(copied)
    try:
        copied.eval()
        lifetimes = StorageLifetimes(where)
        lifetimes.hold([*parameters, *copied.buffers(), *inputs])
        with torch.no_grad(), CpuAttention(), lifetimes:
            output = copied(*meta_args, **meta_kwargs)
            del output
        inference_peak, inference_at = lifetimes.peak, lifetimes.peak_at

        copied.train()
        trainable = [p for p in parameters if p.requires_grad]
        opt = make_optimizer(trainable, optimizer) if trainable else None
        lifetimes = StorageLifetimes(where)
        lifetimes.hold([*parameters, *copied.buffers(), *inputs])
        peaks: dict[str, tuple[int, str]] = {}
        marks: dict[str, int] = {}
        phase = ""

        def between(next_phase: str) -> None:
            nonlocal phase
            if phase:
                previous = peaks.get(phase, (0, ""))
                if lifetimes.peak > previous[0]:
                    peaks[phase] = (lifetimes.peak, lifetimes.peak_at)
            marks[next_phase] = lifetimes.live
            lifetimes.restart_peak()
            phase = next_phase

        with CpuAttention(), lifetimes:
            training_steps(copied, meta_args, meta_kwargs, opt, steps, between)
            between("")
        state = [t for s in (opt.state.values() if opt is not None else ()) for t in s.values()
                 if isinstance(t, torch.Tensor)]
        optimizer_state = _unique_bytes(state)
        saved = max(0, marks.get("backward", 0) - marks.get("forward", 0))
    finally:
        where.remove()
    return FollowedPeaks(weights, buffers, _unique_bytes(inputs), _unique_bytes(trainable), optimizer_state,
                         saved, inference_peak, inference_at, *peaks.get("forward", (0, "")),
                         peaks.get("backward", (0, ""))[0], peaks.get("step", (0, ""))[0])


def _copied(value: Any, make: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """``value`` with each tensor inside its tuples, lists and dicts replaced by ``make(tensor)``."""
    if isinstance(value, torch.Tensor):
        return make(value)
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return type(value)(_copied(v, make) for v in value)
    if isinstance(value, dict):
        return {key: _copied(v, make) for key, v in value.items()}
    return value


def _to_meta(value: Any) -> Any:
    return _copied(value, lambda t: torch.empty_like(t, device="meta"))


def _cloned(value: Any) -> Any:
    return _copied(value, lambda t: t.detach().clone())


def frozen_names(module: nn.Module, analysis: Analysis) -> set[str]:
    """Names of the parameters of the layers ``analysis.training`` freezes (``--freeze``)."""
    frozen = {id(p) for p in frozen_parameters(module, analysis)}
    return {name for name, p in module.named_parameters() if id(p) in frozen}


def _materialized(analysis: Analysis, inputs: Any, device: str) -> tuple[tuple, dict, Any]:
    """The forward's arguments on ``device``: ``inputs`` as given to the analysis, else one float tensor
    of the analysis' batch and input shape (at its dtype)."""
    from ..core.inputs import Inputs, TensorSpec
    from .trace import as_inputs, materialize

    if inputs is None:
        inputs = Inputs((TensorSpec((analysis.batch,) + tuple(analysis.input), analysis.dtype),), {})
    return materialize(as_inputs(inputs), device)


def predict_memory(analysis: Analysis, module: nn.Module, optimizer: str = "adam", inputs: Any = None,
                   inplace: Collection[str] = ()) -> Memory:
    """The memory feature of a module target: the peaks :func:`follow_memory` follows in the module's own
    forward, over the layer graph's per-layer liveness (:func:`costlab.analyses.memory.memory`, which
    the per-layer columns keep). Where the forward cannot run on meta tensors, the liveness alone, noted."""
    base = memory(analysis, optimizer, inplace=inplace)
    args, kwargs, _ = _materialized(analysis, inputs, "meta")
    try:
        followed, note = follow_module(module, args, kwargs, optimizer, frozen_names(module, analysis),
                                       lambda: _materialized(analysis, inputs, "cpu")[:2])
    except _NotOnMeta as failed:
        return replace(base, notes=base.notes + (
            f"the forward does not run on the meta device ({failed}); the peaks are the layer graph's "
            "liveness, not the module's own forward",))
    return with_followed(replace(base, notes=base.notes + ((note,) if note else ())), followed)


class _NotOnMeta(Exception):
    """The forward cannot run on meta tensors and the module has no real weights to run on the CPU."""


def follow_module(module: nn.Module, args: tuple, kwargs: dict | None = None, optimizer: str = "adam",
                  frozen: Collection[str] = (), cpu_arguments: Callable[[], tuple[tuple, dict]] | None = None,
                  steps: int = 2) -> tuple[FollowedPeaks, str | None]:
    """:func:`follow_memory` on the meta device; where the forward reads its data (``.item()``,
    ``nonzero``) or an op has no meta kernel, on a CPU copy (real weights needed; ``cpu_arguments``
    makes the CPU arguments, else ``args``/``kwargs`` are used), with a note saying so."""
    try:
        return follow_memory(module, args, kwargs, optimizer, frozen, steps), None
    except CostlabError:
        raise
    except Exception as error:  # a data-dependent op, an op with no meta kernel
        reason = _first_line(error)
    if any(t.is_meta for t in (*module.parameters(), *module.buffers())):
        raise _NotOnMeta(reason)
    cpu_args, cpu_kwargs = cpu_arguments() if cpu_arguments is not None else (args, kwargs or {})
    followed = follow_memory(module, cpu_args, cpu_kwargs, optimizer, frozen, steps, device="cpu")
    return followed, (f"the forward does not run on the meta device ({reason}): its storage lifetimes "
                      "were followed on a CPU copy (which allocates)")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:120]


def with_followed(base: Memory, f: FollowedPeaks) -> Memory:
    """``base`` with its totals and peaks replaced by the followed run's."""
    formulas = dict(base.formulas)
    formulas["inference_peak"] = (f"followed in the module's own forward (meta run, storage lifetimes): "
                                  f"{group(f.inference_peak)} B at {f.inference_peak_at}")
    formulas["training_peak"] = (f"followed over two training steps: max(forward {group(f.forward_peak)}, "
                                 f"backward {group(f.backward_peak)}, step {group(f.step_peak)}) = "
                                 f"{group(f.training_peak)} B ({f.training_peak_at})")
    formulas["optimizer_state"] = f"{group(f.optimizer_state)} B held by the optimizer after its steps"
    formulas.pop("step_peak", None)
    note = (f"peaks followed in the module's own forward on the meta device ({group(f.saved)} B held "
            "for backward); per-layer live and saved bytes are the layer graph's liveness")
    return replace(base, weights=f.weights, buffers=f.buffers, inputs=f.inputs, inference_peak=f.inference_peak,
                   inference_peak_at=f.inference_peak_at, trainable=f.trainable, gradients=f.trainable,
                   optimizer_state=f.optimizer_state, saved=f.saved, forward_peak=f.forward_peak,
                   backward_peak=f.backward_peak, step_peak=f.step_peak, training_peak=f.training_peak,
                   training_peak_at=f.training_peak_at, notes=base.notes + (note,), formulas=formulas)

