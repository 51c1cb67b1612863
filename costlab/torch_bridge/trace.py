"""Count any ``nn.Module``: trace it symbolically and price every node with the core's formulas.

**The fx path** (default). ``torch.fx`` traces the module (leaf modules are those
:func:`~costlab.torch_bridge.rules.is_leaf` names), then the graph is walked once,
propagating shapes (batch axis first) from the input: each leaf module and each functional
op between modules goes through its rule (:mod:`.rules`) and :func:`costlab.formulas.cost_of`.
No tensor is allocated and no arithmetic runs.

**The meta-device fallback**, when fx cannot trace the module (control flow on shapes,
Python loops over sizes, …): a copy of the module whose parameters and buffers live on the
meta device runs once on a meta input, with forward hooks on its leaf modules and a
``TorchFunctionMode`` recording the functional ops between them. The same rules price
what they see. Control flow on tensor *values* cannot run on the meta device and is
refused with one line.

**Names.** A leaf module's layer is its module path (``layer1.0.conv1``); a second call of
the same module is ``path_1``, a third ``path_2``. A functional op is
``<enclosing module path>.<op>`` (``layer1.0.add``, ``inception3a.cat``; just ``<op>`` at the
top level), with ``_1``, ``_2`` for repeats within one scope. In-place and operator
spellings share the op's name (``+=``, ``add_`` and ``torch.add`` are all ``add``).

**Parameters** are counted once, by tensor identity: a module called twice, or two modules
sharing a weight, count it at its first use. Parameters and buffers no traced op uses (e.g.
GoogLeNet's auxiliary heads in eval mode) become ``unused`` layers with no arithmetic, so the
analysis' params always equal ``sum(p.numel() for p in module.parameters())``.

**Unsupported.** A module or function without a rule, or a call its rule cannot price, is
listed in ``Analysis.unsupported`` (path, op, reason) and contributes nothing; on the fx path
its output shape comes from running that one call on meta tensors, and when even that fails
every op downstream is listed too.

The module is analysed in eval mode with its hooks detached; its train/eval flags and hooks
are put back afterwards, even when the analysis fails. The fallback never touches it.
"""

from __future__ import annotations

import ast
import copy
import importlib
import inspect
import os
import sys
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
from torch import fx, nn
from torch.overrides import TorchFunctionMode
from torch.utils import _pytree as pytree

from ..analysis import Analysis, Layer, Unsupported
from ..errors import CostlabError, SpecError, TargetError
from ..formulas import cost_of, numel
from ..graph import DTYPE_BYTES, Net
from ..specs import Held, Shape, Spec
from .rules import (CREATION_FUNCTIONS, CREATION_METHODS, PYTHON_FUNCTIONS, PYTHON_MODULES,
                    RuleError, TensorValue, Unknown, function_rule, is_leaf, leaf_modules,
                    module_rule, op_name, tensor_method_name)

@dataclass(frozen=True)
class Trace:
    """An analysis of a module and, for each layer, the module whose call produced it.

    ``owners[layer]`` is the leaf module's path for a module's layer and the enclosing module's
    path for a functional op ('' for the top level); ``method`` is 'fx' or 'meta'.
    """

    analysis: Analysis
    owners: Mapping[str, str]
    method: str



def _is_python_call(target: Any, args: Any) -> bool:
    """A function of plain Python values that the trace may evaluate (size arithmetic)."""
    if any(is_value_leaf(v) for v in pytree.tree_leaves(args, is_leaf=is_value_leaf)):
        return False
    if target in PYTHON_FUNCTIONS:
        return True
    module = getattr(target, "__module__", None)
    return module in ("_operator", "operator", "builtins", "math") or any(
        getattr(m, getattr(target, "__name__", ""), None) is target for m in PYTHON_MODULES)


def _meta_tensor(value: Any) -> Any:
    if isinstance(value, TensorValue):
        like = value.tensor
        dtype = like.dtype if isinstance(like, torch.Tensor) else torch.float32
        return torch.empty(value.shape, dtype=dtype, device="meta")
    return value


def _shapes_by_meta(run: Callable[..., Any], args: tuple, kwargs: dict, origin: str) -> Any:
    """Run one call on meta tensors (no memory, no arithmetic) to learn its output shapes."""
    if has_unknown((args, kwargs)):
        return Unknown(origin)
    meta_args, meta_kwargs = pytree.tree_map(_meta_tensor, (args, kwargs), is_leaf=is_value_leaf)
    try:
        with torch.no_grad():
            out = run(*meta_args, **meta_kwargs)
    except Exception:  # noqa: BLE001 - any failure only means the shape stays unknown
        return Unknown(origin)
    return pytree.tree_map(lambda t: TensorValue(tuple(t.shape)) if isinstance(t, torch.Tensor) else t, out)


