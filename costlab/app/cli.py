"""The command line: a thin layer over the library. The only code that prints or picks exit codes.

Exit codes: 0 done; 1 a check found an unexplained disagreement (``--strict``);
2 bad input (one line ``costlab: error: …`` on stderr, no traceback, nothing half-written).
"""

from __future__ import annotations

import argparse
import errno
import io
import os
import re
import stat
import sys
import warnings
from contextlib import contextmanager, nullcontext, redirect_stdout
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence, TextIO

from ..core.analysis import Analysis, Comparison
from ..core.errors import CostlabError
from ..core.sizes import parse_size, size_problem
from ..core.tools import CONVENTION_TOOLS as CONVENTION_NAMES, HEADS, PEER_TOOLS as CHECK_NAMES
from ..render.formats import CLI_FORMAT_NAMES, Format
from ..render.report import render_analysis, render_comparison
from .request import Request, Steps, is_hf, seq_among
from .targets import DEFAULT_INPUT, DEFAULT_TARGETS, parse_input, parse_options
from ..core.zoo import PRESETS, build_preset

PROG = "costlab"


class UsageError(CostlabError):
    """A command line argparse rejects."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting, so errors stay one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


@dataclass(frozen=True)
class Command:
    """A subcommand: its help line, how it adds its arguments, and how it runs (→ text, exit code)."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], tuple[str, int]]


# --- shared options --------------------------------------------------------------------

def _positive_int(text: str) -> int:
    value = parse_size(text)
    if value is None:
        raise argparse.ArgumentTypeError(size_problem(text))
    return value


def _thread_count(text: str) -> int:
    """--threads: a positive integer no larger than the CPUs this process may run on."""
    threads = _positive_int(text)
    available = _available_cpus()
    if threads > available:
        raise argparse.ArgumentTypeError(f"{threads} threads asked, but this machine gives this process "
                                         f"{available} CPU(s)")
    return threads


def _available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one, else the CPU count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class _Once(argparse.Action):
    """An option that may be given once: a second value is refused, not silently replacing the first."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        if getattr(namespace, self.dest, None) is not None:
            raise argparse.ArgumentError(self, "given twice (it takes one value)")
        setattr(namespace, self.dest, values)


def add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=CLI_FORMAT_NAMES, default=Format.TABLE.value,
                        help="table (terminal), md (Markdown), csv or json (default: table)")
    parser.add_argument("--output", metavar="PATH", action=_Once,
                        help="write to PATH (atomically: a temporary file renamed into place)")


def add_view_options(parser: argparse.ArgumentParser) -> None:
    """--wide, --exact: how the terminal table is drawn (Markdown, CSV and JSON keep everything exact)."""
    parser.add_argument("--wide", action="store_true",
                        help="terminal table: every column, however wide (default: the columns that fit "
                             "the terminal, $COLUMNS or 80; the rest are named under the table)")
    parser.add_argument("--exact", action="store_true",
                        help="terminal table: exact integers (4,089,184,256) instead of SI-scaled "
                             "counts (4.09 G) and binary-scaled bytes (97.5 MiB)")


def table_width(args: argparse.Namespace) -> int | None:
    """The width a terminal table must fit: None with --wide, else the terminal's ($COLUMNS first)."""
    if getattr(args, "wide", False):
        return None
    import shutil

    return shutil.get_terminal_size((80, 24)).columns


def add_target_options(parser: argparse.ArgumentParser) -> None:
    """Options every command that prices targets takes."""
    parser.add_argument("--input", action="append", metavar="SPEC",
                        help="input per sample: CxHxW (float32, e.g. 3x224x224); for module targets also "
                             "DTYPE:SHAPE (int64:128), NAME=DTYPE:SHAPE for a keyword (input_ids=int64:128) "
                             "and list:SHAPE for a list of --batch tensors; repeatable, in the forward's order")
    parser.add_argument("--seq", type=_positive_int, metavar="N",
                        help="tokens per sample of an hf: text model (default 128)")
    parser.add_argument("--generate", type=_positive_int, metavar="N",
                        help="hf: language models: price generate(max_new_tokens=N) on --seq prompt tokens — "
                             "the prefill, each decode step with its KV cache, the cache's bytes")
    parser.add_argument("--head", choices=list(HEADS), metavar="KIND",
                        help="hf: the model to build: " + ", ".join(HEADS) + " (default: the class the config "
                             "names, else the causal LM, else the bare model)")
    parser.add_argument("--batch", type=_positive_int, default=1, metavar="N", help="batch size (default 1)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16",
                                                               "float64", "int8"],
                        help="element type for the bytes column, and of an hf: model's weights and cache "
                             "with --generate (default float32)")
    parser.add_argument("--kwarg", action="append", default=[], metavar="K=V",
                        help="option for presets and package.module:callable targets (repeatable)")
    parser.add_argument("--unit", choices=["macs", "flops"], default="macs",
                        help="macs (default) or flops = 2 × MACs")
    parser.add_argument("--freeze", metavar="N|F|NAMES|requires_grad",
                        help="price one training step with a leading part frozen: the first N layers "
                             "with parameters, a fraction F of them (0.9), or everything before the first "
                             "layer or block matching one of NAMES, comma-separated names or glob patterns "
                             "resolved per target (fc,classifier,head: retrain the head); requires_grad: a "
                             "module target's own flags; 0 trains everything")
    parser.add_argument("--check", metavar="TOOL,...",
                        help=f"cross-check every count against the real tools ({', '.join(CHECK_NAMES)}; "
                             "comma-separated), each beside what its own rules "
                             "predict: per layer for fvcore and torch, in total for the others (imports torch)")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when a count misses an op that multiplies (its MACs a lower bound) or, "
                             "with --check, when a difference is not explained by a named convention")
    add_latency_options(parser)
    add_output_options(parser)


