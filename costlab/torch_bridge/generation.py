"""``--generate N``: the forward calls transformers' ``generate(max_new_tokens=N)`` makes, priced.

The model (built on the meta device: no weights, no arithmetic) is called as ``generate`` calls it
(:mod:`costlab.analyses.generation` states the phases): the prefill on the S prompt tokens with
``use_cache=True`` (and ``logits_to_keep=1`` where the forward takes it, as ``generate`` sets it),
then one-token decode calls given the cache the previous call returned. Each call is priced by the
engine's meta run (:func:`costlab.torch_bridge.trace.trace_module`), which copies the cache it is
given and returns the grown copy.

**The N − 1 decode steps without N − 1 runs.** A decode step's count f(L), L the cached positions,
is piecewise affine in L: attention over L + 1 positions grows by a fixed amount per position, a
sliding-window layer stops growing at its window, a state-space layer never grows. So f is priced
at the first step, the one after it and the last; where f(last) and f at the midpoint lie on the
line through the first two, the steps between are that line (an exact integer series); where not,
the range is split at the midpoint and each half priced the same way, down to single steps. A
cache of L positions for a step priced out of order is the one the model builds on a prompt of L
tokens (one plain meta forward, no pricing).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import torch
from torch import nn

from ..core.analysis import Analysis
from ..core.errors import TargetError
from ..analyses.generation import Generation, Step
from ..core.inputs import Inputs, TensorSpec
from ..core.graph import DTYPE_BYTES
from .recorder import one_line
from .run import MetaShapes
from .trace import _object_tensors, trace_module

#: Config fields that give the number of routed experts and how many each token meets.
_EXPERT_COUNTS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")
_EXPERTS_PER_TOKEN = ("num_experts_per_tok", "moe_topk", "num_selected_experts", "top_k")


def _cache_argument(model: nn.Module) -> str:
    """The forward's name for the cache: ``cache`` (transformers ≥ 5.2x) or ``past_key_values``."""
    params = inspect.signature(model.forward).parameters
    for name in ("cache", "past_key_values", "cache_params"):
        if name in params:
            return name
    raise TargetError(f"{type(model).__name__}: its forward takes no cache (cache, past_key_values); "
                      "--generate needs a model that generates")


def cache_in(output: Any) -> Any:
    """The cache object a forward call returned (a ModelOutput's value holding tensors, not a tensor)."""
    values = output.values() if isinstance(output, dict) else (output if isinstance(output, (list, tuple)) else ())
    for value in values:
        if hasattr(value, "get_seq_length") or (not isinstance(value, (torch.Tensor, list, tuple, dict))
                                                and value is not None and _object_tensors(value)):
            return value
    return None


def cache_bytes(cache: Any) -> tuple[int, tuple[tuple[str, int, int], ...]]:
    """The bytes of every tensor the cache holds (each once), and per kind of layer (its class
    name): (kind, layers, bytes)."""
    total = sum(t.numel() * t.element_size() for t in _object_tensors(cache))
    kinds: dict[str, list[int]] = {}
    for layer in getattr(cache, "layers", None) or ():
        size = sum(t.numel() * t.element_size() for t in _object_tensors(layer))
        entry = kinds.setdefault(type(layer).__name__, [0, 0])
        entry[0] += 1
        entry[1] += size
    return total, tuple((kind, layers, size) for kind, (layers, size) in kinds.items())


