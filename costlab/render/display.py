"""Tables for people: tables that fit a width, prose wrapped at it, HTML tables.

A table for the terminal keeps its columns in order of importance until it fits the width: the least
important columns are left out first (and named under the table), then a column marked shrinkable is
shortened with ``…``. Rows never wrap. The numbers in the cells come from the one formatter,
:mod:`costlab.render.numbers` (SI-scaled counts, binary-scaled bytes; exact in CSV, JSON, Markdown
and with ``--exact``).
"""

from __future__ import annotations

import re
import textwrap
from typing import Sequence

from .formats import Format

#: The space inside '3.50 M' or '97.5 MiB': wrapping never breaks a number from its unit.
_NUMBER_UNIT = re.compile(r"(?<=\d) (?=(?:[kMGTPE]|[KMGTPE]iB|B)\b)")
_NBSP = "\u00a0"

ELLIPSIS = "…"
#: Two spaces between the columns of a terminal table (tabulate's "simple" format).
GAP = 2


class Column:
    """One column of a table: header, pre-formatted cells, alignment and how to fit it.

    ``keep`` ranks the column: when a table is too wide, the lowest ``keep`` goes first;
    ``keep=None`` is never left out. ``shrink`` ('head' keeps the start, 'tail' the end) lets
    the column be shortened with '…' down to ``min_width`` once nothing else can go.
    """

    __slots__ = ("header", "cells", "numeric", "keep", "shrink", "min_width")

    def __init__(self, header: str, cells: Sequence[str], numeric: bool = False, keep: int | None = None,
                 shrink: str | None = None, min_width: int = 8) -> None:
        self.header = header
        self.cells = list(cells)
        self.numeric = numeric
        self.keep = keep
        self.shrink = shrink
        self.min_width = min_width

    def width(self) -> int:
        """Its width: the widest of its header and cells."""
        return max([len(self.header)] + [len(cell) for cell in self.cells])

    def shortened(self, width: int) -> "Column":
        """This column with every cell longer than ``width`` cut to it, '…' marking the cut."""
        def cut(text: str) -> str:
            if len(text) <= width:
                return text
            return (text[:width - 1] + ELLIPSIS) if self.shrink == "head" else (ELLIPSIS + text[-(width - 1):])
        return Column(cut(self.header), [cut(cell) for cell in self.cells], self.numeric, self.keep, self.shrink,
                      self.min_width)


def table_width(columns: Sequence[Column]) -> int:
    return sum(column.width() for column in columns) + GAP * max(len(columns) - 1, 0)


def fit(columns: Sequence[Column], width: int | None) -> tuple[list[Column], list[str]]:
    """The columns that fit ``width`` (None: all of them), and the headers left out.

    Columns go lowest ``keep`` first; then shrinkable columns are shortened, widest first.
    """
    kept = list(columns)
    if width is None:
        return kept, []
    dropped: list[str] = []
    while table_width(kept) > width:
        candidates = [c for c in kept if c.keep is not None]
        if not candidates:
            break
        lowest = min(candidates, key=lambda c: c.keep)  # type: ignore[arg-type, return-value]
        kept.remove(lowest)
        dropped.append(lowest.header)
    excess = table_width(kept) - width
    stuck: set[int] = set()  # columns that cannot get narrower (a header at its floor)
    while excess > 0:
        shrinkable = [c for c in kept if c.shrink and c.width() > c.min_width and id(c) not in stuck]
        if not shrinkable:
            break
        widest = max(shrinkable, key=Column.width)
        others = [c.width() for c in shrinkable if c is not widest]
        floor = max([widest.min_width] + [w for w in others if w < widest.width()])  # level, not flatten one
        target = max(floor, widest.width() - excess, widest.min_width)
        if target >= widest.width():
            target = widest.width() - 1
        index = kept.index(widest)
        narrower = widest.shortened(target)
        if narrower.width() >= widest.width():
            stuck.add(id(widest))
            continue
        kept[index] = narrower
        excess = table_width(kept) - width
    headers = [c.header for c in columns]
    return kept, sorted(dropped, key=headers.index)


def render(columns: Sequence[Column], fmt: str = Format.TABLE) -> str:
    """Columns as GitHub Markdown ('md', through tabulate), HTML, or a plain terminal grid: headers,
    a rule of dashes, the rows, two spaces between columns, each as wide as its widest cell or
    header (tabulate's 'simple' layout without its header padding; drawn here, so that a terminal
    table needs no tabulate import)."""
    if fmt == Format.HTML:
        return html_table(columns)
    if fmt == Format.MD:
        from tabulate import tabulate

        rows = [list(cells) for cells in zip(*(c.cells for c in columns))] if columns else []
        return tabulate(rows, headers=[c.header for c in columns], tablefmt="github",
                        colalign=["right" if c.numeric else "left" for c in columns], disable_numparse=True)
    widths = [c.width() for c in columns]

    def line(cells: Sequence[str]) -> str:
        return (" " * GAP).join(cell.rjust(w) if c.numeric else cell.ljust(w)
                                for cell, w, c in zip(cells, widths, columns)).rstrip()
    lines = [line([c.header for c in columns]), (" " * GAP).join("-" * w for w in widths)]
    lines += [line(cells) for cells in zip(*(c.cells for c in columns))]
    return "\n".join(lines)


def html_table(columns: Sequence[Column]) -> str:
    """Columns as an HTML table (cells escaped; numeric columns right-aligned)."""
    from html import escape

    right = ' style="text-align: right"'

    def cells(tag: str, texts: Sequence[str]) -> str:
        return "".join(f"<{tag}{right if c.numeric else ''}>{escape(text)}</{tag}>"
                       for text, c in zip(texts, columns))
    body = "".join(f"<tr>{cells('td', row)}</tr>" for row in zip(*(c.cells for c in columns)))
    return (f"<table><thead><tr>{cells('th', [c.header for c in columns])}</tr></thead>"
            f"<tbody>{body}</tbody></table>")


def fitted(columns: Sequence[Column], width: int | None, fmt: str = Format.TABLE) -> tuple[str, list[str]]:
    """The table fitted to ``width`` (Markdown always keeps every column) and the headers left out."""
    if fmt in (Format.MD, Format.HTML):
        return render(columns, fmt), []
    kept, dropped = fit(columns, width)
    return render(kept, fmt), dropped


def left_out_note(dropped: Sequence[str], width: int | None) -> list[str]:
    """'Not shown at 80 columns: ops, formula (--wide shows every column).', or nothing."""
    if not dropped or width is None:
        return []
    return [f"Not shown at {width} columns: {', '.join(dropped)} (--wide shows every column)."]


def wrap(lines: Sequence[str], width: int | None) -> list[str]:
    """Prose lines wrapped at ``width`` (continuations indented two spaces); None leaves them."""
    if width is None:
        return list(lines)
    wrapped: list[str] = []
    for line in [part for text in lines for part in (text.split("\n") if text else [text])]:
        if len(line) <= width or not line.strip():
            wrapped.append(line)
            continue
        indent = len(line) - len(line.lstrip(" "))
        pieces = textwrap.wrap(_NUMBER_UNIT.sub(_NBSP, line), width=width, subsequent_indent=" " * (indent + 2),
                               break_long_words=True, break_on_hyphens=False) or [line]
        wrapped += [piece.replace(_NBSP, " ") for piece in pieces]
    return wrapped
