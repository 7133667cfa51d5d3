"""The method registry, and every registered method on the fast path: lowers its loss,
checkpoints, resumes exactly."""

from __future__ import annotations

import pytest
import torch
from train_helpers import load_state, make_config

from medxfer.methods import MethodOptions, get_method, list_methods, register_method
from medxfer.methods.experiment import parse_experiment
from medxfer.train.launcher import run_local

# Every registry entry, plus the second CL-TCI variant.
CASES = [(m, {}) for m in list_methods()] + [
    ("cltci", {"variant": "moco", "queue_size": 8})]
OPTIONS = {"simclr": {"probe_epochs": 2}, "supcon": {"probe_epochs": 2},
           # scc: 1 DCE + 1 SimCLR + 2 fine-tuning epochs = train.epochs (4)
           "scc": {"dce_epochs": 1, "simclr_epochs": 1},
           "dce_mae": {"dce_epochs": 1}, "moco": {"queue_size": 8}, "swav": {"n_prototypes": 100},
           # 32 images, 16 steps: with the paper's bank momentum (0.5) the NCE targets move
           # faster than the encoder follows and the loss first rises (measured); a slower
           # bank that starts from the initial features shows the fall within the budget.
           "pirl": {"n_negatives": 16, "bank_init": "features", "bank_momentum": 0.9}}
# The selected model's file in the final checkpoint (default: the pretrained encoder).
WEIGHTS = {"finetune": "model.pt", "scc": "model.pt", "dce": "dce.pt", "segment": "model.pt"}
# Backbones other than tiny_cnn: smp's encoders and MAE's ViT.
BACKBONES = {"segment": "resnet18", "mae": "vit_tiny_p4", "dce_mae": "vit_tiny_p4"}
# Train settings other than make_config's (segment: Adam, as the paper fine-tunes).
TRAIN = {"segment": {"optimizer": "adam", "lr": 1e-3}, "mae": {"optimizer": "adam", "lr": 1e-3},
         "dce_mae": {"optimizer": "adam", "lr": 1e-3}, "pirl": {"optimizer": "adam", "lr": 3e-4}}


EXPECTED = {"finetune", "simclr", "supcon", "cltci", "moco", "swav", "rotation", "pirl", "mae",
            "dce", "scc", "dce_mae", "segment"}


def test_registry_lists_every_method_sorted_with_its_metadata():
    assert set(list_methods()) == EXPECTED and list_methods() == sorted(EXPECTED)
    for name in list_methods():
        m = get_method(name)
        assert m.name == name and m.description and callable(m.train_loop_per_worker)
        assert issubclass(m.config_schema, MethodOptions)
        # the defaults and the schema's defaults validate as an experiment of this method
        cfg = parse_experiment({"method": name, "data": {"root": "/d", "flag": "x"}})
        assert cfg.method_config == m.config_schema().model_dump()
        for section, values in m.defaults.items():
            assert getattr(cfg, section).model_dump().items() >= values.items()


def test_unknown_and_duplicate_names():
    with pytest.raises(ValueError, match="unknown method 'nope'; valid: cltci, dce, dce_mae, "
                                         "finetune, mae"):
        get_method("nope")
    with pytest.raises(ValueError, match="'finetune' is already registered"):
        register_method(get_method("finetune"))
    assert list_methods() == sorted(EXPECTED)


@pytest.mark.parametrize("method,extra", CASES, ids=lambda c: str(c) if isinstance(c, str)
                         else (c.get("variant") or ""))
def test_method_learns_checkpoints_and_resumes(method, extra, synth_root, tmp_path):
    mc = {**OPTIONS.get(method, {}), **extra}
    kw = dict(method_config=mc, epochs=4, backbone=BACKBONES.get(method, "tiny_cnn"),
              **TRAIN.get(method, {}))
    full = run_local(make_config(synth_root, method, **kw), storage_dir=tmp_path / "full")
    epochs = [h for h in full.history if "selected_epoch" not in h]
    assert [h["epoch"] for h in epochs] == [1, 2, 3, 4]
    # MoCo's epoch 1 starts with an empty queue (few negatives, low loss): compare with epoch 2.
    # Staged methods (scc) report a ``stage``: compare within the last stage's loss.
    same = [h for h in epochs if h.get("stage") == epochs[-1].get("stage")]
    base = same[1] if extra.get("variant") == "moco" or method == "moco" else same[0]
    assert epochs[-1]["train_loss"] < base["train_loss"]
    final = full.history[-1]
    assert final["epoch"] == 5 and 1 <= final["selected_epoch"] <= 4
    assert len(full.checkpoints) == 5
    weights = WEIGHTS.get(method, "encoder.pt")
    assert (tmp_path / "full" / "checkpoint_000005" / weights).is_file()

    # "Restart": a new run (new session, new model) from the epoch-2 checkpoint up to epoch 4.
    handover = full.checkpoints[1]
    assert load_state(handover)["progress"]["epoch"] == 2
    second = run_local(make_config(synth_root, method, **kw), storage_dir=tmp_path / "second",
                       resume_from=handover)
    assert second.history[0]["epoch"] == 3
    # Same state at epoch 4 as the uninterrupted run: model, optimizer, queue, RNG all resumed.
    a, b = load_state(full.checkpoints[3]), load_state(second.checkpoints[1])
    assert a["progress"]["epoch"] == b["progress"]["epoch"] == 4
    for name, sd in a["modules"].items():
        for k, v in sd.items():
            assert torch.equal(v, b["modules"][name][k]), f"{name}.{k} differs after resume"
    assert second.history[1]["train_loss"] == pytest.approx(full.history[3]["train_loss"])
