"""``medxfer estimate evaluate`` end to end on CSVs the test writes; score readers; bad input."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medxfer.cli import main
from medxfer.errors import MedxferInputError
from medxfer.transferability import scores_io
from medxfer.transferability.evaluation import evaluate

SOURCES = ["imagenet", "bloodmnist", "dermamnist", "pathmnist", "octmnist"]
TARGETS = ["bloodmnist", "dermamnist", "pathmnist"]
METRICS = ("logme", "leep", "nleep", "parc", "sfda", "lp", "fu")


def _frame(rng, lo=-1.0, hi=1.0):
    return pd.DataFrame(rng.uniform(lo, hi, (len(SOURCES), len(TARGETS))).round(6),
                        index=pd.Index(SOURCES, name="source"), columns=TARGETS)


@pytest.fixture
def inputs(tmp_path):
    """A score directory in the thesis layout (some with pandas' unnamed index) and a GT CSV."""
    rng = np.random.default_rng(7)
    d = tmp_path / "scores"
    d.mkdir()
    tables = {}
    for i, m in enumerate(METRICS):
        tables[m] = _frame(rng)
        if m == "lp":
            for t in TARGETS:
                tables[m].loc[t, t] = math.nan  # as published: NaN at source == target
        frame = tables[m].reset_index()
        frame.to_csv(d / f"{m}_scores.csv", index=(i % 2 == 0), na_rep="")
    tables["sfda"].loc[:, "dermamnist"] = 1.0  # undefined tau there
    tables["sfda"].reset_index().to_csv(d / "sfda_scores.csv", index=False)
    terms = {t: _frame(rng) for t in ("seli", "ncc", "vc")}
    for t, f in terms.items():
        f.to_csv(d / f"ncti_{t}_scores.csv")
    tables["ncti"] = terms
    gt = _frame(rng, 0.6, 1.0)
    gt.to_csv(tmp_path / "gt.csv")
    return d, tmp_path / "gt.csv", tables, gt


def test_read_score_dir_round_trips(inputs):
    d, _, tables, _ = inputs
    got = scores_io.read_score_dir(d)
    assert sorted(got) == sorted(tables)
    for m in METRICS:
        pd.testing.assert_frame_equal(got[m], tables[m], check_names=False)
    pd.testing.assert_frame_equal(got["ncti"]["vc"], tables["ncti"]["vc"], check_names=False)


def test_cli_csv_end_to_end(inputs, capsys):
    d, gt_path, tables, gt = inputs
    rc = main(["estimate", "evaluate", "--scores", str(d), "--ground-truth", str(gt_path),
               "--format", "csv", "--invert", "parc,lp_fu"])
    out = capsys.readouterr().out
    assert rc == 0
    got = pd.read_csv(io.StringIO(out))
    assert list(got.columns) == ["target", "logme", "leep", "nleep", "parc", "sfda", "ncti",
                                 "lp", "fu", "lp_fu"]
    assert got["target"].tolist() == TARGETS
    want = evaluate(tables, gt, invert=["parc", "lp_fu"]).taus
    np.testing.assert_allclose(got.set_index("target").to_numpy(), want.to_numpy(), rtol=1e-12)
    assert got.set_index("target").loc["dermamnist", "sfda"] != got.set_index("target").loc[
        "dermamnist", "sfda"]  # empty cell -> NaN
    assert ",," in out or out.rstrip().endswith(",")  # undefined tau printed as an empty cell


def test_cli_markdown_output_files_and_figures(inputs, tmp_path, capsys):
    d, gt_path, _, _ = inputs
    out = tmp_path / "res" / "taus.md"
    rc = main(["estimate", "evaluate", "--scores", str(d), "--ground-truth", str(gt_path),
               "--format", "markdown", "--output", str(out), "--figures", str(tmp_path / "fig")])
    assert rc == 0
    names = sorted(p.name for p in out.parent.iterdir())
    assert names == ["taus.md", "taus_average_ranks.md", "taus_ranks.md", "taus_tests.md"]
    assert out.read_text().splitlines()[2].startswith("| target | logme | leep |")
    assert "nemenyi_cd" in (out.parent / "taus_tests.md").read_text()
    figs = sorted(p.name for p in (tmp_path / "fig").iterdir())
    assert figs == ["critical_difference.png", "scores_vs_ground_truth.png"]
    assert all((tmp_path / "fig" / f).read_bytes()[:4] == b"\x89PNG" for f in figs)
    capsys.readouterr()


def test_cli_output_extension_sets_the_format(inputs, tmp_path, capsys):
    """`--output tau.csv` alone writes CSV files, not the plain table (issue 15)."""
    d, gt_path, tables, gt = inputs
    out = tmp_path / "res" / "tau.csv"
    assert main(["estimate", "evaluate", "--scores", str(d), "--ground-truth", str(gt_path),
                 "--output", str(out)]) == 0
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "tau.csv", "tau_average_ranks.csv", "tau_ranks.csv", "tau_tests.csv"]
    taus = pd.read_csv(out, index_col="target")
    np.testing.assert_allclose(taus.to_numpy(), evaluate(tables, gt).taus.to_numpy(),
                               rtol=1e-12)
    ranks = pd.read_csv(out.parent / "tau_ranks.csv")
    assert list(ranks.columns) == ["target", "logme", "parc", "sfda", "ncti", "leep", "nleep",
                                   "lp_fu"]
    assert (ranks.drop(columns="target").sum(axis=1) == 28).all()  # ranks 1..7 per target
    tests = pd.read_csv(out.parent / "tau_tests.csv", index_col="statistic")
    assert tests.loc["targets", "value"] == 3
    capsys.readouterr()


