"""What an analysis carries beside its counts, as typed results that share one interface.

Each option that adds to a result makes one typed object: ``--freeze`` a
:class:`~costlab.core.training.TrainingCost`, ``--memory`` a :class:`~costlab.core.memory.Memory`,
``--convention`` a :class:`~costlab.core.conventions.Profile`, ``--check`` a :class:`Checks` (one
:class:`Check` per tool), ``--latency`` a :class:`Latency` (with its :class:`Roofline`). Every one
implements :class:`Feature`; :class:`~costlab.core.analysis.Analysis` lists them in the fixed order of
:data:`FEATURES`, and its JSON and every renderer loop over them: adding a feature is one class
and one field of ``Analysis``, with no edit to a renderer.

The core's: nothing here imports torch or the renderer. What a feature draws, it draws through
the ``view`` a renderer hands it (``costlab.render.report.View``: counts SI-scaled or exact, bytes,
prose wrapped and tables fitted to the terminal); ``view`` is None for CSV, whose cells are raw
values.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Mapping, Protocol, Sequence, Union

if TYPE_CHECKING:
    from .analysis import Analysis, Layer, Row

#: The features of an analysis, by their field on Analysis, in the order they render (columns,
#: notes, sections) and enter the JSON.
FEATURES = ("training", "memory", "convention", "checks", "latency", "prediction")

#: FLOPs per multiply-accumulate (``--unit flops``).
FLOPS_PER_MAC = 2

Number = Union[int, float]


def in_unit(macs: Number, unit: str) -> Number:
    """A count of MACs in ``unit`` (macs, or flops = 2 × MACs)."""
    return macs * FLOPS_PER_MAC if unit == "flops" else macs


def unit_label(unit: str) -> str:
    return "FLOPs" if unit == "flops" else "MACs"


def count(n: int) -> str:
    """Exact count with thousands separators."""
    return f"{n:,}"


def exact_number(value: float, unit: str = "macs") -> str:
    """A count in ``unit``, exact: '12,443,648', or one decimal where it is not whole."""
    value = in_unit(value, unit)
    return count(int(value)) if float(value).is_integer() else f"{value:,.1f}"


class View(Protocol):
    """How a report is drawn (costlab.render.report.View): what a feature draws with."""

    fmt: str
    width: int | None
    exact: bool

    def count(self, value: float) -> str: ...

    def bytes(self, value: int) -> str: ...

    def prose(self, lines: Sequence[str]) -> list[str]: ...

    def left_out(self, dropped: Sequence[str]) -> list[str]: ...

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[bool],
              keeps: Sequence[int | None] | None = None, shrinks: Sequence[str | None] | None = None,
              min_widths: Sequence[int] | None = None) -> tuple[str, list[str]]: ...


@dataclass(frozen=True)
class Heading:
    """A column a feature adds to a table or CSV: its title, alignment, and ``keep`` (how long it
    stays when the terminal is narrow: higher stays longer; None always stays); ``key`` says which
    part of the feature it shows (a check's tool)."""

    title: str
    numeric: bool = True
    keep: int | None = None
    key: str = ""


class Feature(Protocol):
    """The interface of a typed result an analysis carries. ``group`` is one feature per target
    of a report (None for a target without it); ``view`` is None for CSV (raw cells). Every
    method has a default that adds nothing, so a feature implements only what it shows."""

    #: True for the results of running something real (the other tools, the timer): their columns
    #: follow the formula column of a per-layer CSV and the ratio column of a comparison.
    from_run: ClassVar[bool] = False

    def json_fields(self, unit: str) -> dict[str, Any]:
        """Fields this feature adds to its target's entry of the JSON contract."""
        return {}

    def layer_json(self, name: str) -> dict[str, Any]:
        """Fields this feature adds to the JSON entry of the layer called ``name``."""
        return {}

    @classmethod
    def layer_columns(cls, group: Sequence[Any], unit: str, view: View | None) -> list[Heading]:
        """The columns this feature adds to per-layer tables (and per-layer CSV)."""
        return []

    def layer_cells(self, headings: Sequence[Heading], row: "Row", members: Sequence["Layer"], unit: str,
                    view: View | None) -> list[Any]:
        """One per-layer row's cells under ``headings``; ``members`` are the layers the row folds
        (:func:`costlab.core.analysis.fold`, the one folding rule)."""
        return []

    def total_cells(self, headings: Sequence[Heading], unit: str, view: View) -> list[str]:
        """The total row's cells under ``headings`` (a table's last row)."""
        return [""] * len(headings)

    @classmethod
    def side_by_side(cls, group: Sequence[Any], unit: str, view: View | None) -> tuple[list[Heading], list[list[Any]]]:
        """The columns this feature adds to a comparison's one-row-per-target table, and each target's cells."""
        return [], []

    def headline(self, unit: str, view: View) -> str:
        """What this feature adds to the one-line head of ``costlab analyze`` ('' for nothing)."""
        return ""

    def table_notes(self, unit: str) -> list[str]:
        """Lines under its target's table."""
        return []

    def section(self, analysis: "Analysis", unit: str, view: View, compact: bool) -> list[str]:
        """A section of its own after its target's per-layer table (``compact``: without a
        per-layer table, a line or two)."""
        return []

    @classmethod
    def report_section(cls, analyses: Sequence["Analysis"], unit: str, view: View) -> list[str]:
        """A section once per report, over every target (after the notes)."""
        return []


def blank(headings: Sequence[Heading]) -> list[str]:
    """Empty cells under ``headings`` (a target or a row the feature says nothing of)."""
    return [""] * len(headings)


# --- cross-checks (--check) ----------------------------------------------------------------------

#: How a check's column is titled in tables.
CHECK_LABELS = {"fvcore": "fvcore", "torch": "torch ÷ 2"}


def in_unit_label(tool: str, unit: str) -> str:
    """A tool's name over its count shown in ``unit``: in MACs as given ('torch ÷ 2': PyTorch's FLOPs
    halved); in FLOPs = 2 × MACs, 'torch' (its own count) and '<tool> × 2' for the others."""
    if unit != "flops":
        return tool
    return tool[: -len(" ÷ 2")] if tool.endswith(" ÷ 2") else f"{tool} × 2"
#: Agreement from best to worst; a folded row takes the worst of its layers'.
AGREEMENT_ORDER = ("exact", "explained", "unexplained")


def short_rule(convention: str) -> str:
    """'fvcore-batch-norm' → 'batch-norm'."""
    return convention.split("-", 1)[1] if convention.startswith(("fvcore-", "torch-")) else convention


def _signed(value: float, unit: str) -> str:
    return f"{'+' if value >= 0 else '-'}{exact_number(abs(value), unit)}"


@dataclass(frozen=True)
class CheckRow:
    """One call site of a check that counts per module (fvcore, PyTorch's counter): a leaf module's
    layers, or the functional ops a container runs itself; counts in multiply-adds."""

    name: str
    module: str
    layers: tuple[str, ...]
    costlab: int
    reference: Number
    expected: Number
    difference: Number
    agreement: str  # exact, explained or unexplained
    conventions: tuple[str, ...] = ()  # the rules that explain it, when explained
    note: str = ""
    operators: Mapping[str, Number] | None = None  # fvcore's own count per operator

    def to_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": self.name, "module": self.module, "layers": list(self.layers),
                                 "costlab": self.costlab, "reference": self.reference, "expected": self.expected,
                                 "difference": self.difference, "agreement": self.agreement,
                                 "conventions": list(self.conventions)}
        if self.note:
            entry["note"] = self.note
        if self.operators:
            entry["operators"] = dict(self.operators)
        return entry

    def verdict(self, unit: str = "macs") -> str:
        """'exact', 'explained (batch-norm)' or 'UNEXPLAINED (+5)'."""
        if self.agreement == "explained":
            return f"explained ({', '.join(short_rule(c) for c in self.conventions)})"
        if self.agreement == "unexplained":
            return f"UNEXPLAINED ({_signed(self.difference, unit)})"
        return "exact"


