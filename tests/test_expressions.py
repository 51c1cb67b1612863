"""Layer-stack expressions: the design's examples, the grammar, and errors that point at the token."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costlab.core.errors import CostlabError, ExpressionError
from costlab.core.expressions import analyze_expression, parse


def test_inception_bottleneck_case() -> None:
    plain = analyze_expression("conv5x5:32", (192, 28, 28))
    reduced = analyze_expression("conv1x1:16 > conv5x5:32", (192, 28, 28))
    # source text: 5·5·192 multiplies per output, 28·28·32 outputs
    assert plain.macs == (5 * 5 * 192) * (28 * 28 * 32)
    assert [layer.macs for layer in reduced.layers] == [192 * 28 * 28 * 16, 5 * 5 * 16 * 28 * 28 * 32]
    assert plain.layers[0].formula == "5·5·192 × 28·28·32 = 120,422,400"
    assert reduced.layers[0].formula == "1·1·192 × 28·28·16 = 2,408,448"
    assert round(plain.macs / reduced.macs, 2) == 9.68
    assert plain.output == reduced.output == (32, 28, 28)


def test_depthwise_separable_case() -> None:
    standard = analyze_expression("conv3x3:5,valid", (3, 6, 6))
    separable = analyze_expression("dw3x3,valid > pw:5", (3, 6, 6))
    assert standard.macs == 3 * 3 * 3 * 4 * 4 * 5
    assert [layer.macs for layer in separable.layers] == [3 * 3 * 16 * 3, 3 * 16 * 5]
    assert [layer.type for layer in separable.layers] == ["dw3x3", "conv1x1"]
    assert separable.output == (5, 4, 4)


def test_options_and_layer_words() -> None:
    a = analyze_expression("conv3x3:64,s2,bias > bn > relu6 > maxpool3x3,s2,same > dw5x5:2,d2 "
                           "> pw:32,g4 > avgpool2x2 > gap > dropout:0.2 > fc:10,nobias > softmax",
                           (3, 64, 64))
    kinds = [layer.type for layer in a.layers]
    assert kinds == ["conv3x3/2", "bn", "relu6", "maxpool3x3/2", "dw5x5", "conv1x1", "avgpool2x2",
                     "gap", "dropout", "flatten", "fc10", "softmax"]
    conv, dw, pw, fc = a.layer("conv1"), a.layer("dw1"), a.layer("pw1"), a.layer("fc1")
    assert conv.output == (1, 64, 32, 32) and conv.params == 3 * 9 * 64 + 64
    assert dw.output == (1, 128, 16, 16)  # depth multiplier 2, same padding kept with dilation
    assert pw.params == 32 * (128 // 4)
    assert fc.params == 32 * 10  # nobias


def test_branches_concatenate_and_res_adds() -> None:
    a = analyze_expression("(conv1x1:64 | conv1x1:96 > conv3x3:128 | conv1x1:16 > conv5x5:32 | "
                           "maxpool3x3,s1,same > pw:32)", (192, 28, 28))
    assert a.output == (256, 28, 28)
    assert a.layers[-1].op == "concat"
    r = analyze_expression("res(conv3x3:64,s2 > bn)", (32, 16, 16))
    assert [layer.name for layer in r.layers] == ["res1.conv1", "res1.bn1", "res1.downsample.0",
                                                  "res1.downsample.1", "res1.add"]
    assert r.output == (64, 8, 8)


@pytest.mark.parametrize("text, column, token, problem", [
    ("conv5x5", 1, "conv5x5", "needs the number of output channels"),
    ("conv5x5:abc", 9, "abc", "expected a positive integer"),
    ("conv5x5:32 >", 13, "end", "expected a layer"),
    ("conv3x3:4,s0", 11, "s0", "positive integer for the stride"),
    ("conv3x3:4,q1", 11, "q1", "unknown option"),
    ("foo > relu", 1, "foo", "unknown layer"),
    ("relu > bar", 8, "bar", "unknown layer"),
    ("(conv1x1:3 | pw:4", 18, "end", "expected ')'"),
    ("conv1x1:3 conv1x1:4", 11, "conv1x1:4", "expected '>'"),
    ("conv9x9:3,valid", 1, "conv9x9", "larger than the padded input"),
    ("conv3x3:4,g3", 1, "conv3x3", "groups 3 do not divide"),
    ("relu:3", 6, "3", "takes no ':' argument"),
    ("   ", 1, "   ", "empty"),
])
def test_malformed_expression_points_at_the_token(text: str, column: int, token: str, problem: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        analyze_expression(text, (3, 6, 6))
    error = caught.value
    assert (error.column, error.token) == (column, token)
    assert problem in error.problem
    assert "\n" not in str(error)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(list("conv1x350:,>|()dwpfcresbnlu gq.-") +
                                ["res(", "conv3x3:8", " > ", "dw3x3", "pw:4", "fc:2", "maxpool2x2"]),
                max_size=15).map("".join) | st.text(max_size=30))
def test_parser_raises_only_costlab_errors(text: str) -> None:
    try:
        parse(text)
        analyze_expression(text, (3, 16, 16))
    except CostlabError:
        pass
