"""costlab's MACs beside fvcore's ``FlopCountAnalysis`` and PyTorch's ``FlopCounterMode``, per layer.

Each reference counts the same ``nn.Module`` — the module itself for a module target, the
module :func:`~costlab.torch_bridge.build.build_module` makes for an expression or preset —
and its per-module counts are set beside costlab's layers:

- a *row* is one module call site: a leaf module's layers (``conv1``, or ``relu`` with
  ``relu_1`` when the module runs twice), or the functional ops a container runs itself
  (``layer1.0`` for its residual add), whose reference count is the container's own
  (its total minus its children's);
- each costlab layer predicts what the reference should report by the reference's own
  rules (:data:`CONVENTIONS`): fvcore counts 1 per MAC for conv/linear/matmul and also
  counts batch norm, layer/group/instance norm, nearest/bilinear upsampling and
  adaptive_avg_pool2d; it has no rule for scaled-dot-product attention or ``baddbmm``.
  PyTorch's counter counts 2 FLOPs per MAC, halved here, and nothing else;
- agreement is ``exact`` (reference = costlab), ``explained`` (reference = the prediction,
  with the named conventions that make the difference) or ``unexplained``.

Cost of a check: PyTorch's counter runs on a meta-device copy at the full batch (no memory,
no arithmetic). fvcore needs a real forward pass (``torch.jit`` tracing cannot run on meta
tensors): it runs at batch 1 and its counts are multiplied by the batch (every fvcore rule
is linear in the batch axis), and it is skipped, with the reason, when that forward pass
would need more than :data:`FVCORE_MAX_BYTES` (parameters and activations, float32).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping, Sequence

import torch
from torch import nn

from ..analysis import Analysis, Layer
from ..errors import CostlabError
from ..formulas import numel
from ..specs import AdaptivePool, Attention, Norm, Upsample
from .build import build_module
from .trace import detached, load_callable, meta_copy, one_line, trace_module

CHECKS = ("fvcore", "torch")

#: Largest real forward pass (parameters + activations, float32 bytes) fvcore may run.
FVCORE_MAX_BYTES = 2 * 1024 ** 3

#: Named conventions: why a reference's count differs from costlab's MACs.
CONVENTIONS: Mapping[str, str] = {
    "fvcore-batch-norm": "fvcore counts batch norm at inference: 1 per element, 2 with affine",
    "fvcore-batch-norm-batch-stats": "fvcore counts batch norm without running statistics: "
                                     "4 per element, 5 with affine",
    "fvcore-norm": "fvcore counts layer, group and instance norm: 4 per element, 5 with affine",
    "fvcore-adaptive-avg-pool2d": "fvcore counts adaptive_avg_pool2d: 1 per input element",
    "fvcore-upsample-nearest2d": "fvcore counts upsample_nearest2d: 1 per output element",
    "fvcore-upsample-bilinear2d": "fvcore counts upsample_bilinear2d: 4 per output element",
    "fvcore-no-sdpa": "fvcore has no rule for scaled_dot_product_attention (counts 0)",
    "fvcore-no-baddbmm": "fvcore has no rule for baddbmm: nn.MultiheadAttention's masked q·kᵀ counts 0",
    "fvcore-matmul-broadcast": "fvcore's matmul rule (elements of the first operand × last size of the "
                               "second) misses the second operand's broadcast batch axes",
    "torch-flops": "PyTorch's counter counts 2 FLOPs per MAC (its count is halved here)",
}

TOOLS = {"fvcore": "fvcore FlopCountAnalysis", "torch": "torch.utils.flop_counter.FlopCounterMode ÷ 2"}
TOP_LEVEL = "(top level)"

_Alternative = tuple[int, tuple[tuple[str, int], ...]]  # (predicted count, ((convention, delta), ...))


# --- what each reference should report for a costlab layer ------------------------------

def fvcore_alternatives(layer: Layer) -> list[_Alternative]:
    """The counts fvcore may report for ``layer`` by its rules, each with the conventions used."""
    spec, macs = layer.spec, layer.macs

    def differs(count: int, name: str) -> _Alternative:
        return (count, ((name, count - macs),) if count != macs else ())

    if isinstance(spec, Norm):
        elements = numel(layer.input_shapes[0])
        if spec.kind == "batch" and spec.track_running_stats:
            return [differs(elements * (2 if spec.affine else 1), "fvcore-batch-norm")]
        name = "fvcore-batch-norm-batch-stats" if spec.kind == "batch" else "fvcore-norm"
        return [differs(elements * (5 if spec.affine else 4), name)]
    if isinstance(spec, AdaptivePool) and spec.mode == "avg" and len(spec.output_size) == 2:
        return [differs(numel(layer.input_shapes[0]), "fvcore-adaptive-avg-pool2d")]
    if isinstance(spec, Upsample) and len(spec.size) == 2 and spec.mode in ("nearest", "bilinear"):
        per_output = 1 if spec.mode == "nearest" else 4
        return [differs(per_output * numel(layer.output), f"fvcore-upsample-{spec.mode}2d")]
    if isinstance(spec, Attention):
        if layer.source == "nn.MultiheadAttention":  # need_weights: bmm, bmm; with a mask: baddbmm, bmm
            q, k, v = layer.input_shapes
            weighted_sum = macs * v[-1] // (q[-1] + v[-1])
            return [(macs, ()), differs(weighted_sum, "fvcore-no-baddbmm"), differs(0, "fvcore-no-sdpa")]
        return [differs(0, "fvcore-no-sdpa")]
    if spec.op == "matmul" and len(layer.input_shapes) == 2:
        a, b = layer.input_shapes
        if a and b and len(b) > 1:
            return [differs(numel(a) * b[-1], "fvcore-matmul-broadcast")]
    return [(macs, ())]


def torch_alternatives(layer: Layer) -> list[_Alternative]:
    """PyTorch's counter, halved, counts exactly the MACs of conv, linear, matmul and attention."""
    return [(layer.macs, ())]


