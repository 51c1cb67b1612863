"""The roofline's peaks, measured on this machine and cached (the bound itself is
:mod:`costlab.core.roofline`: ``max(F / peak_flops, B / peak_bandwidth)``).

The peaks are measured, not looked up: a square matrix product (2n³ FLOPs) for compute and
a large tensor copy (counted as bytes read plus bytes written) for bandwidth. On the CPU a
second, small copy whose two buffers fit in the last-level cache measures the cache's
bandwidth: a layer whose bytes fit in that cache (per-layer timings reuse their tensors, so
they stay there) is bounded by it instead of DRAM's (``bandwidth`` says which in each entry).

A calibration records its conditions: the lowest run share of its timings (see
:mod:`.timing`) and the load average. A *contended* one — starved in every attempt — is
returned and used for the run that asked, but never cached as the machine's peaks. They are cached
per host, device, thread count and dtype in a JSON file under the user's cache directory
(``$COSTLAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/costlab``, else ``~/.cache/costlab``);
``costlab calibrate`` measures them again. Only :func:`measure_peaks` imports torch.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from ..core.errors import CostlabError
from ..core.roofline import Peaks, machine_key

CACHE_FILE = "peaks.json"
#: Of the last-level cache, the share the cache-bandwidth copy fills (its two buffers together).
CACHE_COPY_FILL = 0.5
CACHE_VERSION = 1

#: Matrix size n of the n×n·n×n product and bytes per buffer of the copy, per device type.
MATMUL_SIZE = {"cpu": 2048, "cuda": 8192}
COPY_BYTES = {"cpu": 128 * 2**20, "cuda": 1024 * 2**20}
#: How each calibration timing is taken (a TimingSettings' fields; starved timings are taken again).
CALIBRATION_TIMING: dict[str, Any] = {"min_samples": 5, "min_time_s": 0.2, "max_time_s": 2.0, "warmup_s": 0.1}
#: How many steps a calibration reports to a progress callback (matrix product, copy, cache copy).
CALIBRATION_STEPS = 3


# --- the cache ---------------------------------------------------------------------------

def cache_path(environ: Mapping[str, str] | None = None) -> Path:
    """$COSTLAB_CACHE_DIR/peaks.json, else $XDG_CACHE_HOME/costlab/peaks.json, else ~/.cache/costlab/."""
    env = os.environ if environ is None else environ
    if env.get("COSTLAB_CACHE_DIR"):
        return Path(env["COSTLAB_CACHE_DIR"]) / CACHE_FILE
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "costlab" / CACHE_FILE


def read_section(path: Path, version: int, section: str) -> dict[str, Any]:
    """The ``section`` entries of a cache file written at ``version``; a missing, unreadable or foreign
    file counts as empty (it is a cache)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != version or not isinstance(data.get(section), dict):
        return {}
    return data[section]


def write_section(path: Path, version: int, section: str, entries: Mapping[str, Any], what: str,
                  indent: int | None = 2) -> Path:
    """Write ``{"version": version, section: entries}`` to ``path`` (a temporary file renamed into place)."""
    text = json.dumps({"version": version, section: entries}, indent=indent, sort_keys=True) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}-", dir=path.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except OSError as error:
        raise CostlabError(f"cannot write the {what} cache {path}: {error.strerror or error}") from None
    return path


def _read_cache(path: Path) -> dict[str, Any]:
    """The cache's entries by key."""
    return read_section(path, CACHE_VERSION, "peaks")


def load_peaks(key: str, path: Path | None = None) -> Peaks | None:
    """The cached peaks for ``key``, or None."""
    entry = _read_cache(path or cache_path()).get(key)
    if not isinstance(entry, dict):
        return None
    try:
        return Peaks.from_dict(entry)
    except (TypeError, CostlabError):
        return None


def save_peaks(peaks: Peaks, path: Path | None = None) -> Path:
    """Add or replace ``peaks`` in the cache file (written to a temporary file, then renamed)."""
    path = path or cache_path()
    entries = _read_cache(path)
    entries[peaks.key] = peaks.to_dict()
    return write_section(path, CACHE_VERSION, "peaks", entries, "peaks")


# --- measuring the peaks (torch) ------------------------------------------------------------

def last_level_cache_bytes() -> int:
    """The CPU's largest cache (Linux sysfs, cpu0's highest level), in bytes; 0 where unknown."""
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    largest = 0
    try:
        entries = list(base.glob("index*"))
    except OSError:
        return 0
    for entry in entries:
        try:
            kind = (entry / "type").read_text().strip()
            size = (entry / "size").read_text().strip().upper()
        except OSError:
            continue
        if kind == "Instruction" or not size:
            continue
        scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(size[-1], 1)
        digits = size.rstrip("KMG")
        if digits.isascii() and digits.isdigit():
            largest = max(largest, int(digits) * scale)
    return largest


