"""The output formats of the renderers: one enum, read by every renderer and by the CLI's --format.

A ``str`` enum, so a renderer handed the plain string ('md') from the Python API compares equal."""

from __future__ import annotations

import enum


class Format(str, enum.Enum):
    """An output format: the terminal table, GitHub Markdown, CSV, the JSON contract, or the HTML of
    the notebook view (not a --format choice)."""

    TABLE = "table"
    MD = "md"
    CSV = "csv"
    JSON = "json"
    HTML = "html"

    def __str__(self) -> str:
        return self.value


#: The formats ``--format`` offers (every one but the notebook's HTML), in the CLI's order.
CLI_FORMATS: tuple[Format, ...] = (Format.TABLE, Format.MD, Format.CSV, Format.JSON)
#: Their names, as argparse's ``choices`` and the error messages list them.
CLI_FORMAT_NAMES: tuple[str, ...] = tuple(f.value for f in CLI_FORMATS)
