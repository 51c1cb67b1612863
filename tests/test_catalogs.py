"""Each spec family's catalog in costlab.core.specs (ACTIVATIONS, ARITHMETIC, CONVS, NORMS, POOLS, UPSAMPLES,
PADS, RECURRENTS) is the one
statement of its kinds: the torch bridge's module, function and aten rules, the builder and the
conventions' layer kinds derive from it.

The cases are made by iterating the catalogs, never from a copy of them, and each kind goes through
every path a model can take to it — the module rule, the function a module's forward calls, the aten
kernel beneath, and costlab's own builder — each path priced independently and held equal to the
core's formula. A kind added to a catalog is tested here without a line of this file changing;
:func:`test_adding_an_activation_is_one_line` adds one to a copy of the package.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import costlab  # noqa: E402
from costlab.analyses.conventions import LAYER_KINDS, layer_kind  # noqa: E402
from costlab.core.formulas import cost_of  # noqa: E402
from costlab.core.specs import (ACTIVATIONS, ARITHMETIC, CONVS, NORMS, PADS, POOLS, RECURRENTS, UPSAMPLES,  # noqa: E402
                           Activation, AdaptivePool, Conv, Elementwise, Norm, Pad, Pool, Recurrent, Spec,
                           Upsample)
from costlab.core.formulas import numel  # noqa: E402
from costlab.torch_bridge.aten import ATEN_RULES  # noqa: E402
from costlab.torch_bridge.build import function_for, module_for  # noqa: E402
from costlab.torch_bridge.rules import FUNCTION_RULES, METHOD_RULES, function_rule, module_rule  # noqa: E402

aten = torch.ops.aten


def _shape(rank: int) -> tuple[int, ...]:
    return (2, 4, 6, 6, 6)[:rank]


def _family_cases() -> Iterator[tuple[str, str, Spec, int]]:
    """(family, kind, spec, input rank) for every kind of the convolution, norm and pool catalogs,
    at every rank the builder makes it."""
    for kind, c in CONVS.items():
        for rank in (1, 2, 3):
            yield "conv", kind, Conv(8, (3,) * rank, (2,) * rank, (1,) * rank, transposed=c.transposed), rank + 2
    for kind, n in NORMS.items():
        for rank in [r for r, _ in n.built_by_rank] or [3]:
            yield "norm", kind, Norm(kind), rank
    for kind, p in POOLS.items():
        for rank in (1, 2, 3):  # adaptive output 2 (1 would run as a mean at the aten level)
            spec = AdaptivePool(p.mode, (2,) * rank) if p.adaptive else Pool(p.mode, (2,) * rank)
            yield "pool", kind, spec, rank + 2


CASES = list(_family_cases())


def _kind(spec: Spec) -> str:
    return spec.kind  # type: ignore[union-attr]


def _only_layer(module: nn.Module, x: torch.Tensor) -> costlab.Layer:
    analysis = costlab.analyze(module, inputs=(x,))
    assert not analysis.unsupported, analysis.unsupported
    priced = [layer for layer in analysis.layers if layer.op != "other"]  # not the parameters held
    assert len(priced) == 1, [layer.name for layer in analysis.layers]
    return priced[0]


def _subclass(module: nn.Module, prefix: str, origin: str) -> nn.Module:
    """``module`` as an instance of a subclass with its own forward (calling its class's) whose
    class lives in ``origin``: there is no module rule for it."""
    cls = type(module)
    module.__class__ = type(prefix + cls.__name__, (cls,),
                            {"forward": lambda self, x: cls.forward(self, x), "__module__": origin})
    return module


def _same_cost(layer: costlab.Layer, spec: Spec, shape: tuple[int, ...]) -> None:
    expected = cost_of(spec, [shape])
    assert (layer.macs, layer.ops, layer.params) == (expected.macs, expected.ops, expected.params)


def test_the_catalogs_name_only_what_torch_has() -> None:
    """Every name in a catalog is a real torch.nn class, functional, torch function or aten op."""
    for c in CONVS.values():
        assert all(isinstance(getattr(nn, name), type) for name in c.modules)
        assert all(callable(getattr(F, name)) for name in c.functions)
        assert all(hasattr(aten, name) for name in c.aten)
    for n in NORMS.values():
        for name in (*n.modules, *(cls for _, cls in n.built_by_rank)):
            assert isinstance(getattr(nn, name), type), name
        for name in n.functions:
            assert callable(getattr(F, name)), name
        for name in n.aten:
            assert hasattr(aten, name), name
    for p in POOLS.values():
        assert len(p.modules) == len(p.functions) == 3
        for name in p.modules:
            assert isinstance(getattr(nn, name), type), name
        for name in p.functions:
            assert callable(getattr(F, name)), name
        for names in p.aten:
            for name in names:
                assert hasattr(aten, name), name
    for a in ACTIVATIONS.values():
        assert isinstance(getattr(nn, a.module), type)
        assert all(callable(getattr(F, name)) for name in a.functions)
        assert all(callable(getattr(torch, name)) for name in a.torch_functions)
        assert all(callable(getattr(torch.Tensor, name)) for name in a.methods)
        assert all(hasattr(aten, name) for name in a.aten)


@pytest.mark.parametrize("family,kind,spec,rank", CASES, ids=[f"{c[1]}-{c[3]}d" for c in CASES])
def test_every_kind_is_reached_by_every_path(family: str, kind: str, spec: Spec, rank: int) -> None:
    """The builder makes the catalog's class; the module rule, the functional rule (a subclass
    that runs the class's forward) and the aten rules (the same, as a torch module without a rule)
    each price it as the catalog's kind, at the cost of the core's formula."""
    shape = _shape(rank)
    x = torch.randn(shape)
    built = module_for(spec, [shape])
    assert built is not None
    entry = {"conv": CONVS, "norm": NORMS, "pool": POOLS}[family][kind]
    if family == "norm":
        assert type(built).__name__ == dict(entry.built_by_rank).get(rank, entry.modules[0])  # type: ignore[union-attr]
    else:
        assert type(built).__name__ == entry.modules[rank - 3]
    assert type(built).__name__ in entry.modules

    by_module = _only_layer(built.eval(), x)
    assert module_rule(built) is not None and by_module.engine == "fx"
    assert type(by_module.spec) is type(spec) and _kind(by_module.spec) == kind
    assert layer_kind(by_module) == (kind if family == "conv" else f"{kind}-{family}") in LAYER_KINDS
    _same_cost(by_module, spec, shape)

    through = _only_layer(_subclass(module_for(spec, [shape]).eval(), "Through", __name__), x)
    assert through.call is not None and through.call.form == "function"
    short = through.call.qualified.rsplit(".", 1)[-1]
    assert short in entry.functions or short in getattr(entry, "torch_functions", ())
    assert function_rule(getattr(F, short, None) or getattr(torch, short)) is not None
    assert type(through.spec) is type(spec) and _kind(through.spec) == kind
    assert (through.macs, through.ops) == (by_module.macs, by_module.ops)

    names = entry.aten[rank - 3] if family == "pool" else entry.aten  # type: ignore[index]
    for name in names:
        assert getattr(aten, name) in ATEN_RULES, name
    if names:  # a kind that has its own aten kernel at this rank
        unruled = _subclass(module_for(spec, [shape]).eval(), "Unruled", "torch.nn.modules.unruled")
        assert module_rule(unruled) is None
        by_aten = _only_layer(unruled, x)
        assert by_aten.engine == "fx+meta"
        assert type(by_aten.spec) is type(spec) and _kind(by_aten.spec) == kind
        assert (by_aten.macs, by_aten.ops) == (by_module.macs, by_module.ops)


@pytest.mark.parametrize("kind", list(ACTIVATIONS))
def test_every_activation_is_reached_by_every_name(kind: str) -> None:
    """Module, builder, functional, torch, method and aten names of each activation all lead to
    Activation(kind), priced ACTIVATIONS[kind].ops per element."""
    entry = ACTIVATIONS[kind]
    x = torch.randn(2, 5)
    built = module_for(Activation(kind), [(2, 5)])
    assert type(built).__name__ == entry.module
    layer = _only_layer(built, x) if kind != "identity" else None
    if layer is not None:
        assert layer.spec == Activation(kind) and layer_kind(layer) == kind in LAYER_KINDS
        assert layer.ops == entry.ops * 10
    for fn in [getattr(F, name) for name in entry.functions] + [getattr(torch, name) for name in entry.torch_functions]:
        assert FUNCTION_RULES[fn][0] == kind
    for name in entry.methods:
        assert METHOD_RULES[name][0] == kind
    for name in entry.aten:
        assert getattr(aten, name) in ATEN_RULES


def _saved(module: nn.Module, x: torch.Tensor) -> tuple[bool, bool]:
    """(output saved, input saved) for the backward of ``module(x)``, as autograd packs them."""
    saved: list[torch.Tensor] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = module(x)
    return (any(t.data_ptr() == y.data_ptr() for t in saved),
            any(t.data_ptr() == x.data_ptr() for t in saved))


@pytest.mark.parametrize("kind", [k for k in ACTIVATIONS if k != "identity"])
def test_each_activation_saves_what_the_catalog_says(kind: str) -> None:
    """ACTIVATIONS[kind].saves_output (read by costlab.analyses.memory) is what autograd keeps for its
    backward: the output, else the input."""
    x = torch.randn(3, 7, requires_grad=True)
    output, input_ = _saved(module_for(Activation(kind), [(3, 7)]), x)
    assert (output, input_) == ((True, False) if ACTIVATIONS[kind].saves_output else (False, True))


@pytest.mark.parametrize("kind", list(ARITHMETIC))
def test_every_arithmetic_kind_is_reached_by_every_name(kind: str) -> None:
    """The operator, torch functions, methods and reflected dunder of each arithmetic kind lead to
    Elementwise(kind) of the catalog's category; the builder calls the operator."""
    import operator

    entry = ARITHMETIC[kind]
    assert function_for(Elementwise(kind)) is getattr(operator, entry.operator)
    assert Elementwise(kind).op == entry.category
    for fn in (getattr(operator, entry.operator), getattr(operator, f"i{entry.operator}"),
               *(getattr(torch, name) for name in entry.torch_functions)):
        assert FUNCTION_RULES[fn][0] == kind
    for name in (*entry.methods, entry.reflected):
        assert METHOD_RULES[name][0] == kind
        assert callable(getattr(torch.Tensor, name))
    assert kind in LAYER_KINDS


def _runs(module: nn.Module, rank: int) -> bool:
    """Whether torch itself runs ``module`` on an input of this rank."""
    try:
        module(torch.randn(_shape(rank)))
    except (NotImplementedError, ValueError, RuntimeError, TypeError):
        return False
    return True


def _aten_path(module: nn.Module, x: torch.Tensor) -> costlab.Layer | None:
    """The one layer of ``module`` priced at the aten level (as a torch module without a rule)."""
    unruled = _subclass(module, "Unruled", "torch.nn.modules.unruled")
    analysis = costlab.analyze(unruled, inputs=(x,))
    priced = [layer for layer in analysis.layers if layer.op != "other" or isinstance(layer.spec, Upsample)]
    return priced[0] if not analysis.unsupported and len(priced) == 1 else None


@pytest.mark.parametrize("mode", list(UPSAMPLES))
def test_every_interpolation_mode_is_reached_by_every_path(mode: str) -> None:
    """nn.Upsample of each mode, by its rule and by its aten op, is Upsample(mode) at the mode's ops
    per output element."""
    entry = UPSAMPLES[mode]
    ranks = [rank for rank in (3, 4, 5) if _runs(nn.Upsample(size=8, mode=mode), rank)]
    assert ranks, mode
    by_aten = []
    for rank in ranks:
        x = torch.randn(_shape(rank))
        out = nn.Upsample(size=8, mode=mode)(x)
        analysis = costlab.analyze(nn.Upsample(size=8, mode=mode), inputs=(x,))
        (layer,) = analysis.layers
        assert layer.spec == Upsample((8,) * (rank - 2), mode)
        assert layer_kind(layer) == f"upsample-{mode}" in LAYER_KINDS
        assert layer.ops == entry.ops * out.numel()
        by_aten.append(_aten_path(nn.Upsample(size=8, mode=mode), x))
        if by_aten[-1] is not None:
            assert by_aten[-1].spec == layer.spec and by_aten[-1].ops == layer.ops
    for name in entry.aten:
        assert getattr(aten, name) in ATEN_RULES
    assert any(by_aten) == bool(entry.aten)


def _pad_modules(base: type) -> list[nn.Module]:
    modules = []
    for cls in vars(nn).values():
        if isinstance(cls, type) and issubclass(cls, base):
            try:
                modules.append(cls(1))
            except TypeError:
                modules.append(cls(1, 0.0))  # ConstantPad*d(padding, value)
    return modules


@pytest.mark.parametrize("mode", list(PADS))
def test_every_padding_mode_is_reached_by_every_path(mode: str) -> None:
    """Each torch.nn padding module of a mode's base class, F.pad of that mode, and its aten ops
    are Pad(mode): no arithmetic, the output of the padded shape."""
    entry = PADS[mode]
    base = getattr(nn.modules.padding, entry.module_base, None)
    if base is None:
        pytest.skip(f"this torch has no {entry.module_base}")
    by_aten = []
    modules = _pad_modules(base)
    assert modules
    for module in modules:
        for rank in [r for r in (3, 4, 5) if _runs(module, r)][:1]:
            x = torch.randn(_shape(rank))
            layer = _only_layer(module, x)
            assert isinstance(layer.spec, Pad) and layer.spec.mode == mode and layer_kind(layer) == "pad"
            assert layer.output == tuple(module(x).shape) and layer.ops == layer.macs == 0
            by_aten.append(_aten_path(module, x))
            if by_aten[-1] is not None:
                assert by_aten[-1].spec == layer.spec

    class Functional(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.pad(x, (1, 2), mode=mode)

    layer = _only_layer(Functional(), torch.randn(2, 4, 6))
    assert layer.spec == Pad((1, 2), mode) and layer.output == (2, 4, 9)
    for name in entry.aten:
        assert getattr(aten, name) in ATEN_RULES
    assert any(by_aten) == bool(entry.aten)


@pytest.mark.parametrize("mode", list(RECURRENTS))
def test_every_recurrent_mode_is_its_module(mode: str) -> None:
    """The catalog's module (with its nonlinearity) is Recurrent(mode), its parameters
    gates·H·(I + H + 2) as torch holds them."""
    entry = RECURRENTS[mode]
    module = getattr(nn, entry.module)(4, 8, **({"nonlinearity": entry.nonlinearity} if entry.nonlinearity else {}))
    (layer,) = costlab.analyze(module, inputs=(torch.randn(5, 2, 4),)).layers
    assert isinstance(layer.spec, Recurrent) and layer.spec.mode == mode and layer_kind(layer) == "recurrent"
    assert layer.params == sum(p.numel() for p in module.parameters()) == entry.gates * 8 * (4 + 8 + 2)


_NEW_ACTIVATION = '    "celu": ActivationKind(3, "CELU", ("celu",), (), (), ("celu", "celu_")),  # compare, exp, multiply-subtract\n'


def test_adding_an_activation_is_one_line(tmp_path: Path) -> None:
    """A copy of the package with one line added to ACTIVATIONS (nn.CELU, not in the catalog):
    the module, the function and the builder price it, and every convention covers it."""
    assert "celu" not in ACTIVATIONS
    package = Path(costlab.__file__).parent
    copy = tmp_path / "costlab"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    specs = (copy / "core" / "specs.py").read_text()
    anchor = '    "mish": ActivationKind('
    assert specs.count(anchor) == 1
    (copy / "core" / "specs.py").write_text(specs.replace(anchor, _NEW_ACTIVATION + anchor))
    script = """
import torch
from torch import nn
from torch.nn import functional as F
import costlab
from costlab.analyses.conventions import CONVENTIONS, LAYER_KINDS, check_tables, profile
from costlab.core.specs import Activation
from costlab.torch_bridge.build import module_for

assert costlab.__file__.startswith(%r)
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.act = nn.CELU()
    def forward(self, x):
        return F.celu(self.act(x))
a = costlab.analyze(Net(), inputs=(torch.randn(2, 5),))
assert not a.unsupported and [l.spec for l in a.layers] == [Activation("celu")] * 2, a.layers
assert a.ops == 2 * 3 * 10, a.ops
assert type(module_for(Activation("celu"), [(2, 5)])) is nn.CELU
assert "celu" in LAYER_KINDS and check_tables() == [], check_tables()
for name in CONVENTIONS:
    assert len(profile(a, name).layers) == 2
print("ok")
""" % str(copy)
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]
