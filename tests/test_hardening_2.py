"""Hardening, second round (issue 22): a target that names nothing, inputs a module cannot take,
and user code that would change the module or the output are refused in one line or undone."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
from torch import nn

import costlab
from costlab.app.cli import main
from costlab.core.errors import CostlabError
from costlab.torch_bridge.trace import trace_module


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def assert_one_error_line(code: int, err: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    assert err.startswith("costlab: error: ") and err.endswith("\n") and err.count("\n") == 1, repr(err[:300])


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
