"""The one number formatter of the renderers: counts, bytes, times and ratios for people.

:func:`number` writes ``value`` in one :class:`Style`; every renderer and report goes through it.
The styles are those the reports have always printed (kept byte for byte), which is why sizes come
in two: ``BYTES`` (three significant digits, as counts: '97.5 MiB') in tables, and ``BYTES_2DP``
(two decimals: '97.49 MiB') in the memory notes and reports.

- ``SI``: three significant digits, rounded half up, SI prefixes 10³ apart (4,089,184,256 → '4.09 G');
- ``BYTES``: the same with IEC prefixes 2¹⁰ apart (102,228,128 → '97.5 MiB');
- ``BYTES_2DP``: two decimals in KiB, MiB or GiB, with thousands separators (102,228,128 → '97.49 MiB');
- ``EXACT``: every digit, with thousands separators, one decimal where not whole (4,089,184,256; 12.5);
- ``GROUPED``: the value as Python writes it, with thousands separators (4,089,184,256; 12.25);
- ``EXACT_BYTES``: every byte ('102,228,128 B');
- ``MS``: milliseconds, three significant digits from 1 ms to 100 ms, whole from 100 ms, three or
  four decimals below 1 ms (0.0012, 0.079, 0.731, 2.68, 12.3, 1234);
- ``TIMES``: a ratio with two decimals and '×' ('3.09×'; None → 'n/a').
"""

from __future__ import annotations

import enum
from decimal import ROUND_HALF_UP, Decimal
from typing import Sequence


class Style(enum.Enum):
    """How :func:`number` writes a value (see the module's docstring)."""

    SI = "si"
    BYTES = "bytes"
    BYTES_2DP = "bytes-2dp"
    EXACT = "exact"
    GROUPED = "grouped"
    EXACT_BYTES = "exact-bytes"
    MS = "ms"
    TIMES = "times"


#: SI prefixes of counts, 10³ apart.
SI_PREFIXES = ("", "k", "M", "G", "T", "P", "E")
#: IEC prefixes of sizes in bytes, 2¹⁰ apart.
BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")

_ONE, _TENTH, _HUNDREDTH = Decimal(1), Decimal("0.1"), Decimal("0.01")


def _mantissa(value: Decimal) -> Decimal:
    """``value`` (≥ 0) rounded half up to three significant digits: 1.23, 12.3, 123 (9.995 → 10.0)."""
    for floor, step in ((100, _ONE), (10, _TENTH), (0, _HUNDREDTH)):
        if value >= floor:
            rounded = value.quantize(step, ROUND_HALF_UP)
            if floor and rounded >= floor * 10:  # 99.95 → 100.0: one digit fewer after the point
                return rounded.quantize(_ONE, ROUND_HALF_UP)
            if not floor and rounded >= 10:
                return rounded.quantize(_TENTH, ROUND_HALF_UP)
            return rounded
    raise AssertionError(value)  # pragma: no cover


def _scaled(value: float, base: int, units: Sequence[str], small: str) -> str:
    """``value`` with the largest unit it reaches, its mantissa rounded half up to three
    significant digits; a mantissa that rounds to 1000 or more moves up one unit (999.95 k → 1.00 M)."""
    sign = "-" if value < 0 else ""
    magnitude = Decimal(abs(value)) if isinstance(value, int) else Decimal(repr(abs(float(value))))
    if magnitude < base and magnitude == magnitude.to_integral_value():
        return f"{sign}{int(magnitude)}{small}"
    whole = magnitude
    step = 0
    while magnitude >= base and step < len(units) - 1:
        magnitude /= base
        step += 1
    if magnitude >= base:  # past the largest prefix: three significant digits in scientific notation
        return f"{sign}{whole:.2E}{small}"
    rounded = _mantissa(magnitude)
    if rounded >= 1000 and step < len(units) - 1:  # 999.95 → 1000: the next unit up
        step += 1
        rounded = _mantissa(magnitude / base)
    return f"{sign}{rounded} {units[step]}".rstrip() if step else f"{sign}{rounded}{small}"


def _two_decimals(n: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:,.2f} {unit}"
    return f"{n} B"


def _milliseconds(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 1:
        return f"{value:.3g}"
    return f"{value:.3f}" if value >= 0.01 else f"{value:.4f}"


def number(value: float | None, style: Style = Style.SI) -> str:
    """``value`` written in ``style``: 4,089,184,256 → '4.09 G' (SI); 102,228,128 → '97.5 MiB'
    (BYTES) or '97.49 MiB' (BYTES_2DP); 0.731 → '0.731' (MS); 3.094 → '3.09×' (TIMES)."""
    if style is Style.TIMES:
        return "n/a" if value is None else f"{value:.2f}×"
    assert value is not None, style
    if style is Style.SI:
        return _scaled(value, 1000, SI_PREFIXES, "")
    if style is Style.BYTES:
        return _scaled(value, 1024, BINARY_UNITS, " B")
    if style is Style.BYTES_2DP:
        return _two_decimals(value)
    if style is Style.EXACT:
        return f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"
    if style is Style.GROUPED:
        return f"{value:,}"
    if style is Style.EXACT_BYTES:
        return f"{value:,} B"
    if style is Style.MS:
        return _milliseconds(value)
    raise AssertionError(style)  # pragma: no cover


def count(n: float) -> str:
    """Every digit with thousands separators: 12,443,648 (:data:`Style.GROUPED`)."""
    return number(n, Style.GROUPED)
