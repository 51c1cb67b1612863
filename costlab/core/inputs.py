"""What a module's forward pass is given: typed input specs, torch-free.

The classic input is one float tensor, ``--input CxHxW`` / ``input=(C, H, W)``, with ``--batch``
in front. A module may take more: an integer ``input_ids``, several positional tensors, keyword
arguments, a list of images. On the command line each ``--input`` is one argument:

- ``3x224x224`` — a float32 tensor of that per-sample shape (batch axis in front);
- ``int64:128`` — a dtype before the shape;
- ``NAME=DTYPE:SHAPE`` or ``NAME=SHAPE`` — a keyword argument (``input_ids=int64:128``);
- ``list:3x800x800`` (or ``NAME=list:DTYPE:SHAPE``) — a list of ``--batch`` tensors of that shape,
  each without a batch axis (torchvision's detection models take a list of images).

Positional inputs are passed in the order given, keywords by name. Generated values (for a run
on real tensors) are uniform in [0, 1) for floating types and zeros for integer types, so any
integer input is a valid index for any embedding lookup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import CostlabError
from .specs import Shape

#: The dtypes an input spec may name (torch's names), with bytes per element.
INPUT_DTYPES: Mapping[str, int] = {
    "float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int64": 8, "int32": 4, "int16": 2,
    "int8": 1, "uint8": 1, "bool": 1,
}
_ALIASES = {"float": "float32", "half": "float16", "double": "float64", "long": "int64", "int": "int32"}
_NAME = re.compile(r"^([A-Za-z_]\w*)=(.*)$", re.S)


class InputError(CostlabError):
    """An input spec that cannot be read, or that does not fit the forward pass."""


@dataclass(frozen=True)
class TensorSpec:
    """A tensor to make: its whole shape (batch axis included) and dtype."""

    shape: Shape
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.dtype not in INPUT_DTYPES:
            raise InputError(f"unknown dtype {self.dtype!r} (known: {', '.join(INPUT_DTYPES)})")
        if any(not isinstance(n, int) or isinstance(n, bool) or n < 0 for n in self.shape):
            raise InputError(f"tensor sizes must be non-negative integers, got {self.shape!r}")

    @property
    def floating(self) -> bool:
        return self.dtype.startswith(("float", "bfloat"))

    def text(self) -> str:
        return f"{self.dtype}:{'x'.join(map(str, self.shape)) or 'scalar'}"


@dataclass(frozen=True)
class Inputs:
    """Positional and keyword arguments of a forward pass; leaves are TensorSpecs, tensors or
    plain Python values, nested in lists, tuples and dicts."""

    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


def tensor_leaves(value: Any) -> list[tuple[str, Any]]:
    """(path, leaf) of every TensorSpec or tensor in ``value``: '0', 'input_ids', '0.1', ..."""
    found: list[tuple[str, Any]] = []

    def visit(item: Any, path: str) -> None:
        if isinstance(item, TensorSpec) or _is_tensor(item):
            found.append((path, item))
        elif isinstance(item, (list, tuple)):
            for i, sub in enumerate(item):
                visit(sub, f"{path}.{i}" if path else str(i))
        elif isinstance(item, dict):
            for key, sub in item.items():
                visit(sub, f"{path}.{key}" if path else str(key))

    if isinstance(value, Inputs):
        for i, arg in enumerate(value.args):
            visit(arg, str(i))
        for key, arg in value.kwargs.items():
            visit(arg, key)
    else:
        visit(value, "")
    return found


def _is_tensor(value: Any) -> bool:
    """A torch tensor (told by its type: a nested tensor's ``shape`` raises when read)."""
    kind = type(value)
    return kind.__module__.startswith("torch") and hasattr(kind, "shape") and hasattr(kind, "dtype")


def headline(inputs: Inputs) -> tuple[Shape, int]:
    """The (per-sample shape, batch) an analysis reports: those of the first tensor; a list of
    tensors reports one element's shape and the list's length."""
    for item in (*inputs.args, *inputs.kwargs.values()):
        if isinstance(item, (list, tuple)) and item and all(
                isinstance(t, TensorSpec) or _is_tensor(t) for t in item):
            return tuple(item[0].shape), len(item)
        leaves = tensor_leaves(item)
        if leaves:
            shape = tuple(leaves[0][1].shape)
            return (shape[1:], shape[0]) if len(shape) > 1 else (shape, 1)
    return (), 1


def describe(inputs: Inputs) -> list[dict[str, Any]]:
    """The inputs as the JSON contract's ``inputs`` list: name (position or keyword), dtype, shape."""
    described = []
    for path, leaf in tensor_leaves(inputs):
        dtype = leaf.dtype if isinstance(leaf, TensorSpec) else str(leaf.dtype).replace("torch.", "")
        described.append({"name": path, "dtype": dtype, "shape": list(leaf.shape)})
    return described


#: The most tensors a ``list:`` input holds (one per sample of --batch).
MAX_LIST_TENSORS = 4096
#: The most digits of one size of a typed input (a real tensor's size fits in 64 bits).
MAX_TYPED_DIGITS = 18


def _shape(text: str, where: str) -> Shape:
    parts = text.lower().replace("×", "x").split("x")
    sizes = []
    for part in parts:
        part = part.strip()
        if part.isascii() and part.isdigit() and len(part) > MAX_TYPED_DIGITS:
            raise InputError(f"bad --input {where!r}: a tensor's size has at most {MAX_TYPED_DIGITS} digits "
                             f"(one to be made or traced), got {len(part)}")
        if not (part.isascii() and part.isdigit()):
            raise InputError(f"bad --input {where!r}: sizes must be positive integers, as in 3x224x224")
        sizes.append(int(part))
    if not 1 <= len(sizes) <= 8 or any(n <= 0 for n in sizes):
        raise InputError(f"bad --input {where!r}: expected one to eight positive sizes, as in 3x224x224")
    return tuple(sizes)


def is_typed(text: str) -> bool:
    """Whether an --input names a dtype, a keyword or a list (anything beyond a bare CxHxW)."""
    return ":" in text or "=" in text


def parse_input_spec(text: str, batch: int) -> tuple[str | None, Any]:
    """One --input → (keyword or None, TensorSpec or list of TensorSpecs) with ``batch`` applied."""
    name = None
    body = text.strip()
    named = _NAME.match(body)
    if named:
        name, body = named.group(1), named.group(2).strip()
    is_list = body.startswith("list:")
    if is_list:
        body = body[len("list:"):]
    dtype = "float32"
    if ":" in body:
        dtype, _, body = body.partition(":")
        dtype = _ALIASES.get(dtype.strip().lower(), dtype.strip().lower())
        if dtype not in INPUT_DTYPES:
            raise InputError(f"bad --input {text!r}: unknown dtype {dtype!r} "
                             f"(known: {', '.join(INPUT_DTYPES)})")
    shape = _shape(body, text)
    if is_list:
        if batch > MAX_LIST_TENSORS:  # refused before any of the list is made
            raise InputError(f"bad --input {text!r}: a list of --batch {batch} tensors is more than "
                             f"{MAX_LIST_TENSORS}, the most one forward is traced with")
        return name, [TensorSpec(shape, dtype) for _ in range(batch)]
    return name, TensorSpec((batch,) + shape, dtype)


def parse_inputs(texts: list[str] | tuple[str, ...], batch: int) -> Inputs:
    """Every --input in order → the forward's positional and keyword arguments."""
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for text in texts:
        name, value = parse_input_spec(text, batch)
        if name is None:
            if kwargs:
                raise InputError(f"positional --input {text!r} after a keyword input")
            args.append(value)
        elif name in kwargs:
            raise InputError(f"--input {name}= is given twice")
        else:
            kwargs[name] = value
    return Inputs(tuple(args), kwargs)
