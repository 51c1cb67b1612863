"""Reading sizes typed as text: plain ASCII decimal integers of bounded length.

``str.isdigit`` accepts characters ``int`` rejects (superscripts such as ``²``) and ``int``
accepts what no size is (``1_000``, `` 5``, other scripts' digits); Python also refuses to
convert integers of more than 4,300 digits to or from text. Every size read from the command
line, an expression, a spec file or a preset option goes through :func:`parse_size`, whose
bound of :data:`MAX_SIZE_DIGITS` digits keeps every count made from them (products of a
handful of sizes) printable.
"""

from __future__ import annotations

import numbers
import re

#: The most digits a typed size may have (a count from sizes this long stays far below the 4,300
#: digits Python converts to text).
MAX_SIZE_DIGITS = 100

_DECIMAL = re.compile(r"[0-9]+", re.ASCII)


def parse_size(text: str, minimum: int = 1) -> int | None:
    """``text`` as an integer ≥ ``minimum`` when it is plain ASCII digits (at most
    :data:`MAX_SIZE_DIGITS` of them), else None; :func:`size_problem` says why."""
    if not isinstance(text, str) or not _DECIMAL.fullmatch(text) or len(text) > MAX_SIZE_DIGITS:
        return None
    value = int(text)
    return value if value >= minimum else None


def size_problem(text: str, what: str = "a positive integer", minimum: int = 1) -> str:
    """Why :func:`parse_size` refused ``text``, in words (its first 40 characters quoted)."""
    shown = text if len(text) <= 40 else f"{text[:20]}…({len(text)} characters)"
    if _DECIMAL.fullmatch(text) and len(text) > MAX_SIZE_DIGITS:
        return f"expected {what} of at most {MAX_SIZE_DIGITS} digits, got {shown!r}"
    if minimum == 0:
        return f"expected {what} (0 or more, ASCII digits), got {shown!r}"
    return f"expected {what}, got {shown!r}"


def check_size(value: object, minimum: int = 1) -> bool:
    """True for an integer (``int`` or another ``numbers.Integral`` such as numpy's, never a ``bool``)
    ≥ ``minimum`` with at most :data:`MAX_SIZE_DIGITS` digits."""
    return (isinstance(value, numbers.Integral) and not isinstance(value, bool)
            and minimum <= int(value) < 10 ** MAX_SIZE_DIGITS)