def add_latency_options(parser: argparse.ArgumentParser) -> None:
    """--latency, --threads, --quiet: measured latency and the roofline beside the counts."""
    parser.add_argument("--latency", choices=["cpu", "cuda"], metavar="cpu|cuda",
                        help="build the real modules and measure the latency of each target and layer "
                             "on this device, with the roofline bound of each layer")
    parser.add_argument("--predict", choices=["cpu", "cuda"], metavar="cpu|cuda",
                        help="predict the latency of each target and layer on this device from the counts and "
                             "this machine's kernel calibration (costlab calibrate), running nothing; with "
                             "--latency, measured, predicted and their error side by side")
    parser.add_argument("--threads", type=_thread_count, metavar="N",
                        help="CPU threads while measuring, and the calibration --predict reads "
                             "(torch.set_num_threads; default: torch's)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar on stderr")


def prediction_device(args: argparse.Namespace) -> str | None:
    """The device latency is predicted for: --predict's, else --latency's when this machine has a
    kernel calibration for it (measured beside predicted), else None."""
    predict, latency = getattr(args, "predict", None), getattr(args, "latency", None)
    if predict and latency and predict != latency:
        raise UsageError(f"--predict {predict} and --latency {latency}: a prediction is compared with a "
                         "measurement on the same device")
    if predict:
        return predict
    if latency:
        from ..torch_bridge.calibration import cached_calibration
        from ..torch_bridge.timing import check_device

        check_device(latency)
        if cached_calibration(latency, args.threads, args.dtype) is not None:
            return latency
    return None


def parse_checks(text: str) -> tuple[str, ...]:
    """'fvcore,torch' → ('fvcore', 'torch'); each name once, from CHECK_NAMES."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names or any(name not in CHECK_NAMES for name in names):
        raise CostlabError(f"bad --check {text!r}: expected a comma-separated list of {', '.join(CHECK_NAMES)}")
    return tuple(dict.fromkeys(names))


def add_convention_option(parser: argparse.ArgumentParser) -> None:
    """--convention (compare and analyze): what another tool would report, beside costlab's MACs."""
    parser.add_argument("--convention", choices=CONVENTION_NAMES, metavar="TOOL",
                        help="also report what TOOL would count for each target, with the rules "
                             f"that explain the difference ({', '.join(CONVENTION_NAMES)})")


def split_inputs(texts: Sequence[str] | None, batch: int) -> tuple[tuple[int, ...] | None, Any]:
    """--input given once as CxHxW → (that shape, None); typed or repeated → (None, Inputs)."""
    texts = list(texts or [])
    if not texts:
        return None, None
    from ..core.inputs import is_typed, parse_inputs  # not imported without --input (the default path)

    if len(texts) == 1 and not is_typed(texts[0]):
        return parse_input(texts[0]), None
    return None, parse_inputs(texts, batch)


def requests_from_args(args: argparse.Namespace, targets: Sequence[str],
                       default_input: tuple[int, ...] | None = None) -> list[Request]:
    """The command line's one resolution of what to price: a :class:`Request` per target, every
    option read and checked here (and nowhere after)."""
    shape, inputs = split_inputs(args.input, args.batch)
    if shape is None and inputs is None:
        shape = default_input
    timed = bool(getattr(args, "latency", None))
    if (getattr(args, "check", None) or timed) and (inputs is not None or any(map(is_hf, targets))):
        raise UsageError("--check and --latency take one --input CxHxW (typed inputs and hf: targets are "
                         "counted only)")
    options = parse_options(args.kwarg)
    checks = parse_checks(args.check) if getattr(args, "check", None) is not None else ()
    if getattr(args, "optimizer", None) and not getattr(args, "memory", False):
        raise UsageError("--optimizer needs --memory")
    memory = (args.optimizer or "adam") if getattr(args, "memory", False) else None
    predict_on = prediction_device(args)
    predict = None
    if predict_on is not None:
        from .pipeline import prediction_step

        predict = prediction_step(predict_on, args.threads)
    steps = Steps(freeze=getattr(args, "freeze", None), check=checks, convention=getattr(args, "convention", None),
                  memory=memory, timed=timed, predict=predict)
    return [Request.of(target, shape, inputs=inputs, batch=args.batch, dtype=args.dtype, seq=seq, options=options,
                       steps=steps, head=getattr(args, "head", None), generate=getattr(args, "generate", None))
            for target, seq in zip(targets, seq_among(targets, args.seq))]


