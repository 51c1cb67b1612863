"""costlab's counts against two independent counters: fvcore's FlopCountAnalysis and PyTorch's
FlopCounterMode. Properties on random layers, every difference on real networks explained by a
named convention, and the --check / --strict command line."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
fvcore_nn = pytest.importorskip("fvcore.nn")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import costlab  # noqa: E402
from costlab.app.cli import main  # noqa: E402
from costlab.core.graph import Net  # noqa: E402
from costlab.core.specs import AdaptivePool, Conv, Flatten, Linear, Pool  # noqa: E402
from costlab.torch_bridge.build import build_module  # noqa: E402
from costlab.torch_bridge.crosscheck import PER_SAMPLE, cross_check  # noqa: E402
from costlab.torch_bridge.trace import trace_module  # noqa: E402
from costlab.core.zoo import build_preset  # noqa: E402

import costlab_test_nets as nets  # noqa: E402
from costlab.torch_bridge import peers  # noqa: E402



def fvcore_count(module: nn.Module, x: "torch.Tensor") -> int:
    """fvcore's total (1 per multiply-add), through the one table of runners."""
    return int(peers.count("fvcore", module, x).macs)


def torch_count(module: nn.Module, x: "torch.Tensor") -> int:
    """PyTorch's counter, halved (it counts 2 FLOPs per multiply-add), through the runners' table."""
    counted = peers.count("torch", module, x)
    assert counted.raw % 2 == 0
    return int(counted.macs)


def agree_everywhere(analysis: costlab.Analysis) -> None:
    """Analytic MACs == fvcore == PyTorch ÷ 2; output shape == the built module's; trace == analysis."""
    module = build_module(analysis)
    x = torch.randn((analysis.batch,) + analysis.input)
    with torch.no_grad():
        out = module(x)
    assert tuple(out.shape[1:]) == analysis.output
    assert analysis.macs == fvcore_count(module, x) == torch_count(module, x)
    traced = trace_module(module, analysis.input, batch=analysis.batch).analysis
    assert [(t.name, t.output, t.macs, t.params) for t in traced.layers] == \
        [(a.name, a.output, a.macs, a.params) for a in analysis.layers]


def one_layer(spec: object, input_shape: tuple[int, ...], batch: int, *after: object) -> costlab.Analysis:
    net = Net(input_shape, batch)
    value = net.add(spec, net.input, name="layer")  # type: ignore[arg-type]
    for index, more in enumerate(after):
        value = net.add(more, value, name=f"after{index}")  # type: ignore[arg-type]
    return net.analysis("property", value)


@settings(max_examples=40, deadline=None)
@given(groups=st.integers(1, 3), in_per=st.integers(1, 3), out_per=st.integers(1, 3), depthwise=st.booleans(),
       size=st.tuples(st.integers(3, 11), st.integers(3, 11)), kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       stride=st.tuples(st.integers(1, 3), st.integers(1, 3)), pad=st.tuples(st.integers(0, 2), st.integers(0, 2)),
       dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)), bias=st.booleans(), batch=st.integers(1, 3))
def test_conv_macs_equal_fvcore_and_pytorch(groups, in_per, out_per, depthwise, size, kernel, stride, pad,
                                            dilation, bias, batch) -> None:
    channels = groups * in_per
    if depthwise:  # groups = input channels, a channel multiplier of out_per
        groups, channels = channels, channels
    assume(all(d * (k - 1) + 1 <= n + 2 * p for n, k, p, d in zip(size, kernel, pad, dilation)))
    spec = Conv(groups * out_per, kernel, stride, pad, dilation, groups, bias)
    agree_everywhere(one_layer(spec, (channels,) + size, batch))


@settings(max_examples=15, deadline=None)
@given(ndim=st.sampled_from([1, 3]), transposed=st.booleans(), groups=st.integers(1, 2),
       channels=st.integers(1, 3), size=st.integers(3, 6), kernel=st.integers(1, 3), stride=st.integers(1, 2),
       pad=st.integers(0, 1))
def test_1d_3d_and_transposed_conv_macs_equal_fvcore_and_pytorch(ndim, transposed, groups, channels, size,
                                                                  kernel, stride, pad) -> None:
    assume(kernel <= size + 2 * pad and (not transposed or (size - 1) * stride - 2 * pad + kernel > 0))
    spec = Conv(2 * groups, (kernel,) * ndim, (stride,) * ndim, (pad,) * ndim, groups=groups,
                transposed=transposed)
    agree_everywhere(one_layer(spec, (groups * channels,) + (size,) * ndim, 2))


@settings(max_examples=30, deadline=None)
@given(middle=st.lists(st.integers(1, 4), max_size=2), features=st.integers(1, 12), out=st.integers(1, 12),
       bias=st.booleans(), batch=st.integers(1, 4))
