"""The command line: a thin layer over the library. The only code that prints or picks exit codes.

Exit codes: 0 done; 1 a check found an unexplained disagreement (``--strict``);
2 bad input (one line ``costlab: error: …`` on stderr, no traceback, nothing half-written).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence, TextIO

from .analysis import Analysis, Comparison
from .errors import CostlabError
from .report import FORMATS, render_analysis, render_comparison
from .targets import (DEFAULT_INPUT, DEFAULT_TARGETS, analyze_target, is_module_target, parse_input,
                      parse_options)
from .zoo import PRESETS, build_preset

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
    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=FORMATS, default="table",
                        help="table (terminal), md (Markdown), csv or json (default: table)")
    parser.add_argument("--output", metavar="PATH",
                        help="write to PATH (atomically: a temporary file renamed into place)")


def add_target_options(parser: argparse.ArgumentParser) -> None:
    """Options every command that prices targets takes."""
    parser.add_argument("--input", action="append", metavar="SPEC",
                        help="input per sample: CxHxW (float32, e.g. 3x224x224); for module targets also "
                             "DTYPE:SHAPE (int64:128), NAME=DTYPE:SHAPE for a keyword (input_ids=int64:128) "
                             "and list:SHAPE for a list of --batch tensors; repeatable, in the forward's order")
    parser.add_argument("--seq", type=_positive_int, metavar="N",
                        help="tokens per sample of an hf: text model (default 128)")
    parser.add_argument("--batch", type=_positive_int, default=1, metavar="N", help="batch size (default 1)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16",
                                                               "float64", "int8"],
                        help="element type for the bytes column (default float32)")
    parser.add_argument("--kwarg", action="append", default=[], metavar="K=V",
                        help="option for presets and package.module:callable targets (repeatable)")
    parser.add_argument("--unit", choices=["macs", "flops"], default="macs",
                        help="macs (default) or flops = 2 × MACs")
    parser.add_argument("--freeze", metavar="N|F|NAME",
                        help="price one training step with a leading part frozen: the first N layers "
                             "with parameters, a fraction F of them (0.9), or everything before the "
                             "layer or block NAME (fc: retrain the last layer); 0 trains everything")
    parser.add_argument("--check", metavar="TOOL,...",
                        help="cross-check every count against the real tools (fvcore, torch, ptflops, thop, "
                             "torchinfo, torchprofile; comma-separated), each beside what its own rules "
                             "predict: per layer for fvcore and torch, in total for the others (imports torch)")
    parser.add_argument("--strict", action="store_true",
                        help="with --check: exit 1 when a difference is not explained by a named convention")
    add_latency_options(parser)
    add_output_options(parser)


def add_latency_options(parser: argparse.ArgumentParser) -> None:
    """--latency, --threads, --quiet: measured latency and the roofline beside the counts."""
    parser.add_argument("--latency", choices=["cpu", "cuda"], metavar="cpu|cuda",
                        help="build the real modules and measure the latency of each target and layer "
                             "on this device, with the roofline bound of each layer")
    parser.add_argument("--threads", type=_positive_int, metavar="N",
                        help="CPU threads while measuring (torch.set_num_threads; default: torch's)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar on stderr")


#: The tools --check runs (costlab.torch_bridge.crosscheck.CHECKS, named here so that torch loads only when used).
CHECK_NAMES = ("fvcore", "torch", "ptflops", "thop", "torchinfo", "torchprofile")


def parse_checks(text: str) -> tuple[str, ...]:
    """'fvcore,torch' → ('fvcore', 'torch'); each name once, from CHECK_NAMES."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names or any(name not in CHECK_NAMES for name in names):
        raise CostlabError(f"bad --check {text!r}: expected a comma-separated list of {', '.join(CHECK_NAMES)}")
    return tuple(dict.fromkeys(names))


#: The tools of costlab.conventions.CONVENTIONS (named here so that the module loads only when used).
CONVENTION_NAMES = ("fvcore", "ptflops", "thop", "torchinfo", "torchvision", "torchprofile", "torch")


