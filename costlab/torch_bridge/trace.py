"""Count any ``nn.Module``: trace it and price every op with the core's formulas.

The engine is a ladder; each rung is tried only where the one above cannot see:

1. **The fx walk** (fast; knows module names and hyper-parameters). ``torch.fx`` traces the
   module (leaf modules are those :func:`~costlab.torch_bridge.rules.is_leaf` names), then the
   graph is walked once, propagating shapes (batch axis first) from the inputs: each leaf module
   and each functional op goes through its rule (:mod:`.rules`) and :func:`costlab.core.formulas.cost_of`.
   No tensor is allocated and no arithmetic runs. Layers: engine ``fx``.
2. **A call fx cannot see into** — an fx-wrapped function, a function without a rule, a leaf
   module without a rule — is run alone on meta tensors under the aten-level recorder
   (:func:`.run.price_alone`): its inner products, convolutions and attention are priced by the
   aten rules (:mod:`.aten`) and named after the calling layer. Layers: engine ``fx+meta``.
3. **Where fx cannot trace or walk the module**, a copy of it on the meta device runs whole under
   the function-level and aten-level recorders (:mod:`.run`). Layers: engine ``meta``.
4. **Where a data-dependent op stops the meta run** (``.item()``, ``bool(tensor)``, ``nonzero``,
   NMS), the same recorders on a copy of the module with real CPU tensors — the user's inputs, or
   generated ones — and the analysis says that its counts hold for those input values. Layers:
   engine ``cpu``.

**Inputs** (:mod:`costlab.core.inputs`): one float tensor of ``--input`` shape with the batch in front,
or positional and keyword arguments of any kind (tensors of any dtype and device, lists, dicts,
plain values). Given tensors are never modified: the fx walk reads their shapes, a meta run uses
meta copies, a CPU run clones them.

**Names.** A leaf module's layer is its module path (``layer1.0.conv1``); a second call of
the same module is ``path_1``, a third ``path_2``. A functional op is
``<enclosing module path>.<op>`` (``layer1.0.add``, ``inception3a.cat``; just ``<op>`` at the
top level), with ``_1``, ``_2`` for repeats within one scope. In-place and operator
spellings share the op's name (``+=``, ``add_`` and ``torch.add`` are all ``add``). The aten ops
of a call priced at the aten level are ``<call>.<op>`` (``blocks.0.attn.einsum.matmul``).

**Parameters** are counted once, by tensor identity: a module called twice, or two modules
sharing a weight, count it at its first use. Parameters and buffers no traced op uses (e.g.
GoogLeNet's auxiliary heads in eval mode) become ``unused`` layers with no arithmetic, so the
analysis' params always equal ``sum(p.numel() for p in module.parameters())``.

**Unsupported.** An op no rule prices at any level is listed in ``Analysis.unsupported``
(path, op, reason) and contributes nothing; it is never counted as zero silently.

**The user's module is left as it was.** The fx walk runs with the module in eval mode, its
hooks detached, and every module's attributes (and the contents of its dict, list and set
attributes, such as caches) restored afterwards, even when the analysis fails; the meta and CPU
runs use copies. On every path the values of its buffers and plain tensor attributes are restored
too (:func:`values_kept`): a forward that updates one in place (``self.seen += 1``) changes nothing.
"""

from __future__ import annotations

import ast
import copy
import importlib
import inspect
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
from torch import fx, nn
from torch.utils import _pytree as pytree

from ..core.analysis import Analysis, CallSite, Unsupported
from ..core.errors import CostlabError, TargetError
from ..core.extras import extra_for, install_command
from ..core.graph import Net
from ..core.inputs import InputError, Inputs, TensorSpec, describe, headline, tensor_leaves
from .recorder import (TOP_LEVEL, Recorder, Unpriced, call_function, call_module, detached, function_site,
                       has_unknown, is_value_leaf, list_parametrization, module_site, one_line, parametrizations)
from .rules import (CREATION_FUNCTIONS, CREATION_METHODS, PYTHON_FUNCTIONS, PYTHON_MODULES, TensorValue,
                    Unknown, is_leaf, op_name)
from .run import meta_copy, price_alone, real_copy, run_module

__all__ = ["Trace", "trace_module", "analyze_module", "load_callable", "analyze_callable", "meta_copy",
           "detached", "one_line", "preserved"]


@dataclass(frozen=True)
class Trace:
    """An analysis of a module and, for each layer, the module whose call produced it.

    ``owners[layer]`` is the leaf module's path for a module's layer and the enclosing module's
    path for a functional op ('' for the top level); ``method`` is 'fx', 'meta' or 'cpu';
    ``output`` what the forward returned, tensors as their values (a run's cache object as the run
    left it: :mod:`.generation` decodes from it).
    """

    analysis: Analysis
    owners: Mapping[str, str]
    method: str
    output: Any = field(default=None, compare=False, repr=False)


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


# --- leaving the user's module as it was -------------------------------------------------