def _targets(args: argparse.Namespace, targets: Sequence[str],
             default_input: tuple[int, ...] | None = None) -> list[Analysis]:
    from .pipeline import prepare

    requests = requests_from_args(args, targets, default_input)
    checks = requests[0].steps.check if requests else ()
    session = _progress(args, len(requests) * len(checks), "--check", "check") if checks else nullcontext(None)
    with session as advance:
        prepared = [prepare(request, progress=advance) for request in requests]
    analyses = [analysis for analysis, _ in prepared]
    if getattr(args, "latency", None):
        analyses = _measure_latency(args, analyses, [module for _, module in prepared])
    return analyses


def _exit_code(args: argparse.Namespace, analyses: Sequence[Analysis]) -> int:
    """1 under --strict when a check found an unexplained difference or a count misses an op that
    multiplies (its MACs a lower bound), else 0."""
    if not getattr(args, "strict", False):
        return 0
    return int(any((a.checks and a.checks.unexplained()) or not a.complete for a in analyses))


def _progress_bar(args: argparse.Namespace, total: int, description: str,
                  unit: str = "timing") -> tuple[Any, Callable[[str], None]]:
    """A tqdm bar on the command's stderr and the callback that advances it: the one progress bar of
    every step that can take seconds (latency, calibration, --check, sweep, report). Drawn only when
    stderr is a terminal and --quiet is not given (never into a captured stream, a file or JSON)."""
    from tqdm import tqdm

    stream = getattr(args, "progress_stream", None) or sys.stderr
    try:
        terminal = bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or file-like stream without isatty
        terminal = False
    bar = tqdm(total=total, file=stream, desc=description, unit=unit, leave=False,
               disable=bool(getattr(args, "quiet", False)) or not terminal, dynamic_ncols=True)

    def advance(label: str) -> None:
        if bar.total is not None and bar.n >= bar.total:  # a timing taken again (the CPU was contended)
            bar.total = bar.n + 1
        bar.set_postfix_str(label[-48:], refresh=False)
        bar.update(1)
    return bar, advance


@contextmanager
def _progress(args: argparse.Namespace, total: int, description: str, unit: str) -> Iterator[Callable[[str], None]]:
    """:func:`_progress_bar` as a context: the callback, and the bar closed on exit."""
    bar, advance = _progress_bar(args, total, description, unit)
    try:
        yield advance
    finally:
        bar.close()


@contextmanager
def _latency_session(args: argparse.Namespace, dtype: str, timings: int) -> Iterator[tuple[Any, Callable[[str], None]]]:
    """The roofline peaks (cached, else calibrated now) and a progress callback for ``timings``
    timings; the bar covers the calibration too and is closed on exit (torch imported here)."""
    from ..torch_bridge.latency import torch_dtype
    from ..torch_bridge.roofline import CALIBRATION_STEPS, cached_peaks, calibrate

    torch_dtype(dtype)
    peaks = cached_peaks(args.latency, args.threads, dtype)
    bar, advance = _progress_bar(args, timings + (0 if peaks else CALIBRATION_STEPS), f"latency on {args.latency}")
    try:
        if peaks is None:
            peaks, _ = calibrate(args.latency, args.threads, dtype, progress=advance)
        yield peaks, advance
    finally:
        bar.close()


def _measure_latency(args: argparse.Namespace, analyses: list[Analysis], modules: Sequence[Any]) -> list[Analysis]:
    """--latency: time each target (and its layers: analyze, compare --per-layer) on the device,
    with the roofline; a module target is timed on the module the pipeline built for it."""
    from ..torch_bridge.latency import LatencySettings, check_memory, measure_latency, measurement_count, torch_dtype
    from ..torch_bridge.timing import check_device

    device = check_device(args.latency)
    for analysis in analyses:  # refused before the progress bar starts and before anything is allocated
        if analysis.layers:
            check_memory(analysis, device, torch_dtype(analysis.dtype))
    per_layer = getattr(args, "per_layer", True)  # compare times layers only with --per-layer; analyze always
    with _latency_session(args, args.dtype, sum(measurement_count(a, per_layer) for a in analyses)) \
            as (peaks, advance):
        settings = LatencySettings(device=args.latency, threads=args.threads, per_layer=per_layer)
        from .pipeline import with_measured_prediction

        return [with_measured_prediction(measure_latency(a, settings, module=module, peaks=peaks, progress=advance))
                for a, module in zip(analyses, modules)]


# --- memory (--memory, --optimizer) ---------------------------------------------------------

OPTIMIZER_NAMES = ("sgd", "momentum", "adam", "adamw")