def _config_int(config: Any, names: tuple[str, ...]) -> int | None:
    text = getattr(config, "text_config", None) or config
    for name in names:
        value = getattr(text, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def active_params(model: nn.Module, config: Any) -> tuple[int, int]:
    """(params, active params per token): each parameter once; a mixture of E routed experts of
    which a token meets k leaves (E − k)/E of the experts' parameters inactive — the tensors of a
    module whose class is ``…Experts`` with E in front, or an ``experts`` ModuleList of E modules.
    Shared experts and the router are active."""
    unique = {id(p): p for p in model.parameters()}
    total = sum(p.numel() for p in unique.values())
    experts, top_k = _config_int(config, _EXPERT_COUNTS), _config_int(config, _EXPERTS_PER_TOKEN)
    if experts is None or top_k is None or top_k >= experts:
        return total, total
    inactive, seen = 0, set()
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and name.rsplit(".", 1)[-1] == "experts" and len(module) == experts:
            routed = [p for p in module.parameters() if id(p) not in seen]
        elif type(module).__name__.endswith("Experts"):
            routed = [p for p in module.parameters(recurse=False) if p.dim() and p.shape[0] == experts
                      and id(p) not in seen]
        else:
            continue
        seen.update(id(p) for p in routed)
        inactive += sum(p.numel() for p in routed) // experts * (experts - top_k)
    return total, total - inactive


def _step_of(analysis: Analysis, tokens: int, cached: int) -> Step:
    return Step(tokens, cached, analysis.macs, analysis.ops, complete=analysis.complete)


def price_generation(model: nn.Module, config: Any, batch: int, prompt: int, new_tokens: int, dtype: str,
                     label: str) -> Generation:
    """The cost of ``generate(max_new_tokens=new_tokens)`` on ``prompt`` tokens (see the module
    docstring); ``model`` lives on the meta device in ``dtype``."""
    if new_tokens < 1:
        raise TargetError(f"--generate takes a positive number of new tokens, got {new_tokens}")
    can_generate = getattr(model, "can_generate", None)
    if not callable(can_generate) or not can_generate():
        raise TargetError(f"{label}: {type(model).__name__} does not generate (give --head causal-lm)")
    cache_name = _cache_argument(model)
    common: dict[str, Any] = {"use_cache": True}
    if "logits_to_keep" in inspect.signature(model.forward).parameters:  # generate's own rule
        common["logits_to_keep"] = 1
    encoder_decoder = bool(getattr(config, "is_encoder_decoder", False))
    tokens_name = "decoder_input_ids" if encoder_decoder else "input_ids"
    encoded: tuple[Any, ...] = ()
    encoder_macs = encoder_ops = 0
    encoder_complete = True
    if encoder_decoder:  # generate runs the encoder once, then the decoder from a start token
        encoder_macs, encoder_ops, encoder_complete, encoded = _encode(model, batch, prompt, dtype, label)
        common["encoder_outputs"] = encoded

    def traced(tokens: int, cache: Any) -> tuple[Analysis, Any]:
        kwargs = {tokens_name: TensorSpec((batch, tokens), "int64"), **common}
        if cache is not None:
            kwargs[cache_name] = cache
        trace = trace_module(model, dtype=dtype, name=label, inputs=Inputs((), kwargs), method="meta")
        grown = cache_in(trace.output)
        if grown is None:
            raise TargetError(f"{label}: {type(model).__name__} returns no cache with use_cache=True")
        return trace.analysis, grown

    def cache_at(positions: int) -> Any:
        """The cache the model builds on ``positions`` tokens (a plain meta forward)."""
        ids = torch.zeros((batch, positions), dtype=torch.int64, device="meta")
        try:
            with torch.no_grad(), MetaShapes():
                return cache_in(model(**{tokens_name: ids}, **common))
        except Exception as error:  # noqa: BLE001 - the model failing on meta
            raise TargetError(f"{label}: cannot build its cache of {positions} positions on the meta device "
                              f"({one_line(error)})") from None

    # the first call: the prompt (an encoder–decoder's decoder: its start token, after the encoder)
    first_tokens = 1 if encoder_decoder else prompt
    prefill_analysis, cache = traced(first_tokens, None)
    first = _step_of(prefill_analysis, first_tokens, 0)
    prefill = Step(prompt, 0, first.macs + encoder_macs, first.ops + encoder_ops,
                   first.complete and encoder_complete)
    steps: list[Step] = []
    final_cache = cache
    if new_tokens > 1:
        first_at, last_at = first_tokens, first_tokens + new_tokens - 2  # cached positions, first and last step
        known: dict[int, Step] = {}

        def step(cached: int) -> Step:
            nonlocal final_cache
            if cached not in known:
                analysis, grown = traced(1, cache if cached == first_tokens else cache_at(cached))
                known[cached] = _step_of(analysis, 1, cached)
                if cached == last_at:
                    final_cache = grown
            return known[cached]

        step(last_at)
        steps = _series(step, first_at, last_at)
    kv_bytes, kinds = cache_bytes(final_cache)
    params, active = active_params(model, config)
    return Generation(prompt=prompt, new_tokens=new_tokens, batch=batch, dtype=dtype, prefill=prefill,
                      steps=tuple(steps), kv_cache_bytes=kv_bytes, weights_bytes=params * DTYPE_BYTES[dtype],
                      params=params, active_params=active, cache_layers=kinds)


def _encode(model: nn.Module, batch: int, prompt: int, dtype: str, label: str) -> tuple[int, int, bool, tuple]:
    """An encoder–decoder's encoder on the prompt, as generate runs it before the first decoder
    call: its MACs, ops, completeness, and its output (meta tensors) for the decoder calls."""
    encoder = model.get_encoder()
    main = getattr(model, "main_input_name", "input_ids")
    if main != "input_ids":
        raise TargetError(f"{label}: --generate prices text prompts (input_ids); {type(model).__name__}'s "
                          f"encoder takes {main}")
    inputs = Inputs((), {"input_ids": TensorSpec((batch, prompt), "int64")})
    analysis = trace_module(encoder, dtype=dtype, name=f"{label} encoder", inputs=inputs, method="meta").analysis
    ids = torch.zeros((batch, prompt), dtype=torch.int64, device="meta")
    with torch.no_grad(), MetaShapes():
        hidden = encoder(input_ids=ids)[0]
    return analysis.macs, analysis.ops, analysis.complete, (hidden,)


def _series(step: Callable[[int], Step], lo: int, hi: int) -> list[Step]:
    """Every step from ``lo`` to ``hi`` cached positions: priced at the ends, the second and the
    midpoint; where those lie on one line, the rest follows it, else each half is priced so."""
    if hi - lo <= 3:
        return [step(cached) for cached in range(lo, hi + 1)]
    first, second, last = step(lo), step(lo + 1), step(hi)
    mid = (lo + hi) // 2
    middle = step(mid)
    slope = (second.macs - first.macs, second.ops - first.ops)

    def on_line(s: Step, at: int) -> bool:
        return (s.macs == first.macs + slope[0] * (at - lo) and s.ops == first.ops + slope[1] * (at - lo)
                and s.complete == first.complete)

    if on_line(last, hi) and on_line(middle, mid):
        return [Step(1, at, first.macs + slope[0] * (at - lo), first.ops + slope[1] * (at - lo), first.complete)
                for at in range(lo, hi + 1)]
    return _series(step, lo, mid) + _series(step, mid + 1, hi)
