"""The classic architectures, assembled from :mod:`costlab.core.blocks` with torchvision's layer names.

Each preset is a function ``(net, x, **options) -> Value`` plus its default input and its
documented options. Classifiers end in logits (no softmax), as torchvision's do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

from .analysis import Analysis
from .blocks import (conv_bn_act, depthwise_separable, inception, inverted_residual,
                     residual_basic, residual_bottleneck)
from .errors import SpecError, TargetError
from .graph import Net, Value
from .sizes import parse_size
from .specs import Activation, AdaptivePool, Dropout, Flatten, Linear, Shape, max_pool2d

BuildFn = Callable[..., Value]


@dataclass(frozen=True)
class Preset:
    """A named architecture: how to build it, on what input by default, and which options it takes."""

    name: str
    summary: str
    default_input: Shape
    build: BuildFn
    options: Mapping[str, Any] = field(default_factory=dict)


def _classifier_head(net: Net, x: Value, layers: list[tuple[str, int | float]]) -> Value:
    """A torchvision ``classifier`` Sequential: ('fc', n), ('relu', 0), ('dropout', p), numbered."""
    with net.scope("classifier"):
        for index, (kind, value) in enumerate(layers):
            name = str(index)
            if kind == "fc":
                x = net.add(Linear(int(value)), x, name=name)
            elif kind == "relu":
                x = net.add(Activation("relu"), x, name=name)
            else:
                x = net.add(Dropout(float(value)), x, name=name)
    return x


def lenet5(net: Net, x: Value, num_classes: int = 10) -> Value:
    """The common modern LeNet-5: conv 5×5 ×6, max-pool, conv 5×5 ×16, max-pool, FC 120, 84, classes."""
    x = conv_bn_act(net, x, 6, 5, padding="valid", bias=True, norm=False, names=("conv1", "", "relu1"))
    x = net.add(max_pool2d(2), x, name="pool1")
    x = conv_bn_act(net, x, 16, 5, padding="valid", bias=True, norm=False, names=("conv2", "", "relu2"))
    x = net.add(max_pool2d(2), x, name="pool2")
    x = net.add(Flatten(), x, name="flatten")
    x = net.add(Linear(120), x, name="fc1")
    x = net.add(Activation("relu"), x, name="relu3")
    x = net.add(Linear(84), x, name="fc2")
    x = net.add(Activation("relu"), x, name="relu4")
    return net.add(Linear(num_classes), x, name="fc3")


def alexnet(net: Net, x: Value, num_classes: int = 1000, dropout: float = 0.5) -> Value:
    """torchvision's AlexNet (the one-GPU variant: 64, 192, 384, 256, 256 filters)."""
    plan: list[tuple[int, int, int, int] | None] = [  # (filters, kernel, stride, padding) or pool
        (64, 11, 4, 2), None, (192, 5, 1, 2), None, (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1), None]
    with net.scope("features"):
        index = 0
        for step in plan:
            if step is None:
                x = net.add(max_pool2d(3, 2), x, name=str(index))
                index += 1
            else:
                filters, kernel, stride, padding = step
                x = conv_bn_act(net, x, filters, kernel, stride, padding=padding, bias=True,
                                norm=False, names=(str(index), "", str(index + 1)))
                index += 2
    x = net.add(AdaptivePool("avg", (6, 6)), x, name="avgpool")
    x = net.add(Flatten(), x, name="flatten")
    return _classifier_head(net, x, [("dropout", dropout), ("fc", 4096), ("relu", 0),
                                     ("dropout", dropout), ("fc", 4096), ("relu", 0),
                                     ("fc", num_classes)])


VGG_PLANS: Mapping[int, tuple[int | str, ...]] = MappingProxyType({
    11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    13: (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    19: (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512, "M"),
})


def vgg(depth: int) -> BuildFn:
    def build(net: Net, x: Value, num_classes: int = 1000, batch_norm: bool = False,
              dropout: float = 0.5) -> Value:
        with net.scope("features"):
            index = 0
            for step in VGG_PLANS[depth]:
                if step == "M":
                    x = net.add(max_pool2d(2, 2), x, name=str(index))
                    index += 1
                else:
                    names = (str(index), str(index + 1), str(index + 1 + batch_norm))
                    x = conv_bn_act(net, x, int(step), 3, padding=1, bias=True, norm=batch_norm,
                                    names=names)
                    index += 3 if batch_norm else 2
        x = net.add(AdaptivePool("avg", (7, 7)), x, name="avgpool")
        x = net.add(Flatten(), x, name="flatten")
        return _classifier_head(net, x, [("fc", 4096), ("relu", 0), ("dropout", dropout),
                                         ("fc", 4096), ("relu", 0), ("dropout", dropout),
                                         ("fc", num_classes)])

    build.__doc__ = f"torchvision's VGG-{depth}: 3×3 convolutions with bias, 2×2 max-pools, three FC layers."
    return build


RESNET_PLANS: Mapping[int, tuple[str, tuple[int, int, int, int]]] = MappingProxyType({
    18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)), 50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)), 152: ("bottleneck", (3, 8, 36, 3)),
})


