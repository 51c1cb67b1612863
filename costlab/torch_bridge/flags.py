"""``--freeze requires_grad``: a module's own ``requires_grad`` flags, per layer of its analysis."""

from __future__ import annotations

import re

from torch import nn

from ..core.analysis import Analysis
from ..analyses.training import Freeze, FreezeError, REQUIRES_GRAD, parse_freeze, with_flags

_CALL_SUFFIX = re.compile(r"_\d+$")  # a module's second call is '<path>_1'


def trainable_by_layer(analysis: Analysis, module: nn.Module) -> dict[str, int]:
    """Trainable parameters (``requires_grad`` True) of each layer with parameters, read from
    ``module`` without changing it: a parameter belongs to the layer named after the module that
    owns it (its first call). Raises FreezeError when a layer's parameters cannot be found."""
    owned: dict[str, list[nn.Parameter]] = {}
    for qualified, parameter in module.named_parameters():
        owned.setdefault(qualified.rpartition(".")[0], []).append(parameter)
    claimed: set[str] = set()
    trainable: dict[str, int] = {}
    unmatched: list[str] = []
    for layer in analysis.layers:
        if not layer.params:
            continue
        owner = next((path for path in (layer.name, _CALL_SUFFIX.sub("", layer.name)) if path in owned
                      and path not in claimed), None)
        parameters = owned.get(owner, []) if owner is not None else []
        if owner is None:
            packed = _packed_projection(module, _CALL_SUFFIX.sub("", layer.name))
            if packed is not None and sum(size for size, _ in packed) == layer.params:
                trainable[layer.name] = sum(size for size, flag in packed if flag)
                continue
        if sum(p.numel() for p in parameters) != layer.params:
            unmatched.append(layer.name)
            continue
        claimed.add(owner)  # type: ignore[arg-type]
        trainable[layer.name] = sum(p.numel() for p in parameters if p.requires_grad)
    if unmatched:
        raise FreezeError(f"--freeze {REQUIRES_GRAD}: cannot read the requires_grad flags of "
                          f"{', '.join(unmatched[:5])}{' …' if len(unmatched) > 5 else ''} from the module")
    return trainable


_PROJECTIONS = ("q", "k", "v")  # every third of a packed tensor has the same size and flag


def _packed_projection(module: nn.Module, name: str) -> list[tuple[int, bool]] | None:
    """(elements, requires_grad) of the parameters behind ``<mha>.q_proj`` (``k_proj``, ``v_proj``), a layer
    the engine splits out of an ``nn.MultiheadAttention``, whose parameters are packed: one third of
    ``in_proj_weight`` (or its own ``q_proj_weight`` when kdim/vdim differ) and of ``in_proj_bias``.
    A slice has the flag of the tensor it is cut from. None when ``name`` is not such a layer."""
    parent, _, leaf = name.rpartition(".")
    if leaf not in {f"{x}_proj" for x in _PROJECTIONS}:
        return None
    try:
        attention = module.get_submodule(parent) if parent else module
    except AttributeError:
        return None
    if not isinstance(attention, nn.MultiheadAttention):
        return None
    if attention._qkv_same_embed_dim:
        weight = attention.in_proj_weight
        packed = [(weight.numel() // 3, weight.requires_grad)]
    else:
        weight = getattr(attention, f"{leaf[0]}_proj_weight")
        packed = [(weight.numel(), weight.requires_grad)]
    if attention.in_proj_bias is not None:
        packed.append((attention.in_proj_bias.numel() // 3, attention.in_proj_bias.requires_grad))
    return packed


def freeze_from_module(analysis: Analysis, module: nn.Module, freeze: "Freeze | str" = REQUIRES_GRAD) -> Freeze:
    """``--freeze requires_grad`` for ``module``: a Freeze carrying its flags per layer of ``analysis``."""
    return with_flags(parse_freeze(freeze), trainable_by_layer(analysis, module))
