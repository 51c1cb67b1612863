"""Turning a :class:`~costlab.app.request.Request` into an :class:`~costlab.core.analysis.Analysis`.

A target is (its kind decided once, by :func:`costlab.app.request.target_kind`): an ``nn.Module``
object (Python API), ``hf:PATH``, a preset name with optional options (``mobilenet-v1(width=0.5)``),
a spec file (an expression in a text file, or JSON ``{"expression": ..., "input": [C, H, W],
"name": ...}``), ``package.module:callable`` returning an ``nn.Module``, or a layer-stack
expression. Only the module and hf: cases import torch.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Mapping, Sequence

from ..core.analysis import Analysis
from ..core.errors import CostlabError, TargetError
from ..core.expressions import _KERNELED, analyze_expression
from ..core.extras import missing_extra
from ..core.sizes import MAX_SIZE_DIGITS, check_size, parse_size
from ..core.specs import ACTIVATION_OPS, Shape
from ..core.zoo import PRESETS, build_preset
from .request import (_MODULE_CALL, EXPRESSION_WORDS, HF_PREFIX, Request, TargetKind, is_module_target,
                      preset_call)

#: The canonical case `costlab compare` runs with no TARGET: a 5×5 convolution on 28×28×192,
#: without and with a 1×1 bottleneck to 16 channels.
DEFAULT_TARGETS = ("conv5x5:32", "conv1x1:16 > conv5x5:32")
DEFAULT_INPUT: Shape = (192, 28, 28)

_BARE_WORD = re.compile(r"^[A-Za-z][\w-]*$")
SPEC_FILE_SUFFIXES = (".json", ".txt", ".expr")


def _unknown_word(text: str) -> str:
    """'resnet51' → "unknown preset or layer 'resnet51'; did you mean resnet50? (presets: …)"."""
    import difflib  # only for this error's hint: not on the default path

    close = difflib.get_close_matches(text.lower(), list(PRESETS) + sorted(EXPRESSION_WORDS), n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    return (f"unknown preset or layer {text!r}{hint} (presets: {', '.join(PRESETS)}; "
            "`costlab list` shows them)")


def parse_input(text: str) -> Shape:
    """'192x28x28' → (192, 28, 28); one to four positive sizes separated by 'x'."""
    parts = text.lower().replace("×", "x").split("x")
    sizes = [parse_size(p.strip()) for p in parts]
    if len(parts) > 4:
        raise CostlabError(f"bad --input {text[:60]!r}: at most 4 sizes (C, H, W, D; the batch is --batch), "
                           f"got {len(parts)}")
    if None in sizes:
        raise CostlabError(f"bad --input {text[:60]!r}: expected positive sizes such as 3x224x224 "
                           f"(ASCII digits, at most {MAX_SIZE_DIGITS} each)")
    return tuple(sizes)  # type: ignore[arg-type]


def parse_options(pairs: Sequence[str]) -> dict[str, str]:
    """['width=0.5', 'num_classes=10'] → {'width': '0.5', 'num_classes': '10'}."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise CostlabError(f"bad option {pair!r}: expected key=value")
        options[key] = value.strip()
    return options


def _top_level_split(text: str) -> list[str]:
    """'a=1, b=(1, 2), c="x,y"' → ['a=1', 'b=(1, 2)', 'c="x,y"']: commas outside brackets and quotes."""
    pieces, depth, quote, start = [], 0, "", 0
    for index, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            pieces.append(text[start:index])
            start = index + 1
    pieces.append(text[start:])
    return [piece for piece in pieces if piece.strip()]


