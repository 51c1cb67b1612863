"""Counting by running: a recorder at the function level with an aten-level recorder beneath it.

A *run* executes a module (a whole model, or one call fx could not see into) under two modes:

- :class:`FunctionRecorder` (a ``TorchFunctionMode``) prices each torch function and ``Tensor``
  method that has a rule (:mod:`.rules`) — the same rules the fx walk uses, so names and specs
  agree across paths;
- :class:`AtenRecorder` (a ``TorchDispatchMode``) prices, one aten op at a time (:mod:`.aten`),
  what runs inside a *region*: a torch function without a rule (``einsum``, ``addmm``, a custom
  op), a leaf module without a rule, or a call the fx walk hands over whole.

Forward hooks on the modules keep the scope (the enclosing module path, for names) and price
leaf modules that have a rule as a whole. Values are tracked by tensor identity (weakly, so a run
on real tensors frees what the model frees). A run on the meta device allocates nothing and does
no arithmetic; a run on real CPU tensors is the last resort when a data-dependent op stops the
meta run.
"""

from __future__ import annotations

import copy
import inspect
import weakref
from collections import OrderedDict
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from ..core.analysis import CallSite, Unsupported
from ..core.errors import SpecError, TargetError
from ..core.specs import ACTIVATIONS, ARITHMETIC, Elementwise
from .aten import ATEN_RULES, FREE_OPS, _Free
from .recorder import (HOOK_ATTRIBUTES, TOP_LEVEL, Call, Recorder, Unpriced, call_function, call_module,
                       list_parametrization, parametrizations,
                       function_site, leaves, map_leaves, module_site, one_line, own_tensors, type_name)
from .rules import (CREATION_FUNCTIONS, CREATION_METHODS, RuleError, TensorValue, function_rule,
                    leaf_modules, module_rule, op_name, tensor_method_name)


@dataclass
class Region:
    """Where aten ops are being priced: the call they belong to and where its layers start."""

    call: Call
    start: int
    tensors: Sequence[Any] = ()  # a module's own parameters and buffers, settled at the end
    module_path: str | None = None
    mode: Any = None  # the aten-level recorder a module's region entered (left by close())

    def close(self) -> None:
        if self.mode is not None:
            mode, self.mode = self.mode, None
            mode.__exit__(None, None, None)