@pytest.mark.parametrize("args, message", [
    (["--format", "markdown", "--output", "{tmp}/tau.csv"],
     "--format markdown contradicts --output {tmp}/tau.csv (.csv means csv)"),
    (["--output", "{tmp}/tau.xlsx"], "--output {tmp}/tau.xlsx: extension '.xlsx' names no"),
    (["--format", "html"], "--format 'html': expected one of table, csv, markdown, latex"),
])
def test_cli_format_and_output_that_disagree_exit_2_and_write_nothing(inputs, tmp_path, capsys,
                                                                       args, message):
    d, gt_path, _, _ = inputs
    out = tmp_path / "out"
    args = [a.format(tmp=out) for a in args]
    assert main(["estimate", "evaluate", "--scores", str(d), "--ground-truth", str(gt_path),
                 *args]) == 2
    assert f"error: {message.format(tmp=out)}" in capsys.readouterr().err
    assert not out.exists()


def test_cli_warns_when_a_target_has_fewer_than_three_sources(inputs, tmp_path, capsys):
    d, _, _, gt = inputs
    thin = gt.copy()
    thin.loc[["imagenet", "octmnist"], "pathmnist"] = math.nan  # 2 left beside pathmnist
    thin.to_csv(tmp_path / "thin.csv")
    assert main(["estimate", "evaluate", "--scores", str(d), "--ground-truth",
                 str(tmp_path / "thin.csv"), "--format", "csv",
                 "--figures", str(tmp_path / "fig")]) == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: target pathmnist: tau rests on 2 source(s) with both a score and a ground "
        "truth; with fewer than 3 it can only be +1, -1 or undefined"]


def test_cli_says_which_figure_was_not_drawn_and_why(inputs, tmp_path, capsys):
    d, gt_path, _, gt = inputs
    gt[["bloodmnist"]].to_csv(tmp_path / "one.csv")
    assert main(["estimate", "evaluate", "--scores", str(d), "--ground-truth",
                 str(tmp_path / "one.csv"), "--figures", str(tmp_path / "fig")]) == 0
    err = capsys.readouterr().err
    assert ("not drawn: critical_difference.png: the diagram needs at least two ranked "
            "methods and two targets (here 7 and 1)") in err
    assert sorted(p.name for p in (tmp_path / "fig").iterdir()) == ["scores_vs_ground_truth.png"]


def test_cli_table_format_prints_all_sections(inputs, capsys):
    d, gt_path, _, _ = inputs
    assert main(["estimate", "evaluate", "--scores", str(d), "--ground-truth", str(gt_path)]) == 0
    out = capsys.readouterr().out
    for title in ("Weighted Kendall's tau", "Ranks", "Average ranks", "Friedman"):
        assert title in out


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name, text, where", [
    ("logme_s.csv", "src,a,b\nx,1,2\ny,3,4\n", "line 1, column 'source'"),
    ("logme_s.csv", "source,a,b\nx,1,2\ny,3,oops\n", "line 3, column 'b'"),
    ("logme_s.csv", ",source,a,b\n0,x,1,2\n1,y,inf,4\n", "line 3, column 'a'"),
    ("logme_s.csv", "source,a\nx,1\nx,2\n", "line 3, column 'source'"),
    ("logme_s.csv", "source,a,b\nx,1\n", "line 2"),
])
def test_bad_score_file_names_file_line_and_column(tmp_path, name, text, where):
    p = _write(tmp_path / name, text)
    with pytest.raises(MedxferInputError) as err:
        scores_io.read_table_csv(p)
    assert str(err.value).startswith(f"{p}, {where}")


