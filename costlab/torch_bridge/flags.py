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
        if sum(p.numel() for p in parameters) != layer.params:
            unmatched.append(layer.name)
            continue
        claimed.add(owner)  # type: ignore[arg-type]
        trainable[layer.name] = sum(p.numel() for p in parameters if p.requires_grad)
    if unmatched:
        raise FreezeError(f"--freeze {REQUIRES_GRAD}: cannot read the requires_grad flags of "
                          f"{', '.join(unmatched[:5])}{' …' if len(unmatched) > 5 else ''} from the module")
    return trainable


def freeze_from_module(analysis: Analysis, module: nn.Module, freeze: "Freeze | str" = REQUIRES_GRAD) -> Freeze:
    """``--freeze requires_grad`` for ``module``: a Freeze carrying its flags per layer of ``analysis``."""
    return with_flags(parse_freeze(freeze), trainable_by_layer(analysis, module))
