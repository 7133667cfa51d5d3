"""``reports.tables.render``: every format against hand-written text; CSV round-trips."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest

from medxfer.errors import MedxferInputError
from medxfer.reports.tables import (FORMATS, SUFFIX, latex_escape, output_format, render,
                                    write_or_print)

SPECIALS = "& % $ # _ { } ~ ^ \\"
ESCAPED = (r"\& \% \$ \# \_ \{ \} \textasciitilde{} \textasciicircum{} "
           r"\textbackslash{}")


@pytest.fixture
def frame() -> pd.DataFrame:
    """Ground-truth-shaped: a named index, a float column with a NaN, an int column."""
    return pd.DataFrame({"bloodmnist": [0.91234, math.nan], "n_runs": [3, 12]},
                        index=pd.Index(["imagenet", "pathmnist"], name="source"))


def test_formats_and_suffixes_match():
    assert FORMATS == ("table", "csv", "markdown", "latex")
    assert set(SUFFIX) == set(FORMATS)


def test_table(frame):
    assert render(frame, "table", number=".2f") == (
        "          bloodmnist n_runs\n"
        "source                     \n"
        "imagenet        0.91      3\n"
        "pathmnist                12\n")


def test_table_title_and_no_index(frame):
    assert render(frame, "table", number=".1f", index=False, title="Ground truth") == (
        "Ground truth\n"
        "bloodmnist n_runs\n"
        "       0.9      3\n"
        "               12\n")


def test_markdown_aligns_numbers_right_and_text_left(frame):
    assert render(frame, "markdown", number=".3f") == (
        "| source | bloodmnist | n_runs |\n"
        "|:---|---:|---:|\n"
        "| imagenet | 0.912 | 3 |\n"
        "| pathmnist |  | 12 |\n")


def test_markdown_title_escaped_pipe_and_mixed_object_column():
    df = pd.DataFrame({"statistic": ["p|q", "methods"],
                       "value": pd.Series([0.0123456, 7], dtype=object)})
    assert render(df, "markdown", number=".4g", index=False, title="Tests") == (
        "**Tests**\n\n"
        "| statistic | value |\n"
        "|:---|---:|\n"
        r"| p\|q | 0.01235 |" "\n"
        "| methods | 7 |\n")


def test_latex(frame):
    assert render(frame, "latex", number=".4f") == (
        "\\begin{tabular}{lrr}\n"
        "\\toprule\n"
        "source & bloodmnist & n\\_runs \\\\\n"
        "\\midrule\n"
        "imagenet & 0.9123 & 3 \\\\\n"
        "pathmnist &  & 12 \\\\\n"
        "\\bottomrule\n"
        "\\end{tabular}\n")


def test_latex_escapes_every_special_character_in_header_index_and_cells():
    df = pd.DataFrame({f"h {SPECIALS}": [f"c {SPECIALS}"], "x_1": [0.5]},
                      index=pd.Index([f"i {SPECIALS}"], name="n#"))
    assert render(df, "latex", number=".1f", title="50% of a_b") == (
        "% 50% of a_b\n"
        "\\begin{tabular}{llr}\n"
        "\\toprule\n"
        f"n\\# & h {ESCAPED} & x\\_1 \\\\\n"
        "\\midrule\n"
        f"i {ESCAPED} & c {ESCAPED} & 0.5 \\\\\n"
        "\\bottomrule\n"
        "\\end{tabular}\n")


def test_latex_escape_is_one_pass():
    # A backslash becomes \textbackslash{}, whose braces must not be escaped again.
    assert latex_escape("\\{") == r"\textbackslash{}\{"
    assert latex_escape("a^2~b") == r"a\textasciicircum{}2\textasciitilde{}b"


def test_csv_exact_and_round_trips_at_full_precision():
    df = pd.DataFrame({"bloodmnist": [0.123456789012345, math.nan], "dermamnist": [1.0, 0.5]},
                      index=pd.Index(["imagenet", "pathmnist"], name="source"))
    text = render(df, "csv", number=".1f", title="ignored")
    assert text == ("source,bloodmnist,dermamnist\n"
                    "imagenet,0.123456789012345,1.0\n"
                    "pathmnist,,0.5\n")
    back = pd.read_csv(io.StringIO(text), index_col="source")
    pd.testing.assert_frame_equal(back, df)


def test_csv_without_index_round_trips():
    df = pd.DataFrame({"target": ["a", "b"], "tau": [np.float64(-1 / 3), math.nan]})
    back = pd.read_csv(io.StringIO(render(df, "csv", index=False)))
    pd.testing.assert_frame_equal(back, df)


def test_unknown_format_lists_the_valid_ones(frame):
    with pytest.raises(ValueError, match="'xml': expected one of table, csv, markdown, latex"):
        render(frame, "xml")


def test_write_or_print(tmp_path):
    out = tmp_path / "a" / "b.md"
    write_or_print("| x |\n", out, echo=None)
    assert out.read_text(encoding="utf-8") == "| x |\n"
    echoed = []
    write_or_print("| x |\n", None, echoed.append)
    assert echoed == ["| x |"]


@pytest.mark.parametrize("output, fmt", [
    ("tau.csv", "csv"), ("res/tau.md", "markdown"), ("T.MARKDOWN", "markdown"),
    ("tau.tex", "latex"), ("tau.txt", "table"), ("tau", "table"), (None, "table")])
def test_output_extension_decides_without_format(output, fmt):
    assert output_format(None, output) == fmt


@pytest.mark.parametrize("fmt", FORMATS)
def test_explicit_format_wins_where_nothing_contradicts_it(fmt):
    assert output_format(fmt, None) == fmt
    assert output_format(fmt, "tau") == fmt  # no extension: the format's word
    assert output_format(fmt, "tau.dat") == fmt  # an extension that names no format
    assert output_format(fmt, f"tau{SUFFIX[fmt]}") == fmt


def test_format_contradicting_the_extension_names_both():
    with pytest.raises(MedxferInputError) as err:
        output_format("table", "tau.csv")
    assert str(err.value) == ("--format table contradicts --output tau.csv (.csv means csv); "
                              "drop --format or write to tau.txt")


def test_unknown_extension_or_format_is_refused():
    with pytest.raises(MedxferInputError, match=r"^--output tau\.xlsx: extension '\.xlsx' names "
                                                r"no table format; use one of \.txt, \.csv"):
        output_format(None, "tau.xlsx")
    with pytest.raises(MedxferInputError, match="^--format 'xml': expected one of table, csv"):
        output_format("xml", "tau.csv")


def test_estimate_score_table_renders_through_render():
    from medxfer.transferability.scoring import ZooScores, labelled_table

    table = pd.DataFrame({"logme": [0.5, 1.25, -2.0], "leep": [math.nan, -1.5, 0.0]},
                         index=pd.MultiIndex.from_tuples(
                             [("imagenet", "resnet"), ("imagenet", "densenet"),
                              ("pathmnist", "resnet")], names=["source", "arch"]))
    shown = labelled_table(ZooScores(table=table))
    assert render(shown, "csv") == ("source,logme,leep\n"
                                    "imagenet (resnet),0.5,\n"
                                    "imagenet (densenet),1.25,-1.5\n"
                                    "pathmnist,-2.0,0.0\n")
    assert render(shown, "markdown", number=".2f").splitlines()[2] == \
        "| imagenet (resnet) | 0.50 |  |"