PREDICTORS = {"fvcore": fvcore_alternatives, "torch": torch_alternatives}
MAX_COMBINATIONS = 256


def _combinations(layers: Sequence[Layer], check: str) -> list[_Alternative]:
    """Every sum the reference may report for a row, from its layers' alternatives."""
    sums: dict[int, tuple[tuple[str, int], ...]] = {0: ()}
    for layer in layers:
        options = PREDICTORS[check](layer)
        grown: dict[int, tuple[tuple[str, int], ...]] = {}
        for total, used in sums.items():
            for count, conventions in options:
                grown.setdefault(total + count, used + conventions)
        sums = dict(list(grown.items())[:MAX_COMBINATIONS])
    return list(sums.items())


# --- running the references --------------------------------------------------------------

@dataclass(frozen=True)
class Reference:
    """One reference run: per module path, its own count (its total minus its children's)."""

    own: Mapping[str, float]
    total: float
    batch: int
    scale: int
    extra: Mapping[str, Any]


def own_counts(inclusive: Mapping[str, float], module: nn.Module) -> dict[str, float]:
    """Inclusive per-module counts → each module's own share (minus its direct children's).

    A module the reference never saw called (a ModuleList or ModuleDict looped over in the
    parent's forward) holds exactly its children's counts: it is transparent, its own share 0."""
    children_of = {path: [f"{path}.{name}" if path else name for name, _ in m.named_children()]
                   for path, m in module.named_modules()}
    seen: dict[str, float] = {}

    def total(path: str) -> float:
        if path not in seen:
            seen[path] = inclusive[path] if path in inclusive else sum(total(c) for c in children_of.get(path, ()))
        return seen[path]

    return {path: total(path) - sum(total(c) for c in children) for path, children in children_of.items()}


def run_torch(module: nn.Module, input: Sequence[int], batch: int) -> Reference:
    """FlopCounterMode on a meta-device copy at the full batch (shapes only: no memory, no arithmetic)."""
    from torch.utils.flop_counter import FlopCounterMode

    clone = meta_copy(module)
    x = torch.empty((batch,) + tuple(input), device="meta")
    with torch.enable_grad(), FlopCounterMode(display=False) as counter:
        clone(x)
    root = type(clone).__name__
    inclusive: dict[str, float] = {}
    for name, per_op in counter.get_flop_counts().items():
        if name == "Global":
            continue
        path = "" if name == root else name[len(root) + 1:] if name.startswith(root + ".") else None
        if path is not None:
            inclusive[path] = sum(per_op.values()) / 2
    total = counter.get_total_flops()
    return Reference(own_counts(inclusive, clone), total / 2, batch, 1, {"flops": total})


def _real_module(module: nn.Module | None, analysis: Analysis) -> nn.Module:
    """The module fvcore runs: the given one, or the analysis built on the CPU with zeroed weights."""
    if module is not None:
        return module
    built = build_module(analysis, device="meta").to_empty(device="cpu")
    with torch.no_grad():
        for tensor in [*built.parameters(), *built.buffers()]:
            tensor.zero_()
    return built.eval()


def _forward_bytes(analysis: Analysis, batch: int, params: int) -> int:
    per_sample = sum(layer.activations for layer in analysis.layers) // max(analysis.batch, 1)
    return 4 * (params + batch * per_sample + batch * numel(analysis.input))