def add_memory_options(parser: argparse.ArgumentParser) -> None:
    """--memory and --optimizer (compare and analyze): bytes held at inference and in a training step."""
    parser.add_argument("--memory", action="store_true",
                        help="add weights, the inference peak and the training-step peak in bytes "
                             "(liveness over the layer graph; costlab.analyses.memory)")
    parser.add_argument("--optimizer", choices=OPTIMIZER_NAMES, metavar="sgd|momentum|adam",
                        help="with --memory: the optimizer of the training step (default adam; adamw "
                             "holds what adam holds)")


# --- commands ----------------------------------------------------------------------------

def _compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("targets", nargs="*", metavar="TARGET",
                        help="presets, expressions, spec files or package.module:callable; none: "
                             "the 5×5 convolution on 28×28×192 without and with a 1×1 bottleneck")
    add_target_options(parser)
    add_convention_option(parser)
    add_memory_options(parser)
    parser.add_argument("--per-layer", action="store_true", help="add each layer with its formula")
    add_view_options(parser)


def run_compare(args: argparse.Namespace) -> tuple[str, int]:
    if args.targets:
        analyses = _targets(args, args.targets)
    else:
        analyses = _targets(args, DEFAULT_TARGETS, DEFAULT_INPUT)
    comparison = Comparison(tuple(analyses), args.unit)
    return (render_comparison(comparison, args.format, args.per_layer, table_width(args), args.exact),
            _exit_code(args, analyses))


def _analyze_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="TARGET")
    add_target_options(parser)
    add_convention_option(parser)
    add_memory_options(parser)
    parser.add_argument("--depth", type=_positive_int, metavar="N",
                        help="fold layers below N name levels into their blocks, with subtotals")
    add_view_options(parser)


def run_analyze(args: argparse.Namespace) -> tuple[str, int]:
    (analysis,) = _targets(args, [args.target])
    return (render_analysis(analysis, args.format, args.depth, args.unit, table_width(args), args.exact),
            _exit_code(args, [analysis]))


def _list_arguments(parser: argparse.ArgumentParser) -> None:
    add_output_options(parser)
    add_view_options(parser)


def _sweep_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("targets", nargs="+", metavar="TARGET",
                        help="series: a template with {NAME} placeholders, a preset (NAME is its "
                             "option), or a fixed reference target")
    parser.add_argument("--param", required=True, metavar="NAME=VALUES", action=_Once,
                        help="the swept parameter: start:stop:step (inclusive), start:stop or a,b,c; "
                             "NAME input, batch or freeze varies the analysis itself")
    add_target_options(parser)
    parser.set_defaults(format=Format.CSV.value)
    parser.add_argument("--plot", metavar="PATH", help="also draw a PNG line plot there (needs matplotlib)")
    parser.add_argument("--y", metavar="COLUMN",
                        help="the column --plot draws (default macs, or flops with --unit flops)")


def run_sweep(args: argparse.Namespace) -> tuple[str, int]:
    from .sweep import parse_param, render_sweep, run_sweep as sweep, sweep_png

    if getattr(args, "check", None) is not None or getattr(args, "strict", False):  # shared options: refuse, never ignore
        raise CostlabError("sweep does not cross-check; run compare or analyze with --check")
    if args.plot is not None:
        check_writable(args.plot, "--plot")
    param = parse_param(args.param)
    session = (_latency_session(args, args.dtype, len(param.values) * len(args.targets)) if args.latency
               else nullcontext(None))
    predict_on = prediction_device(args)
    points = (nullcontext(None) if args.latency
              else _progress(args, len(param.values) * len(args.targets), "sweep", "point"))
    with session as timing, points as advance:
        measures = (_latency_measure(args, *timing),) if timing is not None else ()
        if predict_on is not None:
            measures = (_prediction_measure(args, predict_on),) + measures
        shape, typed = split_inputs(args.input, args.batch)
        if typed is not None:
            raise UsageError("sweep takes one --input CxHxW")
        result = sweep(args.targets, param, shape, args.batch, args.dtype, parse_options(args.kwarg),
                       args.freeze, args.unit, measures, seq=args.seq, progress=advance)
    text = render_sweep(result, args.format)
    if args.plot is not None:
        write_atomically(args.plot, sweep_png(result, args.y), "--plot")
    elif args.y:
        raise CostlabError("--y chooses what --plot draws; give --plot PATH")
    return text, 0


def _latency_measure(args: argparse.Namespace, peaks: Any, advance: Callable[[str], None]) -> Any:
    """sweep --latency: a Measure timing each point's whole target (median and IQR, in ms)."""
    from .sweep import Measure
    from ..torch_bridge.latency import LatencySettings, measure_latency

    settings = LatencySettings(device=args.latency, threads=args.threads, per_layer=False)

    def timed(analysis: Analysis, module: Any) -> dict[str, Any]:
        latency = measure_latency(analysis, settings, module=module, peaks=peaks, progress=advance).latency
        assert latency is not None
        return {"latency_ms": latency.median, "latency_iqr_ms": latency.iqr, "latency_noisy": latency.noisy}

    return Measure(f"latency on {args.latency}", ("latency_ms", "latency_iqr_ms", "latency_noisy"), timed,
                   plot_column="latency_ms", axis_label=f"latency on {args.latency} (ms)")


