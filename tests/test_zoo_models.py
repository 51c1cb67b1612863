"""Models nobody here wrote, counted the way a new user would: torchvision, timm, transformers.

For every model of ``torchvision.models.list_models()`` except the quantized ones, a list of timm
models built with ``pretrained=False``, and transformers models built from configs (``hf:DIR``):

- it is analysed (whatever rung of the engine's ladder prices it);
- params equal ``sum(p.numel() for p in model.parameters())``;
- MACs equal PyTorch's ``FlopCounterMode`` ÷ 2 on the same inputs, taken the way that sees the
  most: grad enabled (so ``nn.MultiheadAttention`` and the encoder layers take their unfused path)
  and the math SDPA backend (on CPU the fused kernels are invisible to the counter);
- analysing twice gives the same result, and the model's parameters and buffers (identity, data
  pointer, in-place version counter, ``requires_grad``), every submodule's training flag, its
  hooks and the given input tensors are as they were, with no fx object left in any attribute;
- every op the engine lists as unsupported is named in the test output (a ``UnsupportedOpWarning``
  in pytest's warnings summary, and printed), and the test fails if one of them performs
  multiplications (:data:`costlab.core.analysis.MAC_OPS`, or a torch module or function that
  multiplies).

Each group skips where its package is absent (CI installs none of them). To run it, in an
environment with torch and ``pip install -e ".[test,vision,hf]" timm``::

    python -m pytest tests/test_zoo_models.py -q -rs

About 30 minutes on 2 shared cores (the detection models are the slowest, 25–55 s each).
"""

from __future__ import annotations

import importlib
import io
import json
import warnings
from pathlib import Path
from typing import Any, Callable

import pytest

torch = pytest.importorskip("torch")

from torch import fx, nn  # noqa: E402
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import costlab  # noqa: E402
from costlab.app.cli import main  # noqa: E402
from costlab.core.analysis import MAC_OPS  # noqa: E402


def _optional(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except Exception:  # noqa: BLE001 - absent, or broken against this torch: the group skips
        return None


torchvision = _optional("torchvision")
timm = _optional("timm")
transformers = _optional("transformers")
if transformers is not None:
    transformers.logging.set_verbosity_error()


class UnsupportedOpWarning(UserWarning):
    """An op the engine lists as unsupported on a zoo model (shown in pytest's warnings summary)."""


def _group(package: Any, package_name: str, names: list[str]) -> list[Any]:
    """The group's test ids, or one skipped entry where its package is not installed."""
    if package is None:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{package_name} is not installed"),
                             id=f"{package_name}-absent")]
    return names


# --- the reference and the checks -----------------------------------------------------------

def reference_macs(model: nn.Module, args: tuple, kwargs: dict) -> int:
    """PyTorch's own count of the forward on these inputs: FlopCounterMode's FLOPs ÷ 2."""
    with torch.enable_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(*args, **kwargs)
    return counter.get_total_flops() // 2


#: torch modules whose own computation multiplies (a module type listed as unsupported).
_MULTIPLYING_MODULES = {"linear", "bilinear", "lazylinear", "conv1d", "conv2d", "conv3d", "convtranspose1d",
                        "convtranspose2d", "convtranspose3d", "lazyconv1d", "lazyconv2d", "lazyconv3d",
                        "multiheadattention", "lstm", "gru", "rnn", "lstmcell", "grucell", "rnncell",
                        "transformer", "transformerencoderlayer", "transformerdecoderlayer",
                        "transformerencoder", "transformerdecoder"}


def performs_multiplications(op: str) -> bool:
    """Whether an unsupported entry's op ('aten.mm', 'torch.einsum', 'F.linear', 'Tensor.matmul',
    'nn.Conv2d', 'operator.matmul') names something that multiplies."""
    last = op.rsplit(".", 1)[-1]
    if op.startswith("nn."):
        return last.lower() in _MULTIPLYING_MODULES
    return last.rstrip("_") in MAC_OPS or last in ("matmul", "__matmul__", "__rmatmul__", "imatmul")


