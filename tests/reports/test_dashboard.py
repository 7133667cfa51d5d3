"""``medxfer report``: sections, exact values, best-so-far curves, PNGs, offline, exit codes,
estimate scores without a ground truth, notes for figures that cannot be drawn."""

from __future__ import annotations

import math
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medxfer.cli import main
from medxfer.reports.sweeps import best_so_far
from medxfer.tracking import query
from medxfer.transferability.evaluation import evaluate, prepare_scores
from medxfer.transferability.scores_io import read_scores_mlflow

from .analysis_runs import SHORTCUT
from .conftest import EXPECTED_CURVES, STUDY_TABLE, TARGETS, TRIALS

#: The analysis figures of the report store, in run order (one run per verb).
ANALYSIS_CHARTS = ["analysis-saliency", "analysis-domain-gap", "analysis-domain-gap",
                   "analysis-similarity", "analysis-spectrum"]


class _Page(HTMLParser):
    """Start tags with their attributes, and table cells keyed by the enclosing table id."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.cells: dict[str, dict[tuple[str, str], float]] = {}
        self._table = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "table":
            self._table = a.get("id")
            self.cells.setdefault(self._table, {})
        elif tag == "td" and self._table and "data-value" in a:
            self.cells[self._table][(a["data-row"], a["data-col"])] = float(a["data-value"])

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None

    def find(self, tag=None, **attrs):
        want = {k.replace("_", "-"): v for k, v in attrs.items()}
        return [a for t, a in self.tags if (tag is None or t == tag)
                and all(a.get(k) == v for k, v in want.items())]

    def table(self, table_id: str) -> pd.Series:
        return pd.Series(self.cells[table_id])


@pytest.fixture(scope="module")
def page(report_dir):
    _, out = report_dir
    return _Page((out / "index.html").read_text(encoding="utf-8"))


def test_sections_and_charts_present(page):
    sections = [a["id"] for t, a in page.tags if t == "section"]
    assert sections == ["ground-truth", "estimates", "scores", "taus", "critical-difference",
                        "sweeps", "shortcut-studies", "analyses", "studies"]
    charts = [a.get("data-chart") for a in page.find("figure")]
    # One chart per sweep: the PNG, no second drawing of the same curves.
    assert charts == ["gt-heatmap", "score-grid", "cd-diagram", "best-so-far", "shortcut",
                      *ANALYSIS_CHARTS]
    assert not page.find("svg") and not page.find("polyline")
    assert not page.find("p", **{"class": "no-data"})
    assert not page.find("p", **{"class": "not-drawn"})
    for fig in page.find("img"):  # shown 1:1: the width attribute is the PNG's own
        assert int(fig["width"]) > 100 and int(fig["height"]) > 50


def test_study_table_is_the_parents_table(report_dir):
    _, out = report_dir
    text = (out / "index.html").read_text(encoding="utf-8")
    section = text[text.index('<section id="studies">'):]
    assert "study/mini-study" in section
    for (row, col), cell in STUDY_TABLE.items():
        assert f'data-row="{row}" data-col="{col}">{cell}</td>' in section
    csv = pd.read_csv(out / "study_mini-study.csv", index_col=0)
    assert {(r, c): csv.loc[r, c] for r, c in STUDY_TABLE} == STUDY_TABLE
    found = {s["study"]: s for s in query.study_tables(report_dir[0])}
    assert found["mini-study"]["table"].loc["b", "ID"] == "0.75 ± 0.07"
    assert found["shortcut"]["table"] is None  # curves only: not in the Studies section
    assert "study/shortcut" not in section


def test_estimate_scores_by_target_equal_the_logged_ones(report_dir, page):
    uri, out = report_dir
    final = prepare_scores(read_scores_mlflow(uri, "mini"))
    for t in TARGETS:
        cells = page.table(f"scores-{t}")
        assert len(cells) == len(final) * 4
        for (source, metric), v in cells.items():
            assert v == final[metric].loc[source, t]
    csv = pd.read_csv(out / "scores.csv", index_col=["target", "source"])
    assert list(csv.columns) == list(final) == ["logme", "leep", "parc"]
    assert csv.loc[("octmnist", "imagenet"), "parc"] == final["parc"].loc["imagenet", "octmnist"]


def test_header_names_store_and_ui(report_dir):
    uri, out = report_dir
    text = (out / "index.html").read_text(encoding="utf-8")
    header = text.split('<header id="report-header">', 1)[1].split("</header>", 1)[0]
    for needle in (uri, "benchmark/mini", "transferability/mini", "sweep/s1", "8 trials",
                   "medxfer ui", "generated"):
        assert needle in header


def test_heatmap_values_equal_ground_truth(report_dir, page):
    uri, _ = report_dir
    gt = query.ground_truth(uri, "mini")
    cells = page.table("ground-truth-table")
    expected = gt.stack()
    assert len(cells) == len(expected) == 16
    for (s, t), v in expected.items():
        assert cells[(s, t)] == v


def test_tau_table_equals_evaluate(report_dir, page):
    uri, _ = report_dir
    ev = evaluate(read_scores_mlflow(uri, "mini"), query.ground_truth(uri, "mini"))
    taus = page.table("tau-table")
    for t in ev.taus.index:
        for m in ev.taus.columns:
            v, got = ev.taus.loc[t, m], taus.get((t, m), math.nan)
            assert (math.isnan(v) and math.isnan(got)) or got == v, (t, m)
    assert ev.ranks.size and ev.taus.notna().all().all()
    for t in ev.ranks.index:
        for m in ev.ranks.columns:
            assert page.table("rank-table")[(t, m)] == ev.ranks.loc[t, m]
    for m, v in ev.average_ranks.items():
        assert page.table("average-ranks")[(m, "average rank")] == v
    tests = page.table("tests-table")
    assert tests[("friedman_p", "value")] == ev.friedman_p
    assert tests[("nemenyi_cd", "value")] == ev.cd


def test_best_so_far_chart_and_its_values(report_dir, page):
    _, out = report_dir
    (fig,) = page.find("figure", data_chart="best-so-far")
    assert fig["data-sweep"] == "s1" and fig["data-file"] == "best_so_far_s1.png"
    curves = pd.read_csv(out / "best_so_far.csv", keep_default_na=False)
    got = {(t, line): (g["trial"].tolist(), g["best"].tolist())
           for (t, line), g in curves.groupby(["target", "line"])}
    assert got.keys() == EXPECTED_CURVES.keys()
    for key, (trials, curve) in got.items():
        assert trials == EXPECTED_CURVES[key][0]
        np.testing.assert_allclose(curve, EXPECTED_CURVES[key][1])
        assert all(b <= a for a, b in zip(curve, curve[1:])), key  # monotone


def test_best_so_far_function_and_query(report_dir):
    uri, _ = report_dir
    trials = query.sweep_trials(uri)
    assert trials["run_id"].nunique() == 8  # the parent run is not a trial
    curves = best_so_far(trials, "val_loss", "min")
    for (t, line), (trial_numbers, expected) in EXPECTED_CURVES.items():
        c = curves[(curves["target"] == t) & (curves["line"] == line)]
        assert c["trial"].tolist() == trial_numbers
        np.testing.assert_allclose(c["best"], expected)
    auc = best_so_far(trials, "val_auc", "max")
    np.testing.assert_allclose(
        auc[(auc["target"] == "dermamnist")]["best"], [1 - 1.1, 1 - 1.1, 1 - 0.9])


def test_sweep_trials_client_path_matches_sql(report_dir):
    """The metric-history readers (SQL, MLflow client) agree on every step of every trial, and
    the public query returns exactly the logged losses."""
    uri, _ = report_dir
    trials = query.sweep_trials(uri, metrics=("val_loss",))
    run_ids = sorted(trials["run_id"].unique())
    assert len(run_ids) == len(TRIALS)
    cols = ["run_id", "key", "step", "value", "timestamp"]
    sql, cli = (pd.DataFrame(read(uri, run_ids, ("val_loss",)), columns=cols)
                .sort_values(cols).reset_index(drop=True)
                for read in (query._histories_sql, query._histories_client))
    assert len(sql) == sum(len(losses) for *_, losses in TRIALS)
    pd.testing.assert_frame_equal(sql, cli, check_dtype=False)
    loss = trials.sort_values(["start_time", "step"], ignore_index=True)
    expected = [(s, t, step, v) for s, t, losses in TRIALS for step, v in enumerate(losses)]
    assert list(zip(loss["source"], loss["target"], loss["step"], loss["value"])) == expected


def test_pngs_are_valid_images(report_dir, page):
    _, out = report_dir
    names = {a["data-file"] for a in page.find("figure") if "data-file" in a}
    assert {"gt_heatmap.png", "scores_vs_ground_truth.png", "critical_difference.png",
            "best_so_far_s1.png"} == {n for n in names if "_shortcut_" not in n
                                      and not n.startswith("synth_")}
    assert len(names) == 4 + 1 + len(ANALYSIS_CHARTS)
    for name in names:
        with Image.open(out / name) as im:
            im.verify()
        with Image.open(out / name) as im:
            assert im.format == "PNG" and im.width > 100 and im.height > 50


def test_offline_no_remote_urls(report_dir, page):
    _, out = report_dir
    text = (out / "index.html").read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text
    for _, a in page.tags:
        for key in ("src", "href"):
            assert a.get(key) is None or a[key].startswith("data:"), a


def test_empty_store_gives_no_data_notes(tracking_uri, tmp_path, capsys):
    from mlflow import MlflowClient

    MlflowClient(tracking_uri=tracking_uri).search_experiments()  # a store with no medxfer run
    out = tmp_path / "rep"
    assert main(["report", "--output", str(out), "--tracking-uri", tracking_uri]) == 0
    page = _Page((out / "index.html").read_text(encoding="utf-8"))
    notes = page.find("p", **{"class": "no-data"})
    assert len(notes) == 9  # ground truth, estimates, scores, taus, CD, sweeps, shortcut,
    # analyses, studies
    assert not list(out.glob("*.png"))


@pytest.mark.parametrize("args", [["--name", "nosuch"], ["--name", "mini", "--estimates", "nosuch"],
                                  ["--name", "mini", "--sweep", "nosuch"]])
def test_missing_experiment_exits_2(report_store, tmp_path, capsys, args):
    code = main(["report", *args, "--output", str(tmp_path / "r"), "--tracking-uri", report_store])
    assert code == 2
    assert "nosuch" in capsys.readouterr().err


def test_full_benchmark_architecture_table(benchmark_store, tmp_path):
    """On the published benchmark (imported once per session): the architecture heatmap."""
    uri, _ = benchmark_store
    out = tmp_path / "rep"
    assert main(["report", "--name", "medmnist-transfer", "--benchmark", "architecture",
                 "--output", str(out), "--tracking-uri", uri]) == 0
    page = _Page((out / "index.html").read_text(encoding="utf-8"))
    gt = query.ground_truth(uri, "medmnist-transfer", benchmark="architecture")
    cells = page.table("ground-truth-table")
    assert len(cells) == int(gt.notna().sum().sum()) and len(cells) > 50
    for (a, t), v in cells.items():
        assert v == gt.loc[a, t]
    notes = page.find("p", **{"class": "no-data"})
    assert len(notes) == 8  # no estimates (4 sections), sweeps, shortcut studies, analyses,
    # studies
    assert f"{gt.shape[0]} archs x {gt.shape[1]} targets" in (out / "index.html").read_text()


def test_wide_report_notes_what_cannot_be_drawn(wide_report):
    _, out = wide_report
    page = _Page((out / "index.html").read_text(encoding="utf-8"))
    (note,) = page.find("p", **{"class": "not-drawn"})
    assert note["data-figure"] == "best_so_far_one.png"
    text = (out / "index.html").read_text(encoding="utf-8")
    assert ("best_so_far_one.png not drawn: sweep/one has one trial per target (1 in all; best "
            "0.61, imagenet -&gt; bloodmnist): a best-so-far curve needs two or more") in text
    assert not (out / "best_so_far_one.png").exists()
    assert "warning: target" not in text  # five sources each: every tau is defined


def test_estimates_shown_without_ground_truth(no_truth_store, tmp_path, capfd):
    """No benchmark in the store and no --estimates: the only transferability experiment's
    scores are shown; evaluation sections say why they are empty."""
    out = tmp_path / "rep"
    assert main(["report", "--output", str(out), "--tracking-uri", no_truth_store]) == 0
    err = capfd.readouterr().err
    assert "not drawn: best_so_far_one.png" in err
    page = _Page((out / "index.html").read_text(encoding="utf-8"))
    final = prepare_scores(read_scores_mlflow(no_truth_store, "wide"))
    assert list(final) == ["logme", "leep", "nleep", "parc", "sfda", "ncti", "gbc", "lp", "fu",
                           "lp_fu"]
    for t in ("bloodmnist", "dermamnist"):
        cells = page.table(f"scores-{t}")
        assert len(cells) == 5 * 10
        for (source, metric), v in cells.items():
            assert v == pytest.approx(final[metric].loc[source, t], rel=1e-12)
    assert all("open" in a for a in page.find("details") if "data-target" in a)
    text = (out / "index.html").read_text(encoding="utf-8")
    assert text.count("no data: no ground truth to evaluate the estimates against") == 3
    assert "transferability/wide" in text.split("</header>")[0]


def test_shortcut_study_section_shows_its_curves(report_dir, page):
    """The study's curves hold the fold means and t-intervals of the logged cells, the
    permutation tests the exact p of 3 vs 3 fold values; the page shows the same numbers."""
    from medxfer.evaluation.shortcut import mean_ci, permutation_p

    _, out = report_dir
    (article,) = page.find("article", **{"class": "shortcut-study"})
    assert article["data-study"] == "shortcut"
    (fig,) = page.find("figure", data_chart="shortcut")
    assert fig["data-file"].endswith("_shortcut_auc.png")
    for stem in ("shortcut_curves", "shortcut_permutation"):
        (path,) = out.glob(f"shortcut_shortcut_*_{stem}.csv")
        frame = pd.read_csv(path)
        cells = page.table(path.stem)
        for (row, col), value in cells.items():
            assert value == pytest.approx(frame.iloc[int(row) - 1][col], rel=1e-12)
        if stem == "shortcut_curves":
            curves = frame.set_index(["source", "set", "p_art"])
        else:
            tests = frame.set_index(["set", "p_art"])
    assert len(curves) == 12  # 2 sources x 2 sets x 3 shares
    ood = [o for _, o in SHORTCUT[("imagenet", 1.0)]]
    ci = mean_ci(ood)
    got = curves.loc[("imagenet", "ood", 1.0)]
    assert (got["n"], got["mean"]) == (3, pytest.approx(0.15))
    assert got["lo"] == pytest.approx(ci.lo) and got["hi"] == pytest.approx(ci.hi)
    assert len(tests) == 6  # iid and ood at three shares, one pair of sources
    p = tests.loc[("ood", 1.0), "p"]
    assert p == pytest.approx(permutation_p(ood, [o for _, o in SHORTCUT[("radimagenet", 1.0)]]))
    assert p == pytest.approx(2 / 20)  # separated 3 vs 3: the two extreme splits of C(6, 3)


def test_analysis_section_shows_every_verb(report_dir, page):
    _, out = report_dir
    verbs = [a["data-analysis"] for a in page.find("article", **{"class": "analysis"})]
    assert verbs == ["saliency", "domain-gap", "similarity", "spectrum"]
    tables = {t.rsplit("_", 1)[-1] if "hit_rate" not in t else "hit_rate" for t in page.cells}
    assert {"hit_rate", "mmd", "mds", "cca", "similarity", "psd"} <= tables
    hits = page.table(next(t for t in page.cells if t.endswith("hit_rate")))
    assert set(hits.index.get_level_values(0)) == {"gradcam", "ig"}
    # per-image tables are files beside the page, not tables in it
    shown = {a["data-file"] for a in page.find("p", **{"class": "table-file"})}
    assert {n.rsplit("_", 2)[-2] + "_" + n.rsplit("_", 1)[-1] for n in shown} == \
        {"saliency_hits.csv", "domain_features.csv"}
    for name in shown:
        assert (out / name).stat().st_size > 100
