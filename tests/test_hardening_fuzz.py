"""Random argument vectors built from the CLI's own parser: every command, every option, random
values. Whatever they hold, ``main`` returns (never raises), and a refusal is exit 2 with one
``costlab: error:`` line and nothing written or replaced at ``--output`` / ``--plot`` (issue 12).

Kept fast: no value that would really time anything (``--latency`` gets only values it refuses,
``calibrate`` an unknown device, ``report`` a directory that does not exist) and no fvcore run.
"""

from __future__ import annotations

import argparse
import atexit
import io
import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costlab.app.cli import build_parser, main

SENTINEL = "what was at the path before\n"
PARSER = build_parser()
COMMANDS: dict[str, argparse.ArgumentParser] = next(
    a for a in PARSER._actions if isinstance(a, argparse._SubParsersAction)).choices  # type: ignore[assignment]

WORKSPACE = Path(tempfile.mkdtemp(prefix="costlab-fuzz-"))
atexit.register(shutil.rmtree, WORKSPACE, True)  # the scratch directory goes with the session
OUTPUT = WORKSPACE / "out.txt"
PLOT = WORKSPACE / "plot.png"

ALPHABET = list("0123456789xX,:;()|>-.{}= _²٣abcdefgpsw/") + ["res(", "conv", "dw", "pw:", "fc:", "relu", "bn"]
TEXT = st.lists(st.sampled_from(ALPHABET), max_size=8).map("".join)
EDGE = st.sampled_from(["", " ", "0", "-1", "1.5", "9" * 5000, "3x8x8", "3x²x2", "-3x8x8", "nan", "inf",
                        "1e400", "²", "w=1,2", "k=v", "a=", "=b", "fc", "0.5", "1:3"])
VALUE = st.one_of(TEXT, EDGE, st.integers(-3, 10**6).map(str))
TARGET = st.one_of(st.sampled_from(["relu", "conv3x3:4", "dw3x3 > pw:4", "lenet5", "conv3x3:{w}",
                                    "mobilenet-v1(width=0.25)", "(relu | conv1x1:2)", "res(conv3x3:3)",
                                    "dw{w}x{w}", "alexnet", "conv3x3:4,s2"]),
                   st.sampled_from(["relu", "conv3x3:4", "conv1x1:{w} > conv3x3:4", "lenet5"]), TEXT)
PARAM = st.one_of(
    st.sampled_from(["w=1:3", "w=2,4", "batch=1,2", "input=8,16", "width=0.25,0.5", "freeze=0,1"]),
    st.builds(lambda name, a, b: f"{name}={a}:{b}", st.sampled_from(["w", "batch", "input", "freeze", "x", "width"]),
              st.integers(-2, 6), st.integers(-2, 12)),
    st.builds(lambda name, values: f"{name}={','.join(values)}", st.sampled_from(["w", "batch", "input", "width"]),
              st.lists(VALUE, min_size=1, max_size=3)),
    VALUE)
PATH = st.sampled_from([str(OUTPUT), "", str(WORKSPACE), "/nonexistent/out.txt", str(WORKSPACE / "new.txt")])
#: Options whose real values would time or cross-check for seconds: only values they refuse, or cheap ones.
SPECIAL = {
    "--latency": st.sampled_from(["tpu", "", "gpu", "CPU"]),
    "--check": st.sampled_from(["", "nope", ",", "torch", "fvcore,nope", " torch "]),
    "--device": st.sampled_from(["tpu", "", "gpu"]),
    "--output-dir": st.sampled_from(["/dev/null/reports", ""]),
    "--output": PATH,
    "--plot": st.sampled_from([str(PLOT), "", "/nonexistent/plot.png"]),
    "--param": PARAM,
}
#: Plausible values, drawn as often as random ones, so that the examples reach past argument checking.
PLAUSIBLE = {
    "--input": st.sampled_from(["3x8x8", "3x16x16", "1x32x32", "3x32x32", "4x8x8", "int64:8", "x=float32:3x8x8"]),
    "--seq": st.integers(1, 16).map(str),
    "--batch": st.integers(1, 4).map(str),
    "--depth": st.integers(1, 3).map(str),
    "--freeze": st.sampled_from(["0", "1", "0.5", "fc", "conv1"]),
    "--kwarg": st.sampled_from(["width=0.5", "num_classes=10", "w=3", "dropout=0.1"]),
    "--threads": st.sampled_from(["1", "2"]),
    "--y": st.sampled_from(["macs", "params", "flops", "latency_ms"]),
}
#: Options each command always gets: calibrate and report values that measure and write nothing; a
#: sweep its --param; counting commands an --input (three times in four), which expressions need.
REQUIRED_FIRST = {"calibrate": ["--device"], "report": ["--output-dir"], "sweep": ["--param", "--input"],
                  "compare": ["--input"], "analyze": ["--input"]}