def fingerprint(model: nn.Module) -> dict[str, Any]:
    """What an analysis must not change: every parameter and buffer (the same tensor object, data
    pointer, in-place version, shape, dtype, requires_grad), every module's training flag, its
    hooks."""
    tensors = {name: (id(t), t.data_ptr() if not t.is_meta else None, t._version, tuple(t.shape), t.dtype,
                      t.requires_grad)
               for name, t in model.state_dict(keep_vars=True).items()}
    modes = {name: m.training for name, m in model.named_modules()}
    hooks = {name: (len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks))
             for name, m in model.named_modules()}
    return {"tensors": tensors, "modes": modes, "hooks": hooks}


def fx_leftovers(model: nn.Module) -> list[str]:
    """Attributes (and the contents of dict/list/tuple/set attributes) that hold fx objects."""
    found = []
    for name, m in model.named_modules():
        for key, value in vars(m).items():
            items = value.values() if isinstance(value, dict) else (
                value if isinstance(value, (list, tuple, set)) else (value,))
            if any(isinstance(item, (fx.Proxy, fx.Node, fx.Graph)) for item in items):
                found.append(f"{name or '<top>'}.{key}")
    return found


def _tensors_of(value: Any) -> list[Any]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _tensors_of(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _tensors_of(item)]
    return []


def report_unsupported(label: str, analysis: Any) -> list[str]:
    """Name every unsupported op in the test output (each entry printed; one warning per op with
    its count and first path); return those that multiply."""
    by_op: dict[str, list[Any]] = {}
    for entry in analysis.unsupported:
        print(f"{label}: unsupported {entry.op} at {entry.path} ({entry.reason})")
        by_op.setdefault(entry.op, []).append(entry)
    for op, entries in by_op.items():
        more = f" and {len(entries) - 1} more" if len(entries) > 1 else ""
        warnings.warn(f"{label}: unsupported {op} ×{len(entries)} at {entries[0].path}{more} "
                      f"({entries[0].reason})", UnsupportedOpWarning, stacklevel=2)
    return [f"{op} at {entries[0].path}" for op, entries in by_op.items() if performs_multiplications(op)]


def check_model(label: str, model: nn.Module, inputs: Any) -> Any:
    """The checks of the module docstring on one model (in eval mode) and its inputs; returns the
    analysis."""
    model.eval()
    args, kwargs = ((), inputs) if isinstance(inputs, dict) else (
        inputs if isinstance(inputs, tuple) else (inputs,), {})
    given = [(t, t.clone()) for t in _tensors_of(inputs)]
    before = fingerprint(model)

    first = costlab.analyze(model, inputs=inputs)
    second = costlab.analyze(model, inputs=inputs)
    multiplying = report_unsupported(label, first)
    assert fingerprint(model) == before, f"{label}: the analysis changed the model's tensors, modes or hooks"
    assert not fx_leftovers(model), f"{label}: fx objects left in {fx_leftovers(model)}"
    assert all(torch.equal(t, copy) for t, copy in given), f"{label}: a given input tensor was modified"
    assert first.to_dict() == second.to_dict(), f"{label}: a second analysis differs from the first"

    expected_params = sum(p.numel() for p in model.parameters())
    reference = reference_macs(model, args, kwargs)  # after the checks above: a forward may fill caches
    print(f"{label}: engine {first.engine}, macs {first.macs:,}, reference {reference:,}, "
          f"params {first.params:,}")
    assert not multiplying, f"{label}: ops that multiply are unsupported: {multiplying}"
    assert first.params == expected_params, f"{label}: params {first.params:,} != {expected_params:,}"
    assert first.macs == reference, (
        f"{label}: costlab {first.macs:,} MACs != FlopCounterMode/2 {reference:,} "
        f"({first.macs / reference - 1:+.4%}); engine {first.engine}; "
        f"unsupported {sorted({u.op for u in first.unsupported})}")
    return first


