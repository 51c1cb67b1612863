"""Real modules whose memory the zoo tests and benchmarks/bench_memory_model.py hold against MemTracker.

Each entry builds the module as its library ships it (no weights: ``weights=None``,
``pretrained=False``, configs) and the arguments of its forward at a batch size. Inputs are small
(64×64 images, 16 tokens, narrow transformers configs) so that the measured runs take seconds;
the prediction does not depend on their size being realistic. Needs torchvision, timm and
transformers (the zoo venv)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn


@dataclass(frozen=True)
class RealModule:
    """A library's module and its forward's arguments at a batch size."""

    label: str
    build: Callable[[], nn.Module]
    image: tuple[int, int, int] | None = (3, 64, 64)  # per-sample input of an image model
    tokens: int = 0                                   # tokens per sample of a text model
    vocab: int = 0
    options: dict[str, Any] = field(default_factory=dict)  # keyword arguments of the forward

    def arguments(self, batch: int) -> tuple[tuple, dict]:
        generator = torch.Generator().manual_seed(0)
        if self.tokens:
            ids = torch.randint(0, self.vocab, (batch, self.tokens), generator=generator)
            return (ids,), dict(self.options)
        return (torch.randn((batch,) + self.image, generator=generator),), dict(self.options)


def _torchvision(name: str, **kwargs: Any) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision

        torch.manual_seed(0)
        return getattr(torchvision.models, name)(weights=None, **kwargs)
    return build


def _timm(name: str, **kwargs: Any) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import timm

        torch.manual_seed(0)
        return timm.create_model(name, pretrained=False, **kwargs)
    return build


VOCAB = 512


def _hf(kind: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import transformers as tf

        torch.manual_seed(0)
        small = dict(vocab_size=VOCAB)
        if kind == "bert":
            config = tf.BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                   intermediate_size=128, **small)
            return tf.BertModel(config)
        if kind == "gpt2":
            config = tf.GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=64, **small)
            return tf.GPT2LMHeadModel(config)
        if kind == "llama":
            config = tf.LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                    num_attention_heads=4, num_key_value_heads=2, **small)
            return tf.LlamaForCausalLM(config)
        if kind == "distilbert":
            config = tf.DistilBertConfig(dim=64, n_layers=2, n_heads=4, hidden_dim=128, **small)
            return tf.DistilBertModel(config)
        raise ValueError(kind)
    return build


MODULES: tuple[RealModule, ...] = (
    RealModule("transformers bert", _hf("bert"), image=None, tokens=16, vocab=VOCAB),
    RealModule("transformers distilbert", _hf("distilbert"), image=None, tokens=16, vocab=VOCAB),
    RealModule("transformers gpt2, no cache", _hf("gpt2"), image=None, tokens=16, vocab=VOCAB,
               options={"use_cache": False}),
    RealModule("transformers gpt2, cache", _hf("gpt2"), image=None, tokens=16, vocab=VOCAB,
               options={"use_cache": True}),
    RealModule("transformers llama, no cache", _hf("llama"), image=None, tokens=16, vocab=VOCAB,
               options={"use_cache": False}),
    RealModule("transformers llama, cache", _hf("llama"), image=None, tokens=16, vocab=VOCAB,
               options={"use_cache": True}),
    RealModule("timm resnet10t", _timm("resnet10t")),
    RealModule("timm mobilenetv3_small_050", _timm("mobilenetv3_small_050")),
    RealModule("timm efficientnet_b0", _timm("efficientnet_b0")),
    RealModule("timm lcnet_050", _timm("lcnet_050")),
    RealModule("timm regnetx_002", _timm("regnetx_002")),
    RealModule("timm convnext_atto", _timm("convnext_atto")),
    RealModule("timm vit_tiny_patch16 (64×64)", _timm("vit_tiny_patch16_224", img_size=64)),
    RealModule("timm ghostnet_050", _timm("ghostnet_050")),
    RealModule("torchvision resnet18", _torchvision("resnet18")),
    RealModule("torchvision mobilenet_v2", _torchvision("mobilenet_v2")),
    RealModule("torchvision mobilenet_v3_small", _torchvision("mobilenet_v3_small")),
    RealModule("torchvision efficientnet_b0", _torchvision("efficientnet_b0")),
    RealModule("torchvision shufflenet_v2_x0_5", _torchvision("shufflenet_v2_x0_5")),
    RealModule("torchvision squeezenet1_1", _torchvision("squeezenet1_1")),
    RealModule("torchvision mnasnet0_5", _torchvision("mnasnet0_5")),
    RealModule("torchvision regnet_x_400mf", _torchvision("regnet_x_400mf")),
    RealModule("torchvision regnet_y_400mf", _torchvision("regnet_y_400mf")),
    RealModule("torchvision googlenet", _torchvision("googlenet", aux_logits=False, init_weights=False)),
    RealModule("torchvision densenet121", _torchvision("densenet121")),
    RealModule("torchvision shufflenet_v2_x1_0", _torchvision("shufflenet_v2_x1_0")),
    RealModule("torchvision mobilenet_v3_large", _torchvision("mobilenet_v3_large")),
    RealModule("torchvision resnet50", _torchvision("resnet50")),
)


def by_label(label: str) -> RealModule:
    return next(m for m in MODULES if m.label == label)
