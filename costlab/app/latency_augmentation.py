"""The course notes' augmentations measured beside one forward pass (report ``latency-augmentation``).

Each step is timed on one C×H×W float32 image with the same care as any latency
(:func:`~costlab.torch_bridge.timing.time_callable`), beside the counts of
:mod:`costlab.core.augment`: mirroring (``torch.flip``), a random crop copied out (a fresh
offset per call) and the PCA colour shift (s = P·(α ⊙ λ) per image, added to every pixel).
"""

from __future__ import annotations

from typing import Callable

import torch

from ..core.augment import augmentation_costs
from ..render.formats import Format
from ..render.numbers import count
from ..render.report import grid, shape
from ..core.zoo import build_preset
from ..torch_bridge.build import build_module
from ..torch_bridge.timing import Timing, TimingSettings, check_device, device_name, fixed_threads, time_callable

IMAGE = (3, 256, 256)
#: timings taken by :func:`measure_augmentations`: three steps and the forward pass (for a progress bar)
AUGMENTATION_MEASUREMENTS = 4


def _steps(image: torch.Tensor, crop: int) -> dict[str, Callable[[], torch.Tensor]]:
    channels, height, width = image.shape
    generator = torch.Generator().manual_seed(0)
    covariance = torch.cov(image.reshape(channels, -1).cpu())
    eigvals, eigvecs = (t.to(image.device) for t in torch.linalg.eigh(covariance))

    def crop_copy() -> torch.Tensor:
        y, x = (int(torch.randint(0, n - crop + 1, (1,), generator=generator)) for n in (height, width))
        return image[:, y:y + crop, x:x + crop].clone()

    def pca_shift() -> torch.Tensor:
        alphas = torch.randn(channels, generator=generator).to(image.device) * 0.1
        return image + (eigvecs @ (alphas * eigvals)).view(channels, 1, 1)

    return {"mirroring": lambda: torch.flip(image, dims=(2,)), "random cropping": crop_copy,
            "PCA colour shift": pca_shift}


def measure_augmentations(device: str = "cpu", threads: int | None = None, preset: str = "alexnet",
                          progress: Callable[[str], None] | None = None) -> dict[str, Timing]:
    """Median-and-IQR timings of each augmentation on one image and of one forward pass of ``preset``."""
    where = check_device(device)
    network = build_preset(preset)
    crop = network.input[1]
    timings: dict[str, Timing] = {}
    settings = TimingSettings(min_time_s=0.3, max_time_s=2.0)
    with fixed_threads(threads if where.type == "cpu" else None) as used:
        image = torch.rand(IMAGE, generator=torch.Generator().manual_seed(1)).to(where)
        for name, step in _steps(image, crop).items():
            timings[name] = time_callable(step, where, used, settings)
            if progress:
                progress(name)
        module = build_module(network).to(where)
        batch = torch.randn((1,) + network.input, device=where)
        timings[f"{network.name} forward"] = time_callable(lambda: module(batch), where, used, settings)
        if progress:
            progress(f"{network.name} forward")
    return timings


def augmentation_latency_markdown(timings: dict[str, Timing], preset: str = "alexnet", command: str = "") -> str:
    """The report: each step's counts beside its measured latency and its share of the forward pass."""
    network = build_preset(preset)
    channels, height, width = IMAGE
    costs = {c.name: c for c in augmentation_costs(channels, height, width, network.input[1])}
    forward = timings[f"{network.name} forward"]
    any_timing = next(iter(timings.values()))
    headers = ["step", "MACs", "ops", "bytes", "latency ms ± IQR", "vs forward pass"]
    rows = []
    for name, cost in costs.items():
        t = timings[name]
        rows.append([name, count(cost.macs), count(cost.ops), count(cost.bytes),
                     f"{1e3 * t.median_s:.4f} ± {1e3 * t.iqr_s:.4f}{' (noisy)' if t.noisy else ''}",
                     f"{100 * t.median_s / forward.median_s:.2f} %"])
    rows.append([f"one {network.name} forward pass ({shape(network.input)})", count(network.macs),
                 count(network.ops), count(network.bytes),
                 f"{1e3 * forward.median_s:.3f} ± {1e3 * forward.iqr_s:.3f}{' (noisy)' if forward.noisy else ''}",
                 "100 %"])
    where = device_name(check_device(any_timing.device))
    threads = f", {any_timing.threads} thread(s)" if any_timing.device == "cpu" else ""
    lines = [
        "# Data augmentation against a forward pass, measured", "",
        f"Measured on {where} ({any_timing.device}{threads}), torch {torch.__version__}, float32, one "
        f"{channels}×{height}×{width} image; regenerate with `{command or 'costlab report --latency cpu'}`. "
        "The counts are those of reports/augmentation.md.", "",
        grid(headers, rows, Format.MD, [False, True, True, True, True, True]), "",
        "Mirroring and cropping do no arithmetic: their time is memory traffic, and the PCA shift's "
        "single add per element costs about as much as a copy. Together they stay far below the "
        "forward pass they feed, and a data loader runs them on CPU workers beside the training step. "
        "The same image is used call after call, so it stays in cache: a loader reading fresh images "
        "pays main-memory bandwidth instead.", ""]
    return "\n".join(lines)
