"""The torch bridge: the only part of costlab that imports torch.

- :mod:`.build`: specs, blocks and presets → ``torch.nn`` modules with the same layer names.
- :mod:`.trace`: any ``nn.Module`` → costlab layers, priced by the core's own formulas.
- :mod:`.crosscheck`: costlab's counts beside fvcore's and ``torch.utils.flop_counter``'s.
- :mod:`.latency`: measured latency of a target and of each layer (:mod:`.timing` times one callable).
- :mod:`.roofline`: the machine's peaks (measured, cached) and each layer's roofline bound.
- :mod:`.latency_report`: the two canonical comparisons with latency, as Markdown.
"""
