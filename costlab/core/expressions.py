"""Layer-stack expressions: ``"conv1x1:16 > conv5x5:32"``, parsed with the column of every token.

Grammar (docs/cli.md has it with examples)::

    expression := sequence
    sequence   := item ( ">" item )*
    item       := layer | "(" sequence ( "|" sequence )* ")" | "res(" sequence ")"
    layer      := word [ ":" argument ] ( "," option )*

``( a | b )`` runs branches on the same input and concatenates them on channels;
``res( a )`` adds the input back (through a strided 1×1 projection when the shape changes).
Every error is an :class:`~costlab.core.errors.ExpressionError` that names the token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, TypeVar, Union

from .analysis import Analysis
from .blocks import residual
from .errors import CostlabError, ExpressionError, SpecError
from .graph import Net, Value
from .sizes import MAX_SIZE_DIGITS, parse_size, size_problem
from .specs import (ACTIVATION_OPS, AdaptivePool, Activation, Concat, Dropout, Flatten, Linear,
                    Norm, Spec, avg_pool2d, conv2d, max_pool2d)


@dataclass(frozen=True)
class Token:
    text: str
    column: int  # 1-based


@dataclass(frozen=True)
class LayerItem:
    word: Token
    argument: Token | None
    options: tuple[Token, ...]


@dataclass(frozen=True)
class BranchItem:
    opening: Token
    branches: tuple[tuple["Item", ...], ...]


@dataclass(frozen=True)
class ResidualItem:
    opening: Token
    body: tuple["Item", ...]


Item = Union[LayerItem, BranchItem, ResidualItem]
T = TypeVar("T")

#: A token; what lies between tokens is white space (a character no alternative matches).
_TOKEN = re.compile(r"res\(|[()|>]|[^\s()|>]+")
_KERNELED = re.compile(r"(conv|dw|maxpool|avgpool)(\d+)(?:x(\d+))?$", re.ASCII)
_OPTION = re.compile(r"([a-z]+)(\d*(?:\.\d+)?)$", re.ASCII)
#: Deepest nesting of ``(`` and ``res(`` an expression may have (parsing and building recurse).
MAX_NESTING = 50
LAYER_WORDS = ("conv{k}x{k}", "dw{k}x{k}", "pw", "maxpool{k}x{k}", "avgpool{k}x{k}", "gap", "fc",
               "bn", "flatten", "dropout", *sorted(k for k in ACTIVATION_OPS if k != "identity"))


def tokenize(text: str) -> list[Token]:
    """Split into ``>``, ``|``, ``(``, ``res(``, ``)`` and layer words, keeping 1-based columns.

    One left-to-right scan of the text (time linear in its length): white space, which no
    alternative of the token pattern matches, is what the scan skips between tokens.
    """
    return [Token(match.group(), match.start() + 1) for match in _TOKEN.finditer(text)]


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0
        self.depth = 0

    def error(self, token: Token | None, problem: str) -> ExpressionError:
        if token is None:
            return ExpressionError(self.text, len(self.text) + 1, "end", problem)
        return ExpressionError(self.text, token.column, token.text, problem)

    def peek(self) -> Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> Token | None:
        token = self.peek()
        self.index += 1
        return token

    def parse(self) -> tuple[Item, ...]:
        if not self.tokens:
            raise ExpressionError(self.text, 1, self.text, "the expression is empty")
        items = self.sequence()
        if self.peek() is not None:
            raise self.error(self.peek(), "expected '>' between layers")
        return items

    def sequence(self) -> tuple[Item, ...]:
        items = [self.item()]
        while self.peek() is not None and self.peek().text == ">":  # type: ignore[union-attr]
            self.take()
            items.append(self.item())
        return tuple(items)

    def item(self) -> Item:
        token = self.take()
        if token is None:
            raise self.error(None, "expected a layer")
        if token.text in ("(", "res("):
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise self.error(token, f"nested more than {MAX_NESTING} levels deep")
            try:
                return self.group(token)
            finally:
                self.depth -= 1
        if token.text in (">", "|", ")"):
            raise self.error(token, "expected a layer")
        return self.layer(token)

    def group(self, token: Token) -> Item:
        """The branches of ``( … | … )`` or the body of ``res( … )`` after its opening token."""
        if token.text == "(":
            branches = [self.sequence()]
            while self.peek() is not None and self.peek().text == "|":  # type: ignore[union-attr]
                self.take()
                branches.append(self.sequence())
            self.close(token)
            return BranchItem(token, tuple(branches))
        body = self.sequence()
        self.close(token)
        return ResidualItem(token, body)

    def close(self, opening: Token) -> None:
        token = self.take()
        if token is None or token.text != ")":
            raise self.error(token, f"expected ')' to close the '(' at column {opening.column}")

    def layer(self, token: Token) -> LayerItem:
        head, *rest = token.text.split(",")
        offsets = [0]
        for part in [head] + rest[:-1]:
            offsets.append(offsets[-1] + len(part) + 1)
        options = tuple(Token(part, token.column + offset) for part, offset in zip(rest, offsets[1:]))
        word_text, _, argument_text = head.partition(":")
        word = Token(word_text, token.column)
        argument = Token(argument_text, token.column + len(word_text) + 1) if ":" in head else None
        if not word_text:
            raise self.error(token, "expected a layer name before ':'")
        return LayerItem(word, argument, options)


def parse(text: str) -> tuple[Item, ...]:
    """Parse an expression into items; raises :class:`ExpressionError` naming the bad token."""
    if not isinstance(text, str):
        raise CostlabError(f"an expression must be text, got {type(text).__name__}")
    return _Parser(text).parse()


# --- building ------------------------------------------------------------------------

@dataclass(frozen=True)
class _Options:
    stride: int | None = None
    padding: int | str = "same"
    groups: int = 1
    dilation: int = 1
    bias: bool | None = None
    ceil: bool = False
    p: float | None = None


#: The field each option sets, where two options set the same one (padding: p1, same, valid).
_OPTION_FIELDS = {"p": "padding", "same": "padding", "valid": "padding", "s": "stride", "g": "groups",
                  "d": "dilation", "bias": "bias", "nobias": "bias", "ceil": "ceil"}


def _positive_int(text: str, what: str, fail: Callable[[str], ExpressionError], minimum: int = 1) -> int:
    value = parse_size(text, minimum)
    if value is None:
        noun = "a positive integer" if minimum > 0 else "an integer"
        raise fail(size_problem(text, f"{noun} for {what}", minimum))
    return value


class _Builder:
    def __init__(self, text: str, net: Net) -> None:
        self.text = text
        self.net = net

    def fail(self, token: Token, problem: str) -> ExpressionError:
        return ExpressionError(self.text, token.column, token.text, problem)

    def sequence(self, items: tuple[Item, ...], x: Value) -> Value:
        for item in items:
            x = self.item(item, x)
        return x

    def item(self, item: Item, x: Value) -> Value:
        if isinstance(item, BranchItem):
            outputs = []
            for number, branch in enumerate(item.branches, start=1):
                with self.net.scope(f"branch{number}"):
                    outputs.append(self.sequence(branch, x))
            if len(outputs) == 1:
                return outputs[0]
            return self.guarded(item.opening, lambda: self.net.add(Concat(1), *outputs))
        if isinstance(item, ResidualItem):
            name = self.net.auto_name("res")
            return self.guarded(item.opening, lambda: residual(
                self.net, x, lambda net, y: self.sequence(item.body, y), name=name))
        return self.layer(item, x)

    def guarded(self, token: Token, build: Callable[[], T]) -> T:
        """Run ``build``, turning a spec or shape error into one that points at ``token``."""
        try:
            return build()
        except ExpressionError:
            raise
        except SpecError as error:
            raise self.fail(token, str(error)) from None

    def options(self, item: LayerItem, allowed: set[str], padding: int | str = "same") -> _Options:
        """Read ``,s2``-style options; ``padding`` is the layer's default padding."""
        values: dict[str, object] = {"padding": padding}
        given: dict[str, Token] = {}  # the option that set each field, so that two cannot both set it
        for token in item.options:
            match = _OPTION.match(token.text)
            key, number = (match.group(1), match.group(2)) if match else (token.text, "")
            fail = lambda problem, token=token: self.fail(token, problem)  # noqa: E731
            if key not in allowed:
                known = ", ".join(sorted(allowed)) or "none"
                raise fail(f"unknown option for {item.word.text} (options: {known})")
            if key in ("same", "valid", "bias", "nobias", "ceil") and number:
                raise fail(f"option {key!r} takes no number")
            field_ = _OPTION_FIELDS.get(key, key)
            if field_ in given:
                raise fail(f"conflicts with {given[field_].text!r}: {item.word.text} takes one {field_} option")
            given[field_] = token
            if key == "s":
                values["stride"] = _positive_int(number, "the stride", fail)
            elif key == "p":
                if parse_size(number, 0) is None:
                    raise fail(f"expected a padding such as p1, got {token.text!r}")
                values["padding"] = _positive_int(number, "the padding", fail, minimum=0)
            elif key in ("same", "valid"):
                values["padding"] = key
            elif key == "g":
                values["groups"] = _positive_int(number, "the groups", fail)
            elif key == "d":
                values["dilation"] = _positive_int(number, "the dilation", fail)
            elif key in ("bias", "nobias"):
                values["bias"] = key == "bias"
            elif key == "ceil":
                values["ceil"] = True
        return _Options(**values)  # type: ignore[arg-type]

    def argument(self, item: LayerItem, what: str, required: bool) -> int | None:
        if item.argument is None:
            if required:
                raise self.fail(item.word, f"{item.word.text} needs {what}, e.g. {item.word.text}:32")
            return None
        return _positive_int(item.argument.text, what, lambda p: self.fail(item.argument, p))  # type: ignore[arg-type]

    def layer(self, item: LayerItem, x: Value) -> Value:
        word = item.word.text
        kernel_match = _KERNELED.match(word)
        spec: Spec
        prefix: str
        if kernel_match:
            kind = kernel_match.group(1)
            sizes = [parse_size(text) for text in kernel_match.groups()[1:] if text is not None]
            if None in sizes:
                raise self.fail(item.word, "kernel sizes must be positive integers of at most "
                                           f"{MAX_SIZE_DIGITS} digits")
            kernel = (sizes[0], sizes[-1])
            if kind == "conv":
                out = self.argument(item, "the number of output channels", True)
                o = self.options(item, {"s", "p", "same", "valid", "g", "d", "bias", "nobias"})
                spec = self.spec(item, lambda: conv2d(out, kernel, o.stride or 1, o.padding,  # type: ignore[arg-type]
                                                      o.dilation, o.groups, bool(o.bias)))
                prefix = "conv"
            elif kind == "dw":
                multiplier = self.argument(item, "the depth multiplier", False) or 1
                o = self.options(item, {"s", "p", "same", "valid", "d", "bias", "nobias"})
                spec = self.spec(item, lambda: conv2d(x.channels * multiplier, kernel, o.stride or 1,
                                                      o.padding, o.dilation, x.channels, bool(o.bias)))
                prefix = "dw"
            else:
                if item.argument is not None:
                    raise self.fail(item.argument, f"{word} takes no ':' argument")
                o = self.options(item, {"s", "p", "same", "valid", "ceil"}, padding=0)
                factory = max_pool2d if kind == "maxpool" else avg_pool2d
                spec = self.spec(item, lambda: factory(kernel, o.stride, o.padding, o.ceil))
                prefix = kind
        elif word == "pw":
            out = self.argument(item, "the number of output channels", True)
            o = self.options(item, {"s", "g", "bias", "nobias"})
            spec = self.spec(item, lambda: conv2d(out, 1, o.stride or 1, 0, 1, o.groups, bool(o.bias)))  # type: ignore[arg-type]
            prefix = "pw"
        elif word == "fc":
            out = self.argument(item, "the number of output features", True)
            o = self.options(item, {"bias", "nobias"})
            if len(x.shape) > 2:
                x = self.guarded(item.word, lambda: self.net.add(Flatten(), x))
            spec = self.spec(item, lambda: Linear(out, o.bias is not False))  # type: ignore[arg-type]
            prefix = "fc"
        elif word == "dropout":
            self.options(item, set())
            probability = 0.5
            if item.argument is not None:
                try:
                    probability = float(item.argument.text)
                except ValueError:
                    raise self.fail(item.argument, "expected a probability such as 0.5") from None
            spec = self.spec(item, lambda: Dropout(probability))
            prefix = "dropout"
        else:
            simple: dict[str, Spec] = {"bn": Norm("batch"), "gap": AdaptivePool("avg", (1, 1)),
                                       "flatten": Flatten()}
            if word in simple:
                spec, prefix = simple[word], word
            elif word in ACTIVATION_OPS and word != "identity":
                spec, prefix = Activation(word), word
            else:
                raise self.fail(item.word, "unknown layer (known: " + ", ".join(LAYER_WORDS) + ")")
            if item.argument is not None:
                raise self.fail(item.argument, f"{word} takes no ':' argument")
            self.options(item, set())
        return self.guarded(item.word, lambda: self.net.add(spec, x, name=self.net.auto_name(prefix)))

    def spec(self, item: LayerItem, make: Callable[[], Spec]) -> Spec:
        return self.guarded(item.word, make)


def build(text: str, net: Net, x: Value | None = None) -> Value:
    """Add the layers of ``text`` to ``net`` after ``x`` (default: the net's input)."""
    items = parse(text)
    return _Builder(text, net).sequence(items, net.input if x is None else x)


def analyze_expression(text: str, input: tuple[int, ...], batch: int = 1, dtype: str = "float32",
                       name: str | None = None) -> Analysis:
    """Price an expression on an input of shape ``input`` (C, H, W) and batch ``batch``."""
    items = parse(text)  # syntax errors first, before any shape is looked at
    net = Net(input, batch, dtype)
    output = _Builder(text, net).sequence(items, net.input)
    return net.analysis(name or " ".join(text.split()), output, kind="expression")