# --- the fx path --------------------------------------------------------------------------

_PLAIN_ARGUMENTS = (int, float, bool, str, type(None))


class _LeafTracer(fx.Tracer):
    """fx's tracer with costlab's leaves: modules with a rule, and torch.nn modules without children."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return is_leaf(m)

    def create_arg(self, a: Any) -> Any:
        """fx's own result, reached without its general checks for the arguments most calls carry
        (a proxy, a plain constant, a tuple of those): a tenth of the trace of a ResNet-50."""
        if isinstance(a, fx.Proxy):
            return a.node
        if type(a) in _PLAIN_ARGUMENTS:
            return a
        if type(a) is tuple:
            return tuple(self.create_arg(item) for item in a)
        return super().create_arg(a)


def _attribute(root: nn.Module, target: str) -> Any:
    value: Any = root
    for part in target.split("."):
        value = getattr(value, part)
    if isinstance(value, torch.Tensor):
        return TensorValue(tuple(value.shape), target, value)
    return value


def _scope_of(node: fx.Node) -> str:
    stack = node.meta.get("nn_module_stack")
    if not stack:
        return ""
    innermost = list(stack.values())[-1]
    return innermost[0] if isinstance(innermost, tuple) else str(innermost)


def _fx_walk(root: nn.Module, graph: fx.Graph, recorder: Recorder, input_value: TensorValue) -> Any:
    env: dict[fx.Node, Any] = {}
    placeholders = 0

    def load(value: Any) -> Any:
        return fx.node.map_arg(value, lambda n: env[n])

    for node in graph.nodes:
        if node.op == "placeholder":
            if placeholders == 0:
                env[node] = input_value
            elif node.args:
                env[node] = node.args[0]
            else:
                raise TargetError(f"forward() takes more than one input ({node.target!r}); costlab "
                                  "passes one tensor of the --input shape")
            placeholders += 1
        elif node.op == "get_attr":
            env[node] = _attribute(root, str(node.target))
        elif node.op == "output":
            return load(node.args[0])
        else:
            env[node] = _fx_call(root, recorder, node, tuple(load(node.args)), dict(load(node.kwargs)))
    return None


def _fx_call(root: nn.Module, recorder: Recorder, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    if node.op == "call_module":
        path = str(node.target)
        module = recorder.modules.get(path) or root.get_submodule(path)
        try:
            return call_module(recorder, path, module, args, kwargs)
        except Unpriced as unpriced:
            recorder.unsupported.append(Unsupported(path, type_name(module), unpriced.reason))
            recorder.touch([TensorValue((), "", t) for t in module.state_dict(keep_vars=True).values()])
            try:
                clone = meta_copy(module)  # the one leaf, on meta: the user's module is not touched
            except TargetError:
                return Unknown(path)
            return _shapes_by_meta(clone, args, kwargs, path)
    target = node.target
    scope = _scope_of(node)
    if node.op == "call_method":
        receiver = args[0] if args else None
        if not is_value_leaf(receiver):
            return getattr(receiver, str(target))(*args[1:], **kwargs)
        if target in CREATION_METHODS:
            return _shapes_by_meta(lambda x, *a, **k: getattr(x, str(target))(*a, **k), args, kwargs, str(target))
    elif _is_python_call(target, (args, kwargs)):
        return target(*args, **kwargs)
    elif target in CREATION_FUNCTIONS:
        return _shapes_by_meta(target, args, kwargs, op_name(target))
    try:
        return call_function(recorder, scope, target, args, kwargs)
    except Unpriced as unpriced:
        recorder.unsupported.append(Unsupported(scope or TOP_LEVEL, op_name(target), unpriced.reason))
        recorder.touch((args, kwargs))
        if node.op == "call_function" and inspect.isfunction(target):
            recorder.opaque.append(op_name(target))
        run = (lambda x, *a, **k: getattr(x, str(target))(*a, **k)) if node.op == "call_method" else target
        return _shapes_by_meta(run, args, kwargs, f"{scope or TOP_LEVEL}: {op_name(target)}")


# --- the meta-device fallback -------------------------------------------------------------

def meta_copy(module: nn.Module) -> nn.Module:
    """A copy of ``module`` whose parameters and buffers are meta tensors (no data copied),
    with tied weights kept tied, hooks removed, in eval mode."""
    memo: dict[int, Any] = {}
    for tensor in [*module.parameters(), *module.buffers()]:
        meta = torch.empty_like(tensor, device="meta")
        memo[id(tensor)] = (nn.Parameter(meta, requires_grad=tensor.requires_grad)
                            if isinstance(tensor, nn.Parameter) else meta)
    try:
        clone = copy.deepcopy(module, memo)
    except Exception as error:  # noqa: BLE001 - any copy failure is reported in one line
        raise TargetError(f"cannot copy the module to the meta device: {one_line(error)}") from None
    for m in clone.modules():
        m.training = False
        for attribute in HOOK_ATTRIBUTES:
            if attribute in m.__dict__:
                m.__dict__[attribute] = OrderedDict()
    return clone


@dataclass
class _MetaState:
    recorder: Recorder
    names: dict[int, str]  # id of a parameter/buffer of the copy → its qualified name
    stack: list[str] = field(default_factory=list)
    depth: int = 0
    values: dict[int, TensorValue] = field(default_factory=dict)
    keep: list[torch.Tensor] = field(default_factory=list)  # so that ids stay unique

    def value_of(self, item: Any) -> Any:
        if not isinstance(item, torch.Tensor):
            return item
        known = self.values.get(id(item))
        if known is not None:
            return known
        if id(item) in self.names:
            return TensorValue(tuple(item.shape), self.names[id(item)], item)
        return TensorValue(tuple(item.shape))

    def bind(self, value: Any, out: Any, where: str) -> None:
        """Remember which layer made each output tensor (the rule's values paired with the run's)."""
        if isinstance(out, torch.Tensor):
            shape = tuple(out.shape)
            if isinstance(value, TensorValue):
                if value.shape != shape:
                    self.recorder.notes.append(f"{where}: the formula gives shape {value.shape}, the "
                                               f"meta run {shape}; the run's shape is used downstream")
                self.values[id(out)] = TensorValue(shape, value.producer, value.tensor)
            else:
                self.values[id(out)] = TensorValue(shape)
            self.keep.append(out)
        elif isinstance(out, (tuple, list)) and isinstance(value, (tuple, list)) and len(out) == len(value):
            for v, o in zip(value, out):
                self.bind(v, o, where)
        else:
            for leaf in pytree.tree_leaves(out):
                if isinstance(leaf, torch.Tensor):
                    self.bind(None, leaf, where)


class _FunctionRecorder(TorchFunctionMode):
    """Sees every torch function and Tensor method; prices those called outside leaf modules."""

    def __init__(self, state: _MetaState) -> None:
        super().__init__()
        self.state = state

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        state = self.state
        if state.depth > 0 or not any(isinstance(t, torch.Tensor) for t in pytree.tree_leaves(out)):
            return out
        method = tensor_method_name(func)
        target = method if method is not None else func
        scope = state.stack[-1] if state.stack else ""
        if target in CREATION_FUNCTIONS or target in CREATION_METHODS:
            state.bind(None, out, scope)
            return out
        vargs, vkwargs = pytree.tree_map(state.value_of, (tuple(args), dict(kwargs)))
        value = None
        try:
            value = call_function(state.recorder, scope, target, vargs, vkwargs)
        except Unpriced as unpriced:
            state.recorder.unsupported.append(Unsupported(scope or TOP_LEVEL, op_name(target), unpriced.reason))
            state.recorder.touch((vargs, vkwargs))
        state.bind(value, out, f"{scope or TOP_LEVEL}: {op_name(target)}")
        return out


def _meta_run(module: nn.Module, input_shape: Shape, batch: int, dtype: str,
              label: str) -> tuple[Recorder, Any, nn.Module]:
    """Run a meta copy of ``module`` once; returns what was recorded, the output values, the copy."""
    clone = meta_copy(module)
    recorder = Recorder(clone, dtype)
    names = {id(t): n for n, t in [*clone.named_parameters(), *clone.named_buffers()]}
    state = _MetaState(recorder, names)
    paths: dict[int, str] = {}
    for path, m in clone.named_modules():
        paths.setdefault(id(m), path)
    leaves = {id(m) for m in leaf_modules(clone).values()}
    handles = []

    def before(m: nn.Module, args: tuple, kwargs: dict) -> None:
        if id(m) in leaves:
            state.depth += 1
        elif state.depth == 0:
            state.stack.append(paths[id(m)])

    def after(m: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        if id(m) not in leaves:
            if state.depth == 0:
                state.stack.pop()
            return
        state.depth -= 1
        if state.depth:
            return
        path = paths[id(m)]
        vargs, vkwargs = pytree.tree_map(state.value_of, (tuple(args), dict(kwargs)))
        value = None
        try:
            value = call_module(recorder, path, m, vargs, vkwargs)
        except Unpriced as unpriced:
            recorder.unsupported.append(Unsupported(path, type_name(m), unpriced.reason))
            recorder.touch([state.value_of(t) for t in m.state_dict(keep_vars=True).values()])
        state.bind(value, output, path)

    def visit(m: nn.Module) -> None:
        handles.append(m.register_forward_pre_hook(before, with_kwargs=True))
        handles.append(m.register_forward_hook(after, with_kwargs=True))
        if id(m) not in leaves:
            for child in m.children():
                visit(child)

    visit(clone)
    x = torch.empty((batch,) + tuple(input_shape), device="meta")
    state.values[id(x)] = TensorValue(tuple(x.shape), Net.INPUT)
    state.keep.append(x)
    try:
        with torch.enable_grad(), _FunctionRecorder(state):
            out = clone(x)
    except CostlabError:
        raise
    except Exception as error:  # noqa: BLE001 - user code failing on the meta device
        raise TargetError(f"{label}: the forward pass fails on the meta device ({one_line(error)}); "
                          "control flow on tensor values, or an op without a meta kernel, cannot be "
                          "counted without running it") from None
    finally:
        for handle in handles:
            handle.remove()
    output = pytree.tree_map(state.value_of, out)
    return recorder, output, clone


# --- entry points -------------------------------------------------------------------------

def _first_tensor(value: Any) -> TensorValue | None:
    for leaf in pytree.tree_leaves(value, is_leaf=is_value_leaf):
        if isinstance(leaf, TensorValue):
            return leaf
    return None


def _finish(recorder: Recorder, root: nn.Module, output: Any, label: str, input_shape: Shape,
            batch: int, dtype: str, method: str, notes: Sequence[str]) -> Trace:
    recorder.hold_unused()
    first = _first_tensor(output)
    extra = list(notes)
    if first is None:
        extra.append("the module returns no tensor of known shape")
    elif len([leaf for leaf in pytree.tree_leaves(output, is_leaf=is_value_leaf)
              if isinstance(leaf, (TensorValue, Unknown))]) > 1:
        extra.append("the module returns several tensors; 'output' is the first")
    analysis = Analysis(name=label, input=tuple(input_shape), batch=batch,
                        output=first.shape[1:] if first is not None else (),
                        layers=tuple(recorder.layers), unsupported=tuple(recorder.unsupported),
                        dtype=dtype, kind="module", notes=tuple(extra + recorder.notes))
    return Trace(analysis, dict(recorder.owners), method)


def _leaf_root(module: nn.Module, input_value: TensorValue, dtype: str) -> tuple[Recorder, Any]:
    """A module that is a leaf itself (nn.Conv2d, …) is priced by its rule, named after its type."""
    recorder = Recorder(module, dtype)
    base = type(module).__name__.lower()
    try:
        output = call_module(recorder, "", module, (input_value,), {}, base=base)
    except Unpriced as unpriced:
        recorder.unsupported.append(Unsupported(TOP_LEVEL, type_name(module), unpriced.reason))
        output = Unknown(base)
    return recorder, output


def trace_module(module: nn.Module, input: Sequence[int], batch: int = 1, dtype: str = "float32",
                 name: str | None = None, method: str = "auto") -> Trace:
    """Analyse ``module`` on a batch of ``input``-shaped samples.

    ``method``: 'auto' (fx, falling back to the meta device), 'fx' or 'meta'.
    """
    if not isinstance(module, nn.Module):
        raise TargetError(f"expected an nn.Module, got {type(module).__name__}")
    if method not in ("auto", "fx", "meta"):
        raise CostlabError(f"unknown trace method {method!r} (auto, fx or meta)")
    input_shape = tuple(Net(tuple(input), batch, dtype).input.shape[1:])  # validates all three
    label = name or type(module).__name__
    input_value = TensorValue((batch,) + input_shape, Net.INPUT)
    notes: list[str] = []
    if is_leaf(module):
        with detached(module):
            recorder, output = _leaf_root(module, input_value, dtype)
            return _finish(recorder, module, output, label, input_shape, batch, dtype, "fx", notes)
    if method == "meta":
        return _meta_trace(module, input_shape, batch, dtype, label, notes)
    with detached(module):
        try:
            graph = _LeafTracer().trace(module)
        except CostlabError:
            raise
        except Exception as error:  # noqa: BLE001 - any fx failure sends us to the fallback
            if method == "fx":
                raise TargetError(f"{label}: torch.fx cannot trace it ({one_line(error)})") from None
            notes.append(f"torch.fx could not trace it ({one_line(error)}); counted by a run on the "
                         "meta device with hooks")
            graph = None
        if graph is not None:
            recorder = Recorder(module, dtype)
            try:
                output = _fx_walk(module, graph, recorder, input_value)
            except CostlabError:
                raise
            except Exception as error:  # noqa: BLE001 - Python in the graph failing on shapes alone
                if method == "fx":
                    raise TargetError(f"{label}: the fx graph cannot be walked ({one_line(error)})") from None
                notes.append(f"the fx graph could not be walked ({one_line(error)}); counted by a run on "
                             "the meta device with hooks")
                graph = None
    if graph is None:
        return _meta_trace(module, input_shape, batch, dtype, label, notes)
    traced = _finish(recorder, module, output, label, input_shape, batch, dtype, "fx", notes)
    if method == "fx" or not recorder.opaque:
        return traced
    # fx kept some Python functions opaque (torch.fx.wrap): a meta run sees inside them
    opaque = ", ".join(dict.fromkeys(recorder.opaque))
    try:
        seen_inside = _meta_trace(module, input_shape, batch, dtype, label, notes + [
            f"torch.fx keeps {opaque} opaque; counted by a run on the meta device, which sees inside"])
    except CostlabError:
        return traced
    if len(seen_inside.analysis.unsupported) >= len(traced.analysis.unsupported):
        return traced
    return seen_inside


def _meta_trace(module: nn.Module, input_shape: Shape, batch: int, dtype: str, label: str,
                notes: Sequence[str]) -> Trace:
    recorder, output, clone = _meta_run(module, input_shape, batch, dtype, label)
    return _finish(recorder, clone, output, label, input_shape, batch, dtype, "meta", notes)


def analyze_module(module: nn.Module, input: Sequence[int], batch: int = 1, dtype: str = "float32",
                   name: str | None = None) -> Analysis:
    """The cost of an ``nn.Module`` on a batch of ``input``-shaped samples (see the module docstring)."""
    return trace_module(module, input, batch=batch, dtype=dtype, name=name).analysis


def _literal(value: Any) -> Any:
    """'10' → 10, '0.5' → 0.5, 'true' → True, 'none' → None, '(1, 2)' → (1, 2); other text stays text."""
    if not isinstance(value, str):
        return value
    lowered = value.strip().lower()
    if lowered in ("true", "false", "none"):
        return {"true": True, "false": False, "none": None}[lowered]
    try:
        return ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
        return value


@contextmanager
def _working_directory_importable() -> Iterator[None]:
    """Import as ``python -c`` would: the working directory first on sys.path, for this import only."""
    saved = list(sys.path)
    sys.path.insert(0, os.getcwd())
    try:
        yield
    finally:
        sys.path[:] = saved


def load_callable(text: str, options: Mapping[str, Any] | None = None) -> nn.Module:
    """Import ``package.module:callable``, call it with ``options`` and return the nn.Module it makes."""
    module_name, _, attribute = text.strip().partition(":")
    try:
        with _working_directory_importable():
            package = importlib.import_module(module_name)
    except ImportError as error:
        optional = getattr(error, "name", "") == "torchvision"
        hint = " (torchvision is optional: pip install costlab[vision])" if optional else ""
        raise TargetError(f"cannot import {module_name}: {one_line(error)}{hint}") from None
    except Exception as error:  # noqa: BLE001 - user code failing at import
        raise TargetError(f"importing {module_name} failed: {one_line(error)}") from None
    factory = getattr(package, attribute, None)
    if factory is None:
        raise TargetError(f"{module_name} has no attribute {attribute!r}")
    if not callable(factory):
        raise TargetError(f"{text} is a {type(factory).__name__}, not a callable")
    kwargs = {key: _literal(value) for key, value in (options or {}).items()}
    try:
        made = factory(**kwargs)
    except Exception as error:  # noqa: BLE001 - user code failing
        shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        raise TargetError(f"{text}({shown}) raised {one_line(error)}") from None
    if not isinstance(made, nn.Module):
        raise TargetError(f"{text} returned a {type(made).__name__}, not an nn.Module")
    return made


def callable_label(text: str, options: Mapping[str, Any] | None) -> str:
    if not options:
        return text
    return f"{text}({','.join(f'{k}={v}' for k, v in options.items())})"


def analyze_callable(text: str, input: Sequence[int], options: Mapping[str, Any] | None = None,
                     batch: int = 1, dtype: str = "float32", name: str | None = None) -> Analysis:
    """The cost of the module that ``package.module:callable`` (called with ``options``) returns."""
    module = load_callable(text, options)
    return analyze_module(module, input, batch=batch, dtype=dtype, name=name or callable_label(text, options))