@dataclass(frozen=True)
class ParamCheck:
    """Parameters as a tool reports them, beside costlab's and the tool's profile."""

    tool: int
    expected: int
    costlab: int
    agreement: str

    def to_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "expected": self.expected, "costlab": self.costlab, "agreement": self.agreement}


@dataclass(frozen=True)
class Check:
    """One tool's count set beside costlab's MACs and beside what its own rules (its convention
    profile) predict. ``status`` is ok, skipped or failed (with ``reason``); the rest is set when ok."""

    tool: str
    status: str = "ok"
    reason: str = ""
    batch: int = 1
    scale: int = 1  # the tool ran at ``batch`` and its counts were multiplied by this
    total: Number = 0
    costlab: int = 0
    expected: Number = 0
    difference: Number = 0
    agreement: str = "exact"
    conventions: Mapping[str, Number] = field(default_factory=dict)  # each rule's share of the difference
    layers: tuple[CheckRow, ...] = ()
    explanations: Mapping[str, str] = field(default_factory=dict)  # each rule in words
    params: ParamCheck | None = None
    note: str = ""  # how the tool's unit relates to a MAC (JSON "convention")
    flops: Number | None = None  # PyTorch's counter's own FLOPs
    skipped_ops: Mapping[str, int] | None = None  # fvcore's

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """The check's entry of the JSON contract (``checks`` of a target)."""
        if not self.ok:
            return {"tool": self.tool, "status": self.status, "reason": self.reason}
        entry: dict[str, Any] = {
            "tool": self.tool, "status": self.status, "batch": self.batch, "scale": self.scale,
            "total": self.total, "costlab": self.costlab, "expected": self.expected,
            "difference": self.difference, "agreement": self.agreement, "conventions": dict(self.conventions),
            "layers": [row.to_dict() for row in self.layers], "explanations": dict(self.explanations),
        }
        if self.params is not None:
            entry["params"] = self.params.to_dict()
        if self.note:
            entry["convention"] = self.note
        if self.flops is not None:
            entry["flops"] = self.flops
        if self.skipped_ops is not None:
            entry["skipped_ops"] = dict(self.skipped_ops)
        return entry

    def verdict(self, unit: str = "macs") -> str:
        """'exact', 'explained: batch-norm +22,227,968', 'UNEXPLAINED (+5)', or 'skipped: …' / 'failed: …'."""
        if not self.ok:
            return f"{self.status}: {self.reason}"
        if self.agreement == "unexplained":
            return f"UNEXPLAINED ({_signed(self.difference, unit)})"
        if self.agreement == "explained":
            return "explained: " + ", ".join(f"{short_rule(name)} {_signed(share, unit)}"
                                             for name, share in self.conventions.items())
        return "exact"

    @cached_property
    def by_first_layer(self) -> Mapping[str, CheckRow]:
        """Each row by its first layer: a row that covers several layers (a module called twice, a
        container's functional ops) is counted on its first."""
        return {row.layers[0]: row for row in self.layers if row.layers}


