"""Timing one callable with care: warm-up, adaptive repetition, median and interquartile range.

The loop follows ``torch.utils.benchmark.Timer.adaptive_autorange``: after a warm-up, calls
are timed in blocks (``calls_per_sample`` calls, so that a block lasts at least
``block_s`` and the clock's own cost vanishes); each block gives one sample, the time per
call. Sampling stops once there are ``min_samples`` samples over at least ``min_time_s``
and their spread — interquartile range / median — is at most ``threshold``, or when
``max_time_s`` is spent. A measurement that stopped on the time limit with its spread
still above the threshold is *noisy*.

On CUDA a block is timed with CUDA events recorded on the stream around the calls, so what
is timed is the kernels' execution, not their launch; on the CPU with ``time.perf_counter``.
"""

from __future__ import annotations

import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch

from ..errors import CostlabError

#: A measurement whose interquartile range exceeds this fraction of its median is noisy.
DEFAULT_NOISE_THRESHOLD = 0.10
#: The library refuses more threads than this many per CPU (torch crashes on absurd counts).
MAX_THREADS_PER_CPU = 4


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default): position q·(n − 1)."""
    if not sorted_values:
        raise ValueError("quantile of no values")
    position = q * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


@dataclass(frozen=True)
class Timing:
    """Samples of the time per call (seconds) and how they were taken."""

    samples_s: tuple[float, ...]
    calls_per_sample: int
    warmup_calls: int
    device: str
    threads: int
    timer: str
    noise_threshold: float = DEFAULT_NOISE_THRESHOLD
    #: CPU only: the process's CPU time while sampling ÷ (wall time × threads). Near 1 when the
    #: threads ran all along; far below when other work on the machine took the cores (or when
    #: the op used fewer threads than it was given).
    cpu_share: float | None = None

    def _sorted(self) -> list[float]:
        return sorted(self.samples_s)

    @property
    def median_s(self) -> float:
        return quantile(self._sorted(), 0.5)

    @property
    def q1_s(self) -> float:
        return quantile(self._sorted(), 0.25)

    @property
    def q3_s(self) -> float:
        return quantile(self._sorted(), 0.75)

    @property
    def iqr_s(self) -> float:
        return self.q3_s - self.q1_s

    @property
    def spread(self) -> float:
        """IQR / median (0 for a single sample)."""
        median = self.median_s
        return self.iqr_s / median if median > 0 else 0.0

    @property
    def noisy(self) -> bool:
        """True when the spread is above the threshold (the time limit came before it settled)."""
        return self.spread > self.noise_threshold

    def to_dict(self) -> dict[str, Any]:
        """The ``latency_ms`` entry of the JSON contract (times in milliseconds)."""
        return {
            "median": self.median_s * 1e3, "iqr": self.iqr_s * 1e3, "q1": self.q1_s * 1e3,
            "q3": self.q3_s * 1e3, "min": min(self.samples_s) * 1e3, "spread": self.spread,
            "noisy": self.noisy, "noise_threshold": self.noise_threshold,
            "samples": len(self.samples_s), "calls_per_sample": self.calls_per_sample,
            "warmup_calls": self.warmup_calls, "device": self.device, "threads": self.threads,
            "timer": self.timer, "cpu_share": self.cpu_share,
        }


@dataclass(frozen=True)
class TimingSettings:
    """How long and how hard to measure one callable (seconds)."""

    threshold: float = DEFAULT_NOISE_THRESHOLD
    min_samples: int = 7
    min_time_s: float = 0.1
    max_time_s: float = 1.0
    warmup_s: float = 0.05
    min_warmup_calls: int = 2
    block_s: float = 0.002
    max_calls_per_sample: int = 10_000

    def __post_init__(self) -> None:
        if not 0 < self.threshold:
            raise CostlabError(f"the noise threshold must be positive, got {self.threshold}")
        if self.min_samples < 1 or self.min_time_s < 0 or self.max_time_s <= 0:
            raise CostlabError("timing settings need min_samples ≥ 1 and a positive time limit")


def adaptive_samples(sample: Callable[[int], float], calls_per_sample: int,
                     settings: TimingSettings) -> list[float]:
    """Take samples (time per call of a block of ``calls_per_sample`` calls) until they settle.

    ``sample(n)`` runs ``n`` calls and returns their total time in seconds. Stops when there
    are ``min_samples`` samples covering ``min_time_s`` and IQR/median ≤ ``threshold``, or
    once ``max_time_s`` of sampled time has passed.
    """
    samples: list[float] = []
    spent = 0.0
    while True:
        block = sample(calls_per_sample)
        spent += block
        samples.append(block / calls_per_sample)
        if len(samples) >= settings.min_samples and spent >= settings.min_time_s:
            ordered = sorted(samples)
            median = quantile(ordered, 0.5)
            spread = (quantile(ordered, 0.75) - quantile(ordered, 0.25)) / median if median > 0 else 0.0
            if spread <= settings.threshold:
                return samples
        if spent >= settings.max_time_s and len(samples) >= min(settings.min_samples, 3):
            return samples


@contextmanager
def fixed_threads(threads: int | None) -> Iterator[int]:
    """Run with ``torch.set_num_threads(threads)`` (None: as now); the previous count is restored."""
    previous = torch.get_num_threads()
    if threads is not None:
        if threads < 1:
            raise CostlabError(f"--threads must be at least 1, got {threads}")
        if threads > MAX_THREADS_PER_CPU * (os.cpu_count() or 1):
            raise CostlabError(f"--threads {threads}: more than {MAX_THREADS_PER_CPU} per CPU of this machine "
                               f"({os.cpu_count()} CPUs)")
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)


def check_device(device: str, option: str = "--latency") -> torch.device:
    """'cpu', 'cuda' or 'cuda:N' as a torch.device; a CostlabError (naming ``option``, the option
    the user typed) when it cannot be used here."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise CostlabError(f"unknown latency device {device!r}: use cpu or cuda") from None
    if parsed.type not in ("cpu", "cuda"):
        raise CostlabError(f"unknown latency device {device!r}: use cpu or cuda")
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            built = "built without CUDA" if torch.version.cuda is None else "no GPU visible"
            raise CostlabError(f"{option} cuda: no CUDA device here (torch {torch.__version__}, {built})")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise CostlabError(f"{option} {device}: only {torch.cuda.device_count()} CUDA device(s)")
        if parsed.index is None:
            parsed = torch.device("cuda", torch.cuda.current_device())
    return parsed


