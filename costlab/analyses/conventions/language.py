"""The rule language: a :class:`Term` is one count a tool makes for a layer (with its verdict: MACs,
convention, bug, missed, zero); a :class:`Convention` is one tool's table from layer kind to terms
(and from module or function to a :class:`Composite` of parts), and decides which terms a layer gets."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable, Literal, Mapping, Sequence
from .counts import CountFn, zero
from .kinds import CallForm, ConventionError, call_form, function_name, layer_kind
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the results are read, never built, here
    from ...core.analysis import Layer


#: macs: the multiply-adds costlab counts as MACs; convention: a documented choice of the tool,
#: counted beside them; bug: a miscount; missed: not seen though costlab counts something; zero:
#: nothing counted (docs/cost-model.md has the table).
Verdict = Literal["macs", "convention", "bug", "missed", "zero"]


@dataclass(frozen=True)
class Term:
    """One thing a tool counts for a layer of some kind.

    ``primary`` marks the term that stands in the place of costlab's MACs for the layer (the
    conv, linear or matmul count, or its miss); every other term is counted beside them.
    """

    label: str
    count: CountFn
    verdict: Verdict
    rule: str
    primary: bool = False
    per_sample: bool = False  # the tool divides this count by the batch size (ptflops' hooks)
    #: a count that reads the other parts of the same module call (a composite's siblings by part
    #: name: ptflops sizes MHA's output projection by the value's input, which only v_proj sees)
    in_call: Callable[["Layer", Mapping[str, "Layer"]], int] | None = None

    def counted(self, layer: Layer, parts: Mapping[str, Layer]) -> int:
        """This term's count for ``layer``; ``parts``: the layers of its module call, by part name."""
        return self.count(layer) if self.in_call is None else self.in_call(layer, parts)


def macs_term(label: str, count: CountFn, rule: str) -> Term:
    return Term(label, count, "macs", rule, primary=True)


def zero_term(label: str, rule: str, verdict: Verdict = "zero", primary: bool = False) -> Term:
    return Term(label, zero, verdict, rule, primary)


Table = Mapping[str, tuple[Term, ...]]


@dataclass(frozen=True)
class Composite:
    """How a tool prices one ``torch.nn`` module that costlab splits into several layers
    (``nn.MultiheadAttention``: q_proj, k_proj, v_proj, attention, out_proj): the tool's terms
    for each part, by the part's name (the last component of the layer name the torch bridge
    gives it), and whether the tool counts the module's params."""

    terms: Table
    params: bool = True


#: Engines that price a layer by running it (a torch-function mode): they record ``x * y`` and
#: ``x.mul(y)`` alike as the method ``Tensor.mul`` (``+``, ``@`` likewise); only the fx walk
#: tells an operator from a method call.
RUN_ENGINES = frozenset({"meta", "cpu", "fx+meta"})


#: The method each operator dispatches as, as a run records it.
OPERATOR_METHODS: Mapping[str, str] = MappingProxyType({
    "torch.Tensor.add": "operator.add", "torch.Tensor.sub": "operator.sub",
    "torch.Tensor.mul": "operator.mul", "torch.Tensor.div": "operator.truediv",
    "torch.Tensor.matmul": "operator.matmul"})


#: torch.nn.functional functions that are C builtins, as the torch bridge names them (by their
#: module: torch._C._nn.gelu is F.gelu, named ``torch.gelu``) → the F name a tool that patches F
#: sees. torch.prelu, torch.avg_pool1d and torch.adaptive_avg_pool1d are F's functions themselves:
#: a call of either spelling is read as F's.
FUNCTIONAL_BUILTINS: Mapping[str, str] = MappingProxyType({
    f"torch.{name}": f"torch.nn.functional.{name}"
    for name in ("gelu", "avg_pool2d", "avg_pool3d", "prelu", "avg_pool1d", "adaptive_avg_pool1d")})