def add_convention_option(parser: argparse.ArgumentParser) -> None:
    """--convention (compare and analyze): what another tool would report, beside costlab's MACs."""
    parser.add_argument("--convention", choices=CONVENTION_NAMES, metavar="TOOL",
                        help="also report what TOOL would count for each target, with the rules "
                             f"that explain the difference ({', '.join(CONVENTION_NAMES)})")


def split_inputs(texts: Sequence[str] | None, batch: int) -> tuple[tuple[int, ...] | None, Any]:
    """--input given once as CxHxW → (that shape, None); typed or repeated → (None, Inputs)."""
    from .inputs import is_typed, parse_inputs

    texts = list(texts or [])
    if len(texts) == 1 and not is_typed(texts[0]):
        return parse_input(texts[0]), None
    return None, (parse_inputs(texts, batch) if texts else None)


def _targets(args: argparse.Namespace, targets: Sequence[str],
             default_input: tuple[int, ...] | None = None) -> list[Analysis]:
    shape, inputs = split_inputs(args.input, args.batch)
    if shape is None and inputs is None:
        shape = default_input
    if (getattr(args, "check", None) or getattr(args, "latency", None)) and (
            inputs is not None or any(str(t).strip().startswith("hf:") for t in targets)):
        raise UsageError("--check and --latency take one --input CxHxW (typed inputs and hf: targets are "
                         "counted only)")
    options = parse_options(args.kwarg)
    checks = parse_checks(args.check) if getattr(args, "check", None) else ()
    if getattr(args, "strict", False) and not checks:
        raise UsageError("--strict needs --check")
    analyses = [analyze_target(t, shape, args.batch, args.dtype, options, inputs=inputs, seq=args.seq)
                for t in targets]
    if getattr(args, "freeze", None) is not None:
        from .training import parse_freeze, with_training

        freeze = parse_freeze(args.freeze)
        analyses = [with_training(a, freeze) for a in analyses]
    if checks:
        from .targets import check_target  # torch is imported only there

        analyses = [check_target(a, t, options, checks) for a, t in zip(analyses, targets)]
    if getattr(args, "convention", None):
        analyses = [a.with_convention(args.convention) for a in analyses]
    analyses = _with_memory(args, targets, analyses)
    if getattr(args, "latency", None):
        analyses = _measure_latency(args, targets, analyses)
    return analyses


def _exit_code(args: argparse.Namespace, analyses: Sequence[Analysis]) -> int:
    """1 under --strict when a check found an unexplained difference, else 0."""
    if not getattr(args, "strict", False):
        return 0
    return int(any(isinstance(entry, dict) and entry.get("agreement") == "unexplained"
                   for a in analyses for entry in a.checks.values()))


def _progress_bar(args: argparse.Namespace, total: int, description: str) -> tuple[Any, Callable[[str], None]]:
    """A tqdm bar on the command's stderr (off with --quiet) and the callback that advances it."""
    from tqdm import tqdm

    bar = tqdm(total=total, file=getattr(args, "progress_stream", None) or sys.stderr, desc=description,
               unit="timing", leave=False, disable=bool(getattr(args, "quiet", False)), dynamic_ncols=True)

    def advance(label: str) -> None:
        bar.set_postfix_str(label[-48:], refresh=False)
        bar.update(1)
    return bar, advance


@contextmanager
def _latency_session(args: argparse.Namespace, dtype: str, timings: int) -> Iterator[tuple[Any, Callable[[str], None]]]:
    """The roofline peaks (cached, else calibrated now) and a progress callback for ``timings``
    timings; the bar covers the calibration too and is closed on exit (torch imported here)."""
    from .torch_bridge.latency import torch_dtype
    from .torch_bridge.roofline import CALIBRATION_STEPS, cached_peaks, calibrate

    torch_dtype(dtype)
    peaks = cached_peaks(args.latency, args.threads, dtype)
    bar, advance = _progress_bar(args, timings + (0 if peaks else CALIBRATION_STEPS), f"latency on {args.latency}")
    try:
        if peaks is None:
            peaks, _ = calibrate(args.latency, args.threads, dtype, progress=advance)
        yield peaks, advance
    finally:
        bar.close()


