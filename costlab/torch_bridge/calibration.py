"""Kernel calibration: time sampled layer configurations of every kernel family, fit, cache.

``costlab calibrate`` measures the roofline's peaks (:mod:`.roofline`), then, until its budget is
spent, one layer configuration after another, family by family in turn (so that a short budget
still samples every family): standard, pointwise, depthwise, grouped and transposed convolutions
(1-d, 2-d, 3-d; strides, dilations), linear layers, matrix and batched products, attention
(scaled_dot_product_attention), norms, activations, element-wise arithmetic (broadcast or not),
pools, concatenation, padding, resizing, embeddings and the cost of a call that does nothing.
Each configuration is a layer the core prices (:class:`~costlab.core.graph.Net`), run alone as
``--latency`` runs a layer (:func:`.latency.layer_callable`: the module or function its spec
builds to, on random inputs, eval and inference mode), timed by :func:`.timing.time_callable`. It
never times a whole model. The configurations come from a seeded generator: two calibrations
of one budget sample the same layers.

A sample starved of the CPU in every attempt is kept (the least starved attempt), marked and
counted; a calibration with more than :data:`MAX_STARVED_SHARE` of its samples starved is
*contended*: returned and used for the run that made it, never cached. Calibrations are cached beside the peaks
(``calibration.json`` in the same directory), keyed as the peaks are (host, device, threads,
dtype); the models are refitted from the samples when read.
"""

from __future__ import annotations

import random
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from ..core.analysis import Layer
from ..core.errors import CostlabError, SpecError
from ..core.formulas import numel
from ..core.graph import Net, Value
from ..analyses.prediction import CALIBRATION_VERSION, Calibration, Sample, layer_kernel
from ..core.specs import (Activation, AdaptivePool, Attention, Concat, Conv, Dropout, Elementwise, Embedding,
                          Flatten, Linear, Matmul, Norm, Pad, Pool, Reduce, Reshape, Shape, Spec, Upsample)
from .roofline import cache_path as peaks_cache_path, read_section, write_section

CACHE_FILE = "calibration.json"
#: ``costlab calibrate``'s default budget (seconds, the peaks included): within the 3 minutes promised.
DEFAULT_BUDGET_S = 150.0
#: A calibration with more than this share of its samples starved in every attempt is contended.
MAX_STARVED_SHARE = 0.2
#: How each configuration is timed (a TimingSettings' fields): short, since there are hundreds.
SAMPLE_TIMING: dict[str, Any] = {"min_samples": 3, "min_time_s": 0.02, "max_time_s": 0.2, "warmup_s": 0.01,
                                 "min_warmup_calls": 2, "attempts": 2}
#: A configuration whose roofline bound is longer than this (seconds) is not timed (drawn again).
MAX_SAMPLE_BOUND_S = 0.02
#: The budget share the peaks may take at most before the kernels start (they take a few seconds).
PEAKS_SHARE = 0.25

Progress = Callable[[str], None]
Config = tuple[str, Spec, tuple[Shape, ...]]  # label, spec, input shapes (batch first)


# --- the configurations ---------------------------------------------------------------------------

_CHANNELS = (3, 8, 16, 24, 32, 40, 48, 64, 80, 96, 112, 128, 160, 192, 256, 320, 384, 512, 768, 1024)
_SIDES = (7, 14, 14, 28, 28, 56, 56, 112, 224)
_BATCHES = (1, 1, 1, 2, 4, 8, 8)
_FEATURES = (64, 128, 192, 256, 384, 512, 768, 1024, 2048, 3072, 4096)


