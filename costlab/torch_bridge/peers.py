"""The established counters, run on a real module: fvcore, PyTorch's counter, ptflops, thop,
torchinfo and torchprofile. Each is optional; :func:`available` says which are installed.

Each runner returns the tool's own total in its own unit (``raw``), the total normalised to
1 per multiply-add by the tool's documented convention (``macs``: PyTorch's counter counts
2 FLOPs per multiply-add, the others 1), and the parameters the tool reports (None when it
reports none). Runners silence the tools' own printing and warnings; the module is put in
eval mode first (every tool is meant for inference counts).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import warnings
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Iterator, Mapping

import torch
from torch import nn

from ..core.tools import PEER_TOOLS


@dataclass(frozen=True)
class PeerCount:
    """One tool's answer for one module and input."""

    tool: str
    raw: float
    macs: float  # normalised to 1 per multiply-add
    params: int | None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Swallow the tools' prints, warnings and log lines."""
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def _fvcore(module: nn.Module, x: torch.Tensor) -> PeerCount:
    from fvcore.nn import FlopCountAnalysis, parameter_count

    analysis = FlopCountAnalysis(module, (x,))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    total = analysis.total()
    return PeerCount("fvcore", total, total, parameter_count(module)[""])


def _torch(module: nn.Module, x: torch.Tensor) -> PeerCount:
    """FlopCounterMode around a plain forward call, grad enabled as it is by default (and as the
    cross-check runs it): under no_grad in eval, nn.MultiheadAttention and the transformer layers
    take fused kernels (torch._native_multi_head_attention) that the counter has no formula for."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.enable_grad():
        module(x)
    flops = counter.get_total_flops()
    return PeerCount("torch", flops, flops / 2, None)


def _ptflops(module: nn.Module, x: torch.Tensor) -> PeerCount:
    from ptflops import get_model_complexity_info

    shape = tuple(x.shape)
    macs, params = get_model_complexity_info(
        module, shape[1:], as_strings=False, print_per_layer_stat=False,
        input_constructor=(lambda _: torch.randn(shape)) if shape[0] != 1 else None)
    if macs is None:
        raise RuntimeError("ptflops did not finish")
    return PeerCount("ptflops", macs, macs, int(params))


def _thop(module: nn.Module, x: torch.Tensor) -> PeerCount:
    import thop

    ops, params = thop.profile(module, (x,), verbose=False)
    return PeerCount("thop", ops, ops, int(params))


def _torchinfo(module: nn.Module, x: torch.Tensor) -> PeerCount:
    import torchinfo

    stats = torchinfo.summary(module, input_data=x, verbose=0)
    return PeerCount("torchinfo", stats.total_mult_adds, stats.total_mult_adds, stats.total_params)


def _torchprofile(module: nn.Module, x: torch.Tensor) -> PeerCount:
    from torchprofile import profile_macs

    macs = profile_macs(module, x)
    return PeerCount("torchprofile", macs, macs, None)


@dataclass(frozen=True)
class Peer:
    """A counter: the package it needs and how to run it."""

    name: str
    package: str
    call: str
    run: Callable[[nn.Module, torch.Tensor], PeerCount]


#: Each peer's package, the call it makes and its runner, by name (costlab.core.tools.PEER_TOOLS).
_RUNNERS: Mapping[str, tuple[str, str, Callable[[nn.Module, torch.Tensor], PeerCount]]] = {
    "fvcore": ("fvcore", "FlopCountAnalysis(model, (x,)).total()", _fvcore),
    "torch": ("torch", "FlopCounterMode(); model(x); get_total_flops() / 2", _torch),
    "ptflops": ("ptflops", "get_model_complexity_info(model, (C, H, W), as_strings=False)", _ptflops),
    "thop": ("thop", "thop.profile(model, (x,))", _thop),
    "torchinfo": ("torchinfo", "summary(model, input_data=x).total_mult_adds", _torchinfo),
    "torchprofile": ("torchprofile", "profile_macs(model, x)", _torchprofile),
}

#: The peers in the order of the report: every name of PEER_TOOLS, none other (a test holds it).
PEERS: Mapping[str, Peer] = MappingProxyType({name: Peer(name, *_RUNNERS[name]) for name in PEER_TOOLS})


def available(name: str) -> bool:
    """Whether the peer's package is installed (without importing it)."""
    return importlib.util.find_spec(PEERS[name].package) is not None


def count(name: str, module: nn.Module, x: torch.Tensor) -> PeerCount:
    """Run the peer ``name`` on ``module`` (put in eval mode) with input ``x``, quietly."""
    module.eval()
    with _quiet():
        return PEERS[name].run(module, x)
