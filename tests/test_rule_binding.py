"""The torch rules read a call's arguments by name, bound once through each function's signature
(costlab.torch_bridge.rules.binds): a call given keywords and the same call given positions price the
same, for every rule; and each rule's parameter names are torch's own, in torch's order."""

from __future__ import annotations

import inspect
import operator
import re
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from costlab.core.specs import Spec  # noqa: E402
from costlab.torch_bridge import rules  # noqa: E402
from costlab.torch_bridge.rules import FUNCTION_RULES, METHOD_RULES, RuleError, TensorValue, bind  # noqa: E402


class Recorder:
    """A rule's context that records each layer it is asked for (spec, input shapes, sub-name, params)."""

    def __init__(self) -> None:
        self.layers: list[tuple[Spec, tuple, str | None, int]] = []

    def layer(self, spec: Spec, inputs: Any, sub: str | None = None, params: Any = ()) -> TensorValue:
        self.layers.append((spec, tuple(i.shape for i in inputs), sub, len(list(params))))
        return TensorValue((len(self.layers),), f"layer{len(self.layers)}")


def T(*shape: int) -> TensorValue:
    return TensorValue(shape)


X = T(2, 4, 6, 6)
#: A positional call of each op (by its name in the tables) the generic one below does not fit.
SAMPLES: dict[str, tuple] = {
    "linear": (T(2, 8), T(5, 8), T(5)),
    **{f"conv{n}d": (T(2, 4, *(6,) * n), T(8, 2, *(3,) * n), None, 2, 1, 1, 2) for n in (1, 2, 3)},
    **{f"conv_transpose{n}d": (T(2, 4, *(6,) * n), T(4, 3, *(3,) * n), T(6), 2, 1, 1, 2, 1) for n in (1, 2, 3)},
    "scaled_dot_product_attention": (T(2, 4, 5, 8), T(2, 2, 7, 8), T(2, 2, 7, 8), None, 0.0, True, None, True),
    "embedding": (T(2, 5), T(10, 3), None, None, 2.0, False, False),
    "batch_norm": (X, T(4), T(4), T(4), T(4), False, 0.1, 1e-5),
    "instance_norm": (X, None, None, T(4), T(4), True, 0.1, 1e-5),
    "layer_norm": (X, (6, 6), T(6, 6), None, 1e-5),
    "group_norm": (X, 2, T(4), T(4), 1e-5),
    "dropout": (X, 0.25, False, False),
    "interpolate": (X, None, 2, "bilinear"),
    "cat": ([X, X], 1), "stack": ([X, X], 2),
    "flatten": (X, 1, 2), "unflatten": (T(2, 12), 1, (3, 4)),
    "transpose": (X, 1, 3), "squeeze": (T(2, 1, 6), 1), "unsqueeze": (X, 2),
    "chunk": (X, 2, 1), "split": (X, 2, 3), "unbind": (X, 1), "tensor_split": (X, 3, 2),
    "getitem": (X, 1), "setitem": (X, 1, 0.0), "getattr": (X, "shape"),
    "compare": (X, X), "masked_fill": (X, T(2, 4, 6, 6), 0.0), "where": (T(2, 4, 6, 6), X, X),
    "roll": (X, 1, 2), "pad": (X, (1, 1), "reflect", None),
    "size": (X, 1), "expand_as": (T(1, 4, 1, 1), X), "reshape_as": (X, T(2, 144)), "view_as": (X, T(2, 144)),
    "matmul": (T(2, 3, 4), T(2, 4, 5)), "stochastic_depth": (X, 0.2, "row", False),
    "neg": (X,), "t": (T(3, 4),),
    **{kind: (X, 1, True) for kind in ("sum", "mean", "amax", "amin")},
}
#: Ops whose rules take ``*sizes`` after the tensor: (positional sizes, the same sizes as one tuple).
SIZES = {"view": (2, -1), "reshape": (2, -1), "permute": (0, 2, 3, 1), "expand": (3, 2, 4, 6, 6)}


def _positional(name: str, rule: Any) -> tuple:
    if rule.signature == ("input",):
        return (T(3, 4),) if name == "transpose" else (X,)  # x.t(), x.relu(), x.contiguous(), …
    if name in SAMPLES:
        return SAMPLES[name]
    if name.endswith(("pool1d", "pool2d", "pool3d")):
        n = int(name[-2])
        x = T(2, 4, *(8,) * n)
        if "adaptive" in name:
            return (x, 3, False) if "max" in name else (x, 3)
        return (x, 2, 2, 1, 1, False, False) if "max" in name else (x, 2, 2, 1, True, False, None)
    if rule.signature[-1] == "alpha":
        return (X, X)  # arithmetic
    return (X,)  # activations and calls of the tensor alone


