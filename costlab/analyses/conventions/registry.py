"""The tools by name: one convention per tool module of this package."""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

from . import fvcore, ptflops, pytorch, thop, torchinfo, torchprofile, torchvision
from .kinds import ConventionError
from .language import Convention

#: Convention name → its rules. The first five are the ``--convention`` targets of the issue;
#: torchprofile and torch (PyTorch's own counter) complete the peers of benchmarks/peers.py.
CONVENTIONS: Mapping[str, Convention] = MappingProxyType({c.name: c for c in (
    tool.convention() for tool in (fvcore, ptflops, thop, torchinfo, torchvision, torchprofile, pytorch))})


def find_convention(name: str) -> Convention:
    """The convention called ``name``; a ConventionError naming the known ones otherwise."""
    try:
        return CONVENTIONS[name.strip().lower()]
    except KeyError:
        raise ConventionError(f"unknown convention {name!r} (known: {', '.join(CONVENTIONS)})") from None
