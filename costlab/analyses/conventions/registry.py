"""The tools by name: one convention per tool module of this package."""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

from ...core.tools import CONVENTION_TOOLS
from . import fvcore, ptflops, pytorch, thop, torchinfo, torchprofile, torchvision
from .kinds import ConventionError
from .language import Convention

#: The module of this package that states each tool's rules.
_MODULES = MappingProxyType({"fvcore": fvcore, "ptflops": ptflops, "thop": thop, "torchinfo": torchinfo,
                             "torchvision": torchvision, "torchprofile": torchprofile, "torch": pytorch})

#: Convention name → its rules, in the order of core.tools.CONVENTION_TOOLS.
CONVENTIONS: Mapping[str, Convention] = MappingProxyType({name: _MODULES[name].convention()
                                                          for name in CONVENTION_TOOLS})


def find_convention(name: str) -> Convention:
    """The convention called ``name``; a ConventionError naming the known ones otherwise."""
    try:
        return CONVENTIONS[name.strip().lower()]
    except KeyError:
        raise ConventionError(f"unknown convention {name!r} (known: {', '.join(CONVENTIONS)})") from None
