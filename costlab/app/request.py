"""One request: what to price and how, resolved once at the edge and handed down whole.

The command line (its argparse namespace) and the Python API (``costlab.analyze``'s arguments)
each turn what they were given into :class:`Request` objects in one function; the pipeline
(:mod:`costlab.app.pipeline`), the target readers (:mod:`costlab.app.targets`) and ``sweep`` read
them and never re-derive what a target is. Every rule about a request is stated here once:

- the target's kind (:func:`target_kind`), in this order: an ``nn.Module`` object, ``hf:PATH``, a
  preset (with options in parentheses), a spec file, ``package.module:callable``, an expression;
- ``seq`` (``--seq``) sets the tokens of an ``hf:`` model and is refused for any other target, never
  ignored; among several targets the ``hf:`` ones take it (:func:`seq_among`);
- ``head`` (``--head``) and ``generate`` (``--generate``) apply to ``hf:`` targets: refused for any
  other target, never ignored.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any, Callable, Mapping, Sequence

from ..core.analysis import Analysis
from ..core.errors import TargetError
from ..core.expressions import _KERNELED, LAYER_WORDS
from ..core.specs import Shape
from ..core.zoo import find_preset

#: The prefix of a Hugging Face target: ``hf:PATH`` (a config directory or a hub name).
HF_PREFIX = "hf:"

_PRESET_CALL = re.compile(r"^([A-Za-z][\w-]*)\((.*)\)$", re.S)
_MODULE_TARGET = re.compile(r"^([A-Za-z_][\w.]*):([A-Za-z_]\w*)$")
#: ``package.module:callable(key=value, ...)``: a module target with its own options.
_MODULE_CALL = re.compile(r"^([A-Za-z_][\w.]*:[A-Za-z_]\w*)\((.*)\)$", re.S)
EXPRESSION_WORDS = frozenset(w for w in LAYER_WORDS if "{" not in w)


class TargetKind(Enum):
    """What a TARGET is (see :func:`target_kind` for the order in which they are told apart)."""

    MODULE = "nn.Module object"        # the Python API only
    HF = "hf:"                         # a transformers config, built without weights
    PRESET = "preset"                  # resnet50, mobilenet-v1(width=0.5)
    FILE = "spec file"                 # an expression in a text file, or JSON
    CALLABLE = "package.module:callable"
    EXPRESSION = "expression"          # a layer stack: conv1x1:16 > conv5x5:32

    @property
    def builds_module(self) -> bool:
        """Priced by tracing a real ``nn.Module`` (the user's object or the one a callable returns)."""
        return self in (TargetKind.MODULE, TargetKind.CALLABLE)

    @property
    def takes_options(self) -> bool:
        """Takes ``--kwarg`` options (and options in parentheses)."""
        return self in (TargetKind.PRESET, TargetKind.CALLABLE)


def is_hf(target: Any) -> bool:
    """True for ``hf:PATH``: a Hugging Face model."""
    return isinstance(target, str) and target.strip().startswith(HF_PREFIX)


def is_module_target(text: str) -> bool:
    """True for ``package.module:callable`` or ``package.module:callable(k=v, ...)`` (and not for an
    expression such as ``fc:10``, nor for ``hf:gpt2``)."""
    if is_hf(text):
        return False  # hf:gpt2 names a Hugging Face model, not a package.module:callable
    call = _MODULE_CALL.match(text.strip())
    match = _MODULE_TARGET.match(call.group(1) if call else text.strip())
    if not match:
        return False
    head = match.group(1)
    return head not in EXPRESSION_WORDS and not _KERNELED.match(head)


def preset_call(text: str) -> tuple[str, str]:
    """'mobilenet-v1(width=0.5)' → ('mobilenet-v1', 'width=0.5'); any other text → (text, '')."""
    call = _PRESET_CALL.match(text)
    return (call.group(1), call.group(2)) if call else (text, "")


def _is_module_object(target: object) -> bool:
    torch = sys.modules.get("torch")  # a module object means torch is imported already
    return torch is not None and isinstance(target, torch.nn.Module)


def target_kind(target: Any) -> TargetKind:
    """The kind of a target: the one place a target's kind is decided (see the module docstring)."""
    if _is_module_object(target):
        return TargetKind.MODULE
    if not isinstance(target, str):
        raise TargetError(f"a target is a preset, an expression, a spec file, "
                          f"package.module:callable or an nn.Module; got {type(target).__name__}")
    text = target.strip()
    if not text:
        raise TargetError("empty target")
    if is_hf(text):
        return TargetKind.HF
    if find_preset(preset_call(text)[0]) is not None:
        return TargetKind.PRESET
    if os.path.isfile(text):
        return TargetKind.FILE
    if is_module_target(text):
        return TargetKind.CALLABLE
    return TargetKind.EXPRESSION


#: A latency step: (analysis, the real module or None) → the analysis with its latency.
Measure = Callable[[Analysis, Any], Analysis]
#: A prediction step: analysis → the analysis with its predicted latency (nothing runs).
Predict = Callable[[Analysis], Analysis]


@dataclass(frozen=True)
class Steps:
    """What to add to each analysis: ``freeze`` (as --freeze: a count, a fraction, names, or
    'requires_grad'), ``check`` (tool names), ``convention`` (a tool name), ``measure`` (the latency
    step, made by the caller that owns the progress bar and the peaks)."""

    freeze: Any = None
    check: tuple[str, ...] = ()
    convention: str | None = None
    memory: str | None = None  # the optimizer of the training step whose bytes to add (--memory)
    measure: Measure | None = None
    #: the prediction step (--predict): from the counts and a kernel calibration, the target never run
    predict: Predict | None = None
    #: a latency measurement follows, made by the caller with the module the pipeline's ``prepare``
    #: returns (the CLI times all targets under one progress bar): a module target is built with real weights
    timed: bool = False

    def needs_real_module(self, freeze_requires_grad: bool) -> bool:
        return bool(self.check) or self.measure is not None or self.timed or freeze_requires_grad


_NO_OPTIONS: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class Request:
    """One target to price and everything about how: made by :meth:`of`, never changed after.

    ``target``: the text (stripped) or the ``nn.Module``; ``input``: one float tensor's shape per
    sample; ``inputs``: what else a module's forward is given (:mod:`costlab.core.inputs`); ``seq``:
    tokens per sample of an ``hf:`` model; ``options``: a preset's or callable's keyword options;
    ``name``: the label of the result; ``steps``: what the pipeline adds after counting."""

    target: Any
    kind: TargetKind
    input: Shape | None = None
    inputs: Any = None
    batch: int = 1
    dtype: str = "float32"
    seq: int | None = None
    options: Mapping[str, Any] = field(default_factory=lambda: _NO_OPTIONS)
    name: str | None = None
    steps: Steps = Steps()
    head: str | None = None  # the model an hf: target builds (--head; costlab.analyses.generation.HEADS)
    generate: int | None = None  # new tokens whose generate() an hf: target prices (--generate)

    def __post_init__(self) -> None:
        if self.kind is TargetKind.HF:
            return
        shown = repr(self.target) if isinstance(self.target, str) else type(self.target).__name__
        if self.seq is not None:
            raise TargetError(f"--seq sets the tokens of an hf: model, not of {shown}; give a module's inputs "
                              "with --input")
        for option, value in (("head", self.head), ("generate", self.generate)):
            if value is not None:
                raise TargetError(f"--{option} applies to hf: models, not to {shown}")

    @classmethod
    def of(cls, target: Any, input: Shape | None = None, *, inputs: Any = None, batch: int = 1,
           dtype: str = "float32", seq: int | None = None, options: Mapping[str, Any] | None = None,
           name: str | None = None, steps: Steps = Steps(), head: str | None = None,
           generate: int | None = None) -> Request:
        """The request for one target: its kind decided (:func:`target_kind`), its options frozen."""
        kind = target_kind(target)
        return cls(target.strip() if isinstance(target, str) else target, kind, input, inputs, batch, dtype,
                   seq, MappingProxyType(dict(options or {})), name, steps, head, generate)

    @property
    def text(self) -> str:
        """The target as text (an ``nn.Module`` object: its class name)."""
        return self.target if isinstance(self.target, str) else type(self.target).__name__


def seq_among(targets: Sequence[Any], seq: int | None) -> list[int | None]:
    """--seq for each of several targets: the hf: ones take it; with no hf: target among them each
    keeps it, so that :class:`Request` refuses it (never ignored)."""
    hf = [is_hf(target) for target in targets]
    return [seq if this or not any(hf) else None for this in hf]