@dataclass(frozen=True)
class Checks(Feature, Mapping[str, Check]):
    """``--check``: one :class:`Check` per tool, by its name (fvcore, torch, ptflops, …).

    In tables, a target's checks are a section of their own (a line per tool and a per-call-site
    table); in CSV, two columns per tool; in JSON, the target's ``checks``."""

    entries: Mapping[str, Check] = field(default_factory=dict)

    from_run: ClassVar[bool] = True

    def __getitem__(self, name: str) -> Check:
        return self.entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def with_check(self, name: str, check: Check) -> "Checks":
        return Checks({**self.entries, name: check})

    def to_dict(self) -> dict[str, Any]:
        return {name: check.to_dict() for name, check in self.entries.items()}

    def unexplained(self) -> list[str]:
        """The tools that found a difference no rule of theirs explains."""
        return [name for name, check in self.entries.items() if check.ok and check.agreement == "unexplained"]

    def json_fields(self, unit: str) -> dict[str, Any]:
        return {"checks": self.to_dict()}

    @staticmethod
    def _names(group: Sequence["Checks | None"]) -> list[str]:
        names: dict[str, None] = {}
        for checks in group:
            names.update((name, None) for name in checks or ())
        return list(names)

    @classmethod
    def layer_columns(cls, group: Sequence[Any], unit: str, view: View | None) -> list[Heading]:
        if view is not None:  # tables show the checks in a section of their own
            return []
        label = unit_label(unit).lower()
        return [Heading(title, key=name) for name in cls._names(group)
                for title in (f"{name}_{label}", f"{name}_agreement")]

    def layer_cells(self, headings: Sequence[Heading], row: "Row", members: Sequence["Layer"], unit: str,
                    view: View | None) -> list[Any]:
        """Per check: the tool's count of the row's layers and their worst agreement."""
        cells: list[Any] = []
        for heading in headings[::2]:
            check = self.entries.get(heading.key)
            if check is None or not check.ok:
                cells += ["", ""]
                continue
            found = [check.by_first_layer[m.name] for m in members if m.name in check.by_first_layer]
            total = in_unit(sum(r.reference for r in found), unit)
            worst = max((r.agreement for r in found), key=AGREEMENT_ORDER.index, default="exact")
            cells += [exact_number(total).replace(",", ""), worst]
        return cells

    @classmethod
    def side_by_side(cls, group: Sequence[Any], unit: str, view: View | None) -> tuple[list[Heading], list[list[Any]]]:
        names = cls._names(group)
        if view is None:
            label = unit_label(unit).lower()
            headings = [Heading(t, key=n) for n in names for t in (f"{n}_{label}", f"{n}_agreement")]
        else:
            headings = [Heading(t, numeric, keep, key=n) for n in names
                        # an agreement goes before its tool's count: never an agreement without its tool
                        for t, numeric, keep in ((in_unit_label(CHECK_LABELS.get(n, n), unit), True, 68),
                                                 ("agreement", False, 65))]
        rows = []
        for checks in group:
            cells: list[Any] = []
            for name in names:
                check = (checks or {}).get(name)
                if check is None:
                    cells += ["", ""]
                elif not check.ok:
                    cells += ["", check.status]
                else:
                    total = in_unit(check.total, unit)
                    cells += [total if view is None else view.count(total), check.agreement]
            rows.append(cells)
        return headings, rows

    def section(self, analysis: "Analysis", unit: str, view: View, compact: bool) -> list[str]:
        if compact:
            return view.prose([f"{analysis.name}, {check.tool}: {check.verdict(unit)}" for check in self.values()])
        return self._section(analysis, unit, view)

    def rows(self) -> list[tuple[str, int, dict[str, CheckRow]]]:
        """(row name, costlab MACs, {check: its row}) for every call site any check lists, in order."""
        merged: dict[str, tuple[int, dict[str, CheckRow]]] = {}
        for name, check in self.entries.items():
            for row in check.layers:
                costlab, per_check = merged.setdefault(row.name, (row.costlab, {}))
                per_check[name] = row
        return [(row, costlab, per_check) for row, (costlab, per_check) in merged.items()]

    def _section(self, a: "Analysis", unit: str, view: View) -> list[str]:
        """One line per check, a per-layer table with an agreement column per check, and the
        conventions that explain differences."""
        parts = ["", f"### {a.name}: cross-check" if view.fmt == "md" else f"Cross-check of {a.name}"]
        for check in self.values():
            if not check.ok:
                parts += view.prose([f"- {in_unit_label(check.tool, unit)}: {check.verdict(unit)}"])
                continue
            ran = f" (ran at batch {check.batch}, counts × {check.scale})" if check.scale != 1 else ""
            parts += view.prose([f"- {in_unit_label(check.tool, unit)}{ran}: {exact_number(check.total, unit)} vs costlab "
                                 f"{exact_number(check.costlab, unit)}: {check.verdict(unit)}"])
        # the per-call-site table: the tools that count per module (the others are compared in total)
        ok = [(name, check) for name, check in self.items() if check.ok and check.layers]
        if not ok:
            return parts
        headers = ["layer", f"costlab {unit_label(unit)}"]
        for name, _ in ok:
            headers += [in_unit_label(CHECK_LABELS.get(name, name), unit), "agreement"]
        rows = []
        for row_name, costlab, per_check in self.rows():
            cells = [row_name, view.count(in_unit(costlab, unit))]
            for name, _ in ok:
                row = per_check.get(name)
                if row is None:
                    cells += ["0", "exact"]
                    continue
                verdict = row.verdict(unit)
                if view.width is not None and row.agreement == "explained":
                    verdict = "explained"  # which rule explains it: the list under the table
                cells += [view.count(in_unit(row.reference, unit)), verdict]
            rows.append(cells)
        footer = ["total", view.count(in_unit(a.macs, unit))]
        for _, check in ok:
            footer += [view.count(in_unit(check.total, unit)), check.agreement]
        rows.append(footer)
        numeric = [False, True] + [True, False] * len(ok)
        # Counts stay; a long agreement ('explained (batch-norm)') is cut first, its rules listed below.
        table, dropped = view.table(headers, rows, numeric, [None, None] + [None, None] * len(ok),
                                    ["tail", None] + [None, "head"] * len(ok), [24, 8] + [8, 9] * len(ok))
        parts += ["", table] + view.left_out(dropped)
        used: dict[str, str] = {}
        for _, check in ok:
            used.update(check.explanations)
            if check.note:
                used["torch-flops"] = check.note if unit != "flops" else \
                    "PyTorch's counter counts 2 FLOPs per MAC (shown as it counts them here)"
        if used:
            parts.append("")
            parts += view.prose([f"- {short_rule(name)}: {text}" for name, text in used.items()])
        return parts


