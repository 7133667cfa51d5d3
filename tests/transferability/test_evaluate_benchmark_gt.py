"""estimate evaluate against ground truth held in MLflow (the imported published benchmark)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from medxfer.cli import main
from medxfer.tracking.query import ground_truth


def test_evaluate_against_benchmark_in_mlflow(benchmark_store, tmp_path, capsys):
    uri, _ = benchmark_store
    gt = ground_truth(uri, "medmnist-transfer")
    targets = [t for t in gt.columns if t != "chestmnist"]
    scores = tmp_path / "scores"
    scores.mkdir()
    # logme: the ground truth itself (tau = 1); leep: its negation (tau = -1).
    perfect = gt[targets].copy()
    perfect.index.name = "source"
    perfect.to_csv(scores / "logme_scores.csv")
    (-perfect).to_csv(scores / "leep_scores.csv")
    code = main(["estimate", "evaluate", "--scores", str(scores), "--ground-truth",
                 "medmnist-transfer", "--tracking-uri", uri, "--format", "csv",
                 "--rank", "logme,leep"])
    out = capsys.readouterr().out
    assert code == 0, out
    taus = pd.read_csv(io.StringIO(out.split("\n\n")[0])).set_index("target")
    assert sorted(taus.index) == sorted(targets)
    np.testing.assert_allclose(taus["logme"], 1.0)
    np.testing.assert_allclose(taus["leep"], -1.0)


def test_architecture_benchmark_ground_truth_by_name(benchmark_store, tmp_path, capsys):
    uri, _ = benchmark_store
    gt = ground_truth(uri, "medmnist-transfer", benchmark="architecture")
    scores = tmp_path / "scores"
    scores.mkdir()
    table = gt.copy()
    table.index.name = "source"
    table.to_csv(scores / "sfda_scores.csv")
    code = main(["estimate", "evaluate", "--scores", str(scores), "--ground-truth",
                 "medmnist-transfer", "--benchmark", "architecture", "--tracking-uri", uri,
                 "--format", "csv", "--rank", "sfda"])
    out = capsys.readouterr().out
    assert code == 0, out
    taus = pd.read_csv(io.StringIO(out.split("\n\n")[0])).set_index("target")
    assert len(taus) == 11
    assert taus["sfda"].to_numpy() == pytest.approx(np.ones(11))
