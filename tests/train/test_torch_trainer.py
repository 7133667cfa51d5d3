"""finetune and simclr through a real TorchTrainer with 2 CPU workers (gloo, DDP)."""

from __future__ import annotations

import os

import pytest
from train_helpers import load_state, make_config

from medxfer.train.launcher import fit_trainer

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("method,weights", [("finetune", "model.pt"), ("simclr", "encoder.pt")])
def test_two_workers(method, weights, ray_runtime, synth_root, tmp_path):
    cfg = make_config(synth_root, method, epochs=2, scaling={"num_workers": 2})
    result = fit_trainer(cfg, name=f"t-{method}", storage_path=tmp_path)
    assert result.error is None
    assert result.metrics["epoch"] == 3 and result.metrics["selected_epoch"] in (1, 2)
    assert "val_loss" in result.metrics
    # rank 0's telemetry, added by RayTrainSession.report (medxfer.train.telemetry)
    assert result.metrics["system/memory_rss_mb"] > 10 and result.metrics["system/samples"] >= 1
    assert len(result.metrics["system/node_id"]) == 56
    ckpt = result.checkpoint.path
    assert os.path.isfile(os.path.join(ckpt, weights))
    assert load_state(ckpt)["progress"]["done"] is True
