"""Other tools' conventions: costlab's profile of each tool equals that tool's own total.

The torch-free part checks the tables and the CLI; the rest runs the real tools (each skipped
when it is not installed) on every preset built with build_module on a small input, and on
small networks that exercise every rule: transposed convolutions, every norm, every activation,
pools, upsampling, 1-d and 3-d layers, element-wise ops, matmul and attention, at batch 1 and 2.
Where a tool's total differs from costlab's MACs, the tests assert the named rule (or bug) that
explains it, with the amount derived from costlab's own ops.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from costlab.app.cli import main
from costlab.analyses.conventions import CONVENTIONS, KIND_OF, check_tables, find_convention, profile
from costlab.core.errors import CostlabError
from costlab.core.formulas import FORMULAS
from costlab.core.graph import Net
from costlab.core.specs import (ACTIVATION_OPS, Activation, AdaptivePool, Attention, Concat, Conv,
                           Elementwise, Flatten, Linear, Matmul, Norm, Pool, Reshape, Upsample)
from costlab.core.zoo import PRESETS, build_preset

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ("fvcore", "ptflops", "thop", "torchinfo", "torchprofile", "torch")


def small_input(name: str) -> tuple[int, ...]:
    """The smallest round input each preset takes (AlexNet's stem needs 63 pixels)."""
    return {"lenet5": (1, 32, 32), "alexnet": (3, 63, 63)}.get(name, (3, 32, 32))


# --- torch-free -----------------------------------------------------------------------------------

def test_every_convention_has_a_rule_for_every_layer_kind() -> None:
    assert check_tables() == []
    assert set(KIND_OF) == set(FORMULAS)  # every spec type has a kind
    assert set(CONVENTIONS) >= {"fvcore", "ptflops", "thop", "torchinfo", "torchvision"}
    from costlab.app.cli import CONVENTION_NAMES

    assert CONVENTION_NAMES == tuple(CONVENTIONS)  # the CLI's choices, without loading the module


@pytest.mark.parametrize("name", list(PRESETS))
def test_differences_add_up_to_the_gap_with_costlab_macs(name: str) -> None:
    analysis = build_preset(name, small_input(name), batch=2)
    for convention in CONVENTIONS:
        p = profile(analysis, convention)
        assert sum(d.delta for d in p.differences()) == p.delta
        assert [layer.name for layer in p.layers] == [layer.name for layer in analysis.layers]
    # torchvision's table counts what costlab's MACs count; PyTorch's counter twice that
    assert profile(analysis, "torchvision").total == analysis.macs
    assert profile(analysis, "torch").total == 2 * analysis.macs


def test_ptflops_counts_relu_twice_and_the_bias_once() -> None:
    """On ResNet-18, ptflops' excess over costlab's MACs is fully named, each amount from costlab's ops."""
    a = build_preset("resnet18", (3, 32, 32))
    p = profile(a, "ptflops")
    by_label = {d.label: d.delta for d in p.differences()}
    relu_elements = sum(layer.ops for layer in a.layers if layer.type == "relu")  # 1 op per element
    assert by_label["activation hook 1/element"] == relu_elements
    assert by_label["activation counted again (patched F.*)"] == relu_elements
    bn_ops = sum(layer.ops for layer in a.layers if layer.op == "norm")  # 2 per element
    assert by_label["norm 1/element, 2 with affine"] == bn_ops
    assert by_label["linear bias adds"] == 1000
    assert p.delta == sum(by_label.values())


def test_traced_sources_decide_what_hook_tools_see() -> None:
    """A traced layer's source (the torch bridge's format) sets its call form: ptflops counts a
    module ReLU twice, F.relu once (patched), torch.relu not at all; thop sees none of the functions."""
    from dataclasses import replace

    from costlab.analyses.conventions import call_form, function_name

    from costlab.core.analysis import CallSite

    a = build_preset("resnet18", (3, 32, 32))
    relu_elements = sum(layer.ops for layer in a.layers if layer.type == "relu")
    module_x = CallSite("module", "torch.nn.X")

    def with_relu_call(call: CallSite):
        layers = tuple(replace(layer, call=call if layer.type == "relu" else module_x) for layer in a.layers)
        return replace(a, layers=layers)

    base = profile(a, "ptflops").total
    assert profile(with_relu_call(CallSite("module", "torch.nn.ReLU")), "ptflops").total == base
    assert profile(with_relu_call(CallSite("function", "torch.nn.functional.relu")), "ptflops").total \
        == base - relu_elements
    assert profile(with_relu_call(CallSite("function", "torch.relu")), "ptflops").total == base - 2 * relu_elements
    assert profile(with_relu_call(CallSite("function", "torch.Tensor.relu")), "thop").total == profile(a, "thop").total
    # the bridge writes the call site; its display name is the JSON "source"
    import torch
    from costlab.torch_bridge.recorder import function_site, module_site

    assert module_site(torch.nn.Conv2d(1, 1, 1)) == CallSite("module", "torch.nn.Conv2d")
    assert module_site(torch.nn.Conv2d(1, 1, 1)).short == "nn.Conv2d"
    assert function_site(torch.nn.functional.relu) == CallSite("function", "torch.nn.functional.relu")
    assert function_site("view").short == "Tensor.view"
    assert call_form(replace(a.layers[0], call=function_site(torch.flatten))) == "function"
    assert function_name(replace(a.layers[0], call=function_site("add"))) == "torch.Tensor.add"
    assert call_form(a.layers[0]) == "module" and function_name(a.layers[0]) == ""


def test_convention_json_field_keeps_macs_meaning() -> None:
    out = []
    for extra in ([], ["--convention", "fvcore"]):
        stream = __import__("io").StringIO()
        code = main(["compare", "resnet18", "conv3x3:8,bias > relu", "--input", "3x32x32",
                     "--format", "json"] + extra, stdout=stream)
        assert code == 0
        out.append(json.loads(stream.getvalue()))
    plain, profiled = out
    for before, after in zip(plain["targets"], profiled["targets"]):
        assert after["macs"] == before["macs"] and after["params"] == before["params"]
        assert "convention" not in before
        conv = after["convention"]
        assert conv["name"] == "fvcore"
        assert conv["total"] == sum(layer["count"] for layer in conv["layers"])
        assert conv["total"] - conv["macs"] == sum(d["delta"] for d in conv["differences"])


def test_bad_convention_is_one_line_exit_2() -> None:
    err = __import__("io").StringIO()
    assert main(["compare", "resnet18", "--convention", "flopz"], stderr=err) == 2
    assert err.getvalue().startswith("costlab: error:") and err.getvalue().count("\n") == 1
    with pytest.raises(CostlabError):
        find_convention("flopz")


@pytest.mark.parametrize("fmt", ["table", "md", "csv"])
def test_convention_in_every_format(fmt: str) -> None:
    stream = __import__("io").StringIO()
    assert main(["analyze", "mobilenet-v2", "--input", "3x32x32", "--convention", "thop", "--format",
                 fmt, "--depth", "1", "--exact"], stream) == 0
    text = stream.getvalue()
    total = profile(build_preset("mobilenet-v2", (3, 32, 32)), "thop").total
    assert (f"{total:,}" if fmt != "csv" else "thop") in text


def test_convention_does_not_import_torch() -> None:
    code = ("import sys, io; from costlab.app.cli import main; "
            "main(['compare', 'resnet50', '--convention', 'thop'], io.StringIO()); "
            "print('torch' in sys.modules, 'pandas' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, check=True)
    assert result.stdout.strip() == "False False"


def test_cost_model_doc_lists_every_rule(update_golden: bool) -> None:
    """docs/cost-model.md carries the rule tables exactly as the code has them."""
    from costlab.analyses.conventions import rules_markdown

    path = ROOT / "docs" / "cost-model.md"
    text = path.read_text(encoding="utf-8")
    begin, end = "<!-- conventions:begin -->\n", "<!-- conventions:end -->"
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    fresh = head + begin + rules_markdown() + end + tail
    if update_golden:
        path.write_text(fresh, encoding="utf-8")
        return
    assert text == fresh, "docs/cost-model.md's rule tables differ: run pytest --update-golden"


def test_cli_doc_example_is_real(monkeypatch: pytest.MonkeyPatch) -> None:
    """The --convention example in docs/cli.md is what costlab prints (in an 80-column terminal)."""
    monkeypatch.setenv("COLUMNS", "80")
    doc = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    stream = __import__("io").StringIO()
    assert main(["compare", "resnet50", "mobilenet-v2", "vgg16", "--convention", "thop"], stream) == 0
    tail = stream.getvalue().splitlines()[-5:]
    assert "\n".join(tail) in doc


# --- against the real tools -------------------------------------------------------------------------

torch = pytest.importorskip("torch")

from costlab.torch_bridge import peers  # noqa: E402
from costlab.torch_bridge.build import build_module, function_for, module_for  # noqa: E402
from costlab.analyses.conventions import BUILDER_FUNCTIONS  # noqa: E402

def built(name: str):
    """The preset as an nn.Module on its small input, weights zeroed (values do not matter here)."""
    analysis = build_preset(name, small_input(name))
    module = build_module(analysis, device="meta").to_empty(device="cpu")
    with torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            tensor.zero_()
    return analysis, module


def tool_or_skip(tool: str) -> None:
    if not peers.available(tool):
        pytest.skip(f"{tool} is not installed")


def cpu_attention_uncounted() -> bool:
    """PyTorch ≥ 2.14 runs CPU attention as aten._scaled_dot_product_flash_attention_for_cpu,
    which FlopCounterMode has no formula for (2.13 decomposes it into two bmm, which it counts)."""
    major, minor = (int(part) for part in torch.__version__.split(".")[:2])
    return (major, minor) >= (2, 14)


def assert_profile_is_the_tool(analysis, module, tool: str, x=None) -> None:
    x = torch.randn((analysis.batch,) + analysis.input) if x is None else x
    answer = peers.count(tool, module, x)
    p = profile(analysis, tool)
    if tool == "torch" and cpu_attention_uncounted():  # the named bug, by its exact amount
        attention = sum(layer.macs for layer in analysis.layers if isinstance(layer.spec, Attention))
        assert answer.raw == p.total - 2 * attention
        return
    assert answer.raw == p.total, (tool, answer.raw, p.total, p.explanation())
    if answer.params is not None:
        assert answer.params == p.params


@pytest.mark.parametrize("name", list(PRESETS))
def test_profile_total_is_the_tools_own_total_on_every_preset(name: str) -> None:
    """Every installed tool, on the preset built once (VGG's classifier alone is 400 MB)."""
    tools = [tool for tool in TOOLS if peers.available(tool)]
    if not tools:
        pytest.skip("none of the tools is installed")
    analysis, module = built(name)
    x = torch.randn((1,) + analysis.input)
    for tool in tools:
        assert_profile_is_the_tool(analysis, module, tool, x)


def test_builder_function_table_matches_the_builder() -> None:
    """call_form's table of function-form specs is exactly what build_module makes functions of."""
    samples = [Conv(4, (3, 3)), Linear(3), Norm("batch"), Activation("relu"), Pool("max", (2, 2)),
               AdaptivePool("avg", (1, 1)), Elementwise("add"), Concat(1), Matmul(), Attention(),
               Flatten(), Reshape((1, 4, 4, 4))]
    for spec in samples:
        assert (module_for(spec, [(1, 4, 4, 4)]) is None) == (type(spec) in BUILDER_FUNCTIONS)
        if type(spec) in BUILDER_FUNCTIONS:
            assert callable(function_for(spec))


def rule_networks(batch: int) -> dict[str, object]:
    """Small networks that exercise every rule of every table."""
    nets = {}
    for c_in, c_out, groups, bias in [(4, 4, 1, True), (4, 6, 2, False), (6, 6, 3, True)]:
        n = Net((c_in, 5, 5), batch)
        y = n.add(Conv(c_out, (3, 3), (2, 2), (1, 1), groups=groups, bias=bias, transposed=True,
                       output_padding=(1, 1)), n.input, name="convT")
        n.add(Norm("batch"), y, name="bn")
        nets[f"convT-{c_in}-{c_out}-g{groups}"] = n.analysis("t")
    for kind in ("layer", "group", "instance"):
        for affine in (True, False):
            n = Net((4, 6, 6), batch)
            y = n.add(Conv(8, (3, 3), bias=True), n.input, name="conv")
            spec = (Norm("layer", affine=affine, normalized_shape=(4, 4)) if kind == "layer"
                    else Norm(kind, affine=affine, num_groups=2, track_running_stats=False))
            n.add(spec, y, name="norm")
            nets[f"{kind}-norm-affine{affine}"] = n.analysis("t")
    n = Net((4, 6, 6), batch)
    y = n.add(Norm("batch", affine=False), n.input, name="bn1")
    n.add(Norm("batch", track_running_stats=False), y, name="bn2")
    nets["batch-norm-variants"] = n.analysis("t")
    n = Net((4, 6, 6), batch)
    y = n.input
    for kind in ACTIVATION_OPS:
        y = n.add(Activation(kind), y, name=kind)
    nets["activations"] = n.analysis("t")
    n = Net((4, 9, 9), batch)
    y = n.add(Pool("avg", (3, 3), (2, 2), (1, 1), ceil_mode=True), n.input, name="avgpool")
    y = n.add(Pool("max", (2, 2), (1, 1)), y, name="maxpool")
    y = n.add(AdaptivePool("avg", (3, 2)), y, name="adaptive_avg")  # uneven windows
    n.add(AdaptivePool("max", (2, 2)), y, name="adaptive_max")
    nets["pools"] = n.analysis("t")
    for mode in ("nearest", "bilinear", "bicubic", "nearest-exact"):
        n = Net((3, 4, 4), batch)
        n.add(Upsample((7, 9), mode), n.input, name="upsample")
        nets[f"upsample-{mode}"] = n.analysis("t")
    n = Net((3, 8), batch)
    y = n.add(Upsample((13,), "linear"), n.input, name="linear")
    n.add(Upsample((20,), "nearest"), y, name="nearest")
    nets["upsample-1d"] = n.analysis("t")
    n = Net((3, 20), batch)
    y = n.add(Conv(5, (3,), bias=True), n.input, name="conv1d")
    y = n.add(Pool("avg", (2,)), y, name="avgpool1d")
    n.add(AdaptivePool("avg", (4,)), y, name="adaptive1d")
    nets["1d"] = n.analysis("t")
    n = Net((2, 6, 6, 6), batch)
    y = n.add(Conv(4, (3, 3, 3), bias=True), n.input, name="conv3d")
    n.add(AdaptivePool("avg", (2, 2, 1)), y, name="adaptive3d")
    nets["3d"] = n.analysis("t")
    n = Net((5, 8), batch)
    a = n.add(Linear(8), n.input, name="fc1")  # on a sequence: (N, 5, 8)
    b = n.add(Linear(8, bias=False), n.input, name="fc2")
    s = n.add(Elementwise("add"), a, b, name="add")
    m = n.add(Elementwise("mul"), s, b, name="mul")
    d = n.add(Elementwise("sub"), m, a, name="sub")
    t = n.add(Reshape((batch, 8, 5), "transpose"), d, name="transpose")
    mm = n.add(Matmul(), d, t, name="matmul")
    att = n.add(Attention(), d, d, d, name="attention")
    c = n.add(Concat(-1), att, mm, name="cat")
    f = n.add(Flatten(), c, name="flatten")
    n.add(Linear(3), f, name="fc3")
    nets["sequence"] = n.analysis("t")
    return nets


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("tool", TOOLS)
def test_profile_is_the_tool_on_every_rule(tool: str, batch: int) -> None:
    tool_or_skip(tool)
    torch.manual_seed(0)
    for label, analysis in rule_networks(batch).items():
        module = build_module(analysis)
        try:
            assert_profile_is_the_tool(analysis, module, tool)
        except AssertionError as error:
            raise AssertionError(f"{label}: {error}") from None


@pytest.mark.parametrize("tool", ["thop", "torchinfo", "torchprofile"])
def test_transposed_convolution_bugs_are_named(tool: str) -> None:
    """Three tools price a transposed conv at its output positions: the profile says so and the
    tool's total is that wrong count, not costlab's MACs."""
    tool_or_skip(tool)
    analysis = rule_networks(1)["convT-4-6-g2"]
    layer = analysis.layer("convT")
    p = profile(analysis, tool)
    bugs = [d for d in p.differences() if d.verdict == "bug" and "transposed" in d.label]
    assert [d.label for d in bugs] == ["transposed conv at output positions"]
    assert bugs[0].macs == layer.macs and bugs[0].count != layer.macs
    answer = peers.count(tool, build_module(analysis), torch.randn((1,) + analysis.input))
    assert answer.raw == p.total
    assert profile(analysis, "fvcore").layers[0].count == layer.macs  # fvcore prices it right


def test_thop_misses_functional_matmul_and_attention() -> None:
    tool_or_skip("thop")
    analysis = rule_networks(1)["sequence"]
    p = profile(analysis, "thop")
    missed = {layer.name for layer in p.layers
              if any(term.verdict == "missed" for term, _ in layer.terms)}
    assert {"matmul", "attention", "add", "mul", "sub"} <= missed
    matmul_macs = analysis.layer("matmul").macs + analysis.layer("attention").macs
    assert p.delta == -matmul_macs  # thop counts linear MACs exactly, nothing else here


# --- torchvision ---------------------------------------------------------------------------------

TORCHVISION = {"alexnet": "alexnet", "vgg11": "vgg11", "vgg13": "vgg13", "vgg16": "vgg16",
               "vgg19": "vgg19", "resnet18": "resnet18", "resnet34": "resnet34",
               "resnet50": "resnet50", "resnet101": "resnet101", "resnet152": "resnet152",
               "googlenet": "googlenet", "mobilenet-v2": "mobilenet_v2"}


@pytest.mark.parametrize("name", list(TORCHVISION))
def test_torchvision_convention_is_its_model_table(name: str) -> None:
    pytest.importorskip("torchvision")
    from torchvision.models import get_model_weights

    analysis = build_preset(name)
    p = profile(analysis, "torchvision")
    for weights in get_model_weights(TORCHVISION[name]):
        assert f"{p.total / 1e9:.3f}" == f"{weights.meta['_ops']:.3f}"
        assert p.params == weights.meta["num_params"]


@pytest.mark.parametrize("name", ["resnet50", "mobilenet-v2", "googlenet"])
def test_fvcore_on_torchvision_models_is_the_preset_profile(name: str) -> None:
    """fvcore traces ops, so torchvision's own module (functional ReLU, in-place +=, torch.flatten)
    gets the total the preset's profile gives."""
    tool_or_skip("fvcore")
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.get_model(TORCHVISION[name], weights=None).eval()
    analysis = build_preset(name, (3, 64, 64))
    answer = peers.count("fvcore", model, torch.randn((1,) + analysis.input))
    assert answer.raw == profile(analysis, "fvcore").total
    assert answer.params == analysis.params + analysis.training_only_params  # GoogLeNet's aux heads



# --- traced modules: the call form comes from the trace ------------------------------------------

class _LayerNorm2d(torch.nn.LayerNorm):
    """A leaf module of its own class that calls functions (torchvision's ConvNeXt has one)."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = torch.nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class _Block(torch.nn.Module):
    """Functional ReLU, a shared module called twice, in-place +=, a parameter on a container."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(channels)
        self.conv2 = torch.nn.Conv2d(channels, channels, 3, padding=1)
        self.relu = torch.nn.ReLU()
        self.norm = _LayerNorm2d(channels)
        self.scale = torch.nn.Parameter(torch.ones(channels, 1, 1))

    def forward(self, x):
        y = torch.nn.functional.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.conv2(y))
        y = self.norm(y) * self.scale
        y += x
        return self.relu(y)


class _Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.blocks = torch.nn.Sequential(_Block(8), _Block(8))
        self.up = torch.nn.Upsample(scale_factor=2.0, mode="nearest")
        self.fc = torch.nn.Linear(8, 5)

    def forward(self, x):
        x = self.blocks(torch.nn.functional.max_pool2d(self.stem(x), 2))
        x = torch.nn.functional.adaptive_avg_pool2d(self.up(x), 1)
        x = torch.flatten(x, 1) + x.mean((2, 3))
        return torch.softmax(self.fc(x), -1)


def _traceable() -> bool:
    import importlib.util

    return importlib.util.find_spec("costlab.torch_bridge.trace") is not None


@pytest.mark.parametrize("tool", TOOLS)
def test_profile_of_a_traced_module_is_the_tool(tool: str) -> None:
    """A module with functional ops, a shared ReLU, in-place +=, a custom leaf module calling
    F.layer_norm and a parameter held by a container: costlab's trace tells module calls from
    function calls, and each profile still equals the tool's own total and params."""
    tool_or_skip(tool)
    if not _traceable():
        pytest.skip("costlab.torch_bridge.trace is not available")
    import costlab

    torch.manual_seed(0)
    module = _Net().eval()
    analysis = costlab.analyze(module, input=(3, 16, 16))
    assert not analysis.unsupported
    assert_profile_is_the_tool(analysis, module, tool)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet-v2", "googlenet"])
def test_profile_of_a_traced_preset_equals_the_analytic_one(name: str) -> None:
    if not _traceable():
        pytest.skip("costlab.torch_bridge.trace is not available")
    import costlab

    analysis, module = built(name)
    traced = costlab.analyze(module, input=analysis.input)
    for convention in CONVENTIONS:
        assert profile(traced, convention).total == profile(analysis, convention).total
        assert profile(traced, convention).params == profile(analysis, convention).params


@pytest.mark.parametrize("name", ["resnet18", "googlenet", "mobilenet_v2", "shufflenet_v2_x1_0",
                                  "convnext_tiny"])
def test_profile_of_traced_torchvision_models_is_each_tool(name: str) -> None:
    """torchvision's own modules (functional ReLU, shared ReLU, x.mean, channel shuffles,
    LayerNorm2d, layer scale), traced by costlab: every installed tool's total and params."""
    torchvision = pytest.importorskip("torchvision")
    if not _traceable():
        pytest.skip("costlab.torch_bridge.trace is not available")
    tools = [tool for tool in TOOLS if peers.available(tool)]
    import costlab

    with torch.device("meta"):
        model = torchvision.models.get_model(name, weights=None)
    model = model.to_empty(device="cpu").eval()
    with torch.no_grad():
        for tensor in list(model.parameters()) + list(model.buffers()):
            tensor.zero_()
    analysis = costlab.analyze(model, input=(3, 64, 64))
    x = torch.randn((1,) + analysis.input)
    for tool in tools:
        assert_profile_is_the_tool(analysis, model, tool, x)