def identity(device: str, threads: int | None, dtype: str) -> tuple[str, str, str, int]:
    """(key, device type, device name, threads) of this machine for ``device`` (torch imported)."""
    from .timing import check_device, device_name
    import torch

    parsed = check_device(device)
    count = (threads or torch.get_num_threads()) if parsed.type == "cpu" else 0
    name = device_name(parsed)
    return machine_key(socket.gethostname(), parsed.type, name, count, dtype), parsed.type, name, count


def measure_peaks(device: str = "cpu", threads: int | None = None, dtype: str = "float32",
                  progress: Callable[[str], None] | None = None) -> Peaks:
    """Measure peak GFLOP/s (n×n matrix product, 2n³ FLOPs) and GB/s (copy: 2 × buffer bytes)."""
    import torch

    from .timing import torch_dtype
    from .timing import TimingSettings, check_device, device_name, fixed_threads, time_callable

    parsed = check_device(device)
    kind = parsed.type
    element = torch_dtype(dtype)
    try:
        load: float | None = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = None
    n = MATMUL_SIZE[kind]
    settings = TimingSettings(**CALIBRATION_TIMING)
    with fixed_threads(threads if kind == "cpu" else None) as used:
        a = torch.randn(n, n, device=parsed).to(element)
        b = torch.randn(n, n, device=parsed).to(element)
        out = torch.empty(n, n, device=parsed, dtype=element)
        matmul = time_callable(lambda: torch.mm(a, b, out=out), parsed, used, settings)
        del a, b, out
        if progress:
            progress("peak GFLOP/s (matrix product)")
        elements = COPY_BYTES[kind] // 4
        source = torch.randn(elements, device=parsed)
        target = torch.empty_like(source)
        copy = time_callable(lambda: target.copy_(source), parsed, used, settings)
        del source, target
        if progress:
            progress("peak GB/s (copy)")
        cache_bytes = last_level_cache_bytes() if kind == "cpu" else 0
        cache_copy = None
        if cache_bytes:
            small = torch.randn(int(cache_bytes * CACHE_COPY_FILL) // 8, device=parsed)  # two buffers of 4 B
            small_target = torch.empty_like(small)
            cache_copy = time_callable(lambda: small_target.copy_(small), parsed, used, settings)
            cache_elements = small.numel()
            del small, small_target
        if progress:
            progress("cache GB/s (copy within the last-level cache)")
    notes = ""
    if kind == "cuda":
        notes = (f"TF32 for float32 matrix products {'on' if torch.backends.cuda.matmul.allow_tf32 else 'off'}, "
                 f"for cuDNN convolutions {'on' if torch.backends.cudnn.allow_tf32 else 'off'}")
    # The best sample is the ceiling: a peak is what the machine can do, not what it usually does.
    gflops = 2 * n**3 / min(matmul.samples_s) / 1e9
    gbps = 2 * elements * 4 / min(copy.samples_s) / 1e9
    # A cache slower than DRAM measured is no cache ceiling (a contended run): DRAM's then bounds all.
    cache_gbps = 2 * cache_elements * 4 / min(cache_copy.samples_s) / 1e9 if cache_copy is not None else 0.0
    if cache_gbps <= gbps:
        cache_gbps, cache_bytes = 0.0, 0
    timings = [t for t in (matmul, copy, cache_copy) if t is not None]
    shares = [t.run_share for t in timings if t.run_share is not None]
    return Peaks(device=kind, device_name=device_name(parsed), threads=used if kind == "cpu" else 0,
                 dtype=dtype, gflops=gflops, gbps=gbps, host=socket.gethostname(), matmul_size=n,
                 copy_bytes=elements * 4, torch_version=torch.__version__,
                 measured_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), notes=notes,
                 cache_gbps=cache_gbps, cache_bytes=cache_bytes, run_share=min(shares) if shares else None,
                 load_1min=load, contended=any(t.starved for t in timings))


def calibrate(device: str = "cpu", threads: int | None = None, dtype: str = "float32",
              path: Path | None = None, progress: Callable[[str], None] | None = None) -> tuple[Peaks, Path | None]:
    """Measure the peaks afresh and store them in the cache; returns them and the cache file —
    None when the calibration was contended (starved in every attempt): not cached."""
    peaks = measure_peaks(device, threads, dtype, progress)
    if peaks.contended:
        return peaks, None
    return peaks, save_peaks(peaks, path)


def cached_peaks(device: str, threads: int | None, dtype: str, path: Path | None = None) -> Peaks | None:
    """The cached peaks of this machine for ``device``, ``threads`` and ``dtype``, if any."""
    key = identity(device, threads, dtype)[0]
    return load_peaks(key, path)


def peaks_for(device: str, threads: int | None, dtype: str, path: Path | None = None,
              progress: Callable[[str], None] | None = None) -> Peaks:
    """Cached peaks, or measured now and cached."""
    return cached_peaks(device, threads, dtype, path) or calibrate(device, threads, dtype, path, progress)[0]
