"""Pricing transformers models against PyTorch's own counter, and generation against step-by-step
analyses, measured side by side in one run (issue 19, item 7).

- **Forward** (each architecture of tests/test_generation_zoo.py, its causal LM on 128 tokens):
  ``trace_module`` on the model built on meta (what ``costlab analyze hf:DIR`` runs once the model
  is built) against ``FlopCounterMode`` over a forward of the same meta model on the same input —
  the floor of a counter that runs the model. Target: ≤ 1×.
- **Generation** (Llama, 128 prompt tokens, N = 64 new tokens): ``price_generation`` against N
  separate analyses (N × one decode step's analysis, timed alone). Target: well under 1×.

Each pair is timed alternately after a warm-up (benchmarks/bench_engine_speed.py's ``paired``), so
that load from other processes falls on both alike; medians of this process's CPU time and of wall
time. Run from the repository root in the zoo venv:  python benchmarks/bench_hf_speed.py [--repeat N]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import torch  # noqa: E402
import transformers  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from bench_engine_speed import paired  # noqa: E402
from costlab.core.inputs import Inputs, TensorSpec  # noqa: E402
from costlab.torch_bridge.generation import price_generation  # noqa: E402
from costlab.torch_bridge.hf import build_model  # noqa: E402
from costlab.torch_bridge.run import MetaShapes  # noqa: E402
from costlab.torch_bridge.trace import trace_module  # noqa: E402
from test_generation_zoo import _configs  # noqa: E402

SEQ, NEW = 128, 64


def counter_forward(model: torch.nn.Module, ids: torch.Tensor) -> Callable[[], int]:
    def run() -> int:
        with torch.no_grad(), MetaShapes(), FlopCounterMode(display=False) as counter:
            model(input_ids=ids)
        return counter.get_total_flops()
    return run


def costlab_forward(model: torch.nn.Module) -> Callable[[], Any]:
    inputs = Inputs((), {"input_ids": TensorSpec((1, SEQ), "int64")})
    return lambda: trace_module(model, inputs=inputs, method="meta")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    transformers.logging.set_verbosity_error()
    print(f"torch {torch.__version__}, transformers {transformers.__version__}; medians of {args.repeat}; "
          "CPU s (this process) / wall s")
    print(f"{'model':<22} {'costlab':>16} {'FlopCounterMode':>16} {'ratio cpu':>10} {'ratio wall':>10}")
    for name, make in _configs().items():
        config = make()
        if config.is_encoder_decoder:
            continue
        model = build_model(config, "meta").requires_grad_(False)  # FlopCounterMode's tracker wants it off
        ids = torch.zeros((1, SEQ), dtype=torch.int64, device="meta")
        ours, floor = paired(costlab_forward(model), counter_forward(model, ids), args.repeat)
        print(f"{name:<22} {ours.cpu:7.3f}/{ours.wall:7.3f} {floor.cpu:7.3f}/{floor.wall:7.3f} "
              f"{ours.cpu / floor.cpu:10.2f} {ours.wall / floor.wall:10.2f}")

    config = _configs()["llama-gqa"]()
    model = build_model(config, "meta")
    with torch.no_grad():
        cache = model(input_ids=torch.zeros((1, SEQ), dtype=torch.int64, device="meta"), use_cache=True).cache
    step = Inputs((), {"input_ids": TensorSpec((1, 1), "int64"), "cache": cache, "use_cache": True,
                       "logits_to_keep": 1})
    whole, one = paired(lambda: price_generation(model, config, 1, SEQ, NEW, "float32", "llama"),
                        lambda: trace_module(model, inputs=step, method="meta"), args.repeat)
    steps = NEW - 1
    print(f"\ngenerate {NEW} on {SEQ} tokens (llama-gqa): {whole.cpu:.3f} CPU s / {whole.wall:.3f} wall s; "
          f"{steps} separate step analyses: {steps * one.cpu:.3f} / {steps * one.wall:.3f}; "
          f"ratio {whole.cpu / (steps * one.cpu):.2f} (cpu), {whole.wall / (steps * one.wall):.2f} (wall)")


if __name__ == "__main__":
    main()
