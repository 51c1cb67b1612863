"""The engine's ladder and the inputs of every kind: fx, a call priced alone at the aten level, a
whole meta run, a CPU run; typed inputs in Python and on the command line; recurrent layers,
grouped-query and causal attention; the user's module and tensors left as they were.

Every count is held against PyTorch's own counter (FlopCounterMode ÷ 2, grad enabled, math SDPA)
or an explicit loop.
"""

from __future__ import annotations

import io
import json

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import costlab  # noqa: E402
from costlab.app.cli import main  # noqa: E402
from costlab.core.errors import CostlabError  # noqa: E402
from costlab.core.inputs import TensorSpec, parse_inputs  # noqa: E402
from costlab.core.analysis import MAC_OPS  # noqa: E402
from costlab.torch_bridge.trace import trace_module  # noqa: E402


def counted(module: nn.Module, *args: object, **kwargs: object) -> int:
    """PyTorch's counter on the same call, halved; the math SDPA backend so it sees attention."""
    with torch.enable_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        module(*args, **kwargs)
    flops = counter.get_total_flops()
    assert flops % 2 == 0
    return flops // 2


def params_of(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --- recurrent layers against a hand-written loop --------------------------------------------

def _cell_loop(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """nn.LSTM / GRU / RNN written out step by step with torch.mm on the module's own weights."""
    mode = type(m).__name__
    seq = x if not m.batch_first else x.transpose(0, 1)
    steps, batch = seq.shape[0], seq.shape[1]
    directions = 2 if m.bidirectional else 1
    layer_in = seq
    for layer in range(m.num_layers):
        outputs = []
        for d in range(directions):
            suffix = f"_l{layer}" + ("_reverse" if d else "")
            w_ih, w_hh = getattr(m, "weight_ih" + suffix), getattr(m, "weight_hh" + suffix)
            b_ih, b_hh = getattr(m, "bias_ih" + suffix), getattr(m, "bias_hh" + suffix)
            w_hr = getattr(m, "weight_hr" + suffix, None)
            size = m.proj_size if getattr(m, "proj_size", 0) else m.hidden_size
            h = torch.zeros(batch, size)
            c = torch.zeros(batch, m.hidden_size)
            order = range(steps - 1, -1, -1) if d else range(steps)
            out = [None] * steps
            for t in order:
                gi = torch.mm(layer_in[t], w_ih.t()) + b_ih
                gh = torch.mm(h, w_hh.t()) + b_hh
                if mode == "LSTM":
                    i, f, g, o = (gi + gh).chunk(4, 1)
                    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                    h = torch.sigmoid(o) * torch.tanh(c)
                    if w_hr is not None:
                        h = torch.mm(h, w_hr.t())
                elif mode == "GRU":
                    ri, zi, ni = gi.chunk(3, 1)
                    rh, zh, nh = gh.chunk(3, 1)
                    r, z = torch.sigmoid(ri + rh), torch.sigmoid(zi + zh)
                    n = torch.tanh(ni + r * nh)
                    h = (1 - z) * n + z * h
                else:
                    h = torch.tanh(gi + gh)
                out[t] = h
            outputs.append(torch.stack(out))
        layer_in = torch.cat(outputs, -1)
    return layer_in if not m.batch_first else layer_in.transpose(0, 1)


@pytest.mark.parametrize("make", [
    lambda: nn.LSTM(6, 5),
    lambda: nn.LSTM(6, 5, num_layers=2, bidirectional=True),
    lambda: nn.LSTM(6, 5, num_layers=2, proj_size=3, batch_first=True),
    lambda: nn.GRU(6, 5, num_layers=2, bidirectional=True),
    lambda: nn.RNN(6, 5, batch_first=True),
], ids=["lstm", "lstm-2-bi", "lstm-proj", "gru-2-bi", "rnn"])
def test_recurrent_layers_equal_an_explicit_loop(make) -> None:
    torch.manual_seed(0)
    m = make().eval()
    x = torch.randn(3, 4, 6)  # (T, N, I), or (N, T, I) batch-first
    with torch.no_grad():
        expected, _ = m(x)
        looped = _cell_loop(m, x)
    assert torch.allclose(expected, looped, atol=1e-5)  # the loop is the layer
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        _cell_loop(m, x)
    a = costlab.analyze(m, inputs=(x,))
    assert a.macs == counter.get_total_flops() // 2
    assert a.params == params_of(m)
    assert a.output == tuple(expected.shape[1:])


# --- the ladder ----------------------------------------------------------------------------

@torch.fx.wrap
def _window_attention(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    q = F.linear(x, weight)
    return torch.softmax(q @ q.transpose(-1, -2), -1) @ q


class Wrapped(nn.Module):
    """A function fx keeps opaque (as torchvision's Swin does): priced alone at the aten level."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(8, 8))
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(_window_attention(x, self.weight))


def test_an_opaque_call_is_priced_alone_and_named_after_its_caller() -> None:
    m = Wrapped()
    x = torch.randn(2, 5, 8)
    trace = trace_module(m, inputs=(x,))
    assert trace.method == "fx" and not trace.analysis.unsupported
    engines = {layer.name: layer.engine for layer in trace.analysis.layers}
    assert engines["fc"] == "fx"
    assert {e for n, e in engines.items() if n.startswith("_window_attention")} == {"fx+meta"}
    assert trace.analysis.macs == counted(m, x)
    assert trace.analysis.params == params_of(m)


@torch.fx.wrap
def _shifted_attention(x: torch.Tensor, weight: torch.Tensor, shift: int) -> torch.Tensor:
    """Swin's pattern in small: Python on sizes, a roll, a pad, a mask written in place, a boolean
    mask, masked_fill, an einsum (no function rule: aten level) and a softmax."""
    b, n, c = x.shape
    if shift:
        x = torch.roll(x, shifts=-shift, dims=1)
    x = F.pad(x, (0, 0, 0, (4 - n % 4) % 4))
    mask = x.new_zeros((x.shape[1], x.shape[1]))
    mask[:shift, shift:] = 1.0
    qkv = F.linear(x, weight).reshape(b, x.shape[1], 3, c).permute(2, 0, 1, 3)
    q, k, v = qkv[0] * c ** -0.5, qkv[1], qkv[2]
    scores = torch.einsum("bic,bjc->bij", q, k).masked_fill(mask != 0, -100.0)
    out = torch.softmax(scores, -1) @ v
    return F.gelu(out[:, :n] + x[:, :n]).mean(-1, keepdim=True) * out[:, :n]


class Shifted(nn.Module):
    def __init__(self, shift: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(24, 8))
        self.shift = shift
        self.norm = nn.LayerNorm(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(_shifted_attention(x, self.weight, self.shift))


@pytest.mark.parametrize("shift", [0, 2])
def test_a_python_function_priced_alone_without_its_kernels_equals_a_run_with_them(shift: int) -> None:
    """The fx path skips the meta kernels of ops whose rule gives the output (run.KERNEL_FREE_RULES);
    a whole meta run of the same module runs every kernel: the layers must be the same, op for op,
    and the MACs those of PyTorch's counter."""
    m = Shifted(shift)
    x = torch.randn(2, 7, 8)
    alone = trace_module(m, inputs=(x,)).analysis
    run = trace_module(m, inputs=(x,), method="meta").analysis
    assert alone.engine == "fx" and run.engine == "meta" and not alone.unsupported and not run.unsupported
    assert {layer.engine for layer in alone.layers if layer.name.startswith("_shifted")} == {"fx+meta"}

    def costs(a: costlab.Analysis) -> list[tuple]:
        return sorted((layer.op, layer.output, layer.macs, layer.ops, layer.params) for layer in a.layers)

    assert costs(alone) == costs(run)
    assert alone.macs == counted(m, x)
    assert alone.params == params_of(m)
    assert alone.output == tuple(m(x).shape[1:])


@torch.fx.wrap
def _layouts_and_aliases(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """What an empty tensor of the rule's shape must not stand for: a permuted layout a later view
    relies on, a reduction over axis=, a complex product, and activations written in place."""
    y = x.permute(0, 2, 1) * 2  # the kernel keeps x's layout: permuting back is contiguous
    z = F.linear(y.permute(0, 2, 1).view(x.shape[0], x.shape[1], -1), weight)
    s = z.sum(axis=1)  # NumPy's name for dim
    spectrum = torch.fft.rfft(z, dim=-1) * torch.ones(z.shape[-1] // 2 + 1)  # complex × real
    r = torch.view_as_real(spectrum).flatten(-2)[..., : z.shape[-1]]
    h = F.relu(z + r, inplace=True)
    h = torch.relu_(h * 3)
    return F.gelu(h, approximate="tanh") + s.unsqueeze(1)


class Layouts(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(6, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _layouts_and_aliases(x, self.weight)


def test_kernels_are_skipped_only_where_an_empty_tensor_is_the_same() -> None:
    """Layouts, axis=, complex dtypes and in-place calls: the fx path (kernels skipped where safe)
    gives the layers of a whole meta run (every kernel), with the same producers."""
    m = Layouts()
    x = torch.randn(2, 5, 8)
    alone = trace_module(m, inputs=(x,)).analysis
    run = trace_module(m, inputs=(x,), method="meta").analysis

    def chain(a: costlab.Analysis) -> list[tuple]:
        short = {layer.name: layer.name.rpartition(".")[2].rstrip("_0123456789") for layer in a.layers}
        return [(layer.op, layer.output, layer.macs, layer.ops, tuple(short.get(i, i) for i in layer.inputs))
                for layer in a.layers]

    assert [u.op for u in alone.unsupported] == [u.op for u in run.unsupported]
    assert chain(alone) == chain(run)
    assert alone.macs == run.macs > 0
    assert alone.output == tuple(m(x.clone()).shape[1:])


class Functions(nn.Module):
    """Functions without a function rule: einsum, addmm, baddbmm, SDPA with GQA and a causal mask."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(16, 16))
        self.b = nn.Parameter(torch.randn(16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (2, 8, 16)
        y = torch.addmm(self.b, x.reshape(-1, 16), self.w).reshape(2, 8, 16)
        y = torch.baddbmm(y, torch.einsum("bij,bkj->bik", y, y), y)  # y + (y·yᵀ)·y
        q = y.reshape(2, 8, 4, 4).transpose(1, 2)  # 4 heads
        kv = q[:, :2]  # 2 key/value heads
        return F.scaled_dot_product_attention(q, kv, kv, is_causal=True, enable_gqa=True)


def test_functions_without_a_rule_and_grouped_causal_attention_match_the_counter() -> None:
    m = Functions()
    x = torch.randn(2, 8, 16)
    a = costlab.analyze(m, inputs=(x,))
    assert not a.unsupported
    assert a.macs == counted(m, x)
    attention = next(layer for layer in a.layers if layer.op == "matmul" and "attention" in layer.name)
    assert "causal" in attention.formula  # counted in full, the unmasked scores said
    assert attention.macs == 2 * 4 * 8 * 8 * (4 + 4)


class ValueBranch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 8)
        self.fc = nn.Linear(8, 8)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        y = self.fc(self.embed(ids))
        if mask is not None:
            y = y * mask.unsqueeze(-1)
        if (y.abs().sum() > 0).item():  # data-dependent: stops the meta run
            y = self.fc(y)
        return y


def test_keyword_integer_inputs_and_a_data_dependent_branch_run_on_the_cpu() -> None:
    m = ValueBranch()
    ids = torch.randint(0, 50, (2, 7))
    mask = torch.ones(2, 7)
    kept = ids.clone(), mask.clone()
    trace = trace_module(m, inputs={"ids": ids, "mask": mask})
    assert trace.method == "cpu"
    assert any("hold for these input values" in note for note in trace.analysis.notes)
    assert torch.equal(ids, kept[0]) and torch.equal(mask, kept[1])  # the user's tensors untouched
    assert trace.analysis.macs == counted(m, ids, mask=mask)
    assert trace.analysis.params == params_of(m)
    described = trace.analysis.to_dict()["inputs"]
    assert [(i["name"], i["dtype"], i["shape"]) for i in described] == [
        ("ids", "int64", [2, 7]), ("mask", "float32", [2, 7])]


def test_a_misspelt_or_missing_input_names_the_forward_parameters() -> None:
    m = ValueBranch()
    with pytest.raises(CostlabError) as caught:
        costlab.analyze(m, inputs={"idz": torch.zeros(2, 7, dtype=torch.long)})
    assert "forward(ids, mask) has no parameter 'idz'" in str(caught.value)
    with pytest.raises(CostlabError) as caught:
        costlab.analyze(m, inputs={"mask": torch.ones(2, 7)})
    assert "ids" in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(CostlabError):
        costlab.analyze(m, inputs=32)


class Images(nn.Module):
    """A list of images, as torchvision's detectors take: fx cannot take it, the meta run can."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, images: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([self.conv(image.unsqueeze(0)).flatten(1) for image in images])


def test_a_list_of_images_from_python_and_from_the_command_line() -> None:
    m = Images()
    images = [torch.rand(3, 10, 10), torch.rand(3, 10, 10)]
    a = costlab.analyze(m, inputs=(images,))
    assert a.engine == "meta" and (a.input, a.batch) == ((3, 10, 10), 2)
    assert a.macs == counted(m, images) == 2 * 3 * 3 * 3 * 8 * 8 * 4
    parsed = parse_inputs(["list:3x10x10"], batch=2)
    assert parsed.args == ([TensorSpec((3, 10, 10)), TensorSpec((3, 10, 10))],)
    assert costlab.analyze(m, inputs=parsed).macs == a.macs


class Cache(nn.Module):
    """Fills a dict cache during its forward pass (timm's LeViT does this with attention biases)."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.randn(4))
        self.cache: dict[str, torch.Tensor] = {}
        self.calls: list[int] = []
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        key = str(x.shape[-1])
        if key not in self.cache:
            self.cache[key] = self.bias * 2
        self.calls.append(1)
        return self.fc(x) + self.cache[key]


def test_the_module_is_left_exactly_as_it_was_and_twice_gives_the_same() -> None:
    m = Cache()
    m.fc.weight.requires_grad_(False)
    state = {k: v.clone() for k, v in m.state_dict().items()}
    first = costlab.analyze(m, input=(4,), batch=3)
    assert m.cache == {} and m.calls == [] and not m.fc.weight.requires_grad
    assert all(torch.equal(state[k], v) for k, v in m.state_dict().items())
    second = costlab.analyze(m, input=(4,), batch=3)
    assert first.to_dict() == second.to_dict()
    m(torch.randn(3, 4))  # still a working module
    assert list(m.cache) == ["4"]


def test_cat_with_an_empty_tensor_and_free_ops_are_not_unsupported() -> None:
    class Free(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            past = torch.empty(0)  # a fresh KV cache
            y = torch.cat([past, x.flatten()]).reshape_as(x)
            first, rest = torch.tensor_split(y, (1,), dim=1)
            return rest.long().float().to(x.dtype) + first

    x = torch.randn(2, 5)
    a = costlab.analyze(Free(), inputs=(x,))
    assert not a.unsupported
    assert a.ops == 2 * 4  # the one add


def test_mac_ops_all_have_rules_where_they_have_an_aten_packet() -> None:
    from costlab.torch_bridge.aten import ATEN_RULES, FREE_OPS

    ruled = {packet.__name__ for packet in ATEN_RULES}
    missing = {name for name in MAC_OPS if hasattr(torch.ops.aten, name)} - ruled
    # those decompose above the dispatch level (a recorder never sees them) or have module rules
    assert missing <= {"matmul", "linear", "einsum", "tensordot", "conv1d", "conv2d", "conv3d", "lstm",
                       "gru", "rnn_tanh", "rnn_relu", "lstm_cell", "gru_cell", "rnn_tanh_cell", "rnn_relu_cell",
                       "addbmm", "addmv", "addr", "outer", "bilinear", "_trilinear", "conv_tbc",
                       "cudnn_convolution", "mkldnn_convolution", "scaled_dot_product_attention",
                       "_scaled_dot_product_attention_math", "conv_transpose1d", "conv_transpose2d",
                       "conv_transpose3d"}, missing
    assert not MAC_OPS & FREE_OPS


# --- the command line ------------------------------------------------------------------------

def test_typed_inputs_on_the_command_line(tmp_path, monkeypatch) -> None:
    (tmp_path / "typed_net.py").write_text(
        "import torch\nfrom torch import nn\n"
        "class Two(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n"
        "        self.embed = nn.Embedding(100, 8)\n        self.conv = nn.Conv2d(3, 8, 3)\n"
        "    def forward(self, image, ids, scale=None):\n"
        "        y = self.conv(image).mean((2, 3))\n"
        "        return y + self.embed(ids).mean(1) * scale.unsqueeze(-1)\n"
        "def two():\n    return Two()\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    argv = ["analyze", "typed_net:two", "--input", "3x12x12", "--input", "int64:9", "--input", "scale=float32:1",
            "--batch", "2", "--format", "json"]
    assert main(argv, stdout=out) == 0
    target = json.loads(out.getvalue())["targets"][0]
    assert [i["shape"] for i in target["inputs"]] == [[2, 3, 12, 12], [2, 9], [2, 1]]
    assert target["macs"] == 2 * 3 * 3 * 3 * 10 * 10 * 8
    for bad, words in ((["--input", "3x12x12", "--input", "int64:9", "--input", "scal=1"], "no parameter 'scal'"),
                       (["--input", "3x12x12", "--input", "complex:9"], "unknown dtype"),
                       (["--input", "a=3x3", "--input", "3x3"], "after a keyword")):
        err = io.StringIO()
        assert main(["analyze", "typed_net:two", *bad], stdout=io.StringIO(), stderr=err) == 2
        assert err.getvalue().startswith("costlab: error: ") and words in err.getvalue()
        assert err.getvalue().count("\n") == 1
    err = io.StringIO()
    assert main(["analyze", "resnet18", "--input", "int64:9"], stdout=io.StringIO(), stderr=err) == 2
    assert "apply to module targets" in err.getvalue()


def test_hf_targets_need_transformers_or_say_so(tmp_path) -> None:
    from costlab.app.targets import is_module_target

    assert not is_module_target("hf:gpt2") and not is_module_target("hf:bert-base-uncased")
    for extra in ([], ["--memory"]):  # --memory builds module targets once: an hf: name is not one
        err = io.StringIO()
        main(["analyze", f"hf:{tmp_path / 'missing'}", *extra], stdout=io.StringIO(), stderr=err)
        assert "cannot import" not in err.getvalue()
    try:
        import transformers  # noqa: F401
    except ImportError:
        err = io.StringIO()
        assert main(["analyze", f"hf:{tmp_path}"], stdout=io.StringIO(), stderr=err) == 2
        assert "pip install costlab[hf]" in err.getvalue()
        return
    err = io.StringIO()
    assert main(["analyze", f"hf:{tmp_path / 'missing'}"], stdout=io.StringIO(), stderr=err) == 2
    assert err.getvalue().startswith("costlab: error: hf:")


def test_one_pipeline_builds_a_module_target_once(tmp_path, monkeypatch) -> None:
    """compare/analyze, costlab.analyze and sweep share costlab.app.pipeline: a package.module:callable
    target with --check and --freeze requires_grad is built once (with real weights) for every step."""
    (tmp_path / "counted_net.py").write_text(
        "import torch\nfrom torch import nn\nBUILT = []\n"
        "def net():\n    BUILT.append(1)\n    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 1))\n"
        "    m[0].requires_grad_(False)\n    return m\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    import counted_net

    out = io.StringIO()
    argv = ["analyze", "counted_net:net", "--input", "3x8x8", "--check", "torch", "--freeze", "requires_grad",
            "--format", "json"]
    assert main(argv, stdout=out) == 0
    assert len(counted_net.BUILT) == 1
    target = json.loads(out.getvalue())["targets"][0]
    assert target["checks"]["torch"]["agreement"] == "exact"
    assert target["frozen_params"] == 3 * 4 * 9 + 4  # the first conv's own requires_grad=False
    a = costlab.analyze("counted_net:net", input=(3, 8, 8), check="torch")
    assert len(counted_net.BUILT) == 2 and a.checks["torch"].agreement == "exact"


def test_seq_is_refused_where_it_does_not_apply() -> None:
    for argv in (["compare", "resnet18", "--seq", "16"], ["analyze", "costlab_test_nets:tiny", "--seq", "16"],
                 ["sweep", "lenet5", "--param", "batch=1,2", "--seq", "16"]):
        err = io.StringIO()
        assert main(argv, stdout=io.StringIO(), stderr=err) == 2, argv
        assert err.getvalue().startswith("costlab: error: ") and "--seq sets the tokens of an hf: model" in err.getvalue()
    with pytest.raises(costlab.CostlabError, match="--seq"):
        costlab.analyze(nn.Linear(4, 4), input=(4,), seq=8)


def test_hf_sequences_stay_within_the_positions(tmp_path) -> None:
    """The default --seq fits every position table (a decoder's too); a longer one is refused, as
    PyTorch's embedding lookup would fail on real weights (a meta run would not notice)."""
    pytest.importorskip("transformers")
    config = {"model_type": "gpt2", "n_positions": 32, "n_embd": 16, "n_layer": 1, "n_head": 2, "vocab_size": 50}
    (tmp_path / "config.json").write_text(json.dumps(config))
    a = costlab.analyze(f"hf:{tmp_path}")
    assert a.inputs[0]["shape"][-1] == 32  # min(128, n_positions)
    assert costlab.analyze(f"hf:{tmp_path}", seq=8).inputs[0]["shape"][-1] == 8
    err = io.StringIO()
    assert main(["analyze", f"hf:{tmp_path}", "--seq", "33"], stdout=io.StringIO(), stderr=err) == 2
    assert "32 positions" in err.getvalue() and err.getvalue().count("\n") == 1


def test_seq_goes_to_the_hf_targets_of_a_comparison(tmp_path) -> None:
    pytest.importorskip("transformers")
    config = {"model_type": "gpt2", "n_positions": 32, "n_embd": 16, "n_layer": 1, "n_head": 2, "vocab_size": 50}
    (tmp_path / "config.json").write_text(json.dumps(config))
    out = io.StringIO()
    assert main(["compare", f"hf:{tmp_path}", "lenet5", "--seq", "8", "--format", "json"], stdout=out,
                stderr=io.StringIO()) == 0
    hf, lenet = json.loads(out.getvalue())["targets"]
    assert hf["inputs"][0]["shape"][-1] == 8 and lenet["macs"] == costlab.analyze("lenet5").macs
