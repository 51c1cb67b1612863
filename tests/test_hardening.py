"""Every bad input gets an honest answer: exit 2, one ``costlab: error:`` line, no traceback, and
nothing written or replaced at ``--output`` (issue 12)."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import threading
import textwrap
from pathlib import Path
from typing import Any, Iterator

import pytest
import torch

from costlab.app.cli import build_parser, main, write_atomically

ROOT = Path(__file__).resolve().parent.parent
BIG = "9" * 5000           # past Python's 4,300-digit conversion limit
SENTINEL = "what was at --output before\n"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def assert_one_error_line(code: int, err: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    assert err.startswith("costlab: error: ") and err.endswith("\n") and err.count("\n") == 1, repr(err[:300])


# --- the files and user code the cases refer to --------------------------------------------------

USER_CODE = '''
import sys
import warnings

import torch


def exits_with_text():
    sys.exit("bye from the user's code")


def exits_with_three():
    sys.exit(3)


def warns_then_fails():
    warnings.warn("a warning the user's code raises first")
    raise ValueError("and then it fails")


def warns_then_works():
    warnings.warn("a warning the user's code raises")
    return torch.nn.Conv2d(3, 4, 3)


def prints_in_forward():
    class Printing(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)

        def forward(self, x):
            print("hello from forward")
            return self.conv(x)
    return Printing()


def relu():
    return torch.nn.ReLU()
'''


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Spec files and user modules the bad inputs refer to (the user modules on sys.path)."""
    folder = tmp_path_factory.mktemp("hardening")
    (folder / "deep_branches.txt").write_text("(" * 3000 + "relu" + ")" * 3000)
    (folder / "deep_residuals.txt").write_text("res(" * 3000 + "relu" + ")" * 3000)
    (folder / "bool_input.json").write_text('{"expression": "relu", "input": [true, 2, 2]}')
    (folder / "huge_input.json").write_text('{"expression": "relu", "input": [' + BIG + ', 2, 2]}')
    (folder / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (folder / "not_json.json").write_text("{nope")
    (folder / "no_expression.json").write_text('{"input": [3, 4, 4]}')
    (folder / "bad_expression.txt").write_text("conv3x3:4 >> relu")
    (folder / "hardening_user.py").write_text(USER_CODE)
    (folder / "hardening_exits_at_import.py").write_text('import sys\nsys.exit("bye at import")\n')
    (folder / "hardening_exits_3_at_import.py").write_text('import sys\nsys.exit(3)\n')
    (folder / "a_directory").mkdir()
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))


# --- the table: at least 80 bad inputs across every command and option ------------------------------

