"""The presenters of the features: how each feature of an analysis is drawn, registered by its name.

A feature (``costlab.core.features.Feature``) is data: its ``name``, its JSON. How it shows in a table,
Markdown, CSV or HTML is its presenter's, a subclass of :class:`Presenter` registered for the feature's
name with :func:`register` (a duplicate raises, as ``torch.utils.flop_counter``'s registry does). The
renderers loop over ``analysis.features`` and draw each through :func:`presenter`; a feature without a
presenter is named, never skipped. Every method has a default that adds nothing, so a presenter
implements only what its feature shows. ``view`` is the renderer's :class:`~costlab.render.view.View`,
None for CSV, whose cells are raw values; ``group`` is one feature per target of a report (None for
a target without it)."""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Sequence, TypeVar

from ...core.errors import CostlabError
from ..view import Heading, View


class Presenter:
    """How one feature is drawn. ``from_run``: the results of running something real (the other
    tools, the timer), whose columns follow the formula column of a per-layer CSV and the ratio
    column of a comparison."""

    #: the feature's name (one of costlab.core.features.FEATURES), set by :func:`register`
    name: ClassVar[str] = ""
    from_run: ClassVar[bool] = False

    def layer_columns(self, group: Sequence[Any], unit: str, view: View | None) -> list[Heading]:
        """The columns the feature adds to per-layer tables (and per-layer CSV)."""
        return []

    def layer_cells(self, feature: Any, headings: Sequence[Heading], row: Any, members: Sequence[Any],
                    unit: str, view: View | None) -> list[Any]:
        """One per-layer row's cells under ``headings``; ``members`` are the layers the row folds
        (:func:`costlab.core.analysis.fold`, the one folding rule)."""
        return []

    def total_cells(self, feature: Any, headings: Sequence[Heading], unit: str, view: View) -> list[str]:
        """The total row's cells under ``headings`` (a table's last row)."""
        return [""] * len(headings)

    def side_by_side(self, group: Sequence[Any], unit: str, view: View | None) -> tuple[list[Heading], list[list[Any]]]:
        """The columns the feature adds to a comparison's one-row-per-target table, and each target's cells."""
        return [], []

    def headline(self, feature: Any, unit: str, view: View) -> str:
        """What the feature adds to the one-line head of ``costlab analyze`` ('' for nothing)."""
        return ""

    def table_notes(self, feature: Any, unit: str) -> list[str]:
        """Lines under its target's table."""
        return []

    def section(self, feature: Any, analysis: Any, unit: str, view: View, compact: bool) -> list[str]:
        """A section of its own after its target's per-layer table (``compact``: without a
        per-layer table, a line or two)."""
        return []

    def report_section(self, analyses: Sequence[Any], unit: str, view: View) -> list[str]:
        """A section once per report, over every target (after the notes)."""
        return []


#: Each feature's presenter, by the feature's name.
PRESENTERS: dict[str, Presenter] = {}

P = TypeVar("P", bound=type[Presenter])


class UnpresentedFeature(CostlabError):
    """A feature no presenter is registered for."""


def register(name: str) -> Callable[[P], P]:
    """Register the decorated :class:`Presenter` subclass for the feature called ``name``; a second
    presenter for the same name raises."""
    def decorate(cls: P) -> P:
        if name in PRESENTERS:
            raise RuntimeError(f"a presenter for the feature {name!r} is already registered "
                               f"({type(PRESENTERS[name]).__qualname__})")
        cls.name = name
        PRESENTERS[name] = cls()
        return cls
    return decorate


def presenter(name: str) -> Presenter:
    """The presenter of the feature called ``name``."""
    try:
        return PRESENTERS[name]
    except KeyError:
        raise UnpresentedFeature(f"no presenter is registered for the feature {name!r} "
                                 "(costlab.render.features.registry.register)") from None