def resnet(depth: int) -> BuildFn:
    block_kind, counts = RESNET_PLANS[depth]

    def build(net: Net, x: Value, num_classes: int = 1000, stride_in_1x1: bool = False) -> Value:
        x = conv_bn_act(net, x, 64, 7, 2, padding=3, names=("conv1", "bn1", "relu"))
        x = net.add(max_pool2d(3, 2, 1), x, name="maxpool")
        for stage, (count, width) in enumerate(zip(counts, (64, 128, 256, 512)), start=1):
            with net.scope(f"layer{stage}"):
                for index in range(count):
                    stride = 2 if stage > 1 and index == 0 else 1
                    if block_kind == "basic":
                        x = residual_basic(net, x, width, stride, name=str(index))
                    else:
                        x = residual_bottleneck(net, x, width, stride, stride_in_1x1=stride_in_1x1,
                                                name=str(index))
        x = net.add(AdaptivePool("avg", (1, 1)), x, name="avgpool")
        x = net.add(Flatten(), x, name="flatten")
        return net.add(Linear(num_classes), x, name="fc")

    build.__doc__ = (f"torchvision's ResNet-{depth} ({block_kind} blocks {counts}); bottleneck nets are "
                     "v1.5 (stride in the 3×3) unless stride_in_1x1.")
    return build


GOOGLENET_PLAN: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("inception3a", (64, 96, 128, 16, 32, 32)), ("inception3b", (128, 128, 192, 32, 96, 64)),
    ("maxpool3", ()),
    ("inception4a", (192, 96, 208, 16, 48, 64)), ("aux1", ()),
    ("inception4b", (160, 112, 224, 24, 64, 64)), ("inception4c", (128, 128, 256, 24, 64, 64)),
    ("inception4d", (112, 144, 288, 32, 64, 64)), ("aux2", ()),
    ("inception4e", (256, 160, 320, 32, 128, 128)), ("maxpool4", ()),
    ("inception5a", (256, 160, 320, 32, 128, 128)), ("inception5b", (384, 192, 384, 48, 128, 128)),
)


def _googlenet_unit(net: Net, x: Value, out: int, kernel: int, stride: int = 1, padding: int | str = "same",
                    name: str = "") -> Value:
    """torchvision's BasicConv2d: conv (no bias) → BN → functional ReLU."""
    return conv_bn_act(net, x, out, kernel, stride, padding=padding, name=name)


def googlenet(net: Net, x: Value, num_classes: int = 1000, branch3_kernel: int = 3,
              aux_logits: bool = True, dropout: float = 0.2) -> Value:
    """GoogLeNet (Inception v1) as torchvision builds it: BN after every conv, ceil-mode pools.

    torchvision's branch 3 uses a 3×3 kernel where the paper has 5×5 (``branch3_kernel=5``).
    The auxiliary classifiers run in training only and are kept out of the inference totals.
    """
    x = _googlenet_unit(net, x, 64, 7, 2, 3, name="conv1")
    x = net.add(max_pool2d(3, 2, ceil_mode=True), x, name="maxpool1")
    x = _googlenet_unit(net, x, 64, 1, name="conv2")
    x = _googlenet_unit(net, x, 192, 3, name="conv3")
    x = net.add(max_pool2d(3, 2, ceil_mode=True), x, name="maxpool2")
    for name, widths in GOOGLENET_PLAN:
        if name.startswith("inception"):
            c1, c3r, c3, c5r, c5, pool = widths
            x = inception(net, x, c1, c3r, c3, c5r, c5, pool, branch3_kernel=branch3_kernel,
                          pool_ceil_mode=True, name=name)
        elif name.startswith("maxpool"):
            kernel = 3 if name == "maxpool3" else 2
            x = net.add(max_pool2d(kernel, 2, ceil_mode=True), x, name=name)
        elif aux_logits:
            with net.training_only(), net.scope(name):
                y = net.add(AdaptivePool("avg", (4, 4)), x, name="adaptive_avg_pool2d")
                y = _googlenet_unit(net, y, 128, 1, name="conv")
                y = net.add(Flatten(), y, name="flatten")
                y = net.add(Linear(1024), y, name="fc1")
                y = net.add(Activation("relu"), y, name="relu")
                y = net.add(Dropout(0.7), y, name="dropout")
                net.add(Linear(num_classes), y, name="fc2")
    x = net.add(AdaptivePool("avg", (1, 1)), x, name="avgpool")
    x = net.add(Flatten(), x, name="flatten")
    x = net.add(Dropout(dropout), x, name="dropout")
    return net.add(Linear(num_classes), x, name="fc")


