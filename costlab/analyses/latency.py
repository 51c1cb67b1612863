"""``--latency``: a measured latency and the roofline beside it, as typed results (:class:`Latency`,
:class:`Roofline`) that an analysis and its layers carry. The measuring is the torch bridge's
(costlab.torch_bridge.latency); nothing here imports torch."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Mapping

from ..core.features import Feature

#: A CPU target whose process got less than this share of its threads' time is called out.
CPU_SHARE_WARNING = 0.75


def _present(cls: type, values: Mapping[str, Any], always: frozenset[str]) -> dict[str, Any]:
    """A dataclass's fields as JSON, in their order: those in ``always``, and the others when set."""
    return {f.name: values[f.name] for f in fields(cls) if f.name in always or values[f.name] is not None}


@dataclass(frozen=True)
class Roofline:
    """A roofline point from the machine's measured peaks (JSON ``roofline``): the bound
    max(FLOPs / peak FLOP/s, bytes / peak B/s), its kind, and what was achieved against it.

    A layer's has ``bound`` (compute or memory); a target's is the sum of its layers' bounds, with
    how many of them are compute- and memory-bound and the ``peaks`` it was drawn from."""

    flops: int
    bytes: int
    intensity: float | None  # FLOPs / bytes (None without bytes)
    ridge: float
    compute_ms: float
    memory_ms: float
    predicted_ms: float
    bound: str | None = None
    bandwidth: str | None = None  # which of the peaks' bandwidths bounds it
    achieved_gflops: float | None = None
    achieved_gbps: float | None = None
    fraction: float | None = None  # predicted / measured
    compute_bound_layers: int | None = None
    memory_bound_layers: int | None = None
    peaks: Mapping[str, Any] | None = field(default=None, hash=False)

    _ALWAYS: ClassVar[frozenset[str]] = frozenset(
        ("flops", "bytes", "intensity", "ridge", "compute_ms", "memory_ms", "predicted_ms", "bandwidth"))

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any]) -> "Roofline":
        return cls(**entry)

    def to_dict(self) -> dict[str, Any]:
        entry = _present(type(self), self.__dict__, self._ALWAYS)
        if self.peaks is not None:
            entry["peaks"] = dict(self.peaks)
        return entry


@dataclass(frozen=True)
class Latency(Feature):
    """A measured latency (JSON ``latency_ms``; times in ms): median and IQR over samples taken
    after warm-up, how it was taken, and the roofline beside it (JSON ``roofline``).

    The timing fields are those of ``costlab.torch_bridge.timing.Timing``; a target's adds the
    machine's load when it began, the sum of its layers' medians and the layers not timed alone."""

    median: float
    iqr: float
    q1: float | None = None
    q3: float | None = None
    min: float | None = None
    spread: float | None = None
    noisy: bool = False
    noise_threshold: float | None = None
    samples: int | None = None
    calls_per_sample: int | None = None
    warmup_calls: int | None = None
    device: str = "cpu"
    threads: int | None = None
    timer: str | None = None
    cpu_share: float | None = None
    run_share: float | None = None
    min_run_share: float | None = None
    attempts: int | None = None
    noisy_reason: str | None = None
    device_name: str | None = None
    dtype: str | None = None
    load_1min: float | None = None
    sum_of_layers: float | None = None
    untimed_layers: tuple[str, ...] | None = None
    roofline: Roofline | None = None

    name: ClassVar[str] = "latency"
    _OPTIONAL: ClassVar[frozenset[str]] = frozenset(("load_1min", "sum_of_layers", "untimed_layers"))

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any], roofline: Roofline | None = None) -> "Latency":
        """From a timing's ``to_dict()`` and what a measurement adds to it."""
        values = dict(entry)
        if values.get("untimed_layers") is not None:
            values["untimed_layers"] = tuple(values["untimed_layers"])
        return cls(**values, roofline=roofline)

    def to_dict(self) -> dict[str, Any]:
        """The ``latency_ms`` entry of the JSON contract."""
        always = frozenset(f.name for f in fields(self)) - self._OPTIONAL - {"roofline"}
        entry = _present(type(self), self.__dict__, always)
        entry.pop("roofline", None)
        if self.untimed_layers is not None:
            entry["untimed_layers"] = list(self.untimed_layers)
        return entry

    @property
    def starved(self) -> bool:
        """Noisy because other work held the CPU in every attempt."""
        return self.noisy and "starved" in (self.noisy_reason or "")

    # --- the feature ---

    def json_fields(self, unit: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"latency_ms": self.to_dict()}
        if self.roofline is not None:
            entry["roofline"] = self.roofline.to_dict()
        return entry