# --- latency and the roofline (--latency) --------------------------------------------------------

NOISY = "noisy"
#: A CPU target whose process got less than this share of its threads' time is called out.
CPU_SHARE_WARNING = 0.75
LAYER_LATENCY_HEADERS = ["ms ± IQR", "GFLOP/s", "FLOP/B", "bound", "roofline ms"]
LAYER_LATENCY_CSV = ["latency_ms", "latency_iqr_ms", "latency_noisy", "achieved_gflops", "intensity",
                     "bound", "roofline_ms"]
TARGET_LATENCY_CSV = ["latency_ms", "latency_iqr_ms", "latency_noisy", "latency_ratio", "roofline_ms",
                      "roofline_fraction"]


def milliseconds(value: float) -> str:
    """Milliseconds for a table: 0.0012, 0.079, 0.731, 2.68, 12.3, 1234."""
    if value >= 100:
        return f"{value:.0f}"
    if value >= 1:
        return f"{value:.3g}"
    return f"{value:.3f}" if value >= 0.01 else f"{value:.4f}"


def threads_text(threads: int) -> str:
    """1 → '1 thread', 2 → '2 threads'."""
    return f"{threads} thread{'' if threads == 1 else 's'}"


def speed_ratio_text(ratio: float | None, first: bool) -> str:
    """3.09 → '3.09× faster' (first's median over this one's); the first target is the baseline."""
    if first:
        return "baseline"
    if not ratio:
        return "n/a"
    return f"{ratio:.2f}× faster" if ratio >= 1 else f"{1 / ratio:.2f}× slower"