def _measure_latency(args: argparse.Namespace, targets: Sequence[str],
                     analyses: list[Analysis]) -> list[Analysis]:
    """--latency: time each target and its layers on the device, with the roofline."""
    from .torch_bridge.latency import LatencySettings, load_module, measure_latency, measurement_count

    options = parse_options(args.kwarg)
    modules = {index: load_module(text, options) for index, (text, analysis) in enumerate(zip(targets, analyses))
               if is_module_target(text) and analysis.kind == "module"}
    with _latency_session(args, args.dtype, sum(measurement_count(a) for a in analyses)) as (peaks, advance):
        settings = LatencySettings(device=args.latency, threads=args.threads)
        return [measure_latency(a, settings, module=modules.get(index), peaks=peaks, progress=advance)
                for index, a in enumerate(analyses)]


# --- memory (--memory, --optimizer) ---------------------------------------------------------

OPTIMIZER_NAMES = ("sgd", "momentum", "adam", "adamw")


def add_memory_options(parser: argparse.ArgumentParser) -> None:
    """--memory and --optimizer (compare and analyze): bytes held at inference and in a training step."""
    parser.add_argument("--memory", action="store_true",
                        help="add weights, the inference peak and the training-step peak in bytes "
                             "(liveness over the layer graph; costlab.memory)")
    parser.add_argument("--optimizer", choices=OPTIMIZER_NAMES, metavar="sgd|momentum|adam",
                        help="with --memory: the optimizer of the training step (default adam; adamw "
                             "holds what adam holds)")


def _with_memory(args: argparse.Namespace, targets: Sequence[str], analyses: list[Analysis]) -> list[Analysis]:
    """--memory: each analysis with its memory; a traced module's in-place activations are read
    from the module (torch imported only then)."""
    if not getattr(args, "memory", False):
        if getattr(args, "optimizer", None):
            raise UsageError("--optimizer needs --memory")
        return analyses
    from .memory import with_memory

    options = parse_options(args.kwarg)
    result = []
    for text, analysis in zip(targets, analyses):
        inplace: tuple[str, ...] = ()
        if analysis.kind == "module" and is_module_target(text):
            from .torch_bridge.latency import load_module
            from .torch_bridge.memory import inplace_layers

            inplace = inplace_layers(load_module(text, options), analysis)
        result.append(with_memory(analysis, args.optimizer or "adam", inplace))
    return result


# --- commands ----------------------------------------------------------------------------

def _compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("targets", nargs="*", metavar="TARGET",
                        help="presets, expressions, spec files or package.module:callable; none: "
                             "the 5×5 convolution on 28×28×192 without and with a 1×1 bottleneck")
    add_target_options(parser)
    add_convention_option(parser)
    add_memory_options(parser)
    parser.add_argument("--per-layer", action="store_true", help="add each layer with its formula")


def run_compare(args: argparse.Namespace) -> tuple[str, int]:
    if args.targets:
        analyses = _targets(args, args.targets)
    else:
        analyses = _targets(args, DEFAULT_TARGETS, DEFAULT_INPUT)
    comparison = Comparison(tuple(analyses), args.unit)
    return render_comparison(comparison, args.format, args.per_layer), _exit_code(args, analyses)


def _analyze_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="TARGET")
    add_target_options(parser)
    add_convention_option(parser)
    add_memory_options(parser)
    parser.add_argument("--depth", type=_positive_int, metavar="N",
                        help="fold layers below N name levels into their blocks, with subtotals")


def run_analyze(args: argparse.Namespace) -> tuple[str, int]:
    (analysis,) = _targets(args, [args.target])
    return render_analysis(analysis, args.format, args.depth, args.unit), _exit_code(args, [analysis])


def _list_arguments(parser: argparse.ArgumentParser) -> None:
    add_output_options(parser)