@dataclass(frozen=True)
class Convention:
    """A tool's counting rules: a term table per call form, and how it reads params and the batch.

    ``modules``: terms for a layer called as an ``nn.Module`` (by layer kind);
    ``functions``: for a layer called as a function — by function name when ``by_function``
    (ptflops patches named functions), else by layer kind (tracers see every op alike);
    ``unseen``: the term of a function-form layer a module-hook tool cannot see;
    ``exact_types``: the tool looks modules up by exact type, so a module of a class other than
    torch.nn's own (a traced layer whose source is not ``nn.…``) gets no rule;
    ``hooked_params_only``: params only of the module-form layers it has a rule for (thop);
    ``leaf_function_params``: the term of a function-form layer that carries parameters inside a
    leaf module (torchinfo prices every leaf module from its parameters, whatever it calls);
    ``composites``: by module source (``nn.MultiheadAttention``), the tool's terms for the parts
    of a module costlab prices as several layers;
    ``operators_as_methods``: a function-form layer recorded by a run (RUN_ENGINES) as one of
    OPERATOR_METHODS is read as the operator — the common spelling, ``y * 0.5`` — for a tool
    that tells them apart (ptflops patches ``torch.Tensor.mul``, which ``*`` does not call).
    """

    name: str
    tool: str
    version: str
    mechanism: str
    unit: str
    modules: Table
    functions: Table
    by_function: bool = False
    unseen: Term | None = None
    params_missed: frozenset[str] = frozenset()  # layer kinds whose params the tool does not count
    exact_types: bool = False
    hooked_params_only: bool = False
    leaf_function_params: Term | None = None
    call: str = ""  # how the tool is called to get the total this convention reproduces
    composites: Mapping[str, Composite] = field(default_factory=lambda: MappingProxyType({}))
    operators_as_methods: bool = False

    def terms(self, layer: Layer, in_leaf_module: bool = False) -> tuple[tuple[Term, ...], CallForm]:
        """The terms this tool counts for ``layer``, and the call form they were chosen by.

        ``in_leaf_module``: the layer is a function called by a module without child modules.
        """
        kind = layer_kind(layer)
        form = call_form(layer)
        composite = self.composites.get(layer.source) if form == "module" else None
        if composite is not None:
            return composite.terms[layer.name.rpartition(".")[2]], form
        if form == "module":
            if self.exact_types and not _torch_nn_module(layer):
                return (_standing_in(UNREGISTERED, layer),), form
            return self.modules[kind], form
        if (self.leaf_function_params is not None and in_leaf_module and layer.params
                and kind != "held"):
            return (_standing_in(self.leaf_function_params, layer),), form
        if self.by_function:
            name = function_name(layer)
            name = FUNCTIONAL_BUILTINS.get(name, name)
            if self.operators_as_methods and layer.engine in RUN_ENGINES:
                name = OPERATOR_METHODS.get(name, name)
            if name in self.functions:
                return self.functions[name], form
            return (_standing_in(self.unseen, layer),), form
        if self.unseen is not None:
            return (_standing_in(self.unseen, layer),), form
        return self.functions[kind], form

    def counts_params(self, layer: Layer) -> bool:
        """Whether the tool's params include this layer's."""
        composite = self.composites.get(layer.source) if call_form(layer) == "module" else None
        if composite is not None:
            return composite.params
        if layer_kind(layer) in self.params_missed:
            return False
        if not self.hooked_params_only:
            return True
        return call_form(layer) == "module" and _torch_nn_module(layer)


def _torch_nn_module(layer: Layer) -> bool:
    """A module of one of torch.nn's own classes (all of costlab's builder's are)."""
    return layer.call is None or layer.call.torch_nn


UNREGISTERED = zero_term("module type without a rule",
                           "rules are looked up by exact type: a module of a class that is not "
                           "torch.nn's own gets none (zero, and thop misses its params)", "missed")


def _standing_in(term: Term | None, layer: Layer) -> Term:
    """``term`` for this layer, standing in for its MACs when it has any; a zero term is 'missed'
    when costlab counts anything for the layer."""
    if term is None:
        raise ConventionError(f"no rule for the function call {function_name(layer)!r}")
    verdict = term.verdict
    if term.count is zero:
        verdict = "missed" if (layer.macs or layer.ops) else "zero"
    return Term(term.label, term.count, verdict, term.rule, primary=layer.op in ("conv", "linear", "matmul"),
                per_sample=term.per_sample)


def for_all(term: Term, kinds: Sequence[str]) -> dict[str, tuple[Term, ...]]:
    return {kind: (term,) for kind in kinds}


LAYOUT = ("concat", "flatten", "reshape", "dropout", "pad")


NO_ARITHMETIC = zero_term("no arithmetic", "layout change, padding or identity at inference: "
                            "nothing to count")


HELD = zero_term("held parameters", "parameters the forward pass never uses: no arithmetic")


MHA_PARTS = ("q_proj", "k_proj", "v_proj", "attention", "out_proj")


MHA_KERNELS = ("nn.MultiheadAttention's attention by the kernel the trace records: need_weights=True (its "
                "default) runs q·kᵀ and the weighted sum as two torch.bmm (bmm), torch.baddbmm and torch.bmm "
                "with a mask (baddbmm); need_weights=False calls scaled_dot_product_attention (sdpa)")


def mha(linear: tuple[Term, ...], attention: tuple[Term, ...], params: bool = True) -> Mapping[str, Composite]:
    """The composites table of a tool that prices nn.MultiheadAttention's projections as linears."""
    parts = {part: linear for part in MHA_PARTS if part != "attention"}
    return MappingProxyType({"nn.MultiheadAttention": Composite(MappingProxyType({**parts, "attention": attention}),
                                                                params)})