X = ("--input", "3x8x8")
COUNTING = [  # (arguments after the command) for both compare and analyze
    ("relu", "--input", "3x²x2"), ("relu", "--input", "-3x32x32"), ("relu", "--input", "0x4x4"),
    ("relu", "--input", "3x4x4x4x4"), ("relu", "--input", f"3x{BIG}x2"), ("relu", "--input", ""),
    ("relu", "--input", "3x4.5x4"), ("relu", "--input", "3×٣×4"),
    ("relu", *X, "--seq", "0"), ("relu", *X, "--seq", "²"), ("relu", *X, "--seq", BIG),
    ("hardening_user:relu", "--input", "float32:"), ("hardening_user:relu", "--input", "x=int64:3x²"),
    ("hardening_user:relu", "--input", f"float32:3x{BIG}"), ("hardening_user:relu", "--input", "bogus:3x4"),
    ("hardening_user:relu", "--input", "a=float32:3x4", "--input", "a=float32:3x4"),
    ("hardening_user:relu", "--input", "int64:3x4", "--latency", "cpu"),
    ("relu", *X, "--batch", "0"), ("relu", *X, "--batch", "-1"), ("relu", *X, "--batch", "²"),
    ("relu", *X, "--batch", "1.5"), ("relu", *X, "--batch", BIG),
    ("relu", *X, "--dtype", "int4"), ("relu", *X, "--kwarg", "novalue"), ("relu", *X, "--kwarg", "foo=1"),
    ("relu", *X, "--unit", "gflops"), ("conv3x3:4", *X, "--freeze", "banana!"),
    ("conv3x3:4", *X, "--freeze", BIG), ("conv3x3:4", *X, "--freeze", "0." + BIG),
    ("conv3x3:4", *X, "--freeze", "-1"),
    ("relu", *X, "--check", ""), ("relu", *X, "--check", "nope"), ("relu", *X, "--check", ","),
    ("relu", *X, "--strict", "--head", "none"), ("relu", *X, "--generate", "4"), ("relu", *X, "--generate", "0"),
    ("relu", *X, "--latency", "tpu"),
    ("relu", *X, "--latency", "cpu", "--dtype", "int8"), ("relu", *X, "--threads", "0"),
    ("relu", *X, "--threads", "100000", "--latency", "cpu"), ("relu", *X, "--threads", "x"),
    ("relu", *X, "--format", "xml"), ("relu", *X, "--convention", "nope"), ("relu", *X, "--quiet=1"),
    ("relu", *X, "--wide=1"), ("relu", *X, "--exact=yes"),
    ("relu", *X, "--optimizer", "adam"), ("relu", *X, "--memory", "--optimizer", "rmsprop"), ("relu", *X, "--memory=1"),
    ("conv3x3:²", *X), ("conv3x3:0", *X), ("conv0x3:4", *X), ("conv3x3:4,s2,s3", *X),
    ("conv3x3:4,bias,nobias", *X), ("conv3x3:4,same,p1", *X), ("conv3x3:4,q9", *X),
    (f"conv3x3:{BIG}", *X), (f"conv{BIG}x3:4", *X), (f"conv3x3:4,s{BIG}", *X), ("(", *X), (")", *X),
    ("relu >", *X), ("resnet51",), ("mobilenet-v1(width=inf)",), ("mobilenet-v1(width=nan)",),
    ("mobilenet-v1(width=1e400)",), ("mobilenet-v1(width=-1)",), ("mobilenet-v1(foo=1)",),
    ("lenet5", "--kwarg", f"num_classes={BIG}"), ("lenet5", "--kwarg", "num_classes=²"),
    ("{dir}/missing.json",), ("{dir}/deep_branches.txt", "--input", "3x4x4"),
    ("{dir}/deep_residuals.txt", "--input", "3x4x4"), ("{dir}/bool_input.json",),
    ("{dir}/huge_input.json",), ("{dir}/deep.json",), ("{dir}/not_json.json",),
    ("{dir}/no_expression.json",), ("{dir}/bad_expression.txt", *X),
    ("fc:10 > fc:²", *X), ("dropout:x", *X), ("relu:3", *X), ("maxpool2x2:3", *X), ("bn,s2", *X),
    ("   ",), ("hardening_user:exits_with_text", *X), ("hardening_user:exits_with_three", *X),
    ("hardening_exits_at_import:f", *X), ("hardening_exits_3_at_import:f", *X),
    ("hardening_user:warns_then_fails", *X), ("hardening_user:relu", *X, "--kwarg", "foo=1"),
    ("hardening_user:missing", *X),
    ("conv3x3:1000000000000000000000000000000", *X, "--check", "torch"),
    ("conv3x3:100000", "--input", "3x4096x4096", "--latency", "cpu"),
]
OTHERS = [
    ("help", "nope"), ("help", "expressions", "extra"),
    ("analyze", "relu", *X, "--depth", "0"), ("analyze", "relu", *X, "--depth", "-1"),
    ("analyze", "relu", "relu", *X), ("analyze",), ("compare", "relu", *X, "--per-layer=yes"),
    ("sweep", "conv3x3:{w}", *X, "--param", "w=1:1e5000:1"),
    ("sweep", "conv3x3:{w}", *X, "--param", "w=1:1e9999999:1"),
    ("sweep", "conv3x3:{w}", *X, "--param", "w=1:1e999999:1"),
    ("sweep", "conv3x3:{w}", *X, "--param", "w=1:2:1e-999999"),
    ("sweep", "conv3x3:{w}", *X, "--param", "w=1:100000"), ("sweep", "conv3x3:{w}", *X, "--param", "w="),
    ("sweep", "conv3x3:{w}", *X, "--param", "w"), ("sweep", "conv3x3:{w}", *X, "--param", "=1,2"),
    ("sweep", "conv3x3:{w}", *X, "--param", "w=1,,2"), ("sweep", "conv3x3:{w}", *X, "--param", "w=1,1"),
    ("sweep", "conv3x3:{w}", *X, "--param", "w=3:1"), ("sweep", "conv3x3:{w}", *X, "--param", "w=1:2:0"),
    ("sweep", "conv3x3:{w}", *X, "--param", "w=a:b"), ("sweep", "conv3x3:{w}", *X, "--param", f"w=1:{BIG}"),
    ("sweep", "conv3x3:{w}", *X, "--param", "w=1,2", "--param", "w=3"), ("sweep", "conv3x3:{w}", *X),
    ("sweep", "conv3x3:{x}", *X, "--param", "w=1,2"), ("sweep", "conv3x3:{w}", *X, "--param", "w=²"),
    ("sweep", "conv3x3:{w}", *X, "--param", "w=1,2", "--check", "fvcore"),
    ("sweep", "conv3x3:{w}", *X, "--param", "w=1,2", "--check", ""),
    ("sweep", "conv3x3:{w}", *X, "--param", "w=1,2", "--y", "macs"),
    ("sweep", "conv3x3:{w}", *X, "--param", "w=1,2", "--plot", "/nonexistent/plot.png"),
    ("sweep", "conv3x3:{w}", *X, "--param", "w=1,2", "--plot", ""),
    ("sweep", "conv3x3:4", *X, "--param", "batch=0"), ("sweep", "conv3x3:4", *X, "--param", "batch=²"),
    ("sweep", "conv3x3:4", *X, "--param", f"batch={BIG}"), ("sweep", "conv3x3:4", *X, "--param", "input=²"),
    ("sweep", "conv3x3:4", *X, "--param", "input=0"), ("sweep", "conv3x3:4", *X, "--param", f"input={BIG}"),
    ("sweep", "conv3x3:{w}", "conv3x3:{w}", *X, "--param", "w=1,2"),
    ("sweep", "conv3x3:{w}", *X, "--param", "w=1,2", "--latency", "cpu", "--dtype", "int8"),
    ("list", "--format", "xml"), ("list", "extra"), ("claims", "--format", "xml"),
    ("calibrate", "--device", "tpu"), ("calibrate", "--threads", "0"), ("calibrate", "--threads", "100000"),
    ("calibrate", "--dtype", "int8"), ("calibrate", "--quiet=yes"), ("calibrate", "--format", "yaml"),
    ("calibrate", "--budget", "0"), ("calibrate", "--budget", "soon"), ("compare", "relu", *X, "--predict", "tpu"),
    ("analyze", "relu", *X, "--predict", "tpu"), ("sweep", "conv3x3:{w}", *X, "--param", "w=1,2", "--predict", "tpu"),
    ("sweep", "conv3x3:{w}", *X, "--param", "w=1,2", "--quiet=1"), ("report", "--quiet=no"),
    ("report", "--output-dir", "/dev/null/reports"), ("report", "--output-dir", ""),
    ("report", "--output-dir", "/dev/null/reports", "--latency", "cpu"), ("report", "--latency", "tpu"),
    ("report", "--threads", "0"), ("frobnicate",), ("--nope",),
]
OUTPUT_CASES = [  # bad --output values themselves
    ("compare", "--output", ""), ("compare", "--output", "{dir}/a_directory"),
    ("compare", "--output", "/nonexistent/out.txt"), ("analyze", "relu", *X, "--output", "{dir}/x/y.txt"),
    ("list", "--output", "/nonexistent/out.txt"), ("claims", "--output", ""),
    ("compare", "--output", "{out}", "--output", "{out}"),
]
NO_CUDA_CASES = [("calibrate", "--device", "cuda"), ("compare", "relu", *X, "--latency", "cuda"),
                 ("report", "--latency", "cuda", "--output-dir", "{dir}")]  # refused before writing anything
