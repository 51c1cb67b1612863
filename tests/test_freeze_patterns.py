"""--freeze with names and glob patterns resolved per target, and with a module's own requires_grad flags."""

from __future__ import annotations

import io
import json

import pytest

pytest.importorskip("torch")

import costlab_head_nets as nets  # noqa: E402
from costlab.app.cli import main  # noqa: E402
from costlab.analyses.training import matches, parse_freeze  # noqa: E402

HEADS = {"costlab_head_nets:resnet_like": ("resnet_like", "fc"),
         "costlab_head_nets:mobilenet_like": ("mobilenet_like", "classifier"),
         "costlab_head_nets:vit_like": ("vit_like", "head"),
         "costlab_head_nets:convnext_like": ("convnext_like", "head")}


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def params(module) -> int:  # type: ignore[no-untyped-def]
    return sum(p.numel() for p in module.parameters())


def test_patterns_match_blocks_at_dots_and_globs() -> None:
    assert matches("head.fc", "head") and matches("layer4.0.conv1", "layer4") and not matches("layer40", "layer4")
    assert matches("head_drop", "head*") and matches("stages.1.fc", "*.fc") and not matches("fc1", "fc")
    assert parse_freeze("fc, classifier,head").patterns == ("fc", "classifier", "head")
    assert parse_freeze("requires_grad").requires_grad


def test_one_freeze_for_torchvision_and_timm_heads() -> None:
    code, out, err = run("compare", *HEADS, "--input", "3x16x16", "--freeze", "fc,classifier,head",
                         "--format", "json")
    assert (code, err) == (0, "")
    for target, (factory, head) in zip(json.loads(out)["targets"], HEADS.values()):
        model = getattr(nets, factory)()
        head_params = params(getattr(model, head))
        assert target["trainable_params"] == head_params, target["name"]
        assert target["frozen_params"] == params(model) - head_params
        assert target["freeze"]["first_trainable"].split(".")[0] == head


def test_timm_head_fc_and_globs() -> None:
    model = nets.convnext_like()
    for freeze in ("head.fc", "*.fc", "head.f?"):
        code, out, err = run("analyze", "costlab_head_nets:convnext_like", "--input", "3x16x16",
                             "--freeze", freeze, "--format", "json")
        assert (code, err) == (0, ""), freeze
        (target,) = json.loads(out)["targets"]
        assert target["trainable_params"] == params(model.head.fc), freeze  # head.norm stays frozen


def test_a_pattern_no_target_has_is_refused_in_one_line() -> None:
    code, out, err = run("compare", "costlab_head_nets:resnet_like", "--input", "3x16x16", "--freeze",
                         "classifier,head")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("costlab: error: --freeze classifier,head: costlab_head_nets:resnet_like has no "
                          "layer or block matching any of classifier, head")


def test_requires_grad_reads_the_modules_own_flags() -> None:
    model = nets.frozen_features()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    code, out, err = run("analyze", "costlab_head_nets:frozen_features", "--input", "3x16x16", "--freeze",
                         "requires_grad", "--format", "json")
    assert (code, err) == (0, "")
    (target,) = json.loads(out)["targets"]
    assert target["trainable_params"] == trainable == model.classifier[1].weight.numel()
    assert target["frozen_params"] == params(model) - trainable
    fc = next(layer for layer in target["layers"] if layer["name"] == "classifier.1")
    assert fc["trainable_params"] == trainable and fc["grads"] == "weight"  # bias frozen, weight still trained
    # the frozen features compute no gradient: the train step is the forward plus fc's weight gradient
    assert target["train_step_macs"] == target["macs"] + fc["macs"]


def test_requires_grad_needs_a_module_target() -> None:
    code, out, err = run("compare", "resnet18", "--freeze", "requires_grad")
    assert code == 2 and out == "" and err.count("\n") == 1 and "requires_grad" in err
