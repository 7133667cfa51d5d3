"""A shortcut study end to end on a real Ray runtime and MLflow store (thesis, seed
``004_43f54b618356cecf.txt``, Fig. 4.3, on synthetic data): a tag in share p_art of the positive
training images, p_art in {0, 0.5, 1}, 2 folds. Strong photon noise on every image (N0 = 30)
keeps the real finding (a faint opacity) hard, so the base AUC stays below 1 while the bright
tag stays visible. As p_art grows the model leans on the tag: its i.i.d. AUC (tag still marks
positives) rises and its o.o.d. AUC (tag moved to the negatives) falls; the parent run holds
the curves and the figure, and ``medxfer report`` shows it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from medxfer.tracking import schema


@pytest.fixture(scope="module")
def tag_data(tmp_path_factory) -> Path:
    from medxfer.data.synth import synthesize

    root = tmp_path_factory.mktemp("shortcut-study-data")
    synthesize(root, n_per_class=100, modalities=["synthpneumonia"])
    return root


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_tag_shortcut_iid_rises_ood_falls(tag_data, tmp_path, tracking_uri, ray_runtime):
    from mlflow import MlflowClient

    from medxfer.cli.study import run_and_report
    from medxfer.reports.dashboard import write_report
    from medxfer.reports.study import SHORTCUT_CURVES, SHORTCUT_FIGURE

    noise = [{"name": "poisson_noise", "n0": 30}]  # every image: the opacity is hard to see
    raw = {"name": "tag", "method": "finetune",
           "data": {"root": str(tag_data), "flag": "synthpneumonia", "transforms": noise,
                    "eval_transforms": noise},
           "model": {"backbone": "tiny_cnn"},
           "train": {"epochs": 8, "optimizer": "adam", "batch_size": 16, "lr": 1.0e-3},
           "protocol": {"cv": {"folds": 2}, "val_fraction": 0.2,
                        "shortcut": {"confounder": "tag", "p_art": [0, 0.5, 1]},
                        "storage_path": str(tmp_path / "rr"), "max_concurrent": 2}}
    path = tmp_path / "tag.yaml"
    path.write_text(yaml.safe_dump(raw))
    result, summary = run_and_report(path, tracking_uri=tracking_uri, verbose=0,
                                     echo=lambda s: None)
    assert result.n_errored == 0 and len(result.records) == 6
    assert {r["p_art"] for r in result.records} == {0.0, 0.5, 1.0}
    assert "ID p_art=0.5" in summary.table.columns
    client = MlflowClient(tracking_uri=tracking_uri)
    cells = [r for r in client.search_runs([client.get_experiment_by_name("study/tag")
                                            .experiment_id])
             if r.data.tags.get(schema.KIND) == schema.KIND_CELL]
    assert sorted(r.data.tags[schema.CELL_P_ART] for r in cells) == ["0", "0", "0.5", "0.5",
                                                                     "1", "1"]
    curves = pd.read_csv(client.download_artifacts(result.parent_run_id, SHORTCUT_CURVES,
                                                   str(tmp_path)))
    mean = curves.set_index(["set", "p_art"])["mean"]
    print("i.i.d.", mean["iid"].round(3).tolist(), "o.o.d.", mean["ood"].round(3).tolist())
    # o.o.d. falls at every step (0.97, 0.74, 0.32 when written); i.i.d. rises from p_art 0 to
    # 1 (0.94 -> 0.98): at 0.5 the base AUC is already high, so that step is within fold noise
    # and only the ends are asserted
    assert mean[("ood", 0.0)] > mean[("ood", 0.5)] > mean[("ood", 1.0)]
    assert mean[("iid", 1.0)] > max(mean[("iid", 0.0)], mean[("iid", 0.5)])
    assert mean[("ood", 1.0)] < 0.5 < mean[("iid", 1.0)]  # the tag alone decides at p_art 1
    assert mean[("iid", 0.0)] - mean[("ood", 0.0)] < 0.1 < mean[("iid", 1.0)] - mean[("ood", 1.0)]
    report = write_report(tmp_path / "report", tracking_uri=tracking_uri)
    assert any(p.name.endswith(SHORTCUT_FIGURE) for p in report.figures)
    assert 'data-chart="shortcut"' in report.index.read_text()