_STRUCTURE = ("_parameters", "_buffers", "_modules")
#: Attributes every nn.Module has from its __init__ (hook tables, state-dict hooks, flags): kept by
#: identity; :func:`detached` restores the hook tables' contents.
_MODULE_INTERNALS = frozenset(nn.Module().__dict__)


@contextmanager
def preserved(module: nn.Module) -> Iterator[None]:
    """Every submodule's attributes as they were on exit — plain attributes, the contents of its
    own dict, list and set attributes (caches a forward pass may fill), its parameters, buffers and
    children, and each parameter's ``requires_grad`` — plus eval mode and detached hooks inside
    (:func:`detached`). Leaf modules are not snapshotted: the fx walk prices them by their rule and
    never runs their forward."""
    saved = []
    modules = list(module.modules())  # one walk of the tree serves the snapshot, the flags and the hooks
    for m in modules:
        if is_leaf(m) and m is not module:  # fx never runs a leaf's forward: only the others can change
            continue
        attributes = m.__dict__.copy()
        contents = {key: _copy_of(value) for key, value in attributes.items()
                    if key not in _MODULE_INTERNALS and isinstance(value, (dict, list, set))}
        saved.append((m, attributes, contents, m._parameters.copy(), m._buffers.copy(), m._modules.copy()))
    grads = [(p, p.requires_grad) for p in
             {id(p): p for m in modules for p in m._parameters.values() if p is not None}.values()]
    try:
        with detached(module, modules):
            yield
    finally:
        for m, attributes, contents, params, buffers, children in saved:
            current = m.__dict__
            if len(current) != len(attributes) or any(current.get(k, _GONE) is not v for k, v in attributes.items()):
                for key in [k for k in current if k not in attributes]:
                    del current[key]
                current.update(attributes)
            for key, before in contents.items():
                _refill(attributes[key], before)
            for table, before in ((m._parameters, params), (m._buffers, buffers), (m._modules, children)):
                if len(table) != len(before) or any(table.get(k) is not v for k, v in before.items()):
                    table.clear()
                    table.update(before)
        for p, flag in grads:
            if p.requires_grad != flag:
                p.requires_grad_(flag)


_GONE = object()


@contextmanager
def values_kept(module: nn.Module) -> Iterator[None]:
    """Every buffer and plain tensor attribute of every submodule holding the same values on exit:
    a forward that updates one in place (``self.seen += 1``) on any engine path — the fx walk, a
    meta copy sharing it, a CPU run — leaves the user's tensors as they were. Each (non-meta)
    tensor is copied on entry and written back, in place, only if its version counter moved."""
    saved: dict[int, tuple[torch.Tensor, int, torch.Tensor]] = {}
    for m in module.modules():
        tensors = [*m._buffers.values(), *(v for k, v in m.__dict__.items()
                                           if isinstance(v, torch.Tensor) and not isinstance(v, nn.Parameter))]
        for tensor in tensors:
            if tensor is None or tensor.is_meta or id(tensor) in saved or tensor.is_inference():
                continue
            saved[id(tensor)] = (tensor, tensor._version, tensor.detach().clone())
    try:
        yield
    finally:
        with torch.no_grad():
            for tensor, version, before in saved.values():
                if tensor._version == version:
                    continue
                if tensor.shape == before.shape and tensor.dtype == before.dtype:
                    tensor.copy_(before)
                else:  # resized in place: give it back its own size and contents
                    tensor.set_(before)