def _value(action: argparse.Action) -> st.SearchStrategy[str]:
    for option in action.option_strings:
        if option in SPECIAL:
            return SPECIAL[option]
    if action.choices:
        valid = st.sampled_from(list(action.choices))
        return st.one_of(valid, valid, valid, VALUE)  # three in four valid
    for option in action.option_strings:
        if option in PLAUSIBLE:
            return st.one_of(PLAUSIBLE[option], PLAUSIBLE[option], PLAUSIBLE[option], VALUE)
    return VALUE


@st.composite
def argument_vectors(draw: st.DrawFn) -> list[str]:
    name = draw(st.sampled_from(sorted(COMMANDS)))
    parser = COMMANDS[name]
    optional = [a for a in parser._actions if a.option_strings and "--help" not in a.option_strings]
    positional = [a for a in parser._actions if not a.option_strings]
    argv = [name]
    for action in positional:
        count = {"*": (0, 3), "+": (1, 2), None: (1, 1)}.get(action.nargs, (0, 1))  # type: ignore[arg-type]
        argv += draw(st.lists(TARGET, min_size=count[0], max_size=count[1]))
    chosen = [a for a in optional if set(a.option_strings) & set(REQUIRED_FIRST.get(name, []))
              and (a.option_strings[0] != "--input" or draw(st.integers(0, 3)) > 0)]
    chosen += draw(st.lists(st.sampled_from(optional), max_size=3)) if optional else []
    for action in chosen:
        option = draw(st.sampled_from([o for o in action.option_strings if o.startswith("--")]))
        if action.nargs == 0:
            argv.append(option)
        elif draw(st.booleans()):
            argv.append(f"{option}={draw(_value(action))}")
        else:
            argv += [option, draw(_value(action))]
    return argv


def _snapshot() -> dict[str, bytes]:
    return {entry: (WORKSPACE / entry).read_bytes() for entry in sorted(os.listdir(WORKSPACE))}


@settings(max_examples=int(os.environ.get("COSTLAB_FUZZ_EXAMPLES", "150")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(argument_vectors())
def test_random_argument_vectors_get_an_answer_or_one_error_line(argv: list[str]) -> None:
    for leftover in os.listdir(WORKSPACE):
        os.unlink(WORKSPACE / leftover)
    OUTPUT.write_text(SENTINEL)
    PLOT.write_text(SENTINEL)
    before = _snapshot()
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, stdout=out, stderr=err)  # raises nothing, whatever argv holds
    text = err.getvalue()
    assert "Traceback" not in text
    if code == 2:
        assert text.startswith("costlab: error: ") and text.count("\n") == 1 and text.endswith("\n"), text[:300]
        assert out.getvalue() == ""
        assert _snapshot() == before  # nothing written, replaced or left behind
    else:
        assert code == 0 or (code == 1 and "--strict" in argv), (code, text[:300])
        assert all(line.startswith("costlab: warning: ") for line in text.splitlines()), text[:300]
        assert out.getvalue() or any(arg.startswith("--output") for arg in argv)


# --- issue 22: typed --input into small modules, hf: configs, the API's argument types ----------

FUZZ_NETS = '''
from torch import nn


def linear(n=4):
    return nn.Linear(int(n), 2)


def embedding():
    return nn.Embedding(10, 4)


def half():
    return nn.Linear(4, 2).half()
'''
(WORKSPACE.parent / "costlab_fuzz_nets").mkdir(exist_ok=True)
(WORKSPACE.parent / "costlab_fuzz_nets" / "fuzz_nets_22.py").write_text(FUZZ_NETS)
atexit.register(shutil.rmtree, WORKSPACE.parent / "costlab_fuzz_nets", True)
SMALL = int(os.environ.get("COSTLAB_FUZZ_EXAMPLES_22", "40"))
#: Each typed-input case traces a module (about a second on a loaded machine): fewer of them.
TYPED = int(os.environ.get("COSTLAB_FUZZ_EXAMPLES_22", "12"))
DTYPES = ["float32", "float16", "bfloat16", "float64", "int64", "int32", "uint8", "bool", "complex64", "nope"]
TYPED_INPUT = st.builds(
    lambda name, listed, dtype, sizes: f"{name}{'list:' if listed else ''}{dtype}:{'x'.join(sizes)}",
    st.sampled_from(["", "input=", "x=", "nope="]), st.booleans(), st.sampled_from(DTYPES),
    st.lists(st.one_of(st.integers(0, 9).map(str), st.sampled_from(["9" * 19, "-1", "", "a"])), min_size=1,
             max_size=4))


def _answer_or_one_line(argv: list[str]) -> None:
    for leftover in os.listdir(WORKSPACE):
        os.unlink(WORKSPACE / leftover)
    OUTPUT.write_text(SENTINEL)
    before = _snapshot()
    out, err = io.StringIO(), io.StringIO()
    code = main([*argv, "--output", str(OUTPUT)], stdout=out, stderr=err)
    text = err.getvalue()
    assert "Traceback" not in text
    if code == 2:
        assert text.startswith("costlab: error: ") and text.count("\n") == 1, text[:300]
        assert _snapshot() == before
    else:
        assert code == 0, (code, text[:300])


@settings(max_examples=TYPED, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["fuzz_nets_22:linear", "fuzz_nets_22:embedding", "fuzz_nets_22:half",
                        "fuzz_nets_22:linear(n=3)", "fuzz_nets_22:linear(n=()", "fuzz_nets_22:linear(n=-1)"]),
       st.lists(TYPED_INPUT, min_size=1, max_size=2), st.integers(1, 3))
