"""Output people read: SI-scaled numbers, tables that fit 80 columns, --wide, --exact."""

from __future__ import annotations

import io
import json
import re

import pytest

from costlab.app.cli import main
from costlab.render.display import Column, fit, wrap
from costlab.render.numbers import Style, number
from conftest import GOLDEN

# Published figures (torchvision's model table; shared/reference.md), not costlab's own output.
RESNET50_PARAMS, RESNET50_MACS = 25_557_032, 4_089_184_256
MOBILENET_V2_PARAMS, MOBILENET_V2_MACS = 3_504_872, 300_774_272
VGG16_PARAMS, VGG16_MACS = 138_357_544, 15_470_264_320


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def three_significant(value: float, prefix: str, scale: float) -> str:
    """An independent spelling of the SI rule for one known prefix: value/scale to 3 digits."""
    mantissa = value / scale
    digits = 2 if mantissa < 10 else 1 if mantissa < 100 else 0
    return f"{mantissa:.{digits}f} {prefix}"


@pytest.mark.parametrize("value, text", [
    (0, "0"), (7, "7"), (-7, "-7"), (999, "999"), (1000, "1.00 k"), (1234, "1.23 k"), (-1234, "-1.23 k"),
    (9_995, "10.0 k"), (99_950, "100 k"), (999_499, "999 k"), (999_500, "1.00 M"), (999_950, "1.00 M"),
    (999.95, "1.00 k"), (12.345, "12.3"), (-999_950_000, "-1.00 G"), (4_089_184_256, "4.09 G"),
    (25_557_032, "25.6 M"), (10**15, "1.00 P"),
])
def test_si_counts(value: float, text: str) -> None:
    assert number(value, Style.SI) == text


@pytest.mark.parametrize("value, text", [
    (0, "0 B"), (512, "512 B"), (1023, "1023 B"), (1024, "1.00 KiB"), (-2048, "-2.00 KiB"),
    (1024 * 1024 - 1, "1.00 MiB"), (4 * RESNET50_PARAMS, "97.5 MiB"), (3 * 2**30, "3.00 GiB"),
])
def test_binary_bytes(value: int, text: str) -> None:
    assert number(value, Style.BYTES) == text


@pytest.mark.parametrize("value, style, text", [
    # two decimals in the memory notes and reports: 102,228,128 B / 2^20 = 97.4923… MiB
    (4 * RESNET50_PARAMS, Style.BYTES_2DP, "97.49 MiB"), (6_088, Style.BYTES_2DP, "5.95 KiB"),
    (1023, Style.BYTES_2DP, "1023 B"), (3 * 2**30, Style.BYTES_2DP, "3.00 GiB"),
    (5000 * 2**30, Style.BYTES_2DP, "5,000.00 GiB"),
    # milliseconds: whole from 100, three significant digits from 1, three or four decimals below
    (1234.4, Style.MS, "1234"), (12.34, Style.MS, "12.3"), (2.684, Style.MS, "2.68"), (0.7314, Style.MS, "0.731"),
    (0.079, Style.MS, "0.079"), (0.0012, Style.MS, "0.0012"),
    (3.094, Style.TIMES, "3.09×"), (None, Style.TIMES, "n/a"),
    (VGG16_MACS, Style.EXACT, "15,470,264,320"), (12.25, Style.EXACT, "12.2"), (12.25, Style.GROUPED, "12.25"),
    (4 * RESNET50_PARAMS, Style.EXACT_BYTES, "102,228,128 B"),
])
def test_the_one_number_formatter(value: float | None, style: Style, text: str) -> None:
    assert number(value, style) == text


def test_where_the_styles_of_one_quantity_differ() -> None:
    """Kept apart so that every report stays byte-identical (docs/architecture.md, "Numbers")."""
    size = 4 * RESNET50_PARAMS
    assert (number(size, Style.BYTES), number(size, Style.BYTES_2DP)) == ("97.5 MiB", "97.49 MiB")
    assert (number(2**50, Style.BYTES), number(2**50, Style.BYTES_2DP)) == ("1.00 PiB", "1,048,576.00 GiB")
    assert (number(12.34, Style.SI), number(12.34, Style.MS)) == ("12.3", "12.3")
    assert (number(0.0012, Style.SI), number(0.0012, Style.MS)) == ("0.00", "0.0012")