class RunState:
    """What a run knows: the recorder, the scope, open regions, and each tensor's value."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.stack: list[str] = []
        self.depth = 0  # > 0 inside a leaf module priced by its rule
        self.regions: list[Region] = []
        self.entered: list[str] = []  # what each open module call did: skip, scope, rule or region
        self.owner: str | None = None  # the module a function priced alone belongs to
        self.device: str | None = None  # where tensors made without device= go (the meta run's device)
        self.shapes_only = False  # a Python function priced alone: kernels the rules' shapes stand for are skipped
        self._values: dict[int, tuple[Any, TensorValue]] = {}

    @property
    def scope(self) -> str:
        return self.stack[-1] if self.stack else ""

    def remember(self, tensor: torch.Tensor, value: TensorValue) -> None:
        try:
            ref: Any = weakref.ref(tensor)
        except TypeError:  # pragma: no cover - every torch.Tensor takes weak references
            ref = lambda tensor=tensor: tensor  # noqa: E731
        self._values[id(tensor)] = (ref, value)

    def value_of(self, item: Any) -> Any:
        """A TensorValue for a tensor (its producer when known), anything else as it is."""
        if not isinstance(item, torch.Tensor):
            return item
        known = self._values.get(id(item))
        if known is not None and known[0]() is item:
            value = known[1]
            return value if value.shape == tuple(item.shape) else TensorValue(tuple(item.shape), value.producer,
                                                                              value.tensor)
        attribute = self.recorder.attributes.get(id(item))  # a parameter or buffer of the module, read directly
        if attribute is not None and attribute[1] is item:
            return TensorValue(tuple(item.shape), attribute[0], item)
        return TensorValue(tuple(item.shape))

    def bind(self, value: Any, out: Any, where: str) -> None:
        """Remember which layer made each output tensor: the rule's values paired with the run's."""
        if isinstance(out, torch.Tensor):
            shape = tuple(out.shape)
            if isinstance(value, TensorValue):
                if value.shape != shape and value.producer:
                    self.recorder.notes.append(f"{where}: the formula gives shape {value.shape}, the run "
                                                     f"{shape}; the run's shape is used downstream")
                self.remember(out, TensorValue(shape, value.producer, value.tensor))
            else:
                self.remember(out, TensorValue(shape))
        elif isinstance(out, (tuple, list)) and isinstance(value, (tuple, list)) and len(out) == len(value):
            for v, o in zip(value, out):
                self.bind(v, o, where)
        else:
            shared = value if isinstance(value, TensorValue) else None
            for leaf in leaves(out):
                if isinstance(leaf, torch.Tensor):
                    self.bind(shared, leaf, where)


def _tensor_values(values: Any) -> list[TensorValue]:
    return [v for v in leaves(values) if isinstance(v, TensorValue)]


def _has_tensor(value: Any) -> bool:
    return isinstance(value, torch.Tensor) or any(isinstance(t, torch.Tensor) for t in leaves(value))


#: Rules whose output has its floating input's dtype, its shape, and — when every input is
#: contiguous — a contiguous layout: a Python function priced alone skips their meta kernels
#: (Python decompositions, most of a meta run's time) and takes an empty tensor of the rule's shape.
KERNEL_FREE_RULES: frozenset[str] = frozenset({
    *ACTIVATIONS, *ARITHMETIC, "linear", "matmul", "layer_norm", "group_norm", "batch_norm", "instance_norm",
    "masked_fill", "roll", "pad", "where", "neg", "mean", "sum",
})
#: Of those, the products: their output is a fresh contiguous tensor whatever their inputs' layout
#: (mm, bmm and addmm allocate it), so their inputs need not be contiguous.
CONTIGUOUS_OUTPUT_RULES: frozenset[str] = frozenset({"linear", "matmul"})


def _kernel_free_dtype(rule: str, func: Any, args: tuple, kwargs: dict) -> torch.dtype | None:
    """The output dtype of a call whose meta kernel may be skipped, or None to run it: a rule of
    :data:`KERNEL_FREE_RULES`, not in place (no trailing ``_``, no ``__i…__``, no ``inplace=True``),
    no ``out=``/``dtype=`` nor a dtype among the arguments, every tensor real (no complex) and —
    but for :data:`CONTIGUOUS_OUTPUT_RULES` — contiguous, and every floating one of one dtype (the
    output's)."""
    if rule not in KERNEL_FREE_RULES or kwargs.get("out") is not None or kwargs.get("dtype") is not None \
            or _in_place(func, args, kwargs):  # F.softmax passes dtype=None on: that is no dtype
        return None
    dtype = None
    for leaf in leaves((args, kwargs)):
        if isinstance(leaf, torch.dtype):  # softmax(x, dim, torch.float64): a dtype given positionally
            return None
        if isinstance(leaf, torch.Tensor):
            if leaf.is_complex() or (rule not in CONTIGUOUS_OUTPUT_RULES and not leaf.is_contiguous()):
                return None  # the kernel knows the type, and the layout an element-wise output takes
            if leaf.dtype.is_floating_point:
                if dtype is not None and leaf.dtype != dtype:
                    return None
                dtype = leaf.dtype
    return dtype


_INPLACE_POSITION: dict[Any, int | None] = {}  # a function → the position of its ``inplace`` parameter


def _in_place(func: Any, args: tuple, kwargs: dict) -> bool:
    """Whether a call writes into its input: ``relu_``, ``x.add_``, ``x += y``, ``F.relu(x, inplace=True)``
    or ``F.relu(x, True)``."""
    name = getattr(func, "__name__", "")
    if (name.endswith("_") and not name.endswith("__")) or name.startswith("__i") or kwargs.get("inplace"):
        return True
    try:
        position = _INPLACE_POSITION[func]
    except KeyError:
        try:
            parameters = list(inspect.signature(func).parameters)
        except (TypeError, ValueError):  # a builtin without a signature takes no inplace flag
            parameters = []
        position = _INPLACE_POSITION[func] = parameters.index("inplace") if "inplace" in parameters else None
    except TypeError:  # an unhashable callable: run it
        return True
    return position is not None and len(args) > position and bool(args[position])


def _op_short(target: Any) -> str:
    return op_name(target).rpartition(".")[2] or "call"


def _grouped_mm_shape(args: tuple, kwargs: dict) -> tuple[tuple[int, ...], torch.dtype]:
    """The output of _grouped_mm(a, b, offs): (M, N) for 2-D × 3-D and 3-D × 2-D, (G, M, N) for 3-D × 3-D
    and for 2-D × 2-D (G groups from offs)."""
    a, b = args[0], args[1]
    offs = args[2] if len(args) > 2 else kwargs.get("offs")
    out_dtype = kwargs.get("out_dtype") or (args[4] if len(args) > 4 else None) or a.dtype
    if a.dim() == 2 and b.dim() == 3:
        return (a.shape[0], b.shape[-1]), out_dtype
    if a.dim() == 3 and b.dim() == 2:
        return (a.shape[1], b.shape[-1]), out_dtype
    if a.dim() == 3:
        return (a.shape[0], a.shape[1], b.shape[-1]), out_dtype
    return (offs.shape[0], a.shape[0], b.shape[-1]), out_dtype


#: Ops whose meta kernel refuses what their CPU kernel takes (torch's _grouped_mm wants bfloat16 on
#: meta; transformers' experts give it float32): on meta, their output is made from its shape.
META_SHAPES: dict[Any, Callable[[tuple, dict], tuple[tuple[int, ...], torch.dtype]]] = {
    packet: _grouped_mm_shape for packet in (getattr(torch.ops.aten, name, None) for name in ("_grouped_mm",))
    if packet is not None}


def _call(func: Any, args: tuple, kwargs: dict) -> Any:
    try:
        return func(*args, **kwargs)
    except RuntimeError:
        shape_of = META_SHAPES.get(func.overloadpacket)
        if shape_of is None or not any(isinstance(t, torch.Tensor) and t.is_meta for t in args[:2]):
            raise
        shape, dtype = shape_of(args, kwargs)
        return torch.empty(shape, dtype=dtype, device="meta")


class MetaShapes(TorchDispatchMode):
    """A plain meta run (nothing priced) in which the ops of META_SHAPES run from their shapes."""

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        return _call(func, args, kwargs or {})


class AtenRecorder(TorchDispatchMode):
    """Prices the aten ops of open regions (see the module docstring); outside them, only runs."""

    def __init__(self, state: RunState) -> None:
        super().__init__()
        self.state = state

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        out = _call(func, args, kwargs)
        state = self.state
        if not state.regions or not _has_tensor(out):
            return out
        region = state.regions[-1]
        name = func.overloadpacket.__name__
        vargs, vkwargs = map_leaves(state.value_of, (tuple(args), dict(kwargs)))
        operands = _tensor_values((vargs, vkwargs))
        where = f"{region.call.owner or TOP_LEVEL}: aten.{name}"
        rule = ATEN_RULES.get(func.overloadpacket)
        value: Any = None
        start = len(state.recorder.layers)
        try:
            if rule is not None:
                value = rule(region.call, vargs, vkwargs)
            elif name in FREE_OPS or name.rstrip("_") in FREE_OPS:
                raise _Free()
            elif torch.Tag.pointwise in func.tags and operands:
                value = region.call.layer(Elementwise(name.rstrip("_")), operands, sub=name.rstrip("_"))
            else:
                raise Unpriced("no cost rule for this aten op")
        except _Free:  # the output keeps its input's producer, at the run's shape (views, copies, casts)
            first = operands[0] if operands else None
            value = None
            if first is not None:
                state.bind(None, out, where)
                for leaf in leaves(out):
                    if isinstance(leaf, torch.Tensor):
                        state.remember(leaf, TensorValue(tuple(leaf.shape), first.producer, first.tensor))
                return out
        except (Unpriced, RuleError, SpecError) as error:
            state.recorder.rollback(start)
            state.recorder.unsupported.append(Unsupported(region.call.owner or TOP_LEVEL, f"aten.{name}",
                                                          str(error)))
            state.recorder.touch((vargs, vkwargs))
        state.bind(value, out, where)
        return out


class FunctionRecorder(TorchFunctionMode):
    """Prices torch functions and Tensor methods that have a rule; opens a region for those without."""

    def __init__(self, state: RunState) -> None:
        super().__init__()
        self.state = state

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        state = self.state
        if state.depth > 0 or state.regions or getattr(func, "__name__", "") == "__get__":
            return func(*args, **kwargs)  # inside a priced call, or reading an attribute (.shape, .device)
        method = tensor_method_name(func)
        target = method if method is not None else func
        if target in CREATION_FUNCTIONS or target in CREATION_METHODS:
            if state.device is not None and target in CREATION_FUNCTIONS and kwargs.get("device") is None \
                    and not getattr(target, "__name__", "").endswith("_like"):
                kwargs = {**kwargs, "device": state.device}  # made without device=: on the run's device
            out = func(*args, **kwargs)
            state.bind(None, out, state.scope)
            return out
        found = function_rule(target)
        if found is None:
            return self._region(func, target, args, kwargs)
        dtype = _kernel_free_dtype(found[0], func, args, kwargs) if state.shapes_only else None
        out = func(*args, **kwargs) if dtype is None else None
        if dtype is None and not _has_tensor(out):
            return out
        vargs, vkwargs = map_leaves(state.value_of, (tuple(args), dict(kwargs)))
        start = len(state.recorder.layers)
        try:
            value = call_function(state.recorder, state.scope, target, vargs, vkwargs, owner=state.owner)
        except (Unpriced, SpecError):  # the rule cannot price this call: its aten ops can
            state.recorder.rollback(start)
            return self._region(func, target, args, kwargs)
        if dtype is not None:  # the rule's shape stands for the kernel's (a run on meta computes nothing else)
            if isinstance(value, TensorValue):
                out = torch.empty(value.shape, dtype=dtype, device="meta")
                state.remember(out, value)
                return out
            out = func(*args, **kwargs)
        state.bind(value, out, f"{state.scope or TOP_LEVEL}: {op_name(target)}")
        return out

    def _region(self, func: Any, target: Any, args: tuple, kwargs: dict) -> Any:
        state = self.state
        scope = state.scope
        short = _op_short(target)
        call = Call(state.recorder, scope if state.owner is None else state.owner,
                    f"{scope}.{short}" if scope else short, False, function_site(target))
        region = Region(call, len(state.recorder.layers))
        state.regions.append(region)
        try:
            with AtenRecorder(state):  # only regions pay for an aten-level recorder
                out = func(*args, **kwargs)
        finally:
            state.regions.pop()
        state.recorder.settle(region.start, call.params, None)
        return out


def _hooks(state: RunState, root: nn.Module) -> list[Any]:
    """Forward hooks on ``root``'s modules: scope for containers, rules for leaves with one,
    a region for leaves without one."""
    paths: dict[int, str] = {}
    for path, m in root.named_modules():
        paths.setdefault(id(m), path)
    leaves = {id(m) for m in leaf_modules(root).values()}
    recorder = state.recorder
    handles = []

    def before(m: nn.Module, args: tuple, kwargs: dict) -> None:
        if state.depth or state.regions:
            state.entered.append("skip")  # inside a priced leaf or a region: its ops are seen already
            return
        path = paths.get(id(m), "")
        if id(m) not in leaves:
            state.stack.append(path)
            state.entered.append("scope")
        elif module_rule(m) is not None:
            state.depth += 1
            state.entered.append("rule")
        else:
            call = Call(recorder, path, path or type(m).__name__.lower(), True, module_site(m))
            region = Region(call, len(recorder.layers), own_tensors(m), path)
            region.mode = AtenRecorder(state)
            region.mode.__enter__()
            state.regions.append(region)
            state.entered.append("region")

    def after(m: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        entered = state.entered.pop() if state.entered else "skip"
        path = paths.get(id(m), "")
        if entered == "scope":
            state.stack.pop()
        elif entered == "region":
            region = state.regions.pop()
            region.close()
            recorder.settle(region.start, [*region.tensors, *region.call.params], path)
        elif entered == "rule":
            state.depth -= 1
            vargs, vkwargs = map_leaves(state.value_of, (tuple(args), dict(kwargs)))
            value = None
            start = len(recorder.layers)
            try:
                value = call_module(recorder, path, m, vargs, vkwargs)
                for tensor, chain in parametrizations(m):  # ran inside the leaf, unseen
                    list_parametrization(recorder, path, tensor, chain, "the meta and CPU runs do not price it")
            except (Unpriced, SpecError) as unpriced:  # the module ran: its rule is what fails
                recorder.rollback(start)
                recorder.unsupported.append(Unsupported(path or TOP_LEVEL, type_name(m), str(unpriced)))
                recorder.touch([state.value_of(t) for t in m.state_dict(keep_vars=True).values()])
            state.bind(value, output, path or TOP_LEVEL)

    def visit(m: nn.Module) -> None:
        handles.append(m.register_forward_pre_hook(before, with_kwargs=True))
        handles.append(m.register_forward_hook(after, with_kwargs=True))
        if id(m) not in leaves:
            for child in m.children():
                visit(child)

    visit(root)
    return handles


def _modes(state: RunState, device: str, aten: bool = False, grad: bool = True) -> ExitStack:
    """The run's context: the device and grad mode, the function-level recorder, and the aten-level
    one throughout when ``aten`` (a call priced alone); otherwise regions enter their own. A meta
    run keeps grad mode (modules with fused inference paths take their decomposed one) unless
    ``grad`` is off: a Python function priced by its function rules alone runs faster without it."""
    stack = ExitStack()
    if device == "meta":
        state.device = "meta"  # tensors made without device= land on meta too (FunctionRecorder)
        stack.enter_context(torch.enable_grad() if grad else torch.no_grad())
    else:
        stack.enter_context(torch.no_grad())
    stack.enter_context(FunctionRecorder(state))
    if aten:
        stack.enter_context(AtenRecorder(state))
    return stack


def run_module(module: nn.Module, args: tuple, kwargs: dict, recorder: Recorder, device: str,
               inputs: Mapping[int, TensorValue]) -> Any:
    """Run ``module`` (already a copy the run may use) on ``args``/``kwargs`` under the recorders;
    ``inputs`` gives the values of the input tensors (by id). Returns the output's values."""
    state = RunState(recorder)
    for tensors in (args, kwargs):
        for leaf in leaves(tensors):
            if isinstance(leaf, torch.Tensor) and id(leaf) in inputs:
                state.remember(leaf, inputs[id(leaf)])
    handles = _hooks(state, module)
    try:
        with _modes(state, device):
            try:
                out = module(*args, **kwargs)
            finally:  # a forward pass that raised inside a module's region leaves its recorder open
                for region in reversed(state.regions):
                    region.close()
    finally:
        for handle in handles:
            handle.remove()
    return map_leaves(state.value_of, out)


def price_alone(recorder: Recorder, run: Callable[..., Any], args: tuple, kwargs: dict, *, owner: str,
                base: str, own: bool, site: CallSite, module: nn.Module | None = None,
                module_path: str | None = None) -> Any:
    """Price one call fx could not see into by running it alone on meta tensors, its aten ops
    recorded into a region named ``base``; returns the output's values. ``module``: a leaf
    module to run (a meta copy of it runs; its tensors are counted as the original's)."""
    state = RunState(recorder)

    def meta(value: Any) -> Any:
        if not isinstance(value, TensorValue):
            return value
        like = value.tensor
        dtype = like.dtype if isinstance(like, torch.Tensor) else torch.float32
        tensor = torch.empty(value.shape, dtype=dtype, device="meta")
        state.remember(tensor, value)
        keep.append(tensor)
        return tensor

    keep: list[torch.Tensor] = []
    meta_args, meta_kwargs = map_leaves(meta, (tuple(args), dict(kwargs)))
    meta_args, meta_kwargs = _mutable((meta_args, meta_kwargs))  # as the call would get them outside fx
    tensors: list[Any] = []
    if module is not None:
        clone = meta_copy(module)
        for (name, original), (_, copied) in zip(
                [*module.named_parameters(), *module.named_buffers()],
                [*clone.named_parameters(), *clone.named_buffers()]):
            qualified = f"{module_path}.{name}" if module_path else name
            state.remember(copied, TensorValue(tuple(copied.shape), qualified, original))
            keep.append(copied)
        tensors = own_tensors(module)
        run = clone
    call = Call(recorder, owner, base, own, site)
    start, listed = len(recorder.layers), len(recorder.unsupported)
    # a Python function (one fx keeps opaque) runs under the function-level rules, its ops named
    # <base>.<op>; anything else (a torch function without a rule, a leaf module) at the aten level
    python = module is None and inspect.isfunction(run) and \
        (getattr(run, "__module__", None) or "").split(".")[0] != "torch"  # torch's own: seen as one call
    if python:
        state.stack.append(base)
        state.owner = owner
        state.shapes_only = True
    else:
        state.regions.append(Region(call, start))
    engine, recorder.engine = recorder.engine, "fx+meta"
    try:
        with _modes(state, "meta", aten=not python, grad=not python):
            out = run(*meta_args, **meta_kwargs)
    except Exception as error:  # noqa: BLE001 - the call cannot run alone on meta tensors
        recorder.rollback(start)
        del recorder.unsupported[listed:]
        raise Unpriced(f"it cannot run alone on the meta device ({one_line(error)})") from None
    finally:
        recorder.engine = engine
        state.regions.clear()
    if not python:  # a Python function's ops settled their own parameters, call by call
        recorder.settle(start, [*tensors, *call.params], module_path)
    return map_leaves(state.value_of, out)


def _mutable(value: Any) -> Any:
    """fx's immutable_list / immutable_dict (what a traced graph holds) as plain lists and dicts:
    a function run alone may mutate its arguments, as it can when the model runs."""
    if isinstance(value, dict):
        return {key: _mutable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_mutable(item) for item in value]
    if isinstance(value, tuple):
        return type(value)(*map(_mutable, value)) if hasattr(value, "_fields") else tuple(map(_mutable, value))
    return value


def meta_copy(module: nn.Module) -> nn.Module:
    """A copy of ``module``'s structure whose parameters and buffers are meta tensors (no data
    copied), tied weights kept tied, hooks removed, in eval mode.

    Each module is copied shallowly — its own attributes, with its dict, list and set attributes
    (caches a forward pass may fill) copied one level deep — rather than deep-copied: what a run can
    change on the copy is what :func:`costlab.torch_bridge.trace.preserved` guards on the fx path,
    at a quarter of a deep copy's cost. A module that will not copy so is deep-copied."""
    tensors: dict[int, Any] = {}

    def meta(tensor: torch.Tensor) -> torch.Tensor:
        made = tensors.get(id(tensor))
        if made is None:
            empty = torch.empty_like(tensor, device="meta")
            made = nn.Parameter(empty, requires_grad=tensor.requires_grad) if isinstance(tensor, nn.Parameter) \
                else empty
            tensors[id(tensor)] = made
        return made

    copies: dict[int, nn.Module] = {}

    def structure(m: nn.Module) -> nn.Module:
        if id(m) in copies:  # a shared submodule stays shared
            return copies[id(m)]
        clone = copy.copy(m)
        copies[id(m)] = clone
        state = clone.__dict__
        for key, value in list(state.items()):
            if key not in _MODULE_TABLES and isinstance(value, (dict, list, set)):
                state[key] = dict(value) if isinstance(value, dict) else type(value)(value)
        state["_parameters"] = {k: meta(v) if v is not None else None for k, v in m._parameters.items()}
        state["_buffers"] = {k: meta(v) if v is not None else None for k, v in m._buffers.items()}
        state["_modules"] = {k: structure(v) if v is not None else None for k, v in m._modules.items()}
        for attribute in HOOK_ATTRIBUTES:
            if attribute in state:
                state[attribute] = OrderedDict()
        state["training"] = False
        return clone

    try:
        return structure(module)
    except Exception:  # noqa: BLE001 - a module whose copy needs its own __deepcopy__ / __reduce__
        memo: dict[int, Any] = {id(t): meta(t) for t in [*module.parameters(), *module.buffers()]}
        return _copy(module, memo, "the meta device")


_MODULE_TABLES = frozenset({"_parameters", "_buffers", "_modules", *HOOK_ATTRIBUTES})


def real_copy(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with its own parameters and buffers (data copied), hooks removed, in
    eval mode: a run on real tensors may change what it likes in it."""
    return _copy(module, {}, "a copy for a CPU run")


def _copy(module: nn.Module, memo: dict[int, Any], what: str) -> nn.Module:
    try:
        clone = copy.deepcopy(module, memo)
    except Exception as error:  # noqa: BLE001 - any copy failure is reported in one line
        raise TargetError(f"cannot copy the module to {what}: {one_line(error)}") from None
    for m in clone.modules():
        m.training = False
        for attribute in HOOK_ATTRIBUTES:
            if attribute in m.__dict__:
                m.__dict__[attribute] = OrderedDict()
    return clone
