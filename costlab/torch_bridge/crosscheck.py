"""costlab's MACs beside the real tools' counts: fvcore, PyTorch's counter, ptflops, thop,
torchinfo and torchprofile, each predicted by its own rules.

Each tool counts the same ``nn.Module`` — the module itself for a module target, the module
:func:`~costlab.torch_bridge.build.build_module` makes for an expression or preset. What it
should report is stated once, in the tool's convention profile (:mod:`costlab.analyses.conventions`, the
tables ``--convention`` prints): every costlab layer's terms by that tool's rules. The check sets
the tool's real count beside costlab's MACs and that prediction:

- agreement is ``exact`` (the tool = costlab), ``explained`` (the tool = the profile's
  prediction; the rules that make the difference are named with the same words as
  ``--convention``) or ``unexplained``;
- for fvcore and PyTorch's counter, which count per module, a *row* is one module call site: a
  leaf module's layers (``conv1``, or ``relu`` with ``relu_1`` when the module runs twice), or
  the functional ops a container runs itself (``layer1.0`` for its residual add), whose count is
  the container's own (its total minus its children's; a ModuleList the tool never sees called is
  transparent); the other tools are compared in total, and on parameters where they report them.

Cost of a check: PyTorch's counter runs on a meta-device copy at the full batch (no memory,
no arithmetic). The other tools need a real forward pass: fvcore runs at batch 1 and its counts
are multiplied by the batch (every fvcore rule is linear in the batch axis); ptflops, thop,
torchinfo and torchprofile run on a copy of the module at the full batch. A real run is skipped,
with the reason, when it would need more than :data:`FVCORE_MAX_BYTES` (parameters and
activations, float32).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
from torch import nn

from ..core.analysis import Analysis, Layer
from ..analyses.conventions import CONVENTIONS as CONVENTION_TABLES
from ..analyses.conventions import LayerCount, Profile, profile
from ..core.errors import CostlabError
from ..core.extras import install_command
from ..analyses.checks import Check, CheckRow, Checks, ParamCheck
from ..core.formulas import numel
from ..core.tools import PEER_TOOLS
from . import peers
from .build import build_module
from .run import real_copy
from .trace import detached, meta_copy, one_line, trace_module

#: The tools --check can run: those with a convention profile and a runner (costlab.torch_bridge.peers).
CHECKS = PEER_TOOLS
#: The tools whose counts come per module call site (rows); the others are checked in total.
PER_MODULE = ("fvcore", "torch")
#: A tool's unit per multiply-add: PyTorch's counter counts 2 FLOPs (its counts are halved here).
UNIT = {"torch": 2}

#: Largest real forward pass (parameters + activations, float32 bytes) a tool may run.
FVCORE_MAX_BYTES = 2 * 1024 ** 3

TOOL_NOTES: Mapping[str, str] = {
    "torch": "PyTorch's counter counts 2 FLOPs per MAC (its count is halved here)",
}

TOP_LEVEL = "(top level)"
#: The share of a check's difference that is the tool reporting per sample (ptflops at batch > 1).
PER_SAMPLE = "hook counts ÷ batch"


def tool_name(check: str) -> str:
    tool = CONVENTION_TABLES[check].tool
    return f"{tool} ÷ 2" if check in UNIT else tool


# --- what each tool should report, from its profile ---------------------------------------

@dataclass(frozen=True)
class _Prediction:
    """A profile's prediction for some layers, in multiply-adds: the count and each rule's share."""

    count: Fraction
    shares: Mapping[str, Fraction]


def _predict(layers: Sequence[LayerCount], check: str) -> _Prediction:
    unit = UNIT.get(check, 1)
    count = sum((layer.count for layer in layers), Fraction(0)) / unit
    shares: dict[str, Fraction] = {}
    for layer in layers:
        for term, n in layer.terms:
            share = n / unit - (layer.macs if term.primary else 0)
            if share:
                shares[term.label] = shares.get(term.label, Fraction(0)) + share
    return _Prediction(count, {k: v for k, v in shares.items() if v})


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


def run_peer(check: str, module: nn.Module | None, analysis: Analysis) -> tuple[Reference, int | None]:
    """ptflops, thop, torchinfo or torchprofile on a copy of the module at the full batch: its total
    (in multiply-adds) and the parameters it reports."""
    params = sum(p.numel() for p in module.parameters()) if module is not None else analysis.params
    if _forward_bytes(analysis, analysis.batch, params) > FVCORE_MAX_BYTES:
        raise _Skip(f"a real forward pass needs about {_forward_bytes(analysis, analysis.batch, params) / 1024 ** 3:.1f}"
                    f" GiB (limit {FVCORE_MAX_BYTES / 1024 ** 3:.0f} GiB)")
    if not peers.available(check):
        raise _Skip(f"{check} is not installed ({install_command('peers')})")
    real = real_copy(_real_module(module, analysis))
    first = next(iter([*real.parameters(), *real.buffers()]), None)
    device = first.device if first is not None else torch.device("cpu")
    x = torch.randn((analysis.batch,) + tuple(analysis.input), device=device)
    counted = peers.count(check, real, x)
    return Reference({}, counted.macs, analysis.batch, 1, {"raw": counted.raw}), counted.params


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


def _number(value: float | Fraction) -> int | float:
    if isinstance(value, Fraction):
        return int(value) if value.denominator == 1 else float(value)
    return int(value) if float(value).is_integer() else value


def _agreement(reference: float, costlab: int, predicted: Fraction) -> str:
    if reference == costlab:
        return "exact"
    return "explained" if reference == predicted else "unexplained"


def compare_with(analysis: Analysis, owners: Mapping[str, str], module: nn.Module, reference: Reference,
                 check: str, unsupported_paths: set[str], tool: Profile, params: int | None = None) -> Check:
    """The check: the total against costlab and the profile, rows per call site for the tools that
    count per module, parameters for those that report them."""
    counts = {layer.name: layer for layer in tool.layers}
    rows = []
    worst = "exact"
    totals: dict[str, Fraction] = {}
    if check in PER_MODULE:
        groups: dict[str, list[Layer]] = {}
        paths = [p for p, _ in module.named_modules()]
        for layer in analysis.layers:
            groups.setdefault(_owner_of(layer.name, owners, paths), []).append(layer)
        for path, count in reference.own.items():
            if count and path not in groups:
                groups[path] = []
        for owner, layers in groups.items():
            costlab = sum(layer.macs for layer in layers)
            ref = reference.own.get(owner, 0)
            prediction = _predict([counts[layer.name] for layer in layers], check)
            agreement = _agreement(ref, costlab, prediction.count)
            if not (costlab or ref or prediction.count):
                continue
            name = layers[0].name if len(layers) == 1 else (owner or TOP_LEVEL)
            shares = prediction.shares if agreement == "explained" else {}
            operators = reference.extra.get("operators", {}).get(owner)
            rows.append(CheckRow(
                name, owner, tuple(layer.name for layer in layers), costlab, _number(ref),
                _number(prediction.count), _number(ref - costlab), agreement, tuple(sorted(shares)),
                note=("costlab lists an unsupported op here"
                      if agreement == "unexplained" and owner in unsupported_paths else ""),
                operators={op: _number(count) for op, count in operators.items()} if operators else None))
            for label, share in shares.items():
                totals[label] = totals.get(label, Fraction(0)) + share
            if agreement == "unexplained":
                worst = "unexplained"
            elif agreement == "explained" and worst == "exact":
                worst = "explained"
    whole = _predict(tool.layers, check)
    costlab_total = analysis.macs
    total_agreement = _agreement(reference.total, costlab_total, whole.count)
    if check not in PER_MODULE and total_agreement == "explained":
        totals = dict(whole.shares)
        # a tool that reports per sample (ptflops' hooks): the layers' MACs it stands for, ÷ batch
        per_sample = sum((layer.macs for layer in tool.layers), Fraction(0)) - costlab_total
        if per_sample:
            totals[PER_SAMPLE] = per_sample
    order = ["exact", "explained", "unexplained"]
    agreement = max(worst, total_agreement, key=order.index)
    rules = {d.label: d.rule for d in tool.differences()}
    rules[PER_SAMPLE] = (f"{tool.convention.tool} divides each module hook's count by the batch size "
                         f"({analysis.batch}): MACs per sample")
    conventions = {k: _number(v) for k, v in sorted(totals.items())}
    param_check = None
    if params is not None:
        param_check = ParamCheck(params, tool.params, analysis.params,
                                 _agreement(params, analysis.params, Fraction(tool.params)))
        if param_check.agreement == "unexplained":
            agreement = "unexplained"
    return Check(
        tool_name(check), "ok", batch=reference.batch, scale=reference.scale, total=_number(reference.total),
        costlab=costlab_total, expected=_number(whole.count), difference=_number(reference.total - costlab_total),
        agreement=agreement, conventions=conventions, layers=tuple(rows),
        explanations={name: rules.get(name, name) for name in conventions}, params=param_check,
        note=TOOL_NOTES.get(check, ""), flops=_number(reference.extra["flops"]) if check == "torch" else None,
        skipped_ops=dict(reference.extra.get("skipped_ops", {})) if check == "fvcore" else None)


def cross_check(analysis: Analysis, module: nn.Module | None = None,
                checks: Sequence[str] = ("fvcore", "torch"),
                progress: Callable[[str], None] | None = None) -> Analysis:
    """``analysis`` with ``checks`` filled: each tool's real count beside costlab's and beside what
    the tool's own rules (its convention profile) predict. ``progress`` is called after each tool.

    ``module``: the module the analysis describes (a module target); None builds it from the
    analysis with :func:`build_module`. The module is run in eval mode with its hooks detached,
    and put back as it was; ptflops, thop, torchinfo and torchprofile run on a copy.
    """
    unknown = [c for c in checks if c not in CHECKS]
    if unknown or not checks:
        raise CostlabError(f"unknown check {', '.join(unknown) or '(none)'} (known: {', '.join(CHECKS)})")
    structure = module if module is not None else build_module(analysis, device="meta")
    trace = trace_module(structure, analysis.input, batch=analysis.batch, dtype=analysis.dtype)
    unsupported_paths = {"" if u.path == TOP_LEVEL else u.path for u in trace.analysis.unsupported}
    results = analysis.checks or Checks()
    for check in checks:
        if progress is not None and check != checks[0]:
            progress(f"{analysis.name}: {checks[checks.index(check) - 1]}")
        params = None
        try:
            tool = profile(analysis, check)
            if check == "torch":
                reference = run_torch(structure, analysis.input, analysis.batch)
            elif check == "fvcore":
                reference = run_fvcore(module, analysis)
            else:
                reference, params = run_peer(check, module, analysis)
        except _Skip as skip:
            results = results.with_check(check, Check(tool_name(check), "skipped", str(skip)))
            continue
        except CostlabError as error:  # a profile that cannot price a layer says so
            results = results.with_check(check, Check(tool_name(check), "failed", str(error)))
            continue
        except Exception as error:  # noqa: BLE001 - a tool that cannot run this module
            results = results.with_check(check, Check(tool_name(check), "failed", one_line(error)))
            continue
        results = results.with_check(check, compare_with(analysis, trace.owners, structure, reference, check,
                                                         unsupported_paths, tool, params))
    if progress is not None:
        progress(f"{analysis.name}: {checks[-1]}")
    return analysis.with_feature(results)


def unexplained(analysis: Analysis) -> list[str]:
    """The checks of ``analysis`` that found an unexplained difference."""
    return analysis.checks.unexplained() if analysis.checks else []
