"""Small user modules on which every convention profile must equal the real tool's printed total.

Each entry of :data:`NETS` is ``name → (factory, input shape with batch)``; tests/test_conventions_real.py
runs every tool on every one. They cover what the presets do not: nn.MultiheadAttention (batch
first or not, with or without the attention weights), F.scaled_dot_product_attention, LayerNorm,
GroupNorm, transposed convolutions, functional add / cat / matmul, LSTM and GRU, a residual block,
and the module of issue 11 (a residual add, a concat, MultiheadAttention and SDPA together).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

import costlab_test_nets


class Attention(nn.Module):
    """nn.MultiheadAttention as a self-attention layer, optionally asking for the weights."""

    def __init__(self, dim: int = 16, heads: int = 2, batch_first: bool = True,
                 need_weights: bool = True, bias: bool = True, mask: str = "", **options: bool) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=batch_first, bias=bias, **options)
        self.need_weights, self.mask = need_weights, mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[1] if self.attn.batch_first else x.shape[0]
        masks: dict[str, torch.Tensor] = {}
        if not self.mask:
            pass
        elif self.mask == "causal":  # a float mask over the scores
            masks["attn_mask"] = torch.full((length, length), float("-inf")).triu(1)
        elif self.mask == "padding":  # the last key of every sequence is padding
            batch = x.shape[0] if self.attn.batch_first else x.shape[1]
            masks["key_padding_mask"] = torch.arange(length).expand(batch, length) == length - 1
        else:  # a 3-d mask per sequence and head ("3d"), a 2-d one ("2d"), and key padding ("+padding")
            batch = x.shape[0] if self.attn.batch_first else x.shape[1]
            if self.mask.startswith("3d"):
                masks["attn_mask"] = torch.zeros(batch * self.attn.num_heads, length, length)
            elif self.mask.startswith("2d"):
                masks["attn_mask"] = torch.zeros(length, length)
            if self.mask.endswith("+padding"):
                masks["key_padding_mask"] = torch.zeros(batch, length)
        return self.attn(x, x, x, need_weights=self.need_weights, **masks)[0]


class CrossAttention(nn.Module):
    """nn.MultiheadAttention with kdim = vdim ≠ embed_dim: queries attend to a shorter memory."""

    def __init__(self, dim: int = 16, memory: int = 12, heads: int = 2) -> None:
        super().__init__()
        self.memory = nn.Linear(dim, memory)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True, kdim=memory, vdim=memory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.memory(x[:, :3])  # (N, 3, memory)
        return self.attn(x, m, m)[0]


class SDPA(nn.Module):
    """q, k, v from one linear, split into heads, scaled-dot-product attention, output projection."""

    def __init__(self, dim: int = 16, heads: int = 2, causal: bool = False) -> None:
        super().__init__()
        self.heads, self.causal = heads, causal
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(x).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        return self.out(y.transpose(1, 2).reshape(n, t, d))


class Norms(nn.Module):
    """Conv → GroupNorm → GELU → conv → LayerNorm over (C, H, W), with and without affine."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.gn = nn.GroupNorm(2, 8)
        self.gn_plain = nn.GroupNorm(4, 8, affine=False)
        self.act = nn.GELU()
        self.conv2 = nn.Conv2d(8, 4, 3, padding=1, bias=False)
        self.ln = nn.LayerNorm((4, 6, 6))
        self.ln_plain = nn.LayerNorm(6, elementwise_affine=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.gn_plain(self.gn(self.conv1(x))))
        return self.ln_plain(self.ln(self.conv2(y)))