def _present(cls: type, values: Mapping[str, Any], always: frozenset[str]) -> dict[str, Any]:
    """A dataclass's fields as JSON, in their order: those in ``always``, and the others when set."""
    return {f.name: values[f.name] for f in fields(cls) if f.name in always or values[f.name] is not None}


@dataclass(frozen=True)
class Roofline:
    """A roofline point from the machine's measured peaks (JSON ``roofline``): the bound
    max(FLOPs / peak FLOP/s, bytes / peak B/s), its kind, and what was achieved against it.

    A layer's has ``bound`` (compute or memory); a target's is the sum of its layers' bounds, with
    how many of them are compute- and memory-bound and the ``peaks`` it was drawn from."""

    flops: int
    bytes: int
    intensity: float | None  # FLOPs / bytes (None without bytes)
    ridge: float
    compute_ms: float
    memory_ms: float
    predicted_ms: float
    bound: str | None = None
    bandwidth: str | None = None  # which of the peaks' bandwidths bounds it
    achieved_gflops: float | None = None
    achieved_gbps: float | None = None
    fraction: float | None = None  # predicted / measured
    compute_bound_layers: int | None = None
    memory_bound_layers: int | None = None
    peaks: Mapping[str, Any] | None = field(default=None, hash=False)

    _ALWAYS: ClassVar[frozenset[str]] = frozenset(
        ("flops", "bytes", "intensity", "ridge", "compute_ms", "memory_ms", "predicted_ms", "bandwidth"))

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any]) -> "Roofline":
        return cls(**entry)

    def to_dict(self) -> dict[str, Any]:
        entry = _present(type(self), self.__dict__, self._ALWAYS)
        if self.peaks is not None:
            entry["peaks"] = dict(self.peaks)
        return entry


