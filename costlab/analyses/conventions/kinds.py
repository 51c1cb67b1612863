"""Layer kinds: the name of each kind of layer a tool's table is keyed by (:func:`layer_kind`, decided by
the spec's type and fields), and how a layer was called (:func:`call_form`, :func:`function_name`)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Callable, Literal, Mapping
from ...core.errors import CostlabError
from ...core.registry import RegistryError, SpecRegistry
from ...core.specs import ACTIVATIONS, ARITHMETIC, CONVS, NORMS, POOLS, UPSAMPLE_OPS, REDUCTIONS, AdaptivePool, Activation, Attention, Concat, Conv, Dropout, Elementwise, Embedding, Flatten, Held, Linear, Matmul, Norm, Pad, Pool, Recurrent, Reduce, Reshape, Upsample
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the results are read, never built, here
    from ...core.analysis import Layer


CallForm = Literal["module", "function"]


class ConventionError(CostlabError):
    """An unknown convention name."""


_ELEMENTWISE_KINDS = MappingProxyType({kind: kind for kind in ARITHMETIC})  # from the catalog


ARITHMETIC_KINDS = tuple(ARITHMETIC)


#: Spec type → its layer kind (a function of the spec, for the types with variants); one
#: ``KIND_OF.register`` per spec type, a duplicate refused.
KIND_OF: SpecRegistry[Callable[[Any], str]] = SpecRegistry("convention kind")
KIND_OF.register(Conv)(lambda s: s.kind)
KIND_OF.register(Linear)(lambda s: "linear")
KIND_OF.register(Matmul)(lambda s: "matmul")
KIND_OF.register(Attention)(lambda s: "attention")
KIND_OF.register(Norm)(lambda s: f"{s.kind}-norm")
KIND_OF.register(Activation)(lambda s: s.kind)
KIND_OF.register(Pool)(lambda s: f"{s.kind}-pool")
KIND_OF.register(AdaptivePool)(lambda s: f"{s.kind}-pool")
KIND_OF.register(Elementwise)(lambda s: _ELEMENTWISE_KINDS.get(s.kind, "elementwise"))
KIND_OF.register(Upsample)(lambda s: f"upsample-{s.mode}")
KIND_OF.register(Concat)(lambda s: "concat")
KIND_OF.register(Flatten)(lambda s: "flatten")
KIND_OF.register(Reshape)(lambda s: "reshape")
KIND_OF.register(Dropout)(lambda s: "dropout")
KIND_OF.register(Embedding)(lambda s: "embedding")
KIND_OF.register(Reduce)(lambda s: f"reduce-{s.kind}")
KIND_OF.register(Pad)(lambda s: "pad")
KIND_OF.register(Held)(lambda s: "held")
KIND_OF.register(Recurrent)(lambda s: "recurrent")


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
    except RegistryError as error:
        raise ConventionError(str(error)) from None


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