def _run(rule: Any, args: tuple, kwargs: dict) -> tuple[list, Any]:
    recorder = Recorder()
    try:
        result = rule(recorder, args, kwargs)
    except RuleError as error:
        result = ("refused", str(error))
    return recorder.layers, result


def _rules() -> list[tuple[str, Any]]:
    seen: dict[int, tuple[str, Any]] = {}
    for name, rule in list(FUNCTION_RULES.values()) + list(METHOD_RULES.values()):
        seen.setdefault(id(rule), (name, rule))
    return list(seen.values())


@pytest.mark.parametrize("name, rule", _rules(), ids=lambda value: value if isinstance(value, str) else "")
def test_a_call_given_keywords_prices_as_the_call_given_positions(name: str, rule: Any) -> None:
    signature = getattr(rule, "signature", None)
    assert signature, f"the rule of {name} reads its arguments by position (no binds signature)"
    args = _positional(name, rule)
    if name in SIZES:  # x.view(2, -1), x.view((2, -1)) and the tensor given by keyword alike
        positional = _run(rule, (X, *SIZES[name]), {})
        assert positional == _run(rule, (X, SIZES[name]), {}), name
        assert not (isinstance(positional[1], tuple) and positional[1][:1] == ("refused",)), (name, positional[1])
        return
    keywords = dict(zip(signature, args))
    assert len(keywords) == len(args), f"{name}: more positions than the signature {signature}"
    positional, by_name = _run(rule, args, {}), _run(rule, (), keywords)
    assert positional == by_name, name
    assert not (isinstance(positional[1], tuple) and positional[1][:1] == ("refused",)), (name, positional[1])
    shuffled = dict(reversed(list(keywords.items())))  # keywords in any order
    assert _run(rule, args[:1], dict(list(shuffled.items())[:-1])) == positional, name


def test_a_parameter_given_twice_or_a_call_past_the_signature_is_refused() -> None:
    with pytest.raises(RuleError, match="given twice"):
        bind(("input", "dim"), (X, 1), {"dim": 2})
    with pytest.raises(RuleError, match="3 positional arguments"):
        bind(("input", "dim"), (X, 1, 2), {})


def _torch_parameters(fn: Any) -> tuple[str, ...] | None:
    """The positional parameters of a torch function: inspect.signature where it names them, else the
    signature its docstring opens with (``conv2d(input, weight, bias=None, ...) -> Tensor``)."""
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    if any(p.kind is p.POSITIONAL_ONLY for p in parameters):
        return None  # operator.add(a, b): never called with keywords
    named = tuple(p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD)
    if named:
        return named
    match = re.match(r"\s*[\w.]+\((.*?)\)", fn.__doc__ or "", re.S)  # a builtin, or boolean_dispatch's (*args)
    if match is None:
        return None
    names = []
    for part in match.group(1).split(","):
        part = part.strip()
        if part.startswith("*"):
            break
        names.append(part.split("=")[0].split(":")[0].strip())
    return tuple(names)


def test_each_rule_names_its_functions_parameters_as_torch_does() -> None:
    """Where torch states a function's signature (Python-level or in its docstring), the rule binds
    the same names in the same order (its own may stop early: what it does not read)."""
    checked, wrong = [], []
    for fn, (name, rule) in FUNCTION_RULES.items():
        if fn in (operator.getitem, operator.setitem, getattr, len) or getattr(rule, "signature", None) is None:
            continue
        torch_names = _torch_parameters(fn)
        if not torch_names or rule.signature[-1:] == ("input",) and len(torch_names) > 1 \
                and name not in SAMPLES and name not in ("neg", "t"):
            continue  # an activation: only the tensor is read, whatever follows
        if rule.signature[:len(torch_names)] != torch_names[:len(rule.signature)]:
            wrong.append((rules.qualified_name(fn), rule.signature, torch_names))
        checked.append(name)
    assert wrong == [], "\n".join(map(str, wrong))
    for name in ("conv2d", "conv_transpose2d", "scaled_dot_product_attention", "batch_norm", "layer_norm",
                 "max_pool2d", "avg_pool2d", "interpolate", "cat", "flatten", "transpose", "pad"):
        assert name in checked, name