@pytest.mark.skipif(torchvision is None, reason="torchvision is not installed")
@pytest.mark.parametrize("name", ["resnet18", "ssdlite320_mobilenet_v3_large"])
def test_a_model_in_training_mode_stays_in_it(name: str) -> None:
    """Counted as in eval mode (the fx walk, and the copies a meta or CPU run uses), and left in
    training mode with its batch-norm statistics untouched."""
    model, inputs = torchvision_case(name)
    evaluated = costlab.analyze(model.eval(), inputs=inputs)
    before = fingerprint(model.train())
    trained = costlab.analyze(model, inputs=inputs)
    assert fingerprint(model) == before
    assert all(m.training for m in model.modules())
    assert (trained.macs, trained.params, trained.engine) == (evaluated.macs, evaluated.params, evaluated.engine)


# --- torchvision ----------------------------------------------------------------------------

def _torchvision_names() -> list[str]:
    if torchvision is None:
        return []
    return [name for name in torchvision.models.list_models()
            if ".quantization." not in torchvision.models.get_model_builder(name).__module__]


def _kind(name: str) -> str:
    module = torchvision.models.get_model_builder(name).__module__
    for kind in ("detection", "segmentation", "video", "optical_flow"):
        if f".{kind}." in module:
            return kind
    return "classification"


#: video models' own clip sizes (T, H, W): the R(2+1)D family trains on 16×112×112; MViT and S3D
#: pool to fixed sizes that need 224×224; Swin3D windows fit 112×112 (the smaller, faster size).
VIDEO_CLIPS = {"mvit_v1_b": (16, 224, 224), "mvit_v2_s": (16, 224, 224), "s3d": (16, 224, 224)}


def torchvision_case(name: str) -> tuple[nn.Module, Any]:
    """The model (weights=None, no backbone weights) and the inputs it takes."""
    kind = _kind(name)
    options: dict[str, Any] = {"weights": None}
    if kind in ("detection", "segmentation"):
        options["weights_backbone"] = None
    if kind == "detection" and not name.startswith("ssd"):
        # R-CNNs, RetinaNet and FCOS resize every image to 800 pixels by default (up to 94 s a model
        # here on 2 shared cores): keep the 320×320 image at 320. SSD/SSDlite resize to 300/320.
        options.update(min_size=320, max_size=320)
    torch.manual_seed(0)
    model = torchvision.models.get_model(name, **options)
    if kind == "detection":
        return model, ([torch.rand(3, 320, 320)],)
    if kind == "segmentation":
        return model, torch.rand(1, 3, 224, 224)
    if kind == "video":
        return model, torch.rand(1, 3, *VIDEO_CLIPS.get(name, (16, 112, 112)))
    if kind == "optical_flow":
        return model, (torch.rand(1, 3, 128, 128), torch.rand(1, 3, 128, 128))
    # classification: the model's own size where it has one (ViT), else its weights' smallest
    # valid size or 224, whichever is larger (Swin v2: 256; MaxViT: 224)
    size = getattr(model, "image_size", None)
    if size is None:
        min_size = torchvision.models.get_model_weights(name).DEFAULT.meta.get("min_size", (1, 1))
        size = max(224, *min_size)
    return model, torch.rand(1, 3, size, size)


@pytest.mark.parametrize("name", _group(torchvision, "torchvision", _torchvision_names()))
def test_torchvision_model(name: str) -> None:
    model, inputs = torchvision_case(name)
    check_model(f"torchvision {name}", model, inputs)


# --- timm -----------------------------------------------------------------------------------

