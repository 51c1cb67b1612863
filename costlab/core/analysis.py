"""Result objects: a priced :class:`Layer`, an :class:`Analysis` of one target, a :class:`Comparison`.

All are immutable; adding a cross-check or a latency measurement makes a new object
(``dataclasses.replace``). ``to_dict`` is the JSON contract of docs/cli.md; the totals of
an analysis are always the sums of its layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Literal, Mapping

from .errors import CostlabError
from .features import FEATURES, FLOPS_PER_MAC, Feature
from .specs import Conv, Held, Shape, Spec

if TYPE_CHECKING:  # pandas is imported only by to_frame()
    import pandas

def fold(name: str, depth: int | None) -> str:
    """The row a layer named ``name`` folds into at ``depth``: its first ``depth`` name levels
    (``layer1.0.conv1`` at depth 2 → ``layer1.0``); the layer itself without a depth. The one
    folding rule: per-layer rows, and every feature's per-row cells, group layers by it."""
    return ".".join(name.split(".")[:depth]) if depth is not None else name


#: How results render themselves (Markdown tables, one-line summaries, HTML): the rendering layer
#: (costlab.render.report) puts its functions here when the package is imported, so that the results call
#: it without importing it (the layers import one way: core ← torch bridge ← rendering ← application).
RENDERING: dict[str, Callable[..., str]] = {}


def rendered(kind: str, *args: Any, **kwargs: Any) -> str:
    """RENDERING[kind](*args, **kwargs); a CostlabError when no renderer is installed."""
    try:
        render = RENDERING[kind]
    except KeyError:
        raise CostlabError(f"no {kind} renderer: import costlab (it installs costlab.render.report's)") from None
    return render(*args, **kwargs)


UNITS = ("macs", "flops")


#: Short spellings of qualified prefixes in a call site's display name.
_SHORT = (("torch.nn.functional.", "F."), ("torch.Tensor.", "Tensor."), ("torch.nn.", "nn."))


@dataclass(frozen=True)
class CallSite:
    """What a traced layer was read from: a module or a function, by qualified name.

    ``qualified``: ``torch.nn.Conv2d``, ``timm.layers.norm.LayerNorm2d`` (modules, torch.nn's own by
    their public name), ``torch.nn.functional.relu``, ``torch.cat``, ``torch.Tensor.view``,
    ``operator.add``, a builtin's bare name (functions).
    """

    form: Literal["module", "function"]
    qualified: str

    @property
    def torch_nn(self) -> bool:
        """A module of one of torch.nn's own classes (tools that look rules up by exact type know only these)."""
        return self.form == "module" and self.qualified.startswith("torch.nn.")

    @property
    def short(self) -> str:
        """The display name: 'nn.Conv2d', 'F.relu', 'Tensor.view', 'torch.cat', 'operator.add'."""
        for long, short in _SHORT:
            if self.qualified.startswith(long):
                return short + self.qualified[len(long):]
        return self.qualified


