"""A shortcut study end to end on a real Ray runtime and MLflow store (thesis, seed
``004_43f54b618356cecf.txt``, sec. 4.2.2 and Fig. 4.3, on synthetic data): a tag in share p_art
of the positive training images, p_art in {0, 0.5, 1}, 2 folds; the i.i.d. test keeps that
correlation, the o.o.d. test reverses it (the tag on every negative). As p_art grows the model
leans on the tag: its i.i.d. AUC rises and its o.o.d. AUC falls at each step; the parent run
holds the curves and the figure, and ``medxfer report`` shows it.

The synthetic task is built so the real finding is hard and the tag easy, as on the thesis'
lung-mass films: every image (training and test) gets a random gamma in [0.5, 2] and photon
noise (N0 = 30), which bury synthpneumonia's faint opacity (p_art 0: i.i.d. AUC ~0.74) but
leave the tag plain, because the tag sits in the dark top-left corner outside the lungs
(``position`` 0.04 of the side; departure: the thesis starts it at 0.2 of a 1024 px film, which
on a 28 px synthetic image lands on the lung field). Why 0.5 helps i.i.d.: half the test
positives carry the tag and rank above every negative, so i.i.d. AUC is about
0.5 + 0.5 * (the AUC of the untagged positives against the negatives).

Measured (identical on three runs; fold values in brackets)::

    p_art          0                    0.5                  1
    i.i.d.  0.739 (0.732, 0.746)  0.824 (0.803, 0.844)  1.000 (1.000, 1.000)
    o.o.d.  0.913 (0.884, 0.942)  0.066 (0.092, 0.040)  0.000 (0.000, 0.000)

Every step moves each fold the expected way (the fold ranges do not overlap). The asserted
margins (0.05 for each i.i.d. step and o.o.d.'s first, 0.03 for o.o.d.'s last) are below the
measured steps (i.i.d. 0.085, 0.176; o.o.d. 0.847, 0.066) and above the folds' half-spread at
p_art 0.5 (0.021 i.i.d., 0.026 o.o.d.); data drawn with synthesis seeds 1 and 2 gave steps of
0.068-0.071 (i.i.d., 0 -> 0.5) and 0.037-0.064 (o.o.d., 0.5 -> 1), inside them too. The
o.o.d. AUC at p_art 0 is above the i.i.d. one: that model never saw the tag, and the bright
corner lowers its score of the (tagged) o.o.d. negatives."""

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
    synthesize(root, n_per_class=75, modalities=["synthpneumonia"])
    return root


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_tag_shortcut_iid_rises_ood_falls(tag_data, tmp_path, tracking_uri, ray_runtime):
    from mlflow import MlflowClient

    from medxfer.cli.study import run_and_report
    from medxfer.reports.dashboard import write_report
    from medxfer.reports.study import SHORTCUT_CURVES, SHORTCUT_FIGURE

    # every image: the opacity is hard to see, the tag (value 1 on the dark corner) is not
    noise = [{"name": "random_gamma", "gamma": [0.5, 2.0]}, {"name": "poisson_noise", "n0": 30}]
    raw = {"name": "tag", "method": "finetune",
           "data": {"root": str(tag_data), "flag": "synthpneumonia", "transforms": noise,
                    "eval_transforms": noise},
           "model": {"backbone": "tiny_cnn"},
           "train": {"epochs": 8, "optimizer": "adam", "batch_size": 16, "lr": 1.0e-3},
           "protocol": {"cv": {"folds": 2}, "val_fraction": 0.2,
                        "shortcut": {"confounder": "tag", "p_art": [0, 0.5, 1],
                                     "params": {"position": [0.04, 0.04]}},
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
    iid, ood = mean["iid"], mean["ood"]
    assert iid[0.0] < 0.85  # the finding alone is hard
    assert iid[0.5] - iid[0.0] > 0.05 and iid[1.0] - iid[0.5] > 0.05  # i.i.d. rises at each step
    assert ood[0.0] - ood[0.5] > 0.05 and ood[0.5] - ood[1.0] > 0.03  # o.o.d. falls at each step
    assert ood[1.0] < 0.5 < iid[1.0]  # the tag alone decides at p_art 1
    assert ood[0.0] > iid[0.0] - 0.1  # no shortcut learned: the reversed tag does not hurt
    # 2 folds: t = 12.7, so i.i.d. at 0.5 (t interval ~0.82 +- 0.26) and o.o.d. at 0.5 reach
    # past [0, 1] before the table clips them
    assert curves["lo"].min() == 0.0 and curves["hi"].max() == 1.0
    report = write_report(tmp_path / "report", tracking_uri=tracking_uri)
    assert any(p.name.endswith(SHORTCUT_FIGURE) for p in report.figures)
    assert 'data-chart="shortcut"' in report.index.read_text()
