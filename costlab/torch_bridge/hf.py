"""``hf:PATH`` targets: a Hugging Face transformers model built from its config, without weights.

``PATH`` is a directory holding ``config.json``, a ``config.json`` file, or a hub name already in
the local cache (nothing is downloaded here). The model is ``AutoModel.from_config(config)`` built
on the meta device (rebuilt on the CPU, randomly initialised, only if a data-dependent op needs a
real run). What it is fed follows its architecture, unless ``--input`` says otherwise:

- ``input_ids``: ``--seq`` tokens per sample (default 128), int64 — text models;
- ``pixel_values``: ``num_channels × image_size × image_size`` from the config, float — vision;
- ``input_features``: ``num_mel_bins × 2·max_source_positions`` frames, float — speech (Whisper);
- ``decoder_input_ids``: ``--seq`` tokens, int64 — encoder-decoders (T5, Whisper).

A model whose forward takes both ``input_ids`` and ``pixel_values`` (CLIP) gets both.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from ..core.analysis import Analysis
from ..analyses.generation import BuiltModel
from ..core.tools import HEADS
from ..core.errors import TargetError
from ..core.inputs import Inputs, TensorSpec
from .recorder import one_line
from .trace import trace_module

DEFAULT_SEQ = 128


def _transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise TargetError("hf: targets need transformers (pip install costlab[hf])") from None
    transformers.logging.set_verbosity_error()
    return transformers


def load_config(path: str) -> Any:
    """The transformers config at ``path`` (a directory, a config.json, or a cached hub name)."""
    transformers = _transformers()
    source = path
    try:
        if os.path.isfile(path):
            import json

            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
            kind = data.get("model_type")
            if not kind:
                raise TargetError(f"hf:{path}: the config names no model_type")
            return transformers.AutoConfig.for_model(**data)
        return transformers.AutoConfig.from_pretrained(source, local_files_only=True)
    except TargetError:
        raise
    except Exception as error:  # noqa: BLE001 - a missing path, a bad config, an unknown model type
        raise TargetError(f"hf:{path}: cannot read its config ({one_line(error)})") from None


#: The heads tried, in order, for a config that names no architecture (``auto``).
_DEFAULT_HEADS = {True: ("seq2seq-lm", "speech-seq2seq", "none"), False: ("causal-lm", "none")}


def _head_class(transformers: Any, config: Any, head: str) -> Any:
    """The model class ``head`` builds for ``config``, or None where that head has none for its type."""
    auto = getattr(transformers, HEADS[head])
    mapping = auto._model_mapping
    try:
        return mapping[type(config)]
    except (KeyError, ValueError):
        return None


def model_class(config: Any, head: str | None = None) -> tuple[Any, str]:
    """The class ``hf:`` builds and the head it carries: with ``head`` (one of HEADS) that head's
    class; else the class the config's ``architectures`` names, else — for a config that names
    none, as one saved from ``GPT2Config()`` — the model users run: the sequence-to-sequence LM of
    an encoder–decoder, the causal LM of a type that has one, else the bare model."""
    transformers = _transformers()
    kind = type(config).__name__
    if head is not None:
        if head not in HEADS:
            raise TargetError(f"unknown --head {head!r} (one of {', '.join(HEADS)})")
        found = _head_class(transformers, config, head)
        if found is None:
            raise TargetError(f"{kind}: transformers has no {head} model for it "
                              f"(--head none builds the bare model)")
        return found, head
    for name in getattr(config, "architectures", None) or ():
        named = getattr(transformers, name, None)
        if named is not None:
            return named, "architectures"
    for candidate in _DEFAULT_HEADS[bool(getattr(config, "is_encoder_decoder", False))]:
        found = _head_class(transformers, config, candidate)
        if found is not None:
            return found, candidate
    raise TargetError(f"transformers builds no model for {kind}")


def build_model(config: Any, device: str, head: str | None = None) -> nn.Module:
    """The class of :func:`model_class` built from ``config`` on ``device`` ('meta': no weights
    allocated), in eval mode."""
    cls, _ = model_class(config, head)
    try:
        with torch.device(device):
            model = cls._from_config(config)
    except Exception as error:  # noqa: BLE001 - transformers refusing the config
        raise TargetError(f"cannot build {cls.__name__} from {type(config).__name__}: {one_line(error)}") from None
    return model.eval()


def _setting(config: Any, name: str, default: Any = None) -> Any:
    """A config value, looked up in the config and then in its vision / audio sub-configs."""
    for holder in (config, getattr(config, "vision_config", None), getattr(config, "audio_config", None)):
        if holder is not None and getattr(holder, name, None) is not None:
            return getattr(holder, name)
    return default


def default_inputs(model: nn.Module, config: Any, batch: int, seq: int) -> Inputs:
    """What the architecture takes (see the module docstring), as keyword inputs."""
    params = inspect.signature(model.forward).parameters
    main = getattr(model, "main_input_name", "input_ids")
    kwargs: dict[str, Any] = {}
    if main == "input_ids" or ("input_ids" in params and "pixel_values" in params):
        kwargs["input_ids"] = TensorSpec((batch, seq), "int64")
    if main == "pixel_values" or ("pixel_values" in params and "input_ids" in params):
        size = _setting(config, "image_size", 224)
        height, width = (size, size) if isinstance(size, int) else tuple(size)
        kwargs["pixel_values"] = TensorSpec((batch, _setting(config, "num_channels", 3), height, width))
    if main == "input_features":
        frames = 2 * _setting(config, "max_source_positions", 1500)
        kwargs["input_features"] = TensorSpec((batch, _setting(config, "num_mel_bins", 80), frames))
    if getattr(config, "is_encoder_decoder", False) and "decoder_input_ids" in params:
        kwargs["decoder_input_ids"] = TensorSpec((batch, seq), "int64")
    if not kwargs:
        raise TargetError(f"{type(model).__name__}: costlab does not know what its forward takes "
                          f"(main input {main!r}); give it with --input NAME=DTYPE:SHAPE")
    return Inputs((), kwargs)


def positions(config: Any) -> dict[str, tuple[str, int]]:
    """The longest token input each sequence input takes, and the config field that says so:
    ``input_ids`` the (text) model's position embeddings (max_position_embeddings, n_positions),
    ``decoder_input_ids`` the decoder's (max_target_positions, else the same). A model with
    relative positions (T5) has none."""
    text = getattr(config, "text_config", None) or config
    limits: dict[str, tuple[str, int]] = {}
    for field in ("max_position_embeddings", "n_positions"):
        value = getattr(text, field, None)
        if isinstance(value, int) and value > 0:
            limits["input_ids"] = limits["decoder_input_ids"] = (field, value)
            break
    value = getattr(config, "max_target_positions", None)
    if isinstance(value, int) and value > 0:
        limits["decoder_input_ids"] = ("max_target_positions", value)
    return limits


def module_rows(model: nn.Module) -> tuple[str, ...]:
    """The modules a table's rows follow: each item of a ModuleList (a decoder layer, an encoder
    block), and each other child of a module that holds such a list (embeddings, final norm, head)."""
    holders = {""}
    for path, module in model.named_modules():
        if isinstance(module, nn.ModuleList):
            parts = path.split(".")
            holders.update(".".join(parts[:i]) for i in range(len(parts) + 1))
    rows = []
    for path, module in model.named_modules():
        if not path:
            continue
        parent = path.rpartition(".")[0]
        if parent in holders and (path not in holders or isinstance(model.get_submodule(parent), nn.ModuleList)):
            rows.append(path)
    return tuple(rows)


def analyze_hf(path: str, inputs: Inputs | None = None, batch: int = 1, seq: int | None = None,
               dtype: str = "float32", name: str | None = None, head: str | None = None,
               generate: int | None = None) -> Analysis:
    """The cost of the transformers model that the config at ``path`` describes, head included
    (:func:`model_class`; ``head`` chooses). ``generate``: the prefill and decode calls of
    ``generate(max_new_tokens=generate)`` on ``seq`` prompt tokens (:mod:`.generation`)."""
    config = load_config(path)
    cls, why = model_class(config, head)
    model = build_model(config, "meta", head)
    limits = positions(config)
    if seq is None:  # the default, within the positions the model has (CLIP's text tower: 77, Whisper's decoder)
        seq = min([DEFAULT_SEQ, *(limit for _, limit in limits.values())])
    given = inputs if inputs is not None else default_inputs(model, config, batch, seq)
    for key, (field, limit) in limits.items():  # a longer sequence would index past the position embeddings
        shape = tuple(getattr(given.kwargs.get(key), "shape", ()))  # a TensorSpec or a tensor
        if shape and shape[-1] > limit:
            raise TargetError(f"hf:{path}: {key} of {shape[-1]} tokens, but the model has {limit} positions "
                              f"({field}); give --seq {limit} or fewer")
    label = name or f"hf:{path}"
    analysis = trace_module(model, None, dtype=dtype, name=label, inputs=given,
                            rebuild=lambda: build_model(config, "cpu", head)).analysis
    analysis = replace(analysis, rows_at=module_rows(model)).with_feature(BuiltModel(cls.__name__, why))
    if generate is None:
        return analysis
    if inputs is not None:
        raise TargetError(f"{label}: --generate takes its prompt from --seq, not --input")
    if "input_ids" in limits and seq + generate - 1 > limits["input_ids"][1]:
        field, limit = limits["input_ids"]
        raise TargetError(f"{label}: {seq} prompt tokens and {generate} new ones need {seq + generate - 1} "
                          f"positions, but the model has {limit} ({field})")
    from .generation import price_generation
    from .timing import torch_dtype

    return analysis.with_feature(price_generation(model.to(torch_dtype(dtype)), config, batch, seq, generate,
                                                  dtype, label))
