"""Other tools' conventions: what fvcore, ptflops, thop, torchinfo, torchprofile, PyTorch's counter
and torchvision's model table would report for the same model, computed from costlab's own layers.

No torch here: each tool's behaviour is an explicit table from a *layer kind* (:func:`layer_kind`,
decided by the spec's type and fields) to the :class:`Term` s the tool counts for such a layer,
each a pure function of the layer's spec and shapes. Module-hook tools (ptflops, thop, torchinfo)
only see ``nn.Module`` calls; how a layer is called (:func:`call_form`) decides whether they see
it at all, and for ptflops which patched ``torch.nn.functional`` function it goes through.

Every rule is documented in docs/cost-model.md ("Other tools' conventions"), with the tool
version it was read from; tests hold each profile's total equal to the real tool's on every
preset (tests/test_conventions.py).

The profile never changes costlab's own ``macs``: it is reported beside them, with the
difference broken down by rule (:meth:`Profile.differences`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from fractions import Fraction
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping, Sequence

from .errors import CostlabError
from .features import Feature, Heading, View, blank, count as exact_count
from .formulas import numel
if TYPE_CHECKING:  # the results are read, never built, here: no import of costlab.core.analysis at run time
    from .analysis import Analysis, Layer

from .specs import (ACTIVATIONS, ARITHMETIC, CONVS, NORMS, POOLS, RECURRENT_GATES, UPSAMPLE_OPS, REDUCTIONS, AdaptivePool, Activation, Attention, Concat, Conv, Dropout,
                    Elementwise, Embedding, Flatten, Held, Linear, Matmul, Norm, Pad, Pool, Recurrent, Reduce,
                    Reshape, Upsample)

#: macs: the multiply-adds costlab counts as MACs; convention: a documented choice of the tool,
#: counted beside them; bug: a miscount; missed: not seen though costlab counts something; zero:
#: nothing counted (docs/cost-model.md has the table).
Verdict = Literal["macs", "convention", "bug", "missed", "zero"]
CallForm = Literal["module", "function"]
CountFn = Callable[["Layer"], int]


class ConventionError(CostlabError):
    """An unknown convention name."""


# --- layer kinds ------------------------------------------------------------------------

_ELEMENTWISE_KINDS = MappingProxyType({kind: kind for kind in ARITHMETIC})  # from the catalog
ARITHMETIC_KINDS = tuple(ARITHMETIC)

#: Spec type → its layer kind (a function of the spec, for the types with variants).
KIND_OF: Mapping[type, Callable[[Any], str]] = MappingProxyType({
    Conv: lambda s: s.kind,
    Linear: lambda s: "linear",
    Matmul: lambda s: "matmul",
    Attention: lambda s: "attention",
    Norm: lambda s: f"{s.kind}-norm",
    Activation: lambda s: s.kind,
    Pool: lambda s: f"{s.kind}-pool",
    AdaptivePool: lambda s: f"{s.kind}-pool",
    Elementwise: lambda s: _ELEMENTWISE_KINDS.get(s.kind, "elementwise"),
    Upsample: lambda s: f"upsample-{s.mode}",
    Concat: lambda s: "concat",
    Flatten: lambda s: "flatten",
    Reshape: lambda s: "reshape",
    Dropout: lambda s: "dropout",
    Embedding: lambda s: "embedding",
    Reduce: lambda s: f"reduce-{s.kind}",
    Pad: lambda s: "pad",
    Held: lambda s: "held",
    Recurrent: lambda s: "recurrent",
})

ACTIVATION_KINDS = tuple(ACTIVATIONS)  # from the catalog
NORM_KINDS = tuple(f"{kind}-norm" for kind in NORMS)  # from the catalog
POOL_KINDS = tuple(f"{kind}-pool" for kind in POOLS)  # from the catalog
UPSAMPLE_KINDS = tuple(f"upsample-{mode}" for mode in UPSAMPLE_OPS)  # from the specs' table
#: Every layer kind; each convention's table covers all of them (nothing falls to a default).
LAYER_KINDS: tuple[str, ...] = (
    tuple(CONVS)  # from the catalog
    + ("linear", "matmul", "attention")
    + NORM_KINDS
    + ACTIVATION_KINDS
    + POOL_KINDS
    + (*ARITHMETIC_KINDS, "elementwise")
    + UPSAMPLE_KINDS
    + ("concat", "flatten", "reshape", "dropout", "embedding")
    + tuple(f"reduce-{kind}" for kind in REDUCTIONS) + ("pad", "held", "recurrent")
)
REDUCE_KINDS = tuple(f"reduce-{kind}" for kind in REDUCTIONS)


def layer_kind(layer: Layer) -> str:
    """The kind of a layer that the conventions' tables are keyed by (e.g. ``conv``, ``relu6``)."""
    try:
        return KIND_OF[type(layer.spec)](layer.spec)
    except KeyError:
        raise ConventionError(f"no convention rule for {type(layer.spec).__name__}") from None


#: The function costlab's builder (torch_bridge/build.py) calls for the specs that are not
#: modules in PyTorch; every other spec is an ``nn.Module`` call there.
BUILDER_FUNCTIONS: Mapping[type, Callable[[Any], str]] = MappingProxyType({
    Elementwise: lambda s: f"operator.{ARITHMETIC[s.kind].operator if s.kind in ARITHMETIC else s.kind}",
    Concat: lambda s: "torch.cat",
    Matmul: lambda s: "torch.matmul",
    Attention: lambda s: "torch.nn.functional.scaled_dot_product_attention",
    Reshape: lambda s: "torch.Tensor.reshape",
})

def call_form(layer: Layer) -> CallForm:
    """``module`` when the layer is an ``nn.Module`` call in the model a tool sees, else ``function``:
    a traced layer's call site says which; a layer of costlab's own builder is a function exactly
    for the specs in BUILDER_FUNCTIONS."""
    if layer.call is not None:
        return layer.call.form
    return "function" if type(layer.spec) in BUILDER_FUNCTIONS else "module"


def function_name(layer: Layer) -> str:
    """The qualified name of the function a function-form layer calls (``torch.matmul``,
    ``torch.nn.functional.relu``, ``operator.add``, ...)."""
    if layer.call is not None:
        return layer.call.qualified
    make = BUILDER_FUNCTIONS.get(type(layer.spec))
    return make(layer.spec) if make else ""


# --- shape helpers (every count is a function of spec and shapes) ---------------------------

def _in(layer: Layer) -> tuple[int, ...]:
    return layer.input_shapes[0]


def _batch(layer: Layer) -> int:
    return _in(layer)[0]


def _in_numel(layer: Layer) -> int:
    return numel(_in(layer))


def _out_numel(layer: Layer) -> int:
    return numel(layer.output)