class UnknownLayer(CostlabError, KeyError):
    """``Analysis.layer(name)`` for a name no layer has (a KeyError too, for code that catches that)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def check_unit(unit: str) -> str:
    """``unit`` when it is one of :data:`UNITS`, else a CostlabError."""
    if unit not in UNITS:
        raise CostlabError(f"unit must be one of {', '.join(UNITS)}, got {unit!r}")
    return unit


@dataclass(frozen=True)
class Layer:
    """One layer applied once: its spec, where its inputs came from, and what it costs (whole batch)."""

    name: str
    spec: Spec
    inputs: tuple[str, ...]
    input_shapes: tuple[Shape, ...]
    output: Shape
    macs: int
    params: int
    buffers: int
    ops: int
    activations: int
    bytes: int
    formula: str
    training_only: bool = False
    #: what a traced layer was read from (a module or a function call); None for costlab's own layers
    call: CallSite | None = None
    #: the engine path that priced it, when traced: fx, fx+meta (a call priced alone), meta or cpu
    engine: str = ""
    #: measured latency of this layer alone (``latency_ms`` in JSON) with its roofline point and
    #: bound from the machine's measured peaks (``roofline``), with --latency
    #: (a costlab.analyses.latency.Latency)
    latency: Feature | None = field(default=None, hash=False)

    @property
    def roofline(self) -> Any:
        """The roofline beside the measured latency (None without --latency)."""
        return getattr(self.latency, "roofline", None)

    @property
    def source(self) -> str:
        """JSON ``source``: the call site's display name ('nn.Conv2d', 'F.relu'), 'unused' or 'unpriced'
        for parameters a trace found held, '' for costlab's own layers."""
        if self.call is not None:
            return self.call.short
        if isinstance(self.spec, Held) and self.spec.why:
            return self.spec.why
        return ""

    @property
    def op(self) -> str:
        """The op category of the JSON contract (conv, linear, matmul, norm, act, ...)."""
        return self.spec.op

    @property
    def type(self) -> str:
        """A short label of the layer: conv5x5, dw3x3, fc120, maxpool2x2, ..."""
        spec = self.spec
        if isinstance(spec, Conv) and 1 < spec.groups == self.input_shapes[0][1]:
            return spec.label().replace("conv", "dw", 1)
        return spec.label()

    def to_dict(self, unit: str = "macs") -> dict[str, Any]:
        """The layer's entry in the JSON contract."""
        check_unit(unit)
        entry: dict[str, Any] = {
            "name": self.name, "op": self.op, "type": self.type, "output": list(self.output[1:]),
            "macs": self.macs, "params": self.params, "buffers": self.buffers, "ops": self.ops,
            "activations": self.activations, "bytes": self.bytes, "formula": self.formula,
            "inputs": list(self.inputs),
        }
        if self.source:
            entry["source"] = self.source
        if self.engine:
            entry["engine"] = self.engine
        if unit == "flops":
            entry["flops"] = FLOPS_PER_MAC * self.macs
        if self.latency is not None:
            entry.update(self.latency.json_fields(unit))
        return entry


#: Every scaled-dot-product-attention kernel by its aten name (the torch bridge prices each).
ATTENTION_KERNELS = ("_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_flash_attention",
                     "_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention",
                     "_scaled_dot_product_fused_attention_overrideable", "_flash_attention_forward",
                     "_efficient_attention_forward")

#: The ops (aten, torch, functional and Tensor names alike) that perform multiply-accumulates: one
#: of them left unpriced makes a count a lower bound.
MAC_OPS: frozenset[str] = frozenset({
    "mm", "bmm", "matmul", "mv", "dot", "vdot", "addmm", "baddbmm", "addbmm", "addmv", "addr", "outer",
    "convolution", "_convolution", "conv2d", "conv1d", "conv3d", "linear", "einsum", "tensordot",
    "lstm", "gru", "rnn_tanh", "rnn_relu", "lstm_cell", "gru_cell", "rnn_tanh_cell", "rnn_relu_cell",
    *ATTENTION_KERNELS, "_scaled_dot_product_attention_math", "scaled_dot_product_attention",
    "bilinear", "_trilinear", "conv_tbc", "cudnn_convolution", "mkldnn_convolution", "_grouped_mm", "grouped_mm",
    "__matmul__", "__rmatmul__", "imatmul", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "multi_head_attention_forward",
})

#: torch.nn modules whose own computation multiplies (an unsupported entry 'nn.<Class>').
MAC_MODULES = frozenset({
    "linear", "bilinear", "lazylinear", "conv1d", "conv2d", "conv3d", "convtranspose1d", "convtranspose2d",
    "convtranspose3d", "lazyconv1d", "lazyconv2d", "lazyconv3d", "multiheadattention", "lstm", "gru", "rnn",
    "lstmcell", "grucell", "rnncell", "transformer", "transformerencoderlayer", "transformerdecoderlayer",
    "transformerencoder", "transformerdecoder"})

#: Prefixes of ops costlab knows by name (aten.mm, torch.einsum, F.linear, Tensor.matmul, operator.matmul).
_KNOWN_OP_PREFIXES = ("aten.", "torch.", "F.", "Tensor.", "operator.", "math.", "builtins.")


