"""``reports.evaluation`` and the evaluation figures: an ``Evaluation`` built by hand, rendered
to the text written out here; figures drawn or refused with their reason."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from PIL import Image

from medxfer.reports import evaluation as presentation
from medxfer.reports import figures
from medxfer.transferability.evaluation import Evaluation

SOURCES = ["imagenet", "pathmnist", "octmnist"]


def _evaluation(targets=("bloodmnist", "dermamnist"), inverted=()) -> Evaluation:
    """Two targets, three ranked metrics; ranks follow the taus (undefined tau ranks last)."""
    taus = pd.DataFrame([[0.5, math.nan, 0.25], [-0.25, 1.0, 0.125]][:len(targets)],
                        index=pd.Index(list(targets), name="target"),
                        columns=["logme", "leep", "parc"])
    ranks = pd.DataFrame([[1.0, 3.0, 2.0], [3.0, 1.0, 2.0]][:len(targets)], index=taus.index,
                         columns=taus.columns)
    scores = {m: pd.DataFrame([[1.0 + i, 2.0, 0.5], [0.0, 1.0 - i, 2.5], [3.0, 0.0, 1.0]],
                              index=SOURCES, columns=["bloodmnist", "dermamnist", "octmnist"])
              for i, m in enumerate(taus.columns)}
    return Evaluation(taus=taus, ranks=ranks, average_ranks=ranks.mean().rename("average_rank"),
                      friedman_chi2=0.0, friedman_p=1.0, cd=2.3437, alpha=0.05,
                      inverted=tuple(inverted), scores=scores)


MARKDOWN = """\
inverted (1 - score; lp_fu: eq. 6.8): parc

**Weighted Kendall's tau**

| target | logme | leep | parc |
|:---|---:|---:|---:|
| bloodmnist | 0.500 |  | 0.250 |
| dermamnist | -0.250 | 1.000 | 0.125 |

**Ranks (1 = best; undefined tau ranks last)**

| target | logme | leep | parc |
|:---|---:|---:|---:|
| bloodmnist | 1 | 3 | 2 |
| dermamnist | 3 | 1 | 2 |

**Average ranks**

| method | average_rank |
|:---|---:|
| logme | 2.00 |
| leep | 2.00 |
| parc | 2.00 |

**Friedman test and Nemenyi critical difference**

| statistic | value |
|:---|---:|
| friedman_chi2 | 0 |
| friedman_p | 1 |
| nemenyi_cd | 2.344 |
| alpha | 0.05 |
| methods | 3 |
| targets | 2 |
"""


def test_render_all_markdown():
    assert presentation.render_all(_evaluation(inverted=["parc"]), "markdown") == MARKDOWN


def test_render_all_csv_is_the_tau_table_at_full_precision():
    assert presentation.render_all(_evaluation(), "csv") == (
        "target,logme,leep,parc\n"
        "bloodmnist,0.5,,0.25\n"
        "dermamnist,-0.25,1.0,0.125\n")


def test_render_all_table_titles_every_section():
    text = presentation.render_all(_evaluation(), "table")
    assert text.splitlines()[:4] == ["Weighted Kendall's tau",
                                     "    target  logme  leep  parc",
                                     "bloodmnist  0.500       0.250",
                                     "dermamnist -0.250 1.000 0.125"]
    assert [t in text for t in presentation.TITLES.values()] == [True] * 4


def test_write_all_latex_beside_the_output(tmp_path):
    out = tmp_path / "res" / "taus.tex"
    written = presentation.write_all(_evaluation(), "latex", out)
    assert [p.name for p in written] == ["taus.tex", "taus_ranks.tex", "taus_average_ranks.tex",
                                         "taus_tests.tex"]
    tests = (tmp_path / "res" / "taus_tests.tex").read_text(encoding="utf-8")
    assert tests.splitlines()[:2] == ["% Friedman test and Nemenyi critical difference",
                                      r"\begin{tabular}{lr}"]
    assert r"nemenyi\_cd & 2.344 \\" in tests.splitlines()
    # Without a suffix, the format's own.
    named = presentation.write_all(_evaluation(), "markdown", tmp_path / "plain")
    assert [p.name for p in named][1:2] == ["plain_ranks.md"]


def test_write_figures_draws_both(tmp_path):
    gt = pd.DataFrame([[0.9, 0.8, 0.7], [0.6, 0.95, 0.75], [0.8, 0.7, 0.9]], index=SOURCES,
                      columns=["bloodmnist", "dermamnist", "octmnist"])
    drawn = presentation.write_figures(_evaluation(), gt, tmp_path / "fig")
    assert [p.name for p in drawn.paths] == ["scores_vs_ground_truth.png",
                                             "critical_difference.png"]
    assert drawn.skipped == {}
    for p in drawn.paths:
        with Image.open(p) as im:
            assert im.format == "PNG" and im.width > 100 and im.height > 50


def test_cd_diagram_refused_with_its_reason(tmp_path):
    ev = _evaluation(targets=("bloodmnist",))
    reason = figures.cd_unavailable(ev)
    assert reason == ("the diagram needs at least two ranked methods and two targets "
                      "(here 3 and 1)")
    assert figures.cd_unavailable(_evaluation()) is None
    with pytest.raises(ValueError, match=r"\(here 3 and 1\)"):
        figures.critical_difference_png(ev, tmp_path / "cd.png")
    gt = pd.DataFrame(0.5, index=SOURCES, columns=["bloodmnist"])
    drawn = presentation.write_figures(ev, gt, tmp_path)
    assert [p.name for p in drawn.paths] == ["scores_vs_ground_truth.png"]
    assert drawn.skipped == {"critical_difference.png": reason}
    assert not (tmp_path / "cd.png").exists()
    assert not (tmp_path / "critical_difference.png").exists()


def test_source_counts_leave_out_the_target_and_missing_cells():
    ev = _evaluation()
    gt = pd.DataFrame([[0.9, 0.8], [0.6, math.nan], [0.8, 0.7]], index=SOURCES,
                      columns=["bloodmnist", "dermamnist"])
    ev.scores["leep"].loc["octmnist", "dermamnist"] = math.nan
    counts = presentation.source_counts(ev, gt)
    # bloodmnist: all three sources; dermamnist: pathmnist has no ground truth, and octmnist
    # no leep score.
    assert counts.loc["bloodmnist"].tolist() == [3, 3, 3]
    assert counts.loc["dermamnist"].tolist() == [2, 1, 2]
    assert presentation.few_sources(ev, gt) == [
        "target dermamnist: tau rests on few sources (logme 2, leep 1, parc 2) with both a "
        "score and a ground truth; with fewer than 3 it can only be +1, -1 or undefined"]
    full = gt.fillna(0.75)
    assert presentation.few_sources(ev, full) == [
        "target dermamnist: tau rests on few sources (leep 2) with both a score and a ground "
        "truth; with fewer than 3 it can only be +1, -1 or undefined"]
    assert presentation.few_sources(ev, full, minimum=2) == []


def test_few_sources_same_count_for_every_metric():
    ev = _evaluation(targets=("bloodmnist",))
    gt = pd.DataFrame({"bloodmnist": [0.9, math.nan, 0.7]}, index=SOURCES)
    assert presentation.few_sources(ev, gt) == [
        "target bloodmnist: tau rests on 2 source(s) with both a score and a ground truth; "
        "with fewer than 3 it can only be +1, -1 or undefined"]