def _prediction_measure(args: argparse.Namespace, device: str) -> Any:
    """sweep --predict: a Measure predicting each point's latency (ms) from the kernel calibration."""
    from .pipeline import prediction_step
    from .sweep import Measure

    step = prediction_step(device, args.threads)

    def predicted(analysis: Analysis, module: Any) -> dict[str, Any]:
        prediction = step(analysis).prediction
        assert prediction is not None
        return {"predicted_latency_ms": prediction.total_ms}

    return Measure(f"predicted latency on {device}", ("predicted_latency_ms",), predicted,
                   plot_column="predicted_latency_ms", axis_label=f"predicted latency on {device} (ms)")


def run_list(args: argparse.Namespace) -> tuple[str, int]:
    from ..render.report import preset_list

    return preset_list([build_preset(name) for name in PRESETS], [p.summary for p in PRESETS.values()],
                       args.format, table_width(args), args.exact), 0


#: `costlab report` writes here (relative to the working directory) unless --output-dir says otherwise.
REPORT_DIRECTORY = "reports"


def _report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output-dir", default=REPORT_DIRECTORY, metavar="DIR",
                        help="where to write the reports, created if missing (default: ./reports, "
                             "named in the output)")
    add_latency_options(parser)


def run_report(args: argparse.Namespace) -> tuple[str, int]:
    """The directory is made first (so that one that cannot be is refused before any work), then
    every report (counted, and measured with --latency), then all are written: a run that fails, or
    is interrupted, writes nothing and removes the directories it made."""
    from .reports import build_reports

    directory = args.output_dir
    if not directory:
        raise CostlabError("--output-dir needs a directory")
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise CostlabError(f"cannot write --output-dir {directory}: it is not a directory")
    ancestor = os.path.dirname(os.path.abspath(directory))
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(directory) and not (os.path.isdir(ancestor) and os.access(ancestor, os.W_OK)):
        raise CostlabError(f"cannot write --output-dir {directory}: cannot create it under {ancestor}")
    if args.latency:
        from ..torch_bridge.timing import check_device

        check_device(args.latency)  # before the count reports are made
    from . import plots
    from ..core.extras import install_command
    from .reports import REPORTS

    created = _make_directories(directory)  # tried for real before any report is built (/proc/nope)
    try:
        drawn = plots.plotting_available()
        with _progress(args, len(REPORTS) + (len(plots.PICTURES) if drawn else 0), "report", "report") as advance:
            texts: dict[str, str | bytes] = {file.path: file.text for file in build_reports(progress=advance)}
            if drawn:
                texts.update(plots.build_pictures(progress=advance))
        if args.latency:
            texts.update(_latency_reports(args, directory))
        paths = [os.path.join(directory, name) for name in texts]
        for path in paths:
            check_writable(path, "--output-dir")
    except BaseException:
        for made in reversed(created):  # nothing left on disk by a run that failed
            try:
                os.rmdir(made)
            except OSError:
                pass
        raise
    for path, text in zip(paths, texts.values()):
        write_atomically(path, text, "--output-dir")
    default = " (the default; --output-dir DIR writes elsewhere)" if directory == REPORT_DIRECTORY else ""
    undrawn = "" if drawn else f"pictures not redrawn: matplotlib is not installed ({install_command('plot')})\n"
    return (f"costlab report: {len(paths)} files in {os.path.abspath(directory)}{default}\n"
            + "".join(f"wrote {path}\n" for path in paths) + undrawn), 0


def _make_directories(directory: str) -> list[str]:
    """Create ``directory`` and its missing parents; the ones created, outermost first."""
    missing = []
    path = os.path.abspath(directory)
    while not os.path.exists(path):
        missing.append(path)
        path = os.path.dirname(path)
    created: list[str] = []
    for path in reversed(missing):
        try:
            os.mkdir(path)
        except OSError as error:
            for made in reversed(created):
                os.rmdir(made)
            raise CostlabError(f"cannot write --output-dir {directory}: cannot create it: {error.strerror}") from None
        created.append(path)
    return created