TIMM_MODELS = ["resnet50d", "resnest50d", "densenet121", "efficientnet_b0", "mobilenetv3_large_100",
               "regnety_016", "convnext_tiny", "convnextv2_tiny", "vit_small_patch16_224",
               "deit_small_patch16_224", "swin_tiny_patch4_window7_224", "mixer_b16_224", "levit_128",
               "mobilevit_s", "efficientformer_l1", "coat_lite_tiny", "poolformer_s12", "ghostnet_100",
               "hrnet_w18_small", "xception41", "cspdarknet53", "rexnet_100", "tf_efficientnetv2_s",
               "eva02_tiny_patch14_224", "fastvit_t8"]


@pytest.mark.parametrize("name", _group(timm, "timm", TIMM_MODELS))
def test_timm_model(name: str) -> None:
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False)
    channels, height, width = model.pretrained_cfg["input_size"]  # the model's own size
    check_model(f"timm {name}", model, torch.rand(1, channels, height, width))


# --- transformers from configs --------------------------------------------------------------

def _configs() -> dict[str, Callable[[], Any]]:
    """Real architectures; the small ones at their published small sizes (T5-small, Whisper-tiny),
    Llama shrunk but with grouped-query attention (2 key/value heads for 8 query heads)."""
    t = transformers
    return {
        "bert-base": lambda: t.BertConfig(),
        "gpt2": lambda: t.GPT2Config(),
        "t5-small": lambda: t.T5Config(d_model=512, d_ff=2048, num_layers=6, num_decoder_layers=6,
                                       num_heads=8, d_kv=64),
        "llama-gqa": lambda: t.LlamaConfig(hidden_size=256, intermediate_size=688, num_hidden_layers=2,
                                           num_attention_heads=8, num_key_value_heads=2,
                                           vocab_size=1000),
        "vit-base": lambda: t.ViTConfig(),
        "whisper-tiny": lambda: t.WhisperConfig(d_model=384, encoder_layers=4, decoder_layers=4,
                                                encoder_attention_heads=6, decoder_attention_heads=6,
                                                encoder_ffn_dim=1536, decoder_ffn_dim=1536,
                                                num_mel_bins=80, max_source_positions=1500),
        "clip-vit-b32": lambda: t.CLIPConfig(),
    }


#: what each architecture takes (hf:'s defaults, as the issue lists them)
HF_FED = {"bert-base": {"input_ids"}, "gpt2": {"input_ids"}, "t5-small": {"input_ids", "decoder_input_ids"},
          "llama-gqa": {"input_ids"}, "vit-base": {"pixel_values"},
          "whisper-tiny": {"input_features", "decoder_input_ids"}, "clip-vit-b32": {"input_ids", "pixel_values"}}
HF_MODELS = list(HF_FED)
#: the class hf: builds from a config that names none: the causal LM where the type has one, the
#: sequence-to-sequence LM of an encoder–decoder, else the bare model
HF_BUILT = {"bert-base": "BertLMHeadModel", "gpt2": "GPT2LMHeadModel", "t5-small": "T5ForConditionalGeneration",
            "llama-gqa": "LlamaForCausalLM", "vit-base": "ViTModel",
            "whisper-tiny": "WhisperForConditionalGeneration", "clip-vit-b32": "CLIPModel"}


def _inputs_as_described(described: list[dict[str, Any]]) -> dict[str, Any]:
    """Tensors of the shapes and dtypes an analysis reports it fed (ints: token 0, always valid)."""
    made: dict[str, Any] = {}
    for entry in described:
        dtype = getattr(torch, entry["dtype"])
        shape = tuple(entry["shape"])
        made[entry["name"]] = torch.zeros(shape, dtype=dtype) if not dtype.is_floating_point \
            else torch.rand(shape, dtype=dtype)
    return made


def _saved_config(name: str, folder: Path) -> Any:
    config = _configs()[name]()
    config.save_pretrained(folder)
    return config