def test_linear_macs_equal_fvcore_and_pytorch(middle, features, out, bias, batch) -> None:
    agree_everywhere(one_layer(Linear(out, bias), tuple(middle) + (features,), batch))


@settings(max_examples=30, deadline=None)
@given(mode=st.sampled_from(["max", "avg"]), size=st.integers(2, 12), kernel=st.integers(1, 4),
       stride=st.integers(1, 3), pad=st.integers(0, 2), dilation=st.integers(1, 2), ceil=st.booleans(),
       channels=st.integers(1, 4), out=st.integers(1, 6))
def test_pool_then_linear_macs_equal_fvcore_and_pytorch(mode, size, kernel, stride, pad, dilation, ceil,
                                                         channels, out) -> None:
    dilation = dilation if mode == "max" else 1
    assume(2 * pad <= kernel and dilation * (kernel - 1) + 1 <= size + 2 * pad)
    spec = Pool(mode, (kernel, kernel), (stride, stride), (pad, pad), (dilation, dilation), ceil)
    agree_everywhere(one_layer(spec, (channels, size, size), 2, Flatten(), Linear(out)))


@settings(max_examples=20, deadline=None)
@given(size=st.tuples(st.integers(1, 9), st.integers(1, 9)), target=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       channels=st.integers(1, 4))
def test_adaptive_pool_differs_from_fvcore_by_its_named_convention(size, target, channels) -> None:
    analysis = one_layer(AdaptivePool("avg", target), (channels,) + size, 2, Flatten(), Linear(3))
    module = build_module(analysis)
    x = torch.randn((2, channels) + size)
    assert tuple(module(x).shape[1:]) == analysis.output
    assert analysis.macs == torch_count(module, x)
    # fvcore also counts adaptive_avg_pool2d, one per input element
    assert fvcore_count(module, x) == analysis.macs + 2 * channels * size[0] * size[1]
    checked = cross_check(analysis)
    assert checked.checks["fvcore"].agreement == "explained"
    assert checked.checks["fvcore"].conventions == {"adaptive avg pool 1/input element":
                                                       2 * channels * size[0] * size[1]}
    assert checked.checks["torch"].agreement == "exact"


@pytest.mark.parametrize("name, input", [("lenet5", None), ("resnet18", (3, 64, 64)),
                                         ("googlenet", (3, 64, 64)), ("mobilenet-v2", (3, 64, 64))])
def test_presets_agree_with_both_counters_up_to_named_conventions(name: str, input) -> None:
    analysis = build_preset(name, input, batch=2)
    checks = cross_check(analysis).checks
    assert checks["torch"].agreement == "exact" and checks["torch"].total == analysis.macs
    assert checks["torch"].flops == 2 * analysis.macs
    fv = checks["fvcore"]
    assert fv.agreement in ("exact", "explained")
    assert set(fv.conventions) <= {"batch norm 2/element", "adaptive avg pool 1/input element"}
    assert fv.total == analysis.macs + sum(fv.conventions.values())
    assert (fv.batch, fv.scale) == (1, 2)
    rows = {row.name: row for row in fv.layers}
    conv = next(layer for layer in analysis.layers if layer.op == "conv")
    assert rows[conv.name].reference == rows[conv.name].costlab == conv.macs
    if name != "lenet5":
        norm = next(layer for layer in analysis.layers if layer.op == "norm")
        elements = 1
        for n in norm.input_shapes[0]:
            elements *= n
        assert rows[norm.name].reference == 2 * elements  # BN with affine at inference
        assert rows[norm.name].conventions == ("batch norm 2/element",)


class ConventionZoo(nn.Module):
    """Every layer whose fvcore count differs from its MACs by a named convention."""

    def __init__(self) -> None:
        super().__init__()
        self.gn = nn.GroupNorm(2, 8)
        self.inorm = nn.InstanceNorm2d(8, affine=True)
        self.bn = nn.BatchNorm2d(8, track_running_stats=False)
        self.up = nn.Upsample(scale_factor=2)
        self.up2 = nn.Upsample(scale_factor=2, mode="bilinear")
        self.ln = nn.LayerNorm(8)
        self.mha = nn.MultiheadAttention(8, 2, batch_first=True)
        self.masked = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.up2(self.up(self.bn(self.inorm(self.gn(x)))))
        t = self.ln(y.flatten(2).transpose(1, 2))
        a, _ = self.mha(t, t, t)  # need_weights: two bmm, counted
        mask = torch.zeros(t.shape[1], t.shape[1], dtype=torch.bool)
        b, _ = self.masked(a, a, a, attn_mask=mask)  # baddbmm: no fvcore rule
        c, _ = self.mha(b, b, b, need_weights=False)  # scaled_dot_product_attention: no fvcore rule
        q = c.view(c.shape[0], c.shape[1], 2, 4).transpose(1, 2)
        return F.scaled_dot_product_attention(q, q, q)