def _sweep_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("targets", nargs="+", metavar="TARGET",
                        help="series: a template with {NAME} placeholders, a preset (NAME is its "
                             "option), or a fixed reference target")
    parser.add_argument("--param", required=True, metavar="NAME=VALUES",
                        help="the swept parameter: start:stop:step (inclusive), start:stop or a,b,c; "
                             "NAME input, batch or freeze varies the analysis itself")
    add_target_options(parser)
    parser.set_defaults(format="csv")
    parser.add_argument("--plot", metavar="PATH", help="also draw a PNG line plot there (needs matplotlib)")
    parser.add_argument("--y", metavar="COLUMN",
                        help="the column --plot draws (default macs, or flops with --unit flops)")


def run_sweep(args: argparse.Namespace) -> tuple[str, int]:
    from .sweep import parse_param, render_sweep, run_sweep as sweep, sweep_png

    if getattr(args, "check", None) or getattr(args, "strict", False):  # shared options: refuse, never ignore
        raise CostlabError("sweep does not cross-check; run compare or analyze with --check")
    if args.plot:
        check_writable(args.plot, "--plot")
    param = parse_param(args.param)
    session = (_latency_session(args, args.dtype, len(param.values) * len(args.targets)) if args.latency
               else nullcontext(None))
    with session as timing:
        measures = (_latency_measure(args, *timing),) if timing is not None else ()
        shape, typed = split_inputs(args.input, args.batch)
        if typed is not None:
            raise UsageError("sweep takes one --input CxHxW")
        result = sweep(args.targets, param, shape, args.batch,
                       args.dtype, parse_options(args.kwarg), args.freeze, args.unit, measures)
    text = render_sweep(result, args.format)
    if args.plot:
        write_atomically(args.plot, sweep_png(result, args.y), "--plot")
    elif args.y:
        raise CostlabError("--y chooses what --plot draws; give --plot PATH")
    return text, 0


def _latency_measure(args: argparse.Namespace, peaks: Any, advance: Callable[[str], None]) -> Any:
    """sweep --latency: a Measure timing each point's whole target (median and IQR, in ms)."""
    from .sweep import Measure
    from .torch_bridge.latency import LatencySettings, measure_latency

    settings = LatencySettings(device=args.latency, threads=args.threads, per_layer=False)

    def timed(analysis: Analysis) -> dict[str, Any]:
        latency = measure_latency(analysis, settings, peaks=peaks, progress=advance).latency or {}
        return {"latency_ms": latency["median"], "latency_iqr_ms": latency["iqr"],
                "latency_noisy": latency["noisy"]}

    return Measure(f"latency on {args.latency}", ("latency_ms", "latency_iqr_ms", "latency_noisy"), timed,
                   plot_column="latency_ms", axis_label=f"latency on {args.latency} (ms)")


def run_list(args: argparse.Namespace) -> tuple[str, int]:
    from .report import preset_list

    return preset_list([build_preset(name) for name in PRESETS], [p.summary for p in PRESETS.values()],
                       args.format), 0


def _report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output-dir", default="reports", metavar="DIR",
                        help="where to write the reports (default: reports)")
    add_latency_options(parser)


def run_report(args: argparse.Namespace) -> tuple[str, int]:
    from .reports import build_reports

    directory = args.output_dir
    if not os.path.isdir(directory):
        raise CostlabError(f"cannot write reports: no directory {directory}")
    files = build_reports()
    for file in files:
        path = os.path.join(directory, file.path)
        check_writable(path)
    for file in files:
        write_atomically(os.path.join(directory, file.path), file.text)
    written = [os.path.join(directory, f.path) for f in files]
    if args.latency:
        written += _latency_reports(args, directory)
    return "".join(f"wrote {path}\n" for path in written), 0


