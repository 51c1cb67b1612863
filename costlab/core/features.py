"""What an analysis carries beside its counts, as typed results that share one interface.

Each option that adds to a result makes one typed object, defined in the analyses layer
(costlab.analyses): ``--freeze`` a ``training.TrainingCost``, ``--memory`` a ``memory.Memory``,
``--convention`` a ``conventions.Profile``, ``--check`` a ``checks.Checks`` (one ``Check`` per
tool), ``--latency`` a ``latency.Latency`` (with its ``Roofline``). Every one implements
:class:`Feature` under its own ``name``; :class:`~costlab.core.analysis.Analysis` carries them in
the fixed order of :data:`FEATURES`, and its JSON and every renderer loop over them.

The core's: nothing here imports torch or the renderer. What a feature draws, it draws through
the ``view`` a renderer hands it (``costlab.render.report.View``: counts SI-scaled or exact, bytes,
prose wrapped and tables fitted to the terminal); ``view`` is None for CSV, whose cells are raw
values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Sequence, Union

if TYPE_CHECKING:
    from .analysis import Analysis, Layer, Row

#: The features of an analysis, by their field on Analysis, in the order they render (columns,
#: notes, sections) and enter the JSON.
FEATURES = ("training", "memory", "convention", "checks", "latency", "prediction")

#: FLOPs per multiply-accumulate (``--unit flops``).
FLOPS_PER_MAC = 2

Number = Union[int, float]


def in_unit(macs: Number, unit: str) -> Number:
    """A count of MACs in ``unit`` (macs, or flops = 2 × MACs)."""
    return macs * FLOPS_PER_MAC if unit == "flops" else macs


def unit_label(unit: str) -> str:
    return "FLOPs" if unit == "flops" else "MACs"


def count(n: int) -> str:
    """Exact count with thousands separators."""
    return f"{n:,}"


def exact_number(value: float, unit: str = "macs") -> str:
    """A count in ``unit``, exact: '12,443,648', or one decimal where it is not whole."""
    value = in_unit(value, unit)
    return count(int(value)) if float(value).is_integer() else f"{value:,.1f}"


class View(Protocol):
    """How a report is drawn (costlab.render.report.View): what a feature draws with."""

    fmt: str
    width: int | None
    exact: bool

    def count(self, value: float) -> str: ...

    def bytes(self, value: int) -> str: ...

    def prose(self, lines: Sequence[str]) -> list[str]: ...

    def left_out(self, dropped: Sequence[str]) -> list[str]: ...

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[bool],
              keeps: Sequence[int | None] | None = None, shrinks: Sequence[str | None] | None = None,
              min_widths: Sequence[int] | None = None) -> tuple[str, list[str]]: ...


@dataclass(frozen=True)
class Heading:
    """A column a feature adds to a table or CSV: its title, alignment, and ``keep`` (how long it
    stays when the terminal is narrow: higher stays longer; None always stays); ``key`` says which
    part of the feature it shows (a check's tool)."""

    title: str
    numeric: bool = True
    keep: int | None = None
    key: str = ""


class Feature(Protocol):
    """The interface of a typed result an analysis carries. ``group`` is one feature per target
    of a report (None for a target without it); ``view`` is None for CSV (raw cells). Every
    method has a default that adds nothing, so a feature implements only what it shows."""

    #: the feature's name: one of FEATURES, the option's (``analysis.<name>`` reads it)
    name: ClassVar[str]

    #: True for the results of running something real (the other tools, the timer): their columns
    #: follow the formula column of a per-layer CSV and the ratio column of a comparison.
    from_run: ClassVar[bool] = False

    def json_fields(self, unit: str) -> dict[str, Any]:
        """Fields this feature adds to its target's entry of the JSON contract."""
        return {}

    def layer_json(self, name: str) -> dict[str, Any]:
        """Fields this feature adds to the JSON entry of the layer called ``name``."""
        return {}

    @classmethod
    def layer_columns(cls, group: Sequence[Any], unit: str, view: View | None) -> list[Heading]:
        """The columns this feature adds to per-layer tables (and per-layer CSV)."""
        return []

    def layer_cells(self, headings: Sequence[Heading], row: "Row", members: Sequence["Layer"], unit: str,
                    view: View | None) -> list[Any]:
        """One per-layer row's cells under ``headings``; ``members`` are the layers the row folds
        (:func:`costlab.core.analysis.fold`, the one folding rule)."""
        return []

    def total_cells(self, headings: Sequence[Heading], unit: str, view: View) -> list[str]:
        """The total row's cells under ``headings`` (a table's last row)."""
        return [""] * len(headings)

    @classmethod
    def side_by_side(cls, group: Sequence[Any], unit: str, view: View | None) -> tuple[list[Heading], list[list[Any]]]:
        """The columns this feature adds to a comparison's one-row-per-target table, and each target's cells."""
        return [], []

    def headline(self, unit: str, view: View) -> str:
        """What this feature adds to the one-line head of ``costlab analyze`` ('' for nothing)."""
        return ""

    def table_notes(self, unit: str) -> list[str]:
        """Lines under its target's table."""
        return []

    def section(self, analysis: "Analysis", unit: str, view: View, compact: bool) -> list[str]:
        """A section of its own after its target's per-layer table (``compact``: without a
        per-layer table, a line or two)."""
        return []

    @classmethod
    def report_section(cls, analyses: Sequence["Analysis"], unit: str, view: View) -> list[str]:
        """A section once per report, over every target (after the notes)."""
        return []


def blank(headings: Sequence[Heading]) -> list[str]:
    """Empty cells under ``headings`` (a target or a row the feature says nothing of)."""
    return [""] * len(headings)


