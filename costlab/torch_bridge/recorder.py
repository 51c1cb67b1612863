"""What a trace records into: the layers, their names, and each parameter and buffer counted once.

:class:`Recorder` collects priced layers for every engine path (the fx walk, a call priced
alone, a whole meta or CPU run); :func:`call_module` and :func:`call_function` price one call of
a leaf module or a functional op through its rule (:mod:`.rules`) and the core formula.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import nn
from torch.utils import _pytree as pytree

from ..core.analysis import CallSite, Layer, Unsupported
from ..core.errors import SpecError
from ..core.formulas import cost_of, numel
from ..core.graph import DTYPE_BYTES, Net
from ..core.specs import Held, Spec
from .rules import RuleError, TensorValue, Unknown, function_rule, module_rule, qualified_name

TOP_LEVEL = "(top level)"

#: The per-module hook dictionaries detached while a module is traced.
HOOK_ATTRIBUTES = ("_forward_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called",
                    "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_backward_hooks",
                    "_backward_pre_hooks")




def map_leaves(fn: Callable[[Any], Any], value: Any) -> Any:
    """``fn`` over the leaves of nested tuples, lists and dicts (what torch calls take and return),
    as ``pytree.tree_map`` but without its registry where the containers are the plain ones; any
    other container (a namedtuple, fx's immutable_list, an OrderedDict, a deque) goes through pytree;
    a ``torch.Size`` is one value."""
    kind = type(value)
    if kind is tuple or kind is list:
        return kind([map_leaves(fn, item) for item in value])
    if kind is dict:
        return {key: map_leaves(fn, item) for key, item in value.items()}
    if isinstance(value, (tuple, list, dict, deque)) and not isinstance(value, torch.Size):
        return pytree.tree_map(fn, value, is_leaf=is_value_leaf)
    return fn(value)


def leaves(value: Any) -> list[Any]:
    """The leaves of ``value`` in the order :func:`map_leaves` visits them."""
    found: list[Any] = []
    map_leaves(found.append, value)
    return found


class Unpriced(Exception):
    """A call no rule prices: the caller lists it as unsupported."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def one_line(error: BaseException) -> str:
    """The first non-empty line of an exception's message, prefixed by its type, at most 200 chars."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def module_site(module: nn.Module) -> CallSite:
    """A module call: torch.nn's own classes by their public name (torch.nn.Conv2d), others by
    module and class (timm.layers.norm.LayerNorm2d)."""
    cls = type(module)
    site = _MODULE_SITES.get(cls)
    if site is None:
        name = f"torch.nn.{cls.__qualname__}" if cls.__module__.startswith("torch.nn.") else \
            f"{cls.__module__}.{cls.__qualname__}"
        site = _MODULE_SITES[cls] = CallSite("module", name)
    return site


_MODULE_SITES: dict[type, CallSite] = {}  # a class's call site, made once (CallSite is immutable)


def function_site(target: Any) -> CallSite:
    """A function call (a callable, or a Tensor method name)."""
    return CallSite("function", qualified_name(target))


def type_name(module: nn.Module) -> str:
    """'nn.Conv2d' for torch's own modules, else 'package.module.Class' (for messages)."""
    return module_site(module).short


@contextmanager
def detached(module: nn.Module, modules: Sequence[nn.Module] | None = None) -> Iterator[None]:
    """Eval mode and no per-module hooks inside; every module's flag and hooks restored on exit.
    ``modules``: ``module.modules()`` when the caller has listed them already."""
    saved = [(m, m.training, {a: m.__dict__[a] for a in HOOK_ATTRIBUTES if m.__dict__.get(a)})
             for m in (module.modules() if modules is None else modules)]
    try:
        for m, training, hooks in saved:
            if training:
                m.training = False
            for attribute in hooks:  # only the hook dictionaries that hold hooks
                m.__dict__[attribute] = OrderedDict()
        yield
    finally:
        for m, training, hooks in saved:
            if training:
                m.training = training
            m.__dict__.update(hooks)


# --- recording ----------------------------------------------------------------------------

class Recorder:
    """Collects layers, names them, and counts each parameter and buffer once (by identity)."""

    def __init__(self, root: nn.Module, dtype: str) -> None:
        self.itemsize = DTYPE_BYTES[dtype]
        self.layers: list[Layer] = []
        self.owners: dict[str, str] = {}
        self.unsupported: list[Unsupported] = []
        self.notes: list[str] = []
        self.taken: set[str] = {Net.INPUT}
        self.modules: dict[str, nn.Module] = dict(root.named_modules())
        self.reserved: set[str] = {path for path in self.modules if path}
        # (qualified name, tensor) of every parameter and buffer, read in one walk of the modules
        self.named_params = self._named(root, "_parameters")
        self.named_buffers = self._named(root, "_buffers")
        self.param_ids = {id(p) for _, p in self.named_params}
        self.buffer_ids = {id(b) for _, b in self.named_buffers}
        self.sizes = {id(t): t.numel() for _, t in [*self.named_params, *self.named_buffers]}
        #: id → (qualified name, tensor) of each parameter and buffer: a run knows them by identity
        self.attributes = {id(t): (name, t) for name, t in [*self.named_params, *self.named_buffers]}
        self.counted: set[int] = set()
        self.touched: set[int] = set()  # attribute tensors consumed only by views or unpriced ops
        #: the engine path recording now: 'fx', 'fx+meta' (a call priced alone), 'meta' or 'cpu'
        self.engine = "fx"

    def _named(self, root: nn.Module, attribute: str) -> list[tuple[str, torch.Tensor]]:
        """Like ``named_parameters()`` / ``named_buffers()``: each tensor once, under its first name."""
        seen: set[int] = set()
        found = []
        for path, module in self.modules.items():
            for name, tensor in getattr(module, attribute).items():
                if tensor is not None and id(tensor) not in seen:
                    seen.add(id(tensor))
                    found.append((f"{path}.{name}" if path else name, tensor))
        return found

    def touch(self, values: Any) -> None:
        """Remember the module attributes among ``values`` (consumed without a layer to count them)."""
        for leaf in leaves(values):
            if isinstance(leaf, TensorValue) and leaf.tensor is not None:
                self.touched.add(id(leaf.tensor))

    def fresh(self, name: str) -> str:
        """``name``, or name_1, name_2, … when a layer of that name exists already."""
        if name not in self.taken:
            return name
        number = 1
        while f"{name}_{number}" in self.taken:
            number += 1
        return f"{name}_{number}"

    def allocate(self, base: str, own: bool = False) -> str:
        """``base`` if free (a module's own path is free to it), else base_1, base_2, … (fx's style)."""
        if base not in self.taken and (own or base not in self.reserved):
            self.taken.add(base)
            return base
        number = 1
        while f"{base}_{number}" in self.taken or f"{base}_{number}" in self.reserved:
            number += 1
        name = f"{base}_{number}"
        self.taken.add(name)
        return name

    def record(self, name: str, spec: Spec, inputs: Sequence[TensorValue], owner: str,
               call: CallSite) -> TensorValue:
        """Price ``spec`` on the inputs' shapes with the core formula and keep the layer."""
        shapes = tuple(v.shape for v in inputs)
        try:
            cost = cost_of(spec, shapes)
        except SpecError as error:
            raise SpecError(f"layer {name!r}: {error}") from None
        moved = sum(numel(s) for s in shapes) + cost.params + cost.buffers + numel(cost.output)
        self.layers.append(Layer(
            name=name, spec=spec, inputs=tuple(v.producer for v in inputs), input_shapes=shapes,
            output=cost.output, macs=cost.macs, params=cost.params, buffers=cost.buffers, ops=cost.ops,
            activations=numel(cost.output), bytes=moved * self.itemsize, formula=cost.formula,
            call=call, engine=self.engine))
        self.taken.add(name)
        self.owners[name] = owner
        return TensorValue(cost.output, name)

    def settle(self, start: int, tensors: Sequence[Any], module_path: str | None) -> None:
        """Give the layers recorded since ``start`` the parameters and buffers not counted yet.

        Where the formula's count equals the fresh tensors' elements, the formula's per-layer
        split stands; otherwise (a reused module: 0; shared or extra tensors) the first layer
        takes what is fresh, and a module whose own tensors disagree with the formula is noted.
        """
        layers = self.layers
        if start >= len(layers):
            return  # no layer to give them to: they stay uncounted
        if not tensors and not any(layers[i].params or layers[i].buffers for i in range(start, len(layers))):
            return  # nothing held, nothing counted (an activation, an add): nothing to settle
        seen: set[int] = set()
        owned = [0, 0]  # params, buffers among the tensors
        fresh: tuple[list[int], list[int]] = ([], [])  # their ids not counted yet
        for tensor in tensors:
            key = id(tensor)
            if key in seen:
                continue
            seen.add(key)
            kind = 0 if key in self.param_ids else 1 if key in self.buffer_ids else -1
            if kind >= 0:
                owned[kind] += 1
                if key not in self.counted:
                    fresh[kind].append(key)
        for kind, attribute in enumerate(("params", "buffers")):
            actual = sum(self.sizes[key] for key in fresh[kind])
            formula = sum(getattr(layers[i], attribute) for i in range(start, len(layers)))
            if actual != formula:
                if module_path is not None and fresh[kind] and len(fresh[kind]) == owned[kind]:
                    self.notes.append(f"{module_path or TOP_LEVEL}: the module holds {actual:,} {attribute}, "
                                      f"the formula counts {formula:,}; the module's count is used")
                for j, i in enumerate(range(start, len(layers))):
                    layers[i] = replace(layers[i], **{attribute: actual if j == 0 else 0})
            self.counted.update(fresh[kind])

    def rollback(self, start: int) -> None:
        for layer in self.layers[start:]:
            self.taken.discard(layer.name)
            self.owners.pop(layer.name, None)
        del self.layers[start:]

    def hold_unused(self) -> None:
        """Parameters and buffers no layer counted become held layers, one per owning module:
        source 'unused' when the forward pass never reads them, 'unpriced' when only views,
        indexing or unsupported ops do."""
        groups: dict[tuple[str, str], list[int]] = {}
        for named, position in ((self.named_params, 0), (self.named_buffers, 1)):
            for qualified, tensor in named:
                if id(tensor) in self.counted:
                    continue
                self.counted.add(id(tensor))
                why = "unpriced" if id(tensor) in self.touched else "unused"
                groups.setdefault((qualified.rpartition(".")[0], why), [0, 0])[position] += tensor.numel()
        held: dict[str, list[str]] = {"unused": [], "unpriced": []}
        counts = {"unused": [0, 0], "unpriced": [0, 0]}
        for (owner, why), (params, buffers) in groups.items():
            name = self.allocate(owner or "parameters", own=True)
            spec = Held(params, buffers, why)
            cost = cost_of(spec, ())
            self.layers.append(Layer(name=name, spec=spec, inputs=(), input_shapes=(), output=cost.output,
                                     macs=0, params=cost.params, buffers=cost.buffers, ops=0, activations=0,
                                     bytes=0, formula=cost.formula))
            self.owners[name] = owner
            held[why].append(name)
            counts[why][0] += params
            counts[why][1] += buffers
        texts = {"unused": "not used by the forward pass",
                 "unpriced": "read only by views, indexing or unsupported ops"}
        for why, names in held.items():
            if names:
                params, buffers = counts[why]
                self.notes.append(f"{params:,} parameters and {buffers:,} buffer elements {texts[why]} are "
                                  f"counted as held layers: {', '.join(names)}")


class Call:
    """The context a rule records into: one call of a module, or of a function within a scope."""

    def __init__(self, recorder: Recorder, owner: str, base: str, own: bool, site: CallSite) -> None:
        self.recorder, self.owner, self.base, self.own, self.site = recorder, owner, base, own, site
        self.name: str | None = None
        self.params: list[Any] = []

    def layer(self, spec: Spec, inputs: Sequence[TensorValue], sub: str | None = None,
              params: Sequence[Any] = ()) -> TensorValue:
        if self.name is None:
            self.name = self.recorder.allocate(self.base, self.own)
        name = self.name if sub is None else self.recorder.fresh(f"{self.name}.{sub}")
        self.params.extend(params)
        self.params.extend(v.tensor for v in inputs if v.tensor is not None)
        return self.recorder.record(name, spec, inputs, self.owner, self.site)


def own_tensors(module: nn.Module) -> list[torch.Tensor]:
    """The parameters and buffers of ``module`` and its children (read directly for a childless leaf)."""
    if module._modules:
        return [*module.parameters(), *module.buffers()]
    return [t for t in (*module._parameters.values(), *module._buffers.values()) if t is not None]


_NO_TENSORS = (int, float, bool, str, type(None), torch.dtype, torch.device)


def has_unknown(values: Any) -> bool:
    """Whether an Unknown (the output of an unsupported op) is among ``values``, at any depth."""
    kind = type(values)
    if kind is TensorValue or kind in _NO_TENSORS:
        return False
    if kind is Unknown:
        return True
    if isinstance(values, dict):
        values = values.values()
    elif not isinstance(values, (tuple, list)):
        if isinstance(values, (TensorValue, *_NO_TENSORS)):
            return False
        return any(isinstance(v, Unknown) for v in pytree.tree_leaves(values, is_leaf=is_value_leaf))
    for value in values:  # a loop, not any(): the walk asks this of every call
        if has_unknown(value):
            return True
    return False


def is_value_leaf(value: Any) -> bool:
    return isinstance(value, (TensorValue, Unknown))


def call_module(recorder: Recorder, path: str, module: nn.Module, args: tuple, kwargs: dict,
                base: str | None = None) -> Any:
    """Price one call of a leaf module; raises Unpriced when no rule can."""
    rule = module_rule(module)
    if rule is None:
        raise Unpriced(f"no cost rule for {type_name(module)}")
    if has_unknown((args, kwargs)):
        raise Unpriced("its input follows an unsupported op")
    call = Call(recorder, path, base if base is not None else path, True, module_site(module))
    start = len(recorder.layers)
    value = _apply(recorder, call, start, rule, module, args, kwargs)
    recorder.settle(start, [*own_tensors(module), *call.params], path)
    return value


def parametrizations(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """(tensor name, its ParametrizationList) of a module parametrized by ``torch.nn.utils.parametrize``:
    each rebuilds its tensor from the original on every access (``module.weight`` runs it)."""
    found = module.__dict__.get("_modules", {}).get("parametrizations")
    return list(found.items()) if isinstance(found, nn.ModuleDict) else []


def list_parametrization(recorder: Recorder, path: str, tensor: str, chain: nn.Module, why: str) -> None:
    """List a parametrization whose arithmetic is not priced (the counts are then a lower bound)."""
    recorder.unsupported.append(Unsupported(
        f"{path}.parametrizations.{tensor}" if path else f"parametrizations.{tensor}",
        " → ".join(type(step).__name__ for step in chain),
        f"the parametrization rebuilds {tensor} on every access; {why}"))


def _apply(recorder: Recorder, call: Call, start: int, rule: Any, *arguments: Any) -> Any:
    """``rule(call, *arguments)``: a RuleError rolls its layers back (Unpriced); a SpecError is the
    input not fitting the module — the user's error — named after the layer."""
    try:
        return rule(call, *arguments)
    except RuleError as error:
        recorder.rollback(start)
        raise Unpriced(str(error)) from None
    except SpecError as error:
        message = str(error)
        raise SpecError(message if message.startswith("layer ") else f"layer {call.base!r}: {message}") from None


def call_function(recorder: Recorder, scope: str, target: Any, args: tuple, kwargs: dict,
                  owner: str | None = None) -> Any:
    """Price one functional op (a callable, or a Tensor method name) in ``scope``; ``owner``: the
    module whose call it belongs to, when that is not the scope (a function priced alone)."""
    found = function_rule(target)
    if found is None:
        raise Unpriced("no cost rule for this function")
    if has_unknown((args, kwargs)):
        raise Unpriced("its input follows an unsupported op")
    name, rule = found
    call = Call(recorder, scope if owner is None else owner, f"{scope}.{name}" if scope else name, False,
                function_site(target))
    start = len(recorder.layers)
    value = _apply(recorder, call, start, rule, args, kwargs)
    if len(recorder.layers) == start:  # a view or a Python value: attributes it read stay uncounted
        recorder.touch((args, kwargs))
    recorder.settle(start, call.params, None)
    return value

