"""Design-space sweeps: vary one parameter, price every target at every value, tabulate (and plot).

A sweep has one parameter, ``NAME=VALUES``, and one or more targets (series):

- a **template**: any target text with ``{NAME}`` placeholders, filled with each value
  (``"conv1x1:{w} > conv5x5:32"``, ``"dw{k}x{k} > pw:64"``, ``"mobilenet-v1(width={a})"``);
- a **preset** or ``package.module:callable`` without placeholders: ``NAME`` is passed as its
  option (``mobilenet-v1`` with ``width=0.25,0.5``);
- any other target without placeholders (an expression, a spec file) is a **reference**:
  priced once per value, unchanged, so it draws a flat line beside the others.

Three names are reserved and vary the analysis itself for every target: ``input`` (a
``CxHxW`` shape, or one number R: the target's input with every spatial size set to R),
``batch`` and ``freeze`` (as ``--freeze``: a count, a fraction or a layer name).

VALUES is ``start:stop:step`` (inclusive: stop is included when the steps reach it; integers
or decimals), ``start:stop`` (step 1) or a comma-separated list. Each point may carry extra
columns from :class:`Measure` objects (e.g. a latency measurement), which the sweep only
calls: it never imports torch itself.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from decimal import Context, Decimal, DivisionByZero, InvalidOperation, Overflow, localcontext
from typing import Any, Callable, Mapping, Sequence

from ..core.analysis import FLOPS_PER_MAC, Analysis
from ..core.errors import CostlabError
from ..core.sizes import parse_size, size_problem
from ..core.specs import Shape
from .pipeline import prepare
from .request import Request, Steps, seq_among, target_kind
from .targets import parse_input
from ..core.zoo import find_preset

#: Parameters that vary the analysis itself rather than a placeholder or an option.
RESERVED = ("input", "batch", "freeze")
#: Most points one sweep may have (values × targets), so that a typo cannot start hours of work.
MAX_POINTS = 10_000
#: Largest decimal exponent a range's start, stop or step may have.
_MAX_EXPONENT = 100

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_NAME = re.compile(r"^[A-Za-z_]\w*$")
_NUMBER = re.compile(r"^\d+(\.\d+)?$")


class SweepError(CostlabError):
    """A sweep that cannot run: a bad --param, a placeholder without a value, nothing that varies."""


# --- the parameter -----------------------------------------------------------------------

@dataclass(frozen=True)
class Param:
    """One swept parameter: its name and its values, as text (the form they are substituted in)."""

    name: str
    values: tuple[str, ...]

    def numeric(self) -> tuple[float, ...] | None:
        """The values as numbers, if they all are (``input`` values give their resolution)."""
        numbers = []
        for value in self.values:
            if self.name == "input":
                value = _resolution_of(value)
                if value is None:
                    return None
            if not _NUMBER.match(value):
                return None
            numbers.append(float(value))
        return tuple(numbers)

    @property
    def axis_label(self) -> str:
        return "resolution" if self.name == "input" and self.numeric() is not None else self.name


def _resolution_of(value: str) -> str | None:
    """'160' → '160'; '3x160x160' → '160'; '3x160x128' → None."""
    if value.isdigit():
        return value
    sizes = value.lower().replace("×", "x").split("x")
    return sizes[1] if len(sizes) > 1 and len(set(sizes[1:])) == 1 and sizes[1].isdigit() else None


#: Range arithmetic: enough digits for any value a sweep can list, exponents bounded so that no
#: step of the arithmetic (or a conversion to an integer) can take long.
_RANGE_CONTEXT = Context(prec=60, Emax=_MAX_EXPONENT, Emin=-_MAX_EXPONENT, traps=[InvalidOperation, Overflow,
                                                                                  DivisionByZero])


def _decimal(text: str, what: str, spec: str) -> Decimal:
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        raise SweepError(f"bad --param {_short(spec)!r}: {what} {_short(text)!r} is not a number") from None
    if not number.is_finite():
        raise SweepError(f"bad --param {_short(spec)!r}: {what} {_short(text)!r} is not a number")
    if number and not -_MAX_EXPONENT <= number.adjusted() <= _MAX_EXPONENT:
        raise SweepError(f"bad --param {_short(spec)!r}: {what} {_short(text)!r} is out of range "
                         f"(magnitudes 1e-{_MAX_EXPONENT} to 1e{_MAX_EXPONENT})")
    return number


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "…"


def expand_range(text: str, spec: str) -> tuple[str, ...]:
    """'4:16:4' → ('4', '8', '12', '16'); '0.25:1:0.25' → ('0.25', '0.5', '0.75', '1').

    Computed in decimal arithmetic (start + i·step), so no value drifts; stop is included when reached.
    """
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise SweepError(f"bad --param {spec!r}: a range is start:stop or start:stop:step")
    start = _decimal(parts[0], "start", spec)
    stop = _decimal(parts[1], "stop", spec)
    step = _decimal(parts[2], "step", spec) if len(parts) == 3 else Decimal(1)
    if step <= 0:
        raise SweepError(f"bad --param {spec!r}: the step must be positive")
    if stop < start:
        raise SweepError(f"bad --param {spec!r}: stop {parts[1]} is below start {parts[0]}")
    with localcontext(_RANGE_CONTEXT):
        try:
            steps = (stop - start) / step
        except ArithmeticError:
            raise SweepError(f"bad --param {_short(spec)!r}: the range is out of reach") from None
        if steps >= MAX_POINTS:  # compared as decimals, before any integer of that size exists
            raise SweepError(f"bad --param {_short(spec)!r}: more than {MAX_POINTS:,} values (at most "
                             f"{MAX_POINTS:,} points, a stated limit)")
        count = int(steps) + 1
        return tuple(_plain(start + i * step) for i in range(count))


def _plain(number: Decimal) -> str:
    """Decimal → plain text without exponent or trailing zeros: 0.50 → '0.5', 192 → '192'."""
    text = f"{number:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def parse_param(text: str) -> Param:
    """'w=4:192:4' → Param('w', ('4', '8', …, '192')); 'width=0.25,0.5' → a list."""
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or not _NAME.match(name):
        raise SweepError(f"bad --param {text!r}: expected NAME=VALUES, e.g. w=4:192:4 or width=0.5,1.0")
    values = values.strip()
    if not values:
        raise SweepError(f"bad --param {text!r}: no values")
    if "," in values:
        items = tuple(v.strip() for v in values.split(","))
        if any(not v for v in items):
            raise SweepError(f"bad --param {text!r}: an empty value in the list")
    elif ":" in values:
        items = expand_range(values, text)
    else:
        items = (values,)
    if len(set(items)) != len(items):
        raise SweepError(f"bad --param {text!r}: a value appears twice")
    for item in items:
        if "{" in item or "}" in item:
            raise SweepError(f"bad --param {text!r}: braces in value {item!r}")
    return Param(name, items)


# --- measures: extra columns per point ---------------------------------------------------------

@dataclass(frozen=True)
class Measure:
    """Extra columns computed per point (a latency measurement, ...).

    ``measure(analysis, module)`` returns a value for each of ``columns`` (``module``: the real module
    of a module target, which the pipeline built for it, else None); ``plot_column`` is the one
    drawn as a second series on its own axis, labelled ``axis_label``.
    """

    name: str
    columns: tuple[str, ...]
    measure: Callable[[Analysis, Any], Mapping[str, Any]]
    plot_column: str | None = None
    axis_label: str = ""


# --- the sweep ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Point:
    """One target at one value: the analysis made there, and its measured columns."""

    series: str          # the target as given (the template), which names the series
    value: str
    analysis: Analysis
    measured: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Sweep:
    """Every target priced at every value of one parameter, in value-major order."""

    param: Param
    series: tuple[str, ...]
    points: tuple[Point, ...]
    unit: str = "macs"
    measures: tuple[Measure, ...] = ()

    @property
    def training(self) -> bool:
        return any(point.analysis.training is not None for point in self.points)

    def at(self, series: str, value: str) -> Point:
        for point in self.points:
            if point.series == series and point.value == value:
                return point
        raise KeyError((series, value))

    def of(self, series: str) -> tuple[Point, ...]:
        """The points of one series, in value order."""
        return tuple(point for point in self.points if point.series == series)

    def columns(self) -> tuple[str, ...]:
        """The columns of :meth:`rows` (CSV header): counts in the sweep's unit."""
        unit = "flops" if self.unit == "flops" else "macs"
        names = ["param", "value", "series", "name", "input", "batch", "output", unit, "params", "ops",
                 "activations"]
        if len(self.series) > 1:
            names.append("ratio")
        if self.training:
            names += ["trainable_params", "frozen_params", f"train_step_{unit}"]
        for measure in self.measures:
            names += measure.columns
        return tuple(names)

    def rows(self) -> list[dict[str, Any]]:
        """One dict per point; ``ratio`` is the first series' MACs over this point's, at the same value."""
        scale = FLOPS_PER_MAC if self.unit == "flops" else 1
        unit = "flops" if self.unit == "flops" else "macs"
        rows = []
        for point in self.points:
            a = point.analysis
            row: dict[str, Any] = {
                "param": self.param.name, "value": point.value, "series": point.series, "name": a.name,
                "input": "x".join(map(str, a.input)), "batch": a.batch,
                "output": "x".join(map(str, a.output)), unit: scale * a.macs, "params": a.params,
                "ops": a.ops, "activations": a.activations}
            if len(self.series) > 1:
                first = self.at(self.series[0], point.value).analysis.macs
                row["ratio"] = first / a.macs if a.macs else None
            if self.training:
                t = a.training
                row.update({"trainable_params": t.trainable_params if t else None,
                            "frozen_params": t.frozen_params if t else None,
                            f"train_step_{unit}": scale * t.train_step_macs if t else None})
            for measure in self.measures:
                row.update({column: point.measured.get(column) for column in measure.columns})
            rows.append(row)
        return rows

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: the parameter, its values, the series and one object per point."""
        return {"unit": self.unit, "param": self.param.name, "values": list(self.param.values),
                "series": list(self.series), "points": self.rows()}


def _placeholders(text: str) -> list[str]:
    return _PLACEHOLDER.findall(text)


def _check_templates(targets: Sequence[str], param: Param) -> None:
    for target in targets:
        stray = _PLACEHOLDER.sub("", target)
        if "{" in stray or "}" in stray:
            raise SweepError(f"target {target!r}: unbalanced braces (a placeholder is {{NAME}})")
        for name in _placeholders(target):
            if name != param.name or name in RESERVED:
                hint = (f"{name} is varied with --param {name}=…, not a placeholder" if name in RESERVED
                        else f"the swept parameter is {param.name!r}")
                raise SweepError(f"target {target!r}: placeholder {{{name}}} has no value ({hint})")


def _takes_options(target: str) -> bool:
    """A preset (with or without options in parentheses) or ``package.module:callable``."""
    try:
        return target_kind(target).takes_options
    except CostlabError:  # an empty target: refused where it is priced
        return False


def _default_input(target: str, input: Shape | None) -> Shape:
    if input is not None:
        return input
    preset = find_preset(target.partition("(")[0].strip())
    if preset is None:
        raise SweepError(f"--param input=R needs the channels of {target!r}: give --input CxHxW, "
                         "or full CxHxW values")
    return preset.default_input


def _input_at(value: str, target: str, input: Shape | None) -> Shape:
    if value.isascii() and value.isdigit():
        base = _default_input(target, input)
        if len(base) < 2:
            raise SweepError(f"--param input={value}: {target!r} has no spatial axes to resize")
        resolution = parse_size(value)
        if resolution is None:
            raise SweepError(f"--param input: {size_problem(value, 'a positive resolution')}")
        return base[:1] + (resolution,) * (len(base) - 1)
    try:
        return parse_input(value)
    except CostlabError:
        raise SweepError(f"bad --param input value {value!r}: expected R or CxHxW") from None


def _batch_at(value: str) -> int:
    batch = parse_size(value)
    if batch is None:
        raise SweepError(f"bad --param batch value: {size_problem(value)}")
    return batch


def run_sweep(targets: Sequence[str], param: Param, input: Shape | None = None, batch: int = 1,
              dtype: str = "float32", options: Mapping[str, Any] | None = None,
              freeze: Any = None, unit: str = "macs", measures: Sequence[Measure] = (),
              seq: int | None = None) -> Sweep:
    """Price every target at every value of ``param`` (see the module docstring for the rules);
    ``seq``: the tokens of ``hf:`` targets (--seq)."""
    from ..analyses.training import parse_freeze

    if not targets:
        raise SweepError("sweep needs at least one target")
    if len(set(targets)) != len(targets):
        raise SweepError("a target appears twice")
    if param.name == "freeze" and freeze is not None:
        raise SweepError("--param freeze and --freeze both given: sweep the freeze or fix it, not both")
    if len(param.values) * len(targets) > MAX_POINTS:
        raise SweepError(f"{len(param.values) * len(targets):,} points (at most {MAX_POINTS:,})")
    _check_templates(targets, param)
    options = dict(options or {})
    if param.name not in RESERVED and param.name in options:
        raise SweepError(f"--param {param.name} and --kwarg {param.name} both given")
    varies = [param.name in RESERVED or bool(_placeholders(t)) or _takes_options(t) for t in targets]
    if not any(varies):
        raise SweepError(f"no target varies with {param.name!r}: put a placeholder {{{param.name}}} in "
                         "an expression, sweep an option of a preset, or input, batch or freeze")
    fixed_freeze = parse_freeze(freeze) if freeze is not None else None
    points = []
    seqs = dict(zip(targets, seq_among(targets, seq)))
    for value in param.values:
        for target in targets:
            text, point_input, point_batch = target, input, batch
            point_options, point_freeze = dict(options), fixed_freeze
            if param.name == "input":
                point_input = _input_at(value, target, input)
            elif param.name == "batch":
                point_batch = _batch_at(value)
            elif param.name == "freeze":
                point_freeze = parse_freeze(value)
            elif _placeholders(target):
                text = _PLACEHOLDER.sub(value, target)
            elif _takes_options(target):
                point_options[param.name] = value
            try:  # the same pipeline as costlab.analyze and compare
                analysis, module = prepare(Request.of(
                    text, point_input, batch=point_batch, dtype=dtype, seq=seqs[target], options=point_options,
                    steps=Steps(freeze=point_freeze, timed=bool(measures))))
            except CostlabError as error:
                raise SweepError(f"at {param.name}={value}: {error}") from None
            measured: dict[str, Any] = {}
            for measure in measures:
                measured.update(measure.measure(analysis, module))
            points.append(Point(target, value, analysis, measured))
    return Sweep(param, tuple(targets), tuple(points), unit, tuple(measures))


# --- rendering -----------------------------------------------------------------------------------

def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _display(value: Any) -> str:
    """A measured cell for the table and Markdown: 4 significant digits, 'noisy' for a noisy flag."""
    if isinstance(value, bool):
        return "noisy" if value else ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return _cell(value)


def _counted(value: int | None) -> str:
    from ..render.numbers import count

    return "" if value is None else count(value)


def sweep_csv(sweep: Sweep) -> str:
    """Long form: one line per (value, series), the columns of :meth:`Sweep.columns`."""
    from ..render.report import csv_text

    columns = sweep.columns()
    return csv_text(columns, [[_cell(row[column]) for column in columns] for row in sweep.rows()])


def sweep_text(sweep: Sweep, fmt: str = "table") -> str:
    """Wide form for reading: one line per value, per series its count (and ratio, train step, measures)."""
    from ..render.formats import Format
    from ..render.numbers import Style, count, number
    from ..render.report import convention, grid, unit_label

    unit = "flops" if sweep.unit == "flops" else "macs"
    label = unit_label(sweep.unit)
    rows_by_value: dict[str, list[dict[str, Any]]] = {}
    for row in sweep.rows():
        rows_by_value.setdefault(row["value"], []).append(row)
    headers = [sweep.param.name]
    numeric = [True]
    several = len(sweep.series) > 1
    for index, series in enumerate(sweep.series):
        prefix = f"[{index + 1}] " if several else ""
        headers += [f"{prefix}{label}", f"{prefix}params"]
        numeric += [True, True]
        if several and index:
            headers.append(f"[{index + 1}] vs [1]")
            numeric.append(True)
        if sweep.training:
            headers += [f"{prefix}trainable", f"{prefix}train-step {label}"]
            numeric += [True, True]
        for measure in sweep.measures:
            headers += [f"{prefix}{column}" for column in measure.columns]
            numeric += [True] * len(measure.columns)
    table = []
    for value, rows in rows_by_value.items():
        cells = [value]
        for index, row in enumerate(rows):
            cells += [count(row[unit]), count(row["params"])]
            if several and index:
                cells.append(number(row["ratio"], Style.TIMES))
            if sweep.training:
                cells += [_counted(row["trainable_params"]), _counted(row[f"train_step_{unit}"])]
            for measure in sweep.measures:
                cells += [_display(row[column]) for column in measure.columns]
        table.append(cells)
    title = f"costlab sweep {sweep.param.name} over {len(sweep.param.values)} values"
    settings = {(p.analysis.input, p.analysis.batch, p.analysis.dtype) for p in sweep.points}
    if len(settings) == 1:
        (shape, batch, dtype), = settings
        title += f": input {'×'.join(map(str, shape))}, batch {batch}, {dtype}"
    parts = [f"## {title}" if fmt == Format.MD else title, ""]
    if several:
        parts += [f"[{index + 1}] {series}" for index, series in enumerate(sweep.series)] + [""]
        parts += ["[n] vs [1]: MACs of [1] over MACs of [n] at the same value.", ""]
    else:
        parts += [sweep.series[0], ""]
    parts += [grid(headers, table, fmt, numeric), "", convention(sweep.unit)]
    return "\n".join(parts) + "\n"


def render_sweep(sweep: Sweep, fmt: str = "csv") -> str:
    """``costlab sweep`` output: csv (default), table, md or json."""
    from ..render.formats import Format

    if fmt == Format.JSON:
        return json.dumps(sweep.to_dict(), indent=2) + "\n"
    if fmt == Format.CSV:
        return sweep_csv(sweep)
    if fmt in (Format.TABLE, Format.MD):
        return sweep_text(sweep, fmt)
    raise SweepError(f"unknown format {fmt!r}")


def plot_columns(sweep: Sweep) -> tuple[str, ...]:
    """Columns ``--y`` may name: the numeric ones of :meth:`Sweep.columns`."""
    return tuple(c for c in sweep.columns() if c not in ("param", "value", "series", "name", "input",
                                                          "output"))


def reference_series(sweep: Sweep) -> tuple[str, ...]:
    """The series priced unchanged at every value (no placeholder, neither preset nor module),
    drawn as a dashed reference line; none when the parameter varies the analysis itself."""
    if sweep.param.name in RESERVED:
        return ()
    return tuple(s for s in sweep.series if not _placeholders(s) and not _takes_options(s))


def break_even(xs: Sequence[float], ys: Sequence[float], reference: Sequence[float]) -> list[float]:
    """Where ``ys`` crosses ``reference`` (linear interpolation between neighbouring points)."""
    crossings = []
    for index in range(1, len(xs)):
        before, after = ys[index - 1] - reference[index - 1], ys[index] - reference[index]
        if before == 0 and index == 1:
            crossings.append(xs[0])
        if after == 0:
            crossings.append(xs[index])
        elif before * after < 0:
            crossings.append(xs[index - 1] + (xs[index] - xs[index - 1]) * before / (before - after))
    return crossings


def _axis_label(sweep: Sweep, y: str) -> str:
    """What the y axis shows: 'MACs', 'train step MACs', or which ratio 'ratio' is."""
    if y == "ratio":
        name = "FLOPs" if sweep.unit == "flops" else "MACs"
        return f"ratio: {name} of [1] {sweep.series[0]} ÷ {name} of each (× fewer)"
    return y.replace("_", " ").replace("macs", "MACs").replace("flops", "FLOPs")


def sweep_png(sweep: Sweep, y: str | None = None) -> bytes:
    """:func:`sweep_figure` as PNG bytes."""
    figure = sweep_figure(sweep, y)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def sweep_figure(sweep: Sweep, y: str | None = None) -> Any:
    """A line plot (a matplotlib Figure): one line per series of ``y`` (default: MACs) against the parameter.

    A person reads it at a glance: SI tick labels (120 M, never a 1e8 offset), a reference
    series dashed, the break-even points of each series against the first (or, for ``ratio``,
    against 1) marked and labelled, and an axis that says which ratio it shows. A measure with
    a ``plot_column`` is drawn dotted on a second axis. The y axis is logarithmic when the
    plotted values span more than two decades. Needs matplotlib (imported here, and only here;
    no pyplot, no global state).
    """
    try:
        import matplotlib  # noqa: F401  (first, so that a blocked install fails here)
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter
    except ImportError:
        raise SweepError("--plot needs matplotlib: pip install 'costlab[plot]' "
                         "(or pip install matplotlib)") from None
    unit = "flops" if sweep.unit == "flops" else "macs"
    y = y or unit
    if y not in plot_columns(sweep):
        raise SweepError(f"--y {y}: not a column of this sweep (columns: {', '.join(plot_columns(sweep))})")
    numbers = sweep.param.numeric()
    positions = list(numbers) if numbers is not None else list(range(len(sweep.param.values)))
    rows = sweep.rows()
    references = reference_series(sweep)
    figure = Figure(figsize=(7.5, 4.5), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    second = [m for m in sweep.measures if m.plot_column and m.plot_column != y]  # y itself: not twice
    twin = axes.twinx() if second else None
    plotted: list[float] = []
    curves: dict[str, tuple[list[float], list[float]]] = {}
    for index, series in enumerate(sweep.series):
        color = "0.35" if series in references else f"C{index % 10}"
        values = [row[y] for row in rows if row["series"] == series]
        xs = [x for x, v in zip(positions, values) if v is not None]
        ys = [float(v) for v in values if v is not None]
        if y == "ratio" and index == 0:
            continue  # the first series over itself: the line at 1 below stands for it
        curves[series] = (xs, ys)
        plotted += ys
        label = f"[{index + 1}] {series}" if len(sweep.series) > 1 else series
        if series in references and y != "ratio":
            axes.plot(xs, ys, linestyle="--", linewidth=1.5, color="0.35", label=f"{label} (reference)")
        else:
            axes.plot(xs, ys, marker="o", markersize=3, color=color, label=label)
        for measure in second:
            measured = [row[measure.plot_column] for row in rows if row["series"] == series]
            points = [(x, v) for x, v in zip(positions, measured) if v is not None]
            if twin is not None and points:
                twin.plot([p[0] for p in points], [p[1] for p in points], linestyle=":", marker="x",
                          markersize=3, color=color, label=f"{label} ({measure.name})")
    # Break-even: where a series meets the first one (or a ratio meets 1), when the x axis is numeric.
    if numbers is not None and len(sweep.series) > 1:
        # The ratio crosses 1 where the counts cross: found on the counts, which are linear in most parameters.
        basis = unit if y == "ratio" else y
        crossing = {series: [row[basis] for row in rows if row["series"] == series] for series in sweep.series}
        if y == "ratio":
            axes.axhline(1.0, linestyle="--", linewidth=1.0, color="0.35", label="ratio 1: break-even")
            plotted.append(1.0)
        first = crossing[sweep.series[0]]
        for series in sweep.series[1:]:
            values = crossing[series]
            if any(v is None for v in values + first) or series not in curves:
                continue
            for x in break_even(positions, [float(v) for v in values], [float(v) for v in first]):
                level = 1.0 if y == "ratio" else _interpolate(positions, [float(v) for v in first], x)
                axes.plot([x], [level], marker="D", markersize=7, color="black", zorder=5)
                axes.axvline(x, linestyle=":", linewidth=0.8, color="0.5")
                axes.annotate(f"break-even: {sweep.param.name} ≈ {x:.4g}", (x, level), xytext=(8, 10),
                              textcoords="offset points", fontsize=8,
                              bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8})
    positive = [v for v in plotted if v > 0]
    if positive and max(positive) > 100 * min(positive):
        axes.set_yscale("log")
        axes.yaxis.set_minor_formatter(NullFormatter())
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: si_tick(value)))
    if numbers is None:
        axes.set_xticks(positions)
        axes.set_xticklabels(sweep.param.values, rotation=45, ha="right", fontsize=8)
    else:
        if all(float(x).is_integer() for x in positions):
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # k = 3, 5: no tick at 3.25
        axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: si_tick(value)))
    axes.set_xlabel(sweep.param.axis_label)
    y_label = next((m.axis_label for m in sweep.measures if m.plot_column == y and m.axis_label), None) \
        or _axis_label(sweep, y)
    axes.set_ylabel(y_label.replace(" ÷ ", "\n÷ ", 1), fontsize=9)
    axes.grid(True, alpha=0.3)
    handles, labels = axes.get_legend_handles_labels()
    if twin is not None:
        twin.set_ylabel(second[0].axis_label or second[0].plot_column or "")
        twin.yaxis.set_major_formatter(FuncFormatter(lambda value, _: si_tick(value)))
        more_handles, more_labels = twin.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    # Under the plot, where it hides no line (a twin axis has lines "best" cannot see).
    axes.legend(handles, labels, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14),
                ncol=2 if len(labels) > 2 else len(labels) or 1, frameon=False)
    axes.set_title(f"costlab sweep: {y_label} against {sweep.param.axis_label}", fontsize=9)
    figure.tight_layout()
    return figure


def si_tick(value: float) -> str:
    """A tick label: SI-scaled without trailing zeros (80 M, 1.5 k, 0.25), never an offset."""
    from ..render.numbers import number

    text = number(round(value, 6))
    return re.sub(r"\.0+(?= |$)|(?<=\.\d)0(?= |$)", "", text)


def _interpolate(xs: Sequence[float], ys: Sequence[float], x: float) -> float:
    """ys at x, linear between the neighbouring points."""
    for index in range(1, len(xs)):
        if xs[index - 1] <= x <= xs[index]:
            span = xs[index] - xs[index - 1]
            share = (x - xs[index - 1]) / span if span else 0.0
            return ys[index - 1] + share * (ys[index] - ys[index - 1])
    return ys[-1]