MOBILENET_V1_PLAN: tuple[tuple[int, int], ...] = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)


def mobilenet_v1(net: Net, x: Value, num_classes: int = 1000, width: float = 1.0) -> Value:
    """MobileNet v1 (Howard et al. 2017): 3×3 conv, 13 depthwise-separable blocks, pool, FC.

    Width multiplier α scales every channel count to int(c·α); resolution is the input size.
    """
    if width <= 0:
        raise SpecError(f"mobilenet-v1: width must be positive, got {width}")
    scaled = lambda c: max(1, int(c * width))  # noqa: E731
    x = conv_bn_act(net, x, scaled(32), 3, 2, name="stem")
    with net.scope("blocks"):
        for index, (out, stride) in enumerate(MOBILENET_V1_PLAN):
            x = depthwise_separable(net, x, scaled(out), 3, stride, name=str(index))
    x = net.add(AdaptivePool("avg", (1, 1)), x, name="avgpool")
    x = net.add(Flatten(), x, name="flatten")
    return net.add(Linear(num_classes), x, name="fc")


MOBILENET_V2_PLAN: tuple[tuple[int, int, int, int], ...] = (  # t, c, n, s
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's channel rounding: nearest multiple of ``divisor``, never below 90 % of ``value``."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def mobilenet_v2(net: Net, x: Value, num_classes: int = 1000, width: float = 1.0,
                 dropout: float = 0.2) -> Value:
    """torchvision's MobileNet v2: 3×3 conv, 17 inverted residual blocks, 1×1 conv to 1280, FC."""
    if width <= 0:
        raise SpecError(f"mobilenet-v2: width must be positive, got {width}")
    numbered = ("0", "1", "2")
    with net.scope("features"):
        x = conv_bn_act(net, x, make_divisible(32 * width), 3, 2, act="relu6", names=numbered, name="0")
        index = 1
        for t, c, n, s in MOBILENET_V2_PLAN:
            for repeat in range(n):
                x = inverted_residual(net, x, make_divisible(c * width), s if repeat == 0 else 1, t,
                                      name=str(index))
                index += 1
        x = conv_bn_act(net, x, make_divisible(1280 * max(1.0, width)), 1, act="relu6",
                        names=numbered, name=str(index))
    x = net.add(AdaptivePool("avg", (1, 1)), x, name="adaptive_avg_pool2d")
    x = net.add(Flatten(), x, name="flatten")
    return _classifier_head(net, x, [("dropout", dropout), ("fc", num_classes)])


def _presets() -> Mapping[str, Preset]:
    image = (3, 224, 224)
    entries = [
        Preset("lenet5", "LeNet-5, modern variant (ReLU, max-pool)", (1, 32, 32), lenet5,
               {"num_classes": 10}),
        Preset("alexnet", "AlexNet (torchvision)", image, alexnet,
               {"num_classes": 1000, "dropout": 0.5}),
        *[Preset(f"vgg{d}", f"VGG-{d} (torchvision)", image, vgg(d),
                 {"num_classes": 1000, "batch_norm": False, "dropout": 0.5}) for d in VGG_PLANS],
        *[Preset(f"resnet{d}", f"ResNet-{d} (torchvision{', v1.5' if d >= 50 else ''})", image,
                 resnet(d), {"num_classes": 1000, "stride_in_1x1": False}) for d in RESNET_PLANS],
        Preset("googlenet", "GoogLeNet / Inception v1 (torchvision; aux heads training-only)", image,
               googlenet, {"num_classes": 1000, "branch3_kernel": 3, "aux_logits": True,
                           "dropout": 0.2}),
        Preset("mobilenet-v1", "MobileNet v1 (Howard et al. 2017), width α", image, mobilenet_v1,
               {"num_classes": 1000, "width": 1.0}),
        Preset("mobilenet-v2", "MobileNet v2 (torchvision), width multiplier", image, mobilenet_v2,
               {"num_classes": 1000, "width": 1.0, "dropout": 0.2}),
    ]
    return MappingProxyType({p.name: p for p in entries})


#: Preset name → preset, in the order ``costlab list`` shows them.
PRESETS: Mapping[str, Preset] = _presets()


def _key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


_BY_KEY = MappingProxyType({_key(name): preset for name, preset in PRESETS.items()}
                           | {"inceptionv1": PRESETS["googlenet"], "lenet": PRESETS["lenet5"]})


def find_preset(name: str) -> Preset | None:
    """The preset called ``name`` (case, '-' and '_' ignored: MobileNet_V2 = mobilenet-v2), or None."""
    return _BY_KEY.get(_key(name))