class SequenceNorm(nn.Module):
    """Linear → LayerNorm → SiLU → linear on a (N, T, D) sequence (a transformer MLP)."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, 2 * dim)
        self.act = nn.SiLU()
        self.fc2 = nn.Linear(2 * dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(self.act(self.fc1(self.ln(x))))


class Transposed(nn.Module):
    """A decoder: transposed convs 2-d (grouped, with and without bias) and 1-d."""

    def __init__(self) -> None:
        super().__init__()
        self.up1 = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
        self.up2 = nn.ConvTranspose2d(6, 6, 2, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(6)
        self.up1d = nn.ConvTranspose1d(6, 3, 4, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn(self.up2(self.up1(x))))
        return self.up1d(y.flatten(2))


class Functional(nn.Module):
    """Functional ops between linears: `+`, torch.add, `*`, torch.mul, torch.cat, torch.matmul, `@`, bmm."""

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.a = nn.Linear(dim, dim)
        self.b = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.a(x), self.b(x)
        s = torch.add(a + b, b)
        m = torch.mul(s * a, 0.5)
        scores = torch.matmul(m, b.transpose(1, 2))  # (N, T, T)
        y = scores @ a  # (N, T, D)
        z = torch.bmm(scores, b)
        return torch.cat([y, z, m], dim=-1).sum(-1) + x.mean(-1)


class Methods(nn.Module):
    """The method spellings (x.add, x.mul, x.matmul, x.bmm, x.mm) beside the operators, and in-place +=."""

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.a = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.a(x)
        s = a.add(x).mul(a)
        s += x
        scores = s.matmul(a.transpose(1, 2)).bmm(x)
        flat = scores.flatten(0, 1).mm(self.a.weight)
        return flat.reshape(x.shape) * 2 + a.sub(x).div(3)


class Dynamic(nn.Module):
    """Functional ops behind shape-dependent control flow: fx cannot trace it, so a meta run prices
    it and records `+`, `*` and `@` as Tensor.add, Tensor.mul and Tensor.matmul."""

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.a = nn.Linear(dim, dim)
        self.b = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.a(x), self.b(x)
        while a.shape[1] > 4:  # shape-dependent: halve the sequence until 4 long
            a, b = a[:, ::2], b[:, ::2]
        y = (a + b) * a @ b.transpose(1, 2)
        return torch.cat([y @ a, torch.mul(a, b), a - b], -1)


class FunctionalLayers(nn.Module):
    """Parameters held by the module, used through F.conv_transpose2d, F.group_norm, F.layer_norm,
    F.linear and F.scaled_dot_product_attention on 3-d (math path) inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.Parameter(torch.randn(4, 3, 2, 2))
        self.gn = nn.Parameter(torch.ones(3))
        self.ln_w = nn.Parameter(torch.ones(8))
        self.ln_b = nn.Parameter(torch.zeros(8))
        self.fc = nn.Parameter(torch.randn(8, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv_transpose2d(x, self.up, stride=2)  # (N, 3, 8, 8)
        y = F.group_norm(y, 3, self.gn)
        t = y.flatten(2)[:, :, :8]  # (N, 3, 8)
        t = F.layer_norm(t, (8,), self.ln_w, self.ln_b)
        t = F.gelu(F.linear(t, self.fc))
        return F.scaled_dot_product_attention(t, t, t)


class FunctionalActivations(nn.Module):
    """Activations and pools as functions (Python ones and C builtins of torch.nn.functional) and
    as modules that call patched functions (nn.GELU, nn.Softmax, nn.Upsample)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.gelu = nn.GELU()
        self.softmax = nn.Softmax(dim=1)
        self.up = nn.Upsample(scale_factor=2, mode="bilinear")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.gelu(self.conv(x))
        y = F.avg_pool2d(F.relu6(y), 2) + F.max_pool2d(torch.sigmoid(y), 2)
        y = self.up(F.silu(self.gelu(y)))
        y = F.interpolate(torch.relu(y), scale_factor=0.5, mode="nearest")
        y = F.adaptive_avg_pool2d(self.softmax(y), 2) * F.softmax(F.adaptive_max_pool2d(y, 2), dim=-1)
        return F.leaky_relu(y.flatten(1)) + torch.tanh(y).mean((2, 3)).repeat(1, 4)


class Recurrent(nn.Module):
    """An LSTM or GRU (or RNN) stack followed by a linear read-out of its outputs."""

    def __init__(self, mode: str = "lstm", input_size: int = 6, hidden: int = 8, layers: int = 1,
                 bidirectional: bool = False, batch_first: bool = True, bias: bool = True,
                 proj_size: int = 0) -> None:
        super().__init__()
        kwargs = {"proj_size": proj_size} if proj_size else {}
        cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[mode]
        self.rnn = cls(input_size, hidden, layers, bias=bias, batch_first=batch_first,
                       bidirectional=bidirectional, **kwargs)
        width = (proj_size or hidden) * (2 if bidirectional else 1)
        self.head = nn.Linear(width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.rnn(x)
        return self.head(y)


class Residual(nn.Module):
    """A ResNet basic block with a projection shortcut, then a pooled linear head."""

    def __init__(self, c_in: int = 4, c_out: int = 8) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.proj = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=2, bias=False), nn.BatchNorm2d(c_out))
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_out, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        y = self.relu(y + self.proj(x))
        return self.fc(torch.flatten(self.pool(y), 1))


class IssueNet(nn.Module):
    """Issue 11's user module: a conv stem with a residual add and a concat, then tokens through
    nn.MultiheadAttention and scaled-dot-product attention, and a linear head."""

    def __init__(self, width: int = 16, heads: int = 2, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, width // 2, 3, padding=1)
        self.branch = nn.Conv2d(width // 2, width // 2, 3, padding=1)
        self.mha = nn.MultiheadAttention(width, heads, batch_first=True)
        self.sdpa = SDPA(width, heads)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.stem(x))
        y = torch.cat([y, self.branch(y) + y], dim=1)  # (N, width, H, W)
        tokens = y.flatten(2).transpose(1, 2)  # (N, H·W, width)
        tokens = tokens + self.mha(tokens, tokens, tokens)[0]
        tokens = self.norm(tokens + self.sdpa(tokens))
        return self.head(tokens.mean(1))


#: name → (factory, input with its batch axis): small, so that six tools run on each in well under a second.
NETS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "mha-batch-first": (lambda: Attention(16, 2, batch_first=True), (1, 5, 16)),
    "mha-batch-first-b2": (lambda: Attention(16, 2, batch_first=True), (2, 5, 16)),
    "mha-seq-first-no-weights": (lambda: Attention(16, 4, batch_first=False, need_weights=False), (5, 2, 16)),
    "mha-cross-kdim": (CrossAttention, (2, 5, 16)),
    "mha-no-bias": (lambda: Attention(8, 2, batch_first=True, bias=False), (1, 4, 8)),
    "mha-causal-mask": (lambda: Attention(8, 2, batch_first=True, mask="causal"), (2, 4, 8)),
    "mha-padding-mask": (lambda: Attention(8, 2, batch_first=False, mask="padding"), (4, 1, 8)),
    "mha-bias-kv": (lambda: Attention(16, 2, add_bias_kv=True), (2, 5, 16)),
    "mha-zero-attn": (lambda: Attention(16, 2, batch_first=False, add_zero_attn=True), (5, 2, 16)),
    "mha-3d-mask": (lambda: Attention(8, 2, batch_first=True, mask="3d"), (3, 4, 8)),
    "mha-3d-mask-padding": (lambda: Attention(8, 2, batch_first=True, mask="3d+padding"), (3, 4, 8)),
    "mha-2d-mask-padding": (lambda: Attention(8, 2, batch_first=False, mask="2d+padding"), (4, 3, 8)),
    "mha-causal-mask-no-weights": (lambda: Attention(8, 2, need_weights=False, mask="causal"), (1, 4, 8)),
    "sdpa": (lambda: SDPA(16, 2), (2, 6, 16)),
    "sdpa-causal": (lambda: SDPA(16, 4, causal=True), (1, 6, 16)),
    "norms": (Norms, (2, 3, 6, 6)),
    "sequence-norm": (SequenceNorm, (2, 5, 16)),
    "transposed": (Transposed, (1, 4, 3, 3)),
    "functional": (Functional, (2, 5, 8)),
    "methods": (Methods, (2, 5, 8)),
    "functional-layers": (FunctionalLayers, (2, 4, 4, 4)),
    "functional-activations": (FunctionalActivations, (2, 3, 8, 8)),
    "dynamic": (Dynamic, (2, 8, 8)),
    "lstm": (lambda: Recurrent("lstm"), (2, 5, 6)),
    "lstm-2-layers-bidirectional": (lambda: Recurrent("lstm", layers=2, bidirectional=True), (1, 4, 6)),
    "lstm-seq-first-no-bias": (lambda: Recurrent("lstm", batch_first=False, bias=False), (4, 2, 6)),
    "lstm-proj": (lambda: Recurrent("lstm", hidden=8, proj_size=4), (1, 3, 6)),
    "gru": (lambda: Recurrent("gru"), (2, 5, 6)),
    "gru-2-layers-bidirectional": (lambda: Recurrent("gru", layers=2, bidirectional=True), (1, 4, 6)),
    "gru-no-bias": (lambda: Recurrent("gru", bias=False), (1, 3, 6)),
    "rnn": (lambda: Recurrent("rnn", layers=2), (1, 4, 6)),
    "residual": (Residual, (2, 4, 8, 8)),
    "issue-net": (IssueNet, (1, 3, 8, 8)),
    # tests/costlab_test_nets.py
    "tiny": (costlab_test_nets.tiny, (2, 3, 8, 8)),
    "shape-dependent": (costlab_test_nets.shape_dependent, (1, 3, 16, 16)),
    "value-dependent": (costlab_test_nets.value_dependent, (1, 3, 6, 6)),
    "einsum": (costlab_test_nets.einsum_net, (2, 4, 16)),
    "looped-list": (costlab_test_nets.looped_list, (1, 3, 6, 6)),
}