def _latency_reports(args: argparse.Namespace, directory: str) -> dict[str, str]:
    """report --latency: the two canonical comparisons and the augmentations measured here, by file
    name (torch imported here); the files' paths are checked before anything is measured."""
    from .latency_augmentation import (AUGMENTATION_MEASUREMENTS, augmentation_latency_markdown,
                                              measure_augmentations)
    from .latency_report import LATENCY_CASES, case_measurement_count, latency_report, report_filename

    augmentation_file = f"latency-augmentation{'' if args.latency == 'cpu' else '-' + args.latency}.md"
    for filename in [report_filename(case, args.latency) for case in LATENCY_CASES.values()] + [augmentation_file]:
        check_writable(os.path.join(directory, filename), "--output-dir")
    total = sum(case_measurement_count(case) for case in LATENCY_CASES.values()) + AUGMENTATION_MEASUREMENTS
    command = f"costlab report --latency {args.latency}" + (f" --threads {args.threads}" if args.threads else "")
    from ..torch_bridge.calibration import cached_calibration

    calibration = cached_calibration(args.latency, args.threads, "float32")  # the predicted ratio, when there is one
    with _latency_session(args, "float32", total) as (peaks, advance):
        texts = {report_filename(case, args.latency):
                 latency_report(name, args.latency, args.threads, peaks=peaks, progress=advance, command=command,
                                min_cpu_share=LATENCY_MIN_CPU_SHARE, attempts=LATENCY_ATTEMPTS,
                                calibration=calibration)
                 for name, case in LATENCY_CASES.items()}
        texts[augmentation_file] = augmentation_latency_markdown(
            measure_augmentations(args.latency, args.threads, progress=advance), command=command)
    return texts


#: report --latency measures a report again while other work holds the CPU (CPU share below this).
LATENCY_MIN_CPU_SHARE = 0.75
LATENCY_ATTEMPTS = 3


def _claims_arguments(parser: argparse.ArgumentParser) -> None:
    add_output_options(parser)
    parser.add_argument("--wide", action="store_true",
                        help="terminal table: the figures' full texts, however wide (default: cut to "
                             "fit the terminal, $COLUMNS or 80)")


def run_claims(args: argparse.Namespace) -> tuple[str, int]:
    from .claims import check_claims, render_claims

    return render_claims(check_claims(), args.format, table_width(args)), 0


def _calibrate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--threads", type=_thread_count, metavar="N",
                        help="CPU threads (default: torch's); the peaks are cached per thread count")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16", "float64"],
                        help="element type of the matrix product and the kernels (default float32)")
    parser.add_argument("--budget", type=_seconds, metavar="SECONDS",
                        help="seconds for the whole calibration, peaks included (default "
                             f"{CALIBRATION_BUDGET_S:.0f}); the kernel families are sampled in turn, so a short "
                             "budget samples each more thinly")
    parser.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    add_output_options(parser)


#: costlab.torch_bridge.calibration.DEFAULT_BUDGET_S, named here so that the parser imports nothing
#: (tests/test_prediction.py holds the two equal).
CALIBRATION_BUDGET_S = 150.0