@dataclass(frozen=True)
class Latency(Feature):
    """A measured latency (JSON ``latency_ms``; times in ms): median and IQR over samples taken
    after warm-up, how it was taken, and the roofline beside it (JSON ``roofline``).

    The timing fields are those of ``costlab.torch_bridge.timing.Timing``; a target's adds the
    machine's load when it began, the sum of its layers' medians and the layers not timed alone."""

    median: float
    iqr: float
    q1: float | None = None
    q3: float | None = None
    min: float | None = None
    spread: float | None = None
    noisy: bool = False
    noise_threshold: float | None = None
    samples: int | None = None
    calls_per_sample: int | None = None
    warmup_calls: int | None = None
    device: str = "cpu"
    threads: int | None = None
    timer: str | None = None
    cpu_share: float | None = None
    run_share: float | None = None
    min_run_share: float | None = None
    attempts: int | None = None
    noisy_reason: str | None = None
    device_name: str | None = None
    dtype: str | None = None
    load_1min: float | None = None
    sum_of_layers: float | None = None
    untimed_layers: tuple[str, ...] | None = None
    roofline: Roofline | None = None

    from_run: ClassVar[bool] = True
    _OPTIONAL: ClassVar[frozenset[str]] = frozenset(("load_1min", "sum_of_layers", "untimed_layers"))

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any], roofline: Roofline | None = None) -> "Latency":
        """From a timing's ``to_dict()`` and what a measurement adds to it."""
        values = dict(entry)
        if values.get("untimed_layers") is not None:
            values["untimed_layers"] = tuple(values["untimed_layers"])
        return cls(**values, roofline=roofline)

    def to_dict(self) -> dict[str, Any]:
        """The ``latency_ms`` entry of the JSON contract."""
        always = frozenset(f.name for f in fields(self)) - self._OPTIONAL - {"roofline"}
        entry = _present(type(self), self.__dict__, always)
        entry.pop("roofline", None)
        if self.untimed_layers is not None:
            entry["untimed_layers"] = list(self.untimed_layers)
        return entry

    def text(self) -> str:
        """'0.731 ± 0.026', with ' noisy' appended when IQR/median is above the threshold."""
        text = f"{milliseconds(self.median)} ± {milliseconds(self.iqr)}"
        return f"{text} {NOISY}" if self.noisy else text

    @property
    def starved(self) -> bool:
        """Noisy because other work held the CPU in every attempt."""
        return self.noisy and "starved" in (self.noisy_reason or "")

    # --- the feature ---

    def json_fields(self, unit: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"latency_ms": self.to_dict()}
        if self.roofline is not None:
            entry["roofline"] = self.roofline.to_dict()
        return entry

    @staticmethod
    def _everywhere(group: Sequence[Any]) -> bool:
        return bool(group) and all(latency is not None for latency in group)

    @classmethod
    def layer_columns(cls, group: Sequence[Any], unit: str, view: View | None) -> list[Heading]:
        if not cls._everywhere(group):  # latency is shown when every target was measured
            return []
        if view is None:
            return [Heading(title) for title in LAYER_LATENCY_CSV]
        return [Heading(title, numeric, keep) for title, numeric, keep in
                zip(LAYER_LATENCY_HEADERS, (True, True, True, False, True), (90, 25, 22, 28, 35))]

    def layer_cells(self, headings: Sequence[Heading], row: "Row", members: Sequence["Layer"], unit: str,
                    view: View | None) -> list[Any]:
        """A layer's own measurement, or a folded block's sums (its IQR left out)."""
        timed = [m for m in members if m.latency is not None and m.latency.roofline is not None]
        if not timed:
            return ["" if view is None else "–"] * len(headings)
        if len(timed) == 1 and timed[0].name == row.name:
            return _layer_latency_cells(timed[0].latency, view)  # type: ignore[arg-type]
        measured = sum(m.latency.median for m in timed)  # type: ignore[union-attr]
        flops = sum(m.latency.roofline.flops for m in timed)  # type: ignore[union-attr]
        moved = sum(m.latency.roofline.bytes for m in timed)  # type: ignore[union-attr]
        kinds = {m.latency.roofline.bound for m in timed}  # type: ignore[union-attr]
        noisy = any(m.latency.noisy for m in timed)  # type: ignore[union-attr]
        predicted = sum(m.latency.roofline.predicted_ms for m in timed)  # type: ignore[union-attr]
        kind = kinds.pop() if len(kinds) == 1 else "mixed"
        if view is None:
            return [f"{measured:.6g}", "", noisy, f"{flops / (measured * 1e-3) / 1e9:.6g}" if measured else "",
                    f"{flops / moved:.6g}" if moved else "", kind, f"{predicted:.6g}"]
        return [f"{milliseconds(measured)} (sum){' ' + NOISY if noisy else ''}",
                f"{flops / (measured * 1e-3) / 1e9:.1f}" if measured else "–",
                f"{flops / moved:.1f}" if moved else "–", kind, milliseconds(predicted)]

    def total_cells(self, headings: Sequence[Heading], unit: str, view: View) -> list[str]:
        """The whole target measured as one module."""
        roof = self.roofline
        intensity = roof.intensity if roof is not None else None
        return [self.text(), f"{(roof.achieved_gflops if roof else None) or 0:.1f}",
                "–" if intensity is None else f"{intensity:.1f}", "",
                milliseconds(roof.predicted_ms) if roof is not None else "–"]

    @classmethod
    def side_by_side(cls, group: Sequence[Any], unit: str, view: View | None) -> tuple[list[Heading], list[list[Any]]]:
        """Measured latency, its ratio to the first target's, and the roofline's prediction."""
        if not cls._everywhere(group):
            return [], []
        first = group[0].median
        ratios = [first / latency.median if latency.median else None for latency in group]
        if view is None:
            return [Heading(title) for title in TARGET_LATENCY_CSV], [
                [f"{t.median:.6g}", f"{t.iqr:.6g}", t.noisy, "" if ratio is None else f"{ratio:.6g}",
                 f"{(t.roofline.predicted_ms if t.roofline else 0):.6g}",
                 f"{(t.roofline.fraction if t.roofline else None) or 0:.6g}"]
                for t, ratio in zip(group, ratios)]
        headings = [Heading("latency ms ± IQR", True, 90), Heading("time vs first", False, 85),
                    Heading("roofline ms", True, 35), Heading("of roofline", True, 33)]
        return headings, [[t.text(), speed_ratio_text(ratio, index == 0),
                           milliseconds(t.roofline.predicted_ms if t.roofline else 0.0),
                           f"{100 * ((t.roofline.fraction if t.roofline else None) or 0.0):.0f} %"]
                          for index, (t, ratio) in enumerate(zip(group, ratios))]

    @classmethod
    def report_section(cls, analyses: Sequence["Analysis"], unit: str, view: View) -> list[str]:
        """How latency was measured and the peaks of the roofline, once per report."""
        if not cls._everywhere([a.latency for a in analyses]):
            return []
        return view.prose(latency_notes(analyses))


