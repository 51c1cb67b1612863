"""How a report is drawn (:class:`View`), and the columns a feature's presenter adds (:class:`Heading`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .display import Column, fitted, left_out_note, wrap
from .formats import Format
from .numbers import Style, number


@dataclass(frozen=True)
class Heading:
    """A column a feature adds to a table or CSV: its title, alignment, and ``keep`` (how long it
    stays when the terminal is narrow: higher stays longer; None always stays); ``key`` says which
    part of the feature it shows (a check's tool)."""

    title: str
    numeric: bool = True
    keep: int | None = None
    key: str = ""


def blank(headings: Sequence[Heading]) -> list[str]:
    """Empty cells under ``headings`` (a target or a row the feature says nothing of)."""
    return [""] * len(headings)


class View:
    """How a report is drawn: its format, the terminal width a table must fit (None: every
    column, as ``--wide``) and whether counts stay exact (``--exact``; always in Markdown)."""

    __slots__ = ("fmt", "width", "exact")

    def __init__(self, fmt: str = Format.TABLE, width: int | None = None, exact: bool = False) -> None:
        self.fmt = Format(fmt)
        self.width = width if self.fmt is Format.TABLE else None
        self.exact = exact or self.fmt not in (Format.TABLE, Format.HTML)

    def count(self, value: float) -> str:
        """A count: SI-scaled in the terminal table ('4.09 G'), exact otherwise ('4,089,184,256')."""
        return number(value, Style.EXACT if self.exact else Style.SI)

    def bytes(self, value: int) -> str:
        """A size: binary-scaled in the terminal table ('97.5 MiB'), exact bytes otherwise."""
        return number(value, Style.EXACT_BYTES if self.exact else Style.BYTES)

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[bool],
              keeps: Sequence[int | None] | None = None, shrinks: Sequence[str | None] | None = None,
              min_widths: Sequence[int] | None = None) -> tuple[str, list[str]]:
        """The table fitted to the width (columns of lowest ``keep`` left out first, then
        ``shrink`` columns cut with '…' down to their ``min_widths``), and the headers left out."""
        columns = [Column(header, [str(row[index]) for row in rows], numeric[index],
                          keeps[index] if keeps else None, shrinks[index] if shrinks else None,
                          min_widths[index] if min_widths else 8)
                   for index, header in enumerate(headers)]
        return fitted(columns, self.width, self.fmt)

    def prose(self, lines: Sequence[str]) -> list[str]:
        """Lines of text wrapped at the width (the terminal table only)."""
        return wrap(lines, self.width)

    def left_out(self, dropped: Sequence[str]) -> list[str]:
        """The line naming the columns a fitted table left out (none when it left none out)."""
        return self.prose(left_out_note(dropped, self.width))