def module_target(text: str, options: Mapping[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """A module target's callable and its options: ``'timm:create_model(model_name=resnet50d)'`` →
    ``('timm:create_model', {**options, 'model_name': 'resnet50d'})``; the options in parentheses
    apply to this target only and win over ``--kwarg``. Any other target is returned unchanged."""
    call = _MODULE_CALL.match(text.strip())
    if call is None or not is_module_target(call.group(1)):
        return text, dict(options or {})
    return call.group(1), {**(options or {}), **parse_options(_top_level_split(call.group(2)))}


def _require_extra(module: str, needed_by: str) -> None:
    """Refuse a target whose module belongs to an extra that is not installed, before torch is imported."""
    message = missing_extra(module, needed_by)
    if message is not None:
        raise TargetError(message)


def analyze_target(request: Request) -> Analysis:
    """Count one request's target by its kind (see :mod:`costlab.app.request`).

    ``request.inputs`` (module targets only): what the forward pass is given beyond one float tensor
    of ``request.input`` shape (:mod:`costlab.core.inputs`); ``request.seq``: tokens per sample for
    ``hf:`` text models."""
    kind, text, input, inputs = request.kind, request.text, request.input, request.inputs
    batch, dtype, name, options = request.batch, request.dtype, request.name, dict(request.options)
    if kind is TargetKind.MODULE:
        from ..torch_bridge.trace import analyze_module

        if input is None and inputs is None:
            raise TargetError("an nn.Module needs an input: input=(C, H, W) or inputs=...")
        return analyze_module(request.target, input, batch=batch, dtype=dtype, name=name, inputs=inputs)
    if kind is TargetKind.HF:
        _require_extra("transformers", text)
        from .hf_source import resolve_hf_config

        resolve_hf_config(text[len(HF_PREFIX):].strip())  # a config that exists, before transformers guesses
        from ..torch_bridge.hf import analyze_hf

        if options:
            raise TargetError(f"options {', '.join(options)} do not apply to {text}")
        if input is not None and inputs is None:
            raise TargetError(f"{text}: give its inputs as --input NAME=DTYPE:SHAPE (or --seq N)")
        return analyze_hf(text[len(HF_PREFIX):].strip(), inputs, batch, request.seq, dtype, name,
                          head=request.head, generate=request.generate)
    if inputs is not None and kind is not TargetKind.CALLABLE:
        raise TargetError(f"typed or several inputs (a dtype, a keyword, a list) apply to module targets, "
                          f"not to {text!r}: give one --input CxHxW")
    if kind is TargetKind.PRESET:
        preset_name, preset_options = preset_call(text)
        inline = parse_options([p for p in preset_options.split(",") if p.strip()])
        return build_preset(preset_name, input, batch, dtype, {**options, **inline}, label=name)
    if kind is TargetKind.FILE:
        return _analyze_file(text, input, batch, dtype, name)
    if kind is TargetKind.CALLABLE:
        callable_text, options = module_target(text, options)
        _require_extra(callable_text.partition(":")[0], callable_text)
        from ..torch_bridge.trace import analyze_callable

        if input is None and inputs is None:
            raise TargetError(f"{text} needs --input CxHxW (or typed inputs: --input NAME=DTYPE:SHAPE)")
        return analyze_callable(callable_text, input, options, batch=batch, dtype=dtype, name=name, inputs=inputs)
    if text.endswith(SPEC_FILE_SUFFIXES) or os.sep in text:
        raise TargetError(f"no spec file {text}")
    head, _ = preset_call(text)
    word = head if head != text and head != "res" else text
    if _BARE_WORD.match(word) and word not in EXPRESSION_WORDS and not _KERNELED.match(word) \
            and word not in ACTIVATION_OPS:
        raise TargetError(_unknown_word(word))
    if options:
        raise TargetError(f"options {', '.join(options)} apply to presets and modules, not to the "
                          f"expression {text!r}")
    if input is None:
        raise TargetError(f"the expression {text!r} needs --input CxHxW")
    return analyze_expression(text, input, batch, dtype, name=name)


def _analyze_file(path: str, input: Shape | None, batch: int, dtype: str,
                  name: str | None) -> Analysis:
    try:
        with open(path, encoding="utf-8") as handle:
            content = handle.read()
    except (OSError, UnicodeDecodeError) as error:
        raise TargetError(f"cannot read spec file {path}: {error}") from None
    label = name or os.path.basename(path)
    if path.endswith(".json"):
        try:
            spec = json.loads(content)
        except json.JSONDecodeError as error:
            raise TargetError(f"spec file {path} is not valid JSON: {error}") from None
        except (ValueError, RecursionError) as error:  # an integer past 4,300 digits, nesting too deep
            raise TargetError(f"spec file {path} cannot be read: {error}") from None
        if not isinstance(spec, dict) or not isinstance(spec.get("expression"), str):
            raise TargetError(f"spec file {path} needs an \"expression\" string")
        if input is None and "input" in spec:
            sizes = spec["input"]
            if not isinstance(sizes, list) or not 1 <= len(sizes) <= 4 or not all(check_size(n) for n in sizes):
                raise TargetError(f"spec file {path}: \"input\" must be a list of one to four positive "
                                  f"integer sizes (not true/false; at most {MAX_SIZE_DIGITS} digits)")
            input = tuple(sizes)
        expression, label = spec["expression"], name or spec.get("name", label)
    else:
        expression = " ".join(line.split("#", 1)[0] for line in content.splitlines())
    if input is None:
        raise TargetError(f"spec file {path} gives no input: pass --input CxHxW")
    return analyze_expression(expression, input, batch, dtype, name=label)
