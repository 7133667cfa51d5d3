"""One cell in-process (no Ray): what a contrastive row does under a label fraction."""

from __future__ import annotations

import math

from medxfer.methods.experiment import parse_experiment
from medxfer.train.launcher import run_local


def test_simclr_cell_pretrains_on_all_probes_labelled_and_scores_ood(study_data, tmp_path):
    root = str(study_data / "data" / "synth")
    cfg = parse_experiment({
        "method": "simclr", "model": {"backbone": "tiny_cnn"},
        "method_config": {"probe_epochs": 2, "proj_hidden_dim": 32, "proj_out_dim": 16},
        "data": {"root": root, "flag": "synthpneumonia"},
        "train": {"epochs": 2, "batch_size": 16, "scheduler": "none"},
        "protocol": {"cv": {"folds": 3}, "label_fractions": [0.25, 1.0],
                     "test_sets": {"h1": {"root": root, "flag": "synthpneumonia_h1"}}},
        "cell": {"row": "simclr", "fold": 1, "fraction": 0.25}})
    final = run_local(cfg, storage_dir=tmp_path).history[-1]
    assert final["n_labelled"] == round(0.25 * final["n_train"])  # the probe's labels only
    for key in ("test_auc", "h1_test_auc", "h1_test_loss", "probe_test_loss"):
        assert math.isfinite(final[key]), key