def device_name(device: torch.device) -> str:
    """The CPU's model name or the CUDA card's name."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_model()


def cpu_model() -> str:
    """'Intel(R) Xeon(R) Processor' from /proc/cpuinfo, else platform's processor string."""
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _block_timer(fn: Callable[[], Any], device: torch.device) -> tuple[Callable[[int], float], str]:
    if device.type == "cuda":
        def sample(calls: int) -> float:
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(calls):
                fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3
        return sample, "cuda events"

    def sample_cpu(calls: int) -> float:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        return time.perf_counter() - start
    return sample_cpu, "perf_counter"


def time_callable(fn: Callable[[], Any], device: torch.device, threads: int,
                  settings: TimingSettings | None = None) -> Timing:
    """Warm ``fn`` up, pick a block size, take adaptive samples; in inference mode.

    The caller fixes the thread count (:func:`fixed_threads`); ``threads`` is what is reported.
    """
    settings = settings or TimingSettings()
    sample, timer = _block_timer(fn, device)
    with torch.inference_mode():
        warmup_calls, started = 0, time.perf_counter()
        while warmup_calls < settings.min_warmup_calls or time.perf_counter() - started < settings.warmup_s:
            sample(1)
            warmup_calls += 1
        one = max(sample(1), 1e-9)
        calls = max(1, min(settings.max_calls_per_sample, math.ceil(settings.block_s / one)))
        cpu_started, wall_started = time.process_time(), time.perf_counter()
        samples = adaptive_samples(sample, calls, settings)
        cpu, wall = time.process_time() - cpu_started, time.perf_counter() - wall_started
    share = cpu / (wall * threads) if device.type == "cpu" and wall > 0 else None
    return Timing(tuple(samples), calls, warmup_calls + 1, device.type, threads, timer, settings.threshold,
                  share)