def test_every_fvcore_difference_is_named() -> None:
    module = ConventionZoo()
    analysis = costlab.analyze(module, input=(8, 4, 4), batch=2)
    assert analysis.unsupported == ()
    checks = cross_check(analysis, module).checks
    assert checks["torch"].agreement == "exact"
    fv = checks["fvcore"]
    assert fv.agreement == "explained", [r for r in fv.layers if r.agreement == "unexplained"]
    # the same rules, in the same words, as --convention fvcore
    assert set(fv.conventions) == {"norm 5/element", "batch norm 2/element", "upsample 1/output element",
                                      "upsample 4/output element", "attention by its kernel"}
    assert fv.conventions["upsample 1/output element"] == 2 * 8 * 8 * 8
    assert fv.conventions["upsample 4/output element"] == 4 * 2 * 8 * 16 * 16
    assert set(fv.explanations) == set(fv.conventions)
    profiled = costlab.analyze(module, input=(8, 4, 4), batch=2, convention="fvcore").convention
    assert fv.total == fv.expected == profiled.total
    assert module.training  # the check ran in eval mode and put the flag back


def test_an_unexplained_difference_fails_strict() -> None:
    argv = ["analyze", "costlab_test_nets:grid_net", "--input", "3x8x8", "--check", "fvcore,torch"]
    out = io.StringIO()
    assert main(argv, stdout=out) == 0
    assert "UNEXPLAINED" in out.getvalue()
    out, err = io.StringIO(), io.StringIO()
    assert main(argv + ["--strict", "--format", "json"], stdout=out, stderr=err) == 1
    target = json.loads(out.getvalue())["targets"][0]
    assert target["checks"]["fvcore"]["agreement"] == "unexplained"
    listed = {(u["path"], u["op"]) for u in target["unsupported"]}
    assert ("(top level)", "aten.grid_sampler_2d") in listed
    row = next(r for r in target["checks"]["fvcore"]["layers"] if r["agreement"] == "unexplained")
    # fvcore counts grid_sample (N·C·H_out·W_out, bilinear); costlab lists the op instead of pricing it
    assert row["note"] == "costlab lists an unsupported op here" and row["difference"] > 0


def test_einsum_is_priced_through_its_aten_decomposition() -> None:
    module = nets.einsum_net()
    x = torch.randn(4, 16)
    a = costlab.analyze(module, inputs=(x.unsqueeze(0).expand(2, 4, 16).contiguous(),))
    assert not a.unsupported
    # fc: 2·4 rows × 16 × 16, einsum bij,bkj->bik: 2 × 4·16·4
    assert a.macs == 2 * 4 * 16 * 16 + 2 * 4 * 16 * 4
    with FlopCounterMode(display=False) as counter:
        module(x.unsqueeze(0).expand(2, 4, 16).contiguous())
    assert a.macs == counter.get_total_flops() // 2
    assert {layer.engine for layer in a.layers if "einsum" in layer.name} == {"fx+meta"}


def test_check_output_in_every_format() -> None:
    base = ["compare", "resnet18", "conv3x3:8 > bn > relu", "--input", "3x32x32", "--check", "fvcore,torch",
            "--strict"]
    for fmt in ("table", "md", "csv", "json"):
        out = io.StringIO()
        wide = ["--wide"] if fmt == "table" else []  # a narrow terminal says 'explained', the rules below
        assert main(base + ["--format", fmt, "--per-layer"] + wide, stdout=out) == 0, fmt
        text = out.getvalue()
        if fmt == "json":
            data = json.loads(text)
            for target in data["targets"]:
                assert set(target["checks"]) == {"fvcore", "torch"}
                for entry in target["checks"].values():
                    assert {"total", "costlab", "agreement", "layers", "conventions"} <= set(entry)
                    assert entry["costlab"] == target["macs"]
        elif fmt == "csv":
            header = text.splitlines()[0].split(",")
            assert {"fvcore_macs", "fvcore_agreement", "torch_macs", "torch_agreement"} <= set(header)
        else:
            assert "agreement" in text and "explained (batch norm 2/element)" in text
    out = io.StringIO()
    assert main(["analyze", "resnet18", "--input", "3x32x32", "--check", "torch", "--format", "csv",
                 "--depth", "1"], stdout=out) == 0
    assert "torch_agreement" in out.getvalue().splitlines()[0]


