"""finetune specifics: selected final step, lambda_lr schedule, early stopping, linear probe,
multi-label BCE."""

from __future__ import annotations

import pytest
import torch
from train_helpers import load_state, make_config

from medxfer.config import TrainConfig
from medxfer.methods.common import lr_factor
from medxfer.train.launcher import run_local


def test_lambda_lr_schedule_is_a_factor_per_epoch(synth_root, tmp_path):
    s = run_local(make_config(synth_root, epochs=3, lr=0.1, scheduler="lambda", lambda_lr=0.5),
                  storage_dir=tmp_path)
    assert [h["lr"] for h in s.history[:3]] == pytest.approx([0.1, 0.05, 0.025])
    t = TrainConfig(epochs=4, scheduler="cosine")
    assert [lr_factor(t, e) for e in (0, 2, 4)] == pytest.approx([1.0, 0.5, 0.0])


def test_final_step_is_the_selected_epoch_not_the_last(synth_root, tmp_path):
    # A large lr makes val_loss jump around; select by val_loss, report its epoch at the end.
    s = run_local(make_config(synth_root, epochs=4, lr=0.8, momentum=0.0),
                  storage_dir=tmp_path)
    epochs, final = s.history[:-1], s.history[-1]
    best = min(epochs, key=lambda h: h["val_loss"])
    assert best["epoch"] != epochs[-1]["epoch"], "construct a case where the last is not best"
    assert final["selected_epoch"] == best["epoch"] and final["epoch"] == 5
    for k in ("val_loss", "val_auc", "val_acc", "train_loss"):
        assert final[k] == best[k]
    assert {"test_auc", "test_acc", "test_loss"} <= set(final)
    model = torch.load(tmp_path / "checkpoint_000005" / "model.pt", weights_only=True)
    best_state = load_state(tmp_path / "checkpoint_000005")["best_modules"]["model"]
    assert all(torch.equal(v, best_state[k]) for k, v in model.items())


def test_early_stopping_after_patience_non_improving_epochs(synth_root, tmp_path):
    # Stop on a metric that cannot improve after epoch 1: lr (constant, mode min).
    s = run_local(make_config(synth_root, epochs=10, patience=2, early_stopping_metric="lr",
                              early_stopping_mode="min"), storage_dir=tmp_path)
    assert [h["epoch"] for h in s.history] == [1, 2, 3, 4]  # 3 epochs + the final step


def test_linear_probe_leaves_the_backbone_unchanged(synth_root, tmp_path):
    from medxfer.models import create_backbone

    torch.manual_seed(0)
    weights = tmp_path / "src.pt"
    torch.save(create_backbone("tiny_cnn", in_chans=1).state_dict(), weights)
    cfg = make_config(synth_root, method_config={"freeze_backbone": True}, epochs=2)
    cfg["model"]["weights"] = str(weights)
    s = run_local(cfg, storage_dir=tmp_path / "run")
    src = torch.load(weights, weights_only=True)
    first = load_state(s.checkpoints[0])["modules"]["model"]
    trained = load_state(s.checkpoints[-1])["modules"]["model"]
    for k, v in src.items():
        assert torch.equal(trained[f"backbone.{k}"], v), k
    assert not torch.equal(trained["head.weight"], first["head.weight"]) or \
        s.history[1]["train_loss"] != s.history[0]["train_loss"]


def test_multilabel_bce_on_synthchest(synth_root, tmp_path):
    s = run_local(make_config(synth_root, flag="synthchest", epochs=2), storage_dir=tmp_path)
    final = s.history[-1]
    assert 0.0 <= final["test_auc"] <= 1.0 and 0.0 <= final["val_map"] <= 1.0
    assert s.history[0]["train_loss"] < 1.0  # BCE per label starts near log 2, CE would not
