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

A CPU measurement also records its *run share*: of the time this process's threads were ready
to run while sampling, the fraction they spent running (Linux's ``/proc/self/task/*/schedstat``:
time on a CPU ÷ (time on a CPU + time waiting in the run queue)). Near 1 on a quiet machine
whatever the op's own parallelism; well below when other work holds the cores. A measurement
whose run share is below ``min_run_share`` is *starved*: it is taken again, up to ``attempts``
times in all, and if every attempt was starved the least starved one is kept and marked noisy,
with the reason.
"""

from __future__ import annotations

import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Sequence

import torch

from ..core.errors import CostlabError

#: A measurement whose interquartile range exceeds this fraction of its median is noisy.
DEFAULT_NOISE_THRESHOLD = 0.10
#: A CPU measurement whose threads ran less than this fraction of the time they were ready to run is starved.
DEFAULT_MIN_RUN_SHARE = 0.75
#: How many times a starved measurement is taken in all before it is kept, marked noisy.
DEFAULT_ATTEMPTS = 3
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



_DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64,
                                   "float16": torch.float16, "bfloat16": torch.bfloat16}


def torch_dtype(dtype: str) -> torch.dtype:
    """The torch dtype latency is measured in; int8 only sizes the bytes column and cannot run."""
    if dtype not in _DTYPES:
        raise CostlabError(f"latency is measured in a floating dtype ({', '.join(_DTYPES)}), "
                           f"not {dtype}")
    return _DTYPES[dtype]

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
    #: CPU only, where the OS says: time running ÷ time ready to run, of this process's threads while
    #: sampling (see the module docstring); None where it cannot be read.
    run_share: float | None = None
    #: a run share below this marks the measurement starved (None: never)
    min_run_share: float | None = None
    #: how many times it was measured (more than 1: the earlier attempts were starved)
    attempts: int = 1

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
    def starved(self) -> bool:
        """True when other work held the CPU: the run share is below ``min_run_share``."""
        return (self.run_share is not None and self.min_run_share is not None
                and self.run_share < self.min_run_share)

    @property
    def noisy(self) -> bool:
        """True when the spread is above the threshold (the time limit came before it settled),
        or when the measurement was starved in every attempt."""
        return self.spread > self.noise_threshold or self.starved

    @property
    def noisy_reason(self) -> str | None:
        """Why the measurement is noisy, in words (None when it is not)."""
        reasons = []
        if self.starved:
            reasons.append(f"starved: its threads ran {100 * self.run_share:.0f} % of the time they were "  # type: ignore[operator]
                           f"ready to run (below {100 * self.min_run_share:.0f} %) in each of "  # type: ignore[operator]
                           f"{self.attempts} attempt{'s' if self.attempts != 1 else ''}: other work held the CPU")
        if self.spread > self.noise_threshold:
            reasons.append(f"IQR/median {100 * self.spread:.0f} % above the {100 * self.noise_threshold:.0f} % "
                           "threshold")
        return "; ".join(reasons) or None

    def to_dict(self) -> dict[str, Any]:
        """The ``latency_ms`` entry of the JSON contract (times in milliseconds)."""
        return {
            "median": self.median_s * 1e3, "iqr": self.iqr_s * 1e3, "q1": self.q1_s * 1e3,
            "q3": self.q3_s * 1e3, "min": min(self.samples_s) * 1e3, "spread": self.spread,
            "noisy": self.noisy, "noise_threshold": self.noise_threshold,
            "samples": len(self.samples_s), "calls_per_sample": self.calls_per_sample,
            "warmup_calls": self.warmup_calls, "device": self.device, "threads": self.threads,
            "timer": self.timer, "cpu_share": self.cpu_share, "run_share": self.run_share,
            "min_run_share": self.min_run_share, "attempts": self.attempts, "noisy_reason": self.noisy_reason,
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
    #: a CPU measurement whose run share is below this is starved and taken again (0: never);
    #: default DEFAULT_MIN_RUN_SHARE, read when the settings are made
    min_run_share: float = field(default_factory=lambda: DEFAULT_MIN_RUN_SHARE)
    #: how many times a starved measurement is taken in all
    attempts: int = DEFAULT_ATTEMPTS

    def __post_init__(self) -> None:
        if not 0 < self.threshold:
            raise CostlabError(f"the noise threshold must be positive, got {self.threshold}")
        if self.min_samples < 1 or self.min_time_s < 0 or self.max_time_s <= 0:
            raise CostlabError("timing settings need min_samples ≥ 1 and a positive time limit")
        if not 0 <= self.min_run_share <= 1 or self.attempts < 1:
            raise CostlabError("timing settings need 0 ≤ min_run_share ≤ 1 and at least 1 attempt")


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


def scheduler_times() -> tuple[int, int] | None:
    """(ns running, ns waiting to run) summed over this process's threads, from Linux's
    /proc/self/task/*/schedstat; None where the OS does not give them."""
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return None
    running = waiting = 0
    found = False
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/schedstat", encoding="ascii") as handle:
                fields = handle.read().split()
            running, waiting, found = running + int(fields[0]), waiting + int(fields[1]), True
        except (OSError, ValueError, IndexError):  # a thread that ended meanwhile
            continue
    return (running, waiting) if found else None


def run_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """Time running ÷ time ready to run (running + waiting) between two :func:`scheduler_times`."""
    if before is None or after is None:
        return None
    running, waiting = after[0] - before[0], after[1] - before[1]
    return running / (running + waiting) if running + waiting > 0 and running >= 0 <= waiting else None


def time_callable(fn: Callable[[], Any], device: torch.device, threads: int,
                  settings: TimingSettings | None = None) -> Timing:
    """Warm ``fn`` up, pick a block size, take adaptive samples; in inference mode. On the CPU a
    starved measurement is taken again, up to ``settings.attempts`` times (module docstring).

    The caller fixes the thread count (:func:`fixed_threads`); ``threads`` is what is reported.
    """
    settings = settings or TimingSettings()
    best: Timing | None = None
    for attempt in range(1, settings.attempts + 1):
        timing = replace(_time_once(fn, device, threads, settings), attempts=attempt)
        if not timing.starved:
            return timing
        if best is None or (timing.run_share or 0.0) > (best.run_share or 0.0):
            best = timing
    return replace(best, attempts=settings.attempts)  # type: ignore[arg-type]


def _time_once(fn: Callable[[], Any], device: torch.device, threads: int, settings: TimingSettings) -> Timing:
    sample, timer = _block_timer(fn, device)
    with torch.inference_mode():
        warmup_calls, started = 0, time.perf_counter()
        while warmup_calls < settings.min_warmup_calls or time.perf_counter() - started < settings.warmup_s:
            sample(1)
            warmup_calls += 1
        one = max(sample(1), 1e-9)
        calls = max(1, min(settings.max_calls_per_sample, math.ceil(settings.block_s / one)))
        cpu_started, wall_started, scheduled = time.process_time(), time.perf_counter(), scheduler_times()
        samples = adaptive_samples(sample, calls, settings)
        cpu, wall = time.process_time() - cpu_started, time.perf_counter() - wall_started
        ran = run_share(scheduled, scheduler_times()) if device.type == "cpu" else None
    share = cpu / (wall * threads) if device.type == "cpu" and wall > 0 else None
    return Timing(tuple(samples), calls, warmup_calls + 1, device.type, threads, timer, settings.threshold,
                  share, ran, settings.min_run_share if settings.min_run_share > 0 else None)