def convert_option(preset: Preset, key: str, value: Any) -> Any:
    """Check ``key`` is one of the preset's options and convert ``value`` to its default's type."""
    if key not in preset.options:
        known = ", ".join(preset.options) or "none"
        raise TargetError(f"{preset.name} has no option {key!r} (options: {known})")
    default = preset.options[key]
    if isinstance(value, float) and not math.isfinite(value):
        raise TargetError(f"{preset.name}: option {key} expects a float (finite), got {value}")
    if not isinstance(value, str):
        return value
    try:
        if isinstance(default, bool):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if isinstance(default, int):
            converted = parse_size(value.strip(), 0)
            if converted is None:
                raise ValueError(value)
            return converted
        converted = type(default)(value)
        if isinstance(converted, float) and not math.isfinite(converted):
            raise ValueError(value)
        return converted
    except ValueError:
        kind = {"int": "an int (ASCII digits, at most 100)", "float": "a float (finite)",
                "bool": "a bool (true or false)"}.get(type(default).__name__, f"a {type(default).__name__}")
        raise TargetError(f"{preset.name}: option {key} expects {kind}, got {value[:40]!r}") from None


def build_preset(name: str, input: Shape | None = None, batch: int = 1, dtype: str = "float32",
                 options: Mapping[str, Any] | None = None, label: str | None = None) -> Analysis:
    """Analyse a preset on ``input`` (default: its own) with the given options."""
    preset = find_preset(name)
    if preset is None:
        raise TargetError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})")
    kwargs = {key: convert_option(preset, key, value) for key, value in (options or {}).items()}
    net = Net(input or preset.default_input, batch, dtype)
    try:
        output = preset.build(net, net.input, **kwargs)
    except SpecError as error:
        message = str(error)  # a preset's own check names it already
        raise SpecError(message if message.startswith(f"{preset.name}:") else f"{preset.name}: {message}") from None
    if label is None:
        label = preset.name
        if kwargs:
            label += "(" + ",".join(f"{key}={value}" for key, value in kwargs.items()) + ")"
    return net.analysis(label, output, kind="preset")


# --- the memory report's variants of MobileNet v2 (reports/memory.md, costlab claims) -----------

#: The inverted residual the projection claim is computed on: 24 channels at 56×56, expansion 6.
PROJECTION_BLOCK = {"channels": 24, "size": 56, "expansion": 6}


def projection_block(batch: int, projection: bool) -> Analysis:
    """MobileNet v2's inverted residual on 24×56×56 (expansion 6): with its 1×1 projection back to 24
    channels and the skip, or the same block without the projection (its output is the expanded,
    depthwise-filtered 144-channel tensor; no skip can be added)."""
    c, n, t = PROJECTION_BLOCK["channels"], PROJECTION_BLOCK["size"], PROJECTION_BLOCK["expansion"]
    net = Net((c, n, n), batch=batch)
    if projection:
        y = inverted_residual(net, net.input, c, 1, t, name="block")
    else:
        with net.scope("block"), net.scope("conv"):
            y = conv_bn_act(net, net.input, c * t, 1, act="relu6", names=("0", "1", "2"), name="0")
            y = conv_bn_act(net, y, c * t, 3, 1, groups=c * t, act="relu6", names=("0", "1", "2"), name="1")
    return net.analysis("with projection" if projection else "without projection", y)


def mobilenet_v2_without_projections(batch: int) -> Analysis:
    """MobileNet v2 with every block's 1×1 projection (and so its skip) removed: each block keeps
    its expansion to t × the designed input width and its depthwise convolution, and hands the wide
    tensor to the next block."""
    net = Net((3, 224, 224), batch=batch)
    numbered = ("0", "1", "2")
    with net.scope("features"):
        x = conv_bn_act(net, net.input, 32, 3, 2, act="relu6", names=numbered, name="0")
        designed, index = 32, 1
        for t, c, repeats, s in MOBILENET_V2_PLAN:
            for repeat in range(repeats):
                hidden = designed * t
                with net.scope(str(index)), net.scope("conv"):
                    if t != 1:
                        x = conv_bn_act(net, x, hidden, 1, act="relu6", names=numbered, name="0")
                    x = conv_bn_act(net, x, hidden, 3, s if repeat == 0 else 1, groups=hidden, act="relu6",
                                    names=numbered, name="1")
                designed, index = c, index + 1
        x = conv_bn_act(net, x, 1280, 1, act="relu6", names=numbered, name=str(index))
    x = net.add(AdaptivePool("avg", (1, 1)), x, name="adaptive_avg_pool2d")
    x = net.add(Flatten(), x, name="flatten")
    with net.scope("classifier"):
        x = net.add(Dropout(0.2), x, name="0")
        x = net.add(Linear(1000), x, name="1")
    return net.analysis("mobilenet-v2 without projections", x)
