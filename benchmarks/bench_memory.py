"""Peak memory of analysing VGG-16 at 3×4096×4096, batch 64, as a real module.

Each measurement runs in a fresh subprocess and reports that process's peak resident set
size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``). The peak includes everything the
process ever held: the Python interpreter, ``import torch``, the VGG-16 module itself (built
by costlab's builder on the CPU: 138,357,544 float32 parameters, about 528 MiB) and the
analysis. The baseline line (same process, before the analysis) shows what the analysis adds.
A real forward pass would need the activations, printed for scale.

Target (design.md): under 2 GiB peak.
Run from the repository root:  python benchmarks/bench_memory.py
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT_BYTES = 2 * 1024 ** 3
INPUT = (3, 4096, 4096)
BATCH = 64


def child(method: str) -> None:
    """Build VGG-16 as a real module, analyse it, print peak RSS figures as JSON."""
    sys.path.insert(0, str(ROOT))
    import torch

    import costlab
    from costlab.torch_bridge.build import build_module
    from costlab.torch_bridge.trace import trace_module
    from costlab.core.zoo import build_preset

    def peak() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux

    after_import = peak()
    module = build_module(build_preset("vgg16"), device="cpu")
    weights = sum(p.numel() * p.element_size() for p in module.parameters())
    baseline = peak()
    if method == "fx":
        analysis = costlab.analyze(module, input=INPUT, batch=BATCH)
    else:
        analysis = trace_module(module, INPUT, batch=BATCH, method="meta").analysis
    print(json.dumps({"after_import": after_import, "baseline": baseline, "peak": peak(), "weights": weights,
                      "macs": analysis.macs, "params": analysis.params,
                      "activation_bytes": 4 * sum(layer.activations for layer in analysis.layers),
                      "torch": torch.__version__}))


def gib(n: float) -> str:
    return f"{n / 1024 ** 3:.2f} GiB"


def main() -> None:
    print(f"VGG-16, input {'×'.join(map(str, INPUT))}, batch {BATCH}, analysed as a real module "
          "(weights on the CPU); each row is a fresh process")
    worst = 0
    for method, label in (("fx", "costlab.analyze(module, …) (torch.fx)"),
                          ("meta", "trace_module(…, method='meta') (fallback)")):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        done = subprocess.run([sys.executable, __file__, "--child", method], cwd=ROOT, env=env,
                              capture_output=True, text=True, check=True)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        worst = max(worst, r["peak"])
        print(f"\n  {label}")
        print(f"    after import torch, costlab       {gib(r['after_import'])}")
        print(f"    + VGG-16 weights ({gib(r['weights'])})       {gib(r['baseline'])}   (baseline)")
        print(f"    peak, after the analysis          {gib(r['peak'])}   (+{gib(r['peak'] - r['baseline'])})")
        print(f"    counted: {r['macs']:,} MACs, {r['params']:,} params; a real forward pass would hold "
              f"{gib(r['activation_bytes'])} of float32 activations")
    print(f"\n  worst peak {gib(worst)} (target < {gib(LIMIT_BYTES)}): {'PASS' if worst < LIMIT_BYTES else 'FAIL'}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main()
