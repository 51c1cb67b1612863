"""Hardening, second round (issue 22): a target that names nothing, inputs a module cannot take,
and user code that would change the module or the output are refused in one line or undone."""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import costlab
from costlab.app.cli import main
from costlab.core.errors import CostlabError
from costlab.torch_bridge.trace import trace_module
from test_hardening import assert_one_error_line, run


# --- hf: targets name a config that exists ----------------------------------------------------

needs_transformers = pytest.mark.skipif(
    __import__("importlib.util").util.find_spec("transformers") is None, reason="needs transformers")


@needs_transformers
@pytest.mark.parametrize("name", ["my-gpt2-run", "empty", "bert-base-uncased-finetune"])
def test_an_hf_directory_without_config_is_refused_not_guessed_from_its_name(tmp_path, monkeypatch, name) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    (tmp_path / name).mkdir()
    monkeypatch.chdir(tmp_path)
    for target in (f"hf:{name}", f"hf:{tmp_path / name}"):
        code, out, err = run("compare", target)
        assert_one_error_line(code, err)
        assert "config.json" in err and out == ""


@needs_transformers
def test_an_hf_config_without_model_type_or_not_an_object_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    cases = {"gpt2-like": {"n_layer": 2, "n_embd": 8}, "list": [1, 2], "blank": {"model_type": " "}}
    for name, data in cases.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps(data))
        code, _, err = run("compare", f"hf:{tmp_path / name}")
        assert_one_error_line(code, err)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    assert_one_error_line(*run("compare", f"hf:{tmp_path / 'broken'}")[::2])
    with pytest.raises(CostlabError, match="names no model_type"):
        costlab.analyze(f"hf:{tmp_path / 'gpt2-like'}")


@needs_transformers
def test_an_hf_name_absent_from_the_local_cache_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    code, _, err = run("compare", "hf:gpt2")
    assert_one_error_line(code, err)
    assert "local Hugging Face cache" in err