def test_fvcore_is_skipped_when_a_real_forward_pass_is_too_big() -> None:
    analysis = build_preset("vgg16", (3, 4096, 4096), batch=64)
    checks = cross_check(analysis).checks
    assert checks["fvcore"].status == "skipped" and "GiB" in checks["fvcore"].reason
    assert checks["torch"].agreement == "exact" and checks["torch"].total == analysis.macs


def test_check_options_are_validated() -> None:
    err = io.StringIO()
    assert main(["compare", "--check", "fvcore,bogus"], stdout=io.StringIO(), stderr=err) == 2
    assert err.getvalue().startswith("costlab: error: ") and err.getvalue().count("\n") == 1
    # --strict alone is valid (issue 19): it fails a count that misses a multiply, and a complete one passes
    assert main(["compare", "--strict"], stdout=io.StringIO(), stderr=io.StringIO()) == 0


def test_a_module_list_looped_over_in_forward_checks_exact() -> None:
    """A container the references never see called is transparent: no negative row, nothing unexplained."""
    argv = ["analyze", "costlab_test_nets:looped_list", "--input", "3x16x16", "--check", "fvcore,torch", "--strict",
            "--format", "json"]
    out = io.StringIO()
    assert main(argv, stdout=out) == 0
    target = json.loads(out.getvalue())["targets"][0]
    for tool in ("fvcore", "torch"):
        check = target["checks"][tool]
        assert check["agreement"] == "exact", tool
        assert all(row["agreement"] == "exact" for row in check["layers"]), tool
        assert check["total"] == target["macs"] == 16 * 16 * (3 * 9 * 8 + 3 * 8 * 9 * 8)


@pytest.mark.parametrize("tool", ["ptflops", "thop", "torchinfo", "torchprofile"])
def test_check_runs_every_installed_tool_and_names_rules_as_convention_does(tool: str) -> None:
    pytest.importorskip(tool)
    analysis = build_preset("resnet18", (3, 32, 32), batch=2)
    entry = cross_check(analysis, checks=[tool]).checks[tool]
    assert entry.status == "ok" and entry.agreement in ("exact", "explained"), entry
    predicted = costlab.analyze("resnet18", input=(3, 32, 32), batch=2, convention=tool).convention
    assert entry.expected == predicted.total == entry.total  # the real tool, as its profile says
    labels = {d.label for d in predicted.differences()}
    assert set(entry.conventions) - {PER_SAMPLE} <= labels  # the same words as --convention
    if PER_SAMPLE in entry.conventions:  # per-sample counts: --convention states it in its call
        assert "divided by the batch size" in predicted.convention.call
    if entry.params is not None:
        assert entry.params.tool == entry.params.expected
    out, err = io.StringIO(), io.StringIO()
    assert main(["analyze", "resnet18", "--input", "3x32x32", "--check", tool, "--strict"], stdout=out, stderr=err) == 0


def test_check_through_the_python_api_equals_the_cli() -> None:
    a = costlab.analyze("resnet18", input=(3, 32, 32), check=["fvcore", "torch"])
    out = io.StringIO()
    assert main(["analyze", "resnet18", "--input", "3x32x32", "--check", "fvcore,torch", "--format", "json"],
                stdout=out) == 0
    assert json.loads(out.getvalue())["targets"][0]["checks"] == json.loads(json.dumps(a.checks.to_dict()))


@pytest.mark.parametrize("unit", ["macs", "flops"])
def test_a_per_sample_tool_explains_its_whole_difference(unit: str) -> None:
    """ptflops at batch 2 reports MACs per sample: the check's shares — its rules plus the hook counts
    ÷ batch — add up to the whole difference, and --unit flops labels every count as FLOPs."""
    if not peers.available("ptflops"):
        pytest.skip("ptflops is not installed")
    argv = ["analyze", "conv3x3:8 > bn > relu > maxpool2x2 > fc:10", "--input", "3x16x16", "--batch", "2",
            "--check", "ptflops,torch", "--unit", unit]
    out, err = io.StringIO(), io.StringIO()
    assert main(argv + ["--format", "json"], stdout=out, stderr=err) == 0, err.getvalue()
    data = json.loads(out.getvalue())
    check = (data["targets"][0] if "targets" in data else data)["checks"]["ptflops"]
    assert check["agreement"] == "explained"
    assert sum(check["conventions"].values()) == check["difference"] != 0
    assert check["conventions"]["hook counts ÷ batch"] < 0
    out = io.StringIO()
    assert main(argv, stdout=out, stderr=io.StringIO()) == 0
    text = out.getvalue()
    assert "hook counts ÷ batch" in text
    assert ("FlopCounterMode ÷ 2" in text) == (unit == "macs")