def _conv_weight(layer: Layer) -> tuple[int, ...]:
    """PyTorch's weight shape: (C_out, C_in/g, *k), transposed (C_in, C_out/g, *k)."""
    spec = layer.spec
    c_in = _in(layer)[1]
    if spec.transposed:
        return (c_in, spec.out_channels // spec.groups) + spec.kernel
    return (spec.out_channels, c_in // spec.groups) + spec.kernel


def _positions_out(layer: Layer) -> int:
    """N · ∏ output spatial sizes."""
    return layer.output[0] * numel(layer.output[2:])


def _positions_in(layer: Layer) -> int:
    """N · ∏ input spatial sizes."""
    return _in(layer)[0] * numel(_in(layer)[2:])


def _conv_bias(layer: Layer) -> int:
    """One add per output element: N · C_out · ∏out."""
    return _out_numel(layer) if layer.spec.bias else 0


def _conv_at_output(layer: Layer) -> int:
    """N · ∏out · prod(weight): right for a convolution, wrong (output positions) for a transposed one."""
    return _positions_out(layer) * numel(_conv_weight(layer))


def _conv_at_input(layer: Layer) -> int:
    """N · ∏in · prod(weight): the MACs of a transposed convolution (each input scatters its kernel)."""
    return _positions_in(layer) * numel(_conv_weight(layer))


def _thop_conv(layer: Layer) -> int:
    """thop: numel(output) · (C_in/g) · ∏k, for both directions."""
    spec = layer.spec
    return _out_numel(layer) * (_in(layer)[1] // spec.groups) * numel(spec.kernel)


def _torchprofile_conv(layer: Layer) -> int:
    """torchprofile: numel(output) · c · ∏k, c = weight axis 1 when weight axis 0 is C_out, else axis 0."""
    weight = _conv_weight(layer)
    channels = weight[1] if layer.output[1] == weight[0] else weight[0]
    return _out_numel(layer) * channels * numel(layer.spec.kernel)


def _linear_macs(layer: Layer) -> int:
    """prod(input) · out_features."""
    return _in_numel(layer) * layer.spec.out_features


def _linear_bias(layer: Layer) -> int:
    return _out_numel(layer) if layer.spec.bias else 0


def _matmul_prod_a_times_m(layer: Layer) -> int:
    """prod(a.shape) · b.shape[-1] (fvcore's and ptflops' matmul)."""
    a, b = layer.input_shapes[:2]
    return numel(a) * b[-1]


def _matmul_exact(layer: Layer) -> int:
    """∏batch · n · k · m from the operand and output shapes (torchprofile's matmul)."""
    a, b = layer.input_shapes[:2]
    if len(a) == 1 and len(b) == 1:
        return a[0]
    if len(b) == 1:
        return numel(a)
    if len(a) == 1:
        return numel(b)
    return numel(layer.output[:-1]) * a[-1] * b[-1] if len(layer.output) >= 2 else 0


def _attention_macs(layer: Layer) -> int:
    """∏batch · L · S · (E + Ev) for q (…, L, E), k (…, S, E), v (…, S, Ev)."""
    q, k, v = layer.input_shapes[:3]
    return numel(layer.output[:-2]) * q[-2] * k[-2] * (q[-1] + v[-1])


def _fvcore_attention(layer: Layer) -> int:
    """fvcore: SDPA 0; bmm + bmm all; baddbmm (no handle) + bmm: the weighted sum ∏batch·L·S·Ev."""
    kernel = layer.spec.kernel
    if kernel == "bmm":
        return _attention_macs(layer)
    if kernel == "baddbmm":
        q, k, v = layer.input_shapes[:3]
        return numel(layer.output[:-2]) * q[-2] * k[-2] * v[-1]
    return 0


def _affine(layer: Layer) -> bool:
    return bool(layer.spec.affine)


def _adaptive_thop(layer: Layer) -> int:
    """thop: int((∏ in/out, as floats, + 1) · numel(output))."""
    window = 1.0
    for n, o in zip(_in(layer)[2:], layer.output[2:]):
        window *= n / o
    return int((window + 1) * _out_numel(layer))


def _softmax_thop(layer: Layer) -> int:
    """thop: per softmax row of n values, n exps + (n − 1) adds + n divides."""
    n = _in(layer)[-1]
    return (_in_numel(layer) // n) * (3 * n - 1)


def _spatial_rank(layer: Layer) -> int:
    return len(_in(layer)) - 2


def _zero(layer: Layer) -> int:
    return 0


def _recurrent_steps(layer: Layer) -> int:
    """N · T of a recurrent layer's input."""
    shape = _in(layer)
    if len(shape) == 2:
        return shape[0]
    return shape[0] * shape[1]


def _recurrent_directions(layer: Layer) -> int:
    return 2 if layer.spec.bidirectional else 1


def _recurrent_cells(layer: Layer) -> int:
    """Layers × directions: the cells run at every step."""
    return layer.spec.num_layers * _recurrent_directions(layer)


def _lead_product(layer: Layer) -> int:
    """input.shape[0]·input.shape[1] of a recurrent layer: N·T batched (either layout), T·I unbatched
    (ptflops' and thop's batch × steps, read from the input without its layout)."""
    return numel(_in(layer)[:2])


def _thop_recurrent_products(layer: Layer) -> int:
    """thop's gate products: N·T·Σ_l D·G·H·(I_l + H), I_0 = input size, I_l = D·H after the first
    layer (the projection of an LSTM with proj_size is ignored and H used for P)."""
    spec, d = layer.spec, _recurrent_directions(layer)
    g, h = RECURRENT_GATES[spec.mode], spec.hidden_size
    per_step = sum(d * g * h * ((spec.input_size if i == 0 else d * h) + h) for i in range(spec.num_layers))
    return _lead_product(layer) * per_step


def _thop_recurrent_elementwise(layer: Layer) -> int:
    """thop's other ops per cell and step: (8 + 8·bias)·H LSTM, (7 + 6·bias)·H GRU, (1 + 2·bias)·H RNN."""
    spec = layer.spec
    base, with_bias = {"lstm": (8, 8), "gru": (7, 6)}.get(spec.mode, (1, 2))
    per_cell = (base + (with_bias if spec.bias else 0)) * spec.hidden_size
    return _lead_product(layer) * _recurrent_cells(layer) * per_cell


def _rows(layer: Layer) -> int:
    """The rows a linear layer multiplies: its input's elements over its input features."""
    return _in_numel(layer) // _in(layer)[-1]


def _value_dim(parts: Mapping[str, Layer]) -> int:
    """nn.MultiheadAttention's vdim: the value's input size, read from its call's v_proj (the bridge
    records every part of a call, or none)."""
    return parts["v_proj"].input_shapes[0][-1]


def _baddbmm_mask(layer: Layer) -> int:
    """The elements of the mask a baddbmm attention adds to its scores: the masks it was given
    broadcast together — key_padding (N·heads, 1, S), attn_2d (1, L, S), attn_3d (N·heads, L, S);
    a 2-d one (L·S) where none is recorded."""
    if layer.spec.kernel != "baddbmm":
        return 0
    q, k = layer.input_shapes[:2]
    batch_heads, length, source = numel(q[:-2]), q[-2], k[-2]
    shapes = {"key_padding": (batch_heads, 1), "attn_2d": (1, length), "attn_3d": (batch_heads, length)}
    given = [shapes[mask] for mask in layer.spec.masks] or [shapes["attn_2d"]]
    return max(lead for lead, _ in given) * max(rows for _, rows in given) * source


def _in_call(term: Term, count: Callable[[Layer, Mapping[str, Layer]], int]) -> Term:
    """``term`` counted by ``count``, which also reads the other parts of the layer's module call."""
    return replace(term, in_call=count)


def _ptflops_recurrent_elementwise(layer: Layer) -> int:
    """ptflops' rnn_flops extras per cell and step: 10·H LSTM, 7·H GRU, H RNN, + 2·G·H bias adds."""
    spec = layer.spec
    g, h = RECURRENT_GATES[spec.mode], spec.hidden_size
    per_cell = {"lstm": 10, "gru": 7}.get(spec.mode, 1) * h + (2 * g * h if spec.bias else 0)
    return _lead_product(layer) * _recurrent_cells(layer) * per_cell


def _recurrent_projection(layer: Layer) -> int:
    """The projection products of an LSTM with proj_size P: N·T·L·D·P·H (0 without one)."""
    spec = layer.spec
    return _lead_product(layer) * _recurrent_cells(layer) * spec.proj_size * spec.hidden_size


def _torchprofile_lstm(layer: Layer) -> int:
    """torchprofile's aten::lstm: out[0]·out[1] · D · Σ_l 4·R·(I_l + R), R read from h_n (P with a
    projection, else H), I_l = D·R after the first layer; the projection's own products ignored."""
    spec, d = layer.spec, _recurrent_directions(layer)
    r = spec.proj_size or spec.hidden_size
    per_step = sum(4 * r * ((spec.input_size if i == 0 else d * r) + r) for i in range(spec.num_layers))
    return numel(layer.output[:2]) * d * per_step


def _scores(layer: Layer) -> int:
    """Attention scores ∏batch·L·S of an attention layer (q (…, L, E), k (…, S, E))."""
    return numel(layer.output[:-1]) * layer.input_shapes[1][-2]


def _cpu_flash(layer: Layer) -> bool:
    """Whether CPU attention runs as aten._scaled_dot_product_flash_attention_for_cpu (PyTorch 2.13):
    scaled_dot_product_attention on 4-d q, k, v with one head size; else the math path (bmm)."""
    q, k, v = layer.input_shapes[:3]
    return layer.spec.kernel == "sdpa" and len(q) == len(k) == len(v) == 4 and q[-1] == k[-1] == v[-1]


def _bmm_kernel(layer: Layer) -> bool:
    """nn.MultiheadAttention's attention computed by torch.bmm / torch.baddbmm (need_weights=True)."""
    return layer.spec.kernel != "sdpa"


def times(k: int, of: CountFn) -> CountFn:
    """A count function k × ``of``."""
    return lambda layer: k * of(layer)


# --- rules ------------------------------------------------------------------------------

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


def _macs(label: str, count: CountFn, rule: str) -> Term:
    return Term(label, count, "macs", rule, primary=True)


def _zero_term(label: str, rule: str, verdict: Verdict = "zero", primary: bool = False) -> Term:
    return Term(label, _zero, verdict, rule, primary)


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
                return (_standing_in(_UNREGISTERED, layer),), form
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


_UNREGISTERED = _zero_term("module type without a rule",
                           "rules are looked up by exact type: a module of a class that is not "
                           "torch.nn's own gets none (zero, and thop misses its params)", "missed")


def _standing_in(term: Term | None, layer: Layer) -> Term:
    """``term`` for this layer, standing in for its MACs when it has any; a zero term is 'missed'
    when costlab counts anything for the layer."""
    if term is None:
        raise ConventionError(f"no rule for the function call {function_name(layer)!r}")
    verdict = term.verdict
    if term.count is _zero:
        verdict = "missed" if (layer.macs or layer.ops) else "zero"
    return Term(term.label, term.count, verdict, term.rule, primary=layer.op in ("conv", "linear", "matmul"),
                per_sample=term.per_sample)


# --- the tables ---------------------------------------------------------------------------------

def _all(term: Term, kinds: Sequence[str]) -> dict[str, tuple[Term, ...]]:
    return {kind: (term,) for kind in kinds}


_LAYOUT = ("concat", "flatten", "reshape", "dropout", "pad")
_NO_ARITHMETIC = _zero_term("no arithmetic", "layout change, padding or identity at inference: "
                            "nothing to count")
_HELD = _zero_term("held parameters", "parameters the forward pass never uses: no arithmetic")


_MHA_PARTS = ("q_proj", "k_proj", "v_proj", "attention", "out_proj")
_MHA_KERNELS = ("nn.MultiheadAttention's attention by the kernel the trace records: need_weights=True (its "
                "default) runs q·kᵀ and the weighted sum as two torch.bmm (bmm), torch.baddbmm and torch.bmm "
                "with a mask (baddbmm); need_weights=False calls scaled_dot_product_attention (sdpa)")


def _mha(linear: tuple[Term, ...], attention: tuple[Term, ...], params: bool = True) -> Mapping[str, Composite]:
    """The composites table of a tool that prices nn.MultiheadAttention's projections as linears."""
    parts = {part: linear for part in _MHA_PARTS if part != "attention"}
    return MappingProxyType({"nn.MultiheadAttention": Composite(MappingProxyType({**parts, "attention": attention}),
                                                                params)})


def _fvcore() -> Convention:
    conv = _macs("conv", _conv_at_output, "aten::_convolution: N·∏out·prod(weight), bias ignored")
    conv_t = _macs("transposed conv", _conv_at_input,
                   "aten::_convolution (transposed): N·∏in·prod(weight), bias ignored")
    linear = _macs("linear", _linear_macs, "aten::linear: prod(input)·out_features, bias ignored")
    matmul = _macs("matmul", _matmul_prod_a_times_m, "aten::matmul: prod(a)·b[-1]")
    attention = Term("attention by its kernel", _fvcore_attention, "missed",
                     "scaled_dot_product_attention has no handle (0); nn.MultiheadAttention returning its "
                     "weights runs aten::bmm twice (counted in full), with a mask aten::baddbmm (no "
                     "handle) for q·kᵀ and aten::bmm for the weighted sum", primary=True)

    def bn(layer: Layer) -> int:
        if layer.spec.track_running_stats:  # eval: running statistics, folded scale-and-shift
            return _in_numel(layer) * (2 if _affine(layer) else 1)
        return _in_numel(layer) * (5 if _affine(layer) else 4)

    norm_stats = Term("norm 5/element", lambda l: _in_numel(l) * (5 if _affine(l) else 4), "convention",
                      "aten::group_norm / layer_norm / instance_norm: 5 per input element with "
                      "affine, 4 without")
    skipped = _zero_term("not counted", "no handle (relu is ignored; other activations, max and "
                         "average pooling and element-wise ops are skipped with a warning)")
    table: dict[str, tuple[Term, ...]] = {
        "conv": (conv,), "conv-transposed": (conv_t,), "linear": (linear,), "matmul": (matmul,),
        "attention": (attention,),
        "batch-norm": (Term("batch norm 2/element", bn, "convention",
                            "aten::batch_norm at inference: 2 per input element with affine, 1 "
                            "without (5 / 4 when it normalises by batch statistics)"),),
        "layer-norm": (norm_stats,), "group-norm": (norm_stats,), "instance-norm": (norm_stats,),
        **_all(skipped, ACTIVATION_KINDS),
        "max-pool": (skipped,), "avg-pool": (skipped,), "adaptive-max-pool": (skipped,),
        "adaptive-avg-pool": (Term("adaptive avg pool 1/input element",
                                   lambda l: _in_numel(l) if _spatial_rank(l) == 2 else 0,
                                   "convention", "aten::adaptive_avg_pool2d: 1 per input element "
                                   "(the 1-d and 3-d ops have no handle)"),),
        **_all(skipped, (*ARITHMETIC_KINDS, "elementwise")),
        **_all(skipped, UPSAMPLE_KINDS),
        "upsample-nearest": (Term("upsample 1/output element",
                                  lambda l: _out_numel(l) if _spatial_rank(l) == 2 else 0,
                                  "convention", "aten::upsample_nearest2d: 1 per output element "
                                  "(1-d and 3-d have no handle)"),),
        "upsample-bilinear": (Term("upsample 4/output element", times(4, _out_numel), "convention",
                                   "aten::upsample_bilinear2d: 4 per output element"),),
        **_all(_NO_ARITHMETIC, _LAYOUT),
        "embedding": (_zero_term("not counted", "aten::embedding has no handle"),),
        **_all(_zero_term("not counted", "aten::mean / sum / amax / amin have no handle"),
               REDUCE_KINDS),
        "held": (_HELD,),
        "recurrent": (Term("recurrent (not counted)", _zero, "missed", "aten::lstm / gru / rnn_tanh have "
                           "no handle: skipped with a warning", primary=True),),
    }
    return Convention(
        "fvcore", "fvcore FlopCountAnalysis", "0.1.5.post20221221",
        "torch.jit.trace of the forward pass; a handle per aten op", "1 per multiply-add",
        MappingProxyType(table), MappingProxyType(table),
        call="FlopCountAnalysis(model, inputs).total(); traces the model in its current mode.")


def _torch() -> Convention:
    def twice(label: str, count: CountFn, rule: str) -> Term:
        return Term(label, times(2, count), "macs", rule, primary=True)

    table: dict[str, tuple[Term, ...]] = {
        "conv": (twice("conv at 2 FLOPs per MAC", _conv_at_output,
                       "aten.convolution: 2·N·∏out·prod(weight)"),),
        "conv-transposed": (twice("transposed conv at 2 FLOPs per MAC", _conv_at_input,
                                  "aten.convolution (transposed): 2·N·∏in·prod(weight)"),),
        "linear": (twice("linear at 2 FLOPs per MAC", _linear_macs,
                         "aten.addmm / mm: 2·m·n·k, bias ignored"),),
        "matmul": (twice("matmul at 2 FLOPs per MAC", _matmul_exact, "aten.mm / bmm: 2·∏batch·n·k·m"),),
        "attention": (twice("attention at 2 FLOPs per MAC", _attention_macs,
                            "scaled dot-product attention on the math path, and nn.MultiheadAttention's "
                            "bmm / baddbmm: 2·∏batch·L·S·(E + Ev)"),
                      Term("CPU flash attention not counted", lambda l: -2 * _attention_macs(l) if _cpu_flash(l)
                           else 0, "bug", "scaled_dot_product_attention on 4-d q, k, v with one head size (and "
                           "nn.MultiheadAttention with need_weights=False) runs on the CPU as "
                           "aten._scaled_dot_product_flash_attention_for_cpu, which has no formula (the CUDA "
                           "flash kernel has one): 0")),
        "recurrent": (twice("recurrent at 2 FLOPs per MAC", lambda l: l.macs,
                            "on the CPU aten.gru / rnn_tanh / rnn_relu, and aten.lstm with proj_size, run as the "
                            "matrix products it counts (mm, addmm)"),
                      Term("oneDNN LSTM not counted", lambda l: -2 * l.macs if l.spec.mode == "lstm" and
                           not l.spec.proj_size else 0, "missed",
                           "on the CPU an LSTM without projection runs as aten.mkldnn_rnn_layer, which has no "
                           "formula: 0")),
    }
    rest = _zero_term("not counted", "only matrix products and convolutions have a formula")
    for kind in LAYER_KINDS:
        table.setdefault(kind, (rest,))
    return Convention(
        "torch", "torch.utils.flop_counter.FlopCounterMode", "2.13",
        "a dispatch mode that sees every aten op", "FLOPs: 2 per multiply-add",
        MappingProxyType(table), MappingProxyType(table),
        call="FlopCounterMode().get_total_flops() around model(x), grad enabled: convolutions and matrix "
             "products only, 2 per MAC.")


def _torchvision() -> Convention:
    table: dict[str, tuple[Term, ...]] = {
        "conv": (_macs("conv", _conv_at_output, "convolution: N·∏out·prod(weight)"),),
        "conv-transposed": (_macs("transposed conv", _conv_at_input,
                                  "transposed convolution: N·∏in·prod(weight)"),),
        "linear": (_macs("linear", _linear_macs, "addmm / mm: prod(input)·out_features"),),
        "matmul": (_macs("matmul", _matmul_exact, "mm / bmm: ∏batch·n·k·m"),),
        "attention": (_macs("attention", _attention_macs, "the two matrix products of attention"),),
        "recurrent": (Term("recurrent (not counted)", _zero, "missed", "no recurrent layer in its models",
                           primary=True),),
    }
    rest = _zero_term("not counted", "the model table counts convolutions and matrix products only")
    for kind in LAYER_KINDS:
        table.setdefault(kind, (rest,))
    return Convention(
        "torchvision", "torchvision model table (weights.meta['_ops'])", "0.14+",
        "a dispatch-mode counter of convolutions and matrix products (vision PR #6936)",
        "GFLOPS column = 10⁹ multiply-adds, shown to 3 decimals",
        MappingProxyType(table), MappingProxyType(table),
        call="the _ops field of torchvision's weights metadata: conv, linear and matmul MACs.")


_PTFLOPS_FUNCTIONAL_ACT = {"relu": "relu", "elu": "elu", "gelu": "gelu"}


def _ptflops() -> Convention:
    def hook(label: str, count: CountFn, verdict: Verdict, rule: str, primary: bool = False) -> Term:
        """A module hook's count: ptflops divides these by the batch size."""
        return Term(label, count, verdict, rule, primary, per_sample=True)

    bias = hook("conv bias adds", _conv_bias, "convention",
                "conv hook: + one add per output element when the conv has a bias")
    linear_bias = hook("linear bias adds", _linear_bias, "convention",
                       "linear hook: + one add per output element when the layer has a bias")
    norm = hook("norm 1/element, 2 with affine", lambda l: _in_numel(l) * (2 if _affine(l) else 1), "convention",
                "norm hook: 1 per input element, 2 with an affine transform (module.affine)")
    layer_norm = hook("layer norm 1/element (affine missed)", _in_numel, "bug",
                      "the norm hook reads module.affine, which LayerNorm does not have "
                      "(elementwise_affine): 1 per input element, its affine transform never counted")
    activation = hook("activation hook 1/element", _out_numel, "convention",
                      "activation hook: 1 per output element")
    activation_again = Term("activation counted again (patched F.*)", _in_numel, "bug",
                            "the forward of nn.ReLU / ELU / GELU calls F.relu / F.elu / F.gelu, which "
                            "ptflops patches: the elements its hook counted are counted a second "
                            "time (and not divided by the batch)")
    via_functional = Term("activation via patched F.* 1/element", _in_numel, "convention",
                          "no module hook; the forward's patched F.silu / F.softmax counts 1 per "
                          "input element (not divided by the batch)")
    pool = hook("pool hook 1/input element", _in_numel, "convention", "pool hook: 1 per input element")
    pool_again = Term("pool counted again (patched F.*pool*)", _in_numel, "bug",
                      "the pool's forward calls the patched F.*_pool*d: its input elements are "
                      "counted a second time (and not divided by the batch)")
    upsample = hook("upsample hook (first sample only)", lambda l: _out_numel(l) // _batch(l), "convention",
                    "Upsample hook: 1 per output element of output[0] — the first sample only, "
                    "then divided by the batch like every hook count")
    upsample_again = Term("upsample counted again (patched F.interpolate)", _out_numel, "bug",
                          "nn.Upsample's forward calls the patched F.interpolate: its output "
                          "elements are counted a second time (and not divided by the batch)")
    not_hooked = _zero_term("not counted", "no module hook and the forward calls no patched function")
    modules: dict[str, tuple[Term, ...]] = {
        "conv": (hook("conv", _conv_at_output, "macs", "conv hook: ∏k·C_in·(C_out/g)·N·∏out",
                      primary=True), bias),
        "conv-transposed": (hook("transposed conv", _conv_at_input, "macs",
                                 "conv hook (transposed): ∏k·C_in·(C_out/g)·N·∏in", primary=True),
                            bias),
        "linear": (hook("linear", _linear_macs, "macs", "linear hook: in·out·∏leading axes",
                        primary=True), linear_bias),
        "batch-norm": (norm,), "group-norm": (norm,), "instance-norm": (norm,),
        "layer-norm": (layer_norm,),
        **_all(not_hooked, ACTIVATION_KINDS),
        **{kind: (activation, activation_again) for kind in ("relu", "elu", "gelu")},
        "relu6": (activation,), "leaky_relu": (activation,),
        "silu": (via_functional,), "softmax": (via_functional,),
        **{kind: (pool, pool_again)
           for kind in ("max-pool", "avg-pool", "adaptive-max-pool", "adaptive-avg-pool")},
        **{kind: (upsample, upsample_again) for kind in UPSAMPLE_KINDS},
        **_all(_NO_ARITHMETIC, _LAYOUT),
        "embedding": (not_hooked,),
        **_all(not_hooked, REDUCE_KINDS),
        "held": (_HELD,),
        "recurrent": (hook("recurrent", lambda l: l.macs, "macs",
                           "rnn_flops_counter_hook: x.shape[0]·x.shape[1]·D·Σ_l (w_ih.numel() + w_hh.numel()), "
                           "the gate products of every cell and step", primary=True),
                      hook("LSTM projection not counted", lambda l: -_recurrent_projection(l), "bug",
                           "the projection weights (weight_hr_l*) of an LSTM with proj_size are not read: "
                           "its P·H products per cell and step are missing"),
                      hook("recurrent element-wise ops", _ptflops_recurrent_elementwise, "convention",
                           "per cell and step: 10·H (LSTM), 7·H (GRU), H (RNN), + 2·G·H bias adds")),
        # never modules in PyTorch; listed so that the table covers every kind
        "matmul": (Term("matmul (no module)", _zero, "missed", "not a module", primary=True),),
        "attention": (Term("attention (no module)", _zero, "missed", "not a module", primary=True),),
        **_all(not_hooked, (*ARITHMETIC_KINDS, "elementwise")),
    }
    numel_in = Term("patched functional op 1/input element", _in_numel, "convention",
                    "patched torch.nn.functional op: 1 per input element")
    elementwise = Term("patched torch.add / torch.mul 1/element", _out_numel, "convention",
                       "patched torch.add / torch.mul: 1 per broadcast output element")
    matmul = _macs("matmul", _matmul_prod_a_times_m, "patched torch.matmul: prod(a)·b[-1]")
    functions: dict[str, tuple[Term, ...]] = {
        **{f"torch.nn.functional.{name}": (numel_in,) for name in (
            "relu", "prelu", "elu", "relu6", "gelu", "silu", "softmax",
            "avg_pool1d", "avg_pool2d", "avg_pool3d", "max_pool1d", "max_pool2d", "max_pool3d",
            "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
            "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d")},
        "torch.nn.functional.interpolate": (Term("patched F.interpolate 1/output element", _out_numel, "convention",
                                                 "patched F.interpolate: 1 per output element"),),
        **{name: (matmul,) for name in ("torch.matmul", "torch.Tensor.matmul", "torch.mm",
                                        "torch.Tensor.mm", "torch.bmm", "torch.Tensor.bmm")},
        **{name: (elementwise,) for name in ("torch.add", "torch.Tensor.add", "torch.mul",
                                             "torch.Tensor.mul")},
    }
    in_proj = (hook("MHA hook: projection", _linear_macs, "macs",
                    "multihead_attention_counter_hook: L·E·E (q), S·kdim·kdim (k), S·vdim·vdim (v) per sample",
                    primary=True),
               hook("MHA hook: projection at kdim²", lambda l: _in_numel(l) * _in(l)[-1] - _linear_macs(l), "bug",
                    "the k and v projections are priced kdim·kdim and vdim·vdim, not E·kdim and E·vdim "
                    "(0 when kdim = vdim = E)"),
               hook("MHA hook: in-projection bias", lambda l: _out_numel(l) if l.spec.bias else 0, "convention",
                    "(L + 2·S)·E bias adds when in_proj_bias is set"))
    out_proj = (hook("MHA hook: output projection", _linear_macs, "macs",
                     "L·vdim·vdim per sample, vdim the value's size: L·E·E here, E = embed_dim",
                     primary=True),
                _in_call(hook("MHA hook: output projection at vdim²", _zero, "bug",
                              "the output projection is priced vdim·vdim, vdim the value's input size, not "
                              "E·E (0 when vdim = E)"),
                         lambda l, parts: _rows(l) * (_value_dim(parts) ** 2 - _in(l)[-1] ** 2)),
                _in_call(hook("MHA hook: output bias", _zero, "convention", "L·vdim bias adds"),
                         lambda l, parts: _rows(l) * _value_dim(parts) if l.spec.bias else 0),
                _in_call(hook("MHA hook: output bias without a bias", _zero, "bug",
                              "L·vdim bias adds counted even when out_proj has no bias ('bias is always "
                              "enabled')"),
                         lambda l, parts: 0 if l.spec.bias else _rows(l) * _value_dim(parts)))
    mha_attention = (hook("MHA hook: heads", _attention_macs, "macs", "num_heads·(L·S·E_h + L·S·Ev_h) per sample, "
                          "Ev_h = vdim // num_heads: here E_h",
                          primary=True),
                     _in_call(hook("MHA hook: weighted sum at vdim", _zero, "bug",
                                   "the weighted sum is priced at vdim // num_heads per head, vdim the value's "
                                   "input size, not E_h (0 when vdim = E)"),
                              lambda l, parts: numel(l.output[:-2]) * l.input_shapes[0][-2] * l.input_shapes[1][-2]
                              * (_value_dim(parts) // l.input_shapes[0][-3] - l.input_shapes[2][-1])),
                     hook("MHA hook: q scaling and softmax", lambda l: numel(l.input_shapes[0]) + _scores(l),
                          "convention", "L·E for the scaling of q, num_heads·L·S for the softmax"),
                     _in_call(hook("MHA hook: added keys not seen", _zero, "missed",
                                   "the key length is read from the key input: the keys add_bias_kv and "
                                   "add_zero_attn append are left out of q·kᵀ, the softmax and the weighted sum"),
                              lambda l, parts: -len(l.spec.appended) * numel(l.output[:-2]) * l.input_shapes[0][-2]
                              * (l.input_shapes[0][-1] + _value_dim(parts) // l.input_shapes[0][-3] + 1)),
                     Term("patched F.softmax 1/score", lambda l: _scores(l) if _bmm_kernel(l) else 0,
                          "convention", f"{_MHA_KERNELS}. On bmm and baddbmm its softmax calls the patched "
                          "F.softmax: 1 per score (not divided by the batch)"),
                     Term("heads counted again (patched torch.bmm)", lambda l: _attention_macs(l)
                          if _bmm_kernel(l) else 0, "bug",
                          "on bmm and baddbmm the patched torch.bmm / torch.baddbmm count the products the "
                          "module hook counted a second time (and not divided by the batch)"),
                     Term("patched torch.baddbmm adds the mask", _baddbmm_mask, "convention",
                          "+ numel of the mask baddbmm adds: L·S for a 2-d attn_mask, N·heads·S for a "
                          "key_padding_mask, N·heads·L·S for both or a 3-d attn_mask"))
    mha = MappingProxyType({"nn.MultiheadAttention": Composite(MappingProxyType({
        "q_proj": in_proj, "k_proj": in_proj, "v_proj": in_proj, "attention": mha_attention,
        "out_proj": out_proj}))})
    unseen = _zero_term("functional op (not seen)",
                        "a function ptflops does not patch (the `+` of a residual is "
                        "Tensor.__add__, not torch.add): no hook sees it", "missed")
    return Convention(
        "ptflops", "ptflops get_model_complexity_info (pytorch backend)", "0.7.5",
        "forward hooks on leaf modules of known types, plus patched torch.nn.functional and "
        "tensor functions", "1 per multiply-add (MACs)",
        MappingProxyType(modules), MappingProxyType(functions), by_function=True, unseen=unseen,
        exact_types=True,
        call="get_model_complexity_info(model, (C, H, W), as_strings=False): hook counts are "
            "divided by the batch size (MACs per sample), counts of patched functions are not.",
        composites=mha, operators_as_methods=True)


def _thop() -> Convention:
    norm = Term("norm 4/element (doubled twice)", lambda l: _in_numel(l) * (4 if _affine(l) else 2), "bug",
                "count_normalization: 2 per input element ('fused at inference'), doubled again "
                "when affine: 4 per element")
    zero_rule = _zero_term("zero rule", "a registered zero_ops rule")
    no_rule = _zero_term("no rule", "no rule for the module type: zero ops, zero params", "zero")
    upsample = {"upsample-nearest": 1, "upsample-linear": 5, "upsample-bilinear": 11,
                "upsample-bicubic": 259}
    modules: dict[str, tuple[Term, ...]] = {
        "conv": (_macs("conv", _thop_conv, "count_convNd: numel(output)·(C_in/g)·∏k, bias ignored"),),
        "conv-transposed": (Term("transposed conv at output positions", _thop_conv, "bug",
                                 "count_convNd prices a transposed conv like a forward one: "
                                 "numel(output)·(C_in/g)·∏k instead of N·∏in·C_in·(C_out/g)·∏k",
                                 primary=True),),
        "linear": (_macs("linear", lambda l: _in(l)[-1] * _out_numel(l),
                         "count_linear: in_features·numel(output), bias ignored"),),
        "batch-norm": (norm,), "layer-norm": (norm,), "instance-norm": (norm,),
        "group-norm": (Term("group norm (no rule)", _zero, "missed",
                            "nn.GroupNorm has no rule: zero ops and its params not counted"),),
        **_all(no_rule, ACTIVATION_KINDS),
        "relu": (zero_rule,), "relu6": (zero_rule,), "leaky_relu": (zero_rule,),
        "softmax": (Term("softmax 3n−1/row", _softmax_thop, "convention",
                         "count_softmax: (3n − 1) per row of n values"),),
        "max-pool": (zero_rule,), "adaptive-max-pool": (zero_rule,),
        "avg-pool": (Term("avg pool 1/output element", _out_numel, "convention",
                           "count_avgpool: 1 per output element"),),
        "adaptive-avg-pool": (Term("adaptive avg pool (window + 1)/output element", _adaptive_thop,
                                   "convention",
                                   "count_adap_avgpool: (∏ in/out + 1) per output element, "
                                   "the window size taken as a float"),),
        **{kind: (Term(f"upsample {upsample[kind]}/output element", times(upsample[kind], _out_numel),
                       "convention",
                       "count_upsample: 1 (nearest), 5 (linear), 11 (bilinear), 259 (bicubic) per "
                       "output element"),) if kind in upsample
           else (_zero_term("upsample (not counted)", "count_upsample: mode not implemented, "
                            "zero with a warning"),) for kind in UPSAMPLE_KINDS},
        "dropout": (zero_rule,), "concat": (no_rule,), "flatten": (no_rule,), "reshape": (no_rule,),
        "embedding": (Term("embedding (no rule)", _zero, "zero",
                           "nn.Embedding has no rule: its params are not counted"),),
        **_all(no_rule, REDUCE_KINDS),
        "pad": (_zero_term("zero rule", "nn.ZeroPad2d: a registered zero_ops rule (other pads: no "
                           "rule); no arithmetic either way"),),
        "held": (Term("held parameters", _zero, "zero", "parameters of modules that never run: "
                      "no hook fires, so their params are not counted"),),
        "recurrent": (_macs("recurrent", lambda l: l.macs, "count_lstm / count_gru / count_rnn: "
                            "x.size(0)·x.size(1)·Σ_l D·G·H·(I_l + H), the gate products of every cell and step"),
                      Term("LSTM projection ignored", lambda l: _thop_recurrent_products(l) - l.macs, "bug",
                           "proj_size is ignored: H is used for P in the recurrent products and the next "
                           "layer's input, and the projection itself is not counted"),
                      Term("recurrent element-wise ops", _thop_recurrent_elementwise, "convention",
                           "per cell and step: (8 + 8·bias)·H (LSTM), (7 + 6·bias)·H (GRU), (1 + 2·bias)·H "
                           "(RNN) for the gate sums, bias adds and state update")),
        "matmul": (Term("matmul (no module)", _zero, "missed", "not a module", primary=True),),
        "attention": (Term("attention (no module)", _zero, "missed", "not a module", primary=True),),
        **_all(no_rule, (*ARITHMETIC_KINDS, "elementwise")),
    }
    unseen = _zero_term("functional op (not seen)",
                        "forward hooks on modules only: functions (the residual `+`, torch.cat, "
                        "torch.matmul, F.scaled_dot_product_attention) are never counted", "missed")
    return Convention(
        "thop", "thop profile", "0.1.1.post2209072238",
        "forward hooks on leaf modules of registered types", "1 per multiply-add (MACs)",
        MappingProxyType(modules), MappingProxyType({}), unseen=unseen,
        params_missed=frozenset({"group-norm", "embedding", "held"}), exact_types=True,
        hooked_params_only=True,
        call="thop.profile(model, (x,)) → (ops, params); params only of modules with a rule.",
        composites=_mha(*(2 * ((_zero_term("no rule", "nn.MultiheadAttention has no rule: zero ops, its "
                                             "params not counted", "missed", primary=True),),)), params=False))


def _torchinfo() -> Convention:
    weight_out = "weight.numel()·N·∏out (torchinfo multiplies a Conv's parameters by the output positions)"
    modules: dict[str, tuple[Term, ...]] = {
        "conv": (_macs("conv", _conv_at_output, weight_out),
                 Term("conv bias adds", _conv_bias, "convention",
                      "bias.numel()·N·∏out: one add per output element")),
        "conv-transposed": (Term("transposed conv at output positions", _conv_at_output, "bug",
                                 "weight.numel()·N·∏out: a transposed conv's kernel is applied at "
                                 "its input positions (N·∏in), not at its output ones", primary=True),
                            Term("conv bias adds", _conv_bias, "convention",
                                 "bias.numel()·N·∏out: one add per output element")),
        "linear": (_macs("linear", _linear_macs, "output_size[0]·weight.numel(): the MACs on a batch "
                         "of vectors"),
                   Term("linear middle axes not counted",
                        lambda l: _batch(l) * _in(l)[-1] * l.spec.out_features - _linear_macs(l), "bug",
                        "output_size[0]·weight.numel() multiplies by the batch size only: on inputs "
                        "with more than two axes (sequences, channels-last maps) the middle axes "
                        "are not counted"),
                   Term("linear bias × batch size",
                        lambda l: _batch(l) * l.spec.out_features if l.spec.bias else 0, "convention",
                        "output_size[0]·bias.numel(): one add per output feature per sample")),
        **{kind: (Term("norm parameters × batch size", lambda l: _batch(l) * l.params, "convention",
                       "output_size[0]·(weight + bias).numel(): 1 per affine parameter per sample"),)
           for kind in ("batch-norm", "layer-norm", "group-norm", "instance-norm")},
        "embedding": (Term("embedding table × batch size", lambda l: _batch(l) * l.params, "bug",
                           "output_size[0]·weight.numel(): a table lookup priced as V·D "
                           "multiply-adds per sample"),),
        "matmul": (Term("matmul (no module)", _zero, "missed", "not a module", primary=True),),
        "attention": (Term("attention (no module)", _zero, "missed", "not a module", primary=True),),
        "recurrent": (Term("recurrent parameters × batch × steps", lambda l: _recurrent_steps(l) * l.params,
                           "bug", "parameters (biases too) × N·T: every weight priced as one multiply-add "
                           "per sample and step", primary=True),),
    }
    no_params = _zero_term("no parameters", "torchinfo counts mult-adds only through parameters")
    for kind in LAYER_KINDS:
        modules.setdefault(kind, (no_params,))
    unseen = _zero_term("functional op (not seen)",
                        "hooks on modules only: functions (the residual `+`, torch.matmul, "
                        "attention) are never counted", "missed")
    leaf = Term("leaf module parameters × batch size", lambda l: _batch(l) * l.params, "convention",
                "a function called inside a leaf module that holds parameters (a LayerNorm2d "
                "calling F.layer_norm): torchinfo prices the module from its parameters, "
                "output_size[0]·numel")
    return Convention(
        "torchinfo", "torchinfo summary (Total mult-adds)", "1.8.0",
        "forward hooks on every module; leaf modules' mult-adds from their parameters",
        "1 per multiply-add", MappingProxyType(modules), MappingProxyType({}), unseen=unseen,
        leaf_function_params=leaf,
        call="summary(model, input_data=x).total_mult_adds",
        composites=_mha(*(2 * ((_zero_term("not a leaf module", "nn.MultiheadAttention has a child "
                                             "(out_proj), so it is no leaf and its mult-adds are not summed; "
                                             "out_proj is never called as a module: 0", "missed",
                                             primary=True),),))))


_MM = frozenset({"torch.mm", "torch.Tensor.mm"})


def _torchprofile() -> Convention:
    affine_norm = Term("norm 1/element (affine)", lambda l: _out_numel(l) if _affine(l) else 0, "convention",
                       "aten::*_norm: 1 per output element when affine, else 0")
    pooled = Term("average pool 1/output element", _out_numel, "convention",
                  "aten::avg_pool*d / adaptive_avg_pool*d: 1 per output element")
    skipped = _zero_term("not counted", "zero-cost op, or no handler (skipped with a warning)")
    table: dict[str, tuple[Term, ...]] = {
        "conv": (_macs("conv", _torchprofile_conv, "aten::_convolution: numel(output)·c·∏k"),),
        "conv-transposed": (Term("transposed conv at output positions", _torchprofile_conv, "bug",
                                 "aten::_convolution prices a transposed conv at its output "
                                 "positions: numel(output)·c·∏k, c = C_out/g when C_in = C_out, "
                                 "else C_in", primary=True),),
        "linear": (_macs("linear", lambda l: numel(l.output[:-1]) * _in(l)[-1] * l.spec.out_features,
                         "aten::linear: ∏leading·in·out, bias ignored"),),
        "matmul": (_macs("matmul", _matmul_exact, "aten::matmul / bmm: ∏batch·n·k·m"),
                   Term("mm (no handler)", lambda l: -_matmul_exact(l) if function_name(l) in _MM else 0,
                        "missed", "torch.mm / Tensor.mm trace as aten::mm, which has no handler: skipped "
                        "with a warning")),
        "attention": (_macs("attention", _attention_macs,
                            "aten::scaled_dot_product_attention: ∏batch·L·S·(E + Ev)"),),
        "batch-norm": (affine_norm,), "layer-norm": (affine_norm,), "group-norm": (affine_norm,),
        "instance-norm": (affine_norm,),
        **_all(skipped, ACTIVATION_KINDS),
        "leaky_relu": (Term("leaky relu 1/element", _out_numel, "convention",
                            "aten::leaky_relu: 1 per output element"),),
        "max-pool": (skipped,), "adaptive-max-pool": (skipped,),
        "avg-pool": (pooled,), "adaptive-avg-pool": (pooled,),
        "add": (skipped,), "sub": (skipped,), "div": (skipped,), "elementwise": (skipped,),
        "mul": (Term("multiply 1/element", _out_numel, "convention", "aten::mul: 1 per output element"),),
        **_all(skipped, UPSAMPLE_KINDS),
        "upsample-bilinear": (Term("upsample 4/output element", lambda l: 4 * _out_numel(l) if _spatial_rank(l) == 2
                                   else 0, "convention",
                                   "aten::upsample_bilinear2d: 4 per output element"),),
        **_all(_NO_ARITHMETIC, _LAYOUT),
        "embedding": (skipped,),
        **_all(skipped, REDUCE_KINDS),
        "reduce-mean": (Term("mean 1/output element", _out_numel, "convention",
                             "aten::mean: 1 per output element"),),
        "held": (_HELD,),
        "recurrent": (_macs("recurrent", lambda l: l.macs,
                            "aten::lstm: out[0]·out[1]·D·Σ_l 4·H·(I_l + H), the gate products of every "
                            "cell and step"),
                      Term("GRU and RNN (no handler)", lambda l: -l.macs if l.spec.mode != "lstm" else 0,
                           "missed", "aten::gru / rnn_tanh / rnn_relu have no handler: skipped with a warning"),
                      Term("LSTM projection misread", lambda l: _torchprofile_lstm(l) - l.macs
                           if l.spec.mode == "lstm" else 0, "bug",
                           "with proj_size P the hidden size is read from h_n (P, not H) and the projection's "
                           "own products are left out: 4·P·(I_l + P) per cell and step")),
    }
    shape_arithmetic = Term("traced shape arithmetic",
                            lambda l: 4 + sum(mask in ("key_padding", "attn_3d") for mask in l.spec.masks)
                            + ("zero_attn" in l.spec.appended), "bug",
                            "the traced bsz·num_heads of the q, k, v views and tgt_len·bsz of the output "
                            "are aten::mul on 0-d tensors: 1 each, 4 per call; one more for a 3-d attn_mask "
                            "(its shape check), for a key_padding_mask (its reshape) and for add_zero_attn "
                            "(the zeros' shape)")
    return Convention(
        "torchprofile", "torchprofile profile_macs", "0.1.0",
        "torch.jit trace of the forward pass; a handler per aten op", "1 per multiply-add (MACs)",
        MappingProxyType(table), MappingProxyType(table),
        call="profile_macs(model, x)",
        composites=_mha(table["linear"], (
            _macs("attention", _attention_macs, f"{_MHA_KERNELS}: aten::bmm, baddbmm and "
                  "scaled_dot_product_attention, each ∏batch·L·S·(E + Ev) in all"),
            Term("q scaling 1/element", lambda l: numel(l.input_shapes[0]) if _bmm_kernel(l) else 0, "convention",
                 "on bmm and baddbmm, aten::mul of q by √(1/E): 1 per element of q"),
            shape_arithmetic)))


#: Convention name → its rules. The first five are the ``--convention`` targets of the issue;
#: torchprofile and torch (PyTorch's own counter) complete the peers of benchmarks/peers.py.
CONVENTIONS: Mapping[str, Convention] = MappingProxyType({c.name: c for c in (
    _fvcore(), _ptflops(), _thop(), _torchinfo(), _torchvision(), _torchprofile(), _torch())})


def find_convention(name: str) -> Convention:
    """The convention called ``name``; a ConventionError naming the known ones otherwise."""
    try:
        return CONVENTIONS[name.strip().lower()]
    except KeyError:
        raise ConventionError(f"unknown convention {name!r} (known: {', '.join(CONVENTIONS)})") from None


# --- profiles ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class LayerCount:
    """What a tool counts for one layer: its terms' counts, beside costlab's MACs of the layer."""

    name: str
    kind: str
    form: CallForm
    terms: tuple[tuple[Term, Fraction], ...]  # exact: ptflops' per-sample counts may be fractions
    macs: Fraction  # costlab's MACs of the layer, on the tool's terms (per sample where it averages)

    @property
    def count(self) -> Fraction:
        return sum((n for _, n in self.terms), Fraction(0))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "form": self.form,
                "count": _number(self.count), "macs": _number(self.macs),
                "terms": [{"label": t.label, "count": _number(n), "verdict": t.verdict}
                          for t, n in self.terms]}


def _number(value: Fraction) -> int | float:
    """An exact count as an int, a fractional one (ptflops' per-sample averages) as a float."""
    return int(value) if value.denominator == 1 else float(value)


@dataclass(frozen=True)
class Difference:
    """One rule's share of (tool total − costlab MACs): what it counts minus the MACs it replaces."""

    label: str
    verdict: Verdict
    rule: str
    layers: int
    count: Fraction
    macs: Fraction

    @property
    def delta(self) -> Fraction:
        return self.count - self.macs

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "verdict": self.verdict, "rule": self.rule,
                "layers": self.layers, "count": _number(self.count), "macs": _number(self.macs),
                "delta": _number(self.delta)}


@dataclass(frozen=True)
class Profile(Feature):
    """What one tool would report for one analysed target, layer by layer (the feature of --convention)."""

    convention: Convention
    target: str
    batch: int
    layers: tuple[LayerCount, ...]
    params: int

    @property
    def total(self) -> int:
        """The tool's total: the sum of its layer counts, truncated to an integer as the tools do."""
        return math.floor(sum((layer.count for layer in self.layers), Fraction(0)))

    @property
    def macs(self) -> int:
        """costlab's MACs on the tool's terms (per sample where the tool averages over the batch)."""
        return math.floor(sum((layer.macs for layer in self.layers), Fraction(0)))

    @property
    def delta(self) -> int:
        """Tool total − costlab's MACs."""
        return self.total - self.macs

    def differences(self) -> tuple[Difference, ...]:
        """The rules that make the tool's total differ from costlab's MACs, largest first.

        Each is what the rule counts minus the MACs of the layers it stands in for; they sum to
        :attr:`delta` (up to the truncation of a fractional total, ptflops at batch > 1). Rules
        that change nothing are left out.
        """
        grouped: dict[tuple[str, str], list[Any]] = {}
        for layer in self.layers:
            for term, n in layer.terms:
                key = (term.label, term.rule)
                entry = grouped.setdefault(key, [term, 0, Fraction(0), Fraction(0)])
                entry[1] += 1
                entry[2] += n
                entry[3] += layer.macs if term.primary else 0
        result = [Difference(term.label, term.verdict, term.rule, layers, count, macs)
                  for term, layers, count, macs in grouped.values() if count != macs]
        return tuple(sorted(result, key=lambda d: -abs(d.delta)))

    def explanation(self) -> str:
        """'+ batch norm 2/… (+101,376); + adaptive avg pool … (+512)' or 'the same as costlab's MACs'."""
        parts = [f"{d.label}{' [' + d.verdict + ']' if d.verdict in ('bug', 'missed') else ''} "
                 f"({_signed(d.delta)})" for d in self.differences()]
        return "; ".join(parts) if parts else "the same as costlab's MACs"

    def to_dict(self) -> dict[str, Any]:
        c = self.convention
        return {"name": c.name, "tool": c.tool, "version": c.version, "unit": c.unit, "call": c.call,
                "total": self.total, "params": self.params, "macs": self.macs, "delta": self.delta,
                "differences": [d.to_dict() for d in self.differences()],
                "layers": [layer.to_dict() for layer in self.layers]}

    # --- the feature ---

    def json_fields(self, unit: str) -> dict[str, Any]:
        return {"convention": self.to_dict()}

    @classmethod
    def layer_columns(cls, group: Sequence[Any], unit: str, view: View | None) -> list[Heading]:
        first = next(p for p in group if p is not None)
        return [Heading(first.convention.name, True, 70)]

    def count_text(self, names: Sequence[str], view: View | None = None) -> str:
        """The tool's count for the layers called ``names`` (a row, or all layers of a folded block)."""
        wanted = set(names)
        value = sum((layer.count for layer in self.layers if layer.name in wanted), Fraction(0))
        if view is not None and not view.exact:
            return view.count(float(value))
        return exact_count(int(value)) if value.denominator == 1 else f"{float(value):,.1f}"

    def layer_cells(self, headings: Sequence[Heading], row: Any, members: Sequence[Any], unit: str,
                    view: View | None) -> list[Any]:
        text = self.count_text([m.name for m in members], view)
        return [text if view is not None else text.replace(",", "")]

    def total_cells(self, headings: Sequence[Heading], unit: str, view: View) -> list[str]:
        return [view.count(self.total)]

    @classmethod
    def side_by_side(cls, group: Sequence[Any], unit: str, view: View | None) -> tuple[list[Heading], list[list[Any]]]:
        """In CSV the tool, its total and params and what explains them (a table has its own section)."""
        if view is not None:
            return [], []
        headings = [Heading(t) for t in ("convention", "convention_total", "convention_params",
                                         "convention_explained_by")]
        return headings, [blank(headings) if p is None else
                          [p.convention.name, p.total, p.params, p.explanation()] for p in group]

    @classmethod
    def report_section(cls, analyses: Sequence[Any], unit: str, view: View) -> list[str]:
        """Each target's total as the tool would report it beside costlab's MACs, with the rules that
        explain the difference. In a terminal too narrow for the explanations, they follow the table."""
        profiled = [a for a in analyses if a.convention is not None]
        if not profiled:
            return []
        convention = profiled[0].convention.convention
        name = convention.name
        title = (f"As {convention.tool} {convention.version} would report it ({convention.unit}; "
                 f"{convention.mechanism}):")
        headers = ["target", f"{name} total", "costlab MACs", "difference", f"{name} params",
                   "explained by (rule: its count − the MACs it stands for)"]
        raw = [[a.name, a.convention.total, a.convention.macs, a.convention.delta, a.convention.params,
                a.convention.explanation()] for a in profiled]
        n = view.count
        rows = [[target, n(total), n(macs), f"{delta:+,}" if view.exact else ("+" if delta > 0 else "") + n(delta),
                 n(params), why] for target, total, macs, delta, params, why in raw]
        table, dropped = view.table(headers, rows, [False, True, True, True, True, False],
                                    [None, None, None, 60, 50, 10], ["head", None, None, None, None, None])
        lines = ["", f"### {title}"] if view.fmt == "md" else [""] + view.prose([title])
        lines += ["", table]
        if headers[-1] in dropped:
            dropped.remove(headers[-1])
            lines += view.prose([f"{target}: {why}" for target, *_, why in raw])
        lines += view.left_out(dropped)
        notes = []
        if any(term.per_sample for a in profiled for layer in a.convention.layers
               for term, _ in layer.terms) and any(a.batch != 1 for a in profiled):
            notes.append(f"{name} divides its module-hook counts by the batch size (per sample); "
                         "costlab's MACs are shown on the same terms.")
        for a in profiled:
            if a.unsupported:
                notes.append(f"{a.name}: the {len(a.unsupported)} op(s) costlab could not price are left "
                             f"out of the {name} profile too.")
        return lines + view.prose(notes)


def profile(analysis: Analysis, name: str) -> Profile:
    """What the tool ``name`` would report for ``analysis`` (its inference layers, its batch)."""
    convention = find_convention(name)
    batch = analysis.batch
    counts = []
    params = 0
    containers = _container_scopes(analysis.layers)
    calls = _composite_calls(convention, analysis.layers)
    for layer in analysis.layers:
        in_leaf = layer.name.rpartition(".")[0] not in containers
        terms, form = convention.terms(layer, in_leaf)
        parts = calls.get(layer.name, {})
        counted = tuple((term, Fraction(term.counted(layer, parts), batch if term.per_sample else 1))
                        for term in terms)
        averaged = any(term.primary and term.per_sample for term in terms)
        counts.append(LayerCount(layer.name, layer_kind(layer), form, counted,
                                 Fraction(layer.macs, batch if averaged else 1)))
        if convention.counts_params(layer):
            params += layer.params
    return Profile(convention, analysis.name, batch, tuple(counts), params)


def _composite_calls(convention: Convention, layers: Sequence[Layer]) -> dict[str, dict[str, Layer]]:
    """Each layer of a module the tool prices as a composite → the layers of that module call
    (the layers under the same path), by part name."""
    calls: dict[str, dict[str, Layer]] = {}
    parts_of: dict[str, dict[str, Layer]] = {}
    for layer in layers:
        if call_form(layer) == "module" and layer.source in convention.composites:
            path, _, part = layer.name.rpartition(".")
            parts = calls.setdefault(path, {})
            parts[part] = layer
            parts_of[layer.name] = parts
    return parts_of


def _container_scopes(layers: Sequence[Layer]) -> set[str]:
    """Name scopes that hold module calls (modules with children, as far as a trace can tell);
    the root scope '' always is one. A function layer is named in the scope of the module that
    called it, so one outside these scopes was called by a leaf module."""
    scopes = {""}
    for layer in layers:
        if call_form(layer) == "module":
            parts = layer.name.split(".")
            scopes.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return scopes


def _signed(value: Fraction) -> str:
    return f"{_number(value):+,}" if value.denominator == 1 else f"{float(value):+,.1f}"


def rules_markdown() -> str:
    """The rule tables as Markdown, for docs/cost-model.md (a test holds the doc equal to this)."""
    lines: list[str] = []
    for c in CONVENTIONS.values():
        lines += [f"#### `{c.name}`: {c.tool} {c.version}", "",
                  f"Reads the model by {c.mechanism}; counts {c.unit}. Call reproduced: `{c.call}`", ""]
        lines += ["| layer kinds | what it counts | verdict |", "|---|---|---|"]
        groups: dict[tuple[Term, ...], list[str]] = {}
        for kind in LAYER_KINDS:
            groups.setdefault(c.modules[kind], []).append(kind)
        for terms, kinds in groups.items():
            counted = "<br>".join(f"**{t.label}**: {t.rule}" + (" (÷ batch)" if t.per_sample else "")
                                  for t in terms)
            verdicts = ", ".join(dict.fromkeys(t.verdict for t in terms))
            lines.append(f"| {', '.join(kinds)} | {counted} | {verdicts} |")
        if c.by_function:
            by_terms: dict[tuple[Term, ...], list[str]] = {}
            for name, terms in c.functions.items():
                by_terms.setdefault(terms, []).append(name.replace("torch.nn.functional.", "F."))
            lines += ["", "Layers called as functions, by function:", ""]
            for terms, names in by_terms.items():
                lines.append(f"- {', '.join(f'`{n}`' for n in names)}: "
                             + "; ".join(f"**{t.label}**: {t.rule}" for t in terms))
            lines.append("- " + ", ".join(f"`{n}`" for n in FUNCTIONAL_BUILTINS)
                         + ": read as the F function of that name (C builtins of torch.nn.functional, "
                           "named by their module; the last three are also torch's own attributes)")
        if c.unseen is not None:
            lines.append(("- any other function" if c.by_function else "\nLayers called as functions")
                         + f": **{c.unseen.label}**: {c.unseen.rule}")
        if c.leaf_function_params is not None:
            t = c.leaf_function_params
            lines.append(f"- a function with parameters inside a leaf module: **{t.label}**: {t.rule}")
        if c.exact_types:
            lines.append(f"- a module of a class that is not torch.nn's own: **{_UNREGISTERED.label}**: "
                         f"{_UNREGISTERED.rule}")
        if c.operators_as_methods:
            lines.append("- a layer a run (engine meta, cpu or fx+meta) recorded as "
                         + ", ".join(f"`{n.replace('torch.', '')}`" for n in OPERATOR_METHODS)
                         + ": read as the operator (`+`, `-`, `*`, `/`, `@`), which a run cannot tell "
                           "from the method call and this tool does")
        for source, composite in c.composites.items():
            lines += ["", f"`{source}`, priced as its parts"
                      + ("" if composite.params else " (its params not counted)") + ":", ""]
            by_part: dict[tuple[Term, ...], list[str]] = {}
            for part, terms in composite.terms.items():
                by_part.setdefault(terms, []).append(part)
            for terms, parts in by_part.items():
                counted = "; ".join(f"**{t.label}**: {t.rule}" + (" (÷ batch)" if t.per_sample else "")
                                    for t in terms)
                lines.append(f"- {', '.join(parts)}: {counted}")
        if c.params_missed or c.hooked_params_only:
            missed = ", ".join(sorted(c.params_missed))
            lines += ["", "Params: " + ("only those of module calls it has a rule for" if c.hooked_params_only
                                        else "all") + (f"; never those of {missed} layers" if missed else "")
                      + "."]
        lines.append("")
    return "\n".join(lines)


def check_tables() -> list[str]:
    """Problems with the tables (a kind without rule, a MAC layer kind or a composite's part without
    one primary term, a composite missing a part)."""
    problems = []
    for convention in CONVENTIONS.values():
        for kind in LAYER_KINDS:
            terms = convention.modules.get(kind)
            if terms is None:
                problems.append(f"{convention.name}: no rule for {kind}")
                continue
            primaries = sum(t.primary for t in terms)
            wanted = 1 if kind in ("conv", "conv-transposed", "linear", "matmul", "attention", "recurrent") else 0
            if primaries != wanted:
                problems.append(f"{convention.name}: {kind} has {primaries} primary terms")
        for source, composite in convention.composites.items():
            if source == "nn.MultiheadAttention" and set(composite.terms) != set(_MHA_PARTS):
                problems.append(f"{convention.name}: {source} parts {sorted(composite.terms)}")
            for part, terms in composite.terms.items():
                if sum(t.primary for t in terms) != 1:  # every part has MACs: one term stands in for them
                    problems.append(f"{convention.name}: {source} {part} has "
                                    f"{sum(t.primary for t in terms)} primary terms")
    return problems


__all__ = ["CONVENTIONS", "Convention", "ConventionError", "Difference", "LayerCount", "Profile",
           "Term", "call_form", "find_convention", "function_name", "layer_kind",
           "profile", "check_tables", "rules_markdown"]
