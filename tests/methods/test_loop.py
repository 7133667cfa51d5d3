"""The training loop itself, on a real least-squares problem: selection, test sets, final hooks,
artifacts, a finished run's resume, and a selection metric that is never reported."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from medxfer.config import TrainConfig
from medxfer.errors import MedxferInputError
from medxfer.methods import LocalSession
from medxfer.methods.checkpoint import clone_state, load_state
from medxfer.methods.loop import Parts, fit

T = TrainConfig(epochs=5, batch_size=16, lr=0.05, early_stopping_metric="val_loss",
                early_stopping_mode="min", select_by="val_loss", mode="min")


def _run_epoch(model: nn.Module, loader, opt) -> dict[str, float]:
    model.train(opt is not None)
    total, n = 0.0, 0
    with torch.set_grad_enabled(opt is not None):
        for x, y in loader:
            loss = F.mse_loss(model(x).squeeze(1), y)
            if opt is not None:
                opt.zero_grad()
                loss.backward()
                opt.step()
            total, n = total + float(loss.detach()) * len(x), n + len(x)
    return {"loss": total / n}


def _parts() -> Parts:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=g)
    train = TensorDataset(x, x @ torch.tensor([1.0, -2.0, 0.5]))
    val = TensorDataset(x[:32], train.tensors[1][:32])
    torch.manual_seed(0)
    return Parts(model=nn.Linear(3, 1), run_epoch=_run_epoch, train_set=train, val_set=val,
                 test_sets={"test": val, "ood": train},
                 final_metrics=lambda m: {"weight_norm": float(m.weight.detach().norm())},
                 artifacts=lambda m: {"linear.pt": clone_state(m)})


def test_fit_reports_epochs_then_the_selected_model_scored_on_each_test_set(tmp_path):
    session = LocalSession(tmp_path)
    fit(session, T, _parts())
    epochs, final = session.history[:-1], session.history[-1]
    assert [h["epoch"] for h in epochs] == [1, 2, 3, 4, 5] and final["epoch"] == 6
    assert epochs[-1]["train_loss"] < 0.5 * epochs[0]["train_loss"]
    best = min(epochs, key=lambda h: h["val_loss"])
    assert final["selected_epoch"] == best["epoch"]
    # val and "test" are the same split: the selected weights score the selected epoch's loss
    assert final["test_loss"] == pytest.approx(best["val_loss"], rel=1e-6)
    assert final["ood_loss"] > 0 and final["val_loss"] == best["val_loss"]
    weights = torch.load(Path(session.checkpoints[-1]) / "linear.pt", weights_only=True)
    assert float(weights["weight"].norm()) == pytest.approx(final["weight_norm"])
    assert load_state(session.checkpoints[-1])["progress"]["done"] is True

    again = LocalSession(tmp_path / "again", resume_from=session.checkpoints[-1])
    fit(again, T, _parts())
    assert again.history == []  # a finished run does nothing


def test_resume_from_any_epoch_ends_in_the_same_state(tmp_path):
    full = LocalSession(tmp_path / "full")
    fit(full, T, _parts())
    second = LocalSession(tmp_path / "second", resume_from=full.checkpoints[1])
    fit(second, T, _parts())
    assert [h["epoch"] for h in second.history] == [3, 4, 5, 6]
    assert second.history == full.history[2:]


def test_a_selection_metric_that_is_never_reported_names_the_field(tmp_path):
    t = T.model_copy(update={"select_by": "val_auc"})
    with pytest.raises(MedxferInputError, match="train.select_by 'val_auc' is not a reported"):
        fit(LocalSession(tmp_path), t, _parts())
