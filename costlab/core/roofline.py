"""The roofline's arithmetic: a layer's bound against a machine's peaks (no measuring, no torch).

A layer doing ``F`` floating-point operations on ``B`` bytes can take no less than

    bound = max(F / peak_flops, B / peak_bandwidth)

seconds: the time of its arithmetic at the machine's peak rate, or the time to move its
bytes at the peak bandwidth, whichever is longer. It is *compute-bound* when the first term
is the larger, *memory-bound* otherwise; equivalently, when its arithmetic intensity F / B
is above or below the ridge point peak_flops / peak_bandwidth. Here F = 2 × MACs (FLOPs, the
design's convention) and B is the layer's ``bytes`` (input, weights and output, each once).
A layer whose bytes fit in the last-level cache is bounded by the cache's bandwidth instead of
DRAM's. The peaks are measured by :mod:`costlab.torch_bridge.roofline`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from .errors import CostlabError


@dataclass(frozen=True)
class Peaks:
    """A machine's measured ceilings: peak arithmetic (GFLOP/s) and peak bandwidth (GB/s, 10⁹ B/s)."""

    device: str          # cpu or cuda
    device_name: str     # CPU model or card name
    threads: int         # CPU threads the peaks were measured with
    dtype: str
    gflops: float
    gbps: float
    host: str = ""
    matmul_size: int = 0
    copy_bytes: int = 0
    torch_version: str = ""
    measured_at: str = ""
    notes: str = ""
    #: GB/s of a copy whose buffers fit in the last-level cache, and that cache's size in bytes
    #: (0: not measured; every layer is bounded by gbps)
    cache_gbps: float = 0.0
    cache_bytes: int = 0
    #: conditions: the lowest run share of the calibration's timings (None: not known), the load
    #: average when it began, and whether it was starved in every attempt (then never cached)
    run_share: float | None = None
    load_1min: float | None = None
    contended: bool = False

    def __post_init__(self) -> None:
        if not (self.gflops > 0 and self.gbps > 0):
            raise CostlabError(f"peaks must be positive, got {self.gflops} GFLOP/s and {self.gbps} GB/s")

    @property
    def ridge(self) -> float:
        """Arithmetic intensity (FLOP/byte) where the two ceilings meet: peak FLOP/s ÷ peak B/s."""
        return self.gflops / self.gbps

    @property
    def key(self) -> str:
        return machine_key(self.host, self.device, self.device_name, self.threads, self.dtype)

    def to_dict(self) -> dict[str, Any]:
        entry = asdict(self)
        entry["ridge"] = self.ridge
        return entry

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any]) -> "Peaks":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in entry.items() if k in names})


@dataclass(frozen=True)
class Bound:
    """A layer's point on the roofline: its FLOPs and bytes against given peaks (times in seconds)."""

    flops: int
    bytes: int
    compute_s: float   # flops / peak FLOP/s
    memory_s: float    # bytes / peak B/s

    @property
    def seconds(self) -> float:
        """The bound itself: max(compute_s, memory_s), the predicted latency."""
        return max(self.compute_s, self.memory_s)

    @property
    def kind(self) -> str:
        """'compute' when the arithmetic takes longer at peak than moving the bytes, else 'memory'."""
        return "compute" if self.compute_s > self.memory_s else "memory"

    @property
    def intensity(self) -> float | None:
        """FLOPs per byte (None for a layer that moves no bytes)."""
        return self.flops / self.bytes if self.bytes else None


def bandwidth_for(bytes_moved: int, peaks: Peaks) -> tuple[str, float]:
    """('cache', cache GB/s) when ``bytes_moved`` fits in the last-level cache measured at calibration,
    else ('dram', GB/s)."""
    if peaks.cache_gbps > 0 and bytes_moved <= peaks.cache_bytes:
        return "cache", peaks.cache_gbps
    return "dram", peaks.gbps


def bound(flops: int, bytes_moved: int, peaks: Peaks) -> Bound:
    """bound = max(flops / (gflops·10⁹), bytes / (GB/s·10⁹)), GB/s the cache's when the bytes fit in it."""
    if flops < 0 or bytes_moved < 0:
        raise CostlabError("FLOPs and bytes cannot be negative")
    return Bound(flops, bytes_moved, flops / (peaks.gflops * 1e9),
                 bytes_moved / (bandwidth_for(bytes_moved, peaks)[1] * 1e9))


def roofline_fields(flops: int, bytes_moved: int, peaks: Peaks, measured_ms: float | None) -> dict[str, Any]:
    """The ``roofline`` entry of a layer in JSON: the bound, its kind, and what was achieved.

    ``achieved_gflops`` = flops / measured time; ``fraction`` = predicted / measured (1 means the
    layer ran at its roofline; the rest of the time is what the bound does not explain).
    """
    point = bound(flops, bytes_moved, peaks)
    entry: dict[str, Any] = {
        "flops": flops, "bytes": bytes_moved, "intensity": point.intensity, "ridge": peaks.ridge,
        "compute_ms": point.compute_s * 1e3, "memory_ms": point.memory_s * 1e3,
        "predicted_ms": point.seconds * 1e3, "bound": point.kind,
        "bandwidth": bandwidth_for(bytes_moved, peaks)[0],
    }
    if measured_ms is not None and measured_ms > 0:
        entry["achieved_gflops"] = flops / (measured_ms * 1e-3) / 1e9
        entry["achieved_gbps"] = bytes_moved / (measured_ms * 1e-3) / 1e9
        entry["fraction"] = point.seconds * 1e3 / measured_ms
    return entry


def machine_key(host: str, device: str, device_name: str, threads: int, dtype: str) -> str:
    """'host|cpu|Intel(R) Xeon(R) Processor|threads=2|float32' (threads are 0 on CUDA)."""
    return f"{host}|{device}|{device_name}|threads={threads}|{dtype}"