CASES = ([(command, *case) for command in ("compare", "analyze") for case in COUNTING] + OTHERS + OUTPUT_CASES
         + ([] if torch.cuda.is_available() else NO_CUDA_CASES))


def test_the_table_is_large_and_covers_every_command_and_option() -> None:
    assert len(CASES) >= 80
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    used = {token.split("=")[0] for case in CASES for token in case}
    for name, sub in subparsers.choices.items():
        assert name in {case[0] for case in CASES}, name
        for action in sub._actions:
            options = [o for o in action.option_strings if o.startswith("--") and o != "--help"]
            if options:
                assert used & set(options), f"{name}: no bad-input case uses {options[0]}"


def _accepts_output(argv: list[str]) -> bool:
    return argv[0] in ("compare", "analyze", "list", "claims", "sweep", "calibrate") and "--output" not in argv


@pytest.mark.parametrize("case", CASES, ids=lambda case: " ".join(case)[:70])
def test_bad_input_gets_one_error_line_and_leaves_the_output_alone(case: tuple[str, ...], files: Path,
                                                                   tmp_path: Path) -> None:
    output = tmp_path / "out.txt"
    output.write_text(SENTINEL)
    argv = [part.replace("{dir}", str(files)).replace("{out}", str(output)) for part in case]
    if _accepts_output(argv):
        argv += ["--output", str(output)]
    before = _listing(files), _listing(tmp_path)
    code, out, err = run(*argv)
    assert_one_error_line(code, err)
    assert out == ""
    assert output.read_text() == SENTINEL
    assert (_listing(files), _listing(tmp_path)) == before  # no temporary file left