def test_unknown_metric_file_and_ncti_forms(tmp_path):
    good = "source,a\nx,1\ny,2\n"
    _write(tmp_path / "logmee_scores.csv", good)
    with pytest.raises(MedxferInputError, match=r"logmee_scores\.csv: file name .*logme"):
        scores_io.read_score_dir(tmp_path)
    (tmp_path / "logmee_scores.csv").unlink()
    _write(tmp_path / "lp_fu_scores.csv", good)
    with pytest.raises(MedxferInputError, match="computed from the lp and fu"):
        scores_io.read_score_dir(tmp_path)
    (tmp_path / "lp_fu_scores.csv").unlink()
    _write(tmp_path / "ncti_seli_scores.csv", good)
    _write(tmp_path / "ncti_vc.csv", good)
    with pytest.raises(MedxferInputError, match="missing ncc"):
        scores_io.read_score_dir(tmp_path)
    _write(tmp_path / "ncti_ncc_x.csv", good)
    assert set(scores_io.read_score_dir(tmp_path)["ncti"]) == {"seli", "ncc", "vc"}
    _write(tmp_path / "ncti_scores.csv", good)
    with pytest.raises(MedxferInputError, match="both a combined ncti file and ncti term files"):
        scores_io.read_score_dir(tmp_path)


def test_ground_truth_outside_unit_interval(tmp_path):
    p = _write(tmp_path / "gt.csv", "source,a,b\nx,0.9,0.8\ny,0.7,87.5\n")
    with pytest.raises(MedxferInputError, match=r"gt\.csv, line 3, column 'b': AUC 87\.5"):
        scores_io.read_ground_truth_csv(p)


def test_cli_bad_inputs_exit_2(inputs, tmp_path, capsys):
    d, gt_path, _, _ = inputs
    _write(d / "leep_scores.csv", "source,bloodmnist\nimagenet,abc\n")
    rc = main(["estimate", "evaluate", "--scores", str(d), "--ground-truth", str(gt_path)])
    assert rc == 2
    assert "leep_scores.csv, line 2, column 'bloodmnist': not a number" in capsys.readouterr().err
    (d / "leep_scores.csv").unlink()
    other = _write(tmp_path / "other.csv", "source,retinamnist\nimagenet,0.9\nvgg,0.8\n")
    assert main(["estimate", "evaluate", "--scores", str(d), "--ground-truth", str(other)]) == 2
    assert "no target in common" in capsys.readouterr().err
    assert main(["estimate", "evaluate", "--scores", str(d), "--ground-truth", str(gt_path),
                 "--invert", "parcc"]) == 2
    assert "unknown metric(s) parcc" in capsys.readouterr().err
    assert main(["estimate", "evaluate", "--scores", str(d), "--ground-truth", str(gt_path),
                 "--invert", "gbc"]) == 2
    assert "cannot invert gbc" in capsys.readouterr().err
    assert main(["estimate", "evaluate", "--scores", str(d), "--ground-truth",
                 str(tmp_path / "missing.csv")]) == 2
    assert "missing.csv: ground-truth CSV not found" in capsys.readouterr().err


@pytest.mark.slow  # creating the sqlite MLflow store takes ~10 s (schema migrations)
def test_mlflow_score_reader(tmp_path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("transferability/unit",
                                   artifact_location=(tmp_path / "art").as_uri())
    rows = [("logme", "imagenet", "bloodmnist", {"score": 1.5}),
            ("logme", "pathmnist", "bloodmnist", {"score": -0.5}),
            ("logme", "imagenet", "dermamnist", {"score": 0.25}),
            ("ncti", "imagenet", "bloodmnist", {"seli": 3.0, "ncc": 0.5, "vc": 1.0}),
            ("ncti", "pathmnist", "bloodmnist", {"seli": 2.0, "ncc": 0.7, "vc": 0.9})]
    for metric, source, target, values in rows:
        run = client.create_run(exp, tags={"medxfer.kind": "estimate", "medxfer.source": source,
                                           "medxfer.target": target, "medxfer.arch": "resnet",
                                           "medxfer.metric": metric})
        for k, v in values.items():
            client.log_metric(run.info.run_id, k, v)
        client.set_terminated(run.info.run_id)
    # a later re-score of the same (source, target, metric) wins
    run = client.create_run(exp, tags={"medxfer.kind": "estimate", "medxfer.source": "imagenet",
                                       "medxfer.target": "bloodmnist", "medxfer.arch": "resnet",
                                       "medxfer.metric": "logme"})
    client.log_metric(run.info.run_id, "score", 2.0)
    # a run of another kind is ignored
    client.create_run(exp, tags={"medxfer.kind": "trial", "medxfer.metric": "bogus"})

    got = scores_io.read_scores_mlflow(uri, "unit")
    assert sorted(got) == ["logme", "ncti"]
    logme = got["logme"]
    assert logme.loc["imagenet", "bloodmnist"] == 2.0
    assert logme.loc["pathmnist", "bloodmnist"] == -0.5
    assert logme.loc["imagenet", "dermamnist"] == 0.25
    assert math.isnan(logme.loc["pathmnist", "dermamnist"])
    assert got["ncti"]["ncc"].loc["pathmnist", "bloodmnist"] == 0.7
    by_arch = scores_io.read_scores_mlflow(uri, "unit", benchmark="architecture")
    assert list(by_arch["logme"].index) == ["resnet"]
    with pytest.raises(MedxferInputError, match="no MLflow experiment 'transferability/none'"):
        scores_io.read_scores_mlflow(uri, "none")