def _seconds(text: str) -> float:
    """--budget: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def run_calibrate(args: argparse.Namespace) -> tuple[str, int]:
    """The peaks, then the kernel families for the rest of the budget; both cached unless contended."""
    from ..render.report import render_peaks
    from ..torch_bridge.calibration import calibrate_kernels
    from ..torch_bridge.timing import check_device

    check_device(args.device, "--device")  # before the bar: an error is the only line on stderr
    budget = args.budget if args.budget is not None else CALIBRATION_BUDGET_S
    bar, advance = _progress_bar(args, 0, f"calibrating {args.device} ({budget:.0f} s)")
    bar.total = None
    try:
        calibration, peaks_path, path = calibrate_kernels(args.device, args.threads, args.dtype, budget,
                                                          progress=advance)
    finally:
        bar.close()
    return render_peaks(calibration.peaks.to_dict(), str(peaks_path) if peaks_path is not None else None, args.format,
                        calibration=calibration, calibration_path=str(path) if path is not None else None), 0


def _help_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("topic", nargs="?", metavar="TOPIC", help="expressions: the layer-stack grammar")


def run_help(args: argparse.Namespace) -> tuple[str, int]:
    from ..render.help_topics import help_text

    return help_text(args.topic), 0


#: Under every --help: where the grammar and the documentation are.
EPILOG = ("Expressions: `costlab help expressions` prints the grammar with examples. Documentation: "
          "docs/cli.md, docs/cost-model.md, docs/python-api.md (source distribution and repository).")

COMMANDS: tuple[Command, ...] = (
    Command("compare", "side-by-side cost of targets (default: the inception 5×5 bottleneck case)",
            _compare_arguments, run_compare),
    Command("analyze", "per-layer cost of one target", _analyze_arguments, run_analyze),
    Command("list", "the presets, with their default input, params and MACs", _list_arguments, run_list),
    Command("report", "regenerate every committed report under reports/", _report_arguments, run_report),
    Command("claims", "check the source text's numeric claims by computing each with costlab",
            _claims_arguments, run_claims),
    Command("sweep", "vary one parameter (a placeholder, a preset option, input, batch, freeze) and "
            "tabulate the cost; CSV by default, --plot for a PNG", _sweep_arguments, run_sweep),
    Command("calibrate", "measure this machine's peak GFLOP/s and GB/s for the roofline and time sampled layers "
            "of every kernel family for --predict (at most --budget seconds), and cache them",
            _calibrate_arguments, run_calibrate),
    Command("help", "the expression grammar with examples (costlab help expressions)", _help_arguments, run_help),
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="What will this layer design cost? MACs, parameters and "
                                            "memory of CNN layers, blocks and architectures.", epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for command in COMMANDS:
        sub = commands.add_parser(command.name, help=command.help, description=command.help, epilog=EPILOG)
        command.add_arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


def _version() -> str:
    from .. import __version__

    return __version__


# --- output --------------------------------------------------------------------------------

def _resolved(path: str, option: str = "--output") -> str:
    """Where writing ``path`` lands: a symlink's target (followed to the end), else the path itself —
    also where the target has no name to follow (/dev/stdout on a pipe: /proc/self/fd/1 → 'pipe:[…]').
    A symlink loop is refused as a shell redirect refuses it (ELOOP)."""
    if not os.path.islink(path):
        return path
    try:
        os.stat(path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise CostlabError(f"cannot write {option} {path}: {error.strerror}") from None
    real = os.path.realpath(path)
    return real if os.path.exists(real) or not os.path.exists(path) else path


def check_writable(path: str, option: str = "--output") -> None:
    """Fail before any work if ``path`` cannot be written (a symlink is judged by its target)."""
    if not path:
        raise CostlabError(f"{option} needs a path, got ''")
    target = _resolved(path, option)
    directory = os.path.dirname(os.path.abspath(target))
    if os.path.isdir(target):
        raise CostlabError(f"cannot write {option} {path}: it is a directory")
    if os.path.exists(target) and not os.path.isfile(target):  # a device or FIFO: written into
        if not os.access(target, os.W_OK):
            raise CostlabError(f"cannot write {option} {path}: permission denied")
        return
    if not os.path.isdir(directory):
        raise CostlabError(f"cannot write {option} {path}: no directory {directory}")
    if not os.access(directory, os.W_OK):
        raise CostlabError(f"cannot write {option} {path}: directory {directory} is not writable")


def _umask() -> int:
    """The process's umask (read by setting it and setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomically(path: str, data: str | bytes, option: str = "--output") -> None:
    """Write text (UTF-8) or bytes to ``path`` as a shell redirect would, never destroying what is there.

    A regular file (or a new path) gets a temporary file beside it renamed into place, with the
    existing file's mode or, for a new file, the mode the umask gives (0666 & ~umask); a symlink
    is followed and its target written the same way (the link stays), a symlink loop refused
    (ELOOP); a device, a FIFO or a file with several hard links is opened and written into (the
    same inode, as ``>`` would), never replaced.
    """
    import tempfile  # only when writing a file: `costlab compare` to stdout does without it

    payload = data.encode("utf-8") if isinstance(data, str) else data
    target = _resolved(path, option)
    try:
        existing = os.stat(target)
    except OSError:
        existing = None
    # a device or FIFO is written into; so is a file with other hard links, which a rename would
    # split from them (its text is whole in memory already, so nothing is left half-written by us)
    if existing is not None and (not stat.S_ISREG(existing.st_mode) or existing.st_nlink > 1):
        try:
            with open(target, "wb") as stream:
                stream.write(payload)
        except OSError as error:
            raise CostlabError(f"cannot write {option} {path}: {error.strerror}") from None
        return
    directory = os.path.dirname(os.path.abspath(target))
    try:
        handle, temporary = tempfile.mkstemp(prefix=".costlab-", dir=directory)
    except OSError as error:
        raise CostlabError(f"cannot write {option} {path}: {error.strerror}") from None
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
        os.chmod(temporary, stat.S_IMODE(existing.st_mode) if existing is not None else 0o666 & ~_umask())
        os.replace(temporary, target)
    except OSError as error:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise CostlabError(f"cannot write {option} {path}: {error.strerror}") from None


_DASH_VALUE = re.compile(r"-[0-9.]")