def _conv2d(r: random.Random, variant: str) -> Config:
    n, side = r.choice(_BATCHES), r.choice(_SIDES)
    if variant == "depthwise":
        c = r.choice(_CHANNELS[3:]) * r.choice((1, 1, 2, 4, 6))
        k, s = r.choice((3, 3, 3, 5, 7)), r.choice((1, 1, 2))
        return (f"dw{k}x{k}/{s} c{c} {side}² n{n}", Conv(c, (k, k), (s, s), (k // 2, k // 2), groups=c),
                ((n, c, side, side),))
    cin, cout = r.choice(_CHANNELS), r.choice(_CHANNELS[2:]) * r.choice((1, 1, 2))
    if variant == "pointwise":
        s = r.choice((1, 1, 1, 1, 2))
        return (f"pw {cin}→{cout}/{s} {side}² n{n}", Conv(cout, (1, 1), (s, s), (0, 0)), ((n, cin, side, side),))
    if variant == "grouped":
        groups = r.choice((2, 4, 8, 16, 32, 64))
        per = r.choice((1, 2, 4, 8, 16))
        cin = cout = groups * per * r.choice((1, 2, 4))
        k, s = r.choice((3, 3, 1)), r.choice((1, 1, 2))
        return (f"g{groups} {k}x{k}/{s} {cin} {side}² n{n}", Conv(cout, (k, k), (s, s), (k // 2, k // 2), groups=groups),
                ((n, cin, side, side),))
    if variant == "transposed":
        k, s = r.choice((2, 3, 4)), r.choice((1, 2))
        side = r.choice((7, 14, 28, 56))
        return (f"convT{k}x{k}/{s} {cin}→{cout} {side}² n{n}", Conv(cout, (k, k), (s, s), (0, 0), transposed=True),
                ((n, cin, side, side),))
    k, s, d = r.choice((3, 3, 3, 3, 5, 7, 11)), r.choice((1, 1, 1, 2, 2, 4)), r.choice((1, 1, 1, 1, 1, 2))
    return (f"conv{k}x{k}/{s} d{d} {cin}→{cout} {side}² n{n}",
            Conv(cout, (k, k), (s, s), (d * (k // 2),) * 2, (d, d)), ((n, cin, side, side),))


def _conv_nd(r: random.Random, ndim: int, variant: str) -> Config:
    n = r.choice((1, 2, 4))
    sides = (r.choice((16, 64, 256, 1024, 4096)),) if ndim == 1 else (r.choice((4, 8, 16)),) + (r.choice((14, 28, 56)),) * 2
    c = r.choice(_CHANNELS[2:16])
    cout = r.choice(_CHANNELS[2:16])
    k = 1 if variant == "pointwise" else r.choice((3, 3, 5))
    groups = c if variant == "depthwise" else 1
    cout = c if variant == "depthwise" else cout
    s = r.choice((1, 1, 2)) if variant != "pointwise" else 1
    return (f"conv{ndim}d-{variant} {c}→{cout} k{k}/{s} {sides} n{n}",
            Conv(cout, (k,) * ndim, (s,) * ndim, (k // 2,) * ndim, groups=groups), ((n, c) + sides,))


def _linear(r: random.Random) -> Config:
    rows = r.choice((1, 1, 2, 4, 8, 16, 49, 64, 128, 197, 256, 512, 1024))
    k, m = r.choice(_FEATURES), r.choice(_FEATURES + (10, 100, 1000))
    shape = (rows, k) if r.random() < 0.5 or rows > 64 else (1, rows, k)
    return f"fc {shape}→{m}", Linear(m, bias=True), (shape,)


def _matmul(r: random.Random, batched: bool) -> Config:
    b = r.choice((2, 4, 8, 12, 16, 24, 48, 96)) if batched else 1
    m, k, n = (r.choice((16, 32, 49, 64, 128, 197, 256, 512, 1024)) for _ in range(3))
    a_shape = (b, m, k) if batched else (m, k)
    b_shape = (b, k, n) if batched else (k, n)
    return f"matmul {a_shape}@{b_shape}", Matmul(), (a_shape, b_shape)


def _attention(r: random.Random) -> Config:
    n, heads = r.choice((1, 1, 2, 4, 8)), r.choice((1, 3, 6, 8, 12, 16))
    length, e = r.choice((16, 49, 64, 128, 197, 256, 512, 1024)), r.choice((32, 64, 64, 128))
    shape = (n, heads, length, e)
    return f"sdpa {shape}", Attention(), (shape, shape, shape)


def _image(r: random.Random) -> Shape:
    c, side = r.choice(_CHANNELS[1:]), r.choice(_SIDES)
    return (r.choice(_BATCHES), c * r.choice((1, 1, 2, 4)), side, side)


def _tokens(r: random.Random) -> Shape:
    return (r.choice(_BATCHES), r.choice((1, 16, 49, 128, 197, 256, 512)), r.choice((64, 192, 384, 768, 1024, 3072)))


def _norm(r: random.Random, kind: str) -> Config:
    if kind == "layer":
        shape = _tokens(r) if r.random() < 0.7 else _image(r)
        return f"ln {shape}", Norm("layer", normalized_shape=shape[-1:]), (shape,)
    shape = _image(r)
    if kind == "group":
        groups = r.choice([g for g in (1, 2, 4, 8, 16, 32) if shape[1] % g == 0])
        return f"gn{groups} {shape}", Norm("group", num_groups=groups), (shape,)
    return f"bn {shape}", Norm("batch"), (shape,)


def _activation(r: random.Random, kind: str) -> Config:
    shape = _image(r) if r.random() < 0.7 else _tokens(r)
    return f"{kind} {shape}", Activation(kind), (shape,)


def _softmax(r: random.Random) -> Config:
    if r.random() < 0.5:
        n, h, length = r.choice((1, 2, 4, 8)), r.choice((1, 4, 8, 12)), r.choice((16, 64, 128, 197, 256, 512))
        shape: Shape = (n, h, length, length)
    else:
        shape = (r.choice((1, 2, 8)), r.choice((10, 100, 1000, 10000)))
    return f"softmax {shape}", Activation("softmax"), (shape,)


def _elementwise(r: random.Random, broadcast: bool) -> Config:
    shape = _image(r) if r.random() < 0.75 else _tokens(r)
    if broadcast:
        other = shape[:2] + (1,) * (len(shape) - 2) if len(shape) == 4 else (1,) * (len(shape) - 1) + shape[-1:]
        return f"mul {shape}·{other}", Elementwise("mul"), (shape, other)
    kind = r.choice(("add", "add", "mul"))
    return f"{kind} {shape}", Elementwise(kind), (shape, shape)


def _pool(r: random.Random, kind: str) -> Config:
    shape = _image(r)
    if kind in ("max", "avg"):
        k, s = r.choice(((2, 2), (3, 2), (3, 1), (3, 2))) if kind == "max" else r.choice(((2, 2), (3, 1), (3, 2)))
        pad = k // 2 if k == 3 else 0
        return f"{kind}pool{k}/{s} {shape}", Pool(kind, (k, k), (s, s), (pad, pad)), (shape,)
    mode = "avg" if kind == "adaptive-avg" else "max"
    out = r.choice((1, 1, 1, 7)) if shape[2] >= 7 else 1
    return f"adaptive{mode}{out} {shape}", AdaptivePool(mode, (out, out)), (shape,)  # type: ignore[arg-type]


def _concat(r: random.Random) -> Config:
    n, side = r.choice(_BATCHES), r.choice(_SIDES)
    parts = tuple((n, r.choice(_CHANNELS[2:]), side, side) for _ in range(r.choice((2, 2, 3, 4))))
    return f"cat {len(parts)}×{side}²", Concat(1), parts


def _call(r: random.Random) -> Config:
    shape = _image(r)
    which = r.choice(("flatten", "dropout", "reshape"))
    if which == "flatten":
        return f"flatten {shape}", Flatten(1), (shape,)
    if which == "dropout":
        return f"dropout {shape}", Dropout(0.5), (shape,)
    return f"reshape {shape}", Reshape((shape[0], numel(shape[1:]))), (shape,)


def _reduce(r: random.Random) -> Config:
    shape = _image(r)
    return f"mean {shape}", Reduce("mean", (2, 3), r.random() < 0.5), (shape,)


def _pad(r: random.Random) -> Config:
    shape = _image(r)
    p = r.choice((1, 2, 3))
    return f"pad{p} {shape}", Pad((p, p, p, p)), (shape,)


def _upsample(r: random.Random) -> Config:
    n, c, side = r.choice(_BATCHES), r.choice(_CHANNELS[1:14]), r.choice((7, 14, 28, 56))
    mode = r.choice(("nearest", "bilinear"))
    return f"upsample-{mode} {c} {side}²", Upsample((2 * side, 2 * side), mode), ((n, c, side, side),)


def _embedding(r: random.Random) -> Config:
    n, length = r.choice((1, 4, 8)), r.choice((16, 128, 512))
    vocab, dim = r.choice((1000, 30522, 50257)), r.choice((128, 768, 1024))
    return f"embedding {vocab}×{dim} ({n}, {length})", Embedding(vocab, dim), ((n, length),)


#: Each family's generator and how many configurations it gets per round (0.34: one every third round).
FAMILIES: Mapping[str, tuple[Callable[[random.Random], Config], float]] = {
    "conv2d-standard": (lambda r: _conv2d(r, "standard"), 4),
    "conv2d-pointwise": (lambda r: _conv2d(r, "pointwise"), 4),
    "conv2d-depthwise": (lambda r: _conv2d(r, "depthwise"), 3),
    "conv2d-grouped": (lambda r: _conv2d(r, "grouped"), 2),
    "conv2d-transposed": (lambda r: _conv2d(r, "transposed"), 0.5),
    "linear": (_linear, 3),
    "matmul": (lambda r: _matmul(r, False), 1),
    "bmm": (lambda r: _matmul(r, True), 1.5),
    "attention": (_attention, 1.5),
    "norm-batch": (lambda r: _norm(r, "batch"), 2),
    "norm-layer": (lambda r: _norm(r, "layer"), 1.5),
    "norm-group": (lambda r: _norm(r, "group"), 0.5),
    "act-simple": (lambda r: _activation(r, r.choice(("relu", "relu", "relu6"))), 2),
    "act-gelu": (lambda r: _activation(r, "gelu"), 1),
    "act-silu": (lambda r: _activation(r, "silu"), 1),
    "act-hardswish": (lambda r: _activation(r, "hardswish"), 1),
    "act-hardsigmoid": (lambda r: _activation(r, "hardsigmoid"), 0.5),
    "act-sigmoid": (lambda r: _activation(r, "sigmoid"), 0.5),
    "act-tanh": (lambda r: _activation(r, "tanh"), 0.5),
    "softmax": (_softmax, 1),
    "elementwise": (lambda r: _elementwise(r, False), 2),
    "elementwise-broadcast": (lambda r: _elementwise(r, True), 1),
    "pool-max": (lambda r: _pool(r, "max"), 1),
    "pool-avg": (lambda r: _pool(r, "avg"), 0.5),
    "pool-adaptive-avg": (lambda r: _pool(r, "adaptive-avg"), 1),
    "pool-adaptive-max": (lambda r: _pool(r, "adaptive-max"), 0.34),
    "concat": (_concat, 1),
    "call": (_call, 1),
    "reduce": (_reduce, 0.5),
    "pad": (_pad, 0.34),
    "upsample": (_upsample, 0.34),
    "embedding": (_embedding, 0.34),
    "conv1d-standard": (lambda r: _conv_nd(r, 1, "standard"), 0.34),
    "conv1d-pointwise": (lambda r: _conv_nd(r, 1, "pointwise"), 0.34),
    "conv1d-depthwise": (lambda r: _conv_nd(r, 1, "depthwise"), 0.34),
    "conv3d-standard": (lambda r: _conv_nd(r, 3, "standard"), 0.34),
    "conv3d-pointwise": (lambda r: _conv_nd(r, 3, "pointwise"), 0.34),
    "conv3d-depthwise": (lambda r: _conv_nd(r, 3, "depthwise"), 0.34),
}


def configurations(seed: int = 0) -> Iterator[Config]:
    """Configurations family by family in turn, each family its share per round, from a seeded
    generator (each family its own stream, so adding one changes no other's)."""
    streams = {family: random.Random(f"{seed}:{family}") for family in FAMILIES}
    credit = {family: 0.0 for family in FAMILIES}
    while True:
        for family, (generate, share) in FAMILIES.items():
            credit[family] += share
            while credit[family] >= 1:
                credit[family] -= 1
                yield generate(streams[family])


def priced_layer(label: str, spec: Spec, shapes: Sequence[Shape], dtype: str) -> Layer:
    """The layer the core prices for ``spec`` on inputs of ``shapes`` (batch first)."""
    net = Net(shapes[0][1:], shapes[0][0], dtype)
    net.add(spec, *[Value(Net.INPUT, tuple(s)) for s in shapes], name="k")
    return net.analysis(label).layers[0]


# --- measuring ------------------------------------------------------------------------------------

def measure_calibration(device: str = "cpu", threads: int | None = None, dtype: str = "float32",
                        budget_s: float = DEFAULT_BUDGET_S, progress: Progress | None = None,
                        peaks: Any = None, seed: int = 0) -> Calibration:
    """Measure the peaks (unless given) and as many kernel configurations as ``budget_s`` allows."""
    import torch

    from .latency import layer_callable, layer_inputs
    from .roofline import measure_peaks
    from .timing import TimingSettings, check_device, fixed_threads, time_callable, torch_dtype

    if not budget_s > 0:
        raise CostlabError(f"--budget must be a positive number of seconds, got {budget_s}")
    parsed = check_device(device, "--device")
    element = torch_dtype(dtype)
    started = time.perf_counter()
    if peaks is None:
        peaks = measure_peaks(device, threads, dtype, progress)
    from ..core.roofline import bound

    settings = TimingSettings(**SAMPLE_TIMING)
    samples: list[Sample] = []
    starved = 0
    with fixed_threads(threads if parsed.type == "cpu" else None) as used:
        for label, spec, shapes in configurations(seed):
            if time.perf_counter() - started >= budget_s:
                break
            try:
                layer = priced_layer(label, spec, shapes, dtype)
            except SpecError:
                continue
            k = layer_kernel(layer)
            if k is None or bound(int(k.work), int(k.bytes), peaks).seconds > MAX_SAMPLE_BOUND_S:
                continue
            try:
                fn = layer_callable(layer, parsed, element)
                inputs = layer_inputs(layer, parsed, element)
                with torch.inference_mode():
                    fn(*inputs)
            except (SpecError, RuntimeError):
                continue
            timing = time_callable(lambda fn=fn, inputs=inputs: fn(*inputs), parsed, used, settings)
            del fn, inputs
            starved += timing.starved
            samples.append(Sample(k.family, k.work, k.bytes, k.descriptor, timing.median_s, label, timing.starved))
            if progress:
                progress(label)
    elapsed = time.perf_counter() - started
    contended = bool(peaks.contended) or starved > MAX_STARVED_SHARE * max(len(samples), 1)
    return Calibration(peaks, tuple(samples), datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       elapsed, budget_s, starved, contended, torch.__version__)


# --- the cache ------------------------------------------------------------------------------------

def cache_path(environ: Mapping[str, str] | None = None) -> Path:
    """calibration.json beside the peaks' cache file."""
    return peaks_cache_path(environ).with_name(CACHE_FILE)


def _read(path: Path) -> dict[str, Any]:
    return read_section(path, CALIBRATION_VERSION, "calibrations")


def load_calibration(key: str, path: Path | None = None) -> Calibration | None:
    """The cached calibration for ``key`` (host|device|name|threads|dtype), or None."""
    entry = _read(path or cache_path()).get(key)
    if not isinstance(entry, dict):
        return None
    try:
        return Calibration.from_dict(entry)
    except (KeyError, TypeError, ValueError, CostlabError):
        return None


def save_calibration(calibration: Calibration, path: Path | None = None) -> Path:
    """Add or replace ``calibration`` in the cache (a temporary file renamed into place)."""
    path = path or cache_path()
    entries = _read(path)
    entries[calibration.key] = calibration.to_dict()
    return write_section(path, CALIBRATION_VERSION, "calibrations", entries, "calibration", indent=None)


def calibrate_kernels(device: str = "cpu", threads: int | None = None, dtype: str = "float32",
                      budget_s: float = DEFAULT_BUDGET_S, path: Path | None = None,
                      progress: Progress | None = None) -> tuple[Calibration, Path | None, Path | None]:
    """Measure a calibration; cache its peaks (unless they were contended) and itself (unless it
    was): returns it, the peaks' cache file and the calibration's (None where not cached)."""
    from .roofline import CACHE_FILE as PEAKS_FILE, save_peaks

    calibration = measure_calibration(device, threads, dtype, budget_s, progress)
    peaks_path = None
    if not calibration.peaks.contended:
        peaks_path = save_peaks(calibration.peaks, None if path is None else path.with_name(PEAKS_FILE))
    if calibration.contended:
        return calibration, peaks_path, None
    return calibration, peaks_path, save_calibration(calibration, path)


def cached_calibration(device: str, threads: int | None, dtype: str, path: Path | None = None) -> Calibration | None:
    """This machine's cached calibration for ``device``, ``threads`` and ``dtype``, if any."""
    from .roofline import identity

    return load_calibration(identity(device, threads, dtype)[0], path)


def calibration_for(device: str, threads: int | None, dtype: str, path: Path | None = None) -> Calibration:
    """The cached calibration, else a CostlabError saying to run ``costlab calibrate``."""
    from .roofline import identity

    key = identity(device, threads, dtype)[0]
    found = load_calibration(key, path)
    if found is None:
        options = (f" --device {device}" if device != "cpu" else "") + (f" --threads {threads}" if threads else "") + (
            f" --dtype {dtype}" if dtype != "float32" else "")
        raise CostlabError(f"no latency calibration for {key}: run `costlab calibrate{options}` first "
                           "(about 3 minutes; --budget SECONDS for less)")
    return found
