"""``medxfer report``: sections, exact values, best-so-far curves, PNGs, offline, exit codes."""

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
from medxfer.transferability.evaluation import evaluate
from medxfer.transferability.scores_io import read_scores_mlflow

from .conftest import EXPECTED_CURVES, TRIALS


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
    ids = {a.get("id") for _, a in page.tags}
    assert {"report-header", "ground-truth", "scores", "taus", "critical-difference",
            "sweeps"} <= ids
    charts = {a.get("data-chart") for a in page.find("figure")}
    assert {"gt-heatmap", "score-grid", "cd-diagram", "best-so-far", "best-so-far-png"} <= charts
    assert not page.find("p", **{"class": "no-data"})


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


def test_best_so_far_curves_are_running_minima(page):
    polylines = page.find("polyline")
    got = {}
    for fig in page.find("figure", data_chart="best-so-far"):
        assert fig["data-sweep"] == "s1"
    # Curves follow their figure in document order; pair them through the tag stream.
    target = None
    for tag, a in page.tags:
        if tag == "figure" and a.get("data-chart") == "best-so-far":
            target = a["data-target"]
        elif tag == "polyline":
            got[(target, a["data-line"])] = ([int(v) for v in a["data-trials"].split()],
                                             [float(v) for v in a["data-values"].split()])
    assert len(polylines) == len(EXPECTED_CURVES)
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
    """The SQL reader and the client reader give the same frame, and it holds every step."""
    uri, _ = report_dir
    exps = query._experiments(uri, "sweep")
    metrics = ["val_loss", "val_auc"]
    order = ["start_time", "key", "step"]  # one start time per trial
    sql = query._sweep_trials_sql(uri, exps, metrics).sort_values(order, ignore_index=True)
    cli = query._sweep_trials_client(uri, exps, metrics).sort_values(order, ignore_index=True)
    expected = [(s, t, step, v) for s, t, losses in TRIALS for step, v in enumerate(losses)]
    assert len(expected) == 16 and len(sql) == len(cli) == 2 * len(expected)
    pd.testing.assert_frame_equal(sql, cli)
    loss = sql[sql["key"] == "val_loss"]
    assert list(zip(loss["source"], loss["target"], loss["step"], loss["value"])) == expected
    assert loss["run_id"].nunique() == len(TRIALS) and set(sql["sweep"]) == {"sweep/s1"}
    assert set(sql["arch"]) == {"resnet"}


def test_pngs_are_valid_images(report_dir, page):
    _, out = report_dir
    names = {a["data-file"] for a in page.find("figure") if "data-file" in a}
    assert {"gt_heatmap.png", "scores_vs_ground_truth.png", "critical_difference.png",
            "best_so_far_s1.png"} == names
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
    out = tmp_path / "rep"
    assert main(["report", "--output", str(out), "--tracking-uri", tracking_uri]) == 0
    page = _Page((out / "index.html").read_text(encoding="utf-8"))
    notes = page.find("p", **{"class": "no-data"})
    assert len(notes) == 5  # ground truth, scores, taus, CD, sweeps
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
    assert len(notes) == 4  # no estimates given, no sweeps in the store
    assert f"{gt.shape[0]} archs x {gt.shape[1]} targets" in (out / "index.html").read_text()