def _listing(directory: Any) -> list[str]:
    """A directory's entries, less Python's bytecode cache (importing a test's callable may write one
    where PYTHONDONTWRITEBYTECODE is unset: that is Python's doing, not an output costlab left)."""
    return sorted(name for name in os.listdir(directory) if name != "__pycache__")


def test_errors_name_what_the_user_typed(files: Path) -> None:
    assert run("calibrate", "--device", "tpu")[2].startswith("costlab: error: argument --device")
    assert "--output-dir" in run("report", "--output-dir", "/dev/null/reports")[2]
    assert "bad --input '-3x32x32'" in run("analyze", "relu", "--input", "-3x32x32")[2]
    assert "argument --threads: 100000 threads asked" in run("analyze", "relu", *X, "--threads", "100000")[2]
    assert "sys.exit(3)" in run("analyze", "hardening_user:exits_with_three", *X)[2]
    assert "bye at import" in run("analyze", "hardening_exits_at_import:f", *X)[2]
    assert "conflicts with 's2'" in run("analyze", "conv3x3:4,s2,s3", *X)[2]
    assert "given twice" in run("sweep", "conv3x3:{w}", *X, "--param", "w=1", "--param", "w=2")[2]
    err = run("analyze", "conv3x3:100000", "--input", "3x4096x4096", "--latency", "cpu")[2]
    assert "needs at least 6.7 TB" in err  # 100,000 × 4,096² × 4 B of output alone


# --- user code: its prints, its warnings ------------------------------------------------------------

def test_user_prints_go_to_stderr_and_json_stays_clean(files: Path) -> None:
    import json

    code, out, err = run("analyze", "hardening_user:prints_in_forward", *X, "--format", "json", "--check", "torch")
    assert code == 0
    assert json.loads(out)["targets"][0]["macs"] == 4 * 3 * 3 * 3 * 6 * 6  # C_out·C_in·k²·H_out·W_out
    assert "hello from forward" in err


def test_warnings_are_one_line_after_success_and_dropped_before_an_error(files: Path) -> None:
    code, out, err = run("analyze", "hardening_user:warns_then_works", *X)
    assert code == 0 and "costlab: warning: a warning the user's code raises" in err
    assert all(line.startswith("costlab: warning: ") for line in err.splitlines())
    code, out, err = run("analyze", "hardening_user:warns_then_fails", *X)
    assert_one_error_line(code, err)


def test_unwritable_stdout_is_one_line() -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "costlab", "compare"], stdout=full, stderr=subprocess.PIPE,
                                text=True, cwd=ROOT, timeout=120)
    assert_one_error_line(result.returncode, result.stderr)
    assert "cannot write to standard output" in result.stderr


# --- --output: what is at the path survives ------------------------------------------------------------

def test_a_device_node_given_as_output_is_written_into_not_replaced(tmp_path: Path) -> None:
    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # the same device as /dev/null
    except (PermissionError, OSError):
        pytest.skip("os.mknod is not permitted here (the FIFO test covers writing into a non-file)")
    code, out, err = run("compare", "--output", str(node))
    assert (code, err) == (0, "")
    assert stat.S_ISCHR(os.stat(node).st_mode) and os.stat(node).st_rdev == os.makedev(1, 3)
    assert os.listdir(tmp_path) == ["null"]


def test_a_fifo_given_as_output_is_written_into_not_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    code, out, err = run("compare", "--output", str(fifo), "--format", "csv")
    reader.join(timeout=60)
    assert (code, err) == (0, "")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert received and received[0].decode() == run("compare", "--format", "csv")[1]


def test_a_symlink_given_as_output_is_followed_and_stays_a_link(tmp_path: Path) -> None:
    target = tmp_path / "real.txt"
    target.write_text(SENTINEL)
    target.chmod(0o640)
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    code, _, err = run("compare", "--output", str(link))
    assert (code, err) == (0, "")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == run("compare")[1]
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640  # the file's own mode is kept
    dangling = tmp_path / "dangling.txt"
    dangling.symlink_to(tmp_path / "created.txt")
    assert run("list", "--output", str(dangling))[0] == 0
    assert dangling.is_symlink() and (tmp_path / "created.txt").read_text().startswith(run("list")[1][:20])
    assert sorted(os.listdir(tmp_path)) == ["created.txt", "dangling.txt", "link.txt", "real.txt"]