@pytest.mark.parametrize("name", _group(transformers, "transformers", HF_MODELS))
def test_transformers_model(name: str, tmp_path: Path) -> None:
    config = _saved_config(name, tmp_path)
    from_config = costlab.analyze(f"hf:{tmp_path}")
    assert from_config.engine, f"{name}: the hf: analysis names no engine"
    report_unsupported(f"hf:{name}", from_config)

    assert from_config.model is not None and from_config.model.cls == HF_BUILT[name], from_config.model
    torch.manual_seed(0)
    model = getattr(transformers, HF_BUILT[name])(config)
    inputs = _inputs_as_described(list(from_config.inputs))
    assert set(inputs) == HF_FED[name], f"{name}: hf: fed {sorted(inputs)}, expected {sorted(HF_FED[name])}"
    module = check_model(f"transformers {name}", model, inputs)
    assert (from_config.macs, from_config.params) == (module.macs, module.params), \
        f"{name}: hf: {from_config.macs:,} MACs / {from_config.params:,} params, " \
        f"the module itself {module.macs:,} / {module.params:,}"


# --- the CLI --------------------------------------------------------------------------------

def _cli_json(argv: list[str]) -> tuple[int, Any, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, stdout=out, stderr=err)
    text = out.getvalue()
    return code, (json.loads(text) if code == 0 and text.strip() else None), err.getvalue()


def _entry(document: Any) -> dict[str, Any]:
    """The one target's entry of an analyze JSON document."""
    if isinstance(document, dict) and "targets" in document:
        (entry,) = document["targets"]
        return entry
    return document


@pytest.mark.skipif(transformers is None, reason="transformers is not installed")
def test_cli_on_a_transformers_config(tmp_path: Path) -> None:
    config = transformers.BertConfig(hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=512)
    config.save_pretrained(tmp_path)
    code, document, err = _cli_json(["analyze", f"hf:{tmp_path}", "--seq", "128", "--format", "json"])
    assert code == 0, err
    entry = _entry(document)
    assert entry["engine"] in ("fx", "meta", "cpu"), entry.get("engine")
    assert {"name": "input_ids", "dtype": "int64", "shape": [1, 128]} in entry["inputs"]

    model = transformers.BertLMHeadModel(config).eval()  # no 'architectures': BERT's causal LM
    ids = torch.zeros(1, 128, dtype=torch.int64)
    assert entry["params"] == sum(p.numel() for p in model.parameters())
    assert entry["macs"] == reference_macs(model, (), {"input_ids": ids})


@pytest.mark.skipif(torchvision is None, reason="torchvision is not installed")
def test_cli_on_a_detection_model() -> None:
    code, document, err = _cli_json([
        "analyze", "torchvision.models.detection:fasterrcnn_resnet50_fpn", "--kwarg", "weights=none",
        "--kwarg", "weights_backbone=none", "--input", "list:3x320x320", "--format", "json"])
    assert code == 0, err
    entry = _entry(document)
    # NMS and the proposals' count depend on values: the meta run stops and a CPU run counts
    assert entry["engine"] == "cpu", entry.get("engine")
    assert any("input values" in note for note in entry.get("notes", ())), entry.get("notes")
    assert entry["inputs"][0]["shape"] == [3, 320, 320]
    model = torchvision.models.detection.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)
    assert entry["params"] == sum(p.numel() for p in model.parameters())
    assert entry["macs"] > 0
    for item in entry.get("unsupported", ()):
        assert not performs_multiplications(item["op"]), item


def test_what_counts_as_multiplying() -> None:
    """The zoo's MAC check recognises each spelling of an unsupported op that multiplies."""
    for op in ("aten.mm", "aten.addmm", "aten.convolution", "aten._scaled_dot_product_flash_attention_for_cpu",
               "torch.einsum", "F.linear", "F.conv2d", "Tensor.matmul", "operator.matmul", "nn.Linear",
               "nn.Conv2d", "nn.LSTM", "nn.MultiheadAttention", "nn.ConvTranspose2d"):
        assert performs_multiplications(op), op
    for op in ("aten.argmax", "aten.linalg_vector_norm", "aten.nonzero", "torch.topk", "nn.ReLU",
               "timm.layers.Foo"):
        assert not performs_multiplications(op), op