@dataclass(frozen=True)
class Unsupported:
    """Something a trace met and could not price: listed, never counted as zero."""

    path: str
    op: str
    reason: str

    @property
    def multiplies(self) -> bool:
        """Whether this op may multiply-accumulate, so that the count missing it is a lower bound:
        a known op in MAC_OPS, an nn module in MAC_MODULES, or a module or function costlab does not
        know at all (it may). Views, sorts, choices (topk, any) and nn.Identity do not."""
        last = self.op.rsplit(".", 1)[-1]
        if self.op.startswith("nn."):
            return last.lower() in MAC_MODULES
        if self.op.startswith(_KNOWN_OP_PREFIXES):
            return last.rstrip("_") in MAC_OPS or last in MAC_OPS
        return True

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "op": self.op, "reason": self.reason, "multiplies": self.multiplies}


@dataclass(frozen=True)
class Row:
    """A line of a per-layer table: one layer, or a block folded to a given depth."""

    name: str
    op: str
    type: str
    output: Shape
    macs: int
    params: int
    ops: int
    activations: int
    formula: str
    layers: int = 1


def _total(layers: Iterable[Layer], attribute: str) -> int:
    return sum(getattr(layer, attribute) for layer in layers)


@dataclass(frozen=True, repr=False)
class Analysis:
    """The cost of one target: its layers in execution order and their sums.

    ``input`` and ``output`` are per-sample shapes; every count covers the whole batch.
    Training-only layers (GoogLeNet's auxiliary heads) are kept apart from the totals.
    """

    name: str
    input: Shape
    batch: int
    output: Shape
    layers: tuple[Layer, ...]
    training_only: tuple[Layer, ...] = ()
    unsupported: tuple[Unsupported, ...] = ()
    dtype: str = "float32"
    kind: str = "expression"  # expression, preset, file or module
    notes: tuple[str, ...] = ()
    #: a traced module's inputs beyond one float tensor: [{"name", "dtype", "shape"}] (JSON "inputs")
    inputs: tuple[Mapping[str, Any], ...] = ()
    #: how a traced module was counted: fx, meta or cpu (JSON "engine"); '' for expressions and presets
    engine: str = ""
    #: module paths whose layers fold into one row of a table by default (an hf: model's embeddings,
    #: each decoder layer, its norm and head: :meth:`folded` with ``by_module``); () for none
    rows_at: tuple[str, ...] = ()
    #: what the options added, each a typed result under its own ``name`` (--freeze: training,
    #: --memory: memory, --convention: convention, --check: checks, --latency: latency), in the
    #: order of FEATURES: its JSON and every renderer loop over these through the Feature protocol
    features: tuple[Feature, ...] = ()

    def __post_init__(self) -> None:
        names = [f.name for f in self.features]
        unknown = [n for n in names if n not in FEATURES]
        if unknown or len(set(names)) != len(names):
            raise CostlabError(f"features must have distinct names among {', '.join(FEATURES)}, got {names}")

    def __getattr__(self, name: str) -> Any:
        """``analysis.training``, ``.memory``, ``.convention``, ``.checks``, ``.latency``: the feature
        of that name (None when not carried)."""
        if name in FEATURES:
            return self.feature(name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def feature(self, name: str) -> Feature | None:
        """The feature called ``name`` (one of FEATURES) when this analysis carries it, else None."""
        return next((f for f in self.features if f.name == name), None)

    def with_feature(self, feature: Feature) -> "Analysis":
        """A copy carrying ``feature`` (replacing one of the same name), features kept in FEATURES order."""
        from dataclasses import replace

        kept = [f for f in self.features if f.name != feature.name] + [feature]
        return replace(self, features=tuple(sorted(kept, key=lambda f: FEATURES.index(f.name))))

    @property
    def roofline(self) -> Any:
        """The whole target's roofline (None without --latency)."""
        return getattr(self.feature("latency"), "roofline", None)

    @property
    def macs(self) -> int:
        """The MACs of the priced layers: a lower bound where the analysis is not :attr:`complete`."""
        return _total(self.layers, "macs")

    @property
    def complete(self) -> bool:
        """False when an op that multiplies (:attr:`Unsupported.multiplies`) was not priced, here or
        in a generation call: every count of MACs is then a lower bound."""
        generation = self.generation
        return not any(u.multiplies for u in self.unsupported) and (generation is None or generation.complete)

    @property
    def flops(self) -> int:
        return FLOPS_PER_MAC * self.macs

    @property
    def params(self) -> int:
        return _total(self.layers, "params")

    @property
    def buffers(self) -> int:
        return _total(self.layers, "buffers")

    @property
    def ops(self) -> int:
        return _total(self.layers, "ops")

    @property
    def activations(self) -> int:
        return _total(self.layers, "activations")

    @property
    def bytes(self) -> int:
        return _total(self.layers, "bytes")

    @property
    def training_only_macs(self) -> int:
        return _total(self.training_only, "macs")

    @property
    def training_only_params(self) -> int:
        return _total(self.training_only, "params")

    def layer(self, name: str) -> Layer:
        """The layer called ``name`` (:class:`UnknownLayer`, a CostlabError and a KeyError, if there is none)."""
        for layer in self.layers + self.training_only:
            if layer.name == name:
                return layer
        import difflib  # only for this error's hint: not on the default path

        close = difflib.get_close_matches(str(name), [layer.name for layer in self.layers], n=1)
        raise UnknownLayer(f"{self.name} has no layer {name!r}" + (f"; did you mean {close[0]}?" if close else ""))

    def rows(self, depth: int | None = None) -> tuple[Row, ...]:
        """Per-layer rows; with ``depth``, layers below that many name levels fold into their block.

        A folded row's counts are the sums of its layers, so the rows always add up to the totals.
        """
        return tuple(row for row, _ in self.folded(depth))

    def folded(self, depth: int | None = None, by_module: bool = False) -> tuple[tuple[Row, tuple[Layer, ...]], ...]:
        """Each per-layer row (:meth:`rows`) with the layers it stands for, grouped by :func:`fold`;
        with ``by_module`` and no ``depth``, by the shortest of :attr:`rows_at` that holds the layer
        (a layer under none stays a row of its own)."""
        if depth is not None and (not isinstance(depth, int) or isinstance(depth, bool) or depth < 1):
            raise CostlabError(f"depth must be a positive integer, got {depth!r}")
        tree = sorted(self.rows_at, key=len) if by_module and depth is None else ()
        groups: dict[str, list[Layer]] = {}
        for layer in self.layers:
            key = next((root for root in tree if layer.name == root or layer.name.startswith(root + ".")),
                       None) if tree else None
            groups.setdefault(key or fold(layer.name, depth), []).append(layer)
        rows = []
        for key, members in groups.items():
            if len(members) == 1 and members[0].name == key:
                only = members[0]
                row = Row(only.name, only.op, only.type, only.output, only.macs, only.params,
                          only.ops, only.activations, only.formula)
            else:
                row = Row(key, "block", f"{len(members)} layer{'s' if len(members) != 1 else ''}", members[-1].output,
                          _total(members, "macs"), _total(members, "params"),
                          _total(members, "ops"), _total(members, "activations"),
                          "sum of its layers", len(members))
            rows.append((row, tuple(members)))
        return tuple(rows)

    def to_dict(self, unit: str = "macs") -> dict[str, Any]:
        """This target's entry in the JSON contract."""
        check_unit(unit)
        entry: dict[str, Any] = {
            "name": self.name, "kind": self.kind, "input": list(self.input), "batch": self.batch,
            "output": list(self.output), "macs": self.macs, "complete": self.complete, "params": self.params,
            "ops": self.ops,
            "activations": self.activations, "buffers": self.buffers, "bytes": self.bytes,
            "dtype": self.dtype, "layers": [layer.to_dict(unit) for layer in self.layers],
        }
        if unit == "flops":
            entry["flops"] = self.flops
        if self.training_only:
            entry["training_only"] = {
                "macs": self.training_only_macs, "params": self.training_only_params,
                "layers": [layer.to_dict(unit) for layer in self.training_only],
            }
        if self.inputs:
            entry["inputs"] = [dict(i) for i in self.inputs]
        if self.engine:
            entry["engine"] = self.engine
        if self.unsupported:
            entry["unsupported"] = [u.to_dict() for u in self.unsupported]
        if self.notes:
            entry["notes"] = list(self.notes)
        features = self.features
        for feature in features:
            entry.update(feature.json_fields(unit))
        for layer_entry in entry["layers"]:
            for feature in features:
                layer_entry.update(feature.layer_json(layer_entry["name"]))
        return entry

    def to_frame(self, depth: int | None = None) -> "pandas.DataFrame":
        """Per-layer rows as a pandas DataFrame (pandas is imported here, not before)."""
        import pandas

        return pandas.DataFrame([row.__dict__ for row in self.rows(depth)])

    def to_markdown(self, depth: int | None = None, unit: str = "macs") -> str:
        """Per-layer Markdown table with a total row."""
        return rendered("analysis_markdown", self, depth=depth, unit=unit)

    def __repr__(self) -> str:
        """The one-line summary: '<Analysis resnet50: 3×224×224 → 1000, 4.09 G MACs, …>'."""
        return f"<Analysis {rendered('analysis_summary', self)}>"

    def __str__(self) -> str:
        return rendered("analysis_summary", self)

    def _repr_markdown_(self) -> str:
        """Jupyter's Markdown view: the per-layer table."""
        return self.to_markdown()

    def _repr_html_(self) -> str:
        """Jupyter's HTML view: summary, per-layer table, notes."""
        return rendered("analysis_html", self)


@dataclass(frozen=True, repr=False)
class Comparison:
    """Several targets side by side; ratios are MACs of the first over MACs of each."""

    targets: tuple[Analysis, ...]
    unit: str = "macs"

    @property
    def ratios(self) -> tuple[float | None, ...]:
        """first.macs / target.macs for each target: None where a target has no MACs, and where the
        first or the target is not complete (a lower bound over another number is no ratio; see
        :attr:`ratio_bounds`)."""
        first = self.targets[0]
        return tuple(first.macs / t.macs if t.macs and first.complete and t.complete else None
                     for t in self.targets)

    @property
    def ratio_bounds(self) -> tuple[tuple[str, float] | None, ...]:
        """Where exactly one of the first and a target is incomplete, what its counts still say of
        first.macs / target.macs: ('<=', r) when the target's MACs are a lower bound, ('>=', r) when
        the first's are; None where the ratio is exact or nothing is known."""
        first = self.targets[0]
        bounds: list[tuple[str, float] | None] = []
        for t in self.targets:
            if t is first or first.complete == t.complete or not t.macs:
                bounds.append(None)
            else:
                bounds.append(("<=" if first.complete else ">=", first.macs / t.macs))
        return tuple(bounds)

    @property
    def latency_ratios(self) -> tuple[float | None, ...] | None:
        """first's median latency / each target's (None without latency on every target)."""
        latencies = [t.feature("latency") for t in self.targets]
        if any(latency is None for latency in latencies):
            return None
        first = latencies[0].median  # type: ignore[union-attr]
        return tuple(first / t.median if t.median else None for t in latencies)  # type: ignore[union-attr]

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract: unit, targets, ratios (and latency_ratios when latency was measured)."""
        check_unit(self.unit)
        entry: dict[str, Any] = {"unit": self.unit, "targets": [t.to_dict(self.unit) for t in self.targets],
                                 "ratios": list(self.ratios)}
        if any(self.ratio_bounds):
            entry["ratio_bounds"] = [None if b is None else {"bound": b[0], "ratio": b[1]} for b in self.ratio_bounds]
        latency_ratios = self.latency_ratios
        if latency_ratios is not None:
            entry["latency_ratios"] = list(latency_ratios)
        return entry

    def to_frame(self) -> "pandas.DataFrame":
        """One row per target: name, output, macs, params, ops, activations, ratio."""
        import pandas

        return pandas.DataFrame([
            {"name": t.name, "output": "×".join(map(str, t.output)), "macs": t.macs,
             "params": t.params, "ops": t.ops, "activations": t.activations, "ratio": r}
            for t, r in zip(self.targets, self.ratios)
        ])

    def to_markdown(self, per_layer: bool = False) -> str:
        return rendered("comparison_markdown", self, per_layer=per_layer)

    def __repr__(self) -> str:
        """The one-line summary: '<Comparison resnet50 4.09 G MACs, mobilenet-v2 301 M (13.60× fewer)>'."""
        return f"<Comparison {rendered('comparison_summary', self)}>"

    def __str__(self) -> str:
        return rendered("comparison_summary", self)

    def _repr_markdown_(self) -> str:
        """Jupyter's Markdown view: the side-by-side table."""
        return self.to_markdown()

    def _repr_html_(self) -> str:
        """Jupyter's HTML view: the side-by-side table and its notes."""
        return rendered("comparison_html", self)
