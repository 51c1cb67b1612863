"""Recording a network: a builder that applies specs to values and prices each layer on the spot.

``Net`` is the one mutable object of the core and lives only while a network is being
described; what it produces (:class:`~costlab.core.analysis.Analysis`) is immutable. Layer
names are hierarchical, dot-separated, e.g. ``layer3.1.conv2``: :meth:`Net.scope` opens
a level, and a block is simply a function that adds layers inside a scope.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

from .analysis import Analysis, Layer
from .errors import SpecError
from .formulas import cost_of, numel
from .sizes import check_size
from .specs import Shape, Spec

DTYPE_BYTES = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}


@dataclass(frozen=True)
class Value:
    """A tensor flowing through the network: the layer that made it and its shape (batch first)."""

    node: str
    shape: Shape

    @property
    def channels(self) -> int:
        """Size of axis 1 (channels of a C×H×W tensor, features of a vector)."""
        if len(self.shape) < 2:
            raise SpecError(f"value from {self.node!r} has no channel axis")
        return self.shape[1]


class Net:
    """Builds a network layer by layer; each :meth:`add` computes its output shape and cost."""

    INPUT = "input"

    def __init__(self, input_shape: Sequence[int], batch: int = 1, dtype: str = "float32") -> None:
        if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Iterable):
            raise SpecError(f"an input shape is a sequence of sizes such as (3, 224, 224), got {input_shape!r}")
        input_shape = tuple(input_shape)
        if not input_shape or any(not check_size(n) for n in input_shape):
            raise SpecError(f"input sizes must be positive integers, got {input_shape!r}")
        input_shape = tuple(int(n) for n in input_shape)
        if not check_size(batch):
            raise SpecError(f"batch must be a positive integer, got {batch!r}")
        batch = int(batch)
        if not isinstance(dtype, str) or dtype not in DTYPE_BYTES:
            raise SpecError(f"unknown dtype {dtype!r} (known: {', '.join(DTYPE_BYTES)})")
        self.dtype = dtype
        self.batch = batch
        self.input = Value(self.INPUT, (batch,) + input_shape)
        self._layers: list[Layer] = []
        self._names: set[str] = {self.INPUT}
        self._scopes: list[str] = []
        self._training_only = False
        self._counters: dict[str, int] = {}

    # --- naming -------------------------------------------------------------------
    @contextmanager
    def scope(self, name: str) -> Iterator[None]:
        """Layers added inside get ``name.`` prepended to their names."""
        if not name or "." in name:
            raise SpecError(f"scope names must be non-empty and dot-free, got {name!r}")
        self._scopes.append(name)
        try:
            yield
        finally:
            self._scopes.pop()

    @contextmanager
    def training_only(self) -> Iterator[None]:
        """Layers added inside run in training only (GoogLeNet's auxiliary heads)."""
        previous, self._training_only = self._training_only, True
        try:
            yield
        finally:
            self._training_only = previous

    def _qualified(self, name: str) -> str:
        return ".".join(self._scopes + [name])

    def auto_name(self, prefix: str) -> str:
        """``prefix`` + the next free number within the current scope: conv1, conv2, ..."""
        key = self._qualified(prefix)
        number = self._counters.get(key, 0) + 1
        while self._qualified(f"{prefix}{number}") in self._names:
            number += 1
        self._counters[key] = number
        return f"{prefix}{number}"

    # --- layers -------------------------------------------------------------------
    def add(self, spec: Spec, *inputs: Value, name: str | None = None) -> Value:
        """Apply ``spec`` to ``inputs`` (default: nothing is implied, pass them), record and price it."""
        if not inputs:
            raise SpecError(f"layer {name or spec.default_name!r} needs an input")
        name = name if name is not None else self.auto_name(spec.default_name)
        qualified = self._qualified(name)
        if qualified in self._names:
            raise SpecError(f"duplicate layer name {qualified!r}")
        try:
            cost = cost_of(spec, [v.shape for v in inputs])
        except SpecError as error:
            raise SpecError(f"layer {qualified!r}: {error}") from None
        itemsize = DTYPE_BYTES[self.dtype]
        moved = sum(numel(v.shape) for v in inputs) + cost.params + cost.buffers + numel(cost.output)
        layer = Layer(
            name=qualified, spec=spec, inputs=tuple(v.node for v in inputs),
            input_shapes=tuple(v.shape for v in inputs), output=cost.output, macs=cost.macs,
            params=cost.params, buffers=cost.buffers, ops=cost.ops,
            activations=numel(cost.output), bytes=moved * itemsize, formula=cost.formula,
            training_only=self._training_only,
        )
        self._layers.append(layer)
        self._names.add(qualified)
        return Value(qualified, cost.output)

    def analysis(self, name: str, output: Value | None = None, **fields: object) -> Analysis:
        """Freeze what was recorded into an :class:`Analysis` (output: the last inference layer)."""
        inference = tuple(layer for layer in self._layers if not layer.training_only)
        training = tuple(layer for layer in self._layers if layer.training_only)
        if output is None:
            output = Value(inference[-1].name, inference[-1].output) if inference else self.input
        return Analysis(name=name, input=self.input.shape[1:], batch=self.batch,
                        output=output.shape[1:], layers=inference, training_only=training,
                        dtype=self.dtype, **fields)  # type: ignore[arg-type]