def _copy_of(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else type(value)(value)


def _refill(container: Any, contents: Any) -> None:
    """Put ``contents`` back into ``container`` in place (the object others may hold)."""
    if isinstance(container, dict):
        if container.keys() != contents.keys() or any(container[k] is not contents[k] for k in contents):
            container.clear()
            container.update(contents)
    elif isinstance(container, list):
        if len(container) != len(contents) or any(a is not b for a, b in zip(container, contents)):
            container[:] = list(contents)
    elif isinstance(container, set):
        if container != contents:
            container.clear()
            container.update(contents)


# --- inputs ---------------------------------------------------------------------------------

def _forward_parameters(module: nn.Module) -> tuple[inspect.Signature | None, str]:
    try:
        signature = inspect.signature(module.forward)
    except (TypeError, ValueError):
        return None, "its forward's parameters cannot be read"
    names = [p.name for p in signature.parameters.values()
             if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return signature, f"forward({', '.join(names)})" if names else "forward()"


def bind_inputs(module: nn.Module, inputs: Inputs, label: str) -> dict[str, Any] | None:
    """The forward's parameters bound to ``inputs`` (name → value; omitted ones absent), or None
    when the signature cannot be read. A misspelt, surplus or missing input is refused in one line
    that names the forward's parameters."""
    signature, shown = _forward_parameters(module)
    if signature is None:
        return None
    params = signature.parameters
    named = {p.name for p in params.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    takes_any = inspect.Parameter.VAR_KEYWORD in {p.kind for p in params.values()}  # forward(..., **kwargs)
    for key in inputs.kwargs:
        if key not in named and not takes_any:
            raise InputError(f"{label}: {shown} has no parameter {key!r}")
    try:
        bound = signature.bind(*inputs.args, **inputs.kwargs)
    except TypeError as error:
        raise InputError(f"{label}: {error} ({shown})") from None
    return dict(bound.arguments)


def holds_tensors(value: Any) -> bool:
    """Whether ``value`` is an object other than a tensor, list, tuple or dict whose attributes
    reach a tensor (a transformers cache): a run may change it, so it is copied, never given."""
    return not isinstance(value, (torch.Tensor, TensorSpec, list, tuple, dict)) and bool(_object_tensors(value))


def _object_tensors(value: Any) -> list[torch.Tensor]:
    """Every tensor reachable from ``value`` through attributes, lists, tuples and dicts (each once)."""
    found: dict[int, torch.Tensor] = {}
    seen: set[int] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            found.setdefault(id(item), item)
            continue
        if id(item) in seen or isinstance(item, (str, bytes, int, float, bool, type(None), type, nn.Module)):
            continue
        seen.add(id(item))
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
        elif hasattr(item, "__dict__") and not callable(item):
            stack.extend(vars(item).values())
    return list(found.values())


def copy_holder(value: Any, device: str) -> Any:
    """A deep copy of an object holding tensors (a cache) for a run on ``device``: its tensors as
    meta tensors ('meta': no data copied) or clones ('cpu'). The caller's object is never given
    to a run, so its contents stay as they were."""
    memo: dict[int, Any] = {}
    for tensor in _object_tensors(value):
        memo[id(tensor)] = (torch.empty_like(tensor, device="meta") if device == "meta" or tensor.is_meta
                            else tensor.detach().clone())
    try:
        return copy.deepcopy(value, memo)
    except Exception as error:  # noqa: BLE001 - an object that will not copy is refused, not mutated
        raise InputError(f"cannot copy the {type(value).__name__} given as an input "
                         f"(a run would change it): {one_line(error)}") from None


def _input_values(inputs: Inputs) -> dict[str, TensorValue]:
    """Each input tensor's value: the first is 'input', the others 'input.<position or name>'."""
    values = {}
    for index, (path, leaf) in enumerate(tensor_leaves(inputs)):
        values[path] = TensorValue(tuple(leaf.shape), Net.INPUT if index == 0 else f"{Net.INPUT}.{path}")
    return values


def _torch_dtype(name: str) -> torch.dtype:
    return getattr(torch, name)


def materialize(inputs: Inputs, device: str, seed: int = 0) -> tuple[tuple, dict, dict[int, TensorValue]]:
    """Real arguments for a run on ``device`` ('meta' or 'cpu'): specs made, given tensors copied
    (meta copies, or clones on the CPU) so that the run never touches them; plus each made
    tensor's value by id. CPU values are uniform in [0, 1) for floats and zeros for integers."""
    values = _input_values(inputs)
    made: dict[int, TensorValue] = {}
    generator = torch.Generator().manual_seed(seed)

    def make(leaf: Any, path: str) -> torch.Tensor:
        if isinstance(leaf, torch.Tensor) and not (device == "cpu" and leaf.is_meta):
            tensor = torch.empty_like(leaf, device="meta") if device == "meta" else leaf.detach().clone()
        else:
            dtype = _torch_dtype(leaf.dtype if isinstance(leaf, TensorSpec) else str(leaf.dtype).replace("torch.", ""))
            shape = tuple(leaf.shape)
            if device == "meta":
                tensor = torch.empty(shape, dtype=dtype, device="meta")
            elif dtype.is_floating_point:
                tensor = torch.rand(shape, generator=generator).to(dtype)
            else:
                tensor = torch.zeros(shape, dtype=dtype)
        made[id(tensor)] = values[path]
        return tensor

    def visit(item: Any, path: str) -> Any:
        if isinstance(item, TensorSpec) or isinstance(item, torch.Tensor):
            return make(item, path)
        if isinstance(item, (list, tuple)):
            return type(item)(visit(sub, f"{path}.{i}" if path else str(i)) for i, sub in enumerate(item))
        if isinstance(item, dict):
            return {key: visit(sub, f"{path}.{key}" if path else str(key)) for key, sub in item.items()}
        if holds_tensors(item):  # a cache: the run gets a copy, the caller's stays as it was
            return copy_holder(item, device)
        return item

    args = tuple(visit(a, str(i)) for i, a in enumerate(inputs.args))
    kwargs = {key: visit(v, key) for key, v in inputs.kwargs.items()}
    return args, kwargs, made


def _fx_bindings(module: nn.Module, inputs: Inputs, label: str) -> tuple[list[Any], dict[str, Any]] | None:
    """For the fx walk: each forward parameter's value in order (a TensorValue, a plain value or
    its default) and the concrete (non-tensor) ones fx should not trace; None when fx cannot take
    these inputs (tensors inside lists or dicts, *args or **kwargs)."""
    bound = bind_inputs(module, inputs, label)
    signature, _ = _forward_parameters(module)
    if bound is None or signature is None:
        return None
    values = _input_values(inputs)
    ordered: list[Any] = []
    concrete: dict[str, Any] = {}
    for index, param in enumerate(signature.parameters.values()):
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            if bound.get(param.name):
                return None
            continue
        if param.name in bound:
            value = bound[param.name]
            if isinstance(value, (TensorSpec, torch.Tensor)):
                path = str(index) if index < len(inputs.args) else param.name
                ordered.append(values[path])
                continue
            if tensor_leaves(value) or holds_tensors(value):  # fx would run on (and change) a given cache
                return None
            concrete[param.name] = value
        elif param.default is not param.empty:
            concrete[param.name] = param.default
        else:
            return None
        ordered.append(concrete[param.name])
    return ordered, concrete


# --- the first ops: the inputs checked as torch would check them -------------------------------

def _meta_examples(module: nn.Module, inputs: Inputs, label: str) -> dict[str, Any]:
    """Each bound forward parameter as a meta tensor of the given input's dtype and shape (or the
    plain value given): what the first ops are tried on."""
    args, kwargs, _ = materialize(inputs, "meta")
    bound = bind_inputs(module, Inputs(args, kwargs), label)
    return bound or {}


def _refused(label: str, where: str, error: BaseException, dtypes: bool) -> InputError | None:
    """The input error when torch refuses a first op on meta for a reason a real run shares (a
    dtype, a shape, a non-tensor argument); None where meta itself is the obstacle, and for a dtype
    when ``dtypes`` is False (costlab's own float ``--input`` gives a shape, not a dtype)."""
    if isinstance(error, (NotImplementedError, CostlabError)):
        return None
    text = one_line(error)
    if not dtypes and ("dtype" in text or "scalar type" in text):
        return None
    if "meta" in text.lower() or "data-dependent" in text.lower() or "symbolic" in text.lower():
        return None
    return InputError(f"{label}: the forward pass cannot take these inputs: {where} raises {text}")


#: Modules that take indices, not values of their weight's dtype.
_INDEXED = (nn.Embedding, nn.EmbeddingBag)


def _dtype_probe(module: nn.Module, args: Sequence[Any]) -> None:
    """The dtype check that CPU kernels make and meta kernels skip: a module computing with a
    floating weight takes a first tensor argument of that weight's dtype. Torch's own reason is
    had from the same kernel family on one-element CPU tensors of those dtypes."""
    weight = module._parameters.get("weight")
    tensor = next((a for a in args if isinstance(a, torch.Tensor)), None)
    if isinstance(module, _INDEXED) or weight is None or tensor is None or not weight.is_floating_point() \
            or tensor.dtype == weight.dtype:
        return
    if isinstance(module, nn.modules.conv._ConvNd):
        torch.nn.functional.conv1d(torch.zeros(1, 1, 1, dtype=tensor.dtype), torch.zeros(1, 1, 1, dtype=weight.dtype))
    else:
        torch.nn.functional.linear(torch.zeros(1, 1, dtype=tensor.dtype), torch.zeros(1, 1, dtype=weight.dtype))


def check_first_ops(root: nn.Module, graph: fx.Graph | None, examples: Mapping[str, Any], label: str,
                    dtypes: bool = True) -> None:
    """Run, on the meta device, every op of the forward that reads only the inputs and the module's
    own tensors (the first real ops), as torch would run them: an input of a dtype, device or shape
    they cannot take (bool into a Linear, float into a half module, float indices into an
    Embedding, ``x.view(-1, 7)`` of 4 elements, a numpy array) is refused with torch's reason,
    never priced. ``graph`` None: ``root`` is a leaf module called on the inputs directly.
    ``dtypes`` False: dtypes are not checked (costlab's float ``--input`` states a shape only)."""
    if graph is None:
        run = meta_copy(root)
        try:
            with torch.no_grad():
                if dtypes:
                    _dtype_probe(root, list(examples.values()))
                run(**examples)
        except Exception as error:  # noqa: BLE001 - torch's own refusal, or meta's limits
            refused = _refused(label, type(root).__name__, error, dtypes)
            if refused is not None:
                raise refused from None
        return
    env: dict[fx.Node, Any] = {}
    for node in graph.nodes:
        if node.op == "placeholder":
            if str(node.target) in examples and isinstance(examples[str(node.target)], torch.Tensor):
                env[node] = examples[str(node.target)]
        elif node.op == "get_attr":
            value = _attribute(root, str(node.target))
            if isinstance(value, torch.Tensor):
                env[node] = torch.empty_like(value, device="meta")
        elif node.op in ("call_module", "call_function", "call_method"):
            inputs = node.all_input_nodes
            if not inputs or not all(n in env for n in inputs) or \
                    not any(n.op == "placeholder" for n in inputs):
                continue
            args, kwargs = fx.node.map_arg((node.args, node.kwargs), lambda n: env[n])
            try:
                with torch.no_grad():
                    if node.op == "call_module":
                        called = root.get_submodule(str(node.target))
                        if dtypes:
                            _dtype_probe(called, [*args, *kwargs.values()])
                        meta_copy(called)(*args, **kwargs)
                    elif node.op == "call_method":
                        getattr(args[0], str(node.target))(*args[1:], **kwargs)
                    else:
                        node.target(*args, **kwargs)
            except Exception as error:  # noqa: BLE001 - torch's own refusal, or meta's limits
                where = str(node.target) if node.op == "call_module" else op_name(node.target) \
                    if node.op == "call_function" else f"Tensor.{node.target}"
                refused = _refused(label, where, error, dtypes)
                if refused is not None:
                    raise refused from None


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
        if isinstance(a, torch.Tensor):  # a parameter or buffer as an argument: its get_attr node
            name = self._name_of(a)
            if name is not None:
                return self.create_node("get_attr", name, (), {})
        return super().create_arg(a)

    def _name_of(self, tensor: torch.Tensor) -> str | None:
        """The first name of a parameter (among the root's parameters) or of another tensor (among
        its buffers), as fx's search of named_parameters() / named_buffers() finds it; by identity,
        from an index made once per trace."""
        index = self.__dict__.get("_attribute_names")
        if index is None or index[0] is not self.root:
            parameters = {id(p): n for n, p in self.root.named_parameters()}  # each once, by its first name
            buffers = {id(b): n for n, b in self.root.named_buffers()}
            index = self._attribute_names = (self.root, parameters, buffers)
        return index[1 if isinstance(tensor, nn.Parameter) else 2].get(id(tensor))

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict[str, Any]) -> Any:
        """fx's own result for a parameter read in a forward (a ``get_attr`` proxy under its first
        name), found in an index of the root's parameters by identity instead of fx's search of
        ``named_parameters()`` on every read (a quarter of the trace of a Swin)."""
        if not isinstance(attr_val, torch.Tensor):
            return attr_val  # fx proxies tensors only: a submodule, a number, a string as it is
        if isinstance(attr_val, nn.Parameter) and not self.param_shapes_constant:
            name = self._name_of(attr_val)
            if name is not None:
                if name not in parameter_proxy_cache:
                    parameter_proxy_cache[name] = self.create_proxy("get_attr", name, (), {})
                return parameter_proxy_cache[name]
        return super().getattr(attr, attr_val, parameter_proxy_cache)


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


def _fx_walk(root: nn.Module, graph: fx.Graph, recorder: Recorder, values: Sequence[Any]) -> Any:
    env: dict[fx.Node, Any] = {}
    placeholders = 0

    def load(value: Any) -> Any:
        return fx.node.map_arg(value, lambda n: env[n])

    for node in graph.nodes:
        if node.op == "placeholder":
            if placeholders < len(values):
                env[node] = values[placeholders]
            elif node.args:
                env[node] = node.args[0]
            else:
                raise TargetError(f"forward() takes an input costlab was not given ({node.target!r})")
            placeholders += 1
        elif node.op == "get_attr":
            env[node] = _attribute(root, str(node.target))
        elif node.op == "output":
            return load(node.args[0])
        else:
            env[node] = _fx_call(root, recorder, node, tuple(load(node.args)), dict(load(node.kwargs)))
    return None


def _method_caller(name: str) -> Callable[..., Any]:
    return lambda x, *a, **k: getattr(x, name)(*a, **k)


def _fx_call(root: nn.Module, recorder: Recorder, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    if node.op == "call_module":
        path = str(node.target)
        module = recorder.modules.get(path) or root.get_submodule(path)
        _price_parametrizations(recorder, path, module)
        try:
            return call_module(recorder, path, module, args, kwargs)
        except Unpriced as unpriced:
            return _alone(recorder, None, args, kwargs, owner=path, base=path, own=True, site=module_site(module),
                          module=module, module_path=path, reason=unpriced.reason)
    target = node.target
    scope = _scope_of(node)
    if node.op == "call_method":
        receiver = args[0] if args else None
        if not is_value_leaf(receiver):
            return getattr(receiver, str(target))(*args[1:], **kwargs)
        if target in CREATION_METHODS:
            return _shapes_by_meta(_method_caller(str(target)), args, kwargs, str(target))
    elif _is_python_call(target, (args, kwargs)):
        return target(*args, **kwargs)
    elif target in CREATION_FUNCTIONS:
        return _shapes_by_meta(target, args, kwargs, op_name(target))
    try:
        return call_function(recorder, scope, target, args, kwargs)
    except Unpriced as unpriced:
        run = _method_caller(str(target)) if node.op == "call_method" else target
        short = op_name(target).rpartition(".")[2]
        return _alone(recorder, run, args, kwargs, owner=scope, base=f"{scope}.{short}" if scope else short,
                      own=False, site=function_site(target), reason=unpriced.reason)


_FOLLOWS_UNSUPPORTED = "its input follows an unsupported op"


def _price_parametrizations(recorder: Recorder, path: str, module: nn.Module) -> None:
    """A module parametrized by ``torch.nn.utils.parametrize`` runs each parametrization's forward
    on every access of the tensor (once per call of its forward, which reads it once): each is priced
    alone at the aten level, as layers ``<path>.parametrizations.<tensor>.<op>`` ahead of the
    module's own; one that cannot be priced is listed."""
    for tensor, chain in parametrizations(module):
        name = f"{path}.parametrizations.{tensor}" if path else f"parametrizations.{tensor}"
        try:
            price_alone(recorder, chain, (), {}, owner=path, base=name, own=True, site=module_site(chain),
                        module=chain, module_path=name)
        except Unpriced as unpriced:
            list_parametrization(recorder, path, tensor, chain, unpriced.reason)


def _alone(recorder: Recorder, run: Callable[..., Any] | None, args: tuple, kwargs: dict, *, owner: str,
           base: str, own: bool, site: CallSite, reason: str, module: nn.Module | None = None,
           module_path: str | None = None) -> Any:
    """Price a call the rules cannot by running it alone at the aten level; list it when even
    that fails (its output shape then comes from a plain meta run, if it has one)."""
    if has_unknown((args, kwargs)):
        reason = _FOLLOWS_UNSUPPORTED
    else:
        try:
            return price_alone(recorder, run if run is not None else module, args, kwargs, owner=owner,
                               base=base, own=own, site=site, module=module, module_path=module_path)
        except Unpriced as unpriced:
            reason = f"{reason}; {unpriced.reason}"
    recorder.unsupported.append(Unsupported(owner or TOP_LEVEL, site.short, reason))
    recorder.touch((args, kwargs))
    if module is not None:
        recorder.touch([TensorValue((), "", t) for t in module.state_dict(keep_vars=True).values()])
        try:
            run = meta_copy(module)
        except TargetError:
            return Unknown(owner)
    return _shapes_by_meta(run, args, kwargs, f"{owner or TOP_LEVEL}: {site.short}")  # type: ignore[arg-type]


# --- entry points -------------------------------------------------------------------------

def _first_tensor(value: Any) -> TensorValue | None:
    for leaf in pytree.tree_leaves(value, is_leaf=is_value_leaf):
        if isinstance(leaf, TensorValue):
            return leaf
    return None


def _finish(recorder: Recorder, output: Any, label: str, inputs: Inputs, classic: bool, dtype: str,
            method: str, notes: Sequence[str]) -> Trace:
    recorder.hold_unused()
    first = _first_tensor(output)
    extra = list(notes)
    if first is None:
        extra.append("the module returns no tensor of known shape")
    elif len([leaf for leaf in pytree.tree_leaves(output, is_leaf=is_value_leaf)
              if isinstance(leaf, (TensorValue, Unknown))]) > 1:
        extra.append("the module returns several tensors; 'output' is the first")
    shape, batch = headline(inputs)
    analysis = Analysis(name=label, input=tuple(shape), batch=batch,
                        output=first.shape[1:] if first is not None else (),
                        layers=tuple(recorder.layers), unsupported=tuple(recorder.unsupported),
                        dtype=dtype, kind="module", notes=tuple(extra + recorder.notes),
                        inputs=() if classic else tuple(describe(inputs)), engine=method)
    return Trace(analysis, dict(recorder.owners), method, output)


def _leaf_root(module: nn.Module, values: Sequence[Any], dtype: str) -> tuple[Recorder, Any]:
    """A module that is a leaf itself (nn.Conv2d, …) is priced by its rule, named after its type."""
    recorder = Recorder(module, dtype)
    base = type(module).__name__.lower()
    try:
        output = call_module(recorder, "", module, tuple(values), {}, base=base)
    except Unpriced as unpriced:
        output = _alone(recorder, None, tuple(values), {}, owner="", base=base, own=True,
                        site=module_site(module), reason=unpriced.reason, module=module, module_path="")
    return recorder, output


def _is_on_meta(module: nn.Module) -> bool:
    return any(t.is_meta for t in (*module.parameters(), *module.buffers()))


def trace_module(module: nn.Module, input: Sequence[int] | None = None, batch: int = 1, dtype: str = "float32",
                 name: str | None = None, method: str = "auto", inputs: Any = None,
                 rebuild: Callable[[], nn.Module] | None = None) -> Trace:
    """Analyse ``module`` on a batch of ``input``-shaped samples, or on ``inputs``.

    ``inputs``: a tensor (used as given, batch axis included), a tuple of positional arguments, a
    dict of keyword arguments, or :class:`costlab.core.inputs.Inputs`. ``method``: 'auto' (the ladder of
    the module docstring), 'fx', 'meta' or 'cpu'. ``rebuild`` makes the module with real weights
    when it lives on the meta device and only a CPU run can count it.
    """
    if not isinstance(module, nn.Module):
        raise TargetError(f"expected an nn.Module, got {type(module).__name__}")
    refuse_untraceable(module, name or type(module).__name__)
    with values_kept(module):
        return _trace_module(module, input, batch, dtype, name, method, inputs, rebuild)


def refuse_untraceable(module: nn.Module, label: str) -> None:
    """A module no engine path can run as the user would, refused in one line: a TorchScript
    module (its forward is compiled, its submodules wrapped) and a lazy module not yet initialised
    (its parameters have no shape until a first real call)."""
    if isinstance(module, torch.jit.ScriptModule):
        raise TargetError(f"{label}: a torch.jit scripted module cannot be analysed (its forward is compiled); "
                          "give the nn.Module before torch.jit.script")
    lazy = next((n for n, p in module.named_parameters() if isinstance(p, nn.parameter.UninitializedParameter)),
                None)
    if lazy is not None:
        raise TargetError(f"{label}: parameter {lazy} of a lazy module is not initialised; call the module once "
                          "on a real input first")


def _refuse_nested(inputs: Inputs) -> None:
    """A nested (jagged) tensor among the inputs, refused: it has no one shape to trace."""
    for path, leaf in tensor_leaves(inputs):
        if isinstance(leaf, torch.Tensor) and leaf.is_nested:
            raise InputError(f"inputs: argument {path} is a nested tensor, which has no one shape to trace; "
                             "give a padded tensor")


def _trace_module(module: nn.Module, input: Sequence[int] | None, batch: int, dtype: str, name: str | None,
                  method: str, inputs: Any, rebuild: Callable[[], nn.Module] | None) -> Trace:
    """:func:`trace_module` with the user's tensor values guarded by the caller."""
    if method not in ("auto", "fx", "meta", "cpu"):
        raise CostlabError(f"unknown trace method {method!r} (auto, fx, meta or cpu)")
    label = name or type(module).__name__
    classic = inputs is None
    if classic:
        if input is None:
            raise TargetError(f"{label} needs an input: input=(C, H, W) or inputs=...")
        input_shape = tuple(Net(tuple(input), batch, dtype).input.shape[1:])  # validates all three
        inputs = Inputs((TensorSpec((batch,) + input_shape),), {})
    else:
        Net((1,), 1, dtype)  # validates the dtype
        inputs = as_inputs(inputs)
        _refuse_nested(inputs)
    notes: list[str] = []
    bindings = _fx_bindings(module, inputs, label) if method in ("auto", "fx") else None
    if bindings is None and method == "fx":
        raise TargetError(f"{label}: torch.fx cannot take these inputs (tensors inside lists or dicts)")
    if bindings is not None:
        values, concrete = bindings
        examples = _meta_examples(module, inputs, label)
        with preserved(module):
            if is_leaf(module):
                recorder, output = _leaf_root(module, values, dtype)
                check_first_ops(module, None, examples, label, dtypes=not classic)
                return _finish(recorder, output, label, inputs, classic, dtype, "fx", notes)
            traced = _fx_trace(module, concrete, values, dtype, label, method, notes, examples, classic)
        lost = _lost_shapes(traced[0]) if traced is not None and method == "auto" else None
        if lost is not None:  # a data-dependent op (nonzero, …): only a run knows what follows it
            notes.append(f"the fx walk lost the shapes after {lost} (its output depends on the data); "
                         "counted by a run instead")
            traced = None
        if traced is not None:
            return _finish(*traced, label, inputs, classic, dtype, "fx", notes)
    elif method in ("auto", "meta"):
        bind_inputs(module, inputs, label)  # a misspelt input is refused before any run
    if method in ("auto", "meta"):
        try:
            return _run_trace(module, inputs, classic, dtype, label, "meta", notes)
        except _RunFailed as failed:
            if method == "meta":
                raise TargetError(f"{label}: the forward pass fails on the meta device ({failed.reason})") from None
            notes.append(f"the meta run stopped ({failed.reason}); counted by a run on the CPU, so counts "
                         "that depend on data hold for these input values")
    if rebuild is None and _is_on_meta(module):
        raise TargetError(f"{label}: it must run on real tensors ({notes[-1] if notes else 'cpu'}), but its "
                          "weights are on the meta device")
    run_on = rebuild() if rebuild is not None and _is_on_meta(module) else module
    try:
        return _run_trace(run_on, inputs, classic, dtype, label, "cpu", notes)
    except _RunFailed as failed:
        raise TargetError(f"{label}: the forward pass fails ({failed.reason})") from None


def _fx_trace(module: nn.Module, concrete: dict[str, Any], values: Sequence[Any], dtype: str, label: str,
              method: str, notes: list[str], examples: Mapping[str, Any], classic: bool) -> tuple[Recorder, Any] | None:
    """The fx walk, or None (with a note) where fx cannot trace or walk the module."""
    try:
        graph = _LeafTracer().trace(module, concrete_args=concrete or None)
    except CostlabError:
        raise
    except Exception as error:  # noqa: BLE001 - any fx failure sends us down the ladder
        if method == "fx":
            raise TargetError(f"{label}: torch.fx cannot trace it ({one_line(error)})") from None
        notes.append(f"torch.fx could not trace it ({one_line(error)}); counted by a run on the meta device")
        return None
    recorder = Recorder(module, dtype)
    try:
        output = _fx_walk(module, graph, recorder, values)
        # what the rules let through (a dtype, a reshape, a non-tensor) is checked as torch would
        check_first_ops(module, graph, examples, label, dtypes=not classic)
        return recorder, output
    except CostlabError:
        raise
    except Exception as error:  # noqa: BLE001 - Python in the graph failing on shapes alone
        if method == "fx":
            raise TargetError(f"{label}: the fx graph cannot be walked ({one_line(error)})") from None
        notes.append(f"the fx graph could not be walked ({one_line(error)}); counted by a run on the meta device")
        return None


def _lost_shapes(recorder: Recorder) -> str | None:
    """The op whose unknown output shape left later calls unpriced on the fx walk ('aten.nonzero at
    x'), or None when every call after an unsupported op was still priced."""
    if not any(u.reason.startswith(_FOLLOWS_UNSUPPORTED) for u in recorder.unsupported):
        return None
    first = next(u for u in recorder.unsupported if not u.reason.startswith(_FOLLOWS_UNSUPPORTED))
    return f"{first.op} at {first.path}"


class _RunFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _run_trace(module: nn.Module, inputs: Inputs, classic: bool, dtype: str, label: str, device: str,
               notes: list[str]) -> Trace:
    """A whole run of a copy of ``module`` on ``device`` ('meta' or 'cpu') under the recorders."""
    clone = meta_copy(module) if device == "meta" else real_copy(module)
    recorder = Recorder(clone, dtype)
    recorder.engine = device
    args, kwargs, values = materialize(inputs, device)
    try:
        output = run_module(clone, args, kwargs, recorder, device, values)
    except CostlabError:
        raise
    except Exception as error:  # noqa: BLE001 - user code failing on this device
        raise _RunFailed(one_line(error)) from None
    return _finish(recorder, output, label, inputs, classic, dtype, device, notes)


def as_inputs(inputs: Any) -> Inputs:
    """``inputs=`` of the Python API as :class:`Inputs`: a tensor, a tuple of positional arguments,
    a dict of keyword arguments, or an Inputs."""
    if isinstance(inputs, Inputs):
        return inputs
    if isinstance(inputs, (torch.Tensor, TensorSpec)):
        return Inputs((inputs,), {})
    if isinstance(inputs, tuple):
        return Inputs(inputs, {})
    if isinstance(inputs, dict):
        if not all(isinstance(k, str) for k in inputs):
            raise InputError("keyword inputs need string names")
        return Inputs((), dict(inputs))
    if isinstance(inputs, list):
        return Inputs((inputs,), {})
    raise InputError(f"inputs must be a tensor, a tuple of positional arguments or a dict of keyword "
                     f"arguments, got {type(inputs).__name__}")


def analyze_module(module: nn.Module, input: Sequence[int] | None = None, batch: int = 1,
                   dtype: str = "float32", name: str | None = None, inputs: Any = None) -> Analysis:
    """The cost of an ``nn.Module`` on a batch of ``input``-shaped samples or on ``inputs``
    (see the module docstring)."""
    return trace_module(module, input, batch=batch, dtype=dtype, name=name, inputs=inputs).analysis


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


def load_callable(text: str, options: Mapping[str, Any] | None = None, device: str = "cpu") -> nn.Module:
    """Import ``package.module:callable``, call it with ``options`` and return the nn.Module it makes.

    ``device='meta'`` builds it on the meta device (no weights allocated, nothing initialised),
    falling back to the CPU when the constructor itself computes with tensors."""
    module_name, _, attribute = text.strip().partition(":")
    try:
        with _working_directory_importable():
            package = importlib.import_module(module_name)
    except ImportError as error:
        extra = extra_for(getattr(error, "name", None) or "")
        hint = f" (an optional extra: {install_command(extra)})" if extra else ""
        raise TargetError(f"cannot import {module_name}: {one_line(error)}{hint}") from None
    except Exception as error:  # noqa: BLE001 - user code failing at import
        raise TargetError(f"importing {module_name} failed: {one_line(error)}") from None
    factory = getattr(package, attribute, None)
    if factory is None:
        raise TargetError(f"{module_name} has no attribute {attribute!r}")
    if not callable(factory):
        raise TargetError(f"{text} is a {type(factory).__name__}, not a callable")
    kwargs = {key: _literal(value) for key, value in (options or {}).items()}
    if device == "meta":
        try:
            with torch.device("meta"):
                made = factory(**kwargs)
            if isinstance(made, nn.Module):
                return made
        except Exception:  # noqa: BLE001 - a constructor that computes: build it for real below
            pass
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


def analyze_callable(text: str, input: Sequence[int] | None, options: Mapping[str, Any] | None = None,
                     batch: int = 1, dtype: str = "float32", name: str | None = None,
                     inputs: Any = None) -> Analysis:
    """The cost of the module that ``package.module:callable`` (called with ``options``) returns,
    built on the meta device (rebuilt with real weights only if a CPU run is needed)."""
    module = load_callable(text, options, device="meta")
    return trace_module(module, input, batch=batch, dtype=dtype, name=name or callable_label(text, options),
                        inputs=inputs, rebuild=lambda: load_callable(text, options)).analysis