@needs_transformers
def test_an_hf_name_in_the_local_cache_resolves_to_its_snapshot(tmp_path, monkeypatch) -> None:
    from costlab.app.hf_source import resolve_hf_config

    cache = tmp_path / "cache"
    snapshot = cache / "models--someone--tiny" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (cache / "models--someone--tiny" / "refs").mkdir()
    (cache / "models--someone--tiny" / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.chdir(tmp_path)
    assert resolve_hf_config("someone/tiny") == str(snapshot / "config.json")


@needs_transformers
@pytest.mark.parametrize("field", ["n_layer", "num_hidden_layers", "num_decoder_layers"])
def test_an_hf_config_of_a_million_layers_is_refused_before_it_is_built(tmp_path, field) -> None:
    config = {"model_type": "gpt2", field: 10**6}
    (tmp_path / "config.json").write_text(json.dumps(config))
    nested = tmp_path / "nested"
    nested.mkdir()
    (nested / "config.json").write_text(json.dumps({"model_type": "clip", "text_config": {field: 10**6}}))
    for target in (f"hf:{tmp_path}", f"hf:{tmp_path / 'config.json'}", f"hf:{nested}"):
        code, _, err = run("compare", target)
        assert_one_error_line(code, err)
        assert "10000 layers" in err


# --- the user's module keeps its tensors' values -----------------------------------------------

class Counting(nn.Module):
    """A forward that updates a buffer and a plain tensor attribute in place."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)
        self.register_buffer("seen", torch.zeros(()))
        self.plain = torch.zeros(3)
        self.bn = nn.BatchNorm1d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen += 1
        self.plain.add_(1)
        self.bn.running_mean.add_(1)
        return self.fc(x)


@pytest.mark.parametrize("method", ["auto", "fx", "meta", "cpu"])
def test_a_buffer_updated_in_place_by_forward_is_restored_on_every_engine_path(method) -> None:
    module = Counting()
    seen, plain, mean = module.seen, module.plain, module.bn.running_mean
    trace_module(module, (4,), method=method)
    assert module.seen is seen and module.plain is plain and module.bn.running_mean is mean
    assert module.seen.item() == 0 and plain.tolist() == [0, 0, 0] and mean.tolist() == [0, 0, 0, 0]
    costlab.analyze(module, input=(4,))
    assert module.seen.item() == 0 and plain.tolist() == [0, 0, 0]


def test_a_buffer_is_restored_when_the_analysis_fails() -> None:
    class Fails(Counting):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.seen += 1
            raise RuntimeError("user forward fails")

    module = Fails()
    with pytest.raises(CostlabError):
        trace_module(module, (4,))
    assert module.seen.item() == 0


# --- inputs the module cannot take: torch's reason, never a count -------------------------------

class Views7(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(7, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.view(-1, 7))


def _torch_refuses(module: nn.Module, *args: object) -> str:
    """The error torch itself raises when the module runs on ``args`` (the reference)."""
    with pytest.raises(Exception) as raised:  # noqa: PT011 - any error torch raises
        module(*args)
    return str(raised.value)


@pytest.mark.parametrize("case", ["bool-into-linear", "float-into-half", "float-indices", "view-of-4",
                                  "numpy", "nested-list", "wrong-features"])
def test_inputs_the_module_cannot_take_are_refused_with_torch_s_reason(case) -> None:
    numpy = pytest.importorskip("numpy")
    module, given = {
        "bool-into-linear": (nn.Linear(4, 2), torch.zeros(1, 4, dtype=torch.bool)),
        "float-into-half": (nn.Linear(4, 2).half(), torch.zeros(1, 4)),
        "float-indices": (nn.Embedding(10, 4), torch.zeros(1, 4)),
        "view-of-4": (Views7(), torch.zeros(4)),
        "numpy": (nn.Linear(4, 2), numpy.zeros((1, 4), dtype="float32")),
        "nested-list": (nn.Linear(4, 2), [[0.0] * 4]),
        "wrong-features": (nn.Linear(4, 2), torch.zeros(1, 5)),
    }[case]
    _torch_refuses(module, given)  # torch raises on a real run: costlab must not count it
    for method in ("auto", "fx"):
        with pytest.raises(CostlabError, match=None if case == "wrong-features" else "cannot take these inputs") \
                as raised:
            trace_module(module, inputs=(given,), method=method)
        assert "\n" not in str(raised.value)


def test_inputs_the_module_can_take_are_still_counted() -> None:
    assert costlab.analyze(nn.Linear(4, 2), inputs=torch.zeros(3, 4)).macs == 3 * 4 * 2
    assert costlab.analyze(nn.Linear(4, 2).half(), inputs=torch.zeros(1, 4, dtype=torch.half)).macs == 8
    assert costlab.analyze(nn.Embedding(10, 4), inputs=torch.zeros(1, 4, dtype=torch.long)).params == 40
    assert costlab.analyze(Views7(), inputs=torch.zeros(14)).macs == 2 * 7 * 2


def test_a_typed_bool_input_into_a_linear_is_one_line_on_the_command_line(tmp_path, monkeypatch) -> None:
    (tmp_path / "bool_net.py").write_text("from torch import nn\ndef make():\n    return nn.Linear(4, 2)\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    code, out, err = run("analyze", "bool_net:make", "--input", "bool:1x4")
    assert_one_error_line(code, err)
    assert "same dtype" in err and out == ""
    assert run("analyze", "bool_net:make", "--input", "float32:1x4")[0] == 0


# --- output like a shell redirect, and the user's code kept out of it ---------------------------

COSTLAB = [sys.executable, "-m", "costlab"]
ROOT = Path(__file__).resolve().parent.parent
LOUD = '''
import os
import sys

from torch import nn


class Loud(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        os.write(1, b"RAW\\n")
        print("DUNDER", file=sys.__stdout__)
        os.system("echo SHELL")
        return self.fc(x)


def loud():
    return Loud()


def exits():
    os._exit(0)


class Mine(BaseException):
    pass


def base():
    raise Mine("mine")


def generator_exit():
    raise GeneratorExit
'''


def _costlab(tmp_path: Path, *argv: str, env: dict[str, str] | None = None,
             **kwargs: object) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)]), **(env or {})}
    return subprocess.run([*COSTLAB, *argv], capture_output=True, text=True, env=environment, cwd=tmp_path,
                          timeout=120, **kwargs)


@pytest.fixture(scope="module")
def loud(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("loud")
    (folder / "i22_loud.py").write_text(LOUD)
    return folder


def test_user_code_writing_to_the_process_stdout_leaves_json_clean(loud: Path) -> None:
    done = _costlab(loud, "analyze", "i22_loud:loud", "--input", "4", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["targets"][0]["macs"] == 4 * 2
    for line in ("RAW", "DUNDER", "SHELL"):
        assert line in done.stderr


@pytest.mark.parametrize("callable_, shown", [("exits", "os._exit(0)"), ("base", "Mine: mine"),
                                              ("generator_exit", "GeneratorExit")])
def test_os_exit_and_base_exceptions_in_user_code_are_one_line(loud: Path, callable_: str, shown: str) -> None:
    done = _costlab(loud, "analyze", f"i22_loud:{callable_}", "--input", "4")
    assert_one_error_line(done.returncode, done.stderr)
    assert shown in done.stderr and done.stdout == ""


def test_a_closed_stdout_is_one_line() -> None:
    """`costlab compare … >&-`: the process starts with descriptor 1 closed."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([*COSTLAB, "compare", "conv1x1:16", "--input", "3x8x8"], stderr=subprocess.PIPE,
                          text=True, env=environment, timeout=120, preexec_fn=lambda: os.close(1))
    assert_one_error_line(done.returncode, done.stderr)
    assert "standard output" in done.stderr


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_any_stdout_encoding_gives_the_result_or_one_line(loud: Path, encoding: str) -> None:
    done = _costlab(loud, "compare", "resnet18", "conv1x1:16 > conv5x5:32", "--input", "3x8x8",
                    env={"PYTHONIOENCODING": encoding}, encoding=encoding)
    assert "Traceback" not in done.stderr
    if done.returncode == 0:
        done_utf8 = _costlab(loud, "compare", "resnet18", "conv1x1:16 > conv5x5:32", "--input", "3x8x8",
                             env={"PYTHONIOENCODING": "utf-8"})
        assert done.stdout == done_utf8.stdout
    else:
        assert_one_error_line(done.returncode, done.stderr)
        assert done.stdout == ""