def _latency_reports(args: argparse.Namespace, directory: str) -> list[str]:
    """report --latency: the two canonical comparisons and the augmentations measured here (torch imported here)."""
    from .torch_bridge.augment_timing import (AUGMENTATION_MEASUREMENTS, augmentation_latency_markdown,
                                              measure_augmentations)
    from .torch_bridge.latency_report import LATENCY_CASES, case_measurement_count, latency_report, report_filename

    total = sum(case_measurement_count(case) for case in LATENCY_CASES.values()) + AUGMENTATION_MEASUREMENTS
    command = f"costlab report --latency {args.latency}" + (f" --threads {args.threads}" if args.threads else "")
    with _latency_session(args, "float32", total) as (peaks, advance):
        texts = {report_filename(case, args.latency):
                 latency_report(name, args.latency, args.threads, peaks=peaks, progress=advance, command=command,
                                min_cpu_share=LATENCY_MIN_CPU_SHARE, attempts=LATENCY_ATTEMPTS)
                 for name, case in LATENCY_CASES.items()}
        texts[f"latency-augmentation{'' if args.latency == 'cpu' else '-' + args.latency}.md"] = \
            augmentation_latency_markdown(measure_augmentations(args.latency, args.threads, progress=advance),
                                          command=command)
    paths = []
    for filename, text in texts.items():
        path = os.path.join(directory, filename)
        write_atomically(path, text)
        paths.append(path)
    return paths


#: report --latency measures a report again while other work holds the CPU (CPU share below this).
LATENCY_MIN_CPU_SHARE = 0.75
LATENCY_ATTEMPTS = 3


def _claims_arguments(parser: argparse.ArgumentParser) -> None:
    add_output_options(parser)


def run_claims(args: argparse.Namespace) -> tuple[str, int]:
    from .claims import check_claims, render_claims

    return render_claims(check_claims(), args.format), 0


def _calibrate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--threads", type=_positive_int, metavar="N",
                        help="CPU threads (default: torch's); the peaks are cached per thread count")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16", "float64"],
                        help="element type of the matrix product (default float32)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    add_output_options(parser)


def run_calibrate(args: argparse.Namespace) -> tuple[str, int]:
    from .report import render_peaks
    from .torch_bridge.roofline import CALIBRATION_STEPS, calibrate

    bar, advance = _progress_bar(args, CALIBRATION_STEPS, f"calibrating {args.device}")
    try:
        peaks, path = calibrate(args.device, args.threads, args.dtype, progress=advance)
    finally:
        bar.close()
    return render_peaks(peaks.to_dict(), str(path), args.format), 0


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
    Command("calibrate", "measure this machine's peak GFLOP/s and GB/s for the roofline and cache them",
            _calibrate_arguments, run_calibrate),
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="What will this layer design cost? MACs, parameters and "
                                            "memory of CNN layers, blocks and architectures.")
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for command in COMMANDS:
        sub = commands.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


def _version() -> str:
    from . import __version__

    return __version__


# --- output --------------------------------------------------------------------------------

def check_writable(path: str, option: str = "--output") -> None:
    """Fail before any work if ``path`` cannot be written."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise CostlabError(f"cannot write {option} {path}: it is a directory")
    if not os.path.isdir(directory):
        raise CostlabError(f"cannot write {option} {path}: no directory {directory}")
    if not os.access(directory, os.W_OK):
        raise CostlabError(f"cannot write {option} {path}: directory {directory} is not writable")


def write_atomically(path: str, data: str | bytes, option: str = "--output") -> None:
    """Write text (UTF-8) or bytes to a temporary file beside ``path``, then rename it into place."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        handle, temporary = tempfile.mkstemp(prefix=".costlab-", dir=directory)
    except OSError as error:
        raise CostlabError(f"cannot write {option} {path}: {error.strerror}") from None
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(temporary, path)
    except OSError as error:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise CostlabError(f"cannot write {option} {path}: {error.strerror}") from None


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    """Run the command line; returns the exit code."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
        if getattr(args, "run", None) is None:
            out.write(parser.format_help())
            return 0
        if getattr(args, "output", None):
            check_writable(args.output)
        args.progress_stream = err  # progress bars go where errors go
        text, code = args.run(args)
        if getattr(args, "output", None):
            write_atomically(args.output, text)
        else:
            out.write(text)
        return code
    except CostlabError as error:
        err.write(f"{PROG}: error: {error}\n")
        return 2
    except SystemExit as exit_:  # --help and --version
        return int(exit_.code or 0)
    except KeyboardInterrupt:
        err.write(f"{PROG}: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
