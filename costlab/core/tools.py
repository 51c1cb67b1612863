"""The names of the other tools costlab is held against, stated once (no torch, nothing loaded).

The command line (``--check``, ``--convention``), the cross-check and the runners of the torch
bridge (:mod:`costlab.torch_bridge.crosscheck`, :mod:`costlab.torch_bridge.peers`), the conventions
and ``benchmarks/peers.py`` all read these tuples; tests hold each table keyed by them to these
names, in this order.
"""

from __future__ import annotations

#: The counters costlab runs beside its own counts on a real module (``--check``, the peers
#: benchmark), in the order of every report: fvcore, PyTorch's FlopCounterMode, ptflops, thop,
#: torchinfo, torchprofile.
PEER_TOOLS: tuple[str, ...] = ("fvcore", "torch", "ptflops", "thop", "torchinfo", "torchprofile")

#: The tools whose counting conventions costlab states (``--convention``): the peers and
#: torchvision's published model table, in the order of the convention report.
CONVENTION_TOOLS: tuple[str, ...] = ("fvcore", "ptflops", "thop", "torchinfo", "torchvision", "torchprofile",
                                     "torch")

#: transformers' auto classes by the head they build (``--head KIND`` of ``hf:`` targets;
#: :mod:`costlab.torch_bridge.hf` resolves them).
HEADS = {
    "none": "AutoModel",
    "causal-lm": "AutoModelForCausalLM",
    "masked-lm": "AutoModelForMaskedLM",
    "seq2seq-lm": "AutoModelForSeq2SeqLM",
    "speech-seq2seq": "AutoModelForSpeechSeq2Seq",
    "classification": "AutoModelForSequenceClassification",
    "image-classification": "AutoModelForImageClassification",
    "image-text-to-text": "AutoModelForImageTextToText",
}
