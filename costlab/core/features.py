"""What an analysis carries beside its counts, as typed results that share one interface.

Each option that adds to a result makes one typed object, defined in the analyses layer
(costlab.analyses): ``--freeze`` a ``training.TrainingCost``, ``--memory`` a ``memory.Memory``,
``--convention`` a ``conventions.Profile``, ``--check`` a ``checks.Checks`` (one ``Check`` per
tool), ``--latency`` a ``latency.Latency`` (with its ``Roofline``). Every one implements
:class:`Feature` under its own ``name``; :class:`~costlab.core.analysis.Analysis` carries them in
the fixed order of :data:`FEATURES`, and its JSON loops over them.

A feature is data: its name and its JSON (the data contract). How it is drawn (tables, Markdown, CSV,
HTML) is its presenter's, registered for its name in ``costlab.render.features``. Nothing here
imports torch, the renderer or any module above it.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, Union

#: The features of an analysis, by their field on Analysis, in the order they render (columns,
#: notes, sections) and enter the JSON.
FEATURES = ("model", "training", "memory", "generation", "convention", "checks", "latency", "prediction")

#: FLOPs per multiply-accumulate (``--unit flops``).
FLOPS_PER_MAC = 2

Number = Union[int, float]


def in_unit(macs: Number, unit: str) -> Number:
    """A count of MACs in ``unit`` (macs, or flops = 2 × MACs)."""
    return macs * FLOPS_PER_MAC if unit == "flops" else macs


def unit_label(unit: str) -> str:
    return "FLOPs" if unit == "flops" else "MACs"


class Feature(Protocol):
    """The interface of a typed result an analysis carries: its name and its JSON. Both methods
    have a default that adds nothing."""

    #: the feature's name: one of FEATURES, the option's (``analysis.<name>`` reads it)
    name: ClassVar[str]

    def json_fields(self, unit: str) -> dict[str, Any]:
        """Fields this feature adds to its target's entry of the JSON contract."""
        return {}

    def layer_json(self, name: str) -> dict[str, Any]:
        """Fields this feature adds to the JSON entry of the layer called ``name``."""
        return {}
