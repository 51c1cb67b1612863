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
        super().__init__(f"bad expression {text!r} at column {column} ({token!r}): {problem}")


class TargetError(CostlabError):
    """A TARGET that names no preset, expression, spec file or importable callable."""