def test_typed_inputs_into_modules_get_a_count_or_one_error_line(target: str, inputs: list[str], batch: int) -> None:
    import sys

    folder = str(WORKSPACE.parent / "costlab_fuzz_nets")
    sys.path.insert(0, folder)
    try:
        _answer_or_one_line(["analyze", target, *[f"--input={i}" for i in inputs], "--batch", str(batch)])
    finally:
        sys.path.remove(folder)


JSON_VALUE = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-2, 10**7), st.text(max_size=4)),
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                      max_size=3), max_leaves=8)
HF_CONFIG = st.one_of(
    st.fixed_dictionaries({"model_type": st.sampled_from(["gpt2", "bert", "", 5, None, "nope"])},
                          optional={"n_layer": st.integers(-1, 10**7), "num_hidden_layers": st.integers(-1, 10**7),
                                    "hidden_size": st.sampled_from([0, -1, 7, "x"]), "extra": JSON_VALUE}),
    JSON_VALUE, st.sampled_from(["{", "", "[" * 3000, '{"model_type": "gpt2"'])).map(
        lambda v: v if isinstance(v, str) else __import__("json").dumps(v))


@settings(max_examples=SMALL, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(HF_CONFIG)
def test_hf_configs_that_cannot_be_built_are_one_error_line(config: str) -> None:
    folder = WORKSPACE.parent / "costlab_fuzz_nets" / "hf_config"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(config)
    for leftover in os.listdir(WORKSPACE):
        os.unlink(WORKSPACE / leftover)
    OUTPUT.write_text(SENTINEL)
    before = _snapshot()
    err = io.StringIO()
    # only configs refused before transformers builds anything are run whole: a valid one would build a model
    from costlab.app.hf_source import resolve_hf_config
    from costlab.core.errors import CostlabError

    try:
        resolve_hf_config(str(folder))
    except CostlabError:
        code = main(["compare", f"hf:{folder}", "--output", str(OUTPUT)], stdout=io.StringIO(), stderr=err)
        assert code == 2 and err.getvalue().count("\n") == 1 and "Traceback" not in err.getvalue()
        assert _snapshot() == before


API_VALUE = st.one_of(st.none(), st.integers(-3, 3), st.floats(allow_nan=True), st.text(max_size=5),
                      st.lists(st.one_of(st.none(), st.integers(), st.text(max_size=4)), max_size=3),
                      st.sampled_from([object(), b"x", (3, 8, 8), {"a": 1}, 2**80]))


@settings(max_examples=SMALL, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["check", "convention", "batch", "dtype", "name", "seq", "freeze", "input", "threads"]),
       API_VALUE)
def test_api_arguments_of_any_type_give_a_result_or_a_costlab_error(argument: str, value: object) -> None:
    import costlab

    arguments = {"input": (3, 8, 8), argument: value}
    try:
        costlab.analyze("conv1x1:4", **arguments)
    except costlab.CostlabError as error:
        assert "\n" not in str(error)