def run_fvcore(module: nn.Module | None, analysis: Analysis) -> Reference:
    """fvcore's FlopCountAnalysis on a real forward pass (see the module docstring for the batch)."""
    with warnings.catch_warnings():  # fvcore's imports warn about torch.jit APIs on recent torch
        warnings.simplefilter("ignore")
        from fvcore.nn import FlopCountAnalysis

    params = (sum(p.numel() for p in module.parameters()) if module is not None else analysis.params)
    batch = 1
    if _forward_bytes(analysis, batch, params) > FVCORE_MAX_BYTES:
        raise _Skip(f"a real forward pass at batch 1 needs about "
                    f"{_forward_bytes(analysis, 1, params) / 1024 ** 3:.1f} GiB "
                    f"(limit {FVCORE_MAX_BYTES / 1024 ** 3:.0f} GiB)")
    real = _real_module(module, analysis)
    first = next(iter([*real.parameters(), *real.buffers()]), None)
    device = first.device if first is not None else torch.device("cpu")
    x = torch.randn((batch,) + tuple(analysis.input), device=device)
    # grad stays on: in eval without grad nn.MultiheadAttention takes a fused kernel fvcore cannot see into
    with detached(real), torch.enable_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fvcore_logger = logging.getLogger("fvcore")
        level = fvcore_logger.level
        fvcore_logger.setLevel(logging.ERROR)
        try:
            counter = FlopCountAnalysis(real, x)
            counter.unsupported_ops_warnings(False)
            counter.uncalled_modules_warnings(False)
            counter.tracer_warnings("none")
            inclusive = dict(counter.by_module())
            by_operator = counter.by_module_and_operator()
            skipped = dict(counter.unsupported_ops())
        finally:
            fvcore_logger.setLevel(level)
    scale = analysis.batch // batch
    own = {path: count * scale for path, count in own_counts(inclusive, real).items()}
    operators: dict[str, dict[str, float]] = {}
    for path, m in real.named_modules():
        children = [f"{path}.{name}" if path else name for name, _ in m.named_children()]
        if path and path not in inclusive:  # never called: transparent, like own_counts
            operators[path] = {}
            continue
        mine = dict(by_operator.get(path, {}))
        for child in children:
            for op, count in _operators_seen(child, by_operator, inclusive, real).items():
                mine[op] = mine.get(op, 0) - count
        operators[path] = {op: count * scale for op, count in mine.items() if count}
    return Reference(own, inclusive.get("", 0) * scale, batch, scale,
                     {"skipped_ops": skipped, "operators": operators})


def _operators_seen(path: str, by_operator: Mapping[str, Mapping[str, float]], inclusive: Mapping[str, float],
                    root: nn.Module) -> dict[str, float]:
    """A module's inclusive per-operator counts; for one never called, the sum of its children's."""
    if path in inclusive:
        return dict(by_operator.get(path, {}))
    summed: dict[str, float] = {}
    for name, _ in root.get_submodule(path).named_children():
        for op, count in _operators_seen(f"{path}.{name}", by_operator, inclusive, root).items():
            summed[op] = summed.get(op, 0) + count
    return summed


class _Skip(Exception):
    """A reference that is not run, with the reason."""


# --- comparing ---------------------------------------------------------------------------

def _owner_of(name: str, owners: Mapping[str, str], paths: Iterable[str]) -> str:
    if name in owners:
        return owners[name]
    known = set(paths)
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        if ".".join(parts[:cut]) in known:
            return ".".join(parts[:cut])
    return ""


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _agreement(reference: float, costlab: int, options: list[_Alternative]) -> tuple[str, int, dict[str, int]]:
    """('exact' | 'explained' | 'unexplained', the prediction, convention → its share of the difference)."""
    if reference == costlab:
        return "exact", costlab, {}
    for predicted, conventions in options:
        if reference == predicted:
            shares: dict[str, int] = {}
            for name, delta in conventions:
                shares[name] = shares.get(name, 0) + delta
            return "explained", predicted, {k: v for k, v in shares.items() if v}
    nearest = min((p for p, _ in options), key=lambda p: abs(p - reference))
    return "unexplained", nearest, {}