def _layer_latency_cells(latency: Latency, view: View | None) -> list[Any]:
    roof = latency.roofline
    assert roof is not None
    if view is None:
        return [f"{latency.median:.6g}", f"{latency.iqr:.6g}", latency.noisy, f"{roof.achieved_gflops or 0:.6g}",
                "" if roof.intensity is None else f"{roof.intensity:.6g}", roof.bound or "",
                f"{roof.predicted_ms:.6g}"]
    return [latency.text(), f"{roof.achieved_gflops or 0:.1f}",
            "–" if roof.intensity is None else f"{roof.intensity:.1f}", roof.bound,
            milliseconds(roof.predicted_ms)]


def latency_notes(analyses: Sequence["Analysis"]) -> list[str]:
    """How latency was measured and the peaks of the roofline (every analysis measured)."""
    first = analyses[0]
    latency = first.latency
    assert latency is not None
    peaks = (latency.roofline.peaks if latency.roofline is not None else None) or {}
    threads = f", {threads_text(latency.threads or 0)}" if latency.device == "cpu" else ""
    notes = [
        f"Latency: median ± IQR in ms on {latency.device} ({latency.device_name or '?'}{threads}), "
        f"{latency.dtype or first.dtype}, eval mode, inference mode, after warm-up; "
        f"'{NOISY}' marks IQR above {100 * (latency.noise_threshold or 0):.0f} % of the median.",
    ]
    if peaks:
        notes.append(
            f"Roofline: bound = max(FLOPs / {peaks['gflops']:.1f} GFLOP/s, bytes / {peaks['gbps']:.1f} GB/s), "
            f"the peaks measured on this machine (ridge {peaks['ridge']:.1f} FLOP/B, calibrated "
            f"{peaks.get('measured_at', '?')}); a network's roofline ms is the sum of its layers'; "
            "'of roofline' = roofline ms / measured ms.")
    measured = [(a, a.latency) for a in analyses if a.latency is not None]
    starved = [f"{a.name} ({100 * t.cpu_share:.0f} %)" for a, t in measured
               if t.run_share is None and (t.cpu_share or 1.0) < CPU_SHARE_WARNING]
    if starved:
        notes.append(f"Got less than {100 * CPU_SHARE_WARNING:.0f} % of its threads' CPU time while measured: "
                     f"{', '.join(starved)}: other work on the machine, or ops that used fewer threads than "
                     "given; measure again on a quiet machine before trusting it.")
    targets = [a.name for a, t in measured if t.noisy]
    layers = sum(1 for a in analyses for layer in a.layers if layer.latency is not None and layer.latency.noisy)
    if targets or layers:
        parts = ([f"target{'s' if len(targets) > 1 else ''} {', '.join(targets)}"] if targets else [])
        parts += [f"{layers} layer{'s' if layers != 1 else ''}"] if layers else []
        notes.append(f"Noisy measurements (IQR/median above the threshold, or starved of CPU in every attempt): "
                     f"{' and '.join(parts)}; 'noisy' marks them in the tables, \"noisy\": true in JSON.")
    starved = [f"{a.name} ({100 * (t.run_share or 0):.0f} %)" for a, t in measured if t.starved]
    starved_layers = sum(1 for a in analyses for layer in a.layers if layer.latency is not None
                         and layer.latency.starved)
    if starved or starved_layers:
        parts = starved + ([f"{starved_layers} layer{'s' if starved_layers != 1 else ''}"] if starved_layers else [])
        notes.append(f"Starved in every attempt (other work held the CPU; in parentheses the share of the time "
                     f"ready to run that its threads ran): {', '.join(parts)}; measure again on a quiet machine "
                     "before trusting them.")
    return notes