def test_fit_leaves_out_the_least_important_column_first_then_shortens() -> None:
    columns = [Column("name", ["a" * 30], keep=None, shrink="tail"), Column("n", ["1"], numeric=True, keep=None),
               Column("low", ["x" * 20], keep=1), Column("high", ["y" * 20], keep=9)]
    kept, dropped = fit(columns, 60)
    assert [c.header for c in kept] == ["name", "n", "high"] and dropped == ["low"]
    kept, dropped = fit(columns, 40)
    assert [c.header for c in kept] == ["name", "n"] and dropped == ["low", "high"]
    kept, _ = fit(columns, 20)
    assert kept[0].cells == ["…" + "a" * 16] and sum(c.width() for c in kept) + 2 == 20  # "n" is 1 wide
    assert fit(columns, None) == (columns, [])


def test_wrap_keeps_numbers_with_their_units() -> None:
    lines = wrap(["word " * 13 + "3.50 M params, 97.5 MiB weights"], 70)
    assert all(len(line) <= 70 for line in lines) and "3.50 M" in "\n".join(lines)


@pytest.mark.parametrize("argv, golden_name", [
    (("analyze", "resnet50"), "analyze_resnet50_80.txt"),
    (("compare", "resnet50", "mobilenet-v2", "vgg16"), "compare_backbones_80.txt"),
])
def test_80_columns(monkeypatch: pytest.MonkeyPatch, golden, argv: tuple[str, ...], golden_name: str) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = run(*argv)
    assert (code, err) == (0, "")
    too_long = [line for line in out.splitlines() if len(line) > 80]
    assert not too_long, too_long
    golden(GOLDEN / golden_name, out)


def test_80_column_figures_are_the_published_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    _, out, _ = run("compare", "resnet50", "mobilenet-v2", "vgg16")
    rows = {line.split()[0]: line for line in out.splitlines() if line.split()[:1] in
            (["resnet50"], ["mobilenet-v2"], ["vgg16"])}
    for name, macs, params in (("resnet50", RESNET50_MACS, RESNET50_PARAMS),
                               ("mobilenet-v2", MOBILENET_V2_MACS, MOBILENET_V2_PARAMS),
                               ("vgg16", VGG16_MACS, VGG16_PARAMS)):
        giga = three_significant(macs, "G", 1e9) if macs >= 1e9 else three_significant(macs, "M", 1e6)
        mega = three_significant(params, "M", 1e6)
        weights = three_significant(4 * params, "MiB", 2**20)  # float32: 4 bytes per parameter
        assert giga in rows[name] and mega in rows[name] and weights in rows[name], rows[name]
    assert f"{RESNET50_MACS / MOBILENET_V2_MACS:.2f}× fewer" in rows["mobilenet-v2"]
    assert f"{VGG16_MACS / RESNET50_MACS:.2f}× more" in rows["vgg16"]
    _, out, _ = run("analyze", "resnet50")
    conv1 = next(line for line in out.splitlines() if line.startswith("conv1 "))
    assert three_significant(7 * 7 * 3 * 112 * 112 * 64, "M", 1e6).replace(".0 M", " M") in conv1  # 118 M
    assert "Not shown at 80 columns:" in out and "formula" in out


def test_exact_gives_exact_integers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    _, out, _ = run("compare", "resnet50", "mobilenet-v2", "--exact")
    assert f"{RESNET50_MACS:,}" in out and f"{MOBILENET_V2_PARAMS:,}" in out and " G " not in out
    assert all(len(line) <= 80 for line in out.splitlines())
    _, out, _ = run("compare", "--exact", "--wide")
    assert "2,408,448 + 10,035,200" in out and "120,422,400" in out