def compare_with(analysis: Analysis, owners: Mapping[str, str], module: nn.Module,
                 reference: Reference, check: str, unsupported_paths: set[str]) -> dict[str, Any]:
    """The check's JSON entry: rows per call site, the total, and the conventions used."""
    groups: dict[str, list[Layer]] = {}
    paths = [p for p, _ in module.named_modules()]
    for layer in analysis.layers:
        groups.setdefault(_owner_of(layer.name, owners, paths), []).append(layer)
    for path, count in reference.own.items():
        if count and path not in groups:
            groups[path] = []
    rows = []
    totals: dict[str, int] = {}
    worst = "exact"
    expected_total = 0
    for owner, layers in groups.items():
        costlab = sum(layer.macs for layer in layers)
        ref = reference.own.get(owner, 0)
        options = _combinations(layers, check)
        agreement, predicted, shares = _agreement(ref, costlab, options)
        expected_total += predicted
        if not (costlab or ref or predicted):
            continue
        name = layers[0].name if len(layers) == 1 else (owner or TOP_LEVEL)
        row: dict[str, Any] = {"name": name, "module": owner, "layers": [layer.name for layer in layers],
                               "costlab": costlab, "reference": _number(ref), "expected": predicted,
                               "difference": _number(ref - costlab), "agreement": agreement,
                               "conventions": sorted(shares)}
        if agreement == "unexplained" and owner in unsupported_paths:
            row["note"] = "costlab lists an unsupported op here"
        operators = reference.extra.get("operators", {}).get(owner)
        if operators:
            row["operators"] = {op: _number(count) for op, count in operators.items()}
        rows.append(row)
        for conv, share in shares.items():
            totals[conv] = totals.get(conv, 0) + share
        if agreement == "unexplained":
            worst = "unexplained"
        elif agreement == "explained" and worst == "exact":
            worst = "explained"
    costlab_total = analysis.macs
    if reference.total == costlab_total:
        total_agreement = "exact"
    elif reference.total == expected_total:
        total_agreement = "explained"
    else:
        total_agreement = "unexplained"
    order = ["exact", "explained", "unexplained"]
    agreement = max(worst, total_agreement, key=order.index)
    entry: dict[str, Any] = {
        "tool": TOOLS[check], "status": "ok", "batch": reference.batch, "scale": reference.scale,
        "total": _number(reference.total), "costlab": costlab_total, "expected": expected_total,
        "difference": _number(reference.total - costlab_total), "agreement": agreement,
        "conventions": {k: v for k, v in sorted(totals.items())}, "layers": rows,
    }
    entry["explanations"] = {name: CONVENTIONS[name] for name in entry["conventions"]}
    if check == "torch":
        entry["flops"] = _number(reference.extra["flops"])
        entry["convention"] = CONVENTIONS["torch-flops"]
    if check == "fvcore":
        entry["skipped_ops"] = dict(reference.extra.get("skipped_ops", {}))
    return entry


def cross_check(analysis: Analysis, module: nn.Module | None = None,
                checks: Sequence[str] = CHECKS) -> Analysis:
    """``analysis`` with ``checks`` filled: fvcore's and PyTorch's counts beside costlab's.

    ``module``: the module the analysis describes (a module target); None builds it from the
    analysis with :func:`build_module`. The module is run in eval mode with its hooks detached,
    and put back as it was.
    """
    unknown = [c for c in checks if c not in CHECKS]
    if unknown or not checks:
        raise CostlabError(f"unknown check {', '.join(unknown) or '(none)'} (known: {', '.join(CHECKS)})")
    structure = module if module is not None else build_module(analysis, device="meta")
    trace = trace_module(structure, analysis.input, batch=analysis.batch, dtype=analysis.dtype)
    unsupported_paths = {"" if u.path == TOP_LEVEL else u.path for u in trace.analysis.unsupported}
    results: dict[str, Any] = dict(analysis.checks)
    for check in checks:
        try:
            if check == "torch":
                reference = run_torch(structure, analysis.input, analysis.batch)
            else:
                reference = run_fvcore(module, analysis)
        except _Skip as skip:
            results[check] = {"tool": TOOLS[check], "status": "skipped", "reason": str(skip)}
            continue
        except CostlabError:
            raise
        except Exception as error:  # noqa: BLE001 - a reference that cannot run this module
            results[check] = {"tool": TOOLS[check], "status": "failed", "reason": one_line(error)}
            continue
        results[check] = compare_with(analysis, trace.owners, structure, reference, check, unsupported_paths)
    return replace(analysis, checks=results)


def check_target(analysis: Analysis, target: Any, options: Mapping[str, Any] | None,
                 checks: Sequence[str]) -> Analysis:
    """The cross-check of a target: a module target's own module, anything else built from specs."""
    from ..targets import is_module_target

    module = None
    if isinstance(target, nn.Module):
        module = target
    elif isinstance(target, str) and is_module_target(target) and analysis.kind == "module":
        module = load_callable(target, options)
    return cross_check(analysis, module, checks)


def unexplained(analysis: Analysis) -> list[str]:
    """The checks of ``analysis`` that found an unexplained difference."""
    return [name for name, entry in analysis.checks.items()
            if isinstance(entry, dict) and entry.get("agreement") == "unexplained"]
