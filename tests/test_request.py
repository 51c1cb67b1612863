"""The request (costlab.app.request): one object resolved at the edge, each rule about it stated once;
and the names of the other tools stated once (costlab.core.tools)."""

from __future__ import annotations

import dataclasses
import io
import re
from pathlib import Path

import pytest

import costlab
from costlab.app.cli import build_parser, main, requests_from_args
from costlab.app.request import Request, Steps, TargetKind, seq_among, target_kind
from costlab.core.errors import TargetError
from costlab.core.tools import CONVENTION_TOOLS, PEER_TOOLS

ROOT = Path(__file__).resolve().parent.parent


def test_each_kind_of_target_is_told_apart_once(tmp_path: Path) -> None:
    spec = tmp_path / "net.expr"
    spec.write_text("conv3x3:8\n", encoding="utf-8")
    assert target_kind("conv1x1:16 > conv5x5:32") is TargetKind.EXPRESSION
    assert target_kind("fc:10") is TargetKind.EXPRESSION  # a colon, but not package.module:callable
    assert target_kind(" resnet50 ") is TargetKind.PRESET
    assert target_kind("mobilenet-v1(width=0.5)") is TargetKind.PRESET
    assert target_kind(str(spec)) is TargetKind.FILE
    assert target_kind("costlab_test_nets:tiny") is TargetKind.CALLABLE
    assert target_kind("costlab_test_nets:tiny(width=4)") is TargetKind.CALLABLE
    assert target_kind("hf:gpt2") is TargetKind.HF
    torch = pytest.importorskip("torch")
    assert target_kind(torch.nn.Linear(2, 3)) is TargetKind.MODULE
    with pytest.raises(TargetError, match="empty target"):
        target_kind("  ")
    with pytest.raises(TargetError, match="got int"):
        target_kind(42)


def test_a_request_is_frozen_and_its_options_too() -> None:
    request = Request.of(" conv3x3:8 ", (3, 8, 8), options={"width": "0.5"})
    assert request.target == "conv3x3:8" and request.kind is TargetKind.EXPRESSION
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.batch = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        request.options["width"] = "1"  # type: ignore[index]


def test_seq_is_for_hf_targets_only_and_among_several_goes_to_them() -> None:
    with pytest.raises(TargetError, match=r"--seq sets the tokens of an hf: model, not of 'resnet50'"):
        Request.of("resnet50", seq=16)
    assert Request.of("hf:gpt2", seq=16).seq == 16
    assert seq_among(["hf:gpt2", "resnet50", " hf:bert"], 16) == [16, None, 16]
    assert seq_among(["resnet50", "conv3x3:8"], 16) == [16, 16]  # kept, so that each refuses it
    assert seq_among(["resnet50"], None) == [None]


def test_the_command_line_resolves_its_namespace_into_requests_once() -> None:
    args = build_parser().parse_args(["compare", "resnet18", "conv3x3:8", "--input", "3x32x32", "--batch", "2",
                                      "--kwarg", "num_classes=10", "--freeze", "1", "--memory"])
    requests = requests_from_args(args, args.targets)
    assert [r.kind for r in requests] == [TargetKind.PRESET, TargetKind.EXPRESSION]
    first = requests[0]
    assert (first.input, first.batch, first.dtype, dict(first.options)) == ((3, 32, 32), 2, "float32",
                                                                           {"num_classes": "10"})
    assert first.steps == Steps(freeze="1", memory="adam")
    assert all(r.steps is first.steps for r in requests)  # handed down whole, the same for each target


def test_the_python_api_and_the_command_line_give_one_answer() -> None:
    """costlab.analyze's arguments and the CLI's namespace become the same request, priced the same."""
    out = io.StringIO()
    assert main(["analyze", "resnet18", "--input", "3x64x64", "--batch", "2", "--kwarg", "num_classes=10",
                 "--format", "json"], stdout=out) == 0
    import json

    cli = json.loads(out.getvalue())["targets"][0]
    api = costlab.analyze("resnet18", input=(3, 64, 64), batch=2, num_classes=10)
    assert (cli["macs"], cli["params"], cli["batch"]) == (api.macs, api.params, 2)


def test_the_peer_tools_are_named_once() -> None:
    """Every table of the other tools is keyed by costlab.core.tools, in its order."""
    from costlab.app import cli
    from costlab.analyses.conventions import CONVENTIONS

    assert cli.CHECK_NAMES is PEER_TOOLS and cli.CONVENTION_NAMES is CONVENTION_TOOLS
    assert tuple(CONVENTIONS) == CONVENTION_TOOLS
    assert set(PEER_TOOLS) <= set(CONVENTION_TOOLS)
    pytest.importorskip("torch")
    from costlab.torch_bridge import crosscheck, peers

    assert crosscheck.CHECKS == PEER_TOOLS and tuple(peers.PEERS) == PEER_TOOLS


def test_no_module_copies_the_list_of_peer_tools() -> None:
    """The names are written out in costlab/core/tools.py alone (the package and benchmarks/)."""
    copied = re.compile(r"""["']fvcore["'],\s*["'](torch|ptflops)["'],\s*["'](ptflops|thop)["']""")
    own = ROOT / "costlab" / "core" / "tools.py"
    found = [str(path.relative_to(ROOT)) for folder in ("costlab", "benchmarks")
             for path in sorted((ROOT / folder).rglob("*.py"))
             if path != own and copied.search(path.read_text(encoding="utf-8"))]
    assert found == []
