"""costlab's own errors. Everything a user can get wrong raises a :class:`CostlabError`.

The command line turns a ``CostlabError`` into one line on stderr and exit code 2;
nothing else in the library prints or exits.
"""

from __future__ import annotations


class CostlabError(ValueError):
    """Bad input: an invalid spec, a malformed expression, an unknown target, ..."""


class SpecError(CostlabError):
    """A layer spec, or a layer applied to an input it cannot take."""


class ExpressionError(CostlabError):
    """A layer-stack expression that does not parse; names the offending token."""

    def __init__(self, text: str, column: int, token: str, problem: str) -> None:
        self.text = text
        self.column = column
        self.token = token
        self.problem = problem
        super().__init__(f"bad expression {_excerpt(text, column)} at column {column} "
                         f"({_excerpt(token, 1)}): {problem}")


def _excerpt(text: str, column: int, width: int = 60) -> str:
    """``text`` quoted, or for long text the ``width`` characters around ``column`` with its length."""
    if len(text) <= width:
        return repr(text)
    start = max(0, min(column - 1 - width // 2, len(text) - width))
    return (f"{'…' if start else ''}{text[start:start + width]!r}{'…' if start + width < len(text) else ''} "
            f"({len(text):,} characters)")


class TargetError(CostlabError):
    """A TARGET that names no preset, expression, spec file or importable callable."""