def test_wide_shows_every_column(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    _, narrow, _ = run("analyze", "resnet50")
    _, wide, _ = run("analyze", "resnet50", "--wide")
    header = next(line for line in wide.splitlines() if line.startswith("layer "))
    assert re.split(r"\s{2,}", header.strip()) == ["layer", "type", "op", "output", "MACs", "params", "ops",
                                                   "share", "weights", "act. memory", "formula (MACs or ops)"]
    assert "7·7·3 × 112·112·64 = 118,013,952" in wide and "Not shown" not in wide
    assert max(len(line) for line in wide.splitlines()) > 80
    monkeypatch.setenv("COLUMNS", "200")
    _, roomy, _ = run("analyze", "resnet50")
    assert "7·7·3 × 112·112·64 = 118,013,952" in roomy and "Not shown" not in roomy
    assert len(narrow.splitlines()[3]) <= 80


def test_markdown_csv_and_json_keep_every_column_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    _, md, _ = run("compare", "resnet50", "--format", "md")
    header = next(line for line in md.splitlines() if line.startswith("| target"))
    assert [cell.strip() for cell in header.strip("|").split("|")] == [
        "target", "output", "MACs", "params", "ops", "activations", "weights", "act. memory", "vs first"]
    assert f"{RESNET50_MACS:,}" in md and f"{4 * RESNET50_PARAMS:,} B" in md
    _, csv, _ = run("compare", "resnet50", "--format", "csv")
    header, row = csv.splitlines()[:2]
    assert str(RESNET50_MACS) in row.split(",") and "weight_bytes" in header.split(",")
    assert row.split(",")[header.split(",").index("weight_bytes")] == str(4 * RESNET50_PARAMS)


def test_list_and_claims_fit_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    for argv in (("list",), ("claims",), ("analyze", "resnet50", "--depth", "2"),
                 ("compare", "resnet18", "--freeze", "fc"), ("compare",)):
        _, out, _ = run(*argv)
        too_long = [line for line in out.splitlines() if len(line) > 80]
        assert not too_long, (argv, too_long)
    _, out, _ = run("list", "--exact")
    assert f"{RESNET50_PARAMS:,}" in out


def test_flops_unit_shows_formulas_in_flops() -> None:
    _, out, _ = run("analyze", "conv5x5:32", "--input", "192x28x28", "--unit", "flops", "--wide")
    assert f"2 × (5·5·192 × 28·28·32) = {2 * 5 * 5 * 192 * 28 * 28 * 32:,}" in out
    assert "formula (FLOPs or ops)" in out
    _, csv_out, _ = run("analyze", "conv5x5:32", "--input", "192x28x28", "--unit", "flops", "--format", "csv")
    assert f"2 × (5·5·192 × 28·28·32) = {2 * 5 * 5 * 192 * 28 * 28 * 32:,}" in csv_out
    _, json_out, _ = run("analyze", "conv5x5:32", "--input", "192x28x28", "--unit", "flops", "--format", "json")
    (layer,) = json.loads(json_out)["targets"][0]["layers"]
    assert layer["formula"] == f"5·5·192 × 28·28·32 = {5 * 5 * 192 * 28 * 28 * 32:,}"  # JSON: the MACs, unchanged


# --- notebooks and the REPL -------------------------------------------------------------------

def test_repr_and_str_are_one_line() -> None:
    import costlab

    a = costlab.analyze("conv1x1:16 > conv5x5:32", input=(192, 28, 28))
    assert repr(a) == "<Analysis conv1x1:16 > conv5x5:32: 192×28×28 → 32×28×28, 12.4 M MACs, 15.9 k params, 0 ops, 2 layers>"
    assert str(a) == repr(a)[len("<Analysis "):-1] and "\n" not in repr(a)
    c = costlab.compare(["conv5x5:32", "conv1x1:16 > conv5x5:32"], input=(192, 28, 28))
    ratio = (5 * 5 * 192 * 28 * 28 * 32) / (192 * 28 * 28 * 16 + 5 * 5 * 16 * 28 * 28 * 32)
    assert repr(c) == f"<Comparison conv5x5:32 120 M MACs, conv1x1:16 > conv5x5:32 12.4 M ({ratio:.2f}× fewer)>"


def test_repr_html_is_the_table_escaped() -> None:
    from html.parser import HTMLParser

    import costlab

    c = costlab.compare(["conv5x5:32", "conv1x1:16 > conv5x5:32"], input=(192, 28, 28))
    html = c._repr_html_()

    class Cells(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.rows: list[list[str]] = []
            self.tags: list[str] = []

        def handle_starttag(self, tag: str, attrs: list) -> None:  # type: ignore[type-arg]
            self.tags.append(tag)
            if tag == "tr":
                self.rows.append([])
            if tag in ("td", "th"):
                self.rows[-1].append("")

        def handle_data(self, data: str) -> None:
            if self.tags and self.tags[-1] in ("td", "th"):
                self.rows[-1][-1] += data

        def handle_endtag(self, tag: str) -> None:
            self.tags.pop()

    parser = Cells()
    parser.feed(html)
    assert parser.tags == []  # every tag closed
    header, first, second = parser.rows
    assert header == ["target", "output", "MACs", "= sum of layers", "params", "ops", "activations", "weights",
                      "act. memory", "vs first"]
    assert second[0] == "conv1x1:16 > conv5x5:32" and "&gt;" in html  # '>' escaped in the markup
    assert first[2] == "120 M" and second[2] == "12.4 M" and second[-1] == "9.68× fewer"
    assert second[header.index("weights")] == f"{4 * (192 * 16 + 16 * 25 * 32) / 1024:.1f} KiB"
    a = costlab.analyze("conv5x5:32", input=(192, 28, 28))
    assert "<table>" in a._repr_html_() and "5·5·192 × 28·28·32 = 120,422,400" in a._repr_html_()
    assert a._repr_markdown_() == a.to_markdown() and c._repr_markdown_() == c.to_markdown()


def test_py_typed_is_shipped() -> None:
    from pathlib import Path

    import costlab

    assert (Path(costlab.__file__).parent / "py.typed").is_file()
    pyproject = (Path(costlab.__file__).parent.parent / "pyproject.toml").read_text()
    assert 'costlab = ["py.typed"]' in pyproject


# --- help, report, module options ----------------------------------------------------------------

def test_help_expressions_shows_the_parsers_grammar_and_examples_that_run(capsys: pytest.CaptureFixture) -> None:
    import costlab
    from costlab.core import expressions
    from costlab.render.help_topics import EXPRESSION_EXAMPLES

    code, out, _ = run("help", "expressions")
    assert code == 0 and all(len(line) <= 80 for line in out.splitlines())
    assert 'sequence   := item ( ">" item )*' in out and 'sequence   := item ( ">" item )*' in expressions.__doc__
    assert all(word in out for word in expressions.LAYER_WORDS)
    for expression, shape, _ in EXPRESSION_EXAMPLES:
        assert expression in out
        costlab.analyze(expression, input=tuple(int(n) for n in shape.split("x")))  # each example parses
    assert run("compare", "--help")[0] == 0
    assert "costlab help expressions" in capsys.readouterr().out  # argparse prints --help itself
    code, _, err = run("help", "grammar")
    assert code == 2 and err.startswith("costlab: error: no help topic 'grammar'")


def test_report_creates_its_directory_and_names_it(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from costlab.app import reports

    monkeypatch.setattr(reports, "build_reports", lambda: [reports.ReportFile("README.md", "# r\n")])
    target = tmp_path / "new" / "dir"
    code, out, err = run("report", "--output-dir", str(target))
    assert (code, err) == (0, "") and (target / "README.md").read_text() == "# r\n"
    assert out.splitlines()[0] == f"costlab report: 1 files in {target}"
    monkeypatch.chdir(tmp_path)
    code, out, _ = run("report")
    assert code == 0 and (tmp_path / "reports" / "README.md").is_file()
    assert f"in {tmp_path / 'reports'} (the default" in out.splitlines()[0]
    (tmp_path / "file").write_text("x")
    code, out, err = run("report", "--output-dir", str(tmp_path / "file"))
    assert code == 2 and out == "" and "is not a directory" in err


def test_module_targets_take_their_own_options() -> None:
    pytest.importorskip("torch")
    from costlab.app.targets import module_target

    assert module_target("costlab_test_nets:tiny(width=4, classes=(1, 2))", {"classes": "3"}) == (
        "costlab_test_nets:tiny", {"classes": "(1, 2)", "width": "4"})
    assert module_target("resnet18", {"a": "1"}) == ("resnet18", {"a": "1"})
    code, out, err = run("compare", "costlab_test_nets:tiny(width=4)", "costlab_test_nets:tiny(width=16)",
                         "--input", "3x8x8", "--kwarg", "classes=5", "--format", "json")
    assert (code, err) == (0, "")
    narrow, wide = json.loads(out)["targets"]
    # Tiny: conv 3→w (3×3, no bias), bn (2w), 1×1 conv w→w with bias, fc 2w→classes with bias
    for target, w in ((narrow, 4), (wide, 16)):
        assert target["params"] == 27 * w + 2 * w + (w * w + w) + (2 * w * 5 + 5)
        assert target["macs"] == 27 * w * 64 + w * w * 64 + 2 * w * 5


def test_fit_ends_when_a_header_cannot_get_narrower() -> None:
    from hypothesis import given, settings, strategies as st

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.tuples(st.text("abcdefghij", min_size=0, max_size=14),
                              st.lists(st.text("xyz…", max_size=30), min_size=1, max_size=3),
                              st.sampled_from([None, "head", "tail"]), st.integers(1, 12)),
                    min_size=1, max_size=5), st.integers(10, 90))
    def check(specs, width):  # type: ignore[no-untyped-def]
        rows = min(len(cells) for _, cells, _, _ in specs)
        columns = [Column(header, cells[:rows], shrink=shrink, min_width=floor)
                   for header, cells, shrink, floor in specs]
        kept, _ = fit(columns, width)  # terminates
        for before, after in zip(columns, kept):
            assert after.width() <= before.width()
    check()