def test_output_onto_a_hard_link_writes_through_the_same_inode(tmp_path: Path) -> None:
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    first.write_text("old\n")
    os.link(first, second)
    inode = first.stat().st_ino
    code, _, err = run("compare", "conv1x1:16", "--input", "3x8x8", "--output", str(second))
    assert code == 0, err
    assert second.stat().st_ino == inode == first.stat().st_ino
    assert first.read_text() == second.read_text() != "old\n"


def test_output_onto_a_symlink_loop_is_refused_with_eloop(tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    os.symlink("loop", loop)
    code, _, err = run("compare", "conv1x1:16", "--input", "3x8x8", "--output", str(loop))
    assert_one_error_line(code, err)
    assert os.strerror(errno.ELOOP) in err
    assert os.path.islink(loop) and os.readlink(loop) == "loop"


# --- no traceback: huge counts, scripted and lazy modules, API argument types ------------------

@pytest.mark.parametrize("target, input_", [("mobilenet-v2(width=1e30)", None), ("conv1x1:" + "9" * 50, "3x8x8")])
def test_counts_past_the_largest_prefix_are_shown_not_a_traceback(target: str, input_: str | None) -> None:
    code, out, err = run("compare", target, *(["--input", input_] if input_ else []))
    assert code == 0, err
    exact = costlab.analyze(target, input=tuple(int(x) for x in input_.split("x")) if input_ else None).macs
    assert f"{exact:.2E}" in out.replace("\u00a0", " ")


def test_si_beyond_exa_is_scientific_with_three_significant_digits() -> None:
    from costlab.render.numbers import Style, number

    def si(value: int) -> str:
        return number(value, Style.SI)

    def binary_bytes(value: int) -> str:
        return number(value, Style.BYTES)

    assert si(999 * 10**18) == "999 E"
    for value in (10**21, 12345 * 10**48, 10**300):
        assert si(value) == f"{value:.2E}" and float(si(value)) == pytest.approx(value, rel=5e-3)
    assert si(-3 * 10**60) == "-3.00E+60" and binary_bytes(10**70) == "1.00E+70 B"


def test_a_scripted_module_is_refused_in_one_line_in_the_api_and_on_the_command_line(tmp_path, monkeypatch) -> None:
    with pytest.raises(CostlabError, match="torch.jit"):
        costlab.analyze(torch.jit.script(nn.Linear(4, 2)), input=(4,))
    (tmp_path / "scripted_net.py").write_text(
        "import torch\nfrom torch import nn\ndef make():\n    return torch.jit.script(nn.Linear(4, 2))\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    code, _, err = run("analyze", "scripted_net:make", "--input", "4")
    assert_one_error_line(code, err)
    assert "torch.jit" in err


@pytest.mark.parametrize("arguments, named", [
    ({"check": 123}, "check"), ({"check": ["torch", None]}, "check"), ({"convention": 5}, "convention"),
])
def test_api_arguments_of_the_wrong_type_are_costlab_errors_naming_them(arguments, named) -> None:
    with pytest.raises(CostlabError, match=named):
        costlab.analyze("conv1x1:16", input=(3, 8, 8), **arguments)


def test_a_nested_tensor_and_an_uninitialised_lazy_module_are_costlab_errors() -> None:
    nested = torch.nested.nested_tensor([torch.zeros(2, 4), torch.zeros(3, 4)])
    with pytest.raises(CostlabError, match="nested tensor"):
        costlab.analyze(nn.Linear(4, 2), inputs=nested)
    lazy = nn.LazyLinear(2)
    with pytest.raises(CostlabError, match="lazy"):
        costlab.analyze(lazy, input=(4,))
    assert isinstance(lazy.weight, nn.parameter.UninitializedParameter)  # left as it was


# --- limits before work -----------------------------------------------------------------------

def test_a_list_input_of_a_huge_batch_is_refused_before_the_list_is_built(monkeypatch) -> None:
    from costlab.core import inputs as inputs_module

    made = []
    real = inputs_module.TensorSpec
    monkeypatch.setattr(inputs_module, "TensorSpec", lambda *a, **k: made.append(1) or real(*a, **k))
    code, _, err = run("compare", "tests.costlab_test_nets:tiny", "--input", "list:4", "--batch", "100000000")
    assert_one_error_line(code, err)
    assert "4096" in err and made == []


def test_a_typed_size_of_19_digits_is_named_for_its_length() -> None:
    code, _, err = run("compare", "tests.costlab_test_nets:tiny", "--input", "int64:" + "9" * 19)
    assert_one_error_line(code, err)
    assert "at most 18 digits" in err


def test_report_tries_its_directory_before_building_any_report(tmp_path, monkeypatch) -> None:
    import costlab.app.reports as reports

    built = []
    monkeypatch.setattr(reports, "build_reports", lambda progress=None: built.append(1) or [])
    code, _, err = run("report", "--output-dir", "/proc/costlab-nope")
    assert_one_error_line(code, err)
    assert built == []
    # a run that fails after making its directory leaves nothing behind
    monkeypatch.setattr(reports, "build_reports", lambda progress=None: (_ for _ in ()).throw(CostlabError("failed")))
    target = tmp_path / "a" / "b"
    assert_one_error_line(*run("report", "--output-dir", str(target))[::2])
    assert not (tmp_path / "a").exists()
