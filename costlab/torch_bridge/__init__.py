"""The torch bridge: the only part of costlab that imports torch.

- :mod:`.build`: specs, blocks and presets → ``torch.nn`` modules with the same layer names.
- :mod:`.trace`: any ``nn.Module`` → costlab layers, priced by the core's own formulas.
- :mod:`.crosscheck`: costlab's counts beside fvcore's and ``torch.utils.flop_counter``'s.
"""
