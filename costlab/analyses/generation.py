"""What a language model costs to generate with: the features of ``hf:`` targets.

``--generate N`` prices the N new tokens of transformers' ``generate(max_new_tokens=N)`` on a prompt
of S tokens (``--seq``), call by call, as ``generate`` makes them:

- **prefill**: one forward call on the S prompt tokens, filling the cache; it yields the first new
  token (its logits only at the last position where the model takes ``logits_to_keep``, as
  ``generate`` asks);
- **decode**: N − 1 forward calls of one token each; step k (1 … N−1) attends over S + k − 1
  cached positions and its own. ``decode.macs`` is the sum over the steps.

After the last step the cache holds S + N − 1 positions (fewer on sliding-window layers, a fixed
state on state-space layers): ``kv_cache_bytes`` are the bytes of its tensors. ``weights_bytes``
are the parameters' bytes at the dtype. Per-token parameters: ``params`` in all, ``active_params``
those one token meets (a mixture of experts runs top-k of E experts: the others' weights are not
active).

:class:`BuiltModel` says which transformers class an ``hf:`` target built, and why (its head).
No torch, no renderer: costlab.render.features.generation draws them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..core.features import Feature, in_unit


@dataclass(frozen=True)
class BuiltModel(Feature):
    """The transformers class an ``hf:`` target built and the head it carries: a --head KIND,
    'architectures' (the class the config names) or the default chosen for the config."""

    name: ClassVar[str] = "model"
    cls: str
    head: str

    def json_fields(self, unit: str) -> dict[str, Any]:
        return {"model_class": self.cls, "head": self.head}


@dataclass(frozen=True)
class Step:
    """One forward call of a generation: its tokens, the positions cached before it, its counts."""

    tokens: int            # new positions this call computes (S for the prefill, 1 for a decode step)
    cached: int            # positions in the cache before the call
    macs: int
    ops: int
    complete: bool = True  # False when an op that multiplies was not priced: macs is a lower bound

    def to_dict(self, unit: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"tokens": self.tokens, "cached_positions": self.cached,
                                 "macs": self.macs, "ops": self.ops, "complete": self.complete}
        if unit == "flops":
            entry["flops"] = in_unit(self.macs, unit)
        return entry


@dataclass(frozen=True)
class Generation(Feature):
    """The cost of ``generate(max_new_tokens=new_tokens)`` on ``prompt`` tokens per sample (the
    feature of ``--generate N``; see the module docstring)."""

    name: ClassVar[str] = "generation"
    prompt: int
    new_tokens: int
    batch: int
    dtype: str
    prefill: Step
    steps: tuple[Step, ...]            # the decode steps, in order (N − 1 of them)
    kv_cache_bytes: int                # the cache's tensors after the last call
    weights_bytes: int
    params: int
    active_params: int
    #: the cache after the last call, per kind of layer: [(kind, layers, bytes)]
    cache_layers: tuple[tuple[str, int, int], ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def decode_macs(self) -> int:
        return sum(step.macs for step in self.steps)

    @property
    def macs(self) -> int:
        """Prefill and every decode step."""
        return self.prefill.macs + self.decode_macs

    @property
    def complete(self) -> bool:
        return self.prefill.complete and all(step.complete for step in self.steps)

    def to_dict(self, unit: str = "macs") -> dict[str, Any]:
        decode: dict[str, Any] = {"steps": len(self.steps), "macs": self.decode_macs}
        if self.steps:
            decode["first"] = self.steps[0].to_dict(unit)
            decode["last"] = self.steps[-1].to_dict(unit)
            decode["per_step_macs"] = [step.macs for step in self.steps]
        entry: dict[str, Any] = {
            "prompt_tokens": self.prompt, "new_tokens": self.new_tokens, "batch": self.batch, "dtype": self.dtype,
            "prefill": self.prefill.to_dict(unit), "decode": decode, "macs": self.macs,
            "complete": self.complete, "kv_cache_bytes": self.kv_cache_bytes,
            "kv_cache": [{"kind": kind, "layers": layers, "bytes": size} for kind, layers, size in self.cache_layers],
            "weights_bytes": self.weights_bytes, "params": self.params, "active_params": self.active_params,
        }
        if unit == "flops":
            entry["flops"] = in_unit(self.macs, unit)
            decode["flops"] = in_unit(self.decode_macs, unit)
        if self.notes:
            entry["notes"] = list(self.notes)
        return entry

    def json_fields(self, unit: str) -> dict[str, Any]:
        return {"generation": self.to_dict(unit)}
