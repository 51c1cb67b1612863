"""``costlab help TOPIC``: text a person reads at the terminal, taken from the code it describes."""

from __future__ import annotations

import re

from ..core.errors import CostlabError

#: Examples of the expression grammar, each priced by tests/test_display.py on its input.
EXPRESSION_EXAMPLES = (
    ("conv5x5:32", "192x28x28", "32 filters of 5×5 (same padding)"),
    ("conv1x1:16 > conv5x5:32", "192x28x28", "a 1×1 bottleneck first"),
    ("conv3x3:5,valid", "3x6x6", "valid padding: 4×4 output"),
    ("dw3x3,valid > pw:5", "3x6x6", "depthwise-separable"),
    ("conv3x3:64,s2,bias > bn > relu", "3x32x32", "stride 2, a bias, batch norm, ReLU"),
    ("(pw:64 | pw:96 > conv3x3:128 | pw:16 > conv5x5:32)", "192x28x28",
     "inception-style: three branches on one input, concatenated on channels"),
    ("res(conv3x3:64 > bn > relu > conv3x3:64 > bn) > relu", "64x56x56", "a residual basic block"),
    ("conv3x3:32,g4,d2 > gap > fc:10", "32x16x16", "groups, dilation, global pool, linear"),
)

DOCS = ("docs/cli.md (commands, options, targets, the grammar), docs/cost-model.md (every formula and "
        "convention) and docs/python-api.md, in the source distribution and the repository")


def _grammar() -> str:
    """The grammar block of costlab.core.expressions' docstring: the parser's own statement of it."""
    from ..core import expressions

    match = re.search(r"::\n\n((?:    .*\n|\n)+)", expressions.__doc__ or "")
    return match.group(1).rstrip() if match else ""


def expressions_help() -> str:
    """The grammar, the layer words the parser knows, and examples with their inputs."""
    from ..core.expressions import LAYER_WORDS

    from .display import wrap

    lines = ["Layer-stack expressions (a TARGET of compare, analyze and sweep; needs --input CxHxW)", "",
             _grammar(), "",
             "`>` chains layers; ( a | b | ... ) runs branches on the same input and concatenates them on "
             "channels; res( a ) adds the input back (a strided 1×1 projection when the shape changes).",
             "", "Layer words: " + ", ".join(LAYER_WORDS) + ".",
             "Options after commas: s{n} stride, p{n} padding, same (default for conv), valid, g{n} groups, "
             "d{n} dilation, bias / nobias, ceil (pools). An argument after ':' is the output channels "
             "(conv, pw, fc), the depth multiplier (dw) or the probability (dropout).", "", "Examples:"]
    examples = []  # never wrapped: each can be pasted as it stands
    for expression, shape, what in EXPRESSION_EXAMPLES:
        command = f'  costlab analyze "{expression}" --input {shape}'
        examples += ([command] if len(command) <= 80 else
                     [f'  costlab analyze "{expression}" \\', f"      --input {shape}"])
        examples.append(f"      {what}")
    return "\n".join(wrap(lines, 80) + examples + wrap(["", f"More: {DOCS}."], 80)) + "\n"


TOPICS = {"expressions": expressions_help}


def help_text(topic: str | None) -> str:
    """The text of a help topic; without one, the list of topics and where the docs are."""
    if topic is None:
        from .display import wrap

        return "\n".join(wrap(["costlab help TOPIC, where TOPIC is one of: " + ", ".join(TOPICS),
                               f"Documentation: {DOCS}."], 80)) + "\n"
    if topic not in TOPICS:
        raise CostlabError(f"no help topic {topic!r} (topics: {', '.join(TOPICS)})")
    return TOPICS[topic]()
