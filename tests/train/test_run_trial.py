"""``run_trial`` inside a real Ray Tune function trainable (fast path: the Tune session)."""

from __future__ import annotations

import os

import pytest
from train_helpers import load_state, make_config

from medxfer.train.launcher import run_trial

pytestmark = pytest.mark.slow


def test_run_trial_reports_each_epoch_and_checkpoints_in_tune(ray_runtime, synth_root,
                                                              tmp_path):
    from ray import tune

    cfg = make_config(synth_root, epochs=2)
    cfg["train"]["lr"] = tune.choice([0.05])  # a sampled value merged under train.*
    tuner = tune.Tuner(tune.with_resources(run_trial, {"CPU": 1}), param_space=cfg,
                       tune_config=tune.TuneConfig(num_samples=1),
                       run_config=tune.RunConfig(name="rt", storage_path=str(tmp_path)))
    (result,) = list(tuner.fit())
    assert result.error is None
    assert result.metrics["epoch"] == 3 and result.metrics["training_iteration"] == 3
    assert result.config["train"]["lr"] == 0.05
    hist = result.metrics_dataframe
    assert list(hist["epoch"]) == [1, 2, 3]
    assert os.path.isfile(os.path.join(result.checkpoint.path, "model.pt"))
    assert load_state(result.checkpoint.path)["progress"]["done"] is True