def _attach_dash_values(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """``--input -3x32x32`` → ``--input=-3x32x32``: a value that starts with '-' and a digit after an
    option that takes one, so that the option's own check names it (argparse would take it for an
    option and say only "expected one argument")."""
    takes_value = {option for action in _all_actions(parser) if action.nargs is None and action.option_strings
                   for option in action.option_strings}
    joined: list[str] = []
    index = 0
    while index < len(argv):
        token = argv[index]
        if token == "--":
            return joined + argv[index:]
        if token in takes_value and index + 1 < len(argv) and _DASH_VALUE.match(argv[index + 1]):
            joined.append(f"{token}={argv[index + 1]}")
            index += 2
            continue
        joined.append(token)
        index += 1
    return joined


def _all_actions(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    """Every action of ``parser`` and of its subcommands' parsers."""
    for action in parser._actions:
        yield action
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _all_actions(sub)


def _exit_message(code: object) -> str:
    """What ``sys.exit(code)`` called by the user's code means, in one line."""
    if code is None or isinstance(code, int):
        return f"the target's code called sys.exit({code!r}) (exit status {code or 0})"
    return f"the target's code called sys.exit: {' '.join(str(code).split())}"


def _silence_stream(stream: TextIO) -> None:
    """Point a real stream's descriptor at /dev/null, so that the interpreter's final flush of
    what could not be written raises nothing more (a full disk, a closed pipe)."""
    try:
        descriptor = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, descriptor)
    os.close(null)


def _one_line(message: str) -> str:
    return " ".join(message.split())


class _UserExit(BaseException):
    """The target's code called ``os._exit`` (turned into an error; the process goes on). A
    BaseException, so that no ``except Exception`` of the user's or ours takes it for a failure."""

    def __init__(self, status: object) -> None:
        super().__init__(status)
        self.status = status


def _refuse_exit(status: object = 0) -> None:
    raise _UserExit(status)


def _flush_python_stdouts() -> None:
    for stream in {id(s): s for s in (sys.stdout, sys.__stdout__) if s is not None}.values():
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


@contextmanager
def _user_code_contained() -> Iterator[None]:
    """While the target's code runs: file descriptor 1 points at stderr (``os.write(1, …)``,
    ``print(file=sys.__stdout__)`` and child processes' output stay out of the result, which is
    written after it is pointed back), and ``os._exit`` raises instead of ending the process."""
    saved_exit = os._exit
    os._exit = _refuse_exit  # type: ignore[assignment]
    try:
        saved = os.dup(1)
    except OSError:  # descriptor 1 is closed: nothing of the user's can reach it either
        saved = None
    try:
        if saved is not None:
            _flush_python_stdouts()
            try:
                os.dup2(2, 1)
            except OSError:
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, 1)
                os.close(null)
        yield
    finally:
        os._exit = saved_exit  # type: ignore[assignment]
        if saved is not None:
            _flush_python_stdouts()  # what the user printed to sys.__stdout__ goes to stderr too
            os.dup2(saved, 1)
            os.close(saved)


def _write_line(stream: TextIO | None, line: str) -> None:
    """One line to ``stream`` in any encoding it has (what it cannot encode is escaped); nothing
    when the stream is closed."""
    if stream is None:
        return
    try:
        stream.write(line)
        stream.flush()
    except UnicodeEncodeError:
        encoding = getattr(stream, "encoding", None) or "ascii"
        try:
            stream.write(line.encode(encoding, "backslashreplace").decode(encoding))
            stream.flush()
        except (OSError, ValueError):
            pass
    except (OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    """Run the command line; returns the exit code.

    While a command runs, what the user's code prints goes to stderr (stdout holds only the
    result) and warnings are collected: after a success each is one ``costlab: warning:`` line,
    after an error only the error line is written.
    """
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(_attach_dash_values(parser, list(sys.argv[1:] if argv is None else argv)))
        except SystemExit as exit_:  # --help and --version
            return exit_.code if isinstance(exit_.code, int) else 0
        if getattr(args, "run", None) is None:
            out.write(parser.format_help())
            return 0
        if getattr(args, "output", None) is not None:
            check_writable(args.output)
        if out is None and getattr(args, "output", None) is None:  # started with stdout closed (>&-)
            raise CostlabError("cannot write to standard output: it is closed (give --output FILE)")
        args.progress_stream = err  # progress bars go where errors go
        with warnings.catch_warnings(record=True) as caught, redirect_stdout(err or io.StringIO()), \
                _user_code_contained():  # filters as they are
            try:
                text, code = args.run(args)
            except SystemExit as exit_:  # the user's callable or module called sys.exit
                raise CostlabError(_exit_message(exit_.code)) from None
            except _UserExit as exit_:
                raise CostlabError(f"the target's code called os._exit({exit_.status!r})") from None
            except RecursionError:
                raise CostlabError("the input is nested too deeply to analyse") from None
            except (KeyboardInterrupt, CostlabError):
                raise
            except BaseException as error:  # noqa: BLE001 - GeneratorExit or the user's own BaseException
                if isinstance(error, Exception):
                    raise
                raise CostlabError(f"the target's code raised {type(error).__name__}"
                                   f"{': ' + str(error) if str(error) else ''}") from None
        for warning in caught:
            _write_line(err, f"{PROG}: warning: {_one_line(str(warning.message))}\n")
        if getattr(args, "output", None) is not None:
            write_atomically(args.output, text)
        else:
            encoding = getattr(out, "encoding", None)
            if encoding:  # refused whole before any of it is written
                try:
                    text.encode(encoding)
                except UnicodeEncodeError as error:
                    raise CostlabError(f"cannot write to standard output in its encoding {encoding} "
                                       f"({error.reason} at character {error.start}; set PYTHONIOENCODING=utf-8 "
                                       "or give --output FILE)") from None
                except LookupError:
                    pass
            try:
                out.write(text)
                out.flush()
            except BrokenPipeError:
                _silence_stream(out)
                return 0
            except OSError as error:
                _silence_stream(out)
                raise CostlabError(f"cannot write to standard output: {error.strerror or error}") from None
        return code
    except CostlabError as error:
        _write_line(err, f"{PROG}: error: {_one_line(str(error))}\n")
        return 2
    except KeyboardInterrupt:
        _write_line(err, f"{PROG}: interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