def test_a_new_output_file_gets_the_mode_the_umask_gives(tmp_path: Path) -> None:
    previous = os.umask(0o027)
    try:
        write_atomically(str(tmp_path / "new.txt"), "text")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(tmp_path / "new.txt").st_mode) == 0o666 & ~0o027


def test_a_symlink_to_a_device_is_written_through(tmp_path: Path) -> None:
    link = tmp_path / "to-null"
    link.symlink_to("/dev/null")
    assert run("compare", "--output", str(link))[0] == 0
    assert link.is_symlink() and stat.S_ISCHR(os.stat("/dev/null").st_mode)


# --- the Python API raises only CostlabError ---------------------------------------------------------

def test_the_python_api_raises_costlab_errors() -> None:
    import costlab

    analysis = costlab.analyze("conv3x3:4 > relu", input=(3, 8, 8))
    for bad in (lambda: costlab.analyze("relu", input=32), lambda: costlab.analyze("relu", input=(3, True, 2)),
                lambda: analysis.layer("nope"), lambda: analysis.rows(depth=-1),
                lambda: analysis.rows(depth=1.5), lambda: analysis.to_dict(unit="x"),
                lambda: analysis.layers[0].to_dict(unit="x"),
                lambda: costlab.analyze("mobilenet-v1", width=float("inf"))):
        with pytest.raises(costlab.CostlabError):
            bad()
    with pytest.raises(KeyError):  # still a KeyError for code that catches one
        analysis.layer("nope")
    assert analysis.layer("conv1").macs == 4 * 3 * 9 * 8 * 8


# --- the expression tokenizer is linear ----------------------------------------------------------------

class _CountingText(str):
    """A str that tallies the characters of every slice or strip made of it."""

    copied = 0

    def __getitem__(self, key):  # type: ignore[no-untyped-def]
        piece = str.__getitem__(self, key)
        _CountingText.copied += len(piece)
        return piece

    def strip(self, chars=None):  # type: ignore[no-untyped-def]
        piece = str.strip(self, chars)
        _CountingText.copied += len(piece)
        return piece


def test_tokenizing_copies_no_more_than_the_text_once() -> None:
    """The old tokenizer sliced the rest of the text at every token (n²/2 characters for n: 7 s at
    40,000 layers); the scan now copies each token's text once and nothing else."""
    from costlab.core.expressions import tokenize

    for layers in (4_000, 40_000):
        text = " > ".join(["conv3x3:8,s2"] * layers)
        _CountingText.copied = 0
        tokens = tokenize(_CountingText(text))
        assert [t.text for t in tokens] == [t.text for t in tokenize(text)]
        assert len(tokens) == 2 * layers - 1
        assert _CountingText.copied <= len(text), (layers, _CountingText.copied)


def test_nesting_is_bounded_with_an_error_not_a_recursion_error() -> None:
    from costlab.core.errors import ExpressionError
    from costlab.core.expressions import MAX_NESTING, analyze_expression

    deep = analyze_expression("res(" * MAX_NESTING + "relu" + ")" * MAX_NESTING, (3, 4, 4))
    assert deep.macs == 0 and len([layer for layer in deep.layers if layer.op == "add"]) == MAX_NESTING
    with pytest.raises(ExpressionError, match="nested more than"):
        analyze_expression("(" * (MAX_NESTING + 1) + "relu" + ")" * (MAX_NESTING + 1), (3, 4, 4))


def test_big_but_bounded_counts_stay_exact() -> None:
    """A 100-digit channel count is accepted and counted exactly (sizes are Python integers)."""
    from costlab.core.expressions import analyze_expression

    channels = 10**99
    conv = analyze_expression(f"conv1x1:{channels}", (3, 2, 2)).layers[0]
    assert conv.macs == channels * 3 * 2 * 2 and conv.params == channels * 3
    assert str(conv.macs) == "12" + "0" * 99


def test_output_to_dev_stdout_writes_into_a_pipe() -> None:
    """--output /dev/stdout when stdout is a pipe: /proc/self/fd/1 names no file ('pipe:[…]'); the
    stream is written into, as a shell redirect would."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "costlab", "compare", "--format", "csv", "--output", "/dev/stdout"],
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines()[0].startswith("target,input,batch,output,macs")
