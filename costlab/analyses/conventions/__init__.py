"""Other tools' conventions: what fvcore, ptflops, thop, torchinfo, torchprofile, PyTorch's counter
and torchvision's model table would report for the same model, computed from costlab's own layers.

No torch here: each tool's behaviour is an explicit table from a *layer kind* (:func:`layer_kind`,
decided by the spec's type and fields) to the :class:`Term` s the tool counts for such a layer,
each a pure function of the layer's spec and shapes. Module-hook tools (ptflops, thop, torchinfo)
only see ``nn.Module`` calls; how a layer is called (:func:`call_form`) decides whether they see
it at all, and for ptflops which patched ``torch.nn.functional`` function it goes through.

Every rule is documented in docs/cost-model.md ("Other tools' conventions"), with the tool
version it was read from; tests hold each profile's total equal to the real tool's on every
preset (tests/test_conventions.py).

The profile never changes costlab's own ``macs``: it is reported beside them, with the
difference broken down by rule (:meth:`Profile.differences`).

The package, one file per job: :mod:`.kinds` (layer kinds), :mod:`.counts` (the shape helpers the
rules count with), :mod:`.language` (terms, composites, a tool's table), one module per tool
(:mod:`.fvcore`, :mod:`.pytorch`, :mod:`.torchvision`, :mod:`.ptflops`, :mod:`.thop`,
:mod:`.torchinfo`, :mod:`.torchprofile`), :mod:`.registry` (the tools by name), :mod:`.profile`
(the ``--convention`` feature), :mod:`.docs` (the rules as Markdown) and :mod:`.validate` (the
tables' consistency checks).
"""

from __future__ import annotations

from .docs import rules_markdown
from .kinds import BUILDER_FUNCTIONS, KIND_OF, LAYER_KINDS, ConventionError, call_form, function_name, layer_kind
from .language import Convention, Term
from .profile import Difference, LayerCount, Profile, profile, with_convention
from .registry import CONVENTIONS, find_convention
from .validate import check_tables

__all__ = ["BUILDER_FUNCTIONS", "CONVENTIONS", "Convention", "ConventionError", "Difference", "KIND_OF",
           "LAYER_KINDS", "LayerCount", "Profile", "Term", "call_form", "check_tables", "find_convention",
           "function_name", "layer_kind", "profile", "rules_markdown", "with_convention"]
